"""ADNet as its authors wrote it: their init, colour and real-noise models, their colour protocol;
colour end to end (preprocess, train, test, demo, ONNX) on small colour data made here."""
import math
import os

import cv2
import h5py
import numpy as np
import pytest
import torch

from conftest import SHARED, make_image, needs_shared, psnr_on_test_data, run_script
from models import ADNet, build_model, denoise, outputs_noise
from checkpoints import load_model
from images import read_image
from inference import denoise_image, dihedral, evaluate, undo_dihedral
from utils import psnr, ssim

REF = os.path.join(SHARED, "reference_weights")
DATA = os.path.join(SHARED, "data")


# ----------------------------------------------------------------------------- the authors' init
def authors_adnet(channels):
    """hellloxiaotian/ADNet gray/ and color/models.py's init loop, written plainly on our module tree."""
    model = ADNet(channels)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            # n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels   (commented out in their file)
            m.weight.data.normal_(0, (2 / (9.0 * 64)) ** 0.5)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.normal_(0, (2 / (9.0 * 64)) ** 0.5)
            clip_b = 0.025
            for j in range(m.weight.data.shape[0]):
                if m.weight.data[j] >= 0 and m.weight.data[j] < clip_b:
                    m.weight.data[j] = clip_b
                elif m.weight.data[j] > -clip_b and m.weight.data[j] < 0:
                    m.weight.data[j] = -clip_b
            m.running_var.fill_(0.01)
    return model


@pytest.mark.parametrize("channels", [1, 3])
def test_fresh_adnet_is_the_authors_init(channels):
    torch.manual_seed(5)
    ours = build_model("ADNet", channels)
    torch.manual_seed(5)
    theirs = authors_adnet(channels)
    for name, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value), name


@pytest.mark.parametrize("channels", [1, 3])
def test_adnet_init_std_per_layer(channels):
    """Every conv std is sqrt(2/576) = 0.0589 -- conv3 (1x1) and conv1_16 too, pooled over fresh models."""
    std = math.sqrt(2 / 576)
    pooled = {}
    for seed in range(40):
        torch.manual_seed(seed)
        model = build_model("ADNet", channels)
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.Conv2d):
                pooled.setdefault(name, []).append(m.weight.flatten())
            if isinstance(m, torch.nn.BatchNorm2d):
                assert m.weight.abs().min() >= 0.025 and torch.all(m.bias == 0)
                assert torch.all(m.running_var == 0.01) and torch.all(m.running_mean == 0)
        bound = 1 / math.sqrt(2 * channels)  # conv3's bias: PyTorch's default U(-1/sqrt(fan_in), +)
        assert model.conv3.bias.abs().max() <= bound
    assert {"conv3", "conv1_16", "conv1_1.0", "conv1_15.0"} <= set(pooled)
    for name, weights in pooled.items():
        assert abs(torch.cat(weights).std().item() - std) < 0.15 * std, name


# ----------------------------------------------------------------------------- the colour protocol
def authors_colour_psnr(model, img_bgr_u8, sigma):
    """color/test_c.py for one image: 3 copies, /255, manual_seed(12), one normal_ for the batch, clamp,
    PSNR per copy averaged."""
    img = np.tile(np.transpose(img_bgr_u8, (2, 0, 1)), (3, 1, 1, 1))
    source = torch.Tensor(np.float32(img / 255.))
    torch.manual_seed(12)
    noise = torch.FloatTensor(source.size()).normal_(mean=0, std=sigma / 255.)
    with torch.no_grad():
        out = torch.clamp(model(source + noise), 0., 1.).numpy()
    return np.mean([psnr(source[i].numpy(), out[i]) for i in range(3)])


def test_copies_reproduce_the_authors_colour_protocol(tmp_path):
    torch.manual_seed(0)
    model = build_model("ADNet", 3).eval()
    img = np.dstack([make_image((36, 44), s) for s in (1, 2, 3)])
    cv2.imwrite(str(tmp_path / "a.png"), img)
    rows = evaluate(model, [("a.png", read_image(str(tmp_path / "a.png"), 3))], 25, torch.device("cpu"),
                    seed=12, copies=3, with_ssim=True)
    assert abs(rows[0]["psnr"] - authors_colour_psnr(model, img, 25)) < 1e-4
    assert rows[0]["noisy"].shape == rows[0]["denoised"].shape == (3, 36, 44)
    one = evaluate(model, [("a.png", read_image(str(tmp_path / "a.png"), 3))], 25, torch.device("cpu"), seed=12)
    assert abs(one[0]["psnr"] - rows[0]["psnr"]) > 1e-4  # three copies are not one


# The ADNet authors' color/test_c.py run on CPU here (py2 prints, a tab, .cuda() and the skimage import
# mended; nothing else). Full McMaster means: ../shared/README.md's colour table (reproduced to 1e-6 by that
# run); the every-run tests use three of its images, whose per-image figures that run printed:
#   c25    1.png 28.988605  10.png 33.365148  11.png 33.604507  (all 18: 32.557501)
#   cblind 1.png 28.681005  10.png 33.103656  11.png 33.381237  (all 18: 32.275081)
#   c50    1.png 25.803647  10.png 30.153417  11.png 30.640554  (all 18: 29.359433)
# `make parity` runs the whole set.
MCMASTER_SUBSET = ("1.png", "10.png", "11.png")
COLOUR_CASES = [  # checkpoint, sigma, subset mean, full-set mean
    ("c25", 25, (28.988605 + 33.365148 + 33.604507) / 3, 32.5575),
    ("cblind", 25, (28.681005 + 33.103656 + 33.381237) / 3, 32.2751),
    ("c50", 50, (25.803647 + 30.153417 + 30.640554) / 3, 29.3594),
]
FULL = os.environ.get("PARITY") == "full"


@needs_shared
@pytest.mark.parametrize("ckpt,sigma,subset_psnr,full_psnr", COLOUR_CASES)
def test_colour_parity_mcmaster(ckpt, sigma, subset_psnr, full_psnr, tmp_path):
    if FULL:
        folder, expected = os.path.join(DATA, "McMaster"), full_psnr
    else:
        folder, expected = str(tmp_path), subset_psnr
        for name in MCMASTER_SUBSET:
            os.symlink(os.path.join(DATA, "McMaster", name), tmp_path / name)
    out = run_script("test.py", "--logdir", os.path.join(REF, "adnet/color", ckpt), "--test_data", folder,
                     "--test_noiseL", str(sigma), "--seed", "12", "--copies", "3", "--quiet")
    assert out.returncode == 0, out.stderr
    assert abs(psnr_on_test_data(out.stdout) - expected) < 1e-3, (psnr_on_test_data(out.stdout), expected)
    assert out.stdout.count(" SSIM ") == (18 if FULL else 3)  # one line per image


# ----------------------------------------------------------------------------- real noise
@needs_shared
def test_real_noise_model_is_read_as_a_noise_predictor():
    model = load_model(os.path.join(REF, "adnet/real/model_25.pth"))
    assert model.channels == 3 and model.predicts_noise and "outputs the noise" in model.output_note
    clean = read_image(os.path.join(DATA, "McMaster", "1.png"), 3)[:, :200, :200]
    noisy = clean + np.random.RandomState(0).randn(*clean.shape).astype(np.float32) * 25 / 255
    assert psnr(clean, noisy.clip(0, 1)) < 21.5
    out = denoise_image(model, torch.from_numpy(noisy)[None], torch.device("cpu"))[0].clamp(0, 1).numpy()
    assert psnr(clean, out) > 24.0  # measured 24.8
    with torch.no_grad():  # the authors' real/test_c.py reading: the output as the image -- black
        as_image = model(torch.from_numpy(noisy)[None])[0].clamp(0, 1).numpy()
    assert psnr(clean, as_image) < 12.0


def test_output_probe_tells_noise_from_image_predictors():
    torch.manual_seed(0)
    model = build_model("ADNet", 1).eval()
    assert outputs_noise(model) is not True  # an untrained ADNet returns about its input

    class NoiseOut(torch.nn.Module):  # a perfect noise predictor on the probe
        channels = 1

        def forward(self, x):
            return x - torch.nn.functional.avg_pool2d(x, 5, 1, 2, count_include_pad=False)
    assert outputs_noise(NoiseOut()) is True

    class ImageOut(NoiseOut):
        def forward(self, x):
            return torch.nn.functional.avg_pool2d(x, 5, 1, 2, count_include_pad=False)
    assert outputs_noise(ImageOut()) is False


# ----------------------------------------------------------------------------- x8 and reading
def test_dihedral_modes_are_eight_and_undo_themselves():
    x = torch.arange(12.).view(1, 1, 3, 4)
    outs = {(tuple(dihedral(x, m).shape), tuple(dihedral(x, m).flatten().tolist())) for m in range(8)}
    assert len(outs) == 8
    for m in range(8):
        assert torch.equal(undo_dihedral(dihedral(x, m), m), x)


def test_x8_is_the_mean_of_the_eight_transformed_outputs():
    torch.manual_seed(0)
    model = build_model("DnCNN", 3, num_of_layers=5).eval()
    model.dncnn[-1].weight.data *= 100  # outputs far from 0, so that the eight views differ
    noisy = torch.rand(1, 3, 21, 30)
    cpu = torch.device("cpu")
    got = denoise_image(model, noisy, cpu, x8=True)
    with torch.no_grad():
        expected = torch.stack([undo_dihedral(denoise(model, dihedral(noisy, m)), m) for m in range(8)]).mean(0)
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, denoise_image(model, noisy, cpu), atol=1e-4)
    assert torch.allclose(denoise_image(model, noisy, cpu, x8=True, tile=12), got, atol=1e-5)


def test_colour_reading(tmp_path):
    bgr = np.dstack([make_image((20, 24), s, np.uint16) for s in (4, 5, 6)])
    cv2.imwrite(str(tmp_path / "c16.png"), bgr)
    img = read_image(str(tmp_path / "c16.png"), 3)
    assert img.shape == (3, 20, 24) and np.allclose(img, np.transpose(bgr, (2, 0, 1)) / 65535.0, atol=1e-6)
    rgba = np.dstack([bgr[:, :, :3] // 257, np.full((20, 24), 9)]).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    assert np.array_equal(read_image(str(tmp_path / "rgba.png"), 3), np.transpose(rgba[:, :, :3], (2, 0, 1)) / np.float32(255))
    assert np.array_equal(read_image(str(tmp_path / "rgba.png"), 3), read_image(str(tmp_path / "rgba.png"), None))
    gray = make_image((20, 24), 7)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    three = read_image(str(tmp_path / "g.png"), 3)
    assert three.shape == (3, 20, 24) and np.array_equal(three[0], three[2]) and read_image(str(tmp_path / "g.png"), None).shape[0] == 1
    assert read_image(str(tmp_path / "rgba.png"), 1).shape == (1, 20, 24)


def test_colour_ssim_averages_the_channels():
    from skimage.metrics import structural_similarity
    rng = np.random.RandomState(0)
    a, b = rng.rand(3, 30, 31).astype(np.float32), rng.rand(3, 30, 31).astype(np.float32)
    per_channel = np.mean([structural_similarity(a[c], b[c], data_range=1.0) for c in range(3)])
    assert abs(ssim(a, b) - per_channel) < 1e-6


# ----------------------------------------------------------------------------- colour end to end
@pytest.fixture(scope="module")
def colour_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("colour")
    for name, count, size in (("pristine_images_color", 4, (64, 64)), ("CBSD68", 2, (40, 52))):
        os.makedirs(root / name)
        for i in range(count):
            img = np.dstack([make_image(size, 10 * i + c + len(name)) for c in range(3)])
            cv2.imwrite(str(root / name / ("%02d.png" % i)), img)
    return root


def test_colour_preprocess_writes_the_authors_patches(colour_data, tmp_path):
    from test_preprocess import reference_patches
    out = run_script("preprocess.py", "--data_path", str(colour_data), "--arch", "ADNet", "--channels", "3",
                     "--outf", str(tmp_path), "--quiet")
    assert out.returncode == 0, out.stderr
    with h5py.File(tmp_path / "train.h5") as f:
        data, attrs = f["data"][()], dict(f.attrs)
    files = sorted(str(p) for p in (colour_data / "pristine_images_color").iterdir())
    assert np.array_equal(data, reference_patches(files, win=50, stride=40, channels=3))
    assert data.shape[1:] == (3, 50, 50) and attrs["channels"] == 3
    with h5py.File(tmp_path / "val.h5") as f:
        assert f["0"].shape == (3, 40, 52)


def test_colour_train_test_demo_onnx(colour_data, tmp_path):
    h5 = tmp_path / "h5"
    out = run_script("train.py", "--preprocess", "True", "--data_path", str(colour_data), "--h5_dir", str(h5),
                     "--arch", "ADNet", "--channels", "3", "--mode", "B", "--patch_size", "32", "--stride", "32",
                     "--batchSize", "4", "--max_steps", "2", "--epochs", "1", "--outf", str(tmp_path / "run"),
                     "--amp", "none", "--tensorboard", "False", "--quiet")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PSNR_val" in out.stdout
    model = load_model(str(tmp_path / "run"))
    assert model.channels == 3
    out = run_script("train.py", "--h5_dir", str(h5), "--arch", "ADNet", "--channels", "1", "--mode", "B",
                     "--patch_size", "32", "--stride", "32", "--max_steps", "1", "--outf", str(tmp_path / "bad"), "--quiet")
    assert out.returncode == 2 and "channels=3" in out.stderr and "Traceback" not in out.stderr

    out = run_script("test.py", "--logdir", str(tmp_path / "run"), "--data_path", str(colour_data),
                     "--test_data", "CBSD68", "--copies", "2", "--save_dir", str(tmp_path / "saved"), "--quiet")
    assert out.returncode == 0, out.stderr
    assert 0 < psnr_on_test_data(out.stdout) < 60
    saved = cv2.imread(str(tmp_path / "saved" / "00_denoised.png"), cv2.IMREAD_UNCHANGED)
    assert saved.shape == (40, 52, 3)

    demo_out = tmp_path / "demo"
    out = run_script("demo.py", "--demo_img_path", str(colour_data / "CBSD68"), "--demo_pth_path", str(tmp_path / "run"),
                     "--out", str(demo_out), "--quiet")
    assert out.returncode == 0, out.stderr
    denoised = cv2.imread(str(demo_out / "00_denoised.png"), cv2.IMREAD_UNCHANGED)
    assert denoised.shape == (40, 52, 3) and np.abs(denoised[:, :, 0].astype(int) - denoised[:, :, 2]).max() > 10
    assert cv2.imread(str(demo_out / "00_compare.png"), cv2.IMREAD_UNCHANGED).shape[2] == 3

    out = run_script("pth2onnx.py", str(tmp_path / "run"), str(tmp_path / "c.onnx"))
    assert out.returncode == 0, out.stderr
    import onnxruntime as ort
    x = np.random.RandomState(0).rand(2, 3, 37, 29).astype(np.float32)
    got = ort.InferenceSession(str(tmp_path / "c.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        assert np.abs(got - model(torch.from_numpy(x)).numpy()).max() <= 1e-4


def test_gray_model_on_colour_photo_denoises_luma_and_keeps_colour(colour_data, tmp_path):
    torch.manual_seed(0)
    torch.save(build_model("DnCNN", 1, num_of_layers=5).state_dict(), tmp_path / "net.pth")
    out = run_script("demo.py", "--demo_img_path", str(colour_data / "CBSD68"), "--demo_pth_path", str(tmp_path),
                     "--out", str(tmp_path / "o"), "--test_noiseL", "0", "--quiet", "--gray_model_on_colour", "luma")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("gray model on colour photos: the luma denoised, the chroma kept") == 1  # once a run
    src = cv2.imread(str(colour_data / "CBSD68" / "00.png"))
    got = cv2.imread(str(tmp_path / "o" / "00_denoised.png"), cv2.IMREAD_UNCHANGED)
    assert got.shape == src.shape
    chroma = lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2YCrCb)[:, :, 1:].astype(int)
    assert np.abs(chroma(got) - chroma(src)).max() <= 2  # chroma kept (8-bit rounding)
    assert np.abs(got[:, :, 0].astype(int) - got[:, :, 2]).max() > 10  # still colour


def test_gray_model_on_colour_photo_per_channel(colour_data, tmp_path):
    """The default: each of B, G, R denoised as a gray image -- equal to the gray model run on each plane."""
    torch.manual_seed(0)
    model = build_model("DnCNN", 1, num_of_layers=5).eval()
    for m in model.modules():  # a residual of ~8 grey levels, so that the way it is applied shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.fill_(1)
    model.dncnn[-1].weight.data *= 0.1
    torch.save(model.state_dict(), tmp_path / "net.pth")
    out = run_script("demo.py", "--demo_img_path", str(colour_data / "CBSD68"), "--demo_pth_path", str(tmp_path),
                     "--out", str(tmp_path / "o"), "--test_noiseL", "0", "--quiet", "--no_compare")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("gray model on colour photos: each of B, G and R denoised as a gray image") == 1
    src = cv2.imread(str(colour_data / "CBSD68" / "00.png"))
    got = cv2.imread(str(tmp_path / "o" / "00_denoised.png"), cv2.IMREAD_UNCHANGED)
    expected = np.empty(src.shape, np.float32)
    for c in range(3):
        plane = torch.from_numpy(src[:, :, c].astype(np.float32) / 255)[None, None]
        with torch.no_grad():
            expected[:, :, c] = denoise(model, plane)[0, 0].clamp(0, 1).numpy()
    assert np.abs(got.astype(int) - np.rint(expected * 255)).max() <= 1
    assert np.abs(got.astype(int) - src).max() > 5  # denoised, not copied
    assert not os.path.exists(tmp_path / "o" / "00_compare.png")  # --no_compare


@needs_shared
def test_real_noise_model_on_a_folder_of_noisy_photos(tmp_path):
    folder = tmp_path / "noisy"
    os.makedirs(folder)
    rng = np.random.RandomState(1)
    for name in ("1.png", "2.png"):
        clean = cv2.imread(os.path.join(DATA, "McMaster", name))[:96, :120].astype(np.float32)
        cv2.imwrite(str(folder / name), np.clip(clean + rng.randn(*clean.shape) * 20, 0, 255).astype(np.uint8))
    real = os.path.join(REF, "adnet/real/model_25.pth")
    out = run_script("test.py", "--logdir", real, "--test_data", str(folder), "--test_noiseL", "0",
                     "--save_dir", str(tmp_path / "saved"), "--quiet")
    assert out.returncode == 0, out.stderr
    assert "outputs the noise" in out.stdout and "1.png denoised" in out.stdout and "PSNR on test data" not in out.stdout
    saved = cv2.imread(str(tmp_path / "saved" / "1_denoised.png"))
    assert saved.shape == (96, 120, 3) and saved.mean() > 40  # not black
    out = run_script("demo.py", "--demo_img_path", str(folder), "--demo_pth_path", real, "--test_noiseL", "0",
                     "--out", str(tmp_path / "demo"), "--quiet")
    assert out.returncode == 0, out.stderr
    denoised = cv2.imread(str(tmp_path / "demo" / "2_denoised.png")).astype(np.float32)
    noisy = cv2.imread(str(folder / "2.png")).astype(np.float32)
    assert abs(denoised.mean() - noisy.mean()) < 5 and denoised.std() < noisy.std()  # the photo, smoother
