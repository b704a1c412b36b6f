"""Record a run of the package's GPT that a chapter shows beside the learner's own work.

Two curves in the course are the same for every learner, so each is recorded here, once, and shipped as
``lecture_utils/recorded/<run>.json``; ``lecture_utils.recordings.reference_run`` returns it when the chapter's
recipe is the recorded one (and trains the model when it is not). ``tests/test_recorded_reference.py`` trains the
first steps again and compares them with each recording, so a file cannot drift from the code.

- ``reference_cpu_small`` (the default): chapter 08 trains the learner's GPT on the ``cpu-small`` recipe shortened
  to 1000 steps and draws its validation curve beside the reference GPT's (``lecture_utils.model.GPT``) on the same
  recipe and seed. About 1.5 min of one core.
- ``scratch_cpu_ch11``: chapter 11 fine-tunes the learner's copy of the pretrained model for 2000 steps and draws it
  beside the ``cpu`` preset's GPT trained from scratch on Tiny Shakespeare for the same 2000 steps (the recipe
  ``pretrain.SCRATCH``, seed 1337). About 2.5 min of one core.

    python benchmarks/record_reference.py                         # writes chapter 08's recording
    python benchmarks/record_reference.py --run scratch_cpu_ch11  # writes chapter 11's
    python benchmarks/record_reference.py --compare    # trains again, prints the largest difference, writes nothing
    python benchmarks/record_reference.py --step-times # CPU time per step: the learner's GPT against the reference

``--step-times`` builds the learner's GPT from the solution notebooks' own exercise cells (4.1, 5.1, 6.1, 7.1, 7.2,
8.1, as chapter 08 builds it from ``my_gpt/``) and the reference GPT at the recipe's shape, and times a training step
(forward, backward, AdamW) of each in interleaved rounds, by the process's CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
FIRST_STEPS = 20  # training losses of the first steps kept, for the test to compare


def chapter_08_recipe(vocab_size: int):
    """The model and training configs of chapter 08's run of your GPT (its cell 'preset = PRESETS["cpu-small"]'):
    the cpu-small preset, 1000 steps, an evaluation every 200."""
    from lecture_utils.config import PRESETS

    preset = PRESETS["cpu-small"]
    return (replace(preset.model, vocab_size=vocab_size),
            replace(preset.train, max_iters=1000, eval_interval=200))


def chapter_11_scratch_recipe(vocab_size: int):
    """The model and training configs of chapter 11's from-scratch run (its cell 'runs["from scratch"] = ...'):
    the cpu preset's model, ``pretrain.SCRATCH`` with the chapter's evaluations (every 250 steps, 100 batches)."""
    from lecture_utils import pretrain
    from lecture_utils.config import PRESETS

    return (replace(PRESETS["cpu"].model, vocab_size=vocab_size),
            replace(pretrain.SCRATCH, eval_interval=250, eval_iters=100, warmup_iters=100))


# each recording: the recipe it trains, and what it is, in a line
RUNS = {
    "reference_cpu_small": (chapter_08_recipe,
                            "the reference GPT (lecture_utils.model.GPT) on chapter 08's recipe: cpu-small, "
                            "1000 steps"),
    "scratch_cpu_ch11": (chapter_11_scratch_recipe,
                         "the cpu preset's GPT (lecture_utils.model.GPT) trained from scratch on Tiny Shakespeare: "
                         "chapter 11's baseline, pretrain.SCRATCH, 2000 steps"),
}


def learner_gpt(model_config):
    """The learner's GPT as chapter 08 builds it, from the solutions' exercise cells 4.1-8.1 run in one namespace."""
    import math

    import nbformat
    from torch import nn
    from torch.nn import functional as F

    space = {"torch": torch, "nn": nn, "F": F, "math": math}
    for notebook, exercise in [("04_self_attention", "4.1"), ("05_multi_head", "5.1"), ("06_feed_forward", "6.1"),
                               ("07_residual_layernorm", "7.1"), ("07_residual_layernorm", "7.2"),
                               ("08_scaling_up", "8.1")]:
        cells = nbformat.read(ROOT / "solutions" / f"{notebook}.ipynb", as_version=4).cells
        exec(next(c.source for c in cells if c.cell_type == "code" and c.source.startswith(f"# Exercise {exercise}")),
             space)
    return space["GPTLanguageModel"](model_config)


def step_times(model_config, train_config, rounds: int = 5, steps: int = 20) -> None:
    """Median CPU milliseconds per training step, the learner's GPT and the reference, interleaved rounds."""
    import statistics

    from lecture_utils.model import GPT
    from lecture_utils.timing import optimizer_step, random_batches

    batches = random_batches(model_config.vocab_size, train_config.batch_size, model_config.block_size, n=4)
    steppers = {}
    for name, model in (("your GPT (list of heads, hand-written LayerNorm)", learner_gpt(model_config)),
                        ("reference GPT", GPT(model_config))):
        step = optimizer_step(model, torch.optim.AdamW(model.parameters(), lr=train_config.learning_rate), batches)
        for _ in range(3):
            step()
        steppers[name] = step
    times = {name: [] for name in steppers}
    for _ in range(rounds):
        for name, step in steppers.items():
            t0 = time.process_time()
            for _ in range(steps):
                step()
            times[name].append((time.process_time() - t0) / steps)
    medians = {name: statistics.median(v) for name, v in times.items()}
    for name, m in medians.items():
        print(f"{name:<50} {m * 1e3:6.1f} ms of CPU per step")
    mine, ref = medians.values()
    print(f"ratio {mine / ref:.2f}x ({rounds} interleaved rounds of {steps} steps, {torch.get_num_threads()} thread(s), "
          f"load {os.getloadavg()[0]:.1f})")


def _machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return f"{torch.get_num_threads()} thread(s) of a {os.cpu_count()}-CPU {model}, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", choices=sorted(RUNS), default="reference_cpu_small",
                    help="which recording (default reference_cpu_small, chapter 08's)")
    ap.add_argument("--out", type=Path, default=None, help="default lecture_utils/recorded/<run>.json")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--compare", action="store_true", help="train again and compare with --out; write nothing")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or mps; the shipped recording is the CPU's")
    ap.add_argument("--quick", action="store_true", help="10 steps, writing nothing (proves the script runs)")
    ap.add_argument("--step-times", action="store_true", help="time a step of the learner's GPT and the reference; "
                    "write nothing")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.out is None:
        args.out = ROOT / "lecture_utils" / "recorded" / f"{args.run}.json"
    from lecture_utils import data
    from lecture_utils.device import seed_everything
    from lecture_utils.model import GPT
    from lecture_utils.train import train

    _, tokenizer, train_data, val_data = data.load_dataset()
    recipe, what = RUNS[args.run]
    model_config, train_config = recipe(tokenizer.vocab_size)
    if args.step_times:
        model_config, train_config = chapter_08_recipe(tokenizer.vocab_size)
        step_times(model_config, train_config, *((2, 3) if args.quick else ()))
        return 0
    if args.quick:
        train_config = replace(train_config, max_iters=10, eval_interval=5, eval_iters=2, warmup_iters=2)
    seed = 1337
    load0 = os.getloadavg()[0]
    cpu0 = time.process_time()
    seed_everything(seed)
    result = train(GPT(model_config).to(args.device), train_data, val_data, train_config, progress=False)
    cpu = time.process_time() - cpu0
    record = {
        "name": args.run,
        "what": what,
        "command": "python benchmarks/record_reference.py"
                   + ("" if args.run == "reference_cpu_small" else f" --run {args.run}")
                   + f" --threads {args.threads}",
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d"),
        "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "cpu_seconds": round(cpu, 1),
        "seed": seed,
        "data": {"train": len(train_data), "val": len(val_data)},
        "model_config": model_config.to_dict(),
        "train_config": asdict(train_config),
        "history": [{k: h[k] for k in ("iter", "train", "val", "lr")} for h in result.history],
        "first_step_losses": result.step_losses[:FIRST_STEPS],
        "result": {"best_val": result.best_val, "best_iter": result.best_iter, "last_train": result.last_train,
                   "last_val": result.last_val, "seconds": round(result.seconds, 1), "iters_done": result.iters_done},
    }
    print(f"{result.summary()}; {cpu:.0f} s of CPU, load {load0:.1f}")
    for h in record["history"]:
        print(f"  step {h['iter']:5d}: train {h['train']:.4f}  val {h['val']:.4f}")
    if args.quick:
        return 0
    if args.compare:
        old = json.loads(args.out.read_text())
        diff = max(abs(a[k] - b[k]) for a, b in zip(old["history"], record["history"]) for k in ("train", "val"))
        print(f"largest difference from {args.out}: {diff:.4f} (recorded on {old['machine']})")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
