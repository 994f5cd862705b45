"""The references' helpers and what every script shares: one-line user errors and the CLI's types, progress
lines, atomic files, the test noise protocol and the metrics (PSNR, SSIM)."""
import argparse
import os
import sys

import numpy as np

class UserError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""


class ArgParser(argparse.ArgumentParser):
    """argparse that reports a bad flag on a single line."""

    def error(self, message):
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(2)


def str2bool(value):
    if isinstance(value, bool):
        return value
    if value.lower() in ("1", "true", "yes", "y", "t"):
        return True
    if value.lower() in ("0", "false", "no", "n", "f"):
        return False
    raise argparse.ArgumentTypeError("expected True or False, got %r" % value)


def non_negative(kind):
    def parse(value):
        x = kind(value)
        if x < 0:
            raise argparse.ArgumentTypeError("must be >= 0, got %s" % value)
        return x
    return parse


def positive(kind):
    def parse(value):
        x = kind(value)
        if x <= 0:
            raise argparse.ArgumentTypeError("must be > 0, got %s" % value)
        return x
    return parse


def in_range(kind, low, high):
    def parse(value):
        x = kind(value)
        if not low <= x <= high:
            raise argparse.ArgumentTypeError("must be from %s to %s, got %s" % (low, high, value))
        return x
    return parse


def device_list(value):
    """--DeviceID: one device number, or a comma-separated list of them (the 8p launches)."""
    ids = value.split(",")
    if not all(i.strip().isdigit() for i in ids):
        raise argparse.ArgumentTypeError("expected a device number or a list like 0,1,2,3, got %r" % value)
    return ",".join(i.strip() for i in ids)


def add_legacy_flags(parser):
    """The Ascend ports' launch flags, accepted by every script (one set, shared).

    --DeviceID picks the CUDA/NPU device of a one-process run (the 8p launches: the list of devices); on CPU
    it means nothing and is ignored. --num_gpus / --gpu_use_num and --local_rank matter to train.py only
    (see its relaunch_legacy); --is_distributed is implied by them and accepted for the command lines.
    """
    g = parser.add_argument_group("Ascend ports' launch flags (accepted; see docs/ascend.md)")
    g.add_argument("--is_distributed", type=int, default=0, help="accepted; distribution follows --num_gpus")
    g.add_argument("--DeviceID", "--device-list", "--device_list", "--device_id", dest="device_list", type=device_list, default=None,
                   help="device id (8p: 0,1,...,7) on CUDA/NPU; ignored on CPU")
    g.add_argument("--num_gpus", "--gpu_use_num", "--world_size", "--worldsize", dest="num_gpus", type=int,
                   default=None, help="train.py: processes to train with")
    g.add_argument("--local_rank", type=int, default=None, help="train.py: this process's rank (ADNet's launch)")


def legacy_device_id(args):
    """The device a one-process run was pointed at with --DeviceID (the first of a list), or None."""
    return int(args.device_list.split(",")[0]) if getattr(args, "device_list", None) else None


def warn(message):
    sys.stderr.write("warning: %s\n" % message)


def run_cli(main, hard_exit=lambda: False):
    """Run main(); user errors become one line on stderr and a non-zero exit. hard_exit(): when true at the end,
    leave through os._exit once the streams are flushed, skipping the native libraries' teardown."""
    try:
        code = main() or 0
    except UserError as e:
        sys.stderr.write("error: %s\n" % e)
        code = 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = 130
    if hard_exit():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def progress(iterable, quiet=False, **kwargs):
    """tqdm bar, silent when stderr is no terminal or --quiet is given."""
    from tqdm import tqdm
    return tqdm(iterable, disable=quiet or not sys.stderr.isatty(), dynamic_ncols=True, **kwargs)


def say(message):
    """print() that leaves a progress bar on screen intact."""
    from tqdm import tqdm
    tqdm.write(message)
    sys.stdout.flush()


def shard(items, rank, world):
    """This rank's share of a list every rank builds alike: every world-th item from the rank's index, so
    each item goes to exactly one rank."""
    return list(items)[rank::world]


def add_test_noise(clean, sigma, seed=0):
    """The test protocol: seed the generator, then N(0, sigma/255) noise of the whole tensor's shape at once.

    Identical to ``torch.manual_seed(seed); torch.FloatTensor(*clean.shape).normal_(0, sigma/255)``: for one
    gray image (1, 1, H, W) the references' gray protocol, for three copies (3, 3, H, W) the ADNet authors'
    colour protocol.
    """
    import torch
    gen = torch.Generator().manual_seed(seed)
    noise = torch.empty(clean.shape, dtype=torch.float32).normal_(0, sigma / 255.0, generator=gen)
    return clean + noise


def stored_in_8_bits(img):
    """img (a tensor or an array in [0, 1] units) clipped and rounded to 8 bits, as a photo is stored
    (test.py --eight_bit)."""
    return (img.clip(0.0, 1.0) * 255.0).round() / 255.0


def eight_bit_noisy(clean, sigma, seed=0):
    """A clean (C, H, W) array with the test protocol's noise, stored in 8 bits; sigma 0: clean as it is."""
    import torch
    if sigma == 0:
        return clean
    return stored_in_8_bits(add_test_noise(torch.from_numpy(clean)[None], sigma, seed)[0].numpy())


def psnr(clean, estimate):
    from skimage.metrics import peak_signal_noise_ratio
    return float(peak_signal_noise_ratio(np.asarray(clean, np.float32), np.asarray(estimate, np.float32), data_range=1.0))


def _channels_last(img):
    """(C, H, W) -> (H, W) or (H, W, C) float32 for scikit-image; (H, W) stays."""
    img = np.asarray(img, np.float32)
    if img.ndim == 3:
        return img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
    return img


def ssim(clean, estimate):
    """scikit-image SSIM of (C, H, W) or (H, W) images, averaged over channels (7x7 window; a smaller odd
    window for images under 7 pixels, NaN under 3)."""
    from skimage.metrics import structural_similarity
    clean, estimate = _channels_last(clean), _channels_last(estimate)
    side = min(clean.shape[:2])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        return float("nan")
    return float(structural_similarity(clean, estimate, data_range=1.0, win_size=win,
                                       channel_axis=2 if clean.ndim == 3 else None))


def cal_psnr_ssim(label, estimate, border=0):
    """(PSNR, SSIM) as the DnCNN authors' Cal_PSNRSSIM.m scores, of H x W (x C) arrays on the 0-255 scale.

    `border` pixels shaved off each side; PSNR over all pixels (and channels) with peak 255; SSIM Wang's
    ssim_index (11x11 Gaussian window of sigma 1.5, K = 0.01 and 0.03, L = 255, the map where the window fits
    inside the image) averaged over the channels; NaN for images under 11 pixels a side (Wang's -Inf).
    """
    from skimage.metrics import structural_similarity
    a, b = np.asarray(label, np.float64), np.asarray(estimate, np.float64)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    mse = np.mean((a - b) ** 2)
    score = float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))
    if min(a.shape[:2]) < 11:
        return score, float("nan")
    # skimage's gaussian_weights SSIM is Wang's: the same window (truncate 3.5 x 1.5 -> 11 taps), population
    # variances, and a mean over the map cropped by the window's radius ('valid')
    channels = [(a, b)] if a.ndim == 2 else [(a[..., c], b[..., c]) for c in range(a.shape[2])]
    return score, float(np.mean([structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
                                                       use_sample_covariance=False, data_range=255.0)
                                 for x, y in channels]))


def batch_psnr(estimate, clean):
    """Mean PSNR over a batch of (N, C, H, W) tensors, as the references' batch_PSNR."""
    est = estimate.detach().float().cpu().numpy()
    ref = clean.detach().float().cpu().numpy()
    return sum(psnr(ref[i], est[i]) for i in range(est.shape[0])) / est.shape[0]


TEMP_MARK = ".tmp."  # atomic writes go to '<path>.tmp.<pid>' first


def temp_path(path):
    return "%s%s%d" % (path, TEMP_MARK, os.getpid())


def atomic_write_bytes(path, data):
    tmp = temp_path(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temp_files(folder):
    """Delete the '<name>.tmp.<pid>' files a killed writer left in folder; returns their names."""
    stale = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        stem, _, pid = name.rpartition(TEMP_MARK)
        if stem and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            os.remove(os.path.join(folder, name))
            stale.append(name)
    return stale


def atomic_save(obj, path):
    """torch.save to a temporary file, then rename: a crash never leaves a torn checkpoint."""
    import torch
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_path(path)
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
