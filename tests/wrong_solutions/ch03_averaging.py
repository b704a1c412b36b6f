"""Wrong solutions of chapter 03: the averaging trick (3.1-3.4)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from lecture_utils import model as M

from ._catalogue import _finish, in_notebook, wrong


def _loops(reduce: Callable[[torch.Tensor, int, int], torch.Tensor]):
    """average_v1 with the loops of the lecture; ``reduce(x[b], t, T)`` computes xbow[b, t]."""

    def average_v1(x):
        B, T, C = x.shape
        xbow = torch.zeros((B, T, C))
        for b in range(B):
            for t in range(T):
                xbow[b, t] = reduce(x[b], t, T)
        return xbow

    return (average_v1,)


@wrong("3.1", "average_v1", "includes the future")
def v1_includes_future():
    return _loops(lambda xb, t, T: torch.mean(xb, 0))


@wrong("3.1", "average_v1", "token itself is left out")
def v1_excludes_self():
    return _loops(lambda xb, t, T: torch.mean(xb[:t], 0))


@wrong("3.1", "average_v1", "sums instead of averaging")
def v1_sums():
    return _loops(lambda xb, t, T: torch.sum(xb[: t + 1], 0))


@wrong("3.1", "average_v1", "channels are averaged too")
def v1_averages_everything():
    return _loops(lambda xb, t, T: torch.mean(xb[: t + 1]))


@wrong("3.1", "average_v1", "average over time")
def v1_wrong_dim():
    return _loops(lambda xb, t, T: torch.mean(xb[: t + 1], 1))


def _matmul(make_wei: Callable[[int], torch.Tensor], left: bool = True):
    def average_v2(x):
        _B, T, _C = x.shape
        wei = make_wei(T)
        return wei @ x if left else x @ wei

    return (average_v2,)


@wrong("3.2", "average_v2", "wei is not normalised")
def v2_not_normalised():
    return _matmul(lambda T: torch.tril(torch.ones(T, T)))


@wrong("3.2", "average_v2", "upper triangle")
def v2_triu():
    return _matmul(lambda T: torch.triu(torch.ones(T, T)) / torch.triu(torch.ones(T, T)).sum(1, keepdim=True))


@wrong("3.2", "average_v2", "normalised over the wrong dimension")
def v2_normalised_over_columns():
    return _matmul(lambda T: torch.tril(torch.ones(T, T)) / torch.tril(torch.ones(T, T)).sum(0, keepdim=True))


@wrong("3.2", "average_v2", "wei @ x, not x @ wei")
def v2_multiplied_on_the_right():
    return _matmul(lambda T: torch.tril(torch.ones(T, T)) / torch.tril(torch.ones(T, T)).sum(1, keepdim=True),
                   left=False)


def _softmax_average(fill: float = float("-inf"), dim: int = -1, keep: str = "tril"):
    def average_v3(x):
        _B, T, _C = x.shape
        tril = torch.tril(torch.ones(T, T))
        wei = torch.zeros((T, T))
        wei = wei.masked_fill((tril == 0) if keep == "tril" else (tril == 1), fill)
        wei = F.softmax(wei, dim=dim)
        return wei @ x

    return (average_v3,)


@wrong("3.2", "average_v2", "wei.sum(1) without keepdim=True")
def v2_sum_without_keepdim():
    return _matmul(lambda T: torch.tril(torch.ones(T, T)) / torch.tril(torch.ones(T, T)).sum(1))


@wrong("3.2", "average_v2", "global variable T (= 8)")
def v2_reads_global_T():
    return in_notebook("03_averaging_trick", """
def average_v2(x):
    wei = torch.tril(torch.ones(T, T))
    wei = wei / wei.sum(1, keepdim=True)
    return wei @ x
""", "average_v2")


@wrong("3.3", "average_v3", "-inf must go through the softmax")
def v3_without_softmax():
    def average_v3(x):
        _B, T, _C = x.shape
        tril = torch.tril(torch.ones(T, T))
        wei = torch.zeros((T, T)).masked_fill(tril == 0, float("-inf"))
        return wei @ x  # the -inf are never turned into weights

    return (average_v3,)


@wrong("3.2", "average_v2", "a division by zero")
def v2_divided_the_wrong_way():
    return _matmul(lambda T: torch.tril(torch.ones(T, T)).sum(1, keepdim=True) / torch.tril(torch.ones(T, T)))


@wrong("3.3", "average_v3", "its result is not assigned")
def v3_masked_fill_not_assigned():
    def average_v3(x):
        _B, T, _C = x.shape
        tril = torch.tril(torch.ones(T, T))
        wei = torch.zeros((T, T))
        wei.masked_fill(tril == 0, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        return wei @ x

    return (average_v3,)


@wrong("3.3", "average_v3", "softmax over the wrong dimension")
def v3_softmax_dim0():
    return _softmax_average(dim=0)


@wrong("3.3", "average_v3", "masked with 0 instead of -inf")
def v3_masked_with_zero():
    return _softmax_average(fill=0.0)


@wrong("3.3", "average_v3", "mask is inverted")
def v3_mask_inverted():
    return _softmax_average(keep="triu")


def _positional(forward):
    """The notebook's BigramWithPositions (its __init__ is given) with the learner's forward."""

    class BigramWithPositions(M.BigramWithPositions):
        pass

    BigramWithPositions.forward = forward
    return (BigramWithPositions,)



@wrong("3.4", "positional_model", "position embeddings are not added")
def positions_not_added():
    def forward(self, idx, targets=None):
        return _finish(self.lm_head(self.token_embedding_table(idx)), targets)

    return _positional(forward)


@wrong("3.4", "positional_model", "not with idx")
def positions_from_token_ids():
    def forward(self, idx, targets=None):
        x = self.token_embedding_table(idx) + self.position_embedding_table(idx)
        return _finish(self.lm_head(x), targets)

    return _positional(forward)


@wrong("3.4", "positional_model", "not torch.arange(block_size)")
def positions_arange_block_size():
    def forward(self, idx, targets=None):
        pos = self.position_embedding_table(torch.arange(self.block_size))
        return _finish(self.lm_head(self.token_embedding_table(idx) + pos), targets)

    return _positional(forward)


@wrong("3.4", "positional_model", "logits not reshaped to (B*T, C)")
def positions_loss_without_reshape():
    def forward(self, idx, targets=None):
        T = idx.shape[1]
        logits = self.lm_head(self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T)))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.transpose(1, 2), targets)

    return _positional(forward)


@wrong("3.4", "positional_model", "parameters are not the lecture's")
def positions_other_names():
    class BigramWithPositions(nn.Module):
        def __init__(self, vocab_size, n_embd, block_size):
            super().__init__()
            self.tok = nn.Embedding(vocab_size, n_embd)
            self.pos = nn.Embedding(block_size, n_embd)
            self.head = nn.Linear(n_embd, vocab_size)

        def forward(self, idx, targets=None):
            T = idx.shape[1]
            return _finish(self.head(self.tok(idx) + self.pos(torch.arange(T))), targets)

    return (BigramWithPositions,)
