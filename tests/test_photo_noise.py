"""demo.py's default and test.py --logdir auto: a photo's noise read off the photo (photo_noise.read_noise), the
model chosen for it (choose_model), said per photo and written to a CSV."""
import csv
import os

import cv2
import numpy as np
import pytest
import torch

from camera_noise import add_camera_noise
from conftest import SHARED, needs_shared, run_script
from photo_noise import (CSV_FIELDS, PREFERENCES, RULE, SHIPPED, Reading, available_weights, choose_model, describe,
                         noise_kind, read_noise, strength_kind)
from utils import add_test_noise, eight_bit_noisy, stored_in_8_bits


def smooth_photo(channels=3, size=256):
    """Gradients and slow waves, no texture: what the estimator reads on it is the noise added."""
    yy, xx = np.mgrid[0:size, 0:size] / float(size)
    waves = [0.5 + 0.3 * np.sin(2 * np.pi * (xx + k * yy)) * np.cos(np.pi * yy) for k in (0.5, 1, 1.5)]
    return np.stack(waves[:channels]).astype(np.float32)


def test_eight_bit_noisy_is_the_test_noise_stored_as_a_photo():
    clean = smooth_photo(3, 64)
    noisy = eight_bit_noisy(clean, 25, seed=3)
    levels = noisy * 255.0
    assert noisy.dtype == np.float32 and noisy.min() >= 0.0 and noisy.max() <= 1.0
    assert np.abs(levels - np.round(levels)).max() < 1e-4  # whole 8-bit levels
    unrounded = add_test_noise(torch.from_numpy(clean)[None], 25, 3)[0].numpy().clip(0.0, 1.0)
    assert np.abs(noisy - unrounded).max() <= 0.5 / 255.0 + 1e-6  # the same noise, rounded once
    assert eight_bit_noisy(clean, 0) is clean


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("sigma", [5, 15, 25, 50, 75])
def test_white_noise_reads_as_its_sigma(sigma, channels):
    # measured (docs/real-noise.md): within 4 % up to sigma 50; at 75 clipping at 0 and 255 takes 10 %
    tolerance = 0.05 * sigma + 0.3 if sigma <= 50 else 0.14 * sigma
    for seed in range(2):
        noisy = stored_in_8_bits(add_test_noise(torch.from_numpy(smooth_photo(channels)), sigma, seed).numpy())
        reading = read_noise(noisy)
        assert abs(reading.sigma - sigma) <= tolerance, reading
        assert abs(reading.sigma_2x2 - sigma) <= tolerance, reading  # white: the same on the 2x2 means
        assert reading.kind == ("heavy" if sigma > 50 else "white")


def test_a_clean_photo_reads_clean():
    assert read_noise(stored_in_8_bits(smooth_photo())).kind == "clean"


def test_jpeg_camera_noise_reads_as_camera_noise():
    clean = torch.from_numpy(smooth_photo())[None].repeat(8, 1, 1, 1)
    noisy = stored_in_8_bits(add_test_noise(clean, 4, 5).numpy())
    kinds = []
    for img in noisy:  # correlated as a demosaiced raw, then a camera's JPEG
        hwc = cv2.GaussianBlur(np.ascontiguousarray(img.transpose(1, 2, 0)), (0, 0), 0.8)
        ok, buf = cv2.imencode(".jpg", np.round(hwc * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
        kinds.append(read_noise(cv2.imdecode(buf, cv2.IMREAD_COLOR).transpose(2, 0, 1).astype(np.float32) / 255).kind)
    assert kinds == ["camera"] * 8, kinds


@needs_shared
def test_polyu_crops_read_as_camera_noise_and_kodak_noise_as_white():
    polyu = os.path.join(SHARED, "data", "PolyU")
    names = sorted(f for f in os.listdir(polyu) if f.endswith("_real.JPG"))[::20]
    kinds = [read_noise(cv2.imread(os.path.join(polyu, f)).transpose(2, 0, 1).astype(np.float32) / 255).kind
             for f in names]
    assert kinds.count("camera") == len(kinds), kinds
    as_published = read_noise(cv2.imread(os.path.join(SHARED, "data", "Kodak24", "kodim20.png")).transpose(2, 0, 1)
                              .astype(np.float32) / 255)
    assert as_published.kind == "white", as_published  # the Kodak photo that reads faintest on its pixels
    photo = cv2.imread(os.path.join(SHARED, "data", "Kodak24", "kodim03.png")).transpose(2, 0, 1).astype(np.float32) / 255
    reading = read_noise(stored_in_8_bits(add_test_noise(torch.from_numpy(photo), 25, 0).numpy()))
    assert reading.kind == "white" and abs(reading.sigma - 25) < 2.5, reading


def test_noise_kinds_from_made_up_readings():
    assert noise_kind(0.2, 0.3) == "clean"
    assert noise_kind(0.3, 2.0) == "camera"      # faint on the pixels, clear on the 2x2 means
    assert noise_kind(0.9, 1.5) == "white"       # not twice over
    assert noise_kind(3.0, 9.0) == "white"       # texture on a photo stored without JPEG
    assert noise_kind(15.0, 15.5) == "white"
    assert noise_kind(70.0, 68.0) == "heavy"


ZOO = {name: "/zoo/" + name for prefs in PREFERENCES.values() for name in prefs}
OURS = {name: "/ours/" + name for name in SHIPPED}


@pytest.mark.parametrize("kind, channels, available, expected", [
    ("camera", 3, ZOO, "ADNet c15"),
    ("camera", 3, OURS, "CDnCNN-S-15"),
    ("camera", 3, {"CDnCNN-camera": "/x", "CDnCNN-B": "/y"}, "CDnCNN-camera"),
    ("white", 3, ZOO, "ADNet cblind"),
    ("white", 3, OURS, "CDnCNN-B"),
    ("heavy", 3, ZOO, "CDnCNN-B"),
    ("heavy", 3, {"ADNet c75": "/x", "ADNet cblind": "/y"}, "ADNet c75"),
    ("white", 1, ZOO, "ADNet gblind"),
    ("white", 1, OURS, "DnCNN-S-25"),         # never a colour model on a gray photo
    ("camera", 1, {"DnCNN-S-25": "/x"}, "DnCNN-S-25"),
    ("heavy", 1, ZOO, "SaoYan DnCNN-S-50"),
])
def test_choice_rule(kind, channels, available, expected):
    choice = choose_model(Reading(10.0 if kind != "heavy" else 60.0, 20.0, kind), channels, available)
    assert (choice.name, choice.weights) == (expected, available[expected])


@pytest.mark.parametrize("sigma, available, expected", [
    (45.0, ZOO, "ADNet g50"),                 # a sigma-50 model from a reading of 40 (sigma 50 reads 44 to 47)
    (39.0, ZOO, "ADNet gblind"),
    (45.0, {"SaoYan DnCNN-S-50": "/a", "SaoYan DnCNN-B": "/b"}, "SaoYan DnCNN-S-50"),
    (20.0, {"SaoYan DnCNN-S-50": "/a", "SaoYan DnCNN-B": "/b"}, "SaoYan DnCNN-B"),
    (8.5, OURS, "DnCNN-S-25"),
    (6.0, OURS, None),                        # a sigma-25 model would make light noise worse: kept as it is
    (6.0, ZOO, "ADNet gblind"),
])
def test_gray_white_noise_goes_by_its_reading(sigma, available, expected):
    choice = choose_model(Reading(sigma, sigma, "white"), 1, available)
    assert choice.name == expected
    assert choice.weights == (available[expected] if expected else None)
    if expected is None:
        assert "noise under what DnCNN-S-25 and ADNet-S-25 are for" == choice.why
        assert describe("a.png", Reading(sigma, sigma, "white"), choice).endswith(
            "white -> kept as it is (noise under what DnCNN-S-25 and ADNet-S-25 are for)")


def test_camera_noise_ignores_the_sigma_ranges():
    assert choose_model(Reading(0.3, 2.0, "camera"), 1, OURS).name == "DnCNN-S-25"


def test_clean_photos_are_kept_and_nothing_there_is_an_error():
    assert choose_model(Reading(0.1, 0.2, "clean"), 3, OURS).name is None
    with pytest.raises(LookupError, match="no weights for white noise on a colour photo"):
        choose_model(Reading(10.0, 10.0, "white"), 3, {"DnCNN-S-25": "/x"})


def test_available_weights_finds_shipped_and_fetched(tmp_path):
    (tmp_path / "adnet" / "color" / "c15").mkdir(parents=True)
    (tmp_path / "adnet" / "color" / "c15" / "model_70.pth").write_bytes(b"")
    (tmp_path / "adnet" / "color" / "c25").mkdir(parents=True)  # empty: not there
    found = available_weights(reference_dir=str(tmp_path))
    assert found["ADNet c15"] == str(tmp_path / "adnet" / "color" / "c15")
    assert "ADNet c25" not in found
    assert {"CDnCNN-B", "CDnCNN-S-15", "CDnCNN-camera", "DnCNN-S-25", "ADNet-S-25"} <= set(found)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_demo_default_says_and_writes_each_choice(tmp_path, capsys):
    import demo  # in this process (demo.py as its own process: test_cli_errors, test_shipped_weights)
    photos = tmp_path / "photos"
    photos.mkdir()
    clean = smooth_photo(3, 96)
    noisy = add_test_noise(torch.from_numpy(clean), 20, 1).numpy()
    cv2.imwrite(str(photos / "noisy.png"), np.round(np.clip(noisy, 0, 1) * 255).transpose(1, 2, 0).astype(np.uint8))
    cv2.imwrite(str(photos / "clean.png"), np.round(clean * 255).transpose(1, 2, 0).astype(np.uint8))
    cv2.imwrite(str(photos / "gray.png"), np.round(np.clip(noisy[0], 0, 1) * 255).astype(np.uint8))
    out = tmp_path / "out"
    args = ["--demo_img_path", str(photos), "--out", str(out), "--test_noiseL", "0", "--quiet",
            "--reference_weights", str(tmp_path / "none")]
    demo.main(args)
    said = capsys.readouterr().out
    assert "noisy.png: noise" in said and "white -> CDnCNN-B" in said
    assert "clean.png: noise" in said and "clean -> kept as it is" in said
    rows = {row["image"]: row for row in read_csv(out / "choices.csv")}
    assert set(rows) == {"noisy.png", "clean.png", "gray.png"} and list(read_csv(out / "choices.csv")[0]) == list(CSV_FIELDS)
    assert (rows["noisy.png"]["noise"], rows["noisy.png"]["model"]) == ("white", "CDnCNN-B")
    assert abs(float(rows["noisy.png"]["noise_sigma"]) - 20) < 2
    assert rows["gray.png"]["model"] == "DnCNN-S-25" and rows["clean.png"]["model"] == "none"
    assert float(rows["noisy.png"]["strength"]) == RULE.strength[strength_kind(Reading(
        float(rows["noisy.png"]["noise_sigma"]), 0.0, "white"), 3)] and rows["clean.png"]["strength"] == "0.00"
    assert "white -> CDnCNN-B, strength %s" % rows["noisy.png"]["strength"] in said
    kept = cv2.imread(str(out / "clean_denoised.png")).transpose(2, 0, 1)
    assert np.array_equal(kept, np.round(clean * 255).astype(np.uint8))
    os.remove(out / "gray_denoised.png")  # a re-run redoes this one and keeps the others' rows
    demo.main(args)
    said = capsys.readouterr().out
    assert "gray.png: noise" in said and "noisy.png: noise" not in said
    assert {row["image"] for row in read_csv(out / "choices.csv")} == {"noisy.png", "clean.png", "gray.png"}


def test_strength_and_dry_run(tmp_path, capsys):
    """--strength scales what the default removes (0: the photo as it is; said per photo and in choices.csv);
    --dry_run prints each photo's reading and choice and writes nothing (demo.py in this process)."""
    import demo
    photos = tmp_path / "photos"
    photos.mkdir()
    clean = smooth_photo(3, 64)
    noisy = np.round(np.clip(add_test_noise(torch.from_numpy(clean), 20, 1).numpy(), 0, 1) * 255).astype(np.uint8)
    cv2.imwrite(str(photos / "noisy.png"), noisy.transpose(1, 2, 0))
    common = ["--demo_img_path", str(photos), "--test_noiseL", "0", "--quiet", "--no_compare",
              "--reference_weights", str(tmp_path / "none")]
    demo.main(common + ["--out", str(tmp_path / "dry"), "--dry_run", "--strength", "0.5"])
    said = capsys.readouterr().out
    full = RULE.strength[("colour", "white")]
    assert "noisy.png: noise" in said and "white -> CDnCNN-B, strength %.2f" % (0.5 * full) in said
    assert "dry run: 1 images would be written" in said and not os.path.exists(tmp_path / "dry")
    assert "weakly textured patches: " in said  # what FDnCNN would be told, read where texture does not pass
    outputs = {}
    for strength in ("0", "0.5", "1"):
        demo.main(common + ["--out", str(tmp_path / strength), "--strength", strength])
        outputs[strength] = cv2.imread(str(tmp_path / strength / "noisy_denoised.png")).transpose(2, 0, 1).astype(float)
        row = read_csv(tmp_path / strength / "choices.csv")[0]
        assert row["strength"] == "%.2f" % (float(strength) * full)
        assert 16 < float(row["noise_sigma_weak"]) <= 20  # 64 x 64: few patches, the least eigenvalue reads low
    assert np.array_equal(outputs["0"], noisy)  # nothing removed
    half = noisy + 0.5 * (outputs["1"] - noisy)
    assert np.abs(outputs["0.5"] - half).max() <= 1.0  # half the noise removed (8-bit rounding)
    assert np.abs(outputs["1"] - noisy).mean() > 5


def test_test_py_auto_scores_pairs_with_the_choice_per_image(tmp_path):
    for sub in ("noisy", "clean"):
        (tmp_path / "set" / sub).mkdir(parents=True)
    clean = smooth_photo(3, 96)
    noisy = stored_in_8_bits(add_test_noise(torch.from_numpy(clean), 25, 2).numpy())
    cv2.imwrite(str(tmp_path / "set" / "clean" / "a.png"), np.round(clean * 255).transpose(1, 2, 0).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "set" / "noisy" / "a.png"), np.round(noisy * 255).transpose(1, 2, 0).astype(np.uint8))
    done = run_script("test.py", "--logdir", "auto", "--test_data", str(tmp_path / "set"), "--test_noiseL", "0",
                      "--save_dir", str(tmp_path / "res"), "--reference_weights", str(tmp_path / "none"), "--quiet")
    assert done.returncode == 0, done.stderr
    row = read_csv(tmp_path / "res" / "results.csv")[0]
    assert (row["image"], row["noise"], row["model"]) == ("a", "white", "CDnCNN-B")
    assert float(row["psnr"]) > float(row["noisy_psnr"]) + 3
    kept = run_script("test.py", "--logdir", "auto", "--test_data", str(tmp_path / "set"), "--test_noiseL", "0",
                      "--save_dir", str(tmp_path / "kept"), "--reference_weights", str(tmp_path / "none"), "--quiet",
                      "--strength", "0")
    assert kept.returncode == 0 and "strength 0.00" in kept.stdout, kept.stderr
    row = read_csv(tmp_path / "kept" / "results.csv")[0]
    assert abs(float(row["psnr"]) - float(row["noisy_psnr"])) < 1e-4  # nothing removed


def test_demo_keeps_fp32_by_default():
    # bf16 lost 0.08 dB on PolyU and 0.46 dB on Kodak24 at sigma 25 under the default's models (docs/real-noise.md)
    import demo
    assert demo.parse_args([]).amp == "none"


def test_photo_grid_scores_every_model_and_derives_the_default(tmp_path):
    """docs/scripts/photo_grid.py, which measures the rule: a row per photo, sigma and model, and a table whose
    default row is the output of the model the rule picks for each photo."""
    import json
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        cv2.imwrite(str(photos / ("%d.png" % i)), np.round(smooth_photo(1, 48 + 8 * i)[0] * 255).astype(np.uint8))
    grid = tmp_path / "grid.jsonl"
    args = ["docs/scripts/photo_grid.py", str(photos), "--channels", "1", "--sigmas", "0", "25",
            "--reference_weights", str(tmp_path / "none"), "--out", str(grid)]
    assert run_script(*args).returncode == 0
    rows = [json.loads(line) for line in open(grid)]
    assert sorted({r["model"] for r in rows}) == ["ADNet-S-25", "DnCNN-S-25", "kept as it is"]
    assert len(rows) == 2 * 2 * 3
    again = run_script(*args)  # a finished grid is not redone
    assert again.returncode == 0 and len(open(grid).read().splitlines()) == len(rows)
    table = run_script("docs/scripts/photo_grid.py", str(grid), "--table")
    assert table.returncode == 0, table.stderr
    default = next(line for line in table.stdout.splitlines() if line.startswith("| **default**, this project"))
    dncnn = {(r["image"], r["sigma"]): r["psnr"] for r in rows if r["model"] == "DnCNN-S-25"}
    assert "**∞** (kept as it is 2)" in default  # clean photos are kept
    assert "**%.2f** (DnCNN-S-25 2)" % np.mean([dncnn[(i, 25)] for i in ("0.png", "1.png")]) in default


def test_photo_grid_pairs_as_they_are_or_re_saved(tmp_path):
    """photo_grid --pairs --jpeg: 0 takes each noisy JPEG as it is (labelled with its file's quality), Q re-saves
    it at Q (a camera JPEG of another quality, docs/real-noise.md)."""
    import argparse
    import importlib.util
    from PIL import Image
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "scripts", "photo_grid.py")
    spec = importlib.util.spec_from_file_location("photo_grid", path)
    photo_grid = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(photo_grid)
    rgb = np.round(np.transpose(smooth_photo(3, 48), (1, 2, 0)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a_real.jpg", quality=75)
    Image.fromarray(rgb).save(tmp_path / "a_mean.png")
    args = argparse.Namespace(folder=str(tmp_path), pairs=True, jpeg=[0, 90], offset=0, every=1, channels=3,
                              crop=0)
    grid = list(photo_grid.photos(args))
    assert [label for _, label, _, _ in grid] == ["q75", "q90 re-saved"]
    as_is, resaved = grid[0][2], grid[1][2]
    assert as_is.shape == resaved.shape == (3, 48, 48)
    assert 0 < np.abs(as_is - resaved).max() < 0.2  # re-saved, not the file as it is
