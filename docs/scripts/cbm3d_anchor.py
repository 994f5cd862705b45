"""CBM3D, the classical anchor of docs/real-noise.md's tables, on the same noisy photos test.py scores.

Not part of the project: it needs the `bm3d` package (`pip install bm3d`, beside the project's requirements).
Each photo is denoised twice: with sigma from the default's reading (photo_noise.read_noise: the 2x2 reading for
camera noise, whose pixel reading sees little of it, the pixel reading otherwise) and with the oracle sigma, the
standard deviation of noisy - clean. Colour PSNR against the clean photo, as test.py's.

    python docs/scripts/cbm3d_anchor.py ../shared/data/PolyU                      # real pairs
    python docs/scripts/cbm3d_anchor.py ../shared/data/McMaster --sigmas 5 15 25  # test.py --eight_bit's noise
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from images import find_pairs, iter_images, iter_pairs, list_images  # noqa: E402
from photo_noise import read_noise  # noqa: E402
from utils import eight_bit_noisy, psnr  # noqa: E402


def estimated_sigma(reading):
    return reading.sigma_2x2 if reading.kind == "camera" else reading.sigma


def cbm3d(noisy, sigma_8bit):
    """(3, H, W) in [0, 1] -> CBM3D's estimate, sigma in 8-bit units (white noise's, per RGB channel)."""
    import bm3d
    out = bm3d.bm3d_rgb(np.transpose(noisy, (1, 2, 0)).astype(np.float64), max(sigma_8bit, 0.1) / 255.0)
    return np.clip(np.transpose(out, (2, 0, 1)), 0.0, 1.0).astype(np.float32)


def score(name, noisy, clean, extra):
    reading = read_noise(noisy)
    oracle = 255.0 * float(np.std(noisy.astype(np.float64) - clean))
    estimate = estimated_sigma(reading)
    return dict(extra, image=name, noisy=psnr(clean, noisy), estimate=estimate, oracle=oracle, kind=reading.kind,
                cbm3d_estimate=psnr(clean, cbm3d(noisy, estimate)), cbm3d_oracle=psnr(clean, cbm3d(noisy, oracle)))


def noisy_copies(folder, sigmas, seed):
    """(name, noisy, clean, sigma) under test.py --eight_bit's protocol: add_test_noise, clipped, 8 bits."""
    for path, clean in iter_images(list_images(folder), channels=3):
        for sigma in sigmas:
            yield os.path.basename(path), eight_bit_noisy(clean, sigma, seed), clean, sigma


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--sigmas", type=float, nargs="*", default=None, help="white noise to add (none: real pairs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--every", type=int, default=1, help="every Nth photo of the sorted names")
    p.add_argument("--out", default=None, help="a JSON line per photo appended here")
    args = p.parse_args()
    if args.sigmas is None:
        items = ((n, noisy, clean, 0) for n, noisy, clean in iter_pairs(find_pairs(args.folder)[1][::args.every]))
    else:
        items = noisy_copies(args.folder, args.sigmas, args.seed)
    rows = []
    for i, (name, noisy, clean, sigma) in enumerate(items):
        if args.sigmas is not None and (i // len(args.sigmas)) % args.every:
            continue
        row = score(name, noisy, clean, {"sigma": sigma})
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
    for sigma in sorted({r["sigma"] for r in rows}):
        part = [r for r in rows if r["sigma"] == sigma]
        print("sigma %g, %d photos: noisy %.4f, CBM3D estimate %.4f, CBM3D oracle %.4f" % (
            sigma, len(part), *(np.mean([r[k] for r in part]) for k in ("noisy", "cbm3d_estimate", "cbm3d_oracle"))))


if __name__ == "__main__":
    main()
