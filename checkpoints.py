"""Finding, reading and loading checkpoints of every format in the wild (SaoYan's, the ADNet authors', the Ascend
ports', torch.compile's, this project's) into a model."""
import glob
import os

import torch

from models import build_model, outputs_noise, unwrap
from utils import UserError

CHECKPOINT_NAMES = ("net.pth", "model_70.pth", "best_model.pth", "net_1p.pth", "net8p.pth")


def find_checkpoint(path):
    """A file as given; in a folder the first of CHECKPOINT_NAMES, else the newest .pth."""
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise UserError("no such checkpoint file or folder: %s" % path)
    for name in CHECKPOINT_NAMES:
        if os.path.isfile(os.path.join(path, name)):
            return os.path.join(path, name)
    candidates = glob.glob(os.path.join(path, "*.pth"))
    if not candidates:
        raise UserError("no .pth checkpoint in %s" % path)
    return max(candidates, key=os.path.getmtime)


def extract_state_dict(obj):
    """The model weights from any format in the wild, without DataParallel/compile prefixes."""
    if isinstance(obj, dict):
        for key in ("model_state_dict", "state_dict", "model", "net"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        return None
    clean = {}
    for k, v in obj.items():
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix):]
        clean[k] = v
    return clean


def describe_state_dict(state):
    """(arch, channels, num_of_layers) read off the keys, or None for a foreign model."""
    if "dncnn.0.weight" in state:
        convs = [k for k, v in state.items() if k.startswith("dncnn.") and k.endswith(".weight") and v.dim() == 4]
        return "DnCNN", state["dncnn.0.weight"].shape[1], len(convs)
    if "conv1_1.0.weight" in state and "conv3.weight" in state:
        return "ADNet", state["conv1_1.0.weight"].shape[1], 17
    return None


def read_checkpoint_file(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for random bytes / foreign pickles
        raise UserError("cannot read checkpoint %s: %s" % (path, str(e).splitlines()[0] if str(e) else type(e).__name__))


def load_model(path, arch=None, num_of_layers=None):
    """Build the model a checkpoint (file or folder, any known format) describes and load it.

    A forced ``arch`` / ``num_of_layers`` that does not match the checkpoint is a UserError.
    """
    file = find_checkpoint(path)
    state = extract_state_dict(read_checkpoint_file(file))
    found = describe_state_dict(state) if state else None
    if found is None:
        raise UserError("%s holds no DnCNN or ADNet weights" % file)
    found_arch, channels, layers = found
    if arch and arch != found_arch:
        raise UserError("%s is a %s checkpoint, not %s" % (file, found_arch, arch))
    if num_of_layers and found_arch == "DnCNN" and num_of_layers != layers:
        raise UserError("%s has %d layers, not %d" % (file, layers, num_of_layers))
    model = build_model(found_arch, channels, layers, init=None)
    expected = model.state_dict()
    for k, v in expected.items():  # checkpoints from PyTorch < 0.4.1 lack num_batches_tracked
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = torch.zeros_like(v)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise UserError("%s does not fit %s-%d: %s" % (file, found_arch, layers, str(e).splitlines()[0]))
    model.checkpoint_path = file
    reads_noise = outputs_noise(model)
    if reads_noise is not None and reads_noise != model.predicts_noise:
        model.predicts_noise = reads_noise  # e.g. the ADNet authors' real-noise model: see outputs_noise
        model.output_note = "this %s checkpoint outputs the %s, so the clean image is %s" % (
            found_arch, "noise" if reads_noise else "clean image", "input - output" if reads_noise else "the output")
    return model.eval()


def plain_state_dict(model):
    """Unwrapped (no DDP/compile prefix) CPU weights."""
    return {k: v.detach().cpu().clone() for k, v in unwrap(model).state_dict().items()}
