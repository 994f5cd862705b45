"""Shared plumbing for train.py, test.py, demo.py and friends.

One way to do each thing: image reading, the test noise protocol, metrics,
the checkpoint loader, atomic saves, device / AMP / distributed set-up, and
(tiled, BN-folded) inference.
"""
import argparse
import contextlib
import datetime
import glob
import math
import os
import sys
import time

import numpy as np
import torch

from models import ARCHS, FEATURES, build_model, denoise, fold_batchnorm, outputs_noise, receptive_radius, unwrap

CHECKPOINT_NAMES = ("net.pth", "model_70.pth", "best_model.pth", "net_1p.pth", "net8p.pth")


# ----------------------------------------------------------------------------- errors and CLI
class UserError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


class ArgParser(argparse.ArgumentParser):
    """argparse that reports a bad flag on a single line."""

    def error(self, message):
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(2)


def str2bool(value):
    if isinstance(value, bool):
        return value
    if value.lower() in ("1", "true", "yes", "y", "t"):
        return True
    if value.lower() in ("0", "false", "no", "n", "f"):
        return False
    raise argparse.ArgumentTypeError("expected True or False, got %r" % value)


def non_negative(kind):
    def parse(value):
        x = kind(value)
        if x < 0:
            raise argparse.ArgumentTypeError("must be >= 0, got %s" % value)
        return x
    return parse


def positive(kind):
    def parse(value):
        x = kind(value)
        if x <= 0:
            raise argparse.ArgumentTypeError("must be > 0, got %s" % value)
        return x
    return parse


def warn(message):
    sys.stderr.write("warning: %s\n" % message)


def run_cli(main, hard_exit=lambda: False):
    """Run main(); user errors become one line on stderr and a non-zero exit. hard_exit(): when true at the end,
    leave through os._exit once the streams are flushed, skipping the native libraries' teardown."""
    try:
        code = main() or 0
    except UserError as e:
        sys.stderr.write("error: %s\n" % e)
        code = 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = 130
    if hard_exit():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def progress(iterable, quiet=False, **kwargs):
    """tqdm bar, silent when stderr is no terminal or --quiet is given."""
    from tqdm import tqdm
    return tqdm(iterable, disable=quiet or not sys.stderr.isatty(), dynamic_ncols=True, **kwargs)


def say(message):
    """print() that leaves a progress bar on screen intact."""
    from tqdm import tqdm
    tqdm.write(message)
    sys.stdout.flush()


class ImageProgress:
    """One bar over a folder's images that also moves on per tile of a large photo (fractions of an image),
    with megapixels per second; silent where progress() is."""

    def __init__(self, total, quiet=False, desc="demo"):
        self.bar = progress(None, quiet=quiet, total=total, desc=desc, unit="img",
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} images "
                                       "[{elapsed}<{remaining}{postfix}]")
        self.done, self.pixels, self.megapixels = 0.0, 0, 0.0
        self.started = time.perf_counter()

    def start(self, pixels):
        self.done, self.pixels = 0.0, pixels

    def advance(self, fraction):
        """This image's work is `fraction` further along (a retry's repeated work is not counted twice)."""
        step = min(fraction, 1.0 - self.done)
        if step <= 0:
            return
        self.done += step
        self.megapixels += step * self.pixels / 1e6
        self.bar.update(step)
        self.bar.set_postfix_str("%.2f MP/s" % (self.megapixels / max(1e-9, time.perf_counter() - self.started)),
                                 refresh=False)

    def finish(self):
        """This image is done (or skipped): the bar stands on the next whole image."""
        self.advance(1.0 - self.done)
        self.start(0)

    def close(self):
        self.bar.close()


# ----------------------------------------------------------------------------- images
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".heic", ".heif")
HEIF_EXTENSIONS = (".heic", ".heif")
JPEG_EXTENSIONS = (".jpg", ".jpeg")
TIFF_EXTENSIONS = (".tif", ".tiff")
EXIF_ORIENTATION = 0x0112


def list_images(folder, recursive=False, exclude=()):
    """Image files of a folder, sorted; anything else (Thumbs.db, notes) is ignored.

    recursive: sub-folders too (hidden ones and the folders in `exclude`, e.g. an output folder inside
    the input folder, left out)."""
    if not os.path.isdir(folder):
        raise UserError("no such folder: %s" % folder)
    is_image = lambda f: os.path.isfile(f) and f.lower().endswith(IMAGE_EXTENSIONS)  # noqa: E731
    if not recursive:
        return sorted(f for f in glob.glob(os.path.join(folder, "*")) if is_image(f))
    skip = {os.path.realpath(e) for e in exclude}
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and os.path.realpath(os.path.join(root, d)) not in skip)
        files += [os.path.join(root, n) for n in names if not n.startswith(".") and is_image(os.path.join(root, n))]
    return sorted(files)


def orient(img, orientation):
    """An H x W (x C) array as stored, turned as EXIF orientation 1-8 says it is shown (6: 90 degrees clockwise)."""
    transforms = {
        2: lambda a: a[:, ::-1],                         # mirrored left-right
        3: lambda a: a[::-1, ::-1],                      # 180 degrees
        4: lambda a: a[::-1],                            # mirrored top-bottom
        5: lambda a: a.swapaxes(0, 1),                   # transposed
        6: lambda a: a.swapaxes(0, 1)[:, ::-1],          # 90 degrees clockwise
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],       # transverse
        8: lambda a: a.swapaxes(0, 1)[::-1],             # 90 degrees counter-clockwise
    }
    return np.ascontiguousarray(transforms[orientation](img)) if orientation in transforms else img


def exif_orientation(path):
    """The EXIF orientation tag (1-8) of a file, read from its header with Pillow; 1 when it has none, or
    without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        return 1
    try:
        with Image.open(path) as im:
            if im.format == "TIFF":  # tags of the header
                return int(im.getexif().get(EXIF_ORIENTATION, 1))
            raw = im.info.get("exif")  # the header's EXIF only: getexif() would decode a PNG to look further
        if not raw:
            return 1
        exif = Image.Exif()
        exif.load(raw)
        return int(exif.get(EXIF_ORIENTATION, 1))
    except Exception:
        return 1


def _pillow_to_array(im):
    """A Pillow image as OpenCV lays it out: H x W (gray), x2 (gray, alpha), x3 (BGR), x4 (BGRA); depth kept."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(im).astype(np.uint16)
    if im.mode == "F":
        return np.asarray(im, dtype=np.float32)
    if im.mode == "I":
        return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
    if im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "transparency" in im.info or im.mode.endswith("A") else "RGB")
    a = np.asarray(im)
    if im.mode == "RGB":
        return np.ascontiguousarray(a[:, :, ::-1])
    if im.mode == "RGBA":
        return np.ascontiguousarray(a[:, :, [2, 1, 0, 3]])
    return a


def _decode_pillow(path):
    """Pillow's decode, turned as its EXIF orientation says: HEIC/HEIF (with pillow-heif), and files OpenCV
    cannot read. None when Pillow cannot either."""
    if path.lower().endswith(HEIF_EXTENSIONS):
        try:
            import pillow_heif
        except ImportError:
            warn("skipping %s: reading HEIC/HEIF needs pillow-heif (pip install pillow-heif)" % path)
            return False
        pillow_heif.register_heif_opener()
    try:
        from PIL import Image, ImageOps
    except ImportError:
        return None
    try:
        with Image.open(path) as im:
            return _pillow_to_array(ImageOps.exif_transpose(im))
    except Exception:
        return None


def _decode_tifffile(path, orientation):
    """A TIFF's first image as stored (any depth, alpha kept) through tifffile (scikit-image's own TIFF
    reader), in OpenCV's BGR(A) order, turned by `orientation`; None when tifffile is missing or fails."""
    try:
        import tifffile
        pixels = tifffile.imread(path, key=0)
    except Exception:  # noqa: BLE001 -- not installed, or a TIFF it cannot read: Pillow is tried next
        return None
    if pixels.ndim == 3 and pixels.shape[0] in (3, 4) and pixels.shape[2] not in (3, 4):
        pixels = np.transpose(pixels, (1, 2, 0))  # stored planar
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (1, 2, 3, 4)):
        return None
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        pixels = pixels[:, :, [2, 1, 0, 3][:pixels.shape[2]]]
    return orient(np.ascontiguousarray(pixels), orientation)


def decode_image(path):
    """(pixels, alpha) of a file as a viewer shows it, or None (with a warning naming it) when unreadable.

    pixels: H x W (gray) or H x W x 3 (BGR), as stored: uint8, uint16 or float32. alpha: H x W of the same
    depth, or None. EXIF orientation applied: OpenCV turns JPEG and TIFF files itself (IMREAD_ANYDEPTH |
    IMREAD_ANYCOLOR keeps 16 bits), PNG and WebP are read with IMREAD_UNCHANGED (alpha kept) and turned
    from their header's tag; TIFFs turned 90 degrees (which OpenCV 5 fails to read) through tifffile (16
    bits and alpha kept), HEIC/HEIF and what neither reads through Pillow.
    """
    import cv2
    ext = os.path.splitext(path)[1].lower()
    img = None
    if os.path.getsize(path) > 0 and ext not in HEIF_EXTENSIONS:
        if ext in JPEG_EXTENSIONS:
            img = cv2.imread(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
        elif ext in TIFF_EXTENSIONS and exif_orientation(path) >= 5:
            # OpenCV 5 turns TIFFs itself but fails (with an error printed) where the sides swap
            img = _decode_tifffile(path, exif_orientation(path))
        else:
            img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if img is not None and ext not in TIFF_EXTENSIONS:
                img = orient(img, exif_orientation(path))
    if (img is None or img.size == 0) and os.path.getsize(path) > 0:
        img = _decode_pillow(path)  # HEIC, TIFFs turned 90 degrees, what OpenCV cannot read
        if img is False:  # said why already
            return None
    if img is None or img.size == 0:
        warn("skipping %s: not a readable image" % path)
        return None
    alpha = None
    if img.ndim == 3 and img.shape[2] in (2, 4):
        alpha = np.ascontiguousarray(img[:, :, -1])
        img = np.ascontiguousarray(img[:, :, 0] if img.shape[2] == 2 else img[:, :, :3])
    elif img.ndim == 3 and img.shape[2] != 3:  # a single stored channel, or an odd count
        img = np.ascontiguousarray(img[:, :, 0])
    return img, alpha


def to_float(pixels):
    """(C, H, W) float32 in [0, 1] of H x W or H x W x C pixels of any depth (uint8 / 255, uint16 / 65535)."""
    chw = pixels[None] if pixels.ndim == 2 else np.transpose(pixels, (2, 0, 1))
    out = chw.astype(np.float32, order="C")
    if pixels.dtype == np.uint8:
        out /= 255.0
    elif pixels.dtype == np.uint16:
        out /= 65535.0
    else:
        np.clip(out, 0, 1, out=out)
    return out


def read_image(path, channels=1):
    """(C, H, W) float32 in [0, 1], or None (with a warning) when the file cannot be decoded.

    channels=1: gray. Gray files as stored (equal to the references' ``imread(f)[:, :, 0]``), colour files
    as OpenCV's luma. channels=3: colour in OpenCV's BGR order -- the order the ADNet authors'
    ``cv2.imread`` fed their colour models in training and test, so their weights need no channel swap;
    gray files are repeated into three channels. channels=None: as stored (1 or 3).
    As a viewer shows it (EXIF orientation applied); alpha is dropped; 8- and 16-bit files keep their precision.
    """
    import cv2
    decoded = decode_image(path)
    if decoded is None:
        return None
    img = decoded[0]
    if channels == 1 and img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif channels == 3 and img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return to_float(img)


def prefetched(items, load, prefetch=True):
    """(item, load(item)) one at a time; with prefetch the next item loads in a thread while this one is used.

    At most two loaded items are alive at once, however many there are."""
    items = list(items)
    if not prefetch or len(items) < 2:
        for item in items:
            yield item, load(item)
        return
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1, thread_name_prefix="prefetch") as pool:
        future = pool.submit(load, items[0])
        for i, item in enumerate(items):
            loaded = [future.result()]
            future = pool.submit(load, items[i + 1]) if i + 1 < len(items) else None
            yield item, loaded.pop()  # held by the caller alone: freed as soon as it lets go


def iter_images(files, channels=1, prefetch=True):
    """(path, float32 CxHxW) for each decodable file, decoded one at a time (the next one ahead, in a thread)."""
    for path, img in prefetched(files, lambda f: read_image(f, channels), prefetch):
        if img is not None:
            yield path, img


def read_images(folder, channels=1):
    """[(path, float32 CxHxW)] for every decodable image of a folder; an error when none is."""
    images = list(iter_images(list_images(folder), channels, prefetch=False))
    if not images:
        raise UserError("no usable image in %s" % folder)
    return images


def to_hwc(img):
    """(C, H, W) -> (H, W) for one channel, (H, W, C) otherwise; (H, W) stays."""
    img = np.asarray(img)
    if img.ndim == 3:
        return img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
    return img


def to_depth(img, dtype):
    """A [0, 1] float array as uint8 / uint16 (rounded) or float32 (clipped)."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return np.clip(img, 0, 1).astype(np.float32)
    top = float(np.iinfo(dtype).max)
    scaled = np.asarray(img, dtype=np.float32) * top
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, top, out=scaled)
    return scaled.astype(dtype)


def _same_depth(alpha, dtype):
    if alpha.dtype == dtype:
        return alpha
    top = 1.0 if alpha.dtype == np.float32 else float(np.iinfo(alpha.dtype).max)
    return to_depth(alpha.astype(np.float32) / top, dtype)


def write_image(path, img, dtype=np.uint8, alpha=None):
    """Write a [0, 1] float image ((C, H, W) with C = 1 or 3 in BGR order, or H x W) atomically.

    dtype: uint8 (default), uint16 (PNG and TIFF; 8-bit elsewhere) or float32 (TIFF; 16-bit elsewhere).
    alpha: H x W, written as the 4th channel as it is (converted only when its depth differs)."""
    import cv2
    ext = os.path.splitext(path)[1].lower() or ".png"
    dtype = np.dtype(dtype)
    if dtype == np.float32 and ext not in TIFF_EXTENSIONS:
        dtype = np.dtype(np.uint16)
    if dtype == np.uint16 and ext not in (".png",) + TIFF_EXTENSIONS:
        dtype = np.dtype(np.uint8)
    out = to_depth(to_hwc(np.asarray(img, dtype=np.float32)), dtype)
    if alpha is not None:
        colour = out if out.ndim == 3 else cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
        out = np.dstack([colour, _same_depth(np.asarray(alpha), dtype)])
    write_pixels(path, out)


def write_pixels(path, pixels):
    """Encode an array as OpenCV lays it out (H x W, or H x W x 3/4 in BGR(A) order) by the file's extension and
    write it atomically."""
    import cv2
    ext = os.path.splitext(path)[1].lower() or ".png"
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(pixels))
    if not ok:
        raise UserError("cannot encode an image as %s" % ext)
    atomic_write_bytes(path, memoryview(buf))


# ----------------------------------------------------------------------------- folders of photos (demo.py)
def output_name(path, clashes=()):
    """'<stem>_denoised.<ext>' for an input: TIFF stays TIFF (16-bit or float kept), anything else is PNG
    (lossless, 8 or 16 bits, alpha). Files whose stems clash in a folder (IMG_1.jpg, IMG_1.heic) keep their
    extension in the name (IMG_1_jpg_denoised.png)."""
    stem, ext = os.path.splitext(os.path.basename(path))
    if path in clashes:
        stem += "_" + ext.lstrip(".").lower()
    return stem + "_denoised" + (".tif" if ext.lower() in TIFF_EXTENSIONS else ".png")


def plan_outputs(files, image_root, out_root, compare=True):
    """One job per input file: {'src', 'denoised', and with compare 'compare'} paths, sub-folders of
    image_root mirrored under out_root."""
    by_stem = {}
    for f in files:
        by_stem.setdefault(os.path.splitext(f)[0].lower(), []).append(f)
    clashes = {f for group in by_stem.values() if len(group) > 1 for f in group}
    jobs = []
    for f in files:
        folder = os.path.join(out_root, os.path.relpath(os.path.dirname(f), image_root))
        job = {"src": f, "denoised": os.path.normpath(os.path.join(folder, output_name(f, clashes)))}
        if compare:
            job["compare"] = job["denoised"].rsplit("_denoised", 1)[0] + "_compare.png"
        jobs.append(job)
    return jobs


def outputs_exist(job):
    """All of a job's outputs are there (complete: writes are atomic)."""
    return all(os.path.isfile(p) for k, p in job.items() if k != "src")


def shard(items, rank, world):
    """This rank's share of a list every rank builds alike: every world-th item from the rank's index, so
    each item goes to exactly one rank."""
    return list(items)[rank::world]


SET_ALIASES = {"Set68": "BSD68", "BSD68": "Set68"}  # one set: DnCNN-PyTorch's name and the ADNet port's


def resolve_set(data_path, name):
    """--test_data is a set name under --data_path, or a folder; Set68 and BSD68 stand for each other."""
    alias = os.path.join(data_path, SET_ALIASES[name]) if name in SET_ALIASES else name
    for candidate in (os.path.join(data_path, name), name, alias):
        if os.path.isdir(candidate):
            return candidate
    raise UserError("test set %r not found (neither %s nor %s is a folder)"
                    % (name, os.path.join(data_path, name), name))


# ----------------------------------------------------------------------------- noise and metrics
def add_test_noise(clean, sigma, seed=0):
    """The test protocol: seed the generator, then N(0, sigma/255) noise of the whole tensor's shape at once.

    Identical to ``torch.manual_seed(seed); torch.FloatTensor(*clean.shape).normal_(0, sigma/255)``: for one
    gray image (1, 1, H, W) the references' gray protocol, for three copies (3, 3, H, W) the ADNet authors'
    colour protocol.
    """
    gen = torch.Generator().manual_seed(seed)
    noise = torch.empty(clean.shape, dtype=torch.float32).normal_(0, sigma / 255.0, generator=gen)
    return clean + noise


def psnr(clean, estimate):
    from skimage.metrics import peak_signal_noise_ratio
    return float(peak_signal_noise_ratio(np.asarray(clean, np.float32), np.asarray(estimate, np.float32), data_range=1.0))


def ssim(clean, estimate):
    """scikit-image SSIM of (C, H, W) or (H, W) images, averaged over channels (7x7 window; a smaller odd
    window for images under 7 pixels, NaN under 3)."""
    from skimage.metrics import structural_similarity
    clean, estimate = to_hwc(np.asarray(clean, np.float32)), to_hwc(np.asarray(estimate, np.float32))
    side = min(clean.shape[:2])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        return float("nan")
    return float(structural_similarity(clean, estimate, data_range=1.0, win_size=win,
                                       channel_axis=2 if clean.ndim == 3 else None))


def batch_psnr(estimate, clean):
    """Mean PSNR over a batch of (N, C, H, W) tensors, as the references' batch_PSNR."""
    est = estimate.detach().float().cpu().numpy()
    ref = clean.detach().float().cpu().numpy()
    return sum(psnr(ref[i], est[i]) for i in range(est.shape[0])) / est.shape[0]


# ----------------------------------------------------------------------------- atomic files
TEMP_MARK = ".tmp."  # atomic writes go to '<path>.tmp.<pid>' first


def _temp_path(path):
    return "%s%s%d" % (path, TEMP_MARK, os.getpid())


def atomic_write_bytes(path, data):
    tmp = _temp_path(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temp_files(folder):
    """Delete the '<name>.tmp.<pid>' files a killed writer left in folder; returns their names."""
    stale = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        stem, _, pid = name.rpartition(TEMP_MARK)
        if stem and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            os.remove(os.path.join(folder, name))
            stale.append(name)
    return stale


def atomic_save(obj, path):
    """torch.save to a temporary file, then rename: a crash never leaves a torn checkpoint."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = _temp_path(path)
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- checkpoints
def find_checkpoint(path):
    """A file as given; in a folder the first of CHECKPOINT_NAMES, else the newest .pth."""
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise UserError("no such checkpoint file or folder: %s" % path)
    for name in CHECKPOINT_NAMES:
        if os.path.isfile(os.path.join(path, name)):
            return os.path.join(path, name)
    candidates = glob.glob(os.path.join(path, "*.pth"))
    if not candidates:
        raise UserError("no .pth checkpoint in %s" % path)
    return max(candidates, key=os.path.getmtime)


def extract_state_dict(obj):
    """The model weights from any format in the wild, without DataParallel/compile prefixes."""
    if isinstance(obj, dict):
        for key in ("model_state_dict", "state_dict", "model", "net"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        return None
    clean = {}
    for k, v in obj.items():
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix):]
        clean[k] = v
    return clean


def describe_state_dict(state):
    """(arch, channels, num_of_layers) read off the keys, or None for a foreign model."""
    if "dncnn.0.weight" in state:
        convs = [k for k, v in state.items() if k.startswith("dncnn.") and k.endswith(".weight") and v.dim() == 4]
        return "DnCNN", state["dncnn.0.weight"].shape[1], len(convs)
    if "conv1_1.0.weight" in state and "conv3.weight" in state:
        return "ADNet", state["conv1_1.0.weight"].shape[1], 17
    return None


def read_checkpoint_file(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for random bytes / foreign pickles
        raise UserError("cannot read checkpoint %s: %s" % (path, str(e).splitlines()[0] if str(e) else type(e).__name__))


def load_model(path, arch=None, num_of_layers=None):
    """Build the model a checkpoint (file or folder, any known format) describes and load it.

    A forced ``arch`` / ``num_of_layers`` that does not match the checkpoint is a UserError.
    """
    file = find_checkpoint(path)
    state = extract_state_dict(read_checkpoint_file(file))
    found = describe_state_dict(state) if state else None
    if found is None:
        raise UserError("%s holds no DnCNN or ADNet weights" % file)
    found_arch, channels, layers = found
    if arch and arch != found_arch:
        raise UserError("%s is a %s checkpoint, not %s" % (file, found_arch, arch))
    if num_of_layers and found_arch == "DnCNN" and num_of_layers != layers:
        raise UserError("%s has %d layers, not %d" % (file, layers, num_of_layers))
    model = build_model(found_arch, channels, layers, init=None)
    expected = model.state_dict()
    for k, v in expected.items():  # checkpoints from PyTorch < 0.4.1 lack num_batches_tracked
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = torch.zeros_like(v)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise UserError("%s does not fit %s-%d: %s" % (file, found_arch, layers, str(e).splitlines()[0]))
    model.checkpoint_path = file
    reads_noise = outputs_noise(model)
    if reads_noise is not None and reads_noise != model.predicts_noise:
        model.predicts_noise = reads_noise  # e.g. the ADNet authors' real-noise model: see outputs_noise
        model.output_note = "this %s checkpoint outputs the %s, so the clean image is %s" % (
            found_arch, "noise" if reads_noise else "clean image", "input - output" if reads_noise else "the output")
    return model.eval()


def plain_state_dict(model):
    """Unwrapped (no DDP/compile prefix) CPU weights."""
    return {k: v.detach().cpu().clone() for k, v in unwrap(model).state_dict().items()}


# ----------------------------------------------------------------------------- device, AMP, distributed
def npu_available():
    try:
        import torch_npu  # noqa: F401  (registers the 'npu' device)
    except Exception:
        return False
    return hasattr(torch, "npu") and torch.npu.is_available()


def device_index(kind, count, local_rank=0, device_id=None):
    """Which of `count` devices this process takes: --DeviceID / --device_id (or, on NPU, ASCEND_DEVICE_ID)
    when given, else the local rank."""
    if device_id is None:
        return local_rank % count
    if device_id >= count:
        raise UserError("--DeviceID %d: this machine has %d %s device(s)" % (device_id, count, kind))
    return device_id


def ascend_device_id(env=None):
    """ASCEND_DEVICE_ID as the Ascend wrappers export it, or None."""
    value = (os.environ if env is None else env).get("ASCEND_DEVICE_ID", "")
    return int(value) if value.strip().isdigit() else None


def select_device(name="auto", local_rank=0, device_id=None):
    """The torch device to run on; device_id (the legacy --DeviceID) picks the accelerator, else the local rank.

    A one-process NPU run without --DeviceID takes ASCEND_DEVICE_ID, as the Ascend ports' scripts did.
    """
    if name == "auto":
        name = "npu" if npu_available() else "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available")
        torch.cuda.set_device(device_index("CUDA", torch.cuda.device_count(), local_rank, device_id))
        return torch.device("cuda", torch.cuda.current_device())
    if name == "npu":
        if not npu_available():
            raise UserError("--device npu: torch_npu (with Ascend CANN) is not importable or sees no NPU")
        if device_id is None and int(os.environ.get("WORLD_SIZE", "1")) == 1:
            device_id = ascend_device_id()
        torch.npu.set_device(device_index("NPU", torch.npu.device_count(), local_rank, device_id))
        return torch.device("npu", torch.npu.current_device())
    if name != "cpu":
        raise UserError("unknown device %r (auto, cpu, cuda, npu)" % name)
    return torch.device("cpu")


# ----------------------------------------------------------------------------- precision
AMP_CHOICES = ("auto", "none", "bf16", "fp16", "bf16!", "fp16!")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_fast_isa(dtype_name):
    """The CPU feature that runs this dtype at full speed ('AMX', 'AVX512-BF16', 'AMX-FP16'), or None."""
    probes = {"bf16": (("AMX", "_is_amx_tile_supported"), ("AVX512-BF16", "_is_avx512_bf16_supported")),
              "fp16": (("AMX-FP16", "_is_amx_fp16_supported"),)}[dtype_name]
    for isa, probe in probes:
        try:
            if getattr(torch.cpu, probe)():
                return isa
        except AttributeError:
            pass
    return None


def cpu_has_fast_bf16():
    return cpu_fast_isa("bf16") is not None


def apex_amp():
    """NVIDIA/Ascend apex.amp when really installed (PyPI's 'apex' is an unrelated package)."""
    try:
        from apex import amp
    except Exception:
        return None
    return amp if hasattr(amp, "initialize") and hasattr(amp, "scale_loss") else None


def device_caps(device):
    """What the precision policy needs to know of a device, as plain values (tests pass their own).

    fast: {dtype name: why it is fast} for the half types the hardware runs natively.
    """
    if device.type == "cpu":
        fast = {name: cpu_fast_isa(name) for name in _DTYPES}
    elif device.type == "cuda":
        # including_emulation=False: current torch otherwise says yes on a V100 or T4, which emulate bf16 slowly
        fast = {"fp16": "CUDA"}
        if torch.cuda.is_bf16_supported(including_emulation=False):
            fast["bf16"] = "native bf16 on this GPU"
    else:  # npu: fp16 is the Ascend ports' precision; bf16 exists on 910B only, which torch_npu does not tell apart
        fast = {"fp16": "NPU"}
    return {"kind": device.type, "fast": {k: v for k, v in fast.items() if v}, "apex": device.type == "npu"
            and apex_amp() is not None}


class Precision:
    """Autocast dtype (None: fp32), the loss scaler ('torch', 'npu', 'apex' or None) and why, in one place."""

    def __init__(self, dtype, scaler=None, why=""):
        self.dtype, self.scaler, self.why = dtype, scaler, why

    @property
    def name(self):
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def __str__(self):
        kind = self.name if self.dtype is None else self.name + " autocast"
        scaler = {None: "", "torch": " + GradScaler", "npu": " + torch_npu GradScaler", "apex": " + apex amp"}
        return "%s%s (%s)" % (kind, scaler[self.scaler], self.why) if self.why else kind + scaler[self.scaler]


def precision_policy(amp, caps, training=False):
    """The one precision decision of train.py, test.py and demo.py, from --amp and the device's capabilities.

    'auto' takes a half type only where the hardware runs it natively (bf16, else fp16 on GPUs and NPUs);
    an explicit bf16 / fp16 the hardware would emulate (several times slower than fp32) runs fp32 and says so,
    unless forced with a '!' (--amp bf16!). Training in fp16 scales the loss: apex on an NPU that has it (the
    Ascend ports' O2), torch_npu's GradScaler on other NPUs, torch's elsewhere.
    """
    if amp not in AMP_CHOICES + ("fp32",):
        raise UserError("unknown --amp %r (%s)" % (amp, ", ".join(AMP_CHOICES)))
    kind, fast = caps["kind"], caps["fast"]
    hardware = "CPU" if kind == "cpu" else kind.upper() if kind == "npu" else "GPU"
    name, forced = amp.rstrip("!"), amp.endswith("!")
    if name in ("none", "fp32"):
        return Precision(None, None, "--amp %s" % name)
    if name == "auto":
        if "bf16" in fast:
            name, why = "bf16", fast["bf16"]
        elif kind != "cpu":
            name, why = "fp16", "no native bf16 on this %s" % hardware if kind == "cuda" else "the Ascend ports' AMP"
        else:
            return Precision(None, None, "no fast bf16 on this CPU")
    elif name in fast:
        why = fast[name]
    elif forced:
        why = "forced: this %s emulates %s" % (hardware, name)
    else:
        return Precision(None, None, "--amp %s asked, but this %s has no fast %s (emulated, several times slower "
                                     "than fp32): running fp32; --amp %s! forces it" % (name, hardware, name, name))
    scaler = None
    if training and name == "fp16":
        scaler = "apex" if caps.get("apex") else "npu" if kind == "npu" else "torch"
    return Precision(_DTYPES[name], scaler, why)


def precision_for(amp, device, training=False):
    return precision_policy(amp, device_caps(device), training)


def grad_scaler(precision, device, loss_scale=None):
    """The loss scaler the policy chose; a disabled torch one (a pass-through) for fp32, bf16 and apex."""
    kwargs = {"init_scale": loss_scale} if loss_scale else {}
    if precision.scaler == "npu":
        from torch_npu.npu.amp import GradScaler  # catches overflows under Ascend's saturation mode
        return GradScaler(**kwargs)
    return torch.amp.GradScaler(device.type, enabled=precision.scaler == "torch", **kwargs)


def autocast(device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def set_cpu_threads(local_world_size=1, threads=0):
    if threads:
        torch.set_num_threads(threads)
    elif not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local_world_size)))


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keeps_freed_memory(device_type, libc_name, training):
    """Whether this process should tell malloc to keep freed blocks: a training run on the CPU with glibc's
    malloc. glibc maps every block over its mmap threshold (at most 32 MiB) afresh and unmaps it on free, so
    each activation of a training step (a 128x64x50x50 bf16 map is 41 MB) is page-faulted in again at every
    step: on a 2-core Zen 5 that cost a bf16 step 24 % (DnCNN) to 37 % (ADNet) of its time (`bench.py
    --only malloc`). Inference is left alone: test.py on Set68 ran no faster tuned, and demo.py's tiled 12 MP
    photo ran 1.47x faster but peaked at 1.87 GB instead of 0.87 GB, over issue 23's 1.5 GB."""
    return training and device_type == "cpu" and libc_name == "glibc"


def keep_freed_memory(libc=None):
    """Large blocks from the heap, and freed memory kept there for the next step rather than returned to the
    kernel (the process's resident memory stays at its peak; the peak itself does not grow). glibc still
    maps a block from a worker thread's arena when its heap is full. True when malloc took both settings."""
    import ctypes
    try:
        libc = libc or ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))
    except (OSError, AttributeError):
        return False


def setup_host(device, local_world_size=1, threads=0, training=False):
    """The process's host set-up, one for train, test, demo and bench: intra-op threads (`threads`, else the
    cores shared among this machine's processes unless OMP_NUM_THREADS says otherwise) and, for CPU training,
    malloc keeping freed memory. Returns whether malloc was tuned."""
    set_cpu_threads(local_world_size, threads)
    return keeps_freed_memory(device.type, libc_name(), training) and keep_freed_memory()


def libc_name():
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").split()[0]  # "glibc 2.36"
    except (AttributeError, ValueError, OSError, IndexError):
        return ""


def dist_env():
    """(rank, local_rank, world_size) from torchrun's variables, or the ADNet port's RANK_ID."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", os.environ.get("RANK_ID", "0")))
    local = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK_ID", str(rank))))
    return rank, local, world


def init_distributed(device, timeout_s=600):
    """Join the process group torchrun set up; backend follows the device."""
    import torch.distributed as dist
    rank, local, world = dist_env()
    if world <= 1:
        return rank, local, world
    backend = {"cuda": "nccl", "npu": "hccl"}.get(device.type, "gloo")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29500")
    dist.init_process_group(backend, rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
    return rank, local, world


# ----------------------------------------------------------------------------- inference
def inference_model(model, device, fold=True, channels_last=True):
    """Eval copy for inference: BN folded into the convs, channels_last, on the device."""
    net = fold_batchnorm(model) if fold else model.eval()
    net = net.to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


BACKENDS = ("auto", "torch", "onnxruntime")


def onnxruntime_available():
    import importlib.util
    return importlib.util.find_spec("onnxruntime") is not None


def choose_backend(choice, device_type, dtype, ort_installed):
    """(backend, why). auto: ONNX Runtime for fp32 on a CPU when it is installed (faster than eager torch
    there, see the README's measurements), torch otherwise: half precision, CUDA, NPU."""
    if choice == "torch":
        return "torch", "--backend torch"
    runnable = device_type == "cpu" and dtype is None
    if choice == "onnxruntime":
        if not ort_installed:
            raise UserError("--backend onnxruntime: the onnxruntime package is not installed (pip install onnxruntime)")
        if not runnable:
            raise UserError("--backend onnxruntime runs fp32 on the CPU here: use --device cpu and --amp none, "
                            "or --backend torch")
        return "onnxruntime", "--backend onnxruntime"
    if not runnable:
        return "torch", "%s on %s" % ("half precision" if dtype is not None else "fp32", device_type)
    if not ort_installed:
        return "torch", "onnxruntime is not installed"
    return "onnxruntime", "fp32 on a CPU: ONNX Runtime runs these CNNs faster than eager torch"


# --compile auto: compiling the training step took 14-54 s on the CPUs here (README, Performance), twice per
# run (the full batch, then an epoch's shorter last batch); where it pays it saves 1-8 % per step, so it needs
# runs of about a thousand steps to repay itself
COMPILE_MIN_STEPS = 1000


def compile_choice(value):
    """--compile: auto, or a yes/no."""
    return "auto" if str(value).lower() == "auto" else str2bool(value)


def compiler_ready(device_type):
    """(ready, why): whether torch.compile's default backend can build code for this device here."""
    if device_type == "cpu":
        import shutil
        cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
        return (True, "inductor with %s" % cxx) if cxx else (False, "no C++ compiler for inductor's CPU code")
    if device_type == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:
            return False, "this torch cannot tell whether Triton is installed"
        return (True, "inductor with Triton") if has_triton() else (False, "Triton is not installed")
    return False, "torch.compile's inductor does not build for %s devices" % device_type


def compile_policy(choice, device_type, steps_left, ready, apex=False, min_steps=COMPILE_MIN_STEPS):
    """(decision, why) for the training step: "on", "off", or "measure" (time eager and compiled steps at the
    start and keep the faster: what compiling gains differs from one machine and precision to the next).
    choice: True/False as asked, or "auto": "measure" when the device's compiler is ready, apex is not
    patching the model and at least min_steps steps are left to repay the compile time, "off" otherwise.
    ready: compiler_ready(device_type)."""
    if choice != "auto":
        return ("on" if choice else "off"), "--compile %s" % bool(choice)
    ok, why = ready
    if not ok:
        return "off", why
    if apex:
        return "off", "apex O2 patches the model's forward, which torch.compile does not trace"
    if steps_left < min_steps:
        return "off", "%d steps left: compiling repays itself after about %d" % (steps_left, min_steps)
    return "measure", "%d steps left, %s" % (steps_left, why)


def device_sync(device):
    """Wait for the device's queued work (timing only: the training step never calls it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "npu":
        torch.npu.synchronize(device)


def export_onnx(model, out_path, opset=17, sample_size=64):
    """The network itself, BN folded, fp32, dynamic batch/height/width; written atomically."""
    import warnings
    net = fold_batchnorm(model).float().eval().cpu()
    sample = torch.rand(1, net.channels, sample_size, sample_size)
    tmp = _temp_path(out_path)
    with warnings.catch_warnings():  # the TorchScript exporter handles dynamic H/W of these plain CNNs best
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (sample,), tmp, input_names=["input"], output_names=["output"], opset_version=opset,
                          dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                                        "output": {0: "batch", 2: "height", 3: "width"}},
                          dynamo=False)
    os.replace(tmp, out_path)
    return out_path


def onnx_cache_dir():
    return os.environ.get("DENOISE_ONNX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "dncnn-adnet-onnx")


def cached_onnx(model):
    """The ONNX file of a model, exported once per weights (cached under a digest of them and the exporter)."""
    import hashlib
    digest = hashlib.sha256(("%s %s %s" % (type(model).__name__, torch.__version__, model.predicts_noise)).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    folder = onnx_cache_dir()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, digest.hexdigest()[:24] + ".onnx")
    if not os.path.isfile(path):
        export_onnx(model, path)
    return path


class OnnxRuntimeNet(torch.nn.Module):
    """An ONNX Runtime session with the face denoise_image expects of a network: forward(x) gives what the
    torch model gives; the torch model stays inside (never run) for its channels and receptive radius."""

    # ONNX Runtime (its memory arena on) holds more per tile than torch: a 12 MP colour photo in auto tiles
    # sized for torch's two maps peaked at 1,445 MiB RSS against torch's 870; counted as five, 1,159 MiB at
    # the same speed (without the arena 40 % less memory but 9 % slower: README, demo.py)
    live_feature_maps = 5

    def __init__(self, model, threads=None):
        import onnxruntime as ort
        super().__init__()
        self.model = model.eval()
        self.channels, self.predicts_noise = model.channels, model.predicts_noise
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(cached_onnx(model), options, providers=["CPUExecutionProvider"])

    def forward(self, x):
        out = self.session.run(None, {"input": x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out)


def inference_net(model, device, backend="auto", dtype=None, fold=True):
    """(net, why): the model ready for denoise_image on the backend choose_backend picks."""
    chosen, why = choose_backend(backend, device.type, dtype, onnxruntime_available())
    if chosen == "onnxruntime":
        return OnnxRuntimeNet(model), "backend: onnxruntime (%s)" % why
    return inference_model(model, device, fold=fold), "backend: torch (%s)" % why


def dihedral(x, mode):
    """One of the eight flips/rotations of the last two axes (KAIR's augment_img modes, in another order)."""
    x = torch.rot90(x, mode % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if mode >= 4 else x


def undo_dihedral(x, mode):
    if mode >= 4:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, -(mode % 4), dims=(-2, -1))


@torch.inference_mode()
def denoise_image(net, noisy, device, amp=None, tile=0, channels_last=True, x8=False, on_tile=None):
    """Clean estimate for an (N, C, H, W) CPU tensor, whole or in overlapping tiles.

    tile: 0 whole, N tiles of at most N pixels a side (the image split evenly), AUTO_TILE (-1) as memory
    allows (see auto_tile, tile_budget). Tiles overlap by the network's receptive radius, so tiled and whole
    outputs agree. Out of memory, the image is done again in tiles half the size (see retry_smaller_tiles).
    x8: KAIR's self-ensemble, the mean of the outputs for the eight flips/rotations of the input.
    on_tile(pixels): called after each tile (each pass, with x8) with the output pixels it finished.
    """
    h, w = noisy.shape[-2:]
    if tile is None or tile < 0:
        tile = auto_tile(h, w, noisy.shape[1], tile_budget(device), precision_bytes(amp), receptive_radius(net),
                         live_maps=getattr(net, "live_feature_maps", LIVE_FEATURE_MAPS),
                         batch=noisy.shape[0])
    return retry_smaller_tiles(lambda t: _denoise(net, noisy, device, amp, t, channels_last, x8, on_tile),
                               tile, (h, w), device)


def _denoise(net, noisy, device, amp, tile, channels_last, x8, on_tile):
    if x8:
        outs = [undo_dihedral(_denoise(net, dihedral(noisy, m).contiguous(), device, amp, tile, channels_last, False,
                                       on_tile), m) for m in range(8)]
        return torch.stack(outs).mean(0)

    def run(x):
        x = x.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            y = denoise(net, x)
        return y.float().cpu()

    h, w = noisy.shape[-2:]
    if not tile or (h <= tile and w <= tile):
        out = run(noisy)
        if on_tile:
            on_tile(h * w)
        return out
    pad = receptive_radius(net)
    out = torch.empty_like(noisy)
    for y0, y1 in tile_spans(h, tile):
        for x0, x1 in tile_spans(w, tile):
            ya, xa = max(0, y0 - pad), max(0, x0 - pad)
            yb, xb = min(h, y1 + pad), min(w, x1 + pad)
            piece = run(noisy[..., ya:yb, xa:xb])
            out[..., y0:y1, x0:x1] = piece[..., y0 - ya:y1 - ya, x0 - xa:x1 - xa]
            if on_tile:
                on_tile((y1 - y0) * (x1 - x0))
    return out


def tile_spans(length, tile):
    """[(start, end)] splitting `length` pixels evenly into the fewest spans of at most `tile` pixels (no thin
    last tile: its overlap would cost as much as a full one)."""
    count = -(-length // tile)
    size = -(-length // count)
    return [(s, min(s + size, length)) for s in range(0, length, size)]


# Bounded memory: the tile size is chosen from the memory there is.
AUTO_TILE = -1
CPU_WORKING_SET = 512 * 2 ** 20  # the CPU ceiling: a 48 MP photo denoises in about this much beside the image
MIN_TILE = 16
LIVE_FEATURE_MAPS = 2  # measured (peak RSS of DnCNN / ADNet inference, fp32 and bf16): a conv's input and output


def precision_bytes(amp):
    return 4 if amp is None else torch.finfo(amp).bits // 8


def auto_tile(height, width, channels, bytes_available, precision_bytes=4, radius=17, batch=1,
              features=FEATURES, live_maps=LIVE_FEATURE_MAPS):
    """The largest tile side whose working set fits in bytes_available; 0 (the whole image) when it all fits.

    Working set per pixel of a (padded) tile: live_maps maps of `features` channels in the inference
    precision, and four fp32 copies of the image's channels (input, device copy, output, the tile's piece),
    times the batch. Never under MIN_TILE.
    """
    per_pixel = batch * (live_maps * features * precision_bytes + 4 * channels * 4)
    if height * width * per_pixel <= bytes_available:
        return 0
    side = math.isqrt(max(0, int(bytes_available) // per_pixel)) - 2 * radius
    return max(MIN_TILE, side)


def memory_available(device):
    """Bytes free for this process: the accelerator's free memory, or on CPU the RAM available (psutil if
    installed, else /proc/meminfo's MemAvailable); None when it cannot be told."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "npu":
        return torch.npu.mem_get_info(device)[0]
    try:
        import psutil
        return psutil.virtual_memory().available
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def tile_budget(device, available=None):
    """Bytes the tiles' working set may take: on CPU half the RAM available, at most CPU_WORKING_SET (so a
    large photo stays light beside other work); on CUDA/NPU 80 % of the device's free memory."""
    available = memory_available(device) if available is None else available
    if device.type == "cpu":
        return CPU_WORKING_SET if available is None else min(CPU_WORKING_SET, available // 2)
    return int(0.8 * available)


def is_out_of_memory(error):
    """CUDA's / NPU's / the CPU allocator's out-of-memory error."""
    if isinstance(error, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def release_memory(device):
    import gc
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "npu":
        torch.npu.empty_cache()


def retry_smaller_tiles(run, tile, size, device):
    """run(tile); out of memory, release what the failed attempt held and run again in tiles half the size
    (the whole image counting as one tile of its longer side), down to MIN_TILE."""
    while True:
        try:
            return run(tile)
        except Exception as e:  # noqa: BLE001 -- only out-of-memory is handled, the rest re-raised
            if not is_out_of_memory(e):
                raise
        # out of the except block: the failed attempt's frames and tensors are gone
        release_memory(device)
        longest = max(size)
        smaller = (min(tile, longest) if tile else longest) // 2
        if smaller < MIN_TILE:
            raise UserError("out of memory on %s even in %d-pixel tiles" % (device, min(tile, longest) if tile else longest))
        warn("out of memory on %s with %s: retrying in %d-pixel tiles"
             % (device, "%d-pixel tiles" % tile if tile else "the whole image", smaller))
        tile = smaller


GRAY_ON_COLOUR = ("channels", "luma")


def denoise_any(net, noisy, device, amp=None, tile=0, x8=False, gray_on_colour="channels", on_progress=None):
    """Denoise a (C, H, W) float image whatever its channels and the model's.

    Same channels: as they are. Colour model, gray image: the gray repeated into three channels, the
    output averaged back to gray. Gray model, colour image, gray_on_colour: "channels" denoises each of B,
    G and R as a gray image; "luma" denoises its luma (YCrCb's Y) and keeps the chroma (see README for
    which does better). on_progress(fraction): the fraction of this image's work just done.
    """
    import cv2
    want, have = unwrap(net).channels, noisy.shape[0]
    h, w = noisy.shape[-2:]
    if gray_on_colour not in GRAY_ON_COLOUR:
        raise UserError("gray_on_colour must be one of %s, not %r" % (", ".join(GRAY_ON_COLOUR), gray_on_colour))
    passes = 3 if (want, have, gray_on_colour) == (1, 3, "channels") else 1
    on_tile = None if on_progress is None else (lambda px: on_progress(px / (h * w * passes * (8 if x8 else 1))))
    run = lambda x: denoise_image(net, torch.from_numpy(np.ascontiguousarray(x))[None], device, amp, tile,  # noqa: E731
                                  x8=x8, on_tile=on_tile)[0].numpy()
    if want == have:
        return run(noisy)
    if want == 3:
        return run(np.repeat(noisy, 3, axis=0)).mean(0, keepdims=True)
    if gray_on_colour == "channels":
        out = np.empty(noisy.shape, np.float32)
        for c in range(3):
            out[c] = run(noisy[c:c + 1])[0]
        return out
    ycrcb = cv2.cvtColor(np.ascontiguousarray(to_hwc(noisy)), cv2.COLOR_BGR2YCrCb)
    ycrcb[:, :, 0] = run(ycrcb[None, :, :, 0])[0]
    return np.transpose(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR), (2, 0, 1))


def device_list(value):
    """--DeviceID: one device number, or a comma-separated list of them (the 8p launches)."""
    ids = value.split(",")
    if not all(i.strip().isdigit() for i in ids):
        raise argparse.ArgumentTypeError("expected a device number or a list like 0,1,2,3, got %r" % value)
    return ",".join(i.strip() for i in ids)


def add_legacy_flags(parser):
    """The Ascend ports' launch flags, accepted by every script (one set, shared).

    --DeviceID picks the CUDA/NPU device of a one-process run (the 8p launches: the list of devices); on CPU
    it means nothing and is ignored. --num_gpus / --gpu_use_num and --local_rank matter to train.py only
    (see its relaunch_legacy); --is_distributed is implied by them and accepted for the command lines.
    """
    g = parser.add_argument_group("Ascend ports' launch flags (accepted; see README)")
    g.add_argument("--is_distributed", type=int, default=0, help="accepted; distribution follows --num_gpus")
    g.add_argument("--DeviceID", "--device-list", "--device_list", "--device_id", dest="device_list", type=device_list, default=None,
                   help="device id (8p: 0,1,...,7) on CUDA/NPU; ignored on CPU")
    g.add_argument("--num_gpus", "--gpu_use_num", "--world_size", "--worldsize", dest="num_gpus", type=int,
                   default=None, help="train.py: processes to train with")
    g.add_argument("--local_rank", type=int, default=None, help="train.py: this process's rank (ADNet's launch)")


def legacy_device_id(args):
    """The device a one-process run was pointed at with --DeviceID (the first of a list), or None."""
    return int(args.device_list.split(",")[0]) if getattr(args, "device_list", None) else None


def add_common_inference_flags(parser):
    parser.add_argument("--arch", choices=ARCHS, default=None, help="force the architecture (default: from the checkpoint)")
    parser.add_argument("--num_of_layers", type=non_negative(int), default=None,
                        help="check the DnCNN depth (read from the checkpoint)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "npu"))
    parser.add_argument("--amp", default="none", choices=AMP_CHOICES,
                        help="inference precision; bf16 is ~0.02 dB below fp32 and several times faster on AMX or "
                             "AVX512-BF16 CPUs; where the hardware would emulate it, fp32 runs unless forced (bf16!)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="auto: ONNX Runtime for fp32 on a CPU when installed (exported once per weights, cached in "
                             "$DENOISE_ONNX_CACHE or ~/.cache/dncnn-adnet-onnx), else torch")
    parser.add_argument("--tile", type=tile_size, default=AUTO_TILE, metavar="auto|N",
                        help="auto (default): tiles as memory allows (on CPU a working set of at most %d MiB, on "
                             "CUDA/NPU the device's free memory; halved when out of memory); N: tiles of at most N "
                             "pixels; 0: whole images. Tiles overlap, so the output is the whole image's"
                             % (CPU_WORKING_SET // 2 ** 20))
    parser.add_argument("--x8", action="store_true",
                        help="self-ensemble: average the outputs for the 8 flips/rotations (8x slower, a little better)")
    parser.add_argument("--no_fold", action="store_true", help="keep batch-norm layers separate")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def tile_size(value):
    """--tile: 'auto' (or -1), or a size >= 0 (0: whole images)."""
    if value.strip().lower() in ("auto", "-1"):
        return AUTO_TILE
    try:
        size = int(value)
    except ValueError:
        size = -2
    if size < 0:
        raise argparse.ArgumentTypeError("expected auto or a number of pixels >= 0, got %r" % value)
    return size


def evaluate_iter(net, images, sigma, device, amp=None, seed=0, tile=0, with_ssim=False, quiet=True, copies=1,
                  x8=False, total=None):
    """Denoise each (path, clean CxHxW) of an iterable under the test noise protocol, yielding one row at a
    time (so a stream of images is never all in memory).

    copies: that many copies of the image in one batch, the noise drawn once for the whole batch after the
    seed, scores averaged over the copies (the ADNet authors' colour protocol uses 3, seed 12).
    sigma 0: the images are already noisy (real noise); no PSNR or SSIM.
    Rows: name, path, psnr, (ssim), noisy and denoised (C, H, W) arrays of the first copy.
    """
    for path, clean in progress(images, quiet=quiet, desc="test", unit="img", total=total):
        batch = torch.from_numpy(clean)[None].repeat(copies, 1, 1, 1)
        noisy = add_test_noise(batch, sigma, seed) if sigma > 0 else batch
        est = denoise_image(net, noisy, device, amp=amp, tile=tile, x8=x8).clamp(0.0, 1.0).numpy()
        row = {"name": os.path.basename(path), "path": path, "psnr": None, "noisy": noisy[0].numpy(), "denoised": est[0]}
        if sigma > 0:
            row["psnr"] = float(np.mean([psnr(clean, e) for e in est]))
            if with_ssim:
                row["ssim"] = float(np.mean([ssim(clean, e) for e in est]))
        yield row


def evaluate(net, images, sigma, device, amp=None, seed=0, tile=0, with_ssim=False, quiet=True, copies=1, x8=False):
    """evaluate_iter's rows as a list (train.py's validation: a few small images)."""
    return list(evaluate_iter(net, images, sigma, device, amp=amp, seed=seed, tile=tile, with_ssim=with_ssim,
                              quiet=quiet, copies=copies, x8=x8))
