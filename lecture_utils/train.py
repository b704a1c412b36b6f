"""Training: ``estimate_loss``, the training loop, presets and checkpoints.

The loop is the lecture's (AdamW, random batches, an evaluation every ``eval_interval`` steps)
plus what a learner on a laptop needs: a progress bar, the best validation loss as well as the
last (this model overfits Tiny Shakespeare well before 5000 iterations), an optional live loss
plot in a notebook, a callback hook, optional warmup + cosine decay, and checkpoints written
atomically (temporary file + rename) so an interrupted save never leaves a broken file.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from collections.abc import Callable

import torch
import torch.nn as nn

from lecture_utils.data import CharTokenizer, get_batch
from lecture_utils.device import autocast_dtype
from lecture_utils.model import GPT, BigramLanguageModel, ConfigError, GPTConfig, eval_mode


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
class TrainConfig:
    """Optimisation settings. Defaults are the lecture's final run."""

    max_iters: int = 5000
    eval_interval: int = 500
    eval_iters: int = 200
    batch_size: int = 64
    block_size: int = 256
    learning_rate: float = 3e-4
    weight_decay: float = 0.01  # AdamW's default, as in the lecture
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 0.0  # 0 = off
    warmup_iters: int = 0
    lr_decay: bool = False  # cosine decay to min_lr over max_iters
    min_lr: float = 0.0
    seed: int = 1337
    compile: bool = False
    time_budget: float = 0.0  # seconds of wall clock (evaluation included); 0 = run max_iters
    grad_accum: int = 1  # micro-batches per step (split across processes under torchrun)
    cpu_bf16: bool = False  # bf16 autocast on CPUs with native bf16 (AVX512-BF16/AMX); evaluation stays fp32
    optimizer: str = "adamw"  # or "muon": Muon for the blocks' weight matrices, AdamW for the rest
    muon_lr: float = 0.02  # Muon's peak learning rate (the schedule scales it like learning_rate)
    decay_all: bool = True  # weight decay on every parameter (the lecture's AdamW); False: matrices only

    def __post_init__(self):
        for f in fields(self):
            problem = _train_field_problem(f.name, f.type, getattr(self, f.name))
            if problem:
                raise ConfigError("TrainConfig", [f.name], "{0} " + problem)
        if self.lr_decay and self.min_lr > self.learning_rate:
            raise ConfigError("TrainConfig", ["min_lr", "learning_rate"],
                              f"{{0}}={self.min_lr:g} is above {{1}}={self.learning_rate:g}: the decay would raise the rate")

    def lr_at(self, it: int, elapsed: float | None = None) -> float:
        """Learning rate at iteration ``it``: linear warmup, then constant or cosine decay
        (:func:`warmup_cosine_lr`). With a ``time_budget`` the decay follows the elapsed fraction of
        the budget instead of iterations."""
        if (self.warmup_iters and it < self.warmup_iters) or not self.lr_decay:
            return warmup_cosine_lr(it, self.learning_rate, self.learning_rate, self.warmup_iters, self.max_iters)
        if self.time_budget and elapsed is not None:
            return _cosine(min(1.0, elapsed / self.time_budget), self.learning_rate, self.min_lr)
        return warmup_cosine_lr(it, self.learning_rate, self.min_lr, self.warmup_iters, self.max_iters)


# What each TrainConfig field accepts (the type comes from the field's annotation): (lowest, lowest
# allowed?, highest, highest allowed?). Fields not listed take any value of their type.
_TRAIN_RANGES: dict[str, tuple] = {
    "max_iters": (1, True, None, False), "eval_iters": (1, True, None, False), "batch_size": (1, True, None, False),
    "block_size": (1, True, None, False), "grad_accum": (1, True, None, False),
    "eval_interval": (0, True, None, False), "warmup_iters": (0, True, None, False),
    "learning_rate": (0, False, None, False), "muon_lr": (0, False, None, False),
    "weight_decay": (0, True, None, False), "grad_clip": (0, True, None, False), "min_lr": (0, True, None, False),
    "time_budget": (0, True, None, False), "beta1": (0, True, 1, False), "beta2": (0, True, 1, False),
    "seed": (0, True, 2**63 - 1, True),
}
_TRAIN_CHOICES = {"optimizer": ("adamw", "muon")}


def _train_field_problem(name: str, type_name: str, value) -> str | None:
    """What is wrong with ``value`` for TrainConfig's field ``name`` (None: nothing), e.g.
    ``"must be an integer >= 1, got -5"``."""
    type_name = getattr(type_name, "__name__", type_name)
    if type_name == "bool":
        return None if isinstance(value, bool) else f"must be True or False, got {value!r}"
    if name in _TRAIN_CHOICES:
        allowed = _TRAIN_CHOICES[name]
        return None if value in allowed else f"must be {' or '.join(map(repr, allowed))}, got {value!r}"
    if type_name == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {value!r}"
    elif type_name == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {value!r}"
        if not math.isfinite(value):
            return f"must be a finite number, got {value}"
    else:
        return None
    lo, lo_ok, hi, hi_ok = _TRAIN_RANGES.get(name, (None, True, None, True))
    too_low = lo is not None and (value < lo or (value == lo and not lo_ok))
    too_high = hi is not None and (value > hi or (value == hi and not hi_ok))
    if not (too_low or too_high):
        return None
    if type_name == "int" and hi is None:
        return f"must be an integer >= {lo}, got {value}"
    if hi is None:
        return f"must be {'>=' if lo_ok else '>'} {lo}, got {value}"
    return f"must be in {'[' if lo_ok else '('}{lo}, {hi}{']' if hi_ok else ')'}, got {value}"


def _cosine(progress: float, max_lr: float, min_lr: float) -> float:
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def warmup_cosine_lr(it: int, max_lr: float, min_lr: float, warmup_iters: int, max_iters: int) -> float:
    """Linear warmup then cosine decay (chapter 12).

    Steps ``0 .. warmup_iters-1`` rise linearly to ``max_lr`` (``max_lr * (it + 1) / warmup_iters``,
    so the first step already learns a little); from ``warmup_iters`` to ``max_iters`` the rate follows
    half a cosine from ``max_lr`` down to ``min_lr``; after ``max_iters`` it stays at ``min_lr``.
    """
    if it < warmup_iters:
        return max_lr * (it + 1) / warmup_iters
    progress = min(1.0, (it - warmup_iters) / max(1, max_iters - warmup_iters))
    return _cosine(progress, max_lr, min_lr)


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
    checkpoint.

    Args:
        callback: called as ``callback(iter, losses)`` after each evaluation, with
            ``losses = {"train": ..., "val": ..., "lr": ...}``; raise ``StopIteration`` in it to stop early.
        progress: show a ``tqdm`` progress bar (notebook-aware).
        live_plot: in a notebook, redraw a loss plot at each evaluation.
        checkpoint: where to save the model whenever the val loss reaches a new best (atomic). The
            file also holds the training state at that evaluation (optimizer, iteration, random
            state, history), so ``resume`` can continue from it.
        tokenizer: saved inside the checkpoint so sampling needs nothing else.
        resume: a checkpoint's payload (:func:`read_checkpoint`) written by this function: the run
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
    config = config or TrainConfig()
    raw = getattr(model, "module", model)  # the model itself, under a DDP wrapper or not
    device = _model_device(raw)
    rank, world = _rank_and_world()
    if config.grad_accum < 1 or config.grad_accum % world:
        raise ValueError(f"grad_accum={config.grad_accum} must be a positive multiple of the number of "
                         f"processes ({world}); e.g. --grad-accum {world * max(1, config.grad_accum // world)}")
    per_rank = config.grad_accum // world
    slots = range(rank * per_rank, (rank + 1) * per_rank)
    block_size = min(config.block_size, getattr(raw, "block_size", None) or config.block_size)
    # one generator per micro-batch slot: slot s draws the same batches whichever process owns it
    gens = [torch.Generator().manual_seed(config.seed + 7919 * s) for s in slots]
    eval_gen = torch.Generator().manual_seed(config.seed + 1)
    if device.type == "cuda":  # TF32 for any fp32 matmul left outside autocast
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    optimizer = make_optimizer(raw, config, device)
    step_model = torch.compile(model) if config.compile else model
    amp_dtype = autocast_dtype(device, config.cpu_bf16)
    autocast = (
        (lambda: torch.autocast(device_type=device.type, dtype=amp_dtype))
        if amp_dtype is not None
        else contextlib.nullcontext
    )
    main_process = rank == 0
    result = TrainResult()
    first_iter, elapsed_before = 0, 0.0
    if resume is not None:
        first_iter, elapsed_before = _restore(resume, raw, optimizer, result, eval_gen, device)
        if first_iter >= config.max_iters:
            raise ValueError(f"the checkpoint is already at iteration {first_iter}: max_iters={config.max_iters} "
                             f"leaves nothing to train; raise max_iters (--max-iters) above {first_iter}")
        for g in gens:  # each slot's batches continue where they were: skip the ones already drawn
            for _ in range(first_iter):
                torch.randint(len(train_data) - block_size, (config.batch_size,), generator=g)
    plot = _LivePlot() if live_plot and main_process else None
    bar = _progress_bar(None if config.time_budget else config.max_iters, progress and main_process)
    if bar is not None and first_iter:
        bar.update(first_iter)
    start = time.perf_counter() - elapsed_before
    model.train()

    eval_seconds = [0.0]  # how long the last evaluation took: a time budget keeps room for the final one

    def evaluate(it: int) -> bool:
        t0 = time.perf_counter()
        losses = estimate_loss(raw, {"train": train_data, "val": val_data}, config.eval_iters,
                               block_size, config.batch_size, generator=eval_gen)
        losses = {k: _mean_across_ranks(v, device) for k, v in losses.items()}
        losses["lr"] = optimizer.param_groups[0]["lr"]
        eval_seconds[0] = time.perf_counter() - t0
        result.history.append({"iter": it, **losses, "time": time.perf_counter() - start})
        result.last_train, result.last_val = losses["train"], losses["val"]
        if losses["val"] < result.best_val:
            result.best_val, result.best_iter = losses["val"], it
            if checkpoint is not None and main_process:
                state = {"iter": it, "optimizer": optimizer.state_dict(), "eval_generator": eval_gen.get_state(),
                         "torch_rng": torch.get_rng_state(), "history": result.history,
                         "step_losses": result.step_losses, "best_val": result.best_val,
                         "best_iter": result.best_iter, "elapsed": time.perf_counter() - start}
                if device.type == "cuda":
                    state["cuda_rng"] = torch.cuda.get_rng_state(device)
                save_checkpoint(checkpoint, raw, tokenizer=tokenizer, train_config=config, training_state=state,
                                extra={"iter": it, "val_loss": losses["val"], "world_size": world,
                                       **(checkpoint_extra or {})})
        if bar is not None:
            bar.set_postfix(train=f"{losses['train']:.4f}", val=f"{losses['val']:.4f}",
                            best=f"{result.best_val:.4f}")
        if plot is not None:
            plot.update(result.history)
        if callback is not None:
            try:
                callback(it, losses)
            except StopIteration:
                return False
        return True

    it = first_iter
    try:
        for it in range(first_iter, config.max_iters):
            # a resumed run has done the evaluation at its first iteration already (it is in the checkpoint)
            if config.eval_interval and it % config.eval_interval == 0 and not (resume is not None and it == first_iter):
                if not evaluate(it):
                    break
            elapsed = time.perf_counter() - start
            out_of_time = bool(config.time_budget and elapsed + eval_seconds[0] >= config.time_budget)
            if _any_rank(out_of_time, device):  # every process stops at the same step
                evaluate(it)
                break
            lr = config.lr_at(it, _mean_across_ranks(elapsed, device) if world > 1 else elapsed)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for j, g in enumerate(gens):
                xb, yb = get_batch(train_data, block_size, config.batch_size, device=device, generator=g)
                # gradients are averaged across processes once, on the last micro-batch
                sync = contextlib.nullcontext() if j == len(gens) - 1 or world == 1 else model.no_sync()
                with sync:
                    with autocast():
                        _, loss = step_model(xb, yb)
                    (loss / per_rank).backward()
                step_loss += loss.item() / per_rank
            if not math.isfinite(step_loss):
                raise FloatingPointError(
                    f"the training loss became {step_loss} at iteration {it}: lower the learning "
                    f"rate (now {lr:g}) or turn on grad_clip"
                )
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(raw.parameters(), config.grad_clip)
            optimizer.step()
            result.step_losses.append(_mean_across_ranks(step_loss, device) if world > 1 else step_loss)
            result.iters_done = it + 1
            if bar is not None:
                bar.update(1)
        else:  # ran all max_iters (no break)
            evaluate(config.max_iters)
    finally:
        if bar is not None:
            bar.close()
        result.seconds = time.perf_counter() - start
    return result


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


def _rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _mean_across_ranks(value: float, device: torch.device) -> float:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t)
    return t.item() / dist.get_world_size()


def _any_rank(flag: bool, device: torch.device) -> bool:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device):
    """AdamW with ``config``'s settings (its fused kernel on CUDA and on the CPU); with
    ``config.optimizer == "muon"``, :class:`Muon` for every weight matrix inside the blocks and AdamW
    for the rest (embeddings, ``lm_head``, norms, biases). Each param group's ``lr_scale`` is its peak
    rate over ``config.learning_rate``: the training loop multiplies the schedule by it."""
    if config.optimizer not in ("adamw", "muon"):
        raise ValueError(f"TrainConfig.optimizer must be 'adamw' or 'muon', got {config.optimizer!r}")
    kwargs = dict(lr=config.learning_rate, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay)
    if device.type in ("cuda", "cpu"):  # one fused kernel for all parameters: on a CPU 0.8 ms instead of 4.8 ms
        kwargs["fused"] = True          # at the cpu preset's size, ~7 % of its training step (throughput.py --optimizers)
    if config.optimizer == "adamw":
        return _adamw(_decay_groups(list(model.parameters()), config), kwargs)
    matrices = [p for n, p in model.named_parameters() if p.ndim == 2 and n.startswith("blocks.")]
    chosen = {id(p) for p in matrices}
    rest = [p for p in model.parameters() if id(p) not in chosen]
    if not matrices:
        raise ValueError("optimizer='muon' found no weight matrices under model.blocks; use 'adamw' for this model")
    adamw = _adamw(_decay_groups(rest, config), kwargs)
    muon = Muon(matrices, lr=config.muon_lr)
    muon.param_groups[0]["lr_scale"] = config.muon_lr / config.learning_rate
    return _Optimizers(adamw, muon)


def _decay_groups(params: list, config: TrainConfig) -> list:
    """``params`` as they are (``decay_all``: every parameter decays, as the lecture's
    ``AdamW(model.parameters())``), or split in two param groups: weight matrices and embedding tables
    (2-d) decay, biases and norm gains (1-d) do not - decaying a LayerNorm's gain pulls it towards 0,
    which nothing in the loss asks for."""
    if config.decay_all:
        return params
    return [{"params": [p for p in params if p.ndim >= 2]},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def _adamw(params: list, kwargs: dict) -> torch.optim.AdamW:
    try:
        return torch.optim.AdamW(params, **kwargs)
    except (RuntimeError, ValueError):  # a torch without the fused kernel for this device (CPU: torch < 2.4)
        return torch.optim.AdamW(params, **{k: v for k, v in kwargs.items() if k != "fused"})


def newton_schulz(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """The matrix ``g`` (or each matrix of a stack ``(..., rows, cols)``) with every singular value
    pushed towards 1 (roughly ``U V^T`` of ``g = U S V^T``), by ``steps`` iterations of a quintic
    Newton-Schulz polynomial.

    The coefficients (3.4445, -4.7750, 2.0315) are the ones published with Muon (K. Jordan et al.,
    2024): chosen so that few iterations take small singular values up fast; the result's singular
    values land roughly in [0.7, 1.2], which is all the optimizer needs."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.float()
    wide = x.size(-2) <= x.size(-1)
    if not wide:  # iterate on the smaller Gram matrix
        x = x.mT
    x = x / (torch.linalg.matrix_norm(x, keepdim=True) + 1e-7)  # spectral norm <= Frobenius norm <= 1
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x if wide else x.mT).to(g.dtype)


class Muon(torch.optim.Optimizer):
    """Momentum, orthogonalised: for each weight matrix, keep a Nesterov momentum of its gradient,
    replace that by :func:`newton_schulz` of it (same directions, all singular values ~1), and step
    by ``lr * sqrt(max(1, rows / cols))``. Only for 2-D weights inside the network; embeddings,
    the output layer, norms and biases belong to AdamW (:func:`make_optimizer` splits them).
    Matrices of the same shape are orthogonalised together, as one stack (fewer, larger matmuls)."""

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, ns_steps: int = 5):
        super().__init__(params, dict(lr=lr, momentum=momentum, ns_steps=ns_steps))
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon takes weight matrices only, got a parameter of shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            by_shape: dict[tuple, list] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(p.grad)
                buf = state["momentum"]
                buf.mul_(group["momentum"]).add_(p.grad)
                by_shape.setdefault(tuple(p.shape), []).append((p, p.grad.add(buf, alpha=group["momentum"])))
            for (rows, cols), items in by_shape.items():
                updates = newton_schulz(torch.stack([g for _, g in items]), group["ns_steps"])
                for (p, _), update in zip(items, updates):
                    p.add_(update, alpha=-group["lr"] * max(1.0, rows / cols) ** 0.5)


class _Optimizers:
    """Several optimizers stepped as one (``param_groups``, ``zero_grad``, ``step``)."""

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers
        self.param_groups = [g for o in optimizers for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.optimizers:
            o.step()

    def state_dict(self) -> dict:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["optimizers"]) != len(self.optimizers):
            raise ValueError("the checkpoint was trained with another optimizer")
        for o, st in zip(self.optimizers, state["optimizers"]):
            o.load_state_dict(st)


def _progress_bar(total: int | None, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="training", unit="it", leave=True)


class _LivePlot:
    """Train/val loss curves redrawn in place in a notebook (no-op outside IPython)."""

    def __init__(self):
        try:
            from IPython.display import display

            import matplotlib.pyplot as plt
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


# ---------------------------------------------------------------------------------------------
# presets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """A named model + optimisation configuration for the CLI and the notebooks."""

    name: str
    description: str
    model: GPTConfig | None  # None = bigram
    train: TrainConfig


_CPU = Preset(
    "cpu", "the well-known small CPU GPT given 10 minutes (benchmarks/cpu_budget.py's baseline; chapters 11-12 "
    "start from it): 4 layers, 4 heads, n_embd 128, block 64, batch 12, lr 1e-3 with warmup and cosine decay "
    "over a 600 s budget",
    GPTConfig(block_size=64, n_embd=128, n_head=4, n_layer=4, dropout=0.0),
    TrainConfig(max_iters=10**9, eval_interval=500, eval_iters=100, batch_size=12, block_size=64,
                learning_rate=1e-3, beta2=0.99, warmup_iters=100, lr_decay=True, min_lr=1e-4, time_budget=600.0),
)

PRESETS: dict[str, Preset] = {
    "bigram": Preset(
        "bigram", "the lecture's bigram model: batch 32, block 8, lr 1e-2, 3000 iters",
        None,
        TrainConfig(max_iters=3000, eval_interval=300, eval_iters=200, batch_size=32, block_size=8,
                    learning_rate=1e-2),
    ),
    "lecture-small": Preset(
        "lecture-small", "the lecture's small GPT: n_embd 32, 4 heads, 3 layers, block 8, lr 1e-3, 5000 iters",
        GPTConfig(block_size=8, n_embd=32, n_head=4, n_layer=3, dropout=0.0),
        TrainConfig(max_iters=5000, eval_interval=500, eval_iters=200, batch_size=32, block_size=8,
                    learning_rate=1e-3),
    ),
    "cpu-small": Preset(
        "cpu-small", "a GPT that trains on a laptop CPU in minutes: 4 layers, 4 heads, n_embd 128, block 64, "
        "batch 12, lr 1e-3 with warmup and cosine decay, 2000 iters",
        GPTConfig(block_size=64, n_embd=128, n_head=4, n_layer=4, dropout=0.0),
        TrainConfig(max_iters=2000, eval_interval=250, eval_iters=100, batch_size=12, block_size=64,
                    learning_rate=1e-3, beta2=0.99, warmup_iters=100, lr_decay=True, min_lr=1e-4),
    ),
    "cpu": _CPU,
    "cpu-best": Preset(
        "cpu-best", "the best GPT measured for 10 minutes of 2-core CPU training (benchmarks/cpu_budget.py): the cpu "
        "preset with SwiGLU, RoPE, and weight decay 0.3 on the weight matrices only; 5 evaluations",
        replace(_CPU.model, activation="swiglu", position="rope"),
        replace(_CPU.train, weight_decay=0.3, decay_all=False, eval_interval=2000),
    ),
    "lecture": Preset(
        "lecture", "the lecture's final GPT (10.8 M parameters): a GPU job, ~24 h on a 2-core CPU",
        GPTConfig(block_size=256, n_embd=384, n_head=6, n_layer=6, dropout=0.2),
        TrainConfig(max_iters=5000, eval_interval=500, eval_iters=200, batch_size=64, block_size=256,
                    learning_rate=3e-4),
    ),
}


def build_model(preset: Preset, vocab_size: int) -> nn.Module:
    if preset.model is None:
        return BigramLanguageModel(vocab_size)
    return GPT(replace(preset.model, vocab_size=vocab_size))


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------

CHECKPOINT_FORMAT = 1  # raise it when a change makes old readers misread new files; readers refuse newer ones
_UPDATE = "update the course package (git pull, then pip install -e .)"


class CheckpointError(ValueError):
    """A checkpoint cannot be read or written, or does not fit the model it is loaded into."""


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    tokenizer: CharTokenizer | None = None,
    train_config: TrainConfig | None = None,
    extra: dict | None = None,
    training_state: dict | None = None,
) -> Path:
    """Write the model's weights with its config and tokenizer, atomically: to a temporary file in
    the same folder, then renamed over ``path``. ``training_state`` (what :func:`train` needs to
    resume) is stored beside them. Returns the path.

    Raises:
        CheckpointError: the file cannot be written (no space, no permission, ``path`` is a folder...);
            the message says why, and the file that was at ``path`` is left as it was.
    """
    path = Path(path)
    model = getattr(model, "module", model)  # DDP
    model = getattr(model, "_orig_mod", model)  # torch.compile
    if isinstance(model, GPT):
        kind, config = "gpt", model.config.to_dict()
    elif isinstance(model, BigramLanguageModel):
        kind, config = "bigram", {"vocab_size": model.vocab_size}
    else:
        raise CheckpointError(f"save_checkpoint: cannot save a {type(model).__name__}; expected GPT or BigramLanguageModel")
    if path.is_dir():
        raise CheckpointError(f"cannot write the checkpoint {path}: it is a folder; give a file name such as {path / 'model.pt'}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "kind": kind,
        "config": config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "tokenizer": tokenizer.state_dict() if tokenizer is not None else None,
        "train_config": asdict(train_config) if train_config is not None else None,
        "extra": extra or {},
    }
    if training_state is not None:
        payload["training"] = training_state
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            kept = "the previous checkpoint there is unchanged" if path.is_file() else "nothing was written"
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise CheckpointError(f"could not write the checkpoint {path}: {reason}; {kept}. Free some space or "
                                  f"choose another place with --out") from exc
        raise
    return path


def _checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a checkpoint, judged without unpickling anything (None: worth loading)."""
    if path.is_dir():
        return f"{path} is a folder, not a checkpoint file; give the .pt file inside it"
    if not path.exists():
        return (f"checkpoint not found: {path}; check the path, or train one with "
                f"python -m lecture_utils train --out {path}")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        return f"cannot read the checkpoint {path}: {exc.strerror or exc}"
    if not head:
        return f"{path} is empty (0 bytes), not a checkpoint: the run that wrote it was stopped; train again"
    if head != b"PK\x03\x04":  # torch.save writes a zip archive
        return f"{path} is not a checkpoint: it is not a file written by torch.save; check the path"
    return None


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dict (weights on the CPU).

    Only tensors and plain data are loaded (``weights_only``): a file that holds anything else is
    refused, since unpickling it could run code.

    Raises:
        CheckpointError: the file is missing, a folder, empty, truncated or damaged, not a course
            checkpoint, or written by a newer version of the course - one line saying which.
    """
    path = Path(path)
    problem = _checkpoint_problem(path)
    if problem:
        raise CheckpointError(problem)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise CheckpointError(f"{path} is not a course checkpoint: it holds Python objects besides tensors and "
                                  "plain data, and was not loaded because loading such a file can run code") from None
        raise CheckpointError(f"{path} is damaged (its contents cannot be decoded); train again or use another "
                              "checkpoint") from None
    except Exception:  # torch reports a cut-off zip archive as RuntimeError, EOFError, KeyError, OSError...
        raise CheckpointError(f"{path} is truncated or damaged (an incomplete zip archive); train again or use "
                              "another checkpoint") from None
    if not isinstance(payload, dict) or "format" not in payload or "state_dict" not in payload:
        raise CheckpointError(f"{path} is not a lecture_utils checkpoint (no format and weights entries); "
                              "use a file written by python -m lecture_utils train or save_checkpoint")
    fmt = payload["format"]
    if not isinstance(fmt, int) or fmt < 1:
        raise CheckpointError(f"{path} is not a lecture_utils checkpoint (format {fmt!r})")
    if fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} was written by a newer version of the course (checkpoint format {fmt}; "
                              f"this version reads format {CHECKPOINT_FORMAT}): {_UPDATE}")
    kind, config = payload.get("kind"), payload.get("config")
    if kind not in ("gpt", "bigram") or not isinstance(config, dict) or not isinstance(payload["state_dict"], dict):
        raise CheckpointError(f"{path} is damaged: its model kind {kind!r} or config is not one this course writes")
    if kind == "gpt":
        unknown = sorted(set(config) - {f.name for f in fields(GPTConfig)})
        if unknown:
            raise CheckpointError(f"{path} was written by a newer version of the course (model settings {unknown} "
                                  f"are unknown here): {_UPDATE}")
        try:
            GPTConfig.from_dict(config)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{path} is damaged: its model config is invalid ({exc})") from None
    elif not isinstance(config.get("vocab_size"), int) or config["vocab_size"] < 1:
        raise CheckpointError(f"{path} is damaged: its bigram config has no valid vocab_size")
    tok = payload.get("tokenizer")
    if tok is not None:
        try:
            CharTokenizer.from_state_dict(tok)
        except (ValueError, TypeError, KeyError):
            raise CheckpointError(f"{path} is damaged: its tokenizer is not valid") from None
    return payload


def load_checkpoint_into(payload: dict, model: nn.Module, path: str | Path = "the checkpoint") -> nn.Module:
    """Copy a checkpoint's weights into ``model`` (whose config must match), naming each weight that does
    not fit instead of PyTorch's message."""
    target = getattr(model, "module", model)
    target = getattr(target, "_orig_mod", target)
    saved = payload["config"]
    if isinstance(target, GPT):
        mine, kind = target.config.to_dict(), "gpt"
    elif isinstance(target, BigramLanguageModel):
        mine, kind = {"vocab_size": target.vocab_size}, "bigram"
    else:
        raise CheckpointError(f"cannot load a checkpoint into a {type(target).__name__}")
    if kind != payload["kind"]:
        raise CheckpointError(f"{path} holds a {payload['kind']} model, not a {kind}")
    if kind == "gpt":  # an older checkpoint lacks the fields added since: they have their defaults
        saved = GPTConfig.from_dict(saved).to_dict()
    # dropout does not change the weights; everything else must agree
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs model {mine.get(k)!r}"
             for k in sorted(set(saved) | set(mine)) if k not in ("dropout", "attn_dropout")
             and saved.get(k) != mine.get(k)]
    if diffs:
        raise CheckpointError(f"{path} was saved from another configuration: " + "; ".join(diffs))
    state, own = payload["state_dict"], target.state_dict()
    wrong = sorted(set(own) - set(state)) + sorted(set(state) - set(own))
    wrong += [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
              if k in own and (not isinstance(v, torch.Tensor) or v.shape != own[k].shape)]
    if wrong:
        raise CheckpointError(f"{path} is damaged: its weights do not fit its own config ({', '.join(wrong[:4])}"
                              f"{' ...' if len(wrong) > 4 else ''})")
    target.load_state_dict(state)
    return target


def load_checkpoint(
    path: str | Path, model: nn.Module | None = None, device: torch.device | str = "cpu"
) -> tuple[nn.Module, CharTokenizer | None, dict]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    With ``model=None`` the model is built from the saved config. With a model, its config must
    match the saved one; otherwise :class:`CheckpointError` names every field that differs.

    Returns:
        ``(model, tokenizer_or_None, payload)`` with the model on ``device`` in eval mode.

    Raises:
        CheckpointError: see :func:`read_checkpoint`; or the checkpoint does not fit ``model``.
    """
    payload = read_checkpoint(path)
    saved = payload["config"]
    if model is None:
        model = GPT(GPTConfig.from_dict(saved)) if payload["kind"] == "gpt" else BigramLanguageModel(saved["vocab_size"])
    model = load_checkpoint_into(payload, model, path)
    tok = payload.get("tokenizer")
    tokenizer = CharTokenizer.from_state_dict(tok) if tok else None
    model.to(device).eval()
    return model, tokenizer, payload


def train_config_from_dict(d: dict) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in d.items() if k in known})


# ---------------------------------------------------------------------------------------------
# the checkpoint shipped with the package
# ---------------------------------------------------------------------------------------------

SHIPPED = "shakespeare-cpu"


def shipped_checkpoint_path(name: str = SHIPPED) -> Path:
    """Path of a checkpoint that ships inside the package (``lecture_utils/checkpoints/NAME.pt``)."""
    from importlib import resources

    return Path(str(resources.files("lecture_utils") / "checkpoints" / f"{name}.pt"))


def shipped_record(name: str = SHIPPED) -> dict:
    """How the shipped checkpoint was made: command, configuration, wall time, val loss (JSON)."""
    import json

    path = shipped_checkpoint_path(name).with_suffix(".json")
    if not path.is_file():
        raise CheckpointError(f"no record for the shipped checkpoint {name!r} ({path})")
    return json.loads(path.read_text(encoding="utf-8"))


def load_shipped(name: str = SHIPPED, device: torch.device | str = "cpu"):
    """The trained GPT that ships with the course (trained on a CPU by the course's own CLI; see
    :func:`shipped_record`). Returns ``(model, tokenizer, record)``, the model in eval mode."""
    path = shipped_checkpoint_path(name)
    if not path.is_file():
        raise CheckpointError(f"the shipped checkpoint {path} is missing: reinstall the package (pip install -e .)")
    model, tokenizer, _ = load_checkpoint(path, device=device)
    return model, tokenizer, shipped_record(name)
