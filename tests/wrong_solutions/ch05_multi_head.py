"""Wrong solutions of chapter 05: multi-head attention (5.1, 5.2)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lecture_utils import model as M

from ._catalogue import wrong


def _multi_head(cat_dim: int = -1, proj: str = "used", heads: str = "separate", dropout: bool = True,
                dropout_before_proj: bool = False):
    """The lecture's MultiHeadAttention (with the reference Head) and switches for the usual mistakes."""

    class MultiHeadAttention(nn.Module):
        def __init__(self, n_embd, num_heads, head_size, block_size, dropout_p=0.0):
            super().__init__()
            if heads == "separate":
                self.heads = nn.ModuleList([M.Head(n_embd, head_size, block_size, dropout_p) for _ in range(num_heads)])
            elif heads == "shared":
                self.heads = nn.ModuleList([M.Head(n_embd, head_size, block_size, dropout_p)] * num_heads)
            else:
                self.heads = [M.Head(n_embd, head_size, block_size, dropout_p) for _ in range(num_heads)]
            if proj != "missing":
                self.proj = nn.Linear(num_heads * head_size, n_embd)
            self.dropout = nn.Dropout(dropout_p if dropout else 0.0)

        def forward(self, x):
            out = torch.cat([h(x) for h in self.heads], dim=cat_dim)
            if dropout_before_proj:
                return self.proj(self.dropout(out))
            if proj == "used":
                out = self.proj(out)
            return self.dropout(out)

    return (MultiHeadAttention,)


@wrong("5.1", "multi_head", "along the last (channel) dimension")
def heads_concatenated_over_time():
    return _multi_head(cat_dim=1)


@wrong("5.1", "multi_head", "missing proj.weight")
def multi_head_without_proj():
    return _multi_head(proj="missing")


@wrong("5.1", "multi_head", "not projected")
def multi_head_proj_unused():
    return _multi_head(proj="unused")


@wrong("5.1", "multi_head", "one and the same module")
def multi_head_one_shared_head():
    return _multi_head(heads="shared")


@wrong("5.1", "multi_head", "plain Python list")
def multi_head_plain_list():
    return _multi_head(heads="list")


@wrong("5.1", "multi_head", "add dropout after the projection")
def multi_head_without_dropout():
    return _multi_head(dropout=False)


def _batched(transpose_in: bool = True, transpose_out: bool = True, scale: str = "head_size", order: str = "qkv",
             causal: bool = True, dropout: bool = True, manual: bool = False, heads_first: bool = False,
             attn_dropout: bool = True, resid_dropout: bool = True):
    """A learner's CausalSelfAttention with switches for the usual mistakes."""

    class CausalSelfAttention(nn.Module):
        def __init__(self, n_embd, n_head, block_size, dropout_p=0.0):
            super().__init__()
            self.n_head = n_head
            self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
            self.proj = nn.Linear(n_embd, n_embd)
            self.p = dropout_p if dropout else 0.0
            self.resid_dropout = nn.Dropout(self.p if resid_dropout else 0.0)
            self.p = self.p if attn_dropout else 0.0
            self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))

        def forward(self, x):
            B, T, C = x.shape
            hs = C // self.n_head
            parts = dict(zip(order, self.qkv(x).split(C, dim=2)))
            if heads_first:  # (B, nh, T, hs) straight from (B, T, C): no transpose needed, it seems
                q, k, v = (parts[name].reshape(B, self.n_head, T, hs) for name in "qkv")
            else:
                q, k, v = (parts[name].view(B, T, self.n_head, hs) for name in "qkv")
            if transpose_in and not heads_first:
                q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            s = {"head_size": hs**-0.5, "C": C**-0.5}[scale]
            if manual:
                wei = q @ k.transpose(-2, -1) * s
                wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
                out = F.dropout(F.softmax(wei, dim=-1), self.p, training=self.training) @ v
            else:
                out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0,
                                                     is_causal=causal, scale=s)
            if transpose_in and transpose_out:
                out = out.transpose(1, 2)
            return self.resid_dropout(self.proj(out.reshape(B, T, C)))

    return (CausalSelfAttention,)


@wrong("5.2", "batched_multi_head", "attention ran over the heads instead of over time")
def batched_view_without_transpose():
    return _batched(transpose_in=False)


@wrong("5.2", "batched_multi_head", "the shapes inside attention do not line up")
def batched_view_without_transpose_manual_mask():
    return _batched(transpose_in=False, manual=True)


@wrong("5.2", "batched_multi_head", "outputs are scrambled")
def batched_reshape_without_transpose():
    return _batched(transpose_out=False)


@wrong("5.2", "batched_multi_head", "scaled by C (n_embd) instead of head_size")
def batched_scaled_by_c():
    return _batched(scale="C")


@wrong("5.2", "batched_multi_head", "wrong slices of qkv")
def batched_split_order():
    return _batched(order="kqv")


@wrong("5.2", "batched_multi_head", "mask lets a token see the future")
def batched_not_causal():
    return _batched(causal=False)


@wrong("5.2", "batched_multi_head", "output never changed")
def batched_without_dropout():
    return _batched(dropout=False)


@wrong("5.1", "multi_head", "dropout is applied before the projection")
def multi_head_dropout_before_proj():
    return _multi_head(dropout_before_proj=True)


@wrong("5.2", "batched_multi_head", "viewed as (B, n_head, T, head_size) directly")
def batched_view_heads_first():
    return _batched(heads_first=True, manual=True)


@wrong("5.2", "batched_multi_head", "viewed as (B, n_head, T, head_size) directly")
def batched_view_heads_first_sdpa():
    return _batched(heads_first=True, transpose_out=False)


@wrong("5.2", "batched_multi_head", "the attention weights are not dropped")
def batched_without_attention_dropout():
    return _batched(attn_dropout=False)


@wrong("5.2", "batched_multi_head", "no dropout after the projection")
def batched_without_resid_dropout():
    return _batched(resid_dropout=False)
