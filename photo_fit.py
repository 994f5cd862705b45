"""Fitting the per-photo default's rule (photo_noise.Rule) on one part of the photos and scoring it on another.

The cases are photo_grid's rows (docs/scripts/photo_grid.py): per photo and noise, the reading and the PSNR of
every model at each strength. A fold is what a figure is held out by: a PolyU crop's camera make, a synthetic
photo's set (Kodak24, McMaster). held_out() fits the rule on all folds but one and scores it on that one, in
turn, so no photo is scored by a rule fitted on its own camera or set.
"""
import itertools
from collections import defaultdict, namedtuple

import numpy as np

import photo_noise
from photo_noise import (KEPT, RULE, TOLD, Hybrid, Level, Reading, choose_model,
                         hybrid_pick, noise_kind, noise_level, strength_kind, white_sigma)

STRENGTHS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.5)
PSNR_CAP = 50.0  # a photo kept within 50 dB of itself counts as kept: a clean photo's PSNR is infinite
# the thresholds fit() tries (8-bit units)
CAMERA_BELOW = (0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)
CAMERA_RATIO = (1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0)
CLEAN_BELOW = (0.2, 0.4, 0.6, 1.0)
LIGHT_BELOW = (0.0, 2.0, 3.0, 4.0, 5.0)  # 0: no light strength
WHITE_15 = ((float("inf"), float("inf")), (13.0, 17.0), (14.0, 18.0), (15.0, 18.0))  # the first: never

# group: the figure it counts in ("real", or the sigma); outputs: {model: {strength: psnr}}
Case = namedtuple("Case", "fold group image reading channels kept outputs")


def fold_of(image, photo_set):
    """A PolyU crop's camera make (the file name's first field), else the photo's set."""
    return image.split("_")[0] if photo_set == "PolyU" else photo_set


def cases_from_rows(rows):
    """[Case] from photo_grid's JSON rows, one per (set, image, sigma, channels) that has the row of every model
    of its channels."""
    by_photo, models = defaultdict(dict), defaultdict(set)
    for r in rows:
        by_photo[(r.get("set", ""), r["image"], r["sigma"], r["channels"])][r["model"]] = r
        models[r["channels"]].add(r["model"])
    cases = []
    for (photo_set, image, sigma, channels), found in sorted(by_photo.items(), key=lambda kv: str(kv[0])):
        if not models[channels] <= set(found):
            continue
        first = found[KEPT]
        outputs = {m: {float(s): min(v, PSNR_CAP) for s, v in found[m]["strengths"].items()}
                   for m in models[channels] - {KEPT}}
        cases.append(Case(fold_of(image, photo_set), sigma, image, Reading(*first["reading"]), first["channels"],
                          min(first["psnr"], PSNR_CAP), outputs))
    return cases


def choice_under(rule, case, available):
    """(model or KEPT, strength) the rule picks for a case among `available` names."""
    kind = noise_kind(case.reading.sigma, case.reading.sigma_2x2, rule)
    choice = choose_model(case.reading._replace(kind=kind), case.channels, available, rule)
    return (choice.name, choice.strength) if choice.name else (KEPT, 0.0)


def psnr_of(case, model, strength):
    return case.kept if model == KEPT else case.outputs[model][strength]


def group_key(case):
    """What a figure is a mean over: the set (PolyU's makes together), the sigma, colour or gray."""
    return ("PolyU" if case.group == "real" else case.fold, case.group, case.channels)


def regret(cases, rule, available):
    """The sum over groups of (best fixed model's mean PSNR - the rule's mean PSNR): what fit() minimises.
    A group's best fixed model is among the available models of its photos' channels."""
    groups = defaultdict(list)
    for case in cases:
        groups[group_key(case)].append(case)
    total = 0.0
    for members in groups.values():
        best = max(np.mean([c.outputs[m][1.0] for c in members]) for m in members[0].outputs if m in available)
        total += best - np.mean([psnr_of(c, *choice_under(rule, c, available)) for c in members])
    return total


def fit(cases, available, strengths=STRENGTHS):
    """The Rule of least regret on `cases` over the threshold grid, each kind's strength the best for the
    cases the thresholds give that kind (photo_noise.strength_kind; a group's cases weigh 1 / its size, so every
    group counts alike)."""
    sizes = defaultdict(int)
    for case in cases:
        sizes[group_key(case)] += 1
    weights = [1.0 / sizes[group_key(c)] for c in cases]
    scored = []
    for below, ratio, clean, light, band in itertools.product(CAMERA_BELOW, CAMERA_RATIO, CLEAN_BELOW, LIGHT_BELOW,
                                                              WHITE_15):
        rule = RULE._replace(camera_below=below, camera_ratio=ratio, clean_below=clean, light_below=light,
                             white_15=band, strength=dict.fromkeys(RULE.strength, 1.0))
        gains = defaultdict(lambda: np.zeros(len(strengths)))  # kind -> weighted PSNR at each strength
        score = 0.0
        for case, weight in zip(cases, weights):
            reading = case.reading._replace(kind=noise_kind(case.reading.sigma, case.reading.sigma_2x2, rule))
            kind = strength_kind(reading, case.channels, rule)
            model = choice_under(rule, case, available)[0]
            if model == KEPT:
                score += weight * case.kept
            else:
                gains[kind] += weight * np.array([case.outputs[model][s] for s in strengths])
        strength = dict(rule.strength)
        for kind, by_strength in gains.items():
            strength[kind] = strengths[int(np.argmax(by_strength))]
            score += float(np.max(by_strength))
        scored.append((score, rule._replace(strength=strength)))
    return central(scored)


def central(scored, tolerance=1e-6):
    """Of the (score, rule)s that tie for the best, the one whose thresholds lie nearest the middle of the tied
    ones' (each threshold by its place in fit()'s grid): where the cases cannot tell thresholds apart, the
    widest margin on both sides."""
    top = max(score for score, _ in scored)
    tied = [rule for score, rule in scored if score >= top - tolerance]
    grids = {"camera_below": CAMERA_BELOW, "camera_ratio": CAMERA_RATIO, "clean_below": CLEAN_BELOW,
             "light_below": LIGHT_BELOW, "white_15": WHITE_15}
    places = [[grid.index(getattr(rule, name)) for name, grid in grids.items()] for rule in tied]
    middle = np.median(np.array(places, float), axis=0)
    return tied[int(np.argmin([np.abs(np.array(p) - middle).sum() for p in places]))]


def held_out(cases, available, folds=None):
    """{fold: (rule fitted without it, [(case, model, strength, psnr)] of its cases)} for each fold."""
    result = {}
    for fold in folds or sorted({c.fold for c in cases}):
        rule = fit([c for c in cases if c.fold != fold], available)
        scored = []
        for case in (c for c in cases if c.fold == fold):
            model, strength = choice_under(rule, case, available)
            scored.append((case, model, strength, psnr_of(case, model, strength)))
        result[fold] = (rule, scored)
    return result


# FDnCNN's level (photo_noise.Level) and the deblocking cut-off, fitted from photo_grid's rows in the same way
WHITE_SCALE = (0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2)
HEAVY_FROM = (20.0, 30.0, 40.0, 51.0)
HEAVY_SCALE = (0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2)
CAMERA_LEVEL = (4.0, 6.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0)
DEBLOCK_CUTS = (0, 10, 20, 30, 50, 70, 75, 90, 100)  # 0: never

# curve: [(level, psnr)] of an FDnCNN told each level, (0, the photo kept) first
LevelCase = namedtuple("LevelCase", "fold group image reading curve")


def level_cases(rows, model):
    """[LevelCase] from photo_grid's rows of `model` (an FDnCNN) and the photos kept as they are."""
    curves, kept, readings = defaultdict(dict), {}, {}
    for r in rows:
        key = (r.get("set", ""), r["image"], r["sigma"])
        if r["model"] == KEPT:
            kept[key], readings[key] = min(r["psnr"], PSNR_CAP), Reading(*r["reading"])
        elif r["model"] == model and r.get("level", 0) > 0:
            curves[key][float(r["level"])] = min(r["psnr"], PSNR_CAP)
    return [LevelCase(fold_of(key[1], key[0]), key[2], key[1], readings[key],
                      [(0.0, kept[key])] + sorted(curves[key].items()))
            for key in sorted(curves, key=str) if key in kept]


def psnr_at(case, level):
    """The PSNR of the FDnCNN told `level`, interpolated linearly between the levels run (held at the ends);
    level 0 keeps the photo."""
    levels, values = zip(*case.curve)
    return float(np.interp(level, levels, values))


def level_group(case):
    return ("PolyU" if case.group == "real" else case.fold, case.group)


def level_score(cases, level):
    """The sum over groups (a set and a sigma, or PolyU) of the mean PSNR under `level` (a photo_noise.Level)."""
    groups = defaultdict(list)
    for case in cases:
        groups[level_group(case)].append(psnr_at(case, noise_level(case.reading, level)))
    return sum(float(np.mean(v)) for v in groups.values())


def fit_level(cases):
    """The Level of the highest level_score on `cases` over the grids above (white and camera noise apart: a
    reading's kind decides which part of the Level it uses)."""
    white = max(itertools.product(WHITE_SCALE, HEAVY_FROM, HEAVY_SCALE),
                key=lambda p: level_score(cases, Level(*p, 0.0)))
    return Level(*white, max(CAMERA_LEVEL, key=lambda camera: level_score(cases, Level(*white, camera))))


def held_out_level(cases):
    """{fold: (Level fitted without it, [(case, level, psnr)] of its cases)}."""
    result = {}
    for fold in sorted({c.fold for c in cases}):
        level = fit_level([c for c in cases if c.fold != fold])
        result[fold] = (level, [(c, noise_level(c.reading, level), psnr_at(c, noise_level(c.reading, level)))
                                for c in cases if c.fold == fold])
    return result


def deblocked_under(cut, quality, kind, camera_up_to=photo_noise.DEBLOCK_UP_TO):
    """photo_noise.deblocks under a cut-off `cut`: a JPEG read as a camera's noise up to the lower of the two."""
    return photo_noise.deblocks(quality, kind, min(cut, camera_up_to), cut)


def fit_deblock(cases, not_deblocked, deblocked, kinds=None, camera_up_to=photo_noise.DEBLOCK_UP_TO):
    """The cut-off (of DEBLOCK_CUTS) of the highest summed mean PSNR over (set, quality) groups of JPEG cases:
    {(set, image, "q<quality>[ σ<sigma>]"): {row name: psnr}}, a JPEG deblocked when its quality is at most the
    cut-off (photo_noise.deblocks) — one whose noise reads as a camera's (kinds: {case: kind}) at most
    camera_up_to, which is not fitted: PolyU's are the only camera JPEGs."""
    kinds = kinds or {}

    def score(cut):
        groups = defaultdict(list)
        for key, psnrs in cases.items():
            quality = int(key[2].split()[0][1:])
            done = deblocked_under(cut, quality, kinds.get(key), camera_up_to)
            groups[(key[0], key[2])].append(psnrs[deblocked if done else not_deblocked])
        return sum(float(np.mean(v)) for v in groups.values())
    return max(DEBLOCK_CUTS, key=score)


# Which model a colour photo gets with FDnCNN there (photo_noise.Hybrid), fitted from the same rows: FDnCNN's
# curve of levels and the references' outputs at each strength
HYBRID_MODELS = ("ADNet c15", "ADNet cblind")  # the references the fit may pick (first use fetches the picked)
# the band edges fit_hybrid tries (8-bit units): half way between the grids' sigmas, and the heavy cut-off
WHITE_CUTS = (2.5, 7.5, 12.5, 17.5, 22.5, 30.0, 40.0, 51.0)
NO_WORSE = 0.1  # dB: a fitted Hybrid loses at most this on a group (a set and sigma, PolyU) to FDnCNN told a level
# the references at their own strength: other strengths fit a misread PolyU crop and cost photos without noise
# (McMaster sigma 0: 45.7 dB held out with ADNet cblind at 1.5, docs/real-noise.md)
HYBRID_STRENGTHS = (1.0,)

HybridCase = namedtuple("HybridCase", "fold group image reading curve outputs")


def hybrid_cases(rows, model="FDnCNN color"):
    """[HybridCase] from photo_grid's rows: the photos with `model`'s curve (level_cases) and, where run, the
    other models' outputs at each strength."""
    outputs = defaultdict(dict)
    for r in rows:
        if "strengths" in r:
            outputs[(r.get("set", ""), r["image"], r["sigma"])][r["model"]] = {
                float(s): min(v, PSNR_CAP) for s, v in r["strengths"].items()}
    return [HybridCase(*c, outputs[(c.fold if c.group != "real" else "PolyU", c.image, c.group)])
            for c in level_cases(rows, model)]


def pick_psnr(case, pick, level):
    """The PSNR of a case under a pick (photo_noise.hybrid_pick's), FDnCNN told levels by `level`."""
    model, strength = pick
    if model == TOLD or case.reading.kind == "clean":
        return psnr_at(case, noise_level(case.reading, level))
    return case.curve[0][1] if model == KEPT else case.outputs[model][strength]


def hybrid_psnr(case, hybrid, level):
    return pick_psnr(case, hybrid_pick(case.reading, hybrid), level)


def hybrid_means(cases, hybrid, level):
    """{group: mean PSNR under the Hybrid} (level_group's groups)."""
    groups = defaultdict(list)
    for case in cases:
        groups[level_group(case)].append(hybrid_psnr(case, hybrid, level))
    return {g: float(np.mean(v)) for g, v in groups.items()}


def fit_hybrid(cases, level, no_worse=NO_WORSE, models=HYBRID_MODELS, strengths=HYBRID_STRENGTHS,
               cuts=WHITE_CUTS):
    """The Hybrid of the highest sum over groups (level_group's) of the mean PSNR on `cases`, FDnCNN told levels
    by `level`: over 1 to 4 white bands with edges from `cuts`, each part (camera, each band, heavy) the best of
    TOLD, KEPT and `models` at each strength that loses at most `no_worse` dB on no group to TOLD, and the
    whole Hybrid too (else the next best partition; none: TOLD everywhere). The first of ties: TOLD."""
    models = [m for m in models if all(m in c.outputs for c in cases)]
    options = [(TOLD, 1.0), (KEPT, 0.0)] + [(m, s) for m in models for s in strengths]
    sizes = defaultdict(int)
    for case in cases:
        sizes[level_group(case)] += 1
    weight = np.array([1.0 / sizes[level_group(c)] for c in cases])
    groups = sorted(set(sizes), key=str)
    member = np.array([[level_group(c) == g for g in groups] for c in cases], float)  # case x group
    psnrs = np.array([[pick_psnr(c, o, level) if c.reading.kind != "clean" or o == options[0] else
                       pick_psnr(c, options[0], level) for o in options] for c in cases])  # case x option
    gains = (psnrs - psnrs[:, :1]) * weight[:, None]  # against TOLD, each case weighing 1 / its group's size

    def best(part):
        """(gain, option) of the best option for the cases in `part` (a mask) losing under no_worse a group."""
        by_group = member[part].T @ gains[part]  # group x option
        ok = by_group.min(axis=0) >= -no_worse
        total = np.where(ok, gains[part].sum(axis=0), -np.inf)
        return float(total[int(np.argmax(total))]), options[int(np.argmax(total))]

    sigma = np.array([white_sigma(c.reading) for c in cases])
    kinds = np.array([c.reading.kind for c in cases])
    camera = best(kinds == "camera")
    top = (0.0, Hybrid(options[0], ((cuts[-1], options[0]),), options[0]))
    for n in (1, 2, 3, 4):
        for edges in itertools.combinations(cuts, n):
            lows = (0.0,) + edges[:-1]
            bands = [best((kinds == "white") & (sigma >= lo) & (sigma < hi)) for lo, hi in zip(lows, edges)]
            heavy = best((kinds == "heavy") | ((kinds == "white") & (sigma >= edges[-1])))
            hybrid = Hybrid(camera[1], tuple(zip(edges, (b[1] for b in bands))), heavy[1])
            gain = camera[0] + heavy[0] + sum(b[0] for b in bands)
            if gain > top[0] + 1e-9:
                chosen = [options.index(hybrid_pick(c.reading, hybrid)) for c in cases]
                if (member.T @ gains[np.arange(len(cases)), chosen]).min() < -no_worse:
                    continue
                top = (gain, hybrid)
    return top[1]


def held_out_hybrid(cases, no_worse=NO_WORSE):
    """{fold: (Level, Hybrid fitted without it, [(case, psnr)] of its cases)}: the level and then the Hybrid
    fitted on the other folds."""
    result = {}
    for fold in sorted({c.fold for c in cases}):
        train = [c for c in cases if c.fold != fold]
        level = fit_level(train)
        hybrid = fit_hybrid(train, level, no_worse)
        result[fold] = (level, hybrid, [(c, hybrid_psnr(c, hybrid, level)) for c in cases if c.fold == fold])
    return result
