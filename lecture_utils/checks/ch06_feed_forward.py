"""Checks for chapter 06 (feed-forward): 6.1 the per-token MLP after attention."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lecture_utils import model as ref
from lecture_utils.checks._core import exercise, fail, fail_generic, fresh_seed, passed, rng
from lecture_utils.checks._device import forward_on_second_device
from lecture_utils.checks._helpers import (
    blame_notebook_globals,
    build,
    call,
    check_dropout,
    copy_weights,
    diagnose,
    isolated_rng,
    randomize_,
    same,
    tensor_output,
)

N_EMBD = 16
SHAPES = ((3, 8), (2, 1), (4, 5))
PROJECTION = ("the projection back is missing: end with nn.Linear(4 * n_embd, n_embd), so the output has n_embd "
              "features and can be added to the residual stream")


def _variants(reference: ref.FeedForward, x: torch.Tensor):
    """(hint, compute) pairs for :func:`diagnose`."""
    first, last = reference.net[0], reference.net[2]
    return [
        ("the nonlinearity should be nn.ReLU() (the lecture's), not GELU", lambda: last(F.gelu(first(x)))),
        ("the ReLU comes after the second Linear: Linear, ReLU, Linear, Dropout", lambda: F.relu(last(first(x)))),
    ]


@exercise("6.1")
@blame_notebook_globals
@isolated_rng
def feed_forward(FeedForward, device="cpu"):
    """``FeedForward(n_embd, dropout)``: ``self.net = nn.Sequential(Linear(n_embd, 4 n_embd), ReLU, Linear(4 n_embd,
    n_embd), Dropout)``, applied to each token on its own."""
    g = rng(fresh_seed())
    model = build(FeedForward, (N_EMBD, 0.0), "n_embd, dropout").to(device)
    model.eval()
    with torch.no_grad():
        x = torch.randn(3, 8, N_EMBD, generator=g).to(device)
        out = call(model, x, hints=(("cannot be multiplied", ("the layers' sizes do not chain: nn.Linear(n_embd, "
                                                             "4 * n_embd), then nn.Linear(4 * n_embd, n_embd)")),))
        if isinstance(out, torch.Tensor) and out.shape[:-1] == x.shape[:-1] and out.shape[-1] != N_EMBD:
            fail(PROJECTION + f" (the output has {out.shape[-1]} features)")
        tensor_output(out, "FeedForward", tuple(x.shape))
        if same(out, x):
            fail("the output is the input itself: return self.net(x)")
        # a network without a nonlinearity is affine: f(a) + f(b) = f(a + b) + f(0)
        a, b = x, torch.randn(x.shape, generator=g).to(device)
        if same(model(a) + model(b), model(a + b) + model(torch.zeros_like(a)), atol=1e-4):
            fail("the output is a linear function of the input: put a nonlinearity, nn.ReLU(), between the two "
                 "Linear layers - without it the two layers collapse into one")
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if linears and linears[0].out_features != 4 * N_EMBD:
            fail(f"the inner layer should be 4 * n_embd = {4 * N_EMBD} wide (the paper's 512 -> 2048), its first "
                 f"Linear has out_features={linears[0].out_features}: nn.Linear(n_embd, 4 * n_embd)")
    reference = randomize_(ref.FeedForward(N_EMBD, 0.0), g).to(device)
    copy_weights(reference, model, "FeedForward")
    reference.eval()
    with torch.no_grad():
        for B, T in SHAPES:
            x = torch.randn(B, T, N_EMBD, generator=g).to(device)
            out = model(x)
            if not same(out, reference(x)):
                diagnose(out, _variants(reference, x))
                fail_generic("the output differs from the reference: self.net = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), "
                     "nn.ReLU(), nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout))")

    dropped = build(FeedForward, (N_EMBD, 0.5), "n_embd, dropout").to(device)
    copy_weights(reference, dropped, "FeedForward")
    x = torch.randn(4, 8, N_EMBD, generator=g).to(device)
    check_dropout(dropped, x, reference(x),
                  "with dropout=0.5 in training mode the output never changed: end self.net with nn.Dropout(dropout)")
    forward_on_second_device(dropped, torch.randn(2, 5, N_EMBD, generator=g), device=device, what="FeedForward")
    return passed("Linear(n_embd, 4 n_embd), ReLU, Linear back, dropout in training only; matches the reference",
                  FeedForward)
