"""``import lecture_utils`` stays light (no torch), and its submodules are there on first use (PEP 562)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_a_plain_import_does_not_import_torch(tmp_path):
    out = _python("import sys, lecture_utils; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))",
                  tmp_path)
    assert out.strip() == "[]", out


def test_checks_progress_works_after_a_plain_import(tmp_path):
    # a fresh notebook's first cell: no `import lecture_utils.checks` before it
    out = _python("import lecture_utils; lecture_utils.checks.progress(); print('torch' in __import__('sys').modules)",
                  tmp_path)
    assert "python -m lecture_utils grade notebooks/" in out, out  # no saved notebooks here: it says how
    assert out.strip().endswith("True"), out  # the submodule (and torch) came in on first use


def test_submodules_are_attributes_and_unknown_names_are_attribute_errors():
    import lecture_utils

    assert lecture_utils.config.TrainConfig is not None
    with pytest.raises(AttributeError, match="no attribute 'no_such_module'"):
        lecture_utils.no_such_module  # noqa: B018
    assert not hasattr(lecture_utils, "_private")
