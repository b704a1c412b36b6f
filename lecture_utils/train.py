"""Training: ``estimate_loss``, ``whole_split_loss`` and the training loop.

The loop is the lecture's (AdamW, random batches, an evaluation every ``eval_interval`` steps)
plus what a learner on a laptop needs: a progress bar, the best validation loss as well as the
last (this model overfits Tiny Shakespeare well before 5000 iterations), an optional live loss
plot in a notebook, a callback hook, optional warmup + cosine decay, and the best checkpoint so far.

What it is asked to do comes from :mod:`lecture_utils.config` (``TrainConfig``, the learning-rate
schedule, the presets); its machinery lives beside it, each in a module of its own:
:mod:`lecture_utils.optimizers` (AdamW groups, Muon), :mod:`lecture_utils.checkpoints` (save, read,
load, the shipped checkpoints), :mod:`lecture_utils.distributed` (several processes under ``torchrun``)
and :mod:`lecture_utils.speed` (the fast CPU dropout masks). Import their names from them.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from lecture_utils.checkpoints import CheckpointError, load_checkpoint_into, save_checkpoint
from lecture_utils.config import TrainConfig
from lecture_utils.data import CharTokenizer, get_batch
from lecture_utils.device import autocast_dtype
from lecture_utils.distributed import any_rank, mean_across_ranks, micro_batch_slots, rank_and_world
from lecture_utils.model import GPT, eval_mode
from lecture_utils.optimizers import make_optimizer
from lecture_utils.speed import use_fast_attention, use_fast_cpu_dropout, use_onednn_linear


@torch.no_grad()
def estimate_loss(
    model: nn.Module,
    splits: dict[str, torch.Tensor],
    eval_iters: int,
    block_size: int,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Mean loss over ``eval_iters`` random batches of each split (a single batch is noisy).

    Runs in eval mode (dropout off) without gradients, and puts the model back in the mode it was
    in. Batches go to the model's device.

    Returns:
        ``{split_name: mean_loss}``, e.g. ``{"train": 2.49, "val": 2.51}``.
    """
    if eval_iters < 1:
        raise ValueError(f"eval_iters must be >= 1, got {eval_iters}")
    device = _model_device(model)
    out = {}
    with eval_mode(model):
        for name, data in splits.items():
            losses = torch.zeros(eval_iters)
            for k in range(eval_iters):
                x, y = get_batch(data, block_size, batch_size, device=device, generator=generator)
                _, loss = model(x, y)
                losses[k] = loss.item()
            out[name] = losses.mean().item()
    return out


@torch.no_grad()
def whole_split_loss(model: nn.Module, split: torch.Tensor, block_size: int, batch_size: int = 64) -> float:
    """Mean loss of ``model`` over every token of ``split``, cut into consecutive windows of ``block_size``
    (each token predicted once, with the context a training window gives it): an exact figure where
    :func:`estimate_loss` samples.

    At a small evaluation budget the difference matters: 100 random batches of 12 x 64 characters
    differed from this by up to 0.024 on Tiny Shakespeare's validation split, and the best of ~20 such
    estimates read ~0.016 low (``benchmarks/cpu_budget.py``). Eval mode, no gradients; the model's
    mode is restored."""
    n = (len(split) - 1) // block_size
    if n < 1:
        raise ValueError(f"the split has {len(split)} tokens: too short for one window of {block_size} + 1")
    device = _model_device(model)
    x = split[: n * block_size].view(n, block_size)
    y = split[1 : n * block_size + 1].view(n, block_size)
    total = 0.0
    with eval_mode(model):
        for i in range(0, n, batch_size):
            xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
            _, loss = model(xb, yb)
            total += loss.item() * yb.numel()
    return total / (n * block_size)


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@dataclass
class TrainResult:
    """What :func:`train` measured. ``history`` holds one dict per evaluation."""

    history: list[dict] = field(default_factory=list)
    best_val: float = float("inf")
    best_iter: int = -1
    last_train: float = float("nan")
    last_val: float = float("nan")
    seconds: float = 0.0
    iters_done: int = 0
    step_losses: list[float] = field(default_factory=list)  # training loss of every step

    def summary(self) -> str:
        return (
            f"{self.iters_done} iters in {self.seconds:.0f} s: train {self.last_train:.4f}, "
            f"val {self.last_val:.4f} (best val {self.best_val:.4f} at iter {self.best_iter})"
        )


def train(
    model: nn.Module,
    train_data: torch.Tensor,
    val_data: torch.Tensor,
    config: TrainConfig | None = None,
    *,
    callback: Callable[[int, dict], None] | None = None,
    progress: bool = True,
    live_plot: bool = False,
    checkpoint: str | Path | None = None,
    tokenizer: CharTokenizer | None = None,
    resume: dict | None = None,
    checkpoint_extra: dict | None = None,
) -> TrainResult:
    """Train ``model`` with AdamW on random batches and evaluate every ``eval_interval`` steps (and
    at the end).

    Under ``torchrun`` (a process group initialised, ``model`` wrapped in DistributedDataParallel)
    each process computes ``grad_accum / world_size`` of the micro-batches of every step, so the
    global batch - and, with the same seed, the loss trajectory - is the same for any number of
    processes. Losses are averaged across processes; only rank 0 shows progress and writes the
    checkpoint (:mod:`lecture_utils.distributed`).

    Args:
        callback: called as ``callback(iter, losses)`` after each evaluation, with
            ``losses = {"train": ..., "val": ..., "lr": ...}``; raise ``StopIteration`` in it to stop early.
        progress: show a ``tqdm`` progress bar (notebook-aware).
        live_plot: in a notebook, redraw a loss plot at each evaluation.
        checkpoint: where to save the model whenever the val loss reaches a new best (atomic). The
            file also holds the training state at that evaluation (optimizer, iteration, random
            state, history), so ``resume`` can continue from it.
        tokenizer: saved inside the checkpoint so sampling needs nothing else.
        resume: a checkpoint's payload (:func:`lecture_utils.checkpoints.read_checkpoint`) written by this function: the run
            continues from the iteration of that checkpoint, with its weights, optimizer state, learning
            rate schedule, random state and best-so-far. With the same data and config, the losses
            that follow are those the original run had after that evaluation.
        checkpoint_extra: more entries for the checkpoint's ``extra`` dict (e.g. the CLI's preset name).

    Returns:
        a :class:`TrainResult` with the history, the last and the best val loss.

    Raises:
        CheckpointError: ``resume`` does not fit the model, or a checkpoint cannot be written (the
            message says why; the previous file is left as it was).
    """
    run = _Run(model, train_data, val_data, config or TrainConfig(), callback=callback, progress=progress,
               live_plot=live_plot, checkpoint=checkpoint, tokenizer=tokenizer, resume=resume,
               checkpoint_extra=checkpoint_extra)
    try:
        for it in range(run.first_iter, run.config.max_iters):
            if run.evaluation_due(it) and not run.evaluate(it):
                break
            if run.out_of_time():
                run.evaluate(it)
                break
            run.step(it)
        else:  # ran all max_iters (no break)
            run.evaluate(run.config.max_iters)
    finally:
        run.close()
    return run.result


class _Run:
    """One call of :func:`train`: what its steps share, and the steps themselves - :meth:`step` (one
    optimisation step), :meth:`evaluate` (losses, best checkpoint, callbacks) and the budget and
    progress bookkeeping (:meth:`out_of_time`, the bar, the clock)."""

    def __init__(self, model, train_data, val_data, config: TrainConfig, *, callback, progress, live_plot,
                 checkpoint, tokenizer, resume, checkpoint_extra):
        self.model, self.train_data, self.val_data, self.config = model, train_data, val_data, config
        self.callback, self.checkpoint, self.tokenizer = callback, checkpoint, tokenizer
        self.resume, self.checkpoint_extra = resume, checkpoint_extra or {}
        self.raw = raw = getattr(model, "module", model)  # the model itself, under a DDP wrapper or not
        self.device = device = _model_device(raw)
        rank, self.world = rank_and_world()
        self.main = rank == 0
        slots = micro_batch_slots(config.grad_accum)
        self.per_rank = len(slots)
        self.block_size = training_block_size(config, raw)
        # one generator per micro-batch slot: slot s draws the same batches whichever process owns it
        self.gens = [torch.Generator().manual_seed(config.seed + 7919 * s) for s in slots]
        self.eval_gen = torch.Generator().manual_seed(config.seed + 1)
        if device.type == "cuda":  # TF32 for any fp32 matmul left outside autocast
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if config.fast_cpu_dropout and device.type == "cpu" and isinstance(raw, GPT):
            use_fast_cpu_dropout(raw)  # the speed path: the same dropout, its masks drawn by numpy
        if config.fast_cpu_paths and device.type == "cpu" and isinstance(raw, GPT):
            use_fast_attention(use_onednn_linear(raw))  # the same products, faster (the attention's needs numpy's masks)
        self.optimizer = make_optimizer(raw, config, device)
        self.step_model = torch.compile(model) if config.compile else model
        amp_dtype = autocast_dtype(device, config.cpu_bf16)
        self.autocast = ((lambda: torch.autocast(device_type=device.type, dtype=amp_dtype))
                         if amp_dtype is not None else contextlib.nullcontext)
        self.result = TrainResult()
        self.first_iter, elapsed_before = 0, 0.0
        if resume is not None:
            self.first_iter, elapsed_before = _restore(resume, raw, self.optimizer, self.result, self.eval_gen, device)
            if self.first_iter >= config.max_iters:
                raise ValueError(f"the checkpoint is already at iteration {self.first_iter}: max_iters={config.max_iters} "
                                 f"leaves nothing to train; raise max_iters (--max-iters) above {self.first_iter}")
            for g in self.gens:  # each slot's batches continue where they were: skip the ones already drawn
                for _ in range(self.first_iter):
                    torch.randint(len(train_data) - self.block_size, (config.batch_size,), generator=g)
        self.plot = _LivePlot() if live_plot and self.main else None
        self.bar = _progress_bar(None if config.time_budget else config.max_iters, progress and self.main)
        if self.bar is not None and self.first_iter:
            self.bar.update(self.first_iter)
        self.start = time.perf_counter() - elapsed_before
        self.eval_seconds = 0.0  # how long the last evaluation took: a time budget keeps room for the final one
        model.train()

    # --- the budget and the clock ---------------------------------------------------------------

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def evaluation_due(self, it: int) -> bool:
        """Every ``eval_interval`` steps; a resumed run has done the one at its first iteration already."""
        every = self.config.eval_interval
        return bool(every) and it % every == 0 and not (self.resume is not None and it == self.first_iter)

    def out_of_time(self) -> bool:
        """The time budget cannot fit another step and the final evaluation; every process agrees."""
        budget = self.config.time_budget
        return any_rank(bool(budget and self.elapsed() + self.eval_seconds >= budget), self.device)

    # --- one optimisation step ------------------------------------------------------------------

    def step(self, it: int) -> None:
        """Set the learning rate of step ``it``, accumulate the gradients of this process's micro-batches
        (averaged across processes on the last one), clip, and step the optimizer."""
        config, device = self.config, self.device
        elapsed = self.elapsed()
        lr = config.lr_at(it, mean_across_ranks(elapsed, device) if self.world > 1 else elapsed)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        self.optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for j, g in enumerate(self.gens):
            xb, yb = get_batch(self.train_data, self.block_size, config.batch_size, device=device, generator=g)
            # gradients are averaged across processes once, on the last micro-batch
            last = j == len(self.gens) - 1
            with contextlib.nullcontext() if last or self.world == 1 else self.model.no_sync():
                with self.autocast():
                    _, loss = self.step_model(xb, yb)
                (loss / self.per_rank).backward()
            step_loss += loss.item() / self.per_rank
        if not math.isfinite(step_loss):
            raise FloatingPointError(f"the training loss became {step_loss} at iteration {it}: lower the learning "
                                     f"rate (now {lr:g}) or turn on grad_clip")
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.raw.parameters(), config.grad_clip)
        self.optimizer.step()
        self.result.step_losses.append(mean_across_ranks(step_loss, device) if self.world > 1 else step_loss)
        self.result.iters_done = it + 1
        if self.bar is not None:
            self.bar.update(1)

    # --- evaluation -----------------------------------------------------------------------------

    def evaluate(self, it: int) -> bool:
        """Estimate both losses, keep the best (and its checkpoint), report; False when the callback
        asked to stop."""
        t0 = time.perf_counter()
        config, result = self.config, self.result
        losses = estimate_loss(self.raw, {"train": self.train_data, "val": self.val_data}, config.eval_iters,
                               self.block_size, config.batch_size, generator=self.eval_gen)
        losses = {k: mean_across_ranks(v, self.device) for k, v in losses.items()}
        losses["lr"] = self.optimizer.param_groups[0]["lr"]
        self.eval_seconds = time.perf_counter() - t0
        result.history.append({"iter": it, **losses, "time": self.elapsed()})
        result.last_train, result.last_val = losses["train"], losses["val"]
        if losses["val"] < result.best_val:
            result.best_val, result.best_iter = losses["val"], it
            if self.checkpoint is not None and self.main:
                self.save(it, losses["val"])
        if self.bar is not None:
            self.bar.set_postfix(train=f"{losses['train']:.4f}", val=f"{losses['val']:.4f}",
                                 best=f"{result.best_val:.4f}")
        if self.plot is not None:
            self.plot.update(result.history)
        if self.callback is not None:
            try:
                self.callback(it, losses)
            except StopIteration:
                return False
        return True

    def save(self, it: int, val_loss: float) -> None:
        """The best checkpoint so far, with the training state :func:`_restore` needs to resume."""
        result = self.result
        state = {"iter": it, "optimizer": self.optimizer.state_dict(), "eval_generator": self.eval_gen.get_state(),
                 "torch_rng": torch.get_rng_state(), "history": result.history, "step_losses": result.step_losses,
                 "best_val": result.best_val, "best_iter": result.best_iter, "elapsed": self.elapsed()}
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        save_checkpoint(self.checkpoint, self.raw, tokenizer=self.tokenizer, train_config=self.config,
                        training_state=state, extra={"iter": it, "val_loss": val_loss, "world_size": self.world,
                                                     **self.checkpoint_extra})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.result.seconds = self.elapsed()


def training_block_size(config: TrainConfig, model: nn.Module) -> int:
    """The context length a run trains on: the model's own ``block_size``, or ``config.block_size``
    where given (the shorter of the two where both are).

    Raises:
        ValueError: neither says (a bigram model and no ``TrainConfig.block_size``).
    """
    own = getattr(model, "block_size", None)
    if config.block_size is None:
        if own is None:
            raise ValueError(f"{type(model).__name__} has no block_size of its own: give the context length to train "
                             "on, TrainConfig(block_size=8)")
        return own
    return config.block_size if own is None else min(config.block_size, own)


def _restore(payload: dict, model: nn.Module, optimizer, result: TrainResult, eval_gen: torch.Generator,
             device: torch.device) -> tuple[int, float]:
    """Put the state a checkpoint saved back into ``model``, ``optimizer``, ``result``, the evaluation
    generator and torch's random state. Returns ``(iteration, seconds already trained)``."""
    state = payload.get("training")
    if not isinstance(state, dict):
        raise CheckpointError("this checkpoint holds weights only, no training state to resume from (it was "
                              "written by an older version of the course or by save_checkpoint without it); "
                              "start a new run instead")
    load_checkpoint_into(payload, model)
    try:
        optimizer.load_state_dict(state["optimizer"])
        eval_gen.set_state(state["eval_generator"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        result.history = list(state["history"])
        result.step_losses = list(state["step_losses"])
        result.best_val, result.best_iter = float(state["best_val"]), int(state["best_iter"])
        it = int(state["iter"])
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"the training state in this checkpoint does not fit this run ({type(exc).__name__}); "
                              "resume with the optimizer and settings it was trained with, or start a new run") from None
    last = result.history[-1] if result.history else {}
    result.last_train, result.last_val = last.get("train", float("nan")), last.get("val", float("nan"))
    result.iters_done = it
    return it, float(state.get("elapsed", 0.0))


def _progress_bar(total: int | None, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="training", unit="it", leave=True)


class _LivePlot:
    """Train/val loss curves redrawn in place in a notebook (no-op outside IPython)."""

    def __init__(self):
        try:
            import matplotlib.pyplot as plt
            from IPython.display import display
        except ImportError:  # pragma: no cover
            self.handle = None
            return
        self.plt = plt
        self.fig, self.ax = plt.subplots(figsize=(6, 3.5))
        plt.close(self.fig)
        self.handle = display(self.fig, display_id=True)

    def update(self, history: list[dict]) -> None:
        if self.handle is None:
            return
        ax = self.ax
        ax.clear()
        its = [h["iter"] for h in history]
        ax.plot(its, [h["train"] for h in history], label="train")
        ax.plot(its, [h["val"] for h in history], label="val")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.legend()
        ax.grid(alpha=0.3)
        self.handle.update(self.fig)


__all__ = ["estimate_loss", "whole_split_loss", "TrainResult", "train", "training_block_size"]

