"""The chapter manifest (lecture_utils/chapters.py) against what it describes: the solution notebooks, the checks,
the references and the catalogue of wrong solutions."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import lecture_utils.checks as check
from lecture_utils import chapters
from lecture_utils.chapters import CHAPTERS, EXERCISE_TAG, EXERCISES, exercise_key, header_of

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"


def _cells(notebook: str) -> list[dict]:
    return json.loads((SOLUTIONS / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]


def _exercise_cells(notebook: str) -> list[tuple[str, str, str]]:
    """(id, source, the next code cell's source) of every exercise cell of a solution notebook."""
    cells = [c for c in _cells(notebook) if c["cell_type"] == "code"]
    found = []
    for k, cell in enumerate(cells):
        source = "".join(cell["source"])
        if EXERCISE_TAG in cell.get("metadata", {}).get("tags", []):
            header = header_of(source)
            assert header is not None, f"{notebook}: an exercise cell without an '# Exercise N.M: title' line"
            found.append((header[0], source, "".join(cells[k + 1]["source"]) if k + 1 < len(cells) else ""))
    return found


def test_the_manifest_lists_every_solution_notebook_and_no_other():
    on_disk = sorted(p.stem for p in SOLUTIONS.glob("*.ipynb"))
    assert sorted(c.notebook for c in CHAPTERS) == on_disk
    assert [c.number for c in CHAPTERS] == list(range(1, len(CHAPTERS) + 1))
    for c in CHAPTERS:
        assert int(c.notebook.split("_")[0]) == c.number and c.checks.startswith(f"ch{c.number:02d}_")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.notebook)
def test_every_exercise_header_of_a_notebook_is_in_the_manifest_and_the_other_way_round(chapter):
    found = [ex_id for ex_id, _, _ in _exercise_cells(chapter.notebook)]
    assert found == [e.id for e in chapter.exercises]
    assert all(e.chapter == chapter.number for e in chapter.exercises)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.notebook)
def test_the_learner_names_are_what_the_exercise_cell_defines_and_its_check_cell_calls(chapter):
    for ex_id, source, after in _exercise_cells(chapter.notebook):
        row = EXERCISES[ex_id]
        tree = ast.parse(source)
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert set(row.names) <= defined, f"exercise {ex_id}: the cell defines {sorted(defined)}, not {row.names}"
        assert f"check.{row.check}({', '.join(row.names)})" in after, f"the cell after {ex_id}: {after!r}"


@pytest.mark.parametrize("row", EXERCISES.values(), ids=lambda e: e.id)
def test_every_check_exists_where_the_manifest_says_and_matches_its_row(row):
    chapter = chapters.chapter(row.chapter)
    registered = check.REGISTRY[row.id]
    assert getattr(check, row.check) is registered.check
    assert registered.check.__module__ == chapter.check_module
    assert registered.names == row.names and registered.title == row.title
    reference = registered.reference()
    objects = reference if len(row.names) > 1 else (reference,)
    assert len(objects) == len(row.names) and all(callable(o) for o in objects)
    for spec in row.reference:  # references live in reference modules, never in a check module
        assert not spec.startswith("lecture_utils.checks")


def test_the_registry_holds_exactly_the_manifests_exercises():
    assert sorted(check.REGISTRY, key=exercise_key) == list(EXERCISES)


def test_checks_answer_to_the_learners_names_where_those_are_unambiguous():
    assert check.Head is check.head and check.GPTLanguageModel is check.gpt
    assert check.apply_rope is check.rope and check.lr_at is check.lr_schedule
    assert check.accuracy is check.addition_accuracy
    # encode/decode are the learner's names in 1.1 and in 14.4/14.5: no alias says which
    assert not hasattr(check, "encode") and not hasattr(check, "decode")
    for alias, name in chapters.learner_aliases().items():
        assert getattr(check, alias) is getattr(check, name)


def test_check_modules_hold_checks_not_references():
    for path in sorted((ROOT / "lecture_utils" / "checks").glob("ch*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert not [d for d in defs if d.lstrip("_").startswith("reference")], path.name


def test_the_wrong_solution_catalogue_has_one_module_per_chapter_and_names_the_manifests_checks():
    # tests/ is on sys.path, as test_checks.py reads it ("tests.wrong_solutions" failed where another package
    # installed a top-level "tests": the colab session)
    from wrong_solutions import CATALOGUE

    folder = ROOT / "tests" / "wrong_solutions"
    assert sorted(p.stem for p in folder.glob("ch*.py")) == sorted(c.checks for c in CHAPTERS)
    for w in CATALOGUE:
        assert w.check == EXERCISES[w.exercise].check, f"{w.name}: {w.exercise} is checked by check.{w.check}?"


def test_exercise_ids_sort_as_numbers():
    ids = ["10.1", "9.2", "4.10", "4.2", "1.1"]
    assert sorted(ids, key=exercise_key) == ["1.1", "4.2", "4.10", "9.2", "10.1"]


@pytest.mark.parametrize("line, expected", [
    ("# Exercise 4.1: one head of self-attention", ("4.1", "one head of self-attention")),
    ("   #Exercise 12.6 \u2014 warmup and cosine decay", ("12.6", "warmup and cosine decay")),
    ("# Exercise 10.1", ("10.1", None)),
    ("# Exercise 4", None),
    ("# Exercises 4.1: two", None),
    ("# Exercise 4.1x: no", None),
    ("x = 1  # Exercise 4.1: not a header", None),
])
def test_the_one_header_pattern(line, expected):
    assert header_of(line + "\nclass Head: pass") == expected


def test_an_unknown_exercise_is_a_clear_error():
    with pytest.raises(KeyError, match="not in the chapter manifest"):
        chapters.exercise("99.1")
    with pytest.raises(KeyError, match="no chapter 99"):
        chapters.chapter(99)
