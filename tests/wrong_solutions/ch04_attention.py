"""Wrong solutions of chapter 04: one head of self-attention (4.1)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ._catalogue import in_notebook, wrong


def _head(scale: str = "head_size", mask: str = "tril", softmax_dim: int = -1, swap: bool = False,
          dropout: str = "module", tril_size: str = "block_size", slice_mask: bool = True, buffer: bool = True,
          aggregate: str = "value"):
    """The lecture's Head with switches for the usual mistakes."""

    class Head(nn.Module):
        def __init__(self, n_embd, head_size, block_size, dropout_p=0.0):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            size = block_size if tril_size == "block_size" else head_size
            if buffer:
                self.register_buffer("tril", torch.tril(torch.ones(size, size)))
            else:
                self.tril = torch.tril(torch.ones(size, size))  # a plain attribute: .to(device) leaves it behind
            self.dropout = nn.Dropout(dropout_p)
            self.p = dropout_p

        def forward(self, x):
            _B, T, C = x.shape
            k, q = self.key(x), self.query(x)
            wei = k @ q.transpose(-2, -1) if swap else q @ k.transpose(-2, -1)
            wei = wei * {"head_size": k.shape[-1] ** -0.5, "C": C**-0.5, "none": 1.0}[scale]
            if dropout == "before_mask":
                wei = self.dropout(wei)
            if mask == "tril":
                wei = wei.masked_fill((self.tril[:T, :T] if slice_mask else self.tril) == 0, float("-inf"))
            elif mask == "fill_zero":  # 0 is an ordinary affinity: exp(0) = 1 still gives the future weight
                wei = wei.masked_fill(self.tril[:T, :T] == 0, 0.0)
            if dropout == "before_softmax":
                wei = self.dropout(wei)
            wei = F.softmax(wei, dim=softmax_dim)
            if mask in ("after_softmax_0", "after_softmax_inf"):
                fill = 0.0 if mask == "after_softmax_0" else float("-inf")
                wei = wei.masked_fill(self.tril[:T, :T] == 0, fill)
            if dropout == "module":
                wei = self.dropout(wei)
            elif dropout == "always":
                wei = F.dropout(wei, self.p)  # training=True by default: also in eval mode
            out = wei @ {"value": self.value, "key": self.key, "query": self.query}[aggregate](x)
            return self.dropout(out) if dropout == "output" else out

    return (Head,)


@wrong("4.1", "head", "mask lets a token see the future")
def head_without_mask():
    return _head(mask="none")


@wrong("4.1", "head", "the mask has no effect: wei.masked_fill(...) returns a new tensor")
def head_masked_fill_unassigned():
    # a class of its own: the check reads the source for the dropped result, and _head's other branches assign it
    class Head(nn.Module):
        def __init__(self, n_embd, head_size, block_size, dropout=0.0):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            _B, T, _C = x.shape
            k, q = self.key(x), self.query(x)
            wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
            wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))  # the result is dropped
            wei = self.dropout(F.softmax(wei, dim=-1))
            return wei @ self.value(x)

    return (Head,)


@wrong("4.1", "head", "the masked affinities are filled with 0")
def head_mask_filled_with_zero():
    return _head(mask="fill_zero")


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


@wrong("4.1", "head", "to the masked affinities before the softmax")
def head_dropout_before_softmax():
    return _head(dropout="before_softmax")


@wrong("4.1", "head", "the weights still sum to 1 in training mode")
def head_dropout_before_mask():
    return _head(dropout="before_mask")


@wrong("4.1", "head", "dropout is applied to the head's output")
def head_dropout_on_output():
    return _head(dropout="output")


@wrong("4.1", "head", "the mask is applied after the softmax")
def head_masks_after_softmax():
    return _head(mask="after_softmax_0")


@wrong("4.1", "head", "the mask is applied after the softmax")
def head_masks_after_softmax_with_inf():
    return _head(mask="after_softmax_inf")


@wrong("4.1", "head", "aggregates the keys, not the values")
def head_aggregates_keys():
    return _head(aggregate="key")


@wrong("4.1", "head", "self.tril as a plain tensor attribute")
def head_mask_plain_attribute():
    return _head(buffer=False)


_NOTEBOOK_HEAD = """
class Head(nn.Module):
    def __init__(self, n_embd, head_size, block_size, dropout=0.0):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)
        q = self.query(x)
        wei = q @ k.transpose(-2, -1) * SCALE
        wei = wei.masked_fill(MASK == 0, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        wei = self.dropout(wei)
        return wei @ self.value(x)
"""


@wrong("4.1", "head", "global variable head_size (= 16)")
def head_scaled_by_global_head_size():
    # chapter 04 leaves head_size = 16 at the top level, from the single-head walk-through before the exercise
    source = _NOTEBOOK_HEAD.replace("SCALE", "head_size**-0.5").replace("MASK", "self.tril[:T, :T]")
    return in_notebook("04_self_attention", source, "Head")


@wrong("4.1", "head", "global variable tril (= a tensor of shape (8, 8))")
def head_uses_global_tril():
    # the walk-through's tril = torch.tril(torch.ones(T, T)) is still in the notebook
    source = _NOTEBOOK_HEAD.replace("SCALE", "k.shape[-1]**-0.5").replace("MASK", "tril[:T, :T]")
    return in_notebook("04_self_attention", source, "Head", tril=torch.tril(torch.ones(8, 8)))
