"""demo.py --task jpeg / sr: a photo's Y (or the gray image) through a DnCNN-3, the chroma kept or bicubic."""
import numpy as np
import torch

from degrade import matlab_imresize, rgb2ycbcr
from inference import inference_net
from models import build_model
from restore import deblock, from_ycbcr, to_ycbcr, upscale

CPU = torch.device("cpu")


def residual_net(value):
    """A 3-layer gray DnCNN-3 stand-in whose residual is the constant `value` everywhere."""
    model = build_model("DnCNN", 1, 3, init=None, batch_norm=False).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.dncnn[-1].bias.fill_(value)
    return inference_net(model, CPU, "torch")[0]


def photo(channels=3, h=24, w=20, seed=0):
    return np.random.RandomState(seed).uniform(0.1, 0.9, (channels, h, w)).astype(np.float32)


def test_ycbcr_round_trip_keeps_a_bgr_photo():
    img = photo()
    np.testing.assert_allclose(from_ycbcr(to_ycbcr(img)), img, atol=1e-6)
    rgb = np.transpose(img[::-1], (1, 2, 0))
    np.testing.assert_allclose(to_ycbcr(img), rgb2ycbcr(rgb))  # BGR in, MATLAB's RGB conversion


def test_deblock_changes_only_the_luma():
    img = photo()
    np.testing.assert_allclose(deblock(residual_net(0.0), img, CPU, tile=0), img, atol=1e-6)
    out = deblock(residual_net(0.05), img, CPU, tile=0)
    before, after = to_ycbcr(img), to_ycbcr(out)
    np.testing.assert_allclose(after[..., 0], before[..., 0] - 0.05, atol=1e-5)
    np.testing.assert_allclose(after[..., 1:], before[..., 1:], atol=1e-5)
    gray = photo(1)
    np.testing.assert_allclose(deblock(residual_net(0.05), gray, CPU, tile=0), gray - 0.05, atol=1e-6)


def test_upscale_is_bicubic_plus_the_models_luma():
    img = photo(h=12, w=10)
    for scale in (2, 3):
        out = upscale(residual_net(0.0), img, scale, CPU, tile=0)
        assert out.shape == (3, 12 * scale, 10 * scale)
        rgb_up = matlab_imresize(np.transpose(img[::-1], (1, 2, 0)).astype(np.float64), scale)
        np.testing.assert_allclose(out, np.clip(np.transpose(rgb_up, (2, 0, 1))[::-1], 0, 1), atol=1e-5)
    up = upscale(residual_net(0.02), img, 2, CPU, tile=0)
    np.testing.assert_allclose(to_ycbcr(up)[..., 0], to_ycbcr(upscale(residual_net(0.0), img, 2, CPU, tile=0))[..., 0]
                               - 0.02, atol=1e-5)


def test_as_jpeg_is_libjpegs_round_trip_in_bgr():
    from degrade import jpeg_roundtrip
    from restore import as_jpeg
    img = photo(h=32, w=32)
    out = as_jpeg(img, 30)
    rgb = np.rint(np.transpose(img[::-1], (1, 2, 0)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.rint(out * 255).astype(np.uint8), np.transpose(jpeg_roundtrip(rgb, 30), (2, 0, 1))[::-1])
    assert as_jpeg(photo(1), 50).shape == (1, 24, 20)
