"""weights/train_zoo.sh (every model in priority order, resumable, a time budget) and train.py's --max_minutes,
at toy sizes on the CPU; bench.py's device section."""
import os
import subprocess
import sys

import cv2

from conftest import ROOT, make_image, run_script

ZOO = os.path.join(ROOT, "weights", "train_zoo.sh")
ORDER = ["CDnCNN-B", "CDnCNN-S-15", "DnCNN-S-25", "DnCNN-S-15", "DnCNN-S-50", "DnCNN-B", "ADNet-S-25", "ADNet-B",
         "FDnCNN", "DnCNN-3"]


def zoo(tmp_path, *args):
    env = dict(os.environ, PYTHON=sys.executable, RUNS=str(tmp_path / "runs"), DATA=str(tmp_path / "data"),
               OMP_NUM_THREADS="2")
    return subprocess.run(["bash", ZOO, *args], capture_output=True, text=True, env=env, timeout=900)


def trained(stdout):
    """The models train.py was started for, in order."""
    return [line.split("--outf ")[1].split()[0].rsplit("/", 1)[1] for line in stdout.splitlines()
            if line.startswith("+ ") and " train.py " in line]


def toy_data(root):
    for name, count, size, colour in (("train", 3, (64, 64), False), ("Set12", 1, (48, 48), False),
                                      ("Set68", 1, (48, 48), False), ("CBSD432", 3, (64, 64), True),
                                      ("McMaster", 1, (48, 48), True)):
        os.makedirs(root / name)
        for i in range(count):
            img = make_image(size + ((3,) if colour else ()), seed=i + 7 * len(name))
            cv2.imwrite(str(root / name / ("%d.png" % i)), img)


def test_dry_run_lists_the_zoo_in_priority_order(tmp_path):
    done = zoo(tmp_path, "--dry_run", "--minutes", "9")
    assert done.returncode == 0, done.stderr
    assert trained(done.stdout) == ORDER  # each as far as the minutes left take it
    assert "--max_minutes 9.00" in done.stdout and "--save_minutes 1" in done.stdout
    everything = zoo(tmp_path, "--dry_run")
    assert trained(everything.stdout) == ORDER and "dry run: nothing run" in everything.stdout
    assert not os.path.exists(tmp_path / "runs" / "CDnCNN-B")
    assert zoo(tmp_path, "--frobnicate").returncode == 2


def test_toy_zoo_trains_every_model_then_skips_them(tmp_path):
    toy_data(tmp_path / "data")
    first = zoo(tmp_path, "--toy", "--device", "cpu")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert trained(first.stdout) == ORDER and "every model trained to its steps" in first.stdout
    for name in ORDER:
        assert os.path.isfile(tmp_path / "runs" / name / "net.pth"), name
    again = zoo(tmp_path, "--toy", "--device", "cpu")
    assert again.returncode == 0 and again.stdout.count("nothing to train: step 4") == len(ORDER), again.stdout
    late = zoo(tmp_path, "--toy", "--device", "cpu", "--minutes", "0.1")
    assert late.returncode == 0 and "CDnCNN-B: out of time (--minutes 0.1)" in late.stdout
    assert trained(late.stdout) == []


def test_max_minutes_stops_saved_and_resume_goes_on(tiny_h5, tmp_path):
    out = tmp_path / "run"
    args = ["train.py", "--h5_dir", tiny_h5, "--outf", str(out), "--num_of_layers", "3", "--batchSize", "4",
            "--log_every", "1", "--tensorboard", "False", "--quiet", "--epochs", "1", "--resume"]
    stopped = run_script(*args, "--max_minutes", "0.0001")
    assert stopped.returncode == 0, stopped.stderr
    assert "--max_minutes 0.0001: stopping at step 1" in stopped.stdout
    assert os.path.isfile(out / "checkpoint.pth") and os.path.isfile(out / "net.pth")
    rest = run_script(*args)
    assert rest.returncode == 0 and "resum" in rest.stdout.lower() and "stopping" not in rest.stdout
    assert "nothing to train" in run_script(*args).stdout


def test_device_section_runs_the_device_step_at_toy_size():
    done = run_script("bench.py", "--only", "device", "--device", "cpu", "--batches", "2", "--steps", "1",
                      "--device_patches", "8", "--archs", "DnCNN", "--device_options", "eager")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| DnCNN | 40x40 | 2 | eager |"))
    assert float(row.split("|")[5]) > 0
    assert "not run: no CUDA GPU" in run_script("bench.py", "--only", "device").stdout
