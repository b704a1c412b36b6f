"""Checks for chapter 04 (self-attention): 4.1 one head of causal self-attention."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from lecture_utils import model as ref
from lecture_utils.checks._core import exercise, fail, fresh_seed, passed, rng
from lecture_utils.checks._device import forward_on_second_device
from lecture_utils.checks._helpers import (
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


@exercise("4.1", "one head of self-attention", reference=lambda: ref.Head)
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
    check_dropout(dropped, x, reference(x),
                  "with dropout=0.5 in training mode the output never changed: apply dropout to the attention "
                  "weights after the softmax, wei = self.dropout(wei), with self.dropout = nn.Dropout(dropout)")
    check_dropout_site(dropped, g, device)
    forward_on_second_device(dropped, torch.randn(2, BLOCK_SIZE - 3, N_EMBD, generator=g), device=device, what="Head")
    return passed("matches the reference for T = 1..block_size: causal, rows of wei sum to 1, scaled by "
                  "head_size**-0.5, dropout only in training", Head)
