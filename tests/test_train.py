import os
import re
import shutil
import signal
import subprocess
import sys
import time

import cv2
import h5py
import pytest
import torch

from conftest import ROOT, make_image, run_script
from dataset import prepare_data
from checkpoints import load_model

FAST = ["--batchSize", "16", "--num_of_layers", "5", "--log_every", "2", "--tensorboard", "False", "--quiet"]


def train(h5_dir, outf, *extra, timeout=600):
    return run_script("train.py", "--h5_dir", h5_dir, "--outf", str(outf), *FAST, *extra, timeout=timeout)


@pytest.mark.parametrize("arch,mode,init", [("DnCNN", "S", "reference"), ("DnCNN", "B", "residual"),
                                           ("ADNet", "S", "residual"), ("ADNet", "B", "reference")])
def test_short_training_runs_for_both_models_and_modes(tiny_data, tmp_path, arch, mode, init):
    out = run_script("train.py", "--preprocess", "True", "--data_path", tiny_data, "--h5_dir", str(tmp_path / "h5"),
                     "--outf", str(tmp_path / "run"), "--arch", arch, "--mode", mode, "--epochs", "1",
                     "--max_steps", "3", "--init", init, *FAST)
    assert out.returncode == 0, out.stderr
    assert re.search(r"\[epoch 1\]\[2/\d+\] loss: [\d.]+ PSNR_train: [\d.]+ time: [\d.]+ FPS: [\d.]+", out.stdout)
    assert re.search(r"PSNR_val: [\d.]+", out.stdout) and re.search(r"^FPS: [\d.]+$", out.stdout, re.M)
    with h5py.File(tmp_path / "h5" / "train.h5") as f:
        assert f.attrs["mode"] == mode and f.attrs["arch"] == arch
    model = load_model(str(tmp_path / "run"))
    assert type(model).__name__ == arch
    for name in ("net.pth", "best_model.pth", "checkpoint.pth", "train.log"):
        assert os.path.isfile(tmp_path / "run" / name)
    state = torch.load(tmp_path / "run" / "net.pth", weights_only=True)
    assert not any(k.startswith("module.") for k in state)


def test_tensorboard_events_and_reference_format_weights(tiny_h5, tmp_path):
    out = run_script("train.py", "--h5_dir", tiny_h5, "--outf", str(tmp_path), "--batchSize", "16",
                     "--num_of_layers", "5", "--max_steps", "2", "--quiet", "--save_module_prefix")
    assert out.returncode == 0, out.stderr
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path))
    state = torch.load(tmp_path / "net.pth", weights_only=True)
    assert all(k.startswith("module.dncnn.") for k in state)  # what SaoYan's test.py loads into DataParallel
    wrapped = torch.nn.DataParallel(load_model(str(tmp_path)))
    wrapped.load_state_dict(state)


def _weights(path):
    return torch.load(path, weights_only=True)


def _assert_same_final_weights(tmp_path):
    a, b = _weights(tmp_path / "full" / "net.pth"), _weights(tmp_path / "split" / "net.pth")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_at_epoch_boundary_equals_uninterrupted(tiny_h5, tmp_path):
    args = ["--amp", "none", "--milestone", "1"]
    full = train(tiny_h5, tmp_path / "full", "--epochs", "2", *args)
    assert full.returncode == 0, full.stderr
    first = train(tiny_h5, tmp_path / "split", "--epochs", "1", *args)
    assert first.returncode == 0, first.stderr
    second = train(tiny_h5, tmp_path / "split", "--epochs", "2", "--resume", *args)
    assert second.returncode == 0, second.stderr
    assert "resumed from" in second.stdout
    _assert_same_final_weights(tmp_path)


def test_resume_with_other_arch_is_an_error(tiny_data, tiny_h5, tmp_path):
    assert train(tiny_h5, tmp_path / "run", "--max_steps", "1").returncode == 0
    out = train(str(tmp_path / "h5-adnet"), tmp_path / "run", "--preprocess", "True", "--data_path", tiny_data,
                "--resume", "--arch", "ADNet", "--max_steps", "2")  # an ADNet h5: the resume refuses, not the h5 check
    assert out.returncode != 0
    assert "--resume" in out.stderr and "--arch DnCNN" in out.stderr and "Traceback" not in out.stderr


def test_resume_in_the_middle_of_an_epoch_equals_uninterrupted(tiny_h5, tmp_path):
    args = ["--amp", "none", "--milestone", "1", "--epochs", "2", "--save_every", "3"]
    full = train(tiny_h5, tmp_path / "full", *args)
    assert full.returncode == 0, full.stderr
    # 7 steps an epoch: --save_every 3 writes step 9, epoch 2's second step, and the stop there saves that state again
    first = train(tiny_h5, tmp_path / "split", *args, "--max_steps", "9")
    assert first.returncode == 0, first.stderr
    stopped_at = _weights(tmp_path / "split" / "checkpoint.pth")
    assert (stopped_at["epoch"], stopped_at["step_in_epoch"], stopped_at["step"]) == (1, 2, 9)
    second = train(tiny_h5, tmp_path / "split", *args, "--resume")
    assert second.returncode == 0, second.stderr
    _assert_same_final_weights(tmp_path)


def test_resume_with_other_depth_is_an_error(tiny_h5, tmp_path):
    assert train(tiny_h5, tmp_path, "--max_steps", "1").returncode == 0
    out = train(tiny_h5, tmp_path, "--resume", "--num_of_layers", "7", "--max_steps", "2")
    assert out.returncode != 0
    assert "--num_of_layers 5" in out.stderr and "Traceback" not in out.stderr


def test_resume_with_other_mode_is_an_error(tiny_data, tiny_h5, tmp_path):
    assert train(tiny_h5, tmp_path / "run", "--max_steps", "1").returncode == 0
    out = train(str(tmp_path / "h5-B"), tmp_path / "run", "--preprocess", "True", "--data_path", tiny_data,
                "--mode", "B", "--resume", "--max_steps", "2")  # a mode-B h5: the resume refuses, not the h5 check
    assert out.returncode != 0
    assert "--mode S" in out.stderr and "Traceback" not in out.stderr


def test_kill_9_then_resume_finishes_the_planned_epochs(tiny_h5, tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--h5_dir", tiny_h5, "--outf", str(tmp_path),
           *FAST, "--num_of_layers", "9", "--epochs", "6", "--save_every", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    ckpt = tmp_path / "checkpoint.pth"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists()
    killed_at = torch.load(ckpt, weights_only=True)
    assert killed_at["epoch"] < 6
    (tmp_path / ("checkpoint.pth.tmp.%d" % proc.pid)).write_bytes(b"torn")  # as if killed mid-save
    out = run_script("train.py", "--h5_dir", tiny_h5, "--outf", str(tmp_path), *FAST, "--num_of_layers", "9",
                     "--epochs", "6", "--save_every", "2", "--resume")
    assert out.returncode == 0, out.stderr
    final = torch.load(ckpt, weights_only=True)
    assert final["epoch"] == 6
    assert final["step"] == 6 * 7  # 108 patches / batch 16 -> 7 steps per epoch
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]


def test_non_finite_loss_stops_with_a_message(tiny_h5, tmp_path):
    out = train(tiny_h5, tmp_path, "--lr", "1e30", "--amp", "none", "--epochs", "3")
    assert out.returncode != 0
    assert "non-finite loss at step" in out.stderr and "last good checkpoint" in out.stderr
    assert "Traceback" not in out.stderr


def test_h5_made_for_another_mode_is_refused(tiny_h5, tmp_path):
    out = train(tiny_h5, tmp_path, "--mode", "B")
    assert out.returncode != 0
    assert "mode=S" in out.stderr and "mode=B" in out.stderr


def test_lr_schedules():
    from train import lr_at, parse_args
    d = parse_args(["--milestone", "30"])
    assert lr_at(d, 29, 0, 1) == 1e-3 and lr_at(d, 30, 0, 1) == pytest.approx(1e-4)
    a = parse_args(["--arch", "ADNet"])
    assert a.epochs == 70
    assert [lr_at(a, e, 0, 1) for e in (30, 31, 61, 91)] == pytest.approx([1e-3, 1e-4, 1e-5, 1e-6])
    c = parse_args(["--lr_schedule", "cosine", "--lr_min", "0"])
    assert lr_at(c, 0, 0, 100) == pytest.approx(1e-3) and lr_at(c, 0, 100, 100) == pytest.approx(0)


def test_init_weights_starts_from_a_checkpoint_with_a_fresh_optimizer(tiny_h5, tmp_path):
    import train
    from models import build_model
    torch.manual_seed(5)
    start = build_model("DnCNN", num_of_layers=5).state_dict()
    torch.save({"module." + k: v for k, v in start.items()}, tmp_path / "start.pth")  # any loadable format
    args = train.parse_args(["--h5_dir", tiny_h5, "--outf", str(tmp_path / "run"), *FAST, "--init_weights",
                             str(tmp_path / "start.pth")])
    trainer = train.Trainer(args)
    assert all(torch.equal(trainer.model.state_dict()[k], v) for k, v in start.items())
    assert not trainer.optimizer.state and trainer.step == 0
    args.num_of_layers = 7
    with pytest.raises(Exception, match="has 5 layers, not 7"):
        train.Trainer(args)


def _refusal(out):
    """The one error line of a refused run (exit status 2, no traceback)."""
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stdout[-2000:] + out.stderr
    return next(line for line in out.stderr.splitlines() if line.startswith("error: "))


@pytest.mark.parametrize("made_with,expected", [(dict(arch="ADNet"), "arch=ADNet but this run has arch=DnCNN"),
                                                (dict(patch_size=30), "patch_size=30 but this run has patch_size=40"),
                                                (dict(stride=20), "stride=20 but this run has stride=10")])
def test_h5_made_with_other_patch_parameters_is_refused(tiny_data, tmp_path, made_with, expected):
    params = dict(dict(arch="DnCNN", mode="S"), **made_with)
    prepare_data(tiny_data, str(tmp_path / "h5"), quiet=True, **params)
    line = _refusal(train(str(tmp_path / "h5"), tmp_path / "run", "--max_steps", "1"))  # DnCNN S, default patches
    assert expected in line and "rebuild it" in line


def test_h5_of_other_data_is_refused_when_the_run_names_its_data(tiny_data, tiny_h5, tmp_path):
    other = shutil.copytree(tiny_data, str(tmp_path / "other"))
    line = _refusal(train(tiny_h5, tmp_path / "run", "--max_steps", "1", "--data_path", other))
    assert "train_data=%s" % os.path.realpath(os.path.join(tiny_data, "train")) in line
    assert "this run has train_data=%s" % os.path.realpath(os.path.join(other, "train")) in line
    h5 = str(tmp_path / "h5")
    assert run_script("preprocess.py", "--data_path", other, "--outf", h5, "--quiet").returncode == 0
    assert train(h5, tmp_path / "run", "--max_steps", "1", "--data_path", other).returncode == 0
    cv2.imwrite(os.path.join(other, "train", "00.png"), make_image((64, 64), seed=99))  # the set changed since
    line = _refusal(train(h5, tmp_path / "run2", "--max_steps", "1", "--data_path", other))
    assert "made from other contents of %s" % os.path.realpath(os.path.join(other, "train")) in line
    assert train(h5, tmp_path / "run3", "--max_steps", "1").returncode == 0  # data not named: not compared
