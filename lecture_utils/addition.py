"""Chapter 10 (the lecture's exercise EX2): teach a GPT to add n-digit numbers.

A problem ``a + b`` becomes one character sequence: both operands zero-padded to ``n_digits``,
then ``=``, then the sum's ``n_digits + 1`` digits **reversed** (least significant first, the order
in which carries are computed)::

    n_digits=2, 12 + 39 = 51  ->  "12+39=150"

Training pairs ``x = seq[:-1]``, ``y = seq[1:]`` with the targets of the problem's positions set to
``-1``: ``F.cross_entropy(..., ignore_index=-1)`` then scores only the answer, so the model is never
asked to predict the random operands. Problems come from a generator, never from a file; a fixed
tenth of all ``(a, b)`` pairs is held out for measuring accuracy on problems never trained on.
"""

from __future__ import annotations

import torch

from lecture_utils.data import CharTokenizer

VOCAB = "0123456789+="
TOKENIZER = CharTokenizer(list(VOCAB))
IGNORE = -1


def seq_len(n_digits: int) -> int:
    """Characters in one problem with its answer: ``a`` + ``+`` + ``b`` + ``=`` + (n+1) digits."""
    return 3 * n_digits + 3


def prompt_len(n_digits: int) -> int:
    """Characters of ``a+b=``."""
    return 2 * n_digits + 2


def is_held_out(a: int, b: int) -> bool:
    """A fixed tenth of all pairs, never trained on. A mixing hash, so the held-out pairs share no
    pattern in their digits (a linear rule such as ``(9a + 9b) % 10 == 0`` would hold out exactly
    the sums ending in 0, and the model would never learn to write a 0 there)."""
    h = (a * 0x9E3779B1 + b * 0x85EBCA77 + 0x165667B1) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & 0xFFFFFFFF
    h ^= h >> 12
    return h % 10 == 0


def encode_problem(a: int, b: int, n_digits: int) -> list[int]:
    """Token ids of ``a+b=`` followed by the reversed, zero-padded sum."""
    limit = 10**n_digits
    if not (0 <= a < limit and 0 <= b < limit):
        raise ValueError(f"operands must have at most {n_digits} digits, got {a} and {b}")
    answer = str(a + b).zfill(n_digits + 1)[::-1]
    return TOKENIZER.encode(f"{a:0{n_digits}d}+{b:0{n_digits}d}={answer}")


def sample_problems(batch_size: int, n_digits: int, generator: torch.Generator | None = None,
                    held_out: bool = False) -> list[tuple[int, int]]:
    """``batch_size`` random pairs from the training pairs (or, with ``held_out``, the held-out ones)."""
    out: list[tuple[int, int]] = []
    while len(out) < batch_size:
        ab = torch.randint(10**n_digits, (2 * batch_size, 2), generator=generator).tolist()
        out += [(a, b) for a, b in ab if is_held_out(a, b) == held_out]
    return out[:batch_size]


def make_batch(batch_size: int, n_digits: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of training problems: ``x``, ``y`` of shape ``(batch_size, 3n+2)``, ``y`` the next
    characters with the problem's targets set to -1 (only the answer digits are scored)."""
    seqs = torch.tensor([encode_problem(a, b, n_digits) for a, b in sample_problems(batch_size, n_digits, generator)])
    x, y = seqs[:, :-1].contiguous(), seqs[:, 1:].clone()
    y[:, : prompt_len(n_digits) - 1] = IGNORE  # targets inside "a+b=" are not the model's to guess
    return x.to(device), y.to(device)


@torch.no_grad()
def accuracy(model, problems: list[tuple[int, int]], n_digits: int) -> float:
    """Fraction of ``problems`` whose whole answer the model gets right, decoding greedily (the most
    likely digit each step, so the measure is deterministic)."""
    if not problems:
        raise ValueError("accuracy needs at least one problem")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        p = prompt_len(n_digits)
        seqs = torch.tensor([encode_problem(a, b, n_digits) for a, b in problems], device=device)
        idx = seqs[:, :p]
        for _ in range(n_digits + 1):
            logits, _ = model(idx)
            idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        correct = (idx[:, p:] == seqs[:, p:]).all(dim=1)
    finally:
        model.train(was_training)
    return correct.float().mean().item()


def decode_answer(ids) -> int:
    """The integer an answer (reversed digits) stands for."""
    return int(TOKENIZER.decode(ids)[::-1])
