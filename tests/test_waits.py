"""Waits a learner can plan for: every code cell that runs longer than about 20 s at full length says so in the
markdown cell directly above it — how long it took when measured, and what to do on a slower machine — and shows
its progress while it runs.

Which cells are long was measured, not guessed: ``python benchmarks/chapter_wait.py --threads 1 --chapters 1 ... 14
--cells 20`` runs every solution notebook at full length and lists each cell that took 20 s or more of the kernel's
CPU time (benchmarks/RESULTS.md, "How long a learner waits", has the table; chapter 11's fine-tuning cell is timed by
``benchmarks/pretrain.py``, which runs the same two recipes). The test does not time anything: it keys each long cell on a
fragment of its code that does not change with a run, and fails when
- a long cell has no wait note directly above it, or its note gives no time or no way to wait less;
- a wait note stands above a cell that is not a long one (a note left behind when a cell moved);
- a long cell hides its progress (a training call with ``progress=False``, a loop that prints nothing).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

# notebook -> fragments of the long cells' code, one fragment per cell (measured: see the docstring)
LONG_CELLS: dict[str, list[str]] = {
    "07_residual_layernorm": ["class DeepLanguageModel(nn.Module):"],
    "08_scaling_up": ["runs[p] = train(net, small_train", "result = train(model, train_data, val_data, cpu_config"],
    "09_batched_heads": ["configs = {  # name: (model configuration, batch size)"],
    "10_addition": ["model, history, seconds = train_addition(2, steps=smoke(1000, 20)"],
    "11_pretrain_finetune": ["steps = smoke(pretrain.FINETUNE.max_iters, 10)"],
    "12_modern_features": ["budget = smoke(120.0, 2.0)"],
    "14_tokenizer": ["tokenizers[name] = train_bpe(t[:n_train], max(sizes))",
                     "seconds = smoke(120, 3)  # seconds of training (wall clock: TrainConfig.time_budget)"],
}

NOTE = re.compile(r"\*\*Wait:\*\* about (\d+(\.\d+)?|a|one|two) (s|seconds?|min|minutes?)\b")
# what a learner on a slower machine can do: the smoke setting, or a shorter option the note names
REMEDY = re.compile(r"LECTURE_UTILS_SMOKE=1|max_iters|steps|shorter|smaller|lower|skip", re.I)
# what shows progress while a cell runs: the training loop's bar (on unless progress=False), tqdm, or printed lines
SHOWS_PROGRESS = re.compile(r"\btrain\(|tqdm|print\(")


def _cells(name: str):
    return nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4).cells


def _long_cell_indices(name: str) -> list[int]:
    cells, found = _cells(name), []
    for fragment in LONG_CELLS[name]:
        hits = [i for i, c in enumerate(cells) if c.cell_type == "code" and fragment in c.source]
        assert len(hits) == 1, (f"{name}: the long cell {fragment!r} is in {len(hits)} code cells; update LONG_CELLS "
                                f"(re-measure with benchmarks/chapter_wait.py --cells 20)")
        found.append(hits[0])
    return found


@pytest.mark.parametrize("name", sorted(LONG_CELLS))
def test_every_long_cell_has_a_wait_note_directly_above_it(name):
    cells = _cells(name)
    for i in _long_cell_indices(name):
        above = cells[i - 1]
        assert above.cell_type == "markdown", f"{name} cell {i} runs long: put a markdown wait note directly above it"
        note = NOTE.search(above.source)
        assert note, (f"{name} cell {i} runs long, and the markdown above it does not say how long: add "
                      f"'**Wait:** about N s (or min) ...' with the measured time")
        assert REMEDY.search(above.source[note.start():]), (
            f"{name} cell {i}: its wait note says how long but not what to do on a slower machine (fewer steps, "
            f"a shorter option, or LECTURE_UTILS_SMOKE=1)")


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.name)
def test_wait_notes_stand_only_above_long_cells(path):
    cells = nbformat.read(path, as_version=4).cells
    long_ones = set(_long_cell_indices(path.stem)) if path.stem in LONG_CELLS else set()
    for i, cell in enumerate(cells[:-1]):
        if cell.cell_type == "markdown" and NOTE.search(cell.source):
            assert i + 1 in long_ones, (f"{path.name} cell {i} has a wait note, but cell {i + 1} is not listed as a "
                                        f"long cell in tests/test_waits.py (measure it, then list it or drop the note)")


@pytest.mark.parametrize("name", sorted(LONG_CELLS))
def test_long_cells_show_their_progress(name):
    cells = _cells(name)
    for i in _long_cell_indices(name):
        source = cells[i].source
        assert "progress=False" not in source, f"{name} cell {i} runs long with its progress bar switched off"
        assert SHOWS_PROGRESS.search(source), f"{name} cell {i} runs long and shows nothing while it runs"


def test_the_notes_are_in_the_learner_copies_too():
    for name in LONG_CELLS:
        learner = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4).cells
        assert sum(bool(c.cell_type == "markdown" and NOTE.search(c.source)) for c in learner) == len(LONG_CELLS[name]), (
            f"notebooks/{name}.ipynb lacks wait notes its solution has: python -m lecture_utils.authoring build")
