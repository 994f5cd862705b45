"""ONNX export, saved images + CSV, demo comparisons, training-curve plots, the test/ wrappers."""
import csv
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, SHARED, needs_shared, psnr_on_test_data, run_script
from models import build_model

WRAPPER_ENV = dict(os.environ, OMP_NUM_THREADS="1", max_steps="3")


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    torch.manual_seed(0)
    torch.save(build_model("DnCNN", num_of_layers=5).state_dict(), folder / "net.pth")
    return folder


def _onnx_matches_torch(ckpt, onnx_path):
    import onnxruntime as ort
    from checkpoints import load_model
    model = load_model(ckpt)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for shape in ((1, 1, 40, 56), (2, 1, 73, 31)):
        x = np.random.RandomState(0).rand(*shape).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        got = session.run(None, {"input": x})[0]
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-4


def test_onnx_export_small_model(small_ckpt, tmp_path):
    out = run_script("pth2onnx.py", str(small_ckpt), str(tmp_path / "m.onnx"))
    assert out.returncode == 0, out.stderr
    _onnx_matches_torch(str(small_ckpt), tmp_path / "m.onnx")


@needs_shared
@pytest.mark.parametrize("ckpt", ["saoyan/DnCNN-B", "adnet/g15"])
def test_onnx_export_reference_checkpoints(ckpt, tmp_path):
    path = os.path.join(SHARED, "reference_weights", ckpt)
    out = subprocess.run(["bash", os.path.join(ROOT, "test", "pth2onnx.sh"), "--pth_path=" + path,
                          str(tmp_path / "m.onnx")], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, output_root=str(tmp_path / "output")))
    assert out.returncode == 0, out.stderr
    _onnx_matches_torch(path, tmp_path / "m.onnx")


def test_test_py_saves_images_and_csv(small_ckpt, tiny_data, tmp_path):
    out = run_script("test.py", "--logdir", str(small_ckpt), "--data_path", tiny_data, "--test_data", "Set12",
                     "--save_dir", str(tmp_path), "--save_noisy", "--quiet")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [r["image"] for r in rows] == ["00.png", "01.png"]
    mean = psnr_on_test_data(out.stdout)
    assert abs(np.mean([float(r["psnr"]) for r in rows]) - mean) < 1e-3
    assert all(0 < float(r["ssim"]) <= 1 for r in rows)
    assert sorted(os.listdir(tmp_path)) == ["00_denoised.png", "00_noisy.png", "01_denoised.png", "01_noisy.png",
                                            "results.csv"]


SHIPPED_DNCNN = os.path.join(ROOT, "weights", "DnCNN-S-25")
NOISY_PSNR_SIGMA_25 = 20.17  # 20 log10(255 / 25): what returning the noisy input would score


def test_bf16_and_tiled_inference_stay_close(tiny_data):
    def mean_psnr(*extra):
        out = run_script("test.py", "--logdir", SHIPPED_DNCNN, "--data_path", tiny_data, "--quiet", *extra)
        assert out.returncode == 0, out.stderr
        return psnr_on_test_data(out.stdout)
    fp32 = mean_psnr()
    assert fp32 > NOISY_PSNR_SIGMA_25 + 8  # a trained net: its output decides the score
    assert abs(mean_psnr("--tile", "24") - fp32) < 1e-4
    assert abs(mean_psnr("--no_fold") - fp32) < 1e-4
    bf16 = mean_psnr("--amp", "bf16!")  # forced: an AVX2-only CPU would otherwise run fp32 (and emulates bf16)
    assert 0 < abs(bf16 - fp32) < 0.05  # bf16 was used (measured: 0.022 dB below), and stays close


def test_demo_writes_denoised_and_comparison_per_input(small_ckpt, tiny_data, tmp_path):
    import cv2
    out = run_script("demo.py", "--demo_img_path", os.path.join(tiny_data, "Set12"), "--demo_pth_path",
                     str(small_ckpt), "--out", str(tmp_path), "--quiet")
    assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(tmp_path)) == ["00_compare.png", "00_denoised.png", "01_compare.png", "01_denoised.png"]
    compare = cv2.imread(str(tmp_path / "00_compare.png"), cv2.IMREAD_UNCHANGED)
    assert compare.shape[1] > 3 * 56  # noisy | denoised | clean
    assert re.search(r"00.png PSNR [\d.]+ \(noisy [\d.]+\)", out.stdout)
    out = run_script("demo.py", "--demo_img_path", os.path.join(tiny_data, "Set12"), "--demo_pth_path",
                     str(small_ckpt), "--out", str(tmp_path / "real"), "--test_noiseL", "0", "--quiet")
    assert out.returncode == 0 and "00.png denoised" in out.stdout


def test_plot_from_log_and_from_events(tiny_h5, tmp_path):
    run = tmp_path / "run"
    out = run_script("train.py", "--h5_dir", tiny_h5, "--outf", str(run), "--batchSize", "16", "--num_of_layers", "5",
                     "--epochs", "2", "--log_every", "2", "--quiet")
    assert out.returncode == 0, out.stderr
    for source in (run / "train.log", run):
        png = tmp_path / ("curves_%s.png" % source.name)
        out = run_script("plot_log.py", str(source), str(png))
        assert out.returncode == 0, out.stderr
        assert "2 validation points" in out.stdout
        assert png.read_bytes()[:4] == b"\x89PNG"
    events = next(f for f in os.listdir(run) if f.startswith("events.out"))
    out = run_script("plot_log.py", str(run / events), str(tmp_path / "ev.png"))
    assert out.returncode == 0 and "2 validation points" in out.stdout
    out = run_script("plot_log.py", str(run), str(run / "train.log"), str(tmp_path / "mixed.png"))
    assert out.returncode == 2 and "against epochs" in out.stderr


def test_plot_hours_skip_pauses_and_rolled_back_steps(tmp_path, capsys):
    from plot_log import active_hours, drop_rolled_back, main
    hours = active_hours([0.0, 60.0, 120.0, 5000.0, 5060.0], max_gap_s=600)
    assert [round(hours[t] * 3600) for t in (0.0, 120.0, 5000.0, 5060.0)] == [0, 120, 120, 180]
    # killed after step 30 with a checkpoint at step 20: the resumed run logs 30 again
    points = [(0, 10, 1.0), (1, 20, 0.9), (2, 30, 0.8), (9, 30, 0.7), (10, 40, 0.6)]
    assert [(s, v) for _, s, v in drop_rolled_back(points)] == [(10, 1.0), (20, 0.9), (30, 0.7), (40, 0.6)]
    from tensorboardX import SummaryWriter
    for name, start in (("a", 0.0), ("b", 100.0)):
        writer = SummaryWriter(str(tmp_path / name))
        for step in range(1, 4):
            writer.add_scalar("loss", 1.0 / step, step, walltime=start + step * 30)
            tag = "PSNR_val" if name == "a" else "PSNR on validation data"  # the references' tag
            writer.add_scalar(tag, 20.0 + step, step, walltime=start + step * 30)
        writer.close()
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "both.png")]) == 0
    assert "b: 3 loss points, 3 validation points, 0.02 hours of training" in capsys.readouterr().out
    assert (tmp_path / "both.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_merges_the_event_files_of_a_resumed_run(tmp_path, capsys):
    from tensorboardX import SummaryWriter
    from plot_log import main, read_event_files
    run = tmp_path / "run"
    # killed after step 30 with a checkpoint at step 20, resumed two hours later: steps 21-30 are logged again
    for first_step, last_step, start, suffix, offset in ((1, 30, 1000.0, "", 0.0), (21, 40, 10000.0, ".resumed", 0.5)):
        writer = SummaryWriter(str(run), filename_suffix=suffix)  # the suffix keeps two files made in one second apart
        for step in range(first_step, last_step + 1):
            walltime = start + 60.0 * (step - first_step)
            writer.add_scalar("loss", step + offset, step, walltime=walltime)
            if step % 10 == 0:
                writer.add_scalar("PSNR_val", 20.0 + step + offset, step, walltime=walltime)
        writer.close()
    assert len([f for f in os.listdir(run) if f.startswith("events.out")]) == 2
    losses, vals = read_event_files([str(f) for f in run.iterdir()], max_gap_s=600)
    assert [v for _, v in losses] == [float(s) for s in range(1, 21)] + [s + 0.5 for s in range(21, 41)]
    assert [v for _, v in vals] == [30.0, 40.0, 50.5, 60.5]
    assert round(losses[-1][0] * 3600) == 29 * 60 + 19 * 60  # the two-hour pause is not counted
    assert main([str(run), str(tmp_path / "resumed.png")]) == 0
    assert "40 loss points, 4 validation points, 0.80 hours of training" in capsys.readouterr().out


def test_plot_without_tensorboard_reads_text_logs_and_names_the_package(tmp_path, monkeypatch):
    from tensorboardX import SummaryWriter
    from plot_log import main
    from utils import UserError
    monkeypatch.setitem(sys.modules, "tensorboard.backend.event_processing.event_accumulator", None)
    log = tmp_path / "train.log"
    log.write_text("[epoch 1][1/2] loss: 0.5\n[epoch 1][2/2] loss: 0.4\n[epoch 1] PSNR_val: 25.0\n")
    assert main([str(log), str(tmp_path / "text.png")]) == 0
    writer = SummaryWriter(str(tmp_path / "run"))
    writer.add_scalar("loss", 0.5, 1)
    writer.close()
    with pytest.raises(UserError, match="^plot_log.py needs the tensorboard package: pip install tensorboard$"):
        main([str(tmp_path / "run"), str(tmp_path / "events.png")])


def run_wrapper(name, *args, cwd, output_root):
    """A test/ wrapper run from cwd (an empty folder: no ./data to default to), its output under output_root."""
    return subprocess.run(["bash", os.path.join(ROOT, "test", name), *args], capture_output=True, text=True,
                          env=dict(WRAPPER_ENV, output_root=str(output_root)), timeout=600, cwd=cwd)


def test_wrappers_end_to_end(tiny_data, tmp_path):
    def wrapper(name, *args):
        return run_wrapper(name, *args, cwd=tmp_path, output_root=tmp_path / "output")
    out = wrapper("train_performance_8p.sh", "--data_path=" + tiny_data, "--nproc=2", "--batch_size=16",
                  "--num_of_layers", "5", "--device_id=7")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr  # the wrapper tees train.py's log to stdout
    assert re.search(r"Final Performance images/sec : [\d.]+", out.stdout)
    assert re.search(r"Final Train Accuracy : [\d.]+", out.stdout)
    assert re.search(r"E2E Training Duration sec : \d+", out.stdout)
    out_dir = os.path.join(tmp_path, "output", "7")
    keys = dict(line.split(" = ") for line in open(os.path.join(out_dir, "DnCNN_bs16_2p_perf.log")).read().splitlines())
    assert keys["RankSize"] == "2" and keys["BatchSize"] == "16" and keys["CaseName"] == "DnCNN_bs16_2p_perf"
    fps = float(keys["ActualFPS"])
    assert fps > 0 and abs(float(keys["TrainingTime"]) - 16 * 1000 / fps) < 0.01
    assert float(keys["ActualLoss"]) > 0 and float(keys["TrainAccuracy"]) > 0
    assert os.path.isfile(os.path.join(out_dir, "train_7.log"))
    out = wrapper("train_eval_8p.sh", "--data_path=" + tiny_data, "--test_data=Set12", "--device_id=7")
    assert out.returncode == 0, out.stderr
    assert re.search(r"Final Test Accuracy : [\d.]+", out.stdout)
    out = wrapper("train_full_1p.sh", "--arch=ADNet")
    assert out.returncode == 2 and "--data_path=DIR is required" in out.stderr
    failing = wrapper("train_performance_1p.sh", "--data_path=" + tiny_data, "--batch_size=0", "--device_id=7")
    assert failing.returncode != 0


def test_wrappers_cache_patches_per_data_content(tiny_data, tmp_path):
    """A second data folder, or the same one changed, gets its own patches; the same data reuses them."""
    other = shutil.copytree(tiny_data, str(tmp_path / "other"))
    shutil.copy(os.path.join(other, "train", "00.png"), os.path.join(other, "train", "06.png"))  # 7 images, not 6

    def train(data):
        out = run_wrapper("train_performance_1p.sh", "--data_path=" + data, "--batch_size=16", "--num_of_layers", "5",
                          cwd=tmp_path, output_root=tmp_path / "output")
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr
        samples, key = re.search(r"# of training samples: (\d+) \(.*key=(\w+)\)", out.stdout).groups()
        return int(samples), key, "training set:" in out.stdout  # that line: preprocessed in this run
    first, second, again = train(tiny_data), train(other), train(tiny_data)
    assert first[2] and second[2] and not again[2]
    assert second[0] == first[0] * 7 // 6 and second[1] != first[1]
    assert again[:2] == first[:2]
    assert sorted(os.listdir(tmp_path / "output" / "h5")) == sorted([first[1], second[1]])
