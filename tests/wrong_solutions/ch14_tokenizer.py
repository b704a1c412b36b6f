"""Wrong solutions of chapter 14: byte-pair encoding (14.1 count_pairs, 14.2 merge, 14.3 train_bpe, 14.4 encode,
14.5 decode). Later exercises call the reference's earlier pieces, as a notebook whose earlier cells passed would."""

from __future__ import annotations

from lecture_utils import bpe as B

from ._catalogue import wrong

# --------------------------------------------------------------------------------------------- 14.1 count_pairs


@wrong("14.1", "count_pairs", "a pair across the end")
def pairs_wrap_around():
    def count_pairs(ids):
        counts = {}
        for pair in zip(ids, ids[1:] + ids[:1]):  # "the next one", wrapping round
            counts[pair] = counts.get(pair, 0) + 1
        return counts

    return (count_pairs,)


@wrong("14.1", "count_pairs", "the last pair (ids[-2], ids[-1]) is missing")
def pairs_stop_one_early():
    def count_pairs(ids):
        counts = {}
        for i in range(len(ids) - 2):
            pair = (ids[i], ids[i + 1])
            counts[pair] = counts.get(pair, 0) + 1
        return counts

    return (count_pairs,)


@wrong("14.1", "count_pairs", "every other pair")
def pairs_step_of_two():
    def count_pairs(ids):
        counts = {}
        for i in range(0, len(ids) - 1, 2):
            pair = (ids[i], ids[i + 1])
            counts[pair] = counts.get(pair, 0) + 1
        return counts

    return (count_pairs,)


@wrong("14.1", "count_pairs", "each pair is counted once")
def pairs_set_not_counted():
    def count_pairs(ids):
        return {pair: 1 for pair in zip(ids, ids[1:])}

    return (count_pairs,)


@wrong("14.1", "count_pairs", "index out of range")
def pairs_read_past_the_end():
    def count_pairs(ids):
        counts = {}
        for i in range(len(ids)):
            pair = (ids[i], ids[i + 1])
            counts[pair] = counts.get(pair, 0) + 1
        return counts

    return (count_pairs,)


@wrong("14.1", "count_pairs", "returns a list")
def pairs_most_common():
    from collections import Counter

    def count_pairs(ids):
        return Counter(zip(ids, ids[1:])).most_common()

    return (count_pairs,)


# --------------------------------------------------------------------------------------------- 14.2 merge


@wrong("14.2", "merge", "overlapping matches")
def merge_steps_by_one():
    def merge(ids, pair, new_id):
        out = []
        for i in range(len(ids)):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                out.append(new_id)
            else:
                out.append(ids[i])
        return out

    return (merge,)


@wrong("14.2", "merge", "the last id is dropped")
def merge_drops_the_tail():
    def merge(ids, pair, new_id):
        out, i = [], 0
        while i < len(ids) - 1:
            if (ids[i], ids[i + 1]) == pair:
                out.append(new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        return out

    return (merge,)


@wrong("14.2", "merge", "only the first occurrence")
def merge_first_occurrence():
    def merge(ids, pair, new_id):
        for i in range(len(ids) - 1):
            if (ids[i], ids[i + 1]) == pair:
                return ids[:i] + [new_id] + ids[i + 2:]
        return list(ids)

    return (merge,)


@wrong("14.2", "merge", "changed the list it was given")
def merge_in_place():
    def merge(ids, pair, new_id):
        i = 0
        while i < len(ids) - 1:
            if (ids[i], ids[i + 1]) == pair:
                ids[i:i + 2] = [new_id]
            i += 1
        return ids

    return (merge,)


@wrong("14.2", "merge", "not a fixed number")
def merge_fixed_id():
    def merge(ids, pair, new_id):
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                out.append(256)  # "the first new token"
                i += 2
            else:
                out.append(ids[i])
                i += 1
        return out

    return (merge,)


@wrong("14.2", "merge", "taken from the right")
def merge_from_the_right():
    def merge(ids, pair, new_id):
        out, i = [], len(ids) - 1
        while i >= 0:
            if i >= 1 and (ids[i - 1], ids[i]) == pair:
                out.append(new_id)
                i -= 2
            else:
                out.append(ids[i])
                i -= 1
        return out[::-1]

    return (merge,)


# --------------------------------------------------------------------------------------------- 14.3 train_bpe


@wrong("14.3", "train_bpe", "off by one in the new ids")
def train_ids_from_257():
    def train_bpe(text, vocab_size):
        ids = list(text.encode("utf-8"))
        merges = {}
        for i in range(vocab_size - 256):
            counts = B.count_pairs(ids)
            if not counts:
                break
            pair = max(counts, key=counts.get)
            merges[pair] = 256 + i + 1
            ids = B.merge(ids, pair, 256 + i + 1)
        return merges

    return (train_bpe,)


@wrong("14.3", "train_bpe", "the same pair is merged at every step")
def train_never_updates_ids():
    def train_bpe(text, vocab_size):
        ids = list(text.encode("utf-8"))
        merges = {}
        for i in range(vocab_size - 256):
            counts = B.count_pairs(ids)
            if not counts:
                break
            pair = max(counts, key=counts.get)
            merges[pair] = 256 + i
            B.merge(ids, pair, 256 + i)  # the merged list is thrown away
        return merges

    return (train_bpe,)


@wrong("14.3", "train_bpe", "already holds the 256 bytes")
def train_vocab_size_merges():
    def train_bpe(text, vocab_size):
        ids = list(text.encode("utf-8"))
        merges = {}
        for i in range(vocab_size):
            counts = B.count_pairs(ids)
            if not counts:
                break
            pair = max(counts, key=counts.get)
            merges[pair] = 256 + i
            ids = B.merge(ids, pair, 256 + i)
        return merges

    return (train_bpe,)


@wrong("14.3", "train_bpe", "the least frequent pair")
def train_min_not_max():
    def train_bpe(text, vocab_size):
        ids = list(text.encode("utf-8"))
        merges = {}
        for i in range(vocab_size - 256):
            counts = B.count_pairs(ids)
            if not counts:
                break
            pair = min(counts, key=counts.get)
            merges[pair] = 256 + i
            ids = B.merge(ids, pair, 256 + i)
        return merges

    return (train_bpe,)


@wrong("14.3", "train_bpe", "learned on characters (ord), not on bytes")
def train_on_characters():
    def train_bpe(text, vocab_size):
        ids = [ord(c) for c in text]
        merges = {}
        for i in range(vocab_size - 256):
            counts = B.count_pairs(ids)
            if not counts:
                break
            pair = max(counts, key=counts.get)
            merges[pair] = 256 + i
            ids = B.merge(ids, pair, 256 + i)
        return merges

    return (train_bpe,)


@wrong("14.3", "train_bpe", "no pair to merge")
def train_without_stopping():
    def train_bpe(text, vocab_size):
        ids = list(text.encode("utf-8"))
        merges = {}
        for i in range(vocab_size - 256):
            counts = B.count_pairs(ids)
            pair = max(counts, key=counts.get)
            merges[pair] = 256 + i
            ids = B.merge(ids, pair, 256 + i)
        return merges

    return (train_bpe,)


@wrong("14.3", "train_bpe", "the merges' keys should be pairs of integer ids")
def train_on_strings():
    def train_bpe(text, vocab_size):
        ids = list(text)  # characters, as chapter 01 did
        merges = {}
        for i in range(vocab_size - 256):
            counts = B.count_pairs(ids)
            if not counts:
                break
            pair = max(counts, key=counts.get)
            merges[pair] = 256 + i
            ids = B.merge(ids, pair, 256 + i)
        return merges

    return (train_bpe,)


# --------------------------------------------------------------------------------------------- 14.4 encode


@wrong("14.4", "bpe_encode", "applied by frequency")
def encode_by_frequency():
    def encode(text, merges):
        ids = list(text.encode("utf-8"))
        while len(ids) >= 2:
            counts = {p: n for p, n in B.count_pairs(ids).items() if p in merges}
            if not counts:
                break
            pair = max(counts, key=counts.get)  # "the most frequent pair first, as in training"
            ids = B.merge(ids, pair, merges[pair])
        return ids

    return (encode,)


@wrong("14.4", "bpe_encode", "latest first")
def encode_highest_id_first():
    def encode(text, merges):
        ids = list(text.encode("utf-8"))
        for pair, new_id in reversed(list(merges.items())):
            ids = B.merge(ids, pair, new_id)
        return ids

    return (encode,)


@wrong("14.4", "bpe_encode", "split into characters (ord), not bytes")
def encode_characters():
    def encode(text, merges):
        ids = [ord(c) for c in text]
        for pair, new_id in merges.items():
            ids = B.merge(ids, pair, new_id)
        return ids

    return (encode,)


@wrong("14.4", "bpe_encode", "only one merge was applied")
def encode_one_merge():
    def encode(text, merges):
        ids = list(text.encode("utf-8"))
        if len(ids) >= 2:
            pair = min(B.count_pairs(ids), key=lambda p: merges.get(p, float("inf")))
            if pair in merges:
                ids = B.merge(ids, pair, merges[pair])
        return ids

    return (encode,)


@wrong("14.4", "bpe_encode", "a pair that is not in merges was looked up")
def encode_no_stop():
    def encode(text, merges):
        ids = list(text.encode("utf-8"))
        while len(ids) >= 2:
            pair = min(B.count_pairs(ids), key=lambda p: merges.get(p, float("inf")))
            ids = B.merge(ids, pair, merges[pair])
        return ids

    return (encode,)


@wrong("14.4", "bpe_encode", "no pair")
def encode_empty_text_crashes():
    def encode(text, merges):
        ids = list(text.encode("utf-8"))
        while True:
            pair = min(B.count_pairs(ids), key=lambda p: merges.get(p, float("inf")))
            if pair not in merges:
                break
            ids = B.merge(ids, pair, merges[pair])
        return ids

    return (encode,)


# --------------------------------------------------------------------------------------------- 14.5 decode


@wrong("14.5", "bpe_decode", "each token was decoded to text on its own")
def decode_token_by_token():
    def decode(ids, merges):
        vocab = B.vocabulary(merges)
        return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)

    return (decode,)


@wrong("14.5", "bpe_decode", "errors='replace'")
def decode_strict():
    def decode(ids, merges):
        vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in merges.items():
            vocab[new_id] = vocab[a] + vocab[b]
        return b"".join(vocab[i] for i in ids).decode("utf-8")

    return (decode,)


@wrong("14.5", "bpe_decode", "dropped (errors='ignore')")
def decode_ignore():
    def decode(ids, merges):
        vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in merges.items():
            vocab[new_id] = vocab[a] + vocab[b]
        return b"".join(vocab[i] for i in ids).decode("utf-8", errors="ignore")

    return (decode,)


@wrong("14.5", "bpe_decode", "a byte is not a character")
def decode_chr():
    def decode(ids, merges):
        vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in merges.items():
            vocab[new_id] = vocab[a] + vocab[b]
        return "".join(chr(byte) for byte in b"".join(vocab[i] for i in ids))

    return (decode,)


@wrong("14.5", "bpe_decode", "its first part's then its second's")
def decode_swapped_parts():
    def decode(ids, merges):
        vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in merges.items():
            vocab[new_id] = vocab[b] + vocab[a]
        return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")

    return (decode,)


@wrong("14.5", "bpe_decode", "ids above 255 are merged tokens")
def decode_ids_as_bytes():
    def decode(ids, merges):
        return bytes(ids).decode("utf-8", errors="replace")

    return (decode,)
