"""Wrong solutions of chapter 12: modern features (12.1-12.6)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lecture_utils import modern as M

from ._catalogue import wrong


@wrong("12.1", "gelu", "SiLU")
def gelu_is_silu():
    return (lambda x: x * torch.sigmoid(x),)


@wrong("12.1", "gelu", "factor 0.5 is missing")
def gelu_without_half():
    return (lambda x: x * (1 + torch.erf(x / math.sqrt(2))),)


@wrong("12.1", "gelu", "erf needs x / sqrt(2)")
def gelu_erf_without_sqrt2():
    return (lambda x: 0.5 * x * (1 + torch.erf(x)),)


@wrong("12.1", "gelu", "the normal CDF alone")
def gelu_returns_phi():
    return (lambda x: 0.5 * (1 + torch.erf(x / math.sqrt(2))),)


@wrong("12.1", "gelu", "changed its input in place")
def gelu_in_place():
    def gelu(x):
        return x.mul_(0.5 * (1 + torch.erf(x / math.sqrt(2))))

    return (gelu,)


class _RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))


@wrong("12.2", "rms_norm", "the mean is subtracted")
def rmsnorm_centres():
    class RMSNorm(_RMSNorm):
        def forward(self, x):
            x = x - x.mean(-1, keepdim=True)
            return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    return (RMSNorm,)


@wrong("12.2", "rms_norm", "SUM of squares")
def rmsnorm_uses_norm():
    class RMSNorm(_RMSNorm):
        def forward(self, x):
            return x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + self.eps) * self.weight

    return (RMSNorm,)


@wrong("12.2", "rms_norm", "eps must go inside")
def rmsnorm_eps_outside():
    class RMSNorm(_RMSNorm):
        def forward(self, x):
            return x / (x.pow(2).mean(-1, keepdim=True).sqrt() + self.eps) * self.weight

    return (RMSNorm,)


@wrong("12.2", "rms_norm", "has no bias")
def rmsnorm_with_bias():
    class RMSNorm(_RMSNorm):
        def __init__(self, dim, eps=1e-5):
            super().__init__(dim, eps)
            self.bias = nn.Parameter(torch.zeros(dim))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight + self.bias

    return (RMSNorm,)


@wrong("12.2", "rms_norm", "weight is not applied")
def rmsnorm_without_weight():
    class RMSNorm(_RMSNorm):
        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    return (RMSNorm,)


def _halves(x):
    half = x.shape[-1] // 2
    return x[..., :half], x[..., half:]


@wrong("12.3", "rope", "interleaved")
def rope_interleaved():
    def apply_rope(x, cos, sin):
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)

    return (apply_rope,)


@wrong("12.3", "rope", "minus sign is missing")
def rope_rotate_half_without_minus():
    def apply_rope(x, cos, sin):
        x1, x2 = _halves(x)
        rotated = torch.cat([x2, x1], dim=-1)  # should be cat(-x2, x1)
        return x * torch.cat([cos, cos], -1) + rotated * torch.cat([sin, sin], -1)

    return (apply_rope,)


@wrong("12.3", "rope", "wrong way")
def rope_negative_angle():
    def apply_rope(x, cos, sin):
        x1, x2 = _halves(x)
        return torch.cat([x1 * cos + x2 * sin, x2 * cos - x1 * sin], dim=-1)

    return (apply_rope,)


@wrong("12.3", "rope", "only the first half")
def rope_first_half_only():
    def apply_rope(x, cos, sin):
        x1, x2 = _halves(x)
        return torch.cat([x1 * cos - x2 * sin, x2], dim=-1)

    return (apply_rope,)


@wrong("12.3", "rope", "position 0 should not move")
def rope_positions_from_one():
    def apply_rope(x, cos, sin):
        T, hs = x.shape[-2], x.shape[-1]
        cos, sin = M.rope_tables(T + 1, hs)  # positions 1..T
        cos, sin = cos[1:].to(x.device), sin[1:].to(x.device)
        x1, x2 = _halves(x)
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)

    return (apply_rope,)


@wrong("12.4", "swiglu", "silu is on the wrong branch")
def swiglu_silu_on_up():
    class SwiGLU(M.SwiGLU):
        def forward(self, x):
            return self.dropout(self.down(self.gate(x) * F.silu(self.up(x))))

    return (SwiGLU,)


def _swiglu_gated_by(activation):
    """SwiGLU with another function where the SiLU belongs."""
    class SwiGLU(M.SwiGLU):
        def forward(self, x):
            return self.dropout(self.down(activation(self.gate(x)) * self.up(x)))

    return (SwiGLU,)


@wrong("12.4", "swiglu", "GLU")
def swiglu_with_sigmoid():
    return _swiglu_gated_by(torch.sigmoid)


@wrong("12.4", "swiglu", "no biases")
def swiglu_with_biases():
    class SwiGLU(nn.Module):
        def __init__(self, n_embd, dropout=0.0, hidden=None):
            super().__init__()
            hidden = hidden or 8 * n_embd // 3
            self.gate, self.up = nn.Linear(n_embd, hidden), nn.Linear(n_embd, hidden)
            self.down = nn.Linear(hidden, n_embd)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            return self.dropout(self.down(F.silu(self.gate(x)) * self.up(x)))

    return (SwiGLU,)


@wrong("12.4", "swiglu", "8 * n_embd // 3")
def swiglu_hidden_four_times():
    class SwiGLU(M.SwiGLU):
        def __init__(self, n_embd, dropout=0.0, hidden=None):
            super().__init__(n_embd, dropout, hidden or 4 * n_embd)

    return (SwiGLU,)


@wrong("12.4", "swiglu", "dropout is not applied")
def swiglu_without_dropout():
    class SwiGLU(M.SwiGLU):
        def forward(self, x):
            return self.down(F.silu(self.gate(x)) * self.up(x))

    return (SwiGLU,)


@wrong("12.5", "tie_weights", "copied, not tied")
def tie_by_copying():
    def tie_weights(model):
        with torch.no_grad():
            model.lm_head.weight.copy_(model.token_embedding_table.weight)
        return model

    return (tie_weights,)


@wrong("12.5", "tie_weights", "no transpose")
def tie_transposed():
    def tie_weights(model):
        model.lm_head.weight = nn.Parameter(model.token_embedding_table.weight.T)
        return model

    return (tie_weights,)


@wrong("12.5", "tie_weights", "return the model")
def tie_without_return():
    def tie_weights(model):
        model.lm_head.weight = model.token_embedding_table.weight

    return (tie_weights,)


@wrong("12.5", "tie_weights", "very same Parameter")
def tie_new_parameter_from_data():
    def tie_weights(model):
        model.lm_head.weight = nn.Parameter(model.token_embedding_table.weight.detach().clone() * 0.5)
        return model

    return (tie_weights,)


def _cos_lr(progress, max_lr, min_lr):
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)


@wrong("12.6", "lr_schedule", "no warmup")
def lr_without_warmup():
    def lr_at(it, max_lr, min_lr, warmup_iters, max_iters):
        return _cos_lr(min(1.0, it / max_iters), max_lr, min_lr)

    return (lr_at,)


@wrong("12.6", "lr_schedule", "warmup starts at 0")
def lr_warmup_from_zero():
    def lr_at(it, max_lr, min_lr, warmup_iters, max_iters):
        if it < warmup_iters:
            return max_lr * it / warmup_iters
        return _cos_lr(min(1.0, (it - warmup_iters) / (max_iters - warmup_iters)), max_lr, min_lr)

    return (lr_at,)


@wrong("12.6", "lr_schedule", "ends at 0 instead of min_lr")
def lr_decays_to_zero():
    def lr_at(it, max_lr, min_lr, warmup_iters, max_iters):
        if it < warmup_iters:
            return max_lr * (it + 1) / warmup_iters
        return _cos_lr(min(1.0, (it - warmup_iters) / (max_iters - warmup_iters)), max_lr, 0.0)

    return (lr_at,)


@wrong("12.6", "lr_schedule", "not clamped")
def lr_not_clamped():
    def lr_at(it, max_lr, min_lr, warmup_iters, max_iters):
        if it < warmup_iters:
            return max_lr * (it + 1) / warmup_iters
        return _cos_lr((it - warmup_iters) / (max_iters - warmup_iters), max_lr, min_lr)

    return (lr_at,)


@wrong("12.6", "lr_schedule", "linear decay")
def lr_linear_decay():
    def lr_at(it, max_lr, min_lr, warmup_iters, max_iters):
        if it < warmup_iters:
            return max_lr * (it + 1) / warmup_iters
        progress = min(1.0, (it - warmup_iters) / (max_iters - warmup_iters))
        return max_lr - (max_lr - min_lr) * progress

    return (lr_at,)


@wrong("12.6", "lr_schedule", "count from the end of the warmup")
def lr_progress_from_zero():
    def lr_at(it, max_lr, min_lr, warmup_iters, max_iters):
        if it < warmup_iters:
            return max_lr * (it + 1) / warmup_iters
        return _cos_lr(min(1.0, it / max_iters), max_lr, min_lr)

    return (lr_at,)



@wrong("12.1", "gelu", "that is ReLU")
def gelu_is_relu():
    return (lambda x: torch.clamp(x, min=0),)


@wrong("12.2", "rms_norm", "x.std() subtracts the mean")
def rmsnorm_divides_by_std():
    class RMSNorm(_RMSNorm):
        def forward(self, x):
            return x / torch.sqrt(x.var(-1, keepdim=True) + self.eps) * self.weight

    return (RMSNorm,)


@wrong("12.3", "rope", "cos and sin are swapped")
def rope_cos_sin_swapped():
    def apply_rope(x, cos, sin):
        x1, x2 = _halves(x)
        return torch.cat([x1 * sin - x2 * cos, x1 * cos + x2 * sin], dim=-1)

    return (apply_rope,)


@wrong("12.4", "swiglu", "GEGLU")
def swiglu_with_gelu():
    return _swiglu_gated_by(F.gelu)


@wrong("12.6", "lr_schedule", "cos needs pi")
def lr_cosine_without_pi():
    def lr_at(it, max_lr, min_lr, warmup_iters, max_iters):
        if it < warmup_iters:
            return max_lr * (it + 1) / warmup_iters
        progress = min(1.0, (it - warmup_iters) / (max_iters - warmup_iters))
        return min_lr + 0.5 * (1 + math.cos(progress)) * (max_lr - min_lr)

    return (lr_at,)
