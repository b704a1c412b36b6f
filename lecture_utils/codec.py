"""Exercise 1.1's reference: ``encode`` and ``decode`` over the characters of the shipped corpus, the
vocabulary chapter 01 builds (``lecture_utils.data.CharTokenizer`` of ``load_text()``, made once, when first used)."""

from __future__ import annotations

import functools

from lecture_utils.data import CharTokenizer, load_text


@functools.lru_cache(maxsize=1)
def _tokenizer() -> CharTokenizer:
    return CharTokenizer.from_text(load_text())


def encode(s: str) -> list[int]:
    """The corpus vocabulary's id of each character of ``s``."""
    return _tokenizer().encode(s)


def decode(ids) -> str:
    """The characters of the ids ``ids``, joined."""
    return _tokenizer().decode(ids)
