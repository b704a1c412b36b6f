"""The course's pictures: drawn by lecture_utils.figures, embedded in the notebooks as attachments.

Every image a notebook refers to must be inside the notebook (so it shows offline, in Colab and on a
repository host's preview), with alt text; the build must carry attachments into notebooks/.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest

from lecture_utils import authoring, figures

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "solutions").glob("*.ipynb")) + sorted((ROOT / "notebooks").glob("*.ipynb"))
IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<target>[^)\s]+)")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_image_a_notebook_refers_to_is_inside_it_with_alt_text(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for m in IMAGE.finditer(cell.source):
            target, alt = m.group("target"), m.group("alt").strip()
            assert target.startswith("attachment:"), f"cell {i} links {target}: embed it as an attachment"
            assert len(alt) >= 20, f"cell {i}: {target} needs alt text saying what the picture shows"
            name = target.removeprefix("attachment:")
            data = (cell.get("attachments") or {}).get(name, {})
            assert "image/png" in data, f"cell {i} refers to {name}, which is not attached to the cell"
            assert base64.b64decode(data["image/png"]).startswith(PNG_SIGNATURE), f"cell {i}: {name} is not a PNG"


@pytest.mark.parametrize("folder", ["solutions", "notebooks"])
def test_every_figure_is_embedded_in_its_notebook(folder):
    for figure in figures.FIGURES:
        nb = nbformat.read(ROOT / folder / figure.notebook, as_version=4)
        cells = [c for c in nb.cells if f"attachment:{figure.name}.png" in c.get("source", "")]
        assert len(cells) == 1, f"{folder}/{figure.notebook}: {figure.name} appears {len(cells)} times"
        assert f"{figure.name}.png" in cells[0].attachments


def test_figure_names_are_unique():
    names = [f.name for f in figures.FIGURES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("figure", figures.FIGURES, ids=lambda f: f.name)
def test_each_figure_draws_a_modest_png(figure):
    data = figures.png_bytes(figure)
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) < 120_000  # keeps the committed notebooks small


def test_the_build_carries_attachments_into_the_learner_copy():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_markdown_cell("![a picture of the causal mask](attachment:m.png)")
    cell["attachments"] = {"m.png": {"image/png": base64.b64encode(PNG_SIGNATURE).decode()}}
    nb.cells = [cell]
    learner = authoring.learner_copy(nb, "x.ipynb")
    assert learner.cells[0].attachments == cell.attachments


def test_embedding_twice_changes_nothing(tmp_path):
    """Re-running the command replaces each picture in place: no second cell, same notebook."""
    (tmp_path / "solutions").mkdir()
    for name in {f.notebook for f in figures.FIGURES}:
        (tmp_path / "solutions" / name).write_bytes((ROOT / "solutions" / name).read_bytes())
    figures.embed(tmp_path)
    first = {p.name: p.read_text() for p in (tmp_path / "solutions").iterdir()}
    figures.embed(tmp_path)
    assert first == {p.name: p.read_text() for p in (tmp_path / "solutions").iterdir()}
    for figure in figures.FIGURES:
        nb = nbformat.read(tmp_path / "solutions" / figure.notebook, as_version=4)
        assert sum(f"attachment:{figure.name}.png" in c.source for c in nb.cells) == 1
