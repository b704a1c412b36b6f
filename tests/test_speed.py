"""lecture_utils.speed: dropout masks drawn quickly on a CPU, swapped into a built model."""

import pytest
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


def test_onednn_linear_keeps_the_modules_parameters_and_keys():
    """The switch changes how the product is computed, nothing the model holds: an optimizer built before it
    still trains the same tensors, a checkpoint loads either way."""
    cfg = M.GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=2, dropout=0.1)
    model = M.GPT(cfg)
    before = {name: p for name, p in model.named_parameters()}
    keys = list(model.state_dict())
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert speed.use_onednn_linear(model) is model
    assert [m for m in model.modules() if isinstance(m, nn.Linear)] == linears
    assert {type(m) for m in linears} == {speed.OneDNNLinear}
    assert all(before[name] is p for name, p in model.named_parameters())
    assert list(model.state_dict()) == keys
    if torch.backends.mkldnn.is_available():
        assert speed._LINEAR is not None  # the kernel is there: the tests below exercise it, not the fallback


@pytest.fixture
def onednn_always(monkeypatch):
    """oneDNN for every product, however small (the tests' layers are far below ONEDNN_MIN_MACS)."""
    monkeypatch.setattr(speed, "ONEDNN_MIN_MACS", 0)


@pytest.mark.skipif(speed._LINEAR is None, reason="this torch has no oneDNN linear kernel")
def test_onednn_linear_leaves_small_products_to_nn_linear(monkeypatch):
    calls = []
    kernel = speed._LINEAR
    monkeypatch.setattr(speed, "_LINEAR", lambda *a: calls.append(a[0].shape) or kernel(*a))
    small = speed.use_onednn_linear(nn.Sequential(nn.Linear(32, 128)))[0]
    small(torch.randn(32, 8, 32))  # 256 rows x 32 x 128 = 2**20 multiply-adds: the lecture's small model
    assert calls == []
    large = speed.use_onednn_linear(nn.Sequential(nn.Linear(128, 512)))[0]
    large(torch.randn(12, 64, 128))  # the cpu preset's feed-forward: 768 x 128 x 512
    assert calls == [(12, 64, 128)]
    monkeypatch.setattr(speed, "ONEDNN_MIN_MACS", 0)
    small(torch.randn(32, 8, 32))
    assert len(calls) == 2


def test_onednn_linear_computes_nn_linear_forward_and_backward(onednn_always):
    torch.manual_seed(0)
    for bias, shape in ((True, (4, 7, 24)), (False, (5, 24)), (True, (2, 3, 4, 24))):
        plain = nn.Linear(24, 40, bias=bias)
        fast = speed.use_onednn_linear(nn.Sequential(nn.Linear(24, 40, bias=bias)))[0]
        fast.load_state_dict(plain.state_dict())
        x = torch.randn(shape, requires_grad=True)
        x2 = x.detach().clone().requires_grad_(True)
        g = torch.randn(*shape[:-1], 40)
        y, y2 = plain(x), fast(x2)
        torch.testing.assert_close(y2, y)
        (y * g).sum().backward()
        (y2 * g).sum().backward()
        torch.testing.assert_close(x2.grad, x.grad)
        torch.testing.assert_close(fast.weight.grad, plain.weight.grad)
        if bias:
            torch.testing.assert_close(fast.bias.grad, plain.bias.grad)


def test_onednn_linear_steps_aside_under_autocast_and_for_other_dtypes():
    """Under bf16 autocast the layer must stay visible to autocast (bf16 out, as nn.Linear gives); fp64 is
    nn.Linear's own."""
    layer = speed.use_onednn_linear(nn.Sequential(nn.Linear(8, 4)))[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(torch.randn(3, 8)).dtype == torch.bfloat16
    double = layer.double()
    x = torch.randn(3, 8, dtype=torch.float64)
    assert torch.equal(double(x), F.linear(x, double.weight, double.bias))


def test_a_gpt_on_the_fast_cpu_paths_trains_as_without_them(onednn_always):
    """Same seed, same batch, dropout on: the fast paths (numpy's masks and oneDNN's products) give the
    loss and gradients of the fast-dropout model without oneDNN, to fp32 rounding."""
    cfg = M.GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=2, dropout=0.2)
    x, y = torch.randint(65, (3, 16), generator=torch.Generator().manual_seed(1)), torch.randint(65, (3, 16))
    grads = []
    for paths in (speed.use_fast_cpu_dropout, speed.use_fast_cpu_paths):
        torch.manual_seed(0)
        model = paths(M.GPT(cfg)).train()
        _, loss = model(x, y)
        loss.backward()
        grads.append((loss.detach(), [p.grad for p in model.parameters()]))
    torch.testing.assert_close(grads[1][0], grads[0][0])
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_fast_attention_gives_the_written_out_attention_s_numbers():
    """Scale and mask inside baddbmm: the output and every gradient of the written-out attention with numpy's
    masks, to fp32 rounding, with the same dropout mask (same seed); keys and parameters unchanged."""
    torch.manual_seed(0)
    plain = speed.use_fast_cpu_dropout(M.CausalSelfAttention(32, 4, 16, dropout=0.3)).train()
    fast = speed.use_fast_cpu_dropout(M.CausalSelfAttention(32, 4, 16, dropout=0.3)).train()
    fast.load_state_dict(plain.state_dict())
    keys, params = list(fast.state_dict()), list(fast.parameters())
    assert speed.use_fast_attention(fast) is fast
    assert type(fast) is not M.CausalSelfAttention and isinstance(fast, M.CausalSelfAttention)
    assert list(fast.state_dict()) == keys and list(fast.parameters()) == params
    x = torch.randn(3, 12, 32)  # T = 12 < block_size: the mask is cropped as the reference crops it
    g = torch.randn(3, 12, 32)
    results = []
    for module in (plain, fast):
        xi = x.clone().requires_grad_(True)
        torch.manual_seed(7)
        y = module(xi)
        (y * g).sum().backward()
        results.append([y.detach(), xi.grad] + [p.grad for p in module.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(b, a)
    # the future stays out: changing the last token changes no earlier output
    torch.manual_seed(7)
    y1 = fast(x)
    x2 = x.clone()
    x2[:, -1] += 1.0
    torch.manual_seed(7)
    torch.testing.assert_close(fast(x2)[:, :-1], y1[:, :-1])


def test_fast_attention_leaves_heatmaps_eval_and_torch_s_dropout_to_the_reference():
    torch.manual_seed(0)
    module = speed.use_fast_attention(M.CausalSelfAttention(16, 2, 8, dropout=0.2))
    x = torch.randn(2, 8, 16)
    with M.keep_attention(module) as kept:  # weights wanted: the written-out path records them
        module.eval()
        module(x)
        assert kept[0].attention is not None and kept[0].attention.shape == (2, 2, 8, 8)
    reference = M.CausalSelfAttention(16, 2, 8, dropout=0.2)
    reference.load_state_dict(module.state_dict())
    torch.testing.assert_close(module.eval()(x), reference.eval()(x))
    other = speed.use_fast_attention(nn.Sequential(M.MultiHeadAttention(16, 2, 8, 8)))
    assert type(other[0]) is M.MultiHeadAttention  # only the batched module has this path


def test_fast_cpu_paths_change_no_gpt_output_in_eval():
    torch.manual_seed(0)
    cfg = M.GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=2, dropout=0.2)
    plain = M.GPT(cfg).eval()
    fast = M.GPT(cfg)
    fast.load_state_dict(plain.state_dict())
    speed.use_fast_cpu_paths(fast).eval()
    idx = torch.randint(65, (2, 16))
    torch.testing.assert_close(fast(idx)[0], plain(idx)[0])
