"""Reading and writing photos as a viewer shows them: decoding (OpenCV, tifffile, Pillow / pillow-heif), EXIF
orientation, bit depth, alpha, atomic writes; folders of images, streamed one at a time."""
import glob
import os

import cv2
import numpy as np

from utils import UserError, atomic_write_bytes, warn

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


def pixels_to_float(pixels):
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


def read_uint8(path, why="8-bit images only here"):
    """An image file as MATLAB's imread gives it: H x W (gray) or H x W x 3 (RGB) uint8; None when unreadable;
    another depth is a UserError saying `why`."""
    decoded = decode_image(path)
    if decoded is None:
        return None
    pixels = decoded[0]
    if pixels.dtype != np.uint8:
        raise UserError("%s has %s pixels: %s" % (path, pixels.dtype, why))
    return np.ascontiguousarray(pixels[:, :, ::-1]) if pixels.ndim == 3 else pixels


def read_image(path, channels=1):
    """(C, H, W) float32 in [0, 1], or None (with a warning) when the file cannot be decoded.

    channels=1: gray. Gray files as stored (equal to the references' ``imread(f)[:, :, 0]``), colour files
    as OpenCV's luma. channels=3: colour in OpenCV's BGR order -- the order the ADNet authors'
    ``cv2.imread`` fed their colour models in training and test, so their weights need no channel swap;
    gray files are repeated into three channels. channels=None: as stored (1 or 3).
    As a viewer shows it (EXIF orientation applied); alpha is dropped; 8- and 16-bit files keep their precision.
    """
    decoded = decode_image(path)
    if decoded is None:
        return None
    img = decoded[0]
    if channels == 1 and img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif channels == 3 and img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return pixels_to_float(img)


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


PAIR_SUFFIXES = ("_real", "_mean")  # PolyU's published names: <name>_real.JPG noisy, <name>_mean.JPG clean
PAIR_FOLDERS = ("noisy", "clean")


def find_pairs(folder):
    """(layout, [(name, noisy path, clean path)]) when a folder holds photos that are already noisy beside
    their clean versions, else (None, []). Layouts: PolyU's (<name>_real.<ext> and <name>_mean.<ext> side by
    side) and noisy/ + clean/ sub-folders holding the same file names."""
    noisy_dir, clean_dir = (os.path.join(folder, f) for f in PAIR_FOLDERS)
    if os.path.isdir(noisy_dir) and os.path.isdir(clean_dir):
        clean = {os.path.basename(f): f for f in list_images(clean_dir)}
        pairs = [(os.path.splitext(os.path.basename(f))[0], f, clean[os.path.basename(f)])
                 for f in list_images(noisy_dir) if os.path.basename(f) in clean]
        return ("noisy/ + clean/", pairs) if pairs else (None, [])
    by_stem = {os.path.splitext(f)[0]: f for f in list_images(folder)}
    noisy_suffix, clean_suffix = PAIR_SUFFIXES
    pairs = [(stem[:-len(noisy_suffix)], f, by_stem[stem[:-len(noisy_suffix)] + clean_suffix])
             for stem, f in sorted(by_stem.items())
             if stem.endswith(noisy_suffix) and stem[:-len(noisy_suffix)] + clean_suffix in by_stem]
    return ("<name>_real + <name>_mean", [(os.path.basename(n), a, b) for n, a, b in pairs]) if pairs else (None, [])


def iter_pairs(pairs, prefetch=True):
    """(name, noisy, clean) float32 CxHxW as stored, decoded one pair at a time; a pair that cannot be read or
    whose sizes differ is skipped with a warning."""
    load = lambda pair: (read_image(pair[1], None), read_image(pair[2], None))  # noqa: E731
    for (name, noisy_path, clean_path), (noisy, clean) in prefetched(pairs, load, prefetch):
        if noisy is None or clean is None:
            continue
        if noisy.shape != clean.shape:
            warn("skipping %s: the noisy image is %s, the clean one %s" % (name, "x".join(map(str, noisy.shape)),
                                                                         "x".join(map(str, clean.shape))))
            continue
        yield name, noisy, clean


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
    ext = os.path.splitext(path)[1].lower() or ".png"
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(pixels))
    if not ok:
        raise UserError("cannot encode an image as %s" % ext)
    atomic_write_bytes(path, memoryview(buf))
