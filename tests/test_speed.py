"""lecture_utils.speed: dropout masks drawn quickly on a CPU, swapped into a built model."""

import torch
import torch.nn as nn
from torch.nn import functional as F

from lecture_utils import model as M
from lecture_utils import modern, speed


def test_cpu_dropout_keeps_the_right_fraction_scaled():
    torch.manual_seed(0)
    x = torch.full((1000, 1000), 3.0)
    for p in (0.1, 0.2, 0.5):
        y = speed.cpu_dropout(x, p)
        kept = y != 0
        # 1e6 draws: the kept fraction's standard deviation is below 5e-4
        assert abs(kept.float().mean().item() - (1 - p)) < 3e-3, p
        assert torch.allclose(y[kept], torch.full_like(y[kept], 3.0 / (1 - p)), rtol=1e-6, atol=0)
        assert abs(y.mean().item() - 3.0) < 0.02  # unbiased, as dropout must be


def test_cpu_dropout_neighbours_are_independent():
    """Pairs of neighbouring elements are both kept with probability (1 - p)^2."""
    torch.manual_seed(1)
    kept = speed.cpu_dropout(torch.ones(2_000_000), 0.5) != 0
    both = (kept[0::2] & kept[1::2]).float().mean().item()
    assert abs(both - 0.25) < 3e-3
    # and two calls draw different masks
    assert not torch.equal(speed.cpu_dropout(torch.ones(1000), 0.5), speed.cpu_dropout(torch.ones(1000), 0.5))


def test_cpu_dropout_follows_torch_manual_seed_and_training():
    x = torch.randn(4, 8, 16)
    torch.manual_seed(5)
    a = speed.cpu_dropout(x, 0.3)
    torch.manual_seed(5)
    b = speed.cpu_dropout(x, 0.3)
    assert torch.equal(a, b)
    assert torch.equal(speed.cpu_dropout(x, 0.3, training=False), x)
    assert torch.equal(speed.cpu_dropout(x, 0.0), x)
    d = speed.CPUDropout(0.3).eval()
    assert torch.equal(d(x), x)
    assert isinstance(d, nn.Dropout) and d.p == 0.3


def test_cpu_dropout_gradient_is_the_mask():
    torch.manual_seed(2)
    x = torch.randn(64, 32, requires_grad=True)
    y = speed.cpu_dropout(x, 0.25)
    y.sum().backward()
    expected = (y != 0).float() / 0.75
    assert torch.allclose(x.grad, expected)


def test_cpu_dropout_bf16_keeps_dtype():
    y = speed.cpu_dropout(torch.ones(1000, dtype=torch.bfloat16), 0.2)
    assert y.dtype == torch.bfloat16
    assert set(y.unique().tolist()) <= {0.0, 1.25}


def test_the_reference_model_has_one_dropout_torch_s_own():
    """Built, every model has plain nn.Dropout; the speed path is a choice made on the built model."""
    cfg = dict(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=2, dropout=0.1)
    for extra in ({}, {"attention": "heads"}, {"activation": "swiglu", "position": "rope"}):
        model = modern.build_gpt(M.GPTConfig(**cfg, **extra))
        drops = [type(m) for m in model.modules() if isinstance(m, nn.Dropout)]
        assert drops and set(drops) == {nn.Dropout}, extra
        fast = speed.use_fast_cpu_dropout(model)
        assert fast is model
        assert {type(m) for m in model.modules() if isinstance(m, nn.Dropout)} == {speed.CPUDropout}, extra
        assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.1] * len(drops)


def test_without_the_speed_path_dropout_is_torch_s_own():
    x = torch.randn(50, 50)
    torch.manual_seed(3)
    a = nn.Dropout(0.4).train()(x)
    torch.manual_seed(3)
    assert torch.equal(a, F.dropout(x, 0.4, training=True))


def test_fast_attention_drops_the_weights_with_cpu_dropout_masks():
    """With CPUDropout on its weights, the batched attention takes the written-out path with numpy's mask
    on softmax(q k^T / sqrt(hs)); without dropout it is the fused path, the same function."""
    csa = M.CausalSelfAttention(24, 3, 10, dropout=0.3)
    speed.use_fast_cpu_dropout(csa)
    assert type(csa.attn_dropout) is speed.CPUDropout
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, 8) for _ in range(3))
    csa.train()
    torch.manual_seed(9)
    out = csa.attend(q, k, v)
    csa.eval()
    with M.keep_attention(csa):
        csa.attend(q, k, v)
        weights = csa.attention
    torch.manual_seed(9)
    assert torch.allclose(out, speed.cpu_dropout(weights, 0.3) @ v, atol=1e-6)
    torch.testing.assert_close(csa.attend(q, k, v), weights @ v, atol=1e-5, rtol=1e-4)


def test_the_speed_path_keeps_the_function_of_an_eval_model():
    torch.manual_seed(0)
    model = M.GPT(M.GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=2, dropout=0.2)).eval()
    idx = torch.randint(65, (2, 8))
    before = model(idx)[0]
    speed.use_fast_cpu_dropout(model)
    torch.testing.assert_close(model(idx)[0], before)
    assert model.state_dict().keys() == M.GPT(model.config).state_dict().keys()
