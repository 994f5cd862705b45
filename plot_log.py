"""Plot validation PSNR and training loss from a train.py log (or a TensorBoard event file) into a PNG.

    python plot_log.py logs/DnCNN-S-25/train.log curves.png
    python plot_log.py logs/DnCNN-S-25 curves.png          # a folder: its events.out.tfevents.* file
"""
import glob
import os
import re
import struct

from utils import ArgParser, UserError, run_cli

STEP_LINE = re.compile(r"\[epoch (\d+)\]\[(\d+)/(\d+)\] loss: ([-\d.eE+naif]+)")
VAL_LINE = re.compile(r"\[epoch (\d+)\] PSNR_val: ([-\d.eE+naif]+)")


def read_text_log(path):
    """(loss points, val points) as lists of (epoch as a float, value)."""
    losses, vals = [], []
    with open(path, errors="replace") as f:
        for line in f:
            m = STEP_LINE.search(line)
            if m:
                epoch, i, n, loss = int(m[1]), int(m[2]), int(m[3]), float(m[4])
                losses.append((epoch - 1 + i / n, loss))
                continue
            m = VAL_LINE.search(line)
            if m:
                vals.append((float(m[1]), float(m[2])))
    return losses, vals


def read_event_file(path):
    """Scalars 'loss' (by step) and 'PSNR_val' (by epoch) from a TFRecord event file."""
    from tensorboardX.proto import event_pb2
    series = {}
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                break
            (length,) = struct.unpack("<Q", header[:8])
            payload = f.read(length)
            f.read(4)
            event = event_pb2.Event.FromString(payload)
            for value in event.summary.value:
                series.setdefault(value.tag, []).append((event.step, value.simple_value))
    return series.get("loss", []), series.get("PSNR_val", [])


def load_curves(path):
    if os.path.isdir(path):
        events = sorted(glob.glob(os.path.join(path, "events.out.tfevents.*")), key=os.path.getmtime)
        logs = glob.glob(os.path.join(path, "*.log"))
        if logs:
            return read_text_log(max(logs, key=os.path.getmtime)), "epoch"
        if not events:
            raise UserError("no *.log or events.out.tfevents.* file in %s" % path)
        return read_event_file(events[-1]), "step"
    if not os.path.isfile(path):
        raise UserError("no such log: %s" % path)
    if os.path.basename(path).startswith("events.out.tfevents"):
        return read_event_file(path), "step"
    return read_text_log(path), "epoch"


def plot(losses, vals, out_path, x_label="epoch", title=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_psnr, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    if vals:
        ax_psnr.plot(*zip(*vals), marker="o")
    ax_psnr.set(xlabel="epoch", ylabel="validation PSNR (dB)", title="validation PSNR")
    if losses:
        ax_loss.plot(*zip(*losses), linewidth=0.8)
        ax_loss.set_yscale("log")
    ax_loss.set(xlabel=x_label, ylabel="loss", title="training loss")
    for ax in (ax_psnr, ax_loss):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = ArgParser(description="training curves from a log or event file")
    p.add_argument("log", help="train.py log file, TensorBoard event file, or a run folder")
    p.add_argument("output", help="PNG to write")
    args = p.parse_args(argv)
    (losses, vals), x_label = load_curves(args.log)
    if not losses and not vals:
        raise UserError("%s holds no training or validation lines" % args.log)
    plot(losses, vals, args.output, x_label, os.path.basename(os.path.abspath(args.log)))
    print("wrote %s (%d loss points, %d validation points)" % (args.output, len(losses), len(vals)))
    return 0


if __name__ == "__main__":
    run_cli(main)
