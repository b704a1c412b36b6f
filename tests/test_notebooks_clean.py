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


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_every_learner_notebook_has_its_set_up_cells_before_the_first_section(path):
    """The Colab cell and the set-up come first; the nbval run of notebooks/ checks what they print (the root
    conftest.py: one kernel per notebook, shared with the rest of its cells)."""
    assert len(_setup_cells(nbformat.read(path, as_version=4))) >= 2, f"{path.name}: no set-up cell before the first section"


def _stream(name, text):
    return nbformat.v4.new_output("stream", name=name, text=text)


def test_the_set_up_check_names_a_value_a_repr_and_a_warning(set_up_cell_problems):
    value = nbformat.v4.new_output("execute_result", data={"text/plain": "<torch._C.Generator at 0x7f3a2c>"},
                                   execution_count=2)
    assert set_up_cell_problems("01_data.ipynb", 1, [value]) == [
        "01_data.ipynb set-up cell 1 shows a value: '<torch._C.Generator at 0x7f3a2c>'"]
    assert set_up_cell_problems("01_data.ipynb", 1, [_stream("stdout", "seeded <torch._C.Generator object at 0x7f3a2c>")]
                                ) == ["01_data.ipynb set-up cell 1 prints a repr: 'seeded <torch._C.Generator object at 0x7f3a2c>'"]
    warning = _stream("stderr", "UserWarning: TypedStorage is deprecated")
    assert set_up_cell_problems("02_bigram.ipynb", 0, [warning]) == [
        "02_bigram.ipynb set-up cell 0 writes to stderr: 'UserWarning: TypedStorage is deprecated'"]
    shown = nbformat.v4.new_output("display_data", data={"text/plain": "device: cpu"})
    assert set_up_cell_problems("02_bigram.ipynb", 1, [_stream("stdout", "device: cpu (1 thread)\n"), shown]) == []


@pytest.mark.slow
def test_a_set_up_cell_that_shows_a_value_fails_the_nbval_run(tmp_path):
    """The check above runs inside nbval (one kernel): a learner notebook whose set-up cell ends in a value fails,
    one whose value comes after the first section passes."""
    import shutil
    import subprocess
    import sys

    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A chapter"), nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("import random\nrandom.seed(1)\nx + 1"),
                                         nbformat.v4.new_markdown_cell("## A section"),
                                         nbformat.v4.new_code_cell("x + 2")])
    nbformat.write(nb, tmp_path / "notebooks" / "stray.ipynb")
    nb.cells[2].source = "import random\nrandom.seed(1)"
    nbformat.write(nb, tmp_path / "notebooks" / "clean.ipynb")
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-n", "0",
                          "--nbval-lax", "--nbval-current-env", "-rA", "notebooks"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=600)
    assert "stray.ipynb set-up cell 1 shows a value: '2'" in out.stdout, out.stdout[-3000:]
    assert "1 failed, 5 passed" in out.stdout, out.stdout[-3000:]
