"""The DnCNN authors' super-resolution and JPEG deblocking protocols (cszn/DnCNN Demo_test_DnCNN3.m), test.py
--task sr and --task jpeg: each image's input and label made by degrade.py, the model's output scored as their
Cal_PSNRSSIM (utils.cal_psnr_ssim). Gaussian denoising (--task denoise) is inference.evaluate_iter's.

sr, scale s: HR = modcrop(image, s); LR = imresize(HR, 1/s) in uint8; colour: label = Y of rgb2ycbcr(HR / 255),
input = Y of rgb2ycbcr(imresize(LR / 255, s)) (not rounded); gray: label = HR / 255, input = imresize(LR, s) / 255
(uint8). Scored on the output as it is (not clipped, not rounded), s pixels shaved off each side.
jpeg, quality q: label = the image, colour ones as the Y of rgb2ycbcr in uint8; input = label saved as a gray
JPEG of quality q and decoded; scored on the output rounded to 8 bits (im2uint8), no border shaved.
Both feed the model one channel (Y or gray) and read its output as the clean image (a DnCNN-3 predicts the
residual: the model says which).
"""
import os

import numpy as np
import torch

from degrade import bicubic_down_up, im2uint8, jpeg_roundtrip, modcrop, rgb2ycbcr
from images import prefetched, read_uint8
from inference import denoise_image
from utils import UserError, cal_psnr_ssim, progress

TASKS = ("denoise", "sr", "jpeg")


def sr_pair(img, scale):
    """(label, input), float32 H x W in [0, 1] (the image's Y for colour), of a uint8 image under the
    authors' super-resolution protocol at an integer scale."""
    hr = modcrop(img, scale)
    if hr.ndim == 3:
        label = rgb2ycbcr(hr / 255.0)[..., 0]
        source = rgb2ycbcr(bicubic_down_up(hr, scale))[..., 0]
    else:
        label, source = hr / 255.0, bicubic_down_up(hr, scale, eight_bit_up=True)
    return label.astype(np.float32), source.astype(np.float32)


def jpeg_pair(img, quality):
    """(label uint8 H x W, input float32 H x W in [0, 1]) of a uint8 image under the authors' JPEG protocol."""
    label = rgb2ycbcr(img)[..., 0] if img.ndim == 3 else img
    return label, (jpeg_roundtrip(label, quality) / 255.0).astype(np.float32)


def score(task, label, output, scale=None):
    """(PSNR, SSIM) of a model's output for its label, as the authors score the task."""
    if task == "sr":
        return cal_psnr_ssim(label.astype(np.float64) * 255.0, output.astype(np.float64) * 255.0, border=scale)
    return cal_psnr_ssim(label, im2uint8(output))


def describe(task, scale=None, quality=None):
    """One line saying what a task does to each image (test.py prints it before the scores)."""
    if task == "sr":
        return ("super-resolution x%d (the DnCNN authors' protocol): input = MATLAB bicubic down and up, the Y "
                "channel of colour images; PSNR/SSIM on Y, %d pixels shaved off each side" % (scale, scale))
    return ("JPEG deblocking at quality %d (the DnCNN authors' protocol): input = the gray image (colour: Y) saved "
            "as JPEG by libjpeg; PSNR/SSIM on the output rounded to 8 bits" % quality)


def check_model(model, task):
    """A UserError unless the model can run the task: one channel in, one out."""
    if model is None:
        raise UserError("--task %s needs one model: --logdir auto chooses per photo for denoising only" % task)
    if model.channels != 1 or getattr(model, "noise_map", False):
        raise UserError("--task %s feeds the model the gray or Y channel alone: %s takes %d channels%s"
                        % (task, getattr(model, "checkpoint_path", "this model"), model.channels,
                           " and a noise map" if getattr(model, "noise_map", False) else ""))


def evaluate_task(net, files, task, device, scale=None, quality=None, amp=None, tile=0, x8=False, quiet=True):
    """Rows (name, path, psnr, ssim, noisy: the input, denoised: the output, (1, H, W) float32) of each image
    file under task "sr" (at `scale`) or "jpeg" (at `quality`); the next image is read and degraded ahead, in a
    thread."""
    def load(path):
        img = read_uint8(path, "the authors' protocols read 8-bit images")
        if img is None:
            return None
        return sr_pair(img, scale) if task == "sr" else jpeg_pair(img, quality)

    for path, pair in progress(prefetched(files, load), quiet=quiet, desc=task, unit="img", total=len(files)):
        if pair is None:
            continue
        label, source = pair
        out = denoise_image(net, torch.from_numpy(source)[None, None], device, amp=amp, tile=tile, x8=x8)[0, 0].numpy()
        psnr, ssim = score(task, label, out, scale)
        yield {"name": os.path.basename(path), "path": path, "psnr": psnr, "ssim": ssim,
               "noisy": source[None], "denoised": out[None]}
