"""Speed paths: the same mathematics as the reference model, computed faster, applied to a built model.

On a CPU torch draws dropout masks one number at a time (``bernoulli_``: 15 % of a lecture-sized fp32
training step on a 2-core CPU, ``benchmarks/throughput.py``). :func:`use_fast_cpu_dropout` swaps every
``nn.Dropout`` of a model for :class:`CPUDropout`, whose masks come from numpy; the batched attention
then applies its weights' dropout on the written-out path (``scaled_dot_product_attention`` can only
draw its own masks). The training loop applies it once, when ``TrainConfig.fast_cpu_dropout`` is set
and the model trains on a CPU; ``lecture_utils.timing.training_step`` takes the same choice.

Torch's fp32 ``nn.Linear`` on a CPU multiplies with MKL, which on AMD CPUs runs at about half the speed
oneDNN (also inside torch) reaches with AVX-512: 99-103 against 222-227 GFLOP per CPU-second for the lecture's
shapes on this project's AVX-512 EPYC (``benchmarks/throughput.py --steps 0 --matmul --threads 1``); with AVX2
only the two are about equal. :func:`use_onednn_linear` gives every ``nn.Linear`` of a model the same
product computed by oneDNN, forward and backward (:class:`OneDNNLinear`): the same parameters and state-dict
keys, results equal to fp32 rounding. :func:`use_fast_attention` puts the attention's scale and causal mask
inside its first product (two passes over the weights fewer), and :func:`use_fast_cpu_paths` applies all
three paths (``benchmarks/throughput.py --vs-gpt-py`` times each against the lecture's ``gpt.py``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F


def cpu_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Dropout, as ``F.dropout(x, p, training)``, with the mask drawn quickly on a CPU.

    Each element is kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``, like
    ``F.dropout``. The mask comes from numpy's SFC64 generator: 16 random bits per element, kept when
    they are at least ``round(p * 65536)`` (so ``p`` is exact to 1/65536). The generator is seeded from
    torch's, so ``torch.manual_seed`` still makes a run repeatable. Off a CPU (cuda, mps), or out of
    training, this is ``F.dropout``.
    """
    threshold = round(p * 65536)
    if not (training and x.device.type == "cpu" and 0 < threshold < 65536):
        return F.dropout(x, p=p, training=training)
    with torch.profiler.record_function("cpu_dropout mask"):  # numpy's time, named in a torch.profiler table
        seed = int(torch.empty((), dtype=torch.int64).random_())  # from torch's generator: manual_seed repeats it
        bits = np.random.Generator(np.random.SFC64(seed)).integers(-32768, 32768, x.numel(), dtype=np.int16)
        keep = torch.from_numpy(bits).view(x.shape) >= threshold - 32768
    return x * keep.to(x.dtype).mul_(1.0 / (1.0 - p))


class CPUDropout(nn.Dropout):
    """``nn.Dropout`` whose mask is drawn by :func:`cpu_dropout` (fast on a CPU, ``F.dropout`` elsewhere)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cpu_dropout(x, self.p, self.training)


def use_fast_cpu_dropout(model: nn.Module) -> nn.Module:
    """Swap every plain ``nn.Dropout`` inside ``model``, at any depth, for :class:`CPUDropout` with the
    same ``p`` and mode (no weights change; the masks follow ``torch.manual_seed`` as before, from another
    stream). Returns ``model``."""
    for name, child in model.named_children():
        if type(child) is nn.Dropout:
            setattr(model, name, CPUDropout(child.p).train(child.training))
        else:
            use_fast_cpu_dropout(child)
    return model


def _onednn_linear_op():
    """torch's oneDNN linear kernel (``torch.ops.mkldnn._linear_pointwise``, the one ``torch.compile``
    uses on a CPU; private, hence looked up with care), or None where this torch has none."""
    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


class _OneDNNLinearFunction(torch.autograd.Function):
    """``y = x @ W^T + b`` and its gradients, every product by oneDNN: ``dx = dy @ W``, ``dW = dy^T @ x``
    (strided views, no copies), ``db`` the sum of ``dy`` over every dimension but the last."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _LINEAR(x, weight, bias, "none", [], "")

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad2 = grad.reshape(-1, grad.shape[-1])  # (N, out)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = _LINEAR(grad, weight.t(), None, "none", [], "")  # (..., in)
        if ctx.needs_input_grad[1]:
            dw = _LINEAR(grad2.t(), x.reshape(-1, x.shape[-1]).t(), None, "none", [], "")  # (out, in)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = grad2.sum(0)
        return dx, dw, db


_LINEAR = _onednn_linear_op()


# Below this many multiply-adds per product (rows x in x out) oneDNN's per-call cost outweighs its faster
# kernel: the lecture's small model (n_embd 32, block 8, batch 32: at most 2**20) trained 0.81-0.87x as fast
# with it, the cpu preset (n_embd 128, block 64, batch 12: at least 768 x 128 x 128, about 2**23.6) 1.35-1.59x
# (benchmarks/RESULTS.md, "The fast paths as the default").
ONEDNN_MIN_MACS = 2**22


class OneDNNLinear(nn.Linear):
    """``nn.Linear`` whose fp32 products on a CPU are oneDNN's (:class:`_OneDNNLinearFunction`) when they are
    large enough to gain (:data:`ONEDNN_MIN_MACS`). Anywhere else - small products, another device, another
    dtype, under autocast (which must see ``F.linear`` to cast it), a torch without the kernel - it is
    ``nn.Linear``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (_LINEAR is None or x.device.type != "cpu" or x.dtype != torch.float32 or self.weight.dtype != torch.float32
                or x.dim() < 2 or torch.is_autocast_enabled("cpu")
                or x.numel() * self.out_features < ONEDNN_MIN_MACS):
            return F.linear(x, self.weight, self.bias)
        return _OneDNNLinearFunction.apply(x, self.weight, self.bias)


def use_onednn_linear(model: nn.Module) -> nn.Module:
    """Make every plain ``nn.Linear`` inside ``model`` an :class:`OneDNNLinear`, in place: the module
    objects, their parameters (an optimizer built before still holds them) and the state-dict keys stay
    the same. Returns ``model``."""
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = OneDNNLinear
    return model


class _FastCPUAttend:
    """Mixed into ``lecture_utils.model.CausalSelfAttention`` by :func:`use_fast_attention` (this module sits
    below ``model`` in the package's layers, so it finds the class on the model instead of importing it).

    The written-out attention, taken in training when the weights' dropout is :class:`CPUDropout`, does the
    scale and the causal mask inside the first product: ``baddbmm(mask, q, k^T, alpha=head_size**-0.5)``,
    the mask 0 on and below the diagonal and ``-inf`` above, instead of ``q @ k^T``, ``* scale`` and
    ``masked_fill``: the same numbers (``x + 0 = x``, ``x - inf = -inf``, the masked weights' gradient 0
    either way), two passes over the ``(B, nh, T, T)`` weights fewer forward and backward. Everything else
    (weights kept for a heatmap, eval, torch's own dropout) is ``CausalSelfAttention.attend``."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.keep_attention or not (self.training and type(self.attn_dropout) is CPUDropout
                                       and self.attn_dropout.p > 0 and q.device.type == "cpu"):
            return super().attend(q, k, v)
        B, nh, T, hs = q.shape
        self._record()
        mask = torch.zeros(T, T, dtype=q.dtype, device=q.device).masked_fill_(self.tril[0, 0, :T, :T] == 0,
                                                                             float("-inf"))
        wei = torch.baddbmm(mask, q.reshape(B * nh, T, hs), k.reshape(B * nh, T, hs).transpose(1, 2),
                            alpha=hs ** -0.5)  # (B*nh, T, T), scaled and masked
        wei = self.attn_dropout(F.softmax(wei, dim=-1))
        return torch.bmm(wei, v.reshape(B * nh, T, hs)).view(B, nh, T, hs)


_FAST_CLASSES: dict[type, type] = {}


def _is_batched_attention(module: nn.Module) -> bool:
    cls = type(module)
    return cls.__name__ == "CausalSelfAttention" and cls.__module__ == "lecture_utils.model"


def use_fast_attention(model: nn.Module) -> nn.Module:
    """Give every ``lecture_utils.model.CausalSelfAttention`` (exactly that class) inside ``model`` the
    attention of :class:`_FastCPUAttend`, in place: same modules, parameters and state-dict keys; its class
    becomes ``FastCPUAttention``, a subclass. Returns ``model``."""
    for module in model.modules():
        if _is_batched_attention(module):
            base = type(module)
            if base not in _FAST_CLASSES:
                _FAST_CLASSES[base] = type("FastCPUAttention", (_FastCPUAttend, base), {"__module__": __name__})
            module.__class__ = _FAST_CLASSES[base]
    return model


def use_fast_cpu_paths(model: nn.Module) -> nn.Module:
    """Every speed path of this module: :func:`use_fast_cpu_dropout`, :func:`use_onednn_linear` and
    :func:`use_fast_attention` (each the plain computation off a CPU). Returns ``model``."""
    return use_fast_attention(use_onednn_linear(use_fast_cpu_dropout(model)))


__all__ = ["cpu_dropout", "CPUDropout", "use_fast_cpu_dropout", "OneDNNLinear", "use_onednn_linear",
           "use_fast_attention", "use_fast_cpu_paths"]
