"""The lecture's averaging trick (chapter 03) and the scale of the affinities (chapter 04's note), as reference code.

``xbow[b, t] = mean(x[b, :t+1])`` three ways - for loops (exercise 3.1), one matrix product with a row-normalised
lower-triangular matrix (3.2), a masked softmax (3.3), the form self-attention uses - and
:func:`affinity_variance` (4.3): why attention scales its affinities by ``head_size**-0.5``. The checks of
``lecture_utils.checks.ch03_averaging`` and ``ch04_attention`` compare the learner's versions with these.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def average_v1(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, C)`` -> ``(B, T, C)``: ``xbow[b, t]`` is the mean of ``x[b, :t+1]`` (for loops)."""
    B, T = x.shape[:2]
    xbow = torch.zeros_like(x)
    for b in range(B):
        for t in range(T):
            xbow[b, t] = torch.mean(x[b, : t + 1], 0)
    return xbow


def average_v2(x: torch.Tensor) -> torch.Tensor:
    """The same average as one matrix product with a row-normalised lower-triangular matrix."""
    T = x.shape[1]
    wei = torch.tril(torch.ones(T, T, device=x.device, dtype=x.dtype))
    wei = wei / wei.sum(1, keepdim=True)
    return wei @ x  # (T, T) @ (B, T, C) -> (B, T, C)


def average_v3(x: torch.Tensor) -> torch.Tensor:
    """The same average with a masked softmax: the form self-attention will use."""
    T = x.shape[1]
    tril = torch.tril(torch.ones(T, T, device=x.device))
    wei = torch.zeros(T, T, device=x.device, dtype=x.dtype).masked_fill(tril == 0, float("-inf"))
    wei = F.softmax(wei, dim=-1)
    return wei @ x


def affinity_variance(head_size: int, scaled: bool, B: int = 4, T: int = 8,
                      generator: torch.Generator | None = None) -> float:
    """The variance of the affinities ``q @ k^T`` of unit-Gaussian ``q``, ``k`` of shape ``(B, T, head_size)``,
    times ``head_size**-0.5`` when ``scaled``: about ``head_size`` unscaled, about 1 scaled."""
    q = torch.randn(B, T, head_size, generator=generator)
    k = torch.randn(B, T, head_size, generator=generator)
    wei = q @ k.transpose(-2, -1)  # (B, T, T)
    if scaled:
        wei = wei * head_size**-0.5
    return wei.var().item()
