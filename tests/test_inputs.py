"""Folders of real files: junk, broken, 16-bit, colour, RGBA, upper-case extensions, tiny images."""
import os

import cv2
import numpy as np
import pytest

from conftest import make_image, run_script
from images import iter_images, list_images, read_image
from utils import UserError


@pytest.fixture
def messy_folder(tmp_path):
    good = make_image((40, 48), 1)
    cv2.imwrite(str(tmp_path / "a_gray.png"), good)
    cv2.imwrite(str(tmp_path / "B_UPPER.PNG"), good)
    cv2.imwrite(str(tmp_path / "c_16bit.png"), make_image((40, 48), 2, np.uint16))
    cv2.imwrite(str(tmp_path / "d_color.png"), np.dstack([good, good // 2, 255 - good]))
    cv2.imwrite(str(tmp_path / "e_rgba.png"), np.dstack([good, good, good, np.full_like(good, 200)]))
    cv2.imwrite(str(tmp_path / "f_tiny.png"), good[:5, :7])
    ok, png = cv2.imencode(".png", make_image((64, 64), 3))
    (tmp_path / "g_truncated.png").write_bytes(png.tobytes()[:len(png) // 3])
    (tmp_path / "h_empty.png").write_bytes(b"")
    (tmp_path / "Thumbs.db").write_bytes(os.urandom(64))
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_messy_folder_reads_the_usable_images(messy_folder, capsys):
    images = list(iter_images(list_images(str(messy_folder)), prefetch=False))
    names = [os.path.basename(f) for f, _ in images]
    assert names == ["B_UPPER.PNG", "a_gray.png", "c_16bit.png", "d_color.png", "e_rgba.png", "f_tiny.png"]
    warned = capsys.readouterr().err
    assert "g_truncated.png" in warned and "h_empty.png" in warned
    for _, img in images:
        assert img.shape[0] == 1 and img.ndim == 3 and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1


def test_16bit_keeps_its_precision(messy_folder):
    img = read_image(str(messy_folder / "c_16bit.png"))[0]
    assert np.allclose(img, make_image((40, 48), 2, np.uint16) / 65535.0, atol=1e-6)
    assert len(np.unique(img)) > 256


def test_gray_matches_reference_first_channel(messy_folder):
    ref = cv2.imread(str(messy_folder / "a_gray.png"))[:, :, 0] / 255.0
    assert np.array_equal(read_image(str(messy_folder / "a_gray.png"))[0], np.float32(ref))


def test_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "Thumbs.db").write_bytes(b"x")
    assert list_images(str(tmp_path)) == []
    with pytest.raises(UserError, match="no such folder"):
        list_images(str(tmp_path / "missing"))


def test_test_py_on_messy_folder(messy_folder, tmp_path):
    from models import build_model
    import torch
    torch.save(build_model("DnCNN", num_of_layers=5).state_dict(), tmp_path / "net.pth")
    out = run_script("test.py", "--logdir", str(tmp_path / "net.pth"), "--test_data", str(messy_folder),
                     "--test_noiseL", "15", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "f_tiny.png PSNR" in out.stdout  # smaller than a patch: denoised whole
    assert "g_truncated.png" in out.stderr and "g_truncated.png PSNR" not in out.stdout


def test_preprocess_skips_small_and_broken_images(messy_folder, tmp_path):
    os.makedirs(tmp_path / "data")
    os.symlink(messy_folder, tmp_path / "data" / "train")
    os.symlink(messy_folder, tmp_path / "data" / "Set12")
    out = run_script("preprocess.py", "--data_path", str(tmp_path / "data"), "--outf", str(tmp_path / "h5"),
                     "--patch_size", "20", "--stride", "10", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "f_tiny.png is smaller than a 20-pixel patch: skipped" in out.stdout
    assert "g_truncated.png" in out.stderr
    assert os.path.isfile(tmp_path / "h5" / "train.h5")
