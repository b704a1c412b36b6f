"""A catalogue of realistic wrong solutions, one or more per exercise, with the diagnosis each must get.

Every entry is a :class:`WrongSolution`: ``build()`` returns the learner's objects in the order of
the check's parameters (``check(*build())``), and the check must raise ``CheckFailed`` whose message
contains ``expect``. tests/test_checks.py runs them all; a grader test can reuse :data:`CATALOGUE`.

The wrong solutions are written the way a learner would write them in the notebook (the same class
and function names, the lecture's code with one mistake), mostly as subclasses of the reference
modules that override only the method the exercise is about. One module per chapter, named like the
chapter's checks (``lecture_utils/checks/ch04_attention.py`` -> ``ch04_attention.py`` here); importing
this package registers them all, in chapter order. ``device_slips.py`` holds the slips that only a second device shows
(a tensor made on the CPU in code that runs on a GPU), every chapter's in one place.
"""

from . import (  # noqa: F401  (importing a chapter registers its wrong solutions)
    ch01_data,
    ch02_bigram,
    ch03_averaging,
    ch04_attention,
    ch05_multi_head,
    ch06_feed_forward,
    ch07_residual_layernorm,
    ch08_gpt,
    ch09_batched_heads,
    ch10_addition,
    ch11_pretrain,
    ch12_modern,
    ch13_generation,
    ch14_tokenizer,
    device_slips,
)
from ._catalogue import CATALOGUE, WrongSolution, wrong  # noqa: F401
