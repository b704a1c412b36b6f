"""A catalogue of realistic wrong solutions, one or more per exercise, with the diagnosis each must get.

Every entry is a :class:`WrongSolution`: ``build()`` returns the learner's objects in the order of
the check's parameters (``check(*build())``), and the check must raise ``CheckFailed`` whose message
contains ``expect``. tests/test_checks.py runs them all; a grader test can reuse :data:`CATALOGUE`.

The wrong solutions are written the way a learner would write them in the notebook (the same class
and function names, the lecture's code with one mistake), mostly as subclasses of the reference
modules that override only the method the exercise is about. One module per chapter, named as the chapter
manifest (``lecture_utils/chapters.py``) names its check module (``ch04_attention.py`` here and in
``lecture_utils/checks/``); importing this package loads them all, in chapter order. ``device_slips.py`` holds the slips that only a second device shows
(a tensor made on the CPU in code that runs on a GPU), every chapter's in one place.
"""

import importlib

from lecture_utils.chapters import CHAPTERS

from ._catalogue import CATALOGUE, WrongSolution, wrong  # noqa: F401

for _chapter in CHAPTERS:  # importing a chapter's module registers its wrong solutions, in chapter order
    importlib.import_module(f"{__name__}.{_chapter.checks}")
importlib.import_module(f"{__name__}.device_slips")
