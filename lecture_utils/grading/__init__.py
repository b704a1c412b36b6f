"""The grader: every exercise's status for a folder of course notebooks, or for a whole class.

    python -m lecture_utils grade notebooks/ [--json FILE] [--timeout SECONDS] [--chapter N] [--sandbox]
    python -m lecture_utils grade SUBMISSIONS/ --class [--jobs N] [--out DIR]

Each notebook is graded in two fresh processes, never writing the learner's file:

1. the *runner* (:mod:`.worker`) executes a copy in its own kernel (nbclient), continuing past
   errors and interrupting cells that run too long; after each exercise cell an inserted cell
   (:mod:`.capture`) records which names the exercise defined and the plain data and library
   objects the cell reads;
2. the *re-checker* (:mod:`.recheck`), a new interpreter that never saw the learner's kernel, runs
   each exercise cell again (taken from the notebook file) on that data and calls the check from
   its own import of ``lecture_utils.checks``; it fails an exercise whose code replaced a function
   of ``torch``, ``builtins`` or ``lecture_utils``.

So deleting or editing a check cell, redefining ``check``, monkeypatching libraries or the recorded
outcomes outside the exercise cells, or exiting early cannot produce a pass; an exercise that
cannot be re-checked is "not verified", never "passed".

With ``sandbox`` (``--sandbox``, and always with ``--class`` unless ``--no-sandbox``) both
processes run inside bubblewrap with limits (:mod:`.sandbox`); :mod:`.classroom` grades a folder
of submissions in parallel and writes the roll-up.

Statuses: ``passed``, ``failed`` (with the check's message), ``not attempted`` (the stub still
raises ``NotImplementedError``), ``not verified`` (the exercise cell is missing, did not run, the
kernel died, or the re-check could not finish).

JSON schema (``--json``): ``{"schema": "lecture_utils.grade/1", "course_version": str,
"notebooks": [{"path": str, "chapter": int|null, "status": "graded"|"error", "problems": [str],
"seconds": float, "exercises": [{"id": str, "title": str, "status": str, "message": str}]}],
"totals": {status: count}, "ok": bool}``.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lecture_utils.grading.capture import cell_source as capture_cell
from lecture_utils.grading.capture import guard_cell_source
from lecture_utils.status import FAILED, NOT_VERIFIED, PASSED, STATUSES

SCHEMA = "lecture_utils.grade/1"
OUTPUT_CAP = 10 * 2**20  # characters a notebook may print while graded; counted in the kernel and in the runner
NOT_COURSE = "no exercises of this course found (a notebook from another course?)"
UNSANDBOXED_NOTE = ("note: graded WITHOUT the sandbox: the notebooks' code ran with your permissions (your files, "
                    "the network). For work that is not your own, grade with --sandbox (or a class with --class).")
_HEADER = re.compile(r"^\s*#\s*Exercise\s+(\d+\.\d+)\b")


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
            if p.suffix != ".ipynb":
                raise ValueError(f"{p} is not a notebook (.ipynb): name notebooks or folders of notebooks")
            found.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return found


def chapter_of(path: Path) -> int | None:
    m = re.match(r"^(\d+)_", path.name)
    return int(m.group(1)) if m else None


def _parse(source: str):
    """The cell's AST, with IPython magic lines blanked; None when it is not Python."""
    import ast

    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def defined_names(source: str) -> set[str]:
    """Names a cell binds at its top level (functions, classes, assignments, imports)."""
    import ast

    tree = _parse(source)
    out: set[str] = set()
    if tree is None:
        return out
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                out |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return out


def free_names(source: str) -> set[str]:
    """Global names a cell reads without binding them itself (builtins excluded); an over-estimate."""
    import ast
    import builtins

    tree = _parse(source)
    if tree is None:
        return set()
    loads, stores = set(), set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            (loads if isinstance(n.ctx, ast.Load) else stores).add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stores.add(n.name)
        elif isinstance(n, ast.arg):
            stores.add(n.arg)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            stores |= {(a.asname or a.name).split(".")[0] for a in n.names}
        elif isinstance(n, ast.ExceptHandler) and n.name:
            stores.add(n.name)
    return loads - stores - set(dir(builtins))


def _exercise_cells(nb) -> list[tuple[int, str, str]]:
    """(cell index, exercise id, source) for every cell whose first line is '# Exercise N.M: ...'."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            first = cell.source.lstrip().splitlines()[0] if cell.source.strip() else ""
            m = _HEADER.match(first)
            if m:
                found.append((i, m.group(1), cell.source))
    return found


@dataclass
class _Plan:
    """What the re-check of one exercise needs: its cell and the earlier exercise cells it uses."""

    id: str
    cells: list[tuple[str, str]]  # (exercise id, source), dependencies first
    context: tuple[str, ...]  # the other global names those cells read


def _plan(present: list[tuple[int, str, str]], registry) -> dict[str, _Plan]:
    plans: dict[str, _Plan] = {}
    source = {ex: src for _, ex, src in present}
    order = [ex for _, ex, _ in present if ex in registry]
    defines = {ex: defined_names(source[ex]) for ex in order}
    for k, ex in enumerate(order):
        chain, todo = [ex], [ex]
        while todo:  # earlier exercise cells that define a name this chain reads
            cur = todo.pop()
            for name in free_names(source[cur]):
                for dep in reversed(order[:k]):
                    if name in defines[dep]:
                        if dep not in chain:
                            chain.append(dep)
                            todo.append(dep)
                        break
        cells = [(e, source[e]) for e in order if e in chain]
        bound = set().union(*(defines[e] for e, _ in cells))
        reads = set().union(*(free_names(s) for _, s in cells)) - bound
        plans[ex] = _Plan(ex, cells, tuple(sorted(reads)))
    return plans


def _job_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="grade-"))  # bound read-only into the sandbox as /job


def _helper_python(python: str | None = None) -> list[str]:
    """The interpreter the helpers run on; -P (3.11+): the working folder is not on ``sys.path``; -s: nor the user's
    site-packages."""
    return [python or sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-s"]


def _helper(module: str) -> list[str]:
    """The command for a helper module."""
    return [*_helper_python(), "-m", module]


def helpers_problem(python: str | None = None) -> str | None:
    """Why the grader's helper processes cannot import the course here, or None when they can.

    They run without the working folder and the user's site-packages on ``sys.path`` (:func:`_helper`), so a course
    that imports only from its source folder, or was installed with ``pip install --user``, fails in every one of
    them; each notebook would then end "abnormally" with nothing said. Asked once, before any grading."""
    import subprocess

    cmd = [*_helper_python(python), "-c", "import lecture_utils.grading.worker"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=tempfile.gettempdir(), timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the grader could not start its helper ({cmd[0]}): {exc}"
    if out.returncode == 0:
        return None
    last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
    return (f"the grader's helpers ({cmd[0]} -P -s: no working folder, no user site-packages) cannot import the course "
            f"({last}); install it into this environment from the course folder: python -m pip install -e .")


def grade_notebook(path: Path, timeout: float = 600, registry=None, smoke: bool = True, sandbox=None,
                   limits=None, threads: int | None = None, notebook_timeout: float | None = None) -> NotebookResult:
    """Run one notebook in a fresh kernel, then re-check its exercises in a fresh interpreter.

    ``sandbox`` (from :func:`lecture_utils.grading.sandbox.find_sandbox`) runs both inside bubblewrap
    with ``limits``; ``None`` runs them as ordinary processes. ``notebook_timeout`` bounds the whole
    run (default: ``timeout`` per code cell). Never writes ``path``."""
    import nbformat

    from lecture_utils.grading import sandbox as sb

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
    unknown = [ex for _, ex, _ in present if ex not in registry]
    if unknown:
        result.problems.append(f"exercise ids unknown to this course: {', '.join(unknown)}")
    if not expected:
        result.status = "error"
        result.problems.append(NOT_COURSE)
        return result
    plans = _plan(present, registry)

    # the copy that runs: first a cell capping what the kernel prints, then a capture cell after each exercise cell
    work = copy.deepcopy(nb)
    work.cells.insert(0, nbformat.v4.new_code_cell(guard_cell_source(OUTPUT_CAP), metadata={"lecture_utils_grade": "guard"}))
    inserted = 1
    for index, ex_id, _ in present:
        if ex_id in plans:
            cell = nbformat.v4.new_code_cell(capture_cell(ex_id, registry[ex_id].names, plans[ex_id].context),
                                             metadata={"lecture_utils_grade": "capture"})
            work.cells.insert(index + 1 + inserted, cell)
            inserted += 1
    for k, cell in enumerate(work.cells):
        cell["id"] = f"cell-{k}"
        if cell.cell_type == "code":
            cell.update(outputs=[], execution_count=None)
    work.nbformat_minor = max(work.nbformat_minor, 5)
    kernel = (nb.metadata.get("kernelspec") or {}).get("name") or "python3"
    n_code = sum(c.cell_type == "code" for c in work.cells)
    wall = notebook_timeout or timeout * n_code + 120
    threads = threads or (os.cpu_count() or 1)
    job_dir = _job_dir()
    try:
        nbformat.write(work, job_dir / "work.ipynb")
        job = {"timeout": timeout, "kernel": kernel, "output_cap": OUTPUT_CAP, "sandboxed": sandbox is not None,
               "limits": asdict(limits) if limits else None}
        (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        fin = sb.run(_helper("lecture_utils.grading.worker"), job_dir, sandbox=sandbox, limits=limits, timeout=wall,
                     threads=threads, smoke=smoke)
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
    report = _read_worker(fin.stdout)
    if not report["ended"]:
        result.problems.append(f"the notebook's run ended abnormally: {fin.describe()}; exercises after that point "
                               "are not verified")
    if report["kernel_missing"]:
        result.status = "error"
        result.problems.append(f"kernel {kernel!r} is not installed; install it or change the notebook's kernel to python3")
        result.seconds = time.perf_counter() - start
        return result
    result.problems += report["problems"]
    captures = report["captures"]

    present_ids = {ex for _, ex, _ in present}
    outcome: dict[str, tuple[str, str]] = {}
    to_check = []
    for ex_id in expected:
        record = captures.get(ex_id)
        if ex_id not in present_ids:
            outcome[ex_id] = (NOT_VERIFIED, "the exercise cell is missing from the notebook")
        elif record is None:
            outcome[ex_id] = (NOT_VERIFIED, "the exercise cell did not run to the end")
        elif [n for n in registry[ex_id].names if n not in record["defined"]]:
            missing = [n for n in registry[ex_id].names if n not in record["defined"]]
            outcome[ex_id] = (NOT_VERIFIED, "the exercise cell does not define " + ", ".join(missing))
        else:
            to_check.append(ex_id)
    outcome |= _recheck(to_check, plans, captures, sandbox=sandbox, limits=limits, threads=threads, smoke=smoke)
    for ex_id in expected:
        status, message = outcome[ex_id]
        result.exercises.append(ExerciseResult(ex_id, registry[ex_id].title, status, message))
    result.seconds = time.perf_counter() - start
    return result


def _read_worker(stdout: bytes) -> dict:
    """The runner's report, validated (the kernel could have written any of it). ``ended`` is False
    when the runner did not reach its end; the captures sent until then still count."""
    problems: list[str] = []
    files: dict[str, str] = {}
    ended = kernel_missing = False
    for line in stdout.decode("utf-8", "replace").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if not isinstance(msg, dict):
            continue
        if isinstance(msg.get("capture"), str) and isinstance(msg.get("data"), str):
            files[msg["capture"]] = msg["data"]
        elif msg.get("end") is True:
            ended = True
            kernel_missing = msg.get("kernel_missing") is True
            problems = [p for p in msg.get("problems", []) if isinstance(p, str)][:20]
    captures: dict[str, dict] = {}
    for name, b64 in files.items():
        m = re.match(r"^(\d+\.\d+)\.json$", name)
        if not m:
            continue
        try:
            record = json.loads(base64.b64decode(b64))
            defined = [n for n in record["defined"] if isinstance(n, str)]
            context = {k: v for k, v in record["context"].items()
                       if isinstance(k, str) and isinstance(v, list) and v and all(isinstance(x, str) for x in v)}
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        data = files.get(f"{m.group(1)}.pt")
        captures[m.group(1)] = {"defined": defined, "context": context,
                                "data": base64.b64decode(data) if data else None}
    return {"problems": problems, "captures": captures, "kernel_missing": kernel_missing, "ended": ended}


def _recheck(ids: list[str], plans: dict, captures: dict, *, sandbox, limits, threads: int, smoke: bool) -> dict:
    """Re-run each exercise's cells and check in fresh interpreters; a new one after any that dies,
    hangs or finds tampering."""
    from lecture_utils.grading import recheck as rc
    from lecture_utils.grading import sandbox as sb

    out: dict[str, tuple[str, str]] = {}
    pending = list(ids)
    while pending:
        token = secrets.token_hex(16)
        job_dir = _job_dir()
        try:
            exercises = []
            for ex_id in pending:
                cap = captures[ex_id]
                data_file = None
                if cap["data"]:
                    data_file = f"{ex_id}.pt"
                    (job_dir / data_file).write_bytes(cap["data"])
                exercises.append({"id": ex_id, "cells": [{"id": e, "source": s} for e, s in plans[ex_id].cells],
                                  "context": cap["context"], "data_file": data_file})
            job = {"token": token, "exercises": exercises, "sandboxed": sandbox is not None,
                   "limits": asdict(limits) if limits else None}
            fin = sb.run(_helper("lecture_utils.grading.recheck"), job_dir, sandbox=sandbox, limits=limits,
                         timeout=60 + 90 * len(pending), threads=threads, smoke=smoke,
                         stdin=json.dumps(job).encode())
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)
        started, ready, done = None, False, False
        for line in fin.stdout.decode("utf-8", "replace").splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if not isinstance(msg, dict) or msg.get("token") != token:
                continue
            event = msg.get("event")
            if event == "ready":
                ready = True
            elif event == "start" and msg.get("id") in pending:
                started = msg["id"]
            elif event == "result" and msg.get("id") in pending and msg.get("status") in STATUSES:
                out[msg["id"]] = (msg["status"], str(msg.get("message", "")))
                pending.remove(msg["id"])
                started = None
            elif event == "done":
                done = True
        if done or not pending:
            break
        if fin.returncode == rc.TAINTED_EXIT:
            continue  # the tampering exercise is reported; the rest in a clean process
        if not ready:
            for ex_id in pending:
                out[ex_id] = (NOT_VERIFIED, f"the grader's re-check could not start: {fin.describe()}")
            break
        culprit = started or pending[0]
        out[culprit] = (NOT_VERIFIED, f"its re-check did not finish: {fin.describe()}")
        pending.remove(culprit)
    for ex_id in pending:
        out.setdefault(ex_id, (NOT_VERIFIED, "the grader's re-check reported nothing"))
    return out


def _id_key(ex_id: str):
    return [int(p) for p in ex_id.split(".")]


def grade(paths, timeout: float = 600, chapter: int | None = None, progress: bool = True,
          smoke: bool = True, sandbox=None, limits=None, notebook_timeout: float | None = None) -> list[NotebookResult]:
    """Grade every notebook under ``paths`` (optionally only chapter ``chapter``), one after another."""
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
        results.append(grade_notebook(path, timeout=timeout, smoke=smoke, sandbox=sandbox, limits=limits,
                                      notebook_timeout=notebook_timeout))
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


def is_stray(result: NotebookResult) -> bool:
    """A notebook with no exercise of this course (an ``Untitled.ipynb`` beside the course's): reported,
    not a failure."""
    return result.status == "error" and result.problems == [NOT_COURSE]


def all_passed(results: list[NotebookResult]) -> bool:
    """True when every notebook of the course was graded and every exercise found passed (stray
    notebooks with no exercise of the course aside)."""
    results = [r for r in results if not is_stray(r)]
    exercises = [e for r in results for e in r.exercises]
    return bool(exercises) and all(r.status == "graded" for r in results) and all(e.status == PASSED for e in exercises)


def report(results: list[NotebookResult]) -> str:
    """A table per chapter and a total line."""
    from lecture_utils import __version__

    lines = [f"Build GPT grader (course version {__version__})", ""]
    for r in results:
        if is_stray(r):
            lines += [f"{Path(r.path).name}  not graded: no exercise of this course in it", ""]
            continue
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


def limits_from_args(args):
    """The sandbox limits the command line asked for."""
    from lecture_utils.grading.sandbox import Limits

    wall = int(args.notebook_timeout)
    return Limits(cpu_seconds=wall, memory=int(args.memory * 2**30))


def main(args) -> int:
    """The ``grade`` subcommand (see ``lecture_utils.__main__``)."""
    from lecture_utils.grading import sandbox as sb

    if args.sandbox and args.no_sandbox:
        print("error: --sandbox and --no-sandbox contradict each other", file=sys.stderr)
        return 2
    problem = helpers_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    use_sandbox = (args.class_ or args.sandbox) and not args.no_sandbox
    box = None
    if use_sandbox:
        try:
            box = sb.find_sandbox()
        except sb.SandboxUnavailable as exc:
            what = "--class" if args.class_ else "--sandbox"
            print(f"error: {what} grades untrusted notebooks inside a sandbox, and none is available: {exc}",
                  file=sys.stderr)
            return 2
    limits = limits_from_args(args) if (box is not None or args.class_) else None
    if args.class_:
        from lecture_utils.grading import classroom

        return classroom.main(args, sandbox=box, limits=limits)
    try:
        notebooks = find_notebooks(args.paths)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.chapter is not None:
        notebooks = [p for p in notebooks if chapter_of(p) == args.chapter]
    if not notebooks:
        where = ", ".join(map(str, args.paths))
        print(f"error: no notebooks (*.ipynb) found in {where}" + (f" for chapter {args.chapter}" if args.chapter else ""),
              file=sys.stderr)
        return 2
    results = grade(notebooks, timeout=args.timeout, progress=not args.no_progress, smoke=not args.full,
                    sandbox=box, limits=limits, notebook_timeout=args.notebook_timeout if box else None)
    if all(r.status == "error" for r in results):  # nothing gradable: one line per file, no table
        for r in results:
            print(f"error: {r.path}: {'; '.join(r.problems)}", file=sys.stderr)
        return 2
    if box is None:
        print(UNSANDBOXED_NOTE, file=sys.stderr)
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(results), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0 if all_passed(results) else 1
