"""Byte-level byte-pair encoding (chapter 14): from characters to tokens.

The lecture tokenizes by character and notes that real GPTs use sub-word tokens. Byte-pair encoding (BPE) is the
simplest way to get them: start from the 256 possible bytes of the text's UTF-8 encoding, then, again and again,
find the most frequent pair of adjacent tokens and give it a new token id. The list of merges, in the order they
were learned, *is* the tokenizer:

- :func:`count_pairs` (exercise 14.1) counts adjacent pairs;
- :func:`merge` (14.2) replaces every occurrence of one pair by a new id;
- :func:`train_bpe_simple` (14.3) is the loop of merges: the ``i``-th merge (from 0) gets id ``256 + i``;
- :func:`encode_simple` (14.4) turns text into bytes, then applies the merges in the order they were learned;
- :func:`decode` (14.5) joins each token's bytes, then decodes the UTF-8 once (an invalid sequence becomes
  the replacement character U+FFFD).

The two loops of the exercises count every pair of the whole text again after each merge: fine for a page of
text, slow for a corpus. :func:`train_bpe` and :func:`encode` give exactly the same results (tests/test_bpe.py
checks it on arbitrary text) but update only what a merge changes: the pairs next to each merged occurrence. On
Tiny Shakespeare with 512 tokens that is 3.0 instead of 35.2 CPU seconds to train, 3.3 instead of 40.3 to encode
the whole corpus (benchmarks/bpe_speed.py). They are what the package, the CLI and the benchmarks use.

:class:`BPETokenizer` wraps them with the interface of :class:`lecture_utils.data.CharTokenizer`
(``encode``, ``decode``, ``vocab_size``). Every function takes and returns plain Python lists and dicts.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F

N_BYTES = 256  # ids 0..255 are the bytes themselves; merged tokens start at 256

Pair = tuple[int, int]


def count_pairs(ids: Sequence[int]) -> dict[Pair, int]:
    """How often each pair of adjacent ids occurs in ``ids`` (exercise 14.1).

    Pairs overlap: ``[a, a, a]`` holds ``(a, a)`` twice. The dict's order is the order in which each pair first
    occurs, which is what breaks ties in :func:`train_bpe`."""
    counts: dict[Pair, int] = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """A new list: ``ids`` with every occurrence of ``pair``, read left to right, replaced by ``new_id``
    (exercise 14.2). Occurrences do not overlap: in ``[a, a, a]`` the pair ``(a, a)`` merges once, at the left,
    giving ``[new_id, a]``. ``ids`` itself is left unchanged."""
    out = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2  # both ids of the pair are used up
        else:
            out.append(ids[i])
            i += 1
    return out


def train_bpe_simple(text: str, vocab_size: int) -> dict[Pair, int]:
    """The merges that grow a byte vocabulary to ``vocab_size`` tokens on ``text`` (exercise 14.3).

    Returns ``{pair: new_id}`` in the order learned; the ``i``-th merge gets ``256 + i``. Training stops early
    when no pair is left (a text of fewer than two tokens). Among equally frequent pairs the one that occurs
    first wins. Each merge counts the pairs of the whole text again: :func:`train_bpe` gives the same merges
    faster.

    Raises:
        ValueError: ``vocab_size`` is smaller than 256 (the bytes alone need 256 ids).
    """
    _check_vocab_size(vocab_size)
    ids = list(text.encode("utf-8"))
    merges: dict[Pair, int] = {}
    for i in range(vocab_size - N_BYTES):
        counts = count_pairs(ids)
        if not counts:
            break
        pair = max(counts, key=counts.get)  # the first of the most frequent
        merges[pair] = N_BYTES + i
        ids = merge(ids, pair, N_BYTES + i)
    return merges


def _check_vocab_size(vocab_size: int) -> None:
    if vocab_size < N_BYTES:
        raise ValueError(f"vocab_size must be at least {N_BYTES} (one id per byte), got {vocab_size}")


def train_bpe(text: str, vocab_size: int) -> dict[Pair, int]:
    """The same merges as :func:`train_bpe_simple`, without counting the whole text again after each merge.

    A merge only changes the pairs next to the occurrences it merges. So the text is kept as a linked list
    (each position knows the next and previous live position), every pair knows the set of positions where it
    starts (its count is the size of that set), and merging one occurrence ``... h [a b] k ...`` into
    ``... h [new] k ...`` just moves ``h`` from pair ``(h, a)`` to ``(h, new)`` and the pair at ``k``'s left
    from ``(b, k)`` to ``(new, k)``. The most frequent pair comes from a heap of ``(-count, first position,
    pair)``, pushed again each time a merge changes the pair's count; an entry whose count is out of date is
    dropped when it reaches the top. (After the merge that creates it, a pair's count only ever goes down, and
    its first position changes only when its count does.) Ties go to the pair that occurs first, exactly as
    ``max`` over :func:`count_pairs`' dict does.

    Raises:
        ValueError: ``vocab_size`` is smaller than 256 (the bytes alone need 256 ids).
    """
    _check_vocab_size(vocab_size)
    ids: list[int | None] = list(text.encode("utf-8"))  # None: merged into the token on its left
    n = len(ids)
    nxt = list(range(1, n + 1))  # the next live position; n means none
    prv = list(range(-1, n - 1))  # the previous live position; -1 means none
    where: dict[Pair, set[int]] = {}  # pair -> the positions where it starts
    for i, pair in enumerate(zip(ids, ids[1:])):
        where.setdefault(pair, set()).add(i)
    heap = [(-len(at), min(at), pair) for pair, at in where.items()]
    heapq.heapify(heap)

    def pair_at(i):
        return ids[i], ids[nxt[i]]

    merges: dict[Pair, int] = {}
    while heap and len(merges) < vocab_size - N_BYTES:
        neg_count, _, pair = heapq.heappop(heap)
        at = where.get(pair, ())
        if len(at) != -neg_count:
            continue  # out of date: the pair's count changed since, and the new count was pushed then
        new_id = N_BYTES + len(merges)
        merges[pair] = new_id
        changed = set()
        for i in sorted(at):  # left to right, like merge()
            if i not in at:
                continue  # used up by the occurrence just before it, as the middle "a" of "aaa"
            j = nxt[i]
            for left in (prv[i], j):  # the pairs (h, a) and (b, k) disappear
                if 0 <= left and nxt[left] < n:
                    where[pair_at(left)].discard(left)
                    changed.add(pair_at(left))
            at.discard(i)
            ids[i], ids[j], nxt[i] = new_id, None, nxt[j]
            if nxt[i] < n:
                prv[nxt[i]] = i
            for left in (prv[i], i):  # the pairs (h, new) and (new, k) appear
                if 0 <= left and nxt[left] < n:
                    where.setdefault(pair_at(left), set()).add(left)
                    changed.add(pair_at(left))
        del where[pair]  # every occurrence is merged
        for p in changed - {pair}:
            if where[p]:
                heapq.heappush(heap, (-len(where[p]), min(where[p]), p))
            else:
                del where[p]
    return merges


def encode_simple(text: str, merges: dict[Pair, int]) -> list[int]:
    """The token ids of ``text`` (exercise 14.4): its UTF-8 bytes, then the merges applied in the order they were
    learned - at each step, of the pairs present, the one learned first (lowest new id). Each step counts the
    pairs of the whole text again: :func:`encode` gives the same ids faster."""
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pair = min(count_pairs(ids), key=lambda p: merges.get(p, math.inf))
        if pair not in merges:
            break  # no pair left that the tokenizer knows
        ids = merge(ids, pair, merges[pair])
    return ids


def encode(text: str, merges: dict[Pair, int]) -> list[int]:
    """The same ids as :func:`encode_simple`, without counting the whole text again after each merge.

    Every occurrence of a known pair goes into a heap as ``(its new id, position)``, so the heap gives the
    occurrences in the order the merges were learned and, for one merge, from left to right - the order
    :func:`encode_simple` merges them in. Merging one occurrence can only create pairs with the new id in them,
    which were learned later (a token's parts always have smaller ids, as :func:`train_bpe` makes them): they
    are pushed and come out after every occurrence of the current merge. An entry whose position was merged
    away or now starts another pair is skipped. ``merges`` must be such a list (each pair made of smaller ids)."""
    ids: list[int | None] = list(text.encode("utf-8"))  # None: merged into the token on its left
    n = len(ids)
    nxt = list(range(1, n + 1))  # the next live position; n means none
    prv = list(range(-1, n - 1))  # the previous live position; -1 means none
    heap = [(merges[pair], i) for i, pair in enumerate(zip(ids, ids[1:])) if pair in merges]
    heapq.heapify(heap)
    while heap:
        new_id, i = heapq.heappop(heap)
        j = nxt[i]
        if ids[i] is None or j == n or merges.get((ids[i], ids[j])) != new_id:
            continue  # this occurrence was used up or changed by an earlier merge
        ids[i], ids[j], nxt[i] = new_id, None, nxt[j]
        if nxt[i] < n:
            prv[nxt[i]] = i
        for left in (prv[i], i):  # the new pairs (h, new) and (new, k)
            if 0 <= left and nxt[left] < n and (ids[left], ids[nxt[left]]) in merges:
                heapq.heappush(heap, (merges[ids[left], ids[nxt[left]]], left))
    return [t for t in ids if t is not None]


def vocabulary(merges: dict[Pair, int]) -> dict[int, bytes]:
    """The bytes each token id stands for: the 256 single bytes, then each merge's two parts joined."""
    vocab = {i: bytes([i]) for i in range(N_BYTES)}
    for (a, b), new_id in merges.items():  # in learned order, so both parts are already known
        vocab[new_id] = vocab[a] + vocab[b]
    return vocab


def decode(ids: Sequence[int], merges: dict[Pair, int]) -> str:
    """The text of token ids (exercise 14.5): the tokens' bytes joined, then decoded from UTF-8 once, with
    ``errors="replace"`` (ids that do not form valid UTF-8 - possible for a model's sample - become U+FFFD).

    Raises:
        KeyError: an id that is neither a byte nor a merged token.
    """
    vocab = vocabulary(merges)
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


_VISIBLE = {" ": "\u2423", "\n": "\u21b5", "\t": "\u21e5", "\\": "\\\\"}  # space, newline, tab, a backslash


def readable(piece: bytes) -> str:
    """The bytes of one token as a label one can read: its UTF-8 characters, with a space shown as ␣, a newline
    as ↵, a tab as ⇥, other invisible characters escaped as Python writes them (``\\r``, ``\\u200d``) and so a
    backslash doubled; and each byte that is not part of a whole UTF-8 character within the token as ``\\xNN``.
    A token can hold part of a character: ``日`` is the three bytes ``e6 97 a5``, which BPE may split as
    ``b"\\xe6\\x97"`` and ``b"\\xa5"``, labelled ``\\xe6\\x97`` and ``\\xa5``; ``b"d \\xc3"`` is ``d␣\\xc3``."""
    out = []
    for ch in piece.decode("utf-8", errors="surrogateescape"):  # a stray byte b becomes the code point 0xDC00 + b
        if 0xDC80 <= ord(ch) <= 0xDCFF:
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        else:
            out.append(ch if ch.isprintable() else repr(ch)[1:-1])
    return "".join(out)


class BPETokenizer:
    """A trained byte-level BPE tokenizer with the interface of ``CharTokenizer``: ``encode(str) -> list[int]``,
    ``decode(list[int]) -> str``, ``vocab_size``.

    Args:
        merges: ``{pair: new_id}`` in learned order, as :func:`train_bpe` returns.
    """

    def __init__(self, merges: dict[Pair, int]):
        self.merges = dict(merges)
        self.vocab = vocabulary(self.merges)

    @classmethod
    def train(cls, text: str, vocab_size: int) -> BPETokenizer:
        """Train on ``text`` to ``vocab_size`` tokens (see :func:`train_bpe`)."""
        return cls(train_bpe(text, vocab_size))

    @property
    def vocab_size(self) -> int:
        return N_BYTES + len(self.merges)

    def encode(self, text: str) -> list[int]:
        return encode(text, self.merges)

    def decode(self, ids: Sequence[int]) -> str:
        return b"".join(self.vocab[int(i)] for i in ids).decode("utf-8", errors="replace")

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """Each token shown on its own (a token that holds part of a multi-byte character shows U+FFFD)."""
        return [self.vocab[int(i)].decode("utf-8", errors="replace") for i in ids]

    def token_labels(self, ids: Sequence[int]) -> list[str]:
        """Each token's text made readable for a picture (the attention explorer's labels): see :func:`readable`."""
        return [readable(self.vocab[int(i)]) for i in ids]

    def __eq__(self, other) -> bool:
        return isinstance(other, BPETokenizer) and list(self.merges.items()) == list(other.merges.items())

    __hash__ = None  # mutable, compared by value

    def state_dict(self) -> dict:
        """Plain data for a checkpoint: ``{"kind": "bpe", "merges": [[a, b], ...]}``, the merged pairs in the order
        learned (the ``i``-th gets id ``256 + i``, so the ids need not be stored).

        Raises:
            ValueError: the merges' new ids are not ``256, 257, ...`` in order (not a tokenizer :func:`train_bpe`
                could have learned).
        """
        if list(self.merges.values()) != list(range(N_BYTES, N_BYTES + len(self.merges))):
            raise ValueError("BPETokenizer.state_dict: the merges' new ids must be 256, 257, ... in the order learned")
        return {"kind": "bpe", "merges": [[a, b] for a, b in self.merges]}

    @classmethod
    def from_state_dict(cls, state: dict) -> BPETokenizer:
        """The tokenizer that :meth:`state_dict` described.

        Raises:
            ValueError: ``state`` is not such a description: the merges are not a list of pairs of integer ids,
                a pair uses an id not yet learned at its place, or a pair is merged twice; the message says which.
        """
        merges_list = state.get("merges") if isinstance(state, dict) else None
        if not isinstance(merges_list, list):
            raise ValueError("a BPE tokenizer's state needs a list of merges")
        merges: dict[Pair, int] = {}
        for i, pair in enumerate(merges_list):
            new_id = N_BYTES + i
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in pair)):
                raise ValueError(f"merge {i} is not a pair of integer ids: {pair!r}")
            a, b = pair
            if not (0 <= a < new_id and 0 <= b < new_id):
                raise ValueError(f"merge {i} {pair!r} uses an id outside 0..{new_id - 1} (the ids known before it)")
            if (a, b) in merges:
                raise ValueError(f"merge {i} {pair!r} repeats merge {merges[(a, b)] - N_BYTES}")
            merges[(a, b)] = new_id
        return cls(merges)


def chars_per_token(text: str, merges: dict[Pair, int]) -> float:
    """Compression: characters of ``text`` per token of its encoding (1.0 or less for bytes alone on ASCII)."""
    return len(text) / max(1, len(encode(text, merges)))


def bits_per_character(total_nats: float, n_characters: int) -> float:
    """Bits per character of a text from the summed cross-entropy (natural log) of all its tokens.

    A model's loss is nats *per token*; tokens of different tokenizers cover different amounts of text, so the
    fair unit is the text itself: sum the loss over every token of the validation text, divide by its number of
    characters, and by ln 2 to go from nats to bits. For a character model the tokens are the characters and
    this is just ``loss / ln 2``."""
    return total_nats / n_characters / math.log(2)


@torch.no_grad()
def total_nats(model: torch.nn.Module, ids: torch.Tensor, block_size: int, batch_size: int = 32) -> tuple[float, int]:
    """The summed cross-entropy (nats) of ``model`` predicting every id of ``ids`` (a 1-D tensor) after the first,
    and how many ids that is (``len(ids) - 1``).

    The text is cut into consecutive windows of ``block_size + 1`` ids that overlap by one, so every id is
    predicted exactly once, from the ids before it in its window (the first of a window sees no context, for
    a character model and a BPE model alike). ``model(idx)`` must return ``(logits, loss)`` with logits
    ``(B, T, vocab_size)``, as :class:`lecture_utils.model.GPT` does; it is put in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    n_full = (len(ids) - 1) // block_size
    windows = [(s, block_size) for s in range(0, n_full * block_size, block_size)]
    if (len(ids) - 1) % block_size:
        windows.append((n_full * block_size, (len(ids) - 1) % block_size))  # the last, shorter window
    total = 0.0
    for k in range(0, len(windows), batch_size):
        group = [w for w in windows[k:k + batch_size] if w[1] == windows[k][1]]
        rest = windows[k + len(group):k + batch_size]
        for chunk in (group, rest):
            if not chunk:
                continue
            x = torch.stack([ids[s:s + n] for s, n in chunk]).to(device)  # (B, T)
            y = torch.stack([ids[s + 1:s + n + 1] for s, n in chunk]).to(device)
            logits, _ = model(x)  # (B, T, vocab_size)
            total += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
    return total, len(ids) - 1
