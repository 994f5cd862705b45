"""Plot validation PSNR and training loss from a train.py log (or a TensorBoard event file) into a PNG.

    python plot_log.py logs/DnCNN-S-25/train.log curves.png
    python plot_log.py logs/DnCNN-S-25 curves.png          # a run folder: its event files, against hours
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


def read_event_files(paths):
    """'loss' and 'PSNR_val' scalars of TFRecord event files (a resumed run adds a file), against hours.

    Hours are wall-clock time since the first event, so gaps between sessions show as gaps.
    """
    from tensorboardX.proto import event_pb2
    series = {}
    for path in paths:
        with open(path, "rb") as f:
            while True:
                header = f.read(12)
                if len(header) < 12:
                    break
                (length,) = struct.unpack("<Q", header[:8])
                event = event_pb2.Event.FromString(f.read(length))
                f.read(4)
                for value in event.summary.value:
                    series.setdefault(value.tag, []).append((event.wall_time, value.simple_value))
    times = [t for points in series.values() for t, _ in points]
    start = min(times) if times else 0.0
    hours = lambda points: sorted(((t - start) / 3600.0, v) for t, v in points)  # noqa: E731
    return hours(series.get("loss", [])), hours(series.get("PSNR_val", []))


def load_curves(path):
    """(loss points, validation points, x-axis label) from a text log, an event file or a run folder."""
    if os.path.isdir(path):
        events = glob.glob(os.path.join(path, "events.out.tfevents.*"))
        if events:
            return read_event_files(events) + ("hours",)
        logs = glob.glob(os.path.join(path, "*.log"))
        if not logs:
            raise UserError("no events.out.tfevents.* or *.log file in %s" % path)
        path = max(logs, key=os.path.getmtime)
    if not os.path.isfile(path):
        raise UserError("no such log: %s" % path)
    if os.path.basename(path).startswith("events.out.tfevents"):
        return read_event_files([path]) + ("hours",)
    return read_text_log(path) + ("epoch",)


def plot(losses, vals, out_path, x_label="epoch", title=None):
    """Validation PSNR and training loss side by side, against `x_label` (epoch or hours)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_psnr, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    if vals:
        ax_psnr.plot(*zip(*vals), marker="o")
    ax_psnr.set(xlabel=x_label, ylabel="validation PSNR (dB)", title="validation PSNR")
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
    losses, vals, x_label = load_curves(args.log)
    if not losses and not vals:
        raise UserError("%s holds no training or validation lines" % args.log)
    plot(losses, vals, args.output, x_label, os.path.basename(os.path.abspath(args.log)))
    print("wrote %s (%d loss points, %d validation points)" % (args.output, len(losses), len(vals)))
    return 0


if __name__ == "__main__":
    run_cli(main)
