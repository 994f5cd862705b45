"""DnCNN's two other tasks on a user's photo (demo.py --task jpeg / sr), as the DnCNN authors run DnCNN-3
(cszn/DnCNN Demo_test_DnCNN3.m): the gray image, or a colour image's Y (MATLAB's rgb2ycbcr), through the model;
the chroma kept (deblocking) or bicubic-upscaled (super-resolution). Photos are (C, H, W) float in [0, 1], colour
in BGR as images.read_image and demo.py hold them."""
import numpy as np

from degrade import jpeg_roundtrip, matlab_imresize, rgb2ycbcr, ycbcr2rgb
from images import to_depth
from inference import denoise_any

DNCNN3 = "cszn/DnCNN3.mat"  # under the reference folder: the default model of both tasks, fetched on first use


def to_ycbcr(img):
    """(C, H, W) BGR float -> H x W x 3 YCbCr float64 (MATLAB's, 0-1 scale); gray (1, H, W) -> H x W."""
    if img.shape[0] == 1:
        return np.asarray(img[0], np.float64)
    return rgb2ycbcr(np.transpose(img[::-1], (1, 2, 0)))


def from_ycbcr(ycc):
    """to_ycbcr's inverse, clipped to [0, 1], float32 (C, H, W)."""
    if ycc.ndim == 2:
        return np.clip(ycc, 0, 1).astype(np.float32)[None]
    return np.ascontiguousarray(np.transpose(np.clip(ycbcr2rgb(ycc), 0, 1), (2, 0, 1))[::-1]).astype(np.float32)


def through_luma(net, ycc, device, **run):
    """ycc with its Y (or the gray image) replaced by the model's output."""
    luma = ycc if ycc.ndim == 2 else ycc[..., 0]
    out = denoise_any(net, np.ascontiguousarray(luma, np.float32)[None], device, **run)[0].astype(np.float64)
    if ycc.ndim == 2:
        return out
    ycc = ycc.copy()
    ycc[..., 0] = out
    return ycc


def deblock(net, img, device, **run):
    """A decoded JPEG photo with its blocking removed: Y (or gray) through a DnCNN-3, Cb and Cr kept."""
    return from_ycbcr(through_luma(net, to_ycbcr(img), device, **run))


def upscale(net, img, scale, device, **run):
    """A photo `scale` times larger: MATLAB's bicubic up, then Y (or gray) through a DnCNN-3; the chroma stays
    bicubic, as the authors' colour super-resolution."""
    up = matlab_imresize(to_ycbcr(img), scale)
    return from_ycbcr(through_luma(net, up, device, **run))


def bicubic(img, scale):
    """MATLAB's bicubic upscaling of a photo, for comparison with upscale's."""
    return from_ycbcr(matlab_imresize(to_ycbcr(img), scale))


def as_jpeg(img, quality):
    """A (C, H, W) BGR float photo saved as a JPEG of IJG quality `quality` (colour 4:2:0, as cameras and web
    pages save) and decoded: demo.py --task jpeg --quality's test input."""
    u8 = to_depth(np.transpose(img, (1, 2, 0)), np.uint8)
    decoded = jpeg_roundtrip(u8[..., 0] if img.shape[0] == 1 else u8[..., ::-1], quality)
    return (decoded[None] if decoded.ndim == 2 else np.transpose(decoded[..., ::-1], (2, 0, 1))).astype(np.float32) / 255.0
