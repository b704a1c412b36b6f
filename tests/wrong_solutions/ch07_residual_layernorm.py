"""Wrong solutions of chapter 07: LayerNorm and the Block (7.1, 7.2)."""

from __future__ import annotations

import torch
from torch import nn

from lecture_utils import model as M

from ._catalogue import wrong


def _layer_norm(dims=(-1,), unbiased: bool = False, eps_at: str = "inside", params: bool | str = True,
                affine: bool = True, keepdim: bool = True, fixed_eps: bool = False):
    class LayerNorm(nn.Module):
        def __init__(self, dim, eps=1e-5):
            super().__init__()
            self.eps = 1e-5 if fixed_eps else eps
            if params == "plain":  # tensors, not parameters: nothing learns them
                self.weight = torch.ones(dim)
                self.bias = torch.zeros(dim)
            elif params:
                self.weight = nn.Parameter(torch.ones(dim))
                self.bias = nn.Parameter(torch.zeros(dim))

        def forward(self, x):
            mean = x.mean(dims, keepdim=keepdim)
            var = x.var(dims, keepdim=keepdim, unbiased=unbiased)
            if eps_at == "inside":
                xhat = (x - mean) / torch.sqrt(var + self.eps)
            elif eps_at == "outside":
                xhat = (x - mean) / (torch.sqrt(var) + self.eps)
            else:
                xhat = (x - mean) / torch.sqrt(var)
            return xhat * self.weight + self.bias if params and affine else xhat

    return (LayerNorm,)


@wrong("7.1", "layer_norm", "like BatchNorm")
def layer_norm_over_batch():
    return _layer_norm(dims=(0,))


@wrong("7.1", "layer_norm", "variance is unbiased")
def layer_norm_unbiased_variance():
    return _layer_norm(unbiased=True)


@wrong("7.1", "layer_norm", "eps must go inside the square root")
def layer_norm_eps_outside_sqrt():
    return _layer_norm(eps_at="outside")


@wrong("7.1", "layer_norm", "eps is missing")
def layer_norm_without_eps():
    return _layer_norm(eps_at="none")


@wrong("7.1", "layer_norm", "no learnable parameters")
def layer_norm_without_parameters():
    return _layer_norm(params=False)


@wrong("7.1", "layer_norm", "weight and bias are not used")
def layer_norm_parameters_unused():
    return _layer_norm(affine=False)


@wrong("7.1", "layer_norm", "eps argument is ignored")
def layer_norm_fixed_eps():
    return _layer_norm(fixed_eps=True)


@wrong("7.1", "layer_norm", "as a plain tensor, not a parameter")
def layer_norm_plain_tensors():
    return _layer_norm(params="plain")


@wrong("7.1", "layer_norm", "normalised over dimension 1")
def layer_norm_over_dim_1():
    return _layer_norm(dims=(1,))


@wrong("7.1", "layer_norm", "the lecture's LayerNorm1d")
def layer_norm_lecture_layernorm1d():  # the lecture's LayerNorm1d as written: dim 1 and torch.var's default
    return _layer_norm(dims=(1,), unbiased=True)


@wrong("7.1", "layer_norm", "keepdim=True")
def layer_norm_without_keepdim():
    return _layer_norm(keepdim=False)


def _block(order: str = "pre", head_size: str = "split", norms: tuple[str, str] = ("ln1", "ln2"),
           pass_dropout: tuple[bool, bool] = (True, True)):
    class Block(nn.Module):
        def __init__(self, n_embd, n_head, block_size, dropout=0.0):
            super().__init__()
            hs = n_embd // n_head if head_size == "split" else n_embd
            self.sa = M.MultiHeadAttention(n_embd, n_head, hs, block_size, dropout if pass_dropout[0] else 0.0)
            self.ffwd = M.FeedForward(n_embd, dropout) if pass_dropout[1] else M.FeedForward(n_embd)
            self.ln1 = nn.LayerNorm(n_embd)
            self.ln2 = nn.LayerNorm(n_embd)

        def forward(self, x):
            ln_a, ln_b = getattr(self, norms[0]), getattr(self, norms[1])
            if order == "pre":
                x = x + self.sa(ln_a(x))
                return x + self.ffwd(ln_b(x))
            if order == "parallel":  # both sublayers read the same x
                return x + self.sa(ln_a(x)) + self.ffwd(ln_b(x))
            if order == "no-residual":
                x = self.sa(ln_a(x))
                return self.ffwd(ln_b(x))
            x = ln_a(x + self.sa(x))  # post-norm
            return ln_b(x + self.ffwd(x))

    return (Block,)


@wrong("7.2", "block", "residual connection is missing")
def block_without_residual():
    return _block(order="no-residual")


@wrong("7.2", "block", "run side by side on the same x")
def block_parallel_residual():
    return _block(order="parallel")


@wrong("7.2", "block", "post-norm")
def block_post_norm():
    return _block(order="post")


@wrong("7.2", "block", "ln1 and ln2 are swapped")
def block_norms_swapped():
    return _block(norms=("ln2", "ln1"))


@wrong("7.2", "block", "one LayerNorm is used for both")
def block_one_norm_twice():
    return _block(norms=("ln1", "ln1"))


@wrong("7.2", "block", "head_size should be n_embd // n_head")
def block_head_size_n_embd():
    return _block(head_size="n_embd")


@wrong("7.2", "block", "its sa gives the same output twice in training mode")
def block_dropout_not_passed_down():
    return _block(pass_dropout=(False, False))


@wrong("7.2", "block", "its ffwd gives the same output twice in training mode")
def block_dropout_not_passed_to_ffwd():
    return _block(pass_dropout=(True, False))
