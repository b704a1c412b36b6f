"""Wrong solutions of chapter 02: the bigram model (2.1-2.4)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from lecture_utils.data import get_batch as ref_get_batch

from ._catalogue import _flat_loss, wrong


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


@wrong("2.1", "bigram_forward", "logits not reshaped to (B*T, C)")
def bigram_reshapes_only_inside_the_loss():
    # the loss is right (computed on a flattened view), but the logits handed back keep (B, T, C)
    def forward(self, idx, targets=None):
        logits = self.token_embedding_table(idx)
        if targets is None:
            return logits, None
        B, T, C = logits.shape
        return logits, F.cross_entropy(logits.view(B * T, C), targets.view(B * T))

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
            elif crop == "overwrite":  # idx = idx[:, -block_size:]: the cropped context replaces the whole
                if block_size is not None:
                    context = context[:, -block_size:]
                idx_cond = context
            else:
                idx_cond = context
            logits, _ = model(idx_cond)
            idx_next = pick(logits, generator if use_generator else None)
            new.append(idx_next)
            if feed_back:
                context = torch.cat((context, idx_next), dim=1)
        if crop == "overwrite":
            return context
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


@wrong("2.2", "generate", "the cropped context replaced the sequence")
def generate_overwrites_the_context():
    return _generate(_sample_last, crop="overwrite")


@wrong("2.2", "generate", "block_size is None")
def generate_assumes_block_size():
    return _generate(_sample_last, crop="always")


def _estimate_loss(*, set_eval=True, restore=True, no_grad=True, as_float=True, iters=None, reduce="mean",
                   use_generator=True, split_names=None, one_batch=False, always_train=False):
    """A learner's estimate_loss with switches for the usual mistakes."""

    def estimate_loss(model, splits, eval_iters, block_size, batch_size, generator=None):
        was_training = model.training
        if set_eval:
            model.eval()
        out = {}
        with torch.set_grad_enabled(not no_grad):
            names = split_names or list(splits)
            for name in names:
                split = splits[name]
                n = eval_iters if iters is None else iters
                losses = torch.zeros(n)
                batch = ref_get_batch(split, block_size, batch_size, generator=generator)
                for k in range(n):
                    if not one_batch:
                        batch = ref_get_batch(split, block_size, batch_size,
                                              generator=generator if use_generator else None)
                    _, loss = model(*batch)
                    losses[k] = loss.item()
                value = losses.mean() if reduce == "mean" else losses.sum() if reduce == "sum" else losses[-1]
                out[name] = value.item() if as_float else value
        if restore:
            model.train(True if always_train else was_training)
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


@wrong("2.3", "estimate_loss", "evaluated the same batch")
def estimate_loss_one_batch_many_times():
    return _estimate_loss(one_batch=True)


@wrong("2.3", "estimate_loss", "switched a model that was in eval mode to training mode")
def estimate_loss_always_back_to_train():
    return _estimate_loss(always_train=True)


@wrong("2.3", "estimate_loss", "same generator seed gave different results")
def estimate_loss_ignores_generator():
    return _estimate_loss(use_generator=False)


@wrong("2.3", "estimate_loss", "do not assume they are called")
def estimate_loss_fixed_split_names():
    return _estimate_loss(split_names=["train", "val"])


# --- 2.4: the training loop (exercise 2.4 and its wrong solutions, kept together) -----------------


def _train_loop(order=("zero_grad", "backward", "step"), own_eval=False, eval_last=True, set_eval=False,
                eval_iters_fixed=None, train_on_val=False, swap_splits=False, forward_without_grad=False):
    """The lecture's loop with one slip: ``order`` of the three calls in a step (a call left out is
    forgotten), ``own_eval`` measures the losses on one batch without estimate_loss (train mode),
    ``eval_last=False`` skips the evaluation at the last step, ``set_eval`` calls model.eval() before
    estimate_loss and never model.train(), ``eval_iters_fixed`` ignores the eval_iters argument,
    ``train_on_val`` draws the training batches from val_data, ``swap_splits`` hands estimate_loss the
    splits under each other's names, ``forward_without_grad`` runs the training forward under torch.no_grad()."""
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
                    splits = {"train": val_data, "val": train_data} if swap_splits else {"train": train_data,
                                                                                         "val": val_data}
                    losses = estimate_loss(model, splits, eval_iters_fixed or eval_iters, block_size, batch_size,
                                           generator=generator)
                history.append({"step": step, **losses})
            xb, yb = ref_get_batch(val_data if train_on_val else train_data, block_size, batch_size, device=device,
                                   generator=generator)
            if forward_without_grad:
                with torch.no_grad():
                    _, loss = model(xb, yb)
            else:
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


@wrong("2.4", "train_loop", "the model trained on the validation split")
def train_loop_trains_on_val():
    return _train_loop(train_on_val=True)


@wrong("2.4", "train_loop", "the splits are swapped")
def train_loop_swaps_the_splits():
    return _train_loop(swap_splits=True)


@wrong("2.4", "train_loop", "the training forward ran under torch.no_grad()")
def train_loop_forward_without_grad():
    return _train_loop(forward_without_grad=True)


