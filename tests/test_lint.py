"""The lint rules in pyproject.toml ([tool.ruff]) hold for the package, its tests, benchmarks and the noxfile.

Without this test nothing runs ruff, and a rule that nothing runs is a promise, not a rule. The notebooks are
left out: learner cells import names a later exercise uses, which a linter reads as unused.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["lecture_utils", "tests", "benchmarks", "noxfile.py"]


def _ruff() -> list[str]:
    try:
        import ruff  # noqa: F401  (the wheel ships the binary; `python -m ruff` finds it)
    except ImportError:
        if shutil.which("ruff") is None:
            pytest.skip("ruff is not installed: pip install -e '.[dev]'")
        return ["ruff"]
    return [sys.executable, "-m", "ruff"]


def test_ruff_finds_nothing():
    done = subprocess.run([*_ruff(), "check", "--no-cache", *TARGETS], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, "ruff check found problems (fix them, or `ruff check --fix`):\n" + done.stdout[-4000:]


def test_ruff_catches_unsorted_imports(tmp_path):
    """The import-order rule is on: a file with its imports out of order is reported (so the test above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nimport os\n\nprint(os, sys)\n")
    done = subprocess.run([*_ruff(), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and "I001" in done.stdout, done.stdout + done.stderr
