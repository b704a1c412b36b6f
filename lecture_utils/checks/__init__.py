"""One check per exercise, grouped by chapter (see ``_core`` for the protocol).

Notebooks do ``import lecture_utils.checks as check`` and then, after an exercise cell,
``encode, decode = check.encode_decode(encode, decode)``.
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
from lecture_utils.checks.ch04_attention import head  # noqa: F401
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
