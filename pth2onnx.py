"""Export a DnCNN / ADNet checkpoint (any format load_model reads) to ONNX, dynamic batch/height/width.

    python pth2onnx.py logs/net.pth dncnn.onnx
The graph is the network itself, BN folded: DnCNN outputs the noise (clean = input - output),
ADNet the clean image, as in the references.
"""
import os
import warnings

import torch

from models import fold_batchnorm
from utils import ArgParser, UserError, load_model, positive, run_cli


def export_onnx(model, out_path, opset=17, sample_size=64):
    net = fold_batchnorm(model).float().eval()
    sample = torch.rand(1, net.channels, sample_size, sample_size)
    tmp = out_path + ".tmp"
    with warnings.catch_warnings():  # the TorchScript exporter handles dynamic H/W of these plain CNNs best
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (sample,), tmp, input_names=["input"], output_names=["output"], opset_version=opset,
                          dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                                        "output": {0: "batch", 2: "height", 3: "width"}},
                          dynamo=False)
    os.replace(tmp, out_path)
    return out_path


def main(argv=None):
    p = ArgParser(description="checkpoint -> ONNX")
    p.add_argument("checkpoint", help="checkpoint file or folder")
    p.add_argument("output", help="ONNX file to write")
    p.add_argument("--arch", choices=("DnCNN", "ADNet"), default=None)
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
