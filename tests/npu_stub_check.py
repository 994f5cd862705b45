"""Helper for test_device_logic, run in its own process: select_device and grad_scaler against a stub torch_npu.

Renaming torch's privateuse1 backend to 'npu' (what importing torch_npu does, so torch.device('npu') exists)
cannot be undone and makes torch believe an accelerator is present, so it stays out of the test process.
"""
import os
import sys
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train  # noqa: E402
import device  # noqa: E402
import utils  # noqa: E402
import precision  # noqa: E402

torch.utils.rename_privateuse1_backend("npu")
chosen = []
torch.npu = types.SimpleNamespace(device_count=lambda: 8, set_device=chosen.append,
                                  current_device=lambda: chosen[-1], is_available=lambda: True)
device.npu_available = lambda: True


class NpuGradScaler:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


package, sub, amp = (types.ModuleType(n) for n in ("torch_npu", "torch_npu.npu", "torch_npu.npu.amp"))
package.npu, sub.amp, amp.GradScaler = sub, amp, NpuGradScaler
sys.modules.update({"torch_npu": package, "torch_npu.npu": sub, "torch_npu.npu.amp": amp})
NPU = {"kind": "npu", "fast": {"fp16": "NPU"}, "apex": False}

# torch_npu's own GradScaler for fp16 training (the generic one may miss overflows in Ascend's saturation mode)
scaler = precision.grad_scaler(precision.precision_policy("auto", NPU, training=True), torch.device("npu", 0), 128.0)
assert isinstance(scaler, NpuGradScaler) and scaler.kwargs == {"init_scale": 128.0}, scaler
apex = precision.precision_policy("auto", dict(NPU, apex=True), training=True)
assert apex.scaler == "apex" and not precision.grad_scaler(apex, torch.device("npu", 0)).is_enabled()

# a one-process run takes --DeviceID / --device_id, else ASCEND_DEVICE_ID; 8p runs their local rank's device
os.environ.pop("WORLD_SIZE", None)
os.environ["ASCEND_DEVICE_ID"] = "5"
assert device.select_device("npu") == torch.device("npu", 5)
assert device.select_device("npu", device_id=3) == torch.device("npu", 3)
os.environ["WORLD_SIZE"] = "8"
assert device.select_device("npu", local_rank=2) == torch.device("npu", 2)
del os.environ["ASCEND_DEVICE_ID"], os.environ["WORLD_SIZE"]
assert device.select_device("npu") == torch.device("npu", 0)
assert utils.legacy_device_id(train.parse_args(["--device_id", "6"])) == 6
print("ok")
