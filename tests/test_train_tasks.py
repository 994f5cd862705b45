"""train.py's FDnCNN (the noise level map as an input channel, --clip) and --task dncnn3 (DnCNN-3: Gaussian noise,
bicubic super-resolution and JPEG pairs made once by preprocess.py), at toy sizes on the CPU."""
import os

import cv2
import h5py
import numpy as np
import pytest
import torch

from conftest import make_image, run_script
from dataset import KIND_JPEG, KIND_NOISE, KIND_SR, prepare_data

TOY = ["--batchSize", "16", "--num_of_layers", "5", "--log_every", "2", "--tensorboard", "False", "--quiet",
       "--amp", "none"]


@pytest.fixture(scope="module")
def fdncnn_h5(tiny_data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("h5-fdncnn"))
    prepare_data(tiny_data, out, "FDnCNN", "B", patch_size=20, stride=20, aug_times=1, quiet=True)
    return out


def trainer(h5_dir, outf, *extra):
    import train
    return train.Trainer(train.parse_args(["--h5_dir", h5_dir, "--outf", str(outf), "--arch", "FDnCNN", *TOY,
                                           "--patch_size", "20", "--stride", "20", "--aug_times", "1", *extra]))


def first_batch(t):
    t.batches.set_epoch(0)
    return next(iter(t.batches.batches()))


def test_defaults_of_fdncnn_and_dncnn3():
    from train import parse_args
    f, d3, plain = parse_args(["--arch", "FDnCNN"]), parse_args(["--task", "dncnn3"]), parse_args([])
    assert (f.num_of_layers, f.mode, tuple(f.sigma_range)) == (20, "B", (0, 75))  # the authors' depth, KAIR's range
    assert (d3.arch, d3.num_of_layers, d3.mode, tuple(d3.sigma_range)) == ("DnCNN", 20, "B", (0, 55))
    assert (plain.num_of_layers, plain.mode, tuple(plain.sigma_range)) == (17, "S", (0, 55))


def test_fdncnn_step_tells_each_patch_its_sigma_and_learns_the_image(fdncnn_h5, tmp_path):
    t = trainer(fdncnn_h5, tmp_path)
    assert t.args.mode == "B" and tuple(t.args.sigma_range) == (0.0, 75.0)  # KAIR's range by default
    clean, noisy = t.make_inputs(first_batch(t))
    assert noisy.shape == (clean.shape[0], 2) + clean.shape[2:]  # the image, then the map
    level = noisy[:, 1]
    assert torch.equal(level, level[:, :1, :1].expand_as(level))  # one level over each patch
    sigmas = level[:, 0, 0] * 255
    assert len(set(sigmas.tolist())) == len(sigmas) and 0 <= sigmas.min() and sigmas.max() <= 75
    measured = (noisy[:, :1] - clean).flatten(1).std(1) * 255  # each patch's noise is its map's sigma
    assert torch.allclose(measured, sigmas, rtol=0.15, atol=1.0)
    with torch.no_grad():  # the loss is on the output itself (the image), not on input - output
        expected = (t.model(noisy) - clean).pow(2).sum() / (2 * clean.shape[0])
    loss, estimate = t.optimize(clean, noisy, t.args.lr)
    assert torch.allclose(loss, expected, rtol=1e-5) and estimate.shape == clean.shape


def test_fdncnn_validation_is_told_val_noiseL(fdncnn_h5, tmp_path, monkeypatch):
    import inference
    told, real = [], inference.denoise_image
    monkeypatch.setattr(inference, "denoise_image", lambda *a, **k: told.append(k.get("sigma")) or real(*a, **k))
    psnr, rows = trainer(fdncnn_h5, tmp_path, "--val_noiseL", "30").validate()
    assert told == [30] * len(rows) and len(rows) == 2 and psnr > 0


def test_fdncnn_clip_puts_inputs_on_the_8_bit_grid_the_map_nominal(fdncnn_h5, tmp_path):
    t = trainer(fdncnn_h5, tmp_path, "--clip", "--sigma_range", "50", "50")
    clean, noisy = t.make_inputs(first_batch(t))
    pixels = noisy[:, 0] * 255
    assert pixels.min() >= 0 and pixels.max() <= 255 and torch.allclose(pixels, pixels.round(), atol=1e-3)
    assert torch.allclose(noisy[:, 1], torch.full_like(noisy[:, 1], 50 / 255))
    plain = trainer(fdncnn_h5, tmp_path / "plain", "--sigma_range", "50", "50").make_inputs(first_batch(t))[1]
    assert not torch.allclose(plain[:, 0] * 255, (plain[:, 0] * 255).round(), atol=1e-3)


def test_fdncnn_resume_equals_uninterrupted(fdncnn_h5, tmp_path):
    def run(outf, steps, *extra):
        assert trainer(fdncnn_h5, outf, "--batchSize", "8", "--max_steps", steps, *extra).run() == 0
        return torch.load(outf / "net.pth", weights_only=True)
    full = run(tmp_path / "full", "6")
    run(tmp_path / "split", "3")  # stops inside the first epoch, saved
    assert torch.load(tmp_path / "split" / "checkpoint.pth", weights_only=True)["step"] == 3
    split = run(tmp_path / "split", "6", "--resume")
    assert full.keys() == split.keys() and all(torch.equal(full[k], split[k]) for k in full)


def test_init_weights_without_batch_norm_is_one_clear_error(fdncnn_h5, tmp_path):
    from models import build_model
    from utils import UserError
    torch.save(build_model("FDnCNN", 1, 5, batch_norm=False).state_dict(), tmp_path / "merged.pth")  # as KAIR's
    with pytest.raises(UserError, match="batch norm merged into the convs"):
        trainer(fdncnn_h5, tmp_path / "run", "--init_weights", str(tmp_path / "merged.pth"))


@pytest.fixture(scope="module")
def pair_data(tmp_path_factory):
    """Images of one 24-pixel patch each (sides divisible by 2, 3, 4): a patch is its whole image; gray and
    colour (read as Y)."""
    root = tmp_path_factory.mktemp("pairs")
    for name, count in (("train", 2), ("Set12", 1), ("pairs", 10)):
        os.makedirs(root / name)
        for i in range(count):
            shape = (24, 24, 3) if name == "pairs" and i % 2 else (24, 24)
            cv2.imwrite(str(root / name / ("%02d.png" % i)), make_image(shape, seed=40 + i))
    return str(root)


def test_dncnn3_pairs_are_degrade_py_of_their_clean_image(pair_data, tmp_path):
    from degrade import bicubic_down_up, jpeg_roundtrip
    prepare_data(pair_data, str(tmp_path), patch_size=24, task="dncnn3", sr_jpeg_data="pairs", quiet=True)
    with h5py.File(tmp_path / "train.h5") as f:
        assert f.attrs["task"] == "dncnn3"
        clean, degraded, kind, param = (f[k][()] for k in ("data", "degraded", "kind", "param"))
    assert set(kind.tolist()) == {KIND_NOISE, KIND_SR, KIND_JPEG} and len(kind) == 12  # 2 noise + 10 pairs
    for c, d, k, q in zip(clean[:, 0], degraded[:, 0], kind, param):
        if k == KIND_NOISE:  # its noise is drawn per step
            assert np.array_equal(c, d) and q == 0
        elif k == KIND_SR:
            assert q in (2, 3, 4)
            assert np.array_equal(d, np.rint(bicubic_down_up(c, q, eight_bit_up=True) * 255).astype(np.uint8))
        else:
            assert 5 <= q <= 99 and np.array_equal(d, jpeg_roundtrip(c, q))
        assert k == KIND_NOISE or not np.array_equal(c, d)


def test_dncnn3_augmented_copies_flip_both_halves_of_a_pair_alike(pair_data, tmp_path):
    from dataset import data_augmentation
    prepare_data(pair_data, str(tmp_path), patch_size=24, aug_times=2, task="dncnn3", sr_jpeg_data="pairs", quiet=True)
    with h5py.File(tmp_path / "train.h5") as f:
        clean, degraded, kind = f["data"][()], f["degraded"][()], f["kind"][()]
    pairs = np.flatnonzero(kind != KIND_NOISE)
    assert len(pairs) == 20  # each image's pair and its flipped or rotated copy, interleaved
    for a, b in zip(pairs[::2], pairs[1::2]):
        assert any(np.array_equal(data_augmentation(clean[a], m), clean[b])
                   and np.array_equal(data_augmentation(degraded[a], m), degraded[b]) for m in range(1, 8))


def test_pth2onnx_exports_an_fdncnn_map_and_all_and_a_dncnn3(tmp_path):
    import onnxruntime as ort
    import pth2onnx
    from checkpoints import load_model
    from models import build_model
    for name, arch, inputs in (("fdncnn", "FDnCNN", 2), ("dncnn3", "DnCNN", 1)):
        torch.manual_seed(0)
        torch.save(build_model(arch, 1, 20 if arch == "DnCNN" else 5).state_dict(), tmp_path / (name + ".pth"))
        assert pth2onnx.main([str(tmp_path / (name + ".pth")), str(tmp_path / (name + ".onnx"))]) == 0
        model = load_model(str(tmp_path / (name + ".pth")))
        session = ort.InferenceSession(str(tmp_path / (name + ".onnx")), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].shape[1] == inputs  # FDnCNN: the image and its map, one input
        x = np.random.RandomState(0).rand(2, inputs, 33, 27).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        assert np.abs(session.run(None, {"input": x})[0] - expected).max() <= 1e-4


def test_dncnn3_and_clipped_fdncnn_from_the_command_line(pair_data, tiny_data, tmp_path):
    from checkpoints import load_model
    from models import arch_name
    common = ["--preprocess", "True", "--max_steps", "2", "--batchSize", "8", "--log_every", "1", "--quiet",
              "--tensorboard", "False"]
    d3 = run_script("train.py", "--task", "dncnn3", "--data_path", pair_data, "--sr_jpeg_data", "pairs",
                    "--patch_size", "24", "--h5_dir", str(tmp_path / "h5"), "--outf", str(tmp_path / "d3"), *common)
    assert d3.returncode == 0, d3.stderr[-2000:]
    assert "task=dncnn3" in d3.stdout and "PSNR_val" in d3.stdout
    f = run_script("train.py", "--arch", "FDnCNN", "--num_of_layers", "5", "--clip", "--data_path", tiny_data,
                   "--h5_dir", str(tmp_path / "h5f"), "--outf", str(tmp_path / "f"), *common)
    assert f.returncode == 0, f.stderr[-2000:]
    for run, arch, layers in (("d3", "DnCNN", 20), ("f", "FDnCNN", 5)):
        model = load_model(str(tmp_path / run))
        assert (arch_name(model), model.num_of_layers) == (arch, layers)


def test_dncnn3_h5_is_refused_by_a_denoising_run_and_the_reverse(pair_data, tiny_h5, tmp_path):
    prepare_data(pair_data, str(tmp_path), patch_size=24, task="dncnn3", sr_jpeg_data="pairs", quiet=True)
    plain = run_script("train.py", "--h5_dir", str(tmp_path), "--outf", str(tmp_path / "a"), "--mode", "B",
                       "--patch_size", "24", *TOY, "--max_steps", "1")
    assert plain.returncode == 2 and "--task dncnn3 but this run has --task denoise" in plain.stderr
    d3 = run_script("train.py", "--h5_dir", tiny_h5, "--outf", str(tmp_path / "b"), "--task", "dncnn3", *TOY,
                    "--max_steps", "1")
    assert d3.returncode == 2 and "--task denoise but this run has --task dncnn3" in d3.stderr
