"""Evaluate a checkpoint on a test set under the fixed noise protocol (PSNR, SSIM).

    python test.py --logdir logs/DnCNN-S-25 --test_data Set68 --test_noiseL 25
    python test.py --logdir adnet/color/c25 --test_data McMaster --test_noiseL 25 --seed 12 --copies 3
    python test.py --logdir auto --test_data PolyU --test_noiseL 0     # a model chosen per photo, as demo.py's
    python test.py --logdir ../shared/reference_weights/cszn/DnCNN3.mat --test_data Set5 --task sr --scale 3
    python test.py --logdir ../shared/reference_weights/cszn/DnCNN3.mat --test_data LIVE1 --task jpeg --quality 20
Colour checkpoints read the images in colour (BGR, as the ADNet authors), gray ones in gray (luma).
--test_noiseL 0: the images are already noisy (real noise); they are denoised, and scored where the folder holds
their clean versions too (PolyU's <name>_real / <name>_mean files, or noisy/ and clean/ sub-folders).
--task sr / jpeg: the DnCNN authors' super-resolution and JPEG deblocking protocols (protocols.py), scored as they
score them; --uint8_output: denoising scored as the authors do (output rounded to 8 bits, their PSNR and SSIM).
The set is streamed: one image decoded at a time (the next ahead, in a thread), each printed and saved when done.
"""
import csv
import io
import os

import numpy as np

from images import find_pairs, iter_images, iter_pairs, list_images, write_image
from inference import (ChosenNets, add_common_inference_flags, evaluate_iter, evaluate_pairs, load_net,
                       prepare_device)
from photo_noise import add_reference_weights_flag, describe
from protocols import TASKS, check_model, evaluate_task
from protocols import describe as describe_task
from reference_weights import add_offline_flag, weights_for_default
from utils import (ArgParser, UserError, add_legacy_flags, atomic_write_bytes, in_range, non_negative, positive,
                   run_cli, say)

SET_ALIASES = {"Set68": "BSD68", "BSD68": "Set68"}  # one set: DnCNN-PyTorch's name and the ADNet port's


def parse_args(argv=None):
    p = ArgParser(description="DnCNN / ADNet test")
    p.add_argument("--logdir", default="logs", help="checkpoint file, or folder holding net.pth / model_70.pth / ...; "
                   "auto: for each image the model its noise calls for, as demo.py's default (docs/real-noise.md)")
    p.add_argument("--test_data", default="Set12", help="set name under --data_path (Set68 and BSD68 name one set), or any folder of images")
    p.add_argument("--data_path", default="data")
    p.add_argument("--test_noiseL", type=non_negative(float), default=25, help="noise sigma on the 0-255 scale")
    p.add_argument("--seed", type=int, default=0, help="noise seed, reset before each image (ADNet's colour protocol: 12)")
    p.add_argument("--copies", type=positive(int), default=1,
                   help="N noisy copies of each image in one batch, noise drawn once for the batch, PSNR averaged "
                        "(ADNet's colour protocol: 3)")
    p.add_argument("--eight_bit", action="store_true",
                   help="round the noisy images to 8 bits (clipped), as photos stored with their noise are")
    p.add_argument("--task", choices=TASKS, default="denoise",
                   help="denoise (default): the noise protocol above; sr: super-resolution of the bicubic upscale "
                        "(--scale), jpeg: JPEG deblocking (--quality), as the DnCNN authors test DnCNN-3 "
                        "(Demo_test_DnCNN3.m: MATLAB's imresize and rgb2ycbcr, the Y channel, their PSNR and SSIM)")
    p.add_argument("--scale", type=in_range(int, 2, 4), default=3, help="--task sr: the upscaling factor, 2, 3 or 4")
    p.add_argument("--quality", type=in_range(int, 1, 100), default=20, help="--task jpeg: the JPEG quality, 1-100")
    p.add_argument("--uint8_output", action="store_true",
                   help="denoising scored as the DnCNN authors' demos: the output rounded to 8 bits (im2uint8) "
                        "before PSNR, SSIM with Wang's 11x11 Gaussian window (their Cal_PSNRSSIM)")
    p.add_argument("--save_dir", default=None, help="write denoised images and results.csv here")
    p.add_argument("--save_noisy", action="store_true", help="with --save_dir: also write the noisy inputs")
    add_common_inference_flags(p)
    add_reference_weights_flag(p)
    add_offline_flag(p)
    add_legacy_flags(p)
    return p.parse_args(argv)


def resolve_set(data_path, name):
    """--test_data is a set name under --data_path, or a folder; Set68 and BSD68 stand for each other."""
    alias = os.path.join(data_path, SET_ALIASES[name]) if name in SET_ALIASES else name
    for candidate in (os.path.join(data_path, name), name, alias):
        if os.path.isdir(candidate):
            return candidate
    raise UserError("test set %r not found (neither %s nor %s is a folder)"
                    % (name, os.path.join(data_path, name), name))


def save_row(row, save_dir, save_noisy):
    """Write one image's denoised (and noisy) result as soon as it is done; its arrays are then dropped."""
    stem = os.path.splitext(row.pop("name"))[0]
    write_image(os.path.join(save_dir, stem + "_denoised.png"), row.pop("denoised"))
    noisy = row.pop("noisy")
    if save_noisy:
        write_image(os.path.join(save_dir, stem + "_noisy.png"), np.clip(noisy, 0, 1))


CHOICE_COLUMNS = ("noise_sigma", "noise_sigma_2x2", "noise", "model")


def write_csv(scores, save_dir):
    """results.csv: per image PSNR, SSIM, with pairs the noisy input's PSNR, under --logdir auto the choice."""
    table = io.StringIO()
    writer = csv.writer(table)
    columns = ["image", "psnr", "ssim"] + [k for k in ("noisy_psnr",) + CHOICE_COLUMNS if k in scores[0]]
    writer.writerow(columns)
    for row in scores:
        writer.writerow([("%.4f" % row[k]) if isinstance(row[k], float) else row[k] for k in columns])
    atomic_write_bytes(os.path.join(save_dir, "results.csv"), table.getvalue().encode())


def score_row(row):
    """What results.csv keeps of an evaluated row."""
    kept = {"image": row["name"], "psnr": row["psnr"], "ssim": row["ssim"]}
    if "noisy_psnr" in row:
        kept["noisy_psnr"] = row["noisy_psnr"]
    if "choice" in row:
        reading = row["reading"]
        kept.update(noise_sigma="%.2f" % reading.sigma, noise_sigma_2x2="%.2f" % reading.sigma_2x2,
                    noise=reading.kind, model=row["choice"].name or "none")
    return kept


def check_task_flags(args, model):
    """The flags of the denoising protocol have no meaning under --task sr / jpeg: a UserError for any given."""
    if args.task == "denoise":
        return
    for given, flag in ((args.copies != 1, "--copies"), (args.eight_bit, "--eight_bit"),
                        (args.uint8_output, "--uint8_output"), (args.strength != 1.0, "--strength"),
                        (args.noise_level is not None, "--noise_level")):
        if given:
            raise UserError("%s applies to --task denoise, not --task %s" % (flag, args.task))
    check_model(model, args.task)


def main(argv=None):
    args = parse_args(argv)
    if args.task != "denoise" and args.logdir == "auto":
        check_model(None, args.task)
    device, precision = prepare_device(args)
    if args.logdir == "auto":
        model, net = None, None
        chosen = ChosenNets(args, device, precision, weights_for_default(args))
    else:
        model, net = load_net(args, args.logdir, device, precision, announce=True)
        chosen = None
        check_task_flags(args, model)
    folder = resolve_set(args.data_path, args.test_data)
    layout, pairs = find_pairs(folder) if args.test_noiseL == 0 and args.task == "denoise" else (None, [])
    files = list_images(folder)
    if args.save_dir:
        os.makedirs(args.save_dir, exist_ok=True)
    # one image at a time (the next decoded ahead in a thread): memory does not grow with the set
    if args.task != "denoise":
        print(describe_task(args.task, args.scale, args.quality))
        rows = evaluate_task(net, files, args.task, device, scale=args.scale, quality=args.quality,
                             amp=precision.dtype, tile=args.tile, x8=args.x8, quiet=args.quiet)
    elif pairs:
        print("%d pairs of already noisy and clean photos (%s): scored against the clean ones" % (len(pairs), layout))
        rows = evaluate_pairs(net, iter_pairs(pairs), device, amp=precision.dtype, tile=args.tile, x8=args.x8,
                              quiet=args.quiet, total=len(pairs), chosen=chosen, strength=args.strength,
                              noise_level=args.noise_level)
    else:
        channels = None if model is None else model.channels  # auto: each image as stored, gray or colour
        rows = evaluate_iter(net, iter_images(files, channels=channels), args.test_noiseL, device,
                             amp=precision.dtype, seed=args.seed, tile=args.tile, with_ssim=True, quiet=args.quiet,
                             copies=args.copies, x8=args.x8, total=len(files), chosen=chosen, eight_bit=args.eight_bit,
                             strength=args.strength, noise_level=args.noise_level, uint8_output=args.uint8_output)
    scored = bool(pairs) or args.test_noiseL > 0 or args.task != "denoise"
    scores, count = [], 0
    for row in rows:
        count += 1
        if "choice" in row:
            say(describe(row["name"], row["reading"], row["choice"]))
        if not scored:
            say("%s denoised" % row["name"])
        else:
            say("%s PSNR %f SSIM %f" % (row["name"], row["psnr"], row["ssim"]))
            scores.append(score_row(row))
        if args.save_dir:
            save_row(row, args.save_dir, args.save_noisy)
    if not count:
        raise UserError("no usable image in %s" % folder)
    if not scored:
        print("\ndenoised %d images (--test_noiseL 0: no clean reference, no PSNR)" % count)
    else:
        mean_psnr = sum(s["psnr"] for s in scores) / len(scores)
        mean_ssim = float(np.nanmean([s["ssim"] for s in scores]))
        print("\nPSNR on test data %f" % mean_psnr)
        print("SSIM on test data %f" % mean_ssim)
        if pairs:
            print("PSNR of the noisy inputs %f" % (sum(s["noisy_psnr"] for s in scores) / len(scores)))
        if args.save_dir:
            write_csv(scores, args.save_dir)
    return 0

if __name__ == "__main__":
    run_cli(main)
