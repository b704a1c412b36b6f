"""Checks for chapter 13 (how a trained GPT writes): 13.1 temperature, 13.2 top-k, 13.3 top-p (nucleus),
13.4 attention with a KV cache, 13.5 a generate that feeds one token per step through it.

The sampling rules are compared by the probabilities they leave (softmax of the returned logits) on random
logits; the cache by exact equality of tokens with the plain ``generate`` for the same seed.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from lecture_utils import generation as ref
from lecture_utils import model as ref_model
from lecture_utils.checks._core import (
    CheckTimeout,
    _Mistake,
    exercise,
    expect,
    fail,
    fail_generic,
    fresh_seed,
    passed,
    rng,
)
from lecture_utils.checks._device import on_second_device
from lecture_utils.checks._helpers import blame_notebook_globals, call, diagnose, isolated_rng, same, tensor_output

VOCAB = 23  # differs from the notebook's vocabulary (65) and from every size it defines


def _probs(logits: torch.Tensor) -> torch.Tensor:
    return F.softmax(logits.detach().float(), dim=-1)


def _returned_logits(fn, logits: torch.Tensor, arg, what: str, hints=()) -> torch.Tensor:
    keep = logits.clone()
    out = tensor_output(call(fn, logits, arg, hints=hints), what, tuple(logits.shape))
    expect(torch.equal(logits, keep), f"{what} changed its input in place (logits /= ..., masked_fill_): return a new "
                                      f"tensor, the caller's logits are used again")
    return out


# ---------------------------------------------------------------------------------------------
# 13.1 temperature
# ---------------------------------------------------------------------------------------------


def _temperature_variants(logits, t):
    return [
        ("the logits are multiplied by the temperature: divide them, logits / temperature (a temperature below 1 "
         "must sharpen the distribution)", lambda: logits * t),
        ("you returned probabilities: return the scaled logits, logits / temperature; softmax comes afterwards, "
         "in generate", lambda: F.softmax(logits / t, dim=-1)),
        ("the temperature divides the probabilities: after renormalising that changes nothing. Divide the logits, "
         "before softmax: logits / temperature", lambda: F.softmax(logits, dim=-1) / t),
        ("the temperature was subtracted: divide the logits by it, logits / temperature", lambda: logits - t),
    ]


@exercise("13.1")
@blame_notebook_globals
def temperature(apply_temperature, device="cpu"):
    """``apply_temperature(logits, temperature)``: logits of any shape (vocabulary last) -> ``logits /
    temperature``; compared by the probabilities softmax gives."""
    g = rng(fresh_seed())
    for shape, t in (((4, VOCAB), 0.5), ((VOCAB,), 2.0), ((2, 3, VOCAB), 0.1), ((3, VOCAB), 1.0), ((5, 7), 1.7)):
        logits = (torch.randn(shape, generator=g) * 2).to(device)
        out = _returned_logits(apply_temperature, logits, t, "apply_temperature")
        want = logits / t
        if same(_probs(out), _probs(want)):
            continue
        diagnose(out, _temperature_variants(logits, t))
        fail_generic(f"softmax of your logits differs from softmax(logits / temperature) at temperature {t}")
    cold = _probs(call(apply_temperature, torch.tensor([1.0, 3.0, 2.0]).to(device), 0.01))
    expect(float(cold[1]) > 0.99, "at temperature 0.01 nearly all the probability should go to the largest logit "
                                  "(greedy is the limit)")
    on_second_device(apply_temperature, torch.randn(2, VOCAB, generator=g), 0.7, device=device,
                     what="apply_temperature", what_input="logits")
    return passed("softmax(out) = softmax(logits / T) for T = 0.1 .. 2 on 1-, 2- and 3-d logits; near-greedy at 0.01",
                  apply_temperature)


# ---------------------------------------------------------------------------------------------
# 13.2 top-k
# ---------------------------------------------------------------------------------------------


def _top_k_variants(logits, k):
    kk = min(k, logits.size(-1))
    kth = torch.topk(logits, kk, dim=-1).values[..., [-1]]
    exactly_k = torch.full_like(logits, float("-inf")).scatter(
        -1, torch.topk(logits, kk, dim=-1).indices, torch.topk(logits, kk, dim=-1).values)
    smallest = torch.topk(logits, kk, dim=-1, largest=False).values[..., [-1]]
    return [
        ("the dropped logits were set to 0, and exp(0) is still a probability: set them to float('-inf')",
         lambda: logits.masked_fill(logits < kth, 0.0)),
        ("the k-th largest logit itself was dropped (k - 1 tokens kept): drop only the logits strictly below it, "
         "logits < v[..., [-1]]", lambda: logits.masked_fill(logits <= kth, float("-inf"))),
        ("you kept the k SMALLEST logits: torch.topk returns the largest by default; drop logits < v[..., [-1]]",
         lambda: logits.masked_fill(logits > smallest, float("-inf"))),
        ("when several logits tie with the k-th largest, keep them all, as the lecture's generate does: set to -inf "
         "only the logits strictly below the k-th largest (logits < v[..., [-1]]), rather than scattering exactly k",
         lambda: exactly_k),
    ]


@exercise("13.2")
@blame_notebook_globals
def top_k(top_k_logits, device="cpu"):
    """``top_k_logits(logits, k)``: the k largest logits of each row kept (and any tied with the k-th), the others
    ``-inf``; ``k`` larger than the vocabulary keeps everything."""
    g = rng(fresh_seed())
    tied = torch.randn(3, VOCAB, generator=g)
    order = tied[0].argsort(descending=True)
    tied[0, order[3]] = tied[0, order[2]]  # a tie with the 3rd largest
    cases = [(torch.randn(4, VOCAB, generator=g) * 2, 5), (torch.randn(VOCAB, generator=g), 1), (tied, 3),
             (torch.randn(2, 3, VOCAB, generator=g), 10), (torch.randn(3, VOCAB, generator=g), VOCAB),
             (torch.randn(2, VOCAB, generator=g), VOCAB + 40)]
    hints = (("selected index k out of range", "k can be larger than the vocabulary: keep everything then, "
                                               "torch.topk(logits, min(k, logits.size(-1)))"),)
    for logits, k in cases:
        logits = logits.to(device)
        out = _returned_logits(top_k_logits, logits, k, "top_k_logits", hints=hints)
        want = ref.top_k_logits(logits, k)
        if same(_probs(out), _probs(want)):
            continue
        diagnose(out, _top_k_variants(logits, k))
        if k >= logits.size(-1):
            fail(f"with k = {k} >= the vocabulary ({logits.size(-1)}) every token should stay")
        fail_generic(f"with k = {k} the tokens kept (or their probabilities) differ from the k largest logits'")
    on_second_device(top_k_logits, torch.randn(2, VOCAB, generator=g), 4, device=device, what="top_k_logits",
                     what_input="logits")
    return passed("the k largest kept (ties with the k-th too), the rest -inf, k = 1 .. beyond the vocabulary",
                  top_k_logits)


# ---------------------------------------------------------------------------------------------
# 13.3 top-p
# ---------------------------------------------------------------------------------------------


def _top_p_variants(logits, p):
    probs = F.softmax(logits, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    inclusive = sorted_probs.cumsum(-1)

    def unsort(keep_sorted, fill=float("-inf")):
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        return logits.masked_fill(~keep, fill)

    unsorted_mass = probs.cumsum(-1) - probs
    ascending, asc_order = probs.sort(dim=-1)
    asc_keep = torch.zeros_like(ascending, dtype=torch.bool).scatter(-1, asc_order, (ascending.cumsum(-1) - ascending) < p)
    logit_sorted, logit_order = logits.sort(dim=-1, descending=True)
    logit_keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, logit_order,
                                                                    (logit_sorted.cumsum(-1) - logit_sorted) < p)
    return [
        ("the token that takes the total past p was dropped (with a small p nothing is left): keep a token when the "
         "probability ranked ABOVE it is below p, (cumsum - sorted_probs) < p, so the top token always stays",
         lambda: unsort(inclusive <= p)),
        ("the cumulative sum runs in vocabulary order: sort the probabilities in descending order first",
         lambda: logits.masked_fill(unsorted_mass >= p, float("-inf"))),
        ("the probabilities were sorted in ascending order: the nucleus is the MOST likely tokens, "
         "sort(descending=True)", lambda: logits.masked_fill(~asc_keep, float("-inf"))),
        ("the cumulative sum is over logits: turn them into probabilities first (softmax), then sort and sum",
         lambda: logits.masked_fill(~logit_keep, float("-inf"))),
        ("the kept logits came back in sorted order: put each back at its token's place (scatter with the indices "
         "from sort), only the dropped ones become -inf",
         lambda: logit_sorted.masked_fill((inclusive - sorted_probs) >= p, float("-inf"))),
        ("the dropped logits were set to 0, and exp(0) is still a probability: set them to float('-inf')",
         lambda: unsort((inclusive - sorted_probs) < p, 0.0)),
    ]


@exercise("13.3")
@blame_notebook_globals
def top_p(top_p_logits, device="cpu"):
    """``top_p_logits(logits, p)``: keep the most likely tokens of each row until their probability reaches ``p``
    (the top token always), the others ``-inf``; ``p = 1`` keeps everything."""
    g = rng(fresh_seed())
    cases = [(torch.randn(5, VOCAB, generator=g) * 2, 0.9), (torch.randn(4, VOCAB, generator=g) * 3, 0.5),
             (torch.randn(VOCAB, generator=g), 0.75), (torch.randn(3, VOCAB, generator=g) * 2, 1e-4),
             (torch.randn(2, 3, VOCAB, generator=g), 0.3), (torch.randn(3, VOCAB, generator=g), 1.0)]
    for logits, p in cases:
        logits = logits.to(device)
        out = _returned_logits(top_p_logits, logits, p, "top_p_logits")
        want = ref.top_p_logits(logits, p)
        if same(_probs(out), _probs(want), atol=1e-5):
            continue
        diagnose(out, _top_p_variants(logits, p))
        if p == 1.0:
            fail("with p = 1 every token should stay")
        if p < 0.01:
            fail(f"with a tiny p ({p}) exactly one token, the most likely, should stay")
        fail_generic(f"with p = {p} the tokens kept differ from the smallest set of most likely tokens whose "
                     f"probability reaches p")
    on_second_device(top_p_logits, torch.randn(2, VOCAB, generator=g), 0.8, device=device, what="top_p_logits",
                     what_input="logits")
    return passed("the nucleus kept in vocabulary order for p = 1e-4 .. 1, the top token always, p = 1 keeps all",
                  top_p_logits)


# ---------------------------------------------------------------------------------------------
# 13.4 the KV cache
# ---------------------------------------------------------------------------------------------

N_EMBD, N_HEAD, BLOCK = 18, 3, 14  # sizes no notebook global has


def _random_attention(g: torch.Generator) -> ref_model.CausalSelfAttention:
    attn = ref_model.CausalSelfAttention(N_EMBD, N_HEAD, BLOCK).eval()
    with torch.no_grad():
        for p in attn.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return attn


def _random_gpt(g: torch.Generator) -> ref_model.GPT:
    config = ref_model.GPTConfig(vocab_size=VOCAB, block_size=BLOCK, n_embd=N_EMBD, n_head=N_HEAD, n_layer=2,
                                 dropout=0.0)
    model = ref_model.GPT(config)
    with torch.no_grad():  # larger than the init, so that every position's distribution is its own
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model.eval()


def _heads(t: torch.Tensor) -> torch.Tensor:
    B, T, C = t.shape
    return t.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2)


@exercise("13.4")
@blame_notebook_globals
@isolated_rng
def cached_attention(attend_with_cache, device="cpu"):
    """``attend_with_cache(attn, x, cache)``: a ``CausalSelfAttention``'s output for the new positions ``x`` only
    (the prompt, then one token at a time), their keys and values (after the projection) added to the
    :class:`~lecture_utils.generation.KVCache`."""
    g = rng(fresh_seed())
    attn = _random_attention(g)
    x = torch.randn(2, 9, N_EMBD, generator=g)
    with torch.no_grad():
        whole = attn(x)
        _, k_all, _ = attn.qkv(x).split(N_EMBD, dim=2)
    cache, prompt = ref.KVCache(), 4
    with torch.no_grad():
        out = tensor_output(call(attend_with_cache, attn, x[:, :prompt], cache), "attend_with_cache",
                            (2, prompt, N_EMBD))
    if len(cache) == 0:
        fail("the cache never grows: after the prompt it should hold the prompt's keys and values "
             "(k, v = cache.append(k, v))")
    if len(cache) == prompt and cache.keys is not None and same(cache.keys, _heads(x[:, :prompt])):
        fail("the cache holds the input x, not the keys: cache k and v after the projection attn.qkv(x), so that "
             "no earlier position is projected again")
    if not same(out, whole[:, :prompt]):
        with torch.no_grad():
            causal_free = attn.proj(F.scaled_dot_product_attention(
                *(_heads(t) for t in attn.qkv(x[:, :prompt]).split(N_EMBD, dim=2))).transpose(1, 2).reshape(2, prompt, -1))
        if same(out, causal_free):
            fail("the prompt's positions see the future: when several new tokens go through together they need the "
                 "causal mask (query i sees keys 0 .. i)")
        fail_generic("the output for the prompt differs from the attention's output at those positions")
    for t in range(prompt, x.size(1)):
        before = len(cache)
        with torch.no_grad():
            out = tensor_output(call(attend_with_cache, attn, x[:, t:t + 1], cache), "attend_with_cache",
                                (2, 1, N_EMBD))
        if len(cache) == before:
            fail(f"the cache never grows: it held {before} positions before the new token and still does after. "
                 f"Store the new keys and values (k, v = cache.append(k, v))")
        expect(len(cache) == t + 1, f"after {t + 1} positions the cache holds {len(cache)}: append the new token's "
                                    f"keys and values once per call")
        if same(out, whole[:, t:t + 1]):
            continue
        with torch.no_grad():
            q, _, _ = attn.qkv(x[:, t:t + 1]).split(N_EMBD, dim=2)
            v0 = attn.qkv(x[:, :1]).split(N_EMBD, dim=2)[2]
            first_only = attn.proj(v0)  # the new query masked down to key 0 alone
        if same(out, first_only, atol=1e-4):
            fail("the causal mask was applied to the single new query: as the only query it is lined up with key 0 and "
                 "sees nothing else (is_causal=True, or tril[:T, :T], does that). The newest token may see every "
                 "cached key: no mask when T == 1")
        if cache.keys is not None and cache.keys.shape[-1] == N_EMBD // N_HEAD and not same(cache.keys, _heads(k_all[
                :, :t + 1])):
            fail("the cached keys are not the keys: cache k and v after the projection attn.qkv(x), split into heads "
                 "(B, n_head, T, head_size)")
        fail_generic(f"the output for the new token at position {t} differs from the attention's output there")

    def prompt_then_one(attn, x):
        cache = ref.KVCache()
        attend_with_cache(attn, x[:, :3], cache)
        return attend_with_cache(attn, x[:, 3:], cache)

    on_second_device(prompt_then_one, attn, torch.randn(2, 4, N_EMBD, generator=g), device=device,
                     what="attend_with_cache", learner=(attend_with_cache,))
    return passed("the prompt, then one token at a time: the whole sequence's attention output at every new position, "
                  "projected keys and values cached, one position per token", attend_with_cache)


def _generate_variants(model, idx, n, seed):
    def restart_positions():
        return _variant_generate(model, idx, n, seed, restart=True)

    return [
        ("the positions restart at 0 for each new token: the token fed at step t sits at position len(cache), so its "
         "position embedding is position_embedding_table(torch.arange(start, start + T))", restart_positions),
    ]


@torch.no_grad()
def _variant_generate(model, idx, n, seed, restart=False):
    """The cached generate with one slip, for the diagnoses."""
    g = rng(seed)
    caches = [ref.KVCache() for _ in model.blocks]

    def forward(tokens):
        start = 0 if restart else len(caches[0])
        x = model.token_embedding_table(tokens) + model.position_embedding_table(
            torch.arange(start, start + tokens.size(1)))
        for block, cache in zip(model.blocks, caches):
            x = x + ref.attend_with_cache(block.sa, block.ln1(x), cache)
            x = x + block.ffwd(block.ln2(x))
        return model.lm_head(model.ln_f(x))[:, -1]

    logits = forward(idx)
    for _ in range(n):
        nxt = torch.multinomial(F.softmax(logits, -1), 1, generator=g)
        idx = torch.cat((idx, nxt), 1)
        logits = forward(nxt)
    return idx


def _expect_fresh_caches(generate_with_cache, first, what: str) -> None:
    """Fail when the first prompt, given again, no longer gives its first tokens: state kept between calls."""
    model, idx, n, seed, tokens = first
    try:
        again = generate_with_cache(model, idx, n, generator=rng(seed))
    except Exception as exc:  # any crash on a prompt that worked before says the same
        again = exc
    if not (isinstance(again, torch.Tensor) and torch.equal(again, tokens)):
        fail(f"the first prompt gave the plain generate's tokens, the next one {what}, and the first prompt no longer "
             f"gives its tokens: the cache is not reset between prompts (a cache kept outside the function, or a "
             f"default argument). Make new caches inside generate_with_cache, one per call")


class _CountTokens:
    """Counts the token ids the model embeds (a forward hook on the token embedding table)."""

    def __init__(self, model):
        self.n = 0
        self.handle = model.token_embedding_table.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.n += args[0].numel()


@exercise("13.5")
@blame_notebook_globals
@isolated_rng
def cached_generate(generate_with_cache, device="cpu"):
    """``generate_with_cache(model, idx, max_new_tokens, generator=None)``: the plain ``generate``'s tokens for the
    same seed (within ``block_size``), the prompt through the model once and then one new token per step."""
    seed = fresh_seed()
    g = rng(seed)
    model = _random_gpt(g)
    first = None  # (idx, n, seed, tokens) of the first prompt: a second call must give the same again
    for B, T, n in ((32, 3, 9), (1, 1, BLOCK - 1), (16, 6, 4)):  # many rows: each first token must match
        idx = torch.randint(VOCAB, (B, T), generator=g)
        s = seed + T
        want = ref_model.generate(model, idx, n, generator=rng(s))
        counter = _CountTokens(model)
        try:
            got = tensor_output(call(generate_with_cache, model, idx, n, generator=rng(s)), "generate_with_cache",
                                (B, T + n))
        except (_Mistake, NotImplementedError, CheckTimeout):
            raise
        except Exception as exc:
            if first is not None:
                _expect_fresh_caches(generate_with_cache, first, f"raised {type(exc).__name__}: {exc}")
            raise
        finally:
            counter.handle.remove()
        expect(torch.equal(got[:, :T], idx), "the result should start with the prompt idx, then the new tokens")
        if not torch.equal(got, want):
            for hint, variant in _generate_variants(model, idx, n, s):
                if torch.equal(got, variant()):
                    fail(hint)
            if first is not None:
                _expect_fresh_caches(generate_with_cache, first, "gave other tokens than the plain generate")
            fail_generic(f"for the same seed your tokens differ from the plain generate's (prompt of {T} tokens, "
                         f"{n} new): same model, same generator, the same tokens are expected")
        first = first or (model, idx, n, s, got)
        expect(counter.n <= B * (T + n),
               f"the model embedded {counter.n // B} tokens per row for a prompt of {T} and {n} new tokens: with a "
               f"cache the prompt goes through once and then only each new token (at most {T + n} in all)")
    on_second_device(lambda m, i: generate_with_cache(m, i, 3), model, torch.randint(VOCAB, (2, 3), generator=g),
                     device=device, what="generate_with_cache", what_input="idx")
    return passed("the plain generate's tokens for the same seed on 3 prompts, one token through the model per step, "
                  "fresh caches per prompt", generate_with_cache)
