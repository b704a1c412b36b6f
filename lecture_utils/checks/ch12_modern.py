"""Checks for chapter 12 (what modern GPTs change, the lecture's EX4): 12.1 GELU, 12.2 RMSNorm,
12.3 rotary position embeddings, 12.4 SwiGLU, 12.5 weight tying, 12.6 warmup + cosine decay."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lecture_utils import config as ref_config
from lecture_utils import model as ref_model
from lecture_utils import modern as ref
from lecture_utils.checks._core import exercise, expect, fail, fail_generic, fresh_seed, passed, rng
from lecture_utils.checks._device import forward_on_second_device, on_second_device
from lecture_utils.checks._helpers import (
    blame_notebook_globals,
    build,
    call,
    check_dropout,
    copy_weights,
    diagnose,
    isolated_rng,
    same,
    tensor_output,
)

# ---------------------------------------------------------------------------------------------
# 12.1 GELU
# ---------------------------------------------------------------------------------------------


def _gelu_variants(x):
    phi = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    return [
        ("that is ReLU (max(0, x)): GELU is smooth - it weights x by the probability Phi(x) that a standard normal "
         "variable is below x, 0.5 * x * (1 + erf(x / sqrt(2)))", lambda: F.relu(x)),
        ("that is SiLU / Swish, x * sigmoid(x) - a close relative, but GELU weights x by the normal CDF: "
         "0.5 * x * (1 + erf(x / sqrt(2)))", lambda: x * torch.sigmoid(x)),
        ("the factor 0.5 is missing: Phi(x) = 0.5 * (1 + erf(x / sqrt(2))) goes from 0 to 1, so GELU(x) -> x for "
         "large x", lambda: x * (1 + torch.erf(x / math.sqrt(2)))),
        ("erf needs x / sqrt(2): the standard normal CDF is Phi(x) = 0.5 * (1 + erf(x / sqrt(2)))",
         lambda: 0.5 * x * (1 + torch.erf(x))),
        ("that is Phi(x), the normal CDF alone: GELU multiplies it by x, x * Phi(x)", lambda: phi),
        ("that is x * sigmoid(1.702 x), an approximation of GELU off by up to 0.02: use the exact form with erf, "
         "0.5 * x * (1 + erf(x / sqrt(2)))", lambda: x * torch.sigmoid(1.702 * x)),
    ]


@exercise("12.1")
@blame_notebook_globals
def gelu(gelu, device="cpu"):
    """``gelu(x)``: ``x * Phi(x)`` elementwise, any shape; the same as ``F.gelu(x)`` (the tanh
    approximation is accepted)."""
    g = rng(fresh_seed())
    for shape in ((1000,), (4, 7, 16), (3,)):
        x = (torch.randn(shape, generator=g) * 3).to(device)
        x[..., 0] = 0.0
        keep = x.clone()
        out = tensor_output(call(gelu, x), "gelu", tuple(x.shape))
        expect(torch.equal(x, keep), "gelu changed its input in place: compute a new tensor (no x.mul_ or x *= ...)")
        if same(out, F.gelu(x)) or same(out, F.gelu(x, approximate="tanh")):
            continue
        diagnose(out, _gelu_variants(x))
        fail_generic("gelu(x) differs from torch.nn.functional.gelu(x): GELU(x) = 0.5 * x * (1 + erf(x / sqrt(2)))")
    on_second_device(gelu, torch.randn(2, 3, 5, generator=rng(fresh_seed())), device=device, what="gelu")
    return passed("equals F.gelu on 1000 random values and on 3-d tensors", gelu)


# ---------------------------------------------------------------------------------------------
# 12.2 RMSNorm
# ---------------------------------------------------------------------------------------------

DIM = 16


def _rms_variants(x, w, eps):
    ms = x.pow(2).mean(-1, keepdim=True)
    return [
        ("the mean is subtracted: that is LayerNorm without a bias. RMSNorm does not centre - it divides x by its "
         "root mean square, x / sqrt(mean(x**2) + eps)",
         lambda: (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + eps) * w),
        ("x.norm() is the square root of the SUM of squares; RMSNorm uses the MEAN: x.pow(2).mean(-1, keepdim=True)",
         lambda: x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps) * w),
        ("x.std() subtracts the mean before squaring: RMSNorm's denominator is sqrt(mean(x**2) + eps)",
         lambda: x / torch.sqrt(x.var(-1, keepdim=True) + eps) * w),
        ("eps must go inside the square root: x / sqrt(mean(x**2) + eps)", lambda: x / (torch.sqrt(ms) + eps) * w),
        ("the square root is missing: divide by sqrt(mean(x**2) + eps), the root mean square",
         lambda: x / (ms + eps) * w),
        ("the weight is not applied: multiply the normalised x by self.weight", lambda: x / torch.sqrt(ms + eps)),
        ("normalised over the batch (dim 0): RMSNorm normalises each token over its own features, the last "
         "dimension", lambda: x / torch.sqrt(x.pow(2).mean(0, keepdim=True) + eps) * w),
    ]


@exercise("12.2")
@blame_notebook_globals
@isolated_rng
def rms_norm(RMSNorm, device="cpu"):
    """``RMSNorm(dim, eps=1e-5)`` with one parameter ``weight`` (ones): ``x / sqrt(mean(x**2, -1) + eps) * weight``."""
    g = rng(fresh_seed())
    model = build(RMSNorm, (DIM,), "dim, eps=1e-5").to(device)
    params = dict(model.named_parameters())
    if "bias" in params:
        fail("RMSNorm has no bias (it does not centre the features, so there is nothing to shift back): keep only "
             "self.weight = nn.Parameter(torch.ones(dim))")
    expect(set(params) == {"weight"}, f"RMSNorm should have exactly one parameter, weight of shape (dim,); found "
                                      f"{sorted(params) or 'none'}")
    expect(tuple(params["weight"].shape) == (DIM,), f"RMSNorm.weight should have shape (dim,) = ({DIM},), got "
                                                    f"{tuple(params['weight'].shape)}")
    expect(torch.equal(params["weight"].detach().cpu(), torch.ones(DIM)), "initialise weight to ones")
    with torch.no_grad():
        params["weight"].copy_(1 + torch.randn(DIM, generator=g) * 0.5)
    w = params["weight"].detach()
    eps = getattr(model, "eps", 1e-5)
    expect(eps == 1e-5, f"RMSNorm(dim) should use eps=1e-5 by default, found self.eps = {eps}")
    tiny = torch.randn(3, DIM, generator=g) * 1e-3
    for x in (torch.randn(8, DIM, generator=g) * 3 + 2, torch.randn(2, 5, DIM, generator=g), tiny):
        x = x.to(device)
        with torch.no_grad():
            out = tensor_output(call(model, x), "RMSNorm", tuple(x.shape))
        want = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w
        if not same(out, want):
            diagnose(out, _rms_variants(x, w, 1e-5))
            fail_generic(f"the output differs from x / sqrt(mean(x**2, dim=-1) + eps) * weight (input {tuple(x.shape)})")
    forward_on_second_device(model, torch.randn(2, 3, DIM, generator=rng(fresh_seed())), device=device, what="RMSNorm")
    return passed("weight only, RMS over the last dimension, eps inside the root, on 2-d and 3-d inputs", RMSNorm)


# ---------------------------------------------------------------------------------------------
# 12.3 RoPE
# ---------------------------------------------------------------------------------------------


def _rope_variants(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    xe, xo = x[..., 0::2], x[..., 1::2]
    interleaved = torch.stack([xe * cos - xo * sin, xe * sin + xo * cos], dim=-1).flatten(-2)
    return [
        ("you paired neighbouring dimensions (0, 1), (2, 3), ... - the original paper's interleaved layout. This "
         "course pairs dimension i with i + head_size // 2: x1, x2 = x[..., :half], x[..., half:]", lambda: interleaved),
        ("the rotation goes the wrong way (angle -m*theta): the first half is x1*cos - x2*sin, the second "
         "x1*sin + x2*cos", lambda: torch.cat([x1 * cos + x2 * sin, -x1 * sin + x2 * cos], -1)),
        ("the minus sign is missing, so this is not a rotation (lengths change): rotate_half(x) must be "
         "cat(-x2, x1), giving x1*cos - x2*sin and x2*cos + x1*sin",
         lambda: torch.cat([x1 * cos + x2 * sin, x2 * cos + x1 * sin], -1)),
        ("only the first half is rotated: both halves change, [x1*cos - x2*sin, x1*sin + x2*cos]",
         lambda: torch.cat([x1 * cos - x2 * sin, x2], -1)),
        ("cos and sin are swapped: the first half is x1*cos - x2*sin", lambda: torch.cat([x1 * sin - x2 * cos,
                                                                                           x1 * cos + x2 * sin], -1)),
    ]


@exercise("12.3")
@blame_notebook_globals
def rope(apply_rope, device="cpu"):
    """``apply_rope(x, cos, sin)``: ``x`` ``(..., T, head_size)``, ``cos``/``sin`` ``(T, head_size // 2)``
    from ``rope_tables``; pairs ``i`` and ``i + head_size // 2`` turned by the position's angle."""
    g = rng(fresh_seed())
    for shape in ((2, 3, 10, 8), (1, 1, 1, 4), (5, 6, 16)):
        T, hs = shape[-2], shape[-1]
        cos, sin = (t.to(device) for t in ref.rope_tables(T, hs))
        x = torch.randn(shape, generator=g).to(device)
        keep = x.clone()
        out = tensor_output(call(apply_rope, x, cos, sin, hints=(
            ("must match the size of tensor", "cos and sin have head_size // 2 columns: apply them to the two halves "
                                              "x[..., :half] and x[..., half:], each (..., T, head_size // 2)"),)),
            "apply_rope", tuple(x.shape))
        expect(torch.equal(x, keep), "apply_rope changed its input in place: build a new tensor (torch.cat)")
        want = ref.apply_rope(x, cos, sin)
        if same(out, want):
            continue
        diagnose(out, _rope_variants(x, cos, sin))
        if not same(out.norm(dim=-1), x.norm(dim=-1), atol=1e-4):
            fail("the output does not keep each vector's length, so it is not a rotation: each pair (x1, x2) becomes "
                 "(x1*cos - x2*sin, x1*sin + x2*cos)")
        if not same(out[..., 0, :], x[..., 0, :]):
            fail("position 0 should not move (its angle is 0): use cos and sin row by row, row m for position m")
        fail_generic(f"the output differs from the reference rotation for x of shape {tuple(shape)}")
    # the point of it all: scores depend only on the distance between the two positions
    hs, T = 8, 12
    cos, sin = (t.to(device) for t in ref.rope_tables(T, hs))
    q, k = torch.randn(hs, generator=g).to(device), torch.randn(hs, generator=g).to(device)
    scores = apply_rope(q.expand(T, hs), cos, sin) @ apply_rope(k.expand(T, hs), cos, sin).T
    diag = torch.diagonal(scores, offset=-3)
    expect(same(diag, diag[0].expand_as(diag), atol=1e-4),
           "q at m and k at n should score the same for every pair with m - n = 3; it does not")
    on_second_device(apply_rope, torch.randn(2, 3, T, hs, generator=g), *ref.rope_tables(T, hs), device=device,
                     what="apply_rope")
    return passed("a rotation of pairs (i, i + head_size/2), position 0 fixed, scores depending only on m - n",
                  apply_rope)


# ---------------------------------------------------------------------------------------------
# 12.4 SwiGLU
# ---------------------------------------------------------------------------------------------

EMBD, HIDDEN = 12, 20


def _swiglu_variants(m: nn.Module, x):
    gate, up, down = m.gate(x), m.up(x), m.down
    return [
        ("silu is on the wrong branch: it goes on the gate, down(silu(gate(x)) * up(x))",
         lambda: down(gate * F.silu(up))),
        ("sigmoid makes this GLU; SwiGLU uses silu (x * sigmoid(x)): F.silu(self.gate(x)) * self.up(x)",
         lambda: down(torch.sigmoid(gate) * up)),
        ("that is GEGLU (GELU on the gate): SwiGLU uses silu, F.silu(self.gate(x)) * self.up(x)",
         lambda: down(F.gelu(gate) * up)),
        ("silu comes before the product, on the gate only: down(silu(gate(x)) * up(x))",
         lambda: down(F.silu(gate * up))),
        ("the up branch is missing: the gate multiplies a second projection, down(silu(gate(x)) * up(x))",
         lambda: down(F.silu(gate))),
        ("silu is applied to both branches: only the gate goes through silu, down(silu(gate(x)) * up(x))",
         lambda: down(F.silu(gate) * F.silu(up))),
    ]


@exercise("12.4")
@blame_notebook_globals
@isolated_rng
def swiglu(SwiGLU, device="cpu"):
    """``SwiGLU(n_embd, dropout=0.0, hidden=None)`` with ``gate``, ``up`` (``n_embd -> hidden``) and
    ``down`` (``hidden -> n_embd``), no biases: ``dropout(down(silu(gate(x)) * up(x)))``."""
    g = rng(fresh_seed())
    model = build(SwiGLU, (EMBD, 0.0, HIDDEN), "n_embd, dropout=0.0, hidden=None").to(device)
    reference = ref.SwiGLU(EMBD, 0.0, HIDDEN).to(device)
    names = {n for n, _ in model.named_parameters()}
    if any(n.endswith("bias") for n in names):
        fail("SwiGLU's linear layers have no biases (as in LLaMA): nn.Linear(..., bias=False)")

    def shape_hint(name, got, want):
        if got == want[::-1]:
            return f"{name} has shape {got}: nn.Linear(in, out) stores (out, in); gate and up map n_embd -> hidden, " \
                   f"down maps hidden -> n_embd"
        return None

    copy_weights(reference, model, "SwiGLU", shape_hint)
    default = call(SwiGLU, EMBD)
    n_hidden = dict(default.named_parameters()).get("gate.weight")
    expect(n_hidden is not None and n_hidden.shape[0] == ref.swiglu_hidden(EMBD),
           f"with hidden=None the width should be 8 * n_embd // 3 = {ref.swiglu_hidden(EMBD)} (modern.swiglu_hidden), "
           f"so SwiGLU has as many parameters as the 4x ReLU feed-forward")
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        copy_weights(reference, model, "SwiGLU")
        model.eval()
        reference.eval()
        x = torch.randn(3, 5, EMBD, generator=g).to(device)
        out = tensor_output(call(model, x), "SwiGLU", tuple(x.shape))
        if not same(out, reference(x)):
            diagnose(out, _swiglu_variants(reference, x))
            fail_generic("the output differs from down(silu(gate(x)) * up(x))")
    drop = build(SwiGLU, (EMBD, 0.5, HIDDEN), "n_embd, dropout=0.0, hidden=None").to(device)
    copy_weights(reference, drop, "SwiGLU")
    with torch.no_grad():
        check_dropout(drop, x, reference(x), "dropout is not applied in training mode: end with self.dropout(...)")
    forward_on_second_device(model, torch.randn(2, 3, EMBD, generator=rng(fresh_seed())), device=device, what="SwiGLU")
    return passed("gate/up/down without biases, silu on the gate, hidden 8/3 n_embd by default, dropout in train "
                  "mode only", SwiGLU)


# ---------------------------------------------------------------------------------------------
# 12.5 weight tying
# ---------------------------------------------------------------------------------------------


@exercise("12.5")
@blame_notebook_globals
@isolated_rng
def tie_weights(tie_weights, device="cpu"):
    """``tie_weights(model)``: makes ``model.lm_head.weight`` and ``model.token_embedding_table.weight``
    one and the same ``nn.Parameter``; returns the model."""
    torch.manual_seed(fresh_seed())
    config = ref_model.GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=1, dropout=0.0)
    model = ref_model.GPT(config).to(device)
    before = model.num_parameters()
    emb, head = model.token_embedding_table.weight, model.lm_head.weight
    out = call(tie_weights, model, hints=(
        ("size mismatch", "the output layer's weight and the token embedding both have shape (vocab_size, n_embd) - "
                          "nn.Linear stores (out, in) - so no transpose is needed"),))
    expect(out is model, "tie_weights should return the model it was given (return model)")
    a, b = model.lm_head.weight, model.token_embedding_table.weight
    if a is not b:
        if model.position_embedding_table is not None and (a is model.position_embedding_table.weight):
            fail("lm_head is tied to the POSITION embedding: tie it to token_embedding_table.weight")
        if a.shape != b.shape:
            fail(f"lm_head.weight has shape {tuple(a.shape)}, the token embedding {tuple(b.shape)}: both should be "
                 f"(vocab_size, n_embd) - no transpose")
        if torch.equal(a.detach(), b.detach()):
            fail("the values are copied, not tied: two Parameters that start equal drift apart after the first "
                 "optimiser step. Assign the Parameter itself: model.lm_head.weight = model.token_embedding_table.weight")
        fail("model.lm_head.weight should be the very same Parameter as model.token_embedding_table.weight")
    expect(a is emb or a is head, "tie to one of the model's existing Parameters; do not create a new one")
    expect(model.num_parameters() == before - config.vocab_size * config.n_embd,
           "the model should have vocab_size * n_embd fewer parameters once tied")
    idx = torch.randint(65, (2, 16), device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    _, loss = model(idx, idx)
    loss.backward()
    opt.step()
    expect(model.lm_head.weight is model.token_embedding_table.weight, "the tie did not survive a training step")
    on_second_device(tie_weights, ref_model.GPT(config), device=device, what="tie_weights", what_input="model")
    return passed("one shared Parameter (vocab_size x n_embd fewer parameters), still shared after a step", tie_weights)


# ---------------------------------------------------------------------------------------------
# 12.6 warmup + cosine decay
# ---------------------------------------------------------------------------------------------


def _lr_variants(it, max_lr, min_lr, warmup, total):
    def cosine(progress, low=min_lr):
        return low + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - low)

    return [
        ("there is no warmup: for it < warmup_iters the rate should rise linearly, max_lr * (it + 1) / warmup_iters",
         lambda: cosine(min(1.0, it / total)) if it < warmup else None),
        ("the warmup starts at 0: step 0 would not learn at all. Use max_lr * (it + 1) / warmup_iters",
         lambda: max_lr * it / warmup if it < warmup else cosine(min(1.0, (it - warmup) / (total - warmup)))),
        ("the decay ends at 0 instead of min_lr: lr = min_lr + 0.5 * (1 + cos(pi * progress)) * (max_lr - min_lr)",
         lambda: max_lr * (it + 1) / warmup if it < warmup else cosine(min(1.0, (it - warmup) / (total - warmup)), 0.0)),
        ("the cosine's progress should count from the end of the warmup: progress = (it - warmup_iters) / "
         "(max_iters - warmup_iters)",
         lambda: max_lr * (it + 1) / warmup if it < warmup else cosine(min(1.0, it / total))),
        ("that is a linear decay: use half a cosine, min_lr + 0.5 * (1 + cos(pi * progress)) * (max_lr - min_lr)",
         lambda: max_lr * (it + 1) / warmup if it < warmup
         else max_lr - (max_lr - min_lr) * min(1.0, (it - warmup) / (total - warmup))),
        ("after max_iters the rate climbs back up (the cosine is not clamped): cap progress at 1, "
         "progress = min(1.0, ...)",
         lambda: max_lr * (it + 1) / warmup if it < warmup else cosine((it - warmup) / (total - warmup))),
        ("cos needs pi: cos(pi * progress) goes from 1 to -1 as progress goes from 0 to 1",
         lambda: max_lr * (it + 1) / warmup if it < warmup
         else min_lr + 0.5 * (1 + math.cos(min(1.0, (it - warmup) / (total - warmup)))) * (max_lr - min_lr)),
    ]


@exercise("12.6")
@blame_notebook_globals
def lr_schedule(lr_at, device="cpu"):
    """``lr_at(it, max_lr, min_lr, warmup_iters, max_iters)``: ``max_lr * (it + 1) / warmup_iters`` during
    the warmup, then half a cosine from ``max_lr`` to ``min_lr`` at ``max_iters``, then ``min_lr``."""
    g = rng(fresh_seed())
    settings = [(1e-3, 1e-4, 100, 2000), (6e-4, 6e-5, 10, 50),
                (float(torch.empty(()).uniform_(1e-4, 1e-2, generator=g)), 0.0, 7, 41)]
    for max_lr, min_lr, warmup, total in settings:
        steps = sorted({0, 1, warmup // 2, warmup - 1, warmup, warmup + 1, (warmup + total) // 2, total - 1, total,
                        total + 5, 2 * total} | set(torch.randint(0, 2 * total, (20,), generator=g).tolist()))
        for it in steps:
            got = call(lr_at, it, max_lr, min_lr, warmup, total)
            want = ref_config.warmup_cosine_lr(it, max_lr, min_lr, warmup, total)
            expect(isinstance(got, (float, int)) or (isinstance(got, torch.Tensor) and got.numel() == 1),
                   f"lr_at should return a number, got {type(got).__name__}")
            got = float(got)
            if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
                continue
            for hint, variant in _lr_variants(it, max_lr, min_lr, warmup, total):
                value = variant()
                if value is not None and math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-12):
                    fail(f"{hint} (at it={it} with max_lr={max_lr:g}, min_lr={min_lr:g}, warmup_iters={warmup}, "
                         f"max_iters={total}: got {got:.4g}, expected {want:.4g})")
            fail(f"at it={it} (max_lr={max_lr:g}, min_lr={min_lr:g}, warmup_iters={warmup}, max_iters={total}) the "
                 f"learning rate should be {want:.6g}, got {got:.6g}")
    return passed("warmup from max_lr/warmup_iters, cosine to min_lr at max_iters, flat after, on 3 settings", lr_at)
