"""The one precision decision of train.py, test.py and demo.py (fp32, bf16 or fp16 autocast, the loss scaler),
from --amp and what the hardware runs natively."""
import contextlib

import torch

from utils import UserError

AMP_CHOICES = ("auto", "none", "bf16", "fp16", "bf16!", "fp16!")


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_fast_isa(dtype_name):
    """The CPU feature that runs this dtype at full speed ('AMX', 'AVX512-BF16', 'AMX-FP16'), or None."""
    probes = {"bf16": (("AMX", "_is_amx_tile_supported"), ("AVX512-BF16", "_is_avx512_bf16_supported")),
              "fp16": (("AMX-FP16", "_is_amx_fp16_supported"),)}[dtype_name]
    for isa, probe in probes:
        try:
            if getattr(torch.cpu, probe)():
                return isa
        except AttributeError:
            pass
    return None


def apex_amp():
    """NVIDIA/Ascend apex.amp when really installed (PyPI's 'apex' is an unrelated package)."""
    try:
        from apex import amp
    except Exception:
        return None
    return amp if hasattr(amp, "initialize") and hasattr(amp, "scale_loss") else None


def device_caps(device):
    """What the precision policy needs to know of a device, as plain values (tests pass their own).

    fast: {dtype name: why it is fast} for the half types the hardware runs natively.
    """
    if device.type == "cpu":
        fast = {name: cpu_fast_isa(name) for name in _DTYPES}
    elif device.type == "cuda":
        # including_emulation=False: current torch otherwise says yes on a V100 or T4, which emulate bf16 slowly
        fast = {"fp16": "CUDA"}
        if torch.cuda.is_bf16_supported(including_emulation=False):
            fast["bf16"] = "native bf16 on this GPU"
    else:  # npu: fp16 is the Ascend ports' precision; bf16 exists on 910B only, which torch_npu does not tell apart
        fast = {"fp16": "NPU"}
    return {"kind": device.type, "fast": {k: v for k, v in fast.items() if v}, "apex": device.type == "npu"
            and apex_amp() is not None}


class Precision:
    """Autocast dtype (None: fp32), the loss scaler ('torch', 'npu', 'apex' or None) and why, in one place."""

    def __init__(self, dtype, scaler=None, why=""):
        self.dtype, self.scaler, self.why = dtype, scaler, why

    @property
    def name(self):
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def __str__(self):
        kind = self.name if self.dtype is None else self.name + " autocast"
        scaler = {None: "", "torch": " + GradScaler", "npu": " + torch_npu GradScaler", "apex": " + apex amp"}
        return "%s%s (%s)" % (kind, scaler[self.scaler], self.why) if self.why else kind + scaler[self.scaler]


def precision_policy(amp, caps, training=False):
    """The one precision decision of train.py, test.py and demo.py, from --amp and the device's capabilities.

    'auto' takes a half type only where the hardware runs it natively (bf16, else fp16 on GPUs and NPUs);
    an explicit bf16 / fp16 the hardware would emulate (several times slower than fp32) runs fp32 and says so,
    unless forced with a '!' (--amp bf16!). Training in fp16 scales the loss: apex on an NPU that has it (the
    Ascend ports' O2), torch_npu's GradScaler on other NPUs, torch's elsewhere.
    """
    if amp not in AMP_CHOICES + ("fp32",):
        raise UserError("unknown --amp %r (%s)" % (amp, ", ".join(AMP_CHOICES)))
    kind, fast = caps["kind"], caps["fast"]
    hardware = "CPU" if kind == "cpu" else kind.upper() if kind == "npu" else "GPU"
    name, forced = amp.rstrip("!"), amp.endswith("!")
    if name in ("none", "fp32"):
        return Precision(None, None, "--amp %s" % name)
    if name == "auto":
        if "bf16" in fast:
            name, why = "bf16", fast["bf16"]
        elif kind != "cpu":
            name, why = "fp16", "no native bf16 on this %s" % hardware if kind == "cuda" else "the Ascend ports' AMP"
        else:
            return Precision(None, None, "no fast bf16 on this CPU")
    elif name in fast:
        why = fast[name]
    elif forced:
        why = "forced: this %s emulates %s" % (hardware, name)
    else:
        return Precision(None, None, "--amp %s asked, but this %s has no fast %s (emulated, several times slower "
                                     "than fp32): running fp32; --amp %s! forces it" % (name, hardware, name, name))
    scaler = None
    if training and name == "fp16":
        scaler = "apex" if caps.get("apex") else "npu" if kind == "npu" else "torch"
    return Precision(_DTYPES[name], scaler, why)


def precision_for(amp, device, training=False):
    return precision_policy(amp, device_caps(device), training)


def grad_scaler(precision, device, loss_scale=None):
    """The loss scaler the policy chose; a disabled torch one (a pass-through) for fp32, bf16 and apex."""
    kwargs = {"init_scale": loss_scale} if loss_scale else {}
    if precision.scaler == "npu":
        from torch_npu.npu.amp import GradScaler  # catches overflows under Ascend's saturation mode
        return GradScaler(**kwargs)
    return torch.amp.GradScaler(device.type, enabled=precision.scaler == "torch", **kwargs)


def autocast(device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def precision_bytes(amp):
    return 4 if amp is None else torch.finfo(amp).bits // 8


AMP_HELP = ("auto: bf16 on AMX/AVX512-BF16 CPUs and GPUs with native bf16, fp16 on other GPUs and NPUs (training: "
            "+ loss scaling), else fp32; none: fp32; bf16/fp16 the hardware would emulate run fp32 unless forced "
            "(bf16!). In inference bf16 costs up to 0.12 dB with this project's models, more with ADNet cblind "
            "(docs/real-noise.md)")


def add_amp_flag(parser, default):
    parser.add_argument("--amp", default=default, choices=AMP_CHOICES, help=AMP_HELP + " (default: %s)" % default)
