"""Generation speed with and without the KV cache (chapter 13), in one run, identical tokens asserted.

For each model and each length ``n`` it writes ``n`` tokens from a one-token prompt twice with the same seed:
(a) :func:`lecture_utils.model.generate`, the lecture's loop, which runs the whole (cropped) context through the
model for every token, and (b) :func:`lecture_utils.generation.generate_with_cache`, which runs the prompt once and
then one token per step. It checks that both wrote the same tokens, and prints tokens per second (the median of
``--repeats`` timed runs after one warm-up) and the ratio b/a.

Models: the shipped checkpoint (4 layers, n_embd 128, block_size 128, trained) and the lecture's final size
(6 layers, 6 heads, n_embd 384, block_size 256, 10.8 M parameters; random weights - the cost per token does not
depend on the values). Lengths past ``block_size`` show the window: there the cache is rebuilt from the last
``block_size`` tokens at every step (learned absolute positions), so those steps cost what the lecture's loop costs.

    python benchmarks/kv_cache.py                  # both models, lengths up to and past block_size
    python benchmarks/kv_cache.py --quick          # short lengths, one repeat, to prove it runs
    python benchmarks/kv_cache.py --device cuda    # the same on a GPU
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lecture_utils.checkpoints import load_shipped
from lecture_utils.device import describe, pick_device, set_threads
from lecture_utils.generation import generate_with_cache
from lecture_utils.model import GPT, GPTConfig, generate


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, model, n: int, device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    """Median seconds of ``repeats`` runs (after one warm-up) writing ``n`` tokens from token 0; the tokens."""
    idx = torch.zeros((1, 1), dtype=torch.long, device=device)

    def run():
        return fn(model, idx, n, generator=torch.Generator(device=device).manual_seed(1337))

    out = run()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        again = run()
        _sync(device)
        times.append(time.perf_counter() - start)
        assert torch.equal(again, out), "the same seed gave different tokens on a second run"
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the course's choice)")
    parser.add_argument("--quick", action="store_true", help="short lengths, one repeat: to prove it runs")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    if args.threads:
        set_threads(args.threads)
    repeats = 1 if args.quick else args.repeats
    print(describe(device))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {repeats} run(s) after a warm-up")

    shipped, _, _ = load_shipped(device=device)
    torch.manual_seed(0)
    lecture = GPT(GPTConfig(dropout=0.0)).to(device).eval()
    models = [("shipped (4x128, block 128)", shipped, [8, 16] if args.quick else [32, 64, 128, 192]),
              ("lecture (6x384, block 256)", lecture, [8, 16] if args.quick else [32, 64, 128, 256, 320])]

    print("\n| model | tokens | block_size | without cache (tok/s) | with cache (tok/s) | ratio | same tokens |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, model, lengths in models:
        for n in lengths:
            t_plain, plain = timed(generate, model, n, device, repeats)
            t_cached, cached = timed(generate_with_cache, model, n, device, repeats)
            same = torch.equal(plain, cached)
            assert same, f"{name}, {n} tokens: the cached generate wrote different tokens"
            print(f"| {name} | {n} | {model.block_size} | {n / t_plain:,.0f} | {n / t_cached:,.0f} | "
                  f"{t_plain / t_cached:.1f}x | yes |", flush=True)


if __name__ == "__main__":
    main()
