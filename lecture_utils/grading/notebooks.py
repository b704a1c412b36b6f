"""Grading one notebook: run a copy in a fresh kernel (:mod:`.worker`, with a :mod:`.capture` cell after each
exercise cell), then re-check each exercise in a fresh interpreter (:mod:`.recheck`), both through :mod:`.sandbox`;
and :func:`grade`, every notebook of a folder one after another. See :mod:`lecture_utils.grading` for the design."""

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
from dataclasses import asdict
from pathlib import Path

from lecture_utils import chapters
from lecture_utils.chapters import exercise_key
from lecture_utils.grading import recheck as rc
from lecture_utils.grading import sandbox as sb
from lecture_utils.grading.capture import cell_source as capture_cell
from lecture_utils.grading.capture import guard_cell_source
from lecture_utils.grading.cells import chapter_of, exercise_cells, find_notebooks, plan
from lecture_utils.grading.results import NOT_COURSE, ExerciseResult, NotebookResult
from lecture_utils.status import FAILED, NOT_VERIFIED, STATUSES

OUTPUT_CAP = 10 * 2**20  # characters a notebook may print while graded; counted in the kernel and in the runner


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
                   limits=None, threads: int | None = None, notebook_timeout: float | None = None,
                   partial: bool = False) -> NotebookResult:
    """Run one notebook in a fresh kernel, then re-check its exercises in a fresh interpreter.

    ``sandbox`` (from :func:`lecture_utils.grading.sandbox.find_sandbox`) runs both inside bubblewrap
    with ``limits``; ``None`` runs them as ordinary processes. ``notebook_timeout`` bounds the whole
    run (default: ``timeout`` per code cell). ``partial``: a failed exercise's parts are run and kept (its
    :attr:`ExerciseResult.parts`), for partial credit. Never writes ``path``."""
    import nbformat

    if registry is None:
        registry = chapters.EXERCISES
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

    present = exercise_cells(nb)
    chapter = result.chapter
    if chapter is None and present:
        chapter = result.chapter = exercise_key(present[0][1])[0]
    expected = sorted((e for e in registry if registry[e].chapter == chapter), key=exercise_key) if chapter else []
    unknown = [ex for _, ex, _ in present if ex not in registry]
    if unknown:
        result.problems.append(f"exercise ids unknown to this course: {', '.join(unknown)}")
    if not expected:
        result.status = "error"
        result.problems.append(NOT_COURSE)
        return result
    plans = plan(present, registry)

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
    parts: dict[str, list[dict]] = {}
    outcome |= _recheck(to_check, plans, captures, sandbox=sandbox, limits=limits, threads=threads, smoke=smoke,
                        parts_out=parts if partial else None)
    for ex_id in expected:
        status, message = outcome[ex_id]
        result.exercises.append(ExerciseResult(ex_id, registry[ex_id].title, status, message, parts.get(ex_id, [])))
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


def _parts_of(value) -> list[dict]:
    """A result event's parts, validated (the learner's code ran in that process)."""
    if not isinstance(value, list):
        return []
    return [{"name": p["name"], "passed": p["passed"], "diagnosis": p["diagnosis"]} for p in value[:20]
            if isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("passed"), bool)
            and isinstance(p.get("diagnosis"), str)]


def _recheck(ids: list[str], plans: dict, captures: dict, *, sandbox, limits, threads: int, smoke: bool,
             parts_out: dict | None = None) -> dict:
    """Re-run each exercise's cells and check in fresh interpreters; a new one after any that dies,
    hangs or finds tampering. ``parts_out``: partial credit on; it receives each failed exercise's parts."""
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
                   "limits": asdict(limits) if limits else None, "parts": parts_out is not None}
            fin = sb.run(_helper("lecture_utils.grading.recheck"), job_dir, sandbox=sandbox, limits=limits,
                         timeout=60 + (90 if parts_out is None else 150) * len(pending), threads=threads, smoke=smoke,
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
                if parts_out is not None and msg["status"] == FAILED:
                    parts_out[msg["id"]] = _parts_of(msg.get("parts"))
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
