"""The grids of docs/real-noise.md: every model, and the per-photo default, on photos with noise of each sigma
(stored in 8 bits, as test.py --eight_bit) or on real pairs; PSNR against the clean photo.

Each model's output is computed once per photo and sigma; the default's row is the output of the model
photo_noise would choose from the photo's reading, among the models of the grid ("references fetched") or among
this project's weights only. A JSON line per (photo, sigma, model) in --out, so a stopped run goes on.

    python docs/scripts/photo_grid.py ../shared/data/Set12 --channels 1 --out runs/set12.jsonl \\
        --reference_weights ../shared/reference_weights
    python docs/scripts/photo_grid.py runs/set12.jsonl --table
    python docs/scripts/photo_grid.py ../shared/data/PolyU --pairs --channels 1 --every 10 --out runs/polyu_gray.jsonl
"""
import argparse
import json
import math
import os
import sys
from collections import defaultdict

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from checkpoints import load_model  # noqa: E402
from images import find_pairs, list_images, read_image  # noqa: E402
from inference import denoise_any, inference_net  # noqa: E402
from photo_fit import STRENGTHS, cases_from_rows, choice_under, fit, group_key, held_out, psnr_of  # noqa: E402
from photo_noise import RULE, SHIPPED, Reading, apply_strength, available_weights, choose_model, read_noise  # noqa: E402
from utils import eight_bit_noisy, psnr  # noqa: E402

SIGMAS = (0, 5, 10, 15, 25, 35, 50, 75)
KEPT = "kept as it is"


def grid_models(channels, available):
    """{name: weights} of the grid: for gray photos the gray models, for colour ones the colour models (a gray
    model on a colour photo is no candidate of the default)."""
    return {name: path for name, path in available.items() if load_model(path).channels == channels}


def photos(args):
    """(name, sigma, noisy, clean) in the grid's order."""
    if args.pairs:
        for name, noisy_path, clean_path in find_pairs(args.folder)[1][args.offset::args.every]:
            yield name, "real", read_image(noisy_path, args.channels), read_image(clean_path, args.channels)
        return
    for path in list_images(args.folder)[args.offset::args.every]:
        clean = read_image(path, args.channels)
        for sigma in args.sigmas:
            yield os.path.basename(path), sigma, eight_bit_noisy(clean, sigma, args.seed), clean


def run_grid(args):
    models = grid_models(args.channels, available_weights(reference_dir=args.reference_weights))
    if args.models:
        models = {name: path for name, path in models.items() if name in args.models}
    done = set()
    if os.path.isfile(args.out):
        with open(args.out) as f:
            done = {(r["image"], r["sigma"], r["model"]) for r in map(json.loads, f)}
    nets = {}
    for name, sigma, noisy, clean in photos(args):
        todo = [m for m in [KEPT] + sorted(models) if (name, sigma, m) not in done]
        if not todo:
            continue
        reading = read_noise(noisy)
        for model in todo:
            if model == KEPT:
                est = noisy
            else:
                if model not in nets:
                    nets[model] = inference_net(load_model(models[model]), torch.device("cpu"))[0]
                est = np.clip(denoise_any(nets[model], noisy, torch.device("cpu")), 0.0, 1.0)
            row = {"image": name, "sigma": sigma, "model": model, "psnr": psnr(clean, est),
                   "reading": list(reading), "channels": args.channels, "set": os.path.basename(
                       os.path.normpath(args.folder))}
            if model != KEPT:  # the model's output at each strength (photo_fit fits the default's)
                row["strengths"] = {"%g" % s: psnr(clean, apply_strength(noisy, est, s)) for s in STRENGTHS}
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
        print(name, sigma, "done", flush=True)


def default_choice(row, available):
    """The model the rule picks among `available` (None: none of its list is in the grid)."""
    try:
        return choose_model(Reading(*row["reading"]), row["channels"], available).name or KEPT
    except LookupError:
        return None


def cell(value):
    return "∞" if math.isinf(value) else "%.2f" % value


def gap(value):
    return "no default" if value is None else "=" if not math.isfinite(value) else "%+.2f" % value


def table(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    psnrs = {(r["image"], r["sigma"], r["model"]): r["psnr"] for r in rows}
    first = {(r["image"], r["sigma"]): r for r in rows}
    models = sorted({r["model"] for r in rows} - {KEPT})
    everything = {m: m for m in models}
    ours = {m: m for m in models if m in SHIPPED}
    complete = lambda i, s: all((i, s, m) in psnrs for m in models + [KEPT])  # noqa: E731
    images = lambda s: sorted({i for i, t in first if t == s and complete(i, t)})  # noqa: E731
    sigmas = sorted({s for i, s in first if complete(i, s)}, key=lambda s: -1 if s == "real" else s)
    mean = lambda model, s: float(np.mean([psnrs[(i, s, model)] for i in images(s)]))  # noqa: E731
    print("| | " + " | ".join("σ %s" % s if s not in (0, "real") else ("as published" if s == 0 else "real")
                               for s in sigmas) + " |")
    print("|---" * (len(sigmas) + 1) + "|")
    print("| noisy input | " + " | ".join(cell(mean(KEPT, s)) for s in sigmas) + " |")
    best = {s: max(models, key=lambda m: mean(m, s)) for s in sigmas}
    for model in models:
        print("| %s | " % model + " | ".join(cell(mean(model, s)) for s in sigmas) + " |")
    gaps = {}
    for label, available in (("references fetched", everything), ("this project's weights only", ours)):
        cells = []
        for s in sigmas:
            picks = {i: default_choice(first[(i, s)], available) for i in images(s)}
            if any(m is None or (i, s, m) not in psnrs for i, m in picks.items()):
                cells.append("(not in the grid)")
                continue
            value = float(np.mean([psnrs[(i, s, m)] for i, m in picks.items()]))
            counts = defaultdict(int)
            for m in picks.values():
                counts[m] += 1
            gaps.setdefault(s, value - mean(best[s], s))
            cells.append("**%s** (%s)" % (cell(value), ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
        print("| **default**, %s | " % label + " | ".join(cells) + " |")
    print("| best fixed model (default − best) | " + " | ".join(
        "%s %s (%s)" % (best[s], cell(mean(best[s], s)), gap(gaps.get(s)))
        for s in sigmas) + " |")
    print("\n" + "; ".join("σ %s: %d photos" % (s, len(images(s))) for s in sigmas))


def held_out_table(paths):
    """The default's rule fitted without each fold (camera make, set) and scored on it, beside the rule fitted
    on everything (in sample), the shipped rule, and every model at strength 1: Markdown."""
    rows = []
    for path in paths:
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    cases = cases_from_rows(rows)
    models = sorted({m for c in cases for m in c.outputs})
    available = {m: m for m in models if m in SHIPPED}
    folds = held_out(cases, available)
    everything = fit(cases, available)
    held = {id(case): (model, strength, value) for _, scored in folds.values() for case, model, strength, value in scored}
    groups = defaultdict(list)
    for case in cases:
        groups[group_key(case)].append(case)
    order = sorted(groups, key=lambda g: (-g[2], g[0] != "PolyU", g[0], -1 if g[1] == "real" else g[1]))
    mean = lambda members, f: float(np.mean([f(c) for c in members]))  # noqa: E731
    print("| | " + " | ".join("%s%s %s" % (g[0], "" if g[2] == 3 else " gray", "σ %s" % g[1] if g[1] != "real"
                                           else "(real)") for g in order) + " |")
    print("|---" * (len(order) + 1) + "|")
    print("| noisy input | " + " | ".join(cell(mean(groups[g], lambda c: c.kept)) for g in order) + " |")
    for model in models:
        print("| %s | " % model + " | ".join(cell(mean(groups[g], lambda c: c.outputs[model][1.0]))
                                             if model in groups[g][0].outputs else "" for g in order) + " |")
    best = {g: max(mean(groups[g], lambda c: c.outputs[m][1.0]) for m in groups[g][0].outputs if m in available)
            for g in order}
    for label, score in (("**held out**", lambda c: held[id(c)][2]),
                         ("in sample (fitted on all)", lambda c: psnr_of(c, *choice_under(everything, c, available))),
                         ("the shipped rule", lambda c: psnr_of(c, *choice_under(RULE, c, available)))):
        print("| default, %s | " % label + " | ".join(
            "%s (%+.2f)" % (cell(mean(groups[g], score)), mean(groups[g], score) - best[g]) for g in order) + " |")
    print("\n(in brackets: the default − the best fixed model of ours at strength 1; PSNR capped at 50 dB)\n")
    strengths = lambda rule: ", ".join("%s %s %.1f" % (photo, kind, value)  # noqa: E731
                                       for (photo, kind), value in sorted(rule.strength.items()) if value != 1.0)
    for fold, (rule, scored) in sorted(folds.items()):
        picks = defaultdict(int)
        for _, model, strength, _ in scored:
            picks["%s %.1f" % (model, strength) if strength else model] += 1
        print("- without %s: camera_below %.2f, camera_ratio %.2f, clean_below %.2f, light_below %.1f, white_15 %s, "
              "strength not 1: %s; on its %d: %s" % (fold, rule.camera_below, rule.camera_ratio, rule.clean_below,
                                                     rule.light_below, rule.white_15, strengths(rule) or "none",
                                                     len(scored),
                 ", ".join("%s %d" % kv for kv in sorted(picks.items()))))
    print("- fitted on all: camera_below %.2f, camera_ratio %.2f, clean_below %.2f, light_below %.1f, white_15 %s, "
          "strength not 1: %s" % (everything.camera_below, everything.camera_ratio, everything.clean_below,
                                  everything.light_below, everything.white_15, strengths(everything) or "none"))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", nargs="+", help="a folder of clean photos, of pairs (--pairs), or with --table JSON-lines files")
    p.add_argument("--table", action="store_true", help="print the Markdown table of a grid's JSON lines")
    p.add_argument("--held_out", action="store_true",
                   help="print the default's rule fitted without each camera make / set and scored on it (photo_fit)")
    p.add_argument("--pairs", action="store_true", help="real pairs (images.find_pairs's layouts), no noise added")
    p.add_argument("--channels", type=int, choices=(1, 3), default=3)
    p.add_argument("--sigmas", type=float, nargs="+", default=SIGMAS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--every", type=int, default=1, help="every Nth photo of the sorted names")
    p.add_argument("--offset", type=int, default=0, help="from the Nth photo (two runs: --every 2, offsets 0 and 1)")
    p.add_argument("--reference_weights", default="weights/reference")
    p.add_argument("--models", nargs="+", default=None, help="only these (photo_noise's names)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default="grid.jsonl")
    args = p.parse_args()
    if args.table:
        return table(args.folder)
    if args.held_out:
        return held_out_table(args.folder)
    args.folder = args.folder[0]
    if args.threads:
        torch.set_num_threads(args.threads)
    args.sigmas = [int(s) if float(s).is_integer() else s for s in args.sigmas]
    run_grid(args)


if __name__ == "__main__":
    main()
