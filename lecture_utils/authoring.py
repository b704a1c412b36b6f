"""Build the learner notebooks (notebooks/) from the complete ones (solutions/).

solutions/ is the single source of truth. In a solution notebook an exercise is a code cell
tagged ``exercise`` whose first line is ``# Exercise N.M: title`` and whose solution sits between
``# BEGIN SOLUTION`` and ``# END SOLUTION`` lines. The learner copy replaces each such block by
``raise NotImplementedError("Exercise N.M: ...")`` at the block's indentation, keeping the
signature around it. Cells tagged ``solution-only`` are left out of the learner copy. Outputs
are stripped from both; markdown cells keep their attachments (the pictures of lecture_utils.figures).

The third step of an exercise's hints is its solution, collapsed: a markdown line
``<!-- solution N.M -->`` (invisible in solutions/, where the solution is in the cell below) becomes,
in the learner copy, a ``<details><summary>Solution</summary>`` block holding exercise N.M's cell
with its solution — written once, in the exercise cell, so the two never drift.

    python -m lecture_utils.authoring build   # write notebooks/ from solutions/
    python -m lecture_utils.authoring check   # exit 1 if notebooks/ is out of date (CI)

``build`` never overwrites a learner notebook that someone has edited since it was generated
(it keeps a hash of what it wrote in the notebook's metadata); ``--force`` overwrites after
saving a ``.bak`` copy.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from pathlib import Path

import nbformat

from lecture_utils import __version__

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
EXERCISE_TAG, SOLUTION_ONLY_TAG = "exercise", "solution-only"
_HEADER = re.compile(r"^#\s*Exercise\s+(\d+\.\d+)\s*[:\-\u2014]\s*(.+)$")
_SOLUTION_MARK = re.compile(r"^<!-- solution (\d+\.\d+) -->$", re.M)
META_KEY = "lecture_utils"

COURSE_REPO_URL = "https://github.com/build-gpt/build-gpt"

# The first code cell of every notebook: installs the course package, at this course's version,
# only when the notebook runs in Google Colab; a no-op everywhere else. Tests check every notebook
# starts with exactly this cell.
COLAB_CELL = f"""\
# Set-up for Google Colab: installs the course package (version {__version__}) there; does nothing elsewhere.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "lecture_utils @ git+{COURSE_REPO_URL}@v{__version__}"], check=True)"""


class AuthoringError(ValueError):
    """A solution notebook does not follow the exercise protocol."""


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """Read and validate an nbformat 4 notebook; a clear error for anything else."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuthoringError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}") from exc
    if not isinstance(raw, dict) or raw.get("nbformat") != 4:
        raise AuthoringError(f"{path} is not an nbformat 4 notebook")
    nb = nbformat.reads(text, as_version=4)  # joins multi-line sources into strings
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise AuthoringError(f"{path} is not a valid notebook: {exc.message}") from exc
    return nb


def exercise_header(source: str) -> tuple[str, str] | None:
    first = source.lstrip().splitlines()[0] if source.strip() else ""
    m = _HEADER.match(first.strip())
    return (m.group(1), m.group(2).strip()) if m else None


def strip_solution(source: str, where: str = "cell") -> str:
    """Replace every BEGIN/END SOLUTION block in ``source`` by a ``raise NotImplementedError``."""
    header = exercise_header(source)
    if header is None:
        raise AuthoringError(f"{where}: an exercise cell must start with '# Exercise N.M: title'")
    ex_id, title = header
    out, inside, found = [], False, 0
    for lineno, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise AuthoringError(f"{where} line {lineno}: nested {BEGIN}")
            inside, found = True, found + 1
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("Exercise {ex_id}: {_escape(title)} - your code here")')
        elif stripped.startswith(END):
            if not inside:
                raise AuthoringError(f"{where} line {lineno}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise AuthoringError(f"{where}: {BEGIN} is never closed by {END}")
    if not found:
        raise AuthoringError(f"{where}: exercise {ex_id} has no {BEGIN} ... {END} block")
    return "\n".join(out)


def solution_text(source: str) -> str:
    """An exercise cell's source with its BEGIN/END SOLUTION marker lines removed (the solution kept)."""
    return "\n".join(line for line in source.splitlines() if line.strip() not in (BEGIN, END))


def solution_block(source: str) -> str:
    """The collapsed solution a learner copy shows for an exercise cell's ``source``."""
    return f"<details><summary>Solution</summary>\n\n```python\n{solution_text(source)}\n```\n</details>"


def _expand_solution_marks(nb: nbformat.NotebookNode, name: str) -> None:
    solutions = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and EXERCISE_TAG in cell.metadata.get("tags", []):
            header = exercise_header(cell.source)
            if header:
                solutions[header[0]] = cell.source
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue

        def expand(m: re.Match) -> str:
            if m.group(1) not in solutions:
                raise AuthoringError(f"{name} cell {i}: <!-- solution {m.group(1)} --> names no exercise of this notebook")
            return solution_block(solutions[m.group(1)])

        cell.source = _SOLUTION_MARK.sub(expand, cell.source)


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Outputs and execution counts removed; a plain python3 kernelspec."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    return nb


def learner_copy(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The learner's version of a solution notebook (see the module docstring)."""
    nb = clean(solution)
    _expand_solution_marks(nb, name)  # before the solutions are stripped from the exercise cells
    cells = []
    for i, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        if SOLUTION_ONLY_TAG in tags:
            continue
        if EXERCISE_TAG in tags:
            if cell.cell_type != "code":
                raise AuthoringError(f"{name} cell {i}: only code cells can be exercises")
            cell.source = strip_solution(cell.source, f"{name} cell {i}")
        elif BEGIN in cell.source:
            raise AuthoringError(f"{name} cell {i}: has {BEGIN} but is not tagged '{EXERCISE_TAG}'")
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop(META_KEY, None)
    nb.metadata[META_KEY] = {"generated_from": f"solutions/{name}", "content_sha256": content_hash(nb)}
    return nb


def content_hash(nb: nbformat.NotebookNode) -> str:
    """Hash of the cells' types and sources (what a learner edits)."""
    h = hashlib.sha256()
    for cell in nb.cells:
        h.update(cell.cell_type.encode())
        h.update(b"\0")
        h.update(cell.source.encode())
        h.update(b"\1")
    return h.hexdigest()


def exercises_in(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """``[(id, title), ...]`` of the exercise cells of a notebook, in order."""
    found = []
    for cell in nb.cells:
        if EXERCISE_TAG in cell.metadata.get("tags", []):
            header = exercise_header(cell.source)
            if header:
                found.append(header)
    return found


def dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb, version=4) + ("" if nbformat.writes(nb, version=4).endswith("\n") else "\n")


def build(root: str | Path = ".", force: bool = False, check_only: bool = False) -> list[str]:
    """Regenerate ``root/notebooks`` from ``root/solutions``.

    Returns the problems found (check mode: out-of-date or missing files; build mode: notebooks
    skipped because a learner edited them). Solution notebooks are rewritten in clean form too
    (outputs stripped) in build mode.
    """
    root = Path(root)
    sol_dir, nb_dir = root / "solutions", root / "notebooks"
    if not sol_dir.is_dir():
        raise AuthoringError(f"no solutions/ folder under {root.resolve()}")
    problems: list[str] = []
    names = sorted(p.name for p in sol_dir.glob("*.ipynb"))
    for name in names:
        solution = read_notebook(sol_dir / name)
        clean_solution = clean(solution)
        learner = learner_copy(clean_solution, name)
        target = nb_dir / name
        want_solution, want_learner = dumps(clean_solution), dumps(learner)
        if check_only:
            if (sol_dir / name).read_text(encoding="utf-8") != want_solution:
                problems.append(f"solutions/{name}: not clean (outputs or metadata); run the build")
            if not target.exists():
                problems.append(f"notebooks/{name}: missing; run: python -m lecture_utils.authoring build")
            elif target.read_text(encoding="utf-8") != want_learner:
                problems.append(f"notebooks/{name}: out of date with solutions/{name}; run: python -m lecture_utils.authoring build")
            continue
        if target.exists() and target.read_text(encoding="utf-8") != want_learner:
            current = read_notebook(target)
            recorded = current.metadata.get(META_KEY, {}).get("content_sha256")
            if recorded != content_hash(current) and not force:
                problems.append(f"notebooks/{name}: edited since it was generated - left as it is (use --force to overwrite; a .bak copy is kept)")
                continue
            if recorded != content_hash(current):
                target.with_suffix(".ipynb.bak").write_text(target.read_text(encoding="utf-8"), encoding="utf-8")
        (sol_dir / name).write_text(want_solution, encoding="utf-8")
        nb_dir.mkdir(exist_ok=True)
        target.write_text(want_learner, encoding="utf-8")
    if check_only:
        extra = sorted({p.name for p in nb_dir.glob("*.ipynb")} - set(names)) if nb_dir.is_dir() else []
        problems += [f"notebooks/{x}: has no source in solutions/" for x in extra]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lecture_utils.authoring",
                                     description="Build notebooks/ (learner copies) from solutions/.")
    parser.add_argument("command", choices=["build", "check"], help="build: write notebooks/; check: fail if out of date")
    parser.add_argument("--root", default=".", help="the course folder (default: current)")
    parser.add_argument("--force", action="store_true", help="overwrite learner notebooks even if edited (keeps .bak)")
    args = parser.parse_args(argv)
    try:
        problems = build(args.root, force=args.force, check_only=args.command == "check")
    except AuthoringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(p, file=sys.stderr)
    if args.command == "check":
        if problems:
            return 1
        print("notebooks/ is in sync with solutions/")
        return 0
    print("built notebooks/ from solutions/" + (f" ({len(problems)} skipped)" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
