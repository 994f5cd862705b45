import os

import torch

from conftest import ROOT
from models import ADNet, DnCNN, build_model, denoise, fold_batchnorm, receptive_radius
from checkpoints import load_model
from inference import denoise_image


def test_dncnn_parameter_names_match_saoyan():
    keys = list(DnCNN(1, 17).state_dict())
    assert keys[0] == "dncnn.0.weight"
    assert keys[1:5] == ["dncnn.2.weight", "dncnn.3.weight", "dncnn.3.bias", "dncnn.3.running_mean"]
    assert keys[-1] == "dncnn.47.weight"
    assert sum(1 for k, v in DnCNN(1, 20).state_dict().items() if v.dim() == 4) == 20


def test_adnet_parameter_names_and_shapes():
    sd = ADNet(1).state_dict()
    assert sd["conv1_1.0.weight"].shape == (64, 1, 3, 3)
    assert sd["conv1_16.weight"].shape == (1, 64, 3, 3)
    assert sd["conv3.weight"].shape == (1, 2, 1, 1) and "conv3.bias" in sd
    assert "conv1_16.bias" not in sd
    dilated = [k for k in range(1, 16) if getattr(ADNet(1), "conv1_%d" % k)[0].dilation == (2, 2)]
    assert dilated == [2, 5, 9, 12]


def test_reference_inits():
    torch.manual_seed(0)
    d = build_model("DnCNN")
    bn = [m.weight for m in d.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(w.abs().max() <= 0.025 for w in bn)
    a = build_model("ADNet")
    bn = [m for m in a.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.weight.abs().min() >= 0.025 for m in bn)
    assert all(torch.all(m.running_var == 0.01) for m in bn)


def _randomize_bn(model):
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2)
            m.bias.data.uniform_(-0.1, 0.1)
    return model.eval()


def _with_image_sized_residual(model):
    """Randomized batch-norm shrinks what the convolutions subtract from the image to ~0.05; scaling the last conv
    by 20 makes it image-sized (~1), so an error in the convolutions shows in the output at full size."""
    last_conv = model.dncnn[-1] if isinstance(model, DnCNN) else model.conv1_16
    with torch.no_grad():
        last_conv.weight.mul_(20.0)
    return model


def _largest_residual(noisy, clean_estimate):
    """What the convolutions computed: fp32 rounding errors are relative to its size, not to the image's."""
    return (noisy - clean_estimate).abs().max().item()


def test_folded_equals_unfolded():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 33, 41)
    for arch in ("DnCNN", "ADNet"):
        model = _with_image_sized_residual(_randomize_bn(build_model(arch)))
        folded = fold_batchnorm(model)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        with torch.no_grad():
            unfolded_out, folded_out = denoise(model, x), denoise(folded, x)
        residual = _largest_residual(x, unfolded_out)
        assert residual > 0.5, (arch, residual)  # else a wrong fold could hide in a near-zero residual
        assert (unfolded_out - folded_out).abs().max() <= 1e-5 * residual, arch


def test_tiled_equals_whole():
    # trained nets: a random one's output depends on ~1 pixel of context, so too small a tile overlap would pass
    torch.manual_seed(0)
    noisy = torch.rand(1, 1, 150, 97)
    for arch in ("DnCNN", "ADNet"):
        net = load_model(os.path.join(ROOT, "weights", arch + "-S-25"))
        whole = denoise_image(net, noisy, torch.device("cpu"))
        tiled = denoise_image(net, noisy, torch.device("cpu"), tile=48)
        assert (whole - tiled).abs().max() <= 1e-5, arch
        assert receptive_radius(net) > 0


def test_residual_init_starts_adnet_as_a_residual_learner():
    torch.manual_seed(0)
    a = build_model("ADNet", init="residual").eval()
    assert torch.all(a.conv3.weight == 0) and torch.all(a.conv3.bias == 1)
    x = torch.rand(1, 1, 24, 24)
    with torch.no_grad():
        r = x
        for k in range(1, 16):
            r = getattr(a, "conv1_%d" % k)(r)
        r = a.conv1_16(r)
        assert torch.allclose(a(x), x - r)
    d = build_model("DnCNN", init="residual")
    bn = [m.weight for m in d.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(w.abs().max() <= 0.025 for w in bn)
