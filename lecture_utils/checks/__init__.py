"""One check per exercise, grouped by chapter (see ``_core`` for the protocol).

Notebooks do ``import lecture_utils.checks as check`` and then, after an exercise cell,
``encode, decode = check.encode_decode(encode, decode)``.

Adding a chapter NN (or an exercise to one), a checklist:

1. The reference code goes in the package module that owns its concern (``model``, ``train``, ...),
   with a test against a torch built-in where one exists.
2. ``solutions/NN_name.ipynb``: an exercise cell tagged ``exercise`` with the solution between
   ``# BEGIN SOLUTION`` / ``# END SOLUTION``, followed by a cell calling ``check.<name>(...)``.
3. ``lecture_utils/checks/chNN_name.py``: one function per exercise decorated with
   ``@exercise("NN.k", title, reference=lambda: <the reference>)`` (the registry is the one place that
   names the reference; tests read it from there); build the learner's classes with sizes that differ
   from every global the notebook defines; call :func:`_core.fail` with a diagnosis naming the mistake.
   When the exercise makes or moves tensors, end the body with a second run (``_device.on_second_device`` or
   ``forward_on_second_device``), so code that only works on the CPU is named there. Import the check here and
   export it under its name.
4. ``tests/wrong_solutions/chNN_name.py``: at least three realistic wrong solutions per exercise, each
   ``@wrong("NN.k", "<check name>", "<part of the intended message>")``; import the module in
   ``tests/wrong_solutions/__init__.py``; its device slips go in ``device_slips.py``. ``tests/test_checks.py``
   then runs the reference, the untouched stub and every wrong solution without further edits.
5. ``python -m lecture_utils.authoring mutants --exercise NN.k``: kill every surviving mutant by improving
   the check, or list it with a one-line reason in ``lecture_utils/checks/equivalent_mutants.toml``.
6. ``python -m lecture_utils.authoring build`` regenerates ``notebooks/``; ``... authoring check`` must be
   clean; add the chapter to README.md's chapter table.
"""

from lecture_utils.checks._core import (  # noqa: F401
    MIME,
    REGISTRY,
    RESULTS,
    CheckFailed,
    progress,
)
from lecture_utils.checks.ch01_data import encode_decode, get_batch, split_data  # noqa: F401
from lecture_utils.checks.ch02_bigram import bigram_forward, estimate_loss, generate, train_loop  # noqa: F401
from lecture_utils.checks.ch03_averaging import (  # noqa: F401
    average_v1,
    average_v2,
    average_v3,
    positional_model,
)
from lecture_utils.checks.ch04_attention import affinity_variance, cross_head, head  # noqa: F401
from lecture_utils.checks.ch05_multi_head import batched_multi_head, multi_head  # noqa: F401
from lecture_utils.checks.ch06_feed_forward import feed_forward  # noqa: F401
from lecture_utils.checks.ch07_residual_layernorm import block, layer_norm  # noqa: F401
from lecture_utils.checks.ch08_gpt import gpt  # noqa: F401
from lecture_utils.checks.ch09_batched_heads import heads_to_batched, median_seconds  # noqa: F401
from lecture_utils.checks.ch10_addition import addition_accuracy, encode_problem, make_batch  # noqa: F401
from lecture_utils.checks.ch11_pretrain import copy_for_finetuning, to_vocabulary  # noqa: F401
from lecture_utils.checks.ch12_modern import (  # noqa: F401
    gelu,
    lr_schedule,
    rms_norm,
    rope,
    swiglu,
    tie_weights,
)
from lecture_utils.checks.ch13_generation import (  # noqa: F401
    cached_attention,
    cached_generate,
    temperature,
    top_k,
    top_p,
)
from lecture_utils.checks.ch14_tokenizer import bpe_decode, bpe_encode, count_pairs, merge, train_bpe  # noqa: F401
