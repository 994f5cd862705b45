"""The weights shipped in weights/ go through the same checks as any checkpoint."""
import glob
import os
import re

import numpy as np
import pytest
import torch

from conftest import ROOT, SHARED, needs_shared, psnr_on_test_data, run_script
from test_parity import SET68_SUBSET
from models import denoise, fold_batchnorm
from checkpoints import load_model

SHIPPED = sorted(glob.glob(os.path.join(ROOT, "weights", "*", "net.pth")))
pytestmark = pytest.mark.skipif(not SHIPPED, reason="no weights/*/net.pth shipped yet")
FULL = os.environ.get("PARITY") == "full"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_loads_folds_and_exports(path, tmp_path):
    import onnxruntime as ort
    model = load_model(path)
    x = torch.rand(1, model.channels, 45, 61)
    with torch.no_grad():
        assert torch.allclose(denoise(model, x), denoise(fold_batchnorm(model), x), atol=1e-5)
    out = run_script("pth2onnx.py", path, str(tmp_path / "m.onnx"))
    assert out.returncode == 0, out.stderr
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for shape in ((1, model.channels, 40, 56), (2, model.channels, 64, 33)):
        arr = np.random.RandomState(1).rand(*shape).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(arr)).numpy()
        assert np.abs(session.run(None, {"input": arr})[0] - expected).max() <= 1e-4
    assert os.path.isfile(os.path.join(os.path.dirname(path), "README.md"))


def test_demo_defaults_use_shipped_weights(tmp_path):
    out = run_script("demo.py", "--out", str(tmp_path), "--quiet")
    assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(tmp_path)) == ["choices.csv", "shapes_compare.png", "shapes_denoised.png",
                                            "waves_compare.png", "waves_denoised.png"]
    with open(tmp_path / "choices.csv") as f:
        assert sorted(row.split(",")[0] for row in f.read().splitlines()[1:]) == ["shapes.png", "waves.png"]
    psnrs = [float(line.split()[2]) for line in out.stdout.splitlines() if " PSNR " in line]
    noisy = [float(line.split()[4].rstrip(")")) for line in out.stdout.splitlines() if " PSNR " in line]
    assert all(p > n + 3 for p, n in zip(psnrs, noisy))  # it really denoises


@needs_shared
@pytest.mark.parametrize("test_set", ["Set12", "Set68"] if FULL else ["Set68"])
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_readme_figures_reproduce(path, test_set, tmp_path):
    """Each weights README's Set68 subset figure (three images, every run) and, under PARITY=full (make parity),
    its Set12 and Set68 rows are what test.py measures."""
    folder = os.path.dirname(path)
    with open(os.path.join(folder, "README.md")) as f:
        text = f.read()
    row = re.search(r"^\| these weights \| ([\d.]+) / ([\d.]+) \| ([\d.]+) / ([\d.]+) \|", text, re.M)
    assert row, "README.md has no '| these weights | Set12 PSNR / SSIM | Set68 PSNR / SSIM |' row"
    subset = re.search(r"Set68 subset PSNR (\d+\.\d+)", text)
    assert subset, "README.md gives no 'Set68 subset PSNR' figure"
    if test_set == "Set12":
        data, want_psnr, want_ssim = os.path.join(SHARED, "data", "Set12"), float(row[1]), float(row[2])
    elif FULL:
        data, want_psnr, want_ssim = os.path.join(SHARED, "data", "Set68"), float(row[3]), float(row[4])
    else:
        data, want_psnr, want_ssim = str(tmp_path), float(subset[1]), None
        for image in SET68_SUBSET:
            os.symlink(os.path.join(SHARED, "data", "Set68", image), tmp_path / image)
    out = run_script("test.py", "--logdir", folder, "--test_data", data, "--test_noiseL", "25", "--quiet")
    assert out.returncode == 0, out.stderr
    psnr = psnr_on_test_data(out.stdout)
    ssim = float(re.search(r"SSIM on test data ([\d.]+)", out.stdout).group(1))
    assert abs(psnr - want_psnr) < 1e-3, (psnr, want_psnr)
    assert want_ssim is None or abs(ssim - want_ssim) < 1e-4, (ssim, want_ssim)
