"""Wrong solutions of chapter 04: one head of self-attention (4.1)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ._catalogue import wrong


def _head(scale: str = "head_size", mask: str = "tril", softmax_dim: int = -1, swap: bool = False,
          dropout: str = "module", tril_size: str = "block_size", slice_mask: bool = True):
    """The lecture's Head with switches for the usual mistakes."""

    class Head(nn.Module):
        def __init__(self, n_embd, head_size, block_size, dropout_p=0.0):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            size = block_size if tril_size == "block_size" else head_size
            self.register_buffer("tril", torch.tril(torch.ones(size, size)))
            self.dropout = nn.Dropout(dropout_p)
            self.p = dropout_p

        def forward(self, x):
            _B, T, C = x.shape
            k, q = self.key(x), self.query(x)
            wei = k @ q.transpose(-2, -1) if swap else q @ k.transpose(-2, -1)
            wei = wei * {"head_size": k.shape[-1] ** -0.5, "C": C**-0.5, "none": 1.0}[scale]
            if mask == "tril":
                wei = wei.masked_fill((self.tril[:T, :T] if slice_mask else self.tril) == 0, float("-inf"))
            wei = F.softmax(wei, dim=softmax_dim)
            if dropout == "module":
                wei = self.dropout(wei)
            elif dropout == "always":
                wei = F.dropout(wei, self.p)  # training=True by default: also in eval mode
            return wei @ self.value(x)

    return (Head,)


@wrong("4.1", "head", "mask lets a token see the future")
def head_without_mask():
    return _head(mask="none")


@wrong("4.1", "head", "scaled by C (n_embd) instead of head_size")
def head_scaled_by_c():
    return _head(scale="C")


@wrong("4.1", "head", "not scaled")
def head_not_scaled():
    return _head(scale="none")


@wrong("4.1", "head", "do not sum to 1")
def head_softmax_wrong_dim():
    return _head(softmax_dim=1)


@wrong("4.1", "head", "affinities are transposed")
def head_keys_times_queries():
    return _head(swap=True)


@wrong("4.1", "head", "in eval mode the output changed")
def head_dropout_in_eval():
    return _head(dropout="always")


@wrong("4.1", "head", "output never changed")
def head_without_dropout():
    return _head(dropout="none")


@wrong("4.1", "head", "self.tril[:T, :T]")
def head_mask_not_sliced():
    return _head(slice_mask=False)


@wrong("4.1", "head", "self.tril[:T, :T]")
def head_mask_sized_by_head_size():
    return _head(tril_size="head_size")
