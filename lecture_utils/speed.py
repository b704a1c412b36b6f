"""Speed paths: the same mathematics as the reference model, computed faster, applied to a built model.

On a CPU torch draws dropout masks one number at a time (``bernoulli_``: 15 % of a lecture-sized fp32
training step on a 2-core CPU, ``benchmarks/throughput.py``). :func:`use_fast_cpu_dropout` swaps every
``nn.Dropout`` of a model for :class:`CPUDropout`, whose masks come from numpy; the batched attention
then applies its weights' dropout on the written-out path (``scaled_dot_product_attention`` can only
draw its own masks). The training loop applies it once, when ``TrainConfig.fast_cpu_dropout`` is set
and the model trains on a CPU; ``lecture_utils.timing.training_step`` takes the same choice.
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


__all__ = ["cpu_dropout", "CPUDropout", "use_fast_cpu_dropout"]
