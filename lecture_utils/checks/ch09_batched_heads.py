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
from lecture_utils.checks._device import on_second_device
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


@exercise("9.1")
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
    # atol 1e-4: the two layouts sum in different orders (SDPA against the heads' own matmuls), and with N(0, 0.5)
    # weights the outputs reach about 25, where float32 rounding alone left up to 3e-5 in 10 of 2,000 seeds on one
    # thread (a right answer failed 1 time in 200 at the default 1e-5); a wrong fusion is off by about 1
    if same(got, want, atol=1e-4):
        on_second_device(heads_to_batched, mha, csa, device=device, what="heads_to_batched", what_input="mha")
        return passed("the fused model computes exactly what the list of heads computes", heads_to_batched)
    fused = csa.qkv.weight.detach()
    for hint, variant in _fused_variants(mha):
        if same(fused, variant()):
            fail(hint)
    if not same(csa.proj.weight, mha.proj.weight) or not same(csa.proj.bias, mha.proj.bias):
        fail("the output projection is not copied: csa.proj.load_state_dict(mha.proj.state_dict())")
    fail_generic("the fused model's output differs from the list of heads' (the qkv weight should be cat([cat of the heads' "
         "query weights, ... key ..., ... value ...]), the projection copied as it is)")


# 9.2's fake workload: slow warm-up calls, then quick calls with one outlier among them. A sleep never returns early,
# so a mean (or a loop divided by reps) is at least (4 * USUAL + OUTLIER) / 5 = 83 ms whatever the machine's load, while
# a median is one quick call (4 ms, plus whatever a busy machine adds to it). Few reps and a long outlier: a mean moves
# by the outlier / REPS, so that is where the sleeping buys the widest gap between a median and a mean.
WARMUP, REPS = 3, 5
SLOW_FIRST, USUAL, OUTLIER = 0.05, 0.004, 0.4
MEAN_FLOOR = ((REPS - 1) * USUAL + OUTLIER) / REPS
TOTAL_FLOOR = WARMUP * SLOW_FIRST + (REPS - 1) * USUAL + OUTLIER  # 0.57 s
PULLED_UP = 0.8 * MEAN_FLOOR  # above this, a median has been pulled up by the outlier - or the machine is very busy
ATTEMPTS = 3  # a median is judged only when no attempt came out below PULLED_UP, then beside the reference's


def _workload(outlier_at: int):
    """A fresh ``fn`` following 9.2's schedule, its list of calls, and what each call really took."""
    calls: list[int] = []
    took: list[float] = []  # what each call really took: on a busy machine a sleep overshoots

    def fn():
        n = len(calls)
        calls.append(n)
        start = time.perf_counter()
        time.sleep(SLOW_FIRST if n < WARMUP else OUTLIER if n == outlier_at else USUAL)
        took.append(time.perf_counter() - start)

    return fn, calls, took


def _course_seconds(outlier_at: int) -> float:
    """The course's median_seconds on a fresh workload with the same schedule, timed now (on the same machine)."""
    fn, _, _ = _workload(outlier_at)
    return ref_timing.median_seconds(fn, WARMUP, REPS, None)


def _pulled_up(results: list[float], references: list[float]) -> bool:
    """Whether the learner's results carry the outlier (as a mean does), given the reference's figures for the same
    schedules, each timed right after one of them. Called only when every result is above PULLED_UP.

    Load-proof: a mean is never below MEAN_FLOOR (sleeps do not end early), so it is always above PULLED_UP; a median
    lies above PULLED_UP only when the machine adds more than 60 ms to most calls. Then the fastest of the learner's
    attempts is set beside the fastest of the reference's (the least disturbed of each): a median on a busy machine is
    no more than half the outlier's share of a mean above it; a mean is the whole share above it."""
    fastest, reference = min(results), min(references)
    return reference <= PULLED_UP or fastest > reference + (OUTLIER - USUAL) / (2 * REPS)


@exercise("9.2")
@blame_notebook_globals
def median_seconds(median_seconds, device="cpu"):
    """``median_seconds(fn, warmup=2, reps=10, device=None)``: ``warmup`` untimed calls, then the
    median of ``reps`` timed calls, in seconds."""
    g = rng(fresh_seed())
    warmup, reps = WARMUP, REPS
    results: list[float] = []  # the learner's figures above PULLED_UP, one per attempt
    references: list[float] = []  # the reference's, timed right after each
    for attempt in range(ATTEMPTS):
        outlier_at = warmup + int(torch.randint(reps, (1,), generator=g))
        fn, calls, took = _workload(outlier_at)
        result = call(median_seconds, fn, warmup, reps, device)
        if attempt == 0:  # what does not depend on the machine's speed is judged once
            expect(isinstance(result, (int, float)) or (isinstance(result, torch.Tensor) and result.numel() == 1),
                   f"median_seconds should return a number of seconds, got {type(result).__name__}")
            result = float(result)
            n = len(calls)
            if n == reps:
                fail(f"fn was called {n} times: call it warmup={warmup} times before timing (the first calls pay for "
                     f"allocation and caches), then reps={reps} timed times")
            expect(n == warmup + reps,
                   f"fn should be called warmup + reps = {warmup + reps} times, it was called {n} times")
            if result > 1.0:
                fail(f"got {result:.3g}: return seconds (time.perf_counter() differences), not milliseconds")
            if result > 0.9 * TOTAL_FLOOR:  # all calls together take at least TOTAL_FLOOR, one call far less
                fail(f"got {result:.3f} s: that is the total time of all calls; return the time of one call "
                     f"(the median)")
            expect(result >= 0.9 * min(took[warmup:]), f"got {result * 1e3:.2f} ms, less than any call took "
                                                       f"({min(took[warmup:]) * 1e3:.0f} ms): time "
                                                       f"each call with time.perf_counter() before and after")
        result = float(result)
        if result <= PULLED_UP:  # a mean never is: the check is done
            break
        results.append(result)
        references.append(_course_seconds(outlier_at))
    else:
        if _pulled_up(results, references):
            typical = statistics.median(took[warmup:])
            fail(f"got {min(results) * 1e3:.1f} ms, but a typical call took {typical * 1e3:.0f} ms (the course's "
                 f"median_seconds measured {min(references) * 1e3:.0f} ms on the same calls): one slow call (an outlier, "
                 f"or the warm-up calls) pulled it up - that is what a mean does; use statistics.median of the reps times")
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
