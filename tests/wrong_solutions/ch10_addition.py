"""Wrong solutions of chapter 10: addition (10.1-10.3)."""

from __future__ import annotations

import torch

from lecture_utils import addition as A

from ._catalogue import wrong


@wrong("10.1", "encode_problem", "not reversed")
def answer_not_reversed():
    def encode_problem(a, b, n_digits):
        return A.TOKENIZER.encode(f"{a:0{n_digits}d}+{b:0{n_digits}d}={str(a + b).zfill(n_digits + 1)}")

    return (encode_problem,)


@wrong("10.1", "encode_problem", "not zero-padded")
def operands_not_padded():
    def encode_problem(a, b, n_digits):
        return A.TOKENIZER.encode(f"{a}+{b}={str(a + b).zfill(n_digits + 1)[::-1]}")

    return (encode_problem,)


@wrong("10.1", "encode_problem", "pad the sum to n_digits+1")
def sum_not_padded():
    def encode_problem(a, b, n_digits):
        return A.TOKENIZER.encode(f"{a:0{n_digits}d}+{b:0{n_digits}d}={str(a + b)[::-1]}")

    return (encode_problem,)


@wrong("10.1", "encode_problem", "reversed too early")
def padded_after_reversing():
    # reverses the unpadded sum, then pads: "12+39=150" is right but "05+07=210" becomes "021"
    def encode_problem(a, b, n_digits):
        return A.TOKENIZER.encode(f"{a:0{n_digits}d}+{b:0{n_digits}d}={str(a + b)[::-1].zfill(n_digits + 1)}")

    return (encode_problem,)


@wrong("10.2", "make_batch", "no target is masked")
def batch_without_mask():
    def make_batch(batch_size, n_digits, generator=None):
        seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in A.sample_problems(batch_size, n_digits, generator)])
        return seqs[:, :-1], seqs[:, 1:]

    return (make_batch,)


@wrong("10.2", "make_batch", "use -1")
def batch_masked_with_zero():
    def make_batch(batch_size, n_digits, generator=None):
        seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in A.sample_problems(batch_size, n_digits, generator)])
        x, y = seqs[:, :-1], seqs[:, 1:].clone()
        y[:, : 2 * n_digits + 1] = 0
        return x, y

    return (make_batch,)


@wrong("10.2", "make_batch", "answer targets are wrong")
def batch_masks_first_answer_digit():
    def make_batch(batch_size, n_digits, generator=None):
        seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in A.sample_problems(batch_size, n_digits, generator)])
        x, y = seqs[:, :-1], seqs[:, 1:].clone()
        y[:, : 2 * n_digits + 2] = -1  # one too many: the first answer digit is never trained
        return x, y

    return (make_batch,)


@wrong("10.2", "make_batch", "must all be -1")
def batch_leaves_equals_sign_target():
    def make_batch(batch_size, n_digits, generator=None):
        seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in A.sample_problems(batch_size, n_digits, generator)])
        x, y = seqs[:, :-1], seqs[:, 1:].clone()
        y[:, : 2 * n_digits] = -1  # one too few: the model is asked to predict '='
        return x, y

    return (make_batch,)


@wrong("10.2", "make_batch", "held-out problem")
def batch_uses_held_out_problems():
    def make_batch(batch_size, n_digits, generator=None):
        ab = torch.randint(10**n_digits, (batch_size, 2), generator=generator).tolist()
        ab[0] = next((a, b) for a in range(10**n_digits) for b in range(10**n_digits) if A.is_held_out(a, b))
        seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in ab])
        x, y = seqs[:, :-1], seqs[:, 1:].clone()
        y[:, : 2 * n_digits + 1] = -1
        return x, y

    return (make_batch,)


def _greedy_answers(model, problems, n_digits):
    p = A.prompt_len(n_digits)
    seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in problems])
    idx = seqs[:, :p]
    for _ in range(n_digits + 1):
        logits, _ = model(idx)
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return idx[:, p:], seqs[:, p:]


@wrong("10.3", "addition_accuracy", "ALL its answer")
def accuracy_per_digit():
    @torch.no_grad()
    def accuracy(model, problems, n_digits):
        model.eval()
        got, want = _greedy_answers(model, problems, n_digits)
        model.train()
        return (got == want).float().mean().item()  # digit by digit: partial credit

    return (accuracy,)


@wrong("10.3", "addition_accuracy", "argmax, not by sampling")
def accuracy_by_sampling():
    @torch.no_grad()
    def accuracy(model, problems, n_digits):
        model.eval()
        p = A.prompt_len(n_digits)
        seqs = torch.tensor([A.encode_problem(a, b, n_digits) for a, b in problems])
        idx = seqs[:, :p]
        for _ in range(n_digits + 1):
            logits, _ = model(idx)
            nxt = torch.multinomial(torch.softmax(logits[:, -1], -1), 1)
            idx = torch.cat([idx, nxt], dim=1)
        model.train()
        return (idx[:, p:] == seqs[:, p:]).all(1).float().mean().item()

    return (accuracy,)


@wrong("10.3", "addition_accuracy", "eval mode")
def accuracy_in_train_mode():
    @torch.no_grad()
    def accuracy(model, problems, n_digits):
        got, want = _greedy_answers(model, problems, n_digits)
        return (got == want).all(1).float().mean().item()

    return (accuracy,)


@wrong("10.3", "addition_accuracy", "back in train mode")
def accuracy_leaves_eval_mode():
    @torch.no_grad()
    def accuracy(model, problems, n_digits):
        model.eval()
        got, want = _greedy_answers(model, problems, n_digits)
        return (got == want).all(1).float().mean().item()

    return (accuracy,)
