"""Wrong solutions of chapter 13: sampling rules (13.1-13.3), attention with a KV cache (13.4), generate with it
(13.5)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from lecture_utils.generation import KVCache
from lecture_utils.generation import attend_with_cache as ref_attend

from ._catalogue import wrong

# ---------------------------------------------------------------------------------------------
# 13.1 temperature
# ---------------------------------------------------------------------------------------------


@wrong("13.1", "temperature", "multiplied by the temperature")
def temperature_multiplies():
    return (lambda logits, temperature: logits * temperature,)


@wrong("13.1", "temperature", "you returned probabilities")
def temperature_returns_probabilities():
    return (lambda logits, temperature: F.softmax(logits / temperature, dim=-1),)


@wrong("13.1", "temperature", "divides the probabilities")
def temperature_after_softmax():
    return (lambda logits, temperature: F.softmax(logits, dim=-1) / temperature,)


@wrong("13.1", "temperature", "changed its input in place")
def temperature_in_place():
    def apply_temperature(logits, temperature):
        logits /= temperature
        return logits

    return (apply_temperature,)


# ---------------------------------------------------------------------------------------------
# 13.2 top-k
# ---------------------------------------------------------------------------------------------


@wrong("13.2", "top_k", "set to 0")
def top_k_zeros():
    def top_k_logits(logits, k):
        v, _ = torch.topk(logits, min(k, logits.size(-1)))
        return logits.masked_fill(logits < v[..., [-1]], 0.0)

    return (top_k_logits,)


@wrong("13.2", "top_k", "k-th largest logit itself was dropped")
def top_k_drops_the_kth():
    def top_k_logits(logits, k):
        v, _ = torch.topk(logits, min(k, logits.size(-1)))
        return logits.masked_fill(logits <= v[..., [-1]], float("-inf"))

    return (top_k_logits,)


@wrong("13.2", "top_k", "tie with the k-th largest")
def top_k_scatters_exactly_k():
    def top_k_logits(logits, k):
        v, i = torch.topk(logits, min(k, logits.size(-1)))
        return torch.full_like(logits, float("-inf")).scatter(-1, i, v)

    return (top_k_logits,)


@wrong("13.2", "top_k", "larger than the vocabulary")
def top_k_without_min():
    def top_k_logits(logits, k):
        v, _ = torch.topk(logits, k)
        return logits.masked_fill(logits < v[..., [-1]], float("-inf"))

    return (top_k_logits,)


@wrong("13.2", "top_k", "changed its input in place")
def top_k_in_place():
    def top_k_logits(logits, k):
        v, _ = torch.topk(logits, min(k, logits.size(-1)))
        return logits.masked_fill_(logits < v[..., [-1]], float("-inf"))

    return (top_k_logits,)


# ---------------------------------------------------------------------------------------------
# 13.3 top-p
# ---------------------------------------------------------------------------------------------


def _nucleus(keep_rule, descending=True, of_logits=False, scatter=True, fill=float("-inf")):
    def top_p_logits(logits, p):
        probs = logits if of_logits else F.softmax(logits, dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=descending)
        keep_sorted = keep_rule(sorted_probs, p)
        if not scatter:
            sorted_logits = logits.gather(-1, order)
            return sorted_logits.masked_fill(~keep_sorted, fill)
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        return logits.masked_fill(~keep, fill)

    return top_p_logits


def _mass_above_below_p(sorted_probs, p):
    return (sorted_probs.cumsum(-1) - sorted_probs) < p


@wrong("13.3", "top_p", "takes the total past p was dropped")
def top_p_drops_the_crossing_token():
    return (_nucleus(lambda s, p: s.cumsum(-1) <= p),)


@wrong("13.3", "top_p", "runs in vocabulary order")
def top_p_unsorted():
    def top_p_logits(logits, p):
        probs = F.softmax(logits, dim=-1)
        return logits.masked_fill(probs.cumsum(-1) - probs >= p, float("-inf"))

    return (top_p_logits,)


@wrong("13.3", "top_p", "ascending order")
def top_p_ascending():
    return (_nucleus(_mass_above_below_p, descending=False),)


@wrong("13.3", "top_p", "cumulative sum is over logits")
def top_p_over_logits():
    return (_nucleus(_mass_above_below_p, of_logits=True),)


@wrong("13.3", "top_p", "came back in sorted order")
def top_p_not_scattered_back():
    return (_nucleus(_mass_above_below_p, scatter=False),)


@wrong("13.3", "top_p", "set to 0")
def top_p_zeros():
    return (_nucleus(_mass_above_below_p, fill=0.0),)


# ---------------------------------------------------------------------------------------------
# 13.4 the KV cache
# ---------------------------------------------------------------------------------------------


def _split_heads(attn, x):
    B, T, C = x.shape
    hs = C // attn.n_head
    q, k, v = attn.qkv(x).split(C, dim=2)
    return [t.view(B, T, attn.n_head, hs).transpose(1, 2) for t in (q, k, v)]


def _merge(attn, out):
    B, nh, T, hs = out.shape
    return attn.proj(out.transpose(1, 2).reshape(B, T, nh * hs))


def _generate(attend, restart=False, shared=None, no_cache=False):
    """The notebook's generate_with_cache, with ``attend`` for the attention and one slip where asked."""

    def generate_with_cache(model, idx, max_new_tokens, generator=None):
        caches = shared if shared is not None else [KVCache() for _ in model.blocks]

        def forward(tokens):
            start = 0 if restart else len(caches[0])
            pos = torch.arange(start, start + tokens.size(1), device=tokens.device)
            x = model.token_embedding_table(tokens) + model.position_embedding_table(pos)
            for block, cache in zip(model.blocks, caches):
                x = x + attend(block.sa, block.ln1(x), cache)
                x = x + block.ffwd(block.ln2(x))
            return model.lm_head(model.ln_f(x))[:, -1, :]

        with torch.no_grad():
            logits = forward(idx)
            for _ in range(max_new_tokens):
                probs = F.softmax(logits, dim=-1)
                idx_next = torch.multinomial(probs, num_samples=1, generator=generator)
                idx = torch.cat((idx, idx_next), dim=1)
                if no_cache:
                    for cache in caches:
                        cache.keys = cache.values = None
                    logits = forward(idx)
                else:
                    logits = forward(idx_next)
        return idx

    return generate_with_cache


@wrong("13.4", "cached_attention", "the cache never grows")
def cache_never_grows():
    def attend_with_cache(attn, x, cache):
        q, k, v = _split_heads(attn, x)
        if cache.keys is not None:
            k = torch.cat((cache.keys, k), dim=-2)
            v = torch.cat((cache.values, v), dim=-2)
        causal = x.size(1) > 1
        return _merge(attn, F.scaled_dot_product_attention(q, k, v, is_causal=causal))

    return (attend_with_cache,)


@wrong("13.4", "cached_attention", "applied to the single new query")
def mask_on_the_new_query():
    def attend_with_cache(attn, x, cache):
        q, k, v = _split_heads(attn, x)
        k, v = cache.append(k, v)
        return _merge(attn, F.scaled_dot_product_attention(q, k, v, is_causal=True))

    return (attend_with_cache,)


@wrong("13.4", "cached_attention", "holds the input x, not the keys")
def keys_cached_before_projection():
    def attend_with_cache(attn, x, cache):
        B, T, C = x.shape
        heads = x.view(B, T, attn.n_head, C // attn.n_head).transpose(1, 2)
        seen, _ = cache.append(heads, heads)  # the raw input, projected again below at every step
        everything = seen.transpose(1, 2).reshape(B, -1, C)
        q, k, v = _split_heads(attn, everything)
        t = everything.size(1)
        mask = torch.tril(torch.ones(t, t, dtype=torch.bool, device=x.device))[t - T:]
        return _merge(attn, F.scaled_dot_product_attention(q[:, :, t - T:], k, v, attn_mask=mask))

    return (attend_with_cache,)


@wrong("13.4", "cached_attention", "prompt's positions see the future")
def prompt_without_mask():
    def attend_with_cache(attn, x, cache):
        q, k, v = _split_heads(attn, x)
        k, v = cache.append(k, v)
        return _merge(attn, F.scaled_dot_product_attention(q, k, v))

    return (attend_with_cache,)


@wrong("13.5", "cached_generate", "positions restart at 0")
def positions_restart():
    return (_generate(ref_attend, restart=True),)


@wrong("13.5", "cached_generate", "not reset between prompts")
def cache_kept_between_prompts():
    kept = [KVCache() for _ in range(2)]  # made once, in the cell, outside the function
    return (_generate(ref_attend, shared=kept),)


@wrong("13.5", "cached_generate", "the prompt goes through once")
def whole_sequence_every_step():
    return (_generate(ref_attend, no_cache=True),)
