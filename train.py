"""Train DnCNN, FDnCNN or ADNet: mixed precision, channels_last, DistributedDataParallel, resumable.

    python train.py --arch DnCNN --mode S --noiseL 25 --outf logs/DnCNN-S-25      # one process
    python train.py --arch FDnCNN --preprocess True --outf logs/FDnCNN            # told sigma, 0-75 per patch
    python train.py --task dncnn3 --preprocess True --h5_dir h5/dncnn3 --outf logs/DnCNN-3   # noise, SR, JPEG
    torchrun --nproc_per_node=8 train.py --arch ADNet ...                          # 8 processes
"""
import os
import sys
import time
from types import SimpleNamespace

import torch
import torch.nn as nn

from camera_noise import DEFAULT_PROFILE, PROFILES as CAMERA_PROFILES, add_camera_noise
from checkpoints import load_model, plain_state_dict
from dataset import (KIND_NOISE, ensure_patches, load_train_kinds, load_train_patches, load_val_images, patch_key,
                     patch_spec)
from device import add_device_flag, device_sync, dist_env, init_distributed, select_device, setup_host
from inference import evaluate, inference_model, memory_available
from models import FDNCNN_LAYERS, INITS, build_model, denoise, unwrap, with_noise_map
from precision import add_amp_flag, apex_amp, autocast, grad_scaler, precision_for
from preprocess import add_preprocess_flags, resolve_arch
from training import (COMPILE_MIN_STEPS, PatchBatches, Reporter, StepRace, Throughput, add_train_noise,
                      auto_or_bool, compile_policy, compiler_ready, elastic_restart, lr_at, noise_generator,
                      patches_stay_on_device, patches_to_device, read_training_checkpoint, resume_path,
                      save_checkpoint, save_weights)
from utils import (ArgParser, UserError, add_legacy_flags, batch_psnr, legacy_device_id, non_negative, positive,
                   progress, remove_stale_temp_files, run_cli, shard, stored_in_8_bits, str2bool)


def parse_args(argv=None):
    p = ArgParser(description="DnCNN / ADNet training")
    # the references' flags
    p.add_argument("--preprocess", type=str2bool, default=False,
                   help="build train.h5/val.h5 first (True/False); skipped when they already hold these patches "
                        "(same parameters, same data folders, unchanged images)")
    p.add_argument("--batchSize", "--batch_size", dest="batchSize", type=positive(int), default=128,
                   help="global batch size (split across processes)")
    p.add_argument("--num_of_layers", type=positive(int), default=None,
                   help="DnCNN depth (default 17; 20 for FDnCNN and --task dncnn3, as the authors')")
    p.add_argument("--epochs", type=positive(int), default=None, help="default: 50 (DnCNN), 70 (ADNet)")
    p.add_argument("--milestone", type=positive(int), default=30, help="lr /10 at this epoch (ADNet: also at 2x, 3x)")
    p.add_argument("--lr", type=positive(float), default=1e-3)
    p.add_argument("--outf", default="logs", help="where logs and checkpoints go")
    p.add_argument("--noiseL", type=non_negative(float), default=25, help="training noise sigma (mode S)")
    p.add_argument("--val_noiseL", type=non_negative(float), default=25)
    p.add_argument("--sigma_range", type=non_negative(float), nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="mode B: each patch's sigma, uniform in [LOW, HIGH] (default: the references' 0 55; FDnCNN "
                        "0 75, KAIR's)")
    p.add_argument("--clip", action="store_true",
                   help="noisy patches clipped to [0, 1] and rounded to 8 bits, as a photo stored with its noise "
                        "(an FDnCNN is still told the nominal sigma: the authors' clipped FDnCNN)")
    p.add_argument("--noise_model", choices=("gaussian", "camera"), default="gaussian",
                   help="gaussian: white noise (--mode S / B, the references'); camera: a camera's noise (signal-"
                        "dependent, demosaiced, white-balanced, tone-mapped, maybe blurred and JPEG-compressed; "
                        "colour patches only): for photos that are already noisy")
    p.add_argument("--camera_profile", choices=tuple(CAMERA_PROFILES), default=DEFAULT_PROFILE,
                   help="--noise_model camera: the parameter ranges (camera_noise.PROFILES)")
    add_preprocess_flags(p)  # --data_path --arch --mode --patch_size --stride --aug_times --train_data --val_data
    # this port's flags
    p.add_argument("--h5_dir", default=".",
                   help="folder of train.h5 / val.h5, checked against the patch flags and, when --data_path or "
                        "--train_data is given, against that data")
    p.add_argument("--patch_cache", default=None, metavar="DIR",
                   help="keep the patches in DIR/<key> instead of --h5_dir, the key a digest of the patch flags and the "
                        "data folders' contents: built when absent, reused otherwise")
    add_device_flag(p)
    add_amp_flag(p, default="auto")
    p.add_argument("--opt_level", default="O2", help="apex opt level (fp16 on an NPU with apex only)")
    p.add_argument("--loss_scale", default="dynamic", help="apex / fp16 loss scale: 'dynamic' or a number")
    p.add_argument("--channels_last", type=str2bool, default=True)
    p.add_argument("--patches_on_device", type=auto_or_bool, default="auto", metavar="auto|True|False",
                   help="keep the uint8 patches in the GPU's / NPU's memory, each batch indexed there (auto: when "
                        "they take at most a quarter of its free memory; a CPU run keeps them where they are)")
    p.add_argument("--compile", type=auto_or_bool, default="auto", metavar="auto|True|False",
                   help="torch.compile the training step; auto: on a run with at least %d steps left, where the "
                        "device's compiler is there, the first steps time eager and compiled steps in turn and the "
                        "faster is kept" % COMPILE_MIN_STEPS)
    p.add_argument("--lr_schedule", choices=("step", "cosine"), default="step",
                   help="step: the references' milestones; cosine: per step down to --lr_min")
    p.add_argument("--init", choices=tuple(INITS), default="reference",
                   help="reference: each paper's weight init (as their code); residual: DnCNN's init for both, "
                        "ADNet's attention starting at 1 (+0.13 dB on Set12 after 400 steps in one measurement)")
    p.add_argument("--lr_min", type=non_negative(float), default=1e-6)
    p.add_argument("--init_weights", default=None,
                   help="start from these weights (any checkpoint test.py loads) with a fresh optimizer: fine-tuning")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=non_negative(int), default=0, help="CPU threads per process (0: cores / processes)")
    p.add_argument("--max_steps", type=non_negative(int), default=0, help="stop after N optimizer steps (0: no limit)")
    p.add_argument("--max_minutes", type=non_negative(float), default=0,
                   help="stop after this many minutes of training, validated and saved, so that --resume goes on "
                        "(checked at each log line; 0: no limit)")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="continue from PATH, or from OUTF/checkpoint.pth when no path is given")
    p.add_argument("--save_every", type=non_negative(int), default=0, help="also save checkpoint.pth every N steps")
    p.add_argument("--save_minutes", type=non_negative(float), default=10,
                   help="also save checkpoint.pth when this many minutes passed since the last save (0: off)")
    p.add_argument("--log_every", type=positive(int), default=10)
    p.add_argument("--sync_bn", action="store_true", help="SyncBatchNorm across processes")
    p.add_argument("--save_module_prefix", action="store_true",
                   help="write net.pth / best_model.pth with DataParallel's 'module.' prefix, for the original "
                        "SaoYan / ADNet test.py (which wrap the net in DataParallel before loading)")
    p.add_argument("--timeout", type=positive(int), default=600, help="seconds before a lost peer fails the job")
    p.add_argument("--tensorboard", type=str2bool, default=True)
    p.add_argument("--quiet", action="store_true")
    add_legacy_flags(p)  # the ADNet / DnCNN Ascend ports' launches, mapped onto torchrun by relaunch_legacy
    args = resolve_arch(p.parse_args(argv))
    if args.noise_model == "camera" and args.channels != 3:
        p.error("--noise_model camera needs colour patches (--channels 3)")
    if args.noise_model == "camera" and (args.arch == "FDnCNN" or args.task == "dncnn3"):
        p.error("--noise_model camera has no single sigma to tell an FDnCNN and no place in --task dncnn3")
    if args.clip and args.noise_model == "camera":
        p.error("--clip stores Gaussian noise in 8 bits; --noise_model camera already ends in 8-bit JPEG")
    if args.num_of_layers is None:
        args.num_of_layers = FDNCNN_LAYERS if args.arch == "FDnCNN" or args.task == "dncnn3" else 17
    if args.sigma_range is None:
        args.sigma_range = (0.0, 75.0) if args.arch == "FDnCNN" else (0.0, 55.0)
    if args.epochs is None:
        args.epochs = 70 if args.arch == "ADNet" else 50
    args.loss_scale = None if args.loss_scale == "dynamic" else float(args.loss_scale)
    return args


def setup_process(args):
    """This process's place in the run, before any training (pytorch/examples' main_worker): its rank and
    device, host set-up, the patches (built or waited for before the process group: no collective waits on
    them), the process group, the output folder and the seed."""
    rank, local_rank, world = dist_env()
    if world > 1 and args.batchSize % world:
        raise UserError("--batchSize %d does not split over %d processes" % (args.batchSize, world))
    device = select_device(args.device, local_rank, legacy_device_id(args) if world == 1 else None)
    malloc_tuned = setup_host(device, int(os.environ.get("LOCAL_WORLD_SIZE", world)), args.workers, training=True)
    spec = ready_patches(args, local_rank)
    init_distributed(device, args.timeout)
    if rank == 0:
        os.makedirs(args.outf, exist_ok=True)
        remove_stale_temp_files(args.outf)  # a run killed mid-save leaves its temporary file behind
    torch.manual_seed(args.seed + rank)
    return SimpleNamespace(rank=rank, local_rank=local_rank, world=world, is_main=rank == 0, device=device,
                           malloc_tuned=malloc_tuned, spec=spec)


def ready_patches(args, local_rank):
    """The run's patch_spec, after building or waiting for its h5 files where asked (--preprocess True,
    --patch_cache: then --h5_dir becomes the cache's folder for the key)."""
    spec = patch_spec(args.data_path, args.arch, args.mode, args.patch_size, args.stride, args.aug_times,
                      args.channels, args.train_data, args.val_data, args.seed, args.task, args.sr_jpeg_data,
                      args.sr_jpeg_stride)
    if args.patch_cache:
        args.h5_dir = os.path.join(args.patch_cache, patch_key(spec))
    ensure_patches(spec, args.h5_dir, build=args.preprocess or bool(args.patch_cache), builder=local_rank == 0,
                   quiet=args.quiet)
    return spec


class Trainer:
    """One training run's loop state and its verbs: train_one_epoch(), end_epoch() (validate, then save) and
    run() the epoch loop. `model` is the bare network (weights, checkpoints, validation), `net` what the step
    runs (DDP- and/or compile-wrapped)."""

    def __init__(self, args, dtype=torch.float32, process=None):
        a = self.args = args
        self.process = process or setup_process(args)
        self.report = Reporter(a.outf, self.is_main, a.tensorboard)
        self.batches, self.val_images = self.load_data()
        # float64 only where tests compare Adam steps with the references' (fp32 rounding flips the sign of
        # Adam's first step on near-zero gradients, so two fp32 runs part after one step): test_step_parity
        self.dtype = dtype
        self.precision = precision_for(a.amp, self.device, training=True)
        self.model, self.optimizer, self.apex = self.build_model()
        self.scaler = grad_scaler(self.precision, self.device, a.loss_scale)
        self.net = self.wrap(self.model)

        self.epoch, self.step, self.step_in_epoch, self.best_psnr = 0, 0, 0, -1.0
        self.total_steps = len(self.batches) * a.epochs
        if a.max_steps:
            self.total_steps = min(self.total_steps, a.max_steps)
        self.lr, self.loss = a.lr, None
        # a non-finite loss is noted on the device and read at the log interval and before saving: a per-step
        # check would make the host wait for the device every step
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        self.checked_step = 0
        self.last_save = time.monotonic()
        self.throughput = Throughput(a.batchSize)
        restart = elastic_restart(self.device, self.world)
        if restart and not a.resume:  # torchrun restarted the workers after a failure: go on from the last save
            a.resume = "auto"
            number, most = restart
            self.log("torchrun restart %d of %s: resuming from %s where it exists" % (number, most, resume_path(a)))
        if a.resume:
            self.resume()
            self.agree_on_step()  # every rank, also one that found no checkpoint and starts afresh
        self.compile_decision, self.compile_why = compile_policy(
            a.compile, self.device.type, self.total_steps - self.step, compiler_ready(self.device.type),
            apex=bool(self.apex))
        self.race = None
        if self.compile_decision == "measure":
            self.race = StepRace(self.net, self.compile(self.net))
        elif self.compile_decision == "on":
            self.net = self.compile(self.net)
        self.compiled = self.compile_decision == "on"

    # the process's place in the run
    rank = property(lambda self: self.process.rank)
    world = property(lambda self: self.process.world)
    is_main = property(lambda self: self.process.is_main)
    device = property(lambda self: self.process.device)

    def log(self, msg):
        self.report.log(msg)

    def load_data(self):
        a = self.args
        patches, attrs = load_train_patches(a.h5_dir, self.process.spec, strict_folder=a.data_given)
        self.log("# of training samples: %d (%s)" % (len(patches), ", ".join(
            "%s=%s" % (k, attrs[k]) for k in ("arch", "mode", "channels", "patch_size", "stride", "aug_times", "task",
                                              "sr_jpeg_stride", "key")
            if k in attrs)))
        kinds = load_train_kinds(a.h5_dir) if a.task == "dncnn3" else None
        resident, why = patches_stay_on_device(a.patches_on_device, self.device.type,
                                               patches.numel() * patches.element_size(),
                                               memory_available(self.device) if self.device.type != "cpu" else None)
        if self.device.type != "cpu":
            self.log(why)
        if resident:
            patches = patches.to(self.device)
            kinds = kinds.to(self.device) if kinds is not None else None
        batches = PatchBatches(patches, a.batchSize // self.world, self.rank, self.world, a.seed, labels=kinds)
        return batches, load_val_images(a.h5_dir)

    def build_model(self):
        """(model, optimizer, apex.amp or None) on the device, initialised, channels_last as asked."""
        a = self.args
        model = self.new_model(a.init).to(self.device, self.dtype)
        if a.init_weights:  # a checkpoint found by --resume replaces them
            model.load_state_dict(self.start_weights(a.init_weights))
        if a.sync_bn and self.world > 1:
            if self.device.type == "cpu":
                raise UserError("--sync_bn needs CUDA or NPU devices (PyTorch has no SyncBatchNorm on CPU)")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if a.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=a.lr)
        apex = apex_amp() if self.precision.scaler == "apex" else None
        if apex:  # O2: fp16 model, fp32 master weights in the optimizer (the Ascend ports' set-up)
            model, optimizer = apex.initialize(model, optimizer, opt_level=a.opt_level, loss_scale=a.loss_scale or "dynamic")
        return model, optimizer, apex

    def wrap(self, model):
        """What the step runs before any compiling: DDP across processes; in training mode throughout
        (validation runs on a folded fp32 copy)."""
        net = model
        if self.world > 1:
            ids = [self.device.index] if self.device.type in ("cuda", "npu") else None
            net = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        return net.train()

    @staticmethod
    def compile(net):
        # static shapes: one graph for the full batch, one for an epoch's shorter last batch
        return torch.compile(net, dynamic=False)

    def end_race(self):
        """--compile auto: keep the faster step, the same one on every rank (their mean times decide)."""
        eager_s, compiled_s = self.race.medians()
        if self.world > 1:
            times = torch.tensor([eager_s, compiled_s], dtype=torch.float64, device=self.device)
            torch.distributed.all_reduce(times)
            eager_s, compiled_s = (times / self.world).tolist()
        self.compiled, self.compile_why = StepRace.verdict(eager_s, compiled_s, len(self.race.times["eager"]))
        self.net = self.race.nets["compiled" if self.compiled else "eager"]
        self.race = None
        self.log("compile: %s (%s)" % ("on" if self.compiled else "off", self.compile_why))

    def new_model(self, init=None):
        a = self.args
        return build_model(a.arch, a.channels, a.num_of_layers, init=init)

    def start_weights(self, path):
        a = self.args
        start = load_model(path, arch=a.arch, num_of_layers=a.num_of_layers if a.arch != "ADNet" else None)
        if start.channels != a.channels:
            raise UserError("--init_weights %s has %d channels, this run %d" % (path, start.channels, a.channels))
        if not getattr(start, "batch_norm", True):
            raise UserError("--init_weights %s has its batch norm merged into the convs (the authors' released form): "
                            "train.py trains %s with batch norm" % (path, a.arch))
        return start.state_dict()

    # ------------------------------------------------------------------ checkpoints
    def weights(self):
        """The bare network's fp32 CPU weights; under apex O2 the optimizer's fp32 master parameters."""
        state = {k: v.float() if v.is_floating_point() else v for k, v in plain_state_dict(self.model).items()}
        if self.apex:
            names = [name for name, _ in unwrap(self.model).named_parameters()]
            for name, master in zip(names, self.apex.master_params(self.optimizer)):
                state[name] = master.detach().float().cpu().clone()
        return state

    def state(self):
        state = {"model": self.weights(), "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                 "precision": {"dtype": self.precision.name, "scaler": self.precision.scaler},
                 "epoch": self.epoch, "step": self.step, "step_in_epoch": self.step_in_epoch,
                 "best_psnr": self.best_psnr, "rng_cpu": torch.get_rng_state(), "args": dict(vars(self.args)),
                 "format_version": 1}
        if self.apex:
            state["apex"] = self.apex.state_dict()
        return state

    def save(self):
        self.check_finite()  # never replace the last good checkpoint with a diverged one
        if self.is_main:
            save_checkpoint(self.state(), self.args.outf)
        self.last_save = time.monotonic()

    def save_due(self):
        a = self.args
        if a.save_every and self.step % a.save_every == 0:
            return True
        return bool(a.save_minutes) and time.monotonic() - self.last_save >= 60 * a.save_minutes

    def resume(self):
        a = self.args
        path = resume_path(a)
        if not os.path.isfile(path):
            if a.resume == "auto":
                self.log("no checkpoint at %s: starting a new run" % path)
                return
            raise UserError("--resume: no such checkpoint %s" % path)
        ckpt = read_training_checkpoint(path, a)
        try:  # apex's documented order: after amp.initialize, model, optimizer, then amp
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise UserError("--resume: %s does not fit this model: %s" % (path, str(e).splitlines()[0]))
        self.resume_scaler(ckpt)
        self.epoch, self.step = ckpt["epoch"], ckpt["step"]
        self.step_in_epoch, self.best_psnr = ckpt.get("step_in_epoch", 0), ckpt.get("best_psnr", -1.0)
        self.checked_step = self.step
        if "rng_cpu" in ckpt:
            torch.set_rng_state(ckpt["rng_cpu"])
        self.log("resumed from %s: %d epochs and %d steps done" % (path, self.epoch, self.step))

    def agree_on_step(self):
        """Every rank resumed from the same save (on several nodes, --outf must be a disk they all share)."""
        if self.world > 1:
            steps = torch.tensor([self.step, -self.step], dtype=torch.float32, device=self.device)
            torch.distributed.all_reduce(steps, op=torch.distributed.ReduceOp.MAX)
            if steps[0].item() != -steps[1].item():
                raise UserError("the ranks resumed at different steps (%d to %d): is --outf on a disk all nodes "
                                "share?" % (-steps[1].item(), steps[0].item()))

    def resume_scaler(self, ckpt):
        """The saved loss-scaler state where this run scales the loss the same way; a fresh one otherwise
        (a CPU bf16 run resumed on a GPU or NPU in fp16, say)."""
        state = ckpt.get("scaler") or {}
        saved = ckpt.get("precision") or {"dtype": "fp16" if state else "fp32 or bf16", "scaler": "torch" if state else None}
        if saved.get("scaler") == self.precision.scaler and (state or "apex" in ckpt):
            if self.apex:
                self.apex.load_state_dict(ckpt["apex"])
            else:
                self.scaler.load_state_dict(state)
        elif self.precision.scaler:
            self.log("resuming a %s run in %s: the loss scale starts afresh" % (saved.get("dtype"), self.precision))

    # ------------------------------------------------------------------ training
    def make_inputs(self, batch_u8, draws=None):
        """(clean, noisy) for one batch; the noise depends only on (seed, rank, step). `draws` (unit normals,
        per-patch uniforms) replaces the generator's, so the references' step can be given the same ones.
        FDnCNN: noisy carries each patch's noise level map as its last channel. --task dncnn3: the batch is
        (clean | degraded patches, kinds); the Gaussian ones get their noise here, the others are their pair."""
        a = self.args
        kinds = None
        if isinstance(batch_u8, tuple):
            batch_u8, kinds = batch_u8
        if batch_u8.device.type == "cpu" and self.device.type != "cpu":
            batch_u8 = batch_u8.pin_memory()  # so the copy in patches_to_device is asynchronous
        clean = patches_to_device(batch_u8, self.device, a.channels_last, self.dtype)
        degraded = None
        if kinds is not None:
            clean, degraded = clean[:, :a.channels], clean[:, a.channels:]
        gen = noise_generator(a.seed, self.rank, self.step, self.device)
        if a.noise_model == "camera":
            return clean, add_camera_noise(clean, gen, a.camera_profile)
        noisy, sigma = add_train_noise(clean, a.mode, a.noiseL, gen, sigma_range=tuple(a.sigma_range), draws=draws,
                                       with_sigma=True)
        if a.clip:
            noisy = stored_in_8_bits(noisy)
        if degraded is not None:
            gaussian = (kinds.to(self.device, non_blocking=True) == KIND_NOISE).view(-1, 1, 1, 1)
            noisy = torch.where(gaussian, noisy, degraded)
        if a.arch == "FDnCNN":
            noisy = with_noise_map(noisy, sigma)
            if a.channels_last:
                noisy = noisy.contiguous(memory_format=torch.channels_last)
        return clean, noisy

    def optimize(self, clean, noisy, lr, net=None):
        """One optimizer step; returns the (fp32) loss and the clean estimate. Reads nothing back from the device."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.precision.dtype):
            estimate = denoise(self.net if net is None else net, noisy)
        # the references' loss: sum of squared errors / 2N, in fp32 (an autocast estimate is bf16/fp16)
        loss = (estimate.to(clean.dtype) - clean).pow(2).sum() / (2 * clean.shape[0])
        if not self.precision.scaler:  # a loss scaler skips non-finite steps itself: under fp16 they are no stop
            self.nonfinite = self.nonfinite | ~torch.isfinite(loss)
        if self.apex:
            with self.apex.scale_loss(loss, self.optimizer) as scaled:
                scaled.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return loss, estimate

    def check_finite(self):
        if self.nonfinite.item():
            raise UserError("non-finite loss at step %d or before (steps %d-%d of epoch %d are checked together); "
                            "last good checkpoint: %s" % (self.step, self.checked_step + 1, self.step, self.epoch + 1,
                                                          os.path.join(self.args.outf, "checkpoint.pth")))
        self.checked_step = self.step

    def train_one_epoch(self):
        """Steps to the end of the epoch (True) or to --max_steps (False)."""
        a = self.args
        self.batches.set_epoch(self.epoch)
        steps_per_epoch = len(self.batches)
        bar = progress(self.batches.batches(skip=self.step_in_epoch), quiet=a.quiet or not self.is_main,
                       total=steps_per_epoch, initial=self.step_in_epoch, desc="epoch %d" % (self.epoch + 1),
                       unit="step", leave=False)
        tick = time.time()
        for batch_u8 in bar:
            self.lr = lr_at(a, self.epoch, self.step, self.total_steps)
            clean, noisy = self.make_inputs(batch_u8)
            self.loss, estimate = self.optimize(clean, noisy, self.lr, self.race.net() if self.race else None)
            if self.race:
                device_sync(self.device)
                self.race.record(time.time() - tick)
            self.step += 1
            self.step_in_epoch += 1
            self.throughput.update(time.time() - tick, self.step_in_epoch)
            if self.race and self.race.done:
                self.end_race()
            logged = self.step_in_epoch % a.log_every == 0 or self.step_in_epoch == steps_per_epoch
            if logged:
                self.log_step(estimate, clean)
            if self.save_due():
                self.save()
            if (a.max_steps and self.step >= a.max_steps) or (logged and self.out_of_time()):
                bar.close()
                return False
            tick = time.time()  # logging and saving are not step time
        bar.close()
        self.epoch += 1
        self.step_in_epoch = 0
        return True

    def out_of_time(self):
        """--max_minutes passed (on any rank: they stop at the same step)."""
        a = self.args
        if not a.max_minutes:
            return False
        late = torch.tensor([float(time.time() - self.started >= 60 * a.max_minutes)])
        if self.world > 1:
            late = late.to(self.device)
            torch.distributed.all_reduce(late, op=torch.distributed.ReduceOp.MAX)
        if late.item():
            self.log("--max_minutes %g: stopping at step %d (--resume goes on)" % (a.max_minutes, self.step))
            return True
        return False

    def log_step(self, estimate, clean):
        self.check_finite()
        loss = self.loss.item()
        psnr_train = batch_psnr(estimate.detach().float().clamp(0, 1), clean)
        self.log("[epoch %d][%d/%d] loss: %.4f PSNR_train: %.4f time: %.3f FPS: %.3f"
                 % (self.epoch + 1, self.step_in_epoch, len(self.batches), loss, psnr_train, self.throughput.last,
                    self.throughput.per_second()))
        self.report.scalars(self.step, loss=loss, PSNR_train=psnr_train, lr=self.lr)

    def validate(self):
        """Mean PSNR on the validation images, split over the ranks, seeded noise (the test protocol); an FDnCNN
        is told --val_noiseL, a DnCNN-3 is validated on Gaussian noise alone.

        It runs on a fresh fp32 copy of the weights, BN folded: not on the training model, which may be
        SyncBatchNorm, or apex's fp16 model with a patched forward."""
        copy = self.new_model()
        copy.load_state_dict(self.weights())
        net = inference_model(copy, self.device)
        mine = shard(self.val_images, self.rank, self.world)
        # a --clip run is validated as it trains: on noisy images stored in 8 bits
        rows = evaluate(net, mine, self.args.val_noiseL, self.device, eight_bit=self.args.clip) if mine else []
        total = torch.tensor([sum(r["psnr"] for r in rows), float(len(rows))])  # fp32: HCCL has no fp64 sum
        if self.world > 1:
            total = total.to(self.device)
            torch.distributed.all_reduce(total)
        return (total[0] / total[1]).item(), rows

    def end_epoch(self):
        """Validate, then write best_model.pth (when better), net.pth and checkpoint.pth."""
        psnr_val, rows = self.validate()
        self.log("\n[epoch %d] PSNR_val: %.4f" % (self.epoch + (1 if self.step_in_epoch else 0), psnr_val))
        self.report.scalars(self.epoch, PSNR_val=psnr_val, lr_epoch=self.lr)
        if rows:
            self.report.images(self.epoch, (("images/clean", self.val_images[0][1]),
                                            ("images/noisy", rows[0]["noisy"].clip(0, 1)),
                                            ("images/denoised", rows[0]["denoised"])))
        is_best = psnr_val > self.best_psnr
        self.best_psnr = max(self.best_psnr, psnr_val)
        if self.is_main:
            save_weights(self.weights(), self.args.outf, is_best, self.args.save_module_prefix)
        self.save()

    def run(self):
        a = self.args
        self.log("%s on %s x%d, amp %s, channels_last %s, %d steps/epoch, global batch %d"
                 % (a.arch, self.device, self.world, self.precision.name, a.channels_last, len(self.batches),
                    a.batchSize))
        self.log("precision: %s" % self.precision)
        if self.process.malloc_tuned:
            self.log("host memory: malloc keeps freed blocks for reuse by the next step (glibc)")
        if self.race:
            self.log("compile: measuring: eager and compiled steps in turn for the first %d steps (%s)"
                     % (len(self.race.schedule), self.compile_why))
        else:
            self.log("compile: %s (%s)" % ("on" if self.compiled else "off", self.compile_why))
        start = self.started = time.time()
        if (a.max_steps and self.step >= a.max_steps) or self.epoch >= a.epochs:
            self.log("nothing to train: step %d, epoch %d of this run's %s done" % (
                self.step, self.epoch, "%d steps" % a.max_steps if a.max_steps else "%d epochs" % a.epochs))
            self.report.close()
            return 0
        while self.epoch < a.epochs:
            finished_epoch = self.train_one_epoch()
            self.end_epoch()
            if not finished_epoch:
                break
        self.log("FPS: %.3f" % self.throughput.per_second())
        self.log("best PSNR_val: %.4f" % self.best_psnr)
        self.log("loss: %.6f" % (self.loss.item() if self.loss is not None else float("nan")))
        self.log("training time: %.1f s" % (time.time() - start))
        self.report.close()
        return 0


def relaunch_legacy(args, argv):
    """Map the Ascend ports' launch styles onto torchrun's environment; returns an exit status if it relaunched.

    ADNet port: one shell-started process per RANK_ID with --num_gpus/--world_size N (and --local_rank).
    DnCNN 8p port: one process with --gpu_use_num N --device-list 0,...: started again here under torchrun.
    """
    if "WORLD_SIZE" in os.environ or not args.num_gpus or args.num_gpus <= 1:
        return None
    if "RANK_ID" in os.environ:
        os.environ["WORLD_SIZE"] = str(args.num_gpus)
        if args.local_rank is not None:
            os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
        return None
    import subprocess
    env = dict(os.environ, TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")  # restarts get a fresh store (restart_store)
    if args.device_list:
        env.setdefault("CUDA_VISIBLE_DEVICES", args.device_list)
        env.setdefault("ASCEND_RT_VISIBLE_DEVICES", args.device_list)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(args.num_gpus),
           os.path.abspath(__file__)] + list(argv)
    return subprocess.call(cmd, env=env)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    status = relaunch_legacy(args, argv)
    if status is not None:
        return status
    try:
        return Trainer(args).run()
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            PROCESS_GROUP_USED.append(True)


# After the process group is destroyed, one exit in about ten aborted in the native teardown ("terminate called
# without an active exception", rank 1, 2 CPU ranks over gloo, torch 2.13) and torchrun then failed the whole
# run: such a process leaves through os._exit, its files written and its streams flushed.
PROCESS_GROUP_USED = []


if __name__ == "__main__":
    run_cli(main, hard_exit=lambda: bool(PROCESS_GROUP_USED))
