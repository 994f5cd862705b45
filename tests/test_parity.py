"""test.py reproduces the reference PSNR table of ../shared/README.md to 0.001 dB.

Set12 cases run on the whole set. Set68 cases run on three of its images on every `make test`, against the
references' own code run here on those images (ADNet's gray/test.py harness -- the table's protocol, seed 0
per image -- with the authors' model classes; Python-2 prints, `.cuda()` and skimage's renamed import
mended): per image
  SaoYan DnCNN-S-25, sigma 25: test001 25.971644  test030 29.977812  test060 31.165645
  ADNet g25, sigma 25:         test001 25.956839  test030 30.007361  test060 31.143935
  ADNet g50, sigma 50:         test001 23.177228  test030 27.034414  test060 28.948922
`make parity` (PARITY=full) runs them on all 68 images against the table's figures.
"""
import os
import re

import pytest

from conftest import SHARED, needs_shared, psnr_on_test_data, run_script

REF = os.path.join(SHARED, "reference_weights")
DATA = os.path.join(SHARED, "data")
FULL = os.environ.get("PARITY") == "full"
SET68_SUBSET = ("test001.png", "test030.png", "test060.png")

CASES = [  # checkpoint, set, sigma, reference PSNR (whole set), reference PSNR (Set68 subset)
    ("saoyan/DnCNN-S-25", "Set12", 25, 30.3949, None),
    ("saoyan/DnCNN-S-15", "Set12", 15, 32.8377, None),
    ("saoyan/DnCNN-B", "Set12", 50, 27.1368, None),
    ("adnet/g25", "Set12", 25, 30.5760, None),
    ("saoyan/DnCNN-S-25", "Set68", 25, 29.2146, (25.971644 + 29.977812 + 31.165645) / 3),
    ("adnet/g25", "Set68", 25, 29.2523, (25.956839 + 30.007361 + 31.143935) / 3),
    ("adnet/g50", "Set68", 50, 26.2875, (23.177228 + 27.034414 + 28.948922) / 3),
]


def set_folder(name, tmp_path):
    """(folder, images in it): the whole set, or the Set68 subset linked into tmp_path."""
    if name != "Set68" or FULL:
        return os.path.join(DATA, name), len(os.listdir(os.path.join(DATA, name)))
    for image in SET68_SUBSET:
        os.symlink(os.path.join(DATA, "Set68", image), tmp_path / image)
    return str(tmp_path), len(SET68_SUBSET)


@needs_shared
@pytest.mark.parametrize("ckpt,set_name,sigma,expected,subset_expected", CASES)
def test_reference_psnr(ckpt, set_name, sigma, expected, subset_expected, tmp_path):
    folder, count = set_folder(set_name, tmp_path)
    out = run_script("test.py", "--logdir", os.path.join(REF, ckpt), "--test_data", folder,
                     "--test_noiseL", str(sigma), "--quiet")
    assert out.returncode == 0, out.stderr
    psnr = psnr_on_test_data(out.stdout)
    want = expected if count == len(os.listdir(os.path.join(DATA, set_name))) else subset_expected
    assert abs(psnr - want) < 1e-3, (psnr, want)
    assert re.search(r"SSIM on test data 0\.\d+", out.stdout)
    per_image = re.findall(r"^\S+\.png PSNR [\d.]+ SSIM [\d.]+$", out.stdout, re.M)
    assert len(per_image) == count
