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


def _setup_cells(nb):
    """The code cells before the first section heading (``## ...``): the Colab cell and the set-up."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and any(ln.startswith("## ") for ln in cell.source.splitlines()):
            break
        if cell.cell_type == "code":
            cells.append(cell)
    return cells


def test_set_up_cells_print_only_what_they_mean_to():
    """Run every learner notebook's set-up cells, as a learner opening it does first: no value display
    (``Out[n]:``), no ``<... at 0x...>`` repr, nothing on stderr (warnings). One kernel per notebook."""
    import re

    from nbclient import NotebookClient

    problems = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nb.cells = _setup_cells(nb)
        assert len(nb.cells) >= 2, f"{path.name}: no set-up cell before the first section"
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        for i, cell in enumerate(nb.cells):
            for out in cell.outputs:
                text = out.get("text", "") or str(out.get("data", {}).get("text/plain", ""))
                if out.output_type == "execute_result":
                    problems.append(f"{path.name} set-up cell {i} shows a value: {text[:80]!r}")
                elif out.output_type == "stream" and out.name == "stderr":
                    problems.append(f"{path.name} set-up cell {i} writes to stderr: {text[:120]!r}")
                elif re.search(r"<[\w.]+.* at 0x[0-9a-f]+>", text):
                    problems.append(f"{path.name} set-up cell {i} prints a repr: {text[:80]!r}")
    assert not problems, "\n".join(problems)
