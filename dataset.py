"""Patch extraction into h5 (preprocess.py) and in-memory patch batches with on-the-fly noise (train.py).

train.h5 holds ONE uint8 dataset ``data`` of shape (N, C, P, P) (C = 1 gray, 3 colour in BGR order, as the
ADNet authors' color/dataset.py) plus the parameters that made it as attributes. Pixel values are k/255 (the references store them as float32, one h5 dataset per
patch), so uint8 is lossless and the file 4x smaller.
"""
import hashlib
import json
import os
import socket
import time

import h5py
import numpy as np

from images import list_images, read_image
from utils import UserError, atomic_write_bytes, progress

SCALES = (1, 0.9, 0.8, 0.7)
# (arch, mode) -> (patch_size, stride, aug_times), as the reference preprocessing scripts.
PATCH_DEFAULTS = {
    ("DnCNN", "S"): (40, 10, 1),
    ("DnCNN", "B"): (50, 10, 2),
    ("ADNet", "S"): (50, 40, 1),
    ("ADNet", "B"): (50, 10, 2),
    ("FDnCNN", "S"): (40, 10, 1),
    ("FDnCNN", "B"): (50, 10, 2),
}
FORMAT_VERSION = 1
# train.py --task: what the network learns to undo. dncnn3: the DnCNN-3 recipe (Gaussian noise, bicubic
# super-resolution and JPEG), its patches stored as clean/degraded pairs (build_pairs)
TASKS = ("denoise", "dncnn3")
DNCNN3_PATCH = (50, 10, 1)  # the paper's 50x50 patches; no flipped copies: the pairs already triple the set
SR_JPEG_FOLDER, SR_JPEG_STRIDE = "CBSD432", 20  # about as many SR/JPEG pairs as Gaussian patches of BSD400
SR_SCALES, JPEG_QUALITIES = (2, 3, 4), (5, 99)
KIND_NOISE, KIND_SR, KIND_JPEG = 0, 1, 2
KINDS = {KIND_NOISE: "gaussian", KIND_SR: "sr", KIND_JPEG: "jpeg"}


def image_to_patches(img, win, stride):
    """(n, C, win, win) patches of a CxHxW image, in the references' Im2Patch order (row-major)."""
    windows = np.lib.stride_tricks.sliding_window_view(img, (img.shape[0], win, win))[0, ::stride, ::stride]
    return windows.reshape(-1, img.shape[0], win, win)


def data_augmentation(image, mode):
    """SaoYan's data_augmentation on a (C, H, W) array: modes 0-7 of flips and rotations."""
    out = np.transpose(image, (1, 2, 0))
    if mode in (2, 3):
        out = np.rot90(out)
    elif mode in (4, 5):
        out = np.rot90(out, k=2)
    elif mode in (6, 7):
        out = np.rot90(out, k=3)
    if mode in (1, 3, 5, 7):
        out = np.flipud(out)
    return np.transpose(out, (2, 0, 1))


def read_u8(path, channels=1):
    """uint8 image, HxW (gray: first channel of gray files, as the references) or HxWx3 (BGR), or None."""
    img = read_image(path, channels)
    if img is None:
        return None
    img = np.rint(img * 255.0).astype(np.uint8)
    return img[0] if channels == 1 else np.ascontiguousarray(np.transpose(img, (1, 2, 0)))


def with_augmented_copies(patches, aug_times, rng):
    """(N, C, h, w) patches, each followed by aug_times - 1 copies under a random flip/rotation (a pair's clean and
    degraded channels alike)."""
    if aug_times <= 1:
        return patches
    copies = [patches]
    for _ in range(aug_times - 1):
        modes = rng.randint(1, 8, size=len(patches))
        copies.append(np.stack([data_augmentation(p, m) for p, m in zip(patches, modes)]))
    return np.stack(copies, 1).reshape(-1, *patches.shape[1:])


def image_patches(img_u8, patch_size, stride, aug_times, rng):
    """All (n, C, P, P) patches of one image at every scale, augmented copies interleaved as the references."""
    import cv2
    h, w = img_u8.shape[:2]
    gray = img_u8.ndim == 2
    bgr = np.repeat(img_u8[:, :, None], 3, axis=2) if gray else img_u8
    out = []
    for scale in SCALES:
        # The references pass (int(h*s), int(w*s)) as cv2's (width, height), and resize the 3-channel
        # image (OpenCV's 1- and 3-channel cubic kernels round a few pixels differently): both kept
        # so that the patches are bit-identical. Gray takes the first channel, colour all three (CHW).
        scaled = cv2.resize(bgr, (int(h * scale), int(w * scale)), interpolation=cv2.INTER_CUBIC)
        chw = scaled[None, :, :, 0] if gray else np.transpose(scaled, (2, 0, 1))
        if min(chw.shape[1:]) < patch_size:
            continue
        out.append(with_augmented_copies(image_to_patches(chw, patch_size, stride), aug_times, rng))
    return out


TRAIN_FOLDERS = {1: "train", 3: "pristine_images_color"}  # SaoYan's gray set; the ADNet authors' colour set
VAL_FOLDERS = {1: "Set12", 3: "CBSD68"}
ADNET_TRAIN_FOLDER = "pristine_images_gray"  # the Ascend ADNet port's data/ holds this, BSD68 and demo_img
VAL_FALLBACKS = ("BSD68", "Set68")  # the ADNet port validated on BSD68


def adnet_layout(data_path):
    """The Ascend ADNet port's data folder: pristine_images_gray/ and no SaoYan train/."""
    return (os.path.isdir(os.path.join(data_path, ADNET_TRAIN_FOLDER))
            and not os.path.isdir(os.path.join(data_path, TRAIN_FOLDERS[1])))


def default_arch(data_path):
    """ADNet for the ADNet port's data layout (its preprocess and training were ADNet's), else DnCNN."""
    return "ADNet" if adnet_layout(data_path) else "DnCNN"


def default_folders(data_path, channels=1):
    """(training, validation) folder names under data_path: TRAIN_FOLDERS / VAL_FOLDERS of the channel count;
    gray in the ADNet port's layout, pristine_images_gray; gray without Set12, BSD68 (or Set68)."""
    train, val = TRAIN_FOLDERS[channels], VAL_FOLDERS[channels]
    if channels == 1 and adnet_layout(data_path):
        train = ADNET_TRAIN_FOLDER
    if channels == 1 and not os.path.isdir(os.path.join(data_path, val)):
        val = next((v for v in VAL_FALLBACKS if os.path.isdir(os.path.join(data_path, v))), val)
    return train, val


def folder_fingerprint(*folders):
    """Digest of the image files' names, sizes and mtimes: one stat per file (no decoding), and it changes when a
    file is added, removed or rewritten. A missing folder counts as empty (prepare_data reports it)."""
    digest = hashlib.sha256()
    for folder in folders:
        digest.update(b"\0folder\0")
        for f in list_images(folder) if os.path.isdir(folder) else []:
            st = os.stat(f)
            digest.update(("%s\0%d\0%d\n" % (os.path.basename(f), st.st_size, st.st_mtime_ns)).encode())
    return digest.hexdigest()[:16]


def patch_spec(data_path, arch="DnCNN", mode="S", patch_size=None, stride=None, aug_times=None, channels=1,
               train_data=None, val_data=None, seed=0, task="denoise", sr_jpeg_data=None, sr_jpeg_stride=None):
    """Everything that defines train.h5 / val.h5, defaults resolved: what train.py checks an h5 against and what
    the patch cache is keyed by (patch_key). task dncnn3 adds the folder and stride of the SR/JPEG pairs."""
    default_train, default_val = default_folders(data_path, channels)
    d_patch, d_stride, d_aug = DNCNN3_PATCH if task == "dncnn3" else PATCH_DEFAULTS[(arch, mode)]
    aug_times = aug_times or d_aug
    train_dir = os.path.realpath(os.path.join(data_path, train_data or default_train))
    val_dir = os.path.realpath(os.path.join(data_path, val_data or default_val))
    spec = dict(format_version=FORMAT_VERSION, arch=arch, mode=mode, patch_size=patch_size or d_patch,
                stride=stride or d_stride, aug_times=aug_times, channels=channels,
                seed=seed if aug_times > 1 or task == "dncnn3" else 0,  # augmentation modes, JPEG qualities
                train_data=train_dir, val_data=val_dir, fingerprint=folder_fingerprint(train_dir, val_dir))
    if task == "dncnn3":  # only then: the keys of every other spec stay as they were
        pairs_dir = os.path.realpath(os.path.join(data_path, sr_jpeg_data or SR_JPEG_FOLDER))
        spec.update(task=task, sr_jpeg_data=pairs_dir, sr_jpeg_stride=sr_jpeg_stride or SR_JPEG_STRIDE,
                    fingerprint=folder_fingerprint(train_dir, val_dir, pairs_dir))
    return spec


def patch_key(spec):
    """Short stable digest of a patch_spec: equal keys, equal h5 content."""
    text = json.dumps({k: v for k, v in spec.items() if k != "key"}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare_data(data_path, outf=".", arch="DnCNN", mode="S", patch_size=None, stride=None, aug_times=None,
                 train_data=None, val_data=None, seed=0, quiet=False, channels=1, task="denoise", sr_jpeg_data=None,
                 sr_jpeg_stride=None):
    """Write train.h5 and val.h5 into outf (atomically). Returns the number of training patches.

    train_data / val_data default to default_folders(data_path, channels).
    """
    spec = patch_spec(data_path, arch, mode, patch_size, stride, aug_times, channels, train_data, val_data, seed,
                      task, sr_jpeg_data, sr_jpeg_stride)
    return build_patches(spec, outf, quiet)


def build_patches(spec, outf, quiet=False):
    """Write the train.h5 and val.h5 of a patch_spec into outf, val.h5 first: a train.h5 carrying the spec's key
    means both are complete (ensure_patches waits for it). Returns the number of training patches."""
    train_dir, val_dir, channels = spec["train_data"], spec["val_data"], spec["channels"]
    patch_size, stride, aug_times = spec["patch_size"], spec["stride"], spec["aug_times"]
    files = list_images(train_dir)
    if not files:
        raise UserError("no training image in %s" % train_dir)
    if spec.get("task") == "dncnn3" and channels != 1:
        raise UserError("--task dncnn3 trains a gray network (the Y channel): --channels 1")
    rng = np.random.RandomState(spec["seed"])
    chunks = []
    for f in progress(files, quiet=quiet, desc="patches", unit="img"):
        img = read_u8(f, channels)
        if img is None:
            continue
        pieces = image_patches(img, patch_size, stride, aug_times, rng)
        if not pieces:
            print("warning: %s is smaller than a %d-pixel patch: skipped" % (f, patch_size))
        chunks.extend(pieces)
    if not chunks:
        raise UserError("no usable training image in %s" % train_dir)
    data = np.concatenate(chunks)
    datasets = {"data": data}
    if spec.get("task") == "dncnn3":
        datasets = dncnn3_datasets(data, spec, rng, quiet)
    val = [read_u8(f, channels) for f in list_images(val_dir)]
    val = [v for v in val if v is not None]
    if not val:
        raise UserError("no usable validation image in %s" % val_dir)
    key = patch_key(spec)
    os.makedirs(outf, exist_ok=True)
    _write_h5(os.path.join(outf, "val.h5"),
              {str(i): img[None] if channels == 1 else np.transpose(img, (2, 0, 1)) for i, img in enumerate(val)},
              {"format_version": FORMAT_VERSION, "channels": channels, "key": key})
    _write_h5(os.path.join(outf, "train.h5"), datasets, dict(spec, key=key, scales=np.asarray(SCALES)))
    print("training set: %d patches of %dx%dx%d (%s mode %s) from %s, %d validation images from %s"
          % (len(data), channels, patch_size, patch_size, spec["arch"], spec["mode"], train_dir, len(val), val_dir))
    if "kind" in datasets:
        counts = np.bincount(datasets["kind"], minlength=len(KINDS))
        print("dncnn3: %s; SR and JPEG pairs from %s (Y)" % (", ".join(
            "%d %s" % (counts[k], name) for k, name in KINDS.items()), spec["sr_jpeg_data"]))
    return len(datasets["data"])


def read_y_u8(path):
    """H x W uint8: a gray file as stored, a colour one as the Y of MATLAB's rgb2ycbcr (the DnCNN authors' SR and
    JPEG training and test images), or None when unreadable."""
    from degrade import rgb2ycbcr
    from images import read_uint8
    img = read_uint8(path, "the SR and JPEG pairs are made from 8-bit images")
    if img is None or img.ndim == 2:
        return img
    return rgb2ycbcr(img)[:, :, 0]


def degrade_pair_image(img_u8, kind, param):
    """(clean, degraded) H' x W' uint8 of one whole image: SR, bicubic down and up by scale `param` (modcrop
    first, rounded to 8 bits as MATLAB's imresize of a uint8 image: the authors' gray protocol); JPEG at quality
    `param` through libjpeg."""
    from degrade import bicubic_down_up, jpeg_roundtrip, modcrop
    if kind == KIND_SR:
        clean = np.ascontiguousarray(modcrop(img_u8, param))
        return clean, np.rint(bicubic_down_up(clean, param, eight_bit_up=True) * 255.0).astype(np.uint8)
    return img_u8, jpeg_roundtrip(img_u8, param)


def build_pairs(files, patch_size, stride, aug_times, rng, quiet=False):
    """DnCNN-3's SR and JPEG pairs: each image at every scale of SCALES (MATLAB's bicubic imresize) degraded whole,
    by SR or JPEG (even odds; SR scale 2, 3 or 4, JPEG quality uniform in 5-99), then cut into patches at the same
    places. Returns (clean, degraded) (n, 1, P, P) uint8 and kind, param (n,) uint8."""
    from degrade import matlab_imresize
    clean_parts, degraded_parts, kinds, params = [], [], [], []
    for f in progress(files, quiet=quiet, desc="SR/JPEG pairs", unit="img"):
        img = read_y_u8(f)
        if img is None:
            continue
        for scale in SCALES:
            scaled = img if scale == 1 else matlab_imresize(img, scale)
            kind = KIND_SR if rng.randint(2) == 0 else KIND_JPEG
            param = SR_SCALES[rng.randint(len(SR_SCALES))] if kind == KIND_SR else rng.randint(
                JPEG_QUALITIES[0], JPEG_QUALITIES[1] + 1)
            clean, degraded = degrade_pair_image(scaled, kind, param)
            if min(clean.shape) < patch_size:
                continue
            both = with_augmented_copies(image_to_patches(np.stack([clean, degraded]), patch_size, stride),
                                         aug_times, rng)
            clean_parts.append(both[:, :1])
            degraded_parts.append(both[:, 1:])
            kinds.append(np.full(len(both), kind, np.uint8))
            params.append(np.full(len(both), param, np.uint8))
    if not clean_parts:
        raise UserError("no image of %d pixels or more for the SR/JPEG pairs" % patch_size)
    return (np.concatenate(clean_parts), np.concatenate(degraded_parts), np.concatenate(kinds),
            np.concatenate(params))


def dncnn3_datasets(noise_patches, spec, rng, quiet=False):
    """train.h5's datasets for --task dncnn3: data (clean) and degraded (N, 1, P, P), kind and param (N,): the
    Gaussian patches first (degraded = clean: the noise is drawn per step), then the SR/JPEG pairs."""
    files = list_images(spec["sr_jpeg_data"]) if os.path.isdir(spec["sr_jpeg_data"]) else []
    if not files:
        raise UserError("no image in %s for the SR/JPEG pairs of --task dncnn3: get CBSD432 (data/get_data.sh "
                        "--color) or name a folder with --sr_jpeg_data" % spec["sr_jpeg_data"])
    clean, degraded, kind, param = build_pairs(files, spec["patch_size"], spec["sr_jpeg_stride"], spec["aug_times"],
                                               rng, quiet)
    n = len(noise_patches)
    return {"data": np.concatenate([noise_patches, clean]), "degraded": np.concatenate([noise_patches, degraded]),
            "kind": np.concatenate([np.full(n, KIND_NOISE, np.uint8), kind]),
            "param": np.concatenate([np.zeros(n, np.uint8), param])}


def open_h5(path, mode="r"):
    """h5py.File without HDF5's file locks: they fail on NFS/Lustre-like mounts ("unable to lock file"),
    and are not needed here (files are written under a temporary name, then renamed)."""
    return h5py.File(path, mode, locking=False)


def _write_h5(path, datasets, attrs):
    tmp = "%s.tmp.%s.%d" % (path, socket.gethostname(), os.getpid())  # one per writer: nodes may share the folder
    with open_h5(tmp, "w") as h5f:
        for name, array in datasets.items():
            h5f.create_dataset(name, data=array)
        h5f.attrs.update(attrs)
    os.replace(tmp, path)  # a crash mid-write leaves only the .tmp, never a valid-looking .h5


CHECKED = ("arch", "mode", "patch_size", "stride", "aug_times", "channels", "sr_jpeg_stride")
FOLDER_CHECKED = ("train_data", "val_data", "sr_jpeg_data", "fingerprint")  # only when the run names its data
FLAGS = {"train_data": "--data_path / --train_data", "val_data": "--data_path / --val_data",
         "sr_jpeg_data": "--data_path / --sr_jpeg_data"}
REBUILD = "rebuild it (train.py --preprocess True, or preprocess.py)"


def _plain(value):
    """An h5 attribute as a Python value (h5py gives numpy scalars, and bytes from some writers)."""
    value = value.decode() if isinstance(value, bytes) else value
    return value.item() if isinstance(value, np.generic) else value


def check_patches(attrs, spec, path, strict_folder=False):
    """Refuse a train.h5 that is not what this run asks for, rather than train silently on other patches.

    The patch parameters always; the data folders and their fingerprint only with strict_folder (the run named its
    data). An attribute an older file lacks is not checked, but the task always is (older files: denoise)."""
    made_for, wanted = _plain(attrs.get("task", "denoise")), spec.get("task", "denoise")
    if made_for != wanted:
        raise UserError("%s holds the patches of --task %s but this run has --task %s: %s"
                        % (path, made_for, wanted, REBUILD))
    for key in CHECKED + (FOLDER_CHECKED if strict_folder else ()):
        if key not in attrs or key not in spec or _plain(attrs[key]) == spec[key]:
            continue
        have = _plain(attrs[key])
        if key == "fingerprint":
            raise UserError("%s was made from other contents of %s and %s (images added, removed or changed since): %s"
                            % (path, spec["train_data"], spec["val_data"], REBUILD))
        fix = "name that folder with " + FLAGS[key] if key in FLAGS else "pass --%s %s" % (key, have)
        raise UserError("%s was made with %s=%s but this run has %s=%s: %s, or %s"
                        % (path, key, have, key, spec[key], fix, REBUILD))


def load_train_patches(h5_dir, spec=None, strict_folder=False):
    """The uint8 patch array of train.h5 as a tensor and its attributes, after check_patches against spec; a
    dncnn3 train.h5 gives (N, 2, P, P): each clean patch, then its degraded one (load_train_kinds says which)."""
    path = os.path.join(h5_dir, "train.h5")
    if not os.path.isfile(path):
        raise UserError("%s not found: run preprocess.py (or train.py --preprocess True) first" % path)
    try:
        with open_h5(path) as h5f:
            if "data" not in h5f:
                raise UserError("%s is not a train.h5 of this project (no 'data' dataset; rerun preprocess.py)" % path)
            attrs = dict(h5f.attrs)
            data = h5f["data"][()]
            if "degraded" in h5f:  # --task dncnn3: each clean patch beside its degraded one
                data = np.concatenate([data, h5f["degraded"][()]], axis=1)
    except OSError as e:
        raise UserError("cannot read %s: %s" % (path, e))
    if spec:
        check_patches(attrs, spec, path, strict_folder)
    if data.dtype != np.uint8 or data.ndim != 4:
        raise UserError("%s: expected uint8 (N, C, P, P) patches, found %s %s" % (path, data.dtype, data.shape))
    if spec and data.shape[1] != spec["channels"] * (2 if spec.get("task") == "dncnn3" else 1):
        raise UserError("%s holds %d-channel patches but training asks for --channels %d: rerun preprocess.py"
                        % (path, data.shape[1], spec["channels"]))
    import torch  # training alone needs it: preprocess.py stays light
    return torch.from_numpy(data), attrs


def load_train_kinds(h5_dir):
    """train.h5's kind of degradation per patch (KINDS) as a uint8 tensor, or None when it holds plain patches."""
    with open_h5(os.path.join(h5_dir, "train.h5")) as h5f:
        if "kind" not in h5f:
            return None
        kinds = h5f["kind"][()]
    import torch
    return torch.from_numpy(kinds)


def _holds(h5_dir, key):
    """Whether h5_dir's train.h5 and val.h5 both carry this key (written complete: renamed into place)."""
    for name in ("val.h5", "train.h5"):
        try:
            with open_h5(os.path.join(h5_dir, name)) as h5f:
                if _plain(h5f.attrs.get("key")) != key:
                    return False
        except OSError:
            return False
    return True


def _process_start():
    """Wall-clock start of this process (Linux), else now: failure markers older than it are a past run's."""
    try:
        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK") - 1.0  # btime has whole seconds
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


def failure_marker(h5_dir, key):
    """The file local rank 0 leaves beside the h5 files when building the patches of key raised: the error."""
    return os.path.join(h5_dir, "preprocess-failed-%s.txt" % key)


def ensure_patches(spec, h5_dir, build, builder, quiet=False, poll_s=2.0):
    """Make h5_dir hold the patches of spec, before the process group exists: so no collective (and its --timeout)
    waits on preprocessing, however long it takes.

    Nothing to do unless build. The builder (local rank 0 of each node) preprocesses unless train.h5 and val.h5
    already carry spec's key (same key, same content), leaving a failure marker if that raises; the other ranks
    poll the filesystem until both files carry the key, or stop at a marker written since they started."""
    if not build:
        return
    key = patch_key(spec)
    marker = failure_marker(h5_dir, key)
    if builder:
        if _holds(h5_dir, key):
            print("%s already holds these patches (key %s): not rebuilt" % (h5_dir, key), flush=True)
            return
        try:
            os.remove(marker)  # a past failure's
        except FileNotFoundError:
            pass
        try:
            build_patches(spec, h5_dir, quiet)
        except Exception as e:
            os.makedirs(h5_dir, exist_ok=True)
            atomic_write_bytes(marker, ("%s\n" % e).encode())
            raise
        return
    started, waited = _process_start(), 0.0
    while not _holds(h5_dir, key):
        try:
            if os.path.getmtime(marker) >= started:
                with open(marker) as f:
                    raise UserError("preprocessing into %s failed on local rank 0: %s" % (h5_dir, f.read().strip()))
        except FileNotFoundError:
            pass
        if waited < 30 <= waited + poll_s:
            print("waiting for local rank 0 to write the patches into %s (key %s)" % (h5_dir, key), flush=True)
        time.sleep(poll_s)
        waited += poll_s


def load_val_images(h5_dir):
    """[(name, float32 CxHxW)] from val.h5."""
    path = os.path.join(h5_dir, "val.h5")
    if not os.path.isfile(path):
        raise UserError("%s not found: run preprocess.py first" % path)
    with open_h5(path) as h5f:
        keys = sorted(h5f.keys(), key=lambda k: int(k) if k.isdigit() else k)
        return [("val_%s" % k, _unit_float(h5f[k][()])) for k in keys]


def _unit_float(arr):
    return arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
