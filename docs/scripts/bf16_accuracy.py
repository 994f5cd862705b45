"""The bf16 table of docs/real-noise.md: each model in fp32 and under bf16 autocast (torch, forced with bf16! where
the CPU would emulate it: the rounding is the same), on photos with white noise of each sigma stored in 8 bits
(test.py --eight_bit) and on real pairs; PSNR against the clean photo, means over the photos.

    python docs/scripts/bf16_accuracy.py weights/CDnCNN-B ../shared/reference_weights/adnet/color/c15 \\
        --photos ../shared/data/Kodak24/kodim01.png ../shared/data/Kodak24/kodim09.png \\
        ../shared/data/Kodak24/kodim17.png --sigmas 5 15 25 50 --pairs ../shared/data/PolyU --every 10
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from checkpoints import load_model  # noqa: E402
from images import find_pairs, read_image  # noqa: E402
from inference import denoise_any, inference_net  # noqa: E402
from utils import eight_bit_noisy, psnr  # noqa: E402


def cases(args):
    """(column, noisy, clean) for every photo and sigma, then every pair."""
    for path in args.photos:
        clean = read_image(path, 3)
        for sigma in args.sigmas:
            yield "sigma %g" % sigma, eight_bit_noisy(clean, sigma, args.seed), clean
    if args.pairs:
        for _, noisy_path, clean_path in find_pairs(args.pairs)[1][::args.every]:
            yield os.path.basename(os.path.normpath(args.pairs)), read_image(noisy_path, 3), read_image(clean_path, 3)


def model_row(weights, args):
    """{column: (fp32 mean PSNR, bf16 mean PSNR)} of one model."""
    device = torch.device("cpu")
    net = inference_net(load_model(weights), device, backend="torch")[0]
    scores = {}
    for column, noisy, clean in cases(args):
        pair = [psnr(clean, np.clip(denoise_any(net, noisy, device, amp=amp), 0.0, 1.0))
                for amp in (None, torch.bfloat16)]
        scores.setdefault(column, []).append(pair)
    return {column: tuple(np.mean(pairs, axis=0)) for column, pairs in scores.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="+", help="checkpoints (files or folders)")
    p.add_argument("--photos", nargs="*", default=[], help="clean colour photos")
    p.add_argument("--sigmas", nargs="+", type=float, default=[5, 15, 25, 50])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pairs", default=None, help="a folder of real pairs (images.find_pairs's layouts)")
    p.add_argument("--every", type=int, default=1, help="every Nth pair")
    args = p.parse_args(argv)
    rows = [(weights, model_row(weights, args)) for weights in args.weights]
    columns = list(rows[0][1])
    print("| model | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    for weights, row in rows:
        cells = ["%.4f -> %.4f (%+.3f)" % (a, b, b - a) for a, b in (row[c] for c in columns)]
        print("| %s | %s |" % (weights, " | ".join(cells)))


if __name__ == "__main__":
    main()
