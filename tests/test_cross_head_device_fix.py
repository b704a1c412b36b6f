"""The device diagnosis names the fix that fits the mask: a buffer for Head's fixed causal mask (4.1), ``device=``
for a cross-attention mask sized by the call's two lengths (4.2), where a buffer made in ``__init__`` cannot fit."""

from __future__ import annotations

import pytest
from wrong_solutions import CATALOGUE

import lecture_utils.checks as check
from lecture_utils.checks import CheckFailed


def _message(name: str) -> str:
    (wrong,) = [w for w in CATALOGUE if w.name == name]
    with pytest.raises(CheckFailed) as failed:
        getattr(check, wrong.check)(*wrong.build())
    return str(failed.value)


def test_a_cross_attention_mask_is_told_device_not_register_buffer():
    message = _message("cross_head_keep_everything_mask_made_on_the_cpu")
    assert "device=x.device" in message and "built in forward on every call" in message, message
    assert "register_buffer" not in message, message


def test_heads_causal_mask_is_still_offered_a_buffer():
    message = _message("head_mask_made_in_forward_on_the_cpu")
    assert "device=x.device" in message and "register_buffer('tril'" in message, message
