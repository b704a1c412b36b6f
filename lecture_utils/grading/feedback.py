"""What a learner reads, and the points an instructor gives: per-submission feedback (Markdown and a
self-contained HTML page), the instructor's points table, and what the sandbox blocked.

- :func:`load_points`: ``points.toml`` (``"1.1" = 2``, ``default = 1``; exercises not named get
  ``default``, 1 unless set) into ``{exercise id: points}``.
- :func:`load_partial`: whether the same table turns partial credit on (``partial_credit = true``, or a
  list of exercise ids).
- :func:`earned`, :func:`score`: the points a learner earned: an exercise's points when it passed, 0 when
  it did not - unless partial credit is on and its check declares parts
  (:mod:`lecture_utils.checks._parts`): a failed exercise then earns points x parts passed / parts, and
  every failed part is named with its diagnosis. An exercise that declares no parts is all or nothing.
- :func:`exercise_feedback`, :func:`to_markdown`, :func:`to_html`: each exercise's status, the
  check's diagnosis, a hint on what to do next, the time the notebook took.
- :func:`blocked`: what the sandbox stopped or confined (a write outside its folder, a connection, a
  program or shell command, a fork past the process limit, memory), read from the errors the notebook's
  cells raised and from what the kernel's audit hook recorded it trying
  (:func:`lecture_utils.grading.capture.watch_attempts`) - so an attempt whose error the notebook caught
  itself is named too. A shell command (``!ls``, ``subprocess``) is not refused: it runs inside the
  sandbox, under the same limits, and is named as an attempt.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from lecture_utils.status import FAILED, MISSING, NOT_ATTEMPTED, NOT_VERIFIED, PASSED

NEXT_STEP = {
    PASSED: "Nothing to do: this exercise is done.",
    FAILED: "Read the diagnosis, fix the exercise cell, run it and its check cell again until the check prints its "
            "one line, then hand the notebook in again. Stuck? Open the hints above the exercise, Hint 1 first.",
    NOT_ATTEMPTED: "The exercise still raises NotImplementedError: replace that line with your code (the hints "
                   "above the exercise start from the idea and the shapes).",
    NOT_VERIFIED: "The grader could not re-run this exercise on its own. Keep the exercise in its own cell, starting "
                  "with its '# Exercise N.M' line, define everything it needs inside that cell, and run the whole "
                  "notebook from the top (Restart & Run All) before handing it in.",
    MISSING: "No notebook handed in contains this exercise: hand in the chapter's notebook.",
}

# what a sandbox refusal looks like in a cell's error (the runner reports "cell N raised NAME: message")
_BLOCKED = (
    # outside its private /tmp the sandbox shows a read-only system, or nothing at all (a missing file)
    (re.compile(r"Read-only file system|PermissionError|Permission denied|Operation not permitted|"
                r"No such file or directory: '/(?!tmp/)"), "a file access outside the notebook's private folder"),
    (re.compile(r"Network is unreachable|ConnectionRefusedError|gaierror|Temporary failure in name resolution|"
                r"Name or service not known|No route to host"), "a network connection"),
    (re.compile(r"BlockingIOError"), "more processes than the limit"),
    # what the kernel's audit hook saw it try, caught by the notebook or not (worker.TRIED, capture.watch_attempts)
    (re.compile(r"^tried to write outside its folder"), "a file access outside the notebook's private folder"),
    (re.compile(r"^tried to connect beyond this machine"), "a network connection"),
    (re.compile(r"^tried to start a process, a program or a shell command"),
     "a new process, program or shell command (run confined: no network, no files outside, the same limits)"),
    (re.compile(r"raised MemoryError"), "more memory than the limit"),
)


def load_points(path: str | Path | None, exercises: list[str]) -> dict[str, float]:
    """Points per exercise from an instructor's TOML table (equal, 1 each, without one)."""
    table = _read_table(path)
    points = {k: v for k, v in table.get("points", table).items() if k != PARTIAL_KEY}  # top level or [points]
    default = points.get("default", 1)
    out = {}
    for ex in exercises:
        value = points.get(ex, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"points for exercise {ex} in {path} must be a number >= 0, not {value!r}")
        out[ex] = float(value)
    unknown = sorted(k for k in points if k not in ("default", *exercises))
    if unknown:
        raise ValueError(f"the points table {path} names exercises this grading does not have: {', '.join(unknown)}")
    return out


PARTIAL_KEY = "partial_credit"


def _read_table(path: str | Path | None) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    if path is None:
        return {}
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read the points table {path}: {exc}") from None


def load_partial(path: str | Path | None) -> bool | list[str]:
    """``partial_credit`` of the points table (top level or in ``[points]``): ``true`` for every exercise whose
    check declares parts, a list of exercise ids for those only; False without it."""
    table = _read_table(path)
    value = table.get(PARTIAL_KEY, table.get("points", {}).get(PARTIAL_KEY, False)) if isinstance(table, dict) else False
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(set(value))
    raise ValueError(f"{PARTIAL_KEY} in {path} must be true, false or a list of exercise ids, not {value!r}")


def partial_for(partial: bool | list[str], exercise: str) -> bool:
    return partial is True or (isinstance(partial, list) and exercise in partial)


def earned(status: str, parts: list[dict] | None, top: float, partial: bool) -> float:
    """The points one exercise earns: ``top`` when it passed; with ``partial`` on, a failed exercise with parts
    earns ``top`` x parts passed / parts; otherwise 0."""
    if status == PASSED:
        return top
    if partial and status == FAILED and parts:
        return round(top * sum(bool(p.get("passed")) for p in parts) / len(parts), 4)
    return 0.0


def score(statuses: dict[str, str], points: dict[str, float], parts: dict[str, list[dict]] | None = None,
          partial: bool | list[str] = False) -> float:
    """The points earned over every exercise of ``points`` (see :func:`earned`)."""
    parts = parts or {}
    return round(sum(earned(statuses.get(ex, MISSING), parts.get(ex), p, partial_for(partial, ex))
                     for ex, p in points.items()), 4)


def blocked(problems: list[str]) -> list[str]:
    """What the sandbox stopped, in words, from a notebook's problems (each kind once)."""
    found = []
    for pattern, what in _BLOCKED:
        if any(pattern.search(p) for p in problems) and what not in found:
            found.append(what)
    return found


def parts_lines(parts: list[dict] | None, message: str = "") -> list[str]:
    """'Parts: 4 of 6 right.' and one line per part, a wrong one with its diagnosis (or a pointer to the
    exercise's own diagnosis, ``message``, when it is the same); [] without parts."""
    if not parts:
        return []
    right = sum(bool(p.get("passed")) for p in parts)
    lines = [f"Parts: {right} of {len(parts)} right."]
    for p in parts:
        why = "" if p.get("passed") else (" (the diagnosis above)" if p.get("diagnosis") == message
                                          else f" - {p.get('diagnosis', '')}")
        lines.append(f"- {'right' if p.get('passed') else 'wrong'}: {p['name']}{why}")
    return lines


def exercise_feedback(status: str, message: str, parts: list[dict] | None = None) -> str:
    """The text of one exercise for the learner: the diagnosis, its parts (with partial credit), then what to do
    next."""
    out = []
    if message and status != PASSED:
        out.append(f"Diagnosis: {message}")
    elif message:
        out.append(message)
    out += parts_lines(parts, message)
    out.append(f"Next: {NEXT_STEP.get(status, '')}")
    return "\n".join(out)


def _rows(learner: dict, points: dict[str, float] | None):
    """(notebook, seconds, problems, [(id, title, status, message, points, max, parts)]) per notebook. The points
    earned are the learner entry's ``earned`` (partial credit included) when it has them."""
    given = learner.get("earned") or {}
    for nb in learner["notebooks"]:
        rows = []
        for e in nb["exercises"]:
            top = (points or {}).get(e["id"])
            got = None if top is None else given.get(e["id"], top if e["status"] == PASSED else 0.0)
            rows.append((e["id"], e["title"], e["status"], e["message"], got, top, e.get("parts") or []))
        yield Path(nb["path"]).name, nb["seconds"], nb["problems"], rows


def to_markdown(learner: dict, points: dict[str, float] | None = None) -> str:
    """``learner``: one entry of grades.json's ``learners`` (``learner``, ``problems``, ``notebooks``)."""
    lines = [f"# Feedback for {learner['learner']}", ""]
    if points:
        got = sum(r[4] or 0 for _, _, _, rows in _rows(learner, points) for r in rows)
        lines += [f"**Score: {got:g} / {sum(points.values()):g}**", ""]
    for p in learner.get("problems", []):
        lines.append(f"- note: {p}")
    for name, seconds, problems, rows in _rows(learner, points):
        lines += ["", f"## {name} (graded in {seconds:.0f} s)", ""]
        for p in problems:
            lines.append(f"- note: {p}")
        for ex, title, status, message, got, top, parts in rows:
            pts = f" ({got:g}/{top:g} points)" if top is not None else ""
            lines += ["", f"### Exercise {ex}: {title} - {status}{pts}", ""]
            quoted = [f"> {ln}" if ln else ">" for ln in exercise_feedback(status, message, parts).splitlines()]
            lines += [q for k, ln in enumerate(quoted) for q in ((">", ln) if k else (ln,))]  # one paragraph each
    if learner.get("blocked"):
        lines += ["", "## Stopped by the grader's sandbox", ""] + [f"- {b}" for b in learner["blocked"]]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip() + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;max-width:52em;margin:2em auto;padding:0 1em;color:#222}"
        "h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc}"
        ".ex{border-left:6px solid #999;padding:.3em .8em;margin:.8em 0;background:#f7f7f7}"
        ".passed{border-color:#2a7d2e}.failed{border-color:#b3261e}.not-attempted{border-color:#8a6d00}"
        ".not-verified{border-color:#555}pre{white-space:pre-wrap;margin:.3em 0}.st{font-weight:bold}")


def to_html(learner: dict, points: dict[str, float] | None = None) -> str:
    """A self-contained page (no script, no external resource); every value escaped."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>Feedback for {e(learner['learner'])}</title><style>{_CSS}</style></head><body>",
           f"<h1>Feedback for {e(learner['learner'])}</h1>"]
    if points:
        got = sum(r[4] or 0 for _, _, _, rows in _rows(learner, points) for r in rows)
        out.append(f"<p class=\"st\">Score: {got:g} / {sum(points.values()):g}</p>")
    notes = list(learner.get("problems", []))
    if notes:
        out.append("<ul>" + "".join(f"<li>{e(p)}</li>" for p in notes) + "</ul>")
    for name, seconds, problems, rows in _rows(learner, points):
        out.append(f"<h2>{e(name)} <small>(graded in {seconds:.0f} s)</small></h2>")
        if problems:
            out.append("<ul>" + "".join(f"<li>{e(p)}</li>" for p in problems) + "</ul>")
        for ex, title, status, message, got, top, parts in rows:
            pts = f" &middot; {got:g}/{top:g} points" if top is not None else ""
            css = status.replace(" ", "-")
            out.append(f'<div class="ex {e(css)}"><div><span class="st">Exercise {e(ex)}: {e(title)}</span> '
                       f"&mdash; {e(status)}{pts}</div><pre>{e(exercise_feedback(status, message, parts))}</pre></div>")
    if learner.get("blocked"):
        out.append("<h2>Stopped by the grader's sandbox</h2><ul>"
                   + "".join(f"<li>{e(b)}</li>" for b in learner["blocked"]) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def safe_name(learner: str) -> str:
    """A file name for a learner's report (the learner's name is a folder name, but be strict)."""
    name = re.sub(r"[^A-Za-z0-9._@+-]", "_", learner).lstrip(".")
    return name or "learner"
