"""Checks for chapter 08 (scaling up): 8.1 the full GPT language model."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import torch
from torch import nn

from lecture_utils import model as ref
from lecture_utils.checks._core import exercise, expect, fail, fail_generic, fresh_seed, passed, rng
from lecture_utils.checks._device import forward_on_second_device
from lecture_utils.checks._helpers import (
    blame_notebook_globals,
    build,
    call,
    copy_weights,
    diagnose,
    isolated_rng,
    randomize_,
    same,
    tensor_output,
)
from lecture_utils.checks.ch07_residual_layernorm import check_sublayer_dropout

# small enough to run in milliseconds; n_embd != vocab_size and block_size != T of most tests
CONFIG = ref.GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=2, dropout=0.0, attention="heads")


def _count(module: nn.Module) -> int:
    return ref.num_parameters(module)


def _structure(model: nn.Module, reference: nn.Module) -> None:
    """Name the usual structural mistakes before the generic parameter comparison."""
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, (nn.Sequential, nn.ModuleList)) and len({id(b) for b in blocks}) < len(blocks):
        fail("the blocks are one and the same module ([Block(...)] * n_layer repeats one object), so the model has the "
             "parameters of a single block applied n_layer times: build a new Block for each layer, "
             "nn.Sequential(*[Block(...) for _ in range(config.n_layer)])")
    names = {n for n, _ in model.named_parameters()}
    mine, theirs = _count(model), _count(reference)
    if mine == theirs:
        return
    where = f"(the model has {mine:,} parameters, the reference {theirs:,})"
    if not any(n.startswith("ln_f.") for n in names):
        fail(f"the final LayerNorm is missing {where}: self.ln_f = nn.LayerNorm(n_embd), applied after the blocks and "
             f"before lm_head")
    if "lm_head.weight" in names and "lm_head.bias" not in names:
        fail(f"lm_head has no bias {where}: use nn.Linear(n_embd, vocab_size) with its default bias=True")
    if isinstance(blocks, (nn.Sequential, nn.ModuleList)) and len(blocks) != CONFIG.n_layer:
        fail(f"self.blocks holds {len(blocks)} blocks, expected config.n_layer = {CONFIG.n_layer}: "
             f"nn.Sequential(*[Block(...) for _ in range(config.n_layer)])")


def _variants(reference: ref.GPT, idx: torch.Tensor):
    T = idx.shape[1]
    tok = reference.token_embedding_table(idx)
    pos = reference.position_embedding_table(torch.arange(T, device=idx.device))
    head, blocks, ln_f = reference.lm_head, reference.blocks, reference.ln_f
    return [
        ("the final LayerNorm is not applied: x = self.ln_f(x) after the blocks, before self.lm_head",
         lambda: head(blocks(tok + pos))),
        (("the position embeddings are missing: x = tok_emb + pos_emb with "
         "pos_emb = self.position_embedding_table(torch.arange(T))"), lambda: head(ln_f(blocks(tok)))),
        ("the blocks are not applied: x = self.blocks(x) between the embeddings and ln_f",
         lambda: head(ln_f(tok + pos))),
    ]


@exercise("8.1")
@blame_notebook_globals
@isolated_rng
def gpt(GPTLanguageModel, device="cpu"):
    """``GPTLanguageModel(config)``: embeddings (token + position), ``blocks``, ``ln_f``, ``lm_head``;
    ``forward(idx, targets=None) -> (logits, loss)`` like the bigram model."""
    g = rng(fresh_seed())
    config = CONFIG
    model = build(GPTLanguageModel, (config,), "config (a GPTConfig)").to(device)
    # the learner's Block may hold a list of heads or batched heads: compare like with like
    blocks = getattr(model, "blocks", None)
    first = blocks[0] if isinstance(blocks, (nn.Sequential, nn.ModuleList)) and len(blocks) else None
    if isinstance(getattr(first, "sa", None), ref.CausalSelfAttention):
        config = replace(config, attention="batched")
    reference = randomize_(ref.GPT(config), g, std=0.3).to(device)
    _structure(model, reference)
    copy_weights(reference, model, "GPTLanguageModel")
    model.eval()
    reference.eval()
    V = config.vocab_size
    arange_t = ("the positions must be torch.arange(T) for the T tokens of idx, not torch.arange(block_size): a "
                "sequence may be shorter than block_size (as in generate)")
    lookup = (("index out of range", ("the position table has block_size rows: look it up with torch.arange(T), not "
                                     "with idx")),)
    with torch.no_grad():
        for B, T in ((2, config.block_size), (3, 1), (2, 7)):
            idx = torch.randint(V, (B, T), generator=g).to(device)
            targets = torch.randint(V, (B, T), generator=g).to(device)
            hints = lookup if T == config.block_size else (*lookup, (  # T tokens against block_size positions
                f"size of tensor a ({T}) must match the size of tensor b ({config.block_size})", arange_t), (
                f"size of tensor a ({config.block_size}) must match the size of tensor b ({T})", arange_t))
            out = call(model, idx, hints=hints)
            expect(isinstance(out, tuple) and len(out) == 2, "forward should return a pair: return logits, loss")
            logits, loss = out
            if isinstance(logits, torch.Tensor) and T != config.block_size and logits.shape == (B, config.block_size, V):
                fail(arange_t)  # T = 1 broadcasts against all block_size positions
            tensor_output(logits, "forward(idx) (the logits)", (B, T, V))
            expect(loss is None, "without targets, loss should be None")
            if not same(logits, reference(idx)[0], atol=1e-4):
                diagnose(logits, _variants(reference, idx))
                fail_generic("the logits differ from the reference: x = tok_emb + pos_emb; x = self.blocks(x); "
                     "x = self.ln_f(x); logits = self.lm_head(x)")
            _, want_loss = reference(idx, targets)
            logits, loss = call(model, idx, targets, hints=hints)
            tensor_output(logits, "forward(idx, targets) (the logits)", (B * T, V),
                          "logits not reshaped to (B*T, C) when targets are given (the shape cross_entropy needs)")
            expect(isinstance(loss, torch.Tensor) and loss.dim() == 0
                   and torch.allclose(loss, want_loss, atol=1e-4, rtol=1e-4),
                   "the loss differs from F.cross_entropy(logits.view(B*T, C), targets.view(B*T))")
    dropped = build(GPTLanguageModel, (dataclasses.replace(config, dropout=0.5),), "config (a GPTConfig)").to(device)
    for i, block in enumerate(getattr(dropped, "blocks", [])):
        check_sublayer_dropout(block, torch.randn(2, 5, config.n_embd, generator=g).to(device),
                               f"block {i} (with config.dropout=0.5; pass config.dropout to Block)")
    idx = torch.randint(V, (2, config.block_size - 3), generator=g)
    forward_on_second_device(dropped, idx, idx.roll(-1, 1), device=device, what="GPTLanguageModel",
                             what_input="idx")
    return passed(f"{_count(model):,} parameters named as the reference; logits and loss match for "
                  f"T = 1..block_size; config.dropout reaches every block's sublayers", GPTLanguageModel)
