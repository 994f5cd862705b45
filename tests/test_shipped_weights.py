"""The weights shipped in weights/ go through the same checks as any checkpoint."""
import glob
import os
import re

import numpy as np
import pytest
import torch

from conftest import ROOT, SHARED, needs_shared, psnr_on_test_data, run_script
from models import denoise, fold_batchnorm
from utils import load_model

SHIPPED = sorted(glob.glob(os.path.join(ROOT, "weights", "*", "net.pth")))
pytestmark = pytest.mark.skipif(not SHIPPED, reason="no weights/*/net.pth shipped yet")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_loads_folds_and_exports(path, tmp_path):
    import onnxruntime as ort
    model = load_model(path)
    x = torch.rand(1, 1, 45, 61)
    with torch.no_grad():
        assert torch.allclose(denoise(model, x), denoise(fold_batchnorm(model), x), atol=1e-5)
    out = run_script("pth2onnx.py", path, str(tmp_path / "m.onnx"))
    assert out.returncode == 0, out.stderr
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for shape in ((1, 1, 40, 56), (2, 1, 64, 33)):
        arr = np.random.RandomState(1).rand(*shape).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(arr)).numpy()
        assert np.abs(session.run(None, {"input": arr})[0] - expected).max() <= 1e-4
    assert os.path.isfile(os.path.join(os.path.dirname(path), "README.md"))


def test_demo_defaults_use_shipped_weights(tmp_path):
    out = run_script("demo.py", "--out", str(tmp_path), "--quiet")
    assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(tmp_path)) == ["shapes_compare.png", "shapes_denoised.png",
                                            "waves_compare.png", "waves_denoised.png"]
    psnrs = [float(line.split()[2]) for line in out.stdout.splitlines() if " PSNR " in line]
    noisy = [float(line.split()[4].rstrip(")")) for line in out.stdout.splitlines() if " PSNR " in line]
    assert all(p > n + 3 for p, n in zip(psnrs, noisy))  # it really denoises


@needs_shared
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_readme_figures_reproduce(path):
    """Each weights README's Set12 figures are what test.py measures (Set68 is checked by hand: slower)."""
    folder = os.path.dirname(path)
    with open(os.path.join(folder, "README.md")) as f:
        row = re.search(r"^\| these weights \| ([\d.]+) / ([\d.]+) \| ([\d.]+) / ([\d.]+) \|", f.read(), re.M)
    assert row, "README.md has no '| these weights | Set12 PSNR / SSIM | Set68 PSNR / SSIM |' row"
    out = run_script("test.py", "--logdir", folder, "--data_path", os.path.join(SHARED, "data"),
                     "--test_data", "Set12", "--test_noiseL", "25", "--quiet")
    assert out.returncode == 0, out.stderr
    psnr = psnr_on_test_data(out.stdout)
    ssim = float(re.search(r"SSIM on test data ([\d.]+)", out.stdout).group(1))
    assert abs(psnr - float(row[1])) < 1e-3 and abs(ssim - float(row[2])) < 1e-4, (psnr, ssim, row.groups())
