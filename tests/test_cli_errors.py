"""Errors users can cause: one line on stderr, non-zero exit, never a traceback."""
import os

import pytest
import torch

from conftest import run_script
from models import build_model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    torch.save(build_model("DnCNN", num_of_layers=5).state_dict(), folder / "net.pth")
    (folder / "random.pth").write_bytes(os.urandom(500))
    return folder


CASES = {
    "missing checkpoint": (["test.py", "--logdir", "/nonexistent/net.pth"], "no such checkpoint"),
    "random bytes checkpoint": (["test.py", "--logdir", "{ckpt}/random.pth", "--data_path", "{data}"], "cannot read checkpoint"),
    "forced arch mismatch": (["test.py", "--logdir", "{ckpt}", "--arch", "ADNet", "--data_path", "{data}"], "not ADNet"),
    "missing test set": (["test.py", "--logdir", "{ckpt}", "--data_path", "{data}", "--test_data", "Nope"], "not found"),
    "negative sigma": (["test.py", "--test_noiseL", "-5"], "must be >= 0"),
    "zero batch": (["train.py", "--batchSize", "0"], "must be > 0"),
    "bad bool": (["train.py", "--preprocess", "maybe"], "expected True or False"),
    "missing h5": (["train.py", "--h5_dir", "/nonexistent", "--outf", "{tmp}/run"], "train.h5 not found"),
    "missing data path": (["preprocess.py", "--data_path", "/nonexistent", "--outf", "{tmp}"], "no such folder"),
    "demo missing weights": (["demo.py", "--demo_pth_path", "/nonexistent"], "no weights at"),
    "demo empty folder": (["demo.py", "--demo_pth_path", "{ckpt}/net.pth", "--demo_img_path", "{tmp}"], "no usable image"),
    "onnx missing checkpoint": (["pth2onnx.py", "/nonexistent.pth", "{tmp}/x.onnx"], "no such checkpoint"),
    "plot missing log": (["plot_log.py", "/nonexistent.log", "{tmp}/x.png"], "no such log"),
    "unknown flag": (["test.py", "--no_such_flag"], "unrecognized arguments"),
    "jpeg quality out of range": (["test.py", "--task", "jpeg", "--quality", "0"], "must be from 1 to 100"),
    "noise flag under another task": (["test.py", "--logdir", "{ckpt}", "--data_path", "{data}", "--task", "sr",
                                       "--copies", "3"], "--copies applies to --task denoise"),
    "bad device id": (["demo.py", "--DeviceID", "npu0"], "expected a device number"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_clear_line(case, ckpt, tiny_data, tmp_path):
    argv, expected = CASES[case]
    argv = [a.format(ckpt=ckpt, data=tiny_data, tmp=tmp_path) for a in argv]
    out = run_script(*argv)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert expected in lines[0] and "Traceback" not in out.stderr
