"""Build train.h5 / val.h5 patch files as the reference preprocessing does, fast.

    python preprocess.py --data_path data --arch DnCNN --mode S --outf .
    python preprocess.py --data_path data --arch ADNet --mode S --channels 3 --outf .   # data/pristine_images_color
    python preprocess.py --preprocess True --mode S       # the ADNet port's line: its data/ layout gives ADNet 50/40
"""
from dataset import PATCH_DEFAULTS, default_arch, prepare_data
from utils import ArgParser, add_legacy_flags, positive, run_cli, str2bool

ARCHS = tuple(sorted({arch for arch, _ in PATCH_DEFAULTS}, reverse=True))  # DnCNN, ADNet: without importing torch


def add_preprocess_flags(p):
    p.add_argument("--data_path", default=None, help="folder holding the training and validation sets (default: data)")
    p.add_argument("--arch", choices=ARCHS, default=None,
                   help="default: ADNet in the ADNet port's layout (DATA_PATH/pristine_images_gray, no "
                        "DATA_PATH/train), else DnCNN")
    p.add_argument("--mode", choices=("S", "B"), default="S", help="S: known noise level, B: blind")
    p.add_argument("--patch_size", type=positive(int), default=None, help="default: per arch and mode (DnCNN S 40, else 50)")
    p.add_argument("--stride", type=positive(int), default=None, help="default: per arch and mode")
    p.add_argument("--aug_times", type=positive(int), default=None, help="default: 1 (S) or 2 (B)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=1, help="1: gray, 3: colour (BGR, as ADNet's color/)")
    p.add_argument("--train_data", default=None,
                   help="training folder under --data_path (default: train for gray, pristine_images_color for colour; "
                        "ADNet's gray set pristine_images_gray when there is no train)")
    p.add_argument("--val_data", default=None,
                   help="validation folder under --data_path (default: Set12 gray, else BSD68 or Set68; CBSD68 colour)")


def resolve_arch(args):
    """--arch as given, or the one the data layout implies (see add_preprocess_flags); data_given records whether
    the data was named (--data_path or --train_data): train.py then checks an h5 against it."""
    args.data_given = args.data_path is not None or args.train_data is not None
    args.data_path = args.data_path or "data"
    args.arch = args.arch or default_arch(args.data_path)
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
                 args.train_data, args.val_data, args.seed, args.quiet, args.channels)
    return 0


if __name__ == "__main__":
    run_cli(main)
