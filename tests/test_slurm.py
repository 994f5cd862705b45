"""test/train_slurm.sh without Slurm: its dry run for 2 nodes x 8 devices, and a real launch through a fake srun
that starts each node's command on this machine."""
import os
import shlex
import stat
import subprocess
import sys

import torch

from conftest import ROOT, free_port, training_workers

SCRIPT = os.path.join(ROOT, "test", "train_slurm.sh")
SLURM_2x8 = {"SLURM_JOB_NODELIST": "gpu-a01,gpu-a02", "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_ID": "4242",
             "SLURM_GPUS_ON_NODE": "8"}


def slurm_env(tmp_path, **extra):
    """The environment of a job: no real Slurm variables of the machine running the tests, PATH without scontrol
    unless the test puts a fake one in tmp_path/bin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(PYTHON=sys.executable, PATH=str(tmp_path / "bin") + os.pathsep + env["PATH"], OMP_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def run(tmp_path, *args, env=None, timeout=60):
    os.makedirs(tmp_path / "bin", exist_ok=True)
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          env=env or slurm_env(tmp_path, **SLURM_2x8))


def fake_command(tmp_path, name, body):
    path = tmp_path / "bin" / name
    os.makedirs(path.parent, exist_ok=True)
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def node_lines(stdout):
    """{node: argv} from the dry run's 'NODE: command' lines."""
    found = {}
    for line in stdout.splitlines():
        node, sep, cmd = line.partition(": ")
        if sep and not line.startswith(("#", "launch:")):
            found[node] = shlex.split(cmd)
    return found


def expected_torchrun(nproc, nnodes, job, endpoint, max_restarts, train_args):
    return ["env", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1", sys.executable, "-m", "torch.distributed.run",
            "--nnodes", str(nnodes), "--nproc_per_node", str(nproc),
            "--rdzv_id", str(job), "--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint, "--max-restarts",
            str(max_restarts), os.path.join(ROOT, "train.py"), *train_args]


def test_sbatch_header_asks_one_task_per_node():
    header = [line for line in open(SCRIPT) if line.startswith("#SBATCH")]
    options = dict(line.split()[1].lstrip("-").split("=", 1) for line in header)
    assert options["ntasks-per-node"] == "1"
    assert {"nodes", "gpus-per-task", "cpus-per-task", "time"} <= options.keys()


def test_dry_run_two_nodes_of_eight_devices(tmp_path):
    train_args = ["--data_path=/data/dncnn", "--outf", "runs/a run", "--mode", "B", "--save_every", "500", "--resume"]
    out = run(tmp_path, "--dry-run", "--max_restarts=3", *train_args)
    assert out.returncode == 0, out.stderr
    want = expected_torchrun(8, 2, 4242, "gpu-a01:29742", 3, train_args)  # port: 29500 + job id % 1000
    assert node_lines(out.stdout) == {"gpu-a01": want, "gpu-a02": want}
    launch = next(line for line in out.stdout.splitlines() if line.startswith("launch: "))
    assert shlex.split(launch[len("launch: "):]) == ["srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1",
                                                     "--kill-on-bad-exit=1"] + want
    assert "2 nodes x 8 processes" in out.stdout
    # the same through the environment; an explicit port and device count win over the job's
    env = slurm_env(tmp_path, **dict(SLURM_2x8, DRY_RUN="1", RDZV_PORT="31000", NPROC_PER_NODE="4", MAX_RESTARTS="1"))
    out = run(tmp_path, "--mode", "S", env=env)
    assert out.returncode == 0, out.stderr
    assert node_lines(out.stdout)["gpu-a02"] == expected_torchrun(4, 2, 4242, "gpu-a01:31000", 1, ["--mode", "S"])


def test_compressed_node_list_goes_through_scontrol(tmp_path):
    fake_command(tmp_path, "scontrol",
                 '[ "$1 $2 $3" = "show hostnames gpu-a[01-02]" ] && printf "gpu-a01\\ngpu-a02\\n"\n')
    env = slurm_env(tmp_path, **dict(SLURM_2x8, SLURM_JOB_NODELIST="gpu-a[01-02]", SLURM_GPUS_ON_NODE="",
                                     SLURM_GPUS_PER_TASK="h100:8"))
    out = run(tmp_path, "--dry-run", env=env)
    assert out.returncode == 0, out.stderr
    assert sorted(node_lines(out.stdout)) == ["gpu-a01", "gpu-a02"]
    assert "--rdzv_endpoint gpu-a01:29742" in out.stdout and "--nproc_per_node 8" in out.stdout
    (tmp_path / "bin" / "scontrol").unlink()  # no scontrol: a compressed list cannot be read
    out = run(tmp_path, "--dry-run", env=env)
    assert out.returncode == 2 and "comma list" in out.stderr


def test_without_a_job_says_what_is_missing(tmp_path):
    out = run(tmp_path, "--dry-run", env=slurm_env(tmp_path))
    assert out.returncode == 2 and "SLURM_JOB_NODELIST" in out.stderr
    out = run(tmp_path, "--dry-run", env=slurm_env(tmp_path, **dict(SLURM_2x8, SLURM_JOB_NUM_NODES="3")))
    assert out.returncode == 2 and "names 2 nodes" in out.stderr


def two_fake_nodes(tmp_path, job_id):
    """The environment of a 2-node job whose srun is a stand-in starting the node command twice here (logs in
    tmp_path/node1.log, node2.log): the c10d rendezvous at the first node's name, 127.0.0.1."""
    fake_command(tmp_path, "srun", 'while [ "${1#-}" != "$1" ]; do shift; done\n'  # srun's own options
                 'for n in 1 2; do "$@" > "$SRUN_LOGS/node$n.log" 2>&1 & done\nfail=0\n'
                 'for job in $(jobs -p); do wait "$job" || fail=1; done\nexit $fail\n')
    return slurm_env(tmp_path, SLURM_JOB_NODELIST="127.0.0.1,localhost", SLURM_JOB_NUM_NODES="2", SLURM_JOB_ID=job_id,
                     NPROC_PER_NODE="1", RDZV_PORT=free_port(), SRUN_LOGS=str(tmp_path))


def test_launch_through_a_fake_srun_trains_on_two_nodes(tiny_h5, tmp_path):
    """srun as a stand-in that starts the node command once per node here: the c10d rendezvous at the first
    node's name (127.0.0.1), one CPU process per node, a few steps."""
    env = two_fake_nodes(tmp_path, job_id="77")
    out = run(tmp_path, "--h5_dir", tiny_h5, "--outf", str(tmp_path / "run"), "--batchSize", "16",
              "--num_of_layers", "5", "--max_steps", "2", "--tensorboard", "False", "--quiet", env=env, timeout=240)
    logs = "\n".join(log.read_text() for log in (tmp_path / "node1.log", tmp_path / "node2.log") if log.exists())
    assert out.returncode == 0, out.stdout + out.stderr + logs
    assert "DnCNN on cpu x2" in logs
    assert torch.load(tmp_path / "run" / "checkpoint.pth", weights_only=True)["step"] == 2


def test_a_restart_after_a_killed_worker_completes(tiny_h5, tmp_path):
    """--max_restarts 1, one node's process SIGKILLed after the first save: both agents meet again and the new
    processes get through init_process_group (with the agents' shared store they read the dead processes' keys
    and fail: TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 in the command is what this checks)."""
    import signal
    import time
    env = two_fake_nodes(tmp_path, job_id="78")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(["bash", SCRIPT, "--max_restarts=1", "--h5_dir", tiny_h5, "--outf", str(run_dir),
                             "--batchSize", "16", "--num_of_layers", "5", "--epochs", "3", "--save_every", "5",
                             "--compile", "False", "--tensorboard", "False", "--quiet"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (run_dir / "checkpoint.pth").exists():
            assert time.time() < deadline and proc.poll() is None, "no checkpoint"
            time.sleep(0.2)
        os.kill(next(training_workers(str(run_dir))), signal.SIGKILL)
        assert proc.wait(timeout=150) == 0, "\n".join(
            (tmp_path / ("node%d.log" % n)).read_text()[-3000:] for n in (1, 2))
    finally:
        if proc.poll() is None:
            proc.kill()
    logs = (tmp_path / "node1.log").read_text() + (tmp_path / "node2.log").read_text()
    assert "exitcode: -9" in logs  # the kill was seen, and the restarted processes finished the run
    assert torch.load(run_dir / "checkpoint.pth", weights_only=True)["step"] == 21
