"""A photo's noise, read off the photo, and the model chosen for it from the weights there are: demo.py's
default and test.py --logdir auto. docs/real-noise.md has the measurements the thresholds come from."""
import csv
import functools
import io
import math
import os
from collections import namedtuple

import numpy as np

from utils import atomic_write_bytes

ROOT = os.path.dirname(os.path.abspath(__file__))
SHIPPED_DIR = os.path.join(ROOT, "weights")
REFERENCE_DIR = os.path.join(ROOT, "weights", "reference")  # where weights/get_reference_weights.sh puts them

# name -> folder: under SHIPPED_DIR what this project ships, under the reference folder what the user fetched
SHIPPED = {"CDnCNN-B": "CDnCNN-B", "CDnCNN-S-15": "CDnCNN-S-15", "CDnCNN-camera": "CDnCNN-camera",
           "DnCNN-S-25": "DnCNN-S-25", "ADNet-S-25": "ADNet-S-25"}
REFERENCE = {**{"ADNet c%s" % s: "adnet/color/c%s" % s for s in ("15", "25", "35", "50", "75", "blind")},
             **{"ADNet g%s" % s: "adnet/g%s" % s for s in ("15", "25", "50", "blind")},
             **{"SaoYan DnCNN-%s" % s: "saoyan/DnCNN-%s" % s for s in ("S-15", "S-25", "S-50", "B")},
             # the DnCNN authors' MatConvNet files (cszn/DnCNN model/): files, not folders
             "FDnCNN color": "cszn/FDnCNN_color.mat", "FDnCNN gray": "cszn/FDnCNN_gray.mat",
             "DnCNN-3": "cszn/DnCNN3.mat"}
# FDnCNN, told each photo's noise level, is the default wherever its file is there; DnCNN-3 deblocks JPEGs
FDNCNN = {"colour": "FDnCNN color", "gray": "FDnCNN gray"}
DEBLOCK = "DnCNN-3"

# White noise reads about the same on the pixels as on the 2x2 means (scaled back by 2). A camera's noise after
# demosaicing and JPEG reads faint on the pixels (JPEG drops the finest scale) and several times higher on the
# 2x2 means. Texture reads higher on the 2x2 means too, but a photo stored without JPEG (Kodak24, McMaster) also
# reads at least 1.0 on its pixels; under that and twice over on the means: a camera's JPEG. A photo that misses
# goes to the blind white-noise model, which keeps a photo close to itself (docs/real-noise.md).
CAMERA_BELOW = 1.25  # these seven: fitted by photo_fit on PolyU, Kodak24, McMaster (docs/real-noise.md)
CAMERA_RATIO = 2.25
CLEAN_BELOW = 0.4   # 2x2 reading under this (8-bit units): nothing to remove (0.2 and 0.4 tie in the fit)
HEAVY_ABOVE = 51.0  # sigma 75 reads 54 to 67 (clipped at 0 and 255), sigma 50 reads 38 to 49
# How much of the noise the chosen model finds is removed, per photo and kind (apply_strength; 1: the model's
# output); "light": white noise reading under LIGHT_BELOW, where a photo's own texture is most of what is read
LIGHT_BELOW = 5.0
STRENGTH_KINDS = ("camera", "light", "white", "heavy")
STRENGTH = {(photo, kind): 1.0 for photo in ("colour", "gray") for kind in STRENGTH_KINDS}
STRENGTH.update({("colour", "camera"): 0.9, ("colour", "light"): 0.5})
# gray: fitted with the thresholds above kept (every fold chose these); gray white stays 1 (0.9 traded sigma 25-50
# for 10-15, over 0.3 dB each way)
STRENGTH.update({("gray", "camera"): 0.5, ("gray", "heavy"): 1.5})

# The thresholds and strengths above, as one value photo_fit can fit and score
Rule = namedtuple("Rule", "camera_below camera_ratio clean_below heavy_above light_below white_15 strength")

# (photo, noise) -> the models to use, the first one there is wins (for white and heavy noise: the first whose
# SIGMA_RANGE holds the reading)
PREFERENCES = {
    # a fixed sigma-15 white-noise model removes a camera's noise (in PolyU) better than one trained on a camera's
    ("colour", "camera"): ["ADNet c15", "CDnCNN-S-15", "CDnCNN-camera"],
    ("colour", "white"): ["ADNet cblind", "CDnCNN-S-15", "CDnCNN-B"],  # CDnCNN-S-15 only in WHITE_15's band
    ("colour", "heavy"): ["CDnCNN-B", "ADNet c75", "ADNet cblind"],  # CDnCNN-B learnt sigma up to 75
    # a colour model on a gray photo sees the same noise in its three channels, not what it learnt: gray models
    ("gray", "camera"): ["ADNet g15", "SaoYan DnCNN-S-15", "DnCNN-S-25", "ADNet-S-25"],
    ("gray", "white"): ["ADNet g50", "SaoYan DnCNN-S-50", "ADNet gblind", "SaoYan DnCNN-B", "DnCNN-S-25",
                        "ADNet-S-25"],
    ("gray", "heavy"): ["SaoYan DnCNN-S-50", "ADNet g50", "SaoYan DnCNN-B", "ADNet gblind", "DnCNN-S-25",
                        "ADNet-S-25"],
}

# White noise's reading (8-bit units) a model is used for. A sigma-50 model beats the gray blind ones from a
# little under 50 (the reading of sigma 50 is 44 to 47, of sigma 35 at most 34.2); a sigma-25 model makes light
# noise worse than the input: under 8 (sigma 5 reads 5.4 to 6.2) the photo is kept as it is.
SIGMA_RANGE = {"ADNet g50": (40.0, math.inf), "SaoYan DnCNN-S-50": (40.0, math.inf),
               "DnCNN-S-25": (8.0, math.inf), "ADNet-S-25": (8.0, math.inf)}

# White noise's reading our sigma-15 colour model is used for (nothing, when low > high)
WHITE_15 = (13.0, 17.0)

# FDnCNN's level (0-255 scale) from a reading. White noise is read on the photo's weakly textured patches
# (sigma_weak: Liu et al.'s estimate, which a photo's texture does not pass for noise): white_scale times it,
# heavy_scale from heavy_from on (clipping at 0 and 255 takes noise away and the reading falls behind). A
# camera's noise, demosaiced and JPEG'd, is correlated and reads faint, and no reading of it says which level
# removes it best (on PolyU the best level is 1.2 to 9 times its 2x2 reading): it is told `camera`. A photo
# reading under the class rule's camera_below on its pixels and camera_ratio times that on its 2x2 means
# counts as a camera's. Fitted by photo_fit.fit_level, held out (docs/real-noise.md).
Level = namedtuple("Level", "white_scale heavy_from heavy_scale camera")
LEVEL = Level(1.0, 30.0, 1.05, 11.0)
# A JPEG whose IJG quality (read off its quantisation tables) is at most DEBLOCK_UP_TO is deblocked by DnCNN-3
# first, up to DEBLOCK_WHITE_UP_TO too unless its noise reads as a camera's: DnCNN-3 leaves a camera's noise
# where it is, and the deblocked photo then reads faint (PolyU's q75 crops lose 2 dB; docs/real-noise.md)
DEBLOCK_UP_TO = 70
DEBLOCK_WHITE_UP_TO = 90

# With FDnCNN there, which model a colour photo gets, by its reading (FDnCNN told the level read is not the
# best everywhere: a sigma-15 model is ahead on white noise near 15, and a photo whose weakly textured patches
# read nearly nothing is best kept). Each pick is (TOLD: FDnCNN told the level read; KEPT; or a reference's
# name, strength): `camera` for a camera's noise, `white` ((below, pick), ...) for white noise, the first band
# whose `below` is over its sigma_weak, `heavy` for white noise over the last band and for heavy noise. A
# reference whose weights are not there: FDnCNN. Gray photos and deblocked JPEGs: FDnCNN (no grid measures
# the others there). Fitted by photo_fit.fit_hybrid, held out (docs/real-noise.md).
TOLD, KEPT = "FDnCNN told a level", "kept as it is"
Hybrid = namedtuple("Hybrid", "camera white heavy")
HYBRID = Hybrid((TOLD, 1.0), ((2.5, (KEPT, 0.0)), (12.5, (TOLD, 1.0)), (17.5, ("ADNet c15", 1.0))), (TOLD, 1.0))
RULE = Rule(CAMERA_BELOW, CAMERA_RATIO, CLEAN_BELOW, HEAVY_ABOVE, LIGHT_BELOW, WHITE_15, STRENGTH)


def first_use(hybrid=HYBRID):
    """The reference models the default uses once they are all there (fetched on first use): FDnCNN, DnCNN-3 and
    the references the hybrid rule picks."""
    picks = [pick for pick in (hybrid.camera, hybrid.heavy) + tuple(p for _, p in hybrid.white)]
    return sorted(set(FDNCNN.values()) | {DEBLOCK} | {name for name, _ in picks if name in REFERENCE})

# 8-bit units; kind: clean, white, heavy or camera
Reading = namedtuple("Reading", "sigma sigma_2x2 kind sigma_weak", defaults=(None,))
# name None: the photo is kept as it is; level: what an FDnCNN is told (None: not an FDnCNN)
Choice = namedtuple("Choice", "name weights why strength level", defaults=(None,))


def add_reference_weights_flag(parser):
    parser.add_argument("--reference_weights", default=REFERENCE_DIR, metavar="DIR",
                        help="the references' checkpoints, as weights/get_reference_weights.sh lays them out, for the "
                             "model chosen per photo (default: %(default)s; without them only this project's weights)")


def bin_pixels(img, k):
    """(C, H, W) -> the means of its k x k blocks (a ragged edge dropped)."""
    c, h, w = img.shape
    h, w = h // k * k, w // k * k
    return img[:, :h, :w].reshape(c, h // k, k, w // k, k).mean(axis=(2, 4))


def wavelet_sigma(img):
    """scikit-image's wavelet estimate of white noise's sigma, averaged over the channels, in 8-bit units."""
    from skimage.restoration import estimate_sigma
    img = np.asarray(img, np.float32)
    if img.shape[0] == 1:
        return 255.0 * float(estimate_sigma(img[0]))
    return 255.0 * float(estimate_sigma(np.transpose(img, (1, 2, 0)), channel_axis=-1, average_sigmas=True))


WEAK_PATCH = 7             # Liu, Tanaka and Okutomi's patch size and confidence (their NoiseLevel.m's defaults)
WEAK_CONFIDENCE = 1 - 1e-6
WEAK_ITERATIONS = 3
WEAK_MAX_PATCHES = 250_000  # patches on a regular grid: a 12 MP photo's estimate costs no pass of its own


@functools.lru_cache(maxsize=None)
def weak_texture_bar(patch=WEAK_PATCH, confidence=WEAK_CONFIDENCE):
    """The texture (sum of squared gradients over a patch) that pure white noise of unit variance stays under
    with `confidence`: the gamma quantile of Liu et al.'s weak-texture test (the gradient operator's rank and
    trace set its shape and scale)."""
    from scipy.stats import gamma
    kernel = np.array([-0.5, 0.0, 0.5])
    rows = []
    for i in range(patch):
        for j in range(patch - 2):
            h, v = np.zeros((patch, patch)), np.zeros((patch, patch))
            h[i, j:j + 3], v[j:j + 3, i] = kernel, kernel
            rows += [h.ravel(), v.ravel()]
    gram = np.array(rows).T @ np.array(rows)
    rank = np.linalg.matrix_rank(gram)
    return float(gamma.ppf(confidence, rank / 2.0, scale=2.0 * np.trace(gram) / rank))


def weak_texture_sigma(img, patch=WEAK_PATCH, iterations=WEAK_ITERATIONS, max_patches=WEAK_MAX_PATCHES):
    """White noise's sigma of a (C, H, W) photo in [0, 1], in 8-bit units: Liu, Tanaka and Okutomi's estimate
    (IEEE TIP 2013, written here from the paper), the least eigenvalue of the covariance of the patches whose
    texture white noise of that sigma explains, refined `iterations` times. Patches holding a pixel clipped at
    0 or 255 are left out while enough others remain (clipping takes the noise away there); the channels'
    readings are averaged weighted by their unclipped patches, so a channel clipped all over (a saturated
    colour) has no say while another can be read. The covariance is taken about the patches' mean (their
    NoiseLevel.m does not subtract it: docs/real-noise.md)."""
    bar = weak_texture_bar(patch)
    readings, unclipped = [], []
    for channel in np.asarray(img, np.float32):
        h, w = channel.shape[0] - patch + 1, channel.shape[1] - patch + 1
        if h < 1 or w < 1:
            readings.append(0.0)
            unclipped.append(0)
            continue
        step = max(1, int(math.ceil(math.sqrt(h * w / max_patches))))
        patches = 255.0 * np.lib.stride_tricks.sliding_window_view(channel, (patch, patch))[::step, ::step].reshape(
            -1, patch, patch).astype(np.float64)
        # the texture: the squared gradients inside each patch (central differences, as NoiseLevel.m)
        texture = (((patches[:, :, 2:] - patches[:, :, :-2]) / 2.0) ** 2).sum(axis=(1, 2)) + \
            (((patches[:, 2:] - patches[:, :-2]) / 2.0) ** 2).sum(axis=(1, 2))
        patches = patches.reshape(len(patches), patch * patch)
        clipped = ((patches <= 0.5) | (patches >= 254.5)).any(axis=1)
        count = int((~clipped).sum())
        unclipped.append(count if count > 10 * patch * patch else 0)
        if unclipped[-1]:
            patches, texture = patches[~clipped], texture[~clipped]
        variance = least_eigenvalue(patches)
        for _ in range(iterations - 1):
            weak = texture < variance * bar
            if weak.sum() < patch * patch:
                break
            patches, texture = patches[weak], texture[weak]
            variance = least_eigenvalue(patches)
        readings.append(math.sqrt(max(variance, 0.0)))
    if not any(unclipped):
        return float(np.mean(readings))
    return float(np.average(readings, weights=unclipped))


def least_eigenvalue(patches):
    if len(patches) < 2:
        return 0.0
    return float(np.linalg.eigvalsh(np.cov(patches, rowvar=False))[0])


def read_noise(img, rule=RULE):
    """The Reading of a (C, H, W) float photo in [0, 1]: the estimate on its pixels, on its 2x2 means and on
    its weakly textured patches."""
    sigma = wavelet_sigma(img)
    sigma_2x2 = 2.0 * wavelet_sigma(bin_pixels(img, 2))
    return Reading(sigma, sigma_2x2, noise_kind(sigma, sigma_2x2, rule), weak_texture_sigma(img))


def deblocks(quality, kind, up_to=DEBLOCK_UP_TO, white_up_to=DEBLOCK_WHITE_UP_TO):
    """Whether a JPEG of IJG `quality` (None: not a JPEG) whose noise reads `kind` (None: not read) is deblocked
    first."""
    if quality is None:
        return False
    return quality <= up_to or (quality <= white_up_to and kind != "camera")


def noise_kind(sigma, sigma_2x2, rule=RULE):
    if sigma_2x2 < rule.clean_below:
        return "clean"
    if sigma < rule.camera_below and sigma_2x2 > rule.camera_ratio * sigma:
        return "camera"
    return "heavy" if sigma > rule.heavy_above else "white"


def available_weights(shipped_dir=SHIPPED_DIR, reference_dir=REFERENCE_DIR):
    """{name: folder} of the models whose weights are there."""
    found = {}
    for base, table in ((shipped_dir, SHIPPED), (reference_dir, REFERENCE)):
        for name, folder in table.items():
            path = os.path.join(base, folder)
            if (os.path.isfile(path) if folder.endswith(".mat") else
                    os.path.isdir(path) and any(f.endswith(".pth") for f in os.listdir(path))):
                found[name] = path
    return found


def in_range(name, reading, rule=RULE):
    """Whether the model is for this reading (SIGMA_RANGE, the rule's white_15; camera noise's reading is not
    its sigma)."""
    low, high = rule.white_15 if name == "CDnCNN-S-15" else SIGMA_RANGE.get(name, (0.0, math.inf))
    return reading.kind not in ("white", "heavy") or low <= reading.sigma <= high


def strength_kind(reading, channels, rule=RULE):
    """Which of the rule's strengths a photo gets: (colour or gray, its kind, or "light" for faint white noise)."""
    kind = "light" if reading.kind == "white" and reading.sigma < rule.light_below else reading.kind
    return ("colour" if channels == 3 else "gray"), kind


def hybrid_pick(reading, hybrid=HYBRID):
    """The (TOLD, KEPT or a reference's name, strength) a Hybrid gives a colour photo's reading."""
    if reading.kind == "camera":
        return hybrid.camera
    if reading.kind == "white":
        for below, pick in hybrid.white:
            if white_sigma(reading) < below:
                return pick
    return hybrid.heavy


def choose_model(reading, channels, available, rule=RULE, strength=1.0, level=None, deblocked=False,
                 hybrid=HYBRID, level_rule=LEVEL):
    """The Choice for a photo of `channels` whose noise reads `reading`, from {name: weights} available;
    `strength` scales the rule's strength for the kind, or an FDnCNN's level (the user's --strength); `level`
    fixes an FDnCNN's level (--noise_level); deblocked: the photo is a JPEG DnCNN-3 deblocked. With FDnCNN
    there, `hybrid` picks between it (told a level by `level_rule`) and the references."""
    photo = "colour" if channels == 3 else "gray"
    if FDNCNN[photo] in available and (level is not None or reading.kind != "clean"):
        why = "%s noise on a %s photo" % (reading.kind, photo)
        pick, pick_strength = hybrid_pick(reading, hybrid)
        if level is None and photo == "colour" and not deblocked and pick != TOLD:
            if pick == KEPT:
                return Choice(None, None, why + ": kept", 0.0)
            if pick in available:
                return Choice(pick, available[pick], why, strength * pick_strength)
        told = strength * noise_level(reading, level_rule, deblocked) if level is None else float(level)
        return Choice(FDNCNN[photo], available[FDNCNN[photo]], "%s noise on a %s photo" % (reading.kind, photo),
                      strength, told)
    if reading.kind == "clean":
        return Choice(None, None, "no noise to remove", 0.0)
    there = [name for name in PREFERENCES[(photo, reading.kind)] if name in available]
    if not there:
        raise LookupError("no weights for %s noise on a %s photo: none of %s is there"
                          % (reading.kind, photo, ", ".join(PREFERENCES[(photo, reading.kind)])))
    for name in there:
        if in_range(name, reading, rule):
            return Choice(name, available[name], "%s noise on a %s photo" % (reading.kind, photo),
                          strength * rule.strength[strength_kind(reading, channels, rule)])
    return Choice(None, None, "noise under what %s %s for" % (" and ".join(there), "are" if len(there) > 1 else "is"),
                  0.0)


def white_sigma(reading):
    """White noise's sigma in a Reading: the weakly textured patches' where read, else the whole photo's."""
    return reading.sigma if reading.sigma_weak is None else reading.sigma_weak


def noise_level(reading, level=LEVEL, deblocked=False):
    """The level (0-255 scale) an FDnCNN is told for a Reading, at strength 1. A deblocked JPEG's 2x2 means show
    what is left of its blocks, not a camera's noise: its level is read as white noise's."""
    if reading.kind == "clean":
        return 0.0
    # a reading classed under another rule (photo_fit's) is told a camera's level where RULE calls it one
    if not deblocked and (reading.kind == "camera" or noise_kind(reading.sigma, reading.sigma_2x2) == "camera"):
        return level.camera
    white = white_sigma(reading)
    return (level.heavy_scale if white >= level.heavy_from else level.white_scale) * white


def describe(name, reading, choice, quality=None, deblocked=False):
    """One line per photo: what was read and what was done."""
    done = choice.name or "kept as it is" + ("" if reading.kind == "clean" else " (%s)" % choice.why)
    if choice.name:
        done += ", strength %.2f" % choice.strength
    if choice.level is not None:
        done += ", noise level %.1f" % choice.level
    jpeg = "" if quality is None else "JPEG quality %d%s, " % (quality, " -> %s" % DEBLOCK if deblocked else "")
    weak = "" if reading.sigma_weak is None else ", weakly textured patches: %.1f" % reading.sigma_weak
    return "%s: %snoise %.1f (2x2 means: %.1f%s), %s -> %s" % (name, jpeg, reading.sigma, reading.sigma_2x2, weak,
                                                              reading.kind, done)


CSV_FIELDS = ("image", "noise_sigma", "noise_sigma_2x2", "noise", "model", "strength", "noise_level",
              "jpeg_quality", "deblocked", "weights", "noise_sigma_weak")


def choice_row(image, reading, choice, quality=None, deblocked=False):
    return {"image": image, "noise_sigma": "%.2f" % reading.sigma, "noise_sigma_2x2": "%.2f" % reading.sigma_2x2,
            "noise": reading.kind, "model": choice.name or "none", "strength": "%.2f" % choice.strength,
            "noise_level": "" if choice.level is None else "%.2f" % choice.level,
            "jpeg_quality": "" if quality is None else quality, "deblocked": "yes" if deblocked else "no",
            "weights": choice.weights or "",
            "noise_sigma_weak": "" if reading.sigma_weak is None else "%.2f" % reading.sigma_weak}


def read_choices(path):
    """{image: row} of an earlier run's CSV (a re-run keeps the rows of the photos it skips)."""
    if not os.path.isfile(path):
        return {}
    with open(path, newline="") as f:
        return {row["image"]: row for row in csv.DictReader(f)}


def write_choices(path, rows):
    """The rows ({image: row}) as a CSV, sorted by image, written atomically."""
    table = io.StringIO()
    writer = csv.DictWriter(table, CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for image in sorted(rows):
        writer.writerow(rows[image])
    atomic_write_bytes(path, table.getvalue().encode())


def apply_strength(noisy, denoised, strength):
    """The photo with `strength` times the noise the model found removed (1: the model's output; under 1
    lighter, over 1 stronger), in [0, 1]."""
    if strength == 1.0:
        return np.clip(denoised, 0.0, 1.0)
    return np.clip(noisy + strength * (np.asarray(denoised) - noisy), 0.0, 1.0)


# IJG's (libjpeg's) quantisation tables at quality 50, row by row (the JPEG standard's Annex K)
IJG_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
            14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
            49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
IJG_CHROMA = (17, 18, 24, 47) + (99,) * 4 + (18, 21, 26, 66) + (99,) * 4 + (24, 26, 56) + (99,) * 5 + (47, 66) + \
    (99,) * 38


def ijg_table(base, quality):
    """libjpeg's jpeg_set_quality: the base table scaled for `quality` (1-100), entries 1 to 255."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((np.array(base) * scale + 50) // 100, 1, 255)


def jpeg_quality(path):
    """The IJG quality (1-100) whose tables are nearest a JPEG file's, or None for any other file (a camera's
    own tables get the nearest IJG quality)."""
    from PIL import Image
    try:
        with Image.open(path) as img:
            if img.format != "JPEG" or not getattr(img, "quantization", None):
                return None
            tables = [np.array(t, float) for _, t in sorted(img.quantization.items())]
    except OSError:
        return None
    bases = (IJG_LUMA, IJG_CHROMA)
    error = [sum(np.abs(np.log(t) - np.log(ijg_table(bases[min(i, 1)], q))).sum() for i, t in enumerate(tables))
             for q in range(1, 101)]
    return 1 + int(np.argmin(error))
