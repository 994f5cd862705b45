"""Running a model over images: BN-folded inference copies, the backend (torch or ONNX Runtime), tiles sized by
the memory there is, out-of-memory retries, colour and gray, x8 self-ensemble, and the evaluation loop of
test.py and train.py's validation."""
import argparse
import math
import os

import cv2
import numpy as np
import torch

from checkpoints import load_model
from degrade import im2uint8
from device import add_device_flag, select_device, setup_host
from images import to_hwc
from models import ARCHS, FEATURES, denoise, fold_batchnorm, receptive_radius, unwrap, with_noise_map
from onnx_backend import OnnxRuntimeNet, onnxruntime_available
from photo_noise import DEBLOCK, apply_strength, choose_model, deblocks, read_noise
from precision import add_amp_flag, autocast, precision_bytes, precision_for
from utils import (UserError, add_test_noise, cal_psnr_ssim, legacy_device_id, non_negative, progress, psnr, ssim,
                   stored_in_8_bits, warn)

def inference_model(model, device, fold=True, channels_last=True):
    """Eval copy for inference: BN folded into the convs, channels_last, on the device."""
    net = fold_batchnorm(model) if fold else model.eval()
    net = net.to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


BACKENDS = ("auto", "torch", "onnxruntime")


def choose_backend(choice, device_type, dtype, ort_installed):
    """(backend, why). auto: ONNX Runtime for fp32 on a CPU when it is installed (faster than eager torch
    there: docs/performance.md), torch otherwise: half precision, CUDA, NPU."""
    if choice == "torch":
        return "torch", "--backend torch"
    runnable = device_type == "cpu" and dtype is None
    if choice == "onnxruntime":
        if not ort_installed:
            raise UserError("--backend onnxruntime: the onnxruntime package is not installed (pip install onnxruntime)")
        if not runnable:
            raise UserError("--backend onnxruntime runs fp32 on the CPU here: use --device cpu and --amp none, "
                            "or --backend torch")
        return "onnxruntime", "--backend onnxruntime"
    if not runnable:
        return "torch", "%s on %s" % ("half precision" if dtype is not None else "fp32", device_type)
    if not ort_installed:
        return "torch", "onnxruntime is not installed"
    return "onnxruntime", "fp32 on a CPU: ONNX Runtime runs these CNNs faster than eager torch"


def prepare_inference(args, weights, local_rank=0, local_world_size=1, announce=False):
    """test.py's and demo.py's one set-up: device, host, the model the weights describe and the net that runs
    it on the chosen backend, each decision said in one line. Returns (device, model, net, precision)."""
    device, precision = prepare_device(args, local_rank, local_world_size)
    model, net = load_net(args, weights, device, precision, announce)
    return device, model, net, precision


def prepare_device(args, local_rank=0, local_world_size=1):
    """(device, precision) for test.py and demo.py, the host set up for it."""
    device = select_device(args.device, local_rank=local_rank, device_id=legacy_device_id(args))
    setup_host(device, local_world_size)
    precision = precision_for(args.amp, device)
    if args.amp != "none":
        print("precision: %s" % precision)
    return device, precision


def load_net(args, weights, device, precision, announce=False):
    """(model, net): the model the weights describe and the net that runs it, the backend said in one line."""
    model = load_model(weights, args.arch, args.num_of_layers)
    if announce:
        print("Loading model %s ..." % model.checkpoint_path)
    if getattr(model, "output_note", None):
        print(model.output_note)
    net, why = inference_net(model, device, args.backend, precision.dtype, fold=not args.no_fold)
    print(why)
    return model, net


class ChosenNets:
    """The net for each photo under --logdir auto / demo.py's default: its noise read, a model chosen from the
    weights there are (photo_noise), each model loaded once."""

    def __init__(self, args, device, precision, available):
        self.args, self.device, self.precision, self.available = args, device, precision, available
        self.nets = {}

    def pick(self, noisy, noise_level=None, deblocked=False, reading=None):
        """(reading, choice) for a (C, H, W) float photo, no net loaded (demo.py --dry_run); noise_level fixes an
        FDnCNN's; reading: the photo's, where deblocks read it already."""
        reading = read_noise(noisy) if reading is None else reading
        if deblocked and reading.kind == "camera":
            # what a deblocked JPEG shows on its 2x2 means is what is left of its blocks, not a camera's noise
            reading = reading._replace(kind="white")
        try:
            return reading, choose_model(reading, noisy.shape[0], self.available, level=noise_level,
                                         strength=getattr(self.args, "strength", 1.0), deblocked=deblocked)
        except LookupError as e:
            raise UserError("%s (weights/get_reference_weights.sh fetches the references'; or pass a model)" % e)

    def net(self, name, why):
        if name not in self.nets:
            print("loading %s for %s" % (name, why))
            self.nets[name] = load_net(self.args, self.available[name], self.device, self.precision)[1]
        return self.nets[name]

    def choose(self, noisy, noise_level=None, deblocked=False, reading=None):
        """(reading, choice, net or None) for a (C, H, W) float photo."""
        reading, choice = self.pick(noisy, noise_level, deblocked, reading)
        if choice.name is None:
            return reading, choice, None
        return reading, choice, self.net(choice.name, choice.why)

    def deblocks(self, quality, noisy):
        """(whether a JPEG of this IJG quality (None: not a JPEG), decoded to the (C, H, W) `noisy`, is deblocked
        first, the photo's reading where the quality left photo_noise.deblocks the kind of noise to decide, else
        None)."""
        if DEBLOCK not in self.available:
            return False, None
        if deblocks(quality, "camera") == deblocks(quality, "white"):  # the kind of noise decides nothing
            return deblocks(quality, None), None
        reading = read_noise(noisy)
        return deblocks(quality, reading.kind), reading

    def denoise(self, noisy, quality=None, noise_level=None, **kwargs):
        """The per-photo default on a (C, H, W) float photo: a JPEG of low quality deblocked by DnCNN-3, then the
        noise read and the chosen model run (an FDnCNN told the level read, times the strength, or
        `noise_level`). kwargs: denoise_any's. Returns (output, reading, choice, deblocked)."""
        deblocked, reading = self.deblocks(quality, noisy)
        if deblocked:
            from restore import deblock  # restore runs models through this module
            noisy = deblock(self.net(DEBLOCK, "JPEG blocking"), noisy, self.device, amp=kwargs.get("amp"),
                            tile=kwargs.get("tile", 0), x8=kwargs.get("x8", False))
            reading = None
        return self.denoise_read(noisy, deblocked, noise_level, reading=reading, **kwargs)

    def denoise_read(self, noisy, deblocked=False, noise_level=None, reading=None, **kwargs):
        """denoise's second step: the noise read (unless `reading` is the photo's) and the chosen model run."""
        reading, choice, net = self.choose(noisy, noise_level, deblocked, reading)
        if net is None or choice.strength == 0 or choice.level == 0:
            return np.clip(noisy, 0.0, 1.0), reading, choice, deblocked
        out = denoise_any(net, noisy, self.device, sigma=choice.level, **kwargs)
        return apply_strength(noisy, out, 1.0 if choice.level is not None else choice.strength), reading, choice, \
            deblocked


def inference_net(model, device, backend="auto", dtype=None, fold=True):
    """(net, why): the model ready for denoise_image on the backend choose_backend picks."""
    chosen, why = choose_backend(backend, device.type, dtype, onnxruntime_available())
    if chosen == "onnxruntime":
        return OnnxRuntimeNet(model), "backend: onnxruntime (%s)" % why
    return inference_model(model, device, fold=fold), "backend: torch (%s)" % why


def dihedral(x, mode):
    """One of the eight flips/rotations of the last two axes (KAIR's augment_img modes, in another order)."""
    x = torch.rot90(x, mode % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if mode >= 4 else x


def undo_dihedral(x, mode):
    if mode >= 4:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, -(mode % 4), dims=(-2, -1))


@torch.inference_mode()
def denoise_image(net, noisy, device, amp=None, tile=0, channels_last=True, x8=False, on_tile=None, sigma=None):
    """Clean estimate for an (N, C, H, W) CPU tensor, whole or in overlapping tiles.

    sigma: the noise level an FDnCNN is told (0-255 scale; a number or an (H, W) map), ignored by other models.

    tile: 0 whole, N tiles of at most N pixels a side (the image split evenly), AUTO_TILE (-1) as memory
    allows (see auto_tile, tile_budget). Tiles overlap by the network's receptive radius, so tiled and whole
    outputs agree. Out of memory, the image is done again in tiles half the size (see retry_smaller_tiles).
    x8: KAIR's self-ensemble, the mean of the outputs for the eight flips/rotations of the input.
    on_tile(pixels): called after each tile (each pass, with x8) with the output pixels it finished.
    """
    h, w = noisy.shape[-2:]
    if getattr(unwrap(net), "noise_map", False) and noisy.shape[1] == unwrap(net).channels:
        if sigma is None:
            raise UserError("FDnCNN needs a noise level: pass --noise_level")
        noisy = with_noise_map(noisy, torch.as_tensor(sigma, dtype=torch.float32))
    if tile is None or tile < 0:
        tile = auto_tile(h, w, noisy.shape[1], tile_budget(device), precision_bytes(amp), receptive_radius(net),
                         live_maps=getattr(net, "live_feature_maps", LIVE_FEATURE_MAPS),
                         batch=noisy.shape[0])
    return retry_smaller_tiles(lambda t: _denoise(net, noisy, device, amp, t, channels_last, x8, on_tile),
                               tile, (h, w), device)


def _denoise(net, noisy, device, amp, tile, channels_last, x8, on_tile):
    if x8:
        outs = [undo_dihedral(_denoise(net, dihedral(noisy, m).contiguous(), device, amp, tile, channels_last, False,
                                       on_tile), m) for m in range(8)]
        return torch.stack(outs).mean(0)

    def run(x):
        x = x.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            y = denoise(net, x)
        return y.float().cpu()

    h, w = noisy.shape[-2:]
    if not tile or (h <= tile and w <= tile):
        out = run(noisy)
        if on_tile:
            on_tile(h * w)
        return out
    pad = receptive_radius(net)
    out = noisy.new_empty(noisy.shape[:1] + (unwrap(net).channels,) + noisy.shape[2:])
    for y0, y1 in tile_spans(h, tile):
        for x0, x1 in tile_spans(w, tile):
            ya, xa = max(0, y0 - pad), max(0, x0 - pad)
            yb, xb = min(h, y1 + pad), min(w, x1 + pad)
            piece = run(noisy[..., ya:yb, xa:xb])
            out[..., y0:y1, x0:x1] = piece[..., y0 - ya:y1 - ya, x0 - xa:x1 - xa]
            if on_tile:
                on_tile((y1 - y0) * (x1 - x0))
    return out


def tile_spans(length, tile):
    """[(start, end)] splitting `length` pixels evenly into the fewest spans of at most `tile` pixels (no thin
    last tile: its overlap would cost as much as a full one)."""
    count = -(-length // tile)
    size = -(-length // count)
    return [(s, min(s + size, length)) for s in range(0, length, size)]


# Bounded memory: the tile size is chosen from the memory there is.
AUTO_TILE = -1


CPU_WORKING_SET = 512 * 2 ** 20  # the CPU ceiling: a 48 MP photo denoises in about this much beside the image


MIN_TILE = 16


LIVE_FEATURE_MAPS = 2  # measured (peak RSS of DnCNN / ADNet inference, fp32 and bf16): a conv's input and output


def auto_tile(height, width, channels, bytes_available, precision_bytes=4, radius=17, batch=1,
              features=FEATURES, live_maps=LIVE_FEATURE_MAPS):
    """The largest tile side whose working set fits in bytes_available; 0 (the whole image) when it all fits.

    Working set per pixel of a (padded) tile: live_maps maps of `features` channels in the inference
    precision, and four fp32 copies of the image's channels (input, device copy, output, the tile's piece),
    times the batch. Never under MIN_TILE.
    """
    per_pixel = batch * (live_maps * features * precision_bytes + 4 * channels * 4)
    if height * width * per_pixel <= bytes_available:
        return 0
    side = math.isqrt(max(0, int(bytes_available) // per_pixel)) - 2 * radius
    return max(MIN_TILE, side)


def memory_available(device):
    """Bytes free for this process: the accelerator's free memory, or on CPU the RAM available (psutil if
    installed, else /proc/meminfo's MemAvailable); None when it cannot be told."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "npu":
        return torch.npu.mem_get_info(device)[0]
    try:
        import psutil
        return psutil.virtual_memory().available
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def tile_budget(device, available=None):
    """Bytes the tiles' working set may take: on CPU half the RAM available, at most CPU_WORKING_SET (so a
    large photo stays light beside other work); on CUDA/NPU 80 % of the device's free memory."""
    available = memory_available(device) if available is None else available
    if device.type == "cpu":
        return CPU_WORKING_SET if available is None else min(CPU_WORKING_SET, available // 2)
    return int(0.8 * available)


def is_out_of_memory(error):
    """CUDA's / NPU's / the CPU allocator's out-of-memory error."""
    if isinstance(error, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def release_memory(device):
    import gc
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "npu":
        torch.npu.empty_cache()


def retry_smaller_tiles(run, tile, size, device):
    """run(tile); out of memory, release what the failed attempt held and run again in tiles half the size
    (the whole image counting as one tile of its longer side), down to MIN_TILE."""
    while True:
        try:
            return run(tile)
        except Exception as e:  # noqa: BLE001 -- only out-of-memory is handled, the rest re-raised
            if not is_out_of_memory(e):
                raise
        # out of the except block: the failed attempt's frames and tensors are gone
        release_memory(device)
        longest = max(size)
        smaller = (min(tile, longest) if tile else longest) // 2
        if smaller < MIN_TILE:
            raise UserError("out of memory on %s even in %d-pixel tiles" % (device, min(tile, longest) if tile else longest))
        warn("out of memory on %s with %s: retrying in %d-pixel tiles"
             % (device, "%d-pixel tiles" % tile if tile else "the whole image", smaller))
        tile = smaller


GRAY_ON_COLOUR = ("channels", "luma")


def denoise_any(net, noisy, device, amp=None, tile=0, x8=False, gray_on_colour="channels", on_progress=None,
                sigma=None):
    """Denoise a (C, H, W) float image whatever its channels and the model's (sigma: FDnCNN's noise level, a
    number or an (H, W) map on the 0-255 scale).

    Same channels: as they are. Colour model, gray image: the gray repeated into three channels, the
    output averaged back to gray. Gray model, colour image, gray_on_colour: "channels" denoises each of B,
    G and R as a gray image; "luma" denoises its luma (YCrCb's Y) and keeps the chroma (docs/inference.md
    says which does better). on_progress(fraction): the fraction of this image's work just done.
    """
    want, have = unwrap(net).channels, noisy.shape[0]
    h, w = noisy.shape[-2:]
    if gray_on_colour not in GRAY_ON_COLOUR:
        raise UserError("gray_on_colour must be one of %s, not %r" % (", ".join(GRAY_ON_COLOUR), gray_on_colour))
    passes = 3 if (want, have, gray_on_colour) == (1, 3, "channels") else 1
    on_tile = None if on_progress is None else (lambda px: on_progress(px / (h * w * passes * (8 if x8 else 1))))
    run = lambda x: denoise_image(net, torch.from_numpy(np.ascontiguousarray(x))[None], device, amp, tile,  # noqa: E731
                                  x8=x8, on_tile=on_tile, sigma=sigma)[0].numpy()
    if want == have:
        return run(noisy)
    if want == 3:
        return run(np.repeat(noisy, 3, axis=0)).mean(0, keepdims=True)
    if gray_on_colour == "channels":
        out = np.empty(noisy.shape, np.float32)
        for c in range(3):
            out[c] = run(noisy[c:c + 1])[0]
        return out
    ycrcb = cv2.cvtColor(np.ascontiguousarray(to_hwc(noisy)), cv2.COLOR_BGR2YCrCb)
    ycrcb[:, :, 0] = run(ycrcb[None, :, :, 0])[0]
    return np.transpose(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR), (2, 0, 1))


def add_common_inference_flags(parser):
    parser.add_argument("--arch", choices=ARCHS, default=None, help="force the architecture (default: from the checkpoint)")
    parser.add_argument("--num_of_layers", type=non_negative(int), default=None,
                        help="check the DnCNN depth (read from the checkpoint)")
    add_device_flag(parser)
    add_amp_flag(parser, default="none")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="auto: ONNX Runtime for fp32 on a CPU when installed (exported once per weights, cached in "
                             "$DENOISE_ONNX_CACHE or ~/.cache/dncnn-adnet-onnx), else torch")
    parser.add_argument("--tile", type=tile_size, default=AUTO_TILE, metavar="auto|N",
                        help="auto (default): tiles as memory allows (on CPU a working set of at most %d MiB, on "
                             "CUDA/NPU the device's free memory; halved when out of memory); N: tiles of at most N "
                             "pixels; 0: whole images. Tiles overlap, so the output is the whole image's"
                             % (CPU_WORKING_SET // 2 ** 20))
    parser.add_argument("--strength", type=non_negative(float), default=1.0,
                        help="how much of the noise the model finds to remove: 1 (default) the model's output, or the "
                             "per-photo default's strength for the photo's noise (with FDnCNN: the level read off the "
                             "photo times this); under 1 lighter (0 keeps the photo), over 1 stronger")
    parser.add_argument("--noise_level", type=noise_level_flag, default=None, metavar="SIGMA|auto",
                        help="the noise level (0-255 scale) an FDnCNN is told, or auto: read off each image "
                             "(photo_noise.noise_level); default: the test noise --test_noiseL, auto when it is 0 "
                             "(the per-photo default: the level read off each photo; a number fixes it)")
    parser.add_argument("--x8", action="store_true",
                        help="self-ensemble: average the outputs for the 8 flips/rotations (8x slower, a little better)")
    parser.add_argument("--no_fold", action="store_true", help="keep batch-norm layers separate")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


AUTO_LEVEL = "auto"


def noise_level_flag(value):
    """--noise_level: 'auto' or a level >= 0."""
    if value.strip().lower() == AUTO_LEVEL:
        return AUTO_LEVEL
    return non_negative(float)(value)


def level_for(net, noisy, noise_level, sigma=0.0):
    """The level an FDnCNN is told for a (C, H, W) noisy image (None for other models): --noise_level as given,
    read off the image under auto, else the test sigma (auto when that is 0: the image is already noisy)."""
    if not getattr(unwrap(net), "noise_map", False):
        return None
    if noise_level is None:
        noise_level = sigma if sigma > 0 else AUTO_LEVEL
    if noise_level == AUTO_LEVEL:
        from photo_noise import noise_level as level_of
        return level_of(read_noise(np.asarray(noisy)))
    return float(noise_level)


def fixed_level(noise_level):
    """--noise_level as the per-photo default takes it: a number fixes FDnCNN's level, auto is its own reading."""
    return None if noise_level == AUTO_LEVEL else noise_level


def tile_size(value):
    """--tile: 'auto' (or -1), or a size >= 0 (0: whole images)."""
    if value.strip().lower() in ("auto", "-1"):
        return AUTO_TILE
    try:
        size = int(value)
    except ValueError:
        size = -2
    if size < 0:
        raise argparse.ArgumentTypeError("expected auto or a number of pixels >= 0, got %r" % value)
    return size


def evaluate_iter(net, images, sigma, device, amp=None, seed=0, tile=0, with_ssim=False, quiet=True, copies=1,
                  x8=False, total=None, chosen=None, eight_bit=False, strength=1.0, noise_level=None,
                  uint8_output=False):
    """Denoise each (path, clean CxHxW) of an iterable under the test noise protocol, yielding one row at a
    time (so a stream of images is never all in memory).

    copies: that many copies of the image in one batch, the noise drawn once for the whole batch after the
    seed, scores averaged over the copies (the ADNet authors' colour protocol uses 3, seed 12).
    sigma 0: the images are already noisy (real noise); no PSNR or SSIM.
    chosen (a ChosenNets): a net chosen per image from its noisy copy, net unused; the row gets the reading
    and the choice, whose strength replaces `strength` (photo_noise.apply_strength). eight_bit: the noisy image
    clipped and rounded to 8 bits, as a photo stored with its noise.
    noise_level: what an FDnCNN is told (level_for: default sigma; auto: read off each noisy image).
    uint8_output: scored as the DnCNN authors' demos score (Demo_test_DnCNN*.m): the output rounded to 8 bits
    (im2uint8), PSNR and SSIM as their Cal_PSNRSSIM (utils.cal_psnr_ssim) against the 8-bit image.
    Rows: name, path, psnr, (ssim), noisy and denoised (C, H, W) arrays of the first copy.
    """
    for path, clean in progress(images, quiet=quiet, desc="test", unit="img", total=total):
        batch = torch.from_numpy(clean)[None].repeat(copies, 1, 1, 1)
        noisy = add_test_noise(batch, sigma, seed) if sigma > 0 else batch
        if eight_bit:
            noisy = stored_in_8_bits(noisy)
        row = {"name": os.path.basename(path), "path": path, "psnr": None, "noisy": noisy[0].numpy()}
        if chosen is None:
            level = level_for(net, noisy[0].numpy(), noise_level, sigma)
            est = denoise_image(net, noisy, device, amp=amp, tile=tile, x8=x8, sigma=level).clamp(0.0, 1.0).numpy()
        else:
            est = []
            for copy in noisy.numpy():
                out, row["reading"], row["choice"], _ = chosen.denoise(copy, noise_level=fixed_level(noise_level),
                                                                       amp=amp, tile=tile, x8=x8)
                est.append(out)
            est, strength = np.stack(est), 1.0
        est = apply_strength(noisy.numpy(), est, strength)
        if uint8_output:
            est = im2uint8(est).astype(np.float32) / 255.0
        row["denoised"] = est[0]
        if sigma > 0 and uint8_output:
            scores = [cal_psnr_ssim(to_hwc(im2uint8(clean)), to_hwc(im2uint8(e))) for e in est]
            row["psnr"] = float(np.mean([p for p, _ in scores]))
            if with_ssim:
                row["ssim"] = float(np.mean([s for _, s in scores]))
        elif sigma > 0:
            row["psnr"] = float(np.mean([psnr(clean, e) for e in est]))
            if with_ssim:
                row["ssim"] = float(np.mean([ssim(clean, e) for e in est]))
        yield row


def evaluate_pairs(net, pairs, device, amp=None, tile=0, x8=False, quiet=True, total=None, chosen=None, strength=1.0,
                   noise_level=None):
    """Denoise each (name, noisy, clean) of an iterable of real pairs (images.iter_pairs) and score it against
    the clean image: PSNR over all its channels (a colour photo's colour PSNR) and SSIM averaged over them.
    A gray model denoises each channel of a colour photo. chosen: as evaluate_iter's. Rows as evaluate_iter's,
    plus the noisy input's PSNR."""
    for name, noisy, clean in progress(pairs, quiet=quiet, desc="test", unit="img", total=total):
        row = {"name": name, "path": name, "noisy_psnr": psnr(clean, noisy), "noisy": noisy}
        if chosen is not None:
            est, row["reading"], row["choice"], _ = chosen.denoise(noisy, noise_level=fixed_level(noise_level), amp=amp,
                                                                   tile=tile, x8=x8)
        else:
            est = noisy if net is None else apply_strength(
                noisy, denoise_any(net, noisy, device, amp=amp, tile=tile, x8=x8,
                                   sigma=level_for(net, noisy, noise_level)), strength)
        row.update(psnr=psnr(clean, est), ssim=ssim(clean, est), denoised=est)
        yield row


def evaluate(net, images, sigma, device, amp=None, seed=0, tile=0, with_ssim=False, quiet=True, copies=1, x8=False,
             eight_bit=False):
    """evaluate_iter's rows as a list (train.py's validation: a few small images)."""
    return list(evaluate_iter(net, images, sigma, device, amp=amp, seed=seed, tile=tile, with_ssim=with_ssim,
                              quiet=quiet, copies=copies, x8=x8, eight_bit=eight_bit))
