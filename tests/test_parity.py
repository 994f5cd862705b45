"""test.py reproduces the reference PSNR table of ../shared/README.md to 0.001 dB."""
import os
import re

import pytest

from conftest import SHARED, needs_shared, psnr_on_test_data, run_script

REF = os.path.join(SHARED, "reference_weights")
DATA = os.path.join(SHARED, "data")

CASES = [  # checkpoint, set, sigma, reference PSNR
    ("saoyan/DnCNN-S-25", "Set12", 25, 30.3949),
    ("saoyan/DnCNN-S-15", "Set12", 15, 32.8377),
    ("saoyan/DnCNN-B", "Set12", 50, 27.1368),
    ("adnet/g25", "Set12", 25, 30.5760),
    ("adnet/g50", "Set68", 50, 26.2875),
]


@needs_shared
@pytest.mark.parametrize("ckpt,test_set,sigma,expected", CASES)
def test_reference_psnr(ckpt, test_set, sigma, expected):
    out = run_script("test.py", "--logdir", os.path.join(REF, ckpt), "--data_path", DATA,
                     "--test_data", test_set, "--test_noiseL", str(sigma), "--quiet")
    assert out.returncode == 0, out.stderr
    psnr = psnr_on_test_data(out.stdout)
    assert abs(psnr - expected) < 1e-3, (psnr, expected)
    assert re.search(r"SSIM on test data 0\.\d+", out.stdout)
    per_image = re.findall(r"^\S+\.png PSNR [\d.]+ SSIM [\d.]+$", out.stdout, re.M)
    assert len(per_image) == len(os.listdir(os.path.join(DATA, test_set)))
