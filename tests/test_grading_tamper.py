"""Exercise cells that change a check in place instead of replacing it, each run through the real
re-check process: a wrong train/val split (it shuffles) plus one way of making the check pass it.

Each attack would grade the wrong exercise "passed" if unnoticed (the defaults one aside: it shows
that defaults are watched; the two on partial credit's parts would raise another exercise's fraction); the re-checker's fingerprint follows every function of lecture_utils
reachable from its modules and the exercise registry - code objects, closure cells, defaults,
``__wrapped__`` - so each is failed as tampering, and an honest exercise still passes."""

import pytest

from lecture_utils.grading.cells import Plan
from lecture_utils.grading.notebooks import _recheck

pytestmark = pytest.mark.slow

SHUFFLED = ("# Exercise 1.2: train/val split\nimport torch\nimport lecture_utils.checks as check\n"
            "from lecture_utils.checks import _core, _helpers\n\n"
            "def split_data(data, train_frac=0.9):\n    n = int(train_frac * len(data))\n"
            "    data = data[torch.randperm(len(data))]\n    return data[:n], data[n:]\n\n"
            "def _fake(split_data, device='cpu'):\n    return {'verified': 'forged', 'returns': split_data}\n\n")
HONEST = ("# Exercise 1.2: train/val split\ndef split_data(data, train_frac=0.9):\n"
          "    n = int(train_frac * len(data))\n    return data[:n], data[n:]\n")

ATTACKS = {
    # the check's body, at the bottom of its decorators' wrappers, gets another function's code object
    "code object": "f = check.split_data\nwhile hasattr(f, '__wrapped__'):\n    f = f.__wrapped__\nf.__code__ = _fake.__code__",
    # the exercise decorator's wrapper keeps the body in a closure cell: swap the cell's content
    "closure cell": "f = check.split_data\ncells = dict(zip(f.__code__.co_freevars, f.__closure__))\n"
                    "cells['body'].cell_contents = _fake",
    # the registry entry the grader calls gets a check that records a pass itself
    "registry entry": "def _forged(*args, **kwargs):\n    _core._record('1.2', 'train/val split', 'passed', 'forged')\n"
                      "    return args[0]\n_core.REGISTRY['1.2'].check = _forged",
    # a helper's defaults (a tolerance) changed in place
    "defaults": "_helpers.same.__defaults__ = (1e9, 1e9)",
    # partial credit: the parts registry shortened, or a part's probe emptied in place
    "parts registry": "from lecture_utils.checks import _parts\n_parts.PARTS['4.1'] = _parts.PARTS['4.1'][:1]",
    "part probe": "from lecture_utils.checks import ch04_attention\nf = ch04_attention._head_scale\n"
                  "while hasattr(f, '__wrapped__'):\n    f = f.__wrapped__\n"
                  "f.__code__ = (lambda Head, device='cpu': None).__code__",
}


def recheck_cell(source: str) -> tuple[str, str]:
    plans = {"1.2": Plan("1.2", [("1.2", source)], ())}
    captures = {"1.2": {"context": {}, "data": None}}
    return _recheck(["1.2"], plans, captures, sandbox=None, limits=None, threads=1, smoke=True)["1.2"]


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_changing_a_check_in_place_is_tampering(attack):
    status, message = recheck_cell(SHUFFLED + ATTACKS[attack])
    assert status == "failed", (status, message)
    assert "the exercise's code replaced" in message and "forged" not in message, message


def test_an_honest_exercise_still_passes_under_the_deeper_fingerprint():
    assert recheck_cell(HONEST)[0] == "passed"
