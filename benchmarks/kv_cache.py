"""Generation speed with and without the KV cache (chapter 13), in one run, identical tokens asserted.

For each model and each length ``n`` it writes ``n`` tokens from a one-token prompt with the same seed in two ways:
(a) :func:`lecture_utils.model.generate`, the lecture's loop, which runs the whole (cropped) context through the
model for every token, and (b) :func:`lecture_utils.generation.generate_with_cache`, which runs the prompt once and
then one token per step. It checks that both wrote the same tokens.

Timing on a shared machine: after one warm-up of each, ``--rounds`` rounds each time (a) and (b) once, back to back
(alternating which goes first), so that a burst of load from elsewhere hits both; the table gives the medians over
the rounds of the wall-clock tokens per second and of the per-round ratio b/a. It also gives the ratio of the
process's CPU time (``time.process_time``): with ``--threads 1`` that is the one core's work, which time spent
waiting for the CPU does not inflate - the figure an idle core would show, up to the memory traffic of the other
jobs.

Models: the shipped checkpoint (4 layers, n_embd 128, block_size 128, trained) and the lecture's final size
(6 layers, 6 heads, n_embd 384, block_size 256, 10.8 M parameters; random weights - the cost per token does not
depend on the values). Lengths past ``block_size`` show the window: there the cache is rebuilt from the last
``block_size`` tokens at every step (learned absolute positions), so those steps cost what the lecture's loop costs.

    python benchmarks/kv_cache.py --device cpu --threads 1           # both models, lengths up to and past block_size
    python benchmarks/kv_cache.py --models lecture --lengths 256 --rounds 7   # the issue's figure, more rounds
    python benchmarks/kv_cache.py --models lecture --lengths 256 --row-major  # without weights_by_column
    python benchmarks/kv_cache.py --quick                           # short lengths, one round, to prove it runs
    python benchmarks/kv_cache.py --device cuda                     # the same on a GPU
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from lecture_utils import generation
from lecture_utils.checkpoints import load_shipped
from lecture_utils.device import describe, pick_device, set_threads
from lecture_utils.generation import generate_with_cache
from lecture_utils.model import GPT, GPTConfig, generate

LENGTHS = {"shipped": [32, 64, 128, 192], "lecture": [32, 64, 128, 256, 320]}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_once(fn, model, n: int, device: torch.device) -> tuple[float, float, torch.Tensor]:
    """Wall-clock and CPU seconds of one run writing ``n`` tokens from token 0 with seed 1337; the tokens."""
    idx = torch.zeros((1, 1), dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(1337)
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(model, idx, n, generator=generator)
    _sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def compare(model, n: int, device: torch.device, rounds: int) -> dict:
    """Interleaved rounds of the plain and the cached generate (after one warm-up each): the medians, and whether
    every run wrote the same tokens."""
    _, _, plain = timed_once(generate, model, n, device)
    _, _, cached = timed_once(generate_with_cache, model, n, device)
    same = torch.equal(plain, cached)
    runs = {"plain": [], "cached": []}
    for r in range(rounds):
        order = [("plain", generate), ("cached", generate_with_cache)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            wall, cpu, out = timed_once(fn, model, n, device)
            same = same and torch.equal(out, plain)
            runs[name].append((wall, cpu))
    plain_wall, plain_cpu = zip(*runs["plain"])
    cached_wall, cached_cpu = zip(*runs["cached"])
    return {
        "plain_tok_s": n / statistics.median(plain_wall),
        "cached_tok_s": n / statistics.median(cached_wall),
        "wall_ratio": statistics.median(p / c for p, c in zip(plain_wall, cached_wall)),
        "wall_ratio_range": (min(p / c for p, c in zip(plain_wall, cached_wall)),
                             max(p / c for p, c in zip(plain_wall, cached_wall))),
        "cpu_ratio": statistics.median(p / c for p, c in zip(plain_cpu, cached_cpu)),
        "same": same,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the course's choice)")
    parser.add_argument("--quick", action="store_true", help="short lengths, one round: to prove it runs")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds per measurement, each timing both loops once (median; default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.add_argument("--models", default="shipped,lecture", help="comma-separated: shipped, lecture")
    parser.add_argument("--lengths", default=None,
                        help="comma-separated token counts for every model (default: per model, up to and past "
                             "its block_size)")
    parser.add_argument("--row-major", action="store_true",
                        help="the cached generate without its column-major weights (generation.weights_by_column), "
                             "to measure what that layout gives")
    args = parser.parse_args(argv)
    if args.row_major:
        generation.weights_by_column = contextlib.nullcontext
    device = pick_device(args.device)
    if args.threads:
        set_threads(args.threads)
    rounds = 1 if args.quick else args.rounds
    print(describe(device))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), median of {rounds} interleaved round(s) "
          f"after a warm-up")

    models = {}
    for name in args.models.split(","):
        if name == "shipped":
            models["shipped (4x128, block 128)"] = ("shipped", load_shipped(device=device)[0])
        elif name == "lecture":
            torch.manual_seed(0)
            models["lecture (6x384, block 256)"] = ("lecture", GPT(GPTConfig(dropout=0.0)).to(device).eval())
        else:
            parser.error(f"unknown model {name!r}: shipped or lecture")

    print("\n| model | tokens | block_size | without cache (tok/s) | with cache (tok/s) | ratio, wall (range) "
          "| ratio, CPU time | same tokens |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, (key, model) in models.items():
        lengths = [8, 16] if args.quick else LENGTHS[key]
        if args.lengths:
            lengths = [int(n) for n in args.lengths.split(",")]
        for n in lengths:
            r = compare(model, n, device, rounds)
            assert r["same"], f"{label}, {n} tokens: the cached generate wrote different tokens"
            low, high = r["wall_ratio_range"]
            print(f"| {label} | {n} | {model.block_size} | {r['plain_tok_s']:,.0f} | {r['cached_tok_s']:,.0f} | "
                  f"{r['wall_ratio']:.1f}x ({low:.1f}-{high:.1f}) | {r['cpu_ratio']:.1f}x | yes |", flush=True)


if __name__ == "__main__":
    main()
