"""Chapter 12's ablation: what each modern feature does to the validation loss at a fixed CPU budget.

Every variant is chapter 08's CPU configuration (the package's ``cpu`` preset: 4 layers, 4 heads,
n_embd 128, block 64, batch 12, AdamW lr 1e-3, beta2 0.99, dropout 0, linear warmup over 100 steps
and cosine decay to 1e-4) with one thing changed, trained from the same seed for the same number of
steps (default 3000, about 4 minutes of one core for the baseline), the cosine decaying over them.

The budget is counted in steps, not seconds, so that the losses do not depend on what else the machine
was doing; what each change costs in time is measured separately, as the median time of a training
step (``lecture_utils.timing``), and printed as a ratio to the baseline. A variant that is 10 % slower
per step would get 10 % fewer steps in a wall-clock budget.

- ``baseline``      the ``cpu`` preset as it is (ReLU, LayerNorm, learned positions, untied, warmup+cosine)
- ``gelu``          GELU instead of ReLU in the feed-forward
- ``swiglu``        a SwiGLU feed-forward (hidden 8/3 n_embd: about the same parameter count)
- ``rmsnorm``       RMSNorm instead of LayerNorm
- ``rope``          rotary position embeddings instead of the learned position table
- ``tied``          the output layer shares the token embedding matrix
- ``constant-lr``   the schedule taken away: constant lr 1e-3 (so this row measures warmup+cosine)
- ``all``           SwiGLU + RMSNorm + RoPE + tied weights, with the schedule

Prints one line per run and then a table of best val loss (mean over seeds) and its difference from
the baseline.

    python benchmarks/ablation.py                      # every variant, 3000 steps each, 1 seed
    python benchmarks/ablation.py --iters 1000 --variants baseline rope --seeds 1337 1338
    python benchmarks/ablation.py --speed-only         # only the time per step of each variant
    python benchmarks/ablation.py --quick              # a few steps each, to prove it runs
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

import torch

from lecture_utils import data
from lecture_utils.config import PRESETS, TrainConfig
from lecture_utils.device import describe, pick_device, set_threads
from lecture_utils.model import GPTConfig
from lecture_utils.modern import build_gpt
from lecture_utils.timing import median_seconds, random_batches, training_step
from lecture_utils.train import train

BASE_MODEL: GPTConfig = PRESETS["cpu"].model
BASE_TRAIN: TrainConfig = PRESETS["cpu"].train

VARIANTS: dict[str, tuple[GPTConfig, TrainConfig]] = {
    "baseline": (BASE_MODEL, BASE_TRAIN),
    "gelu": (replace(BASE_MODEL, activation="gelu"), BASE_TRAIN),
    "swiglu": (replace(BASE_MODEL, activation="swiglu"), BASE_TRAIN),
    "rmsnorm": (replace(BASE_MODEL, norm="rmsnorm"), BASE_TRAIN),
    "rope": (replace(BASE_MODEL, position="rope"), BASE_TRAIN),
    "tied": (replace(BASE_MODEL, tie_weights=True), BASE_TRAIN),
    "constant-lr": (BASE_MODEL, replace(BASE_TRAIN, warmup_iters=0, lr_decay=False)),
    "all": (replace(BASE_MODEL, activation="swiglu", norm="rmsnorm", position="rope", tie_weights=True), BASE_TRAIN),
}


def run(name: str, iters: int, seed: int, device: torch.device, splits, quick: bool = False):
    mcfg, tcfg = VARIANTS[name]
    _, tok, tr, va = splits
    tcfg = replace(tcfg, time_budget=0.0, max_iters=iters, seed=seed)
    if quick:
        tcfg = replace(tcfg, eval_interval=2, eval_iters=1, warmup_iters=min(tcfg.warmup_iters, 2))
    torch.manual_seed(seed)
    model = build_gpt(replace(mcfg, vocab_size=tok.vocab_size)).to(device)
    res = train(model, tr, va, tcfg, progress=False)
    return res, model.num_parameters()


def step_seconds(names, device: torch.device, vocab_size: int, reps: int, warmup: int = 3) -> dict[str, float]:
    """Median seconds of one training step of each variant (batch 12 x block 64, random tokens), the
    variants timed in turn, one step each per round, so that a change in the machine's load affects all
    of them alike."""
    steps = {}
    for name in names:
        mcfg, tcfg = VARIANTS[name]
        torch.manual_seed(0)
        model = build_gpt(replace(mcfg, vocab_size=vocab_size)).to(device)
        steps[name] = training_step(model, random_batches(vocab_size, tcfg.batch_size, mcfg.block_size, 4, device),
                                    device, fast_cpu_paths=True)  # as train() runs it
    times: dict[str, list[float]] = {name: [] for name in names}
    for step in steps.values():  # warm-up
        median_seconds(step, warmup=warmup, reps=1, device=device)
    for _ in range(reps):
        for name, step in steps.items():
            times[name].append(median_seconds(step, warmup=0, reps=1, device=device))
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=3000, help="training steps per run (default 3000)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[1337])
    p.add_argument("--device", default="cpu")
    p.add_argument("--speed-only", action="store_true", help="only time a training step of each variant (a minute)")
    p.add_argument("--quick", action="store_true", help="4 steps per variant: proves the script runs")
    args = p.parse_args(argv)
    iters = 4 if args.quick else args.iters
    device = pick_device(args.device)
    # all cores, unless OMP_NUM_THREADS says otherwise (the test run gives each worker one)
    threads = set_threads()
    print(f"{describe(device)}; {threads} thread(s); {iters} steps per run")
    splits = data.load_dataset()
    vocab_size = splits[1].vocab_size
    speed = step_seconds(args.variants, device, vocab_size, 1 if args.quick else 40, warmup=1 if args.quick else 3)
    for name, sec in speed.items():
        print(f"{name:<12} {sec * 1e3:6.1f} ms per training step ({sec / speed[args.variants[0]]:.2f}x {args.variants[0]})",
              flush=True)
    if args.speed_only:
        return 0
    table: dict[str, list] = {}
    for name in args.variants:
        for seed in args.seeds:
            res, n_params = run(name, iters, seed, device, splits, args.quick)
            table.setdefault(name, []).append((res, n_params))
            print(f"{name:<12} seed {seed}: {n_params:,} params, {res.iters_done} iters in {res.seconds:.0f} s, "
                  f"best val {res.best_val:.4f} (iter {res.best_iter}), last val {res.last_val:.4f}", flush=True)

    def mean_best(name):
        return statistics.fmean(r.best_val for r, _ in table[name])

    base = mean_best("baseline") if "baseline" in table else None
    base_speed = speed.get("baseline")
    print(f"\n{iters} steps per run, seeds {args.seeds}")
    print("| variant | params | time per step (vs baseline) | best val | vs baseline |\n|---|---:|---:|---:|---:|")
    for name in table:
        runs = table[name]
        vals = [r.best_val for r, _ in runs]
        spread = f" ± {statistics.stdev(vals):.4f}" if len(vals) > 1 else ""
        diff = f"{mean_best(name) - base:+.4f}" if base is not None and name != "baseline" else ""
        rel = f" ({speed[name] / base_speed:.2f}×)" if base_speed else ""
        print(f"| {name} | {runs[0][1]:,} | {speed[name] * 1e3:.1f} ms{rel} | {mean_best(name):.4f}{spread} | {diff} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
