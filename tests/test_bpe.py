"""The byte-level BPE reference of chapter 14 (lecture_utils.bpe): round trips on arbitrary and adversarial text,
merges in learned order, vocabulary size."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lecture_utils import bpe

TRAIN_TEXT = "the cat sat on the mat; the rat ate the hat. aaaa bbbb — café naïve 日本語 🙂🙂\n" * 4
MERGES = bpe.train_bpe(TRAIN_TEXT, 256 + 40)

ADVERSARIAL = [
    "",  # empty
    "a",  # one character
    "aaaaaaa",  # repeated characters: overlapping pairs
    "ab" * 9 + "a",
    "zzzz qqqq XYZ",  # characters never seen in training
    "é",  # two bytes
    "日本語のテキスト",  # three bytes each
    "🙂🙃🙂",  # four bytes each
    "\x00\n\t\r \u00a0\ufeff",  # control and invisible characters
    "a\u0301",  # a combining accent
]


def test_count_pairs_counts_overlapping_pairs():
    assert bpe.count_pairs([1, 1, 1]) == {(1, 1): 2}
    assert bpe.count_pairs([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert bpe.count_pairs([]) == {} and bpe.count_pairs([7]) == {}


def test_merge_replaces_non_overlapping_occurrences_from_the_left():
    assert bpe.merge([97, 97, 97], (97, 97), 256) == [256, 97]
    assert bpe.merge([97, 97, 97, 97], (97, 97), 256) == [256, 256]
    assert bpe.merge([1, 2, 3, 1, 2], (1, 2), 300) == [300, 3, 300]
    ids = [5, 6, 5, 6]
    assert bpe.merge(ids, (5, 6), 256) == [256, 256] and ids == [5, 6, 5, 6]  # the input is left unchanged


def test_training_gives_one_new_id_per_merge_in_learned_order():
    merges = bpe.train_bpe(TRAIN_TEXT, 300)
    assert list(merges.values()) == list(range(256, 300))
    assert len(set(merges)) == len(merges)
    assert bpe.BPETokenizer(merges).vocab_size == 300
    # the first merge is the most frequent pair of bytes
    counts = bpe.count_pairs(list(TRAIN_TEXT.encode("utf-8")))
    assert counts[next(iter(merges))] == max(counts.values())
    # every merge is a most frequent pair once the earlier merges are applied
    ids = list(TRAIN_TEXT.encode("utf-8"))
    for pair, new_id in merges.items():
        counts = bpe.count_pairs(ids)
        assert counts[pair] == max(counts.values())
        ids = bpe.merge(ids, pair, new_id)


def test_training_stops_when_no_pair_is_left_and_refuses_a_vocabulary_below_256():
    assert bpe.train_bpe("", 300) == {}
    assert bpe.train_bpe("a", 300) == {}
    assert bpe.train_bpe("aaaa", 300) == {(97, 97): 256, (256, 256): 257}
    assert bpe.train_bpe("hello", 256) == {}
    with pytest.raises(ValueError, match="at least 256"):
        bpe.train_bpe("hello", 100)


def test_encode_applies_merges_in_learned_order_not_by_frequency():
    a, b, c = b"abc"
    merges = {(b, c): 256, (a, b): 257}
    # "abcab": by frequency (a, b) would go first; learned order merges (b, c) first
    assert bpe.encode("abcab", merges) == [a, 256, 257]
    assert bpe.encode("aaa", {(a, a): 256, (256, a): 257}) == [257]


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_round_trip_on_adversarial_text(text):
    ids = bpe.encode(text, MERGES)
    assert bpe.decode(ids, MERGES) == text
    assert bpe.encode(bpe.decode(ids, MERGES), MERGES) == ids
    assert all(0 <= i < 256 + len(MERGES) for i in ids)


def test_training_text_compresses():
    ids = bpe.encode(TRAIN_TEXT, MERGES)
    assert len(ids) < len(TRAIN_TEXT.encode("utf-8")) / 2
    assert bpe.chars_per_token(TRAIN_TEXT, MERGES) == len(TRAIN_TEXT) / len(ids)


def test_decode_joins_bytes_before_decoding_and_replaces_invalid_utf8():
    e_acute = "é".encode()
    assert bpe.decode(list(e_acute), {}) == "é"  # two tokens, one character
    assert bpe.decode([0xC3], {}) == "\ufffd"  # half a character
    assert bpe.decode([0xFF, 97], {}) == "\ufffda"
    with pytest.raises(KeyError):
        bpe.decode([999], {})


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_decode_of_encode_is_the_identity_on_arbitrary_unicode(text):
    assert bpe.decode(bpe.encode(text, MERGES), MERGES) == text


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=0, max_size=60), st.integers(256, 300))
def test_a_tokenizer_trained_on_any_text_round_trips_it(text, vocab_size):
    merges = bpe.train_bpe(text, vocab_size)
    assert list(merges.values()) == list(range(256, 256 + len(merges)))
    assert bpe.decode(bpe.encode(text, merges), merges) == text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_encode_of_decode_is_the_identity_on_encodings(text):
    ids = bpe.encode(text, MERGES)
    assert bpe.encode(bpe.decode(ids, MERGES), MERGES) == ids


def test_random_ids_decode_without_error():
    g = random.Random(0)
    for _ in range(50):
        ids = [g.randrange(256 + len(MERGES)) for _ in range(g.randrange(20))]
        assert isinstance(bpe.decode(ids, MERGES), str)


def test_tokenizer_class_matches_the_functions():
    tok = bpe.BPETokenizer.train(TRAIN_TEXT, 280)
    assert tok.merges == bpe.train_bpe(TRAIN_TEXT, 280)
    text = "the hat café 🙂"
    assert tok.decode(tok.encode(text)) == text
    assert "".join(tok.token_strings(tok.encode("the cat"))) == "the cat"


def test_bits_per_character_converts_nats_per_token():
    # a character model: tokens are characters, so bits per character is loss / ln 2
    assert bpe.bits_per_character(2.0 * 100, 100) == pytest.approx(2.0 / math.log(2))
    # 50 tokens of loss 3 nats covering 100 characters: 1.5 nats per character
    assert bpe.bits_per_character(3.0 * 50, 100) == pytest.approx(1.5 / math.log(2))


def test_total_nats_predicts_every_id_after_the_first_once():
    import torch

    from lecture_utils.model import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.0))
    ids = torch.randint(20, (30,))  # 29 predictions: three windows of 8 and one of 5
    total, n = bpe.total_nats(model, ids, block_size=8, batch_size=2)
    assert n == 29
    want = 0.0
    for s in range(0, 29, 8):
        x, y = ids[s:s + 8][:len(ids[s + 1:s + 9])], ids[s + 1:s + 9]
        logits, _ = model(x[None])
        want += torch.nn.functional.cross_entropy(logits[0], y, reduction="sum").item()
    assert total == pytest.approx(want, rel=1e-5)
    # a uniform model: ln(vocab_size) nats per prediction
    torch.nn.init.zeros_(model.lm_head.weight)
    torch.nn.init.zeros_(model.lm_head.bias) if model.lm_head.bias is not None else None
    assert bpe.total_nats(model, ids, 8)[0] == pytest.approx(29 * math.log(20), rel=1e-5)


# The package's train_bpe and encode update only what each merge changes; the exercises' loops (train_bpe_simple,
# encode_simple) count every pair again. They must agree exactly, ties and overlapping pairs ("aaa") included.
FEW_LETTERS = st.text(alphabet="ab \né", max_size=80)  # many ties, repeats and overlapping pairs


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), FEW_LETTERS), st.integers(256, 330))
def test_fast_training_learns_the_simple_loops_merges_in_the_same_order(text, vocab_size):
    assert list(bpe.train_bpe(text, vocab_size).items()) == list(bpe.train_bpe_simple(text, vocab_size).items())


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), FEW_LETTERS), st.sampled_from(["shakespeare", "few letters"]))
def test_fast_encode_gives_the_simple_loops_ids(text, trained_on):
    merges = MERGES if trained_on == "shakespeare" else FEW_LETTER_MERGES
    assert bpe.encode(text, merges) == bpe.encode_simple(text, merges)


FEW_LETTER_MERGES = bpe.train_bpe_simple("aaab abab ba\naab éé aaaa b\n" * 3, 256 + 30)


def test_fast_and_simple_agree_on_the_corpus():
    from lecture_utils import data

    text = data.load_text()
    train, held_out = text[:30_000], text[-5_000:]
    merges = bpe.train_bpe(train, 256 + 200)
    assert list(merges.items()) == list(bpe.train_bpe_simple(train, 256 + 200).items())
    assert bpe.encode(held_out, merges) == bpe.encode_simple(held_out, merges)
    assert bpe.encode(train, merges) == bpe.encode_simple(train, merges)


def test_simple_training_refuses_a_vocabulary_below_256_too():
    with pytest.raises(ValueError, match="at least 256"):
        bpe.train_bpe_simple("hello", 255)


def test_readable_labels_show_what_a_token_holds():
    assert bpe.readable(b"the ") == "the\u2423" and bpe.readable(b":\n\t") == ":\u21b5\u21e5"
    assert bpe.readable("é".encode()) == "é"  # a whole character
    assert bpe.readable("日".encode()[:2]) == "\\xe6\\x97" and bpe.readable(b"d \xc3") == "d\u2423\\xc3"  # part of one
    assert bpe.readable(b"\r\x00") == "\\r\\x00" and bpe.readable("\u200d".encode()) == "\\u200d"  # invisible ones
    assert bpe.readable(b"\\xe6") == "\\\\xe6"  # a real backslash is doubled: never mistaken for a byte
    tok = bpe.BPETokenizer(MERGES)
    assert tok.token_labels([ord("a"), 0xE6]) == ["a", "\\xe6"]


def test_speed_benchmark_quick_run_finds_the_same_results():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "bpe_speed.py"), "--quick"], capture_output=True,
                         text=True, timeout=300, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "same merges in the same order: True" in out.stdout and "same ids: True" in out.stdout
