"""A catalogue of realistic wrong solutions, one or more per exercise, with the diagnosis each must get.

Every entry is a :class:`WrongSolution`: ``build()`` returns the learner's objects in the order of
the check's parameters (``check(*build())``), and the check must raise ``CheckFailed`` whose message
contains ``expect``. tests/test_checks.py runs them all; a grader test can reuse :data:`CATALOGUE`.

The wrong solutions are written the way a learner would write them in the notebook (the same class
and function names, the lecture's code with one mistake), mostly as subclasses of the reference
modules that override only the method the exercise is about.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lecture_utils import data
from lecture_utils import model as M
from lecture_utils.data import get_batch as ref_get_batch


@dataclass(frozen=True)
class WrongSolution:
    exercise: str  # "4.1"
    check: str  # the check's name in lecture_utils.checks
    name: str  # what the mistake is, as an identifier
    build: Callable[[], tuple]  # the learner's objects, in the order of the check's parameters
    expect: str  # a distinctive part of the diagnosis
    needs_corpus: bool = False  # the check itself reads the corpus (exercise 1.1)


CATALOGUE: list[WrongSolution] = []


def wrong(exercise: str, check: str, expect: str, needs_corpus: bool = False):
    """Register the decorated ``build`` function in :data:`CATALOGUE`."""

    def register(build: Callable[[], tuple]) -> Callable[[], tuple]:
        CATALOGUE.append(WrongSolution(exercise, check, build.__name__, build, expect, needs_corpus))
        return build

    return register


def _flat_loss(logits, targets):
    B, T, C = logits.shape
    logits = logits.view(B * T, C)
    return logits, F.cross_entropy(logits, targets.view(B * T))


# =============================================================================================
# chapter 01
# =============================================================================================


def _vocabulary() -> list[str]:
    return sorted(set(data.load_text()))


@wrong("1.1", "encode_decode", "ord(c)", needs_corpus=True)
def encode_with_ord():
    itos = dict(enumerate(_vocabulary()))
    return (lambda s: [ord(c) for c in s]), (lambda ids: "".join(itos[i] for i in ids))


@wrong("1.1", "encode_decode", "sorted", needs_corpus=True)
def vocabulary_not_sorted():
    chars = _vocabulary()[::-1]  # e.g. list(set(text)): some order, not the sorted one
    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = dict(enumerate(chars))
    return (lambda s: [stoi[c] for c in s]), (lambda ids: "".join(itos[i] for i in ids))


@wrong("1.1", "encode_decode", "decode should return a string", needs_corpus=True)
def decode_without_join():
    chars = _vocabulary()
    stoi = {ch: i for i, ch in enumerate(chars)}
    return (lambda s: [stoi[c] for c in s]), (lambda ids: [chars[i] for i in ids])


@wrong("1.2", "split_data", "swapped")
def split_swapped():
    def split_data(data, train_frac=0.9):
        n = int(train_frac * len(data))
        return data[n:], data[:n]

    return (split_data,)


@wrong("1.2", "split_data", "shuffled")
def split_shuffled():
    def split_data(data, train_frac=0.9):
        data = data[torch.randperm(len(data))]
        n = int(train_frac * len(data))
        return data[:n], data[n:]

    return (split_data,)


@wrong("1.2", "split_data", "train_frac=0.75")
def split_ignores_train_frac():
    def split_data(data, train_frac=0.9):
        n = int(0.9 * len(data))
        return data[:n], data[n:]

    return (split_data,)


@wrong("1.2", "split_data", "exactly one split")
def split_overlapping():
    def split_data(data, train_frac=0.9):
        n = int(train_frac * len(data))
        return data[:n], data[n - 1:]

    return (split_data,)


@wrong("1.3", "get_batch", "batch dimension comes first")
def batch_transposed():
    def get_batch(data, block_size, batch_size, generator=None):
        x, y = ref_get_batch(data, block_size, batch_size, generator=generator)
        return x.T, y.T

    return (get_batch,)


@wrong("1.3", "get_batch", "y equals x")
def targets_equal_inputs():
    def get_batch(data, block_size, batch_size, generator=None):
        x, _ = ref_get_batch(data, block_size, batch_size, generator=generator)
        return x, x.clone()

    return (get_batch,)


@wrong("1.3", "get_batch", "shifted the wrong way")
def targets_shifted_back():
    def get_batch(data, block_size, batch_size, generator=None):
        ix = torch.randint(1, len(data) - block_size, (batch_size,), generator=generator)
        x = torch.stack([data[i:i + block_size] for i in ix])
        y = torch.stack([data[i - 1:i + block_size - 1] for i in ix])
        return x, y

    return (get_batch,)


@wrong("1.3", "get_batch", "last chunk of data is never chosen")
def last_chunk_never_chosen():
    def get_batch(data, block_size, batch_size, generator=None):
        ix = torch.randint(len(data) - block_size - 1, (batch_size,), generator=generator)
        x = torch.stack([data[i:i + block_size] for i in ix])
        y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
        return x, y

    return (get_batch,)


@wrong("1.3", "get_batch", "same generator seed should give the same batch")
def batch_ignores_generator():
    def get_batch(data, block_size, batch_size, generator=None):
        ix = torch.randint(len(data) - block_size, (batch_size,))
        x = torch.stack([data[i:i + block_size] for i in ix])
        y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
        return x, y

    return (get_batch,)


# =============================================================================================
# chapter 02
# =============================================================================================


def _bigram(forward):
    """The notebook's BigramLanguageModel (its __init__ is given) with the learner's forward."""

    class BigramLanguageModel(nn.Module):
        def __init__(self, vocab_size):
            super().__init__()
            self.token_embedding_table = nn.Embedding(vocab_size, vocab_size)

    BigramLanguageModel.forward = forward
    return (BigramLanguageModel,)


@wrong("2.1", "bigram_forward", "logits not reshaped to (B*T, C)")
def bigram_logits_not_reshaped():
    def forward(self, idx, targets=None):
        logits = self.token_embedding_table(idx)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits, targets)

    return _bigram(forward)


@wrong("2.1", "bigram_forward", "targets not reshaped")
def bigram_targets_not_reshaped():
    def forward(self, idx, targets=None):
        logits = self.token_embedding_table(idx)
        if targets is None:
            return logits, None
        B, T, C = logits.shape
        logits = logits.view(B * T, C)
        return logits, F.cross_entropy(logits, targets)

    return _bigram(forward)


@wrong("2.1", "bigram_forward", "summed over the B*T positions")
def bigram_loss_summed():
    def forward(self, idx, targets=None):
        logits = self.token_embedding_table(idx)
        if targets is None:
            return logits, None
        B, T, C = logits.shape
        logits = logits.view(B * T, C)
        return logits, F.cross_entropy(logits, targets.view(B * T), reduction="sum")

    return _bigram(forward)


@wrong("2.1", "bigram_forward", "computed on probabilities")
def bigram_softmax_before_cross_entropy():
    def forward(self, idx, targets=None):
        logits = self.token_embedding_table(idx)
        if targets is None:
            return logits, None
        B, T, C = logits.shape
        logits = logits.view(B * T, C)
        return logits, F.cross_entropy(F.softmax(logits, dim=-1), targets.view(B * T))

    return _bigram(forward)


@wrong("2.1", "bigram_forward", "log-softmax is missing")
def bigram_nll_on_logits():
    def forward(self, idx, targets=None):
        logits = self.token_embedding_table(idx)
        if targets is None:
            return logits, None
        B, T, C = logits.shape
        logits = logits.view(B * T, C)
        return logits, F.nll_loss(logits, targets.view(B * T))

    return _bigram(forward)


@wrong("2.1", "bigram_forward", "without targets there is no loss")
def bigram_always_computes_loss():
    def forward(self, idx, targets=None):
        logits = self.token_embedding_table(idx)
        return _flat_loss(logits, targets)

    return _bigram(forward)


@wrong("2.1", "bigram_forward", "loss should be None")
def bigram_zero_loss_without_targets():
    def forward(self, idx, targets=None):
        logits = self.token_embedding_table(idx)
        if targets is None:
            return logits, torch.tensor(0.0)
        return _flat_loss(logits, targets)

    return _bigram(forward)


@wrong("2.1", "bigram_forward", "looked up with the targets")
def bigram_reads_targets():
    def forward(self, idx, targets=None):
        if targets is None:
            return self.token_embedding_table(idx), None
        return _flat_loss(self.token_embedding_table(targets), targets)

    return _bigram(forward)


@wrong("2.1", "bigram_forward", "keep their shape (B, T, C)")
def bigram_always_flattens():
    def forward(self, idx, targets=None):
        logits = self.token_embedding_table(idx)
        B, T, C = logits.shape
        logits = logits.view(B * T, C)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits, targets.view(B * T))

    return _bigram(forward)


def _generate(pick: Callable, *, crop: str = "last", append: bool = True, feed_back: bool = True,
              use_generator: bool = True):
    """A learner's generate: ``pick(logits (B, T, C), generator) -> idx_next``, with switches for the
    other usual mistakes."""

    @torch.no_grad()
    def generate(model, idx, max_new_tokens, generator=None):
        block_size = getattr(model, "block_size", None)
        context, new = idx, []
        for _ in range(max_new_tokens):
            if crop == "last":
                idx_cond = context if block_size is None else context[:, -block_size:]
            elif crop == "first":
                idx_cond = context if block_size is None else context[:, :block_size]
            elif crop == "always":
                idx_cond = context[:, -model.block_size:]
            else:
                idx_cond = context
            logits, _ = model(idx_cond)
            idx_next = pick(logits, generator if use_generator else None)
            new.append(idx_next)
            if feed_back:
                context = torch.cat((context, idx_next), dim=1)
        out = torch.cat(new, dim=1) if new else idx[:, :0]
        return torch.cat((idx, out), dim=1) if append else out

    return (generate,)


def _sample_last(logits, generator):
    probs = F.softmax(logits[:, -1, :], dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


@wrong("2.2", "generate", "use only the last time step")
def generate_all_time_steps():
    return _generate(lambda logits, g: torch.multinomial(F.softmax(logits, dim=-1), 1, generator=g))


@wrong("2.2", "generate", "first time step")
def generate_first_time_step():
    return _generate(lambda logits, g: torch.multinomial(F.softmax(logits[:, 0, :], dim=-1), 1, generator=g))


@wrong("2.2", "generate", "argmax")
def generate_argmax():
    return _generate(lambda logits, g: logits[:, -1, :].argmax(dim=-1, keepdim=True))


@wrong("2.2", "generate", "given the logits, not probabilities")
def generate_without_softmax():
    return _generate(lambda logits, g: torch.multinomial(logits[:, -1, :], 1, generator=g))


@wrong("2.2", "generate", "only the new tokens")
def generate_returns_new_tokens_only():
    return _generate(_sample_last, append=False)


@wrong("2.2", "generate", "original context")
def generate_never_feeds_back():
    return _generate(_sample_last, feed_back=False)


@wrong("2.2", "generate", "same generator seed gave different samples")
def generate_ignores_generator():
    return _generate(_sample_last, use_generator=False)


@wrong("2.2", "generate", "crop the context to the last")
def generate_without_cropping():
    return _generate(_sample_last, crop="none")


@wrong("2.2", "generate", "LAST block_size tokens")
def generate_crops_the_start():
    return _generate(_sample_last, crop="first")


@wrong("2.2", "generate", "block_size is None")
def generate_assumes_block_size():
    return _generate(_sample_last, crop="always")


def _estimate_loss(*, set_eval=True, restore=True, no_grad=True, as_float=True, iters=None, reduce="mean",
                   use_generator=True, split_names=None):
    """A learner's estimate_loss with switches for the usual mistakes."""

    def estimate_loss(model, splits, eval_iters, block_size, batch_size, generator=None):
        if set_eval:
            model.eval()
        out = {}
        with torch.set_grad_enabled(not no_grad):
            names = split_names or list(splits)
            for name in names:
                split = splits[name]
                n = eval_iters if iters is None else iters
                losses = torch.zeros(n)
                for k in range(n):
                    x, y = ref_get_batch(split, block_size, batch_size, generator=generator if use_generator else None)
                    _, loss = model(x, y)
                    losses[k] = loss.item()
                value = losses.mean() if reduce == "mean" else losses.sum() if reduce == "sum" else losses[-1]
                out[name] = value.item() if as_float else value
        if restore:
            model.train()
        return out

    return (estimate_loss,)


@wrong("2.3", "estimate_loss", "training mode during evaluation")
def estimate_loss_without_eval():
    return _estimate_loss(set_eval=False)


@wrong("2.3", "estimate_loss", "left the model in eval mode")
def estimate_loss_without_train():
    return _estimate_loss(restore=False)


@wrong("2.3", "estimate_loss", "gradients were being tracked")
def estimate_loss_with_grad():
    return _estimate_loss(no_grad=False)


@wrong("2.3", "estimate_loss", "is a tensor")
def estimate_loss_returns_tensors():
    return _estimate_loss(as_float=False)


@wrong("2.3", "estimate_loss", "expected eval_iters")
def estimate_loss_one_batch():
    return _estimate_loss(iters=1)


@wrong("2.3", "estimate_loss", "losses are summed")
def estimate_loss_sums():
    return _estimate_loss(reduce="sum")


@wrong("2.3", "estimate_loss", "last batch's loss")
def estimate_loss_last_batch():
    return _estimate_loss(reduce="last")


@wrong("2.3", "estimate_loss", "same generator seed gave different results")
def estimate_loss_ignores_generator():
    return _estimate_loss(use_generator=False)


@wrong("2.3", "estimate_loss", "do not assume they are called")
def estimate_loss_fixed_split_names():
    return _estimate_loss(split_names=["train", "val"])


# --- 2.4: the training loop (exercise 2.4 and its wrong solutions, kept together) -----------------


def _train_loop(order=("zero_grad", "backward", "step"), own_eval=False, eval_last=True, set_eval=False,
                eval_iters_fixed=None):
    """The lecture's loop with one slip: ``order`` of the three calls in a step (a call left out is
    forgotten), ``own_eval`` measures the losses on one batch without estimate_loss (train mode),
    ``eval_last=False`` skips the evaluation at the last step, ``set_eval`` calls model.eval() before
    estimate_loss and never model.train(), ``eval_iters_fixed`` ignores the eval_iters argument."""
    from lecture_utils.train import estimate_loss

    def train_loop(model, optimizer, train_data, val_data, max_iters, eval_interval, eval_iters, block_size,
                   batch_size, generator=None):
        device = next(model.parameters()).device
        history = []
        for step in range(max_iters):
            if step % eval_interval == 0 or (eval_last and step == max_iters - 1):
                if own_eval:
                    losses = {name: model(*ref_get_batch(split, block_size, batch_size, generator=generator))[1].item()
                              for name, split in (("train", train_data), ("val", val_data))}
                else:
                    if set_eval:
                        model.eval()
                    losses = estimate_loss(model, {"train": train_data, "val": val_data},
                                           eval_iters_fixed or eval_iters, block_size, batch_size, generator=generator)
                history.append({"step": step, **losses})
            xb, yb = ref_get_batch(train_data, block_size, batch_size, device=device, generator=generator)
            _, loss = model(xb, yb)
            for call in order:
                if call == "zero_grad":
                    optimizer.zero_grad(set_to_none=True)
                elif call == "backward":
                    loss.backward()
                else:
                    optimizer.step()
        return history

    return (train_loop,)


@wrong("2.4", "train_loop", "gradients pile up")
def train_loop_without_zero_grad():
    return _train_loop(order=("backward", "step"))


@wrong("2.4", "train_loop", "optimizer.step() comes before loss.backward()")
def train_loop_step_before_backward():
    return _train_loop(order=("zero_grad", "step", "backward"))


@wrong("2.4", "train_loop", "never backpropagated")
def train_loop_without_backward():
    return _train_loop(order=("zero_grad", "step"))


@wrong("2.4", "train_loop", "zero_grad between backward and step erases them")
def train_loop_zero_grad_after_backward():
    return _train_loop(order=("backward", "zero_grad", "step"))


@wrong("2.4", "train_loop", "measured in training mode")
def train_loop_evaluates_in_train_mode():
    return _train_loop(own_eval=True)


@wrong("2.4", "train_loop", "trained in eval mode")
def train_loop_never_back_to_train_mode():
    return _train_loop(set_eval=True)


@wrong("2.4", "train_loop", "last step is not evaluated")
def train_loop_skips_the_last_evaluation():
    return _train_loop(eval_last=False)


@wrong("2.4", "train_loop", "expected eval_iters=")
def train_loop_ignores_eval_iters():
    return _train_loop(eval_iters_fixed=7)


# =============================================================================================
# chapter 03
# =============================================================================================


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


def _finish(logits, targets):
    return (logits, None) if targets is None else _flat_loss(logits, targets)


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


# =============================================================================================
# chapter 04
# =============================================================================================


def _head(scale: str = "head_size", mask: str = "tril", softmax_dim: int = -1, swap: bool = False,
          dropout: str = "module", tril_size: str = "block_size", slice_mask: bool = True):
    """The lecture's Head with switches for the usual mistakes."""

    class Head(nn.Module):
        def __init__(self, n_embd, head_size, block_size, dropout_p=0.0):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            size = block_size if tril_size == "block_size" else head_size
            self.register_buffer("tril", torch.tril(torch.ones(size, size)))
            self.dropout = nn.Dropout(dropout_p)
            self.p = dropout_p

        def forward(self, x):
            _B, T, C = x.shape
            k, q = self.key(x), self.query(x)
            wei = k @ q.transpose(-2, -1) if swap else q @ k.transpose(-2, -1)
            wei = wei * {"head_size": k.shape[-1] ** -0.5, "C": C**-0.5, "none": 1.0}[scale]
            if mask == "tril":
                wei = wei.masked_fill((self.tril[:T, :T] if slice_mask else self.tril) == 0, float("-inf"))
            wei = F.softmax(wei, dim=softmax_dim)
            if dropout == "module":
                wei = self.dropout(wei)
            elif dropout == "always":
                wei = F.dropout(wei, self.p)  # training=True by default: also in eval mode
            return wei @ self.value(x)

    return (Head,)


@wrong("4.1", "head", "mask lets a token see the future")
def head_without_mask():
    return _head(mask="none")


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


# =============================================================================================
# chapter 05
# =============================================================================================


def _multi_head(cat_dim: int = -1, proj: str = "used", heads: str = "separate", dropout: bool = True):
    """The lecture's MultiHeadAttention (with the reference Head) and switches for the usual mistakes."""

    class MultiHeadAttention(nn.Module):
        def __init__(self, n_embd, num_heads, head_size, block_size, dropout_p=0.0):
            super().__init__()
            if heads == "separate":
                self.heads = nn.ModuleList([M.Head(n_embd, head_size, block_size, dropout_p) for _ in range(num_heads)])
            elif heads == "shared":
                self.heads = nn.ModuleList([M.Head(n_embd, head_size, block_size, dropout_p)] * num_heads)
            else:
                self.heads = [M.Head(n_embd, head_size, block_size, dropout_p) for _ in range(num_heads)]
            if proj != "missing":
                self.proj = nn.Linear(num_heads * head_size, n_embd)
            self.dropout = nn.Dropout(dropout_p if dropout else 0.0)

        def forward(self, x):
            out = torch.cat([h(x) for h in self.heads], dim=cat_dim)
            if proj == "used":
                out = self.proj(out)
            return self.dropout(out)

    return (MultiHeadAttention,)


@wrong("5.1", "multi_head", "along the last (channel) dimension")
def heads_concatenated_over_time():
    return _multi_head(cat_dim=1)


@wrong("5.1", "multi_head", "missing proj.weight")
def multi_head_without_proj():
    return _multi_head(proj="missing")


@wrong("5.1", "multi_head", "not projected")
def multi_head_proj_unused():
    return _multi_head(proj="unused")


@wrong("5.1", "multi_head", "one and the same module")
def multi_head_one_shared_head():
    return _multi_head(heads="shared")


@wrong("5.1", "multi_head", "plain Python list")
def multi_head_plain_list():
    return _multi_head(heads="list")


@wrong("5.1", "multi_head", "add dropout after the projection")
def multi_head_without_dropout():
    return _multi_head(dropout=False)


def _batched(transpose_in: bool = True, transpose_out: bool = True, scale: str = "head_size", order: str = "qkv",
             causal: bool = True, dropout: bool = True, manual: bool = False):
    """A learner's CausalSelfAttention with switches for the usual mistakes."""

    class CausalSelfAttention(nn.Module):
        def __init__(self, n_embd, n_head, block_size, dropout_p=0.0):
            super().__init__()
            self.n_head = n_head
            self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
            self.proj = nn.Linear(n_embd, n_embd)
            self.p = dropout_p if dropout else 0.0
            self.resid_dropout = nn.Dropout(self.p)
            self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))

        def forward(self, x):
            B, T, C = x.shape
            hs = C // self.n_head
            parts = dict(zip(order, self.qkv(x).split(C, dim=2)))
            q, k, v = (parts[name].view(B, T, self.n_head, hs) for name in "qkv")
            if transpose_in:
                q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            s = {"head_size": hs**-0.5, "C": C**-0.5}[scale]
            if manual:
                wei = q @ k.transpose(-2, -1) * s
                wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
                out = F.dropout(F.softmax(wei, dim=-1), self.p, training=self.training) @ v
            else:
                out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0,
                                                     is_causal=causal, scale=s)
            if transpose_in and transpose_out:
                out = out.transpose(1, 2)
            return self.resid_dropout(self.proj(out.reshape(B, T, C)))

    return (CausalSelfAttention,)


@wrong("5.2", "batched_multi_head", "attention ran over the heads instead of over time")
def batched_view_without_transpose():
    return _batched(transpose_in=False)


@wrong("5.2", "batched_multi_head", "the shapes inside attention do not line up")
def batched_view_without_transpose_manual_mask():
    return _batched(transpose_in=False, manual=True)


@wrong("5.2", "batched_multi_head", "outputs are scrambled")
def batched_reshape_without_transpose():
    return _batched(transpose_out=False)


@wrong("5.2", "batched_multi_head", "scaled by C (n_embd) instead of head_size")
def batched_scaled_by_c():
    return _batched(scale="C")


@wrong("5.2", "batched_multi_head", "wrong slices of qkv")
def batched_split_order():
    return _batched(order="kqv")


@wrong("5.2", "batched_multi_head", "mask lets a token see the future")
def batched_not_causal():
    return _batched(causal=False)


@wrong("5.2", "batched_multi_head", "output never changed")
def batched_without_dropout():
    return _batched(dropout=False)


# =============================================================================================
# chapter 06
# =============================================================================================


def _feed_forward(inner: int = 4, activation: type[nn.Module] | None = nn.ReLU, project: bool = True,
                  dropout: bool = True):
    class FeedForward(nn.Module):
        def __init__(self, n_embd, dropout_p=0.0):
            super().__init__()
            layers: list[nn.Module] = [nn.Linear(n_embd, inner * n_embd)]
            if activation is not None:
                layers.append(activation())
            if project:
                layers.append(nn.Linear(inner * n_embd, n_embd))
            if dropout:
                layers.append(nn.Dropout(dropout_p))
            self.net = nn.Sequential(*layers)

        def forward(self, x):
            return self.net(x)

    return (FeedForward,)


@wrong("6.1", "feed_forward", "4 * n_embd = 64 wide")
def feed_forward_not_4x():
    return _feed_forward(inner=1)


@wrong("6.1", "feed_forward", "linear function of the input")
def feed_forward_without_nonlinearity():
    return _feed_forward(activation=None)


@wrong("6.1", "feed_forward", "projection back is missing")
def feed_forward_without_projection():
    return _feed_forward(project=False)


@wrong("6.1", "feed_forward", "end self.net with nn.Dropout")
def feed_forward_without_dropout():
    return _feed_forward(dropout=False)


@wrong("6.1", "feed_forward", "not GELU")
def feed_forward_gelu():
    return _feed_forward(activation=nn.GELU)


# =============================================================================================
# chapter 07
# =============================================================================================


def _layer_norm(dims=(-1,), unbiased: bool = False, eps_at: str = "inside", params: bool = True,
                affine: bool = True, keepdim: bool = True, fixed_eps: bool = False):
    class LayerNorm(nn.Module):
        def __init__(self, dim, eps=1e-5):
            super().__init__()
            self.eps = 1e-5 if fixed_eps else eps
            if params:
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


@wrong("7.1", "layer_norm", "keepdim=True")
def layer_norm_without_keepdim():
    return _layer_norm(keepdim=False)


def _block(order: str = "pre", head_size: str = "split", norms: tuple[str, str] = ("ln1", "ln2")):
    class Block(nn.Module):
        def __init__(self, n_embd, n_head, block_size, dropout=0.0):
            super().__init__()
            hs = n_embd // n_head if head_size == "split" else n_embd
            self.sa = M.MultiHeadAttention(n_embd, n_head, hs, block_size, dropout)
            self.ffwd = M.FeedForward(n_embd, dropout)
            self.ln1 = nn.LayerNorm(n_embd)
            self.ln2 = nn.LayerNorm(n_embd)

        def forward(self, x):
            ln_a, ln_b = getattr(self, norms[0]), getattr(self, norms[1])
            if order == "pre":
                x = x + self.sa(ln_a(x))
                return x + self.ffwd(ln_b(x))
            if order == "no-residual":
                x = self.sa(ln_a(x))
                return self.ffwd(ln_b(x))
            x = ln_a(x + self.sa(x))  # post-norm
            return ln_b(x + self.ffwd(x))

    return (Block,)


@wrong("7.2", "block", "residual connection is missing")
def block_without_residual():
    return _block(order="no-residual")


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


# =============================================================================================
# chapter 08
# =============================================================================================


def _gpt(ln_f: str = "used", lm_head_bias: bool = True, positions: bool = True, reshape: bool = True,
         n_layer: int | None = None):
    class GPTLanguageModel(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.block_size = config.block_size
            self.token_embedding_table = nn.Embedding(config.vocab_size, config.n_embd)
            self.position_embedding_table = nn.Embedding(config.block_size, config.n_embd)
            self.blocks = nn.Sequential(*[
                M.Block(config.n_embd, config.n_head, config.block_size, config.dropout, attention=config.attention)
                for _ in range(n_layer or config.n_layer)
            ])
            if ln_f != "missing":
                self.ln_f = nn.LayerNorm(config.n_embd)
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=lm_head_bias)

        def forward(self, idx, targets=None):
            _B, T = idx.shape
            x = self.token_embedding_table(idx)
            if positions:
                x = x + self.position_embedding_table(torch.arange(T, device=idx.device))
            x = self.blocks(x)
            if ln_f == "used":
                x = self.ln_f(x)
            logits = self.lm_head(x)
            if targets is None:
                return logits, None
            if not reshape:
                return logits, F.cross_entropy(logits.transpose(1, 2), targets)
            return _flat_loss(logits, targets)

    return (GPTLanguageModel,)


@wrong("8.1", "gpt", "final LayerNorm is missing")
def gpt_without_ln_f():
    return _gpt(ln_f="missing")


@wrong("8.1", "gpt", "final LayerNorm is not applied")
def gpt_ln_f_unused():
    return _gpt(ln_f="unused")


@wrong("8.1", "gpt", "lm_head has no bias")
def gpt_lm_head_without_bias():
    return _gpt(lm_head_bias=False)


@wrong("8.1", "gpt", "position embeddings are missing")
def gpt_without_positions():
    return _gpt(positions=False)


@wrong("8.1", "gpt", "logits not reshaped to (B*T, C)")
def gpt_logits_not_reshaped():
    return _gpt(reshape=False)


@wrong("8.1", "gpt", "self.blocks holds 3 blocks")
def gpt_fixed_number_of_layers():
    return _gpt(n_layer=3)


# =============================================================================================
# chapter 10 (addition)
# =============================================================================================

from lecture_utils import addition as A  # noqa: E402


@wrong("10.1", "encode_problem", "not reversed")
def answer_not_reversed():
    def encode_problem(a, b, n_digits):
        return A.TOKENIZER.encode(f"{a:0{n_digits}d}+{b:0{n_digits}d}={str(a + b).zfill(n_digits + 1)}")

    return (encode_problem,)


@wrong("10.1", "encode_problem", "not zero-padded")
def operands_not_padded():
    def encode_problem(a, b, n_digits):
        return A.TOKENIZER.encode(f"{a}+{b}={str(a + b).zfill(n_digits + 1)[::-1]}")

    return (encode_problem,)


@wrong("10.1", "encode_problem", "pad the sum to n_digits+1")
def sum_not_padded():
    def encode_problem(a, b, n_digits):
        return A.TOKENIZER.encode(f"{a:0{n_digits}d}+{b:0{n_digits}d}={str(a + b)[::-1]}")

    return (encode_problem,)


@wrong("10.1", "encode_problem", "reversed too early")
def padded_after_reversing():
    # reverses the unpadded sum, then pads: "12+39=150" is right but "05+07=210" becomes "021"
    def encode_problem(a, b, n_digits):
        return A.TOKENIZER.encode(f"{a:0{n_digits}d}+{b:0{n_digits}d}={str(a + b)[::-1].zfill(n_digits + 1)}")

    return (encode_problem,)


@wrong("10.2", "make_batch", "no target is masked")
def batch_without_mask():
    def make_batch(batch_size, n_digits, generator=None):
        seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in A.sample_problems(batch_size, n_digits, generator)])
        return seqs[:, :-1], seqs[:, 1:]

    return (make_batch,)


@wrong("10.2", "make_batch", "use -1")
def batch_masked_with_zero():
    def make_batch(batch_size, n_digits, generator=None):
        seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in A.sample_problems(batch_size, n_digits, generator)])
        x, y = seqs[:, :-1], seqs[:, 1:].clone()
        y[:, : 2 * n_digits + 1] = 0
        return x, y

    return (make_batch,)


@wrong("10.2", "make_batch", "answer targets are wrong")
def batch_masks_first_answer_digit():
    def make_batch(batch_size, n_digits, generator=None):
        seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in A.sample_problems(batch_size, n_digits, generator)])
        x, y = seqs[:, :-1], seqs[:, 1:].clone()
        y[:, : 2 * n_digits + 2] = -1  # one too many: the first answer digit is never trained
        return x, y

    return (make_batch,)


@wrong("10.2", "make_batch", "must all be -1")
def batch_leaves_equals_sign_target():
    def make_batch(batch_size, n_digits, generator=None):
        seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in A.sample_problems(batch_size, n_digits, generator)])
        x, y = seqs[:, :-1], seqs[:, 1:].clone()
        y[:, : 2 * n_digits] = -1  # one too few: the model is asked to predict '='
        return x, y

    return (make_batch,)


@wrong("10.2", "make_batch", "held-out problem")
def batch_uses_held_out_problems():
    def make_batch(batch_size, n_digits, generator=None):
        ab = torch.randint(10**n_digits, (batch_size, 2), generator=generator).tolist()
        ab[0] = next((a, b) for a in range(10**n_digits) for b in range(10**n_digits) if A.is_held_out(a, b))
        seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in ab])
        x, y = seqs[:, :-1], seqs[:, 1:].clone()
        y[:, : 2 * n_digits + 1] = -1
        return x, y

    return (make_batch,)


def _greedy_answers(model, problems, n_digits):
    p = A.prompt_len(n_digits)
    seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in problems])
    idx = seqs[:, :p]
    for _ in range(n_digits + 1):
        logits, _ = model(idx)
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx[:, p:], seqs[:, p:]


@wrong("10.3", "addition_accuracy", "ALL its answer")
def accuracy_per_digit():
    @torch.no_grad()
    def accuracy(model, problems, n_digits):
        model.eval()
        got, want = _greedy_answers(model, problems, n_digits)
        model.train()
        return (got == want).float().mean().item()  # digit by digit: partial credit

    return (accuracy,)


@wrong("10.3", "addition_accuracy", "argmax, not by sampling")
def accuracy_by_sampling():
    @torch.no_grad()
    def accuracy(model, problems, n_digits):
        model.eval()
        p = A.prompt_len(n_digits)
        seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in problems])
        idx = seqs[:, :p]
        for _ in range(n_digits + 1):
            logits, _ = model(idx)
            nxt = torch.multinomial(torch.softmax(logits[:, -1], -1), 1)
            idx = torch.cat([idx, nxt], dim=1)
        model.train()
        return (idx[:, p:] == seqs[:, p:]).all(1).float().mean().item()

    return (accuracy,)


@wrong("10.3", "addition_accuracy", "eval mode")
def accuracy_in_train_mode():
    @torch.no_grad()
    def accuracy(model, problems, n_digits):
        got, want = _greedy_answers(model, problems, n_digits)
        return (got == want).all(1).float().mean().item()

    return (accuracy,)


@wrong("10.3", "addition_accuracy", "back in train mode")
def accuracy_leaves_eval_mode():
    @torch.no_grad()
    def accuracy(model, problems, n_digits):
        model.eval()
        got, want = _greedy_answers(model, problems, n_digits)
        return (got == want).all(1).float().mean().item()

    return (accuracy,)


# =============================================================================================
# chapter 12 (modern features)
# =============================================================================================


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


# =============================================================================================
# chapter 09 (batched heads, timing)
# =============================================================================================


def _head_weights(mha):
    return ([h.query.weight for h in mha.heads], [h.key.weight for h in mha.heads],
            [h.value.weight for h in mha.heads])


@wrong("9.1", "heads_to_batched", "wrong order")
def fused_in_kqv_order():
    @torch.no_grad()
    def heads_to_batched(mha, csa):
        q, k, v = _head_weights(mha)
        csa.qkv.weight.copy_(torch.cat([torch.cat(k), torch.cat(q), torch.cat(v)]))
        csa.proj.load_state_dict(mha.proj.state_dict())
        return csa

    return (heads_to_batched,)


@wrong("9.1", "heads_to_batched", "interleaved")
def fused_interleaved_per_head():
    @torch.no_grad()
    def heads_to_batched(mha, csa):
        csa.qkv.weight.copy_(torch.cat([torch.cat([h.query.weight, h.key.weight, h.value.weight]) for h in mha.heads]))
        csa.proj.load_state_dict(mha.proj.state_dict())
        return csa

    return (heads_to_batched,)


@wrong("9.1", "heads_to_batched", "output projection is not copied")
def fused_without_projection():
    @torch.no_grad()
    def heads_to_batched(mha, csa):
        q, k, v = _head_weights(mha)
        csa.qkv.weight.copy_(torch.cat([torch.cat(q), torch.cat(k), torch.cat(v)]))
        return csa

    return (heads_to_batched,)


@wrong("9.1", "heads_to_batched", "torch.no_grad()")
def fused_copy_with_grad():
    def heads_to_batched(mha, csa):
        q, k, v = _head_weights(mha)
        csa.qkv.weight.copy_(torch.cat([torch.cat(q), torch.cat(k), torch.cat(v)]))
        csa.proj.load_state_dict(mha.proj.state_dict())
        return csa

    return (heads_to_batched,)


@wrong("9.1", "heads_to_batched", "along dim 0")
def fused_concatenated_along_columns():
    @torch.no_grad()
    def heads_to_batched(mha, csa):
        q, k, v = _head_weights(mha)
        csa.qkv.weight.copy_(torch.cat([torch.cat(q, dim=1), torch.cat(k, dim=1), torch.cat(v, dim=1)]))
        csa.proj.load_state_dict(mha.proj.state_dict())
        return csa

    return (heads_to_batched,)


@wrong("9.2", "median_seconds", "pulled it up")
def timing_with_mean():
    import statistics
    import time

    def median_seconds(fn, warmup=2, reps=10, device=None):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.mean(times)

    return (median_seconds,)


@wrong("9.2", "median_seconds", "call it warmup=3 times before timing")
def timing_without_warmup():
    import statistics
    import time

    def median_seconds(fn, warmup=2, reps=10, device=None):
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    return (median_seconds,)


@wrong("9.2", "median_seconds", "total time of all calls")
def timing_the_whole_loop():
    import time

    def median_seconds(fn, warmup=2, reps=10, device=None):
        t0 = time.perf_counter()
        for _ in range(warmup + reps):
            fn()
        return time.perf_counter() - t0

    return (median_seconds,)


@wrong("9.2", "median_seconds", "not milliseconds")
def timing_in_milliseconds():
    import statistics
    import time

    def median_seconds(fn, warmup=2, reps=10, device=None):
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)

    return (median_seconds,)


@wrong("9.2", "median_seconds", "pulled it up")
def timing_loop_divided_by_reps():
    import time

    def median_seconds(fn, warmup=2, reps=10, device=None):
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps

    return (median_seconds,)


# =============================================================================================
# chapter 11 (pretraining, fine-tuning)
# =============================================================================================


@wrong("11.1", "to_vocabulary", "characters outside the vocabulary remain")
def vocabulary_unchanged_text():
    def to_vocabulary(text, chars):
        return text  # "the tokenizer will cope": it raises on the first unknown character

    return (to_vocabulary,)


@wrong("11.1", "to_vocabulary", "replaced instead of removed")
def vocabulary_replaces_with_space():
    def to_vocabulary(text, chars):
        return "".join(c if c in chars else " " for c in text)

    return (to_vocabulary,)


@wrong("11.1", "to_vocabulary", "newlines were removed")
def vocabulary_printable_only():
    def to_vocabulary(text, chars):
        return "".join(c for c in text if c.isprintable() and c in chars)

    return (to_vocabulary,)


@wrong("11.1", "to_vocabulary", "return a string")
def vocabulary_returns_list():
    def to_vocabulary(text, chars):
        return [c for c in text if c in chars]

    return (to_vocabulary,)


@wrong("11.1", "to_vocabulary", "case of letters changed")
def vocabulary_lowercased():
    def to_vocabulary(text, chars):
        return "".join(c for c in text.lower() if c in chars)

    return (to_vocabulary,)


@wrong("11.2", "copy_for_finetuning", "the pretrained model itself")
def finetune_the_original():
    def copy_for_finetuning(pretrained):
        return pretrained.train()

    return (copy_for_finetuning,)


@wrong("11.2", "copy_for_finetuning", "shallow")
def finetune_shallow_copy():
    import copy

    def copy_for_finetuning(pretrained):
        return copy.copy(pretrained).train()

    return (copy_for_finetuning,)


@wrong("11.2", "copy_for_finetuning", "training from scratch")
def finetune_fresh_model():
    def copy_for_finetuning(pretrained):
        return M.GPT(pretrained.config).to(next(pretrained.parameters()).device)

    return (copy_for_finetuning,)


@wrong("11.2", "copy_for_finetuning", "eval mode")
def finetune_copy_in_eval_mode():
    import copy

    def copy_for_finetuning(pretrained):
        return copy.deepcopy(pretrained)

    return (copy_for_finetuning,)


@wrong("11.2", "copy_for_finetuning", "leave it as it was")
def finetune_switches_original_to_train():
    import copy

    def copy_for_finetuning(pretrained):
        pretrained.train()
        return copy.deepcopy(pretrained)

    return (copy_for_finetuning,)


# more chapter 12 mistakes, one per diagnosis the catalogue above does not reach


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
