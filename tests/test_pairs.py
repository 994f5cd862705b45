"""test.py --test_noiseL 0 on photos that are already noisy, beside their clean versions: PolyU's layout
(<name>_real.<ext> / <name>_mean.<ext>) and noisy/ + clean/ sub-folders, scored against the clean image."""
import csv
import os

import cv2
import numpy as np
import torch

from conftest import SHARED, make_image, needs_shared, psnr_on_test_data, run_script
from images import find_pairs, iter_pairs, list_images
from inference import denoise_any, inference_model
from models import build_model
from utils import psnr


def noisy_copy(clean, seed, sigma=12):
    rng = np.random.default_rng(seed)
    return np.clip(np.round(clean + sigma * rng.standard_normal(clean.shape)), 0, 255).astype(np.uint8)


def polyu_folder(root, count=3):
    os.makedirs(root, exist_ok=True)
    for i in range(count):
        clean = make_image((48, 56, 3), i)
        cv2.imwrite(os.path.join(root, "cam_%d_mean.png" % i), clean)
        cv2.imwrite(os.path.join(root, "cam_%d_real.png" % i), noisy_copy(clean, i))
    cv2.imwrite(os.path.join(root, "lonely_real.png"), make_image((48, 56, 3), 9))  # no clean version: left out
    return root


def test_polyu_layout_pairs_by_name(tmp_path):
    layout, pairs = find_pairs(polyu_folder(str(tmp_path / "polyu")))
    assert layout == "<name>_real + <name>_mean"
    assert [p[0] for p in pairs] == ["cam_0", "cam_1", "cam_2"]
    assert all(p[1].endswith("_real.png") and p[2].endswith("_mean.png") for p in pairs)


def test_noisy_and_clean_folders_pair_by_file_name(tmp_path):
    for sub in ("noisy", "clean"):
        os.makedirs(tmp_path / sub)
    for i, name in enumerate(("a.png", "b.png")):
        clean = make_image((40, 40), i)
        cv2.imwrite(str(tmp_path / "clean" / name), clean)
        cv2.imwrite(str(tmp_path / "noisy" / name), noisy_copy(clean, i))
    cv2.imwrite(str(tmp_path / "noisy" / "only_noisy.png"), make_image((40, 40), 5))
    layout, pairs = find_pairs(str(tmp_path))
    assert layout == "noisy/ + clean/" and [p[0] for p in pairs] == ["a", "b"]


def test_a_plain_folder_holds_no_pairs(tmp_path):
    cv2.imwrite(str(tmp_path / "photo.png"), make_image((40, 40), 0))
    assert find_pairs(str(tmp_path)) == (None, [])


def test_pairs_of_other_sizes_are_skipped(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "x_mean.png"), make_image((40, 40, 3), 0))
    cv2.imwrite(str(tmp_path / "x_real.png"), make_image((40, 48, 3), 0))
    assert list(iter_pairs(find_pairs(str(tmp_path))[1], prefetch=False)) == []
    assert "skipping x" in capsys.readouterr().err


def test_test_py_scores_pairs_against_the_clean_photo(tmp_path):
    """Per image and mean PSNR over the colour image, the oracle computed here with the same model; results.csv
    has the noisy input's PSNR beside."""
    folder = polyu_folder(str(tmp_path / "polyu"))
    torch.manual_seed(0)
    model = build_model("DnCNN", channels=3, num_of_layers=5)
    torch.save(model.state_dict(), tmp_path / "net.pth")
    out = run_script("test.py", "--logdir", str(tmp_path / "net.pth"), "--test_data", folder, "--test_noiseL", "0",
                     "--save_dir", str(tmp_path / "out"), "--backend", "torch")
    assert out.returncode == 0, out.stderr
    assert "3 pairs of already noisy and clean photos" in out.stdout
    net = inference_model(model.eval(), torch.device("cpu"))
    want, noisy_want = [], []
    for name, noisy, clean in iter_pairs(find_pairs(folder)[1], prefetch=False):
        est = np.clip(denoise_any(net, noisy, torch.device("cpu")), 0, 1)
        want.append(psnr(clean, est))
        noisy_want.append(psnr(clean, noisy))
        assert "%s PSNR " % name in out.stdout
    assert abs(psnr_on_test_data(out.stdout) - np.mean(want)) < 1e-4
    assert "PSNR of the noisy inputs %f" % np.mean(noisy_want) in out.stdout
    with open(tmp_path / "out" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == ["cam_0", "cam_1", "cam_2"]
    assert [abs(float(r["noisy_psnr"]) - v) < 1e-3 for r, v in zip(rows, noisy_want)] == [True] * 3
    assert len(list_images(str(tmp_path / "out"))) == 3  # the denoised photos


@needs_shared
def test_polyu_crops_as_published(tmp_path):
    """Two of PolyU's crops, as shipped in ../shared: the layout is found and every crop is scored."""
    folder = tmp_path / "polyu"
    folder.mkdir()
    names = sorted(os.listdir(os.path.join(SHARED, "data", "PolyU")))[:4]
    for name in names:
        os.symlink(os.path.join(SHARED, "data", "PolyU", name), folder / name)
    layout, pairs = find_pairs(str(folder))
    assert layout and len(pairs) == 2 and all(p[1].endswith("_real.JPG") for p in pairs)
