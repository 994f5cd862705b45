"""degrade.py against values worked out by hand: MATLAB's bicubic imresize (the cubic kernel's weights, the
antialiased kernel, output sizes, mirrored borders, uint8 rounding), MATLAB's YCbCr, and the JPEG round trip
against libjpeg through OpenCV and IJG's quantisation tables."""
import io

import cv2
import numpy as np
import pytest

from camera_noise import CHROMA_TABLE, LUMA_TABLE
from degrade import (bicubic_down_up, im2uint8, jpeg_roundtrip, matlab_imresize, modcrop, rgb2ycbcr,
                     ycbcr2rgb)

# Keys' cubic (a = -0.5) at distances 0.25, 0.75, 1.25, 1.75, by hand: 1.5|x|^3 - 2.5|x|^2 + 1 (|x| <= 1),
# -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 (1 < |x| <= 2); they sum to 1
C025, C075, C125, C175 = 111 / 128, 29 / 128, -9 / 128, -3 / 128


def row(values, dtype=np.float64):
    """A one-row image: its rows resize to copies of it, so its columns are a 1-D resize."""
    return np.array([values], dtype=dtype)


def test_x2_up_of_an_impulse_samples_the_cubic_kernel():
    impulse = row([0, 0, 0, 1, 0, 0, 0, 0])
    out = matlab_imresize(impulse, 2)
    assert out.shape == (2, 16)
    # output pixel x sits at input position x / 2 + 0.25 (1-based); the impulse at 4
    expected = [0, 0, 0, C175, C125, C075, C025, C025, C075, C125, C175, 0, 0, 0, 0, 0]
    np.testing.assert_allclose(out[0], expected, atol=1e-15)
    np.testing.assert_array_equal(out[0], out[1])


def test_x2_up_mirrors_the_border_pixels():
    out = matlab_imresize(row([1.0, 2.0, 3.0, 4.0]), 2)[0]
    # the first output (at 0.75) reads positions -1, 0, 1, 2: mirrored to 2, 1, 1, 2 (edge pixel repeated)
    assert out[0] == pytest.approx((C175 + C125) * 2 + (C075 + C025) * 1)  # 0.90625
    assert out[-1] == pytest.approx((C125 + C175) * 3 + (C025 + C075) * 4)  # 4.09375
    assert out[3] == pytest.approx(C125 * 1 + C025 * 2 + C075 * 3 + C175 * 4)  # position 2.25: distances 1.25 .. -1.75
    np.testing.assert_allclose(out[1:-1], [1.1796875, 1.7265625, 2.25, 2.75, 3.2734375, 3.8203125])


def test_half_size_is_antialiased():
    impulse = row([0] * 7 + [1] + [0] * 8)
    out = matlab_imresize(impulse, 0.5)[0]
    # shrinking by 2 stretches the kernel to 8 pixels, weight 0.5 * cubic(d / 2); output x sits at 2x - 0.5
    expected = [0, 0, 0.5 * C125, 0.5 * C025, 0.5 * C075, 0.5 * C175, 0, 0]
    np.testing.assert_allclose(out, expected, atol=1e-15)


def test_third_size_is_antialiased():
    impulse = row([0] * 8 + [1] + [0] * 9)
    out = matlab_imresize(impulse, 1 / 3)[0]
    # kernel (1/3) cubic(d / 3), output x at 3x - 1: cubic(1/3) = 7/9, cubic(4/3) = -2/27, cubic(5/3) = -1/27
    expected = [0, -2 / 81, 7 / 27, 1 / 9, -1 / 81, 0]
    np.testing.assert_allclose(out, expected, atol=1e-15)


def test_output_sizes_are_ceil_of_scale_times_size():
    img = np.zeros((7, 13))
    assert matlab_imresize(img, 0.5).shape == (4, 7)
    assert matlab_imresize(img, 1 / 3).shape == (3, 5)
    assert matlab_imresize(img, 0.25).shape == (2, 4)
    assert matlab_imresize(img, 3).shape == (21, 39)
    assert matlab_imresize(np.zeros((7, 13, 3), np.float32), 2).shape == (14, 26, 3)


def test_constant_stays_constant_and_channels_are_independent():
    img = np.zeros((9, 12, 3))
    img[..., 0], img[..., 1], img[..., 2] = 0.25, 0.5, 1.0
    out = matlab_imresize(img, 1 / 3)
    np.testing.assert_allclose(out, np.broadcast_to([0.25, 0.5, 1.0], out.shape), atol=1e-14)


def test_uint8_rounds_half_away_from_zero_and_saturates():
    img = row([0, 48, 48, 0], np.uint8)
    # position 2.25 reads 0, 48, 48, 0: (111 + 29) / 128 * 48 = 52.5 exactly; MATLAB rounds it up (numpy's
    # round would give 52)
    assert matlab_imresize(img.astype(np.float64), 2)[0, 3] == 52.5
    out = matlab_imresize(img, 2)
    assert out.dtype == np.uint8 and out[0, 3] == 53
    # overshoot next to an edge saturates: 255 * (1 - C125 - C175) > 255
    edge = matlab_imresize(row([0, 0, 255, 255], np.uint8), 2)[0]
    assert edge.max() == 255 and edge.min() == 0
    assert matlab_imresize(row([0, 0, 255, 255]), 2)[0].max() > 255  # in float it overshoots


def test_float_types_are_kept():
    assert matlab_imresize(np.ones((4, 4), np.float32), 2).dtype == np.float32
    assert matlab_imresize(np.ones((4, 4)), 0.5).dtype == np.float64
    with pytest.raises(TypeError):
        matlab_imresize(np.ones((4, 4), np.int32), 2)


def test_modcrop():
    img = np.arange(7 * 11 * 3).reshape(7, 11, 3)
    assert modcrop(img, 3).shape == (6, 9, 3)
    assert modcrop(img[..., 0], 4).shape == (4, 8)
    np.testing.assert_array_equal(modcrop(img, 2), img[:6, :10])


def test_im2uint8():
    np.testing.assert_array_equal(im2uint8(np.array([-0.1, 0, 0.5 / 255, 1.5 / 255, 0.5, 1, 1.2])),
                                  [0, 0, 1, 2, 128, 255, 255])


def test_rgb2ycbcr_of_pure_colours_is_matlabs():
    colours = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    # MATLAB: white (235, 128, 128), black (16, 128, 128), red 16 + 65.481 -> 81, 128 - 37.797 -> 90, 240 ...
    expected = [[235, 128, 128], [16, 128, 128], [81, 90, 240], [145, 54, 34], [41, 240, 110]]
    out = rgb2ycbcr(colours)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], expected)
    as_float = rgb2ycbcr(colours / 255.0)
    np.testing.assert_allclose(as_float[0, 0], [235 / 255, 128 / 255, 128 / 255])
    np.testing.assert_allclose(as_float[0, 2], [(16 + 65.481) / 255, (128 - 37.797) / 255, 240 / 255])


def test_ycbcr2rgb_inverts_rgb2ycbcr():
    rgb = np.random.RandomState(0).rand(6, 7, 3)
    np.testing.assert_allclose(ycbcr2rgb(rgb2ycbcr(rgb)), rgb, atol=1e-12)
    np.testing.assert_array_equal(ycbcr2rgb(np.array([[[235, 128, 128], [16, 128, 128]]], np.uint8)),
                                  [[[255, 255, 255], [0, 0, 0]]])
    u8 = (rgb * 255).round().astype(np.uint8)
    assert np.abs(ycbcr2rgb(rgb2ycbcr(u8)).astype(int) - u8).max() <= 2  # two 8-bit roundings


def test_bicubic_down_up():
    rng = np.random.RandomState(1)
    img = cv2.resize(rng.randint(0, 256, (6, 6, 3)).astype(np.uint8), (24, 18), interpolation=cv2.INTER_LINEAR)
    up = bicubic_down_up(img, 3)
    low = matlab_imresize(img, 1 / 3)
    assert low.dtype == np.uint8 and low.shape == (6, 8, 3)
    np.testing.assert_allclose(up, matlab_imresize(low / 255.0, 3))
    assert up.shape == img.shape and up.dtype == np.float64
    gray = bicubic_down_up(img[..., 0], 3, eight_bit_up=True)
    np.testing.assert_array_equal(gray * 255, matlab_imresize(low[..., 0], 3))
    assert np.abs(gray * 255 - img[..., 0]).mean() < np.abs(127.5 - img[..., 0]).mean() / 2  # an approximation


def gradient_image(h=64, w=80):
    y, x = np.mgrid[0:h, 0:w]
    return np.clip(128 + 80 * np.sin(x / 5.0) * np.cos(y / 7.0) + (x > w // 2) * 40, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("quality", [10, 20, 40])
def test_gray_jpeg_is_libjpegs(quality):
    img = gradient_image()
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    np.testing.assert_array_equal(jpeg_roundtrip(img, quality), cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE))


def test_higher_quality_is_closer():
    img = gradient_image()
    errors = [np.abs(jpeg_roundtrip(img, q).astype(int) - img).mean() for q in (10, 20, 40, 90)]
    assert errors == sorted(errors, reverse=True) and errors[0] > 2 * errors[-1] > 0


def ijg_table(base, quality):
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return [min(255, max(1, (b * scale + 50) // 100)) for b in base]  # baseline: at most 255


@pytest.mark.parametrize("quality", [10, 30, 75])
def test_quantisation_tables_are_ijgs_for_the_quality(quality):
    from PIL import Image
    rgb = np.dstack([gradient_image(), gradient_image()[::-1], gradient_image()[:, ::-1]])
    for img, tables in ((rgb[..., 0], [LUMA_TABLE]), (rgb, [LUMA_TABLE, CHROMA_TABLE])):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)  # what jpeg_roundtrip writes
        buf.seek(0)
        with Image.open(buf) as im:
            assert [im.quantization[i] for i in range(len(tables))] == [ijg_table(t, quality) for t in tables]
        np.testing.assert_array_equal(jpeg_roundtrip(img, quality, "4:2:0"), np.asarray(Image.open(buf)))


def test_colour_jpeg_subsampling():
    rgb = np.dstack([gradient_image(), gradient_image()[::-1], gradient_image()[:, ::-1]])
    full, half = jpeg_roundtrip(rgb, 90, "4:4:4"), jpeg_roundtrip(rgb, 90, "4:2:0")
    assert full.shape == half.shape == rgb.shape
    err = lambda x: np.abs(x.astype(int) - rgb).mean()  # noqa: E731
    assert err(full) < err(half)  # half-resolution chroma loses detail the full one keeps
    with pytest.raises(ValueError):
        jpeg_roundtrip(rgb, 90, "4:1:1")


def keys(d):
    """The cubic kernel written out once more, for the x4 case."""
    d = abs(d)
    return 1.5 * d ** 3 - 2.5 * d ** 2 + 1 if d <= 1 else (-0.5 * d ** 3 + 2.5 * d ** 2 - 4 * d + 2 if d <= 2 else 0.0)


def test_x3_up_passes_through_the_input_pixels():
    values = [3.0, 7.0, 1.0, 8.0, 2.0, 9.0]
    out = matlab_imresize(row(values), 3)[0]
    # output x sits at x / 3 + 1/3: every third one on an input pixel, where the kernel is 1 there and 0 at the others
    np.testing.assert_allclose(out[1::3], values, atol=1e-14)
    assert out.shape == (18,)


def test_quarter_size_of_an_impulse():
    p = 14  # 1-based position of the impulse in 32 pixels
    impulse = row([1.0 if i + 1 == p else 0.0 for i in range(32)])
    out = matlab_imresize(impulse, 0.25)[0]
    # kernel 0.25 cubic(d / 4), 16 pixels wide; output x at 4x - 1.5; the impulse's distance never reaches a border
    np.testing.assert_allclose(out, [0.25 * keys((p - (4 * x - 1.5)) / 4) for x in range(1, 9)], atol=1e-15)
