"""demo.py's default with the DnCNN authors' files there (issue #52): FDnCNN told each photo's noise level read
off the photo (times --strength, or --noise_level), JPEGs of low quality deblocked by DnCNN-3 first, the
quality read off the file's quantisation tables."""
import csv

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from models import build_model
from photo_noise import (DEBLOCK_UP_TO, FDNCNN, LEVEL, Reading, choose_model, jpeg_quality, noise_level,
                         read_noise)
from utils import add_test_noise, stored_in_8_bits
from test_photo_noise import smooth_photo


@pytest.mark.parametrize("sigma", [5, 10, 15, 25, 50])
def test_the_level_read_off_white_noise_of_known_sigma(sigma):
    for seed in range(2):
        noisy = stored_in_8_bits(add_test_noise(torch.from_numpy(smooth_photo(3)), sigma, seed).numpy())
        reading = read_noise(noisy)
        level = noise_level(reading)
        # on a photo without texture: within 10 % of the sigma read on the whole photo, within 20 % on its
        # flattest blocks (their 10th percentile reads 0.91 sigma on pure noise, then the fitted flat_scale)
        assert abs(level - sigma) <= (0.2 if sigma < LEVEL.flat_below else 0.1) * sigma, (reading, level)
        assert reading.sigma_flat < reading.sigma  # the flattest blocks
        assert choose_model(reading, 3, {FDNCNN["colour"]: "w"}).level == pytest.approx(level)


def test_camera_noise_is_told_a_function_of_its_2x2_reading_and_clean_photos_nothing():
    camera = LEVEL.camera_offset + LEVEL.camera_scale * 2.0
    assert noise_level(Reading(0.5, 2.0, "camera")) == pytest.approx(camera)
    faint = Reading(LEVEL.camera_below - 0.01, 10 * LEVEL.camera_below, "white", 0.3)  # over the class rule's bar
    assert noise_level(faint) == pytest.approx(LEVEL.camera_offset + LEVEL.camera_scale * faint.sigma_2x2)
    # a deblocked JPEG's 2x2 means show its blocks' trace: read as white noise, on its flattest blocks
    assert noise_level(faint, deblocked=True) == pytest.approx(LEVEL.flat_scale * faint.sigma_flat)
    assert noise_level(Reading(0.1, 0.2, "clean")) == 0.0
    assert choose_model(Reading(0.1, 0.2, "clean"), 3, {FDNCNN["colour"]: "w"}).name is None


def test_strength_scales_the_level():
    reading = Reading(20.0, 21.0, "white")
    full = choose_model(reading, 3, {FDNCNN["colour"]: "w"}, strength=1.0)
    for strength in (0.0, 0.5, 1.5):
        choice = choose_model(reading, 3, {FDNCNN["colour"]: "w"}, strength=strength)
        assert choice.name == FDNCNN["colour"] and choice.level == pytest.approx(strength * full.level)
    gray = choose_model(reading, 1, {FDNCNN["colour"]: "w", FDNCNN["gray"]: "g"})
    assert gray.name == FDNCNN["gray"]


@pytest.mark.parametrize("quality", [10, 35, 90])
def test_jpeg_quality_read_off_the_quantisation_tables(tmp_path, quality):
    img = (np.random.default_rng(quality).random((32, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "a.jpg", quality=quality)
    Image.fromarray(img[:, :, 0]).save(tmp_path / "gray.jpg", quality=quality)
    Image.fromarray(img).save(tmp_path / "a.png")
    assert jpeg_quality(str(tmp_path / "a.jpg")) == quality
    assert jpeg_quality(str(tmp_path / "gray.jpg")) == quality
    assert jpeg_quality(str(tmp_path / "a.png")) is None


def level_telling_fdncnn():
    """A made-up FDnCNN whose output is its input minus the level map: noisy - output tells the level."""
    net = build_model("FDnCNN", 3, 3, init=None, batch_norm=False)
    with torch.no_grad():
        for conv in net.dncnn[::2]:
            conv.weight.zero_()
            conv.bias.zero_()
        for c in range(4):  # features 0-2: the image's channels, 3: the map
            net.dncnn[0].weight[c, c, 1, 1] = 1.0
            net.dncnn[2].weight[c, c, 1, 1] = 1.0
        for c in range(3):
            net.dncnn[4].weight[c, c, 1, 1] = 1.0
            net.dncnn[4].weight[c, 3, 1, 1] = -1.0
    return net


def test_demo_tells_fdncnn_the_level_times_the_strength_and_dry_run_says_it(tmp_path, capsys):
    import demo
    reference = tmp_path / "reference"
    (reference / "cszn").mkdir(parents=True)
    torch.save(level_telling_fdncnn().state_dict(), reference / "cszn" / "FDnCNN_color.mat")  # read by content
    photos = tmp_path / "photos"
    photos.mkdir()
    noisy = stored_in_8_bits(add_test_noise(torch.from_numpy(smooth_photo(3, 64)), 20, 1).numpy())
    cv2.imwrite(str(photos / "noisy.png"), np.round(noisy * 255).transpose(1, 2, 0).astype(np.uint8))
    level = noise_level(read_noise(noisy))
    common = ["--demo_img_path", str(photos), "--test_noiseL", "0", "--quiet", "--no_compare",
              "--reference_weights", str(reference), "--backend", "torch"]
    demo.main(common + ["--out", str(tmp_path / "dry"), "--dry_run", "--strength", "0.5"])
    said = capsys.readouterr().out
    assert "FDnCNN color, strength 0.50, noise level %.1f" % (0.5 * level) in said, said
    assert not (tmp_path / "dry").exists()
    for flags, told in ((["--strength", "1"], level), (["--strength", "0.5"], 0.5 * level),
                        (["--noise_level", "7"], 7.0)):
        out = tmp_path / ("out%g" % told)
        demo.main(common + ["--out", str(out)] + flags)
        removed = noisy - cv2.imread(str(out / "noisy_denoised.png")).transpose(2, 0, 1) / 255.0
        assert abs(removed.mean() * 255 - told) < 0.6, (flags, removed.mean() * 255, told)
        with open(out / "choices.csv", newline="") as f:
            row = next(csv.DictReader(f))
        assert (row["model"], row["deblocked"]) == ("FDnCNN color", "no")
        assert float(row["noise_level"]) == pytest.approx(told, abs=0.01)


def test_demo_deblocks_a_low_quality_jpeg_first(tmp_path, capsys):
    import demo
    reference = tmp_path / "reference"
    (reference / "cszn").mkdir(parents=True)
    torch.save(level_telling_fdncnn().state_dict(), reference / "cszn" / "FDnCNN_color.mat")
    torch.manual_seed(0)
    torch.save(build_model("DnCNN", 1, 3, init=None, batch_norm=False).state_dict(), reference / "cszn" / "DnCNN3.mat")
    photos = tmp_path / "photos"
    photos.mkdir()
    rgb = np.round(smooth_photo(3, 64).transpose(1, 2, 0) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(photos / "low.jpg", quality=DEBLOCK_UP_TO - 5)
    Image.fromarray(rgb).save(photos / "high.jpg", quality=95)
    demo.main(["--demo_img_path", str(photos), "--test_noiseL", "0", "--quiet", "--no_compare", "--backend", "torch",
               "--reference_weights", str(reference), "--out", str(tmp_path / "out")])
    said = capsys.readouterr().out
    assert "low.jpg: JPEG quality %d -> DnCNN-3" % (DEBLOCK_UP_TO - 5) in said, said
    assert "high.jpg: JPEG quality 95, noise" in said, said
    with open(tmp_path / "out" / "choices.csv", newline="") as f:
        rows = {row["image"]: row for row in csv.DictReader(f)}
    assert (rows["low.jpg"]["jpeg_quality"], rows["low.jpg"]["deblocked"]) == (str(DEBLOCK_UP_TO - 5), "yes")
    assert rows["high.jpg"]["deblocked"] == "no"


def test_fit_level_finds_the_levels_that_peak_and_the_deblocking_cut_off():
    from photo_fit import LevelCase, fit_deblock, fit_level, held_out_level
    levels = [0.25 * i for i in range(200)]

    def case(fold, group, reading, best):  # PSNR peaks at the level `best`
        return LevelCase(fold, group, "x", reading, [(l, 40.0 - abs(l - best)) for l in levels])
    cases = [case("Sony", "real", Reading(0.5, s2, "camera", 0.3), 10.0) for s2 in (1.0, 3.0, 6.0)]
    cases += [case(fold, 25, Reading(s, s + 1.0, "white", 0.9 * s), 1.05 * s)
              for fold in ("Kodak24", "McMaster") for s in (20.0, 25.0, 30.0)]
    fitted = fit_level(cases)
    assert fitted.white_scale == 1.05 and fitted.flat_below <= 20.0
    for s2 in (1.0, 3.0, 6.0):  # a level of 10 whatever the camera reading
        assert abs(noise_level(Reading(0.5, s2, "camera"), fitted) - 10.0) <= 1.5
    assert set(held_out_level(cases)) == {"Sony", "Kodak24", "McMaster"}
    jpegs = {("A", "img", "q%d" % q): {"deblocked": 30.0 + (q <= 50), "not": 30.5} for q in (10, 30, 50, 70, 90)}
    assert fit_deblock(jpegs, "not", "deblocked") == 50


def test_with_the_references_white_noise_under_heavy_goes_to_adnet_cblind():
    """photo_noise.HYBRID (fitted held out, docs/real-noise.md): white noise -> ADNet cblind; a camera's noise,
    heavy noise, gray photos, deblocked JPEGs and a level given -> FDnCNN; cblind not there -> FDnCNN."""
    from photo_noise import HEAVY_ABOVE, HYBRID, KEPT, TOLD, Hybrid
    assert HYBRID.camera[0] == TOLD and HYBRID.heavy[0] == TOLD
    there = {FDNCNN["colour"]: "f", FDNCNN["gray"]: "g", "ADNet cblind": "b", "ADNet c15": "c"}
    white = Reading(20.0, 22.0, "white", 18.0)
    choice = choose_model(white, 3, there, strength=0.8)
    assert (choice.name, choice.weights, choice.level) == ("ADNet cblind", "b", None)
    assert choice.strength == pytest.approx(0.8 * HYBRID.white[0][1][1])
    assert choose_model(Reading(HEAVY_ABOVE + 5, 60.0, "heavy", 50.0), 3, there).name == FDNCNN["colour"]
    assert choose_model(Reading(0.8, 3.0, "camera", 0.5), 3, there).name == FDNCNN["colour"]
    assert choose_model(white, 1, there).name == FDNCNN["gray"]
    assert choose_model(white, 3, there, deblocked=True).name == FDNCNN["colour"]
    assert choose_model(white, 3, there, level=12.0).level == 12.0
    assert choose_model(white, 3, {FDNCNN["colour"]: "f"}).name == FDNCNN["colour"]
    assert choose_model(Reading(0.1, 0.2, "clean"), 3, there).name is None
    keep = Hybrid((TOLD, 1.0), ((HEAVY_ABOVE, (KEPT, 0.0)),), (TOLD, 1.0))
    assert choose_model(white, 3, there, hybrid=keep).name is None
    assert choose_model(white, 3, there, hybrid=keep._replace(white=((10.0, (KEPT, 0.0)),))).name == FDNCNN["colour"]
