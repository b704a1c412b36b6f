"""The grader: every exercise's status for a folder of course notebooks, or for a whole class.

    python -m lecture_utils grade notebooks/ [--json FILE] [--timeout SECONDS] [--chapter N] [--sandbox]
    python -m lecture_utils grade SUBMISSIONS/ --class [--jobs N] [--out DIR]

The modules, from the bottom up: :mod:`.results` (what a grade says: the result classes, the table, the JSON),
:mod:`.cells` (what is read from a notebook without running it: its chapter, exercise cells, the names they bind
and read), :mod:`.sandbox`, :mod:`.capture`, :mod:`.worker` and :mod:`.recheck` (the processes below), then
:mod:`.notebooks` (grading one notebook, or a folder), :mod:`.classroom` and :mod:`.gradescope` (a class, a
Gradescope autograder) and :mod:`.cli` (the ``grade`` subcommand). This file only names the public ones.

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

With partial credit on (``grade_notebook(partial=True)``, from the points table's ``partial_credit``), the
re-checker also runs every part a failed exercise's check declares (:mod:`lecture_utils.checks._parts`) and
reports each, right or wrong with its diagnosis. The runner's first cell adds an audit hook to the kernel
(:func:`lecture_utils.grading.capture.watch_attempts`) that records programs started, connections and writes
outside the notebook's folders, so an attempt is reported even when the notebook caught its error.

Statuses: ``passed``, ``failed`` (with the check's message), ``not attempted`` (the stub still
raises ``NotImplementedError``), ``not verified`` (the exercise cell is missing, did not run, the
kernel died, or the re-check could not finish).

JSON schema (``--json``): ``{"schema": "lecture_utils.grade/1", "course_version": str,
"notebooks": [{"path": str, "chapter": int|null, "status": "graded"|"error", "problems": [str],
"seconds": float, "exercises": [{"id": str, "title": str, "status": str, "message": str,
"parts": [{"name": str, "passed": bool, "diagnosis": str}]}]}],
"totals": {status: count}, "ok": bool}``.
"""

from lecture_utils.grading.cells import chapter_of, defined_names, find_notebooks, free_names
from lecture_utils.grading.cli import UNSANDBOXED_NOTE, limits_from_args, main
from lecture_utils.grading.notebooks import OUTPUT_CAP, grade, grade_notebook, helpers_problem
from lecture_utils.grading.results import (
    NOT_COURSE,
    SCHEMA,
    ExerciseResult,
    NotebookResult,
    all_passed,
    is_stray,
    report,
    to_json,
    totals,
)

__all__ = [
    "NOT_COURSE", "OUTPUT_CAP", "SCHEMA", "UNSANDBOXED_NOTE", "ExerciseResult", "NotebookResult", "all_passed",
    "chapter_of", "defined_names", "find_notebooks", "free_names", "grade", "grade_notebook", "helpers_problem",
    "is_stray", "limits_from_args", "main", "report", "to_json", "totals",
]
