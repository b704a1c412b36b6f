"""lecture_utils.timing: the helpers behind chapter 09 and benchmarks/throughput.py."""

from __future__ import annotations

import time

import torch

from lecture_utils import timing
from lecture_utils.model import GPT, GPTConfig


def test_median_seconds_warms_up_and_ignores_an_outlier():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.05 if len(calls) in (1, 5) else 0.002)  # slow first call, one outlier

    t = timing.median_seconds(fn, warmup=1, reps=7, device="cpu")
    assert len(calls) == 8
    assert 0.0015 < t < 0.02


def test_synchronize_is_a_no_op_on_cpu():
    timing.synchronize("cpu")
    timing.synchronize(None)


def test_training_step_trains_on_both_attention_paths():
    cfg = GPTConfig(vocab_size=5, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.0)
    batch = torch.arange(9).remainder(5).repeat(4, 1)
    for readable in (False, True):
        torch.manual_seed(0)
        step = timing.training_step(GPT(cfg), [(batch[:, :-1], batch[:, 1:])], "cpu", readable=readable, lr=1e-2)
        first = step()
        for _ in range(30):
            last = step()
        assert last < 0.5 * first


def test_training_step_takes_the_training_loops_fast_paths_only_when_asked():
    """Chapter 09 times the attention code alone (plain linear layers); the ablation times a step as train() runs it."""
    import torch.nn as nn

    from lecture_utils.speed import OneDNNLinear

    cfg = GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.1)
    batches = timing.random_batches(65, 2, 8, 2, "cpu")
    for fast, expected in ((False, nn.Linear), (True, OneDNNLinear)):
        model = GPT(cfg)
        step = timing.training_step(model, batches, "cpu", fast_cpu_paths=fast)
        assert {type(m) for m in model.modules() if isinstance(m, nn.Linear)} == {expected}
        assert torch.isfinite(torch.tensor(step()))
