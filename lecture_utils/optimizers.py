"""Optimizers: AdamW with the lecture's settings (weight decay on every parameter, or on the matrices
only), and :class:`Muon` for the blocks' weight matrices (chapter 12). :func:`make_optimizer` builds
what a :class:`~lecture_utils.config.TrainConfig` asks for.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from lecture_utils.config import TrainConfig


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device):
    """AdamW with ``config``'s settings (its fused kernel on CUDA and on the CPU); with
    ``config.optimizer == "muon"``, :class:`Muon` for every weight matrix inside the blocks and AdamW
    for the rest (embeddings, ``lm_head``, norms, biases). Each param group's ``lr_scale`` is its peak
    rate over ``config.learning_rate``: the training loop multiplies the schedule by it."""
    if config.optimizer not in ("adamw", "muon"):
        raise ValueError(f"TrainConfig.optimizer must be 'adamw' or 'muon', got {config.optimizer!r}")
    kwargs = dict(lr=config.learning_rate, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay)
    if device.type in ("cuda", "cpu"):  # one fused kernel for all parameters: on a CPU 0.8 ms instead of 4.8 ms
        kwargs["fused"] = True          # at the cpu preset's size, ~7 % of its training step (throughput.py --optimizers)
    if config.optimizer == "adamw":
        return _adamw(_decay_groups(list(model.parameters()), config), kwargs)
    matrices = [p for n, p in model.named_parameters() if p.ndim == 2 and n.startswith("blocks.")]
    chosen = {id(p) for p in matrices}
    rest = [p for p in model.parameters() if id(p) not in chosen]
    if not matrices:
        raise ValueError("optimizer='muon' found no weight matrices under model.blocks; use 'adamw' for this model")
    adamw = _adamw(_decay_groups(rest, config), kwargs)
    muon = Muon(matrices, lr=config.muon_lr)
    muon.param_groups[0]["lr_scale"] = config.muon_lr / config.learning_rate
    return _Optimizers(adamw, muon)


def _decay_groups(params: list, config: TrainConfig) -> list:
    """``params`` as they are (``decay_all``: every parameter decays, as the lecture's
    ``AdamW(model.parameters())``), or split in two param groups: weight matrices and embedding tables
    (2-d) decay, biases and norm gains (1-d) do not - decaying a LayerNorm's gain pulls it towards 0,
    which nothing in the loss asks for."""
    if config.decay_all:
        return params
    return [{"params": [p for p in params if p.ndim >= 2]},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def _adamw(params: list, kwargs: dict) -> torch.optim.AdamW:
    try:
        return torch.optim.AdamW(params, **kwargs)
    except (RuntimeError, ValueError):  # a torch without the fused kernel for this device (CPU: torch < 2.4)
        return torch.optim.AdamW(params, **{k: v for k, v in kwargs.items() if k != "fused"})


def newton_schulz(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """The matrix ``g`` (or each matrix of a stack ``(..., rows, cols)``) with every singular value
    pushed towards 1 (roughly ``U V^T`` of ``g = U S V^T``), by ``steps`` iterations of a quintic
    Newton-Schulz polynomial.

    The coefficients (3.4445, -4.7750, 2.0315) are the ones published with Muon (K. Jordan et al.,
    2024): chosen so that few iterations take small singular values up fast; the result's singular
    values land roughly in [0.7, 1.2], which is all the optimizer needs."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.float()
    wide = x.size(-2) <= x.size(-1)
    if not wide:  # iterate on the smaller Gram matrix
        x = x.mT
    x = x / (torch.linalg.matrix_norm(x, keepdim=True) + 1e-7)  # spectral norm <= Frobenius norm <= 1
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x if wide else x.mT).to(g.dtype)


class Muon(torch.optim.Optimizer):
    """Momentum, orthogonalised: for each weight matrix, keep a Nesterov momentum of its gradient,
    replace that by :func:`newton_schulz` of it (same directions, all singular values ~1), and step
    by ``lr * sqrt(max(1, rows / cols))``. Only for 2-D weights inside the network; embeddings,
    the output layer, norms and biases belong to AdamW (:func:`make_optimizer` splits them).
    Matrices of the same shape are orthogonalised together, as one stack (fewer, larger matmuls)."""

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, ns_steps: int = 5):
        super().__init__(params, dict(lr=lr, momentum=momentum, ns_steps=ns_steps))
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon takes weight matrices only, got a parameter of shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            by_shape: dict[tuple, list] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(p.grad)
                buf = state["momentum"]
                buf.mul_(group["momentum"]).add_(p.grad)
                by_shape.setdefault(tuple(p.shape), []).append((p, p.grad.add(buf, alpha=group["momentum"])))
            for (rows, cols), items in by_shape.items():
                updates = newton_schulz(torch.stack([g for _, g in items]), group["ns_steps"])
                for (p, _), update in zip(items, updates):
                    p.add_(update, alpha=-group["lr"] * max(1.0, rows / cols) ** 0.5)


class _Optimizers:
    """Several optimizers stepped as one (``param_groups``, ``zero_grad``, ``step``)."""

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers
        self.param_groups = [g for o in optimizers for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for o in self.optimizers:
            o.step()

    def state_dict(self) -> dict:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["optimizers"]) != len(self.optimizers):
            raise ValueError("the checkpoint was trained with another optimizer")
        for o, st in zip(self.optimizers, state["optimizers"]):
            o.load_state_dict(st)


__all__ = ["make_optimizer", "newton_schulz", "Muon"]
