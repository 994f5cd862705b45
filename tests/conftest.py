import os
import re
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
sys.path.insert(0, ROOT)
# no test reaches the network: the per-photo default's fetch on first use is off unless a test turns it on
os.environ["DENOISE_OFFLINE"] = "1"

needs_shared = pytest.mark.skipif(
    not os.path.isdir(os.path.join(SHARED, "reference_weights")),
    reason="../shared (reference checkpoints and data) is absent: a user's fresh clone; CI has it")


def run_script(*args, env=None, timeout=600, cwd=None):
    """Run a project script with the test interpreter; returns CompletedProcess (text)."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    full_env.update(env or {})
    cmd = [sys.executable] + [os.path.join(ROOT, a) if i == 0 and a.endswith(".py") else a for i, a in enumerate(args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd or ROOT)


def free_port():
    """A TCP port free on the loopback address now (for a rendezvous or a master port)."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def training_workers(outf):
    """pids of the train.py processes (not their torchrun agents) writing to outf."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(a.endswith("train.py") for a in argv) and outf in argv and "torch.distributed.run" not in argv:
            yield int(pid)


def psnr_on_test_data(stdout):
    """The mean PSNR from test.py's reference log line 'PSNR on test data X'."""
    found = re.search(r"PSNR on test data ([\d.]+)", stdout)
    assert found, "no 'PSNR on test data' line in test.py's output:\n" + stdout[-2000:]
    return float(found.group(1))


def make_image(shape, seed, dtype=np.uint8):
    """A smooth random test image (so denoising has structure to keep)."""
    rng = np.random.RandomState(seed)
    small = rng.rand(max(2, shape[0] // 8), max(2, shape[1] // 8)).astype(np.float32)
    img = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img, 0, 1)
    top = 65535 if dtype == np.uint16 else 255
    return np.rint(img * top).astype(dtype)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """data/{train,Set12,Set68} with a few small synthetic images."""
    root = tmp_path_factory.mktemp("data")
    for name, count, size in (("train", 6, (64, 64)), ("Set12", 2, (48, 56)), ("Set68", 2, (40, 52))):
        os.makedirs(root / name)
        for i in range(count):
            cv2.imwrite(str(root / name / ("%02d.png" % i)), make_image(size, seed=zlib.crc32(name.encode()) % 1000 + i))
    return str(root)


@pytest.fixture(scope="session")
def tiny_h5(tiny_data, tmp_path_factory):
    """train.h5 / val.h5 for DnCNN mode S built from tiny_data."""
    from dataset import prepare_data
    out = str(tmp_path_factory.mktemp("h5"))
    prepare_data(tiny_data, out, "DnCNN", "S", quiet=True)
    return out


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory):
    """test.py / demo.py export ONNX graphs for their default backend: into a session folder, not ~/.cache."""
    folder = str(tmp_path_factory.mktemp("onnx_cache"))
    previous = os.environ.get("DENOISE_ONNX_CACHE")
    os.environ["DENOISE_ONNX_CACHE"] = folder
    yield folder
    if previous is None:
        os.environ.pop("DENOISE_ONNX_CACHE", None)
    else:
        os.environ["DENOISE_ONNX_CACHE"] = previous


# The long checks: `make test` leaves them out (-m "not long"), `make test-all` runs them (-m long); the two
# together run every test once. What stays in `make test`: each module's functions on made-up inputs, the
# parity cases on three images, one short run of each script and wrapper. A pattern matches "file::test[params]",
# * standing for anything (docs/install-and-test.md, "The tests").
LONG_TESTS = (
    # demo.py --task jpeg / sr end to end (restore.py's functions keep their fast tests), a dncnn3 h5 refused
    "test_demo_tasks.py::test_jpeg_and_sr_tasks_write_what_dncnn3_gives",
    "test_train_tasks.py::test_dncnn3_h5_is_refused_by_a_denoising_run_and_the_reverse",
    # whole-set parity, the shipped weights' README figures, colour parity on McMaster
    "test_parity.py::test_reference_psnr[*Set12*]", "test_parity.py::test_reference_psnr[adnet/g50-*]",
    "test_shipped_weights.py::test_readme_figures_reproduce*",
    "test_shipped_weights.py::test_loads_folds_and_exports[A*]",
    "test_shipped_weights.py::test_loads_folds_and_exports[C*]",
    "test_colour.py::test_colour_parity_mcmaster*", "test_colour.py::test_colour_train_test_demo_onnx",
    "test_colour.py::test_real_noise_model_on_a_folder_of_noisy_photos",
    "test_tools.py::test_onnx_export_reference_checkpoints*", "test_backends.py::test_set12_psnr_same_on_both_*",
    "test_paper_protocols.py::test_paper_row*",  # the DnCNN paper's rows with the authors' models, whole sets
    # every Ascend command line, the wrappers' patch cache, the legacy launchers
    "test_reference_commands.py::*", "test_tools.py::test_wrappers_cache_patches_per_data_content",
    "test_distributed.py::test_legacy_*",
    # multi-process, multi-node, elastic, Slurm: ranks killed, hung and restarted
    "test_multinode.py::*", "test_elastic.py::*", "test_slurm.py::*",
    "test_distributed.py::test_hung_rank_*", "test_distributed.py::test_killed_rank_*",
    "test_distributed.py::test_two_process_training_writes_one_unwrapped_checkpoint",
    # resuming: killed, interrupted, in another precision, with other settings
    "test_train.py::test_kill_9_*", "test_train.py::test_resume_*", "test_device_logic.py::test_save_minutes_*",
    "test_device_logic.py::test_resume_in_another_precision_*", "test_train.py::test_h5_of_other_data_*",
    # the other models and modes' short runs, training's side outputs
    "test_train.py::test_short_training_runs_for_both_models_and_modes[ADNet-*]",
    "test_train.py::test_short_training_runs_for_both_models_and_modes[DnCNN-B-*]",
    "test_train.py::test_non_finite_loss_stops_with_a_message", "test_train.py::test_tensorboard_events_*",
    "test_step_parity.py::test_save_module_prefix_*", "test_tools.py::test_plot_from_log_and_from_events",
    # compile, bench.py's sections, the device check's table, memory reuse, precision and tiling at size
    "test_compile.py::test_compiled_step_equals_eager_*", "test_compile.py::test_auto_times_both_steps_*",
    "test_bench.py::test_cheap_sections_*", "test_bench.py::test_variants_section_*",
    "test_device_check.py::test_checks_fill_the_table_on_the_cpu", "test_device_logic.py::test_a_tuned_process_*",
    "test_tools.py::test_bf16_and_tiled_inference_stay_close", "test_photos.py::test_progress_advances_per_tile_*",
    "test_photos.py::test_out_of_memory_halves_the_tile", "test_tools.py::test_demo_writes_denoised_and_*",
    "test_photo_noise.py::test_photo_grid_scores_every_model_*",
    # the zoo at toy sizes (every model trained, then skipped), --max_minutes's stop and resume
    "test_zoo.py::test_toy_zoo_*", "test_zoo.py::test_max_minutes_*",
    "test_zoo.py::test_device_section_runs_the_device_step_at_toy_size",  # bench.py --only device on the CPU
    "test_backends.py::test_test_py_says_which_backend",  # test.py twice to read one line (the choice: fast tests)
    # DnCNN-3 (20 layers) and a clipped FDnCNN from preprocessing to checkpoint, through the command line
    "test_train_tasks.py::test_dncnn3_and_clipped_fdncnn_from_the_command_line",
)


def pytest_configure(config):
    config.addinivalue_line("markers", "long: a long check, run by make test-all and left out of make test")


def is_long(name):
    return any(re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), name) for pattern in LONG_TESTS)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if is_long(item.nodeid.split("tests/", 1)[-1]):
            item.add_marker(pytest.mark.long)
