"""data/get_data.sh --color makes CBSD432 (BSDS500 minus CBSD68) by matching pixels, not names."""
import os
import subprocess
import sys

import cv2

from conftest import ROOT, SHARED, needs_shared

sys.path.insert(0, os.path.join(ROOT, "data"))
from bsds_minus import bsds_minus  # noqa: E402


@needs_shared
def test_cbsd68_photos_are_left_out_whatever_their_names(tmp_path):
    """Three CBSD68 photos re-encoded as BSDS's JPEGs (quality 75, other names, one in a sub-folder of its own)
    among four CBSD432 photos: the four are kept, the three left out."""
    images = tmp_path / "images"
    for split in ("train", "test"):
        (images / split).mkdir(parents=True)
    cbsd68 = sorted(os.listdir(os.path.join(SHARED, "data", "CBSD68")))[:3]
    for i, name in enumerate(cbsd68):
        img = cv2.imread(os.path.join(SHARED, "data", "CBSD68", name))
        cv2.imwrite(str(images / ("test" if i else "train") / ("9%05d.jpg" % i)), img, [cv2.IMWRITE_JPEG_QUALITY, 75])
    keep = sorted(os.listdir(os.path.join(SHARED, "data", "CBSD432")))[:4]
    for name in keep:
        os.symlink(os.path.join(SHARED, "data", "CBSD432", name), images / "train" / name)
    (tmp_path / "cbsd68").mkdir()
    for name in cbsd68:
        os.symlink(os.path.join(SHARED, "data", "CBSD68", name), tmp_path / "cbsd68" / name)
    assert bsds_minus(str(images), str(tmp_path / "cbsd68"), str(tmp_path / "out")) == (4, 3)
    assert sorted(os.listdir(tmp_path / "out")) == keep


def test_get_data_names_the_real_set_and_its_licence():
    out = subprocess.run(["bash", "-n", os.path.join(ROOT, "data", "get_data.sh")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = open(os.path.join(ROOT, "data", "get_data.sh")).read()
    assert "--real" in text and "non-commercial research" in text and "CBSD432" in text
    assert "--dncnn3" in text and "cszn/DnCNN" in text  # test.py --task sr / jpeg's sets
