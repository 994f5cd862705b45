"""Patches that are not the run's are refused or rebuilt (issue 17): patch_spec / patch_key / check_patches, and
ensure_patches, which builds or waits for the h5 files before the process group exists."""
import os
import shutil
import threading
import time

import cv2
import h5py
import pytest

from conftest import make_image
from dataset import check_patches, ensure_patches, failure_marker, patch_key, patch_spec, prepare_data
from utils import UserError


@pytest.fixture
def data_copy(tiny_data, tmp_path):
    """A copy of tiny_data this test may change."""
    return shutil.copytree(tiny_data, str(tmp_path / "data"))


def test_the_key_follows_parameters_and_folder_contents(data_copy):
    spec = patch_spec(data_copy, "DnCNN", "S")
    assert (spec["patch_size"], spec["stride"], spec["aug_times"]) == (40, 10, 1)  # the defaults, resolved
    assert spec["train_data"] == os.path.realpath(os.path.join(data_copy, "train"))
    key = patch_key(spec)
    assert patch_key(patch_spec(data_copy, "DnCNN", "S", 40, 10, 1)) == key  # the defaults given explicitly
    assert patch_key(patch_spec(data_copy, "DnCNN", "S", seed=5)) == key  # no augmentation: the seed draws nothing
    others = [patch_spec(data_copy, "ADNet", "S"), patch_spec(data_copy, "DnCNN", "B"),
              patch_spec(data_copy, "DnCNN", "S", stride=20), patch_spec(data_copy, "DnCNN", "B", seed=5)]
    assert len({key} | {patch_key(s) for s in others}) == 5
    cv2.imwrite(os.path.join(data_copy, "train", "06.png"), make_image((64, 64), seed=99))
    assert patch_key(patch_spec(data_copy, "DnCNN", "S")) != key  # an image added
    key = patch_key(patch_spec(data_copy, "DnCNN", "S"))
    os.utime(os.path.join(data_copy, "Set12", "00.png"), ns=(0, 0))
    assert patch_key(patch_spec(data_copy, "DnCNN", "S")) != key  # a validation image rewritten


def test_check_patches_names_the_attribute_both_values_and_the_fix(tiny_data, tiny_h5):
    with h5py.File(os.path.join(tiny_h5, "train.h5"), "r") as f:
        attrs = dict(f.attrs)
    spec = patch_spec(tiny_data, "DnCNN", "S")
    assert attrs["key"] == patch_key(spec)
    check_patches(attrs, spec, "train.h5", strict_folder=True)
    with pytest.raises(UserError, match=r"^train.h5 was made with patch_size=40 but this run has patch_size=30: "
                                        r"pass --patch_size 40, or rebuild it \(train.py --preprocess True"):
        check_patches(attrs, patch_spec(tiny_data, "DnCNN", "S", patch_size=30), "train.h5")
    with pytest.raises(UserError, match="arch=DnCNN but this run has arch=ADNet"):
        check_patches(attrs, dict(spec, arch="ADNet"), "train.h5")
    other = dict(spec, train_data="/elsewhere/train", fingerprint="0" * 16)
    check_patches(attrs, other, "train.h5")  # the run named no data: the folders are not compared
    with pytest.raises(UserError, match="train_data=.* but this run has train_data=/elsewhere/train"):
        check_patches(attrs, other, "train.h5", strict_folder=True)
    with pytest.raises(UserError, match="other contents of"):
        check_patches(attrs, dict(spec, fingerprint="0" * 16), "train.h5", strict_folder=True)
    old = {k: attrs[k] for k in ("patch_size", "stride")}  # an older file: what it lacks is not checked
    check_patches(old, dict(spec, arch="ADNet", mode="B", aug_times=2), "train.h5", strict_folder=True)


def test_a_waiting_rank_returns_once_the_builder_wrote_both_files(tiny_data, tmp_path):
    spec, h5_dir = patch_spec(tiny_data, "DnCNN", "S"), str(tmp_path / "h5")
    os.makedirs(h5_dir)
    stale = failure_marker(h5_dir, patch_key(spec))  # a past run's failure, older than this process
    open(stale, "w").write("an old failure\n")
    os.utime(stale, (1, 1))
    errors = []

    def wait():
        try:
            ensure_patches(spec, h5_dir, build=True, builder=False, poll_s=0.05)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)
    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive() and not errors  # nothing written yet: still waiting
    ensure_patches(spec, h5_dir, build=True, builder=True, quiet=True)
    waiter.join(timeout=30)
    assert not waiter.is_alive() and not errors
    assert not os.path.exists(stale)  # the builder cleared it
    with h5py.File(os.path.join(h5_dir, "train.h5"), "r") as f:
        assert f.attrs["key"] == patch_key(spec)


def test_the_builder_skips_patches_it_already_has_and_rebuilds_others(tiny_data, tmp_path, capsys):
    h5_dir = str(tmp_path / "h5")
    prepare_data(tiny_data, h5_dir, "DnCNN", "S", quiet=True)
    capsys.readouterr()
    ensure_patches(patch_spec(tiny_data, "DnCNN", "S"), h5_dir, build=True, builder=True, quiet=True)
    assert "already holds these patches" in capsys.readouterr().out
    ensure_patches(patch_spec(tiny_data, "DnCNN", "S", stride=20), h5_dir, build=True, builder=True, quiet=True)
    assert "training set:" in capsys.readouterr().out
    with h5py.File(os.path.join(h5_dir, "train.h5"), "r") as f:
        assert f.attrs["stride"] == 20


def test_a_failed_build_stops_the_waiting_ranks(tmp_path):
    os.makedirs(tmp_path / "data" / "train")
    (tmp_path / "data" / "train" / "broken.png").write_bytes(b"\x89PNG broken")
    spec, h5_dir = patch_spec(str(tmp_path / "data"), "DnCNN", "S"), str(tmp_path / "h5")
    with pytest.raises(UserError, match="no usable training image"):
        ensure_patches(spec, h5_dir, build=True, builder=True, quiet=True)
    assert os.path.isfile(failure_marker(h5_dir, patch_key(spec)))
    started = time.time()
    with pytest.raises(UserError, match="^preprocessing into .* failed on local rank 0: no usable training image"):
        ensure_patches(spec, h5_dir, build=True, builder=False, poll_s=0.05)
    assert time.time() - started < 10


def test_train_py_builds_or_waits_before_the_process_group_starts(tiny_h5, tmp_path, monkeypatch):
    import train
    calls = []
    def fake_ensure(spec, h5_dir, build, builder, **kw):
        calls.append(("ensure", h5_dir, build, builder))
        if h5_dir != tiny_h5:  # the cache folder: as if built
            shutil.copytree(tiny_h5, h5_dir)
    monkeypatch.setattr(train, "ensure_patches", fake_ensure)
    monkeypatch.setattr(train, "init_distributed", lambda *a, **kw: calls.append(("init",)))
    train.Trainer(train.parse_args(["--patch_cache", str(tmp_path / "cache"), "--outf", str(tmp_path / "run")]))
    assert [c[0] for c in calls] == ["ensure", "init"]
    assert os.path.dirname(calls[0][1]) == str(tmp_path / "cache") and calls[0][2:] == (True, True)
    calls.clear()
    train.Trainer(train.parse_args(["--h5_dir", tiny_h5, "--outf", str(tmp_path / "run")]))
    assert calls == [("ensure", tiny_h5, False, True), ("init",)]
