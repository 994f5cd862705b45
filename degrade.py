"""The one way to degrade an image for super-resolution and JPEG deblocking, for test, train and demo alike:
MATLAB's bicubic imresize (exact: no library has it), modcrop, MATLAB's rgb2ycbcr / ycbcr2rgb and im2uint8,
the super-resolution input (bicubic down, then up) and a JPEG round trip through libjpeg (Pillow).

These are the DnCNN authors' degradations (cszn/DnCNN Demo_test_DnCNN3.m); protocols.py scores them. White
Gaussian noise stays where it was: utils.add_test_noise (test protocol), training.py (training batches);
camera-like noise in camera_noise.py.

Colour arrays here are H x W x 3 in RGB order (MATLAB's and Pillow's), not OpenCV's BGR.
"""
import functools
import io

import numpy as np

# MATLAB's rgb2ycbcr (ITU-R BT.601, studio range): Y Cb Cr (0-255 scale) = ORIG_T @ RGB (0-1 scale) + ORIG_OFFSET
ORIG_T = np.array([[65.481, 128.553, 24.966],
                   [-37.797, -74.203, 112.0],
                   [112.0, -93.786, -18.214]])
ORIG_OFFSET = np.array([16.0, 128.0, 128.0])


def cubic(x):
    """Keys' cubic convolution kernel, a = -0.5 (MATLAB's imresize 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((1 < ax) & (ax <= 2)))


@functools.lru_cache(maxsize=64)
def contributions(in_length, out_length, scale):
    """(weights, indices), each out_length x taps: output pixel i is sum_k weights[i, k] * input[indices[i, k]].

    MATLAB's imresize contributions(): when shrinking, the kernel is stretched by 1/scale (antialiasing); input
    positions outside the image are mirrored (edge pixel repeated); taps whose weight is 0 for every output are
    dropped. Computed once per (sizes, scale).
    """
    kernel_width = 4.0
    if scale < 1:
        kernel = lambda x: scale * cubic(scale * x)  # noqa: E731
        kernel_width /= scale
    else:
        kernel = cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates (1-based, as MATLAB)
    left = np.floor(u - kernel_width / 2)
    taps = int(np.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    used = np.any(weights != 0, axis=0)
    return np.ascontiguousarray(weights[:, used]), np.ascontiguousarray(indices[:, used])


def _round_to_uint8(x):
    """Saturate, then round half away from zero (MATLAB's conversion to uint8)."""
    return np.floor(np.clip(x, 0, 255) + 0.5).astype(np.uint8)


def _resize_axis(img, axis, out_length, scale):
    weights, indices = contributions(img.shape[axis], out_length, scale)
    src = np.moveaxis(img, axis, 0)
    shape = (-1,) + (1,) * (src.ndim - 1)
    out = weights[:, 0].reshape(shape) * src[indices[:, 0]]
    for k in range(1, weights.shape[1]):  # tap by tap, in MATLAB's order of summation
        out += weights[:, k].reshape(shape) * src[indices[:, k]]
    return np.moveaxis(out, 0, axis)


def matlab_imresize(img, scale):
    """MATLAB's ``imresize(img, scale, 'bicubic')``, antialiased when shrinking, of an H x W (x C) array.

    Output size ceil(scale * size). Rows are resized first, then columns (MATLAB's order for equal scales).
    uint8 in, uint8 out: as MATLAB, each pass is rounded to uint8 (half away from zero, saturated); float in
    (any range), the same float type out, computed in float64.
    """
    img = np.asarray(img)
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise TypeError("matlab_imresize takes uint8 or float images, not %s" % img.dtype)
    scale = float(scale)
    out = img.astype(np.float64)
    for axis in (0, 1):
        out = _resize_axis(out, axis, int(np.ceil(scale * img.shape[axis])), scale)
        if img.dtype == np.uint8:
            out = _round_to_uint8(out).astype(np.float64)
    return out.astype(img.dtype)


def modcrop(img, scale):
    """The top-left part of an H x W (x C) image whose sides are multiples of scale (the authors' modcrop)."""
    h, w = img.shape[:2]
    return img[:h - h % scale, :w - w % scale]


def im2uint8(img):
    """MATLAB's im2uint8 of a float image in [0, 1]: x 255, saturated, rounded half away from zero."""
    return _round_to_uint8(np.asarray(img, np.float64) * 255.0)


def _lincomb(img, matrix, offset):
    """out[..., p] = sum_c matrix[p, c] * img[..., c] + offset[p], in imlincomb's order, float64."""
    img = np.asarray(img, np.float64)
    return np.stack([matrix[p, 0] * img[..., 0] + matrix[p, 1] * img[..., 1] + matrix[p, 2] * img[..., 2]
                     + offset[p] for p in range(3)], axis=-1)


def rgb2ycbcr(img):
    """MATLAB's rgb2ycbcr of an H x W x 3 RGB image: uint8 in, uint8 out (rounded: Y of white 235, of black 16);
    float in [0, 1] in, float64 out on the same scale (Y in [16/255, 235/255])."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return _round_to_uint8(_lincomb(img, ORIG_T / 255.0, ORIG_OFFSET))
    return _lincomb(img, ORIG_T / 255.0, ORIG_OFFSET / 255.0)


def ycbcr2rgb(img):
    """MATLAB's ycbcr2rgb, the inverse of rgb2ycbcr: uint8 in, uint8 out (rounded, saturated); float in, float64
    out (not clipped)."""
    img = np.asarray(img)
    inverse = np.linalg.inv(ORIG_T)
    if img.dtype == np.uint8:
        return _round_to_uint8(_lincomb(img, 255.0 * inverse, -255.0 * inverse @ ORIG_OFFSET))
    return _lincomb(img, 255.0 * inverse, -inverse @ ORIG_OFFSET)


def bicubic_down_up(img, scale, eight_bit_up=False):
    """The super-resolution input of a uint8 H x W (x C) image whose sides are multiples of scale (modcrop):
    ``imresize(img, 1/scale)`` stored in uint8 (the low-resolution image), then ``imresize(.., scale)`` back to
    the image's size, float64 in [0, 1] (the authors' colour input, not rounded). eight_bit_up: the second
    resize on the uint8 low-resolution image, rounded to 8 bits as MATLAB's imresize of uint8 does (the authors'
    gray input), then / 255."""
    low = matlab_imresize(img, 1.0 / scale)
    if eight_bit_up:
        return matlab_imresize(low, scale) / 255.0
    return matlab_imresize(low / 255.0, scale)


JPEG_SUBSAMPLING = ("4:4:4", "4:2:2", "4:2:0")


def jpeg_roundtrip(img, quality, subsampling="4:2:0"):
    """A uint8 image saved as a baseline JPEG of IJG quality `quality` (1-100) and decoded, in memory, through
    libjpeg (Pillow): H x W gray (the authors' deblocking input, as MATLAB's imwrite / imread give it) or H x W x 3
    RGB with the chroma subsampled as `subsampling` says (4:2:0: as cameras save photos)."""
    from PIL import Image
    if subsampling not in JPEG_SUBSAMPLING:
        raise ValueError("subsampling must be one of %s, not %r" % (", ".join(JPEG_SUBSAMPLING), subsampling))
    img = np.asarray(img)
    if img.dtype != np.uint8 or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise TypeError("jpeg_roundtrip takes H x W or H x W x 3 uint8 images, not %s %s" % (img.dtype, img.shape))
    buf = io.BytesIO()
    options = {} if img.ndim == 2 else {"subsampling": subsampling}
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality), **options)
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded).copy()
