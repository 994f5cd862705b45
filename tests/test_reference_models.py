"""The DnCNN authors' MatConvNet model zoo (cszn/DnCNN model/) and KAIR's conversions: one loader reads them all,
kernels the right way round, FDnCNN's noise level map through every inference path."""
import glob
import os

import h5py
import numpy as np
import pytest
import torch

from checkpoints import load_model, read_checkpoint_file, read_matconvnet
from conftest import SHARED, needs_shared
from inference import denoise_any, denoise_image, inference_net
from models import build_model, with_noise_map

CSZN = os.path.join(SHARED, "reference_weights", "cszn")

# file under cszn/ -> (arch, channels, layers, outputs the noise)
ZOO = {
    "DnCNN3.mat": ("DnCNN", 1, 20, True),
    "GD_Gray_Blind.mat": ("DnCNN", 1, 20, True),
    "GD_Color_Blind.mat": ("DnCNN", 3, 20, True),
    "FDnCNN_gray.mat": ("FDnCNN", 1, 20, False),
    "FDnCNN_color.mat": ("FDnCNN", 3, 20, False),
    "FDnCNN_Clip_gray.mat": ("FDnCNN", 1, 20, False),
    "FDnCNN_Clip_color.mat": ("FDnCNN", 3, 20, False),
}


def expected(rel):
    if rel.startswith("specifics/"):
        return "DnCNN", 1, 17, True
    if rel.startswith("specifics_color/"):
        return "DnCNN", 3, 20, True
    return ZOO[rel]


@needs_shared
def test_every_file_of_the_authors_zoo_loads():
    files = sorted(glob.glob(os.path.join(CSZN, "**", "*.mat"), recursive=True))
    assert len(files) >= 16
    from checkpoints import describe_state_dict
    for path in files:  # the weights' description (load_model's own probe of the output runs once, below)
        rel = os.path.relpath(path, CSZN)
        arch, channels, layers, batch_norm = describe_state_dict(read_checkpoint_file(path))
        assert (arch, channels, layers, arch == "DnCNN") == expected(rel), rel
        assert not batch_norm
    model = load_model(os.path.join(CSZN, "FDnCNN_color.mat"))
    assert (model.noise_map, model.channels, model.num_of_layers, model.predicts_noise) == (True, 3, 20, False)


@needs_shared
def test_kernels_equal_kairs_conversion_bit_for_bit():
    """PSNR barely moves with a transposed 3x3 kernel: the weights themselves are compared."""
    ours = read_matconvnet(os.path.join(CSZN, "specifics", "sigma=25.mat"))
    kair = load_model(os.path.join(SHARED, "reference_weights", "kair", "dncnn_25.pth")).state_dict()
    assert set(ours) == set(kair)
    for key, value in kair.items():
        assert torch.equal(ours[key], value), key
    transposed = ours["dncnn.2.weight"].transpose(-1, -2)
    assert not torch.equal(transposed, kair["dncnn.2.weight"])  # the check above can tell the two apart


def matlab_chars(text):
    return np.array([[ord(c)] for c in text], np.uint16)


def write_matconvnet(path, layers):
    """A MatConvNet simplenn net as MATLAB v7.3 writes it (HDF5 with a 512-byte header, cells as object
    references under #refs#, arrays with their axes reversed). layers: ('conv', W[H, W, in, out], b) /
    ('relu',) / ('concat',)."""
    with h5py.File(path, "w", userblock_size=512) as f:
        refs, count = f.create_group("#refs#"), [0]

        def stored(array):
            count[0] += 1
            return refs.create_dataset("x%d" % count[0], data=np.asarray(array).T).ref

        layer_refs = []
        for layer in layers:
            count[0] += 1
            group = refs.create_group("l%d" % count[0])
            group.create_dataset("type", data=matlab_chars(layer[0]))
            if layer[0] == "conv":
                weight = layer[1] if layer[1].shape[-1] > 1 else layer[1][..., 0]  # MATLAB drops a trailing 1
                group.create_dataset("weights", data=np.array([[stored(weight)], [stored(layer[2][None])]],
                                                              dtype=h5py.ref_dtype))
            else:
                group.create_dataset("weights", data=np.zeros(2, np.uint64))  # an empty cell
            layer_refs.append(group.ref)
        f.create_group("net").create_dataset("layers", data=np.array([layer_refs], dtype=h5py.ref_dtype).T)
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64")


def test_a_matlab_file_reads_with_h_and_w_the_right_way_round(tmp_path):
    """A made-up FDnCNN-like file: concat first, a 3-D last conv (one output channel), empty relu cells, and
    kernels asymmetric enough that a transpose or a flip would change the output."""
    rng = np.random.RandomState(0)
    w1 = rng.randn(3, 3, 2, 64).astype(np.float32)  # MATLAB's [H W in out]
    w2 = rng.randn(3, 3, 64, 1).astype(np.float32)
    b1, b2 = rng.randn(64).astype(np.float32), rng.randn(1).astype(np.float32)
    path = str(tmp_path / "fdncnn_tiny.mat")
    write_matconvnet(path, [("concat",), ("conv", w1, b1), ("relu",), ("conv", w2, b2)])
    model = load_model(path)
    assert (model.noise_map, model.channels, model.num_of_layers, model.predicts_noise) == (True, 1, 2, False)
    x = torch.rand(1, 1, 9, 11)
    sigma = 20.0
    # the authors' vl_nnconv is a correlation over x(row, col): out(r, c) = sum W(i, j) x(r + i - 1, c + j - 1)
    inp = with_noise_map(x, sigma)
    hidden = torch.nn.functional.conv2d(inp, torch.from_numpy(w1).permute(3, 2, 0, 1), torch.from_numpy(b1), padding=1)
    want = torch.nn.functional.conv2d(hidden.relu(), torch.from_numpy(w2).permute(3, 2, 0, 1), torch.from_numpy(b2),
                                      padding=1)
    with torch.no_grad():
        got = model(inp)
    torch.testing.assert_close(got, want)
    wrong = torch.nn.functional.conv2d(inp, torch.from_numpy(w1).permute(3, 2, 1, 0), torch.from_numpy(b1), padding=1)
    assert not torch.allclose(hidden, wrong, atol=1e-3)


def test_an_old_matlab_file_is_one_clear_error(tmp_path):
    path = tmp_path / "old.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file, Platform: PCWIN" + bytes(100))
    from utils import UserError
    with pytest.raises(UserError, match="older than v7.3"):
        read_checkpoint_file(str(path))


def test_kair_layout_loads():
    plain = build_model("DnCNN", 1, 5, init=None, batch_norm=False)
    kair = {"model." + k[len("dncnn."):]: v for k, v in plain.state_dict().items()}
    assert set(kair) == {"model.%d.%s" % (i, p) for i in (0, 2, 4, 6, 8) for p in ("weight", "bias")}
    from checkpoints import describe_state_dict, extract_state_dict
    assert describe_state_dict(extract_state_dict(kair)) == ("DnCNN", 1, 5, False)
    fd = build_model("FDnCNN", 3, 4, init=None, batch_norm=False).state_dict()
    assert describe_state_dict(fd) == ("FDnCNN", 3, 4, False)


def tiny_fdncnn(channels=1):
    torch.manual_seed(0)
    return build_model("FDnCNN", channels, 4, init="reference", batch_norm=False).eval()


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_fdncnn_map_rides_tiles_flips_and_backends(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("DENOISE_ONNX_CACHE", str(tmp_path))
    pytest.importorskip("onnxruntime") if backend == "onnxruntime" else None
    model = tiny_fdncnn()
    net, _ = inference_net(model, torch.device("cpu"), backend)
    noisy = torch.rand(1, 1, 37, 45)
    level = 10.0 + 30.0 * torch.rand(37, 45)
    with torch.no_grad():
        want = model(with_noise_map(noisy, level[None, None]))
    whole = denoise_image(net, noisy, torch.device("cpu"), sigma=level)
    tiled = denoise_image(net, noisy, torch.device("cpu"), tile=16, sigma=level)
    torch.testing.assert_close(whole, want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(tiled, want, atol=1e-5, rtol=1e-4)
    flat = denoise_image(net, noisy, torch.device("cpu"), sigma=25.0)
    torch.testing.assert_close(flat, denoise_image(net, noisy, torch.device("cpu"), sigma=torch.full((37, 45), 25.0)))
    assert (flat - whole).abs().max() > 0.05  # the map matters
    x8 = denoise_image(net, noisy, torch.device("cpu"), x8=True, sigma=level)
    assert x8.shape == noisy.shape


def test_fdncnn_without_a_level_is_one_clear_error():
    from utils import UserError
    with pytest.raises(UserError, match="noise level"):
        denoise_any(tiny_fdncnn(), np.random.rand(1, 8, 8).astype(np.float32), torch.device("cpu"))


def test_noise_level_auto_reads_the_image_and_a_number_is_kept():
    import argparse as ap
    from inference import AUTO_LEVEL, fixed_level, level_for, noise_level_flag
    from photo_noise import noise_level, read_noise
    net = tiny_fdncnn()
    clean = np.full((1, 64, 64), 0.5, np.float32)
    noisy = clean + np.random.RandomState(0).normal(0, 20 / 255.0, clean.shape).astype(np.float32)
    read = noise_level(read_noise(noisy))
    assert 15 < read < 25
    assert level_for(net, noisy, AUTO_LEVEL) == read
    assert level_for(net, noisy, None, sigma=0.0) == read  # already noisy: read off it
    assert level_for(net, noisy, None, sigma=30.0) == 30.0  # the test noise
    assert level_for(net, noisy, 7.5, sigma=30.0) == 7.5
    assert level_for(build_model("DnCNN", 1, 3).eval(), noisy, AUTO_LEVEL) is None  # not an FDnCNN
    assert noise_level_flag(" Auto ") == AUTO_LEVEL and noise_level_flag("12") == 12.0
    with pytest.raises(ap.ArgumentTypeError):
        noise_level_flag("-3")
    assert fixed_level(AUTO_LEVEL) is None and fixed_level(9.0) == 9.0


@needs_shared
def test_the_authors_fdncnn_on_onnxruntime_flushing_denormals_equals_eager_torch(tmp_path, monkeypatch):
    """ONNX Runtime sessions flush denormal activations to zero (the authors' FDnCNN runs into them): the
    output stays the eager model's."""
    monkeypatch.setenv("DENOISE_ONNX_CACHE", str(tmp_path))
    pytest.importorskip("onnxruntime")
    from utils import eight_bit_noisy
    model = load_model(os.path.join(CSZN, "FDnCNN_color.mat"))
    net, _ = inference_net(model, torch.device("cpu"), "onnxruntime")
    assert net.session.get_session_options().get_session_config_entry("session.set_denormal_as_zero") == "1"
    yy, xx = np.mgrid[0:48, 0:40] / 48.0
    clean = np.stack([0.5 + 0.3 * np.sin(6 * xx + k) * np.cos(4 * yy) for k in range(3)]).astype(np.float32)
    noisy = eight_bit_noisy(clean, 15, 0)
    eager = denoise_any(inference_net(model, torch.device("cpu"), "torch")[0], noisy, torch.device("cpu"), sigma=15)
    assert np.abs(denoise_any(net, noisy, torch.device("cpu"), sigma=15) - eager).max() <= 1e-5
