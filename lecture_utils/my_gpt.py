"""The learner's own GPT: the classes written in chapters 04-07, kept as files, built into chapter 08's model.

Nothing here is hidden. Each of chapters 04-07 ends an exercise with a visible cell::

    my_gpt.keep(Head)      # writes my_gpt/Head.py: the source of YOUR class

which copies the source of the class the learner wrote (after its check passed) into a plain Python
file in the folder ``my_gpt/`` beside the notebook, where they can open, read and edit it. Chapter 08
then calls::

    mine = my_gpt.load()   # runs the files of my_gpt/ and prints which pieces are yours

which runs those files, in the order the pieces use each other, in one namespace, and prints a table
saying, for each piece, whether it is the learner's (and from which file) or the reference from
``lecture_utils.model`` (because that exercise was skipped, not passed, or its file is missing). The
learner's ``MultiHeadAttention`` calls whatever ``Head`` that namespace holds, so a learner who skipped
exercise 4.1 still gets their own multi-head attention around the reference head.

Where the files live: ``my_gpt/`` in the current folder (the notebooks' folder in Jupyter). In Google
Colab every notebook has its own runtime, so the files do not carry from chapter to chapter by
themselves: pass ``folder=`` a folder in a mounted Google Drive in every chapter, or upload the files
into ``my_gpt/`` before chapter 08. The grader runs each notebook in its own empty folder, so there
chapter 08 uses the reference pieces (and says so).
"""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from lecture_utils.files import atomic_write_text
from lecture_utils.status import PASSED

FOLDER = "my_gpt"

# the pieces, in the order they use each other: (name, exercise, notebook)
PIECES: tuple[tuple[str, str, str], ...] = (
    ("Head", "4.1", "04_self_attention"),
    ("MultiHeadAttention", "5.1", "05_multi_head"),
    ("FeedForward", "6.1", "06_feed_forward"),
    ("LayerNorm", "7.1", "07_residual_layernorm"),
    ("Block", "7.2", "07_residual_layernorm"),
)
_EXERCISE = {name: (ex, nb) for name, ex, nb in PIECES}

PREAMBLE = """import math

import torch
import torch.nn as nn
from torch.nn import functional as F
"""


class MyGPTError(ValueError):
    """A piece cannot be kept or loaded; the message says why and what to do."""


def class_source(cls: type) -> str:
    """The source text of ``cls``'s class statement, from a file or from a Jupyter cell.

    ``inspect.getsource`` finds classes defined in files; for a class defined in a notebook cell it
    fails on Python < 3.13, so the cell's text is read from ``linecache`` (where IPython registers
    every cell) through the file name recorded in one of the class's methods.

    Raises:
        MyGPTError: no method of ``cls`` records where it was written.
    """
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        pass
    for member in vars(cls).values():
        code = getattr(member, "__code__", None)
        if code is None:
            continue
        lines = linecache.getlines(code.co_filename)
        if not lines:
            continue
        text = "".join(lines)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.name == cls.__name__ and \
                    node.lineno <= code.co_firstlineno <= node.end_lineno:
                start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                return "".join(lines[start - 1:node.end_lineno])
    raise MyGPTError(f"cannot find the source of {cls.__name__}: define it in a notebook cell or a .py file and "
                     f"run that cell again")


def _is_reference(cls: type) -> bool:
    return getattr(cls, "__module__", "").startswith("lecture_utils")




def keep(cls: type, folder: str | os.PathLike = FOLDER) -> None:
    """Write the source of the learner's class ``cls`` to ``folder/<Name>.py`` for chapter 08.

    Only a class whose exercise check passed in this kernel is written (so chapter 08 never builds on
    code known to be wrong). When ``cls`` is the reference (the exercise was skipped), nothing is
    written and it says so.

    Raises:
        MyGPTError: ``cls`` is not one of the pieces, or its check has not passed in this kernel.
    """
    from lecture_utils.checks import RESULTS

    name = getattr(cls, "__name__", repr(cls))
    if name not in _EXERCISE:
        raise MyGPTError(f"{name} is not one of the pieces of your GPT ({', '.join(n for n, _, _ in PIECES)})")
    exercise, notebook = _EXERCISE[name]
    path = Path(folder) / f"{name}.py"
    if _is_reference(cls):
        note = (f" {path} from an earlier run is still there: chapter 08 will use it (delete it to use the "
                f"reference)." if path.exists() else " Chapter 08 will use the reference.")
        print(f"{name} is the reference (exercise {exercise} not done): nothing written.{note}")
        return
    status = RESULTS.get(exercise, {}).get("status")
    if status != PASSED:
        raise MyGPTError(f"exercise {exercise}'s check has {'not run' if status is None else status} in this kernel: "
                         f"run the check cell above until it passes, then this cell")
    header = (f"# Your {name}, exercise {exercise} of {notebook}.ipynb, kept by lecture_utils.my_gpt.keep on "
              f"{time.strftime('%Y-%m-%d %H:%M')}.\n"
              f"# Chapter 08 builds your GPT from the files in this folder. Edit it here, or run the\n"
              f"# exercise and this cell again.\n")
    atomic_write_text(path, f"{header}{PREAMBLE}\n\n{class_source(cls).rstrip()}\n")
    print(f"kept your {name} in {path}")


@dataclass
class Piece:
    name: str
    exercise: str
    yours: bool
    where: str  # the file, or the reference's qualified name


def load(folder: str | os.PathLike = FOLDER, show: bool = True) -> SimpleNamespace:
    """Run the files of ``folder`` (``Head.py``, ``MultiHeadAttention.py``, ...) in one namespace, the
    reference standing in for each missing file, and return the pieces as attributes (plus
    ``.pieces``: a list of :class:`Piece`).

    Raises:
        MyGPTError: a file does not run or does not define its class (the message names the file).
    """
    from lecture_utils import model as reference

    namespace: dict = {"__name__": "my_gpt", "__builtins__": __builtins__}
    exec(PREAMBLE, namespace)
    pieces: list[Piece] = []
    for name, exercise, _ in PIECES:
        path = Path(folder) / f"{name}.py"
        if path.is_file():
            try:
                exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
            except Exception as exc:
                raise MyGPTError(f"{path} does not run ({type(exc).__name__}: {exc}): fix it, or delete it to use "
                                 f"the reference {name}") from None
            if not isinstance(namespace.get(name), type):
                raise MyGPTError(f"{path} does not define a class {name}: fix it, or delete it to use the reference")
            pieces.append(Piece(name, exercise, True, str(path)))
        else:
            namespace[name] = getattr(reference, name)
            pieces.append(Piece(name, exercise, False, f"lecture_utils.model.{name}"))
    if show:
        print(describe(pieces))
    out = SimpleNamespace(**{name: namespace[name] for name, _, _ in PIECES})
    out.pieces = pieces
    return out


def describe(pieces: list[Piece]) -> str:
    """The table :func:`load` prints: which pieces are the learner's and which the reference's."""
    lines = ["Your GPT is built from:"]
    for p in pieces:
        who = "yours    " if p.yours else "reference"
        why = "" if p.yours else f"  (no {p.name}.py: exercise {p.exercise} skipped, or its keep cell not run)"
        lines.append(f"  {p.name:<20} {who}  {p.where}{why}")
    ref_block = next((p for p in pieces if p.name == "Block" and not p.yours), None)
    unused = [p.name for p in pieces if p.yours and p.name in ("MultiHeadAttention", "FeedForward", "LayerNorm")]
    if ref_block and unused:
        lines.append(f"  The reference Block builds its own parts, so your {', '.join(unused)} "
                     f"{'is' if len(unused) == 1 else 'are'} not used: keep your Block (exercise 7.2) to use them.")
    yours = sum(p.yours for p in pieces)
    lines.append(f"{yours} of {len(pieces)} pieces are yours.")
    return "\n".join(lines)


def as_reference(model):
    """The package's ``lecture_utils.model.GPT`` holding the weights of the learner's ``model`` (built
    from a ``GPTConfig`` as in exercise 8.1), so that tools written for the package's GPT (the attention
    explorer) can look inside it. A list of heads and batched heads name their weights differently;
    the reference is built with the form ``model`` uses.

    Raises:
        MyGPTError: the weights do not fit the package's GPT (a different structure).
    """
    from dataclasses import replace

    from lecture_utils.model import GPT

    weights = dict(model.named_parameters())  # the learned numbers; a mask buffer (tril) is not learned
    attention = "heads" if any(".sa.heads." in n for n in weights) else "batched"
    out = GPT(replace(model.config, attention=attention))
    wanted = dict(out.named_parameters())
    try:
        if set(weights) != set(wanted):
            raise RuntimeError(f"missing {sorted(set(wanted) - set(weights))[:3]}, "
                               f"unexpected {sorted(set(weights) - set(wanted))[:3]}")
        out.load_state_dict({**out.state_dict(), **{k: v.detach() for k, v in weights.items()}})
    except RuntimeError as exc:
        raise MyGPTError(f"your model's weights do not fit lecture_utils.model.GPT: {exc}") from None
    return out.to(next(model.parameters()).device)
