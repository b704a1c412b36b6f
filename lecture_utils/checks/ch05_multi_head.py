"""Checks for chapter 05 (multi-head attention): 5.1 a list of heads, concatenated and projected;
5.2 (the lecture's EX1) the same with the heads as a batch dimension."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from lecture_utils import model as ref
from lecture_utils.checks._core import exercise, expect, fail, fresh_seed, passed, rng
from lecture_utils.checks._device import forward_on_second_device
from lecture_utils.checks._helpers import (
    attention_variant,
    blame_notebook_globals,
    build,
    call,
    check_dropout,
    copy_weights,
    explain_mismatch,
    isolated_rng,
    randomize_,
    same,
    tensor_output,
)
from lecture_utils.checks._parts import part
from lecture_utils.checks.ch04_attention import NOT_SCALED, SCALED_BY_C

N_EMBD, N_HEAD, BLOCK_SIZE = 16, 4, 8
HEAD_SIZE = N_EMBD // N_HEAD
SHAPES = ((3, BLOCK_SIZE), (2, 1), (2, 5), (2, N_HEAD))

# ---------------------------------------------------------------------------------------------
# 5.1
# ---------------------------------------------------------------------------------------------

CAT_DIM = ("concatenate the heads' outputs along the last (channel) dimension: "
           "torch.cat([h(x) for h in self.heads], dim=-1) gives (B, T, num_heads * head_size) for self.proj")


def _multi_head_variants(reference: ref.MultiHeadAttention, x: torch.Tensor):
    """(hint, compute) pairs for :func:`diagnose`."""
    heads_out = [h(x) for h in reference.heads]
    return [
        (("the concatenated heads are not projected: return self.proj(out) (then dropout), the projection back into "
         "the residual pathway"), lambda: torch.cat(heads_out, dim=-1)),
        ("the heads are concatenated in reverse order: keep the order of self.heads",
         lambda: reference.proj(torch.cat(heads_out[::-1], dim=-1))),
    ]


def _expect_heads(heads) -> None:
    """Fail on a plain list of heads, one head repeated, or the wrong number of them (in an nn.ModuleList)."""
    if isinstance(heads, (list, tuple)):
        fail("self.heads is a plain Python list, which hides the heads' parameters from PyTorch (no training, no "
             ".to(device)): wrap it, self.heads = nn.ModuleList([...])")
    if isinstance(heads, nn.ModuleList):
        if len({id(h) for h in heads}) < len(heads):
            fail("the heads are one and the same module ([Head(...)] * num_heads repeats one object), so every head "
                 "computes the same thing: build a new Head for each, nn.ModuleList([Head(...) for _ in range(num_heads)])")
        expect(len(heads) == N_HEAD, f"self.heads should hold num_heads = {N_HEAD} heads, found {len(heads)}")


@exercise("5.1")
@blame_notebook_globals
@isolated_rng
def multi_head(MultiHeadAttention, device="cpu"):
    """``MultiHeadAttention(n_embd, num_heads, head_size, block_size, dropout)``: heads in an ``nn.ModuleList``,
    outputs concatenated on the last dimension, then ``proj`` and dropout."""
    g = rng(fresh_seed())
    signature = "n_embd, num_heads, head_size, block_size, dropout"
    args = (N_EMBD, N_HEAD, HEAD_SIZE, BLOCK_SIZE, 0.0)
    model = build(MultiHeadAttention, args, signature).to(device)
    _expect_heads(getattr(model, "heads", None))
    reference = randomize_(ref.MultiHeadAttention(*args), g).to(device)
    copy_weights(reference, model, "MultiHeadAttention",
                 lambda n, got, want: f"{n} has shape {got}, expected {want}: each head is "
                                      f"Head(n_embd, head_size, ...), and proj = nn.Linear(num_heads * head_size, n_embd)")
    model.eval()
    reference.eval()
    with torch.no_grad():
        for B, T in SHAPES:
            x = torch.randn(B, T, N_EMBD, generator=g).to(device)
            out = call(model, x, hints=(("cannot be multiplied", CAT_DIM),))
            tensor_output(out, "MultiHeadAttention", (B, T, N_EMBD), "back to n_embd features after self.proj")
            if not same(out, reference(x)):
                explain_mismatch(out, _multi_head_variants(reference, x), model, x, g,
                                 "the output differs from the reference: out = torch.cat([h(x) for h in self.heads], dim=-1), "
                                 "then self.dropout(self.proj(out))")

    dropped = build(MultiHeadAttention, args[:-1] + (0.5,), signature).to(device)
    copy_weights(reference, dropped, "MultiHeadAttention")
    for h in getattr(dropped, "heads", []):
        if isinstance(h, ref.Head):
            h.dropout.p = 0.0  # so that only the module's own dropout can make outputs vary
    x = torch.randn(4, BLOCK_SIZE, N_EMBD, generator=g).to(device)
    check_dropout(dropped, x, reference(x),
                  "with dropout=0.5 in training mode the output never changed: add dropout after the projection, "
                  "self.dropout = nn.Dropout(dropout) and return self.dropout(self.proj(out))")
    dropped.train()
    with torch.no_grad():
        zeros = (dropped(x) == 0).float().mean().item()
    dropped.eval()
    if zeros < 0.2:  # dropout after proj zeroes about half of the outputs; before it, proj's bias fills them in
        fail("dropout is applied before the projection: it belongs after it, return self.dropout(self.proj(out)), "
             "so that it drops entries of what goes back into the residual pathway")
    forward_on_second_device(dropped, torch.randn(2, BLOCK_SIZE - 3, N_EMBD, generator=g), device=device,
                             what="MultiHeadAttention")
    return passed(f"{N_HEAD} separate heads concatenated on the channel dimension, projected, dropout in training; "
                  f"matches the reference", MultiHeadAttention)


# parts of 5.1 for partial credit (lecture_utils.checks._parts): each builds its own module and tests one property

_MHA_SIGNATURE = "n_embd, num_heads, head_size, block_size, dropout"


def _mha_pair(MultiHeadAttention, g: torch.Generator, device, dropout: float = 0.0):
    """The learner's module and a randomised reference with the same weights, in eval mode."""
    args = (N_EMBD, N_HEAD, HEAD_SIZE, BLOCK_SIZE, dropout)
    model = build(MultiHeadAttention, args, _MHA_SIGNATURE).to(device)
    reference = randomize_(ref.MultiHeadAttention(*args[:-1], 0.0), g).to(device)
    copy_weights(reference, model, "MultiHeadAttention",
                 lambda n, got, want: f"{n} has shape {got}, expected {want}: each head is Head(n_embd, head_size, "
                                      f"...), and proj = nn.Linear(num_heads * head_size, n_embd)")
    return model.eval(), reference.eval()


@part("5.1", "num_heads separate heads in an nn.ModuleList")
def _mha_heads(MultiHeadAttention, device="cpu"):
    model = build(MultiHeadAttention, (N_EMBD, N_HEAD, HEAD_SIZE, BLOCK_SIZE, 0.0), _MHA_SIGNATURE)
    heads = getattr(model, "heads", None)
    _expect_heads(heads)
    expect(isinstance(heads, nn.ModuleList), "keep the heads in self.heads = nn.ModuleList([Head(...) for _ in "
                                             "range(num_heads)])")


@part("5.1", "output shape (B, T, n_embd) for T = 1..block_size")
@torch.no_grad()
def _mha_shape(MultiHeadAttention, device="cpu"):
    g = rng(fresh_seed())
    model, _ = _mha_pair(MultiHeadAttention, g, device)
    for B, T in SHAPES:
        out = call(model, torch.randn(B, T, N_EMBD, generator=g).to(device), hints=(("cannot be multiplied", CAT_DIM),))
        tensor_output(out, "MultiHeadAttention", (B, T, N_EMBD), "back to n_embd features after self.proj")


@part("5.1", "the heads concatenated in order on the channel dimension, then projected: matches the reference")
@torch.no_grad()
def _mha_values(MultiHeadAttention, device="cpu"):
    g = rng(fresh_seed())
    model, reference = _mha_pair(MultiHeadAttention, g, device)
    for B, T in SHAPES:
        x = torch.randn(B, T, N_EMBD, generator=g).to(device)
        out = call(model, x, hints=(("cannot be multiplied", CAT_DIM),))
        if not same(out, reference(x)):
            explain_mismatch(out, _multi_head_variants(reference, x), model, x, g,
                             "the output differs from the reference: out = torch.cat([h(x) for h in self.heads], "
                             "dim=-1), then self.dropout(self.proj(out))")


@part("5.1", "dropout after the projection in training mode, none in eval mode")
def _mha_dropout(MultiHeadAttention, device="cpu"):
    g = rng(fresh_seed())
    plain, reference = _mha_pair(MultiHeadAttention, g, device)
    dropped = build(MultiHeadAttention, (N_EMBD, N_HEAD, HEAD_SIZE, BLOCK_SIZE, 0.5), _MHA_SIGNATURE).to(device)
    copy_weights(reference, dropped, "MultiHeadAttention")
    for h in getattr(dropped, "heads", []):
        if isinstance(h, ref.Head):
            h.dropout.p = 0.0  # so that only the module's own dropout can make outputs vary
    x = torch.randn(4, BLOCK_SIZE, N_EMBD, generator=g).to(device)
    with torch.no_grad():
        want = plain(x)  # the learner's own module without dropout: this part judges dropout alone
    check_dropout(dropped, x, want, "with dropout=0.5 in training mode the output never changed: add dropout after "
                  "the projection, self.dropout = nn.Dropout(dropout) and return self.dropout(self.proj(out))")
    dropped.train()
    with torch.no_grad():
        zeros = (dropped(x) == 0).float().mean().item()
    if zeros < 0.2:
        fail("dropout is applied before the projection: it belongs after it, return self.dropout(self.proj(out)), "
             "so that it drops entries of what goes back into the residual pathway")


@part("5.1", "runs on another device (no tensor left on the CPU)")
def _mha_device(MultiHeadAttention, device="cpu"):
    g = rng(fresh_seed())
    model = build(MultiHeadAttention, (N_EMBD, N_HEAD, HEAD_SIZE, BLOCK_SIZE, 0.5), _MHA_SIGNATURE).to(device)
    forward_on_second_device(model, torch.randn(2, BLOCK_SIZE - 3, N_EMBD, generator=g), device=device,
                             what="MultiHeadAttention")


# ---------------------------------------------------------------------------------------------
# 5.2 (EX1)
# ---------------------------------------------------------------------------------------------

NO_TRANSPOSE_IN = ("attention ran over the heads instead of over time: after .view(B, T, n_head, head_size) the "
                   "tensor is (B, T, nh, hs); .transpose(1, 2) makes it (B, nh, T, hs), so each head attends over the "
                   "T positions")
NO_TRANSPOSE_OUT = ("the heads' outputs are scrambled: out is (B, nh, T, hs); bring each token's heads back side by "
                    "side with out.transpose(1, 2).reshape(B, T, C) - a reshape or view without the transpose mixes "
                    "time and heads")
SPLIT_ORDER = ("q, k and v come from the wrong slices of qkv: its layout is [q | k | v] (see heads_to_batched), so "
               "q, k, v = self.qkv(x).split(n_embd, dim=2)")
VIEW_HEADS_FIRST = ("q, k and v were viewed as (B, n_head, T, head_size) directly: that cuts the (B, T, C) tensor "
                    "into pieces that mix time and channels; view it as (B, T, n_head, head_size), then "
                    ".transpose(1, 2) gives (B, n_head, T, head_size)")
SHAPES_INSIDE = ("the shapes inside attention do not line up: q, k and v should be (B, n_head, T, head_size) - "
                 ".view(B, T, n_head, head_size).transpose(1, 2) - and the mask T x T")


def _batched_variant(reference: ref.CausalSelfAttention, x: torch.Tensor, *, order=(0, 1, 2), scale=None,
                     transpose_in: bool = True, transpose_out: bool = True, heads_first: bool = False) -> torch.Tensor:
    """The reference's computation with one of the usual mistakes switched on (``heads_first``: viewed as
    (B, nh, T, hs) directly)."""
    B, T, C = x.shape
    nh, hs = reference.n_head, C // reference.n_head
    parts = reference.qkv(x).split(C, dim=2)
    if heads_first:
        q, k, v = (parts[i].reshape(B, nh, T, hs) for i in order)
    else:
        q, k, v = (parts[i].view(B, T, nh, hs) for i in order)
    if transpose_in and not heads_first:
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    out = attention_variant(q, k, v, hs**-0.5 if scale is None else scale)
    if transpose_in and transpose_out:
        out = out.transpose(1, 2)
    return reference.proj(out.reshape(B, T, C))


def _batched_variants(reference: ref.CausalSelfAttention, x: torch.Tensor):
    """(hint, compute) pairs for :func:`diagnose`."""
    C = x.shape[-1]
    return [
        (NO_TRANSPOSE_IN, lambda: _batched_variant(reference, x, transpose_in=False)),
        (VIEW_HEADS_FIRST, lambda: _batched_variant(reference, x, heads_first=True)),
        (VIEW_HEADS_FIRST, lambda: _batched_variant(reference, x, heads_first=True, transpose_out=False)),
        (NO_TRANSPOSE_OUT, lambda: _batched_variant(reference, x, transpose_out=False)),
        (SCALED_BY_C, lambda: _batched_variant(reference, x, scale=C**-0.5)),
        (NOT_SCALED, lambda: _batched_variant(reference, x, scale=1.0)),
        *[(SPLIT_ORDER, lambda order=order: _batched_variant(reference, x, order=order))
          for order in itertools.permutations(range(3)) if order != (0, 1, 2)],
    ]


@exercise("5.2")
@blame_notebook_globals
@isolated_rng
def batched_multi_head(CausalSelfAttention, device="cpu"):
    """``CausalSelfAttention(n_embd, n_head, block_size, dropout)`` with ``qkv`` ([q | k | v]) and ``proj``: the
    same outputs as ``MultiHeadAttention`` once ``heads_to_batched`` has copied its weights."""
    g = rng(fresh_seed())
    signature = "n_embd, n_head, block_size, dropout"
    model = build(CausalSelfAttention, (N_EMBD, N_HEAD, BLOCK_SIZE, 0.0), signature).to(device)
    heads = randomize_(ref.MultiHeadAttention(N_EMBD, N_HEAD, HEAD_SIZE, BLOCK_SIZE, 0.0), g).to(device)
    reference = ref.heads_to_batched(heads, ref.CausalSelfAttention(N_EMBD, N_HEAD, BLOCK_SIZE, 0.0).to(device))
    copy_weights(reference, model, "CausalSelfAttention",
                 lambda n, got, want: f"{n} has shape {got}, expected {want}: qkv = nn.Linear(n_embd, 3 * n_embd, "
                                      f"bias=False) and proj = nn.Linear(n_embd, n_embd)")
    model.eval()
    reference.eval()
    hints = (("must match the size of tensor", SHAPES_INSIDE),
             ("view size is not compatible", ("after transpose the tensor is not contiguous in memory: use "
                                             ".reshape(B, T, C), or .contiguous().view(B, T, C)")))
    with torch.no_grad():
        for B, T in SHAPES:
            x = torch.randn(B, T, N_EMBD, generator=g).to(device)
            out = call(model, x, hints=hints)
            tensor_output(out, "CausalSelfAttention", (B, T, N_EMBD))
            if not same(out, heads(x)):
                explain_mismatch(out, _batched_variants(reference, x), model, x, g,
                                 "the output differs from MultiHeadAttention with the same weights: q, k, v = "
                                 "self.qkv(x).split(C, dim=2); each .view(B, T, nh, hs).transpose(1, 2); causal attention scaled "
                                 "by hs**-0.5; out.transpose(1, 2).reshape(B, T, C); self.proj")

    dropped = build(CausalSelfAttention, (N_EMBD, N_HEAD, BLOCK_SIZE, 0.5), signature).to(device)
    copy_weights(reference, dropped, "CausalSelfAttention")
    x = torch.randn(4, BLOCK_SIZE, N_EMBD, generator=g).to(device)
    check_dropout(dropped, x, reference(x),
                  "with dropout=0.5 in training mode the output never changed: apply dropout to the attention "
                  "weights (dropout_p in F.scaled_dot_product_attention, only while self.training) and after proj")
    with torch.no_grad():
        want = reference(x)
        dropped.train()
        y = dropped(x)
        dropped.eval()
    kept = y != 0
    if kept.float().mean().item() > 0.8:  # dropout after proj zeroes about half of the outputs
        fail("no dropout after the projection: return self.resid_dropout(self.proj(out)), with "
             "self.resid_dropout = nn.Dropout(dropout)")
    if torch.allclose(y[kept], 2 * want[kept], atol=1e-5, rtol=1e-4):  # only the output dropout acted
        fail("the attention weights are not dropped: apply dropout to softmax(wei) too (self.attn_dropout, or "
             "dropout_p=... in F.scaled_dot_product_attention, only while self.training)")
    forward_on_second_device(dropped, torch.randn(2, BLOCK_SIZE - 3, N_EMBD, generator=g), device=device,
                             what="CausalSelfAttention")
    return passed("same outputs as the list of heads after heads_to_batched, for T = 1..block_size; causal; dropout "
                  "only in training", CausalSelfAttention)
