"""Training step for step the references': SaoYan/DnCNN-PyTorch train.py and hellloxiaotian/ADNet gray/ and
color/train.py, their step written plainly here, beside train.py's own Trainer (make_inputs, optimize),
from the same initial weights, uint8 batches and random draws, --amp none, channels_last as train.py runs.

Three steps are compared in float64 (their code unchanged, float64 the default dtype). In fp32 no two implementations can
be compared after an Adam step: Adam's first step is lr * sign(gradient), and fp32 rounding flips the sign of
the near-zero gradients, so even the references' own step, run once with contiguous and once with
channels_last weights, parts by ~100 % of some weights after 3 steps (float64: 1e-11). fp32 is checked where
it resolves: the first step's loss.

Their models are this project's classes built fresh (PyTorch's default init) and loaded with our initial
weights: the architectures are proven equal by the reference checkpoints' PSNR (test_parity, test_colour).
"""
import contextlib

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.optim as optim

import train
import training
from models import build_model

STEPS = 3
PATCHES, PATCH = 8, 12  # small patches: a step's arithmetic does not depend on their size
TOLERANCE = 1e-5  # max |ours - theirs| relative to max |theirs|, per tensor


# ----------------------------------------------------------------------------- the references, plainly
def reference_noise(opt, img_train, unit, rng):
    """Their noise. `torch.FloatTensor(size).normal_(mean=0, std=s)` is s times unit normals; the unit normals
    are the ones our side is given, and `rng` (np.random) gives mode B's sigmas."""
    noiseL_B = [0, 55]  # ingnored when opt.mode=='S'
    if opt.mode == 'S':
        noise = unit * (opt.noiseL / 255.)
    if opt.mode == 'B':
        noise = torch.zeros(img_train.size())
        stdN = rng.uniform(noiseL_B[0], noiseL_B[1], size=noise.size()[0])
        for n in range(noise.size()[0]):
            noise[n, :, :, :] = unit[n] * (stdN[n] / 255.)
    return noise


def saoyan_step(model, optimizer, criterion, opt, img_train, unit, rng):
    """SaoYan/DnCNN-PyTorch train.py lines 64-85 (CPU, no Variable): DnCNN learns the noise."""
    model.train()
    model.zero_grad()
    optimizer.zero_grad()
    noise = reference_noise(opt, img_train, unit, rng)
    imgn_train = img_train + noise
    out_train = model(imgn_train)
    loss = criterion(out_train, noise) / (imgn_train.size()[0] * 2)
    loss.backward()
    optimizer.step()
    model.eval()
    out_train = torch.clamp(imgn_train - model(imgn_train), 0., 1.)  # their PSNR_train: changes no weight
    return loss


def adnet_step(model, optimizer, criterion, opt, img_train, unit, rng):
    """hellloxiaotian/ADNet gray/train.py lines 88-108 (color/train.py 82-102 alike): ADNet learns the image."""
    model.train()
    noise = reference_noise(opt, img_train, unit, rng)
    imgn_train = img_train + noise
    out_train = model(imgn_train)
    loss = criterion(out_train, img_train) / (imgn_train.size()[0] * 2)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.eval()
    out_train = torch.clamp(model(imgn_train), 0., 1.)  # their PSNR_train: changes no weight
    return loss


REFERENCE_STEP = {"DnCNN": saoyan_step, "ADNet": adnet_step}


@contextlib.contextmanager
def default_dtype(dtype):
    """Their code unchanged in float64: torch.Tensor, torch.zeros and new layers follow the default dtype."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def reference_training(opt, initial_weights, batches_u8, units, seed):
    """Their set-up (net, DataParallel, MSELoss(size_average=False), Adam, epoch 0's lr), then one step per batch.
    Returns the losses, the gradients of each step and the final weights."""
    net = build_model(opt.arch, opt.channels, opt.num_of_layers, init=None)
    net.load_state_dict(initial_weights)
    model = nn.DataParallel(net)  # on CPU: calls the net (their .cuda() dropped)
    criterion = nn.MSELoss(size_average=False)
    optimizer = optim.Adam(model.parameters(), lr=opt.lr)
    current_lr = opt.lr  # epoch 0, before any milestone, in every reference
    for param_group in optimizer.param_groups:
        param_group["lr"] = current_lr
    rng = np.random.RandomState(seed)
    losses, grads = [], []
    for batch_u8, unit in zip(batches_u8, units):
        img_train = torch.Tensor(batch_u8.numpy() / 255.)  # their h5 holds float32(uint8 / 255.)
        loss = REFERENCE_STEP[opt.arch](model, optimizer, criterion, opt, img_train, unit, rng)
        losses.append(loss.item())
        grads.append({k: p.grad.clone() for k, p in net.named_parameters()})
    return losses, grads, net.state_dict()


# ----------------------------------------------------------------------------- ours: train.py's Trainer
@pytest.fixture(autouse=True)
def keep_thread_count():
    """--workers 1 (below): two threads on small float64 convolutions ran 25x slower on the shared 2-core machine."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def our_trainer(arch, mode, channels, sigma, outf, dtype, data):
    from dataset import prepare_data
    h5_dir = str(outf / "h5")
    prepare_data(data, h5_dir, arch, mode, channels=channels, train_data="train", val_data="Set12", quiet=True)
    args = train.parse_args(["--arch", arch, "--mode", mode, "--channels", str(channels), "--noiseL", str(sigma),
                             "--batchSize", str(PATCHES), "--amp", "none", "--device", "cpu", "--workers", "1",
                             "--h5_dir", h5_dir, "--outf", str(outf), "--tensorboard", "False", "--quiet"])
    return train.Trainer(args, dtype=dtype)  # it loads that data; the steps below are given their own batches


def our_training(trainer, batches_u8, draws):
    """train.py's step as Trainer.run takes it: lr_at, make_inputs, optimize, step += 1."""
    losses, grads = [], []
    for batch_u8, step_draws in zip(batches_u8, draws):
        lr = training.lr_at(trainer.args, trainer.epoch, trainer.step, total_steps=len(batches_u8))
        clean, noisy = trainer.make_inputs(batch_u8, draws=step_draws)
        loss, _ = trainer.optimize(clean, noisy, lr)
        trainer.step += 1
        losses.append(loss.item())
        grads.append({k: p.grad.clone() for k, p in trainer.model.named_parameters()})
    return losses, grads, trainer.model.state_dict()


def same_random_draws(channels, seed, steps, dtype):
    """Per step: unit normals (both sides) and mode B's uniforms u, which the references' np.random.uniform(0, 55)
    turns into 0 + 55 * u from the same RandomState, and ours into the same sigma."""
    gen = torch.Generator().manual_seed(seed)
    units = [torch.randn(PATCHES, channels, PATCH, PATCH, generator=gen, dtype=dtype) for _ in range(steps)]
    rng = np.random.RandomState(seed)
    uniforms = [torch.from_numpy(rng.random_sample(PATCHES)).to(dtype) for _ in range(steps)]
    return units, list(zip(units, uniforms))


def both_sides(arch, mode, channels, sigma, tmp_path, dtype, steps, data):
    """(ours, theirs), each (losses, gradients per step, final weights), after `steps` steps from the same start."""
    seed = 11
    torch.manual_seed(seed)
    batches_u8 = torch.randint(0, 256, (steps, PATCHES, channels, PATCH, PATCH), dtype=torch.uint8)
    units, draws = same_random_draws(channels, seed, steps, dtype)
    trainer = our_trainer(arch, mode, channels, sigma, tmp_path, dtype, data)
    assert next(trainer.model.parameters()).is_contiguous(memory_format=torch.channels_last)  # as train.py runs
    initial = {k: v.detach().clone().contiguous() for k, v in trainer.model.state_dict().items()}
    with default_dtype(dtype):
        theirs = reference_training(trainer.args, initial, batches_u8, units, seed)
    ours = our_training(trainer, batches_u8, draws)
    assert not torch.equal(ours[2]["conv1_16.weight" if arch == "ADNet" else "dncnn.0.weight"],
                           initial["conv1_16.weight" if arch == "ADNet" else "dncnn.0.weight"])  # it did train
    return ours, theirs


def assert_same(ours, theirs, what):
    for name, want in theirs.items():
        have, want = ours[name].double(), want.double()
        err, scale = (have - want).abs().max().item(), want.abs().max().item()
        assert err <= TOLERANCE * scale, "%s %s: max |ours - theirs| %.3g, max |theirs| %.3g" % (what, name, err, scale)


CASES = [("DnCNN", "S", 25), ("DnCNN", "B", 25), ("ADNet", "S", 15), ("ADNet", "B", 15)]


@pytest.mark.parametrize("channels", [1, 3], ids=["gray", "colour"])
@pytest.mark.parametrize("arch,mode,sigma", CASES)
def test_three_steps_equal_the_references(arch, mode, sigma, channels, tmp_path, tiny_data):
    (our_losses, our_grads, ours), (their_losses, their_grads, theirs) = both_sides(
        arch, mode, channels, sigma, tmp_path, torch.float64, STEPS, tiny_data)
    assert our_losses == pytest.approx(their_losses, rel=TOLERANCE)
    for step, (mine, want) in enumerate(zip(our_grads, their_grads)):
        assert_same(mine, want, "step %d gradient" % (step + 1))
    assert_same(ours, theirs, "after %d steps" % STEPS)


@pytest.mark.parametrize("channels", [1, 3], ids=["gray", "colour"])
@pytest.mark.parametrize("arch,mode,sigma", CASES)
def test_first_step_loss_in_fp32(arch, mode, sigma, channels, tmp_path, tiny_data):
    (our_losses, _, _), (their_losses, _, _) = both_sides(arch, mode, channels, sigma, tmp_path, torch.float32, 1,
                                                          tiny_data)
    assert our_losses == pytest.approx(their_losses, rel=TOLERANCE)


# ----------------------------------------------------------------------------- learning-rate schedules
def saoyan_lrs(opt, epochs):
    """SaoYan train.py lines 52-56; `epoch` is 0-based (range(opt.epochs))."""
    lrs = []
    for epoch in range(epochs):
        if epoch < opt.milestone:
            current_lr = opt.lr
        else:
            current_lr = opt.lr / 10.
        lrs.append(current_lr)
    return lrs


def adnet_gray_lrs(opt, epochs):
    """ADNet gray/train.py lines 72-80: no branch fires after epoch 120, so current_lr keeps lr/1000."""
    lrs = []
    for epoch in range(epochs):
        if epoch <= opt.milestone:
            current_lr = opt.lr
        if epoch > 30 and epoch <= 60:
            current_lr = opt.lr / 10.
        if epoch > 60 and epoch <= 90:
            current_lr = opt.lr / 100.
        if epoch > 90 and epoch <= 120:
            current_lr = opt.lr / 1000.
        lrs.append(current_lr)
    return lrs


def adnet_colour_lrs(opt, epochs):
    """ADNet color/train.py lines 67-75: its first decay follows --milestone, the later ones are hard-coded."""
    lrs = []
    for epoch in range(epochs):
        if epoch <= opt.milestone:
            current_lr = opt.lr
        if epoch > opt.milestone and epoch <= 60:
            current_lr = opt.lr / 10.
        if epoch > 60 and epoch <= 90:
            current_lr = opt.lr / 100.
        if epoch > 90:
            current_lr = opt.lr / 1000.
        lrs.append(current_lr)
    return lrs


EPOCHS = 131  # 0..130: past the references' last hard-coded bound (120)


def our_lrs(args):
    return [training.lr_at(args, epoch, 0, 1) for epoch in range(EPOCHS)]


@pytest.mark.parametrize("milestone", [30, 10, 45])
def test_dncnn_lr_is_saoyans_at_every_epoch(milestone):
    args = train.parse_args(["--milestone", str(milestone)])
    assert our_lrs(args) == pytest.approx(saoyan_lrs(args, EPOCHS), rel=1e-12)


def test_adnet_lr_is_the_authors_at_every_epoch():
    args = train.parse_args(["--arch", "ADNet"])
    assert args.milestone == 30
    assert our_lrs(args) == pytest.approx(adnet_gray_lrs(args, EPOCHS), rel=1e-12)
    assert our_lrs(args) == pytest.approx(adnet_colour_lrs(args, EPOCHS), rel=1e-12)


def test_adnet_milestone_moves_every_decay():
    """The authors' gray script ignores --milestone (its 30s are hard-coded) and their colour script moves only
    the first decay; ours decays at milestone, 2x and 3x milestone, and equals both at the default 30."""
    args = train.parse_args(["--arch", "ADNet", "--milestone", "20"])
    default = train.parse_args(["--arch", "ADNet"])
    assert adnet_gray_lrs(args, 121) == adnet_gray_lrs(default, 121)
    lr = args.lr
    expected = [lr] * 21 + [lr / 10] * 20 + [lr / 100] * 20 + [lr / 1000] * (EPOCHS - 61)
    assert our_lrs(args) == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------- our weights in their test.py
class SaoYanDnCNN(nn.Module):
    """SaoYan/DnCNN-PyTorch models.py, as written."""

    def __init__(self, channels, num_of_layers=17):
        super(SaoYanDnCNN, self).__init__()
        kernel_size = 3
        padding = 1
        features = 64
        layers = []
        layers.append(nn.Conv2d(in_channels=channels, out_channels=features, kernel_size=kernel_size, padding=padding, bias=False))
        layers.append(nn.ReLU(inplace=True))
        for _ in range(num_of_layers - 2):
            layers.append(nn.Conv2d(in_channels=features, out_channels=features, kernel_size=kernel_size, padding=padding, bias=False))
            layers.append(nn.BatchNorm2d(features))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(in_channels=features, out_channels=channels, kernel_size=kernel_size, padding=padding, bias=False))
        self.dncnn = nn.Sequential(*layers)

    def forward(self, x):
        out = self.dncnn(x)
        return out


def test_save_module_prefix_weights_load_the_references_way(tiny_h5, tmp_path):
    from conftest import run_script
    from checkpoints import load_model
    out = run_script("train.py", "--h5_dir", tiny_h5, "--outf", str(tmp_path), "--batchSize", "16", "--num_of_layers", "5",
                     "--max_steps", "1", "--tensorboard", "False", "--quiet", "--save_module_prefix")
    assert out.returncode == 0, out.stderr
    state = torch.load(tmp_path / "net.pth", weights_only=True)
    assert all(k.startswith("module.") for k in state)
    # SaoYan test.py lines 27-31, on CPU (their .cuda() dropped)
    net = SaoYanDnCNN(channels=1, num_of_layers=5)
    model = nn.DataParallel(net)
    model.load_state_dict(torch.load(tmp_path / "net.pth"))
    model.eval()
    ours = load_model(str(tmp_path))
    noisy = torch.rand(1, 1, 33, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(noisy), ours(noisy))
