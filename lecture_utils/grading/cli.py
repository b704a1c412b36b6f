"""The ``grade`` subcommand: ``python -m lecture_utils grade PATHS [--json FILE] [--sandbox] [--class] ...``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lecture_utils.grading import sandbox as sb
from lecture_utils.grading.cells import chapter_of, find_notebooks
from lecture_utils.grading.notebooks import grade, helpers_problem
from lecture_utils.grading.results import all_passed, report, to_json

UNSANDBOXED_NOTE = ("note: graded WITHOUT the sandbox: the notebooks' code ran with your permissions (your files, "
                    "the network). For work that is not your own, grade with --sandbox (or a class with --class).")


def limits_from_args(args):
    """The sandbox limits the command line asked for."""
    wall = int(args.notebook_timeout)
    return sb.Limits(cpu_seconds=wall, memory=int(args.memory * 2**30))


def main(args) -> int:
    """The ``grade`` subcommand (see ``lecture_utils.__main__``)."""
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
