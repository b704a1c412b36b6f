"""The command line with a BPE vocabulary (``train --tokenizer bpe:N``, chapter 14): the tokenizer is trained on the
training split only, the checkpoint carries it, ``sample`` and ``--resume`` rebuild it; character checkpoints from
before ``--tokenizer`` existed still load and sample. The BPE is trained on a 30,000-character slice of Tiny
Shakespeare (``--data``) with few merges, so that the teaching implementation stays fast here."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from lecture_utils.__main__ import main
from lecture_utils.bpe import BPETokenizer
from lecture_utils.checkpoints import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    shipped_checkpoint_path,
)
from lecture_utils.data import CharTokenizer, load_text

TINY = ["--preset", "lecture-small", "--device", "cpu", "--eval-interval", "2", "--eval-iters", "1",
        "--no-progress", "--threads", "1"]


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lecture_utils", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def slice_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bpe") / "shakespeare-slice.txt"
    path.write_text(load_text(None)[:30_000], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bpe_run(slice_file):
    """``train --tokenizer bpe:300`` for 4 steps, as a user types it: (its output, the checkpoint)."""
    ckpt = slice_file.parent / "bpe.pt"
    out = run("train", *TINY, "--max-iters", "4", "--tokenizer", "bpe:300", "--data", str(slice_file),
              "--out", str(ckpt))
    assert out.returncode == 0, out.stderr
    return out.stdout, ckpt


def test_train_bpe_says_what_it_does_and_trains_on_the_training_split_only(bpe_run, slice_file):
    stdout, ckpt = bpe_run
    assert "training a byte-level BPE of 300 tokens (44 merges) on the training split (27,000 characters" in stdout
    assert "tokenizer: learned in " in stdout and "characters per token" in stdout
    payload = read_checkpoint(ckpt)
    assert payload["format"] == CHECKPOINT_FORMAT == 2  # older course versions say "update", not "damaged"
    assert payload["tokenizer"]["kind"] == "bpe" and payload["extra"]["tokenizer"] == "bpe:300"
    assert payload["config"]["vocab_size"] == 300
    model, tok, _ = load_checkpoint(ckpt)
    assert isinstance(tok, BPETokenizer) and tok.vocab_size == 300
    text = slice_file.read_text(encoding="utf-8")
    # the same merges as a BPE trained on the first 90% of the characters - and not those of the whole text
    assert tok == BPETokenizer.train(text[:27_000], 300)
    assert tok != BPETokenizer.train(text, 300)


def test_sample_decodes_a_bpe_checkpoint(bpe_run):
    _, ckpt = bpe_run
    out = run("sample", "--checkpoint", str(ckpt), "--prompt", "ROMEO: café €", "--tokens", "30")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ROMEO: café €")  # byte-level: no character is unknown
    assert len(out.stdout.rstrip("\n")) > len("ROMEO: café €")
    again = run("sample", "--checkpoint", str(ckpt), "--prompt", "ROMEO: café €", "--tokens", "30", "--no-cache")
    assert again.returncode == 0 and again.stdout == out.stdout  # the lecture's generate: the same tokens


def test_resume_keeps_the_checkpoints_tokenizer(bpe_run, slice_file, capsys):
    _, ckpt = bpe_run
    resumed = slice_file.parent / "resumed.pt"
    resumed.write_bytes(ckpt.read_bytes())
    assert main(["train", "--resume", str(resumed), "--max-iters", "6", "--data", str(slice_file),
                 "--no-progress", "--threads", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "training a byte-level BPE" not in out and "encoded in" in out  # reused, not trained again
    assert read_checkpoint(resumed)["training"]["iter"] == 6
    assert load_checkpoint(resumed)[1] == load_checkpoint(ckpt)[1]
    assert main(["train", "--resume", str(resumed), "--max-iters", "8", "--tokenizer", "char"]) == 2
    assert "--tokenizer char differs from the tokenizer of the run being resumed (bpe:300)" in capsys.readouterr().err


def test_a_character_checkpoint_from_before_tokenizer_kinds_still_loads_and_samples(tmp_path):
    out = run("sample", "--checkpoint", str(shipped_checkpoint_path()), "--prompt", "ROMEO:", "--tokens", "20")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ROMEO:") and len(out.stdout.rstrip("\n")) == len("ROMEO:") + 20
    # the shipped file has no tokenizer kind; one more of that shape, written here from a model of today
    assert "kind" not in read_checkpoint(shipped_checkpoint_path())["tokenizer"]
    model, tok, payload = load_checkpoint(shipped_checkpoint_path())
    old = tmp_path / "old.pt"
    torch.save({**payload, "format": 1, "tokenizer": {"chars": "".join(tok.chars)}}, old)
    model2, tok2, _ = load_checkpoint(old)
    assert isinstance(tok2, CharTokenizer) and tok2 == tok
    out2 = run("sample", "--checkpoint", str(old), "--prompt", "ROMEO:", "--tokens", "20")
    assert out2.returncode == 0 and out2.stdout == out.stdout  # same model, same seed: the same text


def test_a_new_character_checkpoint_stays_readable_by_older_versions(tmp_path):
    tok = CharTokenizer.from_text("abc\n")
    from lecture_utils.model import GPT, GPTConfig

    path = save_checkpoint(tmp_path / "c.pt", GPT(GPTConfig(vocab_size=4, block_size=8, n_embd=16, n_head=2,
                                                            n_layer=1)), tokenizer=tok)
    payload = read_checkpoint(path)
    assert payload["format"] == 1 and payload["tokenizer"] == {"kind": "char", "chars": "\nabc"}
    assert CharTokenizer.from_state_dict(payload["tokenizer"]) == tok  # what an older reader does


@pytest.mark.parametrize("state, message", [
    ({"kind": "word", "words": ["a"]}, "its kind 'word' is not one of char, bpe"),
    ({"kind": "bpe"}, "needs a list of merges"),
    ({"kind": "bpe", "merges": [[97, 98], [300, 1]]}, "merge 1 [300, 1] uses an id outside 0..256"),
    ({"kind": "bpe", "merges": [[97, 98], [97, 98]]}, "merge 1 [97, 98] repeats merge 0"),
    ({"kind": "bpe", "merges": [[97, 98, 99]]}, "merge 0 is not a pair of integer ids"),
    ({"kind": "char", "chars": 5}, "needs its characters as a string"),
])
def test_the_reader_names_what_is_wrong_with_a_bad_tokenizer(tmp_path, state, message):
    from lecture_utils.model import GPT, GPTConfig

    path = save_checkpoint(tmp_path / "m.pt", GPT(GPTConfig(vocab_size=300, block_size=8, n_embd=16, n_head=2,
                                                            n_layer=1)), tokenizer=BPETokenizer({(97, 98): 256}))
    payload = read_checkpoint(path)
    torch.save({**payload, "tokenizer": state}, path)
    with pytest.raises(CheckpointError, match="is damaged: its tokenizer is not valid") as info:
        load_checkpoint(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bpe_state_round_trips():
    tok = BPETokenizer.train("the cat sat on the mat, the end", 270)
    assert BPETokenizer.from_state_dict(tok.state_dict()) == tok
    with pytest.raises(ValueError, match="256, 257"):
        BPETokenizer({(97, 98): 300}).state_dict()
