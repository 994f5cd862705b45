import fcntl
import glob
import hashlib
import os
import shutil

import h5py
import numpy as np
import pytest

from conftest import SHARED, needs_shared, run_script
from dataset import data_augmentation, image_to_patches, load_train_patches, load_val_images, prepare_data
from training import PatchBatches, add_train_noise
from utils import UserError

# OpenCV's uint8 bicubic resize rounds differently per instruction set, so the reference patches are
# computed on this machine by the reference algorithm below. Known sha256 of the 238,400 patches:
# 9effc6fb8671c6b6b20df283ffb4145de1932cd7f966cc7c4035c69a8a7b8fef on AVX-512 (Sapphire Rapids),
# bbea1b9337714250e1521a9eef1c527460419beeb0ab4c26da0d5de5f10ef614 on AVX2 only (AMD EPYC Zen 3).


def reference_patches(files, scales=(1, 0.9, 0.8, 0.7), win=40, stride=10, channels=1):
    """SaoYan's prepare_data written plainly: per image and scale, cv2.resize of the 3-channel uint8 image
    with (int(h*s), int(w*s)), first channel (or all three, CHW, as ADNet's color/dataset.py), row-major patches."""
    import cv2
    out = []
    for f in files:
        img = cv2.imread(f)
        h, w = img.shape[:2]
        for s in scales:
            scaled = cv2.resize(img, (int(h * s), int(w * s)), interpolation=cv2.INTER_CUBIC)
            chw = scaled[:, :, :1] if channels == 1 else scaled
            chw = np.transpose(chw, (2, 0, 1))
            for i in range(0, chw.shape[1] - win + 1, stride):
                for j in range(0, chw.shape[2] - win + 1, stride):
                    out.append(chw[:, i:i + win, j:j + win])
    return np.stack(out)


@needs_shared
def test_dncnn_s_patches_are_the_references(tmp_path):
    out = run_script("preprocess.py", "--data_path", os.path.join(SHARED, "data"), "--outf", str(tmp_path), "--quiet")
    assert out.returncode == 0, out.stderr
    with h5py.File(tmp_path / "train.h5") as f:
        data = f["data"][()]
        assert f.attrs["patch_size"] == 40 and f.attrs["stride"] == 10 and f.attrs["aug_times"] == 1
    assert data.shape == (238400, 1, 40, 40) and data.dtype == np.uint8
    files = sorted(glob.glob(os.path.join(SHARED, "data", "train", "*.png")))
    expected = reference_patches(files)
    assert hashlib.sha256(data.tobytes()).hexdigest() == hashlib.sha256(expected.tobytes()).hexdigest()
    with h5py.File(tmp_path / "val.h5") as f:
        assert len(f.keys()) == 12


def test_im2patch_order_is_row_major():
    img = np.arange(7 * 9, dtype=np.uint8).reshape(1, 7, 9)
    patches = image_to_patches(img, 3, 2)
    assert patches.shape == (3 * 4, 1, 3, 3)
    assert np.array_equal(patches[1], img[:, 0:3, 2:5]) and np.array_equal(patches[4], img[:, 2:5, 0:3])
    colour = np.arange(3 * 7 * 9, dtype=np.uint8).reshape(3, 7, 9)
    patches = image_to_patches(colour, 3, 2)
    assert patches.shape == (3 * 4, 3, 3, 3) and np.array_equal(patches[5], colour[:, 2:5, 2:5])


def test_augmentation_modes_are_the_eight_dihedral_maps():
    x = np.arange(16).reshape(1, 4, 4)
    outs = {data_augmentation(x, m).tobytes() for m in range(8)}
    assert len(outs) == 8
    assert np.array_equal(data_augmentation(x, 1)[0], np.flipud(x[0]))
    assert np.array_equal(data_augmentation(x, 2)[0], np.rot90(x[0]))


def test_blind_mode_doubles_patches_with_augmentation(tiny_data, tmp_path):
    n_s = prepare_data(tiny_data, str(tmp_path / "s"), "DnCNN", "S", patch_size=40, stride=10, quiet=True)
    n_b = prepare_data(tiny_data, str(tmp_path / "b"), "DnCNN", "B", patch_size=40, stride=10, quiet=True)
    assert n_b == 2 * n_s
    with h5py.File(tmp_path / "s" / "train.h5") as s, h5py.File(tmp_path / "b" / "train.h5") as b:
        assert np.array_equal(b["data"][0::2], s["data"][()])  # originals interleaved with augmented copies
        assert b.attrs["mode"] == "B" and b.attrs["aug_times"] == 2


def test_a_failed_preprocess_leaves_no_train_h5(tmp_path):
    os.makedirs(tmp_path / "data" / "train")
    (tmp_path / "data" / "train" / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(UserError):
        prepare_data(str(tmp_path / "data"), str(tmp_path / "out"), quiet=True)
    assert not os.path.exists(tmp_path / "out" / "train.h5")


def test_batches_cover_every_patch_once_per_epoch():
    import torch
    patches = torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1)
    seen = []
    for rank in (0, 1):
        b = PatchBatches(patches, 8, rank=rank, world_size=2, seed=3)
        b.set_epoch(1)
        seen += [int(v) for batch in b.batches() for v in batch.flatten()]
    assert sorted(seen) == list(range(50))


def test_blind_noise_has_per_patch_sigma():
    import torch
    clean = torch.zeros(64, 1, 30, 30)
    noisy = add_train_noise(clean, "B", 25, torch.Generator().manual_seed(0))
    stds = noisy.flatten(1).std(1) * 255
    assert stds.min() < 10 and stds.max() > 45 and stds.max() < 57
    fixed = add_train_noise(clean, "S", 25, torch.Generator().manual_seed(0)).flatten(1).std(1) * 255
    assert torch.allclose(fixed, torch.full_like(fixed, 25.0), atol=2.5)


def test_h5_files_are_read_without_hdf5_file_locks(tiny_h5, tmp_path):
    """A file another process holds an exclusive lock on (or a mount without locks, e.g. NFS) still loads."""
    for name in ("train.h5", "val.h5"):
        shutil.copy(os.path.join(tiny_h5, name), tmp_path / name)
    handles = [open(tmp_path / name, "rb") for name in ("train.h5", "val.h5")]
    try:
        for f in handles:
            fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(OSError, match="lock"):  # what HDF5's own locking would do
            h5py.File(tmp_path / "train.h5", "r", locking=True)
        patches, _ = load_train_patches(str(tmp_path))
        assert patches.shape[0] == 108 and len(load_val_images(str(tmp_path))) == 2
    finally:
        for f in handles:
            f.close()
