"""weights/get_reference_weights.sh offline: --from a folder laid out as github.com's OWNER/REPO/raw/BRANCH/PATH,
built here from ../shared/reference_weights."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, SHARED, needs_shared

SCRIPT = os.path.join(ROOT, "weights", "get_reference_weights.sh")
REF = os.path.join(SHARED, "reference_weights")
CORRUPTED = "adnet/color/c35/model_70.pth"
RESUMED = "saoyan/DnCNN-B/net.pth"
PREFIX = 100_000  # bytes of RESUMED already downloaded


def table():
    """(owner/repo, branch, path, path under DIR, sha256) rows of the script."""
    text = open(SCRIPT).read()
    rows = text.split('FILES="', 1)[1].split('"', 1)[0].split("\n")
    return [tuple(row.split()) for row in rows if row.strip()]


def in_shared():
    """The rows whose file ../shared holds (it has a subset of the DnCNN authors' zoo)."""
    return [row for row in table() if os.path.isfile(os.path.join(REF, row[3]))]


OURS = "saoyan/*,adnet/*,cszn/DnCNN3.mat,kair/*"  # what the download test fetches: all in ../shared


def run(*args):
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def mirror(tmp_path):
    """github.com as a folder; one file corrupted, one whose first PREFIX bytes only a resumed download skips."""
    root = tmp_path / "github"
    for repo, branch, path, rel, _ in in_shared():
        dst = root / repo / "raw" / branch / path
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(REF, rel), dst)
    broken = root / "hellloxiaotian/ADNet/raw/master/color/c35/model_70.pth"
    data = bytearray(broken.read_bytes())
    data[1000] ^= 0xFF
    broken.write_bytes(bytes(data))
    resumed = root / "SaoYan/DnCNN-PyTorch/raw/master/logs/DnCNN-B/net.pth"
    data = bytearray(resumed.read_bytes())
    data[:PREFIX] = bytes(PREFIX)
    resumed.write_bytes(bytes(data))
    return root


@needs_shared
def test_table_matches_shared_and_the_mirrored_repositories():
    import hashlib
    rows = table()
    assert len(rows) == 15 + 32 + 1  # SaoYan's and the ADNet authors', the DnCNN authors' model/, KAIR's
    on_disk = sorted(os.path.relpath(os.path.join(d, f), REF) for d, _, fs in os.walk(REF) for f in fs
                     if not f.endswith(".txt"))
    by_rel = {rel: sha for *_, rel, sha in rows}
    assert len(on_disk) == 15 + 16 + 1 and set(on_disk) <= set(by_rel)
    for rel in on_disk:
        assert hashlib.sha256(open(os.path.join(REF, rel), "rb").read()).hexdigest() == by_rel[rel], rel
    owners = {"SaoYan/DnCNN-PyTorch": "saoyan", "hellloxiaotian/ADNet": "adnet", "cszn/DnCNN": "cszn",
              "cszn/KAIR": "kair"}
    for repo, branch, path, rel, _ in rows:
        assert branch == "master" and rel.split("/")[0] == owners[repo]
        if repo == "cszn/DnCNN":  # the authors' model/ layout kept under cszn/
            assert path == "model/" + rel[len("cszn/"):]


@needs_shared
def test_download_verifies_resumes_refuses_corruption_and_skips_what_is_there(mirror, tmp_path):
    dest = tmp_path / "reference"
    part = dest / (RESUMED + ".part")
    part.parent.mkdir(parents=True)
    with open(os.path.join(REF, RESUMED), "rb") as f:
        part.write_bytes(f.read(PREFIX))  # a broken earlier download (the mirror's first bytes differ)

    out = run(str(dest), "--from", str(mirror), "--only", OURS)
    assert out.returncode != 0
    errors = out.stderr.strip().splitlines()
    assert len(errors) == 1 and "c35/model_70.pth" in errors[0] and "sha256" in errors[0], out.stderr
    assert not (dest / CORRUPTED).exists() and not (dest / (CORRUPTED + ".part")).exists()
    fetched = [rel for *_, rel, _ in in_shared() if rel.split("/")[0] in ("saoyan", "adnet", "kair")
               or rel == "cszn/DnCNN3.mat"]
    assert len(fetched) == 17 and not (dest / "cszn" / "FDnCNN_gray.mat").exists()  # --only kept to its globs
    for rel in fetched:
        if rel != CORRUPTED:  # RESUMED is right only if the download went on after the .part's bytes
            assert open(dest / rel, "rb").read() == open(os.path.join(REF, rel), "rb").read(), rel
    assert not list(dest.rglob("*.part"))

    shutil.copy(os.path.join(REF, CORRUPTED), mirror / "hellloxiaotian/ADNet/raw/master/color/c35/model_70.pth")
    before = {rel: os.stat(dest / rel).st_mtime_ns for rel in fetched if rel != CORRUPTED}
    out = run(str(dest), "--from", "file://%s" % mirror, "--only", OURS)
    assert out.returncode == 0, out.stderr
    assert len(re.findall(r"^have ", out.stdout, re.M)) == 16 and "1 fetched, 16 already there" in out.stdout
    assert {rel: os.stat(dest / rel).st_mtime_ns for rel in before} == before
    assert "python test.py --logdir %s/saoyan/DnCNN-S-25" % dest in out.stdout
    assert "python demo.py --demo_pth_path %s/adnet/color/c25" % dest in out.stdout


@needs_shared
def test_list_shows_the_urls_and_fetches_nothing(tmp_path):
    dest = tmp_path / "reference"
    out = run(str(dest), "--list")
    assert out.returncode == 0, out.stderr
    urls = re.findall(r"^fetch  (\S+) -> (\S+)$", out.stdout, re.M)
    assert len(urls) == 48 and not dest.exists()
    assert ("https://github.com/SaoYan/DnCNN-PyTorch/raw/master/logs/DnCNN-S-25/net.pth",
            "%s/saoyan/DnCNN-S-25/net.pth" % dest) in urls
    assert ("https://github.com/hellloxiaotian/ADNet/raw/master/real/real_model/model_25.pth",
            "%s/adnet/real/model_25.pth" % dest) in urls
    assert ("https://github.com/cszn/DnCNN/raw/master/model/specifics/sigma=75.mat",
            "%s/cszn/specifics/sigma=75.mat" % dest) in urls


def test_user_errors_are_one_line():
    for args in (["--from"], ["--nope"], ["--from", "/no/such/folder"], ["a", "b"]):
        out = run(*args)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, (args, out.stderr)
        assert out.stderr.startswith("error: ")
