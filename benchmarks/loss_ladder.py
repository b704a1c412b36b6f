"""Reproduce the lecture's loss ladder with the course's reference modules.

Each rung is the model the lecture has at that point, trained with the lecture's settings:

    bigram            BigramLanguageModel, batch 32, block 8, lr 1e-2, 3000 iters
    one head          + n_embd 32 embeddings, positions, one Head of 32, lm_head
    4 heads of 8      the heads concatenated (no projection yet)
    + feed-forward    + Linear(32, 32) + ReLU after the heads
    + residual        3 blocks x = x + sa(x); x = x + ffwd(x), projections, 4x inner FFN
    + LayerNorm       pre-norm blocks and a final LayerNorm (= the package's GPT, preset lecture-small)
    (scaled)          the lecture's final GPT: --full, needs a GPU

rungs 2-6: n_embd 32, block 8, batch 32, lr 1e-3, 5000 iters, AdamW; evaluation: 200 batches per split.
Prints train/val (mean and spread over seeds) beside the lecture's value.

    python benchmarks/loss_ladder.py            # 3 seeds, about 15 minutes on 2 CPU cores
    python benchmarks/loss_ladder.py --quick    # a few iterations, to prove it runs
    python benchmarks/loss_ladder.py --full --device cuda   # adds the scaled rung
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

import torch
import torch.nn as nn
from torch.nn import functional as F

from lecture_utils import data
from lecture_utils.config import PRESETS, TrainConfig
from lecture_utils.device import describe, pick_device, set_threads
from lecture_utils.model import GPT, BigramLanguageModel, GPTConfig, Head, num_parameters
from lecture_utils.train import train

LECTURE = {"bigram": 2.50, "one head": 2.40, "4 heads of 8": 2.28, "+ feed-forward": 2.24,
           "+ residual": 2.08, "+ LayerNorm": 2.06, "scaled": 1.48}


class _Rung(nn.Module):
    """Embeddings + positions, a body, lm_head: the lecture's intermediate models."""

    def __init__(self, vocab_size: int, body: nn.Module, n_embd: int = 32, block_size: int = 8,
                 final_norm: bool = False):
        super().__init__()
        self.block_size = block_size
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.position_embedding_table = nn.Embedding(block_size, n_embd)
        self.body = body
        self.ln_f = nn.LayerNorm(n_embd) if final_norm else nn.Identity()
        self.lm_head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T, device=idx.device))
        logits = self.lm_head(self.ln_f(self.body(x)))
        if targets is None:
            return logits, None
        logits = logits.view(B * T, -1)
        return logits, F.cross_entropy(logits, targets.view(B * T))


class _ConcatHeads(nn.Module):
    """Rung 3: heads concatenated, no projection (the lecture at 01:22)."""

    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.heads = nn.ModuleList([Head(n_embd, n_embd // n_head, block_size) for _ in range(n_head)])

    def forward(self, x):
        return torch.cat([h(x) for h in self.heads], dim=-1)


class _ResidualBlock(nn.Module):
    """Rung 5: residual connections and projections, 4x FFN, no LayerNorm (the lecture at 01:31)."""

    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.heads = _ConcatHeads(n_embd, n_head, block_size)
        self.proj = nn.Linear(n_embd, n_embd)
        self.ffwd = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        x = x + self.proj(self.heads(x))
        return x + self.ffwd(x)


def build(rung: str, vocab_size: int) -> nn.Module:
    n, bs = 32, 8
    if rung == "bigram":
        return BigramLanguageModel(vocab_size)
    if rung == "one head":
        return _Rung(vocab_size, Head(n, n, bs))
    if rung == "4 heads of 8":
        return _Rung(vocab_size, _ConcatHeads(n, 4, bs))
    if rung == "+ feed-forward":
        return _Rung(vocab_size, nn.Sequential(_ConcatHeads(n, 4, bs), nn.Linear(n, n), nn.ReLU()))
    if rung == "+ residual":
        return _Rung(vocab_size, nn.Sequential(*[_ResidualBlock(n, 4, bs) for _ in range(3)]))
    if rung == "+ LayerNorm":
        return GPT(replace(PRESETS["lecture-small"].model, vocab_size=vocab_size))
    if rung == "scaled":
        return GPT(GPTConfig(vocab_size=vocab_size))
    raise ValueError(rung)


def settings(rung: str, quick: bool) -> TrainConfig:
    if rung == "bigram":
        cfg = TrainConfig(max_iters=3000, eval_interval=300, eval_iters=200, batch_size=32, block_size=8, learning_rate=1e-2)
    elif rung == "scaled":
        cfg = PRESETS["lecture"].train
    else:
        cfg = TrainConfig(max_iters=5000, eval_interval=500, eval_iters=200, batch_size=32, block_size=8, learning_rate=1e-3)
    if quick:
        cfg = replace(cfg, max_iters=20, eval_interval=10, eval_iters=2)
    return cfg


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="seeds per rung (default 3)")
    p.add_argument("--quick", action="store_true", help="a few iterations per rung: proves the script runs")
    p.add_argument("--full", action="store_true", help="also the scaled rung (a GPU job)")
    p.add_argument("--device", default=None)
    p.add_argument("--rungs", nargs="*", help="only these rungs (names as in the table)")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    # all cores, unless OMP_NUM_THREADS says otherwise (the test run gives each worker one)
    set_threads()
    print(describe(device))
    _, tok, train_data, val_data = data.load_dataset()
    rungs = [r for r in LECTURE if r != "scaled" or args.full]
    if args.rungs:
        rungs = [r for r in rungs if r in args.rungs]
    seeds = 1 if args.quick else args.seeds
    rows = []
    for rung in rungs:
        cfg = settings(rung, args.quick)
        trains, vals, bests, secs = [], [], [], []
        for seed in range(seeds):
            torch.manual_seed(1337 + seed)
            model = build(rung, tok.vocab_size).to(device)
            res = train(model, train_data, val_data, replace(cfg, seed=1337 + seed), progress=False)
            trains.append(res.last_train)
            vals.append(res.last_val)
            bests.append(res.best_val)
            secs.append(res.seconds)
        rows.append((rung, trains, vals, bests, secs, num_parameters(model)))
        print(f"{rung:<16} train {statistics.mean(trains):.4f} val {statistics.mean(vals):.4f} "
              f"(best {statistics.mean(bests):.4f}) {statistics.mean(secs):.0f} s/seed", flush=True)

    def spread(xs):
        return statistics.stdev(xs) if len(xs) > 1 else 0.0

    print()
    print("| rung | params | train | val (last) | val (best) | lecture | val - lecture | s/seed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for rung, trains, vals, bests, secs, n_params in rows:
        mv = statistics.mean(vals)
        print(f"| {rung} | {n_params:,} | {statistics.mean(trains):.4f} ± {spread(trains):.4f} | "
              f"{mv:.4f} ± {spread(vals):.4f} | {statistics.mean(bests):.4f} | {LECTURE[rung]:.2f} | "
              f"{mv - LECTURE[rung]:+.3f} | {statistics.mean(secs):.0f} |")
    print(f"\n{seeds} seed(s) per rung; ± is the standard deviation over seeds; evaluation: "
          f"{settings(rungs[0], args.quick).eval_iters} batches per split.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
