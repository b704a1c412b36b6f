"""Each benchmark runs in its --quick mode (to prove it works; no figures are asserted: the
figures come from the full runs recorded in benchmarks/RESULTS.md)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["loss_ladder.py", "throughput.py", "cpu_budget.py", "addition.py", "ablation.py", "pretrain.py"]


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
