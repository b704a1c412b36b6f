"""Wrong solutions of chapter 08: the full GPT (8.1)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lecture_utils import model as M

from ._catalogue import _flat_loss, wrong


def _gpt(ln_f: str = "used", lm_head_bias: bool = True, positions: str = "arange_T", reshape: bool = True,
         n_layer: int | None = None, pass_dropout: bool = True, shared_block: bool = False):
    class GPTLanguageModel(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.block_size = config.block_size
            self.token_embedding_table = nn.Embedding(config.vocab_size, config.n_embd)
            self.position_embedding_table = nn.Embedding(config.block_size, config.n_embd)
            if shared_block:  # [Block(...)] * n_layer repeats one object
                self.blocks = nn.Sequential(*[M.Block(config.n_embd, config.n_head, config.block_size,
                                                      config.dropout)] * config.n_layer)
            else:
                self.blocks = nn.Sequential(*[
                    M.Block(config.n_embd, config.n_head, config.block_size, config.dropout if pass_dropout else 0.0)
                    for _ in range(n_layer or config.n_layer)
                ])
            if ln_f != "missing":
                self.ln_f = nn.LayerNorm(config.n_embd)
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=lm_head_bias)

        def forward(self, idx, targets=None):
            _B, T = idx.shape
            x = self.token_embedding_table(idx)
            if positions == "arange_T":
                x = x + self.position_embedding_table(torch.arange(T, device=idx.device))
            elif positions == "arange_block_size":
                x = x + self.position_embedding_table(torch.arange(self.block_size, device=idx.device))
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
    return _gpt(positions="none")


@wrong("8.1", "gpt", "logits not reshaped to (B*T, C)")
def gpt_logits_not_reshaped():
    return _gpt(reshape=False)


@wrong("8.1", "gpt", "self.blocks holds 3 blocks")
def gpt_fixed_number_of_layers():
    return _gpt(n_layer=3)


@wrong("8.1", "gpt", "config.dropout=0.5; pass config.dropout to Block")
def gpt_dropout_not_passed_down():
    return _gpt(pass_dropout=False)


@wrong("8.1", "gpt", "not torch.arange(block_size)")
def gpt_positions_arange_block_size():
    return _gpt(positions="arange_block_size")


@wrong("8.1", "gpt", "the blocks are one and the same module")
def gpt_one_shared_block():
    return _gpt(shared_block=True)
