"""Notebooks show nothing but intended output: no code cell ends in an expression whose value is an
accident (``seed_everything(1337)`` would print ``<torch._C.Generator at 0x...>``)."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "solutions").glob("*.ipynb")) + sorted((ROOT / "notebooks").glob("*.ipynb"))

# last expressions a cell shows on purpose: a widget, a value being taught, calls that return None
INTENDED = ("print(", "display(", "plt.show()", "viz.", "lecture_utils.progress(", "my_gpt.keep(", "x.shape",
            "config")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_cell_shows_a_stray_value(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.source.lstrip().startswith(("%", "!")):
            continue
        body = ast.parse(cell.source).body
        if body and isinstance(body[-1], ast.Expr):
            last = ast.get_source_segment(cell.source, body[-1])
            assert last.startswith(INTENDED), f"cell {i} ends in `{last[:60]}`, whose value Jupyter would show"
