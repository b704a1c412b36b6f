"""Checks for chapter 09 (heads as a batch dimension, and timing it; the lecture's EX1):
9.1 heads_to_batched, 9.2 median_seconds."""

from __future__ import annotations

import statistics
import time
from unittest import mock

import torch

from lecture_utils import model as ref
from lecture_utils import timing as ref_timing
from lecture_utils.checks._core import exercise, expect, fail, fail_generic, fresh_seed, passed, rng
from lecture_utils.checks._helpers import blame_notebook_globals, call, isolated_rng, randomize_, same

N_EMBD, N_HEAD, BLOCK = 24, 3, 10
HS = N_EMBD // N_HEAD


def _fused_variants(mha: ref.MultiHeadAttention):
    q = [h.query.weight for h in mha.heads]
    k = [h.key.weight for h in mha.heads]
    v = [h.value.weight for h in mha.heads]
    return [
        ("the rows are in the wrong order: CausalSelfAttention splits qkv(x) into queries, keys, values (in that "
         "order), so the fused weight is cat([all queries, all keys, all values], dim=0)",
         lambda: torch.cat([torch.cat(k), torch.cat(q), torch.cat(v)])),
        ("the rows are in the wrong order: CausalSelfAttention splits qkv(x) into queries, keys, values (in that "
         "order), so the fused weight is cat([all queries, all keys, all values], dim=0)",
         lambda: torch.cat([torch.cat(v), torch.cat(k), torch.cat(q)])),
        ("the heads are interleaved (q1, k1, v1, q2, ...): qkv(x).split(n_embd) takes all queries first, so stack "
         "the queries of every head, then all keys, then all values",
         lambda: torch.cat([w for h in range(len(q)) for w in (q[h], k[h], v[h])])),
    ]


@exercise("9.1", "fused QKV from a list of heads", reference=lambda: ref.heads_to_batched)
@blame_notebook_globals
@isolated_rng
def heads_to_batched(heads_to_batched, device="cpu"):
    """``heads_to_batched(mha, csa)``: copies the weights of a list-of-heads ``MultiHeadAttention``
    into a ``CausalSelfAttention`` (fused ``qkv`` rows: all queries, all keys, all values; and the
    output projection) so both compute the same function; returns ``csa``."""
    g = rng(fresh_seed())
    mha = randomize_(ref.MultiHeadAttention(N_EMBD, N_HEAD, HS, BLOCK).to(device), g).eval()
    csa = randomize_(ref.CausalSelfAttention(N_EMBD, N_HEAD, BLOCK).to(device), g).eval()
    before_heads = {n: p.detach().clone() for n, p in mha.named_parameters()}
    out = call(heads_to_batched, mha, csa, hints=(
        ("leaf Variable that requires grad", "copying into a parameter in place needs torch.no_grad(): decorate the "
                                             "function with @torch.no_grad() or use a with torch.no_grad(): block"),
        ("size mismatch", "each head's query/key/value weight is (head_size, n_embd): concatenate the heads along "
                          "dim 0, so the fused weight is (3 * n_embd, n_embd)"),
        ("must match", "each head's query/key/value weight is (head_size, n_embd): concatenate the heads along "
                       "dim 0, so the fused weight is (3 * n_embd, n_embd)"),
    ))
    expect(out is csa, "heads_to_batched should copy into csa and return it (return csa)")
    for n, p in mha.named_parameters():
        expect(torch.equal(p.detach(), before_heads[n]), f"the list-of-heads module was changed ({n}): copy FROM mha "
                                                         f"INTO csa")
    x = torch.randn(4, BLOCK, N_EMBD, generator=g).to(device)
    with torch.no_grad():
        want, got = mha(x), csa(x)
    if same(got, want):
        return passed("the fused model computes exactly what the list of heads computes", heads_to_batched)
    fused = csa.qkv.weight.detach()
    for hint, variant in _fused_variants(mha):
        if same(fused, variant()):
            fail(hint)
    if not same(csa.proj.weight, mha.proj.weight) or not same(csa.proj.bias, mha.proj.bias):
        fail("the output projection is not copied: csa.proj.load_state_dict(mha.proj.state_dict())")
    fail_generic("the fused model's output differs from the list of heads' (the qkv weight should be cat([cat of the heads' "
         "query weights, ... key ..., ... value ...]), the projection copied as it is)")


@exercise("9.2", "timing a step honestly", reference=lambda: ref_timing.median_seconds)
@blame_notebook_globals
def median_seconds(median_seconds, device="cpu"):
    """``median_seconds(fn, warmup=2, reps=10, device=None)``: ``warmup`` untimed calls, then the
    median of ``reps`` timed calls, in seconds."""
    g = rng(fresh_seed())
    warmup, reps = 3, 9
    slow_first, usual, outlier = 0.08, 0.004, 0.25
    outlier_at = warmup + int(torch.randint(reps, (1,), generator=g))
    calls = []
    took: list[float] = []  # what each call really took: on a busy machine a sleep overshoots

    def fn():  # the first calls are slow (warm-up), one later call is an outlier
        n = len(calls)
        calls.append(n)
        start = time.perf_counter()
        time.sleep(slow_first if n < warmup else outlier if n == outlier_at else usual)
        took.append(time.perf_counter() - start)

    result = call(median_seconds, fn, warmup, reps, device)
    expect(isinstance(result, (int, float)) or (isinstance(result, torch.Tensor) and result.numel() == 1),
           f"median_seconds should return a number of seconds, got {type(result).__name__}")
    result = float(result)
    n = len(calls)
    if n == reps:
        fail(f"fn was called {n} times: call it warmup={warmup} times before timing (the first calls pay for "
             f"allocation and caches), then reps={reps} timed times")
    expect(n == warmup + reps, f"fn should be called warmup + reps = {warmup + reps} times, it was called {n} times")
    if result > 1.0:
        fail(f"got {result:.3g}: return seconds (time.perf_counter() differences), not milliseconds")
    if abs(result - (slow_first * warmup + usual * (reps - 1) + outlier)) < 0.1 or result > 0.5:
        fail(f"got {result:.3f} s: that is the total time of all calls; return the time of one call (the median)")
    typical = statistics.median(took[warmup:])
    if result > 2.5 * typical:
        fail(f"got {result * 1e3:.1f} ms, but a typical call took {typical * 1e3:.0f} ms: one slow call (an outlier, "
             f"or the warm-up calls) pulled it up - that is what a mean does; use statistics.median of the reps times")
    expect(result >= 0.9 * min(took[warmup:]), f"got {result * 1e3:.2f} ms, less than any call took "
                                               f"({min(took[warmup:]) * 1e3:.0f} ms): time "
                                  f"each call with time.perf_counter() before and after")
    _check_synchronizes(median_seconds, warmup, reps)
    return passed(f"{warmup} untimed warm-up calls, then the median of {reps} (one outlier ignored); the device is "
                  f"synchronized after every timed call", median_seconds)


NO_SYNC = ("the device is not synchronized after a timed call: on a GPU, fn() returns as soon as its work is queued, so "
           "the clock would stop too early; call synchronize(device) after fn() and before time.perf_counter()")


def _check_synchronizes(median_seconds, warmup: int, reps: int) -> None:
    """Time a fake GPU ("cuda", with torch.cuda.synchronize recorded) and check that every timed call is followed
    by a synchronization before the next call."""
    events: list[str] = []
    with mock.patch.object(torch.cuda, "synchronize", lambda *a, **k: events.append("sync")), \
            mock.patch.object(torch.cuda, "is_available", lambda: True):
        call(median_seconds, lambda: events.append("fn"), warmup, reps, "cuda")
    calls = [i for i, e in enumerate(events) if e == "fn"]
    timed = calls[warmup:]
    for i, at in enumerate(timed):
        upto = timed[i + 1] if i + 1 < len(timed) else len(events)
        if "sync" not in events[at + 1:upto]:
            fail(NO_SYNC)
    if warmup and timed and "sync" not in events[calls[warmup - 1] + 1:timed[0]]:
        fail("the device is not synchronized before the clock starts: the warm-up calls' queued GPU work would be "
             "timed with the first call; call synchronize(device) before start = time.perf_counter()")
