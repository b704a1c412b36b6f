"""lecture_utils: the helper package of the Build GPT course.

The notebooks import reference modules, checks and widgets from here. Submodules:

- :mod:`lecture_utils.chapters` - the chapter manifest: every chapter, exercise, check and reference, in one table
- :mod:`lecture_utils.device`  - cuda / mps / cpu choice, seeding, threads
- :mod:`lecture_utils.data`    - the shipped corpus, ``CharTokenizer``, split, ``get_batch``
- :mod:`lecture_utils.model`   - the lecture's modules with the lecture's names, and its ``GPT``
- :mod:`lecture_utils.modern`  - chapter 12's pieces (GELU, RMSNorm, SwiGLU, RoPE, weight tying), ``ModernGPT``, ``build_gpt``
- :mod:`lecture_utils.generation` - chapter 13's sampling rules and KV cache
- :mod:`lecture_utils.speed`   - fast CPU paths (dropout masks, oneDNN linear, fused attention mask), applied to a built model
- :mod:`lecture_utils.config`  - ``TrainConfig``, the learning-rate schedule, the presets
- :mod:`lecture_utils.train`   - ``estimate_loss`` and the training loop
- :mod:`lecture_utils.optimizers`, :mod:`lecture_utils.checkpoints`, :mod:`lecture_utils.distributed` - its machinery
- :mod:`lecture_utils.viz`     - attention heatmaps and widgets (their browser plumbing: :mod:`lecture_utils.widgets`)
- :mod:`lecture_utils.checks`  - one check per exercise
- :mod:`lecture_utils.grading` - the headless grader
- :mod:`lecture_utils.authoring` - builds notebooks/ from solutions/; :mod:`lecture_utils.doctor` - the set-up check

How the modules depend on each other (layers, imports only downhill): ``docs/architecture.md``.

``SMOKE`` is read once, here, from the environment variable ``LECTURE_UTILS_SMOKE``. When it is
set, every long loop in the course shrinks (see :func:`smoke`) so the whole course runs under the
test suite in minutes on a 2-core CPU.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

from lecture_utils.version import __version__

SMOKE: bool = os.environ.get("LECTURE_UTILS_SMOKE", "").strip().lower() not in ("", "0", "false", "no")


def smoke(full, small):
    """Return ``small`` in the smoke setting (``LECTURE_UTILS_SMOKE=1``), else ``full``.

    Notebooks write iteration counts as ``smoke(5000, 20)`` so a learner gets the lecture's numbers
    and the test suite gets a quick run of the same code.
    """
    return small if SMOKE else full


def progress(notebook: str | None = None, folder: str = "."):
    """Show the status of every exercise checked so far in this kernel, or, in a kernel that has checked none (a
    fresh notebook), as the notebooks saved in ``folder`` show it. The same as ``lecture_utils.checks.progress``."""
    from lecture_utils.checks import progress as _progress

    return _progress(notebook, folder)


def __getattr__(name: str):
    """Import a submodule on first use (PEP 562): after a plain ``import lecture_utils``, ``lecture_utils.checks``
    works as ``import lecture_utils.checks`` would, while the import itself stays light (no torch) for the grader's
    status module and the command line."""
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SMOKE", "smoke", "progress", "__version__"]
