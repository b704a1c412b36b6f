"""lecture_utils.data: the shipped corpus, the tokenizer, the split and get_batch."""

import pytest
import torch

from lecture_utils import data


@pytest.fixture(scope="module")
def text():
    return data.load_text()


def test_shipped_corpus_is_tiny_shakespeare(text):
    assert len(text) == 1_115_394
    assert len(set(text)) == 65
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    assert data.sha256_of(data.corpus_path()) == data.TINY_SHAKESPEARE_SHA256


def test_damaged_corpus_is_reported(tmp_path, monkeypatch):
    bad = tmp_path / "corpus"
    bad.mkdir()
    (bad / data.TINY_SHAKESPEARE).write_text("First Citizen:\nnot the real thing\n")
    monkeypatch.setattr(data, "corpus_path", lambda: bad / data.TINY_SHAKESPEARE)
    with pytest.raises(data.CorpusError, match="damaged"):
        data.load_text()


def test_own_text_file_loads_through_the_same_function(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("to be or not to be\n", encoding="utf-8")
    assert data.load_text(f) == "to be or not to be\n"
    with pytest.raises(data.CorpusError, match="not found"):
        data.load_text(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(data.CorpusError, match="not UTF-8"):
        data.load_text(tmp_path / "latin1.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(data.CorpusError, match="empty"):
        data.load_text(tmp_path / "empty.txt")


def test_tokenizer_round_trip(text):
    tok = data.CharTokenizer.from_text(text)
    assert tok.vocab_size == 65
    assert tok.chars == sorted(set(text))
    sample = text[1000:3000]
    assert tok.decode(tok.encode(sample)) == sample
    assert tok.encode("hii there") == [46, 47, 47, 1, 58, 46, 43, 56, 43]  # the lecture's example
    assert tok.decode(torch.tensor(tok.encode("abc"))) == "abc"


def test_unknown_character_names_character_and_position():
    tok = data.CharTokenizer.from_text("abc ")
    with pytest.raises(ValueError, match=r"'\\u20ac'|'€'.*position 4"):
        tok.encode("abc €")
    with pytest.raises(ValueError, match="position 2"):
        tok.encode("abZ")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([0, 99])
    assert tok.unknown_chars("aXbYX") == ["X", "Y"]


def test_tokenizer_state_round_trip():
    tok = data.CharTokenizer.from_text("hello world")
    assert data.CharTokenizer.from_state_dict(tok.state_dict()) == tok


def test_split_is_ninety_ten_and_contiguous():
    d = torch.arange(1000)
    tr, va = data.split_data(d)
    assert len(tr) == 900 and len(va) == 100
    assert torch.equal(torch.cat([tr, va]), d)
    with pytest.raises(ValueError):
        data.split_data(d, 1.5)


def test_get_batch_shapes_shift_and_range():
    d = torch.arange(500)
    x, y = data.get_batch(d, block_size=8, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert x.dtype == torch.long
    assert torch.equal(y, x + 1)  # data is arange, so the next token is x + 1
    assert int(x.min()) >= 0 and int(y.max()) <= 499


def test_get_batch_is_deterministic_under_a_generator():
    d = torch.randint(65, (1000,), generator=torch.Generator().manual_seed(1))
    a = data.get_batch(d, 16, 8, generator=torch.Generator().manual_seed(3))
    b = data.get_batch(d, 16, 8, generator=torch.Generator().manual_seed(3))
    c = data.get_batch(d, 16, 8, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_get_batch_reaches_the_last_chunk():
    d = torch.arange(10)
    seen = set()
    for s in range(50):
        x, _ = data.get_batch(d, 4, 8, generator=torch.Generator().manual_seed(s))
        seen |= set(x[:, 0].tolist())
    assert seen == set(range(6))  # starts 0..len-block_size-1


def test_block_size_too_large_is_a_clear_error():
    with pytest.raises(ValueError, match="block_size=10 is too large"):
        data.get_batch(torch.arange(10), block_size=10, batch_size=2)


def test_get_batch_returns_contiguous_tensors_so_view_works():
    x, y = data.get_batch(torch.arange(100), 8, 4)
    assert x.is_contiguous() and y.is_contiguous()
    y.view(32)  # the lecture reshapes targets with .view
