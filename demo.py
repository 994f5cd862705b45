"""Denoise every image of a folder; one denoised file and one side-by-side comparison per input.

Colour photos stay in colour: a colour model sees the colour image, a gray model denoises its luma
(chroma kept). A colour model on a gray image works on the gray repeated in three channels.

    python demo.py --demo_img_path my_photos --demo_pth_path weights/DnCNN-S-25 --test_noiseL 0
"""
import os

import numpy as np
import torch

from utils import (ArgParser, UserError, add_common_inference_flags, add_legacy_flags, add_test_noise, denoise_any,
                   inference_net, legacy_device_id, load_model, non_negative, psnr, precision_for, read_images, run_cli,
                   select_device, set_cpu_threads, progress, write_image)

DEFAULT_WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "DnCNN-S-25")
DEFAULT_IMAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "demo")
DEFAULT_OUT = "demo_output"
ADNET_DATA = "data"  # the ADNet port's demo read data/<--demo_img_path> (default demo_img), wrote into its result/


def parse_args(argv=None):
    p = ArgParser(description="DnCNN / ADNet demo: denoise a folder of images")
    p.add_argument("--demo_img_path", default=None,
                   help="folder of images to denoise (also looked up under data/, as the ADNet port); default: "
                        "data/demo_img if it exists, else the bundled data/demo")
    p.add_argument("--demo_pth_path", default=DEFAULT_WEIGHTS, help="checkpoint file or folder")
    p.add_argument("--test_noiseL", type=non_negative(float), default=25,
                   help="> 0: add this much synthetic noise first and report PSNR; 0: the images are already noisy")
    p.add_argument("--out", default=None,
                   help="output folder (default: %s; for images in data/<folder>, data/<folder>/result)" % DEFAULT_OUT)
    p.add_argument("--seed", type=int, default=0)
    add_common_inference_flags(p)
    add_legacy_flags(p)
    return p.parse_args(argv)


def demo_folders(image_path, out):
    """(images, results) folders. The ADNet port's layout -- images in data/<folder> (default data/demo_img) --
    puts the results in data/<folder>/result, as that port did; anything else goes to DEFAULT_OUT."""
    if image_path is None:
        image_path = os.path.join(ADNET_DATA, "demo_img")
        if not os.path.isdir(image_path):
            return DEFAULT_IMAGES, out or DEFAULT_OUT
        return image_path, out or os.path.join(image_path, "result")
    under_data = os.path.join(ADNET_DATA, image_path)
    if not os.path.isdir(image_path) and os.path.isdir(under_data):
        return under_data, out or os.path.join(under_data, "result")
    return image_path, out or DEFAULT_OUT


def caption(img, text):
    """(H, W, C) image with a white caption strip above it."""
    import cv2
    strip = np.full((24, img.shape[1], img.shape[2]), 255, np.uint8)
    cv2.putText(strip, text, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0,) * img.shape[2], 1, cv2.LINE_AA)
    return np.vstack([strip.astype(np.float32) / 255.0, img])


def side_by_side(panels):
    """One (C, H, W) image of captioned (title, (C, H, W)) panels side by side."""
    channels = panels[0][1].shape[0]
    gap = np.ones((panels[0][1].shape[1] + 24, 6, channels), np.float32)
    parts = []
    for title, img in panels:
        parts += [caption(np.ascontiguousarray(np.transpose(np.clip(img, 0, 1), (1, 2, 0))), title), gap]
    return np.transpose(np.hstack(parts[:-1]), (2, 0, 1))


def denoise_folder(args):
    set_cpu_threads()
    device = select_device(args.device, device_id=legacy_device_id(args))
    model = load_model(args.demo_pth_path, args.arch, args.num_of_layers)
    if getattr(model, "output_note", None):
        print(model.output_note)
    precision = precision_for(args.amp, device)
    if args.amp != "none":
        print("precision: %s" % precision)
    amp = precision.dtype
    net, why = inference_net(model, device, args.backend, amp, fold=not args.no_fold)
    print(why)
    image_path, out_path = demo_folders(args.demo_img_path, args.out)
    images = read_images(image_path, channels=None)
    os.makedirs(out_path, exist_ok=True)
    results = []
    for path, img in progress(images, quiet=args.quiet, desc="demo", unit="img"):
        if img.shape[0] == 3 and model.channels == 1:
            print("%s: colour photo, gray model: denoising its luma, keeping its colour" % os.path.basename(path))
        noisy = add_test_noise(torch.from_numpy(img), args.test_noiseL, args.seed).numpy() if args.test_noiseL > 0 else img
        out = np.clip(denoise_any(net, noisy, device, amp=amp, tile=args.tile, x8=args.x8), 0, 1)
        stem = os.path.splitext(os.path.basename(path))[0]
        write_image(os.path.join(out_path, stem + "_denoised.png"), out)
        panels = [("noisy", noisy), ("denoised", out)]
        if args.test_noiseL > 0:
            value = psnr(img, out)
            panels[1] = ("denoised %.2f dB" % value, out)
            panels.append(("clean", img))
            print("%s PSNR %f (noisy %f)" % (os.path.basename(path), value, psnr(img, np.clip(noisy, 0, 1))))
        else:
            value = None
            print("%s denoised" % os.path.basename(path))
        write_image(os.path.join(out_path, stem + "_compare.png"), side_by_side(panels))
        results.append((path, value))
    print("wrote %d denoised images and comparisons to %s" % (len(results), out_path))
    return results


def main(argv=None):
    args = parse_args(argv)
    if not os.path.exists(args.demo_pth_path):
        raise UserError("no weights at %s (train some with train.py, or pass --demo_pth_path)" % args.demo_pth_path)
    denoise_folder(args)
    return 0


if __name__ == "__main__":
    run_cli(main)
