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
    python -m lecture_utils.authoring mutants [--exercise 4.1]   # mutation testing of the checks
                                              # (lecture_utils.mutation; exit 1 on an unexplained survivor)
    python -m lecture_utils.authoring colab   # rewrite the Colab link + set-up cells of solutions/, then build

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

from lecture_utils.chapters import BEGIN, CHAPTERS, END, EXERCISE_TAG, header_of

SOLUTION_ONLY_TAG = "solution-only"
_SOLUTION_MARK = re.compile(r"^<!-- solution (\d+\.\d+) -->$", re.M)
META_KEY = "lecture_utils"

# The course's repository: the one place its address is written. The "Open in Colab" links (README and
# every notebook's first cell) and the Colab set-up cell are built from it by ``colab_url``/``colab_cell``
# and written into the notebooks by ``python -m lecture_utils.authoring colab``.
COURSE_REPO_URL = "https://github.com/build-gpt/build-gpt"
COURSE_REF = "main"  # the branch both the links and the Colab install take, so notebook and package match
COLAB_TAG = "colab"  # metadata tag of the two generated cells: the link and the set-up cell
COLAB_INSTALL = f"lecture_utils @ git+{COURSE_REPO_URL}@{COURSE_REF}"


def colab_url(name: str) -> str:
    """The address that opens the learner notebook ``notebooks/<name>`` in Google Colab."""
    owner_repo = COURSE_REPO_URL.removeprefix("https://github.com/").strip("/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{COURSE_REF}/notebooks/{name}"


def colab_link_cell(name: str) -> str:
    """The markdown of every notebook's first cell: a plain link (no badge image: the course loads
    nothing from the network when a notebook is opened)."""
    return (f"[Open in Colab]({colab_url(name)}) · in Colab, run the set-up cell below first: it installs the "
            "course package and only what Colab lacks.")


def colab_cell(install: str = COLAB_INSTALL) -> str:
    """The first code cell of every notebook: in Google Colab, ``pip install`` the course (``install``, a
    pip requirement) and say what that added and whether it changed any package Colab ships (it does
    not when Colab's versions are within the course's ranges: pip keeps a package that satisfies them);
    a no-op everywhere else."""
    return f"""\
# Set-up for Google Colab (generated: python -m lecture_utils.authoring colab). Installs the course package
# and only what Colab lacks, keeping the versions Colab ships; does nothing outside Colab.
import sys


def colab_setup():
    import re
    import subprocess
    from importlib import metadata

    def installed():
        return {{re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
                for d in metadata.distributions() if d.metadata["Name"]}}

    before = installed()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "{install}"], check=True)
    after = installed()
    added = [f"{{name}} {{v}}" for name, v in sorted(after.items()) if name not in before]
    changed = [f"{{name}} {{before[name]}} -> {{v}}" for name, v in sorted(after.items()) if before.get(name, v) != v]
    print("installed:", ", ".join(added) or "nothing new")
    print("upgraded or downgraded:", ", ".join(changed) or "nothing (every package already there was kept)")
    if changed:
        print("restart the session (Runtime > Restart session), then run the notebook from the top")


if "google.colab" in sys.modules:
    colab_setup()"""


COLAB_CELL = colab_cell()


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
    """``(id, title)`` of a cell whose first line is ``# Exercise N.M: title`` (the manifest's header pattern,
    :data:`lecture_utils.chapters.EXERCISE_HEADER`, with a title), else None."""
    header = header_of(source)
    return header if header is not None and header[1] else None


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

        def expand(m: re.Match, i: int = i) -> str:
            if m.group(1) not in solutions:
                raise AuthoringError(f"{name} cell {i}: <!-- solution {m.group(1)} --> names no exercise of this notebook")
            return solution_block(solutions[m.group(1)])

        cell.source = _SOLUTION_MARK.sub(expand, cell.source)


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


# The notebook metadata JupyterLab 4 writes when it opens a notebook and its kernel starts: the kernelspec of
# ipykernel's default "python3" kernel and the language_info that kernel reports. A notebook that carries
# anything else is marked modified the moment it opens (tests/test_browser.py checks it does not). The version is
# the kernel's Python: a kernel of another Python version updates that one field, and JupyterLab then marks the
# notebook modified. It is the course's reference Python (environment.yml's 3.11, the CI machine's 3.11.7).
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                 "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                 "pygments_lexer": "ipython3", "version": "3.11.7"}


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Outputs and execution counts removed; the kernelspec and language_info JupyterLab 4 writes."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata["kernelspec"] = copy.deepcopy(KERNELSPEC)
    nb.metadata["language_info"] = copy.deepcopy(LANGUAGE_INFO)
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


def manifest_problems(sol_dir: Path) -> list[str]:
    """Where the notebooks of ``sol_dir`` and the chapter manifest (:mod:`lecture_utils.chapters`) disagree: a
    notebook with exercises that the manifest does not list, or a listed notebook whose exercise ids differ from
    its row's. A listed notebook missing from ``sol_dir`` is not reported (a folder may hold a few chapters)."""
    listed = {c.notebook: c for c in CHAPTERS}
    problems = []
    for path in sorted(sol_dir.glob("*.ipynb")):
        found = [ex_id for ex_id, _ in exercises_in(read_notebook(path))]
        chapter = listed.get(path.stem)
        if chapter is None:
            if found:
                problems.append(f"solutions/{path.name}: has exercises but is not in lecture_utils/chapters.py")
            continue
        want = [e.id for e in chapter.exercises]
        if found != want:
            problems.append(f"solutions/{path.name}: exercises {', '.join(found) or 'none'}, but "
                            f"lecture_utils/chapters.py lists {', '.join(want)}")
    return problems


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
        problems += manifest_problems(sol_dir)
    return problems


def _is_colab_cell(cell) -> bool:
    """A generated Colab cell: tagged, or (notebooks written before the tag) the set-up cell's first line."""
    return COLAB_TAG in cell.metadata.get("tags", []) or (
        cell.cell_type == "code" and cell.source.startswith("# Set-up for Google Colab"))


def with_colab_cells(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """``nb`` starting with the "Open in Colab" link cell and then the Colab set-up cell, both written
    from ``COURSE_REPO_URL``; every other cell kept as it is, in its order (old Colab cells replaced)."""
    nb = copy.deepcopy(nb)
    link = nbformat.v4.new_markdown_cell(colab_link_cell(name), metadata={"tags": [COLAB_TAG]})
    setup = nbformat.v4.new_code_cell(COLAB_CELL, metadata={"tags": [COLAB_TAG]})
    if nb.nbformat_minor >= 5:  # fixed ids (required since 4.5), so that a second run changes nothing
        link.id, setup.id = "colab-link", "colab-setup"
    else:
        link.pop("id", None)
        setup.pop("id", None)
    rest = [c for c in nb.cells if not _is_colab_cell(c)]
    # the set-up cell goes first among the code cells; markdown before it (the title) stays before it
    first_code = next((i for i, c in enumerate(rest) if c.cell_type == "code"), len(rest))
    nb.cells = [link, *rest[:first_code], setup, *rest[first_code:]]
    return nb


def write_colab_cells(root: str | Path = ".") -> list[str]:
    """Rewrite the Colab cells of every ``root/solutions`` notebook (re-runnable: a second run changes
    nothing). Returns the names of the notebooks it changed; ``build`` then regenerates notebooks/."""
    changed = []
    for path in sorted((Path(root) / "solutions").glob("*.ipynb")):
        nb = read_notebook(path)
        new = with_colab_cells(nb, path.name)
        if dumps(clean(new)) != path.read_text(encoding="utf-8"):
            path.write_text(dumps(clean(new)), encoding="utf-8")
            changed.append(path.name)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lecture_utils.authoring",
                                     description="Build notebooks/ (learner copies) from solutions/.")
    parser.add_argument("command", choices=["build", "check", "colab", "mutants"],
                        help="build: write notebooks/; check: fail if out of date; colab: rewrite every solution "
                             "notebook's Colab link and set-up cell from COURSE_REPO_URL, then build; mutants: "
                             "mutation testing of the checks on the solutions' code")
    parser.add_argument("--root", default=".", help="the course folder (default: current)")
    parser.add_argument("--force", action="store_true", help="overwrite learner notebooks even if edited (keeps .bak)")
    parser.add_argument("--exercise", help="mutants: only this exercise, e.g. 4.1")
    parser.add_argument("--every", type=int, default=1, help="mutants: run every N-th mutant only (a sample)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants: worker processes (default 2)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="mutants: seconds a check may take per mutant")
    parser.add_argument("--all", action="store_true", help="mutants: list every mutant's outcome, not only survivors")
    args = parser.parse_args(argv)
    if args.command == "mutants":
        from lecture_utils import mutation  # torch and the checks: only for this command

        return mutation.main(args.root, args.exercise, every=args.every, jobs=args.jobs,
                             time_limit=args.time_limit, show="all" if args.all else "survivors")
    if args.command == "colab":
        try:
            changed = write_colab_cells(args.root)
        except AuthoringError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"Colab cells rewritten in {len(changed)} solution notebook(s)" + (f": {', '.join(changed)}" if changed else ""))
        args.command = "build"
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
