"""Correct solutions of exercises 13.4 and 13.5 written differently from the notebook's pass their checks.

A learner may keep the cache in many shapes: the given ``KVCache`` grown by hand with ``torch.cat``, buffers
preallocated for ``block_size`` positions and filled at a write index, a list of per-layer ``(k, v)`` tuples, one
preallocated tensor per layer, or one tensor stacking every layer's keys and values. Each is right (the same tokens
as the plain ``generate``), so each must pass; a check that fails one of them is too strict.

For 13.4 the check hands the learner a :class:`~lecture_utils.generation.KVCache` and reads ``len(cache)``; for 13.5
it only calls ``generate_with_cache(model, idx, max_new_tokens, generator=...)``, so the cache is the learner's own.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import lecture_utils.checks as check
from lecture_utils.checks import RESULTS, CheckFailed
from lecture_utils.checks._core import PASSED
from lecture_utils.generation import KVCache

# ---------------------------------------------------------------------------------------------
# 13.4: attend_with_cache(attn, x, cache), the cache a KVCache given by the caller
# ---------------------------------------------------------------------------------------------


def _split_heads(attn, x):
    """Queries, keys and values of ``x`` (B, T, C), each (B, n_head, T, head_size)."""
    B, T, C = x.shape
    q, k, v = attn.qkv(x).split(C, dim=2)
    return [t.view(B, T, attn.n_head, C // attn.n_head).transpose(1, 2) for t in (q, k, v)]


def _merge_heads(attn, out):
    B, nh, T, hs = out.shape
    return attn.proj(out.transpose(1, 2).reshape(B, T, nh * hs))


def attend_cat_by_hand(attn, x, cache):
    """Grows ``cache.keys`` / ``cache.values`` with torch.cat itself (no ``append``); SDPA with a boolean mask."""
    q, k, v = _split_heads(attn, x)
    start, T = len(cache), x.size(1)
    if cache.keys is None:
        cache.keys, cache.values = k, v
    else:
        cache.keys = torch.cat([cache.keys, k], dim=2)
        cache.values = torch.cat([cache.values, v], dim=2)
    allowed = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start)
    out = F.scaled_dot_product_attention(q, cache.keys, cache.values, attn_mask=allowed)
    return _merge_heads(attn, out)


def attend_preallocated(attn, x, cache):
    """Preallocates ``block_size`` positions on the cache object, writes at an index, and exposes the filled part
    as ``cache.keys`` / ``cache.values`` (views); einsum and an additive -1e9 mask; no mask for one new token."""
    q, k, v = _split_heads(attn, x)
    start, T = len(cache), x.size(1)
    if start == 0:
        capacity = attn.tril.size(-1)
        cache.k_buffer = k.new_zeros(k.size(0), k.size(1), capacity, k.size(3))
        cache.v_buffer = torch.zeros_like(cache.k_buffer)
    cache.k_buffer[:, :, start:start + T] = k
    cache.v_buffer[:, :, start:start + T] = v
    cache.keys = cache.k_buffer[:, :, :start + T]
    cache.values = cache.v_buffer[:, :, :start + T]
    wei = torch.einsum("bhtd,bhsd->bhts", q, cache.keys) / q.size(-1) ** 0.5
    if T > 1:
        rows = torch.arange(start, start + T, device=x.device)[:, None]
        cols = torch.arange(start + T, device=x.device)[None, :]
        wei = wei + (cols > rows) * -1e9
    out = torch.einsum("bhts,bhsd->bhtd", wei.softmax(dim=-1), cache.values)
    return _merge_heads(attn, out)


def attend_with_append_and_tril_buffer(attn, x, cache):
    """``cache.append``, then the module's own ``tril`` buffer sliced at the new rows; a float mask of zeros and
    ones compared with 0, as in the lecture."""
    q, k, v = _split_heads(attn, x)
    start, T = len(cache), x.size(1)
    k, v = cache.append(k, v)
    wei = q @ k.transpose(-2, -1) * k.size(-1) ** -0.5
    wei = wei.masked_fill(attn.tril[:, :, start:start + T, :start + T] == 0, float("-inf"))
    return _merge_heads(attn, F.softmax(wei, dim=-1) @ v)


ATTENTION_VARIANTS = {
    "concatenation_by_hand": attend_cat_by_hand,
    "preallocated_buffers_on_the_cache": attend_preallocated,
    "append_and_the_modules_tril": attend_with_append_and_tril_buffer,
}


@pytest.mark.parametrize("name", ATTENTION_VARIANTS)
def test_correct_attention_with_cache_passes(name):
    fn = ATTENTION_VARIANTS[name]
    assert check.cached_attention(fn) is fn
    assert RESULTS["13.4"]["status"] == PASSED


# ---------------------------------------------------------------------------------------------
# 13.5: generate_with_cache(model, idx, max_new_tokens, generator=None), the cache the learner's own
# ---------------------------------------------------------------------------------------------


def _embed(model, tokens, start):
    positions = torch.arange(start, start + tokens.size(1), device=tokens.device)
    return model.token_embedding_table(tokens) + model.position_embedding_table(positions)


def _attend(attn, q, k, v, start):
    """New queries at positions start.. against every key so far (SDPA, boolean mask, none for one query)."""
    T = q.size(2)
    mask = None if T == 1 else torch.ones(T, k.size(2), dtype=torch.bool, device=q.device).tril(diagonal=start)
    return _merge_heads(attn, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def _logits(model, x):
    return model.lm_head(model.ln_f(x))[:, -1, :]


def _sample_loop(first_logits, step, idx, max_new_tokens, generator):
    """The lecture's sampling loop around ``step(idx_next) -> logits``."""
    logits = first_logits
    for _ in range(max_new_tokens):
        idx_next = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)
        idx = torch.cat((idx, idx_next), dim=1)
        logits = step(idx_next)
    return idx


@torch.no_grad()
def generate_list_of_tuples(model, idx, max_new_tokens, generator=None):
    """(a) A list of per-layer ``(k, v)`` tuples, replaced at every step by tuples grown with torch.cat."""
    kv = [None] * len(model.blocks)

    def forward(tokens):
        start = 0 if kv[0] is None else kv[0][0].size(2)
        x = _embed(model, tokens, start)
        for layer, block in enumerate(model.blocks):
            q, k, v = _split_heads(block.sa, block.ln1(x))
            if kv[layer] is not None:
                k = torch.cat((kv[layer][0], k), dim=2)
                v = torch.cat((kv[layer][1], v), dim=2)
            kv[layer] = (k, v)
            x = x + _attend(block.sa, q, k, v, start)
            x = x + block.ffwd(block.ln2(x))
        return _logits(model, x)

    return _sample_loop(forward(idx), forward, idx, max_new_tokens, generator)


@torch.no_grad()
def generate_preallocated_per_layer(model, idx, max_new_tokens, generator=None):
    """(b) One preallocated tensor per layer, ``(2, B, n_head, capacity, head_size)``, and a write index; the loop
    does not feed the last token drawn (its logits are never used)."""
    B, T = idx.shape
    n_embd = model.token_embedding_table.embedding_dim
    n_head = model.blocks[0].sa.n_head
    capacity = T + max_new_tokens
    buffers = [torch.zeros(2, B, n_head, capacity, n_embd // n_head, device=idx.device) for _ in model.blocks]
    filled = 0

    def forward(tokens):
        nonlocal filled
        start, new = filled, tokens.size(1)
        x = _embed(model, tokens, start)
        for buffer, block in zip(buffers, model.blocks):
            q, k, v = _split_heads(block.sa, block.ln1(x))
            buffer[0, :, :, start:start + new] = k
            buffer[1, :, :, start:start + new] = v
            x = x + _attend(block.sa, q, buffer[0, :, :, :start + new], buffer[1, :, :, :start + new], start)
            x = x + block.ffwd(block.ln2(x))
        filled = start + new
        return _logits(model, x)

    logits = forward(idx)
    for i in range(max_new_tokens):
        idx_next = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)
        idx = torch.cat((idx, idx_next), dim=1)
        if i < max_new_tokens - 1:
            logits = forward(idx_next)
    return idx


@torch.no_grad()
def generate_one_stacked_tensor(model, idx, max_new_tokens, generator=None):
    """(c) One tensor for the whole model, ``(n_layer, 2, B, n_head, t, head_size)``, grown once per step by
    torch.cat of every layer's new keys and values; the model kept in eval mode by hand."""
    model.eval()
    B = idx.size(0)
    n_embd = model.token_embedding_table.embedding_dim
    n_head = model.blocks[0].sa.n_head
    cache = torch.empty(len(model.blocks), 2, B, n_head, 0, n_embd // n_head, device=idx.device)

    def forward(tokens):
        nonlocal cache
        start = cache.size(4)
        x = _embed(model, tokens, start)
        new = []
        for layer, block in enumerate(model.blocks):
            q, k, v = _split_heads(block.sa, block.ln1(x))
            new.append(torch.stack((k, v)))
            keys = torch.cat((cache[layer, 0], k), dim=2)
            values = torch.cat((cache[layer, 1], v), dim=2)
            x = x + _attend(block.sa, q, keys, values, start)
            x = x + block.ffwd(block.ln2(x))
        cache = torch.cat((cache, torch.stack(new)), dim=4)
        return _logits(model, x)

    return _sample_loop(forward(idx), forward, idx, max_new_tokens, generator)


def generate_kvcache_objects_inference_mode(model, idx, max_new_tokens, generator=None):
    """The course's KVCache per block with the learner's own attention (a preallocating 13.4 above), under
    torch.inference_mode instead of no_grad."""
    caches = [KVCache() for _ in model.blocks]
    with torch.inference_mode():
        def forward(tokens):
            x = _embed(model, tokens, len(caches[0]))
            for block, cache in zip(model.blocks, caches):
                x = x + attend_preallocated(block.sa, block.ln1(x), cache)
                x = x + block.ffwd(block.ln2(x))
            return _logits(model, x)

        return _sample_loop(forward(idx), forward, idx, max_new_tokens, generator)


GENERATE_VARIANTS = {
    "list_of_per_layer_tuples_cat": generate_list_of_tuples,
    "preallocated_tensor_per_layer_write_index": generate_preallocated_per_layer,
    "one_stacked_tensor_for_all_layers": generate_one_stacked_tensor,
    "kvcache_objects_preallocated_inference_mode": generate_kvcache_objects_inference_mode,
}


@pytest.mark.parametrize("name", GENERATE_VARIANTS)
def test_correct_generate_with_cache_passes(name):
    fn = GENERATE_VARIANTS[name]
    assert check.cached_generate(fn) is fn
    assert RESULTS["13.5"]["status"] == PASSED


def test_a_cache_kept_between_calls_still_fails():
    """The variants above pass because they are right, not because the check passes everything: the list-of-tuples
    variant with its cache moved out of the function (kept between prompts) fails."""
    kept = {}

    @torch.no_grad()
    def generate_with_cache(model, idx, max_new_tokens, generator=None):
        kv = kept.setdefault("kv", [None] * len(model.blocks))

        def forward(tokens):
            start = 0 if kv[0] is None else kv[0][0].size(2)
            x = _embed(model, tokens, start)
            for layer, block in enumerate(model.blocks):
                q, k, v = _split_heads(block.sa, block.ln1(x))
                if kv[layer] is not None:
                    k = torch.cat((kv[layer][0], k), dim=2)
                    v = torch.cat((kv[layer][1], v), dim=2)
                kv[layer] = (k, v)
                x = x + _attend(block.sa, q, k, v, start)
                x = x + block.ffwd(block.ln2(x))
            return _logits(model, x)

        return _sample_loop(forward(idx), forward, idx, max_new_tokens, generator)

    with pytest.raises(CheckFailed):
        check.cached_generate(generate_with_cache)
    assert RESULTS["13.5"]["status"] != PASSED
