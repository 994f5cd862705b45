"""torchrun --max-restarts: a worker SIGKILLed mid-run makes torchrun restart the workers, which join a fresh
process group (device.restart_store) and resume from the newest checkpoint by themselves; the weights at the
end equal an uninterrupted run's. A rank that keeps failing still ends the job non-zero."""
import os
import signal
import subprocess
import sys
import time

import torch

from conftest import ROOT, training_workers

FLAGS = ["--batchSize", "16", "--num_of_layers", "5", "--epochs", "2", "--save_every", "5", "--save_minutes", "0",
         "--compile", "False", "--tensorboard", "False", "--quiet"]


def torchrun(h5_dir, outf, restarts):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "--max-restarts", str(restarts), os.path.join(ROOT, "train.py"), "--h5_dir", h5_dir, "--outf", outf] + FLAGS
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_a_worker_after_a_save(proc, outf, not_before=0.0, timeout=120):
    """Wait for a checkpoint newer than not_before, then SIGKILL one worker; returns the time of the kill."""
    path = os.path.join(outf, "checkpoint.pth")
    deadline = time.time() + timeout
    while not (os.path.exists(path) and os.path.getmtime(path) > not_before):
        assert time.time() < deadline and proc.poll() is None, "no checkpoint: " + (proc.stdout.read() or "")
        time.sleep(0.1)
    os.kill(next(training_workers(outf)), signal.SIGKILL)
    return time.time()


def test_a_killed_worker_is_restarted_and_resumes_to_the_same_weights(tiny_h5, tmp_path):
    plain, killed = str(tmp_path / "plain"), str(tmp_path / "killed")
    uninterrupted = torchrun(tiny_h5, plain, 0)
    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stdout.read()[-3000:]

    proc = torchrun(tiny_h5, killed, 2)
    try:
        kill_a_worker_after_a_save(proc, killed)
        assert proc.wait(timeout=300) == 0, proc.stdout.read()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    log = open(os.path.join(killed, "train.log")).read()
    assert "torchrun restart 1 of 2: resuming from %s" % os.path.join(killed, "checkpoint.pth") in log
    assert "resumed from %s" % os.path.join(killed, "checkpoint.pth") in log
    ours = torch.load(os.path.join(killed, "net.pth"), weights_only=True)
    theirs = torch.load(os.path.join(plain, "net.pth"), weights_only=True)
    for name, tensor in theirs.items():
        assert torch.equal(ours[name], tensor), name


def test_a_worker_that_keeps_failing_ends_the_job(tiny_h5, tmp_path):
    outf = str(tmp_path / "run")
    proc = torchrun(tiny_h5, outf, 1)
    try:
        first = kill_a_worker_after_a_save(proc, outf)
        kill_a_worker_after_a_save(proc, outf, not_before=first)  # the restarted workers' next save
        assert proc.wait(timeout=300) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
