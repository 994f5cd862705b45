"""Finding, reading and loading checkpoints of every format in the wild (SaoYan's, the ADNet authors', the Ascend
ports', torch.compile's, this project's, the DnCNN authors' MatConvNet .mat files and KAIR's conversions of them)
into a model."""
import glob
import os

import numpy as np
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
    candidates = glob.glob(os.path.join(path, "*.pth")) + glob.glob(os.path.join(path, "*.mat"))
    if not candidates:
        raise UserError("no .pth or .mat checkpoint in %s" % path)
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
    if "model.0.weight" in clean and "model.0.bias" in clean:  # KAIR's DnCNN / FDnCNN: conv, ReLU, ..., conv
        clean = taking_bgr({"dncnn." + k[len("model."):] if k.startswith("model.") else k: v for k, v in clean.items()})
    return clean


def taking_bgr(state):
    """A DnCNN state dict (dncnn.<i>.weight / .bias, no BN) of a colour model trained on RGB images, the DnCNN
    authors' and KAIR's, rearranged to take and give BGR, the order images.read_image reads colour in (as the
    ADNet authors fed theirs): the first conv's image channels and the last conv's outputs reversed. Gray
    models as they are."""
    convs = sorted(int(k.split(".")[1]) for k, v in state.items() if k.startswith("dncnn.") and v.dim() == 4)
    first, last = "dncnn.%d." % convs[0], "dncnn.%d." % convs[-1]
    if state[last + "weight"].shape[0] != 3:
        return state
    state = dict(state)
    weight = state[first + "weight"].clone()
    weight[:, :3] = weight[:, [2, 1, 0]]  # an FDnCNN's fourth input, the noise level map, stays last
    state[first + "weight"] = weight
    state[last + "weight"] = state[last + "weight"][[2, 1, 0]].clone()
    if last + "bias" in state:
        state[last + "bias"] = state[last + "bias"][[2, 1, 0]].clone()
    return state


def describe_state_dict(state):
    """(arch, channels, num_of_layers, batch_norm) read off the keys, or None for a foreign model. A DnCNN whose
    first conv takes one channel more than its last gives is an FDnCNN (the noise level map)."""
    if "dncnn.0.weight" in state:
        indexes = sorted(int(k.split(".")[1]) for k, v in state.items()
                         if k.startswith("dncnn.") and k.endswith(".weight") and v.dim() == 4)
        first, last = state["dncnn.%d.weight" % indexes[0]], state["dncnn.%d.weight" % indexes[-1]]
        channels = last.shape[0]
        batch_norm = any(k.endswith("running_mean") for k in state)
        if first.shape[1] == channels + 1:
            return "FDnCNN", channels, len(indexes), batch_norm
        return "DnCNN", first.shape[1], len(indexes), batch_norm
    if "conv1_1.0.weight" in state and "conv3.weight" in state:
        return "ADNet", state["conv1_1.0.weight"].shape[1], 17, True
    return None


MATLAB_V73 = b"MATLAB 7.3 MAT-file"


def _matlab_string(dataset):
    return "".join(chr(c) for c in np.asarray(dataset).ravel())


def _conv_weight(array):
    """A MatConvNet conv filter bank, h5py's reversed axes (out, in, W, H), as PyTorch's (out, in, H, W).

    MATLAB stores [H W in out] column-major, so HDF5 reads it back-to-front; MATLAB drops trailing singleton
    dimensions, so a last conv with one output channel arrives as (in, W, H). MatConvNet's vl_nnconv is a
    correlation, as PyTorch's conv2d: no kernel flip (checked bit for bit against KAIR's dncnn_25.pth).
    """
    if array.ndim == 3:
        array = array[None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 1, 3, 2)))


def read_matconvnet(path):
    """A MatConvNet simplenn ``net`` saved by MATLAB v7.3 (HDF5): the DnCNN authors' model zoo (cszn/DnCNN
    model/, BN merged into the convs) as a state dict in our DnCNN's names (conv i at dncnn.<2i>)."""
    import h5py
    state, conv_index, concat = {}, 0, False
    with h5py.File(path, "r") as f:
        if "net" not in f or "layers" not in f["net"]:
            raise UserError("%s is a MATLAB file but holds no MatConvNet net.layers" % path)
        for ref in np.asarray(f["net"]["layers"]).ravel():
            layer = f[ref]
            kind = _matlab_string(layer["type"])
            if kind == "concat":
                if conv_index:
                    raise UserError("%s: a concat layer after the first conv is not a DnCNN" % path)
                concat = True
            elif kind == "conv":
                weights = [np.asarray(f[r]) for r in np.asarray(layer["weights"]).ravel()]
                state["dncnn.%d.weight" % (2 * conv_index)] = _conv_weight(weights[0])
                state["dncnn.%d.bias" % (2 * conv_index)] = torch.from_numpy(weights[1].ravel().copy())
                conv_index += 1
            elif kind != "relu":
                raise UserError("%s: MatConvNet layer type %r is not part of a DnCNN" % (path, kind))
    first, last = state["dncnn.0.weight"], state["dncnn.%d.weight" % (2 * conv_index - 2)]
    if concat != (first.shape[1] == last.shape[0] + 1):
        raise UserError("%s: its concat layer and its channels disagree" % path)
    return taking_bgr(state)


def read_checkpoint_file(path):
    with open(path, "rb") as f:
        head = f.read(len(MATLAB_V73))
    if head == MATLAB_V73:
        return read_matconvnet(path)
    if head.startswith(b"MATLAB"):
        raise UserError("%s is a MATLAB file older than v7.3: save it again in MATLAB with save(..., '-v7.3')" % path)
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
    found_arch, channels, layers, batch_norm = found
    if arch and arch != found_arch:
        raise UserError("%s is a %s checkpoint, not %s" % (file, found_arch, arch))
    if num_of_layers and found_arch != "ADNet" and num_of_layers != layers:
        raise UserError("%s has %d layers, not %d" % (file, layers, num_of_layers))
    model = build_model(found_arch, channels, layers, init=None, batch_norm=batch_norm)
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
