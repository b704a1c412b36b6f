"""Chapter 14: the exercises' BPE loops against the package's incremental ones, on the whole of Tiny Shakespeare.

``bpe.train_bpe_simple`` and ``bpe.encode_simple`` (exercises 14.3 and 14.4) count every pair of the whole text
again after each merge; ``bpe.train_bpe`` and ``bpe.encode`` update only the pairs next to each merged occurrence.
This script trains both trainers on the training split (the first 90 %) to the same vocabulary, encodes the whole
corpus with both encoders, checks that the merges and the ids are identical, and prints the process CPU time of
each (one thread: pure Python), so that other jobs on a shared machine matter less than in wall-clock time::

    python benchmarks/bpe_speed.py --vocab 512
    python benchmarks/bpe_speed.py --quick      # 20,000 characters: proves it runs
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from lecture_utils import bpe, data


def cpu_timed(fn, *args):
    """``fn(*args)`` and the process CPU seconds it took."""
    c0 = time.process_time()
    result = fn(*args)
    return result, time.process_time() - c0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=512, help="vocabulary size (256 bytes + merges)")
    p.add_argument("--quick", action="store_true", help="the first 20,000 characters and 64 merges")
    p.add_argument("--device", default="cpu", help="only cpu (tokenizers run on the CPU)")
    args = p.parse_args(argv)
    text = data.load_text()
    if args.quick:
        text, args.vocab = text[:20_000], 256 + 64
    train_text = text[: int(0.9 * len(text))]
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; trained on "
          f"{len(train_text):,} characters to {args.vocab} tokens, encoding all {len(text):,}; load average "
          f"{os.getloadavg()[0]:.1f} at the start; process CPU seconds", flush=True)
    simple, t_simple = cpu_timed(bpe.train_bpe_simple, train_text, args.vocab)
    print(f"train_bpe_simple: {t_simple:8.2f} s", flush=True)
    fast, t_fast = cpu_timed(bpe.train_bpe, train_text, args.vocab)
    print(f"train_bpe:        {t_fast:8.2f} s   ratio {t_simple / t_fast:.1f}x   same merges in the same order: "
          f"{list(simple.items()) == list(fast.items())}", flush=True)
    ids_simple, e_simple = cpu_timed(bpe.encode_simple, text, simple)
    print(f"encode_simple:    {e_simple:8.2f} s", flush=True)
    ids_fast, e_fast = cpu_timed(bpe.encode, text, simple)
    print(f"encode:           {e_fast:8.2f} s   ratio {e_simple / e_fast:.1f}x   same ids: {ids_simple == ids_fast} "
          f"({len(ids_fast):,} tokens, {len(text) / len(ids_fast):.3f} characters per token)", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if list(simple.items()) == list(fast.items()) and ids_simple == ids_fast else 1


if __name__ == "__main__":
    sys.exit(main())
