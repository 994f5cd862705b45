"""Evaluate a checkpoint on a test set under the fixed noise protocol (PSNR, SSIM).

    python test.py --logdir logs/DnCNN-S-25 --test_data Set68 --test_noiseL 25
    python test.py --logdir adnet/color/c25 --test_data McMaster --test_noiseL 25 --seed 12 --copies 3
Colour checkpoints read the images in colour (BGR, as the ADNet authors), gray ones in gray (luma).
--test_noiseL 0: the images are already noisy (real noise); they are denoised, no PSNR is computed.
The set is streamed: one image decoded at a time (the next ahead, in a thread), each printed and saved when done.
"""
import csv
import io
import os

import numpy as np

from utils import (ArgParser, UserError, add_common_inference_flags, add_legacy_flags, atomic_write_bytes,
                   evaluate_iter, inference_net, iter_images, legacy_device_id, list_images, load_model, non_negative,
                   positive, precision_for, resolve_set, run_cli, say, select_device, setup_host, write_image)


def parse_args(argv=None):
    p = ArgParser(description="DnCNN / ADNet test")
    p.add_argument("--logdir", default="logs", help="checkpoint file, or folder holding net.pth / model_70.pth / ...")
    p.add_argument("--test_data", default="Set12", help="set name under --data_path (Set68 and BSD68 name one set), or any folder of images")
    p.add_argument("--data_path", default="data")
    p.add_argument("--test_noiseL", type=non_negative(float), default=25, help="noise sigma on the 0-255 scale")
    p.add_argument("--seed", type=int, default=0, help="noise seed, reset before each image (ADNet's colour protocol: 12)")
    p.add_argument("--copies", type=positive(int), default=1,
                   help="N noisy copies of each image in one batch, noise drawn once for the batch, PSNR averaged "
                        "(ADNet's colour protocol: 3)")
    p.add_argument("--save_dir", default=None, help="write denoised images and results.csv here")
    p.add_argument("--save_noisy", action="store_true", help="with --save_dir: also write the noisy inputs")
    add_common_inference_flags(p)
    add_legacy_flags(p)
    return p.parse_args(argv)


def save_row(row, save_dir, save_noisy):
    """Write one image's denoised (and noisy) result as soon as it is done; its arrays are then dropped."""
    stem = os.path.splitext(row.pop("name"))[0]
    write_image(os.path.join(save_dir, stem + "_denoised.png"), row.pop("denoised"))
    noisy = row.pop("noisy")
    if save_noisy:
        write_image(os.path.join(save_dir, stem + "_noisy.png"), np.clip(noisy, 0, 1))


def write_csv(scores, save_dir):
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["image", "psnr", "ssim"])
    for name, value, ssim in scores:
        writer.writerow([name, "%.4f" % value, "%.4f" % ssim])
    atomic_write_bytes(os.path.join(save_dir, "results.csv"), table.getvalue().encode())


def main(argv=None):
    args = parse_args(argv)
    device = select_device(args.device, device_id=legacy_device_id(args))
    setup_host(device)
    model = load_model(args.logdir, args.arch, args.num_of_layers)
    print("Loading model %s ..." % model.checkpoint_path)
    if getattr(model, "output_note", None):
        print(model.output_note)
    folder = resolve_set(args.data_path, args.test_data)
    files = list_images(folder)
    precision = precision_for(args.amp, device)
    if args.amp != "none":
        print("precision: %s" % precision)
    net, why = inference_net(model, device, args.backend, precision.dtype, fold=not args.no_fold)
    print(why)
    if args.save_dir:
        os.makedirs(args.save_dir, exist_ok=True)
    # one image at a time (the next decoded ahead in a thread): memory does not grow with the set
    rows = evaluate_iter(net, iter_images(files, channels=model.channels), args.test_noiseL, device,
                         amp=precision.dtype, seed=args.seed, tile=args.tile, with_ssim=True, quiet=args.quiet,
                         copies=args.copies, x8=args.x8, total=len(files))
    scores, count = [], 0
    for row in rows:
        count += 1
        if args.test_noiseL == 0:
            say("%s denoised" % row["name"])
        else:
            say("%s PSNR %f SSIM %f" % (row["name"], row["psnr"], row["ssim"]))
            scores.append((row["name"], row["psnr"], row["ssim"]))
        if args.save_dir:
            save_row(row, args.save_dir, args.save_noisy)
    if not count:
        raise UserError("no usable image in %s" % folder)
    if args.test_noiseL == 0:
        print("\ndenoised %d images (--test_noiseL 0: no clean reference, no PSNR)" % count)
    else:
        mean_psnr = sum(s[1] for s in scores) / len(scores)
        mean_ssim = float(np.nanmean([s[2] for s in scores]))
        print("\nPSNR on test data %f" % mean_psnr)
        print("SSIM on test data %f" % mean_ssim)
        if args.save_dir:
            write_csv(scores, args.save_dir)
    return 0


if __name__ == "__main__":
    run_cli(main)
