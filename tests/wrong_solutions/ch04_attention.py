"""Wrong solutions of chapter 04: one head of self-attention (4.1), a cross-attention head (4.2), the variance of
the affinities (4.3)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ._catalogue import in_notebook, wrong


def _head(scale: str = "head_size", mask: str = "tril", softmax_dim: int = -1, swap: bool = False,
          dropout: str = "module", tril_size: str = "block_size", slice_mask: bool = True, buffer: bool = True,
          aggregate: str = "value"):
    """The lecture's Head with switches for the usual mistakes."""

    class Head(nn.Module):
        def __init__(self, n_embd, head_size, block_size, dropout_p=0.0):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            size = block_size if tril_size == "block_size" else head_size
            if buffer:
                self.register_buffer("tril", torch.tril(torch.ones(size, size)))
            else:
                self.tril = torch.tril(torch.ones(size, size))  # a plain attribute: .to(device) leaves it behind
            self.dropout = nn.Dropout(dropout_p)
            self.p = dropout_p

        def forward(self, x):
            _B, T, C = x.shape
            k, q = self.key(x), self.query(x)
            wei = k @ q.transpose(-2, -1) if swap else q @ k.transpose(-2, -1)
            wei = wei * {"head_size": k.shape[-1] ** -0.5, "C": C**-0.5, "none": 1.0}[scale]
            if dropout == "before_mask":
                wei = self.dropout(wei)
            if mask == "tril":
                wei = wei.masked_fill((self.tril[:T, :T] if slice_mask else self.tril) == 0, float("-inf"))
            elif mask == "fill_zero":  # 0 is an ordinary affinity: exp(0) = 1 still gives the future weight
                wei = wei.masked_fill(self.tril[:T, :T] == 0, 0.0)
            if dropout == "before_softmax":
                wei = self.dropout(wei)
            wei = F.softmax(wei, dim=softmax_dim)
            if mask in ("after_softmax_0", "after_softmax_inf"):
                fill = 0.0 if mask == "after_softmax_0" else float("-inf")
                wei = wei.masked_fill(self.tril[:T, :T] == 0, fill)
            if dropout == "module":
                wei = self.dropout(wei)
            elif dropout == "always":
                wei = F.dropout(wei, self.p)  # training=True by default: also in eval mode
            out = wei @ {"value": self.value, "key": self.key, "query": self.query}[aggregate](x)
            return self.dropout(out) if dropout == "output" else out

    return (Head,)


@wrong("4.1", "head", "mask lets a token see the future")
def head_without_mask():
    return _head(mask="none")


@wrong("4.1", "head", "the mask has no effect: wei.masked_fill(...) returns a new tensor")
def head_masked_fill_unassigned():
    # a class of its own: the check reads the source for the dropped result, and _head's other branches assign it
    class Head(nn.Module):
        def __init__(self, n_embd, head_size, block_size, dropout=0.0):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            _B, T, _C = x.shape
            k, q = self.key(x), self.query(x)
            wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
            wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))  # the result is dropped
            wei = self.dropout(F.softmax(wei, dim=-1))
            return wei @ self.value(x)

    return (Head,)


@wrong("4.1", "head", "the masked affinities are filled with 0")
def head_mask_filled_with_zero():
    return _head(mask="fill_zero")


@wrong("4.1", "head", "scaled by C (n_embd) instead of head_size")
def head_scaled_by_c():
    return _head(scale="C")


@wrong("4.1", "head", "not scaled")
def head_not_scaled():
    return _head(scale="none")


@wrong("4.1", "head", "do not sum to 1")
def head_softmax_wrong_dim():
    return _head(softmax_dim=1)


@wrong("4.1", "head", "affinities are transposed")
def head_keys_times_queries():
    return _head(swap=True)


@wrong("4.1", "head", "in eval mode the output changed")
def head_dropout_in_eval():
    return _head(dropout="always")


@wrong("4.1", "head", "output never changed")
def head_without_dropout():
    return _head(dropout="none")


@wrong("4.1", "head", "self.tril[:T, :T]")
def head_mask_not_sliced():
    return _head(slice_mask=False)


@wrong("4.1", "head", "self.tril[:T, :T]")
def head_mask_sized_by_head_size():
    return _head(tril_size="head_size")


@wrong("4.1", "head", "to the masked affinities before the softmax")
def head_dropout_before_softmax():
    return _head(dropout="before_softmax")


@wrong("4.1", "head", "the weights still sum to 1 in training mode")
def head_dropout_before_mask():
    return _head(dropout="before_mask")


@wrong("4.1", "head", "dropout is applied to the head's output")
def head_dropout_on_output():
    return _head(dropout="output")


@wrong("4.1", "head", "the mask is applied after the softmax")
def head_masks_after_softmax():
    return _head(mask="after_softmax_0")


@wrong("4.1", "head", "the mask is applied after the softmax")
def head_masks_after_softmax_with_inf():
    return _head(mask="after_softmax_inf")


@wrong("4.1", "head", "aggregates the keys, not the values")
def head_aggregates_keys():
    return _head(aggregate="key")


@wrong("4.1", "head", "self.tril as a plain tensor attribute")
def head_mask_plain_attribute():
    return _head(buffer=False)


_NOTEBOOK_HEAD = """
class Head(nn.Module):
    def __init__(self, n_embd, head_size, block_size, dropout=0.0):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)
        q = self.query(x)
        wei = q @ k.transpose(-2, -1) * SCALE
        wei = wei.masked_fill(MASK == 0, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        wei = self.dropout(wei)
        return wei @ self.value(x)
"""


@wrong("4.1", "head", "global variable head_size (= 16)")
def head_scaled_by_global_head_size():
    # chapter 04 leaves head_size = 16 at the top level, from the single-head walk-through before the exercise
    source = _NOTEBOOK_HEAD.replace("SCALE", "head_size**-0.5").replace("MASK", "self.tril[:T, :T]")
    return in_notebook("04_self_attention", source, "Head")


@wrong("4.1", "head", "global variable tril (= a tensor of shape (8, 8))")
def head_uses_global_tril():
    # the walk-through's tril = torch.tril(torch.ones(T, T)) is still in the notebook
    source = _NOTEBOOK_HEAD.replace("SCALE", "k.shape[-1]**-0.5").replace("MASK", "tril[:T, :T]")
    return in_notebook("04_self_attention", source, "Head", tril=torch.tril(torch.ones(8, 8)))


# ---------------------------------------------------------------------------------------------------------------
# 4.2 a cross-attention head
# ---------------------------------------------------------------------------------------------------------------


def _cross_head(q_from: str = "x", k_from: str = "context", v_from: str = "context", scale: str = "head_size",
                mask: str = "none", softmax_dim: int = -1):
    """A cross-attention head with switches for the usual mistakes."""

    class CrossHead(nn.Module):
        def __init__(self, n_embd, head_size):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)

        def forward(self, x, context):
            source = {"x": x, "context": context}
            q = self.query(source[q_from])
            k = self.key(source[k_from])
            v = self.value(source[v_from])
            wei = q @ k.transpose(-2, -1)
            wei = wei * {"head_size": k.shape[-1] ** -0.5, "C": x.shape[-1] ** -0.5, "none": 1.0}[scale]
            if mask == "tril":  # copied from Head: a T x T mask for the T tokens of x
                T = x.shape[1]
                tril = torch.tril(torch.ones(T, T, device=x.device))
                wei = wei.masked_fill(tril == 0, float("-inf"))
            elif mask == "tril_full":  # a mask as big as wei, so no shape error: still hides part of the context
                tril = torch.tril(torch.ones(wei.shape[-2], wei.shape[-1], device=x.device))
                wei = wei.masked_fill(tril == 0, float("-inf"))
            wei = F.softmax(wei, dim=softmax_dim)
            return wei @ v

    return (CrossHead,)


@wrong("4.2", "cross_head", "a causal mask is left in")
def cross_head_with_causal_mask():
    return _cross_head(mask="tril")


@wrong("4.2", "cross_head", "a causal mask is left in")
def cross_head_with_mask_the_size_of_wei():
    return _cross_head(mask="tril_full")


@wrong("4.2", "cross_head", "the keys and values come from x instead of the context")
def cross_head_keys_values_from_x():
    return _cross_head(k_from="x", v_from="x")


@wrong("4.2", "cross_head", "the values come from x instead of the context")
def cross_head_values_from_x():
    return _cross_head(v_from="x")


@wrong("4.2", "cross_head", "the queries come from the context instead of x")
def cross_head_queries_from_context():
    return _cross_head(q_from="context")


@wrong("4.2", "cross_head", "x and the context swap roles")
def cross_head_roles_swapped():
    return _cross_head(q_from="context", k_from="x", v_from="x")


@wrong("4.2", "cross_head", "not scaled")
def cross_head_not_scaled():
    return _cross_head(scale="none")


@wrong("4.2", "cross_head", "scaled by C (n_embd) instead of head_size")
def cross_head_scaled_by_c():
    return _cross_head(scale="C")


@wrong("4.2", "cross_head", "each query's row (dim=-1) must sum to 1 over the context")
def cross_head_softmax_over_queries():
    return _cross_head(softmax_dim=1)


@wrong("4.2", "cross_head", "one row per query")
def cross_head_output_transposed():
    class CrossHead(nn.Module):
        def __init__(self, n_embd, head_size):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)

        def forward(self, x, context):
            q, k, v = self.query(x), self.key(context), self.value(context)
            wei = F.softmax(q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5, dim=-1)
            return (wei @ v).transpose(-2, -1)  # (B, head_size, T_x)

    return (CrossHead,)


@wrong("4.2", "cross_head", "the scale uses the wrong size")
def cross_head_scaled_by_context_length():
    class CrossHead(nn.Module):
        def __init__(self, n_embd, head_size):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)

        def forward(self, x, context):
            q, k, v = self.query(x), self.key(context), self.value(context)
            wei = F.softmax(q @ k.transpose(-2, -1) * k.shape[1] ** -0.5, dim=-1)  # shape[1] is T_c, not head_size
            return wei @ v

    return (CrossHead,)


# ---------------------------------------------------------------------------------------------------------------
# 4.3 the variance of the affinities
# ---------------------------------------------------------------------------------------------------------------


def _affinity_variance(scale: str = "sqrt", measure: str = "wei", draw: str = "randn", use_generator: bool = True,
                       item: bool = True, product: str = "q @ k^T"):
    """The experiment with switches for the usual mistakes."""

    def affinity_variance(head_size, scaled, B=4, T=8, generator=None):
        g = generator if use_generator else None  # without it: the global random state, not reproducible
        sample = torch.randn if draw == "randn" else torch.rand
        q = sample(B, T, head_size, generator=g)
        k = sample(B, T, head_size, generator=g)
        if product == "k^T @ q":
            wei = k.transpose(-2, -1) @ q  # (B, hs, hs): sums over the tokens
        elif product == "q @ k":
            wei = q @ k  # k not transposed
        else:
            wei = q @ k.transpose(-2, -1)
        factor = {"sqrt": head_size**-0.5, "head_size": 1 / head_size, "times_sqrt": head_size**0.5,
                  "none": 1.0}.get(scale)
        if scale == "always":
            wei = wei * head_size**-0.5
        elif scale == "inverted":
            if not scaled:
                wei = wei * head_size**-0.5
        elif scaled:
            wei = wei * factor
        value = {"wei": wei.var(), "std": wei.std(), "q": q.var()}[measure]
        return value.item() if item else value

    return (affinity_variance,)


@wrong("4.3", "affinity_variance", "scaled by head_size instead of its square root")
def affinity_variance_divided_by_head_size():
    return _affinity_variance(scale="head_size")


@wrong("4.3", "affinity_variance", "standard deviation, not the variance")
def affinity_variance_std():
    return _affinity_variance(measure="std")


@wrong("4.3", "affinity_variance", "the variance of q")
def affinity_variance_of_q():
    return _affinity_variance(measure="q")


@wrong("4.3", "affinity_variance", "with scaled=True the variance is still about head_size")
def affinity_variance_never_scaled():
    return _affinity_variance(scale="none")


@wrong("4.3", "affinity_variance", "with scaled=False the variance is about 1")
def affinity_variance_always_scaled():
    return _affinity_variance(scale="always")


@wrong("4.3", "affinity_variance", "the scale is applied when scaled is False")
def affinity_variance_scale_inverted():
    return _affinity_variance(scale="inverted")


@wrong("4.3", "affinity_variance", "multiplied by sqrt(head_size) instead of divided")
def affinity_variance_multiplied():
    return _affinity_variance(scale="times_sqrt")


@wrong("4.3", "affinity_variance", "uniform in [0, 1)")
def affinity_variance_uniform():
    return _affinity_variance(draw="rand")


@wrong("4.3", "affinity_variance", "draw q and k with the given generator")
def affinity_variance_ignores_generator():
    return _affinity_variance(use_generator=False)


@wrong("4.3", "affinity_variance", "return a Python float")
def affinity_variance_returns_tensor():
    return _affinity_variance(item=False)


@wrong("4.3", "affinity_variance", "the affinities sum over the T tokens, not the head_size features")
def affinity_variance_keys_transposed_first():
    return _affinity_variance(product="k^T @ q")


@wrong("4.3", "affinity_variance", "q @ k^T needs k with its last two dimensions swapped")
def affinity_variance_k_not_transposed():
    return _affinity_variance(product="q @ k")

