"""Wrong solutions of chapter 01: the data (1.1-1.3)."""

from __future__ import annotations

import torch

from lecture_utils import data
from lecture_utils.data import get_batch as ref_get_batch

from ._catalogue import wrong


def _vocabulary() -> list[str]:
    return sorted(set(data.load_text()))


@wrong("1.1", "encode_decode", "ord(c)", needs_corpus=True)
def encode_with_ord():
    itos = dict(enumerate(_vocabulary()))
    return (lambda s: [ord(c) for c in s]), (lambda ids: "".join(itos[i] for i in ids))


@wrong("1.1", "encode_decode", "sorted", needs_corpus=True)
def vocabulary_not_sorted():
    chars = _vocabulary()[::-1]  # e.g. list(set(text)): some order, not the sorted one
    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = dict(enumerate(chars))
    return (lambda s: [stoi[c] for c in s]), (lambda ids: "".join(itos[i] for i in ids))


@wrong("1.1", "encode_decode", "decode should return a string", needs_corpus=True)
def decode_without_join():
    chars = _vocabulary()
    stoi = {ch: i for i, ch in enumerate(chars)}
    return (lambda s: [stoi[c] for c in s]), (lambda ids: [chars[i] for i in ids])


@wrong("1.2", "split_data", "swapped")
def split_swapped():
    def split_data(data, train_frac=0.9):
        n = int(train_frac * len(data))
        return data[n:], data[:n]

    return (split_data,)


@wrong("1.2", "split_data", "shuffled")
def split_shuffled():
    def split_data(data, train_frac=0.9):
        data = data[torch.randperm(len(data))]
        n = int(train_frac * len(data))
        return data[:n], data[n:]

    return (split_data,)


@wrong("1.2", "split_data", "train_frac=0.75")
def split_ignores_train_frac():
    def split_data(data, train_frac=0.9):
        n = int(0.9 * len(data))
        return data[:n], data[n:]

    return (split_data,)


@wrong("1.2", "split_data", "exactly one split")
def split_overlapping():
    def split_data(data, train_frac=0.9):
        n = int(train_frac * len(data))
        return data[:n], data[n - 1:]

    return (split_data,)


@wrong("1.3", "get_batch", "batch dimension comes first")
def batch_transposed():
    def get_batch(data, block_size, batch_size, generator=None):
        x, y = ref_get_batch(data, block_size, batch_size, generator=generator)
        return x.T, y.T

    return (get_batch,)


@wrong("1.3", "get_batch", "y equals x")
def targets_equal_inputs():
    def get_batch(data, block_size, batch_size, generator=None):
        x, _ = ref_get_batch(data, block_size, batch_size, generator=generator)
        return x, x.clone()

    return (get_batch,)


@wrong("1.3", "get_batch", "shifted the wrong way")
def targets_shifted_back():
    def get_batch(data, block_size, batch_size, generator=None):
        ix = torch.randint(1, len(data) - block_size, (batch_size,), generator=generator)
        x = torch.stack([data[i:i + block_size] for i in ix])
        y = torch.stack([data[i - 1:i + block_size - 1] for i in ix])
        return x, y

    return (get_batch,)


@wrong("1.3", "get_batch", "last chunk of data is never chosen")
def last_chunk_never_chosen():
    def get_batch(data, block_size, batch_size, generator=None):
        ix = torch.randint(len(data) - block_size - 1, (batch_size,), generator=generator)
        x = torch.stack([data[i:i + block_size] for i in ix])
        y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
        return x, y

    return (get_batch,)


@wrong("1.3", "get_batch", "same generator seed should give the same batch")
def batch_ignores_generator():
    def get_batch(data, block_size, batch_size, generator=None):
        ix = torch.randint(len(data) - block_size, (batch_size,))
        x = torch.stack([data[i:i + block_size] for i in ix])
        y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
        return x, y

    return (get_batch,)


@wrong("1.3", "get_batch", "an offset lets a chunk run past the end of data")
def offsets_run_past_the_end():
    def get_batch(data, block_size, batch_size, generator=None):
        ix = torch.randint(len(data) - block_size + 1, (batch_size,), generator=generator)  # one too many
        x = torch.stack([data[i:i + block_size] for i in ix])
        y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
        return x, y

    return (get_batch,)


@wrong("1.3", "get_batch", "an offset lets a chunk run past the end of data")
def offsets_anywhere_in_data():
    def get_batch(data, block_size, batch_size, generator=None):
        ix = torch.randint(len(data), (batch_size,), generator=generator)
        x = torch.stack([data[i:i + block_size] for i in ix])
        y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
        return x, y

    return (get_batch,)


@wrong("1.3", "get_batch", "one offset was drawn for the whole batch")
def one_offset_for_the_batch():
    def get_batch(data, block_size, batch_size, generator=None):
        i = torch.randint(len(data) - block_size, (1,), generator=generator).item()
        x = torch.stack([data[i:i + block_size] for _ in range(batch_size)])
        y = torch.stack([data[i + 1:i + block_size + 1] for _ in range(batch_size)])
        return x, y

    return (get_batch,)

