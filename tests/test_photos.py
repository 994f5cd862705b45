"""demo.py on folders of real photographs (issue #23): as the viewer shows them (EXIF orientation, 16 bits,
alpha, HEIC), streamed one at a time, in automatic tiles that give the whole image's output, resumable,
recursive, split over torchrun ranks."""
import os
import sys
import time
import weakref

import cv2
import numpy as np
import pytest
import torch

import demo
import inference
from conftest import ROOT, SHARED, make_image, needs_shared, run_script
from models import build_model, denoise, receptive_radius
from demo import plan_outputs
from images import decode_image, list_images, orient, prefetched, read_image
from inference import (AUTO_TILE, CPU_WORKING_SET, MIN_TILE, auto_tile, denoise_any, denoise_image, evaluate,
                       evaluate_iter, inference_model, tile_budget, tile_size, tile_spans)
from utils import UserError, shard

CPU = torch.device("cpu")


def colour(shape, seed, dtype=np.uint8):
    return np.dstack([make_image(shape, seed + c, dtype) for c in range(3)])


@pytest.fixture(scope="module")
def identity_ckpt(tmp_path_factory):
    """A DnCNN whose weights are all zero: it predicts no noise, so the output is the input, bit for bit --
    what comes out shows what was read and how it was written."""
    folder = tmp_path_factory.mktemp("identity")
    model = build_model("DnCNN", 3, num_of_layers=3, init=None)
    torch.save({k: torch.zeros_like(v) for k, v in model.state_dict().items()}, folder / "net.pth")
    return str(folder / "net.pth")


def busy_net(arch, channels, seed=0):
    """A random net whose output depends on its whole receptive field (batch-norm scales 1, not the init's 0.025)."""
    torch.manual_seed(seed)
    model = build_model(arch, channels, num_of_layers=17)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.fill_(1.0)
            m.running_var.fill_(1.0)
    if arch == "ADNet":  # attention 1: the whole residual reaches the output
        model.conv3.weight.data.zero_()
        model.conv3.bias.data.fill_(1.0)
    return inference_model(model, CPU)


def run_demo(folder, ckpt, out, *extra):
    """demo.py in this process (a subprocess costs seconds of start-up per call)."""
    args = ["--demo_img_path", str(folder), "--demo_pth_path", ckpt, "--out", str(out), "--test_noiseL", "0",
            "--quiet", "--device", "cpu"] + list(extra)
    return demo.main(args)


# ----------------------------------------------------------------------------- as the viewer shows it
def exif(orientation):
    from PIL import Image
    tags = Image.Exif()
    tags[0x0112] = orientation
    return tags.tobytes()


def save_with_orientation(path, bgr, orientation, **kwargs):
    from PIL import Image
    Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(path, exif=exif(orientation), **kwargs)


@needs_shared
def test_reference_sets_still_decode_as_the_references_read_them():
    """The parity figures rest on this: Set12 / Set68 as SaoYan's imread(f)[:, :, 0] / 255, CBSD68 / McMaster as
    the ADNet authors' imread(f) / 255 (BGR), bit for bit."""
    data = os.path.join(SHARED, "data")
    for name, channels, count in (("Set12", 1, 12), ("Set68", 1, 5), ("CBSD68", 3, 3), ("McMaster", 3, 3)):
        for f in list_images(os.path.join(data, name))[:count]:
            theirs = cv2.imread(f)
            theirs = theirs[None, :, :, 0] if channels == 1 else np.transpose(theirs, (2, 0, 1))
            assert np.array_equal(read_image(f, channels), np.float32(theirs / 255.0)), f


@pytest.mark.parametrize("ext,kwargs", [(".png", {}), (".webp", {"lossless": True})])
def test_exif_orientation_of_png_and_webp_as_opencv_shows_them(tmp_path, ext, kwargs):
    """OpenCV's IMREAD_ANYCOLOR turns these files by their EXIF tag (the oracle); decode_image reads them with
    IMREAD_UNCHANGED (to keep alpha) and must turn them alike, for all eight orientations."""
    bgr = colour((20, 30), 1)
    for orientation in range(1, 9):
        path = str(tmp_path / ("o%d%s" % (orientation, ext)))
        save_with_orientation(path, bgr, orientation, **kwargs)
        expected = cv2.imread(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
        got, alpha = decode_image(path)
        assert alpha is None and np.array_equal(got, expected), orientation
        assert got.shape[:2] == ((30, 20) if orientation >= 5 else (20, 30))
    assert not np.array_equal(orient(bgr, 7), orient(bgr, 5)) and np.array_equal(orient(bgr, 1), bgr)


def test_tiff_orientations(tmp_path, capfd):
    """OpenCV turns TIFFs itself, but fails (printing an error) on those whose sides swap: Pillow reads them."""
    bgr = colour((20, 30), 2)
    for orientation in range(1, 9):
        save_with_orientation(str(tmp_path / "r.tif"), bgr, orientation)
        got, _ = decode_image(str(tmp_path / "r.tif"))
        assert np.array_equal(got, orient(bgr, orientation)), orientation  # orient: checked against OpenCV above
    assert "ERROR" not in capfd.readouterr().err


@pytest.mark.parametrize("channels", [3, 4])
def test_turned_16_bit_colour_tiff_keeps_its_depth_and_alpha(tmp_path, channels, capfd):
    tifffile = pytest.importorskip("tifffile")
    rgba = (np.random.RandomState(channels).rand(20, 30, channels) * 65535).astype(np.uint16)
    bgra = rgba[:, :, [2, 1, 0, 3][:channels]]
    for orientation in (1, 3, 6, 8):
        path = str(tmp_path / ("o%d.tif" % orientation))
        tifffile.imwrite(path, rgba, photometric="rgb", extrasamples=("unassalpha",) if channels == 4 else None,
                         extratags=[(274, "H", 1, orientation, True)])
        got, alpha = decode_image(path)
        expected = orient(bgra, orientation)
        assert got.dtype == np.uint16 and np.array_equal(got, expected[:, :, :3]), orientation
        assert (alpha is None) if channels == 3 else np.array_equal(alpha, expected[:, :, 3])
    assert "ERROR" not in capfd.readouterr().err


def test_jpeg_with_orientation_6_comes_out_upright(identity_ckpt, tmp_path):
    folder = tmp_path / "in"
    os.makedirs(folder)
    save_with_orientation(str(folder / "portrait.jpg"), colour((40, 64), 3), 6, quality=95)
    assert run_demo(folder, identity_ckpt, tmp_path / "out", "--no_compare") == 0
    got = cv2.imread(str(tmp_path / "out" / "portrait_denoised.png"), cv2.IMREAD_UNCHANGED)
    assert got.shape == (64, 40, 3)  # stored 40 x 64, shown (and written) 64 x 40
    shown = cv2.imread(str(folder / "portrait.jpg"), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    assert np.array_equal(got, shown)


def test_16bit_in_16bit_out_and_alpha_carried(identity_ckpt, tmp_path):
    folder = tmp_path / "in"
    os.makedirs(folder)
    deep = colour((36, 50), 4, np.uint16)
    cv2.imwrite(str(folder / "deep.png"), deep)
    cv2.imwrite(str(folder / "deep_tiff.tif"), deep)
    alpha = make_image((36, 50), 9)
    rgba = np.dstack([colour((36, 50), 5), alpha])
    cv2.imwrite(str(folder / "logo.png"), rgba)
    gray16_alpha = np.dstack([make_image((36, 50), 6, np.uint16)] * 3 + [make_image((36, 50), 7, np.uint16)])
    cv2.imwrite(str(folder / "deep_alpha.png"), gray16_alpha)
    assert run_demo(folder, identity_ckpt, tmp_path / "out") == 0
    out = lambda name: cv2.imread(str(tmp_path / "out" / name), cv2.IMREAD_UNCHANGED)  # noqa: E731
    # the identity model: every bit of the 16-bit input comes back (an 8-bit path would keep 1 in 257 values)
    assert out("deep_denoised.png").dtype == np.uint16 and np.array_equal(out("deep_denoised.png"), deep)
    assert np.array_equal(out("deep_tiff_denoised.tif"), deep)
    assert np.array_equal(out("logo_denoised.png"), rgba)  # colour and alpha
    assert np.array_equal(out("deep_alpha_denoised.png"), gray16_alpha)
    assert out("logo_compare.png").shape[2] == 3 and out("deep_compare.png").dtype == np.uint8


def test_heic_is_read_as_the_viewer_shows_it(tmp_path):
    """An iPhone-style HEIC (HEVC, lossy) with EXIF orientation: upright, colour, in BGR order."""
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import Image
    pillow_heif.register_heif_opener()
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float32)
    bgr = np.stack([40 + xx, 60 + 2 * yy, 200 - xx - yy], axis=2).clip(0, 255).astype(np.uint8)  # smooth: HEVC keeps it
    for orientation in (1, 3, 6, 8):
        path = str(tmp_path / ("IMG_%d.HEIC" % orientation))
        Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(path, exif=exif(orientation), quality=95)
        got, alpha = decode_image(path)
        expected = orient(bgr, orientation).astype(np.float32)
        assert alpha is None and got.dtype == np.uint8 and got.shape == expected.shape, orientation
        error = np.abs(got - expected).mean()
        assert error < 3, (orientation, error)  # a wrong turn or channel order is tens of levels off
        assert np.abs(got - expected[:, :, ::-1]).mean() > 10 * error


def test_heic_without_pillow_heif_names_the_package_and_skips(identity_ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # import pillow_heif -> ImportError
    folder = tmp_path / "in"
    os.makedirs(folder)
    (folder / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + os.urandom(200))
    cv2.imwrite(str(folder / "IMG_0002.png"), make_image((30, 40), 1))
    assert decode_image(str(folder / "IMG_0001.HEIC")) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "IMG_0001.HEIC" in err and "pip install pillow-heif" in err
    assert run_demo(folder, identity_ckpt, tmp_path / "out", "--no_compare") == 0
    assert os.listdir(tmp_path / "out") == ["IMG_0002_denoised.png"]
    assert "IMG_0001.HEIC" in capsys.readouterr().err


def test_unreadable_file_is_skipped_by_name(identity_ckpt, tmp_path, capsys):
    folder = tmp_path / "in"
    os.makedirs(folder)
    cv2.imwrite(str(folder / "good.png"), make_image((30, 40), 1))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    assert run_demo(folder, identity_ckpt, tmp_path / "out", "--no_compare") == 0
    assert "broken.jpg" in capsys.readouterr().err
    assert os.listdir(tmp_path / "out") == ["good_denoised.png"]


# ----------------------------------------------------------------------------- resumable, recursive, ranks
def test_rerun_skips_done_images_and_overwrite_redoes_them(identity_ckpt, tmp_path, capsys):
    folder = tmp_path / "in"
    os.makedirs(folder)
    for i in range(3):
        cv2.imwrite(str(folder / ("%d.png" % i)), make_image((24, 30), i))
    out = tmp_path / "out"
    assert run_demo(folder, identity_ckpt, out) == 0
    assert "wrote 3 denoised images" in capsys.readouterr().out
    os.remove(out / "1_compare.png")  # as if killed between the two writes of image 1
    stamp = os.path.getmtime(out / "0_denoised.png")
    (out / "2_denoised.png.tmp.999999").write_bytes(b"half")  # a killed run's temporary file
    assert run_demo(folder, identity_ckpt, out) == 0
    said = capsys.readouterr().out
    assert "skipping 2 of 3 images" in said and "wrote 1 denoised images" in said and "1 denoised" in said
    assert os.path.getmtime(out / "0_denoised.png") == stamp and os.path.isfile(out / "1_compare.png")
    assert not os.path.exists(out / "2_denoised.png.tmp.999999")
    assert run_demo(folder, identity_ckpt, out, "--overwrite") == 0
    said = capsys.readouterr().out
    assert "skipping" not in said and "wrote 3 denoised images" in said


def test_recursive_mirrors_sub_folders_and_leaves_the_output_folder_out(identity_ckpt, tmp_path):
    folder = tmp_path / "photos"
    for sub in ("", "2023/summer", "2024", ".thumbnails"):
        os.makedirs(folder / sub, exist_ok=True)
        cv2.imwrite(str(folder / sub / "a.png"), make_image((20, 28), len(sub)))
    out = folder / "result"  # inside the input folder, as the ADNet port's data/demo_img/result
    for _ in range(2):  # the second run must not take the first one's outputs for inputs
        assert run_demo(folder, identity_ckpt, out, "--recursive", "--no_compare") == 0
    found = sorted(os.path.relpath(os.path.join(r, f), out) for r, _, fs in os.walk(out) for f in fs)
    assert found == ["2023/summer/a_denoised.png", "2024/a_denoised.png", "a_denoised.png"]
    assert run_demo(folder, identity_ckpt, tmp_path / "flat", "--no_compare") == 0
    assert os.listdir(tmp_path / "flat") == ["a_denoised.png"]  # without --recursive: the folder itself


def test_output_names_keep_clashing_stems_apart(tmp_path):
    files = [str(tmp_path / n) for n in ("IMG_1.heic", "IMG_1.jpg", "IMG_2.tiff", "sub/x.png")]
    jobs = plan_outputs(files, str(tmp_path), str(tmp_path / "out"))
    names = [os.path.relpath(j["denoised"], tmp_path / "out") for j in jobs]
    assert names == ["IMG_1_heic_denoised.png", "IMG_1_jpg_denoised.png", "IMG_2_denoised.tif", "sub/x_denoised.png"]
    assert jobs[3]["compare"] == str(tmp_path / "out" / "sub" / "x_compare.png")
    assert "compare" not in plan_outputs(files, str(tmp_path), str(tmp_path / "out"), compare=False)[0]


def test_shard_gives_each_item_to_exactly_one_rank():
    items = list(range(11))
    for world in (1, 2, 3, 16):
        shares = [shard(items, rank, world) for rank in range(world)]
        assert sorted(sum(shares, [])) == items
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_two_torchrun_ranks_split_the_folder(identity_ckpt, tmp_path):
    folder = tmp_path / "in"
    os.makedirs(folder)
    names = ["%d.png" % i for i in range(5)]
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), make_image((20, 24), i))
    out = run_script("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                     os.path.join(ROOT, "demo.py"), "--demo_img_path", str(folder), "--demo_pth_path", identity_ckpt,
                     "--out", str(tmp_path / "out"), "--test_noiseL", "0", "--quiet", "--no_compare",
                     env={"OMP_NUM_THREADS": "1"}, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for name in names:  # each image denoised once, by one rank
        assert out.stdout.count("%s denoised" % name) == 1, out.stdout
    assert "[rank 0 of 2] wrote 3" in out.stdout and "[rank 1 of 2] wrote 2" in out.stdout
    assert sorted(os.listdir(tmp_path / "out")) == ["%d_denoised.png" % i for i in range(5)]


# ----------------------------------------------------------------------------- streaming
def test_prefetch_reads_one_ahead_and_keeps_at_most_two_images_alive():
    alive, most, loaded = set(), [0], []

    class Image:
        def __init__(self, i):
            alive.add(i)
            most[0] = max(most[0], len(alive))
            weakref.finalize(self, alive.discard, i)

    def load(i):
        loaded.append(i)
        return Image(i)
    for i, img in prefetched(range(8), load):
        deadline = time.time() + 10
        while i < 7 and len(loaded) < i + 2 and time.time() < deadline:  # the next one loads meanwhile
            time.sleep(0.001)
        assert len(loaded) == min(8, i + 2)  # one ahead, never more
        del img
    assert most[0] == 2 and not alive


def test_evaluate_streams_one_image_at_a_time():
    net = busy_net("DnCNN", 1)
    pulled = []

    def images():
        for i in range(3):
            pulled.append(i)
            yield "%d.png" % i, np.random.RandomState(i).rand(1, 20, 24).astype(np.float32)
    rows = evaluate_iter(net, images(), 25, CPU)
    first = next(rows)
    assert pulled == [0] and first["name"] == "0.png" and first["denoised"].shape == (1, 20, 24)
    assert [r["name"] for r in rows] == ["1.png", "2.png"]
    listed = evaluate(net, [("a.png", np.full((1, 16, 16), 0.5, np.float32))], 25, CPU)  # train.py's call
    assert isinstance(listed, list) and listed[0]["noisy"].shape == (1, 16, 16) and listed[0]["psnr"] > 0


# ----------------------------------------------------------------------------- tiles
def test_auto_tile_fits_the_budget():
    mib = 2 ** 20
    assert auto_tile(321, 481, 3, 512 * mib) == 0  # a test image: whole
    for channels, precision, budget in ((3, 4, 512 * mib), (1, 2, 512 * mib), (3, 4, 64 * mib), (3, 2, 3 * 2 ** 30)):
        tile = auto_tile(3000, 4000, channels, budget, precision, radius=17)
        per_pixel = inference.LIVE_FEATURE_MAPS * 64 * precision + 16 * channels
        assert (tile + 34) ** 2 * per_pixel <= budget < (tile + 35) ** 2 * per_pixel, (channels, precision)
    assert auto_tile(3000, 4000, 3, 512 * mib, 2) > auto_tile(3000, 4000, 3, 512 * mib, 4)  # bf16: larger tiles
    assert auto_tile(3000, 4000, 3, 512 * mib, batch=3) < auto_tile(3000, 4000, 3, 512 * mib)
    assert auto_tile(3000, 4000, 3, 10) == MIN_TILE  # no memory: the smallest tile, not a crash


def test_tile_budget(monkeypatch):
    gib = 2 ** 30
    assert tile_budget(CPU, available=64 * gib) == CPU_WORKING_SET  # the ceiling: a 48 MP photo stays light
    assert tile_budget(CPU, available=gib // 2) == gib // 4  # half of what is free
    assert tile_budget(torch.device("cuda"), available=10 * gib) == 8 * gib
    monkeypatch.setitem(sys.modules, "psutil", None)  # without psutil: /proc/meminfo
    free = inference.memory_available(CPU)
    if os.path.isfile("/proc/meminfo"):
        total = int(open("/proc/meminfo").read().split("MemTotal:")[1].split()[0]) * 1024
        assert 0 < free <= total
    assert 0 < tile_budget(CPU) <= CPU_WORKING_SET


def test_tile_flag():
    assert tile_size("auto") == tile_size("-1") == AUTO_TILE and tile_size("0") == 0 and tile_size("512") == 512
    for bad in ("-2", "big", "1.5"):
        with pytest.raises(Exception, match="expected auto or a number"):
            tile_size(bad)
    assert demo.parse_args([]).tile == AUTO_TILE  # the default


def test_tile_spans_split_evenly():
    assert tile_spans(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert tile_spans(4000, 776) == [(i * 667, min(4000, (i + 1) * 667)) for i in range(6)]
    assert tile_spans(7, 7) == [(0, 7)]


@pytest.mark.parametrize("arch,channels,size,tile", [("DnCNN", 1, (67, 53), 24), ("DnCNN", 3, (45, 71), 20),
                                                      ("ADNet", 1, (51, 37), 22), ("ADNet", 3, (41, 59), 27)])
def test_tiled_equals_whole(arch, channels, size, tile, monkeypatch):
    net = busy_net(arch, channels)
    noisy = torch.rand((1, channels) + size, generator=torch.Generator().manual_seed(1))
    whole = denoise_image(net, noisy, CPU, tile=0)
    assert (denoise_image(net, noisy, CPU, tile=tile) - whole).abs().max() <= 1e-6
    monkeypatch.setattr(inference, "tile_budget", lambda device: 400_000)  # AUTO_TILE with little memory: tiles
    assert 0 < auto_tile(size[0], size[1], channels, 400_000, radius=receptive_radius(net)) < max(size)
    assert (denoise_image(net, noisy, CPU, tile=AUTO_TILE) - whole).abs().max() <= 1e-6
    # the test can fail: one pixel less overlap than the receptive radius shows
    monkeypatch.setattr(inference, "receptive_radius", lambda net: receptive_radius(net) - 1)
    assert (denoise_image(net, noisy, CPU, tile=tile) - whole).abs().max() > 1e-5


def test_out_of_memory_halves_the_tile(capsys):
    net = busy_net("DnCNN", 1)
    seen = []

    class Limited(torch.nn.Module):  # a device that holds at most 40 x 40 pixels (+ the overlap)
        channels, predicts_noise = 1, False

        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            if x.shape[-1] * x.shape[-2] > (40 + 34) ** 2:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return denoise(self.net, x)
    noisy = torch.rand(1, 1, 150, 130, generator=torch.Generator().manual_seed(2))
    got = denoise_image(Limited(), noisy, CPU, tile=0)
    assert (got - denoise_image(net, noisy, CPU)).abs().max() <= 1e-6
    err = capsys.readouterr().err
    assert seen[0] == (150, 130) and err.count("out of memory") == 2
    assert "the whole image: retrying in 75-pixel tiles" in err and "75-pixel tiles: retrying in 37-pixel tiles" in err

    class Never(Limited):
        def forward(self, x):
            raise RuntimeError("NPU out of memory. Tried to allocate 8.00 MiB")
    with pytest.raises(UserError, match="out of memory on cpu even in %d-pixel tiles" % MIN_TILE):
        denoise_image(Never(), noisy, CPU, tile=64)

    class Broken(Limited):
        def forward(self, x):
            raise RuntimeError("shapes do not match")
    with pytest.raises(RuntimeError, match="shapes"):  # other errors are not retried
        denoise_image(Broken(), noisy, CPU, tile=0)


def test_progress_advances_per_tile_to_one_image():
    net = busy_net("DnCNN", 1)
    noisy = np.random.RandomState(0).rand(3, 50, 70).astype(np.float32)
    for kwargs in ({"tile": 24}, {"tile": 0, "x8": True}, {"tile": 30, "gray_on_colour": "luma"}):
        steps = []
        denoise_any(net, noisy, CPU, on_progress=steps.append, **kwargs)
        assert len(steps) > 2 and abs(sum(steps) - 1.0) < 1e-9, kwargs
    bar = demo.ImageProgress(2, quiet=True)
    bar.start(1_000_000)
    for _ in range(3):
        bar.advance(0.5)  # a retry's repeated work is not counted past the image
    bar.finish()
    assert bar.megapixels == 1.0 and bar.done == 0
