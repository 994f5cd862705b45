"""The weights shipped in weights/ go through the same checks as any checkpoint."""
import glob
import os

import numpy as np
import pytest
import torch

from conftest import ROOT, run_script
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
