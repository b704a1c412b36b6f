"""lecture_utils.addition: the problem format, the masked batches, the held-out split, accuracy."""

from collections import Counter

import torch

from lecture_utils import addition as A


def test_problem_format_pads_and_reverses():
    assert A.TOKENIZER.decode(A.encode_problem(12, 39, 2)) == "12+39=150"
    assert A.TOKENIZER.decode(A.encode_problem(5, 7, 2)) == "05+07=210"
    assert A.TOKENIZER.decode(A.encode_problem(999, 1, 3)) == "999+001=0001"
    assert A.decode_answer(A.TOKENIZER.encode("150")) == 51
    assert len(A.encode_problem(3, 4, 4)) == A.seq_len(4)


def test_batches_score_only_the_answer():
    x, y = A.make_batch(32, 3, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (32, A.seq_len(3) - 1)
    p = A.prompt_len(3)
    assert (y[:, : p - 1] == -1).all() and (y[:, p - 1:] >= 0).all()
    assert torch.equal(x[:, 1:], torch.where(y[:, :-1] == -1, x[:, 1:], y[:, :-1]))  # y is x shifted where unmasked


def test_held_out_pairs_are_a_tenth_and_have_no_digit_pattern():
    held = [(a, b) for a in range(100) for b in range(100) if A.is_held_out(a, b)]
    assert 0.08 < len(held) / 10_000 < 0.12
    ones = Counter((a + b) % 10 for a, b in held)
    assert len(ones) == 10 and max(ones.values()) < 2 * min(ones.values())  # every last digit of the sum occurs
    train = A.sample_problems(500, 2, torch.Generator().manual_seed(1))
    assert not any(A.is_held_out(a, b) for a, b in train)
    assert all(A.is_held_out(a, b) for a, b in A.sample_problems(50, 2, torch.Generator().manual_seed(2), held_out=True))


class _Perfect(torch.nn.Module):
    """Knows every answer: logits one-hot on the right next digit."""

    def __init__(self, n):
        super().__init__()
        self.n, self.w = n, torch.nn.Parameter(torch.zeros(1))

    def forward(self, idx, targets=None):
        B, T = idx.shape
        out = torch.zeros(B, T, 12)
        for r in range(B):
            text = A.TOKENIZER.decode(idx[r, : A.prompt_len(self.n)].tolist())
            a, b = int(text[: self.n]), int(text[self.n + 1: 2 * self.n + 1])
            digits = str(a + b).zfill(self.n + 1)[::-1]
            out[r, -1, int(digits[T - A.prompt_len(self.n)])] = 1.0
        return out, None


def test_accuracy_of_a_perfect_model_is_one_and_restores_mode():
    m = _Perfect(2).train()
    assert A.accuracy(m, [(12, 39), (99, 99), (0, 0)], 2) == 1.0
    assert m.training
