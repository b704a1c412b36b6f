"""One main path per chapter: optional "Going further" sections hold the systems material, and skipping them loses
nothing the lecture teaches.

A chapter's optional sections start at a level-2 heading ``## Going further (optional): ...`` and run to the next
level-2 heading. Everything else is the main path. The tests check that
- every optional section is marked the same way, says it is not needed, and holds no exercise or check;
- no main-path cell is about the systems material those sections hold (bf16/AMX, torchrun, Muon, fast CPU dropout,
  the profiler);
- no main-path code cell uses a name that only an optional code cell defines (so skipping them breaks nothing);
- every row of the lecture's outline (the lecture's timeline and its four exercises) is met on a main path.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
OPTIONAL = "## Going further (optional): "

# the lecture's outline (its chapter map and its exercises) -> where a learner meets it on a main path:
# (lecture time or exercise, notebook, a phrase of that notebook's main path)
LECTURE_ROWS = [
    ("00:00 intro", "01_data", "00:00"),
    ("07:52 reading the data", "01_data", "07:52"),
    ("09:28 tokenization", "01_data", "09:28"),
    ("09:28 subword tokenizers", "01_data", "SentencePiece"),
    ("14:27 data loader", "01_data", "14:27"),
    ("22:11 bigram model", "02_bigram", "22:11"),
    ("22:11 expected loss ln 65", "02_bigram", "4.17"),
    ("34:53 training the bigram", "02_bigram", "34:53"),
    ("38:00 estimate_loss, eval/train", "02_bigram", "38:00"),
    ("42:13 v1 loops", "03_averaging_trick", "42:13"),
    ("47:11 the matmul trick", "03_averaging_trick", "47:11"),
    ("51:54 v2", "03_averaging_trick", "average_v2"),
    ("54:42 v3 softmax", "03_averaging_trick", "54:42"),
    ("58:26 n_embd, lm_head", "03_averaging_trick", "58:26"),
    ("01:00:18 positional encoding", "03_averaging_trick", "01:00:18"),
    ("01:02:00 self-attention", "04_self_attention", "01:02:00"),
    ("01:11:38 note 1", "04_self_attention", "01:11:38"),
    ("01:12:46 note 2", "04_self_attention", "note 2"),
    ("01:13:40 note 3", "04_self_attention", "note 3"),
    ("01:14:14 note 4 encoder vs decoder", "04_self_attention", "*encoder* block"),
    ("01:15:39 note 5 cross-attention", "04_self_attention", "note 5"),
    ("01:16:56 note 6 scaling", "04_self_attention", "01:16:56"),
    ("01:19:11 one head in the network", "04_self_attention", "01:19:11"),
    ("01:21:59 multi-head", "05_multi_head", "01:21:59"),
    ("01:24:25 feed-forward", "06_feed_forward", "01:24:25"),
    ("01:26:48 residual", "07_residual_layernorm", "01:26:48"),
    ("01:32:51 LayerNorm", "07_residual_layernorm", "01:32:51"),
    ("01:37:49 scaling up", "08_scaling_up", "01:37:49"),
    ("01:37:49 dropout", "08_scaling_up", "## Dropout, seen"),
    ("01:42:39 decoder-only vs encoder-decoder", "08_scaling_up", "01:42:39"),
    ("01:46:22 heads as a batch dimension", "05_multi_head", "01:46:22"),
    ("01:48:53 ChatGPT", "08_scaling_up", "01:48:53"),
    ("01:54:32 conclusions: the learner's own gpt.py", "08_scaling_up", "this chapter ends with yours"),
    ("EX1 heads batched", "09_batched_heads", "(EX1)"),
    ("EX1 the same function", "09_batched_heads", "# Exercise 9.1"),
    ("EX2 addition", "10_addition", "(EX2)"),
    ("EX3 pretrain, fine-tune", "11_pretrain_finetune", "(EX3)"),
    ("EX4 later Transformer papers", "12_modern_features", "(EX4)"),
]

# systems material that belongs in optional sections only (bf16 may be named in passing, e.g. how a run was made)
SYSTEMS = ["AMX", "torchrun", "DistributedDataParallel", "Muon", "newton_schulz", "cpu_dropout", "bernoulli",
           "torch.profiler", "autocast"]


def sections(nb) -> list[tuple[bool, int, nbformat.NotebookNode]]:
    """(optional?, index, cell) for every cell, in order."""
    out, optional = [], False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("## "):
                    optional = line.startswith(OPTIONAL)
        out.append((optional, i, cell))
    return out


def main_path_text(nb) -> str:
    return "\n".join(c.source for optional, _, c in sections(nb) if not optional)


def main_path_words(nb) -> int:
    """The words a learner reads on the main path: its markdown cells, split on whitespace (code not counted)."""
    return sum(len(c.source.split()) for optional, _, c in sections(nb) if not optional and c.cell_type == "markdown")


# issue 28, deliverable 4: main-path words before the issue -> the budget now (about 40 % fewer for 09; 12 stopped at
# about 20 % fewer, where further cuts would take concepts, hints or the predict-then-run prompts). The budgets leave
# room for a sentence or two; `python tests/test_main_path.py` prints the counts.
WORD_BUDGETS = {"09_batched_heads": (1542, 960), "12_modern_features": (2951, 2420)}


def _read(name: str):
    return nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4)


def test_the_chapters_with_systems_material_have_optional_sections():
    for name in ("08_scaling_up", "09_batched_heads", "12_modern_features"):
        assert any(opt for opt, _, _ in sections(_read(name))), f"{name} has no '{OPTIONAL}...' section"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_optional_sections_are_marked_and_hold_no_exercise(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and re.search(r"^#+ .*going further", cell.source, re.I | re.M):
            heading = next(ln for ln in cell.source.splitlines() if re.match(r"#+ .*going further", ln, re.I))
            assert heading.startswith(OPTIONAL), f"{path.name}: write the heading as '{OPTIONAL}...', not {heading!r}"
            assert "Nothing in this section is needed" in cell.source, f"{path.name}: {heading!r} must say it is optional"
    for optional, i, cell in sections(nb):
        if optional and cell.cell_type == "code":
            assert not cell.source.startswith("# Exercise"), f"{path.name} cell {i}: an exercise in an optional section"
            assert "check." not in cell.source, f"{path.name} cell {i}: a check in an optional section"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_the_main_path_holds_no_systems_material(path):
    text = main_path_text(nbformat.read(path, as_version=4))
    found = [t for t in SYSTEMS if t in text]
    assert not found, f"{path.name}: {found} on the main path; move it into a '{OPTIONAL}...' section"


def _names(source: str) -> tuple[set[str], set[str]]:
    """Names a cell binds at top level and names it reads."""
    tree = ast.parse(source)
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store) else read).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return bound, read


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_skipping_the_optional_sections_breaks_no_later_cell(path):
    nb = nbformat.read(path, as_version=4)
    main_bound: set[str] = set()
    optional_only: set[str] = set()
    for optional, i, cell in sections(nb):
        if cell.cell_type != "code" or cell.source.lstrip().startswith(("!", "%")):
            continue
        bound, read = _names(cell.source)
        if optional:
            optional_only |= bound - main_bound
        else:
            used = (read & optional_only) - main_bound - bound
            assert not used, f"{path.name} cell {i} uses {sorted(used)}, defined only in an optional section"
            main_bound |= bound


@pytest.mark.parametrize("row, notebook, phrase", LECTURE_ROWS, ids=[r[0] for r in LECTURE_ROWS])
def test_every_lecture_point_is_on_a_main_path(row, notebook, phrase):
    assert phrase in main_path_text(_read(notebook)), f"lecture {row}: {phrase!r} is not on {notebook}'s main path"


@pytest.mark.parametrize("notebook", sorted(WORD_BUDGETS))
def test_the_leaner_main_paths_stay_lean(notebook):
    before, budget = WORD_BUDGETS[notebook]
    words = main_path_words(_read(notebook))
    assert words <= budget, (f"{notebook}: {words} main-path words, over its budget of {budget} (it had {before} "
                             f"before issue 28): move run-to-run figures and benchmark detail to '{OPTIONAL}...'")


def visible_main_path_words(nb) -> int:
    """Main-path markdown words a learner sees without opening anything: :func:`main_path_words` less the collapsed
    ``<details>`` blocks (hints, answers) and images' alt text."""
    folded = re.compile(r"<details>.*?</details>|!\[[^\]]*\]\([^)]*\)", re.S)
    return sum(len(folded.sub(" ", c.source).split()) for optional, _, c in sections(nb)
               if not optional and c.cell_type == "markdown")


if __name__ == "__main__":
    # python tests/test_main_path.py [REV]: the counts of the working tree, or of a commit (e.g. b301e30^, before
    # issue 28's cuts)
    import subprocess
    import sys

    rev = sys.argv[1] if len(sys.argv) > 1 else None
    for path in SOLUTIONS:
        name = path.stem
        if rev:
            shown = subprocess.run(["git", "show", f"{rev}:solutions/{path.name}"], capture_output=True, text=True,
                                   cwd=ROOT)
            if shown.returncode:
                print(f"{name}: not in {rev}")
                continue
            src = shown.stdout
        else:
            src = path.read_text(encoding="utf-8")
        nb = nbformat.reads(src, as_version=4)
        print(f"{name}: {main_path_words(nb)} main-path words, {visible_main_path_words(nb)} shown without opening "
              f"a hint or an answer")
