"""Grades in the CSV layouts learning platforms import, from the same class run as grades.csv
(``python -m lecture_utils grade SUBMISSIONS/ --class --lms canvas,moodle [--points points.toml]``).

- **Canvas** (Grades > Import): the gradebook's own export layout - ``Student``, ``ID``, ``SIS User
  ID``, ``SIS Login ID``, ``Section``, then one column per assignment, headed by the assignment's
  name (Canvas matches an existing assignment by that header, or offers to create it). Canvas
  matches a row to a student by ``ID``, ``SIS User ID`` or ``SIS Login ID``: the grader knows only
  the submission's name, written as ``Student`` and ``SIS Login ID`` (name submission folders by
  the learners' Canvas login); ``ID`` is left empty. A second ``Points Possible`` row gives the
  assignment's maximum, as Canvas's own export does.
- **Moodle** (Grades > Import > CSV file): one identifier column and one grade column, mapped in
  the import form ("Identify user by" / "Map to", and the grade item). The identifier is ``Email
  address`` when every submission is named by an e-mail address, else ``Username``; the grade
  column is named after the assignment, and a ``Feedback`` column holds one line per learner
  (Moodle can map it to the grade item's feedback).

The score is the points of the exercises that passed, plus, with partial credit on, the share of a failed
exercise's points its parts earned (:func:`lecture_utils.grading.feedback.earned`); Moodle's feedback line
names each such exercise's wrong parts.
"""

from __future__ import annotations

import csv
import io

FORMATS = ("canvas", "moodle")


def parse_formats(text: str | None) -> list[str]:
    if not text:
        return []
    wanted = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise ValueError(f"--lms: unknown format {', '.join(unknown)} (choose from {', '.join(FORMATS)})")
    return wanted


def _fmt(x: float) -> str:
    return f"{x:g}"


def canvas_csv(rows: list[dict], assignment: str, possible: float) -> str:
    """``rows``: ``{"learner", "score", "summary"}`` per learner."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment])
    w.writerow(["    Points Possible", "", "", "", "", _fmt(possible)])
    for r in rows:
        w.writerow([r["learner"], "", "", r["learner"], "", _fmt(r["score"])])
    return buf.getvalue()


def moodle_csv(rows: list[dict], assignment: str) -> str:
    by_email = bool(rows) and all("@" in r["learner"] for r in rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["Email address" if by_email else "Username", assignment, "Feedback"])
    for r in rows:
        w.writerow([r["learner"], _fmt(r["score"]), r["summary"]])
    return buf.getvalue()


def write(formats: list[str], rows: list[dict], assignment: str, possible: float, out) -> list:
    """Write each format's file into ``out``; the paths written."""
    from lecture_utils.files import atomic_write_text

    written = []
    for f in formats:
        path = out / f"{f}.csv"
        text = canvas_csv(rows, assignment, possible) if f == "canvas" else moodle_csv(rows, assignment)
        atomic_write_text(path, text)
        written.append(path)
    return written
