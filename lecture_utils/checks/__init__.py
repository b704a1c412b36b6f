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
