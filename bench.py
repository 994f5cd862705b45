"""Benchmarks: training and inference speed, reference-style vs this port. The tests only run the cheap
sections at toy sizes (tests/test_bench.py), to see that they print their tables; timings are never asserted.

    python bench.py                      # everything below, both models (make bench)
    python bench.py --only train         # train | malloc | fusion | eval | variants | preprocess | ceiling | models
    python bench.py --convergence        # bf16 vs fp32: same short run, validation PSNR
    python bench.py --only gray_on_colour   # a gray model on colour photos: luma only vs each of B, G, R (CBSD68)
    python bench.py --only photo         # one 12 MP photo through demo.py's default path: whole image vs tiles
    python bench.py --only device        # training on a GPU / NPU: patches/s, TFLOP/s, GB/s per batch and option

Reference-equivalent training = what SaoYan's / the ADNet authors' loops do: fp32, contiguous NCHW,
one h5 dataset per patch reopened for every sample, and a second (eval) forward per step to print a
training PSNR. The fast configuration is train.py's default (bf16 autocast where the CPU has AMX or
AVX512-BF16, channels_last, in-memory uint8 patches, one forward).
Figures are medians over the timed steps; the machine is shared, so compare ratios within one run.
"""
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from dataset import PATCH_DEFAULTS, open_h5, prepare_data
from models import build_model, denoise
from device import setup_host
from images import list_images
from inference import BACKENDS, denoise_image, inference_model
from onnx_backend import OnnxRuntimeNet
from precision import AMP_CHOICES, precision_for
from training import add_train_noise, patches_to_device
from utils import ArgParser, batch_psnr, run_cli

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_DATA = os.path.join(HERE, "..", "shared", "data")
SAOYAN = os.path.join(HERE, "..", "shared", "reference_weights", "saoyan")


def median_time(fn, steps, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(fns, rounds=5, warmup=1):
    """Median seconds of each function, timed in alternation (round 1: a, b, c; round 2: a, b, c; ...), so a
    drift of the machine's speed hits all of them alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, bucket in zip(fns, times):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def conv_flops_per_pixel(model):
    """Multiply-adds x2 of every conv, per output pixel (all convs here keep the resolution)."""
    return sum(2 * m.in_channels * m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
               for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def measured_conv_gflops(dtype, batch=128, size=40, backward=True):
    """GFLOP/s of a 64->64 3x3 convolution in `dtype`, channels_last, as in training: forward + both
    gradients (3 convolutions' work), or the forward alone."""
    dtype = dtype or torch.float32
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(dtype).to(memory_format=torch.channels_last)
    x = torch.randn(batch, 64, size, size, dtype=dtype).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(backward)
    grad = torch.ones(batch, 64, size, size, dtype=dtype).contiguous(memory_format=torch.channels_last)

    def step():
        if backward:
            conv(x).backward(grad)
        else:
            with torch.no_grad():
                conv(x)
    seconds = median_time(step, 5, 2)
    return (3 if backward else 1) * 2 * batch * size * size * 64 * 64 * 9 / seconds / 1e9


def model_conv_seconds(model, batch, size, dtype):
    """Seconds of a training step's convolutions alone: each conv of the model (its own channels, kernel,
    dilation) timed forward + backward at the training shape in `dtype`, channels_last, and summed; the
    first conv computes no input gradient, as in training. The model's own ceiling: what its step would
    take if batch norm, ReLU, the loss and Adam cost nothing."""
    dtype = dtype or torch.float32
    timed = {}
    total = 0.0
    for index, conv in enumerate(m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
        key = (conv.in_channels, conv.out_channels, conv.kernel_size, conv.dilation, conv.padding,
               conv.groups, conv.bias is not None, index == 0)
        if key not in timed:
            layer = torch.nn.Conv2d(*key[:3], padding=key[4], dilation=key[3], groups=key[5], bias=key[6])
            layer = layer.to(dtype).to(memory_format=torch.channels_last)
            x = torch.randn(batch, key[0], size, size, dtype=dtype).contiguous(memory_format=torch.channels_last)
            x.requires_grad_(index != 0)
            grad = torch.ones(batch, key[1], size, size, dtype=dtype).contiguous(memory_format=torch.channels_last)
            timed[key] = median_time(lambda: layer(x).backward(grad), 5, 2)
        total += timed[key]
    return total


def share_of_ceiling(arch, patches_u8, batch, amp, rounds, steps):
    """(step seconds, conv seconds, share): this port's eager step and the model's convolutions alone
    (model_conv_seconds) timed in alternating rounds, the share being the median of the rounds' ratios, so
    that the machine's drift between the two measurements does not move it."""
    model, size = build_model(arch), patches_u8.shape[-1]
    step_fn = fast_train_step(arch, patches_u8, batch, amp)
    step_fn()
    step_s, convs_s = [], []
    for _ in range(rounds):
        step_s.append(median_time(step_fn, steps, 1))
        convs_s.append(model_conv_seconds(model, batch, size, amp))
    share = statistics.median(c / s for c, s in zip(convs_s, step_s))
    return statistics.median(step_s), statistics.median(convs_s), share


def cpu_model_and_flags():
    """(model name, the instruction-set flags that decide conv speed) from /proc/cpuinfo."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
                if not line.strip():  # the first processor's block is enough
                    break
    except OSError:
        pass
    model = info.get("model name", os.uname().machine)
    if "cpu family" in info:  # virtual machines often name only the brand ("AMD EPYC")
        model += ", family %s model %s" % (info["cpu family"], info.get("model", "?"))
    flags = set(info.get("flags", "").split())
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return model, [f for f in wanted if f in flags]


def machine_summary():
    import cv2
    model, flags = cpu_model_and_flags()
    return ("# bench.py on %s (%s), %d cores, %d threads; torch %s, OpenCV %s; training precision: %s"
            % (model, " ".join(flags) or "no AVX2", os.cpu_count() or 1, torch.get_num_threads(), torch.__version__,
               cv2.__version__, precision_for("auto", torch.device("cpu"), training=True)))


# ----------------------------------------------------------------------------- reference-style data
def write_reference_h5(patches_u8, path):
    """The references' train.h5: one float32 dataset per patch."""
    import h5py
    with h5py.File(path, "w") as f:
        for i, p in enumerate(patches_u8):
            f.create_dataset(str(i), data=p.astype(np.float32) / 255.0)


class ReferenceDataset(torch.utils.data.Dataset):
    """SaoYan's Dataset: the h5 file is opened, read and closed for every sample."""

    def __init__(self, path):
        import h5py
        self.path = path
        with h5py.File(path, "r") as f:
            self.keys = list(f.keys())

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, index):
        import h5py
        with h5py.File(self.path, "r") as f:
            return torch.Tensor(np.array(f[self.keys[index]]))


def reference_train_fps(arch, patches_u8, batch, steps, warmup, tmp):
    path = os.path.join(tmp, "ref_%s.h5" % arch)
    write_reference_h5(patches_u8[:batch * (steps + warmup)], path)
    loader = torch.utils.data.DataLoader(ReferenceDataset(path), batch_size=batch, shuffle=True, num_workers=2)
    model = build_model(arch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = iter(loader)
    gen = torch.Generator().manual_seed(0)

    def step():
        clean = next(batches)
        noisy = add_train_noise(clean, "S", 25, gen)
        model.train()
        optimizer.zero_grad()
        loss = (denoise(model, noisy) - clean).pow(2).sum() / (2 * len(clean))
        loss.backward()
        optimizer.step()
        model.eval()  # the references' second forward, only to print a training PSNR
        with torch.no_grad():
            batch_psnr(denoise(model, noisy).clamp(0, 1), clean)
    return batch / median_time(step, steps, warmup)


def fast_train_step(arch, patches_u8, batch, amp, compiled=False):
    """One training step of this port's loop (channels_last, uint8 patches, Adam), eager or compiled as
    train.py compiles it."""
    device = torch.device("cpu")
    torch.manual_seed(0)
    model = build_model(arch).to(memory_format=torch.channels_last)
    net = torch.compile(model, dynamic=False) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    patches = torch.from_numpy(patches_u8)
    gen = torch.Generator().manual_seed(0)

    def step():
        idx = torch.randint(0, len(patches), (batch,), generator=gen)
        clean = patches_to_device(patches[idx], device)
        noisy = add_train_noise(clean, "S", 25, gen)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            estimate = denoise(net, noisy)
        ((estimate.float() - clean).pow(2).sum() / (2 * batch)).backward()
        optimizer.step()
    return step


def fast_train_fps(arch, patches_u8, batch, steps, warmup, amp):
    return batch / median_time(fast_train_step(arch, patches_u8, batch, amp), steps, warmup)


def eager_vs_compiled(arch, patches_u8, batch, steps, amp):
    """(eager patches/s, compiled patches/s, compile seconds): interleaved steps after one warm-up each;
    compile seconds = the compiled step's first call less an eager step."""
    eager, compiled = fast_train_step(arch, patches_u8, batch, amp), fast_train_step(arch, patches_u8, batch, amp, True)
    eager()
    start = time.perf_counter()
    compiled()
    first = time.perf_counter() - start
    t_eager, t_compiled = interleaved_medians([eager, compiled], steps, warmup=1)
    return batch / t_eager, batch / t_compiled, first - t_eager


def load_images(data_dir, count=8):
    from images import read_image
    files = list_images(data_dir)[:count] if os.path.isdir(data_dir) else []
    images = [read_image(f)[0] for f in files]
    if not images:  # no data set here: synthetic BSD68-sized images
        rng = np.random.RandomState(0)
        images = [rng.rand(321, 481).astype(np.float32) for _ in range(count)]
    return images


def training_patches(arch, data_dir, tmp):
    size = PATCH_DEFAULTS[(arch, "S")][0]
    if os.path.isdir(os.path.join(data_dir, "train")):
        prepare_data(data_dir, os.path.join(tmp, arch), arch, "S", patch_size=size, stride=20, quiet=True)
        with open_h5(os.path.join(tmp, arch, "train.h5")) as f:
            return f["data"][:4096]
    return synthetic_patches(size, 4096)


def synthetic_patches(size, count=1024):
    """Random uint8 training patches (1 x size x size): step timings need no real images."""
    return np.random.RandomState(0).randint(0, 256, (count, 1, size, size), dtype=np.uint8)


# ----------------------------------------------------------------------------- training on a GPU / NPU
# dense bf16 tensor peak (TFLOP/s) and memory bandwidth (TB/s) by the device's name, from the vendors' data sheets
DEVICE_PEAKS = {"H200": (989.0, 4.8), "H100": (989.0, 3.35), "A100": (312.0, 2.0), "V100": (125.0, 0.9)}
ACTIVATION_PASSES = 10  # a DnCNN layer's activation read or written ~10 times a step (conv, BN, ReLU, backward)


def device_peaks(name):
    """(TFLOP/s, TB/s) of a device by its name (torch.cuda.get_device_name), or (None, None)."""
    return next((peaks for key, peaks in DEVICE_PEAKS.items() if key in name), (None, None))


def train_step_work(model, size, dtype_bytes):
    """(FLOP, bytes) of one patch's training step: the convolutions' forward and both gradients, and every
    layer's activation moved ACTIVATION_PASSES times (batch norm's and ReLU's passes bound the step)."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    flop = 3 * conv_flops_per_pixel(model) * size * size
    moved = ACTIVATION_PASSES * sum(m.out_channels for m in convs) * size * size * dtype_bytes
    return flop, moved


def device_train_step(arch, patches, batch, dtype, device, compiled=False, channels_last=True):
    """One step of train.py's loop on a device, nothing on the host: uint8 patches resident there, indices and
    noise drawn there, autocast, Adam fused (foreach where fused is not there)."""
    torch.manual_seed(0)
    model = build_model(arch, channels=patches.shape[1]).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model, dynamic=False) if compiled else model
    try:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    except (RuntimeError, TypeError):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
    gen = torch.Generator(device=device).manual_seed(0)

    def step():
        idx = torch.randint(0, len(patches), (batch,), generator=gen, device=device)
        clean = patches_to_device(patches[idx], device, channels_last)
        noisy = add_train_noise(clean, "S", 25, gen)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            estimate = denoise(net, noisy)
        ((estimate.float() - clean).pow(2).sum() / (2 * batch)).backward()
        optimizer.step()
    return model, step


def synced_median(step, device, steps, warmup):
    from device import device_sync

    def timed():
        step()
        device_sync(device)
    device_sync(device)
    return median_time(timed, steps, warmup)


def bench_device(args, tmp):
    from device import select_device
    device = select_device(args.device)
    print("\n## Training on %s (patches/s, medians of %d synced steps)" % (device, args.steps))
    if device.type == "cpu" and args.device != "cpu":
        print("not run: no CUDA GPU or Ascend NPU here (bench.py --only device --device cpu runs it on the CPU)")
        return
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = device.type
    dtype = precision_for("auto", device, training=True).dtype
    flops_peak, tbs_peak = device_peaks(name)
    print("%s, %s; peaks: %s TFLOP/s bf16 dense, %s TB/s" % (name, dtype or "fp32", flops_peak or "?", tbs_peak or "?"))
    print("| model | patch | batch | option | patches/s | TFLOP/s | of peak | GB/s | of peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    options = {"eager": dict(), "compiled": dict(compiled=True), "eager NCHW": dict(channels_last=False)}
    for arch in args.archs:
        size = PATCH_DEFAULTS[(arch, "S")][0]
        patches = torch.from_numpy(synthetic_patches(size, args.device_patches)).to(device)
        for batch in args.batches:
            for option in args.device_options:
                model, step = device_train_step(arch, patches, batch, dtype, device, **options[option])
                fps = batch / synced_median(step, device, args.steps, 3 if options[option] else 2)
                flop, moved = train_step_work(model, size, 2 if dtype else 4)
                tflops, gbs = fps * flop / 1e12, fps * moved / 1e9
                share = lambda value, peak: "%.0f%%" % (100 * value / peak) if peak else "?"  # noqa: E731
                print("| %s | %dx%d | %d | %s | %.0f | %.1f | %s | %.0f | %s |" % (
                    arch, size, size, batch, option, fps, tflops, share(tflops, flops_peak), gbs,
                    share(gbs / 1e3, tbs_peak)), flush=True)
    print("TFLOP/s: the convolutions' forward and both gradients; GB/s: each layer's activation moved %d times "
          "a step (an estimate: batch norm's and ReLU's passes)" % ACTIVATION_PASSES)


# ----------------------------------------------------------------------------- sections
def bench_train(args, tmp):
    print("\n## Training, batch %d, sigma 25 (patches/s, median of %d steps)" % (args.batch, args.steps))
    amp = precision_for("auto", torch.device("cpu"), training=True).dtype
    name = "bf16" if amp else "fp32"
    print("| model | patch | reference-style fp32 | this port fp32 | ratio | this port %s | compiled %s | compile s "
          "| repaid after (steps) | ceiling | eager of ceiling | compiled of ceiling |" % (name, name))
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for arch in args.archs:
        patches = training_patches(arch, args.data, tmp)
        size = patches.shape[-1]
        ref = reference_train_fps(arch, patches, args.batch, max(2, args.steps // 2), 1, tmp)
        fp32 = fast_train_fps(arch, patches, args.batch, args.steps, 2, None)
        fast, compiled, compile_s = eager_vs_compiled(arch, patches, args.batch, args.steps, amp)
        saved = args.batch / fast - args.batch / compiled  # seconds per step
        repaid = "%.0f" % (2 * compile_s / saved) if saved > 0 else "never"  # train.py compiles twice (last batch)
        _, convs_s, share = share_of_ceiling(arch, patches, args.batch, amp, 3, max(2, args.steps // 2))
        print("| %s | %dx%d | %.1f | %.1f | %.2fx | %.1f | %.1f | %.0f | %s | %.1f | %.0f%% | %.0f%% |"
              % (arch, size, size, ref, fp32, fp32 / ref, fast, compiled, compile_s, repaid, args.batch / convs_s,
                 100 * share, 100 * share * compiled / fast), flush=True)
    print("ceiling = batch / the seconds of the model's convolutions alone (each timed forward + backward at the "
          "training shape in %s, channels_last, summed); the eager share is the median of 3 rounds timing the "
          "step and the convolutions in turn, the compiled share that times compiled / eager" % name)


def malloc_child(arch, tuned, batch, steps):
    """Run in a fresh process: this port's bf16/fp32 step with glibc's malloc as it comes or tuned."""
    if tuned:
        setup_host(torch.device("cpu"), training=True)
    size = PATCH_DEFAULTS[(arch, "S")][0]
    patches = synthetic_patches(size)
    print(fast_train_fps(arch, patches, batch, steps, 2, precision_for("auto", torch.device("cpu"), training=True).dtype))


def bench_malloc(args, tmp):
    print("\n## Host memory: training steps with glibc's malloc as it comes vs tuned (`setup_host`), batch %d, "
          "patches/s, %d rounds of fresh processes in turn (medians)" % (args.batch, args.rounds))
    print("| model | malloc as it comes | freed blocks kept | ratio |")
    print("|---|---|---|---|")
    for arch in args.archs:
        fps = {False: [], True: []}
        for _ in range(args.rounds):
            for tuned in (False, True):
                code = "import bench; bench.malloc_child(%r, %r, %d, %d)" % (arch, tuned, args.batch, args.steps)
                out = subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True, check=True)
                fps[tuned].append(float(out.stdout.split()[-1]))
        plain, kept = statistics.median(fps[False]), statistics.median(fps[True])
        print("| %s | %.1f | %.1f | %.2fx |" % (arch, plain, kept, kept / plain), flush=True)


def bn_relu_seconds(batch, size, dtype, rounds):
    """Seconds of one 64-channel BN + ReLU at the training shape, forward + backward, timed in turn: eager BN
    then in-place ReLU as the models run it, and BN alone. BN alone is what a perfectly fused BN+ReLU kernel
    would cost: the ReLU's passes folded into BN's own."""
    dtype = dtype or torch.float32
    bn = torch.nn.BatchNorm2d(64)
    x = torch.randn(batch, 64, size, size).to(dtype).contiguous(memory_format=torch.channels_last).requires_grad_()
    grad = torch.randn(batch, 64, size, size).to(dtype).contiguous(memory_format=torch.channels_last)

    def run(forward):
        def once():
            x.grad = bn.weight.grad = bn.bias.grad = None
            forward().backward(grad)
        return once
    return interleaved_medians([run(lambda: torch.relu_(bn(x))), run(lambda: bn(x))], rounds, warmup=2)


def bench_fusion(args, tmp):
    print("\n## What fusing BN + ReLU could buy, batch %d: one 64-channel BN + ReLU, forward + backward, ms "
          "(medians of %d interleaved rounds)" % (args.batch, 3 * args.rounds))
    amp = precision_for("auto", torch.device("cpu"), training=True).dtype
    print("| model | BN+ReLU layers | BN, then ReLU | BN alone (a perfect fusion) | step s | convs s | eager of ceiling "
          "| with a perfect fusion |")
    print("|---|---|---|---|---|---|---|---|")
    for arch in args.archs:
        model = build_model(arch)
        layers = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        size = PATCH_DEFAULTS[(arch, "S")][0]
        eager, bn_only = bn_relu_seconds(args.batch, size, amp, 3 * args.rounds)
        patches = synthetic_patches(size)
        step, convs, share = share_of_ceiling(arch, patches, args.batch, amp, 3, max(2, args.steps // 2))
        perfect = step - layers * (eager - bn_only)
        print("| %s | %d | %.2f | %.2f | %.3f | %.3f | %.0f%% | %.0f%% |"
              % (arch, layers, 1e3 * eager, 1e3 * bn_only, step, convs, 100 * share, 100 * share * step / perfect),
              flush=True)
    print("a perfect fusion = the step less each layer's ReLU passes (eager minus BN alone); PyTorch's CPU "
          "backends have no fused BN+ReLU training kernel")


def bench_eval(args, tmp):
    images = load_images(os.path.join(args.data, "Set68"), args.images or 8)
    bf16 = precision_for("bf16", torch.device("cpu")).dtype  # None where this CPU would emulate it
    print("\n## Inference on %d Set68 images (%dx%d), images/s, %d interleaved rounds (medians)"
          % ((len(images),) + images[0].shape + (args.rounds,)))
    print("| model | reference-style fp32 | torch fp32 | ONNX Runtime fp32 | ORT / torch | torch bf16 | best / reference |")
    print("|---|---|---|---|---|---|---|")
    device = torch.device("cpu")
    for arch in args.archs:
        torch.manual_seed(0)
        model = build_model(arch).eval()
        tensors = [torch.from_numpy(img)[None, None] for img in images]

        def reference():
            with torch.no_grad():
                for x in tensors:
                    denoise(model, x).clamp(0, 1)

        def ours(net, amp=None):
            return lambda: [denoise_image(net, x, device, amp=amp).clamp(0, 1) for x in tensors]
        fns = [reference, ours(inference_model(model, device)), ours(OnnxRuntimeNet(model))]
        if bf16:
            fns.append(ours(inference_model(model, device), bf16))
        rates = [len(images) / s for s in interleaved_medians(fns, args.rounds)]
        half = "%.2f" % rates[3] if bf16 else "(no fast bf16)"
        print("| %s | %.2f | %.2f | %.2f | %.2fx | %s | %.2fx |" % (arch, rates[0], rates[1], rates[2],
              rates[2] / rates[1], half, max(rates[1:]) / rates[0]), flush=True)


VARIANTS = (("DnCNN-20", "DnCNN"), ("DnCNN-3", "DnCNN"), ("FDnCNN", "FDnCNN"))  # all 20 layers, gray


def bench_variants(args, tmp):
    """DnCNN-3 (a 20-layer DnCNN) and FDnCNN (one more input channel: the noise level map) beside DnCNN-20 on
    test.py's inference path (denoise_image: BN folded, channels_last; an FDnCNN told sigma 25)."""
    images = load_images(os.path.join(args.data, "Set68"), args.images or 8)
    megapixels = sum(img.size for img in images) / 1e6
    print("\n## DnCNN-20, DnCNN-3 and FDnCNN, inference, s per megapixel on %d Set68 images (%.3f MP), fp32, %d "
          "interleaved rounds (medians)" % (len(images), megapixels, args.rounds))
    print("| model | torch s/MP | ONNX Runtime s/MP | torch / DnCNN-20 | ONNX Runtime / DnCNN-20 |")
    print("|---|---|---|---|---|")
    device = torch.device("cpu")
    tensors = [torch.from_numpy(img)[None, None] for img in images]
    fns = []
    for _, arch in VARIANTS:
        torch.manual_seed(0)
        model = build_model(arch, 1, 20).eval()
        for net in (inference_model(model, device), OnnxRuntimeNet(model)):
            fns.append(lambda net=net: [denoise_image(net, x, device, sigma=25.0) for x in tensors])
    per_mp = [s / megapixels for s in interleaved_medians(fns, args.rounds)]
    for k, (name, _) in enumerate(VARIANTS):
        torch_s, ort_s = per_mp[2 * k], per_mp[2 * k + 1]
        print("| %s | %.3f | %.3f | %.3f | %.3f |" % (name, torch_s, ort_s, torch_s / per_mp[0], ort_s / per_mp[1]),
              flush=True)


def bench_models(args, tmp):
    """What users weigh when they choose: parameters, conv FLOPs per pixel, peak memory of one inference."""
    print("\n## Models: parameters, FLOPs per pixel, peak RSS of one 481x321 fp32 inference (torch, BN folded)")
    print("| model | parameters | GFLOP per megapixel | peak RSS, MiB (above a process that only loads it) |")
    print("|---|---|---|---|")
    probe = ("import resource, sys, torch; sys.path.insert(0, %r); from models import build_model; "
             "from inference import inference_model, denoise_image; torch.manual_seed(0); "
             "net = inference_model(build_model(sys.argv[1]).eval(), torch.device('cpu')); "
             "x = torch.rand(1, 1, 321, 481); sys.argv[2] == '1' and denoise_image(net, x, torch.device('cpu')); "
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)") % os.path.dirname(os.path.abspath(__file__))
    for arch in args.archs:
        model = build_model(arch)
        rss = [int(subprocess.run([sys.executable, "-c", probe, arch, run], capture_output=True, text=True).stdout)
               for run in ("0", "1")]
        print("| %s | %s | %.0f | %.0f |" % (arch, format(sum(p.numel() for p in model.parameters()), ","),
                                             conv_flops_per_pixel(model) / 1e3, (rss[1] - rss[0]) / 1024), flush=True)


def reference_preprocess(data_dir, out, patch_size=40, stride=10):
    """The reference prepare_data (training part): float32 patches, one h5 dataset each."""
    import cv2
    import h5py
    from dataset import image_to_patches
    files = sorted(glob.glob(os.path.join(data_dir, "train", "*.png")))
    n = 0
    with h5py.File(out, "w") as f:
        for path in files:
            img = cv2.imread(path)
            h, w, _ = img.shape
            for s in (1, 0.9, 0.8, 0.7):
                scaled = cv2.resize(img, (int(h * s), int(w * s)), interpolation=cv2.INTER_CUBIC)
                scaled = np.float32(scaled[:, :, 0] / 255.0)
                for p in image_to_patches(scaled[None], patch_size, stride):
                    f.create_dataset(str(n), data=p.copy())
                    n += 1
    return n


def bench_preprocess(args, tmp):
    if not all(os.path.isdir(os.path.join(args.data, d)) for d in ("train", "Set12")):
        print("\n## Preprocessing: skipped (it needs %s/train and %s/Set12)" % (args.data, args.data))
        return
    print("\n## Preprocessing the DnCNN-S set (%s/train)" % args.data)
    start = time.perf_counter()
    reference_preprocess(args.data, os.path.join(tmp, "ref_train.h5"))
    ref = time.perf_counter() - start
    start = time.perf_counter()
    prepare_data(args.data, os.path.join(tmp, "ours"), "DnCNN", "S", quiet=True)
    ours = time.perf_counter() - start
    size = lambda p: os.path.getsize(p) / 2 ** 20  # noqa: E731
    print("| | seconds | train.h5 MiB |\n|---|---|---|")
    print("| reference-style | %.1f | %.0f |" % (ref, size(os.path.join(tmp, "ref_train.h5"))))
    print("| this port | %.1f | %.0f |" % (ours, size(os.path.join(tmp, "ours", "train.h5"))))
    print("speed-up %.1fx" % (ref / ours))


def bench_ceiling(args, tmp):
    print("\n## This machine's ceiling: one 64->64 3x3 convolution, batch %d, 40x40, channels_last, GFLOP/s" % args.batch)
    print("| precision | forward | forward + both gradients |\n|---|---|---|")
    dtypes = [("fp32", None)]
    if precision_for("bf16", torch.device("cpu")).dtype:  # bf16 only where the hardware has it
        dtypes.append(("bf16", torch.bfloat16))
    for name, dtype in dtypes:
        print("| %s | %.0f | %.0f |" % (name, measured_conv_gflops(dtype, args.batch, backward=False),
                                        measured_conv_gflops(dtype, args.batch)), flush=True)


def convergence(args, tmp):
    """Same seed, same steps, cosine lr to ~0, fp32 vs bf16: validation PSNR on Set12 (sigma 25)."""
    import re
    if not os.path.isdir(os.path.join(args.data, "train")):
        print("convergence needs %s/train" % args.data)
        return
    print("\n## bf16 vs fp32 training: DnCNN-S, batch %d, %d steps, same seed" % (args.batch, args.conv_steps))
    h5 = os.path.join(tmp, "conv_h5")
    prepare_data(args.data, h5, "DnCNN", "S", quiet=True)
    for amp in ("none", "bf16"):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "train.py", "--h5_dir", h5, "--outf", os.path.join(tmp, "conv_" + amp),
                              "--amp", amp, "--batchSize", str(args.batch), "--max_steps", str(args.conv_steps),
                              "--tensorboard", "False", "--quiet", "--log_every", "1000", "--lr_schedule", "cosine"],
                             capture_output=True, text=True, cwd=os.path.dirname(os.path.abspath(__file__)))
        psnr = re.search(r"best PSNR_val: ([\d.]+)", out.stdout)
        print("%s: PSNR_val %s dB, %.0f s" % (amp, psnr.group(1) if psnr else "failed: " + out.stderr[-300:],
                                              time.perf_counter() - start), flush=True)


def bench_gray_on_colour(args, tmp):
    """SaoYan's gray DnCNN-S (the sigma's own) and DnCNN-B on CBSD68 in colour, both ways demo.py can run a
    gray model on a colour photo. Protocol: read BGR, add_test_noise(clean, sigma, seed=0) on the whole
    (1, 3, H, W) tensor, output clamped to [0, 1], PSNR over the colour image, averaged over the set."""
    from checkpoints import load_model
    from images import read_image
    from inference import denoise_any
    from utils import add_test_noise, psnr
    folder = os.path.join(args.data, "CBSD68")
    files = list_images(folder)[:args.images or None]
    device = torch.device("cpu")
    print("\n## Gray model on colour photos: %s, %d images, fp32, PSNR (dB) over the colour image" % (folder, len(files)))
    print("| checkpoint | sigma | noisy | luma (Y denoised, chroma kept) | channels (B, G, R each denoised) | channels - luma | seconds |")
    print("|---|---|---|---|---|---|---|")
    for sigma in args.sigmas:
        for name in ("DnCNN-S-%d" % sigma, "DnCNN-B"):
            path = os.path.join(args.weights, name)
            if not os.path.exists(path):
                print("| %s | %d | (no %s) | | | | |" % (name, sigma, path), flush=True)
                continue
            net = inference_model(load_model(path), device)
            start = time.perf_counter()
            scores = {"noisy": [], "luma": [], "channels": []}
            for f in files:
                clean = read_image(f, 3)
                noisy = add_test_noise(torch.from_numpy(clean)[None], sigma, seed=0)[0].numpy()
                scores["noisy"].append(psnr(clean, np.clip(noisy, 0, 1)))
                for mode in ("luma", "channels"):
                    out = denoise_any(net, noisy, device, gray_on_colour=mode)
                    scores[mode].append(psnr(clean, np.clip(out, 0, 1)))
            mean = {k: float(np.mean(v)) for k, v in scores.items()}
            print("| %s | %d | %.4f | %.4f | %.4f | %+.4f | %.0f |" % (
                name, sigma, mean["noisy"], mean["luma"], mean["channels"], mean["channels"] - mean["luma"],
                time.perf_counter() - start), flush=True)


def synthetic_photo(height=3000, width=4000, seed=0):
    """A 12 MP colour 'photo': smooth colour fields with edges and a little noise, uint8 BGR."""
    import cv2
    rng = np.random.RandomState(seed)
    small = rng.rand(height // 100, width // 100, 3).astype(np.float32)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    img[height // 3:height // 2, width // 4:width // 2] *= 0.5  # a block with hard edges
    img += rng.randn(height, width, 3).astype(np.float32) * 0.05
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def bench_photo(args, tmp):
    """demo.py on one 12 MP photo (by default the model demo.py chooses for it, --amp auto), whole image
    (--tile 0) vs the default (--tile auto): wall and CPU seconds
    and peak RSS of the process (os.wait4's rusage of that child alone; CPU time is less swayed by other jobs
    on a shared machine)."""
    import cv2
    folder = os.path.join(tmp, "photo")
    os.makedirs(folder, exist_ok=True)
    cv2.imwrite(os.path.join(folder, "photo.png"), synthetic_photo())
    amp = [] if args.photo_amp is None else ["--amp", args.photo_amp]
    print("\n## demo.py on one 4000x3000 colour photo, %s, --test_noiseL 0, --amp %s, %s threads"
          % (args.photo_weights, args.photo_amp or "as demo.py's default", os.environ.get("OMP_NUM_THREADS", "all")))
    print("| --backend | --tile | seconds | s/MP | CPU seconds (user + system) | peak RSS (MiB) |\n|---|---|---|---|---|---|")
    megapixels = 4000 * 3000 / 1e6
    for backend in args.photo_backends:
        for tile in args.photo_tiles:
            chosen = [] if args.photo_weights == "auto" else ["--demo_pth_path", args.photo_weights]
            cmd = [sys.executable, os.path.join(HERE, "demo.py"), "--demo_img_path", folder] + chosen + [
                   "--test_noiseL", "0", "--out", os.path.join(tmp, "out_%s_%s" % (backend, tile)),
                   "--tile", tile, "--backend", backend, "--no_compare", "--quiet"] + amp
            start = time.perf_counter()
            child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - start
            print("| %s | %s | %.1f | %.2f | %.1f | %.0f |%s"
                  % (backend, tile, seconds, seconds / megapixels, usage.ru_utime + usage.ru_stime,
                     usage.ru_maxrss / 1024, "" if status == 0 else " failed"), flush=True)
    print_photo_floor(args, photo_pixels=cv2.imread(os.path.join(folder, "photo.png")), megapixels=megapixels)


def photo_model(weights, photo):
    """The checkpoint demo.py runs on `photo` (H, W, 3 uint8): --photo_weights, or its default's choice."""
    from checkpoints import load_model
    from images import pixels_to_float
    from photo_noise import available_weights, choose_model, read_noise
    if weights == "auto":
        weights = choose_model(read_noise(pixels_to_float(photo)), 3, available_weights()).weights
    return load_model(weights)


def print_photo_floor(args, photo_pixels, megapixels):
    """The least time the photo's model can take on this machine: its convolutions' arithmetic at what one
    64->64 3x3 convolution reaches here (forward, batch 1, 256x256), ignoring tiles' overlap, activations and I/O."""
    flops_per_pixel = conv_flops_per_pixel(photo_model(args.photo_weights, photo_pixels))
    dtypes = [("fp32", None)] + ([("bf16", torch.bfloat16)] if precision_for("bf16", torch.device("cpu")).dtype else [])
    for name, dtype in dtypes:
        gflops = measured_conv_gflops(dtype, batch=1, size=256, backward=False)
        floor = megapixels * 1e6 * flops_per_pixel / gflops / 1e9
        print("arithmetic floor, %s: %.2f GFLOP per MP at %.0f GFLOP/s (one 64->64 conv, forward) = %.1f s for the "
              "photo" % (name, flops_per_pixel / 1e3, gflops, floor), flush=True)

def main(argv=None):
    p = ArgParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=SHARED_DATA if os.path.isdir(SHARED_DATA) else "data")
    p.add_argument("--only", nargs="+", choices=("train", "malloc", "fusion", "eval", "variants", "preprocess",
                                                 "ceiling", "models", "gray_on_colour", "photo", "device"),
                   default=None, help="these sections only (gray_on_colour, photo and device run only when named)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the inference comparison")
    p.add_argument("--weights", default=SAOYAN, help="gray_on_colour: folder of SaoYan's DnCNN-S-15/25/50, DnCNN-B")
    p.add_argument("--sigmas", type=int, nargs="+", default=[15, 25, 50])
    p.add_argument("--images", type=int, default=0, help="gray_on_colour: the first N images only (0: all); eval: N images (0: 8)")
    p.add_argument("--photo_weights", default="auto",
                   help="photo: weights for demo.py (auto: demo.py's default, the model chosen for the photo)")
    p.add_argument("--photo_tiles", nargs="+", default=["0", "auto"])
    p.add_argument("--photo_amp", default=None, choices=AMP_CHOICES, help="photo: demo.py's --amp (default: its own)")
    p.add_argument("--photo_backends", nargs="+", default=["torch", "onnxruntime"], choices=BACKENDS)
    p.add_argument("--archs", nargs="+", default=["DnCNN", "ADNet"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=6, help="timed training steps per configuration")
    p.add_argument("--device", default="auto", help="device: auto (a GPU / NPU if there is one), cuda, npu, cpu")
    p.add_argument("--batches", type=int, nargs="+", default=[128, 256, 512], help="device: batch sizes")
    p.add_argument("--device_options", nargs="+", default=["eager", "compiled", "eager NCHW"],
                   choices=("eager", "compiled", "eager NCHW"), help="device: the step's variants")
    p.add_argument("--device_patches", type=int, default=65536, help="device: resident patches")
    p.add_argument("--convergence", action="store_true")
    p.add_argument("--conv_steps", type=int, default=300)
    args = p.parse_args(argv)
    setup_host(torch.device("cpu"), training=True)  # as train.py: its sections time training steps
    print(machine_summary())
    with tempfile.TemporaryDirectory() as tmp:
        if args.convergence:
            convergence(args, tmp)
            return 0
        sections = {"ceiling": bench_ceiling, "models": bench_models, "train": bench_train, "malloc": bench_malloc,
                    "fusion": bench_fusion, "eval": bench_eval, "variants": bench_variants,
                    "preprocess": bench_preprocess, "gray_on_colour": bench_gray_on_colour, "photo": bench_photo,
                    "device": bench_device}
        for name, fn in sections.items():
            if name in (args.only or ()) or (args.only is None and name not in ("gray_on_colour", "photo", "device")):
                fn(args, tmp)
    return 0


if __name__ == "__main__":
    run_cli(main)
