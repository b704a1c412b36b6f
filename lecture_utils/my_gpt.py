"""The learner's own GPT: the classes written in chapters 04-07, kept as files, built into chapter 08's model.

Nothing here is hidden. Each of chapters 04-07 ends an exercise with a visible cell::

    my_gpt.keep(Head)      # writes my_gpt/Head.py: the source of YOUR class

which copies the source of the class the learner wrote (after its check passed) into a plain Python
file in the folder ``my_gpt/`` beside the notebook, where they can open, read and edit it, together with what the
class reads from the notebook beside it (helper functions and classes, constants); a notebook variable that cannot
be written out (a tensor) is named, with what to do. Chapter 08
then calls::

    mine = my_gpt.load()   # runs the files of my_gpt/ and prints which pieces are yours

which runs those files, in the order the pieces use each other, in one namespace, re-checks each against its
exercise (the files invite editing: a piece that no longer passes is named, with the check's diagnosis, and the
reference stands in for it), and prints a table
saying, for each piece, whether it is the learner's (and from which file) or the reference from
``lecture_utils.model`` (because that exercise was skipped, not passed, or its file is missing). The
learner's ``MultiHeadAttention`` calls whatever ``Head`` that namespace holds, so a learner who skipped
exercise 4.1 still gets their own multi-head attention around the reference head.

Where the files live: ``my_gpt/`` in the current folder (the notebooks' folder in Jupyter). The grader
runs each notebook in its own empty folder, so there chapter 08 uses the reference pieces (and says so).

In Google Colab every notebook has its own runtime, so ``my_gpt/`` does not carry from chapter to
chapter. What does carry is the learner's notebooks, saved in Google Drive (File > Save a copy in
Drive puts them in ``MyDrive/Colab Notebooks``). So in Colab, when a piece's file is missing,
:func:`load` mounts Drive (Colab asks the learner to allow it: the one step, taken in chapter 08
only) and :func:`rebuild` writes the missing files from the saved notebooks: the class in the cell
that starts with ``# Exercise N.M``, written only when that exercise's check passes on it now,
as :func:`keep` writes only a checked class. A file already in ``my_gpt/`` (uploaded, or edited)
is never replaced. ``load(notebooks=...)`` does the same from any folder, in or out of Colab.
(Rebuilding from the notebooks, rather than a Drive folder that every chapter writes to, asks for
Drive once instead of in each of chapters 04-08, and uses what a Colab learner saves anyway.)
"""

from __future__ import annotations

import ast
import builtins
import dis
import inspect
import json
import linecache
import os
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from lecture_utils import chapters
from lecture_utils.files import atomic_write_text
from lecture_utils.recordings import RECORDED, REFERENCE_RUN, recording, reference_run  # noqa: F401
from lecture_utils.recordings import same_recipe as _same_recipe  # noqa: F401
from lecture_utils.status import PASSED

FOLDER = "my_gpt"
DRIVE = "/content/drive"  # where Colab mounts Google Drive (tests point it at a temporary folder)
SAVED = "MyDrive/Colab Notebooks"  # under DRIVE: where Colab saves notebooks ("File > Save a copy in Drive")

# the pieces, in the order they use each other: (name, exercise, notebook); each name is the one its exercise's
# cell defines and the notebook is its chapter's, both as the chapter manifest says
PIECES: tuple[tuple[str, str, str], ...] = tuple(
    (chapters.exercise(ex).names[0], ex, chapters.chapter(chapters.exercise(ex).chapter).notebook)
    for ex in ("4.1", "5.1", "6.1", "7.1", "7.2")
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
        source = _class_statement("".join(linecache.getlines(code.co_filename)), cls.__name__, code.co_firstlineno)
        if source:
            return source
    raise MyGPTError(f"cannot find the source of {cls.__name__}: define it in a notebook cell or a .py file and "
                     f"run that cell again")


def _class_statement(text: str, name: str, line: int | None = None) -> str | None:
    """The statement ``class <name>`` in the Python source ``text``, decorators included: the one holding
    line ``line`` when given, else the first; None when there is none.

    Raises:
        SyntaxError: ``text`` is not Python.
    """
    lines = text.splitlines(keepends=True)
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef) and node.name == name and (
                line is None or node.lineno <= line <= node.end_lineno):
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            return "".join(lines[start - 1:node.end_lineno])
    return None


_PROVIDED = frozenset({"math", "torch", "nn", "F", *(name for name, _, _ in PIECES)})  # what load's namespace has


def _global_reads(obj) -> list[str]:
    """The global names the code of ``obj`` (a function, or a class's methods) reads, in order, without repeats."""
    codes = [getattr(inspect.unwrap(v), "__code__", None) for v in
             ([obj] if inspect.isfunction(obj) else [getattr(m, "__func__", m) for m in vars(obj).values()])]
    names: list[str] = []
    stack = [c for c in codes if c is not None]
    while stack:
        code = stack.pop(0)
        for ins in dis.get_instructions(code):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and ins.argval not in names:
                names.append(ins.argval)
        stack += [c for c in code.co_consts if inspect.iscode(c)]
    return names


def with_what_it_needs(cls: type) -> str:
    """The source of ``cls`` preceded by what it reads from the notebook beside it: the functions and classes it
    calls (with what they read in turn) and the constants (numbers, strings, booleans, tuples of them) it uses, so
    that the kept file runs on its own in chapter 08.

    Raises:
        MyGPTError: it reads a notebook variable that cannot be written out (a tensor, a model, ...): the message
            names it and says what to do.
    """
    space = next((m.__globals__ for m in (inspect.unwrap(getattr(v, "__func__", v)) for v in vars(cls).values())
                  if inspect.isfunction(m)), {})
    parts: list[str] = []
    seen: set[str] = {cls.__name__}

    def take(obj) -> None:
        for name in _global_reads(obj):
            if name in seen or name in _PROVIDED or name not in space or hasattr(builtins, name):
                continue
            seen.add(name)
            value = space[name]
            if inspect.ismodule(value):
                parts.append(f"import {value.__name__} as {name}" if value.__name__ != name else f"import {name}")
            elif (inspect.isfunction(value) or inspect.isclass(value)) and not _is_reference(value) and not (
                    getattr(value, "__module__", "") or "").startswith(("torch", "numpy")):
                take(value)
                parts.append(_source_of(value, cls.__name__))
            elif inspect.isfunction(value) or inspect.isclass(value):
                parts.append(f"from {value.__module__} import {value.__name__}" +
                             ("" if value.__name__ == name else f" as {name}"))
            elif _is_literal(value):
                parts.append(f"{name} = {value!r}")
            else:
                raise MyGPTError(f"your {cls.__name__} reads {name} (a {type(value).__name__}) from the notebook, which "
                                 f"cannot be written into my_gpt/{cls.__name__}.py: compute it inside the class (in "
                                 f"__init__, or register a tensor as a buffer), then run the exercise, its check and "
                                 f"this cell again")

    take(cls)
    return "\n\n".join([*parts, class_source(cls)]) if parts else class_source(cls)


def _is_literal(value) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_is_literal(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _source_of(obj, needed_by: str) -> str:
    """The source of a function or class the learner defined in the notebook (a cell or a file)."""
    if inspect.isclass(obj):
        return class_source(obj)
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        raise MyGPTError(f"your {needed_by} calls {obj.__name__}, whose source cannot be found: define it in a "
                         f"notebook cell and run that cell again") from None


def _is_reference(cls: type) -> bool:
    return getattr(cls, "__module__", "").startswith("lecture_utils")


def in_colab() -> bool:
    """Whether this kernel runs in Google Colab (which imports ``google.colab`` into every kernel; the
    notebooks' set-up cell tells Colab the same way)."""
    return "google.colab" in sys.modules


def _write(path: Path, name: str, how: str, redo: str, source: str) -> None:
    """Write the learner's class ``source`` to ``path`` (atomically) under a header saying where it came from."""
    exercise, notebook = _EXERCISE[name]
    header = (f"# Your {name}, exercise {exercise} of {notebook}.ipynb, {how} on {time.strftime('%Y-%m-%d %H:%M')}.\n"
              f"# Chapter 08 builds your GPT from the files in this folder. Edit it here, or {redo}.\n")
    atomic_write_text(path, f"{header}{PREAMBLE}\n\n{source.rstrip()}\n")


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
    exercise = _EXERCISE[name][0]
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
    _write(path, name, "kept by lecture_utils.my_gpt.keep", "run the exercise and its keep cell again",
           with_what_it_needs(cls))
    print(f"kept your {name} in {path}")
    if in_colab():
        print(f"In Colab this file lasts only as long as this runtime: chapter 08 rebuilds your {name} from this "
              f"notebook, so keep the notebook in Google Drive (File > Save a copy in Drive, unless you opened it "
              f"from Drive).")


@dataclass
class Piece:
    name: str
    exercise: str
    yours: bool
    where: str  # the file, or the reference's qualified name
    why: str = ""  # why the reference stands in for a file that is there


def _recheck(name: str, cls: type) -> str | None:
    """Run the exercise's check on a kept class, quietly (it is another chapter's exercise): None when it passes,
    else the check's diagnosis. The files invite editing, so chapter 08 trusts none of them unchecked."""
    from lecture_utils.checks import REGISTRY
    from lecture_utils.checks._core import quietly

    exercise = _EXERCISE[name][0]
    try:
        with quietly():
            REGISTRY[exercise].check(cls)
    except AssertionError as exc:
        return getattr(exc, "hint", str(exc))
    return None


def load(folder: str | os.PathLike = FOLDER, show: bool = True,
         notebooks: str | os.PathLike | None = None) -> SimpleNamespace:
    """Run the files of ``folder`` (``Head.py``, ``MultiHeadAttention.py``, ...) in one namespace, the
    reference standing in for each missing file, and return the pieces as attributes (plus
    ``.pieces``: a list of :class:`Piece`).

    Missing files are first rebuilt (:func:`rebuild`) from the learner's saved notebooks in
    ``notebooks`` or, in Google Colab when ``notebooks`` is not given, in ``MyDrive/Colab Notebooks``
    after mounting Google Drive (Colab asks the learner to allow it; when they do not, it says so and
    the reference stands in).

    Raises:
        MyGPTError: a file does not run or does not define its class (the message names the file).
    """
    from lecture_utils import model as reference

    missing = [name for name, _, _ in PIECES if not (Path(folder) / f"{name}.py").is_file()]
    if missing and notebooks is None and in_colab():
        notebooks = _colab_notebooks(folder)
    if missing and notebooks is not None:
        rebuild(folder, notebooks, missing)
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
            problem = _recheck(name, namespace[name])
            if problem is not None:  # edited since it was kept, or kept by hand: the reference stands in
                namespace[name] = getattr(reference, name)
                pieces.append(Piece(name, exercise, False, f"lecture_utils.model.{name}",
                                    f"your {path} fails exercise {exercise}'s check: {problem} - fix the file (or "
                                    f"delete it) and run this cell again"))
                continue
            pieces.append(Piece(name, exercise, True, str(path)))
        else:
            namespace[name] = getattr(reference, name)
            pieces.append(Piece(name, exercise, False, f"lecture_utils.model.{name}"))
    if show:
        print(describe(pieces))
    out = SimpleNamespace(**{name: namespace[name] for name, _, _ in PIECES})
    out.pieces = pieces
    return out


def _colab_notebooks(folder: str | os.PathLike) -> Path | None:
    """Colab's folder of saved notebooks in Google Drive, mounting Drive at :data:`DRIVE` first where it
    is not mounted (Colab shows its dialog asking the learner to allow it); None, saying why and what to
    do, when Drive cannot be mounted."""
    if not (Path(DRIVE) / "MyDrive").is_dir():
        print("In Colab your pieces from chapters 04-07 are in those notebooks, saved in Google Drive: allow this "
              "notebook to access Google Drive in the dialog, and your GPT is built from them.")
        try:
            from google.colab import drive

            drive.mount(str(DRIVE))
        except Exception as exc:  # access declined, the dialog timed out, no Drive
            print(f"Google Drive is not mounted ({type(exc).__name__}: {exc}), so the reference stands in for each "
                  f"missing piece: run this cell again and allow access, or upload your files into {folder}/ "
                  f"(Files pane, left).")
            return None
    return Path(DRIVE) / SAVED


def rebuild(folder: str | os.PathLike, notebooks: str | os.PathLike,
            names: list[str] | None = None) -> list[str]:
    """Write ``folder/<Name>.py`` for each piece in ``names`` (default: every piece) that has no file there
    yet, from the learner's saved notebook of its chapter in ``notebooks`` (or a folder inside it): the
    newest whose file name holds the chapter's (``Copy of 04_self_attention.ipynb``, as Colab names a saved
    copy). The class is taken from the code cell that starts with ``# Exercise N.M`` and written only when
    that exercise's check passes on it now, run beside the reference pieces as in its own chapter (so,
    as with :func:`keep`, chapter 08 never builds on code known to be wrong). A file already there is
    never replaced. Prints one line per piece (the checks print theirs); returns the names written.
    """
    folder, notebooks = Path(folder), Path(notebooks)
    names = [name for name, _, _ in PIECES if names is None or name in names]
    todo = [name for name in names if not (folder / f"{name}.py").is_file()]
    if not todo:
        return []
    if not notebooks.is_dir():
        print(f"No folder {notebooks}, so no saved notebook to rebuild {', '.join(todo)} from: save each chapter's "
              f"notebook there (in Colab: File > Save a copy in Drive), or upload your files into {folder}/.")
        return []
    print(f"Rebuilding {', '.join(todo)} from your notebooks saved in {notebooks}:")
    written = []
    for name in todo:
        done, line = _rebuild_one(name, folder, notebooks)
        print(f"  {line}")
        written += [name] if done else []
    return written


def _rebuild_one(name: str, folder: Path, notebooks: Path) -> tuple[bool, str]:
    """Rebuild one piece (see :func:`rebuild`): (whether its file was written, a line saying what happened)."""
    from lecture_utils import model as reference
    from lecture_utils.checks import REGISTRY

    exercise, chapter = _EXERCISE[name]
    saved = sorted((p for p in notebooks.rglob(f"*{chapter}*.ipynb") if ".ipynb_checkpoints" not in p.parts),
                   key=lambda p: p.stat().st_mtime)
    if not saved:
        return False, (f"{name}: no notebook named like {chapter}.ipynb here, so the reference stands in "
                       f"(save chapter {chapter[:2]}'s notebook here after exercise {exercise})")
    path = saved[-1]
    again = f"fix exercise {exercise} in {path.name}, save it, and run this cell again"
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        cell = next(("".join(c["source"]) for c in cells if c.get("cell_type") == "code" and
                     (chapters.header_of("".join(c["source"])) or ("",))[0] == exercise), None)
    except (ValueError, KeyError, TypeError) as exc:
        return False, f"{name}: {path} is not a readable notebook ({type(exc).__name__}: {exc})"
    try:
        source = _class_statement(cell, name) if cell is not None else None
    except SyntaxError as exc:
        return False, f"{name}: exercise {exercise}'s cell in {path.name} is not valid Python ({exc}): {again}"
    if source is None:
        return False, (f"{name}: {path.name} has no code cell starting with '# Exercise {exercise}' that defines "
                       f"class {name}, so the reference stands in")
    where = f"{path} (exercise {exercise})"
    linecache.cache[where] = (len(source), None, source.splitlines(keepends=True), where)  # for the check's messages
    namespace: dict = {"__name__": "my_gpt", "__builtins__": __builtins__}
    exec(PREAMBLE, namespace)
    namespace.update({n: getattr(reference, n) for n, _, _ in PIECES})  # what the chapters import
    try:
        exec(compile(source, where, "exec"), namespace)
        checked = REGISTRY[exercise].check(namespace[name])
    except Exception as exc:  # the class statement does not run, or the check fails (its message says why)
        why = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
        return False, f"{name}: yours in {path.name} is not right yet ({why}), so the reference stands in: {again}"
    if _is_reference(checked):
        return False, f"{name}: exercise {exercise} is not done in {path.name}, so the reference stands in"
    target = folder / f"{name}.py"
    _write(target, name, f"rebuilt by lecture_utils.my_gpt.load from {path}",
           "delete it and run chapter 08's load cell again", source)
    return True, f"{name}: yours, from {path.name}, passes its check: written to {target}"


def describe(pieces: list[Piece]) -> str:
    """The table :func:`load` prints: which pieces are the learner's and which the reference's."""
    lines = ["Your GPT is built from:"]
    for p in pieces:
        who = "yours    " if p.yours else "reference"
        why = "" if p.yours else f"  ({p.why or f'no {p.name}.py: exercise {p.exercise} skipped, or its keep cell not run'})"
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

    from lecture_utils.modern import build_gpt

    weights = dict(model.named_parameters())  # the learned numbers; a mask buffer (tril) is not learned
    attention = "heads" if any(".sa.heads." in n for n in weights) else "batched"
    out = build_gpt(replace(model.config, attention=attention))
    wanted = dict(out.named_parameters())
    try:
        if set(weights) != set(wanted):
            raise RuntimeError(f"missing {sorted(set(wanted) - set(weights))[:3]}, "
                               f"unexpected {sorted(set(weights) - set(wanted))[:3]}")
        out.load_state_dict({**out.state_dict(), **{k: v.detach() for k, v in weights.items()}})
    except RuntimeError as exc:
        raise MyGPTError(f"your model's weights do not fit lecture_utils.model.GPT: {exc}") from None
    return out.to(next(model.parameters()).device)

