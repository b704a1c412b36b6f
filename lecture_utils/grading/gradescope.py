"""A Gradescope autograder for chosen chapters, and the grader mode that runs inside it.

    python -m lecture_utils gradescope build --chapters 01,02 [--points points.toml] [--out autograder.zip]
    python -m lecture_utils gradescope run [--root /autograder]      # what run_autograder calls

The zip follows Gradescope's autograder specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): at its root ``setup.sh`` (run once,
as root, when Gradescope builds the image; it has the network then) and ``run_autograder`` (run per
submission from ``/autograder``, writing ``/autograder/results/results.json``); Gradescope unpacks
the zip into ``/autograder/source`` and the learner's files into ``/autograder/submission``. Ours holds

- ``course/``: the ``lecture_utils`` source (its corpora and shipped checkpoints inside it) and
  ``pyproject.toml``, installed by ``setup.sh`` with ``--no-deps``;
- ``requirements.txt``: every distribution the course and the grader import, pinned to the versions
  installed where the zip was built (torch from its CPU wheel index);
- ``gradescope.json``: the chapters, the points per exercise, partial credit (the points table's
  ``partial_credit``), the visibility and the time limits.

Grading needs no network: everything is installed at set-up. ``results.json`` has, per the
specification, a top-level ``score``, ``execution_time`` (seconds), ``output`` and ``tests``: one test per
exercise of the chosen chapters (``name``, ``number``, ``score``, ``max_score``, ``status``
``passed``/``failed``, ``output``: the check's diagnosis and what to do next, ``visibility``).
:data:`RESULTS_SCHEMA` is that specification as a JSON Schema. The feedback report
(:mod:`.feedback`) is also written as ``results/feedback.html`` and ``feedback.md``.

``LECTURE_UTILS_AUTOGRADER_ROOT`` (or ``--root``) moves ``/autograder`` elsewhere: a trial run
on an instructor's machine, and the tests. The grader uses the bubblewrap sandbox when it can start
one; Gradescope's container (run as root, usually without user namespaces) is then the isolation,
and the limits (time, memory, file size) still apply.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
import zipfile
from pathlib import Path

from lecture_utils.chapters import EXERCISES, exercise_key
from lecture_utils.version import __version__

RUN_SCRIPT = """#!/usr/bin/env bash
# Gradescope runs this for every submission, from /autograder (LECTURE_UTILS_AUTOGRADER_ROOT moves it for a trial).
set -u
ROOT="${LECTURE_UTILS_AUTOGRADER_ROOT:-/autograder}"
PY="${LECTURE_UTILS_AUTOGRADER_PYTHON:-python3}"
exec "$PY" -m lecture_utils gradescope run --root "$ROOT"
"""

SETUP_SCRIPT = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (with the network): it installs the
# pinned course package and everything it imports, so that grading needs no network.
set -euo pipefail
cd "$(dirname "$0")"
PY="${LECTURE_UTILS_AUTOGRADER_PYTHON:-python3}"
"$PY" -c 'import json, sys
want = json.load(open("gradescope.json"))["python"]
have = "%d.%d" % sys.version_info[:2]
if have != want:
    print(f"warning: the pins were made on Python {want} and this image has {have}: pick the Gradescope base image "
          f"with Python {want}, or rebuild the zip with Python {have}", file=sys.stderr)'
"$PY" -m pip install --upgrade pip
"$PY" -m pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt
"$PY" -m pip install --no-deps ./course
"$PY" -m ipykernel install --name python3 --sys-prefix
"$PY" -m lecture_utils gradescope check --root "$(dirname "$(pwd)")"
"""

# The grader's own imports beyond the course package's dependencies (they sit in its dev extra).
GRADER_DISTRIBUTIONS = ("nbclient", "nbformat", "ipykernel", "packaging")

RESULTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Gradescope autograder results.json (https://gradescope-autograders.readthedocs.io/en/latest/specs/)",
    "type": "object",
    "required": ["score", "tests"],
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "stdout_visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "score", "max_score", "status", "output", "visibility"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "number": {"type": "string"},
                    "score": {"type": "number", "minimum": 0},
                    "max_score": {"type": "number", "minimum": 0},
                    "status": {"enum": ["passed", "failed"]},
                    "output": {"type": "string"},
                    "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
                    "extra_data": {"type": "object"},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
ROOT_ENV = "LECTURE_UTILS_AUTOGRADER_ROOT"


def parse_chapters(text: str, registry) -> list[int]:
    try:
        chapters = sorted({int(c) for c in text.split(",") if c.strip()})
    except ValueError:
        raise ValueError(f"--chapters: expected numbers separated by commas (e.g. 01,02), not {text!r}") from None
    known = {e.chapter for e in registry.values()}
    unknown = [c for c in chapters if c not in known]
    if not chapters or unknown:
        raise ValueError(f"--chapters: no exercises in chapter(s) {', '.join(map(str, unknown or chapters))}; "
                         f"chapters with exercises: {', '.join(map(str, sorted(known)))}")
    return chapters


def exercises_of(chapters: list[int], registry) -> list[str]:
    return sorted((e for e in registry if registry[e].chapter in chapters), key=exercise_key)


def pins() -> list[str]:
    """``name==version`` for the course's dependencies and the grader's, with theirs, as installed here."""
    from importlib import metadata

    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    env = default_environment() | {"extra": ""}
    seen: dict[str, str] = {}
    todo = [Requirement(r) for r in metadata.requires("lecture_utils") or []] + [Requirement(n) for n in GRADER_DISTRIBUTIONS]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        key = re.sub(r"[-_.]+", "-", req.name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: an optional dependency this environment does without
        seen[key] = f"{dist.metadata['Name']}=={dist.version}"
        todo += [Requirement(r) for r in dist.requires or []]
    return sorted(seen.values(), key=str.lower)


def _course_files() -> list[tuple[Path, str]]:
    pkg = Path(__file__).resolve().parents[1]  # the lecture_utils folder
    repo = pkg.parent
    files = [(p, "course/lecture_utils/" + p.relative_to(pkg).as_posix()) for p in sorted(pkg.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")]
    for name in ("pyproject.toml", "README.md"):
        if (repo / name).is_file():
            files.append((repo / name, f"course/{name}"))
    return files


def build(chapters: list[int], points_file: str | None, out: Path, *, visibility: str = "visible",
          timeout: float = 300, notebook_timeout: float = 1200) -> dict:
    """Write the autograder zip to ``out``; its configuration."""
    from lecture_utils.grading.feedback import load_partial, load_points

    if visibility not in VISIBILITIES:
        raise ValueError(f"--visibility must be one of {', '.join(VISIBILITIES)}")
    exercises = exercises_of(chapters, EXERCISES)
    config = {"schema": "lecture_utils.gradescope/1", "course_version": __version__, "chapters": chapters,
              "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
              "points": load_points(points_file, exercises), "partial_credit": load_partial(points_file),
              "visibility": visibility,
              "timeout": timeout, "notebook_timeout": notebook_timeout}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        def text(name: str, body: str, executable: bool = False) -> None:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            zf.writestr(info, body)

        text("setup.sh", SETUP_SCRIPT, executable=True)
        text("run_autograder", RUN_SCRIPT, executable=True)
        text("requirements.txt", "\n".join(pins()) + "\n")
        text("gradescope.json", json.dumps(config, indent=2) + "\n")
        for path, name in _course_files():
            zf.write(path, name)
    os.replace(tmp, out)
    return config


def _root(arg: str | None) -> Path:
    return Path(arg or os.environ.get(ROOT_ENV) or "/autograder")


def _config(root: Path) -> dict:
    return json.loads((root / "source" / "gradescope.json").read_text(encoding="utf-8"))


def _pick_notebooks(submission: Path, chapters: list[int]):
    """{chapter: notebook} (the first by name when several), and the notebooks of no chosen chapter."""
    import nbformat

    from lecture_utils.grading.cells import chapter_of, exercise_cells

    chosen: dict[int, Path] = {}
    others: list[Path] = []
    found = sorted(p for p in submission.rglob("*.ipynb")
                   if not any(part.startswith(".") for part in p.relative_to(submission).parts))
    for path in found:
        ch = chapter_of(path)
        if ch is None:  # a renamed notebook: its exercise cells say which chapter it is
            try:
                cells = exercise_cells(nbformat.read(path, as_version=4))
                ch = exercise_key(cells[0][1])[0] if cells else None
            except Exception:
                ch = None
        if ch in chapters and ch not in chosen:
            chosen[ch] = path
        else:
            others.append(path)
    return chosen, others


def grade_submission(root: Path, sandbox=None) -> dict:
    """Grade ``root/submission`` per ``root/source/gradescope.json``; the results.json document."""
    from lecture_utils.grading.feedback import blocked, earned, exercise_feedback, partial_for, to_html, to_markdown
    from lecture_utils.grading.notebooks import grade_notebook
    from lecture_utils.grading.sandbox import Limits
    from lecture_utils.status import PASSED

    start = time.perf_counter()
    config = _config(root)
    chapters, points, vis = config["chapters"], config["points"], config.get("visibility", "visible")
    partial = config.get("partial_credit", False)
    limits = Limits(cpu_seconds=int(config.get("notebook_timeout", 1200)))
    chosen, others = _pick_notebooks(root / "submission", chapters)
    notebooks, notes = [], []
    for ch in chapters:
        if ch not in chosen:
            notes.append(f"No notebook for chapter {ch:02d} was handed in: its exercises score 0.")
            continue
        r = grade_notebook(chosen[ch], timeout=float(config.get("timeout", 300)), sandbox=sandbox, limits=limits,
                           notebook_timeout=limits.cpu_seconds, partial=bool(partial))
        r.path = chosen[ch].name
        notebooks.append(r)
    for path in others:
        notes.append(f"{path.name}: not graded (no chapter of this assignment in it).")
    found = {e.id: e for r in notebooks for e in r.exercises}
    tests, earned_by = [], {}
    for ex in exercises_of(chapters, EXERCISES):
        e = found.get(ex)
        status, message, parts = (e.status, e.message, e.parts) if e else ("missing", "", [])
        ok = status == PASSED
        got = earned(status, parts, points[ex], partial_for(partial, ex))
        shown = f"{status}, {sum(p['passed'] for p in parts)} of {len(parts)} parts right" if parts else status
        tests.append({"name": f"Exercise {ex}: {EXERCISES[ex].title} ({shown})", "number": ex,
                      "score": got, "max_score": points[ex],
                      "status": "passed" if ok else "failed", "output": exercise_feedback(status, message, parts),
                      "visibility": vis})
        earned_by[ex] = got
    learner = {"learner": "this submission", "problems": notes, "earned": earned_by,
               "blocked": blocked([p for r in notebooks for p in r.problems]) if sandbox is not None else [],
               "notebooks": [_as_dict(r) for r in notebooks]}
    summary = [f"{sum(t['status'] == 'passed' for t in tests)} of {len(tests)} exercises passed."] + notes
    summary += [f"{r.path}: {p}" for r in notebooks for p in r.problems]
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "feedback.md").write_text(to_markdown(learner, points), encoding="utf-8")
    (results_dir / "feedback.html").write_text(to_html(learner, points), encoding="utf-8")
    return {"score": sum(t["score"] for t in tests), "execution_time": round(time.perf_counter() - start, 1),
            "output": "\n".join(summary), "visibility": vis, "stdout_visibility": "hidden", "tests": tests}


def _as_dict(r) -> dict:
    from dataclasses import asdict

    return asdict(r)


def run(root: Path) -> int:
    """``run_autograder``: always writes results.json, even when grading itself fails."""
    from lecture_utils.grading import sandbox as sb

    try:
        box = sb.find_sandbox()
        print("grading inside the bubblewrap sandbox")
    except sb.SandboxUnavailable as exc:
        box = None
        print(f"grading without the bubblewrap sandbox (the container is the isolation): {exc}")
    try:
        results = grade_submission(root, sandbox=box)
    except Exception as exc:  # Gradescope shows the learner nothing at all without a results.json
        results = {"score": 0.0, "output": f"The autograder failed ({type(exc).__name__}: {exc}); "
                   "tell your instructor.", "tests": []}
    out = root / "results" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}: score {results['score']:g}")
    return 0


def validate(document, schema: dict = RESULTS_SCHEMA, where: str = "results") -> list[str]:
    """The ways ``document`` breaks ``schema`` (the subset of JSON Schema :data:`RESULTS_SCHEMA` uses)."""
    errors: list[str] = []
    kinds = {"object": dict, "array": list, "string": str}
    t = schema.get("type")
    if t == "number" and (not isinstance(document, (int, float)) or isinstance(document, bool)):
        return [f"{where}: not a number"]
    if t in kinds and not isinstance(document, kinds[t]):
        return [f"{where}: not a{'n' if t[0] in 'ao' else ''} {t}"]
    if "enum" in schema and document not in schema["enum"]:
        errors.append(f"{where}: {document!r} is not one of {schema['enum']}")
    if "minimum" in schema and isinstance(document, (int, float)) and document < schema["minimum"]:
        errors.append(f"{where}: below {schema['minimum']}")
    if "minLength" in schema and isinstance(document, str) and len(document) < schema["minLength"]:
        errors.append(f"{where}: empty")
    if isinstance(document, dict):
        props = schema.get("properties", {})
        errors += [f"{where}: missing {k!r}" for k in schema.get("required", []) if k not in document]
        if schema.get("additionalProperties") is False:
            errors += [f"{where}: unexpected {k!r}" for k in document if k not in props]
        for k, v in document.items():
            if k in props:
                errors += validate(v, props[k], f"{where}.{k}")
    if isinstance(document, list) and "items" in schema:
        for i, item in enumerate(document):
            errors += validate(item, schema["items"], f"{where}[{i}]")
    return errors


def add_parser(sub) -> None:
    p = sub.add_parser("gradescope", help="build a Gradescope autograder zip, or run it (inside Gradescope)")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    b = verbs.add_parser("build", help="write autograder.zip for the chosen chapters")
    b.add_argument("--chapters", required=True, help="chapters to grade, e.g. 01,02")
    b.add_argument("--points", metavar="FILE", help="points per exercise, a TOML table (\"1.2\" = 2, default = 1)")
    b.add_argument("--out", default="autograder.zip", help="the zip to write (default autograder.zip)")
    b.add_argument("--visibility", default="visible", choices=VISIBILITIES, help="when learners see each test")
    b.add_argument("--timeout", type=float, default=300, metavar="SECONDS", help="per-cell time limit (default 300)")
    b.add_argument("--notebook-timeout", type=float, default=1200, metavar="SECONDS",
                   help="one notebook's run, at most (default 1200; Gradescope's own limit is set per assignment)")
    for verb, text in (("run", "grade ROOT/submission into ROOT/results/results.json (what run_autograder calls)"),
                       ("check", "check that the autograder's configuration reads (what setup.sh ends with)")):
        r = verbs.add_parser(verb, help=text)
        r.add_argument("--root", default=None, help=f"the autograder folder (default ${ROOT_ENV} or /autograder)")


def main(args) -> int:

    if args.verb == "build":
        chapters = parse_chapters(args.chapters, EXERCISES)  # ValueError: one line, status 2 (the CLI's rule)
        out = Path(args.out)
        config = build(chapters, args.points, out, visibility=args.visibility, timeout=args.timeout,
                       notebook_timeout=args.notebook_timeout)
        total = sum(config["points"].values())
        print(f"wrote {out}: chapters {', '.join(f'{c:02d}' for c in chapters)}, {len(config['points'])} exercises, "
              f"{total:g} points; upload it as the assignment's autograder (Configure Autograder > Zip file)")
        return 0
    root = _root(args.root)
    if args.verb == "check":
        config = _config(root)
        exercises_of(config["chapters"], EXERCISES)
        print(f"autograder ready: chapters {config['chapters']}, course version {config['course_version']}")
        return 0
    return run(root)
