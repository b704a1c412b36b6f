"""How a trained GPT writes (chapter 13): the sampling rules, and a KV cache for the lecture's GPT.

Sampling rules are small functions from logits to logits (the last dimension is the vocabulary); softmax
afterwards gives the distribution a token is drawn from:

- :func:`apply_temperature`: divide by ``temperature`` (< 1 sharpens, > 1 flattens; greedy is its limit at 0);
- :func:`top_k_logits`: keep the ``k`` largest logits (and any tied with the k-th), the rest to ``-inf``;
- :func:`top_p_logits`: nucleus sampling, keep the most likely tokens until their probability reaches ``p``;
- :func:`greedy`: the most likely token, no randomness.

The KV cache: :func:`lecture_utils.model.generate` runs the whole context through the model for every new token,
although the keys and values of the earlier positions never change (attention is causal: a position never looks
ahead). :class:`KVCache` keeps them, one per layer; :func:`attend_with_cache` computes the attention of the new
positions only, against every cached key; :func:`forward_with_cache` runs the model on the new tokens at their own
positions; :func:`generate_with_cache` then feeds one token per step and gives the same tokens as
:func:`~lecture_utils.model.generate` for the same seed.

Built on :mod:`lecture_utils.model` (the lecture's ``GPT`` with its batched ``CausalSelfAttention``), which never
imports this module.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn import functional as F

from lecture_utils.model import GPT, CausalSelfAttention, eval_mode
from lecture_utils.model import generate as plain_generate

# ---------------------------------------------------------------------------------------------
# sampling rules (exercises 13.1-13.3)
# ---------------------------------------------------------------------------------------------


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature``: below 1 the likely tokens get likelier, above 1 the distribution flattens
    towards uniform. Any shape. Raises ``ValueError`` unless ``temperature > 0`` (0 is :func:`greedy`)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (its limit at 0 is greedy decoding), got {temperature}")
    return logits / temperature


def top_k_logits(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of each row (last dimension), set the others to ``-inf``. A logit tied with
    the k-th largest is kept too (the lecture's ``logits < v[:, [-1]]``); ``k`` larger than the vocabulary keeps
    everything. Raises ``ValueError`` for ``k < 1``."""
    if k < 1:
        raise ValueError(f"top_k must be at least 1, got {k}")
    kth_largest = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., [-1]]  # (..., 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_logits(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus sampling: keep the most likely tokens of each row, in order, until their total probability
    reaches ``p``; set the others to ``-inf``. The most likely token is always kept; a token tied with the last
    one kept is kept too; ``p = 1`` keeps everything. Raises ``ValueError`` unless ``0 < p <= 1``."""
    if not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    if p == 1:
        return logits
    probs = F.softmax(logits.float(), dim=-1)
    sorted_probs = probs.sort(dim=-1, descending=True).values
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # probability of the tokens ranked above each one
    n_keep = (mass_before < p).sum(dim=-1, keepdim=True)  # >= 1: nothing is ranked above the top token
    smallest_kept = sorted_probs.gather(-1, n_keep - 1)  # (..., 1)
    return logits.masked_fill(probs < smallest_kept, float("-inf"))


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The most likely token of each row: ``(..., vocab_size)`` -> ``(..., 1)`` ids. The limit of
    :func:`apply_temperature` as the temperature goes to 0."""
    return logits.argmax(dim=-1, keepdim=True)


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> torch.Tensor:
    """The distribution of the next token, ``(B, vocab_size)`` logits -> probabilities: temperature first, then
    top-k, then top-p (the order of :func:`lecture_utils.model.generate`, which has no top-p)."""
    logits = apply_temperature(logits.float(), temperature)
    if top_k is not None:
        logits = top_k_logits(logits, top_k)
    if top_p is not None:
        logits = top_p_logits(logits, top_p)
    return F.softmax(logits, dim=-1)


def sample_next(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row drawn from ``probs`` (``(B, vocab_size)``) -> ``(B, 1)`` ids on the same device, drawn
    exactly as :func:`lecture_utils.model.generate` draws them (same generator, same random numbers)."""
    sample_device = generator.device if generator is not None else probs.device
    if sample_device.type == "mps":  # multinomial is reliable on the CPU
        sample_device = torch.device("cpu")
    return torch.multinomial(probs.to(sample_device), num_samples=1, generator=generator).to(probs.device)


# ---------------------------------------------------------------------------------------------
# the KV cache (exercise 13.4)
# ---------------------------------------------------------------------------------------------


class KVCache:
    """The keys and values one attention layer has computed so far, ``(B, n_head, t, head_size)`` each, ``t`` the
    number of positions seen. ``len(cache)`` is ``t``: the position the next token will have."""

    def __init__(self):
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.size(-2)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the keys and values of new positions (``(B, nh, T, hs)``); return all of them so far."""
        if self.keys is None:
            self.keys, self.values = k, v
        else:
            self.keys = torch.cat((self.keys, k), dim=-2)  # (B, nh, t + T, hs)
            self.values = torch.cat((self.values, v), dim=-2)
        return self.keys, self.values


def attend_with_cache(attn: CausalSelfAttention, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """``attn``'s output for new positions only: ``x`` is ``(B, T, n_embd)``, the (layer-normed) residual stream
    at positions ``len(cache) .. len(cache) + T - 1``. Their keys and values (after the projection ``attn.qkv``)
    join the cache; their queries attend to every cached key up to their own position. Returns
    ``(B, T, n_embd)``, what ``attn`` gives at those positions when run on the whole sequence."""
    B, T, C = x.shape
    start = len(cache)
    q, k, v = attn.qkv(x).split(C, dim=2)  # each (B, T, C)
    hs = C // attn.n_head
    q = q.view(B, T, attn.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
    k = k.view(B, T, attn.n_head, hs).transpose(1, 2)
    v = v.view(B, T, attn.n_head, hs).transpose(1, 2)
    k, v = cache.append(k, v)  # (B, nh, start + T, hs)
    if T == 1:
        # one new token, the latest position: it may look at everything. (is_causal=True would align the mask to
        # the top left and let it see key 0 only.)
        out = F.scaled_dot_product_attention(q, k, v)
    else:
        # the new query i sits at position start + i: it sees keys 0 .. start + i
        allowed = attn.tril[0, 0, start:start + T, :start + T].bool()  # (T, start + T)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    out = out.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
    return attn.proj(out)


def cacheable(model: nn.Module) -> bool:
    """True when :func:`generate_with_cache` can run ``model``: the lecture's ``GPT`` with batched attention,
    ReLU, LayerNorm and learned positions."""
    try:
        _check_cacheable(model)
    except ValueError:
        return False
    return True


def _check_cacheable(model: nn.Module) -> None:
    config = getattr(model, "config", None)
    if not isinstance(model, GPT) or not all(isinstance(b.sa, CausalSelfAttention) for b in model.blocks):
        raise ValueError("the KV cache needs the lecture's GPT with batched attention (GPTConfig(attention='batched'), "
                         "learned positions): use lecture_utils.model.generate for other models")
    if {"activation", "norm", "position"} & set(config.chapter12_features()):  # tied weights change nothing here
        raise ValueError("the KV cache is written for the lecture's blocks (ReLU, LayerNorm, learned positions); "
                         f"this model has activation={config.activation!r}, norm={config.norm!r}, "
                         f"position={config.position!r}: use lecture_utils.model.generate")


def forward_with_cache(model: GPT, idx: torch.Tensor, caches: list[KVCache]) -> torch.Tensor:
    """Logits ``(B, T, vocab_size)`` for the new tokens ``idx`` (``(B, T)``), which come after the ``len(caches[0])``
    positions already cached (one :class:`KVCache` per block, filled as a side effect). Each new token gets its own
    position embedding, ``start + i``, not ``i``.

    Raises:
        ValueError: the cached and new positions together are more than ``block_size``.
    """
    B, T = idx.shape
    start = len(caches[0])
    if start + T > model.block_size:
        raise ValueError(f"{start} cached + {T} new positions is more than block_size={model.block_size}: rebuild "
                         f"the cache from the last {model.block_size} tokens")
    positions = torch.arange(start, start + T, device=idx.device)
    x = model.token_embedding_table(idx) + model.position_embedding_table(positions)  # (B, T, C)
    for block, cache in zip(model.blocks, caches):
        x = x + attend_with_cache(block.sa, block.ln1(x), cache)
        x = x + block.ffwd(block.ln2(x))
    return model.lm_head(model.ln_f(x))  # (B, T, vocab_size)


@contextlib.contextmanager
def weights_by_column(model: nn.Module):
    """Inside the ``with``, every ``nn.Linear`` weight of ``model`` holds the same numbers in the same shape, laid
    out in memory column by column (``weight.t().contiguous().t()``: other strides only); restored afterwards.

    Why: a cached step multiplies ONE row by each weight, ``x @ W.T``, and then reading the weights is most of the
    step. The CPU's BLAS (MKL) reads ``W.T`` about 1.5x faster when it is stored row by row: 4.70 -> 3.75 ms per
    token for the lecture-size model on the course's 2-core CPU. Copying the weights costs about as much as 4 steps.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    originals = [linear.weight.data for linear in linears]
    try:
        with torch.no_grad():
            for linear in linears:
                linear.weight.data = linear.weight.data.t().contiguous().t()
        yield model
    finally:
        for linear, weight in zip(linears, originals):
            linear.weight.data = weight


def generate_with_cache(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                        top_k: int | None = None, top_p: float | None = None,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """:func:`lecture_utils.model.generate` with a KV cache: the prompt (its last ``block_size`` tokens) goes through
    the model once, then each step feeds only the token just drawn. Same tokens as ``generate`` for the same seed.

    When the text outgrows ``block_size``, the window moves: every cached key was computed at a position that has
    now changed (learned absolute positions), so the cache is rebuilt from the last ``block_size`` tokens, exactly
    what ``generate``'s cropping recomputes (from then on each step costs as much as without a cache).

    Two things make it faster with the same weights (and, in every test and benchmark run, the same tokens): on a
    CPU, the weights laid out for one row at a time (:func:`weights_by_column`, about 20 % less time per token at
    the lecture's size); and ``torch.inference_mode`` rather than ``torch.no_grad`` (no autograd bookkeeping on
    thousands of small operations, about 5 %). Most of what is left is reading the weights once per token (43 MB at
    the lecture's size; ``benchmarks/RESULTS.md``).

    Raises:
        ValueError: as ``generate`` does for bad arguments; ``top_p`` outside (0, 1]; a model other than the lecture's
            GPT with batched attention.
    """
    plain_generate(model, idx, 0, temperature=temperature, top_k=top_k)  # checks the arguments, draws nothing
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be None or in (0, 1], got {top_p}")
    _check_cacheable(model)
    block_size = model.block_size
    on_cpu = idx.device.type == "cpu"  # the layout was measured on a CPU only
    with eval_mode(model), weights_by_column(model) if on_cpu else contextlib.nullcontext(), torch.inference_mode():
        caches = [KVCache() for _ in model.blocks]
        logits = forward_with_cache(model, idx[:, -block_size:], caches)[:, -1, :]  # (B, vocab_size)
        for step in range(max_new_tokens):
            probs = next_token_probs(logits, temperature, top_k, top_p)
            idx_next = sample_next(probs, generator).to(idx.device)  # (B, 1)
            idx = torch.cat((idx, idx_next), dim=1)  # (B, T+1)
            if step == max_new_tokens - 1:
                break
            if len(caches[0]) == block_size:  # the window moved: every position changed
                caches = [KVCache() for _ in model.blocks]
                logits = forward_with_cache(model, idx[:, -block_size:], caches)[:, -1, :]
            else:
                logits = forward_with_cache(model, idx_next, caches)[:, -1, :]
    return idx.clone()  # made outside inference mode: an ordinary tensor, which the caller may change in place


__all__ = ["apply_temperature", "top_k_logits", "top_p_logits", "greedy", "next_token_probs", "sample_next",
           "KVCache", "attend_with_cache", "forward_with_cache", "weights_by_column", "generate_with_cache", "cacheable"]
