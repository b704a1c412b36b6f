"""A whole class at once: ``python -m lecture_utils grade SUBMISSIONS/ --class``.

``SUBMISSIONS/`` holds one folder or one ``.zip`` per learner (the name is the learner's); every
``.ipynb`` inside it (sub-folders included, ``.ipynb_checkpoints`` and hidden files skipped) is
graded, each notebook as a separate job, ``--jobs`` at a time. A submission whose content hash is
unchanged since the last run (same notebooks, same course code, same settings) is taken from the
cache in the output folder. The output folder gets

- ``grades.csv``: one row per learner, one column per exercise (``passed``/``failed``/...), and
  the number passed - the shape gradebooks import;
- ``grades.json``: every notebook's result with every message (schema ``lecture_utils.grade-class/1``), each
  learner's ``score`` and ``earned`` points per exercise - with partial credit on (the points table's
  ``partial_credit``), a failed exercise's ``parts`` and the share of its points they earn;
- ``.grade-cache.json``: the cache.

and a summary is printed: per exercise, how many passed / failed / were not attempted / could not
be verified / are missing, and the most common failure message.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from lecture_utils.chapters import EXERCISES, exercise_key
from lecture_utils.files import atomic_write_text
from lecture_utils.grading.cells import chapter_of
from lecture_utils.grading.notebooks import grade_notebook
from lecture_utils.grading.results import ExerciseResult, NotebookResult
from lecture_utils.status import FAILED, MISSING, NOT_ATTEMPTED, NOT_VERIFIED, PASSED
from lecture_utils.version import __version__

SCHEMA = "lecture_utils.grade-class/1"
MAX_NOTEBOOK_BYTES = 50 * 2**20
MAX_SUBMISSION_BYTES = 200 * 2**20
CACHE = ".grade-cache.json"


@dataclass
class Submission:
    learner: str
    source: str
    files: dict[str, bytes] = field(default_factory=dict)  # relative name -> content
    problems: list[str] = field(default_factory=list)
    notebooks: list[NotebookResult] = field(default_factory=list)
    hash: str = ""
    cached: bool = False


def _skipped(parts) -> bool:
    return any(p.startswith(".") or p in ("__MACOSX", ".ipynb_checkpoints") for p in parts)


def _read_folder(sub: Submission, folder: Path) -> None:
    total = 0
    for path in sorted(folder.rglob("*.ipynb")):
        rel = path.relative_to(folder)
        if _skipped(rel.parts):
            continue
        if path.is_symlink() or any(p.is_symlink() for p in path.relative_to(folder).parents if str(p) != "."):
            sub.problems.append(f"{rel}: a symbolic link, not graded")
            continue
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES or total + size > MAX_SUBMISSION_BYTES:
            sub.problems.append(f"{rel}: too large ({size / 2**20:.0f} MB), not graded")
            continue
        total += size
        sub.files[rel.as_posix()] = path.read_bytes()


def _read_zip(sub: Submission, archive: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        sub.problems.append(f"not a readable zip file: {exc}")
        return
    total = 0
    with zf:
        for info in zf.infolist():
            name = PurePosixPath(info.filename)
            if info.is_dir() or name.suffix != ".ipynb" or _skipped(name.parts) or name.is_absolute() or ".." in name.parts:
                continue
            try:
                with zf.open(info) as f:
                    data = f.read(MAX_NOTEBOOK_BYTES + 1)  # the header's size is not trusted (zip bombs)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                sub.problems.append(f"{name}: cannot be read from the zip ({exc})")
                continue
            if len(data) > MAX_NOTEBOOK_BYTES or total + len(data) > MAX_SUBMISSION_BYTES:
                sub.problems.append(f"{name}: too large, not graded")
                continue
            total += len(data)
            sub.files[name.as_posix()] = data


def find_submissions(root: Path) -> list[Submission]:
    """One :class:`Submission` per folder or ``.zip`` directly inside ``root``, notebooks read."""
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    subs = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_dir():
            sub = Submission(entry.name, str(entry))
            _read_folder(sub, entry)
        elif entry.suffix.lower() == ".zip":
            sub = Submission(entry.stem, str(entry))
            _read_zip(sub, entry)
        else:
            continue
        chapters = Counter(chapter_of(Path(n)) for n in sub.files)
        for ch, count in chapters.items():
            if ch is not None and count > 1:
                names = sorted(n for n in sub.files if chapter_of(Path(n)) == ch)
                sub.problems.append(f"{count} notebooks for chapter {ch:02d} ({', '.join(names)}): only {names[0]} is graded")
                for n in names[1:]:
                    del sub.files[n]
        if not sub.files:
            sub.problems.append("no notebooks (.ipynb) in this submission")
        subs.append(sub)
    return subs


def course_fingerprint() -> str:
    """A hash of the course's code (checks, references, grader): cached grades expire when it changes."""
    h = hashlib.sha256(__version__.encode())
    pkg = Path(__file__).resolve().parents[1]  # the lecture_utils folder
    for f in sorted(pkg.rglob("*.py")):
        h.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def submission_hash(sub: Submission, settings: dict, course: str) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode() + course.encode())
    for name in sorted(sub.files):
        h.update(name.encode() + b"\0" + hashlib.sha256(sub.files[name]).digest())
    return h.hexdigest()


def _load_cache(out: Path) -> dict:
    try:
        data = json.loads((out / CACHE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and data.get("schema") == SCHEMA else {}
    except (OSError, ValueError):
        return {}


def _notebook_from_dict(d: dict) -> NotebookResult:
    r = NotebookResult(d["path"], d["chapter"], d["status"], list(d["problems"]), d["seconds"])
    r.exercises = [ExerciseResult(**e) for e in d["exercises"]]
    return r


def grade_class(subs: list[Submission], out: Path, *, jobs: int, timeout: float, smoke: bool, sandbox, limits,
                chapter: int | None = None, progress: bool = True, partial: bool | list[str] = False) -> list[Submission]:
    """Grade the submissions (from :func:`find_submissions`; unchanged ones from the cache in ``out``)
    with ``jobs`` notebooks at once. ``partial``: partial credit on (every exercise, or a list of them), so a
    failed exercise's parts are run and kept."""
    out.mkdir(parents=True, exist_ok=True)
    cache = _load_cache(out).get("learners", {})
    settings = {"timeout": timeout, "smoke": smoke, "sandbox": sandbox is not None,
                "limits": asdict(limits) if limits else None, "chapter": chapter, "partial": partial}
    course = course_fingerprint()
    tasks = []
    for sub in subs:
        if chapter is not None:
            sub.files = {n: b for n, b in sub.files.items() if chapter_of(Path(n)) == chapter}
        sub.hash = submission_hash(sub, settings, course)
        hit = cache.get(sub.learner)
        if isinstance(hit, dict) and hit.get("hash") == sub.hash:
            try:
                sub.notebooks = [_notebook_from_dict(d) for d in hit["notebooks"]]
                sub.cached = True
                continue
            except (KeyError, TypeError):
                pass
        tasks += [(sub, name) for name in sorted(sub.files)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // max(1, jobs))
    bar = None
    if progress and tasks:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc="grading", unit="notebook", file=sys.stderr)
    staging = Path(tempfile.mkdtemp(prefix="grade-class-"))
    position = {id(sub): k for k, sub in enumerate(subs)}

    def one(task) -> tuple[Submission, NotebookResult]:
        sub, name = task
        folder = staging / f"{position[id(sub)]:04d}"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sub.files[name])
        try:
            result = grade_notebook(path, timeout=timeout, smoke=smoke, sandbox=sandbox, limits=limits,
                                    threads=threads, notebook_timeout=limits.cpu_seconds if limits else None,
                                    partial=bool(partial))
        except Exception as exc:  # a grader fault on one notebook must not stop the class
            result = NotebookResult(str(path), chapter_of(path), "error", [f"the grader failed: {type(exc).__name__}: {exc}"])
        finally:
            path.unlink(missing_ok=True)
        result.path = f"{sub.learner}/{name}"
        return sub, result

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for sub, result in pool.map(one, tasks):
                sub.notebooks.append(result)
                if bar is not None:
                    bar.set_postfix_str(result.path[-40:])
                    bar.update(1)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if bar is not None:
            bar.close()
    for sub in subs:
        sub.notebooks.sort(key=lambda r: (r.chapter or 0, r.path))
    learners = {s.learner: {"hash": s.hash, "notebooks": [asdict(r) for r in s.notebooks]} for s in subs if s.files}
    atomic_write_text(out / CACHE, json.dumps({"schema": SCHEMA, "learners": learners}))
    return subs


def exercise_columns(subs: list[Submission]) -> list[str]:
    ids = {e.id for s in subs for r in s.notebooks for e in r.exercises}
    return sorted(ids, key=exercise_key)


def statuses(sub: Submission, columns: list[str]) -> dict[str, str]:
    found = {e.id: e.status for r in sub.notebooks for e in r.exercises}
    return {c: found.get(c, MISSING) for c in columns}


def to_csv(subs: list[Submission]) -> str:
    columns = exercise_columns(subs)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["learner", "passed", "exercises"] + columns)
    for s in subs:
        row = statuses(s, columns)
        w.writerow([s.learner, sum(v == PASSED for v in row.values()), len(columns)] + [row[c] for c in columns])
    return buf.getvalue()


def summary(subs: list[Submission]) -> dict[str, dict]:
    """Per exercise: the count of each status, and the most common failure message."""
    out = {}
    for ex in exercise_columns(subs):
        counts = Counter(statuses(s, [ex])[ex] for s in subs)
        failures = Counter(e.message for s in subs for r in s.notebooks for e in r.exercises
                           if e.id == ex and e.status in (FAILED, NOT_VERIFIED) and e.message)
        common = failures.most_common(1)
        out[ex] = {"title": EXERCISES[ex].title if ex in EXERCISES else "",
                   **{k: counts.get(k, 0) for k in (PASSED, FAILED, NOT_ATTEMPTED, NOT_VERIFIED, MISSING)},
                   "most_common_failure": common[0][0] if common else "",
                   "most_common_failure_count": common[0][1] if common else 0}
    return out


def blocked_by_sandbox(sub: Submission, sandboxed: bool) -> list[str]:
    """What the sandbox visibly stopped this learner's notebooks doing (see :func:`.feedback.blocked`)."""
    from lecture_utils.grading.feedback import blocked

    return blocked([p for r in sub.notebooks for p in r.problems]) if sandboxed else []


def earned_points(sub: Submission, points: dict[str, float], partial: bool | list[str] = False) -> dict[str, float]:
    """The points this learner earned per exercise (partial credit included when ``partial`` is on)."""
    from lecture_utils.grading.feedback import earned, partial_for

    found = {e.id: e for r in sub.notebooks for e in r.exercises}
    return {ex: earned(found[ex].status if ex in found else MISSING, found[ex].parts if ex in found else None, top,
                       partial_for(partial, ex)) for ex, top in points.items()}


def to_json(subs: list[Submission], sandboxed: bool, points: dict[str, float] | None = None,
            partial: bool | list[str] = False) -> dict:
    columns = exercise_columns(subs)
    points = points if points is not None else {c: 1.0 for c in columns}
    learners = []
    for s in subs:
        got = earned_points(s, points, partial)
        learners.append({"learner": s.learner, "source": s.source, "hash": s.hash, "cached": s.cached,
                         "problems": s.problems, "blocked": blocked_by_sandbox(s, sandboxed),
                         "score": round(sum(got.values()), 4), "earned": got,
                         "notebooks": [asdict(r) for r in s.notebooks]})
    return {"schema": SCHEMA, "course_version": __version__, "sandboxed": sandboxed, "partial_credit": partial,
            "exercises": columns, "summary": summary(subs), "points": points, "learners": learners}


def report(subs: list[Submission], sandboxed: bool, seconds: float) -> str:
    n_nb = sum(len(s.notebooks) for s in subs)
    cached = sum(s.cached for s in subs)
    lines = [f"Class of {len(subs)} learners, {n_nb} notebooks ({cached} learners unchanged, from the cache); "
             f"{'sandboxed' if sandboxed else 'NOT sandboxed'}; {seconds:.0f} s", ""]
    head = f"{'exercise':<8} {'passed':>6} {'failed':>6} {'not att.':>8} {'not ver.':>8} {'missing':>7}  most common failure"
    lines.append(head)
    for ex, row in summary(subs).items():
        common = row["most_common_failure"]
        if len(common) > 90:
            common = common[:87] + "..."
        shown = f"({row['most_common_failure_count']}x) {common}" if common else ""
        lines.append(f"{ex:<8} {row[PASSED]:>6} {row[FAILED]:>6} {row[NOT_ATTEMPTED]:>8} {row[NOT_VERIFIED]:>8} "
                     f"{row[MISSING]:>7}  {shown}")
    notes = []
    for s in subs:
        for b in blocked_by_sandbox(s, sandboxed):
            notes.append(f"  {s.learner}: the sandbox stopped {b}")
        for p in s.problems:
            notes.append(f"  {s.learner}: {p}")
        for r in s.notebooks:
            for p in r.problems:
                notes.append(f"  {r.path}: {p}")
    if notes:
        lines += ["", "problems:"] + notes
    return "\n".join(lines)


def main(args, sandbox, limits) -> int:
    """``grade SUBMISSIONS/ --class``."""
    if len(args.paths) != 1:
        print("error: --class takes one folder of submissions (one folder or .zip per learner)", file=sys.stderr)
        return 2
    root = Path(args.paths[0])
    start = time.perf_counter()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = args.jobs or cores
    if jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    try:
        subs = find_submissions(root)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not subs:
        print(f"error: no submissions in {root}: expected one folder or .zip per learner", file=sys.stderr)
        return 2
    from lecture_utils.grading import lms

    try:
        formats = lms.parse_formats(getattr(args, "lms", None))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    from lecture_utils.grading.feedback import load_partial

    try:
        partial = load_partial(getattr(args, "points", None))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    subs = grade_class(subs, out, jobs=jobs, timeout=args.timeout, smoke=not args.full, sandbox=sandbox,
                       limits=limits, chapter=args.chapter, progress=not args.no_progress, partial=partial)
    try:
        points = _points(args, exercise_columns(subs))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    roll_up = to_json(subs, sandbox is not None, points, partial)
    atomic_write_text(out / "grades.csv", to_csv(subs))
    atomic_write_text(out / "grades.json", json.dumps(roll_up, indent=2) + "\n")
    feedback = write_feedback(roll_up, out / "feedback")
    written = lms.write(formats, lms_rows(roll_up), getattr(args, "assignment", None) or "Build GPT",
                        sum(points.values()), out)
    print(report(subs, sandbox is not None, time.perf_counter() - start))
    print(f"\nwrote {out / 'grades.csv'}, {out / 'grades.json'}, {len(feedback)} reports in {out / 'feedback'}"
          + "".join(f", {p}" for p in written))
    return 0


def _points(args, columns: list[str]) -> dict[str, float]:
    from lecture_utils.grading.feedback import load_points

    return load_points(getattr(args, "points", None), columns)


def lms_rows(roll_up: dict) -> list[dict]:
    """One row per learner for :mod:`.lms`: name, score and a one-line summary (with partial credit, each failed
    exercise's right parts and the failed parts by name)."""
    rows = []
    for entry in roll_up["learners"]:
        done = [e for nb in entry["notebooks"] for e in nb["exercises"]]
        passed = sum(e["status"] == PASSED for e in done)
        todo = [_todo(e) for e in done if e["status"] != PASSED]
        summary_line = f"{passed} of {len(roll_up['exercises'])} exercises passed" + (
            f"; to redo: {', '.join(todo)}" if todo else "")
        rows.append({"learner": entry["learner"], "score": entry["score"], "summary": summary_line})
    return rows


def _todo(e: dict) -> str:
    """'4.1' or, with parts, '4.1 (4/6 parts; wrong: causal mask: the future does not leak)'."""
    parts = e.get("parts") or []
    if not parts:
        return e["id"]
    wrong = [p["name"] for p in parts if not p["passed"]]
    return f"{e['id']} ({len(parts) - len(wrong)}/{len(parts)} parts; wrong: {' / '.join(wrong)})"


def write_feedback(roll_up: dict, folder: Path) -> list[Path]:
    """feedback/LEARNER.html and .md for every learner (see :mod:`.feedback`)."""
    from lecture_utils.grading.feedback import safe_name, to_html, to_markdown

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in roll_up["learners"]:
        name = safe_name(entry["learner"])
        atomic_write_text(folder / f"{name}.md", to_markdown(entry, roll_up["points"]))
        atomic_write_text(folder / f"{name}.html", to_html(entry, roll_up["points"]))
        written.append(folder / f"{name}.html")
    return written
