"""Checks for chapter 07 (residual connections and LayerNorm): 7.1 LayerNorm from scratch,
7.2 the pre-norm Transformer block."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from lecture_utils import model as ref
from lecture_utils.checks._core import exercise, expect, fail, fail_generic, fresh_seed, passed, rng
from lecture_utils.checks._device import forward_on_second_device
from lecture_utils.checks._helpers import (
    blame_notebook_globals,
    build,
    call,
    copy_weights,
    diagnose,
    explain_mismatch,
    isolated_rng,
    randomize_,
    same,
    tensor_output,
)
from lecture_utils.checks._parts import part

DIM = 16

# ---------------------------------------------------------------------------------------------
# 7.1
# ---------------------------------------------------------------------------------------------


def _layer_norm_variant(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float, *, dims=(-1,),
                        unbiased: bool = False, eps_at: str = "inside", affine: bool = True) -> torch.Tensor:
    """LayerNorm with one of the usual mistakes switched on."""
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, keepdim=True, unbiased=unbiased)
    if eps_at == "inside":
        xhat = (x - mean) / torch.sqrt(var + eps)
    elif eps_at == "outside":
        xhat = (x - mean) / (torch.sqrt(var) + eps)
    else:
        xhat = (x - mean) / torch.sqrt(var)
    return xhat * weight + bias if affine else xhat


_LN_HINTS = {
    "batch": "normalised over the batch (dim 0), like BatchNorm: LayerNorm normalises each row over its own features, "
             "mean and variance over the last dimension, x.mean(-1, keepdim=True)",
    "dim1": "normalised over dimension 1, which for a (B, T, C) input is the time steps T: the lecture's LayerNorm1d "
            "takes x.mean(1) because its input is 2-D (batch, features); here the features are the last dimension, "
            "x.mean(-1, keepdim=True) and x.var(-1, keepdim=True, unbiased=False), whatever the number of dimensions",
    "unbiased": "the variance is unbiased (divides by N-1, torch.var's default): LayerNorm uses the biased variance, "
                "x.var(-1, keepdim=True, unbiased=False)",
    "outside": "eps must go inside the square root: (x - mean) / torch.sqrt(var + self.eps)",
    "none": "eps is missing: (x - mean) / torch.sqrt(var + self.eps) - without it a constant row divides 0 by 0",
    "fixed_eps": "the eps argument is ignored: store it (self.eps = eps) and use self.eps",
    "affine": "weight and bias are not used: return xhat * self.weight + self.bias (the learnable gain and shift)",
}


def _layer_norm_variants(x, weight, bias, eps):
    v = _layer_norm_variant
    # dimension 1 is a mistake only where it is not the last (a 2-D input's dim 1 is its features)
    dim1 = [
        (_LN_HINTS["dim1"], lambda: v(x, weight, bias, eps, dims=(1,))),
        (_LN_HINTS["dim1"], lambda: v(x, weight, bias, eps, dims=(1,), unbiased=True)),  # LayerNorm1d as written
    ] if x.dim() > 2 else []
    return [
        (_LN_HINTS["batch"], lambda: v(x, weight, bias, eps, dims=(0,))),
        (_LN_HINTS["batch"], lambda: v(x, weight, bias, eps, dims=tuple(range(x.dim() - 1)))),
        *dim1,
        (_LN_HINTS["unbiased"], lambda: v(x, weight, bias, eps, unbiased=True)),
        (_LN_HINTS["outside"], lambda: v(x, weight, bias, eps, eps_at="outside")),
        (_LN_HINTS["none"], lambda: v(x, weight, bias, eps, eps_at="none")),
        (_LN_HINTS["affine"], lambda: v(x, weight, bias, eps, affine=False)),
    ] + ([(_LN_HINTS["fixed_eps"], lambda: v(x, weight, bias, 1e-5))] if eps != 1e-5 else [])


def _expect_ln_parameters(model: torch.nn.Module) -> dict:
    """Fail unless the fresh LayerNorm has exactly weight (ones) and bias (zeros) of shape (dim,); its parameters."""
    params = dict(model.named_parameters())
    if not params:
        fail("LayerNorm has no learnable parameters: add self.weight = nn.Parameter(torch.ones(dim)) and "
             "self.bias = nn.Parameter(torch.zeros(dim)), the gain and shift applied after normalising")
    expect(set(params) == {"weight", "bias"}, f"LayerNorm's parameters should be exactly weight and bias (shape "
                                              f"(dim,)), found {sorted(params)}")
    for name, p in params.items():
        expect(tuple(p.shape) == (DIM,), f"LayerNorm.{name} should have shape (dim,) = ({DIM},), got {tuple(p.shape)}")
    expect(torch.equal(params["weight"].detach().cpu(), torch.ones(DIM)) and
           torch.equal(params["bias"].detach().cpu(), torch.zeros(DIM)),
           "initialise weight to ones and bias to zeros, so that a fresh LayerNorm only normalises")
    return params


@exercise("7.1")
@blame_notebook_globals
@isolated_rng
def layer_norm(LayerNorm, device="cpu"):
    """``LayerNorm(dim, eps=1e-5)`` with parameters ``weight`` (ones) and ``bias`` (zeros): the same as
    ``torch.nn.LayerNorm(dim, eps)``."""
    g = rng(fresh_seed())
    model = build(LayerNorm, (DIM,), "dim, eps=1e-5").to(device)
    params = _expect_ln_parameters(model)
    with torch.no_grad():
        params["weight"].copy_(1 + torch.randn(DIM, generator=g) * 0.5)
        params["bias"].copy_(torch.randn(DIM, generator=g) * 0.5)
    weight, bias = params["weight"].detach(), params["bias"].detach()

    small = torch.randn(4, DIM, generator=g) * 1e-3
    small[0] = 0.5  # a constant row (exactly representable, so its mean and variance are exactly 0.5 and 0)
    cases = [  # (eps, x)
        (1e-5, torch.randn(2, 5, DIM, generator=g)),  # first, so the lecture's LayerNorm1d (dim 1) is named as such
        (1e-5, torch.randn(8, DIM, generator=g) * 3 + 2),
        (1e-5, torch.randn(1, 1, DIM, generator=g)),
        (1e-5, small),
        (1e-2, torch.randn(6, DIM, generator=g) * 0.05),
    ]
    for eps, x in cases:
        x = x.to(device)
        m = model if eps == 1e-5 else _with_eps(LayerNorm, eps, model, device)
        with torch.no_grad():
            out = call(m, x, hints=(("must match the size of tensor", ("keep the reduced dimension: x.mean(-1, "
                                     "keepdim=True) and x.var(-1, keepdim=True, unbiased=False) have shape (..., 1) "
                                     "and broadcast against x")),))
            tensor_output(out, "LayerNorm", tuple(x.shape))
            want = F.layer_norm(x, (DIM,), weight, bias, eps)
            if not same(out, want):
                diagnose(out, _layer_norm_variants(x, weight, bias, eps))
                fail_generic(f"the output differs from torch.nn.LayerNorm (input shape {tuple(x.shape)}): "
                     f"(x - mean) / torch.sqrt(var + eps) * weight + bias, with the mean and the biased variance "
                     f"over the last dimension")
    forward_on_second_device(model, torch.randn(2, 3, DIM, generator=g), device=device, what="LayerNorm")
    return passed("matches torch.nn.LayerNorm: statistics over the last dimension, biased variance, eps inside the "
                  "square root, learnable weight and bias", LayerNorm)


def _with_eps(LayerNorm, eps: float, like, device):
    """A second LayerNorm built with ``eps``, with the same weight and bias as ``like``."""
    other = build(LayerNorm, (DIM, eps), "dim, eps=1e-5").to(device)
    other.load_state_dict(like.state_dict())
    return other


# parts of 7.1 for partial credit (lecture_utils.checks._parts). The output is matched against a grid of LayerNorms,
# each with some of the usual mistakes switched on; the grid point it matches on every input (the one with the fewest
# mistakes, if several) says which parts are right, so one mistake fails only its own part.

_LN_GRID = [dict(dims=d, unbiased=u, eps_at=e, affine=a, own_eps=o) for d in ("last", "batch", "leading", "dim1")
            for u in (False, True) for e in ("inside", "outside", "none") for a in (True, False) for o in (True, False)]


def _grid_output(x, weight, bias, eps, point) -> torch.Tensor | None:
    dims = {"last": (-1,), "batch": (0,), "leading": tuple(range(x.dim() - 1)), "dim1": (1,)}[point["dims"]]
    if point["dims"] == "dim1" and x.dim() <= 2:
        return None  # dimension 1 of a 2-D input is its last
    return _layer_norm_variant(x, weight, bias, eps if point["own_eps"] else 1e-5, dims=dims,
                               unbiased=point["unbiased"], eps_at=point["eps_at"], affine=point["affine"])


def _mistakes(point) -> int:
    return ((point["dims"] != "last") + point["unbiased"] + (point["eps_at"] != "inside") + (not point["affine"])
            + (not point["own_eps"]))


@torch.no_grad()
def _ln_grid_point(LayerNorm, device) -> dict | None:
    """The fewest-mistakes grid point the learner's LayerNorm matches on every input, or None."""
    g = rng(fresh_seed())
    model = build(LayerNorm, (DIM,), "dim, eps=1e-5").to(device)
    params = dict(model.named_parameters())
    weight, bias = torch.ones(DIM), torch.zeros(DIM)
    if tuple(getattr(params.get("weight"), "shape", ())) == (DIM,) and tuple(getattr(params.get("bias"), "shape", ())) == (DIM,):
        weight, bias = 1 + torch.randn(DIM, generator=g) * 0.5, torch.randn(DIM, generator=g) * 0.5
        params["weight"].copy_(weight)
        params["bias"].copy_(bias)
    small = torch.randn(4, DIM, generator=g) * 1e-3
    small[0] = 0.5
    cases = [(1e-5, torch.randn(2, 5, DIM, generator=g)), (1e-5, torch.randn(8, DIM, generator=g) * 3 + 2),
             (1e-5, small), (1e-2, torch.randn(6, DIM, generator=g) * 0.05)]
    left = sorted(_LN_GRID, key=_mistakes)
    for eps, x in cases:
        m = model if eps == 1e-5 else _with_eps(LayerNorm, eps, model, device)
        out = call(m, x.to(device), hints=(("must match the size of tensor", "keep the reduced dimension: "
                                            "x.mean(-1, keepdim=True) and x.var(-1, keepdim=True, unbiased=False)"),))
        tensor_output(out, "LayerNorm", tuple(x.shape))
        left = [p for p in left if (want := _grid_output(x, weight, bias, eps, p)) is None or same(out, want)]
    return left[0] if left else None


def _judge_on_grid(point, what: str, formula: str, mistake) -> None:
    """A part judged on the grid of usual mistakes: ``point`` is the grid point the output matched (None: none
    did, so the part cannot be judged and fails generically, naming the right ``formula``); ``mistake(point)``
    is this part's hint when the point makes its mistake, else None (the part passes)."""
    if point is None:
        fail_generic(f"the output matches no {what} the grader knows (right or with a usual mistake), so this part "
                     f"cannot be judged: {formula}")
    hint = mistake(point)
    if hint is not None:
        fail(hint)


def _ln_judge(LayerNorm, device, mistake) -> None:
    _judge_on_grid(_ln_grid_point(LayerNorm, device), "LayerNorm",
                   "(x - mean) / torch.sqrt(var + eps) * weight + bias, over the last dimension", mistake)


@part("7.1", "parameters weight (ones) and bias (zeros), each of shape (dim,)")
def _ln_parameters(LayerNorm, device="cpu"):
    _expect_ln_parameters(build(LayerNorm, (DIM,), "dim, eps=1e-5"))


@part("7.1", "mean and variance over the last dimension (the features), whatever the input's rank")
def _ln_dims(LayerNorm, device="cpu"):
    _ln_judge(LayerNorm, device,
              lambda p: None if p["dims"] == "last" else _LN_HINTS["dim1" if p["dims"] == "dim1" else "batch"])


@part("7.1", "the biased variance (divides by N)")
def _ln_biased(LayerNorm, device="cpu"):
    _ln_judge(LayerNorm, device, lambda p: _LN_HINTS["unbiased"] if p["unbiased"] else None)


@part("7.1", "eps, the one given, inside the square root")
def _ln_eps(LayerNorm, device="cpu"):
    def mistake(p):
        if p["eps_at"] != "inside":
            return _LN_HINTS["outside" if p["eps_at"] == "outside" else "none"]
        return None if p["own_eps"] else _LN_HINTS["fixed_eps"]

    _ln_judge(LayerNorm, device, mistake)


@part("7.1", "weight and bias applied after normalising")
def _ln_affine(LayerNorm, device="cpu"):
    _ln_judge(LayerNorm, device, lambda p: None if p["affine"] else _LN_HINTS["affine"])


@part("7.1", "runs on another device (no tensor left on the CPU)")
def _ln_device(LayerNorm, device="cpu"):
    g = rng(fresh_seed())
    model = build(LayerNorm, (DIM,), "dim, eps=1e-5").to(device)
    forward_on_second_device(model, torch.randn(2, 3, DIM, generator=g), device=device, what="LayerNorm")


# ---------------------------------------------------------------------------------------------
# 7.2
# ---------------------------------------------------------------------------------------------

N_EMBD, N_HEAD, BLOCK_SIZE = 16, 4, 8
RESIDUAL = ("a residual connection is missing: x = x + self.sa(self.ln1(x)), then x = x + self.ffwd(self.ln2(x)) - "
            "each sublayer adds its result to the residual stream")


def _block_variants(reference: ref.Block, x: torch.Tensor):
    sa, ff, ln1, ln2 = reference.sa, reference.ffwd, reference.ln1, reference.ln2

    def pre(norm_a, norm_b, res_a=True, res_b=True):
        h = x + sa(norm_a(x)) if res_a else sa(norm_a(x))
        return h + ff(norm_b(h)) if res_b else ff(norm_b(h))

    def parallel():
        return x + sa(ln1(x)) + ff(ln2(x))

    def post():
        h = ln1(x + sa(x))
        return ln2(h + ff(h))

    return [
        (RESIDUAL, lambda: pre(ln1, ln2, res_a=False, res_b=False)),
        (RESIDUAL, lambda: pre(ln1, ln2, res_a=False)),
        (RESIDUAL, lambda: pre(ln1, ln2, res_b=False)),
        (("this is post-norm (LayerNorm after the addition, as in the 2017 paper): the lecture uses pre-norm, "
         "x = x + self.sa(self.ln1(x)); x = x + self.ffwd(self.ln2(x))"), post),
        (("the two sublayers run side by side on the same x, x + sa(ln1(x)) + ffwd(ln2(x)): in the lecture's block "
          "the feed-forward reads the stream after attention has added to it, so write two steps, "
          "x = x + self.sa(self.ln1(x)); x = x + self.ffwd(self.ln2(x))"), parallel),
        ("ln1 and ln2 are swapped: ln1 goes before self.sa, ln2 before self.ffwd", lambda: pre(ln2, ln1)),
        (("one LayerNorm is used for both sublayers: ln1 before self.sa and ln2 before self.ffwd, each with its own "
         "weights"), lambda: pre(ln1, ln1)),
        (("one LayerNorm is used for both sublayers: ln1 before self.sa and ln2 before self.ffwd, each with its own "
         "weights"), lambda: pre(ln2, ln2)),
        ("the LayerNorms are not applied: x = x + self.sa(self.ln1(x)); x = x + self.ffwd(self.ln2(x))",
         lambda: pre(lambda t: t, lambda t: t)),
    ]


def _block_shape_hint(name: str, got: tuple, want: tuple) -> str | None:
    if name.startswith("sa.heads."):
        return (f"{name} has shape {got}, expected {want}: head_size should be n_embd // n_head = "
                f"{N_EMBD // N_HEAD}, so the n_head heads together have n_embd features")
    return None


@torch.no_grad()
def check_sublayer_dropout(block: torch.nn.Module, x: torch.Tensor, where: str) -> None:
    """``block`` was built with dropout=0.5: in training mode its ``sa`` and ``ffwd`` must each give different
    outputs on two calls, i.e. the dropout was passed on to them."""
    was_training = block.training
    block.train()
    for name, built in (("sa", "MultiHeadAttention(n_embd, n_head, head_size, block_size, dropout)"),
                        ("ffwd", "FeedForward(n_embd, dropout)")):
        sub = getattr(block, name, None)
        if isinstance(sub, torch.nn.Module) and torch.equal(sub(x), sub(x)):
            fail(f"{where} was built with dropout=0.5, but its {name} gives the same output twice in training mode: "
                 f"pass dropout on to the sublayer, self.{name} = {built}")
    block.train(was_training)


# parts of 7.2 for partial credit: as for 7.1, the output is matched against a grid of blocks with the usual mistakes
# switched on (each residual connection, where the LayerNorms sit, the sublayers side by side)

_NORMS = ("pre", "swapped", "ln1 twice", "ln2 twice", "none", "post")
_BLOCK_GRID = sorted(({"res_a": a, "res_b": b, "norms": n, "parallel": p} for a in (True, False) for b in (True, False)
                      for n in _NORMS for p in (False, True) if not (p and n == "post")),
                     key=lambda q: (not q["res_a"]) + (not q["res_b"]) + (q["norms"] != "pre") + q["parallel"])


def _grid_block(reference: ref.Block, x: torch.Tensor, q: dict) -> torch.Tensor:
    sa, ff, ln1, ln2 = reference.sa, reference.ffwd, reference.ln1, reference.ln2
    if q["norms"] == "post":
        h = ln1(x + sa(x) if q["res_a"] else sa(x))
        return ln2(h + ff(h) if q["res_b"] else ff(h))
    na, nb = {"pre": (ln1, ln2), "swapped": (ln2, ln1), "ln1 twice": (ln1, ln1), "ln2 twice": (ln2, ln2),
              "none": (lambda t: t, lambda t: t)}[q["norms"]]
    a = sa(na(x))
    h = x + a if q["res_a"] else a
    b = ff(nb(x if q["parallel"] else h))
    return h + b if q["res_b"] else b


def _block_pair(Block, g: torch.Generator, device, dropout: float = 0.0):
    model = build(Block, (N_EMBD, N_HEAD, BLOCK_SIZE, dropout), "n_embd, n_head, block_size, dropout").to(device)
    if isinstance(getattr(model, "sa", None), ref.CausalSelfAttention):
        reference = ref.Block.from_config(ref.GPTConfig(block_size=BLOCK_SIZE, n_embd=N_EMBD, n_head=N_HEAD, dropout=0.0))
    else:
        reference = ref.Block(N_EMBD, N_HEAD, BLOCK_SIZE, 0.0)
    reference = randomize_(reference, g).to(device)
    copy_weights(reference, model, "Block", _block_shape_hint)
    return model.eval(), reference.eval()


@torch.no_grad()
def _block_grid_point(Block, device) -> dict | None:
    g = rng(fresh_seed())
    model, reference = _block_pair(Block, g, device)
    left = list(_BLOCK_GRID)
    for B, T in ((3, BLOCK_SIZE), (4, 5)):
        x = torch.randn(B, T, N_EMBD, generator=g).to(device)
        out = call(model, x)
        left = [q for q in left if same(out, _grid_block(reference, x, q))]
    return left[0] if left else None


def _block_judge(Block, device, mistake) -> None:
    _judge_on_grid(_block_grid_point(Block, device), "block",
                   "x = x + self.sa(self.ln1(x)); x = x + self.ffwd(self.ln2(x)); return x", mistake)


@part("7.2", "output shape (B, T, n_embd) for T = 1..block_size")
@torch.no_grad()
def _block_shape(Block, device="cpu"):
    g = rng(fresh_seed())
    model, _ = _block_pair(Block, g, device)
    for B, T in ((3, BLOCK_SIZE), (2, 1), (4, 5)):
        tensor_output(call(model, torch.randn(B, T, N_EMBD, generator=g).to(device)), "Block", (B, T, N_EMBD))


@part("7.2", "a residual connection around each sublayer: x + sa(...), then + ffwd(...)")
def _block_residual(Block, device="cpu"):
    _block_judge(Block, device, lambda q: None if q["res_a"] and q["res_b"] else RESIDUAL)


@part("7.2", "pre-norm: ln1 before sa, ln2 before ffwd, each its own LayerNorm")
def _block_norms(Block, device="cpu"):
    _block_judge(Block, device, lambda q: None if q["norms"] == "pre" else _BLOCK_NORM_HINTS[q["norms"]])


_BLOCK_NORM_HINTS = {
    "post": ("this is post-norm (LayerNorm after the addition, as in the 2017 paper): the lecture uses pre-norm, "
             "x = x + self.sa(self.ln1(x)); x = x + self.ffwd(self.ln2(x))"),
    "swapped": "ln1 and ln2 are swapped: ln1 goes before self.sa, ln2 before self.ffwd",
    "ln1 twice": ("one LayerNorm is used for both sublayers: ln1 before self.sa and ln2 before self.ffwd, each with "
                  "its own weights"),
    "ln2 twice": ("one LayerNorm is used for both sublayers: ln1 before self.sa and ln2 before self.ffwd, each with "
                  "its own weights"),
    "none": "the LayerNorms are not applied: x = x + self.sa(self.ln1(x)); x = x + self.ffwd(self.ln2(x))",
}


@part("7.2", "the feed-forward reads the stream after attention (two steps, not side by side)")
def _block_sequential(Block, device="cpu"):
    _block_judge(Block, device, lambda q: None if not q["parallel"] else (
        "the two sublayers run side by side on the same x, x + sa(ln1(x)) + ffwd(ln2(x)): write two steps, "
        "x = x + self.sa(self.ln1(x)); x = x + self.ffwd(self.ln2(x))"))


@part("7.2", "dropout passed on to both sublayers")
def _block_dropout(Block, device="cpu"):
    g = rng(fresh_seed())
    dropped = build(Block, (N_EMBD, N_HEAD, BLOCK_SIZE, 0.5), "n_embd, n_head, block_size, dropout").to(device)
    check_sublayer_dropout(dropped, torch.randn(3, BLOCK_SIZE, N_EMBD, generator=g).to(device), "the Block")


@part("7.2", "runs on another device (no tensor left on the CPU)")
def _block_device(Block, device="cpu"):
    g = rng(fresh_seed())
    dropped = build(Block, (N_EMBD, N_HEAD, BLOCK_SIZE, 0.5), "n_embd, n_head, block_size, dropout").to(device)
    forward_on_second_device(dropped, torch.randn(2, BLOCK_SIZE - 3, N_EMBD, generator=g), device=device, what="Block")


@exercise("7.2")
@blame_notebook_globals
@isolated_rng
def block(Block, device="cpu"):
    """``Block(n_embd, n_head, block_size, dropout)`` with ``sa`` (MultiHeadAttention), ``ffwd`` (FeedForward),
    ``ln1``, ``ln2``: ``x = x + sa(ln1(x)); x = x + ffwd(ln2(x))``."""
    g = rng(fresh_seed())
    model = build(Block, (N_EMBD, N_HEAD, BLOCK_SIZE, 0.0), "n_embd, n_head, block_size, dropout").to(device)
    # compare like with like: a block with batched heads against the reference GPT's block
    if isinstance(getattr(model, "sa", None), ref.CausalSelfAttention):
        reference = ref.Block.from_config(ref.GPTConfig(block_size=BLOCK_SIZE, n_embd=N_EMBD, n_head=N_HEAD, dropout=0.0))
    else:
        reference = ref.Block(N_EMBD, N_HEAD, BLOCK_SIZE, 0.0)
    reference = randomize_(reference, g).to(device)
    copy_weights(reference, model, "Block", _block_shape_hint)
    model.eval()
    reference.eval()
    with torch.no_grad():
        for B, T in ((3, BLOCK_SIZE), (2, 1), (4, 5)):
            x = torch.randn(B, T, N_EMBD, generator=g).to(device)
            out = call(model, x)
            tensor_output(out, "Block", (B, T, N_EMBD))
            if not same(out, reference(x)):
                explain_mismatch(out, _block_variants(reference, x), model, x, g,
                                 "the output differs from the reference: x = x + self.sa(self.ln1(x)); "
                                 "x = x + self.ffwd(self.ln2(x)); return x")
    dropped = build(Block, (N_EMBD, N_HEAD, BLOCK_SIZE, 0.5), "n_embd, n_head, block_size, dropout").to(device)
    check_sublayer_dropout(dropped, torch.randn(3, BLOCK_SIZE, N_EMBD, generator=g).to(device), "the Block")
    forward_on_second_device(dropped, torch.randn(2, BLOCK_SIZE - 3, N_EMBD, generator=g), device=device, what="Block")
    return passed("pre-norm residual block: x + sa(ln1(x)), then + ffwd(ln2(x)); matches the reference; dropout "
                  "passed on to both sublayers", Block)
