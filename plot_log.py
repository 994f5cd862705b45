"""Plot validation PSNR and training loss of one or more train.py runs into a PNG.

    python plot_log.py logs/DnCNN-S-25/train.log curves.png          # a text log: against epochs
    python plot_log.py logs/DnCNN-S-25 logs/ADNet-S-25 curves.png    # run folders: their event files, against hours
"""
import glob
import os
import re

from utils import ArgParser, UserError, run_cli

STEP_LINE = re.compile(r"\[epoch (\d+)\]\[(\d+)/(\d+)\] loss: ([-\d.eE+naif]+)")
VAL_LINE = re.compile(r"\[epoch (\d+)\] PSNR_val: ([-\d.eE+naif]+)")
HOURS = "hours of training"  # the x axis of event files; text logs have no times, so theirs is "epoch"


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


def event_accumulator_class():
    """tensorboard's EventAccumulator, imported on demand: text logs plot without tensorboard."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        raise UserError("plot_log.py needs the tensorboard package: pip install tensorboard") from None
    return EventAccumulator


def read_event_file(path):
    """{tag: [(wall_time, step, value)]} of one event file, every scalar kept."""
    # no purging: rolled-back steps are dropped per tag by drop_rolled_back, across the files of a resumed run
    events = event_accumulator_class()(path, size_guidance={"scalars": 0}, purge_orphaned_data=False).Reload()
    return {tag: [(e.wall_time, e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def read_events(paths):
    """{tag: [(wall_time, step, value)]} of the scalar summaries in several event files, one run's together."""
    # one accumulator per file: pointed at a folder, EventAccumulator may read only its newest event file
    series = {}
    for path in paths:
        for tag, points in read_event_file(path).items():
            series.setdefault(tag, []).extend(points)
    return series


def active_hours(times, max_gap_s):
    """{wall time: hours of training before it}, not counting gaps longer than max_gap_s (the run was stopped)."""
    hours, elapsed, previous = {}, 0.0, None
    for t in sorted(set(times)):
        if previous is not None and t - previous <= max_gap_s:
            elapsed += t - previous
        hours[t], previous = elapsed / 3600.0, t
    return hours


def drop_rolled_back(points):
    """A resumed run repeats the steps after its last checkpoint: keep only the repeat of each step."""
    kept = []
    for t, step, value in sorted(points):
        while kept and kept[-1][1] >= step:
            kept.pop()
        kept.append((t, step, value))
    return kept


def read_event_files(paths, max_gap_s=600.0):
    """'loss' and 'PSNR_val' against hours of training (a resumed run adds an event file to the folder)."""
    series = read_events(paths)
    hours = active_hours([t for points in series.values() for t, _, _ in points], max_gap_s)

    def curve(*tags):
        return [(hours[t], v) for t, _, v in drop_rolled_back([p for tag in tags for p in series.get(tag, [])])]

    # the references (and our first releases) wrote validation PSNR as "PSNR on validation data"
    return curve("loss"), curve("PSNR_val", "PSNR_on_validation_data", "PSNR on validation data")


def load_curves(path, max_gap_s=600.0):
    """(loss points, validation points, x-axis label) from a text log, an event file or a run folder."""
    if os.path.isdir(path):
        events = glob.glob(os.path.join(path, "events.out.tfevents.*"))
        if events:
            return read_event_files(events, max_gap_s) + (HOURS,)
        logs = glob.glob(os.path.join(path, "*.log"))
        if not logs:
            raise UserError("no events.out.tfevents.* or *.log file in %s" % path)
        path = max(logs, key=os.path.getmtime)
    if not os.path.isfile(path):
        raise UserError("no such log: %s" % path)
    if os.path.basename(path).startswith("events.out.tfevents"):
        return read_event_files([path], max_gap_s) + (HOURS,)
    return read_text_log(path) + ("epoch",)


def smooth(values, window=9):
    """Centred running mean (shorter at the ends): the logged loss is one batch's, so it is noisy."""
    half = window // 2
    windows = (values[max(0, i - half):i + half + 1] for i in range(len(values)))
    return [sum(w) / len(w) for w in windows]


def plot(runs, out_path, x_label="epoch", title=None):
    """Validation PSNR and training loss side by side; runs: [(label, loss points, val points)]."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_psnr, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    for label, losses, vals in runs:
        if vals:
            ax_psnr.plot(*zip(*vals), marker="o", label=label)
        if losses:
            xs, ys = zip(*losses)
            line, = ax_loss.plot(xs, ys, linewidth=0.6, alpha=0.35)
            ax_loss.plot(xs, smooth(ys), color=line.get_color(), linewidth=1.5, label=label)
    ax_psnr.set(xlabel=x_label, ylabel="validation PSNR (dB)", title="validation PSNR")
    ax_loss.set(xlabel=x_label, ylabel="loss", title="training loss")
    loss_values = [v for _, losses, _ in runs for _, v in losses if v > 0]
    if loss_values and max(loss_values) > 10 * min(loss_values):
        ax_loss.set_yscale("log")
    for ax in (ax_psnr, ax_loss):
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


def run_label(path):
    path = os.path.abspath(path)
    return os.path.basename(path if os.path.isdir(path) else os.path.dirname(path))


def main(argv=None):
    p = ArgParser(description="training curves from train.py logs, event files or run folders")
    p.add_argument("logs", nargs="+", help="train.py log file, TensorBoard event file, or a run folder (one or more)")
    p.add_argument("output", help="PNG to write")
    p.add_argument("--max_gap_minutes", type=float, default=10.0,
                   help="against hours: a pause between two events longer than this is not counted (default 10)")
    p.add_argument("--title", default=None)
    args = p.parse_args(argv)
    runs, x_labels = [], set()
    for path in args.logs:
        losses, vals, x_label = load_curves(path, args.max_gap_minutes * 60.0)
        if not losses and not vals:
            raise UserError("%s holds no training or validation lines" % path)
        runs.append((run_label(path), losses, vals))
        x_labels.add(x_label)
        span = ", %.2f hours of training" % max(x for x, _ in losses + vals) if x_label == HOURS else ""
        print("%s: %d loss points, %d validation points%s" % (path, len(losses), len(vals), span))
    if len(x_labels) > 1:
        raise UserError("cannot plot text logs (against epochs) with event files (against hours) in one figure")
    title = args.title or (runs[0][0] if len(runs) == 1 else None)
    plot(runs, args.output, x_labels.pop(), title)
    print("wrote %s" % args.output)
    return 0


if __name__ == "__main__":
    run_cli(main)
