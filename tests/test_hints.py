"""Hints that scaffold, and objectives that say what a chapter is for.

- Every core exercise has at least three hints before its solution, each in a ``<details>`` block of its own,
  numbered Hint 1, 2, 3, ... in order: (1) the idea and the shapes at each step, which gives away no line of the
  solution; (2) a skeleton of the code with ``____`` blanks to fill, which is not the whole solution; (3) the
  hardest lines. Then the marker ``<!-- solution N.M -->``, which the generator expands into the collapsed
  solution of the learner copy.
- The learner copy shows the solution only collapsed: with every ``<details>`` block taken out, no markdown
  cell shows a line of a core exercise's computation (the statement may name the layers ``__init__`` makes).
- Every chapter starts with what the learner can do after it: "After this chapter you can" (or "By the end of
  this chapter you can") and at least three bullet points, in the title cell or the markdown cell after it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lecture_utils import authoring

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))

# the exercises every learner does: the ladder of at least three hints is required for these
CORE = ["1.3", "2.1", "2.2", "2.4", "3.3", "3.4", "4.1", "5.1", "5.2", "6.1", "7.1", "7.2", "8.1", "12.3"]

_DETAILS = re.compile(r"<details><summary>(.*?)</summary>(.*?)</details>", re.S)
_HINT = re.compile(r"Hint (\d+)\b")
BLANK = "____"


def _normal(line: str) -> str:
    """A code line without its comment, whitespace or choice of quotes, for comparing lines."""
    line = re.sub(r"\s+#.*$", "", line.strip())
    return re.sub(r"\s+", "", line).replace("'", '"')


def solution_blocks(exercise_source: str) -> list[set[str]]:
    """The lines of each BEGIN ... END SOLUTION block, normalised; trivial ones (``else:``, ``)``) left out."""
    blocks, inside = [], False
    for line in exercise_source.splitlines():
        if line.strip().startswith(authoring.BEGIN):
            inside = True
            blocks.append(set())
        elif line.strip().startswith(authoring.END):
            inside = False
        elif inside and len(_normal(line)) >= 8:
            blocks[-1].add(_normal(line))
    return blocks


def solution_lines(exercise_source: str) -> set[str]:
    """Every line of the solution, normalised (see ``solution_blocks``)."""
    return set().union(*solution_blocks(exercise_source))


def code_lines(markdown: str) -> set[str]:
    """Every candidate line of code in ``markdown``: each line of it, and each inline code span, normalised."""
    spans = re.findall(r"`([^`\n]+)`", markdown)
    return {_normal(s) for s in markdown.splitlines() + spans if _normal(s)}


def hints_of(statement: str) -> list[tuple[int, str]]:
    """``[(n, body), ...]`` of the statement's hint blocks, in order (``Hint n`` opening each summary)."""
    out = []
    for summary, body in _DETAILS.findall(statement):
        m = _HINT.match(summary.strip())
        if m:
            out.append((int(m.group(1)), body))
    return out


def hint_problems(ex_id: str, statement: str, exercise_source: str) -> list[str]:
    """What is wrong with the hints of core exercise ``ex_id`` (an empty list: nothing)."""
    problems = []
    hints = hints_of(statement)
    numbers = [n for n, _ in hints]
    if len(hints) < 3 or numbers != list(range(1, len(hints) + 1)):
        return [f"{ex_id}: hints {numbers}, want Hint 1, Hint 2, Hint 3 (at least three, in order)"]
    mark = f"<!-- solution {ex_id} -->"
    if mark not in statement:
        problems.append(f"{ex_id}: no {mark} after the hints")
    elif statement.rindex("<details><summary>Hint") > statement.index(mark):
        problems.append(f"{ex_id}: a hint comes after the solution")
    answer = solution_lines(exercise_source)
    given = code_lines(hints[0][1]) & answer
    if given:
        problems.append(f"{ex_id}: hint 1 gives a line of the solution: {sorted(given)[0]}")
    skeleton = hints[1][1]
    if BLANK not in skeleton:
        problems.append(f"{ex_id}: hint 2 is not a skeleton (no {BLANK} blank to fill)")
    if answer and answer <= code_lines(skeleton):
        problems.append(f"{ex_id}: hint 2 is the whole solution")
    if not hints[2][1].strip():
        problems.append(f"{ex_id}: hint 3 is empty")
    return problems


def _exercise(nb, ex_id: str) -> tuple[str, str]:
    """(statement markdown, exercise cell source) of exercise ``ex_id`` of a notebook."""
    statement = next(c.source for c in nb.cells
                     if c.cell_type == "markdown" and re.search(rf"### Exercise {re.escape(ex_id)}\b", c.source))
    source = next(c.source for c in nb.cells if c.cell_type == "code" and c.source.startswith(f"# Exercise {ex_id}:"))
    return statement, source


def _notebook_of(ex_id: str) -> Path:
    chapter = int(ex_id.split(".")[0])
    return next(p for p in SOLUTIONS if int(p.name[:2]) == chapter)


@pytest.mark.parametrize("ex_id", CORE)
def test_core_exercise_has_a_ladder_of_three_hints_before_its_solution(ex_id):
    nb = authoring.read_notebook(_notebook_of(ex_id))
    statement, source = _exercise(nb, ex_id)
    assert hint_problems(ex_id, statement, source) == []


def test_the_hint_check_fails_when_a_hint_is_removed_or_gives_the_answer():
    """The check above is not vacuous: take exercise 4.1's real hints and break them one way at a time."""
    nb = authoring.read_notebook(_notebook_of("4.1"))
    statement, source = _exercise(nb, "4.1")
    blocks = [m.group(0) for m in _DETAILS.finditer(statement) if _HINT.match(m.group(1))]
    assert hint_problems("4.1", statement, source) == []
    without_3 = statement.replace(blocks[2], "")
    assert "want Hint 1, Hint 2, Hint 3" in hint_problems("4.1", without_3, source)[0]
    without_2 = statement.replace(blocks[1], "")
    assert "want Hint 1, Hint 2, Hint 3" in hint_problems("4.1", without_2, source)[0]
    answer_in_1 = statement.replace(blocks[0], blocks[0].replace(
        "</details>", "`wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))`\n</details>"))
    assert any("hint 1 gives a line" in p for p in hint_problems("4.1", answer_in_1, source))
    body = authoring.solution_text(source).split("\n", 1)[1]
    whole_2 = statement.replace(blocks[1], f"<details><summary>Hint 2</summary>\n\n{body}\n</details>")
    assert any("hint 2" in p for p in hint_problems("4.1", whole_2, source))


@pytest.mark.parametrize("ex_id", CORE)
def test_the_learner_copy_shows_a_core_solution_only_collapsed(ex_id):
    path = _notebook_of(ex_id)
    solution = authoring.read_notebook(path)
    learner = authoring.read_notebook(ROOT / "notebooks" / path.name)
    _, source = _exercise(solution, ex_id)
    answer = solution_lines(source)
    text = "\n".join(c.source for c in learner.cells if c.cell_type == "markdown")
    assert authoring.solution_block(source) in text, f"exercise {ex_id} has no collapsed solution"
    shown = code_lines(_DETAILS.sub("", text)) & answer  # what a learner reads without opening anything
    # the statement may name the interface a check needs (``__init__``'s layers), never the computation: no line
    # of the last solution block (``forward``, or a function's body), and less than half of the solution in all
    computation = solution_blocks(source)[-1]
    assert not shown & computation, f"exercise {ex_id}: the learner copy shows {sorted(shown & computation)}"
    assert len(shown) < len(answer) / 2, f"exercise {ex_id}: the learner copy shows {sorted(shown)}"


OBJECTIVES = re.compile(r"^\**(After this chapter you can|By the end of this chapter you can)\b.*$", re.M)


def objectives(nb) -> list[str]:
    """The bullet points after "After this chapter you can" in the title cell or the markdown cell after it."""
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown" and authoring.COLAB_TAG not in c.metadata.get("tags", [])]
    for source in markdown[:2]:
        m = OBJECTIVES.search(source)
        if m:
            items = []
            for line in source[m.end():].lstrip("\n").splitlines():
                if line.startswith(("- ", "* ")):
                    items.append(line[2:].strip())
                elif line.startswith("  ") and items:  # a bullet's continuation line
                    items[-1] += " " + line.strip()
                elif line.strip() or items:
                    break
            return items
    return []


# every chapter 01..14 and any later one; a chapter whose notebook does not exist yet is skipped, not failed
CHAPTERS = sorted({f"{n:02d}" for n in range(1, 15)} | {p.name[:2] for p in SOLUTIONS})


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_opens_with_what_the_learner_can_do_after_it(chapter):
    paths = [p for p in SOLUTIONS if p.name.startswith(chapter + "_")]
    if not paths:
        pytest.skip(f"chapter {chapter} has no notebook yet")
    items = objectives(authoring.read_notebook(paths[0]))
    assert len(items) >= 3, (f"{paths[0].name}: the title cell (or the cell after it) should say "
                             f"'After this chapter you can' with at least three bullet points; found {items}")
    assert all(len(item) > 15 for item in items), items

