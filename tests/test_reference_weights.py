"""The per-photo default's fetch on first use: from a file:// copy of the authors' repositories, never the network."""
import argparse
import os
import shutil

import pytest

import photo_noise
import reference_weights
from conftest import SHARED, needs_shared

REF = os.path.join(SHARED, "reference_weights")
FILES = {  # path under the reference folder -> its place in a github.com-like mirror
    "cszn/DnCNN3.mat": "cszn/DnCNN/raw/master/model/DnCNN3.mat",
    "adnet/color/c15/model_70.pth": "hellloxiaotian/ADNet/raw/master/color/c15/model_70.pth",
}


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    monkeypatch.delenv(reference_weights.OFFLINE_ENV, raising=False)
    root = tmp_path / "github"
    for rel, where in FILES.items():
        (root / where).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(REF, rel), root / where)
    return root


@needs_shared
def test_first_use_fetches_what_is_missing_and_says_the_terms(mirror, tmp_path, capsys):
    dest = str(tmp_path / "reference")
    still = reference_weights.fetch_missing(["cszn/DnCNN3.mat", "adnet/color/c15"], dest, source="file://%s" % mirror)
    assert still == []
    for rel in FILES:
        assert open(os.path.join(dest, rel), "rb").read() == open(os.path.join(REF, rel), "rb").read()
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and "educational and research purposes only" in said[0] and "--offline" in said[0]
    assert reference_weights.fetch_missing(["cszn/DnCNN3.mat"], dest, source="file:///nowhere") == []  # kept
    assert capsys.readouterr().out == ""


@needs_shared
def test_a_checksum_mismatch_is_refused(mirror, tmp_path, capsys):
    broken = mirror / FILES["cszn/DnCNN3.mat"]
    data = bytearray(broken.read_bytes())
    data[5000] ^= 0xFF
    broken.write_bytes(bytes(data))
    dest = str(tmp_path / "reference")
    assert reference_weights.fetch_missing(["cszn/DnCNN3.mat"], dest, source=str(mirror)) == ["cszn/DnCNN3.mat"]
    assert not os.path.exists(os.path.join(dest, "cszn", "DnCNN3.mat"))
    said = capsys.readouterr().out.strip().splitlines()
    assert said[-1].startswith("could not fetch 1 of them") and "sha256" in said[-1]


def test_offline_and_no_network_fetch_nothing(tmp_path, monkeypatch, capsys):
    dest = str(tmp_path / "reference")
    monkeypatch.setenv(reference_weights.OFFLINE_ENV, "1")
    assert reference_weights.offline(argparse.Namespace(offline=False))
    assert reference_weights.fetch_missing(["cszn/DnCNN3.mat"], dest, is_offline=True) == ["cszn/DnCNN3.mat"]
    assert capsys.readouterr().out == "" and not os.path.exists(dest)
    monkeypatch.delenv(reference_weights.OFFLINE_ENV)
    assert not reference_weights.offline(argparse.Namespace(offline=False))
    # a refused connection stands for no network: one line, nothing fetched, the run goes on
    still = reference_weights.fetch_missing(["cszn/DnCNN3.mat", "kair/dncnn_25.pth"], dest,
                                           source="http://127.0.0.1:9")
    assert still == ["cszn/DnCNN3.mat", "kair/dncnn_25.pth"]
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 2 and said[1].startswith("could not fetch 2 of them (cannot reach")


@needs_shared
def test_the_default_fetches_into_the_default_folder_only(mirror, tmp_path, monkeypatch):
    dest = str(tmp_path / "reference")
    monkeypatch.setattr(photo_noise, "REFERENCE_DIR", dest)
    monkeypatch.setattr(photo_noise, "REFERENCE", {"ADNet c15": "adnet/color/c15", "ADNet g15": "adnet/g15"})
    monkeypatch.setattr(photo_noise, "first_use", lambda: ["ADNet c15"])
    monkeypatch.setenv(reference_weights.SOURCE_ENV, "file://%s" % mirror)
    other = str(tmp_path / "users_folder")
    assert "ADNet c15" not in reference_weights.weights_for_default(argparse.Namespace(reference_weights=other))
    assert not os.path.exists(dest)
    found = reference_weights.weights_for_default(argparse.Namespace(reference_weights=dest))
    assert found["ADNet c15"] == os.path.join(dest, "adnet/color/c15")
    assert not os.path.exists(os.path.join(dest, "adnet", "g15"))  # what the default does not use is not fetched


def test_first_use_is_what_the_default_picks_with_everything_there():
    names = photo_noise.first_use()
    assert set(names) == {"FDnCNN color", "FDnCNN gray", "DnCNN-3", "ADNet c15"}
    assert all(name in photo_noise.REFERENCE for name in names)
