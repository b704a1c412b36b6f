"""What n-digit addition costs (chapter 10): steps and CPU time until a small GPT answers a target
fraction of held-out problems exactly right.

    python benchmarks/addition.py                       # n = 2 and 3, up to 6000 steps each
    python benchmarks/addition.py --digits 2 3 4 --max-steps 20000
    python benchmarks/addition.py --quick               # a few steps, to prove it runs
"""

from __future__ import annotations

import argparse
import time

import torch

from lecture_utils import addition
from lecture_utils.device import describe, pick_device, set_threads
from lecture_utils.model import GPT, GPTConfig, num_parameters


def run(n_digits, max_steps, target, eval_every, device, n_embd=128, n_layer=2, n_head=4, batch_size=64, lr=1e-3,
        seed=1337):
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=addition.TOKENIZER.vocab_size, block_size=addition.seq_len(n_digits) - 1,
                    n_embd=n_embd, n_head=n_head, n_layer=n_layer, dropout=0.0)
    model = GPT(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    held_out = addition.sample_problems(1000, n_digits, torch.Generator().manual_seed(seed + 1), held_out=True)
    start, acc, step = time.perf_counter(), 0.0, 0
    for step in range(1, max_steps + 1):
        x, y = addition.make_batch(batch_size, n_digits, g, device=device)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % eval_every == 0:
            acc = addition.accuracy(model, held_out, n_digits)
            print(f"  n={n_digits} step {step:>6}: loss {loss.item():.4f}, held-out accuracy {acc:.1%} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            if acc >= target:
                break
    return step, acc, time.perf_counter() - start, num_parameters(model)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--digits", type=int, nargs="+", default=[2, 3])
    p.add_argument("--max-steps", type=int, default=6000)
    p.add_argument("--target", type=float, default=0.99, help="held-out accuracy to reach (default 0.99)")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.digits, args.max_steps, args.eval_every = [2], 10, 5
    device = pick_device(args.device)
    # all cores, unless OMP_NUM_THREADS says otherwise (the test run gives each worker one)
    set_threads()
    print(describe(device))
    rows = [(n, *run(n, args.max_steps, args.target, args.eval_every, device)) for n in args.digits]
    print("\n| digits | params | steps | held-out accuracy | seconds |\n|---:|---:|---:|---:|---:|")
    for n, steps, acc, secs, params in rows:
        print(f"| {n} | {params:,} | {steps} | {acc:.1%} | {secs:.0f} |")
    print(f"(batch 64, AdamW lr 1e-3, 2 layers x 4 heads x 128; stops at {args.target:.0%} or {args.max_steps} steps)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
