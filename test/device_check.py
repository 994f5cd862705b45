"""The first day on a CUDA GPU or an Ascend NPU, in one command (make device-check, or bash test/device_check.sh):

  (a) test.py on Set12 with SaoYan's DnCNN-S-25 and ADNet's g25, at fp32 (--amp none: the README's figures to
      0.001 dB) and at the device's half precision (--amp auto: within 0.05 dB);
  (b) 300 training steps in one process with --amp auto and a save every 100, then a resume that must go on at
      step 300 (to 350), and a probe counting the device-to-host copies of 20 training steps (expected: none);
  (c) with two or more devices, the same training through 2-process DDP (torchrun) with --sync_bn;
  (d) bench.py --only train eval (DnCNN, small sizes): bench.py times the host's CPU (it has no --device), so this
      row checks that it runs there, in the CPU's precision.
It prints one table (check | result | expected | PASS/FAIL) and exits 1 on any failure. Without a device it says so
in one line and exits 0. --dry-run (or DRY_RUN=1) prints every command instead, device or not.
Measured on one H200 (torch 2.11, no venv): 157 s in all, bench.py 92 s of it.

The checkpoints and sets: $SHARED (default ../shared beside the project) reference_weights/ and data/, else
weights/reference/ (bash weights/get_reference_weights.sh) and data/. Work files go to --work (default
test/output/device_check, emptied first). The interpreter running this script runs everything (test/device_check.sh
picks .venv/bin/python when there is one, else python3); train.py runs with --tensorboard False.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.environ.get("SHARED") or os.path.join(os.path.dirname(ROOT), "shared"))
README_SET12 = {"DnCNN-S-25": 30.3949, "ADNet g25": 30.5760}  # README.md, Results (fp32)
CHECKPOINTS = {"DnCNN-S-25": "saoyan/DnCNN-S-25", "ADNet g25": "adnet/g25"}
FP32_TOL, HALF_TOL = 0.001, 0.05
TRAIN_IMAGES = 40  # of the 400 training images: ~24k patches, 1.6 epochs of 300 steps at batch 128
STEPS, RESUMED_STEPS, SAVE_EVERY = 300, 350, 100
PROBE_WARMUP, PROBE_STEPS = 5, 20
TRAIN_EXTRA = []  # more train.py flags (tests/test_device_check.py: a small net)


def first_existing(*paths):
    """The first of paths that exists, else the first (named in the dry run and in the failure)."""
    return next((p for p in paths if os.path.exists(p)), paths[0])


def checkpoint_path(name):
    rel = CHECKPOINTS[name]
    return first_existing(os.path.join(SHARED, "reference_weights", rel),
                          os.path.join(ROOT, "weights", "reference", rel))


def data_folder(name):
    return first_existing(os.path.join(SHARED, "data", name), os.path.join(ROOT, "data", name))


def find_device():
    """(kind, count, name) of this machine's accelerator, or None."""
    import torch
    try:
        import torch_npu  # noqa: F401
        if torch.npu.is_available() and torch.npu.device_count():
            return "npu", torch.npu.device_count(), torch.npu.get_device_name(0)
    except ImportError:
        pass
    if torch.cuda.is_available() and torch.cuda.device_count():
        return "cuda", torch.cuda.device_count(), torch.cuda.get_device_name(0)
    return None


class Check:
    """One command and how its output is judged: judge(stdout) -> (result, passed)."""

    def __init__(self, section, name, argv, expected, judge, timeout=300, needs_devices=1, cwd=ROOT):
        self.section, self.name, self.argv, self.expected, self.judge = section, name, argv, expected, judge
        self.timeout, self.needs_devices, self.cwd = timeout, needs_devices, cwd


def psnr_judge(want, tol):
    def judge(out):
        found = re.search(r"PSNR on test data ([\d.]+)", out)
        if not found:
            return "no PSNR line", False
        psnr = float(found.group(1))
        precision = re.search(r"^precision: (\S+)", out, re.M)
        note = " (%s)" % precision.group(1) if precision else ""
        return "%.4f%s" % (psnr, note), abs(psnr - want) <= tol
    return judge


def saved_step(path):
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["step"]
    except Exception as e:  # missing or unreadable: the row says so
        return "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")


def train_judge(outf, steps, processes, kind, resumed_from=None):
    def judge(out):
        ran = re.search(r"^(\w+) on (\S+) x(\d+), amp ([^,\s]+)", out, re.M)
        fps = re.search(r"^FPS: ([\d.]+)", out, re.M)
        step = saved_step(os.path.join(outf, "checkpoint.pth"))
        result = "step %s" % step
        if ran:
            result += ", %s x%s %s" % (ran.group(2), ran.group(3), ran.group(4))
        if fps:
            result += ", %s patches/s" % fps.group(1)
        ok = step == steps and bool(ran) and int(ran.group(3)) == processes and ran.group(2).startswith(kind)
        if resumed_from is not None:
            resumed = re.search(r"resumed from \S+: (\d+) epochs and (\d+) steps done", out)
            ok = ok and bool(resumed) and int(resumed.group(2)) == resumed_from
            result = ("resumed at %s, " % resumed.group(2) if resumed else "no resume line, ") + result
        return result, ok
    return judge


def probe_judge(out):
    found = re.search(r"device-to-host copies in (\d+) steps: (\S+); host reads of device tensors: (\d+)", out)
    if not found:
        return "no probe line", False
    copies = found.group(2)
    ok = copies in ("0", "n/a") and found.group(3) == "0"
    return "%s copies, %s reads in %s steps" % (copies, found.group(3), found.group(1)), ok


def bench_judge(out):
    tables = [t for t in ("## Training", "## Inference") if t in out]
    rows = re.findall(r"^\| (DnCNN|ADNet) \|", out, re.M)
    return "%d tables, %d rows" % (len(tables), len(rows)), len(tables) == 2 and len(rows) >= 2


def plan(kind, work):
    """Every check, in order."""
    py = sys.executable
    set12 = data_folder("Set12")
    checks = []
    for name in CHECKPOINTS:
        for amp, tol, label in (("none", FP32_TOL, "fp32"), ("auto", HALF_TOL, "half")):
            argv = [py, "test.py", "--logdir", checkpoint_path(name), "--test_data", set12, "--test_noiseL", "25",
                    "--device", kind, "--amp", amp, "--quiet"]
            checks.append(Check("a", "test.py %s Set12 %s" % (name, label), argv,
                                "%.4f +- %g" % (README_SET12[name], tol), psnr_judge(README_SET12[name], tol)))
    data = os.path.join(work, "data")
    common = ["train.py", "--data_path", data, "--patch_cache", os.path.join(work, "patches"), "--device", kind,
              "--amp", "auto", "--save_every", str(SAVE_EVERY), "--tensorboard", "False", "--quiet"] + TRAIN_EXTRA
    for section, processes, launcher, extra in (
            ("b", 1, [py], []),
            ("c", 2, [py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"], ["--sync_bn"])):
        outf = os.path.join(work, "train_%dp" % processes)
        what = "1 process" if processes == 1 else "2-process DDP --sync_bn"
        argv = launcher + common + extra + ["--outf", outf]
        checks.append(Check(section, "train %d steps, %s, --amp auto" % (STEPS, what),
                            argv + ["--max_steps", str(STEPS)], "step %d" % STEPS,
                            train_judge(outf, STEPS, processes, kind), needs_devices=processes))
        checks.append(Check(section, "resume to %d, %s" % (RESUMED_STEPS, what),
                            argv + ["--max_steps", str(RESUMED_STEPS), "--resume"],
                            "resumed at %d, step %d" % (STEPS, RESUMED_STEPS),
                            train_judge(outf, RESUMED_STEPS, processes, kind, resumed_from=STEPS),
                            needs_devices=processes))
        if processes == 1:
            probe = [py, os.path.join("test", "device_check.py"), "--probe", str(PROBE_WARMUP), str(PROBE_STEPS)]
            probe += common[1:] + ["--outf", os.path.join(work, "probe")]
            checks.append(Check("b", "host syncs in %d steps (profiler)" % PROBE_STEPS, probe, "0 copies, 0 reads",
                                probe_judge))
    bench = [py, "bench.py", "--only", "train", "eval", "--data", data, "--archs", "DnCNN", "--batch", "32",
             "--steps", "4", "--rounds", "1", "--images", "2"]
    checks.append(Check("d", "bench.py --only train eval", bench, "2 tables, 2 rows", bench_judge, timeout=300))
    return checks


def prepare_work(work):
    """work/data: the first TRAIN_IMAGES training images, Set12 (validation) and Set68 (bench's inference), linked."""
    shutil.rmtree(work, ignore_errors=True)
    data = os.path.join(work, "data")
    os.makedirs(os.path.join(data, "train"))
    train = data_folder("train")
    if not os.path.isdir(train):
        raise FileNotFoundError("no training set at %s (data/get_data.sh)" % train)
    images = sorted(f for f in os.listdir(train) if f.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif")))
    for f in images[:TRAIN_IMAGES]:
        os.symlink(os.path.join(train, f), os.path.join(data, "train", f))
    set12 = data_folder("Set12")
    os.symlink(set12, os.path.join(data, "Set12"))
    set68 = data_folder("Set68")
    os.symlink(set68 if os.path.isdir(set68) else set12, os.path.join(data, "Set68"))


def run_check(check, log_dir, index):
    log = os.path.join(log_dir, "%02d_%s.log" % (index, re.sub(r"\W+", "_", check.name).strip("_")))
    start = time.time()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        proc = subprocess.run(check.argv, cwd=check.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=check.timeout)
        out, rc = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        out, rc = out + "\n(timed out after %d s)" % check.timeout, None
    with open(log, "w") as f:
        f.write("$ %s\n%s" % (shlex.join(check.argv), out))
    result, ok = check.judge(out)
    if rc != 0:
        result, ok = "exit %s; %s" % ("timeout" if rc is None else rc, result), False
    if not ok:
        tail = "\n".join("    " + line for line in out.splitlines()[-15:])
        sys.stdout.write("  FAILED, the end of %s:\n%s\n" % (log, tail))
    return result + " [%.0f s]" % (time.time() - start), ok


def table(rows):
    lines = ["| check | result | expected | |", "|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s |" % row for row in rows]
    return "\n".join(lines)


def probe(warmup, steps, argv):
    """Run `warmup` then `steps` training steps as train.py's loop does (inputs, noise, step), counting the
    device-to-host copies (CUDA: torch.profiler's 'Memcpy DtoH') and the host reads of device tensors (.item(),
    bool(), float(), int(), .tolist()) in the counted steps."""
    import torch
    sys.path.insert(0, ROOT)
    from train import Trainer, parse_args
    trainer = Trainer(parse_args(argv + ["--compile", "False"]))
    def forever():
        while True:
            yield from trainer.batches.batches()
            trainer.epoch += 1
            trainer.batches.set_epoch(trainer.epoch)
    batches = forever()

    def step():
        clean, noisy = trainer.make_inputs(next(batches))
        trainer.optimize(clean, noisy, trainer.args.lr)
        trainer.step += 1

    def synchronize():
        getattr(torch, trainer.device.type).synchronize()
    for _ in range(warmup):
        step()
    synchronize()
    reads = []
    real = {name: getattr(torch.Tensor, name) for name in ("item", "__bool__", "__float__", "__int__", "tolist")}

    def guarded(name):
        def read(tensor, *args):
            if tensor.device.type != "cpu":
                reads.append(name)
            return real[name](tensor, *args)
        return read
    copies = "n/a"
    profiling = trainer.device.type == "cuda"
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with (torch.profiler.profile(activities=activities) if profiling else _null()) as prof:
        for name in real:
            setattr(torch.Tensor, name, guarded(name))
        try:
            for _ in range(steps):
                step()
        finally:
            for name, fn in real.items():
                setattr(torch.Tensor, name, fn)
        synchronize()
    if profiling:
        copies = str(sum(1 for e in prof.events() if "Memcpy DtoH" in e.name))
    print("%s on %s, %s" % (trainer.args.arch, trainer.device, trainer.precision))
    print("device-to-host copies in %d steps: %s; host reads of device tensors: %d%s"
          % (steps, copies, len(reads), " (%s)" % ", ".join(sorted(set(reads))) if reads else ""))
    return 0


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--probe"]:  # --probe WARMUP STEPS train.py-flags...
        return probe(int(argv[1]), int(argv[2]), argv[3:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                   default=os.environ.get("DRY_RUN", "0") not in ("", "0"), help="print the commands, run nothing")
    p.add_argument("--work", default=os.path.join(ROOT, "test", "output", "device_check"),
                   help="work folder (emptied first)")
    args = p.parse_args(argv)
    try:
        device = find_device()
    except ImportError as e:
        print("device-check: torch is not importable with %s (%s): set PYTHON" % (sys.executable, e))
        return 0 if args.dry_run else 1
    if not device and not args.dry_run:
        print("device-check: no CUDA GPU or Ascend NPU here: nothing to check (DRY_RUN=1 prints the commands)")
        return 0
    kind, count, name = device or ("cuda", 0, None)
    checks = plan(kind, os.path.abspath(args.work))
    if args.dry_run:
        print("device-check dry run: %s; in %s:" % (
            "%d x %s (%s)" % (count, name, kind) if device else "no device here, the commands of a CUDA machine",
            ROOT))
        for check in checks:
            note = "   # with %d+ devices" % check.needs_devices if check.needs_devices > 1 else ""
            print("(%s) %s%s" % (check.section, shlex.join(check.argv), note))
        return 0
    print("device-check on %d x %s (%s), %s" % (count, name, kind, sys.executable), flush=True)
    start = time.time()
    rows, failed = [], 0
    try:
        prepare_work(args.work)
    except (OSError, FileNotFoundError) as e:
        print("device-check: %s" % e)
        return 1
    log_dir = os.path.join(args.work, "logs")
    os.makedirs(log_dir)
    for index, check in enumerate(checks, 1):
        if check.needs_devices > count:
            rows.append(("(%s) %s" % (check.section, check.name), "skipped: %d device(s)" % count,
                         "%d+ devices" % check.needs_devices, "SKIP"))
            continue
        print("(%s) %s ..." % (check.section, check.name), flush=True)
        result, ok = run_check(check, log_dir, index)
        failed += not ok
        rows.append(("(%s) %s" % (check.section, check.name), result, check.expected, "PASS" if ok else "FAIL"))
        print("  %s: %s" % (rows[-1][3], result), flush=True)
    print()
    print(table(rows))
    print("\n%d failed, %d passed, %d skipped in %.0f s; logs in %s"
          % (failed, sum(r[3] == "PASS" for r in rows), sum(r[3] == "SKIP" for r in rows), time.time() - start,
             log_dir))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
