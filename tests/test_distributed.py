import os
import signal
import subprocess
import sys
import time

import torch

from conftest import ROOT

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def test_two_process_gradients_equal_one_process(tiny_h5, tmp_path):
    helper = os.path.join(ROOT, "tests", "ddp_grad_check.py")
    one = subprocess.run([sys.executable, helper, tiny_h5, str(tmp_path / "g1.pt")], env=ENV, capture_output=True,
                         text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run(TORCHRUN + ["--nproc_per_node=2", helper, tiny_h5, str(tmp_path / "g2.pt")], env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr
    g1, g2 = torch.load(tmp_path / "g1.pt"), torch.load(tmp_path / "g2.pt")
    assert g1.keys() == g2.keys()
    for k in g1:
        assert torch.allclose(g1[k], g2[k], atol=1e-5, rtol=1e-4), k


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


def test_killing_one_rank_fails_the_job(tiny_h5, tmp_path):
    cmd = TORCHRUN + ["--nproc_per_node=2", os.path.join(ROOT, "train.py"), "--h5_dir", tiny_h5,
                      "--outf", str(tmp_path), "--batchSize", "16", "--num_of_layers", "5", "--epochs", "500",
                      "--log_every", "1", "--quiet", "--timeout", "60"]
    proc = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        for line in proc.stdout:  # wait for training to be under way
            if "FPS:" in line:
                break
        children = subprocess.run(["pgrep", "-f", "-P", str(proc.pid), "train.py"], capture_output=True,
                                  text=True).stdout.split()
        assert len(children) == 2, children
        os.kill(int(children[1]), signal.SIGKILL)
        start = time.time()
        proc.stdout.close()
        status = proc.wait(timeout=120)
        assert status != 0
        assert time.time() - start < 120
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_legacy_dncnn_8p_flags_relaunch_under_torchrun(tiny_h5, tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--gpu_use_num", "2", "--h5_dir", tiny_h5,
                          "--outf", str(tmp_path), "--batchSize", "16", "--num_of_layers", "5", "--max_steps", "2",
                          "--quiet"], env=ENV, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "cpu x2" in out.stdout


def test_legacy_adnet_rank_id_launch(tiny_h5, tmp_path):
    env = dict(ENV, MASTER_ADDR="127.0.0.1", MASTER_PORT="29533")
    procs = [subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), "--is_distributed", "1",
                               "--DeviceID", "0,1", "--num_gpus", "2", "--world_size", "2", "--local_rank", str(r),
                               "--arch", "ADNet", "--h5_dir", tiny_h5, "--outf", str(tmp_path), "--batchSize", "16",
                               "--max_steps", "2", "--quiet"],
                              env=dict(env, RANK_ID=str(r)), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for r in (0, 1)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "ADNet on cpu x2" in outputs[0]
