"""The lecture's model, module by module, in the lecture's order and with the lecture's names.

Each class is what a chapter's exercise builds; a later chapter uses these when it needs an
earlier chapter's piece, so a learner stuck on one exercise can still run every later cell.

- ``BigramLanguageModel``  (chapter 02)
- ``BigramWithPositions``  (chapter 03) token + position embeddings, ``lm_head``
- ``Head``                 (chapter 04) one head of causal self-attention
- ``MultiHeadAttention``   (chapter 05) a list of ``Head`` s, concatenated, projected
- ``CausalSelfAttention``  (chapter 05, EX1) the same maths with heads as a batch dimension (nanoGPT's)
- ``FeedForward``          (chapter 06)
- ``LayerNorm``            (chapter 07) from scratch; matches ``torch.nn.LayerNorm``
- ``Block``                (chapter 07) pre-norm, residual connections
- ``GPTConfig`` / ``GPT``  (chapter 08)

One architecture switch: list of heads or batched heads (:func:`self_attention`). Chapter 12's pieces
live above, in :mod:`lecture_utils.modern` (``ModernGPT``; ``build_gpt(config)`` for any config), the
fast CPU dropout masks in :mod:`lecture_utils.speed`; this module imports neither.

With ``keep_attention`` set (:func:`keep_attention`), every attention module stores the weights, queries
and keys of its forward pass in ``.attention``, ``.attention_queries``, ``.attention_keys``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, fields

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


def _check_length(T: int, block_size: int | None) -> None:
    if block_size is not None and T > block_size:
        raise ValueError(
            f"sequence length {T} is longer than block_size={block_size}: crop the context to the "
            f"last {block_size} tokens (generate does this)"
        )


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


class _KeepsAttention:
    """Mixin: ``keep_attention = True`` makes the module store, detached, its last attention weights
    in ``self.attention`` and the queries and keys they were computed from (after any rotation) in
    ``self.attention_queries`` / ``self.attention_keys``, for the heatmaps and the explorer.
    Shapes: ``(B, T, T)`` and ``(B, T, hs)`` for one head, ``(B, n_head, T, T)`` and
    ``(B, n_head, T, hs)`` for several."""

    keep_attention: bool = False
    attention: torch.Tensor | None = None
    attention_queries: torch.Tensor | None = None
    attention_keys: torch.Tensor | None = None

    def _record(self, weights: torch.Tensor | None = None, q: torch.Tensor | None = None,
                k: torch.Tensor | None = None) -> None:
        if self.keep_attention and weights is not None:
            self.attention, self.attention_queries, self.attention_keys = weights.detach(), q.detach(), k.detach()
        else:
            self.attention = self.attention_queries = self.attention_keys = None


class Head(nn.Module, _KeepsAttention):
    """One head of causal self-attention: every token emits a query ("what am I looking for") and a
    key ("what do I contain"); affinities are ``q @ k^T / sqrt(head_size)``, the future is masked,
    softmax makes them weights, and the head returns the weighted sum of the values."""

    def __init__(self, n_embd: int, head_size: int, block_size: int, dropout: float = 0.0):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        # not a parameter, and not saved: checkpoints hold the learned weights only
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, T, n_embd)`` -> ``(B, T, head_size)``."""
        B, T, C = x.shape
        _check_length(T, self.tril.size(0))
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T)
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        self._record(wei, q, k)
        wei = self.dropout(wei)
        v = self.value(x)  # (B, T, hs)
        return wei @ v  # (B, T, hs)


class CrossHead(nn.Module):
    """One head of cross-attention (the lecture's note 5): the queries come from ``x``, the keys and values from
    ``context``, another sequence (in the original Transformer, the encoder's output). Nothing is masked, so every
    query sees the whole context, and ``CrossHead(...)(x, x)`` is an encoder (unmasked) head."""

    def __init__(self, n_embd: int, head_size: int):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, T, n_embd)``, ``context``: ``(B, S, n_embd)`` -> ``(B, T, head_size)``."""
        q = self.query(x)  # (B, T, hs)
        k = self.key(context)  # (B, S, hs)
        v = self.value(context)  # (B, S, hs)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, S)
        wei = F.softmax(wei, dim=-1)  # no mask: each query weighs the whole context
        return wei @ v  # (B, T, hs)


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
        recorded = ("attention", "attention_queries", "attention_keys") if self.keep_attention else ()
        self._record(*(torch.stack([getattr(h, name) for h in self.heads], dim=1) for name in recorded))
        return self.dropout(self.proj(out))


class CausalSelfAttention(nn.Module, _KeepsAttention):
    """Multi-head attention with the heads as a batch dimension (the lecture's exercise EX1, nanoGPT's
    ``CausalSelfAttention``): one linear layer computes the queries, keys and values of every head at
    once; ``view`` and ``transpose`` turn ``(B, T, 3C)`` into three ``(B, nh, T, hs)`` tensors.

    Same mathematics and parameter count as ``MultiHeadAttention``; :func:`heads_to_batched` copies
    weights from one to the other. ``attn_dropout`` is a separate rate for the attention weights
    (None: ``dropout``, as in the lecture).
    """

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0,
                 attn_dropout: float | None = None):
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}")
        self.n_head = n_head
        self.block_size = block_size
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)  # [q | k | v], each head_size per head
        self.proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(dropout if attn_dropout is None else attn_dropout)
        self.resid_dropout = nn.Dropout(dropout)
        tril = torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size)
        self.register_buffer("tril", tril, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, n_embd)`` -> ``(B, T, n_embd)``. Weights: ``(B, n_head, T, T)``."""
        B, T, C = x.shape
        _check_length(T, self.block_size)
        q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        out = self.attend(q, k, v)  # (B, nh, T, hs)
        out = out.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.proj(out))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Masked, scaled dot-product attention of ``(B, nh, T, hs)`` queries, keys and values.

        Written out (as the lecture does) when the weights are wanted for a heatmap, or when the
        weights' dropout is not torch's own (a model given fast CPU masks by
        :func:`lecture_utils.speed.use_fast_cpu_dropout`: ``scaled_dot_product_attention`` can only
        draw its own); otherwise ``F.scaled_dot_product_attention``, the same mathematics fused.
        """
        T = q.size(-2)
        own_dropout = self.training and self.attn_dropout.p > 0 and type(self.attn_dropout) is not nn.Dropout
        if self.keep_attention or own_dropout:
            wei = q @ k.transpose(-2, -1) * q.size(-1) ** -0.5  # (B, nh, T, T)
            wei = wei.masked_fill(self.tril[:, :, :T, :T] == 0, float("-inf"))
            wei = F.softmax(wei, dim=-1)
            self._record(wei, q, k)
            return self.attn_dropout(wei) @ v
        self._record()
        p = self.attn_dropout.p if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)


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


def self_attention(n_embd: int, n_head: int, block_size: int, dropout: float = 0.0, attention: str = "heads",
                   attn_dropout: float | None = None) -> MultiHeadAttention | CausalSelfAttention:
    """The model's one architecture switch: ``attention="heads"`` gives the lecture's list of heads
    (:class:`MultiHeadAttention`), ``"batched"`` the same mathematics with the heads batched
    (:class:`CausalSelfAttention`, whose ``attn_dropout`` is a separate rate for the weights)."""
    if n_embd % n_head != 0:
        raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}")
    if attention == "heads":
        return MultiHeadAttention(n_embd, n_head, n_embd // n_head, block_size, dropout)
    if attention == "batched":
        return CausalSelfAttention(n_embd, n_head, block_size, dropout, attn_dropout)
    raise ValueError(f"attention must be 'heads' or 'batched', got {attention!r}")


# ---------------------------------------------------------------------------------------------
# chapters 06-07: feed-forward, LayerNorm, Block
# ---------------------------------------------------------------------------------------------


class FeedForward(nn.Module):
    """Per-token computation after communication: Linear (4x wider), ReLU, Linear back, dropout."""

    def __init__(self, n_embd: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd),
            nn.ReLU(),
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


class Block(nn.Module):
    """Transformer block: communication (attention) then computation (feed-forward), each applied
    to a LayerNorm'ed copy of the residual stream and added back to it (pre-norm).

    ``Block(n_embd, n_head, block_size, dropout)`` is exercise 7.2's block: the lecture's list of
    heads. ``attention="batched"`` puts :class:`CausalSelfAttention` in its place (same mathematics;
    ``attn_dropout`` is its separate rate for the attention weights); :meth:`from_config` builds the
    block ``GPT`` stacks. The parts are built in the order ``sa, ffwd, ln1, ln2``."""

    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float = 0.0,
                 attention: str = "heads", attn_dropout: float | None = None):
        super().__init__()
        self.sa = self_attention(n_embd, n_head, block_size, dropout, attention, attn_dropout)
        self.ffwd = FeedForward(n_embd, dropout)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sa(self.ln1(x))
        x = x + self.ffwd(self.ln2(x))
        return x

    @classmethod
    def from_config(cls, config: GPTConfig) -> Block:
        """One of ``GPT``'s blocks: heads batched unless ``config.attention == "heads"``."""
        if {"activation", "norm", "position"} & set(config.chapter12_features()):
            raise ValueError("Block is the lecture's block; for chapter 12's parts use lecture_utils.modern.ModernBlock")
        return cls(config.n_embd, config.n_head, config.block_size, config.dropout, config.attention,
                   config.attn_dropout)


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

    ``attention``: ``"batched"`` (:class:`CausalSelfAttention`, fast) or ``"heads"`` (the lecture's
    list of ``Head`` s); same mathematics, same parameter count. ``attn_dropout``: a separate rate for
    the attention weights (None: ``dropout``); ``0.0`` regularises the residual branches only.

    Chapter 12's features, off by default, built by :func:`lecture_utils.modern.build_gpt`: ``activation``
    ``"relu"`` | ``"gelu"`` | ``"swiglu"``; ``norm`` ``"layernorm"`` | ``"rmsnorm"``; ``position``
    ``"learned"`` (a position embedding table) | ``"rope"`` (rotary, no table); ``tie_weights``: the
    output layer shares the token embedding's matrix.
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
    attn_dropout: float | None = None

    def __post_init__(self):
        def bad(names, template):
            raise ConfigError("GPTConfig", names, template)

        for name in ("vocab_size", "block_size", "n_embd", "n_head", "n_layer"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                bad([name], f"{{0}} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            bad(["n_embd", "n_head"], f"{{0}}={self.n_embd} must be divisible by {{1}}={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            bad(["dropout"], f"{{0}} must be in [0, 1), got {self.dropout}")
        choices = {"attention": ("batched", "heads"), "activation": ("relu", "gelu", "swiglu"),
                   "norm": ("layernorm", "rmsnorm"), "position": ("learned", "rope")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                bad([name], f"{{0}} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.attn_dropout is not None:
            if not 0.0 <= self.attn_dropout < 1.0:
                bad(["attn_dropout"], f"{{0}} must be in [0, 1) (or None: the same as dropout), got {self.attn_dropout}")
            if self.attention != "batched" and self.attn_dropout != self.dropout:
                bad(["attn_dropout"], "a separate {0} needs attention='batched'")
        if self.position == "rope":
            if self.attention != "batched":
                bad(["position"], "{0}='rope' needs attention='batched'")
            if (self.n_embd // self.n_head) % 2:
                bad(["position", "n_embd", "n_head"],
                    f"{{0}}='rope' needs an even head size, {{1}}/{{2}} = {self.n_embd // self.n_head}")
        if not isinstance(self.tie_weights, bool):
            bad(["tie_weights"], f"{{0}} must be True or False, got {self.tie_weights!r}")

    def chapter12_features(self) -> dict:
        """The fields that ask for chapter 12's pieces, with their values (empty: the lecture's model,
        which :class:`GPT` builds; otherwise :func:`lecture_utils.modern.build_gpt` builds it)."""
        lecture = {"activation": "relu", "norm": "layernorm", "position": "learned", "tie_weights": False}
        return {name: getattr(self, name) for name, value in lecture.items() if getattr(self, name) != value}

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
    a linear head to logits over the vocabulary.

    A config that asks for chapter 12's pieces is refused (``ValueError``; :func:`lecture_utils.modern.build_gpt`
    builds it). Subclasses swap parts through the ``make_*`` methods and ``embed``; parts are built in the
    order below, so a seed gives the same weights whichever parts a subclass picks."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.check_config(config)
        self.config = config
        self.block_size = config.block_size
        self.token_embedding_table = nn.Embedding(config.vocab_size, config.n_embd)
        self.position_embedding_table = self.make_position_table(config)
        self.blocks = nn.Sequential(*[self.make_block(config) for _ in range(config.n_layer)])
        self.ln_f = self.make_final_norm(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)
        self.apply(self._init_weights)

    @classmethod
    def check_config(cls, config: GPTConfig) -> None:
        """Refuse a config this class cannot build (raise ``ValueError``)."""
        features = config.chapter12_features()
        if features:
            asked = ", ".join(f"{name}={value!r}" for name, value in features.items())
            raise ValueError(f"GPT builds the lecture's model; GPTConfig({asked}) asks for chapter 12's pieces: "
                             "build it with lecture_utils.modern.build_gpt(config)")

    def make_position_table(self, config: GPTConfig) -> nn.Module | None:
        return nn.Embedding(config.block_size, config.n_embd)

    def make_block(self, config: GPTConfig) -> nn.Module:
        return Block.from_config(config)

    def make_final_norm(self, config: GPTConfig) -> nn.Module:
        return nn.LayerNorm(config.n_embd)

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
        x = self.embed(idx)  # (B, T, C)
        x = self.blocks(x)
        x = self.ln_f(x)
        logits = self.lm_head(x)  # (B, T, vocab_size)
        return _logits_and_loss(logits, targets)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Token + position embeddings of ``idx`` (``(B, T)``): ``(B, T, n_embd)``."""
        positions = torch.arange(idx.shape[1], device=idx.device)
        return self.token_embedding_table(idx) + self.position_embedding_table(positions)  # (B, T, C) + (T, C)

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        return generate(self, idx, max_new_tokens, temperature=temperature, top_k=top_k, generator=generator)

    def num_parameters(self) -> int:
        """Number of parameters (the lecture prints it in millions); a tied matrix counts once."""
        return num_parameters(self)

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> torch.Tensor:
        """Attention weights of every layer and head for ``idx`` (``(B, T)``), computed by the
        forward pass itself in eval mode: shape ``(n_layer, B, n_head, T, T)``."""
        with eval_mode(self), keep_attention(self) as modules:
            self(idx)
            return torch.stack([m.attention for m in modules])


def num_parameters(model: nn.Module) -> int:
    """Number of parameters of any model, the lecture's ``sum(p.numel() for p in model.parameters())``
    (a Parameter shared by two layers counts once)."""
    return sum(p.numel() for p in model.parameters())


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
            m.attention = m.attention_queries = m.attention_keys = None


__all__ = [
    "BigramLanguageModel",
    "BigramWithPositions",
    "generate",
    "eval_mode",
    "Head",
    "CrossHead",
    "MultiHeadAttention",
    "CausalSelfAttention",
    "heads_to_batched",
    "self_attention",
    "FeedForward",
    "LayerNorm",
    "Block",
    "ConfigError",
    "GPTConfig",
    "GPT",
    "num_parameters",
    "keep_attention",
]
