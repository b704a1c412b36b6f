"""Chapter 11: does pretraining on a larger corpus help a small GPT on Tiny Shakespeare?

1. Pretrain chapter 08's CPU model (the ``cpu`` preset's shape: 4 layers, 4 heads, n_embd 128, block 64)
   on the King James Bible (``lecture_utils.pretrain``; 4.1 M characters, mapped onto Tiny Shakespeare's
   65 characters) for ``PRETRAIN.max_iters`` steps (6000), lr 1e-3 with warmup and cosine decay.
2. Fine-tune a copy on Tiny Shakespeare for ``FINETUNE.max_iters`` steps (2000) at a lower learning rate
   (3e-4, cosine to 3e-5).
3. Train the same model from scratch on Tiny Shakespeare for the same 2000 steps, with the CPU preset's
   lr 1e-3 (the best the course found for training from scratch).
4. ``--longer``: also train from scratch for pretraining + fine-tuning steps (8000): the same total compute
   spent on Shakespeare alone.

Budgets are counted in steps (deterministic whatever else the machine does); the seconds are printed.
Prints the Shakespeare validation loss of each run at each evaluation, and a summary table.

    python benchmarks/pretrain.py --longer --save lecture_utils/checkpoints/kjv-cpu.pt
    python benchmarks/pretrain.py --source my_book.txt     # pretrain on a UTF-8 file of your own
    python benchmarks/pretrain.py --quick                  # a few steps each, to prove it runs
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from lecture_utils import data, pretrain
from lecture_utils.checkpoints import save_checkpoint
from lecture_utils.config import PRESETS
from lecture_utils.device import describe, pick_device, set_threads
from lecture_utils.model import GPT
from lecture_utils.train import estimate_loss, train


def _run(label, model, tr, va, cfg):
    res = train(model, tr, va, cfg, progress=False)
    curve = "  ".join(f"{h['iter']}:{h['val']:.3f}" for h in res.history)
    print(f"{label:<28} {res.summary()}\n    val by step: {curve}", flush=True)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="kjv", help="'kjv' (default) or the path of a UTF-8 text file")
    p.add_argument("--device", default="cpu")
    p.add_argument("--longer", action="store_true", help="also train from scratch for pretrain + fine-tune steps")
    p.add_argument("--save", metavar="PATH", help="write the pretrained model (checkpoint + .json record) here")
    p.add_argument("--quick", action="store_true", help="a few steps each: proves the script runs")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    # all cores, unless OMP_NUM_THREADS says otherwise (the test run gives each worker one)
    threads = set_threads()
    print(f"{describe(device)}; {threads} thread(s)")
    _, tok, tr, va = data.load_dataset()
    pre_tr, pre_va = pretrain.pretraining_splits(tok, args.source)
    print(f"pretraining corpus {args.source!r}: {len(pre_tr) + len(pre_va):,} characters in the 65-character vocabulary")
    cfgs = {"pretrain": pretrain.PRETRAIN, "finetune": pretrain.FINETUNE, "scratch": pretrain.SCRATCH}
    if args.quick:
        cfgs = {k: replace(c, max_iters=6, eval_interval=3, eval_iters=2, warmup_iters=2) for k, c in cfgs.items()}
    model_cfg = replace(PRESETS["cpu"].model, vocab_size=tok.vocab_size)

    torch.manual_seed(1337)
    pretrained = GPT(model_cfg).to(device)
    start = time.perf_counter()
    res_pre = _run("pretrain (KJV val)", pretrained, pre_tr, pre_va, cfgs["pretrain"])
    pre_seconds = time.perf_counter() - start
    zero_shot = estimate_loss(pretrained, {"val": va}, cfgs["finetune"].eval_iters, model_cfg.block_size,
                              cfgs["finetune"].batch_size, torch.Generator().manual_seed(0))["val"]
    print(f"pretrained model on Shakespeare's val split, before fine-tuning: {zero_shot:.4f}", flush=True)
    if args.save:
        path = save_checkpoint(args.save, pretrained, tokenizer=tok, train_config=cfgs["pretrain"])
        record = {"name": Path(args.save).stem, "command": " ".join(["python benchmarks/pretrain.py", *(sys.argv[1:] if argv is None else argv)]),
                  "corpus": str(args.source), "model_config": model_cfg.to_dict(),
                  "train_config": cfgs["pretrain"].__dict__, "iters": res_pre.iters_done,
                  "kjv_val": round(res_pre.last_val, 4), "shakespeare_val_before_finetuning": round(zero_shot, 4),
                  "wall_seconds": round(pre_seconds), "machine": f"{platform.machine()} {platform.processor() or ''}, "
                  f"{threads} thread(s), torch {torch.__version__}".replace(" ,", ","), "date": time.strftime("%Y-%m-%d")}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(path.with_suffix(".json"))
        print(f"saved {path} and its record", flush=True)

    runs = {}
    runs["fine-tuned"] = _run("fine-tune (Shakespeare val)", pretrain.copy_for_finetuning(pretrained), tr, va,
                              cfgs["finetune"])
    torch.manual_seed(1337)
    runs["from scratch"] = _run("scratch (Shakespeare val)", GPT(model_cfg).to(device), tr, va, cfgs["scratch"])
    if args.longer:
        longer = replace(cfgs["scratch"], max_iters=cfgs["pretrain"].max_iters + cfgs["scratch"].max_iters)
        torch.manual_seed(1337)
        runs["from scratch, longer"] = _run(f"scratch x{longer.max_iters} steps", GPT(model_cfg).to(device), tr, va,
                                            longer)

    print("\n| run | Shakespeare steps | best val | seconds |\n|---|---:|---:|---:|")
    print(f"| pretrained only ({res_pre.iters_done} steps of {args.source}) | 0 | {zero_shot:.4f} | {pre_seconds:.0f} |")
    for name, res in runs.items():
        print(f"| {name} | {res.iters_done} | {res.best_val:.4f} | {res.seconds:.0f} |")
    diff = runs["fine-tuned"].best_val - runs["from scratch"].best_val
    print(f"\nfine-tuned - from scratch, same Shakespeare steps: {diff:+.4f}")
    if "from scratch, longer" in runs:
        print(f"fine-tuned - from scratch with the same total steps: "
              f"{runs['fine-tuned'].best_val - runs['from scratch, longer'].best_val:+.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
