"""What the grader reports: one notebook's result (:class:`NotebookResult`, :class:`ExerciseResult`), the totals,
the text table and the ``--json`` document (schema ``lecture_utils.grade/1``, described in :mod:`lecture_utils.grading`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from lecture_utils.status import FAILED, NOT_VERIFIED, PASSED, STATUSES
from lecture_utils.version import __version__

SCHEMA = "lecture_utils.grade/1"
NOT_COURSE = "no exercises of this course found (a notebook from another course?)"


@dataclass
class ExerciseResult:
    id: str
    title: str
    status: str
    message: str = ""
    parts: list[dict] = field(default_factory=list)  # with partial credit on, a failed check's parts (checks._parts)


@dataclass
class NotebookResult:
    path: str
    chapter: int | None
    status: str = "graded"
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    exercises: list[ExerciseResult] = field(default_factory=list)



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
    return {"schema": SCHEMA, "course_version": __version__, "notebooks": [asdict(r) for r in results],
            "totals": totals(results), "ok": all_passed(results)}
