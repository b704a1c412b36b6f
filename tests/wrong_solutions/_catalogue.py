"""What every chapter's wrong solutions share: :class:`WrongSolution`, :data:`CATALOGUE`, the :func:`wrong`
decorator that registers an entry, and two small helpers for models that return ``(logits, loss)``."""

from __future__ import annotations

import ast
import linecache
import math
import textwrap
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import torch
from torch import nn
from torch.nn import functional as F

from lecture_utils.chapters import exercise_key


@dataclass(frozen=True)
class WrongSolution:
    exercise: str  # "4.1"
    check: str  # the check's name in lecture_utils.checks
    name: str  # what the mistake is, as an identifier
    build: Callable[[], tuple]  # the learner's objects, in the order of the check's parameters
    expect: str  # a distinctive part of the diagnosis
    needs_corpus: bool = False  # the check itself reads the corpus (exercise 1.1)


CATALOGUE: list[WrongSolution] = []


def wrong(exercise: str, check: str, expect: str, needs_corpus: bool = False):
    """Register the decorated ``build`` function in :data:`CATALOGUE`."""

    def register(build: Callable[[], tuple]) -> Callable[[], tuple]:
        CATALOGUE.append(WrongSolution(exercise, check, build.__name__, build, expect, needs_corpus))
        return build

    return register


def _flat_loss(logits, targets):
    B, T, C = logits.shape
    logits = logits.view(B * T, C)
    return logits, F.cross_entropy(logits, targets.view(B * T))


def _finish(logits, targets):
    return (logits, None) if targets is None else _flat_loss(logits, targets)


SOLUTIONS = Path(__file__).resolve().parents[2] / "solutions"


def notebook_literals(notebook: str) -> dict[str, object]:
    """The top-level variables a solution notebook sets to literal values (``head_size = 16``,
    ``B, T, C = 4, 8, 32``), as a learner's kernel holds them when the exercise is checked."""
    space: dict[str, object] = {}
    nb = nbformat.read(SOLUTIONS / f"{notebook}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # a cell with IPython magics
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                try:
                    ast.literal_eval(node.value)
                except ValueError:
                    continue
                exec(ast.unparse(node), {}, space)
    return space


def in_notebook(notebook: str, source: str, *names: str, **extra) -> tuple:
    """Define ``source`` (a learner's exercise cell) in a namespace holding what the notebook has at that point: the
    usual imports, the notebook's literal globals (:func:`notebook_literals`) and ``extra``; return ``names``."""
    space = {"__name__": "__main__", "torch": torch, "nn": nn, "F": F, "math": math, **notebook_literals(notebook),
             **extra}
    source = textwrap.dedent(source)
    filename = f"<{notebook} exercise cell {zlib.crc32(source.encode()):08x}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)  # as IPython does
    exec(compile(source, filename, "exec"), space)
    return tuple(space[n] for n in names)


def diagnosis(wrong_solution: WrongSolution) -> tuple[str, str]:
    """``(kind, message)`` for one catalogue entry run through its check. ``kind`` is ``"intended"`` (the message
    names the mistake: it contains ``expect``), ``"other"`` (a specific diagnosis naming another mistake),
    ``"generic"`` (a last-resort message: see :func:`lecture_utils.checks._core.is_generic`) or ``"passed"``."""
    import lecture_utils.checks as check
    from lecture_utils.checks import _core

    is_generic = getattr(_core, "is_generic", None) or (  # checks older than fail_generic: their fallbacks say "differ"
        lambda hint: hint.startswith(("your code raised ", "your code took longer than")) or "differ" in hint)
    try:
        getattr(check, wrong_solution.check)(*wrong_solution.build())
    except AssertionError as failure:
        hint = getattr(failure, "hint", str(failure))
        if wrong_solution.expect in str(failure):
            return "intended", hint
        return ("generic" if is_generic(hint) else "other"), hint
    return "passed", ""


def precision_table(catalogue: list[WrongSolution]) -> str:
    """Per exercise: wrong solutions caught with the intended diagnosis / with another specific diagnosis /
    generically / not caught; a Markdown table with a total row."""
    counts: dict[str, dict[str, int]] = {}
    for w in catalogue:
        kind, _ = diagnosis(w)
        counts.setdefault(w.exercise, dict.fromkeys(("intended", "other", "generic", "passed"), 0))[kind] += 1
    rows = ["| exercise | wrong solutions | intended diagnosis | another diagnosis | generic message | passed |",
            "|---|---:|---:|---:|---:|---:|"]
    total = dict.fromkeys(("intended", "other", "generic", "passed"), 0)
    for exercise in sorted(counts, key=exercise_key):
        c = counts[exercise]
        total = {k: total[k] + c[k] for k in total}
        rows.append(f"| {exercise} | {sum(c.values())} | {c['intended']} | {c['other']} | {c['generic']} | "
                    f"{c['passed']} |")
    rows.append(f"| **all** | **{sum(total.values())}** | **{total['intended']}** | **{total['other']}** | "
                f"**{total['generic']}** | **{total['passed']}** |")
    return "\n".join(rows)
