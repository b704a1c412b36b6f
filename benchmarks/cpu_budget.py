"""The best validation loss reachable in a fixed wall-clock budget of CPU training.

Two configurations, each given the same budget (default 600 s, evaluation included; the cosine
learning-rate decay follows the elapsed fraction of the budget):

- "baseline": the well-known small CPU configuration - 4 layers, 4 heads, n_embd 128, block 64,
  batch 12, lr 1e-3 with warmup and cosine decay over the run, beta2 0.99, dropout 0;
- "course": the package's ``cpu`` preset (what chapter 08 trains on a CPU).

Prints, for each, the iterations done, the best and last validation loss, and the difference.

    python benchmarks/cpu_budget.py                 # 2 x 10 minutes
    python benchmarks/cpu_budget.py --budget 120    # 2 x 2 minutes
    python benchmarks/cpu_budget.py --quick         # 2 x a few seconds, to prove it runs
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from lecture_utils import data
from lecture_utils.device import describe, pick_device, set_threads
from lecture_utils.model import GPT, GPTConfig
from lecture_utils.train import PRESETS, TrainConfig, train

BASELINE = (
    GPTConfig(block_size=64, n_embd=128, n_head=4, n_layer=4, dropout=0.0),
    TrainConfig(max_iters=10**9, eval_interval=500, eval_iters=100, batch_size=12, block_size=64, learning_rate=1e-3,
                beta2=0.99, warmup_iters=100, lr_decay=True, min_lr=1e-4),
)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=600.0, help="seconds per configuration (default 600)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="a few seconds each: proves the script runs")
    p.add_argument("--only", choices=["baseline", "course"], help="run one configuration")
    args = p.parse_args(argv)
    budget = 4.0 if args.quick else args.budget
    device = pick_device(args.device)
    set_threads()
    print(describe(device))
    _, tok, tr, va = data.load_dataset()
    course = PRESETS["cpu"]
    runs = {"baseline": BASELINE, "course": (course.model, replace(course.train, max_iters=10**9))}
    results = {}
    for name, (mcfg, tcfg) in runs.items():
        if args.only and name != args.only:
            continue
        tcfg = replace(tcfg, time_budget=budget)
        if args.quick:
            tcfg = replace(tcfg, eval_interval=20, eval_iters=2, warmup_iters=5)
        torch.manual_seed(1337)
        model = GPT(replace(mcfg, vocab_size=tok.vocab_size)).to(device)
        res = train(model, tr, va, tcfg, progress=False)
        results[name] = res
        n = sum(p_.numel() for p_ in model.parameters())
        print(f"{name:<9} {n / 1e6:.2f} M params, {res.iters_done} iters in {res.seconds:.0f} s: "
              f"best val {res.best_val:.4f} (iter {res.best_iter}), last val {res.last_val:.4f}", flush=True)
        print(f"          model {mcfg}\n          train {tcfg}", flush=True)
    if len(results) == 2:
        d = results["course"].best_val - results["baseline"].best_val
        print(f"\nbudget {budget:.0f} s: best val course {results['course'].best_val:.4f} vs baseline "
              f"{results['baseline'].best_val:.4f} (difference {d:+.4f}); the lecture's GPU result is 1.48")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
