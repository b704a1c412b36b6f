"""lecture_utils.checkpoints: written atomically, read back exactly, one clear error per kind of damage or
mismatch, and checkpoints from before a config grew new fields still load."""

import os
from dataclasses import replace

import pytest
import torch

from lecture_utils import data
from lecture_utils.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from lecture_utils.model import GPT, BigramLanguageModel, GPTConfig

SMALL = GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.1)


def test_checkpoint_round_trip(tmp_path):
    tok = data.CharTokenizer.from_text("abcdefg")
    m = GPT(GPTConfig(vocab_size=7, block_size=8, n_embd=16, n_head=2, n_layer=1))
    path = save_checkpoint(tmp_path / "m.pt", m, tokenizer=tok, extra={"val_loss": 1.5})
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temporary file left
    m2, tok2, payload = load_checkpoint(path)
    assert tok2 == tok and payload["extra"]["val_loss"] == 1.5
    for (k, v), (k2, v2) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    # into an existing model of the same config (dropout may differ)
    m3 = GPT(GPTConfig(vocab_size=7, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.3))
    load_checkpoint(path, m3)
    b, _, _ = load_checkpoint(save_checkpoint(tmp_path / "b.pt", BigramLanguageModel(7)))
    assert isinstance(b, BigramLanguageModel)


def test_checkpoint_into_another_config_names_the_mismatch(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", GPT(GPTConfig(vocab_size=7, block_size=8, n_embd=16, n_head=2, n_layer=1)))
    other = GPT(GPTConfig(vocab_size=7, block_size=8, n_embd=32, n_head=2, n_layer=2))
    with pytest.raises(CheckpointError, match=r"n_embd: checkpoint 16 vs model 32.*n_layer: checkpoint 1 vs model 2"):
        load_checkpoint(path, other)
    with pytest.raises(CheckpointError, match="bigram"):
        load_checkpoint(path, BigramLanguageModel(7))


def test_bad_checkpoint_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a checkpoint: it is not a file written by torch.save"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a lecture_utils checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    m = GPT(GPTConfig(vocab_size=7, block_size=8, n_embd=16, n_head=2, n_layer=1))
    path = save_checkpoint(tmp_path / "m.pt", m)
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointError, match="could not write the checkpoint .*disk full; the previous checkpoint there is unchanged"):
        save_checkpoint(path, m)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_a_checkpoint_from_before_the_chapter_12_fields_still_loads(tmp_path):
    """Checkpoints written before GPTConfig grew activation/norm/position/tie_weights (like the shipped one) load
    with those fields at their defaults, into a fresh model or an existing one."""
    from lecture_utils.checkpoints import read_checkpoint

    model = GPT(SMALL)
    path = save_checkpoint(tmp_path / "m.pt", model)
    payload = read_checkpoint(path)
    for name in ("activation", "norm", "position", "tie_weights", "attn_dropout"):
        del payload["config"][name]
    torch.save(payload, tmp_path / "old.pt")
    loaded, _, _ = load_checkpoint(tmp_path / "old.pt")
    load_checkpoint(tmp_path / "old.pt", GPT(SMALL))
    assert loaded.config == replace(SMALL, dropout=SMALL.dropout)
