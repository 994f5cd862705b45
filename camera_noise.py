"""Training noise that looks like a camera's: the noise of photos that are already noisy.

White Gaussian noise is not what a photo carries. A sensor's noise depends on the signal (shot noise) and
is independent per photosite; demosaicing spreads it over neighbours and colours, white balance amplifies
red and blue, the tone curve lifts it in the shadows, in-camera noise reduction blurs it, and JPEG
quantises what is left in 8x8 blocks (often with the chroma at half resolution). add_camera_noise walks a
clean sRGB batch through those steps with random parameters per patch; the target stays the clean image.
Everything runs on the training device, from one torch.Generator (reproducible per seed, rank and step).
"""
import math

import torch
import torch.nn.functional as F

# The JPEG standard's (Annex K) quantisation tables, as libjpeg scales them by quality.
LUMA_TABLE = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
              14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
              49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
CHROMA_TABLE = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
                47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32

# Per-patch parameter ranges of each profile. v1 trained weights/CDnCNN-camera (8-bit std at mid-gray about 1 to
# 13; PolyU's crops: 2.3 to 6); it removes about half of PolyU's noise. v2 and v3 are the next candidates, not yet
# trained to the end: higher levels and coarser grain (in-camera noise reduction, downscaling), v3 also noise
# made at half resolution. v4: v1's chroma-heavy noise has its channels correlated about 0.25, PolyU's real noise
# (noisy - clean) about 0.65 (docs/real-noise.md): v4's colour matrix pulls the noise towards luma instead
# (about 0.6) and its levels are higher (8-bit std 1.2 to 10, median 3; PolyU's 2.1 to 7.6).
PROFILES = {
    "v1": dict(shot_log10=(-4.5, -2.3), read_log10=(-7.0, -5.0), blur_p=0.5, blur_sigma=(0.3, 1.2), coarse_p=0.0,
               crosstalk=(0.0, 0.5)),
    "v2": dict(shot_log10=(-4.2, -2.0), read_log10=(-6.7, -4.7), blur_p=0.6, blur_sigma=(0.3, 2.0), coarse_p=0.0,
               crosstalk=(0.0, 0.5)),
    "v3": dict(shot_log10=(-4.2, -2.0), read_log10=(-6.7, -4.7), blur_p=0.6, blur_sigma=(0.3, 2.0), coarse_p=0.3,
               crosstalk=(0.0, 0.5)),
    "v4": dict(shot_log10=(-3.8, -1.7), read_log10=(-6.3, -4.3), blur_p=0.6, blur_sigma=(0.3, 2.0), coarse_p=0.0,
               crosstalk=(-0.8, 0.0)),
}
DEFAULT_PROFILE = "v1"
GAIN_RANGE = (1.0, 2.2)  # white-balance gain of red and blue over green
JPEG_P, JPEG_QUALITY, SUBSAMPLE_P = 0.75, (60, 98), 0.5
PARAMS = 10  # uniforms drawn per patch (then one more where a profile has coarse noise)


def srgb_to_linear(x):
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x):
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


def bayer_masks(height, width, device):
    """(1, 3, H, W) masks of an RGGB mosaic, in BGR channel order (the patches' order)."""
    y = torch.arange(height, device=device).view(-1, 1) % 2
    x = torch.arange(width, device=device).view(1, -1) % 2
    red, blue = (y == 0) & (x == 0), (y == 1) & (x == 1)
    green = ~(red | blue)
    return torch.stack([blue, green, red]).unsqueeze(0).float()


def bilinear_demosaic(mosaic, masks):
    """(N, 1, H, W) mosaic -> (N, 3, H, W) by bilinear interpolation of each colour's sites (linear)."""
    green = torch.tensor([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=mosaic.dtype, device=mosaic.device) / 4
    red_blue = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=mosaic.dtype, device=mosaic.device) / 4
    weight = torch.stack([red_blue, green, red_blue]).unsqueeze(1)
    return F.conv2d(F.pad(mosaic * masks, (1, 1, 1, 1), mode="reflect"), weight, groups=3)


def gaussian_blur(x, sigma):
    """Per-sample Gaussian blur (sigma: (N,)) of an (N, C, H, W) batch, 5x5, reflect padding."""
    n, c, h, w = x.shape
    taps = torch.arange(-2, 3, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-taps.view(1, -1) ** 2 / (2 * sigma.view(-1, 1) ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)
    weight = (kernel[:, :, None] * kernel[:, None, :]).repeat_interleave(c, 0).unsqueeze(1)
    out = F.conv2d(F.pad(x.reshape(1, n * c, h, w), (2, 2, 2, 2), mode="reflect"), weight, groups=n * c)
    return out.view(n, c, h, w)


def quality_tables(quality, device):
    """(N, 2, 8, 8) luma and chroma quantisation tables at each sample's quality, libjpeg's scaling."""
    q = quality.to(device=device, dtype=torch.float32).clamp(1, 100)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q).view(-1, 1, 1)
    base = torch.tensor([LUMA_TABLE, CHROMA_TABLE], dtype=torch.float32, device=device).view(1, 2, 64)
    return torch.floor((base * scale + 50) / 100).clamp(1, 255).view(-1, 2, 8, 8)


def dct_matrix(device, dtype=torch.float32):
    k = torch.arange(8, dtype=dtype, device=device)
    m = torch.cos(math.pi * (2 * k.view(1, -1) + 1) * k.view(-1, 1) / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m


def quantise_blocks(plane, table):
    """(N, H, W) plane, values centred on 0 -> the same after an 8x8 DCT quantised by (N, 8, 8) tables."""
    n, h, w = plane.shape
    pad_h, pad_w = -h % 8, -w % 8
    x = F.pad(plane.unsqueeze(1), (0, pad_w, 0, pad_h), mode="replicate").squeeze(1)
    hh, ww = x.shape[1:]
    blocks = x.view(n, hh // 8, 8, ww // 8, 8).permute(0, 1, 3, 2, 4)
    d = dct_matrix(plane.device, plane.dtype)
    coeffs = d @ blocks @ d.T
    t = table.view(n, 1, 1, 8, 8)
    blocks = d.T @ (torch.round(coeffs / t) * t) @ d
    return blocks.permute(0, 1, 3, 2, 4).reshape(n, hh, ww)[:, :h, :w]


def jpeg(bgr, quality, subsample):
    """A JPEG round trip of a (N, 3, H, W) BGR batch in [0, 1]: JFIF YCbCr, libjpeg's tables at each sample's
    quality (N,), chroma at half resolution where subsample (N, bool) (4:2:0, averaged down, repeated up),
    8-bit output."""
    x = torch.round(bgr.clamp(0, 1) * 255)
    b, g, r = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    tables = quality_tables(quality, bgr.device)
    y = quantise_blocks(y - 128, tables[:, 0]) + 128
    chroma = []
    for plane in (cb, cr):
        full = quantise_blocks(plane - 128, tables[:, 1]) + 128
        h, w = plane.shape[1:]
        half = F.avg_pool2d(F.pad(plane.unsqueeze(1), (0, w % 2, 0, h % 2), mode="replicate"), 2).squeeze(1)
        half = quantise_blocks(half - 128, tables[:, 1]) + 128
        up = half.repeat_interleave(2, 1).repeat_interleave(2, 2)[:, :h, :w]
        chroma.append(torch.where(subsample.view(-1, 1, 1), up, full))
    cb, cr = chroma
    r = y + 1.402 * (cr - 128)
    g = y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)
    b = y + 1.772 * (cb - 128)
    return torch.round(torch.stack([b, g, r], 1)).clamp(0, 255) / 255


def log_uniform(u, bounds):
    low, high = bounds
    return 10 ** (low + (high - low) * u)


def add_camera_noise(clean, gen, profile=DEFAULT_PROFILE):
    """A noisy 8-bit version of a clean (N, 3, H, W) BGR batch in [0, 1], as a camera would have taken it;
    random parameters per patch from gen (on the batch's device)."""
    if clean.shape[1] != 3:
        raise ValueError("camera noise needs colour patches (3 channels), got %d" % clean.shape[1])
    n, _, h, w = clean.shape
    x = clean.float().contiguous()
    u = torch.rand(n, PARAMS, generator=gen, device=gen.device).to(x.device)
    unit = torch.randn(n, 1, h, w, generator=gen, device=gen.device).to(x.device)
    col = lambda i: u[:, i].view(-1, 1, 1, 1)

    linear = srgb_to_linear(x)
    masks = bayer_masks(h, w, x.device)
    ones = torch.ones_like(u[:, 0])
    gains = torch.stack([GAIN_RANGE[0] + (GAIN_RANGE[1] - GAIN_RANGE[0]) * u[:, 2], ones,
                         GAIN_RANGE[0] + (GAIN_RANGE[1] - GAIN_RANGE[0]) * u[:, 3]], 1).view(n, 3, 1, 1)
    site_signal = (linear * masks).sum(1, keepdim=True)  # the linear value each photosite saw
    site_gain = (gains * masks).sum(1, keepdim=True)
    p = PROFILES[profile]
    shot, read = log_uniform(col(0), p["shot_log10"]), log_uniform(col(1), p["read_log10"])
    variance = site_gain * shot * site_signal + site_gain ** 2 * read  # raw = linear / gain, then gained back
    noise = bilinear_demosaic(unit * variance.sqrt(), masks)
    if p["coarse_p"]:  # the same noise made at half resolution and enlarged: a coarser grain
        half = unit[:, :, ::2, ::2] * F.avg_pool2d(variance, 2, ceil_mode=True).sqrt()
        coarse = F.interpolate(half, size=(h, w), mode="bilinear", align_corners=False).expand(-1, 3, -1, -1)
        pick = torch.rand(n, generator=gen, device=gen.device).to(x.device).view(-1, 1, 1, 1) < p["coarse_p"]
        noise = torch.where(pick, coarse, noise)

    low, high = p["crosstalk"]
    k = low + (high - low) * col(4)
    # colour-correction matrix I(1+k) - k/3 (rows sum to one): k > 0 pushes noise into chroma, k < 0 into luma
    noise = (1 + k) * noise - k * noise.mean(1, keepdim=True)
    low, high = p["blur_sigma"]
    blurred = gaussian_blur(noise, low + (high - low) * u[:, 5])
    noise = torch.where(col(6) < p["blur_p"], blurred, noise)

    noisy = torch.round(linear_to_srgb(linear + noise) * 255) / 255
    quality = torch.round(JPEG_QUALITY[0] + (JPEG_QUALITY[1] - JPEG_QUALITY[0]) * u[:, 7])
    compressed = jpeg(noisy, quality, u[:, 8] < SUBSAMPLE_P)
    noisy = torch.where(col(9) < JPEG_P, compressed, noisy)
    return noisy.to(clean.dtype).contiguous(memory_format=torch.channels_last
                                            if clean.is_contiguous(memory_format=torch.channels_last)
                                            else torch.contiguous_format)
