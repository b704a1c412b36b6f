"""Checks for chapter 10 (addition, the lecture's EX2): 10.1 encode_problem, 10.2 make_batch, 10.3 accuracy."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn import functional as F

from lecture_utils import addition as ref
from lecture_utils.checks._core import exercise, expect, fail, fresh_seed, passed, rng
from lecture_utils.checks._device import on_second_device
from lecture_utils.checks._helpers import blame_notebook_globals


@exercise("10.1")
@blame_notebook_globals
def encode_problem(encode_problem, device="cpu"):
    """``encode_problem(a, b, n_digits)``: ids of ``a+b=`` and the reversed, zero-padded sum."""
    g = rng(fresh_seed())
    cases = [(12, 39, 2), (7, 5, 2), (99, 99, 2), (0, 0, 3), (405, 96, 3), (5, 7, 1)]
    cases += [tuple(torch.randint(10**n, (2,), generator=g).tolist()) + (n,) for n in (1, 2, 3, 4) for _ in range(3)]
    tok = ref.TOKENIZER
    for a, b, n in cases:
        got = encode_problem(a, b, n)
        if isinstance(got, torch.Tensor):
            got = got.tolist()
        want = ref.encode_problem(a, b, n)
        if got == want:
            continue
        expect(isinstance(got, (list, tuple)) and all(isinstance(i, int) for i in got),
               f"encode_problem should return a list of ints (token ids), got {type(got).__name__}")
        text = tok.decode(got) if all(0 <= i < tok.vocab_size for i in got) else None
        want_text = tok.decode(want)
        if text is None:
            fail("ids outside the vocabulary: encode with the course's tokenizer (addition.TOKENIZER.encode)")
        s = str(a + b)
        prompt = f"{a:0{n}d}+{b:0{n}d}="
        if text == prompt + s[::-1].zfill(n + 1):
            fail(f"the sum is reversed too early: for {a}+{b} expected {want_text!r}, got {text!r}; pad the sum to "
                 f"n_digits+1 digits first (zfill), then reverse, so the leading zeros end up last")
        if text == f"{a:0{n}d}+{b:0{n}d}={s.zfill(n + 1)}":
            fail(f"the answer is not reversed: for {a}+{b} expected {want_text!r}, got {text!r}; write the sum's "
                 f"digits least significant first ([::-1]), the order in which carries are computed")
        if text.startswith(f"{a}+{b}=") and (len(str(a)) < n or len(str(b)) < n):
            fail(f"the operands are not zero-padded: for {a}+{b} with n_digits={n} expected {want_text!r}, got {text!r}; "
                 f"use f'{{a:0{{n_digits}}d}}'")
        if len(text) != len(want_text):
            fail(f"for {a}+{b} with n_digits={n} the sequence should have 3*n_digits+3 = {len(want_text)} characters "
                 f"({want_text!r}), got {len(text)} ({text!r}): pad the sum to n_digits+1 digits before reversing")
        fail(f"for {a}+{b} with n_digits={n} expected {want_text!r}, got {text!r}")
    return passed("operands zero-padded, answer reversed and padded to n_digits+1, for 1 to 4 digits", encode_problem)


@exercise("10.2")
@blame_notebook_globals
def make_batch(make_batch, device="cpu"):
    """``make_batch(batch_size, n_digits, generator=None) -> (x, y)``: y is x shifted by one, the
    problem's targets set to -1."""
    tok = ref.TOKENIZER
    for n, bsz in ((2, 16), (3, 8), (1, 4)):
        out = make_batch(bsz, n, generator=rng(fresh_seed()))
        expect(isinstance(out, (tuple, list)) and len(out) == 2, "make_batch should return a pair (x, y)")
        x, y = (t.cpu() for t in out)
        L = ref.seq_len(n) - 1
        expect(tuple(x.shape) == (bsz, L) and tuple(y.shape) == (bsz, L),
               f"with n_digits={n}, x and y should be ({bsz}, 3*n_digits+2) = ({bsz}, {L}), got {tuple(x.shape)} and {tuple(y.shape)}")
        p = ref.prompt_len(n)
        for row in range(bsz):
            text = tok.decode(x[row].tolist())
            expect(text[n] == "+" and text[2 * n + 1] == "=",
                   f"row {row} of x is {text!r}: it should start with a problem 'a+b=' built by encode_problem")
            a, b = int(text[:n]), int(text[n + 1:2 * n + 1])
            want = torch.tensor(ref.encode_problem(a, b, n))
            expect(torch.equal(x[row], want[:-1]), f"row {row} of x should be encode_problem({a}, {b}, {n})[:-1]")
            if ref.is_held_out(a, b):
                fail(f"the held-out problem {a}+{b} appears in a training batch: sample only pairs with "
                     f"not addition.is_held_out(a, b) (addition.sample_problems does)")
            masked = (y[row] == ref.IGNORE)
            if not masked.any():
                if torch.equal(y[row], want[1:]):
                    fail("no target is masked: set y[:, :2*n_digits+1] = -1 so the loss ignores the problem's positions "
                         "(the operands are random: nothing to learn there)")
                if (y[row][: p - 1] == 0).all():
                    fail("the problem's targets are set to 0, which is the digit '0': use -1, the ignore_index of the loss")
            expect(torch.equal(y[row][p - 1:], want[p:]),
                   f"the answer targets are wrong in row {row}: y[:, 2*n_digits+1:] should be the answer digits "
                   f"(x shifted by one), unmasked")
            if not masked[: p - 1].all():
                fail(f"the targets of the problem's positions must all be -1: the first {p - 1} targets "
                     f"(predicting the rest of 'a+b=') are not masked")
    return passed("(B, 3n+2) batches of training problems, y = x shifted, only the answer digits scored", make_batch)


class _Oracle(nn.Module):
    """A 'model' whose logits put the answer it was told for each problem at the right place."""

    def __init__(self, n_digits: int, answers: dict[tuple[int, int], int]):
        super().__init__()
        self.n, self.answers = n_digits, answers
        # read like an embedding table, so a batch left on the CPU meets a parameter on the second device
        self.dummy = nn.Parameter(torch.zeros(ref.TOKENIZER.vocab_size, 1))
        self.calls_in_train_mode = 0

    def forward(self, idx, targets=None):
        if self.training:
            self.calls_in_train_mode += 1
        B, T = idx.shape
        n, p = self.n, ref.prompt_len(self.n)
        logits = torch.full((B, T, ref.TOKENIZER.vocab_size), -5.0, device=idx.device)
        logits = logits + F.embedding(idx, self.dummy)
        for row in range(B):
            text = ref.TOKENIZER.decode(idx[row, :p].tolist())
            a, b = int(text[:n]), int(text[n + 1:2 * n + 1])
            digits = str(self.answers.get((a, b), a + b)).zfill(n + 1)[::-1]
            k = T - p  # answer digits already written
            if 0 <= k <= n:
                d = int(digits[k])
                logits[row, -1, d] = 5.0
                logits[row, -1, (d + 1) % 10] = 4.5  # a close second: sampling often picks it
        return logits, None


@exercise("10.3")
@blame_notebook_globals
def addition_accuracy(accuracy, device="cpu"):
    """``accuracy(model, problems, n_digits) -> float``: the fraction answered exactly, greedily."""
    n = 2
    g = rng(fresh_seed())
    problems = [tuple(p) for p in torch.randint(100, (40, 2), generator=g).tolist()]
    wrong = {problems[i]: problems[i][0] + problems[i][1] + 1 for i in range(0, 40, 4)}  # 10 of 40 off by one
    model = _Oracle(n, wrong).to(device).train()
    got = accuracy(model, problems, n)
    if isinstance(got, torch.Tensor):
        got = got.item()
    expect(isinstance(got, float), f"accuracy should return a Python float, got {type(got).__name__}")
    # sampling would give different values: five calls of sampled decoding agree by chance in < 0.1 % of runs
    again = [accuracy(model, problems, n) for _ in range(4)]
    again = [a.item() if isinstance(a, torch.Tensor) else a for a in again]
    expect(all(abs(a - got) < 1e-9 for a in again), "accuracy changes from call to call: decode with argmax, not by sampling")
    want = ref.accuracy(_Oracle(n, wrong).to(device), problems, n)
    if abs(got - want) > 1e-6:
        # a digit-level score gives partial credit to answers that are wrong in one digit
        if got > want:
            fail(f"accuracy is {got:.3f}, expected {want:.3f}: count a problem as correct only when ALL its answer "
                 f"digits match (exact match), not digit by digit")
        fail(f"accuracy is {got:.3f}, expected {want:.3f} (10 of the 40 answers are wrong): decode greedily with "
             f"argmax, n_digits+1 digits after the prompt 'a+b=', and compare with the reversed answer")
    expect(model.training, "accuracy should put the model back in train mode (model.train(was_training))")
    expect(model.calls_in_train_mode == 0, "evaluate in eval mode: call model.eval() before decoding")
    on_second_device(lambda m: accuracy(m, problems, n), _Oracle(n, wrong), device=device, what="accuracy",
                     what_input="model", returns=False, learner=(accuracy,))
    return passed("exact match on all n+1 digits, greedy decoding, eval mode restored", accuracy)
