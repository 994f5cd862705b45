"""photo_fit: the default's rule fitted on some photos and scored on others (made-up cases)."""
import numpy as np
import pytest

from photo_fit import STRENGTHS, Case, cases_from_rows, fit, fold_of, held_out, regret
from photo_noise import RULE, Reading, apply_strength

OURS = {"CDnCNN-B": "CDnCNN-B", "CDnCNN-S-15": "CDnCNN-S-15", "CDnCNN-camera": "CDnCNN-camera"}


def outputs(b, s15, camera, best_strength=1.0):
    """{model: {strength: psnr}}: each model's PSNR peaks at its best strength, 0.5 dB lower per 0.1 off it."""
    return peaked({"CDnCNN-B": b, "CDnCNN-S-15": s15, "CDnCNN-camera": camera}, best_strength)


def peaked(psnrs, best_strength):
    """{model: {strength: psnr}} from each model's PSNR at its best strength, 0.5 dB lower per 0.1 off it."""
    return {m: {s: v - 5.0 * abs(s - best_strength) for s in STRENGTHS} for m, v in psnrs.items()}


def camera_case(make, i, sigma):
    """A PolyU-like crop: camera noise reading `sigma` on the pixels and 4x that on the 2x2 means; the
    sigma-15 model best at strength 0.9, the blind one no better than the input."""
    return Case(make, "real", "%s_x_%d" % (make, i), Reading(sigma, 4 * sigma, ""), 3, 36.0,
                outputs(36.1, 38.5, 37.5, best_strength=0.9))


def white_case(photo_set, i, sigma):
    """A photo with white noise of `sigma` (reading it on the pixels and the 2x2 means): the blind model best."""
    return Case(photo_set, sigma, "%d.png" % i, Reading(sigma, sigma * 1.1, ""), 3, 48.13 - 20 * np.log10(sigma),
                outputs(55.0 - 20 * np.log10(sigma), 50.0 - 20 * np.log10(sigma), 52.0 - 20 * np.log10(sigma)))


@pytest.fixture(autouse=True)
def small_grid(monkeypatch):
    """fit()'s grid cut to the thresholds these cases can tell apart (the whole grid: 20x the time)."""
    import photo_fit
    monkeypatch.setattr(photo_fit, "CLEAN_BELOW", (0.2, 0.4))
    monkeypatch.setattr(photo_fit, "LIGHT_BELOW", (0.0, 3.0))
    monkeypatch.setattr(photo_fit, "WHITE_15", photo_fit.WHITE_15[:2])


def cases(odd_make_sigma=0.5):
    found = [camera_case(make, i, 0.5) for make in ("Canon", "Nikon") for i in range(4)]
    found += [camera_case("Sony", i, odd_make_sigma) for i in range(4)]
    found += [white_case(s, i, sigma) for s in ("Kodak24", "McMaster") for i in range(3) for sigma in (5, 15, 25)]
    return found


def test_folds_are_camera_makes_and_sets():
    assert fold_of("NikonD800_5_100_4000_flower_1", "PolyU") == "NikonD800"
    assert fold_of("kodim01.png", "Kodak24") == "Kodak24"


def test_the_fit_finds_the_thresholds_and_strengths_of_least_regret():
    rule = fit(cases(), OURS)
    assert rule.strength[("colour", "camera")] == 0.9 and rule.strength[("colour", "white")] == 1.0
    assert rule.camera_below > 0.5 and rule.camera_ratio < 4
    assert regret(cases(), rule, OURS) == pytest.approx(-0.5)  # 0.5 dB over the best fixed model at strength 1
    assert regret(cases(), RULE._replace(camera_below=0.1), OURS) > 1.0  # camera noise sent to the blind model


def test_a_camera_is_scored_by_a_rule_fitted_without_it():
    # Sony reads 2.0 on its pixels, over what the other makes read: only a rule fitted with Sony's crops
    # sends them to the camera model
    found = cases(odd_make_sigma=2.0)
    assert fit(found, OURS).camera_below > 2.0
    scored = held_out(found, OURS)
    assert set(scored) == {"Canon", "Nikon", "Sony", "Kodak24", "McMaster"}
    rule, sony = scored["Sony"]
    assert rule.camera_below <= 2.0 and rule == fit([c for c in found if c.fold != "Sony"], OURS)
    assert [(model, strength) for _, model, strength, _ in sony] == [("CDnCNN-B", 1.0)] * 4
    assert all(psnr == pytest.approx(35.6) for *_, psnr in sony)  # the blind model at strength 1
    _, canon = scored["Canon"]
    assert all((model, strength) == ("CDnCNN-S-15", 0.9) for _, model, strength, _ in canon)


def test_cases_come_from_the_grids_rows_with_every_model():
    rows = [{"image": "a_1", "sigma": "real", "model": m, "psnr": p, "reading": [0.5, 2.0, "camera"], "channels": 3,
             "set": "PolyU", **({} if m == "kept as it is" else {"strengths": {"%g" % s: p for s in STRENGTHS}})}
            for m, p in (("kept as it is", 30.0), ("CDnCNN-B", 31.0), ("CDnCNN-S-15", float("inf")))]
    rows.append(dict(rows[1], image="b_1"))  # b_1 lacks the other models: left out
    (case,) = cases_from_rows(rows)
    assert (case.fold, case.group, case.kept) == ("a", "real", 30.0)
    assert case.outputs["CDnCNN-S-15"][1.0] == 50.0  # a photo kept as itself counts 50 dB
    assert case.outputs["CDnCNN-B"][0.5] == 31.0


def test_strength_scales_the_noise_removed():
    noisy = np.array([0.5, 0.9, 0.1], np.float32)
    denoised = np.array([0.4, 1.2, 0.0], np.float32)
    assert np.allclose(apply_strength(noisy, denoised, 1.0), [0.4, 1.0, 0.0])
    assert np.array_equal(apply_strength(noisy, denoised, 0.0), noisy)
    assert np.allclose(apply_strength(noisy, denoised, 0.5), [0.45, 1.0, 0.05])
    assert np.allclose(apply_strength(noisy, denoised, 2.0), [0.3, 1.0, 0.0])


def test_shipped_gray_strengths_are_what_gray_grids_fit_with_the_thresholds_kept(monkeypatch):
    """A gray camera photo gets half of what the sigma-25 model removes, heavy gray noise more than all of it:
    on cases whose best strengths are those, fit() with the shipped thresholds finds the shipped values."""
    import photo_fit
    import photo_noise
    for name in ("CAMERA_BELOW", "CAMERA_RATIO", "CLEAN_BELOW", "LIGHT_BELOW"):
        monkeypatch.setattr(photo_fit, name, (getattr(RULE, name.lower()),))
    monkeypatch.setattr(photo_fit, "WHITE_15", (RULE.white_15,))
    camera = Case("Sony", "real", "a", Reading(0.5, 3.0, "camera"), 1, 37.0, peaked({"DnCNN-S-25": 38.0}, 0.5))
    heavy = Case("Set12", 75, "b", Reading(60.0, 60.0, "heavy"), 1, 12.0, peaked({"DnCNN-S-25": 38.0}, 1.5))
    rule = fit([camera, heavy], {"DnCNN-S-25": "DnCNN-S-25"})
    for kind in ("camera", "heavy"):
        assert rule.strength[("gray", kind)] == photo_noise.STRENGTH[("gray", kind)]
    assert photo_noise.STRENGTH[("gray", "camera")] == 0.5 and photo_noise.STRENGTH[("gray", "heavy")] == 1.5



# photo_noise.Hybrid: FDnCNN told a level or a reference, per reading, fitted and scored held out
from photo_fit import HybridCase, fit_hybrid, held_out_hybrid, hybrid_cases, hybrid_psnr  # noqa: E402
from photo_noise import KEPT, LEVEL, TOLD, Hybrid, hybrid_pick  # noqa: E402


def hybrid_case(fold, group, sigma, kind, told, others):
    """A made-up photo: FDnCNN gives `told` dB at any level of 1 and over, the photo kept 20, and each of
    `others` ({model: dB}) that at strength 1, 1 dB less at any other strength."""
    outputs = {m: {s: v - (s != 1.0) for s in STRENGTHS} for m, v in others.items()}
    return HybridCase(fold, group, "%s_%s" % (fold, sigma), Reading(sigma, sigma, kind, sigma),
                      [(0.0, 20.0), (1.0, told), (200.0, told)], outputs)


def hybrid_grid(cblind_at_40=31.0):
    """Two sets with white noise reading 10 and 40 where ADNet cblind beats FDnCNN by 1 dB (at 40:
    cblind_at_40), heavy noise where FDnCNN wins, and a camera's noise where FDnCNN wins."""
    cases = []
    for fold in ("A", "B"):
        for i in range(2):
            cases.append(hybrid_case(fold, 10, 10.0 + i, "white", 30.0, {"ADNet cblind": 31.0, "ADNet c15": 25.0}))
            cases.append(hybrid_case(fold, 40, 40.0 + i, "white", 30.0, {"ADNet cblind": cblind_at_40,
                                                                         "ADNet c15": 20.0}))
            cases.append(hybrid_case(fold, 75, 60.0 + i, "heavy", 25.0, {"ADNet cblind": 20.0, "ADNet c15": 15.0}))
            cases.append(hybrid_case(fold + "cam", "real", 1.0, "camera", 38.0, {"ADNet cblind": 35.0,
                                                                                 "ADNet c15": 37.0}))
    return cases


def test_the_hybrid_gives_each_reading_the_model_that_wins_it():
    hybrid = fit_hybrid(hybrid_grid(), LEVEL)
    assert hybrid.camera == (TOLD, 1.0) and hybrid.heavy == (TOLD, 1.0)
    assert [pick for _, pick in hybrid.white] == [("ADNet cblind", 1.0)] * len(hybrid.white)
    assert hybrid.white[-1][0] > 41.0  # both white groups under the last band's edge
    for case in hybrid_grid():
        assert hybrid_psnr(case, hybrid, LEVEL) == max([case.curve[1][1]] + [v[1.0] for v in case.outputs.values()])


def test_the_hybrid_loses_no_group_to_fdncnn_by_more_than_no_worse():
    """cblind 1 dB ahead at reading 10 but 0.5 dB behind at 40: a band under 30 only, or with no band edge
    between them FDnCNN everywhere."""
    cases = hybrid_grid(cblind_at_40=29.5)
    hybrid = fit_hybrid(cases, LEVEL, cuts=(30.0, 51.0))
    assert [hybrid_pick(Reading(s, s, "white"), hybrid) for s in (10.0, 40.0)] == [("ADNet cblind", 1.0),
                                                                                  (TOLD, 1.0)]
    assert fit_hybrid(cases, LEVEL, cuts=(51.0,)).white == ((51.0, (TOLD, 1.0)),)
    assert fit_hybrid(cases, LEVEL, cuts=(51.0,), no_worse=1.0).white == ((51.0, ("ADNet cblind", 1.0)),)


def test_the_hybrid_is_scored_on_each_fold_by_one_fitted_without_it():
    """Only fold A says cblind wins at reading 40; held out, A gets FDnCNN there."""
    cases = [c for c in hybrid_grid(cblind_at_40=29.0) if not (c.fold == "A" and c.group == 40)]
    cases += [hybrid_case("A", 40, 40.0 + i, "white", 30.0, {"ADNet cblind": 33.0, "ADNet c15": 20.0})
              for i in range(2)]
    folds = held_out_hybrid(cases)
    _, hybrid, scored = folds["A"]
    assert all(psnr == 30.0 for case, psnr in scored if case.group == 40)
    assert fit_hybrid(cases, LEVEL, no_worse=10.0).white[-1][1][0] == "ADNet cblind"  # in sample: cblind


def test_a_kept_pick_keeps_the_photo():
    case = hybrid_case("A", 5, 5.0, "white", 30.0, {"ADNet cblind": 31.0})
    assert hybrid_psnr(case, Hybrid((TOLD, 1.0), ((51.0, (KEPT, 0.0)),), (TOLD, 1.0)), LEVEL) == 20.0


def test_hybrid_cases_join_fdncnns_levels_and_the_references_outputs():
    reading = [10.0, 10.0, "white", 9.0]
    rows = [{"set": "Kodak24", "image": "a.png", "sigma": 10, "model": KEPT, "psnr": 28.0, "reading": reading,
             "channels": 3},
            {"set": "Kodak24", "image": "a.png", "sigma": 10, "model": "FDnCNN color", "psnr": 33.0, "level": 10.0,
             "reading": reading, "channels": 3},
            {"set": "Kodak24", "image": "a.png", "sigma": 10, "model": "ADNet cblind", "psnr": 34.0,
             "reading": reading, "channels": 3, "strengths": {"1": 34.0, "0.5": 31.0}}]
    [case] = hybrid_cases(rows)
    assert (case.fold, case.group, case.curve) == ("Kodak24", 10, [(0.0, 28.0), (10.0, 33.0)])
    assert case.outputs == {"ADNet cblind": {1.0: 34.0, 0.5: 31.0}}
