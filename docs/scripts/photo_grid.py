"""The grids of docs/real-noise.md: every model, and the per-photo default, on photos with noise of each sigma
(stored in 8 bits, as test.py --eight_bit) or on real pairs; PSNR against the clean photo.

Each model's output is computed once per photo and sigma; the default's row is the output of the model
photo_noise would choose from the photo's reading, among the models of the grid ("references fetched") or among
this project's weights only. A JSON line per (photo, sigma, model) in --out, so a stopped run goes on.

    python docs/scripts/photo_grid.py ../shared/data/Set12 --channels 1 --out runs/set12.jsonl \\
        --reference_weights ../shared/reference_weights
    python docs/scripts/photo_grid.py runs/set12.jsonl --table
    python docs/scripts/photo_grid.py ../shared/data/PolyU --pairs --channels 1 --every 10 --out runs/polyu_gray.jsonl

An FDnCNN in the grid is run at each level it could be told (--levels, --level_factors: a row per level, with
"level"); --jpeg Q ... makes a JPEG grid instead of noise (photo_fit fits FDnCNN's level and the deblocking
cut-off from these rows).
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
from inference import ChosenNets, denoise_any, inference_net  # noqa: E402
from photo_fit import (PSNR_CAP, STRENGTHS, cases_from_rows, choice_under, deblocked_under, fit,  # noqa: E402
                       fit_deblock, fit_hybrid, fit_level, group_key, held_out, held_out_hybrid, held_out_level,
                       hybrid_cases, hybrid_psnr, level_cases, level_group, noise_level, psnr_at, psnr_of)
from precision import precision_for  # noqa: E402
from restore import deblock  # noqa: E402
from photo_noise import (DEBLOCK, DEBLOCK_UP_TO, HYBRID, LEVEL, RULE, SHIPPED, Reading,  # noqa: E402
                         apply_strength, available_weights, choose_model, jpeg_quality, read_noise)
from utils import eight_bit_noisy, psnr  # noqa: E402

SIGMAS = (0, 5, 10, 15, 25, 35, 50, 75)
# beside photo_noise.REFERENCE (what the default may use, fetched on first use): the authors' blind DnCNNs, for
# comparison only
COMPARED = {"cszn CDnCNN-B": "cszn/GD_Color_Blind.mat", "cszn DnCNN-B": "cszn/GD_Gray_Blind.mat"}
KEPT = "kept as it is"


def grid_models(channels, available):
    """{name: weights} of the grid: for gray photos the gray models, for colour ones the colour models (a gray
    model on a colour photo is no candidate of the default)."""
    return {name: path for name, path in available.items() if load_model(path).channels == channels}


def centre_crop(img, size):
    """The centre size x size of a (C, H, W) image, its corner on the 16-pixel grid (JPEG's blocks); 0: whole."""
    if not size:
        return img
    h, w = img.shape[1:]
    y, x = max(0, (h - size) // 2) // 16 * 16, max(0, (w - size) // 2) // 16 * 16
    return np.ascontiguousarray(img[:, y:y + size, x:x + size])


def jpeg_of(clean, quality):
    """A (C, H, W) float photo saved as an IJG JPEG of `quality` (colour: 4:2:0, as cameras do) and decoded."""
    from degrade import jpeg_roundtrip
    u8 = np.round(np.clip(clean, 0, 1) * 255).astype(np.uint8)
    if u8.shape[0] == 1:
        return jpeg_roundtrip(u8[0], quality)[None].astype(np.float32) / 255
    rgb = jpeg_roundtrip(np.ascontiguousarray(np.transpose(u8[::-1], (1, 2, 0))), quality)
    return np.ascontiguousarray(np.transpose(rgb, (2, 0, 1))[::-1], np.float32) / 255


def photos(args):
    """(name, sigma or "real" or "q<quality>[ σ<sigma>| re-saved]", noisy, clean) in the grid's order."""
    if args.pairs:  # with --jpeg: grouped by the noisy file's JPEG quality (--jpeg 0), or re-saved at each Q
        for name, noisy_path, clean_path in find_pairs(args.folder)[1][args.offset::args.every]:
            noisy, clean = (centre_crop(read_image(p, args.channels), args.crop) for p in (noisy_path, clean_path))
            if not args.jpeg:
                yield name, "real", noisy, clean
            for quality in args.jpeg or []:
                if quality:
                    yield name, "q%d re-saved" % quality, jpeg_of(noisy, quality), clean
                else:
                    yield name, "q%d" % jpeg_quality(noisy_path), noisy, clean
        return
    for path in list_images(args.folder)[args.offset::args.every]:
        clean = centre_crop(read_image(path, args.channels), args.crop)
        if args.jpeg:  # with --sigmas: the noise added, stored in 8 bits, then the JPEG
            for sigma in args.sigmas if args.jpeg_noise else [0]:
                for quality in args.jpeg:
                    yield os.path.basename(path), "q%d" % quality + (" σ%g" % sigma if sigma else ""), jpeg_of(
                        eight_bit_noisy(clean, sigma, args.seed), quality), clean
            continue
        for sigma in args.sigmas:
            yield os.path.basename(path), sigma, eight_bit_noisy(clean, sigma, args.seed), clean


def told_levels(args, sigma):
    """The levels an FDnCNN is told for a photo: --levels for real noise and for sigma under 10 (a reading
    there is mostly texture), else --level_factors times the sigma."""
    if sigma == "real" or sigma < 10:
        return list(args.levels)
    return [round(f * sigma, 2) for f in args.level_factors]


def grid_outputs(args, nets, models, sigma, noisy):
    """(model, level or None, output) of each model of the grid for one noisy photo."""
    for model in models:
        if model not in nets:
            nets[model] = inference_net(load_model(models[model]), torch.device("cpu"))[0]
        if nets[model].noise_map:
            for level in told_levels(args, sigma):
                yield model, level, denoise_any(nets[model], noisy, torch.device("cpu"), sigma=level)
        else:
            yield model, None, denoise_any(nets[model], noisy, torch.device("cpu"))


def jpeg_outputs(args, available, noisy):
    """(row name, None or the default's reading and level, output) for a JPEG: DnCNN-3 on Y (chroma as decoded);
    the default (photo_noise's level) without and with deblocking first."""
    if "chosen" not in args:
        flags = argparse.Namespace(arch=None, num_of_layers=None, backend="auto", no_fold=False, strength=1.0)
        args.chosen = ChosenNets(flags, torch.device("cpu"), precision_for("none", torch.device("cpu")), available)
    chosen = args.chosen
    deblocked = deblock(chosen.net(DEBLOCK, "the grid"), noisy, torch.device("cpu"))
    yield "%s, chroma keep" % DEBLOCK, None, deblocked
    for photo, was, label in ((noisy, False, "default, not deblocked"), (deblocked, True, "default, deblocked")):
        out, reading, choice, _ = chosen.denoise_read(photo, was)
        yield label, {"reading": list(reading), "level": choice.level or 0.0}, out


def run_grid(args):
    available = available_weights(reference_dir=args.reference_weights)
    available.update({name: os.path.join(args.reference_weights, path) for name, path in COMPARED.items()
                      if os.path.isfile(os.path.join(args.reference_weights, path))})
    models = grid_models(args.channels, available)
    if args.models:
        models = {name: path for name, path in models.items() if name in args.models}
    done = set()
    if os.path.isfile(args.out):
        with open(args.out) as f:
            done = {(r["image"], r["sigma"]) for r in map(json.loads, f)}
    nets = {}
    for name, sigma, noisy, clean in photos(args):
        if (name, sigma) in done:
            continue
        reading = read_noise(noisy)
        outputs = jpeg_outputs(args, available, noisy) if args.jpeg else grid_outputs(args, nets, models, sigma, noisy)
        rows = []
        for model, level, est in [(KEPT, None, noisy)] + list(outputs):
            est = np.clip(est, 0.0, 1.0)
            row = {"image": name, "sigma": sigma, "model": model, "psnr": psnr(clean, est),
                   "reading": list(reading), "channels": args.channels, "set": os.path.basename(
                       os.path.normpath(args.folder))}
            if isinstance(level, dict):  # the default's own reading and level
                row.update(default=level)
            elif level is not None:
                row["level"] = level
            elif model != KEPT and not args.jpeg:  # the model's output at each strength (photo_fit fits the default's)
                row["strengths"] = {"%g" % s: psnr(clean, apply_strength(noisy, est, s)) for s in STRENGTHS}
            rows.append(json.dumps(row) + "\n")
        with open(args.out, "a") as f:  # a photo's rows together: a stopped run redoes the photo
            f.writelines(rows)
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
    rows = [r for r in rows if "level" not in r]  # FDnCNN's rows: --level_held_out
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


def read_rows(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    return rows


def level_table(paths, model="FDnCNN color"):
    """FDnCNN's level (photo_noise.Level) fitted without each fold (camera make, set) and scored on it, beside
    the other models of the grid, FDnCNN told the true sigma, and the level fitted on all: Markdown."""
    rows = read_rows(paths)
    cases = level_cases(rows, model)
    folds = held_out_level(cases)
    everything = fit_level(cases)
    held = {id(c): value for _, scored in folds.values() for c, _, value in scored}
    groups = defaultdict(list)
    for case in cases:
        groups[level_group(case)].append(case)
    order = sorted(groups, key=lambda g: (g[0] != "PolyU", g[0], -1 if g[1] == "real" else g[1]))
    psnrs = defaultdict(dict)  # (set, image, sigma) -> {model: psnr}
    for r in rows:
        if "level" not in r or r["level"] == r["sigma"]:
            psnrs[(r.get("set", ""), r["image"], r["sigma"])][model + " told σ" if "level" in r else r["model"]] = \
                min(r["psnr"], PSNR_CAP)
    key = lambda c: ("PolyU" if c.group == "real" else c.fold, c.image, c.group)  # noqa: E731
    names = sorted({m for v in psnrs.values() for m in v} - {KEPT})
    mean = lambda g, f: float(np.mean([f(c) for c in groups[g]]))  # noqa: E731
    print("| | " + " | ".join("%s %s" % (g[0], "σ %s" % g[1] if g[1] != "real" else "(real)") for g in order) + " |")
    print("|---" * (len(order) + 1) + "|")
    print("| noisy input | " + " | ".join(cell(mean(g, lambda c: c.curve[0][1])) for g in order) + " |")
    best = {}
    for name in names:
        cells = []
        for g in order:
            if all(name in psnrs[key(c)] for c in groups[g]):
                value = mean(g, lambda c: psnrs[key(c)][name])
                best[g] = max(best.get(g, (-1, ""))[0], value), name if value > best.get(g, (-1, ""))[0] else best[g][1]
                cells.append(cell(value))
            else:
                cells.append("")
        print("| %s | " % name + " | ".join(cells) + " |")
    for label, score in (("**held out**", lambda c: held[id(c)]),
                         ("in sample (fitted on all)", lambda c: psnr_at(c, noise_level(c.reading, everything))),
                         ("shipped (photo_noise.LEVEL)", lambda c: psnr_at(c, noise_level(c.reading, LEVEL)))):
        print("| default, %s | " % label + " | ".join(
            "%s (%+.2f)" % (cell(mean(g, score)), mean(g, score) - best[g][0]) if g in best else cell(mean(g, score))
            for g in order) + " |")
    print("| best single model | " + " | ".join(best[g][1] if g in best else "" for g in order) + " |")
    print("\n(in brackets: the default − the best single model; PSNR capped at %g dB; the default's PSNR "
          "interpolated linearly between the levels run)\n" % PSNR_CAP)
    for fold, (level, scored) in sorted(folds.items()):
        print("- without %s: %s; on its %d photos" % (fold, level, len(scored)))
    print("- fitted on all: %s" % (everything,))


def hybrid_table(paths, model="FDnCNN color"):
    """photo_noise.Hybrid (FDnCNN told a level, or a reference, per reading) fitted without each fold (camera
    make, set) and scored on it, beside every model at strength 1, FDnCNN told the true sigma and FDnCNN told
    the level read everywhere (held out, today's default before the Hybrid): Markdown."""
    cases = hybrid_cases(read_rows(paths), model)
    folds = held_out_hybrid(cases)
    held = {id(c): value for _, _, scored in folds.values() for c, value in scored}
    told_held = {id(c): value for _, scored in held_out_level(cases).values() for c, _, value in scored}
    everything = fit_level(cases)
    in_sample = fit_hybrid(cases, everything)
    groups = defaultdict(list)
    for case in cases:
        groups[level_group(case)].append(case)
    order = sorted(groups, key=lambda g: (g[0] != "PolyU", g[0], -1 if g[1] == "real" else g[1]))
    mean = lambda g, f: float(np.mean([f(c) for c in groups[g]]))  # noqa: E731
    models = sorted(set.intersection(*(set(c.outputs) for c in cases)))
    lines = [("noisy input", lambda c: c.curve[0][1])]
    lines += [(m, lambda c, m=m: c.outputs[m][1.0]) for m in models]
    exact = [g for g in order if g[1] not in ("real", 0) and all(float(g[1]) in dict(c.curve) for c in groups[g])]
    lines += [(model + " told σ", lambda c: dict(c.curve)[float(c.group)])]
    best = {g: max(((mean(g, f), name) for name, f in lines[1:] if not name.endswith("σ") or g in exact),
                   key=lambda t: t[0]) for g in order}
    print("| | " + " | ".join("%s %s" % (g[0], "σ %s" % g[1] if g[1] != "real" else "(real)") for g in order) + " |")
    print("|---" * (len(order) + 1) + "|")
    for name, f in lines:
        print("| %s | " % name + " | ".join(cell(mean(g, f)) if not name.endswith("σ") or g in exact else ""
                                           for g in order) + " |")
    for label, f in (("FDnCNN told the level read (before), held out", lambda c: told_held[id(c)]),
                     ("**default, held out**", lambda c: held[id(c)]),
                     ("default, in sample (fitted on all)", lambda c: hybrid_psnr(c, in_sample, everything)),
                     ("default, shipped (photo_noise.HYBRID, LEVEL)", lambda c: hybrid_psnr(c, HYBRID, LEVEL))):
        print("| %s | " % label + " | ".join("%s (%+.2f)" % (cell(mean(g, f)), mean(g, f) - best[g][0])
                                             for g in order) + " |")
    print("| best single model | " + " | ".join(best[g][1] for g in order) + " |")
    print("\n(in brackets: − the best single model at strength 1 (FDnCNN told the true σ included); PSNR capped at "
          "%g dB; FDnCNN's PSNR interpolated linearly between the levels run)\n" % PSNR_CAP)
    for fold, (_, hybrid, scored) in sorted(folds.items()):
        print("- without %s: %s; on its %d photos" % (fold, hybrid, len(scored)))
    print("- fitted on all: %s" % (in_sample,))


def jpeg_label_quality(label):
    """The quality of a JPEG grid's "q<quality>[ σ<sigma>]"."""
    return int(label.split()[0][1:])


def jpeg_table(paths):
    """The JPEG grid: per set and quality the JPEG, DnCNN-3 (chroma as decoded or through it too) and the
    default not deblocked / deblocked; the cut-off fitted without each set and scored on it: Markdown."""
    rows = read_rows(paths)
    cases, kinds = defaultdict(dict), {}  # (set, image, "q<quality>[ σ<sigma>]")
    for r in rows:
        cases[(r["set"], r["image"], r["sigma"])][r["model"]] = r["psnr"]
        if r["model"] == "default, not deblocked":  # the kind of noise read off the JPEG as decoded
            kinds[(r["set"], r["image"], r["sigma"])] = r["default"]["reading"][2]
    names = sorted({m for v in cases.values() for m in v})
    groups = sorted({(k[0], k[2]) for k in cases}, key=lambda g: (g[0], len(g[1]), jpeg_label_quality(g[1]), g[1]))
    held = {}
    for photo_set in sorted({g[0] for g in groups}):
        cut = fit_deblock({k: v for k, v in cases.items() if k[0] != photo_set}, "default, not deblocked",
                          "default, deblocked", kinds)
        held[photo_set] = cut
        print("- without %s: deblocked up to quality %d (read as a camera's noise: %d)"
              % (photo_set, cut, min(cut, DEBLOCK_UP_TO)))
    print("- fitted on all: deblocked up to quality %d\n" % fit_deblock(cases, "default, not deblocked",
                                                                         "default, deblocked", kinds))
    mean = lambda g, f: float(np.mean([f(k, v) for k, v in cases.items() if (k[0], k[2]) == g]))  # noqa: E731
    print("| | " + " | ".join("%s %s" % g for g in groups) + " |")
    print("|---" * (len(groups) + 1) + "|")
    for name in names:
        print("| %s | " % name.replace(KEPT, "the JPEG")
              + " | ".join(cell(mean(g, lambda k, v: v[name])) for g in groups) + " |")
    default = lambda k, v: v["default, deblocked" if deblocked_under(  # noqa: E731
        held[k[0]], jpeg_label_quality(k[2]), kinds.get(k)) else "default, not deblocked"]
    print("| **default, held out** | " + " | ".join(
        "**%s** (%+.2f)" % (cell(mean(g, default)), mean(g, default) - mean(g, lambda k, v: v[KEPT])) for g in groups)
        + " |")
    print("\n(in brackets: the default − the JPEG)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", nargs="+", help="a folder of clean photos, of pairs (--pairs), or with --table JSON-lines files")
    p.add_argument("--table", action="store_true", help="print the Markdown table of a grid's JSON lines")
    p.add_argument("--held_out", action="store_true",
                   help="print the default's rule fitted without each camera make / set and scored on it (photo_fit)")
    p.add_argument("--level_held_out", action="store_true",
                   help="print FDnCNN's level fitted without each camera make / set and scored on it (photo_fit)")
    p.add_argument("--hybrid_held_out", action="store_true",
                   help="print the choice between FDnCNN told a level and the references (photo_noise.Hybrid) "
                        "fitted without each camera make / set and scored on it (photo_fit)")
    p.add_argument("--jpeg_table", action="store_true",
                   help="print a JPEG grid's table and the deblocking cut-off fitted without each set")
    p.add_argument("--pairs", action="store_true", help="real pairs (images.find_pairs's layouts), no noise added")
    p.add_argument("--channels", type=int, choices=(1, 3), default=3)
    p.add_argument("--sigmas", type=float, nargs="+", default=SIGMAS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crop", type=int, default=0, help="the centre N x N of each photo (0: whole)")
    p.add_argument("--levels", type=float, nargs="+", default=(0, 1, 2, 3, 4, 5, 6, 8, 10),
                   help="the levels an FDnCNN is told for real noise and for sigma under 10")
    p.add_argument("--level_factors", type=float, nargs="+", default=(0.8, 0.9, 1.0, 1.1, 1.2),
                   help="the levels an FDnCNN is told for sigma 10 and over, times the sigma")
    p.add_argument("--jpeg", type=int, nargs="+", default=None, metavar="Q",
                   help="a JPEG grid: each photo saved at these IJG qualities (no noise added); with --pairs "
                        "0 takes the noisy files as they are, Q the noisy files re-saved at Q")
    p.add_argument("--jpeg_noise", action="store_true", help="JPEG grid: the --sigmas' noise before the JPEG")
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
    if args.level_held_out:
        return level_table(args.folder)
    if args.hybrid_held_out:
        return hybrid_table(args.folder)
    if args.jpeg_table:
        return jpeg_table(args.folder)
    args.folder = args.folder[0]
    if args.threads:
        torch.set_num_threads(args.threads)
    args.sigmas = [int(s) if float(s).is_integer() else s for s in args.sigmas]
    run_grid(args)


if __name__ == "__main__":
    main()
