"""DnCNN (Zhang et al., TIP 2017), its flexible FDnCNN, and ADNet (Tian et al., 2020).

Parameter names match SaoYan/DnCNN-PyTorch and hellloxiaotian/ADNet, so their
checkpoints load once a DataParallel ``module.`` prefix is stripped; the DnCNN authors' MatConvNet models and
KAIR's conversions of them (BN merged into biased convs) load into the same DnCNN with ``batch_norm=False``.
"""
import copy
import math

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

ARCHS = ("DnCNN", "ADNet", "FDnCNN")
FEATURES = 64


class DnCNN(nn.Module):
    """conv+ReLU, (L-2) x [conv+BN+ReLU], conv. Predicts the noise (residual learning).

    batch_norm=False: every conv biased and no BN, as the DnCNN authors' released models (BN merged).
    noise_map=True (FDnCNN): the input is the image with one more channel appended, the noise level map
    (sigma / 255 per pixel), and the output is the clean image, as the authors' FDnCNN.
    """

    def __init__(self, channels=1, num_of_layers=17, batch_norm=True, noise_map=False):
        super().__init__()
        bias = not batch_norm
        layers = [nn.Conv2d(channels + int(noise_map), FEATURES, 3, padding=1, bias=bias), nn.ReLU(inplace=True)]
        for _ in range(num_of_layers - 2):
            layers.append(nn.Conv2d(FEATURES, FEATURES, 3, padding=1, bias=bias))
            if batch_norm:
                layers.append(nn.BatchNorm2d(FEATURES))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(FEATURES, channels, 3, padding=1, bias=bias))
        self.dncnn = nn.Sequential(*layers)
        self.num_of_layers = num_of_layers
        self.channels = channels
        self.noise_map = noise_map
        self.batch_norm = batch_norm
        self.predicts_noise = not noise_map

    def forward(self, x):
        return self.dncnn(x)


def _conv_bn_relu(in_ch, dilation=1):
    return nn.Sequential(
        nn.Conv2d(in_ch, FEATURES, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(FEATURES), nn.ReLU(inplace=True))


ADNET_DILATED = (2, 5, 9, 12)


class ADNet(nn.Module):
    """Gray ADNet: 15 conv+BN+ReLU blocks (4 dilated), a 64->C conv and a 1x1 attention conv.

    Returns the clean image: x - conv3(tanh(cat[x, r])) * r, with r = conv1_16(...).
    """

    predicts_noise = False
    noise_map = False
    num_of_layers = 17

    def __init__(self, channels=1):
        super().__init__()
        for k in range(1, 16):
            block = _conv_bn_relu(channels if k == 1 else FEATURES, 2 if k in ADNET_DILATED else 1)
            setattr(self, "conv1_%d" % k, block)
        self.conv1_16 = nn.Conv2d(FEATURES, channels, 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(2 * channels, channels, 1, bias=True)
        self.channels = channels

    def forward(self, x):
        r = x
        for k in range(1, 16):
            r = getattr(self, "conv1_%d" % k)(r)
        r = self.conv1_16(r)
        attention = self.conv3(torch.tanh(torch.cat([x, r], 1)))
        return x - attention * r


@torch.no_grad()
def init_dncnn_weights(model):
    """SaoYan's weights_init_kaiming."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.normal_(0, math.sqrt(2.0 / 9.0 / 64.0)).clamp_(-0.025, 0.025)
            m.bias.zero_()


ADNET_CONV_STD = math.sqrt(2.0 / (9.0 * 64))  # 0.0589: the authors' std for EVERY conv, 1x1 and 64->C included


@torch.no_grad()
def init_adnet_weights(model):
    """The ADNet authors' init (gray/ and color/models.py), line for line.

    Every conv weight ~ N(0, 2/576) -- their per-layer fan formula is commented out in their code, so the
    1x1 attention conv and the last conv get that std too; conv biases (conv3's) keep PyTorch's default.
    BN weights ~ N(0, 2/576) with |w| < 0.025 pushed out to +-0.025; BN running_var 0.01; BN bias 0.
    """
    clip_b = 0.025
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.normal_(0, ADNET_CONV_STD)
        elif isinstance(m, nn.BatchNorm2d):
            w = m.weight.normal_(0, ADNET_CONV_STD)
            w[(w >= 0) & (w < clip_b)] = clip_b
            w[(w < 0) & (w > -clip_b)] = -clip_b
            m.running_var.fill_(0.01)


@torch.no_grad()
def init_adnet_as_residual(model):
    """DnCNN's init, with ADNet's attention starting as the constant 1 (out = x - r)."""
    init_dncnn_weights(model)
    model.conv3.weight.zero_()
    model.conv3.bias.fill_(1.0)


INITS = {"reference": {"DnCNN": init_dncnn_weights, "ADNet": init_adnet_weights},
         "residual": {"DnCNN": init_dncnn_weights, "ADNet": init_adnet_as_residual}}


FDNCNN_LAYERS = 20  # the authors' FDnCNN depth


def build_model(arch="DnCNN", channels=1, num_of_layers=17, init="reference", batch_norm=True):
    """A fresh model; init is a key of INITS, or None to keep PyTorch's defaults (weights to be loaded).

    FDnCNN is DnCNN with the noise level map as one more input channel, returning the clean image.
    """
    if arch in ("DnCNN", "FDnCNN"):
        model = DnCNN(channels, num_of_layers, batch_norm=batch_norm, noise_map=arch == "FDnCNN")
    elif arch == "ADNet":
        model = ADNet(channels)
    else:
        raise ValueError("unknown arch %r (choose from %s)" % (arch, ", ".join(ARCHS)))
    if init:
        INITS[init]["ADNet" if arch == "ADNet" else "DnCNN"](model)
    return model


def arch_name(model):
    """'DnCNN', 'FDnCNN' or 'ADNet' of a bare model."""
    return "ADNet" if isinstance(model, ADNet) else "FDnCNN" if model.noise_map else "DnCNN"


def with_noise_map(noisy, sigma):
    """FDnCNN's input: the (N, C, H, W) image with its noise level map (sigma / 255: a number, or a tensor
    broadcastable to (N, 1, H, W)) appended as one more channel, as the authors' concat layer does."""
    n, _, h, w = noisy.shape
    level = torch.as_tensor(sigma, dtype=noisy.dtype, device=noisy.device) / 255.0
    return torch.cat([noisy, level.expand(n, 1, h, w)], 1)


def unwrap(model):
    """The bare network inside DistributedDataParallel and/or torch.compile wrappers."""
    model = getattr(model, "_orig_mod", model)
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def denoise(model, noisy, sigma=None):
    """Clean estimate from any model: DnCNN predicts the noise, ADNet and FDnCNN the image (see outputs_noise).
    FDnCNN is told the noise level: sigma (0-255 scale: a number or a per-pixel map, see with_noise_map), or
    the map already appended to noisy as its last channel (so tiles and flips carry it along)."""
    bare = unwrap(model)
    if getattr(bare, "noise_map", False) and noisy.shape[1] == bare.channels:
        if sigma is None:
            raise ValueError("FDnCNN needs the noise level (sigma)")
        noisy = with_noise_map(noisy, sigma)
    out = model(noisy)
    return noisy[:, :bare.channels] - out if bare.predicts_noise else out


@torch.no_grad()
def outputs_noise(model, sigma=25.0):
    """True when a trained model's output is the noise, False when it is the clean image, None when neither
    reading is clearly better (an untrained model).

    Needed because a checkpoint does not say: the ADNet authors' real-noise model (real/model_25.pth) has the
    image-predicting ADNet's layers, yet outputs the noise (their released real/train.py trains towards the
    image, but the checkpoint behaves as their commented-out line, which trained towards the noise); read
    as the image, as their real/test_c.py does, its output is black. The probe: a smooth synthetic image
    with Gaussian noise, both readings of the output compared with the clean image.
    """
    side = torch.linspace(0, 6.0, 64)
    clean = 0.5 + 0.3 * torch.sin(side)[:, None] * torch.cos(0.7 * side)[None, :]
    clean = clean.expand(1, model.channels, 64, 64).contiguous()
    noisy = clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * sigma / 255.0
    was_training = model.training
    out = model.eval()(with_noise_map(noisy, sigma) if getattr(model, "noise_map", False) else noisy).float()
    model.train(was_training)
    err_as_image = (out.clamp(0, 1) - clean).pow(2).mean().item()
    err_as_noise = (noisy - out).clamp(0, 1).sub(clean).pow(2).mean().item()
    if err_as_noise * 4 < err_as_image:
        return True
    if err_as_image * 4 < err_as_noise:
        return False
    return None


def fold_batchnorm(model):
    """An eval-mode copy with every conv followed by BN merged into one biased conv."""
    folded = copy.deepcopy(model).eval()
    for seq in folded.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.modules.batchnorm._BatchNorm):  # SyncBatchNorm too
                seq[i] = fuse_conv_bn_eval(conv, bn)
                seq[i + 1] = nn.Identity()
    return folded


def receptive_radius(model):
    """Pixels of context each output pixel sees on one side (sum of conv half-widths)."""
    return sum(m.dilation[0] * (m.kernel_size[0] // 2) for m in model.modules() if isinstance(m, nn.Conv2d))
