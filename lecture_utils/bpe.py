"""Byte-level byte-pair encoding (chapter 14): from characters to tokens.

The lecture tokenizes by character and notes that real GPTs use sub-word tokens. Byte-pair encoding (BPE) is the
simplest way to get them: start from the 256 possible bytes of the text's UTF-8 encoding, then, again and again,
find the most frequent pair of adjacent tokens and give it a new token id. The list of merges, in the order they
were learned, *is* the tokenizer:

- :func:`count_pairs` (exercise 14.1) counts adjacent pairs;
- :func:`merge` (14.2) replaces every occurrence of one pair by a new id;
- :func:`train_bpe` (14.3) is the loop of merges: the ``i``-th merge (from 0) gets id ``256 + i``;
- :func:`encode` (14.4) turns text into bytes, then applies the merges in the order they were learned;
- :func:`decode` (14.5) joins each token's bytes, then decodes the UTF-8 once (an invalid sequence becomes
  the replacement character U+FFFD).

:class:`BPETokenizer` wraps them with the interface of :class:`lecture_utils.data.CharTokenizer`
(``encode``, ``decode``, ``vocab_size``). Every function takes and returns plain Python lists and dicts.
"""

from __future__ import annotations

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


def train_bpe(text: str, vocab_size: int) -> dict[Pair, int]:
    """The merges that grow a byte vocabulary to ``vocab_size`` tokens on ``text`` (exercise 14.3).

    Returns ``{pair: new_id}`` in the order learned; the ``i``-th merge gets ``256 + i``. Training stops early
    when no pair is left (a text of fewer than two tokens). Among equally frequent pairs the one that occurs
    first wins.

    Raises:
        ValueError: ``vocab_size`` is smaller than 256 (the bytes alone need 256 ids).
    """
    if vocab_size < N_BYTES:
        raise ValueError(f"vocab_size must be at least {N_BYTES} (one id per byte), got {vocab_size}")
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


def encode(text: str, merges: dict[Pair, int]) -> list[int]:
    """The token ids of ``text`` (exercise 14.4): its UTF-8 bytes, then the merges applied in the order they were
    learned - at each step, of the pairs present, the one learned first (lowest new id)."""
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pair = min(count_pairs(ids), key=lambda p: merges.get(p, math.inf))
        if pair not in merges:
            break  # no pair left that the tokenizer knows
        ids = merge(ids, pair, merges[pair])
    return ids


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
