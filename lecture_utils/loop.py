"""The lecture's plain training loop (chapter 02, exercise 2.4's reference), before ``lecture_utils.train`` adds
configuration, schedules and checkpoints to it."""

from __future__ import annotations

from lecture_utils.data import get_batch
from lecture_utils.train import estimate_loss


def train_loop(model, optimizer, train_data, val_data, max_iters, eval_interval, eval_iters, block_size,
               batch_size, generator=None):
    """Every ``eval_interval`` steps and at the last step, ``estimate_loss`` on both splits; each step: a batch,
    the loss, ``zero_grad``, ``backward``, ``step``. Returns ``[{"step": s, "train": float, "val": float}, ...]``."""
    device = next(model.parameters()).device
    history = []
    for step in range(max_iters):
        if step % eval_interval == 0 or step == max_iters - 1:
            losses = estimate_loss(model, {"train": train_data, "val": val_data}, eval_iters, block_size,
                                   batch_size, generator=generator)
            history.append({"step": step, **losses})
        xb, yb = get_batch(train_data, block_size, batch_size, device=device, generator=generator)
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return history
