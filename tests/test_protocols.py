"""The DnCNN authors' protocols (protocols.py, test.py --task sr / jpeg / --uint8_output) on small made-up images
and a made-up model whose output is known, each figure recomputed here step by step; Cal_PSNRSSIM's SSIM against
Wang's ssim_index written out with scipy."""
import cv2
import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

from conftest import make_image
from degrade import bicubic_down_up, matlab_imresize
from protocols import evaluate_task, jpeg_pair, sr_pair
from utils import cal_psnr_ssim

JPEG_OFFSET, SR_OFFSET = 0.07, 0.4  # 17.85 levels (no rounding ties), 102 (past 255 at the bright end)


class Brightens(torch.nn.Module):
    """A 'DnCNN' whose residual is -offset everywhere: its clean estimate is the input + offset."""
    predicts_noise = True
    noise_map = False
    channels = 1

    def __init__(self, offset=JPEG_OFFSET):
        super().__init__()
        self.offset = offset

    def forward(self, x):
        return torch.full_like(x, -self.offset)


def wang_ssim(a, b):
    """Wang's ssim_index: fspecial('gaussian', 11, 1.5), filter2 'valid', K = [0.01 0.03], L = 255."""
    g = np.exp(-np.arange(-5, 6) ** 2 / (2 * 1.5 ** 2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    f = lambda x: correlate2d(x, window, mode="valid")  # noqa: E731
    m1, m2 = f(a), f(b)
    s1, s2, s12 = f(a * a) - m1 * m1, f(b * b) - m2 * m2, f(a * b) - m1 * m2
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return np.mean((2 * m1 * m2 + c1) * (2 * s12 + c2) / ((m1 * m1 + m2 * m2 + c1) * (s1 + s2 + c2)))


def psnr255(a, b):
    return 10 * np.log10(255.0 ** 2 / np.mean((np.asarray(a, np.float64) - b) ** 2))


def luma(rgb):
    """Y of MATLAB's rgb2ycbcr on the 0-255 scale, written out."""
    rgb = rgb.astype(np.float64) / 255
    return 16 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


def colour_image(h, w, seed=3):
    return np.dstack([make_image((h, w), seed + c) for c in range(3)])  # RGB


def test_cal_psnr_ssim_is_wangs_and_shaves_the_border():
    rng = np.random.RandomState(0)
    a = rng.rand(40, 33) * 255
    b = np.clip(a + rng.randn(40, 33) * 20, 0, 255)
    b[:2] = 0  # a damaged border: shaving it changes both figures
    psnr, ssim = cal_psnr_ssim(a, b)
    assert psnr == pytest.approx(psnr255(a, b), abs=1e-12)
    assert ssim == pytest.approx(wang_ssim(a, b), abs=1e-12)
    psnr2, ssim2 = cal_psnr_ssim(a, b, border=2)
    assert psnr2 == pytest.approx(psnr255(a[2:-2, 2:-2], b[2:-2, 2:-2]), abs=1e-12) and psnr2 > psnr + 1
    assert ssim2 == pytest.approx(wang_ssim(a[2:-2, 2:-2], b[2:-2, 2:-2]), abs=1e-12)
    rgb_a, rgb_b = np.dstack([a, a[::-1], a[:, ::-1]]), np.dstack([b, b[::-1], b[:, ::-1]])
    psnr3, ssim3 = cal_psnr_ssim(rgb_a, rgb_b)
    assert psnr3 == pytest.approx(psnr255(rgb_a, rgb_b), abs=1e-12)  # all channels at once
    assert ssim3 == pytest.approx(np.mean([wang_ssim(rgb_a[..., c], rgb_b[..., c]) for c in range(3)]), abs=1e-12)
    assert np.isnan(cal_psnr_ssim(a[:10], b[:10])[1])  # under 11 pixels: Wang's -Inf


def rows_of(tmp_path, img, task, offset, **kwargs):
    path = str(tmp_path / "img.png")
    cv2.imwrite(path, img[..., ::-1] if img.ndim == 3 else img)
    return list(evaluate_task(Brightens(offset), [path], task, torch.device("cpu"), **kwargs))


@pytest.mark.parametrize("scale", [2, 3])
def test_sr_scores_y_with_the_border_shaved(tmp_path, scale):
    img = colour_image(34, 41)  # not multiples of the scale: modcrop
    hr = img[:34 - 34 % scale, :41 - 41 % scale]
    label = luma(hr)
    low = matlab_imresize(hr, 1 / scale)
    up = matlab_imresize(low / 255.0, scale)
    source = 16 + 65.481 * up[..., 0] + 128.553 * up[..., 1] + 24.966 * up[..., 2]
    s = slice(scale, -scale)
    for offset in (0.0, SR_OFFSET):
        (row,) = rows_of(tmp_path, img, "sr", offset, scale=scale)
        out = source + 255 * offset  # not clipped: with SR_OFFSET the bright end goes past 255
        assert row["psnr"] == pytest.approx(psnr255(label[s, s], out[s, s]), abs=2e-4)  # float32 inputs
        assert row["ssim"] == pytest.approx(wang_ssim(label[s, s], out[s, s]), abs=1e-5)
        np.testing.assert_allclose(row["noisy"][0] * 255, source, atol=1e-3)
        if offset:  # what the check tells apart: the output clipped lands elsewhere
            assert out.max() > 255
            assert abs(psnr255(label[s, s], np.clip(out, 0, 255)[s, s]) - row["psnr"]) > 0.01
        else:  # ... and no border shaved, or the wrong one
            assert abs(psnr255(label, out) - row["psnr"]) > 0.1
            assert abs(psnr255(label[1:-1, 1:-1], out[1:-1, 1:-1]) - row["psnr"]) > 0.05


def test_sr_of_a_gray_image_rounds_the_upscale():
    img = make_image((30, 36), 5)
    label, source = sr_pair(img, 3)
    np.testing.assert_array_equal(label * 255, img.astype(np.float32))
    np.testing.assert_allclose(source * 255, matlab_imresize(matlab_imresize(img, 1 / 3), 3), atol=1e-4)
    assert np.abs(np.rint(source * 255) - source * 255).max() < 1e-4  # 8-bit levels
    assert not np.allclose(source, bicubic_down_up(img, 3), atol=1e-6)  # the colour path does not round


@pytest.mark.parametrize("quality", [10, 30])
def test_jpeg_scores_y_of_the_8_bit_output(tmp_path, quality):
    img = colour_image(40, 48, seed=7)
    (row,) = rows_of(tmp_path, img, "jpeg", JPEG_OFFSET, quality=quality)
    label = np.floor(luma(img) + 0.5)  # rgb2ycbcr of uint8: rounded
    ok, buf = cv2.imencode(".jpg", label.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float64)
    out = np.clip(np.floor(decoded + 255 * JPEG_OFFSET + 0.5), 0, 255)  # im2uint8 of input + OFFSET
    assert row["psnr"] == pytest.approx(psnr255(label, out), abs=1e-6)
    assert row["ssim"] == pytest.approx(wang_ssim(label, out), abs=1e-9)
    np.testing.assert_array_equal(row["noisy"][0] * 255, decoded.astype(np.float32))
    assert jpeg_pair(img[..., 0], quality)[0] is not None  # gray images are their own label


def test_evaluate_task_checks_what_it_is_given(tmp_path):
    from protocols import check_model
    from utils import UserError
    colour = Brightens()
    colour.channels = 3  # an instance's, not the class's
    with pytest.raises(UserError, match="gray or Y channel"):
        check_model(colour, "sr")
    with pytest.raises(UserError, match="auto"):
        check_model(None, "jpeg")


class Identity(torch.nn.Module):
    """A 'DnCNN' that finds no noise: its clean estimate is its input."""
    predicts_noise = True
    noise_map = False

    def __init__(self, channels=1):
        super().__init__()
        self.channels = channels

    def forward(self, x):
        return torch.zeros_like(x)


@pytest.mark.parametrize("channels", [1, 3])
def test_uint8_output_scores_the_rounded_output_as_the_authors(channels):
    from inference import evaluate_iter
    from utils import add_test_noise, psnr
    clean_u8 = np.stack([make_image((24, 30), 11 + c) for c in range(channels)])
    clean = clean_u8.astype(np.float32) / 255
    (row,) = evaluate_iter(Identity(channels), [("a.png", clean)], 15, torch.device("cpu"), with_ssim=True,
                           uint8_output=True)
    noisy = add_test_noise(torch.from_numpy(clean)[None], 15, 0)[0].numpy()
    out = np.floor(np.clip(noisy.astype(np.float64), 0, 1) * 255 + 0.5)  # im2uint8 of the clamped output
    label = clean_u8.astype(np.float64)
    assert row["psnr"] == pytest.approx(psnr255(label, out), abs=1e-9)  # over every channel at once
    assert row["ssim"] == pytest.approx(np.mean([wang_ssim(label[c], out[c]) for c in range(channels)]), abs=1e-9)
    np.testing.assert_allclose(row["denoised"] * 255, out, atol=1e-4)
    # without the option the output is scored unrounded: a different figure
    assert abs(psnr(clean, np.clip(noisy, 0, 1)) - row["psnr"]) > 1e-3


def test_rgb_colour_models_are_loaded_to_take_bgr():
    from checkpoints import taking_bgr
    from models import build_model, denoise
    torch.manual_seed(0)
    for arch in ("DnCNN", "FDnCNN"):
        rgb = build_model(arch, 3, 4, init=None, batch_norm=False).eval()
        bgr = build_model(arch, 3, 4, init=None, batch_norm=False).eval()
        bgr.load_state_dict(taking_bgr(rgb.state_dict()))
        x = torch.rand(1, 3, 12, 14)
        sigma = torch.linspace(5, 50, 14).expand(1, 1, 12, 14)  # a map: its channel must stay the last
        with torch.no_grad():
            np.testing.assert_allclose(denoise(bgr, x.flip(1), sigma).flip(1), denoise(rgb, x, sigma), atol=1e-6)
            assert not torch.allclose(denoise(rgb, x.flip(1), sigma).flip(1), denoise(rgb, x, sigma), atol=1e-3)
    gray = build_model("DnCNN", 1, 4, init=None, batch_norm=False).state_dict()
    assert all(torch.equal(v, taking_bgr(gray)[k]) for k, v in gray.items())
