"""What a training run needs beside its loop: the learning-rate schedule, the noise generator, throughput,
whether to compile the step, checkpoints and the reporter (log file, console, TensorBoard)."""
import math
import os
import shutil
import statistics

import torch
from torch.utils.data import DistributedSampler

from checkpoints import read_checkpoint_file
from utils import UserError, atomic_save, say, str2bool

WARMUP_STEPS = 5  # steps left out of the FPS figure (allocator, oneDNN kernel selection)

# --compile auto: compiling the training step takes tens of seconds, twice per run (the full batch, then an
# epoch's shorter last batch), and saves a few per cent per step where it pays (docs/training.md), so it needs
# runs of about a thousand steps to repay itself
COMPILE_MIN_STEPS = 1000


def auto_or_bool(value):
    """--compile, --patches_on_device: auto, or a yes/no."""
    return "auto" if str(value).lower() == "auto" else str2bool(value)


def compiler_ready(device_type):
    """(ready, why): whether torch.compile's default backend can build code for this device here."""
    if device_type == "cpu":
        cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
        return (True, "inductor with %s" % cxx) if cxx else (False, "no C++ compiler for inductor's CPU code")
    if device_type == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:
            return False, "this torch cannot tell whether Triton is installed"
        return (True, "inductor with Triton") if has_triton() else (False, "Triton is not installed")
    return False, "torch.compile's inductor does not build for %s devices" % device_type


def compile_policy(choice, device_type, steps_left, ready, apex=False, min_steps=COMPILE_MIN_STEPS):
    """(decision, why) for the training step: "on", "off", or "measure" (time eager and compiled steps at the
    start and keep the faster: what compiling gains differs from one machine and precision to the next).
    choice: True/False as asked, or "auto": "measure" when the device's compiler is ready, apex is not
    patching the model and at least min_steps steps are left to repay the compile time, "off" otherwise.
    ready: compiler_ready(device_type)."""
    if choice != "auto":
        return ("on" if choice else "off"), "--compile %s" % bool(choice)
    ok, why = ready
    if not ok:
        return "off", why
    if apex:
        return "off", "apex O2 patches the model's forward, which torch.compile does not trace"
    if steps_left < min_steps:
        return "off", "%d steps left: compiling repays itself after about %d" % (steps_left, min_steps)
    return "measure", "%d steps left, %s" % (steps_left, why)


def lr_at(args, epoch, step, total_steps):
    """The references' step schedule (DnCNN: /10 at the milestone; ADNet: /10 per 30 epochs past it), or cosine."""
    if args.lr_schedule == "cosine":
        progress = min(1.0, step / max(1, total_steps))
        return args.lr_min + 0.5 * (args.lr - args.lr_min) * (1 + math.cos(math.pi * progress))
    if args.arch == "ADNet":  # ADNet: epoch <= 30 full, then /10, /100, /1000 (0-based epoch index)
        return args.lr / 10 ** min(3, sum(epoch > k * args.milestone for k in (1, 2, 3)))
    return args.lr if epoch < args.milestone else args.lr / 10.0


def noise_generator(seed, rank, step, device=torch.device("cpu")):
    """Noise depends only on (seed, rank, step): every rank differs, and a resumed run draws the same. The
    generator lives on the training device, so the noise is drawn there (another device draws other noise)."""
    return torch.Generator(device=device).manual_seed((seed * 1_000_003 + rank * 7_919 + step) % (2 ** 63))


class Throughput:
    """Patches per second over the steps after each epoch's warm-up (over all steps while there are none)."""

    def __init__(self, batch_size, warmup=WARMUP_STEPS):
        self.batch_size, self.warmup = batch_size, warmup
        self.steps = self.seconds = self.all_steps = self.all_seconds = self.last = 0

    def update(self, seconds, step_in_epoch):
        self.last = seconds
        self.all_steps, self.all_seconds = self.all_steps + 1, self.all_seconds + seconds
        if step_in_epoch > self.warmup:
            self.steps, self.seconds = self.steps + 1, self.seconds + seconds

    def per_second(self):
        steps, seconds = (self.steps, self.seconds) if self.seconds else (self.all_steps, self.all_seconds)
        return self.batch_size * steps / seconds if seconds else 0.0


class StepRace:
    """--compile auto on a long run: the first steps alternate eager and compiled (the first two untimed: warm-up
    and compile), then the faster is kept, by the median of `rounds` timed steps each. Measured, not assumed:
    the gain differs in sign from one CPU to another (docs/performance.md)."""

    MARGIN = 0.02  # the compiled step must be this much faster: a tie keeps the eager one (no recompiles)

    def __init__(self, eager, compiled, rounds=3):
        self.nets = {"eager": eager, "compiled": compiled}
        self.schedule = ["eager", "compiled"] * (rounds + 1)
        self.times = {"eager": [], "compiled": []}
        self.turn = 0

    @property
    def current(self):
        return self.schedule[self.turn]

    def net(self):
        return self.nets[self.current]

    def record(self, seconds):
        if self.turn >= 2:
            self.times[self.current].append(seconds)
        self.turn += 1

    @property
    def done(self):
        return self.turn >= len(self.schedule)

    def medians(self):
        return statistics.median(self.times["eager"]), statistics.median(self.times["compiled"])

    @classmethod
    def verdict(cls, eager_s, compiled_s, rounds):
        """(compile, why) from the two median step times."""
        faster = compiled_s < eager_s * (1 - cls.MARGIN)
        return faster, "compiled step %.3f s vs eager %.3f s, medians of %d: %s" % (
            compiled_s, eager_s, rounds, "compiled kept" if faster else "eager kept")


# ----------------------------------------------------------------------------- batches and training noise
class PatchBatches:
    """Batches of a uint8 patch tensor for one rank: a DistributedSampler order, sliced per batch.

    No per-sample Python work: each batch is one fancy-index of the in-memory tensor. labels (a tensor of one
    value per patch, on the patches' device): each batch is (patches, their labels).
    """

    def __init__(self, patches, batch_size, rank=0, world_size=1, seed=0, drop_last=False, labels=None):
        self.patches, self.labels = patches, labels
        self.batch_size = batch_size
        self.sampler = DistributedSampler(range(len(patches)), num_replicas=world_size, rank=rank,
                                          shuffle=True, seed=seed, drop_last=drop_last)
        self.drop_last = drop_last

    def set_epoch(self, epoch):
        self.sampler.set_epoch(epoch)

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(self, skip=0):
        order = torch.as_tensor(list(self.sampler)).to(self.patches.device)  # on the patches' device: no sync
        for b in range(skip, len(self)):
            index = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.patches[index] if self.labels is None else (self.patches[index], self.labels[index])


RESIDENT_SHARE = 0.25  # patches go to the device when they take at most this share of its free memory


def patches_stay_on_device(choice, device_type, patch_bytes, free_bytes, share=RESIDENT_SHARE):
    """(keep the uint8 patches in the device's memory, why) for --patches_on_device auto|True|False: each batch
    is then indexed there (no host work, no copy per step). auto: on a GPU or NPU when the patches take at
    most `share` of its free memory (the rest is the model's, the activations' and the allocator's)."""
    if device_type == "cpu":
        return False, "patches in host memory (CPU run)"
    if choice in (True, False):
        return choice, "--patches_on_device %s" % choice
    if free_bytes is None:
        return False, "patches in host memory: the device's free memory cannot be told"
    fits = patch_bytes <= share * free_bytes
    return fits, "patches %s device memory (%.2f GB, %.0f%% of its free %.1f GB)" % (
        "in" if fits else "in host memory, too large for", patch_bytes / 1e9, 100.0 * patch_bytes / free_bytes,
        free_bytes / 1e9)


def patches_to_device(batch_u8, device, channels_last=True, dtype=torch.float32):
    """uint8 patches -> float in [0, 1] on the device (converted there, so transfers stay small)."""
    x = batch_u8.to(device, non_blocking=True).to(dtype).div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def train_noise_draws(shape, gen):
    """The random numbers behind one batch's training noise: unit normals of the batch's shape and one uniform
    [0, 1) per patch (mode B's sigma), drawn where the generator lives (on a GPU or NPU: no host work)."""
    return (torch.randn(shape, generator=gen, dtype=torch.float32, device=gen.device),
            torch.rand(shape[0], generator=gen, device=gen.device))


def add_train_noise(clean, mode, sigma, gen=None, sigma_range=(0.0, 55.0), draws=None, with_sigma=False):
    """S: fixed sigma; B: one sigma per patch, uniform in sigma_range. The random numbers come from gen, or are
    given as draws (unit normals, per-patch uniforms: see train_noise_draws). with_sigma: (noisy, each patch's
    sigma as an (N, 1, 1, 1) tensor on the 0-255 scale), what an FDnCNN is told."""
    unit, uniform = draws if draws is not None else train_noise_draws(clean.shape, gen)
    if mode == "B":
        low, high = sigma_range
        level = (low + (high - low) * uniform).view(-1, 1, 1, 1)  # np.random.uniform's formula
        scale = level / 255.0
    else:
        scale = sigma / 255.0
        level = torch.full((clean.shape[0], 1, 1, 1), float(sigma), device=unit.device) if with_sigma else None
    noise = (unit * scale).to(clean.device, non_blocking=True)
    if clean.is_contiguous(memory_format=torch.channels_last):
        noise = noise.contiguous(memory_format=torch.channels_last)
    return (clean + noise, level.to(clean.device, non_blocking=True)) if with_sigma else clean + noise


# ----------------------------------------------------------------------------- checkpoints
CHECKPOINT = "checkpoint.pth"
WEIGHTS_DEPEND_ON = ("arch", "num_of_layers", "mode", "channels", "task", "clip")  # what weights and patches depend on


def save_checkpoint(state, outf, name=CHECKPOINT):
    """The whole training state (train.py's Trainer.state()), written atomically."""
    atomic_save(state, os.path.join(outf, name))


def save_weights(weights, outf, is_best, module_prefix=False):
    """net.pth, and best_model.pth when the epoch is the best so far; with module_prefix the keys carry
    DataParallel's 'module.' (for the references' own test.py)."""
    if module_prefix:
        weights = {"module." + k: v for k, v in weights.items()}
    if is_best:
        atomic_save(weights, os.path.join(outf, "best_model.pth"))
    atomic_save(weights, os.path.join(outf, "net.pth"))


def resume_path(args):
    return os.path.join(args.outf, CHECKPOINT) if args.resume == "auto" else args.resume


def read_training_checkpoint(path, args):
    """A checkpoint.pth of train.py that fits this run's model and patches, or a UserError saying why not."""
    ckpt = read_checkpoint_file(path)
    if not isinstance(ckpt, dict) or "optimizer" not in ckpt or "model" not in ckpt:
        raise UserError("--resume: %s is not a training checkpoint of train.py (use its checkpoint.pth)" % path)
    saved = ckpt.get("args", {})
    for key in WEIGHTS_DEPEND_ON:
        if key in saved and saved[key] != getattr(args, key) and not (key == "num_of_layers" and args.arch == "ADNet"):
            raise UserError("--resume: %s was trained with --%s %s, this run asks for %s"
                            % (path, key, saved[key], getattr(args, key)))
    return ckpt


def elastic_restart(device, world):
    """(restart number, max restarts) when torchrun restarted this run's workers after a failure, else None.

    Each node's agent counts its own restarts (one whose workers were restarted because another node's failed
    may count none), so the ranks agree on the largest count: every rank resumes, or none."""
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if world > 1:
        counts = torch.tensor([float(restarts)], device=device)  # fp32: HCCL has no fp64 or integer MAX here
        torch.distributed.all_reduce(counts, op=torch.distributed.ReduceOp.MAX)
        restarts = int(counts.item())
    return (restarts, os.environ.get("TORCHELASTIC_MAX_RESTARTS", "?")) if restarts > 0 else None


# ----------------------------------------------------------------------------- reporting
class Reporter:
    """Rank 0's log lines (console, OUTF/train.log) and TensorBoard events; other ranks say nothing."""

    def __init__(self, outf, is_main, tensorboard=False):
        self.outf, self.is_main, self.writer = outf, is_main, None
        if is_main and tensorboard:
            from tensorboardX import SummaryWriter
            self.writer = SummaryWriter(outf)

    def log(self, msg):
        if self.is_main:
            say(msg)  # keeps a progress bar (terminal only) below the log lines
            with open(os.path.join(self.outf, "train.log"), "a") as f:
                f.write(msg + "\n")

    def scalars(self, step, **values):
        if self.writer:
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)

    def images(self, step, tagged):
        if self.writer:
            for tag, img in tagged:
                self.writer.add_image(tag, img[::-1].copy(), step)  # BGR -> RGB (gray: as it is)

    def close(self):
        if self.writer:
            self.writer.close()
