"""Checks for chapter 01 (data): 1.1 encode/decode, 1.2 split_data, 1.3 get_batch."""

from __future__ import annotations

import torch

from lecture_utils import data as ref
from lecture_utils.checks._core import exercise, expect, fail, fresh_seed, passed, rng
from lecture_utils.checks._device import on_second_device
from lecture_utils.checks._helpers import blame_notebook_globals, call

_SAMPLE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak."


@exercise("1.1")
@blame_notebook_globals
def encode_decode(encode, decode, device="cpu"):
    """``encode(str) -> list[int]`` and ``decode(list[int]) -> str`` built from the sorted vocabulary
    of Tiny Shakespeare (``stoi``/``itos``). Text only: ``device`` is accepted for uniformity."""
    tok = ref.CharTokenizer.from_text(ref.load_text())
    g = rng(fresh_seed())
    ids = encode(_SAMPLE)
    expect(isinstance(ids, (list, tuple)) or isinstance(ids, torch.Tensor),
           f"encode should return a list of integers, got {type(ids).__name__}")
    ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
    expect(all(isinstance(i, int) for i in ids),
           "encode should return Python ints (use stoi[c], not the character itself)")
    expect(len(ids) == len(_SAMPLE), f"encode returned {len(ids)} ids for {len(_SAMPLE)} characters: one id per character")
    want = tok.encode(_SAMPLE)
    if ids != want:
        if any(not 0 <= i < tok.vocab_size for i in ids):
            if ids == [ord(c) for c in _SAMPLE]:
                fail("encode returned ord(c), the Unicode code point; use the position of c in the sorted vocabulary (stoi)")
            fail("encode produced ids outside 0..64: build stoi from the vocabulary, e.g. {ch: i for i, ch in enumerate(chars)}")
        fail("encode gives different ids from the sorted vocabulary: build chars = sorted(set(text)) "
             "(sorted, so the ids are the same every run) and stoi = {ch: i for i, ch in enumerate(chars)}")
    # decode on random ids, and the round trip
    rand = torch.randint(tok.vocab_size, (200,), generator=g).tolist()
    out = decode(rand)
    expect(isinstance(out, str),
           f"decode should return a string, got {type(out).__name__} (join the characters with ''.join(...))")
    expect(out == tok.decode(rand), "decode does not invert encode: use itos = {i: ch for i, ch in enumerate(chars)} and ''.join(itos[i] for i in ids)")
    expect(decode(encode(_SAMPLE)) == _SAMPLE, "decode(encode(s)) should give back s")
    expect(encode("") in ([], ()) and decode([]) == "", "the empty string should encode to [] and decode back to ''")
    return passed("encode matches the sorted vocabulary and decode(encode(s)) == s on random text",
                  (encode, decode))


@exercise("1.2")
@blame_notebook_globals
def split_data(split_data, device="cpu"):
    """``split_data(data, train_frac) -> (train, val)``: the first ``train_frac`` for training."""
    g = rng(fresh_seed())
    n = int(torch.randint(50, 500, (1,), generator=g))
    data = torch.randint(65, (n,), generator=g).to(device)
    for frac in (0.9, 0.75):
        out = split_data(data, frac)
        expect(isinstance(out, (tuple, list)) and len(out) == 2, "split_data should return a pair (train, val)")
        tr, va = out
        want_tr, want_va = ref.split_data(data, frac)
        tr, va = (t.to(device) if isinstance(t, torch.Tensor) else t for t in (tr, va))
        expect(isinstance(tr, torch.Tensor) and isinstance(va, torch.Tensor), "train and val should be tensors (slices of data)")
        expect(len(tr) + len(va) == n, f"train and val together have {len(tr) + len(va)} tokens, data has {n}: every token goes to exactly one split")
        if len(tr) == len(want_va) and len(va) == len(want_tr):
            fail("train and val are swapped: the first 90% is for training")
        if torch.equal(tr, want_tr) and torch.equal(va, want_va):
            continue
        if len(tr) == len(want_tr) and not torch.equal(tr, want_tr):
            fail("the split is shuffled or not taken from the start: take train = data[:n] and val = data[n:] "
                 "so the validation text is one continuous piece the model never saw")
        fail(f"with train_frac={frac} and {n} tokens, train should have int({frac} * {n}) = {len(want_tr)} tokens, "
             f"got {len(tr)}; use n = int(train_frac * len(data))")
    on_second_device(split_data, data, 0.9, device=device, what="split_data", what_input="data")
    return passed("first train_frac for training, the rest for validation, no shuffling", split_data)


PAST_END = ("an offset lets a chunk run past the end of data (y = data[i+1 : i+block_size+1] needs block_size + 1 "
            "tokens from i): draw i from torch.randint(len(data) - block_size, (batch_size,)), whose upper bound is "
            "exclusive")


@exercise("1.3")
@blame_notebook_globals
def get_batch(get_batch, device="cpu"):
    """``get_batch(data, block_size, batch_size, generator) -> (x, y)`` of shape (B, T), y = x shifted by one."""
    g = rng(fresh_seed())
    data = torch.randint(65, (300,), generator=g)
    # the chunks must fit: with block_size + 2 tokens only the offsets 0 and 1 do (y needs one token more than x);
    # 64 batches of 8 draw an offset past them with probability 1 - 2**-512 if the range is too wide
    tight = torch.arange(6)
    for s in range(64):
        out = call(get_batch, tight, 4, 8, generator=rng(s), hints=(("stack expects each tensor to be equal size",
                                                                     PAST_END),))
        if isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out):
            if out[1].dim() == 2 and out[1].shape[1] < 4 and out[0].shape[0] == 8:
                fail(PAST_END)
    for block_size, batch_size in ((7, 5), (1, 3), (16, 1)):
        out = get_batch(data, block_size, batch_size, generator=rng(7))
        expect(isinstance(out, (tuple, list)) and len(out) == 2, "get_batch should return a pair (x, y)")
        x, y = out
        expect(isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor), "x and y should be tensors")
        if x.shape == (block_size, batch_size) and block_size != batch_size:
            fail(f"x has shape {tuple(x.shape)}: the batch dimension comes first, (batch_size, block_size)")
        expect(x.shape == (batch_size, block_size) and y.shape == (batch_size, block_size),
               f"x and y should have shape (batch_size, block_size) = {(batch_size, block_size)}, got {tuple(x.shape)} and {tuple(y.shape)}")
        expect(x.dtype == torch.long, f"x should hold token ids (torch.long), got {x.dtype}")
        if torch.equal(x, y):
            fail("y equals x: the targets are the next characters, y = data[i+1 : i+block_size+1]")
        if batch_size > 1 and bool((x == x[0]).all()):
            fail(f"all {batch_size} rows of x are the same chunk: one offset was drawn for the whole batch. Draw one "
                 f"per row, ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator), and stack "
                 f"data[i : i+block_size] for each i in ix")
        # each row must be a real chunk of data, and y its continuation
        for row in range(batch_size):
            xs = x[row].tolist()
            starts = [i for i in range(len(data) - block_size + 1) if data[i:i + block_size].tolist() == xs]
            expect(starts, "a row of x is not a contiguous chunk of data: take data[i : i+block_size] for a random i")
            ok = any(i + block_size < len(data) and data[i + 1:i + block_size + 1].tolist() == y[row].tolist() for i in starts)
            if not ok:
                if any(i >= 1 and data[i - 1:i + block_size - 1].tolist() == y[row].tolist() for i in starts):
                    fail("y is shifted the wrong way: y[t] must be the character AFTER x[t], i.e. data[i+1 : i+block_size+1]")
                fail("y is not x shifted by one: y should be data[i+1 : i+block_size+1] for the same i as x")
    # offsets must reach the very end of the data and must not run past it
    small = torch.arange(10)
    seen_last = False
    for s in range(40):
        x, y = get_batch(small, 4, 8, generator=rng(s))
        expect(int(y.max()) <= 9, "get_batch reads past the end of data")
        seen_last |= bool((y == 9).any())
    expect(seen_last, "the last chunk of data is never chosen: draw i from torch.randint(len(data) - block_size, ...)")
    # randomness from the generator
    a = get_batch(data, 8, 4, generator=rng(123))[0]
    b = get_batch(data, 8, 4, generator=rng(123))[0]
    c = get_batch(data, 8, 4, generator=rng(124))[0]
    expect(torch.equal(a, b), "the same generator seed should give the same batch: pass generator= to torch.randint")
    expect(not torch.equal(a, c), "different seeds give the same batch: the offsets should be random (torch.randint with the generator)")
    on_second_device(lambda d: get_batch(d, 8, 4, generator=rng(5)), data, device=device, what="get_batch",
                     what_input="data")
    return passed("shapes (B, T), y = x shifted by one, random offsets from the generator, reaches the end of data", get_batch)
