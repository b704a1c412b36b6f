"""Reference modules, in the lecture's order and with the lecture's names.

Each class is what a chapter's exercise builds; a later chapter uses these when it needs an
earlier chapter's piece, so a learner stuck on one exercise can still run every later cell.

- ``BigramLanguageModel``  (chapter 02)
- ``BigramWithPositions``  (chapter 03) token + position embeddings, ``lm_head``
- ``Head``                 (chapter 04) one head of causal self-attention
- ``MultiHeadAttention``   (chapter 05) a list of ``Head`` s, concatenated, projected
- ``CausalSelfAttention``  (chapter 05, EX1) the same maths with heads as a batch dimension
- ``FeedForward``          (chapter 06)
- ``LayerNorm``            (chapter 07) from scratch; matches ``torch.nn.LayerNorm``
- ``Block``                (chapter 07) pre-norm, residual connections
- ``GPT`` / ``GPTConfig``  (chapter 08)

Attention weights for the heatmaps come out of the same function that computes the forward pass
(:func:`causal_attention`): with ``need_weights`` it takes the readable path (mask, softmax,
matmul) and keeps the weights; without, it calls ``F.scaled_dot_product_attention``. The tests
check the two paths agree, so the pictures show what the model computes.

Speed on a CPU (``benchmarks/throughput.py``): the reference ``GPT`` draws its dropout masks with
:func:`cpu_dropout` (numpy's generator; torch's ``bernoulli_`` took 15 % of a lecture-sized
training step); the lecture's modules keep ``nn.Dropout``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F


# ---------------------------------------------------------------------------------------------
# chapter 02: the bigram model
# ---------------------------------------------------------------------------------------------


class BigramLanguageModel(nn.Module):
    """Each token reads the logits for the next token straight off a row of a
    ``(vocab_size, vocab_size)`` embedding table."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.block_size = None  # no context: any length works
        self.token_embedding_table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """``idx``, ``targets``: ``(B, T)`` ids. Returns ``(logits, loss)``: logits ``(B, T, C)``,
        or ``(B*T, C)`` when targets are given (cross-entropy wants the class dimension second);
        loss is None without targets."""
        logits = self.token_embedding_table(idx)  # (B, T, C)
        return _logits_and_loss(logits, targets)

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        return generate(self, idx, max_new_tokens, temperature=temperature, top_k=top_k, generator=generator)


class BigramWithPositions(nn.Module):
    """The bigram model after the lecture's clean-up (chapter 03): token embeddings of size
    ``n_embd`` plus position embeddings, then a linear ``lm_head`` to logits. Still no
    communication between tokens; the position table is what self-attention will need."""

    def __init__(self, vocab_size: int, n_embd: int, block_size: int):
        super().__init__()
        self.block_size = block_size
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.position_embedding_table = nn.Embedding(block_size, n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        _check_length(T, self.block_size)
        tok_emb = self.token_embedding_table(idx)  # (B, T, n_embd)
        pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))  # (T, n_embd)
        logits = self.lm_head(tok_emb + pos_emb)  # (B, T, vocab_size)
        return _logits_and_loss(logits, targets)

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        return generate(self, idx, max_new_tokens, temperature=temperature, top_k=top_k, generator=generator)


def _logits_and_loss(logits: torch.Tensor, targets: torch.Tensor | None):
    if targets is None:
        return logits, None
    B, T, C = logits.shape
    logits = logits.view(B * T, C)
    loss = F.cross_entropy(logits, targets.reshape(B * T), ignore_index=-1)
    return logits, loss


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """``with eval_mode(model):`` - eval mode (dropout off) inside, the mode it was in afterwards, even
    after an exception (the ``was_training`` pattern of chapter 02's ``estimate_loss``)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def _vocab_size(model: nn.Module) -> int | None:
    """Rows of the model's token embedding table, where it has one (the reference models do)."""
    table = getattr(model, "token_embedding_table", None)
    return table.num_embeddings if isinstance(table, nn.Embedding) else None


@torch.no_grad()
def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Extend ``idx`` (``(B, T)`` ids) by ``max_new_tokens`` sampled tokens, one at a time.

    The context is cropped to the model's ``block_size`` (a position embedding table has no rows
    beyond it). Only the last time step's logits are used. ``temperature`` < 1 sharpens, ``top_k``
    keeps the k most likely tokens. Sampling uses ``generator`` when given (on its own device);
    on MPS it runs on the CPU, where ``multinomial`` is reliable. The model's train/eval mode is
    left as it was.

    Raises:
        ValueError: an empty context (``T == 0``), ids outside the vocabulary, ``temperature`` not a
            finite number > 0, ``top_k < 1`` or ``max_new_tokens < 0``.
    """
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a number > 0, got {temperature}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or an integer >= 1, got {top_k!r}")
    if idx.dim() != 2:
        raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
    if idx.size(1) == 0:
        raise ValueError("idx is an empty context (T = 0): the model needs at least one token to continue from; "
                         "start from one token, e.g. torch.zeros((1, 1), dtype=torch.long) (a newline in Tiny "
                         "Shakespeare's vocabulary)")
    if idx.dtype not in (torch.long, torch.int32):
        raise ValueError(f"idx must hold token ids (torch.long), got {idx.dtype}")
    vocab_size = _vocab_size(model)
    if idx.numel() and vocab_size is not None and (int(idx.min()) < 0 or int(idx.max()) >= vocab_size):
        raise ValueError(f"idx holds ids outside the model's vocabulary 0..{vocab_size - 1} "
                         f"(min {int(idx.min())}, max {int(idx.max())}): encode with the model's own tokenizer")
    block_size = getattr(model, "block_size", None)
    with eval_mode(model):
        for _ in range(max_new_tokens):
            idx_cond = idx if block_size is None else idx[:, -block_size:]
            logits, _ = model(idx_cond)
            logits = logits[:, -1, :].float() / temperature  # (B, C)
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits = logits.masked_fill(logits < v[:, [-1]], float("-inf"))
            probs = F.softmax(logits, dim=-1)
            sample_device = generator.device if generator is not None else probs.device
            if sample_device.type == "mps":
                sample_device = torch.device("cpu")
            idx_next = torch.multinomial(probs.to(sample_device), num_samples=1, generator=generator)
            idx = torch.cat((idx, idx_next.to(idx.device)), dim=1)  # (B, T+1)
    return idx


# ---------------------------------------------------------------------------------------------
# chapters 04-05: attention
# ---------------------------------------------------------------------------------------------


def causal_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dropout: float = 0.0,
    need_weights: bool = False,
):
    """Masked (causal), scaled dot-product attention over the last two dimensions.

    ``q``, ``k``, ``v``: ``(..., T, head_size)``. Returns ``(out, weights)``: ``out`` is
    ``(..., T, head_size)``; ``weights`` ``(..., T, T)`` (before dropout) when ``need_weights``,
    else None. The scale is ``1/sqrt(head_size)``, so affinities keep unit variance.

    Three paths, one function: with ``need_weights``, the readable one (the lecture's code, with
    ``F.dropout``); otherwise ``F.scaled_dot_product_attention``, except when training with dropout
    on a CPU, where its fused kernel refuses dropout and its fallback draws the mask with torch's
    slow CPU random numbers: there the readable path runs with :func:`cpu_dropout` instead.
    """
    T, head_size = q.shape[-2], q.shape[-1]
    fast_cpu_dropout = dropout > 0 and q.device.type == "cpu" and not need_weights and FAST_CPU_DROPOUT
    if need_weights or fast_cpu_dropout:
        wei = q @ k.transpose(-2, -1) * head_size**-0.5  # (..., T, T)
        mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
        wei = wei.masked_fill(~mask, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        if fast_cpu_dropout:
            return cpu_dropout(wei, dropout) @ v, None
        out = F.dropout(wei, p=dropout, training=dropout > 0) @ v
        return out, wei
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
    return out, None


FAST_CPU_DROPOUT = True  # False: every dropout is torch's own (benchmarks/throughput.py compares the two)


def cpu_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Dropout, as ``F.dropout(x, p, training)``, with the mask drawn quickly on a CPU.

    Each element is kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``, like
    ``F.dropout``. On a CPU torch draws its dropout masks one number at a time (``bernoulli_``:
    15 % of a lecture-sized fp32 training step on a 2-core CPU, measured by
    ``benchmarks/throughput.py``), so here the mask comes from numpy's SFC64 generator: 16 random
    bits per element, kept when they are at least ``round(p * 65536)`` (so ``p`` is exact to
    1/65536). The generator is seeded from torch's, so ``torch.manual_seed`` still makes a run
    repeatable. Off a CPU (cuda, mps), or out of training, this is ``F.dropout``.
    """
    threshold = round(p * 65536)
    if not (training and FAST_CPU_DROPOUT and x.device.type == "cpu" and 0 < threshold < 65536):
        return F.dropout(x, p=p, training=training)
    with torch.profiler.record_function("cpu_dropout mask"):  # numpy's time, named in a torch.profiler table
        seed = int(torch.empty((), dtype=torch.int64).random_())  # from torch's generator: manual_seed repeats it
        bits = np.random.Generator(np.random.SFC64(seed)).integers(-32768, 32768, x.numel(), dtype=np.int16)
        keep = torch.from_numpy(bits).view(x.shape) >= threshold - 32768
    return x * keep.to(x.dtype).mul_(1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose mask is drawn by :func:`cpu_dropout` (fast on a CPU, ``F.dropout``
    elsewhere). The reference ``GPT`` uses it; the lecture's modules keep ``nn.Dropout``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cpu_dropout(x, self.p, self.training)


def _use_cpu_dropout(module: nn.Module) -> nn.Module:
    """Swap every plain ``nn.Dropout`` inside ``module``, at any depth, for :class:`Dropout` with the
    same ``p``. Returns ``module``."""
    for name, child in module.named_children():
        if type(child) is nn.Dropout:
            setattr(module, name, Dropout(child.p))
        else:
            _use_cpu_dropout(child)
    return module


class _KeepsAttention:
    """Mixin: ``keep_attention = True`` makes the module store its last attention weights in
    ``self.attention`` (detached), for the heatmaps."""

    keep_attention: bool = False
    attention: torch.Tensor | None = None


class Head(nn.Module, _KeepsAttention):
    """One head of causal self-attention: every token emits a query ("what am I looking for") and a
    key ("what do I contain"); affinities are ``q @ k^T / sqrt(head_size)``, the future is masked,
    softmax makes them weights, and the head returns the weighted sum of the values."""

    def __init__(self, n_embd: int, head_size: int, block_size: int, dropout: float = 0.0):
        super().__init__()
        self.head_size = head_size
        self.block_size = block_size
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, T, n_embd)`` -> ``(B, T, head_size)``. Stores ``(B, T, T)`` weights in
        ``self.attention`` when ``keep_attention`` is set."""
        _check_length(x.shape[1], self.block_size)
        k, q, v = self.key(x), self.query(x), self.value(x)  # (B, T, hs)
        p = self.dropout if self.training else 0.0
        out, wei = causal_attention(q, k, v, p, need_weights=self.keep_attention)
        self.attention = wei.detach() if wei is not None else None
        return out


class MultiHeadAttention(nn.Module, _KeepsAttention):
    """Several ``Head`` s in parallel, their outputs concatenated and projected back into the
    residual stream (the lecture's version)."""

    def __init__(self, n_embd: int, num_heads: int, head_size: int, block_size: int, dropout: float = 0.0):
        super().__init__()
        self.heads = nn.ModuleList([Head(n_embd, head_size, block_size, dropout) for _ in range(num_heads)])
        self.proj = nn.Linear(head_size * num_heads, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, n_embd)`` -> ``(B, T, n_embd)``. Weights: ``(B, num_heads, T, T)``."""
        for h in self.heads:
            h.keep_attention = self.keep_attention
        out = torch.cat([h(x) for h in self.heads], dim=-1)  # (B, T, num_heads * hs)
        self.attention = torch.stack([h.attention for h in self.heads], dim=1) if self.keep_attention else None
        return self.dropout(self.proj(out))


class CausalSelfAttention(nn.Module, _KeepsAttention):
    """Multi-head attention with the heads as a batch dimension (the lecture's exercise EX1): one
    linear layer computes the queries, keys and values of every head at once; ``view`` and
    ``transpose`` turn ``(B, T, 3C)`` into three ``(B, n_head, T, head_size)`` tensors.

    Same mathematics and parameter count as ``MultiHeadAttention``; :func:`heads_to_batched`
    copies weights from one to the other.
    """

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0, rope: bool = False,
                 attn_dropout: float | None = None):
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}")
        self.n_head = n_head
        self.block_size = block_size
        self.attn_dropout = dropout if attn_dropout is None else attn_dropout  # on the attention weights
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)  # [q | k | v], each head_size per head
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = Dropout(dropout)
        self.rope = rope
        if rope:  # chapter 12: rotary position embeddings on the queries and keys
            cos, sin = rope_tables(block_size, n_embd // n_head)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        _check_length(T, self.block_size)
        hs = C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        if self.rope:
            cos, sin = self.rope_cos[:T].to(q.dtype), self.rope_sin[:T].to(q.dtype)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        p = self.attn_dropout if self.training else 0.0
        out, wei = causal_attention(q, k, v, p, need_weights=self.keep_attention)
        self.attention = wei.detach() if wei is not None else None
        out = out.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.dropout(self.proj(out))


@torch.no_grad()
def heads_to_batched(mha: MultiHeadAttention, csa: CausalSelfAttention) -> CausalSelfAttention:
    """Copy the weights of a list-of-heads ``MultiHeadAttention`` into a ``CausalSelfAttention``
    so both compute the same function. Returns ``csa``."""
    q = torch.cat([h.query.weight for h in mha.heads], dim=0)
    k = torch.cat([h.key.weight for h in mha.heads], dim=0)
    v = torch.cat([h.value.weight for h in mha.heads], dim=0)
    if csa.qkv.weight.shape != (q.shape[0] * 3, q.shape[1]):
        raise ValueError("heads_to_batched: the two modules have different sizes")
    csa.qkv.weight.copy_(torch.cat([q, k, v], dim=0))
    csa.proj.load_state_dict(mha.proj.state_dict())
    return csa


def _check_length(T: int, block_size: int | None) -> None:
    if block_size is not None and T > block_size:
        raise ValueError(
            f"sequence length {T} is longer than block_size={block_size}: crop the context to the "
            f"last {block_size} tokens (generate does this)"
        )


# ---------------------------------------------------------------------------------------------
# chapters 06-07: feed-forward, LayerNorm, Block
# ---------------------------------------------------------------------------------------------


class FeedForward(nn.Module):
    """Per-token computation after communication: Linear (4x wider), ReLU, Linear back, dropout.

    ``activation="gelu"`` (chapter 12) puts GELU where the ReLU is, as GPT-2 does."""

    def __init__(self, n_embd: int, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"FeedForward activation must be 'relu' or 'gelu', got {activation!r} (SwiGLU is its own module)")
        self.net = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd),
            nn.ReLU() if activation == "relu" else nn.GELU(),
            nn.Linear(4 * n_embd, n_embd),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LayerNorm(nn.Module):
    """LayerNorm from scratch: normalise each token's features (the last dimension) to zero mean
    and unit variance (biased variance, like ``torch.nn.LayerNorm``), then scale and shift.

    BatchNorm normalises each feature over the batch (columns); LayerNorm each example over its
    features (rows), so it needs no running statistics and behaves the same in train and eval.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


# ---------------------------------------------------------------------------------------------
# chapter 12: what modern GPTs change (each behind a GPTConfig flag)
# ---------------------------------------------------------------------------------------------


def gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU, ``x * Phi(x)`` with ``Phi`` the standard normal CDF: a smooth ReLU that lets a little
    negative signal (and gradient) through. Same as ``F.gelu(x)``."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


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


def tie_weights(model: nn.Module) -> nn.Module:
    """Make ``model.lm_head.weight`` the very same Parameter as ``model.token_embedding_table.weight``:
    one ``(vocab_size, n_embd)`` matrix reads tokens in and writes logits out. Returns ``model``."""
    model.lm_head.weight = model.token_embedding_table.weight
    return model


def make_norm(kind: str, dim: int) -> nn.Module:
    """``"layernorm"`` (``nn.LayerNorm``, as in the lecture) or ``"rmsnorm"`` (:class:`RMSNorm`)."""
    if kind == "layernorm":
        return nn.LayerNorm(dim)
    if kind == "rmsnorm":
        return RMSNorm(dim)
    raise ValueError(f"norm must be 'layernorm' or 'rmsnorm', got {kind!r}")


def make_feed_forward(activation: str, n_embd: int, dropout: float = 0.0) -> nn.Module:
    """``"relu"`` (the lecture), ``"gelu"`` (GPT-2) or ``"swiglu"`` (LLaMA)."""
    if activation == "swiglu":
        return SwiGLU(n_embd, dropout)
    return FeedForward(n_embd, dropout, activation)


class Block(nn.Module):
    """Transformer block: communication (attention) then computation (feed-forward), each applied
    to a LayerNorm'ed copy of the residual stream and added back to it (pre-norm)."""

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        block_size: int,
        dropout: float = 0.0,
        attention: str = "batched",
        activation: str = "relu",
        norm: str = "layernorm",
        rope: bool = False,
        attn_dropout: float | None = None,
    ):
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}")
        if attention == "batched":
            self.sa = CausalSelfAttention(n_embd, n_head, block_size, dropout, rope=rope, attn_dropout=attn_dropout)
        elif attention == "heads":
            if rope:
                raise ValueError("RoPE is built into attention='batched' only; use that (same mathematics)")
            if attn_dropout is not None and attn_dropout != dropout:
                raise ValueError("a separate attn_dropout is built into attention='batched' only")
            self.sa = MultiHeadAttention(n_embd, n_head, n_embd // n_head, block_size, dropout)
        else:
            raise ValueError(f"attention must be 'batched' or 'heads', got {attention!r}")
        self.ffwd = make_feed_forward(activation, n_embd, dropout)
        if attention == "batched":  # the course's model: dropout masks drawn quickly on a CPU
            _use_cpu_dropout(self.ffwd)
        self.ln1 = make_norm(norm, n_embd)
        self.ln2 = make_norm(norm, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sa(self.ln1(x))
        x = x + self.ffwd(self.ln2(x))
        return x


# ---------------------------------------------------------------------------------------------
# chapter 08: the full model
# ---------------------------------------------------------------------------------------------


class ConfigError(ValueError):
    """A configuration value that cannot work. ``fields`` are the dataclass fields involved, in the
    order of the ``{0}``, ``{1}``... placeholders of ``template``, so that a command line can name its
    own flags (``--n-embd``) where Python code reads ``GPTConfig.n_embd``."""

    def __init__(self, owner: str, fields: list[str], template: str):
        self.owner, self.fields, self.template = owner, tuple(fields), template
        super().__init__(self.message({}))

    def message(self, names: dict[str, str]) -> str:
        """The message with each field called ``names[field]`` (default ``Owner.field``)."""
        return self.template.format(*(names.get(f, f"{self.owner}.{f}") for f in self.fields))


@dataclass
class GPTConfig:
    """Hyperparameters of :class:`GPT`. Defaults are the lecture's final configuration
    (10,788,929 parameters with vocab 65).

    ``attention``: ``"batched"`` (one fused QKV projection, fast) or ``"heads"`` (the lecture's
    list of ``Head`` s); same mathematics, same parameter count.

    Chapter 12's modern features, all off by default (the lecture's model):
    ``activation`` ``"relu"`` | ``"gelu"`` | ``"swiglu"``; ``norm`` ``"layernorm"`` | ``"rmsnorm"``;
    ``position`` ``"learned"`` (a position embedding table) | ``"rope"`` (rotary, no table);
    ``tie_weights``: the output layer shares the token embedding's matrix.

    ``attn_dropout``: a separate rate for the attention weights (``None``: ``dropout``). ``0.0`` with
    ``dropout > 0`` regularises the residual branches only and keeps PyTorch's fused attention kernel on
    a CPU, which refuses attention dropout.
    """

    vocab_size: int = 65
    block_size: int = 256
    n_embd: int = 384
    n_head: int = 6
    n_layer: int = 6
    dropout: float = 0.2
    attention: str = "batched"
    activation: str = "relu"
    norm: str = "layernorm"
    position: str = "learned"
    tie_weights: bool = False
    attn_dropout: float | None = None  # dropout on the attention weights; None: ``dropout``, as in the lecture

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_embd", "n_head", "n_layer"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError("GPTConfig", [name], f"{{0}} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ConfigError("GPTConfig", ["n_embd", "n_head"],
                              f"{{0}}={self.n_embd} must be divisible by {{1}}={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("GPTConfig", ["dropout"], f"{{0}} must be in [0, 1), got {self.dropout}")
        if self.attention not in ("batched", "heads"):
            raise ConfigError("GPTConfig", ["attention"], f"{{0}} must be 'batched' or 'heads', got {self.attention!r}")
        if self.attn_dropout is not None:
            if not 0.0 <= self.attn_dropout < 1.0:
                raise ConfigError("GPTConfig", ["attn_dropout"], f"{{0}} must be in [0, 1) (or None: the same as dropout), got {self.attn_dropout}")
            if self.attention != "batched" and self.attn_dropout != self.dropout:
                raise ConfigError("GPTConfig", ["attn_dropout"], "a separate {0} needs attention='batched'")
        choices = {"activation": ("relu", "gelu", "swiglu"), "norm": ("layernorm", "rmsnorm"),
                   "position": ("learned", "rope")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError("GPTConfig", [name], f"{{0}} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.position == "rope":
            if self.attention != "batched":
                raise ConfigError("GPTConfig", ["position"], "{0}='rope' needs attention='batched'")
            if (self.n_embd // self.n_head) % 2:
                raise ConfigError("GPTConfig", ["position", "n_embd", "n_head"],
                                  f"{{0}}='rope' needs an even head size, {{1}}/{{2}} = {self.n_embd // self.n_head}")
        if not isinstance(self.tie_weights, bool):
            raise ConfigError("GPTConfig", ["tie_weights"], f"{{0}} must be True or False, got {self.tie_weights!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"GPTConfig: unknown fields {sorted(unknown)}")
        return cls(**d)


class GPT(nn.Module):
    """Decoder-only Transformer: token + position embeddings, ``n_layer`` Blocks, final LayerNorm,
    a linear head to logits over the vocabulary."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.block_size = config.block_size
        self.token_embedding_table = nn.Embedding(config.vocab_size, config.n_embd)
        if config.position == "learned":
            self.position_embedding_table = nn.Embedding(config.block_size, config.n_embd)
        else:  # RoPE: positions enter through the rotation of queries and keys
            self.position_embedding_table = None
        rope = config.position == "rope"
        self.blocks = nn.Sequential(
            *[
                Block(config.n_embd, config.n_head, config.block_size, config.dropout, config.attention,
                      config.activation, config.norm, rope, config.attn_dropout)
                for _ in range(config.n_layer)
            ]
        )
        self.ln_f = make_norm(config.norm, config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)
        self.apply(self._init_weights)
        if config.tie_weights:
            tie_weights(self)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # the lecture's initialisation: N(0, 0.02) for weights, zero biases
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """``idx``: ``(B, T)`` ids with ``T <= block_size``. Returns ``(logits, loss)`` like
        :class:`BigramLanguageModel` (logits ``(B*T, C)`` when targets are given)."""
        B, T = idx.shape
        _check_length(T, self.block_size)
        x = self.token_embedding_table(idx)  # (B, T, C)
        if self.position_embedding_table is not None:
            x = x + self.position_embedding_table(torch.arange(T, device=idx.device))  # + (T, C)
        x = self.blocks(x)
        x = self.ln_f(x)
        logits = self.lm_head(x)  # (B, T, vocab_size)
        return _logits_and_loss(logits, targets)

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        return generate(self, idx, max_new_tokens, temperature=temperature, top_k=top_k, generator=generator)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> torch.Tensor:
        """Attention weights of every layer and head for ``idx`` (``(B, T)``), computed by the
        forward pass itself in eval mode: shape ``(n_layer, B, n_head, T, T)``."""
        with eval_mode(self), keep_attention(self) as modules:
            self(idx)
            return torch.stack([m.attention for m in modules])


@contextlib.contextmanager
def keep_attention(model: nn.Module):
    """Within the block, every top-level attention module of ``model`` stores its weights in
    ``.attention``. Yields the list of those modules, in order."""
    modules = [m for m in model.modules() if isinstance(m, _KeepsAttention)]
    # heads inside a MultiHeadAttention are driven by it: report the outer module only
    inner = {id(h) for m in modules if isinstance(m, MultiHeadAttention) for h in m.heads}
    top = [m for m in modules if id(m) not in inner]
    old = [m.keep_attention for m in modules]
    for m in modules:
        m.keep_attention = True
    try:
        yield top
    finally:
        for m, flag in zip(modules, old):
            m.keep_attention = flag
            m.attention = None


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (the lecture prints this in millions)."""
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "BigramLanguageModel",
    "BigramWithPositions",
    "generate",
    "causal_attention",
    "eval_mode",
    "cpu_dropout",
    "Dropout",
    "Head",
    "MultiHeadAttention",
    "CausalSelfAttention",
    "heads_to_batched",
    "FeedForward",
    "LayerNorm",
    "gelu",
    "RMSNorm",
    "SwiGLU",
    "swiglu_hidden",
    "rope_tables",
    "apply_rope",
    "tie_weights",
    "make_norm",
    "make_feed_forward",
    "Block",
    "ConfigError",
    "GPTConfig",
    "GPT",
    "keep_attention",
    "count_parameters",
]

