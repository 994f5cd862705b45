"""train.py --noise_model camera: the JPEG step agrees with libjpeg (OpenCV's encoder), and the noise is
reproducible from its generator, 8-bit, signal-dependent and within the range camera_noise.py promises."""
import os

import cv2
import numpy as np
import pytest
import torch

from camera_noise import add_camera_noise, jpeg, srgb_to_linear
from conftest import SHARED, needs_shared
from utils import psnr


def photo(height=96, width=128):
    """A colour image with gradients, texture and an edge, BGR uint8."""
    y, x = np.mgrid[0:height, 0:width]
    tex = 25 * np.sin(x / 2.3) * np.cos(y / 3.1)
    img = np.stack([128 + 90 * np.sin(x / 9.0) + tex, 100 + 80 * np.cos(y / 7.0) - tex, 60 + x + 0.5 * tex], 2)
    return np.clip(img + (x > width // 2)[..., None] * 30, 0, 255).astype(np.uint8)


def libjpeg(img, quality, subsample):
    flag = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420 if subsample else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, flag])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float32) / 255


def ours(img, quality, subsample):
    batch = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    return jpeg(batch, torch.tensor([quality]), torch.tensor([subsample]))[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("quality", [50, 75, 95])
def test_jpeg_round_trip_agrees_with_libjpeg(quality):
    img = photo()
    theirs, mine, original = libjpeg(img, quality, False), ours(img, quality, False), img.astype(np.float32) / 255
    # a wrong table, DCT or colour transform lands about as far from libjpeg as the original is
    assert psnr(theirs, mine) > max(39.0, psnr(theirs, original) + 2)
    assert np.array_equal(mine, np.round(mine * 255) / 255)  # 8-bit


@needs_shared
@pytest.mark.parametrize("quality", [50, 75, 95])
def test_jpeg_with_half_resolution_chroma_agrees_with_libjpeg_on_a_photo(quality):
    """4:2:0 on a real photo (Kodak24's first, 256x256): libjpeg upsamples the chroma with a smoother filter
    than our repeat, which a photo's smooth chroma hardly shows (measured 42-44 dB; 29-40 from the original)."""
    first = sorted(os.listdir(os.path.join(SHARED, "data", "Kodak24")))[0]
    img = np.ascontiguousarray(cv2.imread(os.path.join(SHARED, "data", "Kodak24", first))[:256, :256])
    theirs, original = libjpeg(img, quality, True), img.astype(np.float32) / 255
    assert psnr(theirs, ours(img, quality, True)) > max(39.0, psnr(theirs, original) + 2)


def test_camera_noise_is_reproducible_8_bit_and_signal_dependent():
    clean = torch.from_numpy(photo(40, 40)).permute(2, 0, 1).float().div(255)[None].repeat(64, 1, 1, 1)
    noisy = add_camera_noise(clean, torch.Generator().manual_seed(0))
    again = add_camera_noise(clean, torch.Generator().manual_seed(0))
    other = add_camera_noise(clean, torch.Generator().manual_seed(1))
    assert torch.equal(noisy, again) and not torch.equal(noisy, other)
    assert torch.equal(noisy, torch.round(noisy * 255) / 255) and noisy.min() >= 0 and noisy.max() <= 1
    std = ((noisy - clean) * 255).flatten(1).std(1)
    assert 0.3 < std.min() and std.max() < 20 and std.median() > 2  # camera_noise.py: about 1 to 13 at mid-gray
    # in linear light (before the tone curve lifts the shadows) a brighter patch is noisier: shot noise
    dark, bright = torch.full((8, 3, 40, 40), 0.2), torch.full((8, 3, 40, 40), 0.8)
    spread = lambda x: (srgb_to_linear(add_camera_noise(x, torch.Generator().manual_seed(5))) - srgb_to_linear(x)).std()  # noqa: E731
    assert spread(bright) > 1.5 * spread(dark)


def test_camera_noise_needs_colour():
    with pytest.raises(ValueError, match="colour"):
        add_camera_noise(torch.zeros(2, 1, 8, 8), torch.Generator().manual_seed(0))


def channel_correlation(noise):
    """Mean correlation of the B-G, G-R and B-R noise over a (N, 3, H, W) batch."""
    flat = noise.permute(1, 0, 2, 3).reshape(3, -1).numpy()
    corr = np.corrcoef(flat)
    return (corr[0, 1] + corr[1, 2] + corr[0, 2]) / 3


def test_crosstalk_sets_how_alike_the_channels_noise_is():
    """v1 pushes noise into chroma (its channels' noise correlates 0.1 to 0.3), v4 into luma (about 0.6, as PolyU's
    measured noise, docs/real-noise.md). On flat grey, where JPEG's own error is small beside the noise."""
    clean = torch.full((64, 3, 40, 40), 0.45)
    corr = {p: channel_correlation(add_camera_noise(clean, torch.Generator().manual_seed(0), p) - clean)
            for p in ("v1", "v4")}
    assert corr["v1"] < 0.4 < 0.5 < corr["v4"], corr
