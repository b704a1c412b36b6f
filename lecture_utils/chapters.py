"""The chapter manifest: the one table that says what the course is made of.

Per chapter: its number and title, the notebook's file stem (``solutions/<notebook>.ipynb`` and
``notebooks/<notebook>.ipynb``), the module of its checks (``lecture_utils/checks/<checks>.py``, and its wrong
solutions in ``tests/wrong_solutions/<checks>.py``) and its exercises. Per exercise: the id ("4.1"), the title
the checks show, the check's name in :mod:`lecture_utils.checks`, the names the learner's exercise cell defines
(in the order the check takes them), and the reference object for each of those names as ``"module:name"``.

Everything else reads from here: the checks' registration and titles (:mod:`lecture_utils.checks._core`), the
names ``lecture_utils.checks`` exports, the catalogue of wrong solutions, the authoring and mutation tools, the
grader and :func:`lecture_utils.progress`. ``tests/test_chapters.py`` holds the table against the notebooks (every
exercise header in ``solutions/`` is here and the other way round, every check exists).

The notebook's exercise protocol is defined here too, because every tool that reads a notebook needs it: an
exercise is a code cell tagged :data:`EXERCISE_TAG` whose first line matches :data:`EXERCISE_HEADER`
(``# Exercise 4.1: one head of self-attention``), with its solution between :data:`BEGIN` and :data:`END`.
Exercise ids sort with :func:`exercise_key` ("4.2" before "4.10", "9.1" before "10.1").

This module imports nothing from the course (and no torch), so the grader's sandboxed helpers can read it.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
EXERCISE_TAG = "exercise"

#: the first line of an exercise cell: group 1 the id, group 2 the title (absent in ``# Exercise 4.1`` alone,
#: which the grader still recognises in a learner's notebook; the authoring tool requires a title)
EXERCISE_HEADER = re.compile(r"^\s*#\s*Exercise\s+(\d+\.\d+)\b(?:\s*[:\-\u2014]\s*(.*?))?\s*$")


def exercise_key(exercise_id: str) -> tuple[int, ...]:
    """The sort key of an exercise id: ``"4.2"`` -> ``(4, 2)``, so "9.1" < "10.1" and "4.2" < "4.10"."""
    return tuple(int(part) for part in exercise_id.split("."))


def header_of(source: str) -> tuple[str, str | None] | None:
    """``(id, title)`` from a cell's first non-blank line when it is an exercise header (title None when the line
    has none), else None."""
    first = source.lstrip().splitlines()[0] if source.strip() else ""
    m = EXERCISE_HEADER.match(first)
    if m is None:
        return None
    return m.group(1), (m.group(2).strip() or None) if m.group(2) is not None else None


@dataclass(frozen=True)
class Exercise:
    id: str  # "4.1"
    title: str  # what the checks, the grader and progress() show
    check: str  # the check's function in lecture_utils.checks
    names: tuple[str, ...]  # what the learner's exercise cell defines, in the order the check takes them
    reference: tuple[str, ...]  # "module:name" of the reference object for each of ``names``

    @property
    def chapter(self) -> int:
        return exercise_key(self.id)[0]

    def reference_objects(self):
        """The reference object (one name) or tuple of objects (several), imported now."""
        objects = tuple(_resolve(spec) for spec in self.reference)
        return objects[0] if len(objects) == 1 else objects


@dataclass(frozen=True)
class Chapter:
    number: int
    title: str
    notebook: str  # file stem in solutions/ and notebooks/
    checks: str  # module name in lecture_utils/checks/ (and tests/wrong_solutions/)
    exercises: tuple[Exercise, ...]

    @property
    def check_module(self) -> str:
        return f"lecture_utils.checks.{self.checks}"


def _resolve(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _ex(exercise_id: str, title: str, check: str, names: str, reference: str) -> Exercise:
    """One row: ``names`` and ``reference`` are space-separated (a reference without a module is in the module
    of the reference before it)."""
    refs, module = [], ""
    for spec in reference.split():
        module = spec.partition(":")[0] if ":" in spec else module
        refs.append(spec if ":" in spec else f"{module}:{spec}")
    return Exercise(exercise_id, title, check, tuple(names.split()), tuple(refs))


M, T = "lecture_utils.model", "lecture_utils.train"

CHAPTERS: tuple[Chapter, ...] = (
    Chapter(1, "The data: characters, tokens and batches", "01_data", "ch01_data", (
        _ex("1.1", "encode and decode", "encode_decode", "encode decode", "lecture_utils.codec:encode decode"),
        _ex("1.2", "train/val split", "split_data", "split_data", "lecture_utils.data:split_data"),
        _ex("1.3", "get_batch", "get_batch", "get_batch", "lecture_utils.data:get_batch"),
    )),
    Chapter(2, "The bigram model: logits, loss, sampling and training", "02_bigram", "ch02_bigram", (
        _ex("2.1", "bigram language model", "bigram_forward", "BigramLanguageModel", f"{M}:BigramLanguageModel"),
        _ex("2.2", "generate", "generate", "generate", f"{M}:generate"),
        _ex("2.3", "estimate_loss", "estimate_loss", "estimate_loss", f"{T}:estimate_loss"),
        _ex("2.4", "the training loop", "train_loop", "train_loop", "lecture_utils.loop:train_loop"),
    )),
    Chapter(3, "The mathematical trick behind self-attention", "03_averaging_trick", "ch03_averaging", (
        _ex("3.1", "averaging the past with for loops", "average_v1", "average_v1", "lecture_utils.averaging:average_v1"),
        _ex("3.2", "averaging with a lower-triangular matrix", "average_v2", "average_v2",
            "lecture_utils.averaging:average_v2"),
        _ex("3.3", "averaging with a masked softmax", "average_v3", "average_v3", "lecture_utils.averaging:average_v3"),
        _ex("3.4", "token and position embeddings", "positional_model", "BigramWithPositions",
            f"{M}:BigramWithPositions"),
    )),
    Chapter(4, "Self-attention: one head", "04_self_attention", "ch04_attention", (
        _ex("4.1", "one head of self-attention", "head", "Head", f"{M}:Head"),
        _ex("4.2", "a cross-attention head", "cross_head", "CrossHead", f"{M}:CrossHead"),
        _ex("4.3", "the variance of the affinities", "affinity_variance", "affinity_variance",
            "lecture_utils.averaging:affinity_variance"),
    )),
    Chapter(5, "Multi-head attention", "05_multi_head", "ch05_multi_head", (
        _ex("5.1", "multi-head attention", "multi_head", "MultiHeadAttention", f"{M}:MultiHeadAttention"),
        _ex("5.2", "batched multi-head attention", "batched_multi_head", "CausalSelfAttention",
            f"{M}:CausalSelfAttention"),
    )),
    Chapter(6, "Feed-forward: communication, then computation", "06_feed_forward", "ch06_feed_forward", (
        _ex("6.1", "feed-forward", "feed_forward", "FeedForward", f"{M}:FeedForward"),
    )),
    Chapter(7, "Residual connections and LayerNorm", "07_residual_layernorm", "ch07_residual_layernorm", (
        _ex("7.1", "LayerNorm from scratch", "layer_norm", "LayerNorm", f"{M}:LayerNorm"),
        _ex("7.2", "Transformer block", "block", "Block", f"{M}:Block"),
    )),
    Chapter(8, "Scaling up: the full GPT", "08_scaling_up", "ch08_gpt", (
        _ex("8.1", "the GPT language model", "gpt", "GPTLanguageModel", f"{M}:GPT"),
    )),
    Chapter(9, "Beyond the lecture: heads as a batch dimension, and what it buys", "09_batched_heads",
            "ch09_batched_heads", (
        _ex("9.1", "fused QKV from a list of heads", "heads_to_batched", "heads_to_batched", f"{M}:heads_to_batched"),
        _ex("9.2", "timing a step honestly", "median_seconds", "median_seconds", "lecture_utils.timing:median_seconds"),
    )),
    Chapter(10, "Beyond the lecture: teaching a GPT to add", "10_addition", "ch10_addition", (
        _ex("10.1", "encode a problem", "encode_problem", "encode_problem", "lecture_utils.addition:encode_problem"),
        _ex("10.2", "a masked batch", "make_batch", "make_batch", "lecture_utils.addition:make_batch"),
        _ex("10.3", "exact-match accuracy", "addition_accuracy", "accuracy", "lecture_utils.addition:accuracy"),
    )),
    Chapter(11, "Beyond the lecture: pretrain on more text, then fine-tune", "11_pretrain_finetune", "ch11_pretrain", (
        _ex("11.1", "one vocabulary for both corpora", "to_vocabulary", "to_vocabulary",
            "lecture_utils.pretrain:to_vocabulary"),
        _ex("11.2", "a copy to fine-tune", "copy_for_finetuning", "copy_for_finetuning",
            "lecture_utils.pretrain:copy_for_finetuning"),
    )),
    Chapter(12, "Beyond the lecture: what modern GPTs change", "12_modern_features", "ch12_modern", (
        _ex("12.1", "GELU", "gelu", "gelu", "lecture_utils.modern:gelu"),
        _ex("12.2", "RMSNorm", "rms_norm", "RMSNorm", "lecture_utils.modern:RMSNorm"),
        _ex("12.3", "rotary position embeddings", "rope", "apply_rope", "lecture_utils.modern:apply_rope"),
        _ex("12.4", "SwiGLU feed-forward", "swiglu", "SwiGLU", "lecture_utils.modern:SwiGLU"),
        _ex("12.5", "weight tying", "tie_weights", "tie_weights", "lecture_utils.modern:tie_weights"),
        _ex("12.6", "warmup and cosine decay", "lr_schedule", "lr_at", "lecture_utils.config:warmup_cosine_lr"),
    )),
    Chapter(13, "Beyond the lecture: how a trained GPT writes", "13_generation", "ch13_generation", (
        _ex("13.1", "temperature", "temperature", "apply_temperature", "lecture_utils.generation:apply_temperature"),
        _ex("13.2", "top-k", "top_k", "top_k_logits", "lecture_utils.generation:top_k_logits"),
        _ex("13.3", "top-p (nucleus)", "top_p", "top_p_logits", "lecture_utils.generation:top_p_logits"),
        _ex("13.4", "attention with a KV cache", "cached_attention", "attend_with_cache",
            "lecture_utils.generation:attend_with_cache"),
        _ex("13.5", "generate with a KV cache", "cached_generate", "generate_with_cache",
            "lecture_utils.generation:generate_with_cache"),
    )),
    Chapter(14, "Beyond the lecture: from characters to tokens", "14_tokenizer", "ch14_tokenizer", (
        _ex("14.1", "count adjacent pairs", "count_pairs", "count_pairs", "lecture_utils.bpe:count_pairs"),
        _ex("14.2", "merge one pair", "merge", "merge", "lecture_utils.bpe:merge"),
        _ex("14.3", "train: the loop of merges", "train_bpe", "train_bpe", "lecture_utils.bpe:train_bpe"),
        _ex("14.4", "encode: merges in learned order", "bpe_encode", "encode", "lecture_utils.bpe:encode"),
        _ex("14.5", "decode: bytes, then UTF-8", "bpe_decode", "decode", "lecture_utils.bpe:decode"),
    )),
)

#: every exercise by id, in course order
EXERCISES: dict[str, Exercise] = {e.id: e for c in CHAPTERS for e in c.exercises}
_BY_NUMBER = {c.number: c for c in CHAPTERS}


def chapter(number: int) -> Chapter:
    """The chapter numbered ``number`` (``KeyError`` naming the chapters there are otherwise)."""
    try:
        return _BY_NUMBER[number]
    except KeyError:
        raise KeyError(f"no chapter {number} in this course (chapters {', '.join(map(str, _BY_NUMBER))})") from None


def exercise(exercise_id: str) -> Exercise:
    """The manifest's row for ``exercise_id`` (``KeyError`` with a clear message when there is none)."""
    try:
        return EXERCISES[exercise_id]
    except KeyError:
        raise KeyError(f"exercise {exercise_id} is not in the chapter manifest (lecture_utils/chapters.py)") from None


def learner_aliases() -> dict[str, str]:
    """``{learner's name: check name}`` for every exercise whose cell defines one name that differs from its
    check's (``Head`` -> ``head``, ``apply_rope`` -> ``rope``), so ``check.Head(Head)`` works as ``check.head(Head)``.
    A name that two exercises define (``encode`` in 1.1 and 14.4) gets no alias: it would be ambiguous."""
    count: dict[str, int] = {}
    for e in EXERCISES.values():
        for name in e.names:
            count[name] = count.get(name, 0) + 1
    checks = {e.check for e in EXERCISES.values()}
    return {e.names[0]: e.check for e in EXERCISES.values()
            if len(e.names) == 1 and e.names[0] != e.check and count[e.names[0]] == 1 and e.names[0] not in checks}
