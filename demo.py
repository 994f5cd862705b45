"""Denoise every image of a folder, one photo at a time: a denoised file and a side-by-side comparison each.

    python demo.py --demo_img_path my_photos --test_noiseL 0      # for each photo the model its noise calls for
    python demo.py --demo_img_path my_photos --demo_pth_path weights/DnCNN-S-25 --test_noiseL 0   # one model
    python demo.py --demo_img_path my_jpegs --task jpeg          # JPEG blocking removed by DnCNN-3
    python demo.py --demo_img_path my_photos --task sr --scale 3   # 3x larger, DnCNN-3 on the bicubic
    torchrun --nproc_per_node 4 demo.py --demo_img_path my_photos --recursive --test_noiseL 0   # 4 devices

Photos as the viewer shows them: EXIF orientation applied, colour stays colour (a colour model sees the colour
image; a gray model denoises each of B, G, R, or with --gray_model_on_colour luma only the luma), 16-bit
stays 16-bit, alpha is carried over untouched; HEIC/HEIF through pillow-heif when it is installed. Memory
does not grow with the folder (one image decoded at a time, the next read ahead in a thread) nor, by default,
with the photo (--tile auto: tiles as memory allows, the output the whole image's). A re-run skips images
whose outputs exist (--overwrite redoes them); under torchrun the ranks split the folder.
Without --demo_pth_path each photo's noise is read and the model chosen for it (photo_noise; said per photo and
written to choices.csv in the output folder): with the DnCNN authors' files there, FDnCNN told the noise level
read off the photo (times --strength; --noise_level N fixes it), or for white noise near sigma 15 on a colour
photo ADNet c15 and for faint white noise the photo kept (photo_noise.HYBRID), a JPEG of low quality (read off
its quantisation tables) deblocked by DnCNN-3 first.
"""
import os
import time

import numpy as np
import torch

from device import dist_env
from images import (TIFF_EXTENSIONS, decode_image, list_images, pixels_to_float, prefetched, to_depth, to_hwc,
                    write_image, write_pixels)
from inference import (GRAY_ON_COLOUR, ChosenNets, add_common_inference_flags, denoise_any, fixed_level, level_for,
                       load_net, prepare_device)
from models import unwrap
from photo_noise import (DEBLOCK, REFERENCE_DIR, add_reference_weights_flag, apply_strength, choice_row, describe,
                         jpeg_quality, read_choices, write_choices)
from protocols import TASKS, check_model
from reference_weights import add_offline_flag, fetch_missing, offline, weights_for_default
from restore import DNCNN3, as_jpeg, bicubic, deblock, upscale
from utils import (ArgParser, UserError, add_legacy_flags, add_test_noise, in_range, non_negative, progress, psnr,
                   remove_stale_temp_files, run_cli, say, shard)

DEFAULT_IMAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "demo")
DEFAULT_OUT = "demo_output"
ADNET_DATA = "data"  # the ADNet port's demo read data/<--demo_img_path> (default demo_img), wrote into its result/
GRAY_MODEL_ON_COLOUR = "channels"  # measured on CBSD68: docs/inference.md, "Colour"


def parse_args(argv=None):
    p = ArgParser(description="DnCNN / ADNet demo: denoise a folder of images")
    p.add_argument("--demo_img_path", default=None,
                   help="folder of images to denoise (also looked up under data/, as the ADNet port); default: "
                        "data/demo_img if it exists, else the bundled data/demo")
    p.add_argument("--demo_pth_path", default=None,
                   help="checkpoint file or folder for every photo (default: for each photo the model its noise "
                        "calls for, from this project's weights and --reference_weights)")
    p.add_argument("--test_noiseL", type=non_negative(float), default=None,
                   help="> 0: add this much synthetic noise first and report PSNR; 0: the images are already noisy "
                        "(default 25; with --task jpeg or sr 0)")
    p.add_argument("--task", choices=TASKS, default="denoise",
                   help="denoise (default); jpeg: remove JPEG blocking; sr: upscale by --scale. Both with DnCNN-3 "
                        "(default: the DnCNN authors' DnCNN3.mat, fetched on first use; or --demo_pth_path), on the "
                        "gray image or a colour photo's Y")
    p.add_argument("--scale", type=in_range(int, 2, 4), default=2, help="--task sr: the upscaling factor (2, 3 or 4)")
    p.add_argument("--quality", type=in_range(int, 1, 100), default=None,
                   help="--task jpeg: save each photo as a JPEG of this IJG quality first (colour 4:2:0) and report "
                        "PSNR; without it the photos are taken as the JPEGs they are (their quality read and said)")
    p.add_argument("--out", default=None,
                   help="output folder (default: %s; for images in data/<folder>, data/<folder>/result)" % DEFAULT_OUT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gray_model_on_colour", choices=GRAY_ON_COLOUR, default=GRAY_MODEL_ON_COLOUR,
                   help="a gray model on a colour photo: denoise each of B, G, R (channels, the default: 6.0 to "
                        "10.6 dB better on CBSD68 at sigma 15 to 50, see README) or only the luma, keeping the chroma")
    p.add_argument("--overwrite", action="store_true", help="redo images whose outputs exist (default: skip them)")
    p.add_argument("--recursive", action="store_true", help="sub-folders too, mirrored under the output folder")
    p.add_argument("--no_compare", action="store_true", help="write only the denoised images, no side-by-side")
    p.add_argument("--dry_run", action="store_true",
                   help="print each photo's noise reading and the model and strength it would get; write nothing")
    add_common_inference_flags(p)
    add_reference_weights_flag(p)
    add_offline_flag(p)
    add_legacy_flags(p)
    args = p.parse_args(argv)
    if args.task != "denoise" and args.test_noiseL:
        p.error("--test_noiseL adds Gaussian noise for --task denoise; --task jpeg tests with --quality")
    if args.quality is not None and args.task != "jpeg":
        p.error("--quality goes with --task jpeg")
    if args.test_noiseL is None:
        args.test_noiseL = 25.0 if args.task == "denoise" else 0.0
    return args


class ImageProgress:
    """One bar over a folder's images that also moves on per tile of a large photo (fractions of an image),
    with megapixels per second; silent where progress() is."""

    def __init__(self, total, quiet=False, desc="demo"):
        self.bar = progress(None, quiet=quiet, total=total, desc=desc, unit="img",
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} images "
                                       "[{elapsed}<{remaining}{postfix}]")
        self.done, self.pixels, self.megapixels = 0.0, 0, 0.0
        self.started = time.perf_counter()

    def start(self, pixels):
        self.done, self.pixels = 0.0, pixels

    def advance(self, fraction):
        """This image's work is `fraction` further along (a retry's repeated work is not counted twice)."""
        step = min(fraction, 1.0 - self.done)
        if step <= 0:
            return
        self.done += step
        self.megapixels += step * self.pixels / 1e6
        self.bar.update(step)
        self.bar.set_postfix_str("%.2f MP/s" % (self.megapixels / max(1e-9, time.perf_counter() - self.started)),
                                 refresh=False)

    def finish(self):
        """This image is done (or skipped): the bar stands on the next whole image."""
        self.advance(1.0 - self.done)
        self.start(0)

    def close(self):
        self.bar.close()


def output_name(path, clashes=(), suffix="denoised"):
    """'<stem>_denoised.<ext>' for an input (--task jpeg: _deblocked, sr: _x<scale>): TIFF stays TIFF (16-bit or
    float kept), anything else is PNG (lossless, 8 or 16 bits, alpha). Files whose stems clash in a folder
    (IMG_1.jpg, IMG_1.heic) keep their extension in the name (IMG_1_jpg_denoised.png)."""
    stem, ext = os.path.splitext(os.path.basename(path))
    if path in clashes:
        stem += "_" + ext.lstrip(".").lower()
    return stem + "_" + suffix + (".tif" if ext.lower() in TIFF_EXTENSIONS else ".png")


def output_suffix(args):
    return {"denoise": "denoised", "jpeg": "deblocked", "sr": "x%d" % args.scale}[args.task]


def plan_outputs(files, image_root, out_root, compare=True, suffix="denoised"):
    """One job per input file: {'src', 'denoised', and with compare 'compare'} paths, sub-folders of
    image_root mirrored under out_root."""
    by_stem = {}
    for f in files:
        by_stem.setdefault(os.path.splitext(f)[0].lower(), []).append(f)
    clashes = {f for group in by_stem.values() if len(group) > 1 for f in group}
    jobs = []
    for f in files:
        folder = os.path.join(out_root, os.path.relpath(os.path.dirname(f), image_root))
        job = {"src": f, "denoised": os.path.normpath(os.path.join(folder, output_name(f, clashes, suffix)))}
        if compare:
            stem = job["denoised"].rsplit("_" + suffix, 1)[0]
            job["compare"] = stem + ("" if suffix == "denoised" else "_" + suffix) + "_compare.png"
        jobs.append(job)
    return jobs


def outputs_exist(job):
    """All of a job's outputs are there (complete: writes are atomic)."""
    return all(os.path.isfile(p) for k, p in job.items() if k != "src")


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
    """(H, W, C) uint8 image with a white caption strip above it."""
    import cv2
    strip = np.full((24, img.shape[1], img.shape[2]), 255, np.uint8)
    cv2.putText(strip, text, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0,) * img.shape[2], 1, cv2.LINE_AA)
    return np.vstack([strip, img])


def side_by_side(panels):
    """One (H, W, C) uint8 image of captioned (title, (C, H, W) float) panels side by side (8-bit whatever the
    photo's depth: it is for looking at, and stays small beside a large photo)."""
    channels = panels[0][1].shape[0]
    gap = np.full((panels[0][1].shape[1] + 24, 6, channels), 255, np.uint8)
    parts = []
    for title, img in panels:
        u8 = to_depth(to_hwc(img), np.uint8)
        parts += [caption(u8.reshape(u8.shape[:2] + (channels,)), title), gap]
    return np.hstack(parts[:-1])


def choices_file(out_path, rank, world):
    """choices.csv in the output folder (one per rank under torchrun: choices.rank<N>.csv)."""
    return os.path.join(out_path, "choices.csv" if world == 1 else "choices.rank%d.csv" % rank)


def denoise_folder(args):
    rank, local_rank, world = dist_env()
    device, precision = prepare_device(args, local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    chosen, net = None, None
    if args.task != "denoise":
        if not args.dry_run:
            model, net = load_net(args, task_weights(args), device, precision)
            check_model(model, args.task)
    elif args.demo_pth_path is None:
        chosen = ChosenNets(args, device, precision, weights_for_default(args))
    elif not args.dry_run:
        net = load_net(args, args.demo_pth_path, device, precision)[1]
    image_path, out_path = demo_folders(args.demo_img_path, args.out)
    files = list_images(image_path, recursive=args.recursive, exclude=[out_path])
    if not files:
        raise UserError("no usable image in %s" % image_path)
    tag = "[rank %d of %d] " % (rank, world) if world > 1 else ""
    jobs = shard(plan_outputs(files, image_path, out_path, compare=not args.no_compare, suffix=output_suffix(args)),
                 rank, world)
    if args.dry_run:
        return dry_run(args, chosen, jobs, image_path, out_path, tag)
    todo = jobs if args.overwrite else [job for job in jobs if not outputs_exist(job)]
    if len(todo) < len(jobs):
        say("%sskipping %d of %d images: their outputs are in %s already (--overwrite redoes them)"
            % (tag, len(jobs) - len(todo), len(jobs), out_path))
    for folder in sorted({os.path.dirname(p) for job in todo for k, p in job.items() if k != "src"}):
        os.makedirs(folder, exist_ok=True)
        remove_stale_temp_files(folder)  # a killed run's half-written files
    choices_path = choices_file(out_path, rank, world)
    choices = read_choices(choices_path) if chosen else {}
    bar = ImageProgress(len(todo), quiet=args.quiet)
    results, told = [], False
    for job, decoded in prefetched(todo, lambda job: decode_image(job["src"])):
        if decoded is None:  # said why already
            bar.finish()
            continue
        name = os.path.relpath(job["src"], image_path)
        pixels, alpha = decoded
        img, depth = pixels_to_float(pixels), pixels.dtype
        del pixels, decoded
        bar.start(img.shape[1] * img.shape[2])
        noisy = add_test_noise(torch.from_numpy(img), args.test_noiseL, args.seed).numpy() if args.test_noiseL > 0 else img
        if args.task != "denoise":
            results.append(restore_photo(args, net, device, precision, job, name, img, alpha, depth, bar))
            bar.finish()
            continue
        if chosen is not None:
            quality = jpeg_quality(job["src"]) if args.test_noiseL == 0 else None
            out, reading, choice, deblocked = chosen.denoise(
                noisy, quality, fixed_level(args.noise_level), amp=precision.dtype, tile=args.tile, x8=args.x8,
                gray_on_colour=args.gray_model_on_colour, on_progress=bar.advance)
            say(describe(name, reading, choice, quality, deblocked))
            choices[name] = choice_row(name, reading, choice, quality, deblocked)
        elif net is None or args.strength == 0:  # nothing to remove
            out = np.clip(noisy, 0, 1)
        else:
            if img.shape[0] == 3 and unwrap(net).channels == 1 and not told:
                say("gray model on colour photos: %s (--gray_model_on_colour)" % (
                    "each of B, G and R denoised as a gray image" if args.gray_model_on_colour == "channels"
                    else "the luma denoised, the chroma kept"))
                told = True
            level = level_for(net, noisy, args.noise_level, args.test_noiseL)
            if level is not None:
                say("%s: FDnCNN told noise level %.1f" % (name, level))
            out = denoise_any(net, noisy, device, amp=precision.dtype, tile=args.tile, x8=args.x8,
                              gray_on_colour=args.gray_model_on_colour, on_progress=bar.advance, sigma=level)
            out = apply_strength(noisy, out, args.strength)
        value = None
        if args.test_noiseL > 0:
            value = psnr(img, out)
            say("%s PSNR %f (noisy %f)" % (name, value, psnr(img, np.clip(noisy, 0, 1))))
        else:
            say("%s denoised" % name)
        if "compare" in job:
            panels = [("noisy", noisy), ("denoised" if value is None else "denoised %.2f dB" % value, out)]
            if args.test_noiseL > 0:
                panels.append(("clean", img))
            write_pixels(job["compare"], side_by_side(panels))
        write_image(job["denoised"], out, depth, alpha)
        if chosen is not None:
            write_choices(choices_path, choices)
        results.append((job["src"], value))
        bar.finish()
    bar.close()
    if not results and len(todo) == len(jobs) and world == 1:
        raise UserError("no usable image in %s" % image_path)
    say("%swrote %d denoised images%s to %s" % (tag, len(results), "" if args.no_compare else " and comparisons", out_path))
    return results


def task_weights(args):
    """--task jpeg / sr's weights: --demo_pth_path, else the DnCNN authors' DnCNN-3 (fetched on first use into the
    default reference folder)."""
    if args.demo_pth_path is not None:
        return args.demo_pth_path
    if os.path.abspath(args.reference_weights) == os.path.abspath(REFERENCE_DIR):
        fetch_missing([DNCNN3], REFERENCE_DIR, offline(args))
    path = os.path.join(args.reference_weights, DNCNN3)
    if not os.path.isfile(path):
        raise UserError("--task %s needs DnCNN-3 (%s): bash weights/get_reference_weights.sh --only %s, or pass "
                        "--demo_pth_path" % (args.task, path, DNCNN3))
    return path


def restore_photo(args, net, device, precision, job, name, img, alpha, depth, bar):
    """--task jpeg / sr on one photo: the output and its side-by-side written, a line said; (path, PSNR or None)."""
    run = dict(amp=precision.dtype, tile=args.tile, x8=args.x8, on_progress=bar.advance)
    value = None
    if args.task == "sr":
        out, alpha = upscale(net, img, args.scale, device, **run), None
        panels = [("bicubic x%d" % args.scale, bicubic(img, args.scale)), ("DnCNN-3 x%d" % args.scale, out)]
        say("%s upscaled x%d to %dx%d" % (name, args.scale, out.shape[2], out.shape[1]))
    else:
        source = img if args.quality is None else as_jpeg(img, args.quality)
        out = deblock(net, source, device, **run)
        panels = [("JPEG" if args.quality is None else "JPEG q%d" % args.quality, source), ("deblocked", out)]
        if args.quality is not None:
            value = psnr(img, out)
            panels[1] = ("deblocked %.2f dB" % value, out)
            panels.append(("original", img))
            say("%s PSNR %f (JPEG q%d %f)" % (name, value, args.quality, psnr(img, source)))
        else:
            quality = jpeg_quality(job["src"])
            say("%s deblocked (%s)" % (name, "JPEG quality %d" % quality if quality is not None
                                       else "not a JPEG file: deblocked as asked"))
    if "compare" in job:
        write_pixels(job["compare"], side_by_side(panels))
    write_image(job["denoised"], out, depth, alpha)
    return job["src"], value


def noisy_photos(args, jobs):
    """(job, noisy (C, H, W) float) of each job's photo, with the test noise when --test_noiseL > 0."""
    for job, decoded in prefetched(jobs, lambda job: decode_image(job["src"])):
        if decoded is not None:
            img = pixels_to_float(decoded[0])
            yield job, (add_test_noise(torch.from_numpy(img), args.test_noiseL, args.seed).numpy()
                        if args.test_noiseL > 0 else img)


def dry_run(args, chosen, jobs, image_path, out_path, tag):
    """--dry_run: each photo's reading and what it would get, one line each; nothing written."""
    for job, noisy in noisy_photos(args, jobs):
        name = os.path.relpath(job["src"], image_path)
        if args.task == "sr":
            say("%s: x%d to %dx%d with DnCNN-3" % (name, args.scale, args.scale * noisy.shape[2],
                                                  args.scale * noisy.shape[1]))
        elif args.task == "jpeg":
            quality = args.quality or jpeg_quality(job["src"])
            say("%s: %s -> DnCNN-3 deblocks it" % (name, "not a JPEG" if quality is None else "JPEG quality %d" % quality))
        elif chosen is None:
            say("%s: %s, strength %.2f" % (name, args.demo_pth_path, args.strength))
        elif (decided := chosen.deblocks(quality := jpeg_quality(job["src"]) if args.test_noiseL == 0 else None,
                                         noisy))[0]:
            say("%s: JPEG quality %d -> %s, then the noise read on the deblocked photo" % (name, quality, DEBLOCK))
        else:
            reading, choice = chosen.pick(noisy, fixed_level(args.noise_level), reading=decided[1])
            say(describe(name, reading, choice, quality))
    say("%sdry run: %d images would be written to %s (nothing written)" % (tag, len(jobs), out_path))
    return []


def main(argv=None):
    args = parse_args(argv)
    if args.demo_pth_path is not None and not os.path.exists(args.demo_pth_path):
        raise UserError("no weights at %s (train some with train.py, or pass --demo_pth_path)" % args.demo_pth_path)
    denoise_folder(args)
    return 0


if __name__ == "__main__":
    run_cli(main)
