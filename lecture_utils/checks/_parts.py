"""Named parts of a check, for partial credit in the grader.

A check (:func:`lecture_utils.checks._core.exercise`) stops at the first mistake and shows the learner one
diagnosis; that stays so in the notebook. For the grader, a check module may also declare its exercise's
*parts*: independent probes, each evaluated on its own with its own fresh module and inputs, so that a
solution wrong in one way fails only the part that tests that way and keeps every other part::

    @part("4.1", "causal mask: the future does not leak")
    def _head_causal(Head, device="cpu"):
        ...  # build, probe, fail(hint) when wrong

A probe takes the learner's objects (the check's parameters) and ``device``, and calls
:func:`~lecture_utils.checks._core.fail` with a diagnosis when its part is wrong, exactly as a check body
does. :func:`run_parts` runs every part of an exercise (each under the time limit, with the global random
state forked and seeded afresh, and with the check's own notebook-global diagnosis), never stopping at the
first failure. The grader calls it only for an exercise whose check failed, and only when the instructor
turned partial credit on; :func:`fraction` is the share of the points such an exercise earns.

A failed check never earns full points: when every declared part passes but the check failed anyway (a
mistake no part isolates, such as a slip only the whole check's comparison shows), :func:`run_parts` adds
the failed part :data:`REST` with the check's own diagnosis. An exercise that declares no parts is all or
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lecture_utils.checks._core import TIME_LIMIT, CheckTimeout, _learner_frame, _Mistake, fresh_seed, time_limit

REST = "the rest of the check (no named part isolates this mistake)"
PART_TIME_LIMIT = TIME_LIMIT / 2  # seconds per part; a check that timed out gets no parts run (see run_parts)


@dataclass(frozen=True)
class Part:
    exercise: str
    name: str
    probe: Callable


PARTS: dict[str, tuple[Part, ...]] = {}  # exercise id -> its parts, in declaration order


def part(exercise_id: str, name: str):
    """Decorator: declare ``name`` a part of exercise ``exercise_id``, tested by the decorated probe."""

    def register(probe: Callable) -> Callable:
        if any(p.name == name for p in PARTS.get(exercise_id, ())):
            raise ValueError(f"exercise {exercise_id} declares the part {name!r} twice")
        PARTS[exercise_id] = (*PARTS.get(exercise_id, ()), Part(exercise_id, name, probe))
        return probe

    return register


def _probe_once(probe: Callable, objects: tuple, device) -> None:
    from lecture_utils.checks._helpers import blame_notebook_globals

    cuda = []
    if torch.device(device).type == "cuda":
        cuda = [torch.device(device).index or 0]
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(fresh_seed())
        with time_limit(PART_TIME_LIMIT):
            blame_notebook_globals(probe)(*objects, device=device)


def run_parts(exercise_id: str, objects: tuple, device="cpu", check_hint: str | None = None) -> list[dict]:
    """Every part of ``exercise_id`` on the learner's ``objects``: ``[{"name", "passed", "diagnosis"}]``
    (``diagnosis`` is "" for a part that passed). ``check_hint``: the whole check's diagnosis, when it failed;
    a time-out there is charged to every part (none is run again), and when every part passes the failed
    :data:`REST` part carries it. [] for an exercise that declares no parts."""
    parts = PARTS.get(exercise_id, ())
    if not parts:
        return []
    if check_hint is not None and check_hint.startswith("your code took longer than"):
        return [{"name": p.name, "passed": False, "diagnosis": check_hint} for p in parts]
    out = []
    for p in parts:
        diagnosis = ""
        try:
            _probe_once(p.probe, objects, device)
        except _Mistake as m:
            diagnosis = str(m) or "wrong"
        except NotImplementedError:
            diagnosis = "not attempted: the exercise still raises NotImplementedError"
        except CheckTimeout:
            diagnosis = f"your code took longer than {PART_TIME_LIMIT:.0f} s on this part's small inputs"
        except Exception as exc:  # the learner's code crashed in this part
            diagnosis = f"your code raised {type(exc).__name__}: {exc}{_learner_frame(exc)}"
        out.append({"name": p.name, "passed": not diagnosis, "diagnosis": diagnosis})
    if check_hint is not None and all(r["passed"] for r in out):
        out.append({"name": REST, "passed": False, "diagnosis": check_hint})
    return out


def fraction(parts: list[dict]) -> float:
    """The share of an exercise's points its parts earn: parts passed / parts."""
    return sum(bool(p.get("passed")) for p in parts) / len(parts) if parts else 0.0


def declared(exercise_id: str) -> list[str]:
    """The names of an exercise's parts, in order ([] when it declares none)."""
    return [p.name for p in PARTS.get(exercise_id, ())]
