"""Chapter 12: what modern GPTs change, each as a module of its own beside the lecture's.

- :func:`gelu` / :class:`GELUFeedForward`: GELU where the lecture's feed-forward has its ReLU (GPT-2)
- :class:`RMSNorm`: LayerNorm without the mean and the bias (LLaMA)
- :class:`SwiGLU`: a gated feed-forward (LLaMA)
- :func:`rope_tables`, :func:`apply_rope`, :class:`RotaryCausalSelfAttention`: rotary position
  embeddings on the queries and keys instead of a position table
- :func:`tie_weights`: the output layer shares the token embedding's matrix

``GPTConfig(activation=, norm=, position=, tie_weights=)`` picks them: :class:`ModernBlock` is the
lecture's block with the chosen parts, :class:`ModernGPT` the lecture's GPT built from such blocks, and
:func:`build_gpt` builds the right model for any ``GPTConfig`` (the lecture's ``GPT`` when it asks for
none of these). This module sits above :mod:`lecture_utils.model`: it imports the lecture's pieces,
and the lecture's model never imports it. Parameter names are the lecture's, so a checkpoint's
state dict reads the same whichever class wrote it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from lecture_utils.model import GPT, Block, CausalSelfAttention, FeedForward, GPTConfig, self_attention


def gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU, ``x * Phi(x)`` with ``Phi`` the standard normal CDF: a smooth ReLU that lets a little
    negative signal (and gradient) through. Same as ``F.gelu(x)``."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


class GELUFeedForward(FeedForward):
    """The lecture's feed-forward with GELU in place of the ReLU, as GPT-2 has it (same weights)."""

    def __init__(self, n_embd: int, dropout: float = 0.0):
        super().__init__(n_embd, dropout)
        self.net[1] = nn.GELU()


class RMSNorm(nn.Module):
    """RMSNorm: LayerNorm without the mean subtraction and without the bias - each token's features
    are divided by their root mean square, then scaled by a learned weight. Cheaper, and in practice
    as good (LLaMA and most recent GPTs use it)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def swiglu_hidden(n_embd: int) -> int:
    """Hidden width of :class:`SwiGLU` that keeps the parameter count of the 4x ReLU feed-forward
    (three matrices of ``n_embd x hidden`` instead of two of ``n_embd x 4 n_embd``): ``8/3 n_embd``."""
    return 8 * n_embd // 3


class SwiGLU(nn.Module):
    """Gated feed-forward: ``down(silu(gate(x)) * up(x))``. One linear layer decides, per hidden unit,
    how much of the other's output to let through. No biases, as in LLaMA."""

    def __init__(self, n_embd: int, dropout: float = 0.0, hidden: int | None = None):
        super().__init__()
        hidden = hidden or swiglu_hidden(n_embd)
        self.gate = nn.Linear(n_embd, hidden, bias=False)
        self.up = nn.Linear(n_embd, hidden, bias=False)
        self.down = nn.Linear(hidden, n_embd, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(F.silu(self.gate(x)) * self.up(x)))


def rope_tables(T: int, head_size: int, base: float = 10000.0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines of the rotary angles, each ``(T, head_size // 2)``: position ``m`` and
    frequency ``i`` give the angle ``m * base ** (-2 i / head_size)``."""
    if head_size % 2:
        raise ValueError(f"RoPE needs an even head_size, got {head_size}")
    inv_freq = base ** (-torch.arange(0, head_size, 2, device=device, dtype=torch.float32) / head_size)
    angles = torch.arange(T, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (``(..., T, head_size)``) by the angles of :func:`rope_tables`: dimension ``i`` is
    paired with ``i + head_size // 2`` (the "half-split" convention of GPT-NeoX and LLaMA) and each
    pair turned by its position's angle. Dot products of rotated queries and keys then depend only
    on how far apart the two positions are."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class RotaryCausalSelfAttention(CausalSelfAttention):
    """:class:`~lecture_utils.model.CausalSelfAttention` with rotary position embeddings: the queries
    and keys of every head are rotated by their position's angles before they meet (same weights)."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0,
                 attn_dropout: float | None = None):
        super().__init__(n_embd, n_head, block_size, dropout, attn_dropout)
        cos, sin = rope_tables(block_size, n_embd // n_head)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def rotate(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q`` and ``k`` (``(..., T, hs)``) rotated by the angles of positions ``0 .. T-1``."""
        T = q.size(-2)
        cos, sin = self.rope_cos[:T].to(q.dtype), self.rope_sin[:T].to(q.dtype)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k = self.rotate(q, k)
        return super().attend(q, k, v)


def tie_weights(model: nn.Module) -> nn.Module:
    """Make ``model.lm_head.weight`` the very same Parameter as ``model.token_embedding_table.weight``:
    one ``(vocab_size, n_embd)`` matrix reads tokens in and writes logits out. Returns ``model``."""
    model.lm_head.weight = model.token_embedding_table.weight
    return model


class ModernBlock(nn.Module):
    """The lecture's pre-norm block (:class:`~lecture_utils.model.Block`: same ``forward``, same part
    names ``sa``, ``ffwd``, ``ln1``, ``ln2``, built in that order) with the parts ``config`` asks for:
    RoPE attention, a GELU or SwiGLU feed-forward, RMSNorm. Without chapter 12's features it is the
    lecture's block, part for part."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        C, dropout = config.n_embd, config.dropout
        if config.position == "rope":  # GPTConfig makes sure the heads are batched
            self.sa = RotaryCausalSelfAttention(C, config.n_head, config.block_size, dropout, config.attn_dropout)
        else:
            self.sa = self_attention(C, config.n_head, config.block_size, dropout, config.attention,
                                     config.attn_dropout)  # the lecture's: list of heads or batched
        if config.activation == "swiglu":
            self.ffwd = SwiGLU(C, dropout)
        elif config.activation == "gelu":
            self.ffwd = GELUFeedForward(C, dropout)
        else:
            self.ffwd = FeedForward(C, dropout)
        self.ln1 = _norm(config)
        self.ln2 = _norm(config)

    forward = Block.forward  # the lecture's residual stream, unchanged


def _norm(config: GPTConfig) -> nn.Module:
    return RMSNorm(config.n_embd) if config.norm == "rmsnorm" else nn.LayerNorm(config.n_embd)


class ModernGPT(GPT):
    """The lecture's :class:`~lecture_utils.model.GPT` with chapter 12's features where ``config`` asks
    for them: :class:`ModernBlock` s, an RMSNorm as the final norm, no position table with RoPE (the
    queries and keys are rotated instead), the output layer tied to the token embedding. Accepts any
    ``GPTConfig``; parameter names are ``GPT``'s."""

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        if config.tie_weights:
            tie_weights(self)

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        """Every ``GPTConfig`` can be built (``GPTConfig`` itself refuses the combinations that cannot)."""

    def make_position_table(self, config: GPTConfig) -> nn.Module | None:
        return super().make_position_table(config) if config.position == "learned" else None

    def make_block(self, config: GPTConfig) -> nn.Module:
        return ModernBlock(config)

    def make_final_norm(self, config: GPTConfig) -> nn.Module:
        return _norm(config)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        if self.position_embedding_table is None:  # RoPE: positions enter inside attention
            return self.token_embedding_table(idx)
        return super().embed(idx)


def build_gpt(config: GPTConfig) -> GPT:
    """The model ``config`` describes: the lecture's :class:`~lecture_utils.model.GPT` when it asks for
    none of chapter 12's features, else a :class:`ModernGPT`. Use it wherever a config may come from
    outside (a checkpoint, a preset, the command line)."""
    return ModernGPT(config) if config.chapter12_features() else GPT(config)


__all__ = ["gelu", "GELUFeedForward", "RMSNorm", "swiglu_hidden", "SwiGLU", "rope_tables", "apply_rope",
           "RotaryCausalSelfAttention", "tie_weights", "ModernBlock", "ModernGPT", "build_gpt"]
