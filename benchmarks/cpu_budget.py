"""The best validation loss reachable in a fixed wall-clock budget of CPU training.

Configurations, each given the same budget (default 600 s, evaluation included; the cosine
learning-rate decay follows the elapsed fraction of the budget):

- "baseline": the well-known small CPU configuration - 4 layers, 4 heads, n_embd 128, block 64,
  batch 12, lr 1e-3 with warmup and cosine decay over the run, beta2 0.99, dropout 0;
- candidates (CANDIDATES below): changes tried against it. The package's ``cpu-best`` preset is the best
  configuration measured so far (benchmarks/RESULTS.md says by how much); ``cpu`` is the baseline.

Prints, for each, the iterations done, the best and last validation loss (the training loop's
estimates, on random batches) and the final model's loss on the whole validation split (exact; its ~2 s
are taken out of the training time, so the budget covers everything), and the difference from the baseline.

    python benchmarks/cpu_budget.py                          # every configuration, 10 minutes each
    python benchmarks/cpu_budget.py --configs baseline lr2e-3-batch16 --budget 120
    python benchmarks/cpu_budget.py --quick                  # a second of training each, to prove it runs
    # a quick screen of a variation, on one core (not the benchmark: 2 cores, 600 s):
    taskset -c 0 python benchmarks/cpu_budget.py --threads 1 --budget 300 --configs swiglu-rope-wd0.1 --set n_layer=6
"""

from __future__ import annotations

import argparse
import time
from dataclasses import fields, replace

import torch

from lecture_utils import data
from lecture_utils.config import PRESETS, TrainConfig
from lecture_utils.device import describe, pick_device, set_threads
from lecture_utils.model import GPTConfig, num_parameters
from lecture_utils.modern import build_gpt
from lecture_utils.train import train, whole_split_loss

BASELINE = (PRESETS["cpu"].model, PRESETS["cpu"].train)  # the well-known configuration is the package's cpu preset
CANDIDATES = {
    "lr2e-3-batch16": (BASELINE[0], replace(BASELINE[1], learning_rate=2e-3, batch_size=16)),
    # chapter 12's ablation (3000 steps, 2 seeds): RoPE -0.047 and SwiGLU -0.028 helped, tying and GELU hurt,
    # RMSNorm changed nothing but time; so: the two that helped, at the baseline's shape and schedule
    "swiglu-rope": (replace(BASELINE[0], activation="swiglu", position="rope"), BASELINE[1]),
    # swiglu-rope's val loss rose from 1.505 (step 9500) to 1.545 at the end: it overfits; add dropout
    # torch.compile on this CPU: no faster per step at this size (python benchmarks/throughput.py --configs cpu
    # --compile: 51.3 ms compiled vs 49.3 ms eager), tried here anyway with its compilation inside the budget
    "swiglu-rope-compile": (replace(BASELINE[0], activation="swiglu", position="rope"),
                            replace(BASELINE[1], compile=True)),
    "swiglu-rope-dropout0.1": (replace(BASELINE[0], activation="swiglu", position="rope", dropout=0.1), BASELINE[1]),
    # third session: AdamW's weight decay 0.01 -> 0.1, against swiglu-rope's overfitting. The best configuration
    # measured: its final model scores 1.5117 on the whole val split, the baseline's 1.5413 (same day)
    "swiglu-rope-wd0.1": (replace(BASELINE[0], activation="swiglu", position="rope"),
                          replace(BASELINE[1], weight_decay=0.1)),
    # Muon (lecture_utils.optimizers.Muon) for the blocks' weight matrices, AdamW for the rest. Its orthogonalisation
    # costs the same per step whatever the batch, so batch 24 pays for it; muon_lr 0.01 and batch 24 won the
    # one-core screens (300 s each). Evaluations every 1000 steps on 50 batches of 24 (the baseline's 76,800
    # tokens per estimate), so that less of the budget goes to evaluating. Measured: 1.5117, no gain over AdamW
    "swiglu-rope-muon-b24": (replace(BASELINE[0], activation="swiglu", position="rope"),
                             replace(BASELINE[1], optimizer="muon", muon_lr=0.01, batch_size=24, weight_decay=0.1,
                                     eval_interval=1000, eval_iters=50)),
    # fourth session: weight decay on the weight matrices and embeddings only (decay_all=False), which lets it be
    # stronger (0.3; 0.6 was worse in a one-core screen), and 5 evaluations instead of 20 (each ~2.5 s). The
    # package's cpu-best preset
    "cpu-best": (PRESETS["cpu-best"].model, PRESETS["cpu-best"].train),
}


_MODEL_FIELDS = {f.name for f in fields(GPTConfig)}
_TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}  # --set block_size=N: the model's context length


def _parse_overrides(parser: argparse.ArgumentParser, items: list[str]) -> dict:
    """``["n_layer=6", "cpu_bf16=true"]`` -> ``{"n_layer": 6, "cpu_bf16": True}``, typed by the defaults of
    GPTConfig and TrainConfig; an unknown field or a bad value is an argparse error naming it."""
    out = {}
    defaults = {**{f.name: getattr(TrainConfig(), f.name) for f in fields(TrainConfig)},
                **{f.name: getattr(GPTConfig(), f.name) for f in fields(GPTConfig)}}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in defaults:
            parser.error(f"--set {item!r}: expected FIELD=VALUE with FIELD one of GPTConfig's or TrainConfig's "
                         f"fields ({', '.join(sorted(defaults))})")
        kind = float if defaults[key] is None else type(defaults[key])  # None defaults: attn_dropout
        try:
            if kind is bool:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                out[key] = value.lower() in ("true", "1")
            else:
                out[key] = kind(value)
        except ValueError:
            parser.error(f"--set {item!r}: {key} must be of type {kind.__name__}, got {value!r}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=600.0, help="seconds per configuration (default 600)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="a second of training each: proves the script runs")
    p.add_argument("--configs", nargs="+", default=["baseline", *CANDIDATES], choices=["baseline", *CANDIDATES],
                   help="which configurations to run (default: all)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: OMP_NUM_THREADS if set, else all)")
    p.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                   help="override GPTConfig or TrainConfig fields of every configuration run, e.g. n_layer=6 "
                        "batch_size=24 optimizer=muon")
    args = p.parse_args(argv)
    budget = 1.0 if args.quick else args.budget
    device = pick_device(args.device)
    # all cores, unless OMP_NUM_THREADS says otherwise (the test run gives each worker one)
    set_threads(args.threads)
    overrides = _parse_overrides(p, args.set)
    print(describe(device))
    _, tok, tr, va = data.load_dataset()
    if args.quick:  # the whole-split evaluations run twice per configuration: a slice of it proves the same code
        va = va[:4096]
    runs = {"baseline": BASELINE, **CANDIDATES}
    results = {}
    for name in args.configs:
        mcfg, tcfg = runs[name]
        mcfg = replace(mcfg, **{k: v for k, v in overrides.items() if k in _MODEL_FIELDS})
        tcfg = replace(tcfg, **{k: v for k, v in overrides.items() if k in _TRAIN_FIELDS})
        tcfg = replace(tcfg, time_budget=budget)
        if args.quick:
            tcfg = replace(tcfg, eval_interval=20, eval_iters=2, warmup_iters=5, compile=False)  # no 40 s compile
        torch.manual_seed(tcfg.seed)  # 1337 unless --set seed=N: the initial weights and the batches
        model = build_gpt(replace(mcfg, vocab_size=tok.vocab_size)).to(device)
        # the final whole-split evaluation is part of the budget: time it once on the untrained model (the same
        # shapes, so about the same cost; 1.5x for a margin: it took 2-3 s before and after a 600-s run) and give
        # training what is left
        t0 = time.perf_counter()
        whole_split_loss(model, va, model.block_size)
        whole_seconds = time.perf_counter() - t0
        tcfg = replace(tcfg, time_budget=max(1.0, budget - 1.5 * whole_seconds))
        res = train(model, tr, va, tcfg, progress=False)
        t0 = time.perf_counter()
        whole = whole_split_loss(model, va, model.block_size)
        whole_seconds = time.perf_counter() - t0
        results[name] = (res, whole)
        n = num_parameters(model)
        print(f"{name:<16} {n / 1e6:.2f} M params, {res.iters_done} iters in {res.seconds:.0f} s: "
              f"best val {res.best_val:.4f} (iter {res.best_iter}), last val {res.last_val:.4f}; "
              f"final model on the whole val split {whole:.4f} ({whole_seconds:.1f} s; "
              f"{res.seconds + whole_seconds:.0f} s in all)", flush=True)
        print(f"          model {mcfg}\n          train {tcfg}", flush=True)
    print(f"\nbudget {budget:.0f} s per configuration{' with ' + ' '.join(args.set) if args.set else ''}; "
          "the lecture's GPU result is 1.48")
    base = results.get("baseline")
    for name, (res, whole) in results.items():
        diff = (f" ({res.best_val - base[0].best_val:+.4f}; whole split {whole - base[1]:+.4f} vs baseline)"
                if base is not None and name != "baseline" else "")
        print(f"  {name:<16} best val {res.best_val:.4f}, whole val split {whole:.4f}{diff}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
