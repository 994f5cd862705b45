"""Device, precision and training-loop logic for GPUs and NPUs, proven on CPU with faked capabilities.

No CUDA device or Ascend NPU is available here: each decision is a plain function given the device's
capabilities, and the device-only code (apex, torch_npu's GradScaler, ASCEND_DEVICE_ID) runs against stubs.
"""
import contextlib
import os
import sys
import types

import pytest
import torch
import torch.nn as nn

import device
import precision
import train
from conftest import run_script
from models import build_model, fold_batchnorm
from precision import device_caps, precision_policy
from utils import UserError

CPU_AVX2 = {"kind": "cpu", "fast": {}}
CPU_AVX512_BF16 = {"kind": "cpu", "fast": {"bf16": "AVX512-BF16"}}
CPU_AMX = {"kind": "cpu", "fast": {"bf16": "AMX"}}
GPU_V100 = {"kind": "cuda", "fast": {"fp16": "CUDA"}}
GPU_A100 = {"kind": "cuda", "fast": {"fp16": "CUDA", "bf16": "native bf16 on this GPU"}}
NPU = {"kind": "npu", "fast": {"fp16": "NPU"}, "apex": False}
NPU_APEX = dict(NPU, apex=True)
FAST = ["--batchSize", "16", "--num_of_layers", "5", "--log_every", "2", "--tensorboard", "False", "--quiet"]


def policy(amp, caps, training=True):
    p = precision_policy(amp, caps, training)
    return p.name, p.scaler


@pytest.mark.parametrize("caps,expected", [
    (CPU_AVX2, ("fp32", None)), (CPU_AVX512_BF16, ("bf16", None)), (CPU_AMX, ("bf16", None)),
    (GPU_V100, ("fp16", "torch")), (GPU_A100, ("bf16", None)), (NPU, ("fp16", "npu")), (NPU_APEX, ("fp16", "apex"))])
def test_auto_takes_only_what_the_hardware_runs_natively(caps, expected):
    assert policy("auto", caps) == expected


def test_emulated_half_types_run_fp32_unless_forced():
    p = precision_policy("bf16", CPU_AVX2, training=True)
    assert p.dtype is None and "bf16!" in p.why and "emulated" in p.why
    assert policy("bf16!", CPU_AVX2) == ("bf16", None)
    assert policy("fp16", CPU_AMX) == ("fp32", None)  # no AMX-FP16 in these caps
    assert policy("fp16!", CPU_AMX) == ("fp16", "torch")
    assert policy("bf16", GPU_V100) == ("fp32", None) and policy("bf16!", GPU_V100) == ("bf16", None)
    assert policy("bf16", CPU_AMX) == ("bf16", None) and policy("none", GPU_A100) == ("fp32", None)
    with pytest.raises(UserError):
        precision_policy("int8", CPU_AMX)


def test_apex_and_loss_scaling_only_with_fp16_training():
    assert policy("bf16!", NPU_APEX) == ("bf16", None)  # apex O2 is fp16 master-weight training: never for bf16
    assert policy("fp16", NPU_APEX, training=False) == ("fp16", None)  # inference scales no loss
    assert policy("fp16", GPU_A100) == ("fp16", "torch")


def test_the_decision_is_said_in_one_line():
    assert str(precision_policy("auto", CPU_AVX512_BF16)) == "bf16 autocast (AVX512-BF16)"
    assert str(precision_policy("auto", CPU_AVX2)) == "fp32 (no fast bf16 on this CPU)"
    assert str(precision_policy("auto", GPU_V100, True)) == "fp16 autocast + GradScaler (no native bf16 on this GPU)"


def test_cuda_bf16_is_asked_without_emulation(monkeypatch):
    """Current torch's is_bf16_supported() says yes for a V100 or T4 (emulation included by default)."""
    def v100_is_bf16_supported(including_emulation=True):
        return including_emulation
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", v100_is_bf16_supported)
    caps = device_caps(torch.device("cuda", 0))
    assert "bf16" not in caps["fast"]
    assert policy("auto", caps) == ("fp16", "torch")


def test_npu_scaler_and_device_id_against_a_stub_torch_npu():
    """torch_npu's GradScaler for fp16 training; ASCEND_DEVICE_ID / --device_id honoured (see npu_stub_check.py)."""
    out = run_script(os.path.join("tests", "npu_stub_check.py"))
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_sync_batchnorm_is_folded_too():
    torch.manual_seed(0)
    model = build_model("DnCNN", num_of_layers=5)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(build_model("DnCNN", num_of_layers=5))
    synced.load_state_dict(model.state_dict())
    folded = fold_batchnorm(synced)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    x = torch.rand(1, 1, 24, 24)
    with torch.no_grad():
        assert torch.allclose(folded(x), fold_batchnorm(model)(x), atol=1e-5)


def test_the_step_reads_nothing_back_from_the_device(tiny_h5, tmp_path, monkeypatch):
    """A per-step isfinite(loss) check (or .item()) makes the host wait for a GPU/NPU every step; inputs and noise
    are made on the device from uint8 patches and a (seed, rank, step) generator without reading anything back."""
    args = train.parse_args(["--h5_dir", tiny_h5, "--outf", str(tmp_path), "--amp", "none", *FAST])
    trainer = train.Trainer(args)
    clean, noisy = trainer.make_inputs(next(iter(trainer.batches.batches())))
    trainer.optimize(clean, noisy, lr=1e-3)  # creates Adam's state
    # Adam's step counters are host tensors (on a GPU too, unless capturable): reading them is no device sync
    counters = {id(state["step"]) for state in trainer.optimizer.state.values()}
    real = {name: getattr(torch.Tensor, name) for name in ("item", "__bool__", "__float__", "__int__", "tolist")}

    def guarded(name):
        def read(tensor, *args):
            if id(tensor) not in counters:
                raise AssertionError("host read of a device value inside the step (Tensor.%s)" % name)
            return real[name](tensor, *args)
        return read
    batch_u8 = next(iter(trainer.batches.batches()))  # the sampler's order: host data, once an epoch
    for name in real:
        monkeypatch.setattr(torch.Tensor, name, guarded(name))
    trainer.step += 1
    clean, noisy = trainer.make_inputs(batch_u8)  # inputs and noise too
    loss, _ = trainer.optimize(clean, noisy, lr=1e-3)
    monkeypatch.undo()
    assert torch.isfinite(loss) and not trainer.nonfinite


def test_non_finite_loss_between_log_lines_stops_before_any_save(tiny_h5, tmp_path):
    args = train.parse_args(["--h5_dir", tiny_h5, "--outf", str(tmp_path), "--amp", "none", *FAST, "--log_every", "5"])
    trainer = train.Trainer(args)
    clean, noisy = trainer.make_inputs(next(iter(trainer.batches.batches())))
    trainer.optimize(clean, noisy * float("nan"), lr=1e-3)  # a step that is not logged
    with pytest.raises(UserError, match="non-finite loss at step"):
        trainer.save()
    assert not (tmp_path / "checkpoint.pth").exists()


def test_resume_in_another_precision_starts_a_fresh_loss_scale(tiny_h5, tmp_path):
    """A CPU (fp32 or bf16) checkpoint resumed where auto means fp16 + GradScaler (GPU, NPU): here fp16! on CPU."""
    first = run_script("train.py", "--h5_dir", tiny_h5, "--outf", str(tmp_path), *FAST, "--amp", "none", "--max_steps", "2")
    assert first.returncode == 0, first.stderr
    second = run_script("train.py", "--h5_dir", tiny_h5, "--outf", str(tmp_path), *FAST, "--amp", "fp16!",
                        "--max_steps", "4", "--resume")
    assert second.returncode == 0, second.stderr
    assert "resuming a fp32 run in fp16 autocast + GradScaler" in second.stdout and "starts afresh" in second.stdout
    saved = torch.load(tmp_path / "checkpoint.pth", weights_only=True)
    assert saved["step"] == 4 and saved["precision"] == {"dtype": "fp16", "scaler": "torch"} and saved["scaler"]
    third = run_script("train.py", "--h5_dir", tiny_h5, "--outf", str(tmp_path), *FAST, "--amp", "fp16!",
                       "--max_steps", "5", "--resume")
    assert third.returncode == 0, third.stderr
    assert "afresh" not in third.stdout  # same precision: the saved scale goes on


class FakeApexAmp:
    """apex.amp O2 as far as train.py meets it: an fp16 model with a forward that casts its input to fp16,
    fp32 master parameters in the optimizer, a scaled backward, and amp state to checkpoint."""

    def __init__(self):
        self.loaded = None

    def initialize(self, model, optimizer, opt_level, loss_scale):
        assert opt_level == "O2"
        self.model = model
        self.masters = [p.detach().clone().float().requires_grad_() for p in model.parameters()]
        model.half()
        forward = model.forward
        model.forward = lambda x: forward(x.half())
        optimizer.param_groups[0]["params"] = self.masters
        return model, optimizer

    @contextlib.contextmanager
    def scale_loss(self, loss, optimizer):
        yield loss * 128.0
        for master, p in zip(self.masters, self.model.parameters()):
            master.grad = p.grad.float() / 128.0

    def master_params(self, optimizer):
        return iter(self.masters)

    def state_dict(self):
        return {"loss_scale": 128.0}

    def load_state_dict(self, state):
        self.loaded = state


def test_apex_o2_validates_and_saves_fp32_master_weights(tiny_h5, tmp_path, monkeypatch):
    fake = FakeApexAmp()
    monkeypatch.setattr(train, "apex_amp", lambda: fake)
    monkeypatch.setattr(precision, "device_caps", lambda device: dict(NPU_APEX, kind="cpu"))
    args = train.parse_args(["--h5_dir", tiny_h5, "--outf", str(tmp_path), "--amp", "fp16", *FAST])
    trainer = train.Trainer(args)
    assert trainer.apex is fake and trainer.precision.scaler == "apex"
    clean, noisy = trainer.make_inputs(next(iter(trainer.batches.batches())))
    trainer.optimize(clean, noisy, lr=1e-2)
    trainer.end_epoch()  # validation on a folded fp32 copy, net.pth and checkpoint.pth
    assert 0 < trainer.best_psnr < 100
    saved = torch.load(tmp_path / "net.pth", weights_only=True)
    names = [n for n, _ in trainer.model.named_parameters()]
    for name, master in zip(names, fake.masters):
        assert saved[name].dtype == torch.float32 and torch.equal(saved[name], master.detach())
    assert not torch.equal(saved["dncnn.0.weight"], trainer.model.dncnn[0].weight.float())  # not the fp16 copy
    ckpt = torch.load(tmp_path / "checkpoint.pth", weights_only=True)
    assert ckpt["apex"] == {"loss_scale": 128.0} and ckpt["precision"]["scaler"] == "apex"
    args.resume = "auto"
    again = train.Trainer(args)
    assert fake.loaded == {"loss_scale": 128.0} and again.step == 0


def test_save_minutes_then_kill_resumes_from_the_timed_save(tiny_h5, tmp_path):
    import signal
    import subprocess
    import time
    from conftest import ROOT
    base = ["--h5_dir", tiny_h5, *FAST, "--amp", "none", "--num_of_layers", "9", "--epochs", "2"]
    one_thread = {"OMP_NUM_THREADS": "1"}  # bit-identical runs need the same thread count
    full = run_script("train.py", *base, "--outf", str(tmp_path / "full"), env=one_thread)
    assert full.returncode == 0, full.stderr
    split = tmp_path / "split"
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *base, "--outf", str(split),
                             "--save_minutes", "0.0001"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, **one_thread))
    ckpt, deadline, seen = split / "checkpoint.pth", time.time() + 120, None
    while time.time() < deadline and seen is None:
        seen = torch.load(ckpt, weights_only=True) if ckpt.exists() else None
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert seen["epoch"] == 0 and seen["step_in_epoch"] >= 1  # the first save was a timed one, mid-epoch
    assert torch.load(ckpt, weights_only=True)["step"] < 14
    out = run_script("train.py", *base, "--outf", str(split), "--resume", env=one_thread)
    assert out.returncode == 0, out.stderr
    assert "resumed from" in out.stdout
    a, b = (torch.load(p / "net.pth", weights_only=True) for p in (tmp_path / "full", split))
    assert all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- host memory
@pytest.mark.parametrize("device_type,libc,training,expected", [
    ("cpu", "glibc", True, True), ("cpu", "glibc", False, False), ("cuda", "glibc", True, False),
    ("npu", "glibc", True, False), ("cpu", "", True, False), ("cpu", "musl", True, False)])
def test_malloc_is_tuned_only_for_cpu_training_on_glibc(device_type, libc, training, expected):
    assert device.keeps_freed_memory(device_type, libc, training) is expected


def test_setup_host_leaves_malloc_alone_for_a_device_run(monkeypatch):
    monkeypatch.setattr(device, "keep_freed_memory", lambda: pytest.fail("malloc tuned for a GPU run"))
    monkeypatch.setattr(device, "set_cpu_threads", lambda *a: None)
    assert device.setup_host(torch.device("cuda"), training=True) is False


def test_keep_freed_memory_reports_a_malloc_without_mallopt():
    assert device.keep_freed_memory(types.SimpleNamespace()) is False  # no mallopt: musl, macOS
    refused = types.SimpleNamespace(mallopt=lambda param, value: 0)
    assert device.keep_freed_memory(refused) is False


FAULTS = """
import resource, sys, torch
sys.path.insert(0, %r)
import device
if sys.argv[1] == "tuned":
    assert device.setup_host(torch.device("cpu"), training=True)
elif sys.argv[1] == "inference":
    assert not device.setup_host(torch.device("cpu"))
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
counts = []
for _ in range(18):
    before = faults()
    torch.ones(64 << 20, dtype=torch.uint8)  # 64 MiB, freed at once: a training step's activation
    counts.append(faults() - before)
print(sum(counts[2:]))  # the first uses fault the memory in in any case
"""


@pytest.mark.skipif(device.libc_name() != "glibc", reason="malloc tuning applies to glibc only")
def test_a_tuned_process_reuses_freed_blocks_instead_of_faulting_them_in_again(tmp_path):
    import subprocess
    script = FAULTS % os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, OMP_NUM_THREADS="1")  # one thread: fewer arenas for a block to land in
    counts = {how: int(subprocess.run([sys.executable, "-c", script, how], capture_output=True, text=True, env=env,
                                      check=True).stdout.split()[-1]) for how in ("default", "inference", "tuned")}
    # default: each 64 MiB block is mapped afresh (16,384 faults of 4 KiB pages, or 32 with huge pages);
    # tuned: none, bar a block now and then when another thread allocated in between (6 of 16 seen once)
    assert counts["default"] >= 16 * 32 and counts["inference"] >= 16 * 32, counts
    assert counts["tuned"] * 2 < counts["default"], counts


def test_patches_stay_on_the_device_when_they_fit_a_quarter_of_its_free_memory():
    from training import patches_stay_on_device
    gb = 1e9
    assert patches_stay_on_device("auto", "cuda", 2 * gb, 70 * gb)[0]          # CBSD432's 40x40 patches on an H100
    assert not patches_stay_on_device("auto", "cuda", 20 * gb, 70 * gb)[0]     # over a quarter: host memory
    assert patches_stay_on_device("auto", "npu", 1 * gb, 30 * gb)[0]
    assert not patches_stay_on_device("auto", "cuda", 1 * gb, None)[0]         # free memory unknown
    assert not patches_stay_on_device(True, "cpu", 1, None)[0]                 # a CPU run: where they are
    assert patches_stay_on_device(True, "cuda", 20 * gb, 70 * gb) == (True, "--patches_on_device True")
    assert not patches_stay_on_device(False, "cuda", 1, 70 * gb)[0]


def test_batches_of_resident_patches_are_the_host_ones():
    import torch
    from training import PatchBatches
    patches = torch.arange(40, dtype=torch.uint8).view(10, 1, 2, 2)
    host = list(PatchBatches(patches, 3, seed=4).batches())
    meta = PatchBatches(patches.to("meta"), 3, seed=4)  # a device the index follows the patches to
    assert [b.device.type for b in meta.batches()] == ["meta"] * len(host)
    assert [b.shape for b in meta.batches()] == [b.shape for b in host]
