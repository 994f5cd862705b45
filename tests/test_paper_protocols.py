"""The DnCNN paper's table (its README.txt in cszn/DnCNN model/) under test.py's protocols, with the authors' own
models: whole sets in make test-all (tests/conftest.py's LONG_TESTS), two small images in make test."""
import os
import re

import pytest
import torch

from conftest import SHARED, needs_shared, psnr_on_test_data, run_script

CSZN = os.path.join(SHARED, "reference_weights", "cszn")
DATA = os.path.join(SHARED, "data")


@needs_shared
def test_two_small_images_score_as_on_the_whole_set_run():
    """Per-image figures of the whole-set runs that meet the paper (Set5 x3 33.7526 vs 33.75; the JPEG rows
    within 0.01 dB); fp32 differences between CPUs and backends are far under the tolerance."""
    from checkpoints import load_model
    from protocols import evaluate_task
    net = load_model(os.path.join(CSZN, "DnCNN3.mat")).eval()
    cases = (("sr", "Set5/butterfly_GT.png", dict(scale=3), 30.0207, 0.9425),
             ("jpeg", "Set5/head_GT.png", dict(quality=10), 31.8440, 0.7633))
    for task, name, kwargs, psnr, ssim in cases:
        (row,) = evaluate_task(net, [os.path.join(DATA, name)], task, torch.device("cpu"), **kwargs)
        assert row["psnr"] == pytest.approx(psnr, abs=2e-3), name
        assert row["ssim"] == pytest.approx(ssim, abs=2e-4), name


# (model, flags, paper PSNR, paper SSIM, bar in dB): the deterministic protocols within 0.02 dB; Gaussian
# denoising within 0.05 (MATLAB's randn draws other noise than torch's)
ROWS = {
    "sr-Set5-x2": ("DnCNN3.mat", ["--test_data", "Set5", "--task", "sr", "--scale", "2"], 37.58, 0.9590, 0.02),
    "sr-Set5-x3": ("DnCNN3.mat", ["--test_data", "Set5", "--task", "sr", "--scale", "3"], 33.75, 0.9222, 0.02),
    "sr-Set5-x4": ("DnCNN3.mat", ["--test_data", "Set5", "--task", "sr", "--scale", "4"], 31.40, 0.8845, 0.02),
    "sr-Set14-x3": ("DnCNN3.mat", ["--test_data", "Set14", "--task", "sr", "--scale", "3"], 29.81, 0.8321, 0.02),
    "jpeg-classic5-q10": ("DnCNN3.mat", ["--test_data", "classic5", "--task", "jpeg", "--quality", "10"],
                          29.40, 0.8026, 0.02),
    "jpeg-LIVE1-q20": ("DnCNN3.mat", ["--test_data", "LIVE1", "--task", "jpeg", "--quality", "20"],
                       31.59, 0.8802, 0.02),
    "gd-BSD68-25": ("DnCNN3.mat", ["--test_data", "BSD68", "--test_noiseL", "25", "--uint8_output"],
                    29.02, 0.8190, 0.05),
}


@needs_shared
@pytest.mark.parametrize("row", sorted(ROWS))
def test_paper_row(row):
    model, flags, paper_psnr, paper_ssim, bar = ROWS[row]
    out = run_script("test.py", "--logdir", os.path.join(CSZN, model), "--data_path", DATA, "--quiet", *flags,
                     timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    psnr = psnr_on_test_data(out.stdout)
    assert abs(psnr - paper_psnr) <= bar, (row, psnr, paper_psnr)
    ssim = float(re.search(r"SSIM on test data ([\d.]+)", out.stdout).group(1))
    assert abs(ssim - paper_ssim) <= 0.001, (row, ssim, paper_ssim)
