"""Every command line of ../shared/reference_commands.md (the Ascend DnCNN and ADNet ports' READMEs), run as written.

Each port's lines run in a temporary copy of the project with the data laid out as that port's README says, so
nothing is written into the repository. Scaffolding, not part of the lines: PYTHON (the test interpreter, for the
wrappers), max_steps=1 and nproc=1 (the wrappers' environment knobs), tiny images; `python3.7.5` is run as this
interpreter (the README says to type `python`). The pip lines cannot mean anything here: the README says what to type.
"""
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time

import cv2
import h5py
import pytest
import torch

from conftest import ROOT, SHARED, make_image, needs_shared
from dataset import default_arch, default_folders
from models import build_model
from device import device_index, select_device
from utils import legacy_device_id
from test import resolve_set
from utils import UserError

DNCNN_LINES = [
    "pip install -r 1.5_requirements.txt",
    "pip install -r 1.8_requirements.txt",
    "bash ./test/train_full_1p.sh --data_path=/data/xxx/",
    "bash ./test/train_performance_1p.sh --data_path=/data/xxx/",
    "bash ./test/train_full_8p.sh --data_path=/data/xxx/",
    "bash ./test/train_performance_8p.sh --data_path=/data/xxx/",
    "bash ./test/train_eval_8p.sh --data_path=/data/xxx/",
]
ADNET_TEST_RUN = "logssigma25.0_2021-08-31-19-13-09"
ADNET_DEMO_RUN = "logssigma25.0_2021-09-03-10-39-34"
ADNET_LINES = [
    "source ./test/env.sh",
    "python3.7.5 preprocess.py --preprocess True --mode S",
    "bash ./test/train_performance_1p.sh",
    "bash ./test/train_full_1p.sh",
    "bash ./test/train_performance_8p.sh",
    "bash ./test/train_full_8p.sh",
    "bash test/eval_1p.sh",
    "python3.7.5 test.py --is_distributed 0 --DeviceID 0 --num_gpus 1 --num_of_layers 17 --logdir %s "
    "--test_data BSD68 --test_noiseL 25" % ADNET_TEST_RUN,
    "python3.7.5 demo.py --DeviceID 0 --num_of_layers 17 --test_noiseL 25 --demo_pth_path %s" % ADNET_DEMO_RUN,
]
ENV = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1", max_steps="1", nproc="1", PYTHONUNBUFFERED="1")


def copy_project(dest):
    """The project's scripts and wrappers (no outputs, no venv) in dest."""
    os.makedirs(os.path.join(dest, "test"))
    for f in glob.glob(os.path.join(ROOT, "*.py")):
        shutil.copy(f, dest)
    for f in glob.glob(os.path.join(ROOT, "test", "*.sh")):
        shutil.copy(f, os.path.join(dest, "test"))
    return str(dest)


def make_set(folder, count, size, seed):
    os.makedirs(folder)
    for i in range(count):
        cv2.imwrite(os.path.join(folder, "%02d.png" % i), make_image(size, seed=seed + i))


def run_line(line, cwd):
    """One README line, as a user types it into bash in the project folder."""
    line = line.replace("python3.7.5", sys.executable)
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


def ok(out, line):
    assert out.returncode == 0, "%s\n%s\n%s" % (line, out.stdout[-3000:], out.stderr[-3000:])
    return out.stdout


def loaded_checkpoint(stdout):
    return re.search(r"Loading model (\S+) \.\.\.", stdout).group(1)


def write_adnet_port_run(folder, mtime):
    """A run folder as the ADNet port's train.py left it: DDP + apex O2 weights ('module.', fp16 convs)."""
    os.makedirs(folder)
    state = {"module." + k: v.half() if v.dim() == 4 else v for k, v in build_model("ADNet").state_dict().items()}
    for name in ("model_1.pth", "best_model.pth"):
        torch.save(state, os.path.join(folder, name))
        os.utime(os.path.join(folder, name), (mtime, mtime))


@pytest.fixture
def dncnn_port(tmp_path):
    """A project copy and, elsewhere, the DnCNN-PyTorch data folder (train, Set12, Set68)."""
    data = tmp_path / "data"
    for name, count, size, seed in (("train", 1, (64, 64), 1), ("Set12", 1, (48, 56), 10), ("Set68", 1, (40, 52), 20)):
        make_set(str(data / name), count, size, seed)
    return copy_project(tmp_path / "project"), str(data) + "/"


@pytest.fixture
def adnet_port(tmp_path):
    """A project copy with the ADNet port's data/ inside: BSD68, pristine_images_gray, demo_img."""
    project = copy_project(tmp_path / "project")
    for name, count, size, seed in (("pristine_images_gray", 2, (64, 64), 1), ("BSD68", 2, (40, 52), 20),
                                    ("demo_img", 1, (48, 48), 30)):
        make_set(os.path.join(project, "data", name), count, size, seed)
    return project


@needs_shared
def test_the_lines_here_are_those_of_reference_commands_md():
    text = open(os.path.join(SHARED, "reference_commands.md")).read()
    lines = [re.sub(r"\s+#.*$", "", line).strip() for block in re.findall(r"```\n(.*?)```", text, re.S)
             for line in block.splitlines()]
    assert [line for line in lines if line] == DNCNN_LINES + ADNET_LINES


def test_readme_says_what_each_line_does_here():
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme.split("## Coming from the Ascend ports", 1)[1].split("\n## ", 1)[0]
    for line in DNCNN_LINES + ADNET_LINES:
        assert "`%s`" % line in section, line


def test_dncnn_port_lines(dncnn_port):
    project, data = dncnn_port
    for line in DNCNN_LINES[2:]:
        stdout = ok(run_line(line.replace("/data/xxx/", data), project), line)
        if "train_eval" in line:
            # the newest run (the last line before this one), its best weights
            assert loaded_checkpoint(stdout).endswith("ckpt_DnCNN_bs128_1p_perf/best_model.pth")
            assert re.search(r"Final Test Accuracy : [\d.]+", stdout)
        else:
            assert "DnCNN on cpu x1" in stdout and re.search(r"Final Train Accuracy : [\d.]+", stdout)


def test_adnet_port_lines(adnet_port):
    project = adnet_port
    for line in ADNET_LINES:
        if line.startswith("python3.7.5 test.py"):  # the ADNet port's own runs, from 2021 (older than ours)
            write_adnet_port_run(os.path.join(project, ADNET_TEST_RUN), time.mktime((2021, 8, 31, 19, 13, 9, 0, 0, -1)))
            write_adnet_port_run(os.path.join(project, ADNET_DEMO_RUN), time.mktime((2021, 9, 3, 10, 39, 34, 0, 0, -1)))
        out = run_line(line, project)
        stdout = ok(out, line)
        if line.startswith("source"):
            assert stdout == "" and out.stderr == ""
        elif "preprocess.py" in line:  # ADNet's patches (50/40), written where the port wrote them
            with h5py.File(os.path.join(project, "train.h5"), "r") as h5f:
                attrs = dict(h5f.attrs)
                assert h5f["data"].shape == (6, 1, 50, 50)
            assert (attrs["arch"], attrs["patch_size"], attrs["stride"]) == ("ADNet", 50, 40)
            assert attrs["train_data"].endswith("pristine_images_gray")
            with h5py.File(os.path.join(project, "val.h5"), "r") as h5f:
                assert len(h5f.keys()) == 2  # BSD68, the port's validation set
        elif "eval_1p" in line:
            assert loaded_checkpoint(stdout).endswith("ckpt_ADNet_bs128_1p_acc/best_model.pth")
            assert re.search(r"Final Test Accuracy : [\d.]+", stdout)
        elif "test.py" in line:
            assert loaded_checkpoint(stdout) == os.path.join(ADNET_TEST_RUN, "best_model.pth")
            assert re.search(r"PSNR on test data [\d.]+", stdout)
        elif "demo.py" in line:
            assert sorted(os.listdir(os.path.join(project, "data", "demo_img", "result"))) == [
                "00_compare.png", "00_denoised.png"]
        else:
            assert "ADNet on cpu x1" in stdout and re.search(r"Final Train Accuracy : [\d.]+", stdout)
    assert not os.path.exists(os.path.join(project, "demo_output"))


def test_wrappers_without_data_or_runs_say_so_in_one_line(tmp_path):
    project = copy_project(tmp_path / "project")
    for line, expected in (("bash ./test/train_performance_1p.sh", "--data_path=DIR is required"),
                           ("bash test/eval_1p.sh", "no training run to evaluate")):
        out = run_line(line, project)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and expected in out.stderr, out.stderr


def load_script(name):
    spec = importlib.util.spec_from_file_location("script_" + name, os.path.join(ROOT, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_script_takes_the_legacy_flags(capsys):
    legacy = ["--is_distributed", "0", "--DeviceID", "2,3", "--num_gpus", "1", "--world_size", "1", "--local_rank", "0"]
    for name in ("train", "test", "demo"):
        args = load_script(name).parse_args(legacy)
        assert legacy_device_id(args) == 2 and args.num_gpus == 1
    assert load_script("preprocess").main(legacy + ["--preprocess", "False"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert select_device("cpu", device_id=5).type == "cpu"  # a device id means nothing on CPU
    assert device_index("CUDA", 2, local_rank=3, device_id=None) == 1 and device_index("CUDA", 2, 0, 1) == 1
    with pytest.raises(UserError, match="--DeviceID 5: this machine has 2 CUDA"):
        device_index("CUDA", 2, 0, 5)


def test_adnet_layout_defaults(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for name in ("pristine_images_gray", "BSD68", "demo_img"):
        os.makedirs(data / name)
    assert default_arch(str(data)) == "ADNet"
    assert default_folders(str(data)) == ("pristine_images_gray", "BSD68")
    assert resolve_set(str(data), "Set68") == str(data / "BSD68")
    os.makedirs(data / "train")
    os.makedirs(data / "Set12")
    assert default_arch(str(data)) == "DnCNN"
    assert default_folders(str(data)) == ("train", "Set12")
    os.rename(data / "BSD68", data / "Set68")
    assert resolve_set(str(data), "BSD68") == str(data / "Set68")
    demo = load_script("demo")
    monkeypatch.chdir(tmp_path)
    assert demo.demo_folders(None, None) == (os.path.join("data", "demo_img"), os.path.join("data", "demo_img", "result"))
    assert demo.demo_folders("demo_img", "out") == (os.path.join("data", "demo_img"), "out")
    assert demo.demo_folders(str(data / "train"), None) == (str(data / "train"), "demo_output")
    shutil.rmtree(data / "demo_img")
    assert demo.demo_folders(None, None) == (demo.DEFAULT_IMAGES, "demo_output")
