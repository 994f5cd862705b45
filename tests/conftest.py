import os
import re
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
sys.path.insert(0, ROOT)

needs_shared = pytest.mark.skipif(
    not os.path.isdir(os.path.join(SHARED, "reference_weights")),
    reason="../shared (reference checkpoints and data) is absent: a user's fresh clone; CI has it")


def run_script(*args, env=None, timeout=600, cwd=None):
    """Run a project script with the test interpreter; returns CompletedProcess (text)."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    full_env.update(env or {})
    cmd = [sys.executable] + [os.path.join(ROOT, a) if i == 0 and a.endswith(".py") else a for i, a in enumerate(args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd or ROOT)


def free_port():
    """A TCP port free on the loopback address now (for a rendezvous or a master port)."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def training_workers(outf):
    """pids of the train.py processes (not their torchrun agents) writing to outf."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(a.endswith("train.py") for a in argv) and outf in argv and "torch.distributed.run" not in argv:
            yield int(pid)


def psnr_on_test_data(stdout):
    """The mean PSNR from test.py's reference log line 'PSNR on test data X'."""
    found = re.search(r"PSNR on test data ([\d.]+)", stdout)
    assert found, "no 'PSNR on test data' line in test.py's output:\n" + stdout[-2000:]
    return float(found.group(1))


def make_image(shape, seed, dtype=np.uint8):
    """A smooth random test image (so denoising has structure to keep)."""
    rng = np.random.RandomState(seed)
    small = rng.rand(max(2, shape[0] // 8), max(2, shape[1] // 8)).astype(np.float32)
    img = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 1)
    top = 65535 if dtype == np.uint16 else 255
    return np.rint(img * top).astype(dtype)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """data/{train,Set12,Set68} with a few small synthetic images."""
    root = tmp_path_factory.mktemp("data")
    for name, count, size in (("train", 6, (64, 64)), ("Set12", 2, (48, 56)), ("Set68", 2, (40, 52))):
        os.makedirs(root / name)
        for i in range(count):
            cv2.imwrite(str(root / name / ("%02d.png" % i)), make_image(size, seed=zlib.crc32(name.encode()) % 1000 + i))
    return str(root)


@pytest.fixture(scope="session")
def tiny_h5(tiny_data, tmp_path_factory):
    """train.h5 / val.h5 for DnCNN mode S built from tiny_data."""
    from dataset import prepare_data
    out = str(tmp_path_factory.mktemp("h5"))
    prepare_data(tiny_data, out, "DnCNN", "S", quiet=True)
    return out


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory):
    """test.py / demo.py export ONNX graphs for their default backend: into a session folder, not ~/.cache."""
    folder = str(tmp_path_factory.mktemp("onnx_cache"))
    previous = os.environ.get("DENOISE_ONNX_CACHE")
    os.environ["DENOISE_ONNX_CACHE"] = folder
    yield folder
    if previous is None:
        os.environ.pop("DENOISE_ONNX_CACHE", None)
    else:
        os.environ["DENOISE_ONNX_CACHE"] = previous
