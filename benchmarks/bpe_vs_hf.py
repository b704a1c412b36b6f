"""Chapter 14: our teaching BPE (``lecture_utils.bpe``) against Hugging Face ``tokenizers``' byte-level BPE.

Both are trained on the same text (Tiny Shakespeare's training split, the first 90 %, or its first
``--train-chars`` characters) to the same vocabulary: 256 bytes + N merges, no special tokens. Compared on the
validation split (the last 10 %):

(a) characters per token of the validation text;
(b) the merges: how many of the first ones are identical and in the same order, where they first diverge, and
    whether that divergence is a tie (the two pairs equally frequent at that point of training) - and, to keep
    training apart from encoding, whether HF's BPE model *given our merges* encodes the validation text into the
    same tokens as our ``encode``;
(c) round trips: ``decode(encode(s)) == s`` on the validation text and on a few awkward strings (empty, multi-byte
    UTF-8 never seen in training, emoji, control bytes);
(d) training and encoding time: the median of ``--repeats`` runs, wall clock and process CPU time (the latter
    counts every thread of the process).

HF is configured as close to ours as the library allows: ``pre_tokenizers.ByteLevel(add_prefix_space=False,
use_regex=False)`` (no GPT-2 regex split into words, no space added in front), no normalizer, all 256 bytes as the
initial alphabet, no special tokens, ``min_frequency`` 0, and the whole text passed as *one* sequence (so, like
ours, merges may cross spaces and newlines). HF's Rust code may use several threads; ``--hf-threads`` (default 1,
set through ``RAYON_NUM_THREADS`` / ``RAYON_RS_NUM_CPUS`` before the import) keeps it to one, like ours.

HF's trainer is built for many short pieces (words), and one long sequence is its slow case: each merge scans the
whole sequence, and each merged occurrence is inserted into / removed from the middle of one array, which shifts
everything after it - so its time grows with the square of the sequence's length (about 4 times per doubling:
measured in RESULTS.md). On the whole training split that is minutes per run, so that training is timed
``--hf-one-sequence-repeats`` times (default 1). For contrast, HF is also trained on the same text cut into lines
(each line with its newline, as separate sequences): fast, but then no merge can cross a line end, so its merges
differ from ours for that reason too.

``tokenizers`` is a benchmark-only dependency, not part of the package or of its ``dev`` extra::

    pip install tokenizers
    python benchmarks/bpe_vs_hf.py --vocab 512 1280 --repeats 3
    python benchmarks/bpe_vs_hf.py --quick      # small text, few merges: proves it runs (tests/test_bpe_vs_hf.py)
    python benchmarks/bpe_vs_hf.py --vocab 512 --repeats 1 --hf-scaling 50000 100000 200000   # HF's slow case

Without ``tokenizers`` it prints one line saying how to install it and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

from lecture_utils import bpe, data

MISSING_HF = "bpe_vs_hf.py needs Hugging Face tokenizers, which is not installed: pip install tokenizers"

# Strings a tokenizer must give back exactly; the last ones hold characters Tiny Shakespeare never uses.
AWKWARD = ["", "a", "\n", "   ", "aaaaaaaaaaaaaaaaa", "Thou art\r\nmore lovely\ttab", "héllo wörld, ça va?",
           "日本語のテキスト", "emoji 🙂👍🏽 and a ZWJ 👩‍💻", "\x00\x01\x7f control"]


def byte_to_unicode() -> dict[int, str]:
    """The printable character that byte-level BPE (GPT-2's scheme, which HF's ``ByteLevel`` uses) shows for each
    byte: printable bytes stand for themselves, the 68 others are moved to code points from 256 on, in order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table, shift = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shift)
            shift += 1
    return table


def timed(repeats, fn, *args):
    """``fn(*args)``'s result and the medians of ``repeats`` runs' wall and process CPU seconds."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn(*args)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return result, statistics.median(walls), statistics.median(cpus)


def hf_train(tk, pieces, vocab_size):
    """A HF byte-level BPE tokenizer trained on ``pieces`` (a list of strings, each a separate sequence: no merge
    crosses from one to the next) to ``vocab_size`` tokens, set up as close to ``lecture_utils.bpe`` as the library
    allows (see the module docstring)."""
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=0, special_tokens=[], show_progress=False,
                                     initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(pieces, trainer=trainer)
    return tok


def hf_merges_as_bytes(tok, unbyte):
    """HF's merges, in learned order, as pairs of byte strings (HF stores them as byte-level characters)."""
    merges = json.loads(tok.to_str())["model"]["merges"]
    pairs = [m.split(" ") if isinstance(m, str) else m for m in merges]  # "a b" in older versions, [a, b] in newer
    return [(bytes(unbyte[c] for c in a), bytes(unbyte[c] for c in b)) for a, b in pairs]


def hf_from_our_merges(tk, merges, show):
    """HF's BPE model and byte-level pre-tokenizer loaded with *our* merges (to compare encoding alone)."""
    vocab = bpe.vocabulary(merges)
    as_str = {i: "".join(show[b] for b in token) for i, token in vocab.items()}
    hf_vocab = {}
    for i, s in as_str.items():
        hf_vocab.setdefault(s, i)  # a string learned twice (from two different pairs) keeps its first id
    tok = tk.Tokenizer(tk.models.BPE(vocab=hf_vocab, merges=[(as_str[a], as_str[b]) for a, b in merges]))
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = tk.decoders.ByteLevel()
    return tok


def divergence(train_text, ours, theirs, k, show, hf_ids):
    """At the first differing merge ``k``: how often each side's choice occurs in our token sequence just before
    it (the same sequence for both, since the first ``k`` merges agree), and the ids HF gives the two parts of
    each pair (HF breaks a tie by the smaller pair of ids)."""
    learned = list(ours.items())
    ids = bpe.encode(train_text, dict(learned[:k]))  # the text as training left it after k merges
    counts = bpe.count_pairs(ids)
    vocab = bpe.vocabulary(ours)
    by_bytes = {(vocab[a], vocab[b]): (a, b) for (a, b) in counts}
    ours_pair = learned[k][0] if k < len(learned) else None
    ours_bytes = (vocab[ours_pair[0]], vocab[ours_pair[1]]) if ours_pair else None
    theirs_bytes = theirs[k] if k < len(theirs) else None

    def label(pb):
        if pb is None:
            return "(none)"
        n = counts.get(by_bytes.get(pb), 0)
        a, b = ("".join(show[x] for x in part) for part in pb)
        return f"{a!r}+{b!r} ({n:,} times; HF ids {hf_ids.get(a, '?')}, {hf_ids.get(b, '?')})"

    tie = ours_bytes and theirs_bytes and counts.get(by_bytes.get(ours_bytes), 0) == counts.get(by_bytes.get(theirs_bytes), -1)
    return label(ours_bytes), label(theirs_bytes), bool(tie)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, nargs="+", default=[512, 1280], help="vocabulary sizes (256 + merges)")
    p.add_argument("--train-chars", type=int, default=0, help="train on the first N characters of the training split "
                   "(0: all of it)")
    p.add_argument("--val-chars", type=int, default=0, help="measure on the first N validation characters (0: all)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each timing; the median is reported")
    p.add_argument("--hf-one-sequence-repeats", type=int, default=1, help="runs of HF's training on the text as one "
                   "sequence (its slow case: minutes on the whole split)")
    p.add_argument("--hf-threads", type=int, default=1, help="threads HF's Rust code may use (0: its default)")
    p.add_argument("--hf-scaling", type=int, nargs="+", default=None, metavar="N",
                   help="only time HF's training on the first N characters as one sequence, for each N, at the first "
                   "--vocab (how its time grows with the sequence's length), then stop")
    p.add_argument("--quick", action="store_true", help="small text, few merges, one run (to prove it works)")
    p.add_argument("--device", default="cpu", help="only cpu (tokenizers run on the CPU)")
    args = p.parse_args(argv)
    if args.quick:
        args.vocab, args.train_chars, args.val_chars, args.repeats = [256 + 16, 256 + 48], 20_000, 5_000, 1
        args.hf_one_sequence_repeats = 1
    if args.hf_threads:  # read by rayon when tokenizers starts its thread pool, so before the import
        os.environ["RAYON_NUM_THREADS"] = os.environ["RAYON_RS_NUM_CPUS"] = str(args.hf_threads)
    try:
        import tokenizers as tk  # its package exposes models, pre_tokenizers, trainers and decoders
    except ImportError:
        print(MISSING_HF)
        return 2

    show = byte_to_unicode()
    unbyte = {c: b for b, c in show.items()}
    alphabet = set(tk.pre_tokenizers.ByteLevel.alphabet())
    if set(show.values()) != alphabet:
        raise SystemExit("this tokenizers version's ByteLevel alphabet is not GPT-2's byte-to-character table")

    text = data.load_text()
    split = int(0.9 * len(text))
    train_text, val_text = text[:split], text[split:]
    if args.train_chars:
        train_text = train_text[: args.train_chars]
    if args.val_chars:
        val_text = val_text[: args.val_chars]
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, tokenizers "
          f"{tk.__version__}, HF threads {args.hf_threads or 'default'}; trained on {len(train_text):,} characters, "
          f"measured on {len(val_text):,} validation characters; medians of {args.repeats} run(s) "
          f"({args.hf_one_sequence_repeats} for HF's one-sequence training); load average {os.getloadavg()[0]:.1f}: "
          "the machine may be shared with other jobs, so wall times are noisy", flush=True)
    inputs = {"one sequence": ([train_text], args.hf_one_sequence_repeats),
              "lines": (train_text.splitlines(keepends=True), args.repeats)}

    if args.hf_scaling:
        for n_chars in args.hf_scaling:
            _, wall, cpu = timed(args.repeats, hf_train, tk, [train_text[:n_chars]], args.vocab[0])
            print(f"HF, one sequence of {n_chars:,} characters, vocabulary {args.vocab[0]}: {cpu:.2f} s CPU, "
                  f"{wall:.2f} s wall", flush=True)
        return 0

    rows = []
    for v in args.vocab:
        n = v - bpe.N_BYTES
        ours, ours_train_wall, ours_train_cpu = timed(args.repeats, bpe.train_bpe, train_text, v)
        ours_ids, ours_enc_wall, _ = timed(args.repeats, bpe.encode, val_text, ours)
        vocab = bpe.vocabulary(ours)
        ours_bytes = [(vocab[a], vocab[b]) for a, b in ours]
        ours_rt = bpe.decode(ours_ids, ours) == val_text and all(bpe.decode(bpe.encode(s, ours), ours) == s
                                                                 for s in AWKWARD)
        loaded = hf_from_our_merges(tk, ours, show)
        same_encoding = [vocab[i] for i in ours_ids] == [bytes(unbyte[c] for c in t)
                                                        for t in loaded.encode(val_text).tokens]
        print(f"\nvocabulary {v} ({n} merges asked; ours learned {len(ours)})")
        print(f"  ours: train {ours_train_wall:.2f} s wall / {ours_train_cpu:.2f} s CPU; encode {ours_enc_wall:.3f} s; "
              f"HF's BPE model loaded with our merges encodes the validation text "
              f"{'into the same tokens as' if same_encoding else 'DIFFERENTLY from'} our encode", flush=True)
        for name, (pieces, repeats) in inputs.items():
            hf, hf_train_wall, hf_train_cpu = timed(repeats, hf_train, tk, pieces, v)
            hf_ids, hf_enc_wall, _ = timed(args.repeats, lambda tok, s: tok.encode(s).ids, hf, val_text)
            theirs = hf_merges_as_bytes(hf, unbyte)
            same_prefix = next((i for i, (x, y) in enumerate(zip(ours_bytes, theirs)) if x != y),
                               min(len(ours_bytes), len(theirs)))
            common = len(set(ours_bytes) & set(theirs))
            ours_div, theirs_div, tie = divergence(train_text, ours, theirs, same_prefix, show, hf.get_vocab())
            hf_rt = hf.decode(hf_ids) == val_text and all(hf.decode(hf.encode(s).ids) == s for s in AWKWARD)
            print(f"  HF trained on the text as {name}: learned {len(theirs)} merges (vocabulary "
                  f"{hf.get_vocab_size()})")
            print(f"    identical merges in the same order: the first {same_prefix}; in common as a set: {common} of "
                  f"{len(ours)}")
            if same_prefix < max(len(ours), len(theirs)):
                print(f"    first divergence at merge {same_prefix}: ours {ours_div}, HF {theirs_div} -> "
                      f"{'a tie, broken differently' if tie else 'NOT a tie'}")
            print(f"    train: HF {hf_train_wall:.3f} s wall / {hf_train_cpu:.3f} s CPU (median of {repeats}); "
                  f"encode: HF {hf_enc_wall:.4f} s", flush=True)
            rows.append((v, n, name, len(val_text) / max(1, len(ours_ids)), len(val_text) / max(1, len(hf_ids)),
                         same_prefix, common, len(ours), tie, same_encoding, ours_rt, hf_rt, ours_train_cpu,
                         hf_train_cpu, ours_enc_wall, hf_enc_wall))

    print("\n| vocab | merges | HF input | chars/token ours | chars/token HF | same first merges | merges in common | "
          "divergence a tie | same tokens from our merges | round trip ours | round trip HF | train ours CPU s | "
          "train HF CPU s | train ours/HF | encode ours s | encode HF s | encode ours/HF |")
    print("|---:|---:|---|---:|---:|---:|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for (v, n, name, cpt_o, cpt_h, prefix, common, n_ours, tie, same_enc, rt_o, rt_h, tr_o, tr_h, en_o, en_h) in rows:
        yes = {True: "yes", False: "no"}
        print(f"| {v} | {n} | {name} | {cpt_o:.3f} | {cpt_h:.3f} | {prefix} | {common} of {n_ours} | "
              f"{yes[tie] if prefix < n_ours else 'n/a'} | {yes[same_enc]} | {yes[rt_o]} | {yes[rt_h]} | {tr_o:.2f} | "
              f"{tr_h:.3f} | {ratio(tr_o, tr_h)} | {en_o:.3f} | {en_h:.4f} | {ratio(en_o, en_h)} |")
    return 0


def ratio(ours: float, theirs: float) -> str:
    """Our time over HF's: above 1x HF is faster, below 1x ours is."""
    r = ours / theirs
    return f"{r:,.0f}x" if r >= 10 else f"{r:.1f}x" if r >= 1 else f"{r:.2f}x"


if __name__ == "__main__":
    sys.exit(main())
