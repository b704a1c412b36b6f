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


def _texts(fig) -> list:
    return [t for ax in fig.axes for t in ax.texts]


def test_the_gpt_overview_labels_every_stage_with_the_configs_shapes():
    import matplotlib.pyplot as plt

    from lecture_utils.model import GPTConfig

    for config, batch in ((GPTConfig(), None), (GPTConfig(vocab_size=37, block_size=16, n_embd=48, n_head=3,
                                                           n_layer=2), 8)):
        fig = figures.gpt_overview(config, batch)
        text = "\n".join(t.get_text() for t in _texts(fig))
        plt.close(fig)
        C, V = config.n_embd, config.vocab_size
        for label in ("(B, T)", f"(B, T, {C})", f"(T, {C})", f"logits  (B, T, {V})", f"(B, T, {C // config.n_head})",
                      f"Embedding({V}, {C})", f"Embedding({config.block_size}, {C})", f"Linear({C}, {V})",
                      f"Linear({C} -> {4 * C})", f"Block  x {config.n_layer}", "ln1", "ln2", "ln_f", "lm_head",
                      f"block_size = {config.block_size}"):
            assert label in text, f"gpt_overview({config}) has no label {label!r}"
        assert f"B = batch ({batch or 64} " in text
        assert text.count(f"(B, T, {C}), added to x") == 2  # both residual adds
        if C != 384:
            assert "384" not in text, "a number of the default configuration is drawn for another configuration"


@pytest.mark.parametrize("chapter", range(1, len(figures.ROADMAP_STEPS) + 1))
def test_the_roadmap_highlights_its_chapter_and_marks_the_earlier_ones_done(chapter):
    import matplotlib.pyplot as plt

    fig = figures.roadmap(chapter)
    texts = _texts(fig)
    plt.close(fig)
    steps = [t for t in texts if t.get_text()[:2].isdigit() and "\n" in t.get_text()]
    assert [t.get_text().split("\n")[0] for t in steps] == [f"{i:02d}" for i in range(1, 9)]
    bold = [int(t.get_text()[:2]) for t in steps if t.get_fontweight() in ("bold", 700)]
    assert bold == [chapter]
    here = [t for t in texts if t.get_text() == "you are here"]
    assert len(here) == 1
    current = steps[chapter - 1]
    assert abs(here[0].get_position()[0] - current.get_position()[0]) < 1e-9  # right above the current step
    assert sum(t.get_text() == "✓ done" for t in texts) == chapter - 1
    done_x = sorted(t.get_position()[0] for t in texts if t.get_text() == "✓ done")
    assert all(x < current.get_position()[0] for x in done_x)


@pytest.mark.parametrize("bad", [0, 9, -1, "04", 4.0, True, None])
def test_the_roadmap_refuses_a_chapter_outside_01_to_08_and_says_which(bad):
    with pytest.raises(ValueError, match=r"chapter must be a whole number from 1 to 8 .* got "):
        figures.roadmap(bad)


def test_chapters_01_to_08_open_with_their_roadmap_before_any_section():
    for i in range(1, len(figures.ROADMAP_STEPS) + 1):
        (path,) = (ROOT / "solutions").glob(f"{i:02d}_*.ipynb")
        nb = nbformat.read(path, as_version=4)
        first_section = next(j for j, c in enumerate(nb.cells) if c.cell_type == "markdown"
                             and any(line.startswith("## ") for line in c.source.splitlines()))
        where = [j for j, c in enumerate(nb.cells) if f"attachment:roadmap_{i:02d}.png" in c.source]
        assert where and where[0] < first_section, f"{path.name}: the roadmap is not at the top"
        assert not [c for c in nb.cells if "attachment:roadmap_" in c.source and f"roadmap_{i:02d}" not in c.source]
