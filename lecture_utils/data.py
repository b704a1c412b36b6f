"""The corpus, the character tokenizer, the train/val split and batches of chunks (chapter 01).

Tiny Shakespeare (1,115,394 characters, 65 distinct) ships inside the package and is verified by
SHA-256 each time it is loaded, so nothing is downloaded at run time. A learner's own text file
loads through the same :func:`load_text`.
"""

from __future__ import annotations

import hashlib
import numbers
from importlib import resources
from pathlib import Path

import torch

TINY_SHAKESPEARE = "tinyshakespeare.txt"
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINY_SHAKESPEARE_CHARS = 1_115_394


class CorpusError(ValueError):
    """The corpus file is missing, unreadable or not what it should be."""


def corpus_path() -> Path:
    """Path of the shipped Tiny Shakespeare file inside the installed package."""
    return Path(str(resources.files("lecture_utils") / "corpus" / TINY_SHAKESPEARE))


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_text(path: str | Path | None = None, *, verify: bool = True) -> str:
    """Read a corpus as one string.

    Args:
        path: a UTF-8 text file of your own; ``None`` loads the shipped Tiny Shakespeare.
        verify: for the shipped corpus, check its SHA-256 (a damaged install is reported, not
            trained on).

    Raises:
        CorpusError: the file is missing, not UTF-8, empty, or (shipped corpus) its checksum is wrong.
    """
    shipped = path is None
    path = corpus_path() if shipped else Path(path)
    if path.is_dir():
        raise CorpusError(f"{path} is a folder, not a text file: give the path of a UTF-8 .txt file")
    if not path.is_file():
        hint = "reinstall the course package: pip install -e ." if shipped else "check the path"
        raise CorpusError(f"corpus file not found: {path} ({hint})")
    if shipped and verify:
        digest = sha256_of(path)
        if digest != TINY_SHAKESPEARE_SHA256:
            raise CorpusError(
                f"the shipped corpus {path} is damaged: SHA-256 {digest[:12]}... is not the expected "
                f"{TINY_SHAKESPEARE_SHA256[:12]}...; reinstall the package (pip install -e .)"
            )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start} "
                          "cannot be decoded); save it as UTF-8 and try again") from None
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not text:
        raise CorpusError(f"{path} is empty: a language model needs text to learn from")
    return text


class CharTokenizer:
    """Maps each distinct character of a text to an integer id, in sorted order (the lecture's
    ``stoi`` / ``itos``).

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.encode("hell"), tok.decode([1, 0, 2, 2, 3])
    ([1, 0, 2, 2], 'hello')
    """

    def __init__(self, chars: list[str] | str):
        chars = list(chars)
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer: the vocabulary has repeated characters")
        if not chars:
            raise ValueError("CharTokenizer: the vocabulary is empty")
        self.chars: list[str] = chars
        self.stoi: dict[str, int] = {ch: i for i, ch in enumerate(chars)}
        self.itos: dict[int, str] = dict(enumerate(chars))

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """Vocabulary = the sorted set of characters in ``text``."""
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> list[int]:
        """String to list of ids. Raises ``ValueError`` naming the first unknown character and
        its position."""
        stoi = self.stoi
        try:
            return [stoi[c] for c in s]
        except KeyError:
            for pos, c in enumerate(s):
                if c not in stoi:
                    raise ValueError(
                        f"character {c!r} at position {pos} is not in the vocabulary of "
                        f"{self.vocab_size} characters; remove or replace it"
                    ) from None
            raise

    def decode(self, ids) -> str:
        """List (or 1-D tensor) of ids to string. Raises ``ValueError`` on an id outside the
        vocabulary."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for pos, i in enumerate(ids):
            ch = self.itos.get(int(i))
            if ch is None:
                raise ValueError(f"id {i} at position {pos} is outside the vocabulary (0..{self.vocab_size - 1})")
            out.append(ch)
        return "".join(out)

    def unknown_chars(self, s: str) -> list[str]:
        """The distinct characters of ``s`` that are not in the vocabulary, in order of appearance."""
        seen: dict[str, None] = {}
        for c in s:
            if c not in self.stoi:
                seen.setdefault(c)
        return list(seen)

    def state_dict(self) -> dict:
        return {"chars": "".join(self.chars)}

    @classmethod
    def from_state_dict(cls, state: dict) -> CharTokenizer:
        return cls(list(state["chars"]))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"

    def __eq__(self, other) -> bool:
        return isinstance(other, CharTokenizer) and self.chars == other.chars


def encode_text(text: str, tokenizer: CharTokenizer) -> torch.Tensor:
    """The whole text as a 1-D ``torch.long`` tensor of ids."""
    return torch.tensor(tokenizer.encode(text), dtype=torch.long)


def split_data(data: torch.Tensor, train_frac: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """First ``train_frac`` of the sequence for training, the rest for validation (no shuffling:
    the validation text is a continuous piece the model never saw)."""
    if not 0.0 < train_frac < 1.0:
        raise ValueError(f"train_frac must be between 0 and 1 (exclusive), got {train_frac}")
    n = int(train_frac * len(data))
    return data[:n], data[n:]


def get_batch(
    data: torch.Tensor,
    block_size: int,
    batch_size: int,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random chunks: ``x`` of shape ``(batch_size, block_size)`` and ``y`` the same
    chunks shifted one to the left (``y[b, t]`` is the character after ``x[b, :t+1]``).

    The offsets come from ``generator`` (a CPU ``torch.Generator``) when given, so batches are
    reproducible. On CUDA the batch is pinned and copied asynchronously.

    Raises:
        ValueError: ``block_size`` does not fit in ``data`` (it needs ``block_size + 1`` tokens), ``data``
            is empty or not a 1-D integer tensor, or a size is not a positive integer.
    """
    if not isinstance(data, torch.Tensor) or data.dim() != 1:
        shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(f"data must be a 1-D tensor of token ids, got {shape}; encode the text first, e.g. "
                         "torch.tensor(encode(text), dtype=torch.long)")
    if data.dtype.is_floating_point or data.dtype.is_complex or data.dtype == torch.bool:
        raise ValueError(f"data must hold integer token ids, got dtype {data.dtype}; use dtype=torch.long")
    for name, value in (("block_size", block_size), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if len(data) == 0:
        raise ValueError("data is empty: there is nothing to cut chunks from; encode some text first")
    if block_size >= len(data):
        raise ValueError(
            f"block_size={block_size} is too large for data of length {len(data)}: a chunk needs "
            f"block_size + 1 tokens; use a smaller block_size or more data"
        )
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = ix[:, None] + torch.arange(block_size)  # (B, T): one gather instead of a Python loop
    x, y = data[offsets], data[offsets + 1]  # contiguous, so .view works on them as in the lecture
    device = torch.device(device)
    if device.type == "cuda":
        x = x.pin_memory().to(device, non_blocking=True)
        y = y.pin_memory().to(device, non_blocking=True)
    elif device.type != "cpu":
        x, y = x.to(device), y.to(device)
    return x, y


def load_dataset(path: str | Path | None = None, train_frac: float = 0.9):
    """Convenience: text, tokenizer, and the train/val tensors in one call.

    Returns:
        ``(text, tokenizer, train_data, val_data)``
    """
    text = load_text(path)
    tokenizer = CharTokenizer.from_text(text)
    data = encode_text(text, tokenizer)
    train_data, val_data = split_data(data, train_frac)
    return text, tokenizer, train_data, val_data
