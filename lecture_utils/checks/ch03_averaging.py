"""Checks for chapter 03 (the averaging trick): 3.1-3.3 three ways to average the past, 3.4 token +
position embeddings.

The three averages compute the same thing - ``xbow[b, t] = mean(x[b, :t+1])`` - so one comparison
serves all three; what differs is how each way usually goes wrong, hence one table of hints per
exercise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lecture_utils import averaging
from lecture_utils import model as ref
from lecture_utils.checks._core import exercise, expect, fail, fail_generic, fresh_seed, passed, rng
from lecture_utils.checks._device import on_second_device
from lecture_utils.checks._helpers import (
    blame_notebook_globals,
    build,
    call,
    copy_weights,
    isolated_rng,
    randomize_,
    same,
    tensor_output,
    unassigned_calls,
)

# ---------------------------------------------------------------------------------------------
# the usual wrong averages, as weight matrices (T, T) applied to x
# ---------------------------------------------------------------------------------------------


def _rows(mask: torch.Tensor) -> torch.Tensor:
    """Each row of a 0/1 mask normalised to sum to 1 (an empty row gives NaN, as mean([]) does)."""
    return mask / mask.sum(1, keepdim=True)


def _variants(x: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
    T = x.shape[1]
    ones = torch.ones(T, T, device=x.device, dtype=x.dtype)
    tril = torch.tril(ones)
    return {
        "all": lambda: _rows(ones) @ x,  # every position, future included
        "from_t": lambda: _rows(torch.triu(ones)) @ x,  # the token and its future
        "after_t": lambda: _rows(torch.triu(ones, 1)) @ x,  # the future only (last row NaN)
        "sum": lambda: tril @ x,  # not normalised
        "col_norm": lambda: (tril / tril.sum(0, keepdim=True)) @ x,  # normalised over the wrong dimension
        "no_keepdim": lambda: (tril / tril.sum(1)) @ x,  # row sums (T,) broadcast as a row: column j / (j+1)
        "all_dims": lambda: (_rows(tril) @ x).mean(-1, keepdim=True).expand_as(x),  # channels averaged too
    }


_HINTS = {
    "3.1": {
        "all": "the average includes the future: xbow[b, t] must average x[b, :t+1] only, the tokens up to and "
               "including t",
        "from_t": "the average runs over x[b, t:], the token and its future: take x[b, :t+1], its past",
        "after_t": "the average runs over the future: take x[b, :t+1]",
        "sum": "this sums instead of averaging: torch.mean(xprev, 0)",
        "all_dims": "the channels are averaged too: torch.mean(xprev, 0) averages over time only and keeps the C "
                    "channels",
        "before_t": "the token itself is left out: the slice x[b, :t] stops before t; take x[b, :t+1]",
    },
    "3.2": {
        "all": "wei is not lower-triangular: use wei = torch.tril(torch.ones(T, T)), so token t averages only "
               "positions <= t",
        "from_t": "this uses the upper triangle (torch.triu), which averages the future: use torch.tril",
        "after_t": "this averages the future: use torch.tril(torch.ones(T, T))",
        "sum": "wei is not normalised, so this sums: make each row sum to 1, wei = wei / wei.sum(1, keepdim=True)",
        "col_norm": "normalised over the wrong dimension: each row of wei must sum to 1, so divide by "
                    "wei.sum(1, keepdim=True), not wei.sum(0)",
        "no_keepdim": "wei.sum(1) without keepdim=True has shape (T,), which broadcasts as a row: column j is "
                      "divided by row j's sum, so the rows do not sum to 1; divide by wei.sum(1, keepdim=True), "
                      "shape (T, 1)",
        "all_dims": "the channels are averaged too: xbow2 = wei @ x keeps the C channels",
        "before_t": "the diagonal is missing: torch.tril keeps it (diagonal=0), and a token averages itself too",
    },
    "3.3": {
        "all": "the mask has no effect: softmax gives every position, the future included, the same weight. Fill "
               "the future with float('-inf') (masked with 0 instead of -inf changes nothing), where tril == 0 for "
               "tril = torch.tril(torch.ones(T, T)): wei.masked_fill(tril == 0, float('-inf'))",
        "from_t": "the mask is inverted: it hides the past and keeps the future; masked_fill(tril == 0, "
                  "float('-inf')) hides where tril is 0, the future",
        "after_t": "the mask is inverted: it hides the past and keeps the future (the last row is all -inf, hence "
                   "NaN); masked_fill(tril == 0, float('-inf')) hides the future",
        "sum": "wei is not normalised: apply F.softmax(wei, dim=-1) after masking",
        "col_norm": "softmax over the wrong dimension: each row of wei (dim=-1) must sum to 1, "
                    "F.softmax(wei, dim=-1)",
        "all_dims": "the channels are averaged too: wei @ x keeps the C channels",
        "before_t": "the diagonal is masked too: tril == 0 is the strict future; a token averages itself as well",
    },
}


_NOT_FINITE = {
    "3.1": "the result has NaN: the mean of an empty slice; token t averages x[b, :t+1], never an empty x[b, :t]",
    "3.2": "the result has NaN or inf: a division by zero; normalise each row by its sum, wei = wei / wei.sum(1, "
           "keepdim=True) (every row of tril keeps at least the diagonal, so no sum is 0)",
    "3.3": "the result has NaN or inf: -inf must go through the softmax, F.softmax(wei, dim=-1), which turns it into 0; "
           "and fill the masked positions with float('-inf'), not +inf",
}
UNASSIGNED_MASKED_FILL = ("the mask has no effect: wei.masked_fill(...) returns a new tensor, and its result is not "
                          "assigned; write wei = wei.masked_fill(tril == 0, float('-inf'))")


def _check_average(exercise_id: str, fn: Callable, device: str) -> None:
    g = rng(fresh_seed())
    hints = _HINTS[exercise_id]
    # sizes unlike the notebook's globals (B, T, C = 4, 8, 2; T_show = 5)
    for B, T, C in ((3, 7, 3), (2, 6, 7), (1, 1, 3), (5, 9, 6)):
        x = torch.randn(B, T, C, generator=g).to(device)
        before = x.clone()
        out = call(fn, x, hints=(("must match the", ("average over time: xprev = x[b, :t+1] has shape (t+1, C); "
                                  "torch.mean(xprev, 0) gives the C numbers of xbow[b, t]")),
                                 ("cannot be multiplied", "multiply wei (T, T) from the left: wei @ x, not x @ wei")))
        tensor_output(out, f"average_v{exercise_id[-1]}", (B, T, C), "the same shape as x, (B, T, C)")
        expect(torch.equal(x, before), "the function changed its input x in place: write into a new tensor, "
                                       "e.g. xbow = torch.zeros_like(x)")
        want = averaging.average_v2(x)
        if same(out, want):
            continue
        for name, compute in _variants(x).items():
            if name in hints and same(out, compute()):
                if name == "all" and exercise_id == "3.3" and unassigned_calls(fn, "masked_fill"):
                    fail(UNASSIGNED_MASKED_FILL)
                fail(hints[name])
        if T > 1 and same(out[:, 1:], want[:, :-1]):  # mean of x[b, :t] is the running mean at t - 1
            fail(hints["before_t"])
        if not torch.isfinite(out).all():
            fail(_NOT_FINITE[exercise_id])
        fail_generic(f"xbow differs from the running mean of x over time (shape {(B, T, C)}): xbow[b, t] = mean of "
             f"x[b, :t+1] over its t+1 rows")
    on_second_device(fn, torch.randn(2, 4, 3, generator=g), device=device, what=f"average_v{exercise_id[-1]}")


@exercise("3.1")
@blame_notebook_globals
def average_v1(average_v1, device="cpu"):
    """``average_v1(x)``: ``(B, T, C)`` -> ``xbow[b, t] = x[b, :t+1].mean(0)``, with for loops."""
    _check_average("3.1", average_v1, device)
    return passed("xbow[b, t] is the mean of x[b, :t+1] (past and present, not the future)", average_v1)


@exercise("3.2")
@blame_notebook_globals
def average_v2(average_v2, device="cpu"):
    """``average_v2(x)``: the same with ``wei = tril / tril.sum(1)`` and ``wei @ x``."""
    _check_average("3.2", average_v2, device)
    return passed("wei @ x with row-normalised tril equals the running mean", average_v2)


@exercise("3.3")
@blame_notebook_globals
def average_v3(average_v3, device="cpu"):
    """``average_v3(x)``: the same with ``masked_fill(tril == 0, -inf)`` and softmax over the last dimension."""
    _check_average("3.3", average_v3, device)
    return passed("masked softmax over the last dimension gives the running mean", average_v3)


# ---------------------------------------------------------------------------------------------
# 3.4
# ---------------------------------------------------------------------------------------------

_ARANGE_T = ("the positions should be torch.arange(T) for the T tokens in idx, not torch.arange(block_size): "
             "generate feeds shorter contexts, and the position embeddings must line up with the tokens")
_POS_HINTS = (
    ("index out of range", ("the position table has only block_size rows: look it up with torch.arange(T), the "
                           "positions 0..T-1, not with idx (the token ids)")),
)


def _positions_shape_hint(name: str, got: tuple, want: tuple) -> str:
    what = {
        "token_embedding_table.weight": "token_embedding_table = nn.Embedding(vocab_size, n_embd)",
        "position_embedding_table.weight": "position_embedding_table = nn.Embedding(block_size, n_embd)",
        "lm_head.weight": "lm_head = nn.Linear(n_embd, vocab_size)",
        "lm_head.bias": "lm_head = nn.Linear(n_embd, vocab_size)",
    }.get(name, name)
    return f"{name} has shape {got}, expected {want}: {what}"


@exercise("3.4")
@blame_notebook_globals
@isolated_rng
def positional_model(BigramWithPositions, device="cpu"):
    """``BigramWithPositions(vocab_size, n_embd, block_size)``: logits = lm_head(tok_emb + pos_emb)."""
    g = rng(fresh_seed())
    V, n_embd, block_size = 65, 16, 10  # unlike the notebook's B, T, C = 4, 8, 2
    model = build(BigramWithPositions, (V, n_embd, block_size), "vocab_size, n_embd, block_size").to(device)
    reference = randomize_(ref.BigramWithPositions(V, n_embd, block_size), g).to(device)
    copy_weights(reference, model, "BigramWithPositions", _positions_shape_hint)
    for B, T in ((3, block_size), (1, 1), (2, 7)):
        idx = torch.randint(V, (B, T), generator=g).to(device)
        targets = torch.randint(V, (B, T), generator=g).to(device)
        want, _ = reference(idx)
        hints = _POS_HINTS if T == block_size else (*_POS_HINTS, (  # T tokens against block_size positions
            f"size of tensor a ({T}) must match the size of tensor b ({block_size})", _ARANGE_T), (
            f"size of tensor a ({block_size}) must match the size of tensor b ({T})", _ARANGE_T))
        out = call(model, idx, hints=hints)
        expect(isinstance(out, tuple) and len(out) == 2, "forward should return a pair: return logits, loss")
        logits, loss = out
        if isinstance(logits, torch.Tensor) and T != block_size and logits.shape == (B, block_size, V):
            fail(_ARANGE_T)
        tensor_output(logits, "forward(idx)", (B, T, V))
        expect(loss is None, "without targets, loss should be None")
        if not same(logits, want):
            tok = reference.token_embedding_table(idx)
            if same(logits, reference.lm_head(tok)):
                fail("the position embeddings are not added: x = tok_emb + pos_emb, with "
                     "pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device)); without them the model cannot tell "
                     "where a token is")
            fail_generic("the logits differ from the reference: logits = self.lm_head(tok_emb + pos_emb) with "
                 "tok_emb = self.token_embedding_table(idx), pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))")
        want_flat, want_loss = reference(idx, targets)
        logits, loss = call(model, idx, targets, hints=_POS_HINTS)
        tensor_output(logits, "forward(idx, targets) (the logits)", (B * T, V),
                      "logits not reshaped to (B*T, C) when targets are given (the shape cross_entropy needs)")
        if not same(logits, want_flat):
            fail_generic("with targets, the logits differ from the reference")
        expect(isinstance(loss, torch.Tensor) and loss.dim() == 0 and torch.allclose(loss, want_loss, atol=1e-5),
               "the loss differs from F.cross_entropy(logits.view(B*T, C), targets.view(B*T))")
    idx, targets = torch.randint(V, (2, 7), generator=g), torch.randint(V, (2, 7), generator=g)
    on_second_device(lambda m, i, t: m(i, t), model, idx, targets, device=device, what="forward(idx, targets)",
                     what_input="idx")
    return passed("logits = lm_head(token + position embeddings) for T = 1..block_size; loss as before",
                  BigramWithPositions)
