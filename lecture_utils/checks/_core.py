"""The exercise protocol shared by every check.

A check is a function decorated with :func:`exercise`. Its body tests the learner's code against
the reference on fresh random inputs and calls :func:`fail` with a diagnosis when something is off.
The decorator turns that into the protocol of ../DESIGN.md:

- pass: one line naming what was verified; the learner's objects are returned;
- fail: :class:`CheckFailed` (an ``AssertionError``) whose message names the likely mistake; in
  Jupyter it shows as that verdict alone, once, with the learner's own lines when their code
  crashed (no frames from this package);
- ``NotImplementedError`` (the untouched stub): it says so, and returns the reference so that
  every later cell still runs;
- the learner's code gets a time limit (``TIME_LIMIT`` seconds, SIGALRM where available).

Every outcome is recorded in-process (for :func:`progress`). A pass or a stub is shown as display
data of the MIME type :data:`MIME` beside its human line, so a notebook carries a machine-readable
record; a failure's record is the error output itself (``ename`` CheckFailed, ``evalue`` the verdict).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import signal
import textwrap
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lecture_utils import chapters
from lecture_utils.chapters import exercise_key
from lecture_utils.status import FAILED, NOT_ATTEMPTED, PASSED

MIME = "application/vnd.lecture-utils.check+json"
TIME_LIMIT = 20.0  # seconds a learner's code may take inside one check


class CheckFailed(AssertionError):
    """A check found a mistake. ``exercise`` is the exercise id, ``hint`` the diagnosis.

    It is an ``AssertionError``, so the cell stops and "run all" halts there, and ``str()`` is the
    whole verdict (what nbval, the grader and plain Python show). In IPython and Jupyter the
    exception renders itself (:meth:`_render_traceback_`, a hook IPython honours) as a teacher's
    remark: the verdict once, and the learner's own lines when their code crashed — never frames
    from inside this package.
    """

    def __init__(self, exercise: str, title: str, hint: str):
        self.exercise, self.title, self.hint = exercise, title, hint
        super().__init__(f"Exercise {exercise} ({title}): {hint}")

    def _render_traceback_(self) -> list[str]:
        """The lines IPython shows in place of a traceback (ANSI colours, as tracebacks use)."""
        red, bold, dim, reset = "\x1b[31m", "\x1b[1m", "\x1b[2m", "\x1b[0m"
        lines = [f"{red}{bold}{_marker(FAILED)}: Exercise {self.exercise} ({self.title}) is not right yet{reset}", ""]
        own = _learner_lines(self.__cause__)
        hint = self.hint
        where = _learner_frame(self.__cause__) if self.__cause__ is not None else ""
        if own and where and hint.endswith(where):  # the lines below say where, in full
            hint = hint[: -len(where)]
        for paragraph in hint.split("\n"):
            lines += ["    " + line for line in textwrap.wrap(paragraph, 96)] or [""]
        if own:
            lines += ["", f"{bold}Where it happened in your code:{reset}"] + own
        lines += ["", f"{dim}Fix the exercise cell above, run it, then run this cell again.{reset}"]
        return lines


class _Mistake(Exception):
    """Raised by :func:`fail` inside a check body; the decorator turns it into CheckFailed."""


def fail(hint: str):
    """Stop the check with a diagnosis for the learner (plain words: what is probably wrong and
    what to do)."""
    raise _Mistake(hint)


GENERIC_HINTS: set[str] = set()  # every hint given through fail_generic in this process


def fail_generic(hint: str):
    """Like :func:`fail`, for a check's last resort: the result is wrong but no known mistake explains it (the
    mutation tool and the catalogue figures count these apart from the diagnoses that name a mistake)."""
    GENERIC_HINTS.add(hint)
    raise _Mistake(hint)


def is_generic(hint: str) -> bool:
    """True for a message that names no mistake: a last-resort mismatch, a crash of the learner's code reported
    as it is, or the time limit."""
    return hint in GENERIC_HINTS or hint.startswith(("your code raised ", "your code took longer than"))


def expect(condition: bool, hint: str) -> None:
    """``fail(hint)`` unless ``condition``."""
    if not condition:
        raise _Mistake(hint)


@dataclass
class Exercise:
    id: str
    title: str
    check: Callable
    names: tuple[str, ...]  # the names the learner's exercise cell defines, in the check's order
    chapter: int
    reference: Callable[[], Any] | None = None  # returns the reference object(s), in the order of ``names``


REGISTRY: dict[str, Exercise] = {}
RESULTS: dict[str, dict] = {}  # exercise id -> last outcome in this process


def exercise(exercise_id: str):
    """Decorator for a check: the check of exercise ``exercise_id`` ("4.1") of the chapter manifest
    (:mod:`lecture_utils.chapters`), which names its title, its check (the decorated function's name), the names
    the learner's cell defines (the function's parameters without defaults, in order) and the reference that
    stands in for an unfinished exercise. A check that disagrees with its row is an error at import."""
    entry = chapters.exercise(exercise_id)
    title, reference = entry.title, entry.reference_objects

    def wrap(body: Callable):
        names = tuple(
            p.name for p in inspect.signature(body).parameters.values()
            if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
        if body.__name__ != entry.check or names != entry.names:
            raise TypeError(f"the check {body.__name__}{names} of exercise {exercise_id} does not match its row in "
                            f"lecture_utils/chapters.py: {entry.check}{entry.names}")

        @functools.wraps(body)
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                with time_limit(TIME_LIMIT):
                    out = body(*args, **kwargs)
            except NotImplementedError:
                _record(exercise_id, title, NOT_ATTEMPTED,
                        "the reference implementation stands in, so the rest of the notebook still runs")
                return reference()
            except _Mistake as m:
                err = CheckFailed(exercise_id, title, str(m))
                _record(exercise_id, title, FAILED, err.hint)
                raise err from None
            except CheckTimeout:
                hint = (f"your code took longer than {TIME_LIMIT:.0f} s on small inputs; look for a Python "
                        f"loop that could be a tensor operation, or an infinite loop")
                _record(exercise_id, title, FAILED, hint)
                raise CheckFailed(exercise_id, title, hint) from None
            except CheckFailed:
                raise
            except Exception as exc:  # the learner's code crashed: say where
                where = _learner_frame(exc)
                hint = f"your code raised {type(exc).__name__}: {exc}{where}"
                _record(exercise_id, title, FAILED, hint)
                raise CheckFailed(exercise_id, title, hint) from exc
            verified = out.pop("verified") if isinstance(out, dict) else None
            returned = out.pop("returns") if isinstance(out, dict) else out
            msg = verified or "matches the reference"
            _record(exercise_id, title, PASSED, f"{msg} ({time.perf_counter() - start:.2f} s)")
            return returned

        run.exercise_id = exercise_id
        REGISTRY[exercise_id] = Exercise(exercise_id, title, run, names, entry.chapter, reference)
        return run

    return wrap


def passed(verified: str, returns: Any) -> dict:
    """What a check body returns on success: a line saying what was verified, and the learner's
    objects to hand back."""
    return {"verified": verified, "returns": returns}


def _is_learner_frame(filename: str) -> bool:
    return "lecture_utils" not in filename and "torch" not in filename and "site-packages" not in filename


def _learner_lines(exc: BaseException | None) -> list[str]:
    """The frames of ``exc``'s traceback that are the learner's code (notebook cells, their own
    files), as '    line 12, in forward: wei = ...', innermost last; [] when there is none."""
    if exc is None or exc.__traceback__ is None:
        return []
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_learner_frame(f.filename)]
    out = [f"    line {f.lineno}, in {f.name}: {f.line}" if f.line else f"    line {f.lineno}, in {f.name}"
           for f in frames[-4:]]
    return out


def _learner_frame(exc: BaseException) -> str:
    """' (in forward, line 12)' for the innermost frame outside this package, if any."""
    tb = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(tb):
        if _is_learner_frame(frame.filename):
            return f" (in {frame.name}, line {frame.lineno}: {frame.line})" if frame.line else f" (in {frame.name})"
    return ""


# ---------------------------------------------------------------------------------------------
# recording and display
# ---------------------------------------------------------------------------------------------

_SYMBOL = {PASSED: "\u2705", FAILED: "\u274c", NOT_ATTEMPTED: "\u23f3"}


def _marker(status: str) -> str:
    """The status's symbol with its word beside it ("\u2705 passed"): without an emoji font the symbol shows as an
    empty box, and the word still says it."""
    return f"{_SYMBOL[status]} {status}"


_QUIET = False  # set by quietly(): checks run by another part of the course leave no record


@contextlib.contextmanager
def quietly():
    """Run checks without recording or showing their outcome (``my_gpt.load`` re-checking the learner's kept
    pieces in chapter 08: those are exercises of other chapters, not of the notebook that runs them). A failure
    still raises :class:`CheckFailed`."""
    global _QUIET
    before, _QUIET = _QUIET, True
    try:
        yield
    finally:
        _QUIET = before


def _record(exercise_id: str, title: str, status: str, message: str) -> None:
    if _QUIET:
        return
    record = {"exercise": exercise_id, "title": title, "status": status, "message": message}
    RESULTS[exercise_id] = record
    if status == FAILED:  # the CheckFailed raised next shows the verdict, once (see _render_traceback_)
        return
    line = f"{_marker(status)}: Exercise {exercise_id} ({title}) - {message}"
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({"text/plain": line, MIME: record}, raw=True)
            return
    except ImportError:  # pragma: no cover
        pass
    print(line)


def saved_results(folder: str | Path = ".") -> dict[str, dict]:
    """The outcomes the notebooks in ``folder`` showed when they were last saved: each check's display data
    (:data:`MIME`) and each failed check's error output, the last one per exercise in file order. Nothing is
    re-checked here (``python -m lecture_utils grade`` does that)."""
    found: dict[str, dict] = {}
    for path in sorted(Path(folder).glob("*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError, AttributeError):
            continue
        outputs = [o for c in cells if isinstance(c, dict) for o in c.get("outputs", []) if isinstance(o, dict)]
        for output in outputs:
            data = output.get("data")
            record = data.get(MIME) if isinstance(data, dict) else None
            if isinstance(record, dict) and record.get("exercise") in REGISTRY:
                found[record["exercise"]] = {**record, "notebook": path.name}
            elif output.get("ename") == "CheckFailed":  # a failure's record is its error output
                exercise_id = str(output.get("evalue", "")).removeprefix("Exercise ").split(" ")[0]
                if exercise_id in REGISTRY:
                    found[exercise_id] = {"exercise": exercise_id, "title": REGISTRY[exercise_id].title,
                                          "status": FAILED, "message": output.get("evalue", ""), "notebook": path.name}
    return found


def progress(notebook: str | None = None, folder: str | Path = ".") -> None:
    """Print a table of every exercise checked in this kernel (optionally only one chapter, e.g.
    "04"); the records themselves are in :data:`RESULTS`. A kernel that has checked nothing yet (a fresh
    notebook) reads the table from the outputs saved in the notebooks of ``folder`` instead, and says so."""
    chapter = None if notebook is None else int(str(notebook).split("_")[0])
    source, results = "in this kernel", RESULTS
    if not RESULTS:
        saved = saved_results(folder)
        if saved:
            source, results = f"in the notebooks saved in {Path(folder).resolve()} (their outputs as last saved)", saved
    rows = sorted(results.values(), key=lambda r: exercise_key(r["exercise"]))
    if chapter is not None:
        rows = [r for r in rows if exercise_key(r["exercise"])[0] == chapter]
    done = {r["exercise"] for r in rows}
    pending = [e for e in chapters.EXERCISES if e not in done and chapter in (None, chapters.EXERCISES[e].chapter)]
    lines = [f"{_marker(r['status']):<17} {r['exercise']:>5}  {r['title']}" for r in rows]
    lines += [f"{'   not checked yet':<17} {e:>5}  {chapters.EXERCISES[e].title}" for e in pending if chapter is not None]
    if not lines:
        print("No exercise has been checked in this kernel yet, and no notebook in this folder shows a check's "
              "result. Run a chapter's notebook, or grade the whole course from a terminal: "
              "python -m lecture_utils grade notebooks/")
        return
    print(f"Exercises, as checked {source}:")
    print("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# time limit and helpers for check bodies
# ---------------------------------------------------------------------------------------------


class CheckTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`CheckTimeout` in the main thread after ``seconds`` (Unix: SIGALRM). Elsewhere
    (Windows, other threads) it does nothing."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise CheckTimeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def rng(seed: int) -> torch.Generator:
    """A local CPU generator: checks never touch the global random state."""
    return torch.Generator().manual_seed(seed)


def fresh_seed() -> int:
    """A seed that changes from run to run, so a hard-coded answer cannot pass."""
    return int(time.time_ns() % 2**31)
