"""What every chapter's wrong solutions share: :class:`WrongSolution`, :data:`CATALOGUE`, the :func:`wrong`
decorator that registers an entry, and two small helpers for models that return ``(logits, loss)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch.nn import functional as F


@dataclass(frozen=True)
class WrongSolution:
    exercise: str  # "4.1"
    check: str  # the check's name in lecture_utils.checks
    name: str  # what the mistake is, as an identifier
    build: Callable[[], tuple]  # the learner's objects, in the order of the check's parameters
    expect: str  # a distinctive part of the diagnosis
    needs_corpus: bool = False  # the check itself reads the corpus (exercise 1.1)


CATALOGUE: list[WrongSolution] = []


def wrong(exercise: str, check: str, expect: str, needs_corpus: bool = False):
    """Register the decorated ``build`` function in :data:`CATALOGUE`."""

    def register(build: Callable[[], tuple]) -> Callable[[], tuple]:
        CATALOGUE.append(WrongSolution(exercise, check, build.__name__, build, expect, needs_corpus))
        return build

    return register


def _flat_loss(logits, targets):
    B, T, C = logits.shape
    logits = logits.view(B * T, C)
    return logits, F.cross_entropy(logits, targets.view(B * T))


def _finish(logits, targets):
    return (logits, None) if targets is None else _flat_loss(logits, targets)
