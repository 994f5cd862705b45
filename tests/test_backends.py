"""test.py / demo.py inference backends: eager torch and ONNX Runtime (the exported, BN-folded graph)."""
import os

import numpy as np
import pytest
import torch

from conftest import ROOT, SHARED, make_image, needs_shared, psnr_on_test_data, run_script
from models import build_model
from checkpoints import load_model
from images import iter_images, list_images
from inference import choose_backend, denoise_any, evaluate, inference_model
from onnx_backend import OnnxRuntimeNet, cached_onnx
from utils import UserError

SHIPPED = {arch: os.path.join(ROOT, "weights", "%s-S-25" % arch) for arch in ("DnCNN", "ADNet")}


def test_auto_picks_onnxruntime_for_fp32_on_cpu_only():
    assert choose_backend("auto", "cpu", None, True)[0] == "onnxruntime"
    assert choose_backend("auto", "cpu", None, False) == ("torch", "onnxruntime is not installed")
    assert choose_backend("auto", "cpu", torch.bfloat16, True)[0] == "torch"
    assert choose_backend("auto", "cuda", None, True)[0] == "torch"
    assert choose_backend("torch", "cpu", None, True)[0] == "torch"
    with pytest.raises(UserError, match="pip install onnxruntime"):
        choose_backend("onnxruntime", "cpu", None, False)
    with pytest.raises(UserError, match="--amp none"):
        choose_backend("onnxruntime", "cpu", torch.bfloat16, True)


def noisy_images(channels, shapes=((1, 45, 67), (1, 64, 33))):
    rng = np.random.RandomState(3)
    for n, h, w in shapes:
        clean = np.stack([make_image((h, w), seed=n * 10 + c) for c in range(channels)]).astype(np.float32) / 255
        yield np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("arch", ["DnCNN", "ADNet"])
def test_backends_agree_whole_tiled_and_x8(arch):
    model = load_model(SHIPPED[arch])
    eager, ort = inference_model(model, torch.device("cpu")), OnnxRuntimeNet(model)
    for noisy in noisy_images(1):
        for tile, x8 in ((0, False), (24, False), (0, True)):
            a = denoise_any(eager, noisy, torch.device("cpu"), tile=tile, x8=x8)
            b = denoise_any(ort, noisy, torch.device("cpu"), tile=tile, x8=x8)
            assert np.abs(np.clip(a, 0, 1) - np.clip(b, 0, 1)).max() <= 1e-5, (tile, x8)


def test_backends_agree_in_colour_and_with_copies():
    torch.manual_seed(0)
    model = build_model("ADNet", channels=3).eval()
    eager, ort = inference_model(model, torch.device("cpu")), OnnxRuntimeNet(model)
    images = [("x.png", img) for img in noisy_images(3)]
    rows = [evaluate(net, images, 15, torch.device("cpu"), copies=2) for net in (eager, ort)]
    for a, b in zip(*rows):
        assert abs(a["psnr"] - b["psnr"]) <= 1e-4
        assert np.abs(a["denoised"] - b["denoised"]).max() <= 1e-5


def test_export_is_cached_per_weights(onnx_cache):
    torch.manual_seed(1)
    model = build_model("DnCNN", num_of_layers=5).eval()
    path = cached_onnx(model)
    stamp = os.path.getmtime(path)
    assert cached_onnx(model) == path and os.path.getmtime(path) == stamp  # not exported again
    with torch.no_grad():
        model.dncnn[0].weight.add_(0.01)
    assert cached_onnx(model) != path
    model.predicts_noise = not model.predicts_noise  # the real-noise reading: another graph's meaning
    assert len({cached_onnx(model), path}) == 2
    assert not [f for f in os.listdir(onnx_cache) if ".tmp" in f]


@needs_shared
def test_set12_psnr_same_on_both_backends_whole_and_tiled():
    model = load_model(SHIPPED["DnCNN"])
    images = list(iter_images(list_images(os.path.join(SHARED, "data", "Set12")), prefetch=False))
    eager, ort = inference_model(model, torch.device("cpu")), OnnxRuntimeNet(model)
    # four images, whole and tiled (the suite's time budget; the parity tests run all of Set12 and Set68
    # through test.py, whose default is this backend, against the references' figures to 0.001 dB)
    for tile, subset in ((0, images[:4]), (128, images[:4])):
        means = [np.mean([r["psnr"] for r in evaluate(net, subset, 25, torch.device("cpu"), tile=tile)])
                 for net in (eager, ort)]
        assert abs(means[0] - means[1]) <= 0.001, (tile, means)


def test_test_py_says_which_backend(tmp_path, tiny_data):
    outs = [run_script("test.py", "--logdir", SHIPPED["DnCNN"], "--data_path", tiny_data, "--test_data", "Set12",
                       "--backend", backend, "--quiet") for backend in ("auto", "torch")]
    assert all(o.returncode == 0 for o in outs), [o.stderr for o in outs]
    assert "backend: onnxruntime (fp32 on a CPU" in outs[0].stdout and "backend: torch (--backend torch)" in outs[1].stdout
    assert abs(psnr_on_test_data(outs[0].stdout) - psnr_on_test_data(outs[1].stdout)) <= 1e-4


def test_auto_tiles_are_smaller_for_onnxruntime(monkeypatch):
    """ONNX Runtime holds more feature maps per tile than torch: its automatic tiles count more of them, and
    the tiled output still equals torch's whole-image output."""
    import inference
    model = load_model(SHIPPED["DnCNN"])
    eager, ort = inference_model(model, torch.device("cpu")), OnnxRuntimeNet(model)
    assert ort.live_feature_maps > inference.LIVE_FEATURE_MAPS
    budget = 2 * 2 ** 20  # a small budget so a small image tiles
    monkeypatch.setattr(inference, "tile_budget", lambda device, available=None: budget)
    chosen, plain = [], inference.auto_tile
    monkeypatch.setattr(inference, "auto_tile", lambda *a, **k: chosen.append(plain(*a, **k)) or chosen[-1])
    noisy = next(noisy_images(1, shapes=((1, 90, 120),)))
    whole = denoise_any(eager, noisy, torch.device("cpu"), tile=0)
    tiled = [denoise_any(net, noisy, torch.device("cpu"), tile=-1) for net in (eager, ort)]
    assert 0 < chosen[1] < chosen[0]  # torch's tile, then ONNX Runtime's smaller one
    for out in tiled:
        assert np.abs(np.clip(out, 0, 1) - np.clip(whole, 0, 1)).max() <= 1e-5
