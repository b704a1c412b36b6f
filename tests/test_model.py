"""lecture_utils.model and lecture_utils.modern: shapes, causality, attention weights, parameter count,
LayerNorm, chapter 12's variants, and the model layer's imports."""

import math

import pytest
import torch
import torch.nn as nn
from torch.nn import functional as F

from lecture_utils import model as M
from lecture_utils import modern

torch.manual_seed(0)


def _causal_ok(fn, x, atol=1e-6):
    """Changing inputs after position t never changes outputs at positions <= t."""
    B, T = x.shape[:2]
    base = fn(x)
    for t in range(T - 1):
        x2 = x.clone()
        if x.dtype == torch.long:
            x2[:, t + 1:] = (x2[:, t + 1:] + 7) % 65
        else:
            x2[:, t + 1:] = torch.randn_like(x2[:, t + 1:])
        out = fn(x2)
        if not torch.allclose(out[:, : t + 1], base[:, : t + 1], atol=atol):
            return False
    return True


@pytest.mark.parametrize(
    "module",
    [
        lambda: M.Head(32, 8, 16),
        lambda: M.MultiHeadAttention(32, 4, 8, 16),
        lambda: M.CausalSelfAttention(32, 4, 16),
        lambda: M.Block(32, 4, 16),
    ],
    ids=["Head", "MultiHeadAttention", "CausalSelfAttention", "Block"],
)
def test_attention_modules_never_attend_to_the_future(module):
    m = module().eval()
    x = torch.randn(2, 12, 32)
    with torch.no_grad():
        assert _causal_ok(m, x)


def test_gpt_never_attends_to_the_future():
    m = M.GPT(M.GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=2, dropout=0.0)).eval()
    idx = torch.randint(65, (2, 12))
    with torch.no_grad():
        assert _causal_ok(lambda i: m(i)[0], idx, atol=1e-5)


def test_attention_rows_sum_to_one_and_are_zero_above_the_diagonal():
    m = M.GPT(M.GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=2))
    idx = torch.randint(65, (3, 10))
    w = m.attention_maps(idx)
    assert w.shape == (2, 3, 4, 10, 10)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 4, 10))
    assert (w.triu(1) == 0).all()
    assert m.training  # mode restored


def test_sdpa_path_and_readable_path_agree():
    """CausalSelfAttention's fused path (F.scaled_dot_product_attention) and its written-out path, taken
    when the weights are kept for a heatmap, compute the same function."""
    csa = M.CausalSelfAttention(24, 3, 9).eval()
    q, k, v = (torch.randn(2, 3, 9, 8) for _ in range(3))
    fast = csa.attend(q, k, v)
    with M.keep_attention(csa):
        slow = csa.attend(q, k, v)
        assert csa.attention.shape == (2, 3, 9, 9)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-4)


def test_keeping_attention_does_not_change_outputs():
    m = M.GPT(M.GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=2)).eval()
    idx = torch.randint(65, (2, 16))
    plain = m(idx)[0]
    with M.keep_attention(m) as mods:
        kept = m(idx)[0]
        assert len(mods) == 2 and mods[0].attention.shape == (2, 4, 16, 16)
    torch.testing.assert_close(plain, kept, atol=1e-5, rtol=1e-4)


def test_batched_heads_equal_list_of_heads_with_same_weights():
    mha = M.MultiHeadAttention(48, 6, 8, 20).eval()
    csa = M.heads_to_batched(mha, M.CausalSelfAttention(48, 6, 20).eval())
    x = torch.randn(3, 20, 48)
    torch.testing.assert_close(csa(x), mha(x), atol=1e-5, rtol=1e-4)
    assert sum(p.numel() for p in mha.parameters()) == sum(p.numel() for p in csa.parameters())
    for mod in (mha, csa):
        mod.keep_attention = True
        mod(x)
    torch.testing.assert_close(csa.attention, mha.attention, atol=1e-6, rtol=1e-5)


def test_layernorm_from_scratch_matches_torch():
    ours, theirs = M.LayerNorm(40), nn.LayerNorm(40)
    with torch.no_grad():
        ours.weight.normal_(), ours.bias.normal_()
        theirs.weight.copy_(ours.weight), theirs.bias.copy_(ours.bias)
    x = torch.randn(4, 7, 40) * 3 + 1
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-4)


def test_lecture_configuration_has_the_lectures_parameter_count():
    for attention in ("batched", "heads"):
        m = M.GPT(M.GPTConfig(vocab_size=65, block_size=256, n_embd=384, n_head=6, n_layer=6, dropout=0.2,
                              attention=attention))
        assert m.num_parameters() == 10_788_929


def test_initial_loss_is_near_ln_vocab():
    torch.manual_seed(1)
    m = M.GPT(M.GPTConfig(vocab_size=65, block_size=32, n_embd=64, n_head=4, n_layer=2)).eval()
    idx = torch.randint(65, (8, 32))
    _, loss = m(idx, torch.randint(65, (8, 32)))
    assert abs(loss.item() - math.log(65)) < 0.1


def test_forward_reshapes_logits_like_the_lecture():
    m = M.BigramLanguageModel(65)
    idx = torch.randint(65, (4, 8))
    logits, loss = m(idx)
    assert logits.shape == (4, 8, 65) and loss is None
    logits, loss = m(idx, idx)
    assert logits.shape == (32, 65)
    torch.testing.assert_close(loss, F.cross_entropy(logits, idx.view(-1)))


def test_generate_crops_context_and_is_reproducible():
    m = M.GPT(M.GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=1))
    idx = torch.zeros(2, 1, dtype=torch.long)
    a = m.generate(idx, 20, generator=torch.Generator().manual_seed(0))  # 21 > block_size: must crop
    b = m.generate(idx, 20, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 21) and torch.equal(a, b)
    assert m.training
    c = M.generate(m, idx, 5, top_k=1)
    d = M.generate(m, idx, 5, top_k=1)
    assert torch.equal(c, d)  # top_k=1 is greedy
    with pytest.raises(ValueError, match="temperature"):
        M.generate(m, idx, 1, temperature=0)


def test_too_long_sequence_is_a_clear_error():
    m = M.GPT(M.GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=1))
    with pytest.raises(ValueError, match="longer than block_size=8"):
        m(torch.zeros(1, 9, dtype=torch.long))


def test_config_validation_names_the_problem():
    with pytest.raises(ValueError, match="divisible"):
        M.GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="dropout"):
        M.GPTConfig(dropout=1.5)
    with pytest.raises(ValueError, match="unknown fields"):
        M.GPTConfig.from_dict({"n_embd": 32, "nembd": 3})


def test_dropout_is_active_in_train_mode_only():
    m = M.GPT(M.GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.5))
    idx = torch.randint(65, (2, 8))
    m.train()
    assert not torch.equal(m(idx)[0], m(idx)[0])
    m.eval()
    assert torch.equal(m(idx)[0], m(idx)[0])


def test_attn_dropout_separates_the_attention_weights_rate():
    cfg = dict(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.5)
    assert M.GPT(M.GPTConfig(**cfg)).blocks[0].sa.attn_dropout.p == 0.5  # None: the lecture's one rate
    m = M.GPT(M.GPTConfig(**cfg, attn_dropout=0.0))
    sa = m.blocks[0].sa
    assert sa.attn_dropout.p == 0.0
    x = torch.randn(2, 8, 16)
    sa.resid_dropout = nn.Identity()  # without the output projection's dropout, attention is deterministic in train mode
    sa.train()
    train_out = sa(x)
    sa.eval()
    torch.testing.assert_close(train_out, sa(x))
    m.train()  # the residual branches still drop
    idx = torch.randint(65, (2, 8))
    assert not torch.equal(m(idx)[0], m(idx)[0])
    with pytest.raises(ValueError, match="attn_dropout"):
        M.GPTConfig(**cfg, attn_dropout=1.0)
    with pytest.raises(ValueError, match="attn_dropout needs attention='batched'"):
        M.GPTConfig(**cfg, attn_dropout=0.0, attention="heads")
    assert M.GPTConfig.from_dict(M.GPTConfig(**cfg, attn_dropout=0.1).to_dict()).attn_dropout == 0.1


# ---------------------------------------------------------------------------------------------
# chapter 12: the modern features behind GPTConfig flags
# ---------------------------------------------------------------------------------------------

SMALL = dict(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=2, dropout=0.0)
FLAGS = [dict(activation="gelu"), dict(activation="swiglu"), dict(norm="rmsnorm"), dict(position="rope"),
         dict(tie_weights=True), dict(activation="swiglu", norm="rmsnorm", position="rope", tie_weights=True)]


def test_gelu_and_rmsnorm_match_their_definitions():
    x = torch.randn(4, 7, 32)
    assert torch.allclose(modern.gelu(x), F.gelu(x), atol=1e-6)
    norm = modern.RMSNorm(32)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    want = x / torch.sqrt((x**2).mean(-1, keepdim=True) + norm.eps) * norm.weight
    assert torch.allclose(norm(x), want, atol=1e-6)
    assert sum(p.numel() for p in norm.parameters()) == 32  # a weight, no bias


def test_swiglu_keeps_the_feed_forward_parameter_count_and_gates():
    ff, sw = M.FeedForward(96), modern.SwiGLU(96)
    n_ff, n_sw = (sum(p.numel() for p in m.parameters()) for m in (ff, sw))
    assert abs(n_sw - n_ff) / n_ff < 0.01
    x = torch.randn(3, 5, 96)
    assert torch.allclose(sw(x), sw.down(F.silu(sw.gate(x)) * sw.up(x)))


def test_rope_rotates_pairs_and_depends_only_on_relative_position():
    hs, T = 16, 12
    cos, sin = modern.rope_tables(T, hs)
    q, k = torch.randn(hs), torch.randn(hs)
    rq = modern.apply_rope(q.expand(T, hs), cos, sin)
    rk = modern.apply_rope(k.expand(T, hs), cos, sin)
    assert torch.allclose(rq.norm(dim=-1), q.norm().expand(T), atol=1e-5)  # a rotation keeps lengths
    assert torch.allclose(rq[0], q)  # position 0 is not turned
    scores = rq @ rk.T  # scores[m, n] = q at m . k at n
    for offset in (0, 1, 5):
        diag = torch.diagonal(scores, offset=-offset)
        assert torch.allclose(diag, diag[0].expand_as(diag), atol=1e-4)
    with pytest.raises(ValueError, match="even"):
        modern.rope_tables(4, 7)


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "+".join(f"{k}={v}" for k, v in f.items()))
def test_every_flag_builds_a_causal_gpt_that_learns(flags):
    torch.manual_seed(0)
    model = modern.build_gpt(M.GPTConfig(**SMALL, **flags))
    x = torch.randint(65, (2, 16))
    logits, _ = model(x)
    y = x.clone()
    y[:, 10:] = torch.randint(65, (2, 6))
    logits2, _ = model(y)
    assert torch.allclose(logits[:, :10], logits2[:, :10], atol=1e-5)  # the future does not leak
    maps = model.attention_maps(x)
    assert torch.allclose(maps.sum(-1), torch.ones(()), atol=1e-5)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = torch.arange(17).repeat(4, 1) % 5  # a pattern any of them learns quickly
    first = None
    for _ in range(30):
        _, loss = model(batch[:, :-1], batch[:, 1:])
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_rope_model_has_no_position_table_and_tied_model_shares_one_matrix():
    rope = modern.build_gpt(M.GPTConfig(**SMALL, position="rope"))
    assert rope.position_embedding_table is None
    assert M.GPT(M.GPTConfig(**SMALL)).num_parameters() - rope.num_parameters() == 16 * 32
    tied = modern.build_gpt(M.GPTConfig(**SMALL, tie_weights=True))
    assert tied.lm_head.weight is tied.token_embedding_table.weight
    assert M.GPT(M.GPTConfig(**SMALL)).num_parameters() - tied.num_parameters() == 65 * 32


def test_tied_weights_survive_a_checkpoint(tmp_path):
    from lecture_utils.checkpoints import load_checkpoint, save_checkpoint
    from lecture_utils.config import TrainConfig

    model = modern.build_gpt(M.GPTConfig(**SMALL, tie_weights=True, position="rope", norm="rmsnorm", activation="swiglu"))
    path = save_checkpoint(tmp_path / "m.pt", model, train_config=TrainConfig(max_iters=1))
    loaded = load_checkpoint(path)[0]
    assert loaded.lm_head.weight is loaded.token_embedding_table.weight
    x = torch.randint(65, (1, 16))
    assert torch.allclose(model.eval()(x)[0], loaded.eval()(x)[0])


def test_modern_flags_are_validated():
    for bad, match in [(dict(activation="tanh"), "activation"), (dict(norm="batchnorm"), "norm"),
                       (dict(position="sinusoidal"), "position"), (dict(position="rope", attention="heads"), "batched"),
                       (dict(tie_weights="yes"), "tie_weights")]:
        with pytest.raises(ValueError, match=match):
            M.GPTConfig(**SMALL, **bad)


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_restores_the_mode_even_after_an_error(training):
    m = M.GPT(M.GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.5))
    m.train(training)
    with M.eval_mode(m):
        assert not m.training and not m.blocks[0].sa.resid_dropout.training
    assert m.training is training
    with pytest.raises(RuntimeError), M.eval_mode(m):
        raise RuntimeError("boom")
    assert m.training is training and m.blocks[0].sa.resid_dropout.training is training


def test_masks_are_buffers_that_checkpoints_do_not_hold():
    """Head and CausalSelfAttention keep their causal mask in a ``tril`` buffer, as the lecture does, but
    not in the state_dict: checkpoints written before the buffer existed (the shipped one) still load."""
    head = M.Head(32, 8, 16)
    assert torch.equal(head.tril, torch.tril(torch.ones(16, 16)))
    assert set(head.state_dict()) == {"key.weight", "query.weight", "value.weight"}
    csa = M.CausalSelfAttention(32, 4, 16)
    assert csa.tril.shape == (1, 1, 16, 16)
    assert set(csa.state_dict()) == {"qkv.weight", "proj.weight", "proj.bias"}
    gpt = M.GPT(M.GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=1, attention="heads"))
    assert not any("tril" in k for k in gpt.state_dict())


def test_the_lecture_modules_come_first_in_lecture_order():
    import inspect

    lines = {name: inspect.getsourcelines(getattr(M, name))[1]
             for name in ("BigramLanguageModel", "Head", "MultiHeadAttention", "FeedForward", "LayerNorm", "Block",
                          "GPT")}
    assert list(lines) == sorted(lines, key=lines.get)


def test_block_takes_the_exercise_signature_and_gpt_builds_its_own_from_the_config():
    block = M.Block(32, 4, 16, 0.1)
    assert isinstance(block.sa, M.MultiHeadAttention) and len(block.sa.heads) == 4
    config = M.GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=1, dropout=0.1)
    batched = M.Block.from_config(config)
    assert isinstance(batched, M.Block) and isinstance(batched.sa, M.CausalSelfAttention)
    assert sum(p.numel() for p in block.parameters()) == sum(p.numel() for p in batched.parameters())


@pytest.mark.parametrize("name", ["batched", "heads", "modern"])
def test_checkpoints_written_before_the_split_load_and_compute_the_same(name):
    """tests/data/before-issue-15-*.pt were saved by the model as it was before it was split into model,
    modern and speed (commit bf0c366), with the last position's logits for a fixed input: the weights load
    strictly into today's GPT, which computes the same logits."""
    from pathlib import Path

    from lecture_utils.checkpoints import load_checkpoint

    model, _, payload = load_checkpoint(Path(__file__).parent / "data" / f"before-issue-15-{name}.pt")
    idx = torch.tensor([payload["extra"]["idx"]])
    with torch.no_grad():
        logits = model(idx)[0][0, -1]
    torch.testing.assert_close(logits, torch.tensor(payload["extra"]["logits"]), atol=1e-5, rtol=1e-4)


def test_the_lecture_gpt_refuses_chapter_12s_configs_and_the_builder_picks_the_class():
    config = M.GPTConfig(**SMALL, norm="rmsnorm", tie_weights=True)
    with pytest.raises(ValueError, match=r"norm='rmsnorm', tie_weights=True.*build_gpt"):
        M.GPT(config)
    with pytest.raises(ValueError, match="ModernBlock"):
        M.Block.from_config(config)
    assert isinstance(modern.ModernBlock(config).ln1, modern.RMSNorm)
    assert type(modern.build_gpt(config)) is modern.ModernGPT
    assert type(modern.build_gpt(M.GPTConfig(**SMALL))) is M.GPT
    assert M.GPTConfig(**SMALL).chapter12_features() == {}
    assert config.chapter12_features() == {"norm": "rmsnorm", "tie_weights": True}


@pytest.mark.parametrize("attention", ["batched", "heads"])
def test_modern_gpt_without_features_is_the_lecture_gpt_weight_for_weight(attention):
    """ModernGPT builds its parts in GPT's order: from one seed, a lecture config gives the same
    parameter names, weights and logits either way (so checkpoints read the same whichever class wrote them)."""
    config = M.GPTConfig(**SMALL, attention=attention)
    torch.manual_seed(3)
    lecture = M.GPT(config).eval()
    torch.manual_seed(3)
    modern_gpt = modern.ModernGPT(config).eval()
    assert list(lecture.state_dict()) == list(modern_gpt.state_dict())
    for name, tensor in lecture.state_dict().items():
        assert torch.equal(tensor, modern_gpt.state_dict()[name]), name
    x = torch.randint(65, (2, 16))
    assert torch.equal(lecture(x)[0], modern_gpt(x)[0])


@pytest.mark.parametrize("flags", [{}, dict(attention="heads"), dict(position="rope")], ids=["batched", "heads", "rope"])
def test_attention_modules_record_the_queries_and_keys_of_their_weights(flags):
    """With keep_attention, every attention module records the queries and keys (after RoPE's rotation)
    its weights were made from: softmax(mask(q k^T / sqrt(hs))) gives the recorded weights."""
    model = modern.build_gpt(M.GPTConfig(**SMALL, **flags)).eval()
    x = torch.randint(65, (2, 16))
    with torch.no_grad(), M.keep_attention(model) as modules:
        model(x)
        assert len(modules) == SMALL["n_layer"]
        for m in modules:
            q, k, wei = m.attention_queries, m.attention_keys, m.attention
            assert q.shape == k.shape == (2, 4, 16, 8) and wei.shape == (2, 4, 16, 16)
            mask = torch.ones(16, 16, dtype=torch.bool).tril()
            remade = torch.softmax((q @ k.transpose(-2, -1) * 8**-0.5).masked_fill(~mask, float("-inf")), -1)
            torch.testing.assert_close(remade, wei, atol=1e-5, rtol=1e-4)
    assert all(m.attention_queries is None and m.attention_keys is None for m in modules)
    model(x)  # without keep_attention nothing is recorded
    assert all(m.attention_queries is None and m.attention is None for m in modules)


def test_a_lone_head_records_its_queries_and_keys():
    head = M.Head(32, 8, 16).eval()
    x = torch.randn(3, 10, 32)
    with torch.no_grad(), M.keep_attention(head) as modules:
        head(x)
        assert modules == [head]
        torch.testing.assert_close(head.attention_queries, head.query(x))
        torch.testing.assert_close(head.attention_keys, head.key(x))


def _lecture_utils_imports(path) -> set[str]:
    """The lecture_utils modules a source file imports, at any depth of its code (function-local imports
    included), with relative imports resolved."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "lecture_utils" if node.level else (node.module or "")
            if node.level and node.module:
                base = f"lecture_utils.{node.module}"
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if base == "lecture_utils")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            found.update(arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str))
    return {name for name in found if name == "lecture_utils" or name.startswith("lecture_utils.")}


def test_the_lecture_model_imports_nothing_above_it():
    """model.py is the bottom of the model layer: it may import nothing from the package (not modern, not
    speed, not even lazily inside a function) except the lower layers named here."""
    from pathlib import Path

    lower = {"lecture_utils.files", "lecture_utils.status"}  # plain helpers below every model module
    imported = _lecture_utils_imports(Path(M.__file__))
    assert imported <= lower, f"lecture_utils/model.py imports {sorted(imported - lower)}"
    assert not hasattr(M, "__getattr__"), "no module-level __getattr__: callers import names from their module"


def test_the_import_scan_sees_function_local_and_lazy_imports(tmp_path):
    """The scan above must not be blind to the imports that hid the old model <-> modern cycle."""
    source = tmp_path / "m.py"
    source.write_text("import torch\n"
                      "def f():\n    from lecture_utils import modern\n    from . import speed\n"
                      "    import importlib\n    importlib.import_module('lecture_utils.viz')\n", encoding="utf-8")
    assert _lecture_utils_imports(source) == {"lecture_utils", "lecture_utils.modern", "lecture_utils.speed",
                                              "lecture_utils.viz"}


def test_modern_imports_the_lecture_model_and_not_the_other_way():
    from pathlib import Path

    assert "lecture_utils.model" in _lecture_utils_imports(Path(modern.__file__))
