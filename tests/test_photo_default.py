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
from photo_noise import (DEBLOCK_UP_TO, FDNCNN, HYBRID, KEPT, LEVEL, Reading, choose_model, jpeg_quality,
                         noise_level, read_noise, weak_texture_sigma)
from utils import add_test_noise, stored_in_8_bits
from test_photo_noise import smooth_photo


def textured_photo(size=256):
    """smooth_photo with a fine pattern over its right half: texture a whole-photo reading takes for noise."""
    img = smooth_photo(3, size)
    stripes = np.sin(2.2 * np.arange(size))[None, None, :] * np.sin(1.3 * np.arange(size))[None, :, None]
    img[:, :, size // 2:] += 0.15 * stripes[:, :, size // 2:]
    return np.clip(img, 0, 1).astype(np.float32)


@pytest.mark.parametrize("sigma", [2, 5, 15, 25])
def test_the_level_read_off_white_noise_of_known_sigma_texture_or_not(sigma):
    readings = []
    for photo in (smooth_photo(3), textured_photo()):
        reading = read_noise(stored_in_8_bits(add_test_noise(torch.from_numpy(photo), sigma, 1).numpy()))
        assert abs(reading.sigma_weak - sigma) <= 0.05 * sigma, reading  # the weakly textured patches
        level = noise_level(reading)
        assert level == pytest.approx(LEVEL.white_scale * reading.sigma_weak)
        choice = choose_model(reading, 3, {FDNCNN["colour"]: "w"})
        if sigma < HYBRID.white[0][0]:  # faint noise: the photo kept (photo_noise.HYBRID)
            assert choice.name is None and HYBRID.white[0][1][0] == KEPT
        else:
            assert choice.level == pytest.approx(level)
        readings.append(reading)
    assert readings[1].sigma > 1.1 * sigma  # the whole textured photo's reading: texture passes for noise


def test_a_channel_clipped_all_over_does_not_pull_the_reading_down():
    # a saturated colour (McMaster's 15.png at sigma 20 read 13.4 and went to ADNet c15): green at 0 everywhere,
    # so every patch of it holds a clipped pixel and its least eigenvalue reads the clipping, not the noise
    photo = smooth_photo(3)
    photo[1] = 0.0
    noisy = stored_in_8_bits(add_test_noise(torch.from_numpy(photo), 20, 0).numpy())
    assert weak_texture_sigma(noisy[1:2]) < 15  # the clipped channel alone
    assert abs(weak_texture_sigma(noisy) - 20) <= 0.05 * 20  # left out of the photo's reading
    assert abs(weak_texture_sigma(noisy) - weak_texture_sigma(noisy[[0, 2]])) < 1e-9


def test_heavy_noise_gets_the_heavy_scale_and_a_large_photo_is_read_on_a_grid_of_patches():
    heavy = Reading(48.0, 50.0, "white", LEVEL.heavy_from + 1.0)
    assert noise_level(heavy) == pytest.approx(LEVEL.heavy_scale * heavy.sigma_weak)
    noisy = stored_in_8_bits(add_test_noise(torch.from_numpy(smooth_photo(3, 512)), 10, 0).numpy())
    whole = weak_texture_sigma(noisy)
    assert abs(weak_texture_sigma(noisy, max_patches=20_000) - whole) <= 0.03 * whole
    assert weak_texture_sigma(noisy[:, :5, :5]) == 0.0  # smaller than a patch: nothing read


def test_camera_noise_is_told_the_camera_level_and_clean_photos_nothing():
    from photo_noise import RULE
    assert noise_level(Reading(0.5, 2.0, "camera")) == LEVEL.camera
    faint = Reading(RULE.camera_below - 0.01, 10 * RULE.camera_below, "white", 0.3)  # over the class rule's bar
    assert noise_level(faint) == LEVEL.camera
    # a deblocked JPEG's 2x2 means show its blocks' trace: read as white noise, on its weakly textured patches
    assert noise_level(faint, deblocked=True) == pytest.approx(LEVEL.white_scale * faint.sigma_weak)
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


def test_jpegs_up_to_90_are_deblocked_unless_their_noise_reads_as_a_cameras():
    from photo_fit import fit_deblock
    from photo_noise import DEBLOCK_WHITE_UP_TO, deblocks
    assert deblocks(DEBLOCK_UP_TO, "camera") and deblocks(DEBLOCK_WHITE_UP_TO, "white") and deblocks(10, None)
    assert not deblocks(DEBLOCK_UP_TO + 1, "camera") and not deblocks(DEBLOCK_WHITE_UP_TO + 1, "white")
    assert not deblocks(None, "white")
    # white-read JPEGs gain from deblocking up to q90, camera-read ones lose above DEBLOCK_UP_TO: 90 is fitted,
    # and the camera-read ones are left alone above DEBLOCK_UP_TO all the same
    cases, kinds = {}, {}
    for q in (50, 75, 90):
        for kind in ("white", "camera"):
            key = ("A", kind, "q%d" % q)
            cases[key] = {"deblocked": 31.0 if kind == "white" or q <= DEBLOCK_UP_TO else 28.0, "not": 30.0}
            kinds[key] = kind
    assert fit_deblock(cases, "not", "deblocked", kinds) == 90
    assert fit_deblock(cases, "not", "deblocked", kinds, camera_up_to=90) <= DEBLOCK_UP_TO


def test_fit_level_finds_the_levels_that_peak_and_the_deblocking_cut_off():
    from photo_fit import LevelCase, fit_deblock, fit_level, held_out_level
    levels = [0.25 * i for i in range(200)]

    def case(fold, group, reading, best):  # PSNR peaks at the level `best`
        return LevelCase(fold, group, "x", reading, [(l, 40.0 - abs(l - best)) for l in levels])
    cases = [case("Sony", "real", Reading(0.5, s2, "camera", 0.3), 10.0) for s2 in (1.0, 3.0, 6.0)]
    cases += [case(fold, 25, Reading(s + 3.0, s + 4.0, "white", s), 1.05 * s)
              for fold in ("Kodak24", "McMaster") for s in (10.0, 15.0, 20.0)]
    cases += [case(fold, 50, Reading(s + 3.0, s + 4.0, "white", s), 1.1 * s)
              for fold in ("Kodak24", "McMaster") for s in (45.0, 60.0)]
    fitted = fit_level(cases)
    assert (fitted.white_scale, fitted.heavy_scale) == (1.05, 1.1) and 20.0 < fitted.heavy_from <= 45.0
    assert fitted.camera == 10.0
    assert set(held_out_level(cases)) == {"Sony", "Kodak24", "McMaster"}
    jpegs = {("A", "img", "q%d" % q): {"deblocked": 30.0 + (q <= 50), "not": 30.5} for q in (10, 30, 50, 70, 90)}
    assert fit_deblock(jpegs, "not", "deblocked") == 50


def test_with_the_references_white_noise_near_15_goes_to_adnet_c15_and_faint_noise_is_kept():
    """photo_noise.HYBRID (fitted held out, docs/real-noise.md): white noise whose weakly textured patches read
    12.5 to 17.5 -> ADNet c15, under 2.5 -> kept; other white noise, a camera's, heavy noise, gray photos,
    deblocked JPEGs and a level given -> FDnCNN; c15 not there -> FDnCNN."""
    from photo_noise import HEAVY_ABOVE, HYBRID, KEPT, TOLD, Hybrid
    assert HYBRID.camera[0] == TOLD and HYBRID.heavy[0] == TOLD
    there = {FDNCNN["colour"]: "f", FDNCNN["gray"]: "g", "ADNet cblind": "b", "ADNet c15": "c"}
    white = Reading(20.0, 22.0, "white", 15.0)  # texture reads over 17.5 on the whole photo: sigma_weak decides
    choice = choose_model(white, 3, there, strength=0.8)
    assert (choice.name, choice.weights, choice.level) == ("ADNet c15", "c", None)
    assert choice.strength == pytest.approx(0.8)
    assert choose_model(Reading(3.0, 5.0, "white", 1.0), 3, there).name is None  # faint: kept
    for weak in (5.0, 25.0):
        assert choose_model(Reading(weak, weak, "white", weak), 3, there).level == pytest.approx(noise_level(
            Reading(weak, weak, "white", weak)))
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
