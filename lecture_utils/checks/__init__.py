"""One check per exercise, grouped by chapter (see ``_core`` for the protocol).

Notebooks do ``import lecture_utils.checks as check`` and then, after an exercise cell,
``encode, decode = check.encode_decode(encode, decode)``.

Adding a chapter NN (or an exercise to one), a checklist:

1. The reference code goes in the package module that owns its concern (``model``, ``train``, ...),
   with a test against a torch built-in where one exists (never in a check module).
   Add the chapter's row to ``lecture_utils/chapters.py`` (the manifest): notebook, check module, and per exercise
   its id, title, check name, the learner's names and the reference's ``module:name``.
2. ``solutions/NN_name.ipynb``: an exercise cell tagged ``exercise`` with the solution between
   ``# BEGIN SOLUTION`` / ``# END SOLUTION``, followed by a cell calling ``check.<name>(...)``.
3. ``lecture_utils/checks/chNN_name.py``: one function per exercise decorated with
   ``@exercise("NN.k")``, named and with parameters as the manifest's row says (title and reference come from
   the row; a mismatch is an error at import); build the learner's classes with sizes that differ
   from every global the notebook defines; call :func:`_core.fail` with a diagnosis naming the mistake.
   When the exercise makes or moves tensors, end the body with a second run (``_device.on_second_device`` or
   ``forward_on_second_device``), so code that only works on the CPU is named there. This package imports
   the module and exports the check under its name, and under the learner's name where that is different and
   unambiguous (``check.head`` and ``check.Head``), from the manifest.
4. ``tests/wrong_solutions/chNN_name.py``: at least three realistic wrong solutions per exercise, each
   ``@wrong("NN.k", "<check name>", "<part of the intended message>")`` (the catalogue loads the module the
   manifest names); its device slips go in ``device_slips.py``. ``tests/test_checks.py``
   then runs the reference, the untouched stub and every wrong solution without further edits.
5. ``python -m lecture_utils.authoring mutants --exercise NN.k``: kill every surviving mutant by improving
   the check, or list it with a one-line reason in ``lecture_utils/checks/equivalent_mutants.toml``.
6. ``python -m lecture_utils.authoring build`` regenerates ``notebooks/``; ``... authoring check`` must be
   clean (it also compares solutions/ with the manifest, as ``tests/test_chapters.py`` does); add the chapter to
   README.md's chapter table.
"""

import importlib as _importlib

from lecture_utils.chapters import CHAPTERS as _CHAPTERS
from lecture_utils.chapters import learner_aliases as _learner_aliases
from lecture_utils.checks._core import (
    MIME,
    REGISTRY,
    RESULTS,
    CheckFailed,
    progress,
)


def _export_checks() -> list[str]:
    """Import every chapter's check module (which registers its checks in :data:`REGISTRY`) and bind each check
    here under its name and its learner's alias; returns the names bound."""
    names = []
    for chapter in _CHAPTERS:
        module = _importlib.import_module(chapter.check_module)
        for ex in chapter.exercises:
            globals()[ex.check] = getattr(module, ex.check)
            names.append(ex.check)
    for alias, check_name in _learner_aliases().items():
        globals()[alias] = globals()[check_name]
        names.append(alias)
    return names


__all__ = ["MIME", "REGISTRY", "RESULTS", "CheckFailed", "progress", *_export_checks()]
