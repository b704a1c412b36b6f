"""Each benchmark runs in its --quick mode (to prove it works; no figures are asserted: the
figures come from the full runs recorded in benchmarks/RESULTS.md)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["loss_ladder.py", "throughput.py", "cpu_budget.py", "addition.py", "ablation.py", "pretrain.py", "grade_class.py",
           "chapter_wait.py", "dropout_demo.py", "bpe_vs_char.py", "kv_cache.py", "check_stability.py", "record_reference.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_help(script):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "--quick" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_quick_mode_runs(script):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--device", "cpu"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip()


@pytest.mark.slow
def test_throughput_convergence_mode_runs():
    """--convergence trains fp32 and bf16 side by side (on CPUs with native bf16; elsewhere it says nothing)."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--quick", "--device", "cpu",
                          "--configs", "small", "--convergence", "2"], capture_output=True, text=True, timeout=600,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    from lecture_utils.device import cpu_has_native_bf16

    if cpu_has_native_bf16():
        assert "fp32" in out.stdout and "bf16 autocast" in out.stdout and "val after 3 steps" in out.stdout


@pytest.mark.slow
def test_throughput_vs_gpt_py_mode_runs():
    """--vs-gpt-py times the lecture's gpt.py model (benchmarks/lecture_gpt.py) against the reference in
    interleaved rounds, each fast path its own row; --profile with it profiles gpt.py beside the reference."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--quick", "--device", "cpu",
                          "--steps", "0", "--vs-gpt-py", "--cpu-bf16", "--profile", "--fast-paths", "--configs", "small",
                          "--threads", "1"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "round 2:" in out.stdout and "profile small    gpt.py" in out.stdout
    for row in ("reference, numpy's dropout masks", "+ oneDNN linear", "+ oneDNN linear + fast attention (train()'s)"):
        assert f"vs gpt.py: {row} " in out.stdout and "median" in out.stdout, row
    # --fast-paths: the reference with and without them at each --configs entry, a speed-up per round
    assert re.search(r"fast paths small .* speed-up per round wall [\d. ]+ \(median [\d.]+x\)", out.stdout), out.stdout


def test_the_restated_gpt_py_model_has_the_reference_s_parameters():
    """benchmarks/lecture_gpt.py re-states the lecture's model: the reference's 10,788,929 parameters, the
    same tensor shapes, built in the same order, and the lecture's initialisation."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import lecture_gpt
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from lecture_utils.model import GPT, GPTConfig

    torch.manual_seed(0)
    restated = lecture_gpt.LectureGPT()
    reference = GPT(GPTConfig(attention="heads"))
    assert sum(p.numel() for p in restated.parameters()) == 10_788_929
    assert [p.shape for p in restated.parameters()] == [p.shape for p in reference.parameters()]
    weight = restated.blocks[0].ffwd.net[0].weight
    assert abs(weight.std().item() - 0.02) < 1e-3 and restated.lm_head.bias.abs().max().item() == 0.0


def test_cpu_budget_set_names_a_bad_field_or_value():
    script = str(ROOT / "benchmarks" / "cpu_budget.py")
    bad_field = subprocess.run([sys.executable, script, "--set", "n_layers=6"], capture_output=True, text=True,
                               timeout=120)
    assert bad_field.returncode == 2 and "'n_layers=6'" in bad_field.stderr and "n_layer" in bad_field.stderr
    bad_value = subprocess.run([sys.executable, script, "--set", "cpu_bf16=maybe"], capture_output=True, text=True,
                               timeout=120)
    assert bad_value.returncode == 2 and "cpu_bf16 must be of type bool" in bad_value.stderr


def test_cpu_budget_set_overrides_model_and_training():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import argparse

        import cpu_budget
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    got = cpu_budget._parse_overrides(argparse.ArgumentParser(), ["n_layer=6", "cpu_bf16=true", "muon_lr=0.01",
                                                                   "optimizer=muon", "block_size=128"])
    assert got == {"n_layer": 6, "cpu_bf16": True, "muon_lr": 0.01, "optimizer": "muon", "block_size": 128}
    assert "block_size" in cpu_budget._MODEL_FIELDS and "block_size" in cpu_budget._TRAIN_FIELDS


def test_every_log_is_cited_and_every_cited_log_exists():
    """benchmarks/RESULTS.md is the record: a log no text cites is clutter, a cited log that is gone is a figure
    without its provenance."""
    import re

    text = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    logs = {p.name for p in (ROOT / "benchmarks" / "results").iterdir()}
    cited = set(re.findall(r"[\w.-]+\.log", text))
    assert sorted(logs - cited) == [], "logs in benchmarks/results/ that RESULTS.md does not cite"
    cited_in_results = {name for name in cited if f"results/{name}" in text}
    assert sorted(cited_in_results - logs) == [], "RESULTS.md cites logs that benchmarks/results/ lacks"
