import os
import subprocess
import sys

import pytest
import torch

from conftest import SHARED, needs_shared
from models import build_model
from checkpoints import load_model
from utils import UserError

REF = os.path.join(SHARED, "reference_weights")


def _file_tensors(folder):
    """The tensors of the one .pth file in folder, DataParallel's 'module.' prefix stripped."""
    (name,) = [f for f in os.listdir(folder) if f.endswith(".pth")]
    state = torch.load(os.path.join(folder, name), map_location="cpu", weights_only=True)
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


@needs_shared
@pytest.mark.parametrize("name,arch,layers", [
    ("saoyan/DnCNN-S-15", "DnCNN", 17), ("saoyan/DnCNN-S-25", "DnCNN", 17), ("saoyan/DnCNN-S-50", "DnCNN", 17),
    ("saoyan/DnCNN-B", "DnCNN", 20), ("adnet/g15", "ADNet", 17), ("adnet/g25", "ADNet", 17),
    ("adnet/g50", "ADNet", 17), ("adnet/gblind", "ADNet", 17)])
def test_every_reference_checkpoint_loads(name, arch, layers):
    model = load_model(os.path.join(REF, name))
    assert type(model).__name__ == arch
    assert not model.training
    in_file = _file_tensors(os.path.join(REF, name))
    loaded = model.state_dict()
    assert set(in_file) <= set(loaded)
    assert set(loaded) - set(in_file) <= {k for k in loaded if k.endswith("num_batches_tracked")}  # old ADNet files
    assert all(torch.equal(loaded[k], v) for k, v in in_file.items())
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == layers
    first_conv_weight = next(v for v in in_file.values() if v.dim() == 4)
    assert model.channels == first_conv_weight.shape[1]


@needs_shared
def test_forced_arch_mismatch_is_an_error():
    with pytest.raises(UserError, match="ADNet checkpoint, not DnCNN"):
        load_model(os.path.join(REF, "adnet/g25"), arch="DnCNN")
    with pytest.raises(UserError, match="has 17 layers, not 20"):
        load_model(os.path.join(REF, "saoyan/DnCNN-S-25"), num_of_layers=20)


def _same_weights(a, b):
    return all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


@pytest.mark.parametrize("wrap", ["plain", "module", "model_state_dict", "compiled", "no_batches_tracked"])
def test_formats_in_the_wild(tmp_path, wrap):
    torch.manual_seed(0)
    model = build_model("ADNet" if wrap == "no_batches_tracked" else "DnCNN", num_of_layers=9)
    sd = model.state_dict()
    if wrap == "module":
        obj = {"module." + k: v for k, v in sd.items()}
    elif wrap == "model_state_dict":  # the Ascend ports' net_1p / net8p files
        obj = {"epoch": 3, "model_state_dict": {"module." + k: v for k, v in sd.items()}, "optimizer_state_dict": {}}
    elif wrap == "compiled":
        obj = {"_orig_mod." + k: v for k, v in sd.items()}
    elif wrap == "no_batches_tracked":
        obj = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    else:
        obj = sd
    torch.save(obj, tmp_path / "net_1p.pth")
    loaded = load_model(str(tmp_path))
    assert _same_weights(model, loaded)


def test_folder_prefers_known_names(tmp_path):
    a, b = build_model("DnCNN", num_of_layers=5), build_model("DnCNN", num_of_layers=7)
    torch.save(b.state_dict(), tmp_path / "zzz_newest.pth")
    torch.save(a.state_dict(), tmp_path / "model_70.pth")
    assert load_model(str(tmp_path)).num_of_layers == 5
    os.remove(tmp_path / "model_70.pth")
    assert load_model(str(tmp_path)).num_of_layers == 7


@pytest.mark.parametrize("content", [b"", os.urandom(300), b"PK\x03\x04garbage"])
def test_unreadable_checkpoints_are_user_errors(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(UserError):
        load_model(str(path))


def test_foreign_state_dict_is_a_user_error(tmp_path):
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "net.pth")
    with pytest.raises(UserError, match="no DnCNN or ADNet weights"):
        load_model(str(tmp_path))
    with pytest.raises(UserError, match="no such checkpoint"):
        load_model(str(tmp_path / "missing"))


def test_stale_temp_files_of_killed_writers_are_removed(tmp_path):
    from utils import atomic_save, remove_stale_temp_files
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = ["checkpoint.pth.tmp.%d" % dead.pid,  # a writer killed mid-save
             "net.pth.tmp.%d" % os.getppid(),  # a live writer's: kept
             "notes.tmp.txt", "checkpoint.pth"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert remove_stale_temp_files(str(tmp_path)) == [names[0]]
    assert sorted(os.listdir(tmp_path)) == sorted(names[1:])
    atomic_save({"a": 1}, str(tmp_path / "checkpoint.pth"))
    assert torch.load(tmp_path / "checkpoint.pth", weights_only=True) == {"a": 1}
    assert remove_stale_temp_files(str(tmp_path / "missing")) == []
