"""--compile: the decision (a plain function, faked capabilities) and a compiled step against the eager one."""
import os
import re

import pytest
import torch

import train
import training
from training import COMPILE_MIN_STEPS, auto_or_bool, compile_policy, compiler_ready

READY = (True, "inductor with g++")


@pytest.mark.parametrize("choice,device,steps,ready,apex,expected,why", [
    ("auto", "cpu", COMPILE_MIN_STEPS, READY, False, "measure", "steps left"),
    ("auto", "cuda", 10 ** 6, READY, False, "measure", "inductor"),
    ("auto", "cpu", COMPILE_MIN_STEPS - 1, READY, False, "off", "repays itself after"),
    ("auto", "cpu", 10 ** 6, (False, "no C++ compiler for inductor's CPU code"), False, "off", "no C++ compiler"),
    ("auto", "npu", 10 ** 6, compiler_ready("npu"), False, "off", "does not build for npu"),
    ("auto", "cuda", 10 ** 6, READY, True, "off", "apex"),
    (True, "cpu", 1, READY, False, "on", "--compile True"),
    (False, "cuda", 10 ** 6, READY, False, "off", "--compile False"),
])
def test_compile_policy(choice, device, steps, ready, apex, expected, why):
    decision, reason = compile_policy(choice, device, steps, ready, apex=apex)
    assert decision == expected and why in reason


def test_step_race_alternates_then_keeps_the_faster():
    race = training.StepRace("E", "C", rounds=3)
    seen = []
    fake = {"E": [9.0, 1.0, 1.2, 0.9], "C": [60.0, 0.8, 0.7, 5.0]}  # first of each untimed (warm-up, compile)
    while not race.done:
        net = race.net()
        seen.append(net)
        race.record(fake[net].pop(0))
    assert seen == ["E", "C"] * 4
    assert race.medians() == (1.0, 0.8)  # the 60 s compile and the 9 s warm-up left out; one slow step is not the median
    assert training.StepRace.verdict(1.0, 0.8, 3)[0] is True
    assert training.StepRace.verdict(1.0, 0.99, 3)[0] is False  # within the margin: eager kept
    assert "eager kept" in training.StepRace.verdict(1.0, 1.1, 3)[1]


def test_compile_flag_values():
    assert auto_or_bool("auto") == "auto" and auto_or_bool("AUTO") == "auto"
    assert auto_or_bool("True") is True and auto_or_bool("0") is False
    assert train.parse_args([]).compile == "auto"


def test_compiler_ready_looks_for_a_cpp_compiler_and_triton(monkeypatch):
    import shutil
    import torch.utils._triton as triton
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert compiler_ready("cpu")[0] is False
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    assert compiler_ready("cpu") == (True, "inductor with /usr/bin/g++")
    monkeypatch.setattr(triton, "has_triton", lambda: False)
    assert compiler_ready("cuda") == (False, "Triton is not installed")
    monkeypatch.setattr(triton, "has_triton", lambda: True)
    assert compiler_ready("cuda")[0] is True


def _trainer(h5, outf, compiled, *extra):
    args = train.parse_args(["--h5_dir", h5, "--outf", str(outf), "--batchSize", "16", "--num_of_layers", "5",
                             "--max_steps", "2", "--amp", "none", "--compile", compiled, "--tensorboard", "False",
                             "--quiet", "--workers", "2", *extra])
    return train.Trainer(args)


@pytest.mark.skipif(not compiler_ready("cpu")[0], reason="no C++ compiler: torch.compile cannot build CPU code here")
def test_compiled_step_equals_eager_and_checkpoints_stay_plain(tiny_h5, tmp_path):
    eager, compiled = _trainer(tiny_h5, tmp_path / "eager", "False"), _trainer(tiny_h5, tmp_path / "compiled", "True")
    assert not eager.compiled and compiled.compiled and eager.race is None
    assert all(torch.equal(a, b) for a, b in zip(eager.model.state_dict().values(), compiled.model.state_dict().values()))
    batch = next(iter(eager.batches.batches()))
    for step in range(2):
        losses = []
        for t in (eager, compiled):
            clean, noisy = t.make_inputs(batch)
            loss, estimate = t.optimize(clean, noisy, 1e-3)
            assert estimate.is_contiguous(memory_format=torch.channels_last)
            losses.append(loss.item())
        # fp32 with other summation orders; 1e-4 relative is far below what one wrong layer changes (a step of
        # Adam at lr 1e-3 moves this loss by about 1 %)
        assert losses[1] == pytest.approx(losses[0], rel=1e-4), step
    compiled.step = 2
    compiled.save()
    state = torch.load(tmp_path / "compiled" / "checkpoint.pth", weights_only=False)
    assert state["model"] and not any("_orig_mod" in k or k.startswith("module.") for k in state["model"])
    # and a compiled run resumes from it, training on
    resumed = _trainer(tiny_h5, tmp_path / "compiled", "True", "--resume", "--max_steps", "3")
    assert resumed.step == 2 and resumed.compiled
    assert resumed.run() == 0 and resumed.step == 3
    assert "compile: on (--compile True)" in open(tmp_path / "compiled" / "train.log").read()
    assert os.path.isfile(tmp_path / "compiled" / "net.pth")


@pytest.mark.skipif(not compiler_ready("cpu")[0], reason="no C++ compiler: torch.compile cannot build CPU code here")
def test_auto_times_both_steps_then_keeps_one(tiny_h5, tmp_path, monkeypatch):
    monkeypatch.setattr(training, "COMPILE_MIN_STEPS", 0)
    monkeypatch.setattr(train, "compile_policy", lambda *a, **k: training.compile_policy(*a, **dict(k, min_steps=0)))
    t = _trainer(tiny_h5, tmp_path, "auto", "--max_steps", "9")
    assert t.race is not None and not t.compiled
    assert t.run() == 0 and t.race is None and t.step == 9
    log = open(tmp_path / "train.log").read()
    assert "compile: measuring: eager and compiled steps in turn for the first 8 steps" in log
    verdict = "compiled kept" if t.compiled else "eager kept"
    assert re.search(r"compile: (on|off) \(compiled step [\d.]+ s vs eager [\d.]+ s, medians of 3: %s\)" % verdict, log)
    assert hasattr(t.net, "_orig_mod") is t.compiled  # the kept step is the one that runs on
