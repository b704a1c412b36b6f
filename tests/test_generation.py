"""lecture_utils.generation: the sampling rules against brute-force probabilities, the KV cache against the plain
generate (identical tokens for the same seed) and against the attention of the whole sequence."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from lecture_utils import generation as gen
from lecture_utils.model import GPT, CausalSelfAttention, GPTConfig, generate
from lecture_utils.modern import build_gpt


def _brute_top_k(row: list[float], k: int) -> list[float]:
    kth = sorted(row, reverse=True)[min(k, len(row)) - 1]
    weights = [math.exp(x) if x >= kth else 0.0 for x in row]
    return [w / sum(weights) for w in weights]


def _brute_top_p(row: list[float], p: float) -> list[float]:
    probs = [math.exp(x) / sum(math.exp(y) for y in row) for x in row]
    kept = [q for q in probs if sum(r for r in probs if r > q) < p]  # the mass ranked strictly above each token
    weights = [q if q >= min(kept) else 0.0 for q in probs]
    return [w / sum(weights) for w in weights]


def _probs(logits: torch.Tensor) -> torch.Tensor:
    return F.softmax(logits.double(), dim=-1)


def test_temperature_divides_the_logits_and_greedy_is_its_limit():
    logits = torch.randn(3, 11, generator=torch.Generator().manual_seed(0)) * 2
    torch.testing.assert_close(gen.apply_temperature(logits, 0.5), logits * 2)
    cold = _probs(gen.apply_temperature(logits, 1e-3))
    torch.testing.assert_close(cold.argmax(-1, keepdim=True), gen.greedy(logits))
    assert torch.all(cold.max(-1).values > 0.999)
    with pytest.raises(ValueError, match="temperature"):
        gen.apply_temperature(logits, 0.0)


@pytest.mark.parametrize("k", [1, 3, 7, 100])
def test_top_k_matches_brute_force_probabilities(k):
    logits = torch.randn(4, 7, generator=torch.Generator().manual_seed(k))
    logits[0, 2] = logits[0, 5] = logits[0].max() + 1  # a tie at the top
    out = _probs(gen.top_k_logits(logits, k))
    want = torch.tensor([_brute_top_k(row, k) for row in logits.double().tolist()], dtype=torch.float64)
    torch.testing.assert_close(out, want)


def test_top_k_keeps_ties_with_the_kth_logit():
    logits = torch.tensor([[3.0, 2.0, 2.0, 1.0]])
    assert torch.isfinite(gen.top_k_logits(logits, 2)).tolist() == [[True, True, True, False]]


@pytest.mark.parametrize("p", [1e-6, 0.3, 0.5, 0.9, 0.99, 1.0])
def test_top_p_matches_brute_force_probabilities(p):
    logits = torch.randn(5, 9, generator=torch.Generator().manual_seed(int(p * 1000))) * 2
    out = _probs(gen.top_p_logits(logits, p))
    want = torch.tensor([_brute_top_p(row, p) for row in logits.double().tolist()], dtype=torch.float64)
    torch.testing.assert_close(out, want, atol=1e-6, rtol=1e-5)


def test_top_p_tiny_keeps_the_top_token_and_one_keeps_all():
    logits = torch.randn(6, 20, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.isfinite(gen.top_p_logits(logits, 1e-9)).sum(-1), torch.ones(6, dtype=torch.long))
    assert torch.equal(gen.top_p_logits(logits, 1.0), logits)
    with pytest.raises(ValueError, match="top_p"):
        gen.top_p_logits(logits, 0.0)


def _model(seed=0, **overrides) -> GPT:
    torch.manual_seed(seed)
    config = dict(vocab_size=17, block_size=12, n_embd=24, n_head=3, n_layer=2, dropout=0.0)
    model = build_gpt(GPTConfig(**{**config, **overrides}))
    with torch.no_grad():
        for p in model.parameters():  # larger weights than the init: peaked, position-dependent distributions
            p.copy_(torch.randn(p.shape) * 0.3)
    return model.eval()


@pytest.mark.parametrize("prompt_len,new", [(1, 11), (5, 7), (3, 30)])
@pytest.mark.parametrize("settings", [{}, {"temperature": 0.7}, {"temperature": 1.3, "top_k": 4}])
def test_cached_generate_gives_exactly_the_plain_generates_tokens(prompt_len, new, settings):
    model = _model()
    idx = torch.randint(0, 17, (3, prompt_len), generator=torch.Generator().manual_seed(prompt_len))
    for seed in range(3):
        plain = generate(model, idx, new, generator=torch.Generator().manual_seed(seed), **settings)
        cached = gen.generate_with_cache(model, idx, new, generator=torch.Generator().manual_seed(seed), **settings)
        assert torch.equal(plain, cached)


def test_cached_generate_with_a_prompt_longer_than_the_window():
    model = _model(1)
    idx = torch.randint(0, 17, (2, 20), generator=torch.Generator().manual_seed(0))
    plain = generate(model, idx, 5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(plain, gen.generate_with_cache(model, idx, 5, generator=torch.Generator().manual_seed(4)))


def test_cached_generate_with_top_p_follows_the_brute_force_distribution():
    model = _model(2)
    idx = torch.zeros((1, 1), dtype=torch.long)
    out = gen.generate_with_cache(model, idx, 1, top_p=1e-9, generator=torch.Generator().manual_seed(0))
    logits, _ = model(idx)
    assert out[0, 1] == logits[0, -1].argmax()


def test_attention_with_cache_equals_attention_of_the_whole_sequence():
    torch.manual_seed(0)
    attn = CausalSelfAttention(n_embd=12, n_head=3, block_size=10).eval()
    x = torch.randn(2, 10, 12)
    whole = attn(x)
    for split in itertools.chain([(10,), (1,) * 10, (4, 1, 1, 4)]):
        cache, outs, start = gen.KVCache(), [], 0
        for size in split:
            outs.append(gen.attend_with_cache(attn, x[:, start:start + size], cache))
            start += size
            assert len(cache) == start
        torch.testing.assert_close(torch.cat(outs, dim=1), whole)


def test_forward_with_cache_equals_the_models_logits_and_refuses_to_overflow():
    model = _model(3)
    idx = torch.randint(0, 17, (2, 12), generator=torch.Generator().manual_seed(1))
    caches = [gen.KVCache() for _ in model.blocks]
    with torch.no_grad():
        first = gen.forward_with_cache(model, idx[:, :5], caches)
        rest = [gen.forward_with_cache(model, idx[:, t:t + 1], caches) for t in range(5, 12)]
        torch.testing.assert_close(torch.cat([first, *rest], dim=1), model(idx)[0])
        with pytest.raises(ValueError, match="block_size"):
            gen.forward_with_cache(model, idx[:, :1], caches)


def test_cached_generate_refuses_models_it_was_not_written_for():
    for overrides in ({"attention": "heads"}, {"position": "rope"}):
        with pytest.raises(ValueError, match="KV cache"):
            gen.generate_with_cache(_model(**overrides), torch.zeros((1, 1), dtype=torch.long), 2)
    with pytest.raises(ValueError, match="top_p"):
        gen.generate_with_cache(_model(), torch.zeros((1, 1), dtype=torch.long), 2, top_p=1.5)


def test_model_does_not_import_generation():
    import lecture_utils.model as model_module

    source = open(model_module.__file__).read()
    assert "generation" not in source


def test_cli_sample_uses_the_cache_and_writes_the_same_text_without_it(capsys):
    from lecture_utils.__main__ import main
    from lecture_utils.checkpoints import shipped_checkpoint_path

    path = str(shipped_checkpoint_path())
    texts = []
    for extra in ([], ["--no-cache"]):
        assert main(["sample", "--checkpoint", path, "--prompt", "ROMEO:", "--tokens", "40", "--top-k", "20",
                     "--device", "cpu", *extra]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] and texts[0].startswith("ROMEO:")
    assert main(["sample", "--checkpoint", path, "--tokens", "5", "--top-p", "0.9", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["sample", "--checkpoint", path, "--tokens", "5", "--top-p", "0.9", "--no-cache", "--device",
                 "cpu"]) == 2
    assert "--top-p needs the cached generate" in capsys.readouterr().err


def test_cacheable_says_which_models_the_cache_runs():
    assert gen.cacheable(_model()) and not gen.cacheable(_model(attention="heads"))


def test_cached_generate_returns_an_ordinary_tensor_the_caller_may_change():
    idx = torch.zeros((1, 1), dtype=torch.long)
    out = gen.generate_with_cache(_model(), idx, 3, generator=torch.Generator().manual_seed(0))
    assert not out.is_inference() and out.shape == (1, 4)
    out[0, 0] = 1  # an inference-mode tensor would refuse this outside inference mode


def test_weights_by_column_keeps_the_numbers_and_restores_the_layout():
    model = _model(4)
    before = {name: (p.data_ptr(), p.stride(), p.detach().clone()) for name, p in model.named_parameters()}
    idx = torch.randint(0, 17, (2, 4), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = model(idx)[0]
        with gen.weights_by_column(model):
            assert not model.lm_head.weight.is_contiguous()  # same shape, other strides
            torch.testing.assert_close(model(idx)[0], want)
        with pytest.raises(RuntimeError, match="inside"), gen.weights_by_column(model):
            raise RuntimeError("raised inside")
    for name, p in model.named_parameters():  # the very same memory and layout as before, unchanged
        assert (p.data_ptr(), p.stride()) == before[name][:2] and torch.equal(p, before[name][2]), name
