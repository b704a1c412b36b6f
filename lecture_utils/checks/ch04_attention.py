"""Checks for chapter 04 (self-attention): 4.1 one head of causal self-attention, 4.2 a cross-attention head,
4.3 the variance of the affinities with and without the scale."""

from __future__ import annotations

import inspect
import math

import torch
from torch.nn import functional as F

from lecture_utils import model as ref
from lecture_utils.checks._core import exercise, fail, fail_generic, fresh_seed, passed, rng
from lecture_utils.checks._device import forward_on_second_device
from lecture_utils.checks._helpers import (
    FUTURE,
    attention_variant,
    blame_notebook_globals,
    build,
    call,
    check_dropout,
    copy_weights,
    diagnose,
    explain_mismatch,
    isolated_rng,
    leaks_future,
    randomize_,
    same,
    tensor_output,
    unassigned_calls,
)
from lecture_utils.checks._parts import part

# n_embd != head_size, so that scaling by C and by head_size give different results; and none equal to a global
# of the notebook (B, T, C = 4, 8, 32; head_size = 16), so a head that reads one of those gets a wrong result
N_EMBD, HEAD_SIZE, BLOCK_SIZE = 20, 6, 10
SHAPES = ((3, BLOCK_SIZE), (2, 1), (5, 7))

ROWS = ("the attention weights of a token do not sum to 1: softmax over the wrong dimension? each row of wei "
        "(dim=-1) must sum to 1, F.softmax(wei, dim=-1)")
SCALED_BY_C = ("scaled by C (n_embd) instead of head_size - the lecture writes C**-0.5 around 1:20:05 and that is "
               "a known slip; divide by sqrt(head_size): wei = q @ k.transpose(-2, -1) * head_size**-0.5")
NOT_SCALED = ("the affinities are not scaled: multiply by head_size**-0.5 so they keep unit variance; otherwise "
              "softmax turns peaky (nearly one-hot) as head_size grows")
MULTIPLIED = "the affinities are multiplied by sqrt(head_size) instead of divided: use * head_size**-0.5"
TRANSPOSED = ("the affinities are transposed: wei = q @ k.transpose(-2, -1), so row t holds token t's query against "
              "every key; k @ q.transpose(-2, -1) pairs each key with the other tokens' queries")
WRONG_SOFTMAX_DIM = "softmax over the wrong dimension: each row of wei (dim=-1) must sum to 1, F.softmax(wei, dim=-1)"
SHAPES_INSIDE = ("the shapes inside the head do not line up: k, q and v are (B, T, head_size); wei = q @ "
                 "k.transpose(-2, -1) is (B, T, T); the output wei @ v is (B, T, head_size)")
NO_SOFTMAX = ("the softmax is missing: after masking, wei = F.softmax(wei, dim=-1) turns the affinities into "
              "weights that sum to 1 (and the -inf into 0)")
WEIGHTS_TRANSPOSED = ("the weights are transposed before they aggregate the values: out = wei @ v, where row t of wei "
                      "holds token t's weights over the positions up to t")
MASK_INVERTED = ("the mask is inverted: it hides the past and keeps the future (the last row is all -inf, hence NaN); "
                 "masked_fill(self.tril[:T, :T] == 0, float('-inf')) hides where tril is 0, the future")
PLUS_INF = ("the masked positions are filled with +inf, which the softmax turns into NaN: fill them with "
            "float('-inf'), which it turns into 0")
MASK_FILLED_ZERO = ("the masked affinities are filled with 0, not float('-inf'): the softmax turns 0 into "
                    "exp(0) = 1, so the future still gets weight; wei = wei.masked_fill(self.tril[:T, :T] == 0, "
                    "float('-inf')), which the softmax turns into exactly 0")
UNASSIGNED_MASKED_FILL = ("the mask has no effect: wei.masked_fill(...) returns a new tensor and leaves wei unchanged, "
                          "so its result must be assigned: wei = wei.masked_fill(self.tril[:T, :T] == 0, "
                          "float('-inf'))")
DIVIDED_BY_HEAD_SIZE = ("the affinities are divided by head_size instead of its square root: multiply by "
                        "head_size**-0.5")
MASK_AFTER_SOFTMAX = ("the mask is applied after the softmax: the rows no longer sum to 1; mask the affinities first, "
                      "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf')), then F.softmax(wei, dim=-1)")
AGGREGATES_KEYS = ("the head aggregates the keys, not the values: v = self.value(x), out = wei @ v")
AGGREGATES_QUERIES = ("the head aggregates the queries, not the values: v = self.value(x), out = wei @ v")
DROPOUT_BEFORE_SOFTMAX = ("dropout is applied before the softmax (the weights still sum to 1 in training mode): "
                          "dropout acts on the attention weights after the softmax, wei = self.dropout(F.softmax(wei, "
                          "dim=-1))")
DROPOUT_AFTER_MASK = ("dropout is applied to the masked affinities before the softmax (0 * -inf is NaN): apply it "
                      "to the attention weights after the softmax, wei = self.dropout(F.softmax(wei, dim=-1))")
DROPOUT_ON_OUTPUT = ("dropout is applied to the head's output instead of the attention weights: "
                     "wei = self.dropout(wei) after the softmax, then out = wei @ v")
NO_DROPOUT = ("with dropout=0.5 in training mode the output never changed: apply dropout to the attention weights "
              "after the softmax, wei = self.dropout(wei), with self.dropout = nn.Dropout(dropout)")
MASK_SHAPE = ("the mask must be T x T for the T tokens in x: build it with block_size rows, "
              "torch.tril(torch.ones(block_size, block_size)), and slice it, self.tril[:T, :T] == 0")


def head_variants(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, head_size: int, n_embd: int):
    """The usual wrong versions of one head's attention, as (hint, compute) pairs for :func:`diagnose`."""
    right = head_size**-0.5
    return [
        (SCALED_BY_C, lambda: attention_variant(q, k, v, n_embd**-0.5)),
        (NOT_SCALED, lambda: attention_variant(q, k, v, 1.0)),
        (MULTIPLIED, lambda: attention_variant(q, k, v, head_size**0.5)),
        (DIVIDED_BY_HEAD_SIZE, lambda: attention_variant(q, k, v, 1.0 / head_size)),
        (TRANSPOSED, lambda: attention_variant(q, k, v, right, swap=True)),
        (WRONG_SOFTMAX_DIM, lambda: attention_variant(q, k, v, right, softmax_dim=-2)),
        (MASK_FILLED_ZERO, lambda: F.softmax(_masked(q, k, right, fill=0.0), dim=-1) @ v),
    ]


def _masked(q: torch.Tensor, k: torch.Tensor, scale: float, *, fill: float = float("-inf"),
            inverted: bool = False) -> torch.Tensor:
    wei = q @ k.transpose(-2, -1) * scale
    T = wei.shape[-1]
    keep = torch.ones(T, T, dtype=torch.bool, device=wei.device).tril()
    return wei.masked_fill(keep if inverted else ~keep, fill)


def _after_softmax(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, fill: float) -> torch.Tensor:
    wei = F.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)
    T = wei.shape[-1]
    keep = torch.ones(T, T, dtype=torch.bool, device=wei.device).tril()
    return wei.masked_fill(~keep, fill) @ v


def row_sum_variants(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, head_size: int):
    """Mistakes whose attention weights do not sum to 1 although the softmax is right."""
    right = head_size**-0.5
    return [
        (NO_SOFTMAX, lambda: _masked(q, k, right) @ v),
        (WEIGHTS_TRANSPOSED, lambda: F.softmax(_masked(q, k, right), dim=-1).transpose(-2, -1) @ v),
        (MASK_INVERTED, lambda: F.softmax(_masked(q, k, right, inverted=True), dim=-1) @ v),
        (PLUS_INF, lambda: F.softmax(_masked(q, k, right, fill=float("inf")), dim=-1) @ v),
        (MASK_AFTER_SOFTMAX, lambda: _after_softmax(q, k, v, right, 0.0)),
        (MASK_AFTER_SOFTMAX, lambda: _after_softmax(q, k, v, right, float("-inf"))),
        (AGGREGATES_KEYS, lambda: attention_variant(q, k, k, right)),
        (AGGREGATES_QUERIES, lambda: attention_variant(q, k, q, right)),
    ]


@torch.no_grad()
def check_dropout_site(module: torch.nn.Module, g: torch.Generator, device) -> None:
    """With zero queries and keys (uniform causal attention), a value that copies feature 0 and x[..., 0] = 1,
    the output's feature 0 is the row sum of the weights after dropout: in training mode it varies and is neither
    all 1 (dropout before the softmax) nor all 0 or 2 (dropout on the output)."""
    params = dict(module.named_parameters())
    saved = {n: params[n].clone() for n in ("query.weight", "key.weight", "value.weight")}
    params["query.weight"].zero_()
    params["key.weight"].zero_()
    params["value.weight"].zero_()
    params["value.weight"][0, 0] = 1.0
    x = torch.randn(5, BLOCK_SIZE, N_EMBD, generator=g).to(device)
    x[..., 0] = 1.0
    module.train()
    sums = module(x)[..., 0]
    module.eval()
    for n, value in saved.items():
        params[n].copy_(value)
    if torch.isnan(sums).any():
        fail(DROPOUT_AFTER_MASK)
    if torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
        fail(DROPOUT_BEFORE_SOFTMAX)
    later = sums[:, 3:]
    if bool(((later.abs() < 1e-5) | ((later - 2).abs() < 1e-5)).all()):
        fail(DROPOUT_ON_OUTPUT)


def _shape_hint(name: str, got: tuple, want: tuple) -> str:
    return f"{name} has shape {got}, expected {want}: key, query and value are nn.Linear(n_embd, head_size, bias=False)"


@exercise("4.1")
@blame_notebook_globals
@isolated_rng
def head(Head, device="cpu"):
    """``Head(n_embd, head_size, block_size, dropout)``: ``(B, T, n_embd)`` -> ``(B, T, head_size)``, causal,
    scaled by ``head_size**-0.5``, softmax over the last dimension, dropout on the weights in training."""
    g = rng(fresh_seed())
    signature = "n_embd, head_size, block_size, dropout"
    model = build(Head, (N_EMBD, HEAD_SIZE, BLOCK_SIZE, 0.0), signature).to(device)
    reference = randomize_(ref.Head(N_EMBD, HEAD_SIZE, BLOCK_SIZE, 0.0), g).to(device)
    copy_weights(reference, model, "Head", _shape_hint)
    model.eval()
    reference.eval()
    hints = (("must match the size of tensor", MASK_SHAPE), ("has no attribute 'tril'", MASK_SHAPE),
             # masked_fill with a (block_size, block_size) mask broadcasts wei up to it, then wei @ v fails
             ("Expected size for first two dimensions of batch2", MASK_SHAPE))
    tril = getattr(model, "tril", None)
    mask_ok = isinstance(tril, torch.Tensor) and tuple(tril.shape) == (BLOCK_SIZE, BLOCK_SIZE)
    with torch.no_grad():
        for B, T in SHAPES:
            x = torch.randn(B, T, N_EMBD, generator=g).to(device)
            # a shape error at T = block_size with a block_size x block_size mask is not the mask's
            out = call(model, x, hints=hints if T != BLOCK_SIZE or not mask_ok else (
                ("must match the size of tensor", SHAPES_INSIDE),
                ("Expected size for first two dimensions of batch2", SHAPES_INSIDE),
                ("cannot be multiplied", SHAPES_INSIDE)))
            tensor_output(out, "Head", (B, T, HEAD_SIZE), "one head maps (B, T, n_embd) to (B, T, head_size)")

        # each row of weights sums to 1: with value = "copy feature 0" and x[..., 0] = 1, out[..., 0] is the row
        # sum. Tested before causality, because a softmax over the wrong dimension also leaks the future (it
        # normalises over later queries) and its better diagnosis is the dimension.
        x = torch.randn(3, BLOCK_SIZE, N_EMBD, generator=g).to(device)
        x[..., 0] = 1.0
        value = dict(model.named_parameters())["value.weight"]
        value.zero_()
        value[0, 0] = 1.0
        sums = model(x)[..., 0]
        value.copy_(reference.value.weight)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
            x = torch.randn(3, BLOCK_SIZE, N_EMBD, generator=g).to(device)
            diagnose(model(x), row_sum_variants(reference.query(x), reference.key(x), reference.value(x), HEAD_SIZE))
            fail(ROWS)

        for B, T in SHAPES:
            x = torch.randn(B, T, N_EMBD, generator=g).to(device)
            out = model(x)
            if not same(out, reference(x)):
                variants = head_variants(reference.query(x), reference.key(x), reference.value(x), HEAD_SIZE, N_EMBD)
                diagnose(out, variants)
                if unassigned_calls(Head, "masked_fill") and leaks_future(model, x, g):
                    fail(UNASSIGNED_MASKED_FILL)
                explain_mismatch(out, variants, model, x, g,
                                 "the output differs from the reference: k = self.key(x), q = self.query(x); "
                                 "wei = q @ k.transpose(-2, -1) * head_size**-0.5; mask the future; softmax(dim=-1); "
                                 "return wei @ self.value(x)")

    dropped = build(Head, (N_EMBD, HEAD_SIZE, BLOCK_SIZE, 0.5), signature).to(device)
    copy_weights(reference, dropped, "Head")
    x = torch.randn(5, BLOCK_SIZE, N_EMBD, generator=g).to(device)
    check_dropout(dropped, x, reference(x), NO_DROPOUT)
    check_dropout_site(dropped, g, device)
    forward_on_second_device(dropped, torch.randn(2, BLOCK_SIZE - 3, N_EMBD, generator=g), device=device, what="Head")
    return passed("matches the reference for T = 1..block_size: causal, rows of wei sum to 1, scaled by "
                  "head_size**-0.5, dropout only in training", Head)


# parts of 4.1 for partial credit (lecture_utils.checks._parts): each builds its own head and tests one property


def _head_pair(Head, g: torch.Generator, device, dropout: float = 0.0):
    """The learner's head and a randomised reference with the same weights, in eval mode."""
    model = build(Head, (N_EMBD, HEAD_SIZE, BLOCK_SIZE, dropout), "n_embd, head_size, block_size, dropout").to(device)
    reference = randomize_(ref.Head(N_EMBD, HEAD_SIZE, BLOCK_SIZE, 0.0), g).to(device)
    copy_weights(reference, model, "Head", _shape_hint)
    return model.eval(), reference.eval()


@part("4.1", "output shape (B, T, head_size) for T = 1..block_size")
@torch.no_grad()
def _head_shape(Head, device="cpu"):
    g = rng(fresh_seed())
    model, _ = _head_pair(Head, g, device)
    for B, T in SHAPES:
        hints = (("must match the size", MASK_SHAPE), ("Expected size for first two dimensions of batch2", MASK_SHAPE))
        out = call(model, torch.randn(B, T, N_EMBD, generator=g).to(device), hints=hints if T != BLOCK_SIZE else ())
        tensor_output(out, "Head", (B, T, HEAD_SIZE), "one head maps (B, T, n_embd) to (B, T, head_size)")


@part("4.1", "softmax over the last dimension: each row of weights sums to 1")
@torch.no_grad()
def _head_rows(Head, device="cpu"):
    g = rng(fresh_seed())
    model, reference = _head_pair(Head, g, device)
    x = torch.randn(3, BLOCK_SIZE, N_EMBD, generator=g).to(device)
    x[..., 0] = 1.0
    value = dict(model.named_parameters())["value.weight"]
    value.zero_()
    value[0, 0] = 1.0  # out[..., 0] is then the row sum of the weights
    sums = model(x)[..., 0]
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
        value.copy_(reference.value.weight)
        x = torch.randn(3, BLOCK_SIZE, N_EMBD, generator=g).to(device)
        diagnose(model(x), row_sum_variants(reference.query(x), reference.key(x), reference.value(x), HEAD_SIZE))
        fail(ROWS)


@part("4.1", "causal mask: the future does not leak")
@torch.no_grad()
def _head_causal(Head, device="cpu"):
    g = rng(fresh_seed())
    model, reference = _head_pair(Head, g, device)
    for _ in range(2):  # at T = block_size, where a mask of block_size rows fits without slicing
        x = torch.randn(3, BLOCK_SIZE, N_EMBD, generator=g).to(device)
        if leaks_future(model, x, g):
            q, k, v = reference.query(x), reference.key(x), reference.value(x)
            zero_filled = F.softmax(_masked(q, k, HEAD_SIZE**-0.5, fill=0.0), dim=-1) @ v
            diagnose(model(x), [(MASK_FILLED_ZERO, lambda zero_filled=zero_filled: zero_filled)])
            fail(UNASSIGNED_MASKED_FILL if unassigned_calls(Head, "masked_fill") else FUTURE)


@part("4.1", "scale head_size**-0.5 and q @ k^T: the last token (which sees every token) matches the reference")
@torch.no_grad()
def _head_scale(Head, device="cpu"):
    g = rng(fresh_seed())
    model, reference = _head_pair(Head, g, device)
    x = torch.randn(4, BLOCK_SIZE, N_EMBD, generator=g).to(device)
    last = model(x)[:, -1]
    if same(last, reference(x)[:, -1]):
        return
    q, k, v = reference.query(x), reference.key(x), reference.value(x)
    right = HEAD_SIZE**-0.5
    diagnose(last, [(hint, lambda s=s: attention_variant(q, k, v, s, causal=False)[:, -1]) for hint, s in (
        (SCALED_BY_C, N_EMBD**-0.5), (NOT_SCALED, 1.0), (MULTIPLIED, HEAD_SIZE**0.5),
        (DIVIDED_BY_HEAD_SIZE, 1.0 / HEAD_SIZE))]
        + [(TRANSPOSED, lambda: attention_variant(q, k, v, right, swap=True, causal=False)[:, -1])])
    fail_generic("the output at the last position, where the causal mask hides nothing, differs from the reference: "
                 "wei = q @ k.transpose(-2, -1) * head_size**-0.5, F.softmax(wei, dim=-1), out = wei @ v")


@part("4.1", "dropout on the attention weights in training mode, none in eval mode")
def _head_dropout(Head, device="cpu"):
    g = rng(fresh_seed())
    plain, reference = _head_pair(Head, g, device)
    dropped = build(Head, (N_EMBD, HEAD_SIZE, BLOCK_SIZE, 0.5), "n_embd, head_size, block_size, dropout").to(device)
    copy_weights(reference, dropped, "Head", _shape_hint)
    x = torch.randn(5, BLOCK_SIZE, N_EMBD, generator=g).to(device)
    with torch.no_grad():
        want = plain(x)  # the learner's own head without dropout: this part judges dropout alone
    check_dropout(dropped, x, want, NO_DROPOUT)
    check_dropout_site(dropped, g, device)


@part("4.1", "runs on another device (no tensor left on the CPU)")
def _head_device(Head, device="cpu"):
    g = rng(fresh_seed())
    model = build(Head, (N_EMBD, HEAD_SIZE, BLOCK_SIZE, 0.5), "n_embd, head_size, block_size, dropout").to(device)
    forward_on_second_device(model, torch.randn(2, BLOCK_SIZE - 3, N_EMBD, generator=g), device=device, what="Head")


# ---------------------------------------------------------------------------------------------------------------
# 4.2 a cross-attention head: queries from x, keys and values from another sequence, nothing masked
# ---------------------------------------------------------------------------------------------------------------

# (B, T_x, T_context): equal lengths first (every wrong variant runs there and is named by its values), then a
# context longer and one shorter than x, and a single query
CROSS_SHAPES = ((3, 7, 7), (2, 4, 9), (3, 8, 3), (2, 1, 5))

CROSS_CAUSAL = ("a causal mask is left in: cross-attention (and an encoder head) masks nothing - every query sees "
                "the whole context, which may be longer or shorter than x; delete the masked_fill line, "
                "wei = F.softmax(q @ k.transpose(-2, -1) * head_size**-0.5, dim=-1)")
CROSS_KV_FROM_X = ("the keys and values come from x instead of the context: that is self-attention; "
                   "k = self.key(context), v = self.value(context), and only q = self.query(x)")
CROSS_K_FROM_X = "the keys come from x instead of the context: k = self.key(context)"
CROSS_V_FROM_X = "the values come from x instead of the context: v = self.value(context)"
CROSS_Q_FROM_CONTEXT = ("the queries come from the context instead of x: the sequence that asks is x, q = "
                        "self.query(x), so the output has one row per token of x, (B, T_x, head_size)")
CROSS_ROLES_SWAPPED = ("x and the context swap roles: the queries come from x, q = self.query(x), the keys and "
                       "values from the context, k = self.key(context), v = self.value(context)")
CROSS_OUT_SHAPE = ("one row per query: x is (B, T_x, n_embd), the context (B, T_c, n_embd); wei = q @ "
                   "k.transpose(-2, -1) is (B, T_x, T_c) and wei @ v is (B, T_x, head_size)")
CROSS_SOFTMAX_DIM = ("softmax over the wrong dimension: wei is (B, T_x, T_c) and each query's row (dim=-1) must sum "
                     "to 1 over the context, F.softmax(wei, dim=-1)")
CROSS_WRONG_SIZE = ("the scale uses the wrong size: k.shape[-1] is head_size (k.shape[0] is B, k.shape[1] the "
                    "context's length); wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5")
CROSS_WEIGHTS_TRANSPOSED = ("the weights are transposed before they aggregate the values: out = wei @ v, where wei "
                            "is (B, T_x, T_c), one row of weights over the context per query")
CROSS_TRANSPOSED = ("the affinities are transposed: wei = q @ k.transpose(-2, -1) is (B, T_x, T_c), one row per "
                    "query of x; k @ q.transpose(-2, -1) is (B, T_c, T_x)")


def cross_variants(x: torch.Tensor, context: torch.Tensor, reference: torch.nn.Module):
    """The usual wrong versions of a cross-attention head, as (hint, compute) pairs for :func:`diagnose`."""
    q, k, v = reference.query(x), reference.key(context), reference.value(context)
    qc, kx, vx = reference.query(context), reference.key(x), reference.value(x)
    hs = q.shape[-1]
    right = hs**-0.5
    return [
        (CROSS_CAUSAL, lambda: attention_variant(q, k, v, right)),
        (CROSS_KV_FROM_X, lambda: attention_variant(q, kx, vx, right, causal=False)),
        (CROSS_K_FROM_X, lambda: attention_variant(q, kx, v, right, causal=False)),
        (CROSS_V_FROM_X, lambda: attention_variant(q, k, vx, right, causal=False)),
        (CROSS_Q_FROM_CONTEXT, lambda: attention_variant(qc, k, v, right, causal=False)),
        (CROSS_ROLES_SWAPPED, lambda: attention_variant(qc, kx, vx, right, causal=False)),
        (SCALED_BY_C, lambda: attention_variant(q, k, v, x.shape[-1] ** -0.5, causal=False)),
        (NOT_SCALED, lambda: attention_variant(q, k, v, 1.0, causal=False)),
        (MULTIPLIED, lambda: attention_variant(q, k, v, hs**0.5, causal=False)),
        (DIVIDED_BY_HEAD_SIZE, lambda: attention_variant(q, k, v, 1.0 / hs, causal=False)),
        (CROSS_SOFTMAX_DIM, lambda: attention_variant(q, k, v, right, causal=False, softmax_dim=-2)),
        (CROSS_SOFTMAX_DIM, lambda: attention_variant(q, k, v, right, causal=False, softmax_dim=0)),
        (CROSS_WRONG_SIZE, lambda: attention_variant(q, k, v, k.shape[0] ** -0.5, causal=False)),
        (CROSS_WRONG_SIZE, lambda: attention_variant(q, k, v, k.shape[1] ** -0.5, causal=False)),
        (CROSS_WEIGHTS_TRANSPOSED,
         lambda: F.softmax(q @ k.transpose(-2, -1) * right, dim=-1).transpose(-2, -1) @ v),
        (CROSS_TRANSPOSED, lambda: attention_variant(q, k, v, right, causal=False, swap=True)),
        (AGGREGATES_KEYS, lambda: attention_variant(q, k, k, right, causal=False)),
        (NO_SOFTMAX, lambda: (q @ k.transpose(-2, -1) * right) @ v),
    ]


def _cross_shape_hint(name: str, got: tuple, want: tuple) -> str:
    return (f"{name} has shape {got}, expected {want}: key, query and value are nn.Linear(n_embd, head_size, "
            "bias=False)")


@exercise("4.2")
@blame_notebook_globals
@isolated_rng
def cross_head(CrossHead, device="cpu"):
    """``CrossHead(n_embd, head_size)``, ``forward(x, context)``: queries from ``x (B, T_x, n_embd)``, keys and
    values from ``context (B, T_c, n_embd)``, no mask, scaled by ``head_size**-0.5``, softmax over the context:
    ``(B, T_x, head_size)``."""
    g = rng(fresh_seed())
    if not inspect.isclass(CrossHead):  # an untouched stub written as a function says so; anything else is refused
        call(CrossHead, N_EMBD, HEAD_SIZE)
    model = build(CrossHead, (N_EMBD, HEAD_SIZE), "n_embd, head_size").to(device)
    reference = randomize_(ref.CrossHead(N_EMBD, HEAD_SIZE), g).to(device)
    copy_weights(reference, model, "CrossHead", _cross_shape_hint)
    model.eval()
    # a mask made for T_x x T_x (or from a block_size) does not fit wei (B, T_x, T_c) once the lengths differ
    hints = (("must match the size of tensor", CROSS_CAUSAL), ("has no attribute 'tril'", CROSS_CAUSAL),
             ("Expected size for first two dimensions of batch2", CROSS_OUT_SHAPE),
             ("cannot be multiplied", CROSS_OUT_SHAPE))
    with torch.no_grad():
        for B, T, S in CROSS_SHAPES:
            x = torch.randn(B, T, N_EMBD, generator=g).to(device)
            context = torch.randn(B, S, N_EMBD, generator=g).to(device)
            out = call(model, x, context, hints=hints)
            if isinstance(out, torch.Tensor) and tuple(out.shape) == (B, S, HEAD_SIZE) and S != T:
                fail(CROSS_Q_FROM_CONTEXT)
            tensor_output(out, "CrossHead", (B, T, HEAD_SIZE), CROSS_OUT_SHAPE)
            if not same(out, reference(x, context)):
                diagnose(out, cross_variants(x, context, reference))
                fail_generic("the output differs from the reference: q = self.query(x), k = self.key(context), "
                             "v = self.value(context); wei = q @ k.transpose(-2, -1) * head_size**-0.5; no mask; "
                             "softmax(dim=-1); return wei @ v")
        # the encoder head is the special case context = x: every token sees the future too
        x = torch.randn(2, 6, N_EMBD, generator=g).to(device)
        if not same(model(x, x), reference(x, x)):
            fail(CROSS_CAUSAL)
    forward_on_second_device(model, torch.randn(2, 5, N_EMBD, generator=g), torch.randn(2, 8, N_EMBD, generator=g),
                             device=device, what="CrossHead", what_input="x")
    return passed("matches the reference for contexts longer and shorter than x: queries from x, keys and values "
                  "from the context, nothing masked, scaled by head_size**-0.5", CrossHead)


# ---------------------------------------------------------------------------------------------------------------
# 4.3 the variance experiment: the affinities of unit-Gaussian q and k, with and without the scale
# ---------------------------------------------------------------------------------------------------------------

VAR_B, VAR_T = 64, 16  # the check's own sizes: 16384 affinities per measurement
VAR_HEAD_SIZES = (4, 16, 64)

VAR_NOT_FLOAT = "return a Python float: wei.var().item()"
VAR_BY_HEAD_SIZE = ("scaled by head_size instead of its square root: the variance comes out near 1/head_size; "
                    "multiply by head_size**-0.5")
VAR_STD = ("this is the standard deviation, not the variance (about sqrt(head_size) unscaled): wei.var(), "
           "not wei.std()")
VAR_OF_Q = ("this is the variance of q (about 1 whatever head_size), not of the affinities: wei = q @ "
            "k.transpose(-2, -1), then wei.var()")
VAR_UNIFORM = ("the numbers are uniform in [0, 1), not unit Gaussians: torch.randn draws from N(0, 1), torch.rand "
               "does not")
VAR_NEVER_SCALED = ("with scaled=True the variance is still about head_size: multiply wei by head_size**-0.5 when "
                    "scaled is true")
VAR_ALWAYS_SCALED = ("with scaled=False the variance is about 1, not head_size: scale only when scaled is true "
                     "(and check that q and k are unit Gaussians of shape (B, T, head_size))")
VAR_SCALED_INVERTED = ("the scale is applied when scaled is False and left out when it is True: if scaled: wei = "
                       "wei * head_size**-0.5")
VAR_MULTIPLIED = ("the affinities are multiplied by sqrt(head_size) instead of divided (variance about "
                  "head_size**2): use * head_size**-0.5")
VAR_GENERATOR = ("the same generator state gave different results: draw q and k with the given generator, "
                 "torch.randn(B, T, head_size, generator=generator), so the experiment can be repeated")
VAR_TRANSPOSE = ("q @ k^T needs k with its last two dimensions swapped: wei = q @ k.transpose(-2, -1), "
                 "(B, T, head_size) @ (B, head_size, T) -> (B, T, T)")
VAR_OVER_T = ("the affinities sum over the T tokens, not the head_size features (variance about T whatever "
              "head_size): wei = q @ k.transpose(-2, -1) is (B, T, T); k.transpose(-2, -1) @ q is (B, head_size, "
              "head_size)")
VAR_ONE_NUMBER = "the variance is one number over all the affinities: wei.var().item()"
VAR_SIZES = ("draw q and k of shape (B, T, head_size) with the B and T given: wei = q @ k.transpose(-2, -1) is "
             "(B, T, T)")


def variance_tolerance(head_size: int, B: int, T: int) -> float:
    """Five standard deviations of the sample variance of the unscaled affinities, relative to head_size.

    Each affinity is a sum of ``head_size`` products of independent unit Gaussians: variance hs, fourth moment
    3 hs**2 + 6 hs, so one squared affinity has variance 2 hs**2 + 6 hs. Two affinities of one row (or column)
    share q (or k): their squares have covariance 2 hs, for 2 (T - 1) neighbours each. Over N = B T T affinities
    the sample variance has relative standard deviation sqrt((2 hs**2 + 6 hs + 4 (T - 1) hs) / N) / hs."""
    n = B * T * T
    sd = math.sqrt((2 * head_size**2 + 6 * head_size + 4 * (T - 1) * head_size) / n) / head_size
    return 5 * sd


def _measure(fn, head_size: int, scaled: bool, seed: int) -> float:
    value = call(fn, head_size, scaled, B=VAR_B, T=VAR_T, generator=rng(seed),
                 hints=(("unexpected keyword argument", "the signature is affinity_variance(head_size, scaled, B=4, "
                                                         "T=8, generator=None)"),
                        ("Expected size for first two dimensions of batch2", VAR_TRANSPOSE),
                        ("must match the size of tensor", VAR_TRANSPOSE), ("cannot be multiplied", VAR_TRANSPOSE),
                        ("cannot be converted to Scalar", VAR_ONE_NUMBER)))
    if isinstance(value, torch.Tensor) or not isinstance(value, (float, int)):
        fail(VAR_NOT_FLOAT)
    return float(value)


def _near(value: float, want: float, tol: float) -> bool:
    return abs(value / want - 1) <= tol


@exercise("4.3")
@isolated_rng
def affinity_variance(affinity_variance, device="cpu"):
    """``affinity_variance(head_size, scaled, B=4, T=8, generator=None) -> float``: the variance of ``q @ k^T``
    for unit-Gaussian ``q``, ``k`` of shape ``(B, T, head_size)`` drawn with ``generator``, scaled by
    ``head_size**-0.5`` when ``scaled``."""
    fn = affinity_variance
    seed = fresh_seed()
    for i, hs in enumerate(VAR_HEAD_SIZES):
        tol = variance_tolerance(hs, VAR_B, VAR_T)
        raw = _measure(fn, hs, False, seed + 2 * i)
        scaled = _measure(fn, hs, True, seed + 2 * i + 1)
        if not math.isfinite(raw) or not math.isfinite(scaled) or raw <= 0 or scaled <= 0:
            fail_generic(f"the variance should be a positive number, got {raw} (unscaled) and {scaled} (scaled) for "
                         f"head_size = {hs}: wei.var().item()")
        if _near(raw, hs, tol) and _near(scaled, 1.0, tol):
            continue
        # name the mistake from where the two numbers lie (each hypothesis is far from the others for hs >= 4)
        if _near(raw, hs, tol):
            for want, hint in ((1 / hs, VAR_BY_HEAD_SIZE), (hs, VAR_NEVER_SCALED), (hs**2, VAR_MULTIPLIED)):
                if _near(scaled, want, tol):
                    fail(hint)
        if _near(raw, hs**0.5, tol / 2):
            fail(VAR_STD)
        if hs != VAR_T and _near(raw, VAR_T, 0.3):  # a (B, hs, hs) result has fewer entries: a wider band
            fail(VAR_OVER_T)
        if _near(raw, 7 * hs / 144, 2 * tol) or _near(raw, 1 / 12, 2 * tol):
            fail(VAR_UNIFORM)
        if _near(raw, 1.0, tol) and _near(scaled, hs, tol):
            fail(VAR_SCALED_INVERTED)
        if _near(raw, 1.0, tol):
            # the variance of q is 1 in both cases, so is a scale applied always; the exact draw tells them apart
            g = rng(seed)
            q = torch.randn(VAR_B, VAR_T, hs, generator=g)
            if math.isclose(_measure(fn, hs, False, seed), q.var().item(), rel_tol=1e-4):
                fail(VAR_OF_Q)
            fail(VAR_ALWAYS_SCALED)
        if not _near(raw, hs, 4 * tol):
            fail_generic(f"for head_size = {hs} the unscaled variance came out {raw:.3g}, expected about {hs} "
                         f"(within {tol:.0%}): {VAR_SIZES}")
        fail_generic(f"for head_size = {hs} the scaled variance came out {scaled:.3g}, expected about 1 (within "
                     f"{tol:.0%}): wei = wei * head_size**-0.5 when scaled")
    # reproducible: the same generator state gives the same number, another state another number
    a = _measure(fn, 16, False, seed)
    if a != _measure(fn, 16, False, seed) or a == _measure(fn, 16, False, seed + 1):
        fail(VAR_GENERATOR)
    # the defaults, and no generator at all (the global random state)
    default = call(fn, 16, True)
    if not isinstance(default, float):
        fail(VAR_NOT_FLOAT)
    # no second run: the experiment draws CPU tensors by its specification (a CPU generator) and returns a float
    return passed(f"the unscaled variance is about head_size and the scaled one about 1 for head_size in "
                  f"{VAR_HEAD_SIZES}, and the given generator makes it reproducible", affinity_variance)
