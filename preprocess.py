"""Build train.h5 / val.h5 patch files as the reference preprocessing does, fast.

    python preprocess.py --data_path data --arch DnCNN --mode S --outf .
    python preprocess.py --data_path data --arch ADNet --mode S --channels 3 --outf .   # data/pristine_images_color
    python preprocess.py --preprocess True --mode S       # the ADNet port's line: its data/ layout gives ADNet 50/40
    python preprocess.py --data_path data --task dncnn3 --outf h5/dncnn3   # DnCNN-3's noise, SR and JPEG pairs
"""
from dataset import PATCH_DEFAULTS, SR_JPEG_FOLDER, SR_JPEG_STRIDE, TASKS, default_arch, prepare_data
from utils import ArgParser, UserError, add_legacy_flags, positive, run_cli, str2bool

ARCHS = ("DnCNN", "ADNet", "FDnCNN")  # models.ARCHS, without importing torch


def add_preprocess_flags(p):
    p.add_argument("--data_path", default=None, help="folder holding the training and validation sets (default: data)")
    p.add_argument("--arch", choices=ARCHS, default=None,
                   help="default: ADNet in the ADNet port's layout (DATA_PATH/pristine_images_gray, no "
                        "DATA_PATH/train), else DnCNN")
    p.add_argument("--mode", choices=("S", "B"), default=None,
                   help="S: one noise level, B: a level per patch (blind; FDnCNN: told it); default S, but B for "
                        "FDnCNN and --task dncnn3")
    p.add_argument("--patch_size", type=positive(int), default=None,
                   help="default: per arch and mode (DnCNN and FDnCNN S 40, else 50)")
    p.add_argument("--stride", type=positive(int), default=None, help="default: per arch and mode")
    p.add_argument("--aug_times", type=positive(int), default=None, help="default: 1 (S) or 2 (B)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=1, help="1: gray, 3: colour (BGR, as ADNet's color/)")
    p.add_argument("--train_data", default=None,
                   help="training folder under --data_path (default: train for gray, pristine_images_color for colour; "
                        "ADNet's gray set pristine_images_gray when there is no train)")
    p.add_argument("--val_data", default=None,
                   help="validation folder under --data_path (default: Set12 gray, else BSD68 or Set68; CBSD68 colour)")
    p.add_argument("--task", choices=TASKS, default="denoise",
                   help="denoise: Gaussian (or camera) noise; dncnn3: DnCNN-3's three tasks, a gray DnCNN (20 layers) "
                        "on Gaussian noise (sigma per patch in --sigma_range, 0-55), bicubic x2/x3/x4 down and up and "
                        "JPEG quality 5-99, the SR/JPEG pairs made once into train.h5")
    p.add_argument("--sr_jpeg_data", default=None,
                   help="--task dncnn3: folder under --data_path of the SR and JPEG pairs' images, colour ones read "
                        "as Y (default %s)" % SR_JPEG_FOLDER)
    p.add_argument("--sr_jpeg_stride", type=positive(int), default=None,
                   help="--task dncnn3: patch stride in those images (default %d)" % SR_JPEG_STRIDE)


def resolve_arch(args):
    """--arch as given, or the one the data layout implies (see add_preprocess_flags); data_given records whether
    the data was named (--data_path or --train_data): train.py then checks an h5 against it."""
    args.data_given = args.data_path is not None or args.train_data is not None
    args.data_path = args.data_path or "data"
    args.arch = args.arch or ("DnCNN" if args.task == "dncnn3" else default_arch(args.data_path))
    if args.mode is None:
        args.mode = "B" if args.arch == "FDnCNN" or args.task == "dncnn3" else "S"
    if args.task == "dncnn3" and (args.arch != "DnCNN" or args.channels != 1):
        raise UserError("--task dncnn3 trains a gray DnCNN: --arch DnCNN --channels 1")
    return args


def main(argv=None):
    p = ArgParser(description="DnCNN / ADNet patch preprocessing; defaults: %s" % PATCH_DEFAULTS)
    add_preprocess_flags(p)
    p.add_argument("--preprocess", type=str2bool, default=True,
                   help="True: build the h5 files; False: do nothing (the ADNet port's preprocess.py needed True)")
    p.add_argument("--outf", default=".", help="where train.h5 and val.h5 go")
    p.add_argument("--seed", type=int, default=0, help="seed of the augmentation modes")
    p.add_argument("--quiet", action="store_true")
    add_legacy_flags(p)
    args = resolve_arch(p.parse_args(argv))
    if not args.preprocess:
        print("--preprocess False: nothing to do")
        return 0
    prepare_data(args.data_path, args.outf, args.arch, args.mode, args.patch_size, args.stride, args.aug_times,
                 args.train_data, args.val_data, args.seed, args.quiet, args.channels, args.task, args.sr_jpeg_data,
                 args.sr_jpeg_stride)
    return 0


if __name__ == "__main__":
    run_cli(main)
