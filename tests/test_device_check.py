"""make device-check on a machine without a CUDA GPU or an NPU: one line, exit 0; its dry run lists every command;
its checks, run here on the CPU at toy sizes, fill the table."""
import os
import shlex
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "test"))
import device_check  # noqa: E402

SCRIPT = os.path.join(ROOT, "test", "device_check.sh")
HAS_DEVICE = torch.cuda.is_available()  # where there is one, make device-check runs the checks: not here
ENV = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")


def dry_run_lines(stdout):
    """[(section, argv, note)] from the dry run's '(x) command   # note' lines."""
    found = []
    for line in stdout.splitlines():
        if line.startswith("(") and ") " in line:
            section, rest = line[1:].split(") ", 1)
            cmd, _, note = rest.partition("   # ")
            found.append((section, shlex.split(cmd), note))
    return found


def flag(argv, name):
    return argv[argv.index(name) + 1]


@pytest.mark.skipif(HAS_DEVICE, reason="a CUDA device is here: make device-check would run the checks")
def test_without_a_device_says_so_in_one_line_and_exits_0(tmp_path):
    env = {k: v for k, v in ENV.items() if k != "DRY_RUN"}
    out = subprocess.run(["make", "-s", "-C", ROOT, "device-check"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "device-check: no CUDA GPU or Ascend NPU here: nothing to check (DRY_RUN=1 prints the commands)"]


def test_dry_run_prints_every_command(tmp_path):
    out = subprocess.run(["bash", SCRIPT, "--work", str(tmp_path / "work")], capture_output=True, text=True,
                         env=dict(ENV, DRY_RUN="1"), timeout=120)
    assert out.returncode == 0, out.stderr
    lines = dry_run_lines(out.stdout)
    assert [s for s, _, _ in lines] == ["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["d"]
    assert all(argv[0] == sys.executable for _, argv, _ in lines)
    assert not (tmp_path / "work").exists()  # a dry run writes nothing
    tests = [argv for s, argv, _ in lines if s == "a"]
    assert all(argv[1] == "test.py" and flag(argv, "--test_noiseL") == "25" for argv in tests)
    assert all(flag(argv, "--test_data").endswith("Set12") for argv in tests)
    assert [(os.path.basename(flag(a, "--logdir")), flag(a, "--amp")) for a in tests] == [
        ("DnCNN-S-25", "none"), ("DnCNN-S-25", "auto"), ("g25", "none"), ("g25", "auto")]
    assert all(flag(a, "--device") in ("cuda", "npu") for a in tests)
    train, resume, probe = (argv for s, argv, _ in lines if s == "b")
    assert train[1] == "train.py" and flag(train, "--max_steps") == "300" and flag(train, "--amp") == "auto"
    assert flag(train, "--tensorboard") == "False" and "--resume" not in train
    assert resume == train[:-1] + ["350", "--resume"]
    assert probe[1:5] == [os.path.join("test", "device_check.py"), "--probe", "5", "20"]
    assert probe[5:] == train[2:train.index("--outf")] + ["--outf", probe[-1]]
    (ddp, note), (ddp_resume, _) = ((argv, n) for s, argv, n in lines if s == "c")
    assert ddp[1:7] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "train.py"]
    assert "--sync_bn" in ddp and flag(ddp, "--max_steps") == "300" and "--resume" in ddp_resume
    assert note == "with 2+ devices"
    bench = next(argv for s, argv, _ in lines if s == "d")
    assert bench[1] == "bench.py" and bench[bench.index("--only") + 1:bench.index("--only") + 3] == ["train", "eval"]


def test_runs_with_python3_where_there_is_no_venv(tmp_path):
    """The device machine has no .venv: the wrapper then runs python3 (here a script that notes its call and runs
    this interpreter)."""
    repo = tmp_path / "repo"
    os.makedirs(repo / "test")
    for name in ("device_check.sh", "device_check.py", "env.sh"):
        shutil.copy(os.path.join(ROOT, "test", name), repo / "test")
    os.makedirs(tmp_path / "bin")
    python3 = tmp_path / "bin" / "python3"
    python3.write_text('#!/bin/sh\necho "$@" >> "%s"\nexec "%s" "$@"\n' % (tmp_path / "calls", sys.executable))
    python3.chmod(0o755)
    env = {k: v for k, v in ENV.items() if k != "PYTHON"}
    env.update(PATH=str(tmp_path / "bin") + os.pathsep + env["PATH"], DRY_RUN="1")
    out = subprocess.run(["bash", str(repo / "test" / "device_check.sh")], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = dry_run_lines(out.stdout)
    assert len(lines) == 10
    assert (tmp_path / "calls").read_text() == str(repo / "test" / "device_check.py") + "\n"


def test_judges():
    judge = device_check.psnr_judge(30.3949, 0.001)
    assert judge("precision: bf16 autocast (x)\nPSNR on test data 30.395500\n") == ("30.3955 (bf16)", True)
    assert judge("PSNR on test data 30.396000\n") == ("30.3960", False)
    assert judge("Traceback ...") == ("no PSNR line", False)
    probe = device_check.probe_judge
    assert probe("device-to-host copies in 20 steps: 0; host reads of device tensors: 0")[1]
    assert not probe("device-to-host copies in 20 steps: 20; host reads of device tensors: 20 (item)")[1]
    assert device_check.bench_judge("## Training\n| DnCNN | 1 |\n| ADNet | 1 |\n## Inference\n| DnCNN | 2 |\n") == (
        "2 tables, 3 rows", True)


def test_checks_fill_the_table_on_the_cpu(tiny_data, tmp_path, monkeypatch, capsys):
    """The whole sequence on the CPU at toy sizes, bench.py aside (tests/test_bench.py runs it): every row passes
    (the PSNR bounds widened: tiny images, not Set12), the DDP rows are skipped on one device."""
    d = device_check
    monkeypatch.setattr(d, "find_device", lambda: ("cpu", 1, "test CPU"))
    monkeypatch.setattr(d, "data_folder", lambda name: os.path.join(tiny_data, name))
    monkeypatch.setattr(d, "checkpoint_path", lambda name: os.path.join(
        ROOT, "weights", "DnCNN-S-25" if name.startswith("DnCNN") else "ADNet-S-25"))
    monkeypatch.setattr(d, "FP32_TOL", 100.0)
    monkeypatch.setattr(d, "HALF_TOL", 100.0)
    for name, value in (("STEPS", 4), ("RESUMED_STEPS", 6), ("SAVE_EVERY", 2), ("PROBE_WARMUP", 1),
                        ("PROBE_STEPS", 2), ("TRAIN_EXTRA", ["--batchSize", "16", "--num_of_layers", "5"])):
        monkeypatch.setattr(d, name, value)
    full_plan = d.plan
    monkeypatch.setattr(d, "plan", lambda kind, work: [c for c in full_plan(kind, work) if c.section != "d"])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("DRY_RUN", raising=False)
    assert d.main(["--work", str(tmp_path / "work")]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    rows = [line.strip("|").split(" | ") for line in out.splitlines() if line.startswith("| (")]
    assert [r[-1].strip() for r in rows] == ["PASS"] * 7 + ["SKIP"] * 2, out
    assert rows[4][1].startswith("step 4, cpu x1 ") and rows[5][1].startswith("resumed at 4, step 6, cpu x1 "), rows
    assert rows[6][1].startswith("n/a copies, 0 reads in 2 steps"), rows
    assert "0 failed, 7 passed, 2 skipped" in out
    assert len(os.listdir(tmp_path / "work" / "logs")) == 7
