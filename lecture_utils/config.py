"""Configuration: ``TrainConfig`` (what a training run is asked to do, each field validated), its
learning-rate schedule (:meth:`TrainConfig.lr_at`, :func:`warmup_cosine_lr`) and the named presets
(``PRESETS``: a model config with a training config, for the CLI and the notebooks).

It sits below the training loop: :mod:`lecture_utils.train`, :mod:`lecture_utils.optimizers`,
:mod:`lecture_utils.checkpoints`, :mod:`lecture_utils.pretrain` and the command line import it, and it
imports only the models' configuration and builders (:mod:`lecture_utils.model`, :mod:`lecture_utils.modern`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch.nn as nn

from lecture_utils.model import BigramLanguageModel, ConfigError, GPTConfig
from lecture_utils.modern import build_gpt


@dataclass
class TrainConfig:
    """Optimisation settings. Defaults are the lecture's final run.

    ``block_size``: the context length to train on; None (the default) takes the model's own, the one
    place it is set (``GPTConfig.block_size``); a model without one (the bigram) needs it here.
    ``fast_cpu_dropout``: on a CPU, the reference ``GPT``'s dropout masks are drawn by numpy
    (:func:`lecture_utils.speed.use_fast_cpu_dropout`: the same dropout, faster); a model of your own
    keeps its modules as they are.
    ``fast_cpu_paths``: on a CPU, the reference ``GPT``'s large fp32 products are oneDNN's and its attention
    scales and masks inside its first product (:func:`lecture_utils.speed.use_onednn_linear` and
    :func:`~lecture_utils.speed.use_fast_attention`): the same numbers to fp32 rounding, 1.6-1.7x faster steps
    at the lecture's size. Only speed: a recorded run's recipe does not include it.
    """

    max_iters: int = 5000
    eval_interval: int = 500
    eval_iters: int = 200
    batch_size: int = 64
    block_size: int | None = None  # None: the model's block_size
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
    fast_cpu_dropout: bool = True  # the reference GPT's dropout masks drawn fast on a CPU (lecture_utils.speed)
    fast_cpu_paths: bool = True  # the reference GPT's products by oneDNN, its mask in one product (lecture_utils.speed)

    def __post_init__(self):
        for f in fields(self):
            problem = _train_field_problem(f.name, f.type, getattr(self, f.name))
            if problem:
                raise ConfigError("TrainConfig", [f.name], "{0} " + problem)
        if self.lr_decay and self.min_lr > self.learning_rate:
            raise ConfigError("TrainConfig", ["min_lr", "learning_rate"],
                              f"{{0}}={self.min_lr:g} is above {{1}}={self.learning_rate:g}: the decay would raise the rate")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The config a checkpoint saved (``dataclasses.asdict``); fields this version does not know are
        left out, fields added since take their defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

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
    if isinstance(type_name, str) and type_name.endswith(" | None"):  # optional: None, or a value of the type
        if value is None:
            return None
        type_name = type_name[: -len(" | None")]
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


# ---------------------------------------------------------------------------------------------
# presets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """A named model + optimisation configuration for the CLI and the notebooks. The context length is
    the model's ``block_size``; only the bigram preset, whose model has none, gives it to ``train``."""

    name: str
    description: str
    model: GPTConfig | None  # None = bigram
    train: TrainConfig


_CPU = Preset(
    "cpu", "the well-known small CPU GPT given 10 minutes (benchmarks/cpu_budget.py's baseline; chapters 11-12 "
    "start from it): 4 layers, 4 heads, n_embd 128, block 64, batch 12, lr 1e-3 with warmup and cosine decay "
    "over a 600 s budget",
    GPTConfig(block_size=64, n_embd=128, n_head=4, n_layer=4, dropout=0.0),
    TrainConfig(max_iters=10**9, eval_interval=500, eval_iters=100, batch_size=12,
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
        TrainConfig(max_iters=5000, eval_interval=500, eval_iters=200, batch_size=32, learning_rate=1e-3),
    ),
    "cpu-small": Preset(
        "cpu-small", "a GPT that trains on a laptop CPU in minutes: 4 layers, 4 heads, n_embd 128, block 64, "
        "batch 12, lr 1e-3 with warmup and cosine decay, 2000 iters",
        GPTConfig(block_size=64, n_embd=128, n_head=4, n_layer=4, dropout=0.0),
        TrainConfig(max_iters=2000, eval_interval=250, eval_iters=100, batch_size=12, learning_rate=1e-3,
                    beta2=0.99, warmup_iters=100, lr_decay=True, min_lr=1e-4),
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
        TrainConfig(max_iters=5000, eval_interval=500, eval_iters=200, batch_size=64, learning_rate=3e-4),
    ),
}


def build_model(preset: Preset, vocab_size: int) -> nn.Module:
    """The preset's model for a vocabulary of ``vocab_size`` characters, freshly initialised: the bigram, the
    lecture's GPT, or chapter 12's variant where the preset asks for its features (``cpu-best``)."""
    if preset.model is None:
        return BigramLanguageModel(vocab_size)
    return build_gpt(replace(preset.model, vocab_size=vocab_size))


__all__ = ["TrainConfig", "warmup_cosine_lr", "Preset", "PRESETS", "build_model"]
