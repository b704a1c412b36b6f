"""Chapter 14: a character model against a BPE model, for the same CPU time, in bits per character.

Both models are chapter 08's CPU model (the ``cpu`` preset's shape: 4 layers, 4 heads, n_embd 128, block 64,
batch 12), trained with AdamW (lr 1e-3, 100 warmup steps, then constant) on Tiny Shakespeare's training split -
one on its 65 characters, the other on the tokens of a byte-level BPE tokenizer (``lecture_utils.bpe``) trained on
the first ``--bpe-chars`` characters of that split. Each run stops when the process has used ``--seconds`` of CPU
time (``time.process_time``, one thread), so a busy machine slows both alike.

Both are measured on the same validation characters (the first ``--val-chars`` of the validation split): the
summed loss over every token of that text (``bpe.total_nats``), divided by the characters those tokens cover and
by ln 2. For the character model that is its mean loss / ln 2 (the script asserts it).

    python benchmarks/bpe_vs_char.py --seconds 120 --vocab 512 --seeds 1337
    python benchmarks/bpe_vs_char.py --quick            # a few seconds each, to prove it runs
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from dataclasses import replace

import torch

from lecture_utils import bpe, data
from lecture_utils.config import PRESETS
from lecture_utils.data import CharTokenizer
from lecture_utils.device import set_threads
from lecture_utils.model import GPT


def train_for_cpu_seconds(model, train_ids, seconds, *, block_size, batch_size, lr, warmup, seed):
    """AdamW steps on random windows of ``train_ids`` until the process has used ``seconds`` of CPU time."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    start, steps = time.process_time(), 0
    while time.process_time() - start < seconds:
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (steps + 1) / warmup)
        ix = torch.randint(len(train_ids) - block_size - 1, (batch_size,), generator=g)
        x = torch.stack([train_ids[i:i + block_size] for i in ix])
        y = torch.stack([train_ids[i + 1:i + block_size + 1] for i in ix])
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
    return steps, loss.item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=120.0, help="CPU seconds of training per model")
    p.add_argument("--vocab", type=int, nargs="+", default=[512], help="BPE vocabulary sizes (256 + merges)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1337])
    p.add_argument("--bpe-chars", type=int, default=200_000, help="characters of the train split the BPE learns on")
    p.add_argument("--val-chars", type=int, default=50_000, help="validation characters measured")
    p.add_argument("--quick", action="store_true", help="tiny run (to prove the script works)")
    p.add_argument("--device", default="cpu", help="only cpu: the budget is CPU time")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.vocab, args.bpe_chars, args.val_chars = 2.0, [300], 5_000, 2_000
    set_threads(1)
    text = data.load_text()
    split = int(0.9 * len(text))
    train_text, val_text = text[:split], text[split:split + args.val_chars]
    if args.quick:
        train_text = train_text[:50_000]
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread; "
          f"{args.seconds:g} CPU s per model; {len(val_text):,} validation characters")

    chars = CharTokenizer.from_text(text)
    tokenizers = {"characters": (chars.encode, len(chars.chars), chars.decode)}
    for v in args.vocab:
        t0 = time.process_time()
        merges = bpe.train_bpe(train_text[: args.bpe_chars], v)
        print(f"BPE {v}: trained on {min(args.bpe_chars, len(train_text)):,} characters in "
              f"{time.process_time() - t0:.1f} CPU s")
        tokenizers[f"BPE {v}"] = (lambda s, m=merges: bpe.encode(s, m), v, lambda ids, m=merges: bpe.decode(ids, m))

    config = PRESETS["cpu"].model
    rows = []
    for name, (encode, vocab_size, decode) in tokenizers.items():
        t0 = time.process_time()
        train_ids, val_ids = torch.tensor(encode(train_text)), torch.tensor(encode(val_text))
        n_chars = len(val_text) - len(decode(val_ids[:1].tolist()))  # the first token is never predicted
        print(f"{name}: {len(train_ids):,} train tokens ({len(train_text) / len(train_ids):.2f} characters per token), "
              f"encoded in {time.process_time() - t0:.1f} CPU s")
        for seed in args.seeds:
            torch.manual_seed(seed)
            model = GPT(replace(config, vocab_size=vocab_size))
            steps, last = train_for_cpu_seconds(model, train_ids, args.seconds, block_size=config.block_size,
                                                batch_size=12, lr=1e-3, warmup=100, seed=seed)
            nats, n_tokens = bpe.total_nats(model, val_ids, config.block_size)
            bpc = bpe.bits_per_character(nats, n_chars)
            if name == "characters":
                assert n_tokens == n_chars and abs(bpc - nats / n_tokens / math.log(2)) < 1e-9
            rows.append((name, seed, steps, n_tokens, n_chars, nats / n_tokens, bpc))
            print(f"  seed {seed}: {steps} steps, last train loss {last:.3f}; val {nats / n_tokens:.4f} nats/token "
                  f"over {n_tokens:,} tokens -> {bpc:.4f} bits/character over {n_chars:,} characters", flush=True)

    print("\n| tokenizer | seed | steps | val tokens | val characters | nats/token | bits/character |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, seed, steps, n_tokens, n_chars, npt, bpc in rows:
        print(f"| {name} | {seed} | {steps} | {n_tokens:,} | {n_chars:,} | {npt:.4f} | {bpc:.4f} |")


if __name__ == "__main__":
    main()
