import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, free_port

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def test_two_process_gradients_equal_one_process(tiny_h5, tmp_path):
    helper = os.path.join(ROOT, "tests", "ddp_grad_check.py")
    one = subprocess.run([sys.executable, helper, str(tmp_path / "g1.pt"), "--h5_dir", tiny_h5, "--outf",
                          str(tmp_path)], env=ENV, capture_output=True,
                         text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run(TORCHRUN + ["--nproc_per_node=2", helper, str(tmp_path / "g2.pt"), "--h5_dir", tiny_h5, "--outf", str(tmp_path)], env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr
    g1, g2 = torch.load(tmp_path / "g1.pt"), torch.load(tmp_path / "g2.pt")
    assert g1.keys() == g2.keys()
    for k in g1:
        # most gradients here are ~1e-5 to 1e-3, so the bound is relative to each tensor's largest element
        # (measured: at most 4e-6 of it; summation order differs between one and two processes)
        largest = g1[k].abs().max()
        assert largest > 0, k
        assert (g1[k] - g2[k]).abs().max() <= 1e-4 * largest, k


def test_two_process_training_writes_one_unwrapped_checkpoint(tiny_h5, tmp_path):
    out = subprocess.run(TORCHRUN + ["--nproc_per_node=2", os.path.join(ROOT, "train.py"), "--h5_dir", tiny_h5,
                                     "--outf", str(tmp_path), "--batchSize", "16", "--num_of_layers", "5",
                                     "--epochs", "1", "--quiet"],
                         env=ENV, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("] PSNR_val:") == 1  # rank 0 alone logs
    assert "cpu x2" in out.stdout
    state = torch.load(tmp_path / "net.pth", weights_only=True)
    assert not any(k.startswith("module.") for k in state)
    ckpt = torch.load(tmp_path / "checkpoint.pth", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["step"] == 7  # 108 patches: 54 per rank, 8 per rank-batch


def _start(cmd, log_path, env=ENV, **kwargs):
    """Popen with its output in a file: a pipe nobody reads would block it, a closed one would end it."""
    with open(log_path, "w") as log:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, **kwargs)


def _wait_until_training(log_path, limit=120):
    deadline = time.time() + limit
    while "FPS:" not in log_path.read_text():
        assert time.time() < deadline, "training not under way after %d s:\n%s" % (limit, log_path.read_text())
        time.sleep(0.2)


def _seconds_to_exit(proc, limit):
    """Seconds proc takes to exit; the test fails if that is more than limit."""
    start = time.time()
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        pytest.fail("still running %d s later" % limit)
    return time.time() - start


def _start_two_ranks(tiny_h5, tmp_path, timeout):
    """Two training processes started as the ADNet port's shell scripts do: no torchrun agent ends the survivor
    when its peer is lost, so what ends it is train.py's own doing."""
    env = dict(ENV, MASTER_ADDR="127.0.0.1", MASTER_PORT=free_port())
    return [_start([sys.executable, os.path.join(ROOT, "train.py"), "--is_distributed", "1", "--DeviceID", "0,1",
                    "--num_gpus", "2", "--local_rank", str(r), "--h5_dir", tiny_h5, "--outf", str(tmp_path),
                    "--batchSize", "16", "--num_of_layers", "5", "--epochs", "500", "--log_every", "1", "--quiet",
                    "--timeout", str(timeout)], tmp_path / ("rank%d.log" % r), env=dict(env, RANK_ID=str(r)))
            for r in (0, 1)]


def _end_all(procs):
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_rank_fails_the_other_at_once(tiny_h5, tmp_path):
    ranks = _start_two_ranks(tiny_h5, tmp_path, timeout=600)
    survivor, killed = ranks
    try:
        _wait_until_training(tmp_path / "rank0.log")
        killed.send_signal(signal.SIGKILL)  # its sockets close, so the survivor fails without waiting for --timeout
        _seconds_to_exit(survivor, limit=60)
        assert survivor.returncode != 0
    finally:
        _end_all(ranks)


def test_hung_rank_fails_the_other_after_timeout(tiny_h5, tmp_path):
    timeout = 10
    ranks = _start_two_ranks(tiny_h5, tmp_path, timeout)
    survivor, hung = ranks
    try:
        _wait_until_training(tmp_path / "rank0.log")
        hung.send_signal(signal.SIGSTOP)  # alive, sockets open, silent: only the timeout ends the wait for it
        seconds = _seconds_to_exit(survivor, limit=timeout + 25)
        assert survivor.returncode != 0
        assert seconds > timeout * 0.75, seconds
        assert "Timed out" in (tmp_path / "rank0.log").read_text()
    finally:
        _end_all(ranks)


def test_legacy_dncnn_8p_flags_relaunch_under_torchrun(tiny_h5, tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--gpu_use_num", "2", "--h5_dir", tiny_h5,
                          "--outf", str(tmp_path), "--batchSize", "16", "--num_of_layers", "5", "--max_steps", "2",
                          "--quiet"], env=ENV, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "cpu x2" in out.stdout


def test_legacy_adnet_rank_id_launch(tiny_data, tmp_path):
    """ADNet's launch, no torchrun agent: rank 0 makes ADNet's patches while rank 1 waits for them."""
    env = dict(ENV, MASTER_ADDR="127.0.0.1", MASTER_PORT="29533")
    procs = [subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), "--is_distributed", "1",
                               "--DeviceID", "0,1", "--num_gpus", "2", "--world_size", "2", "--local_rank", str(r),
                               "--arch", "ADNet", "--preprocess", "True", "--data_path", tiny_data,
                               "--h5_dir", str(tmp_path / "h5"), "--outf", str(tmp_path), "--batchSize", "16",
                               "--max_steps", "2", "--quiet"],
                              env=dict(env, RANK_ID=str(r)), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for r in (0, 1)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "ADNet on cpu x2" in outputs[0]
