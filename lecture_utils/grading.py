"""The grader: every exercise's status for a folder of course notebooks.

    python -m lecture_utils grade notebooks/ [--json FILE] [--timeout SECONDS] [--chapter N]

Each notebook runs headless in its own fresh kernel (nbclient), from an in-memory copy, in a
temporary working folder: the learner's file is never written. Execution continues past errors
and past cells that exceed the per-cell time limit (they are interrupted). The grader does not
trust what the notebook displays: right after each exercise cell it keeps the objects that
exercise defines, and at the end it re-imports ``lecture_utils.checks`` afresh in the kernel and
re-runs every exercise's check on those objects. A learner who deletes or edits a check cell, or
redefines ``check``, changes nothing; an exercise the grader cannot re-check is "not verified",
never "passed".

Statuses: ``passed``, ``failed`` (with the check's message), ``not attempted`` (the stub still
raises ``NotImplementedError``), ``not verified`` (the exercise cell is missing, the kernel died,
or the objects were never defined).

It runs the learner's code with the learner's rights: it is not a sandbox.

JSON schema (``--json``): ``{"schema": "lecture_utils.grade/1", "course_version": str,
"notebooks": [{"path": str, "chapter": int|null, "status": "graded"|"error", "problems": [str],
"seconds": float, "exercises": [{"id": str, "title": str, "status": str, "message": str}]}],
"totals": {status: count}, "ok": bool}``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

PASSED, FAILED, NOT_ATTEMPTED, NOT_VERIFIED = "passed", "failed", "not attempted", "not verified"
STATUSES = (PASSED, FAILED, NOT_ATTEMPTED, NOT_VERIFIED)
SCHEMA = "lecture_utils.grade/1"
_HEADER = re.compile(r"^\s*#\s*Exercise\s+(\d+\.\d+)\b")
_MARK = "__LECTURE_UTILS_GRADE__"
_SNAP = "__lecture_utils_snapshots__"


@dataclass
class ExerciseResult:
    id: str
    title: str
    status: str
    message: str = ""


@dataclass
class NotebookResult:
    path: str
    chapter: int | None
    status: str = "graded"
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    exercises: list[ExerciseResult] = field(default_factory=list)


def find_notebooks(paths: list[str | Path]) -> list[Path]:
    """Notebook files named directly, and the ``*.ipynb`` files inside named folders (sorted)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.glob("*.ipynb") if not q.name.startswith("."))
        elif p.exists():
            found.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return found


def chapter_of(path: Path) -> int | None:
    m = re.match(r"^(\d+)_", path.name)
    return int(m.group(1)) if m else None


def _snapshot_source(ex_id: str, names: tuple[str, ...]) -> str:
    return (f"{_SNAP} = globals().setdefault({_SNAP!r}, {{}})\n"
            f"{_SNAP}[{ex_id!r}] = {{n: globals()[n] for n in {names!r} if n in globals()}}")


def _recheck_source(ids: list[str]) -> str:
    """Code run last in the kernel: fresh checks, each exercise re-checked on its snapshot."""
    return f'''
def {_MARK.lower()}():
    import json, sys
    for name in [m for m in list(sys.modules) if m.startswith("lecture_utils.checks")]:
        del sys.modules[name]
    import lecture_utils.checks as fresh
    from lecture_utils.checks import _core
    snaps = globals().get({_SNAP!r}, {{}})
    out = {{}}
    for ex_id in {ids!r}:
        ex = fresh.REGISTRY[ex_id]
        snap = snaps.get(ex_id)
        if snap is None:
            out[ex_id] = ("{NOT_VERIFIED}", "the exercise cell did not run to the end")
            continue
        missing = [n for n in ex.names if n not in snap]
        if missing:
            out[ex_id] = ("{NOT_VERIFIED}", "the exercise cell does not define " + ", ".join(missing))
            continue
        _core.RESULTS.pop(ex_id, None)
        try:
            ex.check(*[snap[n] for n in ex.names])
        except _core.CheckFailed as exc:
            out[ex_id] = ("{FAILED}", exc.hint)
            continue
        except BaseException as exc:
            out[ex_id] = ("{FAILED}", f"{{type(exc).__name__}}: {{exc}}")
            continue
        rec = _core.RESULTS.get(ex_id)
        out[ex_id] = (rec["status"], rec["message"]) if rec else ("{NOT_VERIFIED}", "the check recorded nothing")
    print({_MARK!r} + json.dumps(out))
{_MARK.lower()}()
'''


def _exercise_cells(nb) -> list[tuple[int, str]]:
    """(cell index, exercise id) for every cell whose first line is '# Exercise N.M: ...'."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            first = cell.source.lstrip().splitlines()[0] if cell.source.strip() else ""
            m = _HEADER.match(first)
            if m:
                found.append((i, m.group(1)))
    return found


def grade_notebook(path: Path, timeout: float = 600, registry=None, smoke: bool = True) -> NotebookResult:
    """Run one notebook in a fresh kernel and re-check its exercises. Never writes ``path``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if registry is None:
        from lecture_utils.checks import REGISTRY as registry
    result = NotebookResult(str(path), chapter_of(path))
    start = time.perf_counter()
    try:
        raw = path.read_text(encoding="utf-8")
        data = json.loads(raw)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        result.status = "error"
        result.problems.append(f"not a valid notebook file: {exc}")
        return result
    if not isinstance(data, dict) or data.get("nbformat") != 4:
        result.status = "error"
        result.problems.append("not an nbformat 4 notebook")
        return result
    try:
        nb = nbformat.reads(raw, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:
        result.status = "error"
        result.problems.append(f"not a valid notebook: {exc}")
        return result

    present = _exercise_cells(nb)
    chapter = result.chapter
    if chapter is None and present:
        chapter = result.chapter = int(present[0][1].split(".")[0])
    expected = sorted((e for e in registry if registry[e].chapter == chapter), key=_id_key) if chapter else []
    unknown = [ex for _, ex in present if ex not in registry]
    if unknown:
        result.problems.append(f"exercise ids unknown to this course: {', '.join(unknown)}")
    if not expected:
        result.status = "error"
        result.problems.append("no exercises of this course found (a notebook from another course?)")
        return result

    # in-memory copy with a snapshot cell after each exercise and the re-check at the end
    work = copy.deepcopy(nb)
    inserted = 0
    for index, ex_id in present:
        if ex_id not in registry:
            continue
        cell = nbformat.v4.new_code_cell(_snapshot_source(ex_id, registry[ex_id].names))
        work.cells.insert(index + 1 + inserted, cell)
        inserted += 1
    work.cells.append(nbformat.v4.new_code_cell(_recheck_source(expected)))
    for cell in work.cells:
        cell.pop("id", None)
    work.nbformat_minor = max(work.nbformat_minor, 4)

    kernel = (nb.metadata.get("kernelspec") or {}).get("name") or "python3"
    rechecked: dict[str, tuple[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp, _environ(LECTURE_UTILS_SMOKE="1" if smoke else "0",
                                                                       MPLBACKEND="Agg"):
        client = NotebookClient(work, timeout=timeout, kernel_name=kernel, allow_errors=True,
                                interrupt_on_timeout=True, resources={"metadata": {"path": tmp}},
                                record_timing=False)
        timed_out: list[int] = []

        def on_cell_executed(cell, cell_index, execute_reply):
            # note interrupted cells, then keep memory bounded: drop every output but the re-check's
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error" and out.get("ename") in ("CellTimeoutError", "KeyboardInterrupt"):
                    timed_out.append(cell_index)
            if _MARK not in cell.source:
                cell.outputs = []

        client.on_cell_executed = on_cell_executed
        try:
            import subprocess

            client.execute(stderr=subprocess.DEVNULL)  # the kernel's own log lines would bury the report
        except DeadKernelError:
            result.problems.append("the kernel died (os._exit, a crash, or out of memory); later exercises are not verified")
        except CellTimeoutError:
            result.problems.append(f"a cell ran longer than {timeout:.0f} s and could not be interrupted")
        except Exception as exc:
            name = type(exc).__name__
            if "NoSuchKernel" in name:
                result.status = "error"
                result.problems.append(f"kernel {kernel!r} is not installed; install it or change the notebook's kernel to python3")
                result.seconds = time.perf_counter() - start
                return result
            result.problems.append(f"execution stopped: {name}: {exc}")
        for cell in work.cells:
            if cell.cell_type != "code":
                continue
            for out in cell.get("outputs", []):
                text = out.get("text", "") if out.get("output_type") == "stream" else ""
                for line in text.splitlines():
                    if line.startswith(_MARK):
                        rechecked = {k: tuple(v) for k, v in json.loads(line[len(_MARK):]).items()}
        if timed_out:
            result.problems.append(f"{len(timed_out)} cell(s) were interrupted after {timeout:.0f} s")

    present_ids = {ex for _, ex in present}
    for ex_id in expected:
        title = registry[ex_id].title
        if ex_id not in present_ids:
            result.exercises.append(ExerciseResult(ex_id, title, NOT_VERIFIED, "the exercise cell is missing from the notebook"))
        elif ex_id in rechecked:
            status, message = rechecked[ex_id]
            result.exercises.append(ExerciseResult(ex_id, title, status, message))
        else:
            result.exercises.append(ExerciseResult(ex_id, title, NOT_VERIFIED, "the grader could not re-run the check"))
    result.seconds = time.perf_counter() - start
    return result


@contextlib.contextmanager
def _environ(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _id_key(ex_id: str):
    return [int(p) for p in ex_id.split(".")]


def grade(paths, timeout: float = 600, chapter: int | None = None, progress: bool = True,
          smoke: bool = True) -> list[NotebookResult]:
    """Grade every notebook under ``paths`` (optionally only chapter ``chapter``)."""
    notebooks = find_notebooks(paths)
    if chapter is not None:
        notebooks = [p for p in notebooks if chapter_of(p) == chapter]
    results = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(notebooks), desc="grading", unit="notebook", file=sys.stderr)
    for path in notebooks:
        if bar is not None:
            bar.set_postfix_str(path.name)
        results.append(grade_notebook(path, timeout=timeout, smoke=smoke))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return results


def totals(results: list[NotebookResult]) -> dict[str, int]:
    counts = {s: 0 for s in STATUSES}
    for r in results:
        for e in r.exercises:
            counts[e.status] = counts.get(e.status, 0) + 1
    return counts


def all_passed(results: list[NotebookResult]) -> bool:
    """True when every notebook was graded and every exercise found passed."""
    exercises = [e for r in results for e in r.exercises]
    return bool(exercises) and all(r.status == "graded" for r in results) and all(e.status == PASSED for e in exercises)


def report(results: list[NotebookResult]) -> str:
    """A table per chapter and a total line."""
    from lecture_utils import __version__

    lines = [f"Build GPT grader (course version {__version__})", ""]
    for r in results:
        head = f"{Path(r.path).name}" + (f"  (chapter {r.chapter:02d})" if r.chapter else "") + f"  {r.seconds:.0f} s"
        lines.append(head)
        for p in r.problems:
            lines.append(f"  ! {p}")
        for e in r.exercises:
            lines.append(f"  {e.id:>5}  {e.title:<36} {e.status}")
            if e.status in (FAILED, NOT_VERIFIED) and e.message:
                lines.append(f"         -> {e.message}")
        lines.append("")
    t = totals(results)
    lines.append("total: " + ", ".join(f"{v} {k}" for k, v in t.items()))
    return "\n".join(lines)


def to_json(results: list[NotebookResult]) -> dict:
    from lecture_utils import __version__

    return {"schema": SCHEMA, "course_version": __version__, "notebooks": [asdict(r) for r in results],
            "totals": totals(results), "ok": all_passed(results)}


def main(args) -> int:
    """The ``grade`` subcommand (see ``lecture_utils.__main__``)."""
    try:
        results = grade(args.paths, timeout=args.timeout, chapter=args.chapter, progress=not args.no_progress,
                        smoke=not args.full)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not results:
        print("error: no notebooks found", file=sys.stderr)
        return 2
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(results), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0 if all_passed(results) else 1
