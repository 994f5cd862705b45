"""Export a DnCNN / ADNet checkpoint (any format load_model reads) to ONNX, dynamic batch/height/width.

    python pth2onnx.py logs/net.pth dncnn.onnx
The graph is the network itself, BN folded: DnCNN (DnCNN-3 too) outputs the noise (clean = input - output),
ADNet the clean image, as in the references; FDnCNN's one input has C + 1 channels, the image, then its noise
level map (sigma / 255 per pixel), and it outputs the clean image.
"""
import os

from checkpoints import load_model
from models import ARCHS
from onnx_backend import export_onnx
from utils import ArgParser, UserError, positive, run_cli


def main(argv=None):
    p = ArgParser(description="checkpoint -> ONNX")
    p.add_argument("checkpoint", help="checkpoint file or folder")
    p.add_argument("output", help="ONNX file to write")
    p.add_argument("--arch", choices=ARCHS, default=None)
    p.add_argument("--opset", type=positive(int), default=17)
    args = p.parse_args(argv)
    model = load_model(args.checkpoint, args.arch)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise UserError("no such folder: %s" % out_dir)
    export_onnx(model, args.output, args.opset)
    print("exported %s (%s) to %s" % (model.checkpoint_path, type(model).__name__, args.output))
    return 0


if __name__ == "__main__":
    run_cli(main)
