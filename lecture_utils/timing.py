"""Timing code honestly (chapter 09 and ``benchmarks/throughput.py``).

Three rules: warm up first (the first calls pay for memory allocation, kernel selection, caches and,
under ``torch.compile``, compilation); wait for the device before reading the clock (CUDA and MPS run
asynchronously: a Python call returns before the GPU has finished); report the median of several
runs (one slow run - another process, a garbage collection - moves the mean, not the median).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from lecture_utils.device import autocast_dtype
from lecture_utils.model import keep_attention
from lecture_utils.speed import use_fast_attention, use_fast_cpu_dropout, use_onednn_linear


def synchronize(device: torch.device | str | None) -> None:
    """Wait until ``device`` has finished its queued work (no-op on the CPU)."""
    if device is None:
        return
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def median_seconds(fn: Callable[[], object], warmup: int = 2, reps: int = 10, device=None) -> float:
    """Median wall-clock seconds of one call of ``fn()``: ``warmup`` untimed calls, then ``reps``
    timed ones, each between two :func:`synchronize` of ``device``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_batches(vocab_size: int, batch_size: int, block_size: int, n: int = 4, device="cpu", seed: int = 0):
    """``n`` pairs ``(x, y)`` of random token ids, ``(batch_size, block_size)`` each, on ``device``: inputs
    for timing a training step (the values do not matter for speed)."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(vocab_size, (batch_size, block_size), generator=g).to(device),
             torch.randint(vocab_size, (batch_size, block_size), generator=g).to(device)) for _ in range(n)]


def training_step(model: nn.Module, batches, device: torch.device | str, readable: bool = False,
                  lr: float = 3e-4, cpu_bf16: bool = False, fast_cpu_dropout: bool | None = None,
                  fast_cpu_paths: bool = False) -> Callable[[], float]:
    """A function doing one full training step (forward, backward, AdamW) on the next batch of
    ``batches`` (cycled), under bf16 autocast where :func:`autocast_dtype` says so (on a CPU: with
    ``cpu_bf16=True`` on CPUs with native bf16). With
    ``readable=True`` attention takes the written-out path (``q @ k^T``, mask, softmax, ``@ v``)
    instead of ``F.scaled_dot_product_attention``. ``fast_cpu_dropout`` (default: ``not readable``, as
    the training loop does) gives the model dropout masks drawn fast on a CPU
    (:func:`lecture_utils.speed.use_fast_cpu_dropout`; nothing changes on another device);
    ``fast_cpu_paths=True`` adds the training loop's other CPU paths, oneDNN's large products and the
    attention's mask in its first product (:func:`lecture_utils.speed.use_onednn_linear`,
    :func:`~lecture_utils.speed.use_fast_attention`; off by default, so that chapter 09's timings compare
    the attention code alone)."""
    device = torch.device(device)
    if (not readable if fast_cpu_dropout is None else fast_cpu_dropout) and device.type == "cpu":
        use_fast_cpu_dropout(model)
    if fast_cpu_paths and device.type == "cpu":
        use_fast_attention(use_onednn_linear(model))
    context = (lambda: keep_attention(model)) if readable else contextlib.nullcontext
    return optimizer_step(model, torch.optim.AdamW(model.parameters(), lr=lr), batches,
                          autocast_dtype(device, cpu_bf16), device.type, context)


def optimizer_step(model: nn.Module, optimizer, batches, amp_dtype: torch.dtype | None = None,
                   device_type: str = "cpu", context=contextlib.nullcontext) -> Callable[[], float]:
    """A function doing one training step of ``model`` with ``optimizer`` (forward, backward, step) on the next
    batch of ``batches`` (cycled), under autocast to ``amp_dtype`` when given and inside ``context()``; it
    returns the loss. :func:`training_step` builds one with AdamW; the benchmarks pass their own optimizers."""
    batches = list(batches)
    state = {"i": 0}

    def step() -> float:
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        with context(), (torch.autocast(device_type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()):
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


__all__ = ["synchronize", "median_seconds", "random_batches", "training_step", "optimizer_step"]
