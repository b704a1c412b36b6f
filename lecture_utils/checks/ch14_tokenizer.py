"""Checks for chapter 14 (byte-pair encoding): 14.1 count_pairs, 14.2 merge, 14.3 train_bpe, 14.4 bpe_encode,
14.5 bpe_decode.

Every check draws fresh random inputs (lists of ids, texts mixing ASCII, runs of one letter and multi-byte
characters) and adds the adversarial ones: empty, one element, runs like ``aaaa`` where pairs overlap,
characters never seen in training, characters of two, three and four UTF-8 bytes. A mismatch is compared with
what the usual mistakes would give, so the diagnosis names the mistake.
"""

from __future__ import annotations

import math
import random

from lecture_utils import bpe as ref
from lecture_utils.checks._core import exercise, expect, fail, fail_generic, fresh_seed, passed
from lecture_utils.checks._helpers import call

# letters that repeat often (so pairs overlap), a few rarer ones, and characters of 2, 3 and 4 UTF-8 bytes
_COMMON = "aaab  e"
_RARE = "xyzT.\n"
_WIDE = "éñ日本語🙂€"


def _random_text(g: random.Random, n: int, wide: bool = True) -> str:
    pool = _COMMON * 4 + _RARE + (_WIDE if wide else "")
    return "".join(g.choice(pool) for _ in range(n))


def _random_ids(g: random.Random, n: int, alphabet: list[int]) -> list[int]:
    return [g.choice(alphabet) for _ in range(n)]


def _show(ids, limit: int = 12) -> str:
    ids = list(ids)
    return repr(ids) if len(ids) <= limit else repr(ids[:limit])[:-1] + ", ...]"


def _explain(cases, outputs, wants, mistakes, shown) -> None:
    """Fail with the diagnosis of the first mistake (a function of a case's arguments) that gives every output
    the learner's code gave, else of one that gives the first wrong output, else generically. ``shown(i)``
    describes case ``i``."""
    i = next(k for k in range(len(cases)) if outputs[k] != wants[k])

    def gives(variant, k):
        try:
            return variant(*cases[k]) == outputs[k]
        except Exception:
            return False

    for variant, diagnosis in mistakes:
        if all(gives(variant, k) for k in range(len(cases))):
            fail(f"{diagnosis}. {shown(i)}")
    for variant, diagnosis in mistakes:
        if gives(variant, i):
            fail(f"{diagnosis}. {shown(i)}")
    fail_generic(shown(i))


# ---------------------------------------------------------------------------------------------------------------
# 14.1 count_pairs
# ---------------------------------------------------------------------------------------------------------------


def _pairs_every_other(ids):
    return _tally(zip(ids[::2], ids[1::2]))


def _pairs_non_overlapping(ids):
    counts = {}
    for pair in ref.count_pairs(ids):
        counts[pair] = (len(ids) - len(ref.merge(ids, pair, -1)))
    return counts


def _tally(pairs):
    counts = {}
    for pair in pairs:
        counts[pair] = counts.get(pair, 0) + 1
    return counts


@exercise("14.1")
def count_pairs(count_pairs, device="cpu"):
    """``count_pairs(ids)``: ``{(a, b): how often b follows a}``, overlapping pairs included."""
    g = random.Random(fresh_seed())
    alphabet = [g.randrange(1000) for _ in range(4)]  # ids above 255 too: merged tokens are counted the same way
    a, b = alphabet[:2]
    cases = [[a, a, a], [a, a, a, a, b], [a, b, a, b, a], [b, a], [a], []]
    cases += [_random_ids(g, g.randrange(20, 60), alphabet) for _ in range(4)]
    cases.append(list(_random_text(g, 80).encode("utf-8")))
    g.shuffle(cases)
    hints = (("index out of range", "the loop reads ids[i + 1] past the end: a list of n ids has n - 1 pairs, "
                                    "i runs over range(len(ids) - 1)"),)
    outputs = []
    for ids in cases:
        given = list(ids)
        got = call(count_pairs, given, hints=hints)
        expect(given == ids, "count_pairs changed the list it was given: only read it")
        if isinstance(got, list) and all(isinstance(x, tuple) and len(x) == 2 for x in got):
            fail("count_pairs returns a list (most_common()?): return a dict {(a, b): count}")
        expect(hasattr(got, "items"), f"count_pairs should return a dict {{(a, b): count}}, got {type(got).__name__}")
        got = {k: v for k, v in got.items() if v}  # a Counter may keep zero counts
        if any(not (isinstance(k, tuple) and len(k) == 2) for k in got):
            fail(f"the keys should be pairs of ids, tuples (a, b); got keys like {next(iter(got))!r}")
        outputs.append(got)
    wants = [ref.count_pairs(ids) for ids in cases]
    if outputs != wants:
        _explain([(ids,) for ids in cases], outputs, wants, [
            (lambda ids: _tally(zip(ids, ids[1:] + ids[:1])) if ids else {},
             "a pair across the end is counted: (ids[-1], ids[0]) is not adjacent - the text does not wrap around"),
            (lambda ids: ref.count_pairs(ids[:-1]),
             "the last pair (ids[-2], ids[-1]) is missing: the pairs start at i = 0 .. len(ids) - 2, so the loop is "
             "range(len(ids) - 1)"),
            (_pairs_every_other,
             "only every other pair is counted (a step of 2): pairs overlap, ids[i], ids[i + 1] for every i"),
            (_pairs_non_overlapping,
             "overlapping pairs are counted once: [a, a, a] holds (a, a) twice (at 0 and at 1); count every "
             "adjacent pair, do not skip past a match"),
            (lambda ids: {p: 1 for p in zip(ids, ids[1:])},
             "each pair is counted once, however often it occurs: add 1 to its count at every occurrence "
             "(counts.get(pair, 0) + 1)"),
            (lambda ids: _tally(zip(ids[1:], ids)),
             "the pairs are reversed: the key is (ids[i], ids[i + 1]), first then second"),
            (lambda ids: _tally(zip(ids, ids[2:])),
             "the pairs are ids two apart (ids[i], ids[i + 2]): adjacent means zip(ids, ids[1:])"),
            (lambda ids: _tally(zip(ids, ids)),
             "each id is paired with itself: the pairs are (ids[i], ids[i + 1]), zip(ids, ids[1:])"),
            (lambda ids: {p: 2 * n for p, n in ref.count_pairs(ids).items()},
             "every count is doubled: add 1 per occurrence"),
            (lambda ids: {p: n - 1 for p, n in ref.count_pairs(ids).items() if n > 1},
             "every count is one short: a pair's first occurrence counts 1, counts.get(pair, 0) + 1"),
            (lambda ids: {},
             "nothing is counted: add 1 to counts[pair] for every pair, and return counts"),
        ], lambda i: f"for ids = {_show(cases[i])} expected {wants[i]}, got {outputs[i]}")
    return passed("pairs counted, overlapping ones included, none across the end, on random and adversarial ids",
                  count_pairs)


# ---------------------------------------------------------------------------------------------------------------
# 14.2 merge
# ---------------------------------------------------------------------------------------------------------------


def _merge_overlapping(ids, pair, new_id):
    """A match emits new_id but the loop steps by one: [a, a, a] -> [N, N, a]."""
    out, i = [], 0
    while i < len(ids):
        out.append(new_id if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair else ids[i])
        i += 1
    return out


def _merge_without_tail(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_skip_three(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 3
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_first_only(ids, pair, new_id):
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == pair:
            return list(ids[:i]) + [new_id] + list(ids[i + 2:])
    return list(ids)


def _merge_from_the_right(ids, pair, new_id):
    return ref.merge(list(ids)[::-1], pair[::-1], new_id)[::-1]


@exercise("14.2")
def merge(merge, device="cpu"):
    """``merge(ids, pair, new_id)``: a new list, every occurrence of ``pair`` (left to right, not overlapping)
    replaced by ``new_id``."""
    g = random.Random(fresh_seed())
    alphabet = [g.randrange(600) for _ in range(3)]
    a, b = alphabet[:2]
    new_id = 600 + g.randrange(1000)  # not 256: the id is an argument
    cases = [([a, a, a], (a, a)), ([a, a, a, a], (a, a)), ([b, a, a, a, b], (a, a)), ([b, a, b], (a, b)),
             ([a, b], (a, b)), ([a], (a, a)), ([], (a, b)), ([b, b, b], (a, b))]
    for _ in range(5):
        ids = _random_ids(g, g.randrange(10, 40), alphabet)
        cases.append((ids, g.choice(list(ref.count_pairs(ids)))))
    g.shuffle(cases)
    hints = (("index out of range", "the loop reads ids[i + 1] at the last position: test i + 1 < len(ids) before "
                                    "comparing the pair"),)
    outputs = []
    for ids, pair in cases:
        given = list(ids)
        got = call(merge, given, pair, new_id, hints=hints)
        if given != ids:
            fail("merge changed the list it was given: build a new list (out = []) and return it; train and encode "
                 "still need the old one")
        if isinstance(got, tuple):
            got = list(got)
        expect(isinstance(got, list), f"merge should return a list of ids, got {type(got).__name__}")
        outputs.append(got)
    args = [(ids, pair, new_id) for ids, pair in cases]
    wants = [ref.merge(*a) for a in args]
    if outputs != wants:
        _explain(args, outputs, wants, [
            (lambda ids, pair, new_id: ref.merge(ids, pair, 256),
             "the new id should be the argument new_id, not a fixed number"),
            (_merge_overlapping,
             "overlapping matches: after a match, both ids are used up - skip two (i += 2). In [a, a, a] the pair "
             "(a, a) merges once, into [N, a]"),
            (_merge_without_tail,
             "the last id is dropped when it is not part of a match: the loop must run to the end of ids "
             "(while i < len(ids)), adding ids[i] when no pair starts there"),
            (_merge_first_only, "only the first occurrence is replaced: replace every occurrence"),
            (lambda ids, pair, new_id: ref.merge(ids[1:], pair, new_id),
             "the first id is lost: start reading at i = 0"),
            (lambda ids, pair, new_id: [x for x in ref.merge(ids, pair, None) if x is not None],
             "each match is removed but new_id is not put in its place: append new_id for a match"),
            (lambda ids, pair, new_id: [x for x in ref.merge(ids, pair, new_id) if x == new_id],
             "only the new ids are kept: an id that starts no match goes into the output as it is (append ids[i])"),
            (_merge_skip_three,
             "the id after each match is lost: a match uses up exactly two ids (i += 2)"),
            (_merge_from_the_right,
             "the matches are taken from the right: read left to right, so [a, a, a] becomes [N, a], not [a, N]"),
        ], lambda i: f"merging {args[i][1]} into {new_id} in {_show(args[i][0])}: expected {_show(wants[i])}, got "
                     f"{_show(outputs[i])}")
    return passed("every occurrence merged, left to right, without overlap; the input list untouched", merge)


# ---------------------------------------------------------------------------------------------------------------
# 14.3 train_bpe
# ---------------------------------------------------------------------------------------------------------------


def _replay(start: list[int], merges: dict) -> tuple[bool, int, str, list[int]]:
    """Replay ``merges`` from ``start``: (every merge a most frequent pair?, index of the first that is not, why,
    ids after the valid merges)."""
    ids = list(start)
    for i, pair in enumerate(merges):
        counts = ref.count_pairs(ids)
        if pair not in counts:
            return False, i, "absent", ids
        if counts[pair] < max(counts.values()):
            return False, i, "least" if counts[pair] == min(counts.values()) else "not most", ids
        ids = ref.merge(ids, pair, merges[pair])
    return True, len(merges), "", ids


@exercise("14.3")
def train_bpe(train_bpe, device="cpu"):
    """``train_bpe(text, vocab_size)``: ``{pair: new_id}`` in learned order, the ``i``-th merge getting ``256 + i``,
    each a most frequent pair of the tokens so far, ``vocab_size - 256`` of them unless no pair is left."""
    g = random.Random(fresh_seed())
    cases = [("", 300), ("a", 300), ("aaaa", 300), (_random_text(g, 12), 256)]
    cases += [(_random_text(g, g.randrange(150, 300)), 256 + g.randrange(8, 24)) for _ in range(3)]
    cases.append(("".join(g.choice(_WIDE) for _ in range(60)), 256 + g.randrange(8, 16)))  # multi-byte only
    g.shuffle(cases)
    empty = "with fewer than two tokens there is no pair to merge: stop the loop when count_pairs returns an " \
            "empty dict (a text may be empty, or merged down to one token)"
    hints = (("empty sequence", empty), ("argument is empty", empty))
    for text, vocab_size in cases:
        got = call(train_bpe, text, vocab_size, hints=hints)
        want = ref.train_bpe(text, vocab_size)
        if isinstance(got, list):
            fail("train_bpe returns a list: return the dict {pair: new_id}, which encode and decode need")
        expect(isinstance(got, dict), f"train_bpe should return a dict {{pair: new_id}}, got {type(got).__name__}")
        where = f"for the text {text[:30]!r} ({len(text)} characters) and vocab_size = {vocab_size}"
        if any(not (isinstance(k, tuple) and len(k) == 2 and all(isinstance(x, int) for x in k)) for k in got):
            fail(f"the merges' keys should be pairs of integer ids; got {next(iter(got))!r}. Start from the bytes: "
                 f"ids = list(text.encode('utf-8')) ({where})")
        values = list(got.values())
        if values and values == list(range(values[0], values[0] + len(values))) and values[0] in (255, 257):
            fail(f"off by one in the new ids: the first merge gets 256 (ids 0-255 are the bytes), the i-th (from 0) "
                 f"256 + i; got {values[0]} first ({where})")
        if len(got) == 1 and len(want) > 1 and next(iter(got)) == next(iter(want)):
            fail(f"the same pair is merged at every step: after each merge, replace ids by merge(ids, pair, new_id) "
                 f"so the next count sees the merged tokens ({where})")
        expect(values == list(range(256, 256 + len(values))),
               f"the new ids should be 256, 257, ... in the order learned; got {_show(values)} ({where})")
        ok, i, why, ids = _replay(list(text.encode("utf-8")), got)
        if not ok:
            chars_ok = _replay([ord(c) for c in text], got)[0]
            if chars_ok:
                fail(f"the merges were learned on characters (ord), not on bytes: start from "
                     f"list(text.encode('utf-8')), so every text - whatever its characters - is made of ids 0-255 "
                     f"({where})")
            pair = list(got)[i]
            if why == "absent":
                fail(f"merge {i} ({pair} -> {got[pair]}) is a pair that does not occur in the tokens at that step: "
                     f"count the pairs of the current ids (after the earlier merges), and merge ids with the pair "
                     f"you chose ({where})")
            if why == "least":
                fail(f"merge {i} ({pair}) is the least frequent pair, not the most frequent: max(counts, "
                     f"key=counts.get) ({where})")
            fail(f"merge {i} ({pair}) is not a most frequent pair of the tokens at that step: pick "
                 f"max(counts, key=counts.get) ({where})")
        if len(got) > vocab_size - 256:
            if len(got) <= vocab_size:  # the loop ran vocab_size times, or until no pair was left
                fail(f"{len(got)} merges for vocab_size = {vocab_size}: the vocabulary already holds the 256 bytes, "
                     f"so train vocab_size - 256 merges ({where})")
            fail(f"{len(got)} merges, more than vocab_size - 256 = {vocab_size - 256} ({where})")
        if len(got) < vocab_size - 256 and len(ids) >= 2:
            if len(got) == vocab_size - 257:
                fail(f"one merge too few: train vocab_size - 256 merges, range(vocab_size - 256) ({where})")
            fail(f"training stopped after {len(got)} merges, before vocab_size - 256 = {vocab_size - 256}, though "
                 f"pairs were left ({where})")
    return passed("each merge a most frequent pair of the tokens so far, ids 256 + i, vocab_size - 256 of them "
                  "(fewer only when no pair is left), on bytes of multi-byte text", train_bpe)


# ---------------------------------------------------------------------------------------------------------------
# 14.4 encode, 14.5 decode
# ---------------------------------------------------------------------------------------------------------------


def _encode_by_frequency(text, merges):
    ids = list(text.encode("utf-8"))
    while True:
        known = {p: n for p, n in ref.count_pairs(ids).items() if p in merges}
        if not known:
            return ids
        pair = max(known, key=known.get)
        ids = ref.merge(ids, pair, merges[pair])


def _encode_latest_first(text, merges):
    ids = list(text.encode("utf-8"))
    for pair, new_id in reversed(list(merges.items())):
        ids = ref.merge(ids, pair, new_id)
    return ids


def _encode_one_step(text, merges):
    ids = list(text.encode("utf-8"))
    if len(ids) < 2:
        return ids
    pair = min(ref.count_pairs(ids), key=lambda p: merges.get(p, math.inf))
    return ref.merge(ids, pair, merges[pair]) if pair in merges else ids


def _encode_characters(text, merges):
    ids = [ord(c) for c in text]
    while len(ids) >= 2:
        pair = min(ref.count_pairs(ids), key=lambda p: merges.get(p, math.inf))
        if pair not in merges:
            break
        ids = ref.merge(ids, pair, merges[pair])
    return ids


def _tokenizer_cases(g: random.Random):
    """(merges, texts to encode): a tokenizer trained on random text, and the texts it must handle."""
    train_text = _random_text(g, g.randrange(200, 320))
    merges = ref.train_bpe(train_text, 256 + g.randrange(20, 40))
    texts = [train_text[: g.randrange(40, 120)], _random_text(g, 60), "", "a", "a" * g.randrange(5, 12),
             "QQ@@ unseen {~} " + "".join(g.choice("ÆØÅ한국어ğ") for _ in range(6)),
             "".join(g.choice(_WIDE) for _ in range(10))]
    g.shuffle(texts)
    b, c, d = g.sample(range(97, 123), 3)
    crafted = ({(c, d): 256, (b, c): 257}, bytes([b, c, d, b, c]).decode())  # by frequency, (b, c) would go first
    return merges, texts, crafted


@exercise("14.4")
def bpe_encode(encode, device="cpu"):
    """``encode(text, merges)``: the UTF-8 bytes of ``text``, then the merges applied in the order learned."""
    g = random.Random(fresh_seed())
    merges, texts, (crafted_merges, crafted_text) = _tokenizer_cases(g)
    empty = "with fewer than two ids there is no pair: stop when len(ids) < 2 (the text may be empty or one byte)"
    hints = (("empty sequence", empty), ("argument is empty", empty),
             ("KeyError", "a pair that is not in merges was looked up: when the pair with the lowest rank is not in "
                          "merges (min(..., key=lambda p: merges.get(p, float('inf')))), no merge applies - stop"))
    two = crafted_text[1:3]  # two bytes that are the first merge
    cases = [(crafted_merges, crafted_text), (crafted_merges, two)] + [(merges, t) for t in texts]
    outputs = []
    for m, text in cases:
        got = call(encode, text, dict(m), hints=hints)
        if isinstance(got, tuple):
            got = list(got)
        expect(isinstance(got, list), f"encode should return a list of ids, got {type(got).__name__}")
        outputs.append(got)
    wants = [ref.encode(text, m) for m, text in cases]
    if outputs == wants:
        return passed("bytes first, then merges in learned order (not by frequency), on unseen and multi-byte text",
                      encode)
    _explain([(t, m) for m, t in cases], outputs, wants, [
        (_encode_characters, "the text was split into characters (ord), not bytes: start from "
                             "list(text.encode('utf-8')); a character outside 0-255 has no id of its own"),
        (lambda t, m: list(t.encode("utf-8")), "no merge was applied: these are the text's bytes"),
        (_encode_by_frequency, "the merges were applied by frequency in this text (the most common known pair "
                               "first) instead of in the order they were learned: at each step merge the pair with "
                               "the lowest new id, min(pairs, key=lambda p: merges.get(p, float('inf')))"),
        (_encode_latest_first, "the merges were applied latest first (highest new id): apply them in the order "
                               "learned, the lowest new id first - a later merge is built from earlier ones"),
        (_encode_one_step, "only one merge was applied: repeat until no pair of the text is in merges"),
        (lambda t, m: list(t.encode()) if len(t.encode()) < 3 else ref.encode(t, m),
         "a text of two ids was left unmerged: two ids are one pair, which may be a merge - loop while "
         "len(ids) >= 2"),
    ], lambda i: f"for the text {cases[i][1][:30]!r} expected {_show(wants[i])}, got {_show(outputs[i])}")


def _decode_each_token(ids, vocab):
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


@exercise("14.5")
def bpe_decode(decode, device="cpu"):
    """``decode(ids, merges)``: the tokens' bytes joined, then decoded from UTF-8 once with ``errors="replace"``."""
    g = random.Random(fresh_seed())
    merges, texts, _ = _tokenizer_cases(g)
    vocab = ref.vocabulary(merges)
    cases = [ref.encode(t, merges) for t in texts]
    cases += [list("é".encode()), list("🙂".encode())[:3], [0xFF, 0x41]]  # split, cut, invalid
    cases += [[g.randrange(256 + len(merges)) for _ in range(g.randrange(5, 20))] for _ in range(3)]
    g.shuffle(cases)
    hints = (("can't decode", "these ids do not form valid UTF-8 (a model's sample can end half-way through a "
                              "character): decode with errors='replace'"),
             ("range(0, 256)", "ids above 255 are merged tokens, not bytes: look each id up in a vocabulary of "
                               "bytes built from the merges"))
    outputs = []
    for ids in cases:
        got = call(decode, list(ids), dict(merges), hints=hints)
        expect(isinstance(got, str), f"decode should return a str, got {type(got).__name__}")
        outputs.append(got)
    wants = [ref.decode(ids, merges) for ids in cases]
    if outputs != wants:
        swapped = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in merges.items():
            swapped[new_id] = swapped[b] + swapped[a]

        def joined(ids):
            return b"".join(vocab[i] for i in ids)

        _explain([(ids,) for ids in cases], outputs, wants, [
            (lambda ids: _decode_each_token(ids, vocab),
             "each token was decoded to text on its own: a character of several bytes can be split across tokens. "
             "Join all the tokens' bytes first, then decode once"),
            (lambda ids: joined(ids).decode("utf-8", errors="ignore"),
             "invalid bytes were dropped (errors='ignore'): use errors='replace', so they show as U+FFFD"),
            (lambda ids: joined(ids).decode("latin-1"),
             "each byte became one character (chr / latin-1): a byte is not a character; decode the bytes as UTF-8"),
            (lambda ids: b"".join(swapped[i] for i in ids).decode("utf-8", errors="replace"),
             "a merged token's bytes are its first part's then its second's: vocab[new_id] = vocab[a] + vocab[b] "
             "for the pair (a, b)"),
        ], lambda i: f"for ids = {_show(cases[i])} (bytes {joined(cases[i])[:24]!r}) expected {wants[i][:30]!r}, "
                     f"got {outputs[i][:30]!r}")
    return passed("bytes joined then decoded once, with replacement, on split, invalid and random ids", decode)
