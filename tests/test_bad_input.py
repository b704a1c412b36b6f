"""Every bad input a learner can type, refused where it enters: one row per input, the message it must give,
and a check that no file changed. Then property-based tests (hypothesis) of the tokenizer, get_batch and the
checkpoint reader, and the end-to-end promises: a trained checkpoint survives a bad command byte for byte,
Ctrl-C keeps the best checkpoint, a failed write keeps the previous file, a log shows each evaluation as it
happens."""

from __future__ import annotations

import hashlib
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lecture_utils.__main__ import main
from lecture_utils.checkpoints import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from lecture_utils.config import TrainConfig
from lecture_utils.data import CharTokenizer, CorpusError, get_batch, load_text
from lecture_utils.model import GPT, GPTConfig, generate
from lecture_utils.train import train

TINY = ["--preset", "lecture-small", "--device", "cpu", "--eval-interval", "2", "--eval-iters", "1",
        "--no-progress", "--threads", "1"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its SHA-256 (and every folder): what "nothing written" compares."""
    out = {}
    for p in sorted(folder.rglob("*")):
        out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder with a real trained checkpoint and every kind of bad file a learner could point the CLI at."""
    d = tmp_path_factory.mktemp("inputs")
    cwd = os.getcwd()
    os.chdir(d)
    try:
        assert main(["train", *TINY, "--max-iters", "6", "--out", "good.pt"]) == 0
        (d / "story.txt").write_text("a tiny story, told twice. " * 40, encoding="utf-8")
        assert main(["train", *TINY, "--max-iters", "2", "--data", "story.txt", "--out", "other-vocab.pt"]) == 0
    finally:
        os.chdir(cwd)
    good = (d / "good.pt").read_bytes()
    (d / "empty.pt").write_bytes(b"")
    (d / "truncated.pt").write_bytes(good[: len(good) // 2])
    (d / "random.pt").write_bytes(bytes(range(256)) * 8)
    (d / "folder").mkdir()
    (d / "empty.txt").write_text("", encoding="utf-8")
    (d / "latin1.txt").write_bytes("caf\u00e9 au lait\n".encode("latin-1") * 10)
    (d / "tiny.txt").write_text("to be or not", encoding="utf-8")
    torch.save(Path("not/a/tensor"), d / "unsafe.pt")  # unpickling it needs a class: refused, never run
    torch.save({"weights": 1}, d / "not-course.pt")
    payload = read_checkpoint(d / "good.pt")
    torch.save({**payload, "format": CHECKPOINT_FORMAT + 1}, d / "newer.pt")
    torch.save({**payload, "config": {**payload["config"], "flash": True}}, d / "newer-fields.pt")
    model, tok, _ = load_checkpoint(d / "good.pt")
    save_checkpoint(d / "weights-only.pt", model, tokenizer=tok)  # no training state: cannot be resumed
    save_checkpoint(d / "other-shape.pt", GPT(GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=1)))
    return d


def cli(argv, folder, capsys):
    """Run the CLI in ``folder``; returns (exit status, stdout, stderr, files changed)."""
    before = snapshot(folder)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse
            rc = exc.code
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    after = snapshot(folder)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return rc, out, err, changed


# (id, arguments, what the one line on stderr must contain). The arguments run in the `files` folder.
CLI_ROWS = [
    # train: counts and sizes
    ("max-iters negative", ["train", "--max-iters", "-5"], "--max-iters must be an integer >= 1, got -5"),
    ("max-iters zero", ["train", "--max-iters", "0"], "--max-iters must be an integer >= 1, got 0"),
    ("max-iters not a number", ["train", "--max-iters", "abc"], "argument --max-iters: invalid int value: 'abc'"),
    ("eval-interval negative", ["train", "--eval-interval", "-1"], "--eval-interval must be an integer >= 0, got -1"),
    ("eval-iters zero", ["train", "--eval-iters", "0"], "--eval-iters must be an integer >= 1, got 0"),
    ("batch-size zero", ["train", "--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
    ("block-size negative", ["train", "--block-size", "-8"], "--block-size must be a positive integer, got -8"),
    ("grad-accum zero", ["train", "--grad-accum", "0"], "--grad-accum must be an integer >= 1, got 0"),
    ("threads zero", ["train", "--threads", "0"], "--threads must be an integer >= 1, got 0"),
    ("negative sample tokens", ["train", "--sample-tokens", "-1"], "--sample-tokens must be an integer >= 0"),
    ("seed negative", ["train", "--seed", "-1"], "--seed must be in [0, 9223372036854775807], got -1"),
    ("n-embd zero", ["train", "--n-embd", "0"], "--n-embd must be a positive integer, got 0"),
    ("n-layer negative", ["train", "--n-layer", "-1"], "--n-layer must be a positive integer, got -1"),
    ("n-head does not divide n-embd", ["train", "--n-head", "5"], "--n-embd=32 must be divisible by --n-head=5"),
    # train: the tokenizer (chapter 14)
    ("tokenizer bpe without a size", ["train", "--tokenizer", "bpe"],
     "--tokenizer 'bpe' needs a vocabulary size after the colon; accepted: char (the default), or bpe:N with N an "
     "integer > 256"),
    ("tokenizer bpe too small", ["train", "--tokenizer", "bpe:100"],
     "--tokenizer 'bpe:100': the vocabulary size must be greater than 256 (the bytes alone take 256 ids"),
    ("tokenizer bpe of the bytes alone", ["train", "--tokenizer", "bpe:256"], "must be greater than 256"),
    ("tokenizer bpe size not a number", ["train", "--tokenizer", "bpe:x"],
     "--tokenizer 'bpe:x': the vocabulary size 'x' is not a whole number; accepted: char (the default), or bpe:N"),
    ("tokenizer bpe size negative", ["train", "--tokenizer", "bpe:-300"], "the vocabulary size '-300' is not a whole"),
    ("tokenizer unknown kind", ["train", "--tokenizer", "word"],
     "--tokenizer 'word' is not a tokenizer this course trains; accepted: char (the default), or bpe:N"),
    ("resume with another tokenizer", ["train", "--resume", "good.pt", "--max-iters", "50", "--tokenizer", "bpe:300"],
     "--tokenizer bpe:300 differs from the tokenizer of the run being resumed (char)"),
    ("rope with an odd head size", ["train", "--position", "rope", "--n-embd", "36", "--n-head", "4"],
     "--position='rope' needs an even head size, --n-embd/--n-head = 9"),
    # train: rates
    ("lr zero", ["train", "--lr", "0"], "--lr must be > 0, got 0.0"),
    ("lr negative", ["train", "--lr", "-0.001"], "--lr must be > 0, got -0.001"),
    ("lr nan", ["train", "--lr", "nan"], "--lr must be a finite number, got nan"),
    ("lr inf", ["train", "--lr", "inf"], "--lr must be a finite number, got inf"),
    ("weight decay negative", ["train", "--weight-decay", "-0.1"], "--weight-decay must be >= 0, got -0.1"),
    ("dropout one", ["train", "--dropout", "1"], "--dropout must be in [0, 1), got 1.0"),
    ("dropout nan", ["train", "--dropout", "nan"], "--dropout must be a finite number, got nan"),
    ("attn-dropout negative", ["train", "--attn-dropout", "-0.1"], "--attn-dropout must be in [0, 1)"),
    ("time budget negative", ["train", "--time-budget", "-1"], "--time-budget must be >= 0, got -1.0"),
    ("time budget inf", ["train", "--time-budget", "inf"], "--time-budget must be a finite number, got inf"),
    ("muon lr zero", ["train", "--optimizer", "muon", "--muon-lr", "0"], "--muon-lr must be > 0, got 0.0"),
    # train: contradictory combinations
    ("muon-lr without muon", ["train", "--muon-lr", "0.01"], "--muon-lr is set but the optimizer is adamw"),
    ("model flags on the bigram", ["train", "--preset", "bigram", "--n-embd", "64"],
     "the bigram preset has no n_embd/n_head/n_layer/dropout or chapter-12 flags"),
    ("unknown preset", ["train", "--preset", "gpt5"], "argument --preset: invalid choice: 'gpt5'"),
    ("unknown device", ["train", "--device", "tpu9"], "unknown device 'tpu9'"),
    # train: files
    ("data missing", ["train", "--data", "missing.txt"], "corpus file not found: missing.txt (check the path)"),
    ("data a folder", ["train", "--data", "folder"], "folder is a folder, not a text file"),
    ("data empty", ["train", "--data", "empty.txt"], "empty.txt is empty: a language model needs text"),
    ("data not UTF-8", ["train", "--data", "latin1.txt"], "latin1.txt is not UTF-8 text (byte 0xe9 at offset 3"),
    ("data shorter than block_size", ["train", "--data", "tiny.txt"],
     "block_size=8 is too large for the validation split (2 tokens)"),
    ("out already exists", ["train", *TINY, "--out", "good.pt"],
     "good.pt already exists (a checkpoint from an earlier run); pass --overwrite to replace it"),
    ("out a folder", ["train", "--out", "folder"], "--out folder is a folder; give a file name"),
    ("out inside a file", ["train", "--out", "good.pt/x.pt"], "good.pt is a file, not a folder"),
    # train --resume
    ("resume missing", ["train", "--resume", "missing.pt"], "checkpoint not found: missing.pt"),
    ("resume a folder", ["train", "--resume", "folder"], "folder is a folder, not a checkpoint file"),
    ("resume empty", ["train", "--resume", "empty.pt"], "empty.pt is empty (0 bytes), not a checkpoint"),
    ("resume truncated", ["train", "--resume", "truncated.pt"], "truncated.pt is truncated or damaged"),
    ("resume random bytes", ["train", "--resume", "random.pt"],
     "random.pt is not a checkpoint: it is not a file written by torch.save"),
    ("resume unsafe pickle", ["train", "--resume", "unsafe.pt"],
     "it holds Python objects besides tensors and plain data, and was not loaded"),
    ("resume another file", ["train", "--resume", "not-course.pt"], "not-course.pt is not a lecture_utils checkpoint"),
    ("resume newer format", ["train", "--resume", "newer.pt"],
     f"newer.pt was written by a newer version of the course (checkpoint format {CHECKPOINT_FORMAT + 1}"),
    ("resume newer settings", ["train", "--resume", "newer-fields.pt"],
     "was written by a newer version of the course (model settings ['flash'] are unknown here)"),
    ("resume weights only", ["train", "--resume", "weights-only.pt"], "holds the weights only, no training state"),
    ("resume with another model", ["train", "--resume", "good.pt", "--n-embd", "64"],
     "--n-embd 64 differs from the checkpoint's n_embd=32: a resumed run keeps its model"),
    ("resume with another batch", ["train", "--resume", "good.pt", "--batch-size", "8"],
     "--batch-size 8 differs from the run being resumed (batch_size=32)"),
    ("resume with another preset", ["train", "--resume", "good.pt", "--preset", "cpu"],
     "--preset cpu differs from the preset of the run being resumed (lecture-small)"),
    ("resume with nothing left", ["train", "--resume", "good.pt", "--max-iters", "6"],
     "good.pt is already at iteration 6: --max-iters 6 leaves nothing to train"),
    ("resume on another vocabulary", ["train", "--resume", "other-vocab.pt", "--max-iters", "50"],
     "the text to train on has a vocabulary of 65 characters, not the 16 the checkpoint was trained on"),
    ("resume into an existing out", ["train", "--resume", "good.pt", "--max-iters", "50", "--out", "other-shape.pt"],
     "other-shape.pt already exists"),
    # sample
    ("sample missing", ["sample", "--checkpoint", "missing.pt"], "checkpoint not found: missing.pt"),
    ("sample a folder", ["sample", "--checkpoint", "folder"], "folder is a folder, not a checkpoint file"),
    ("sample empty", ["sample", "--checkpoint", "empty.pt"], "empty.pt is empty (0 bytes)"),
    ("sample truncated", ["sample", "--checkpoint", "truncated.pt"], "truncated.pt is truncated or damaged"),
    ("sample random bytes", ["sample", "--checkpoint", "random.pt"], "random.pt is not a checkpoint"),
    ("sample unsafe pickle", ["sample", "--checkpoint", "unsafe.pt"], "holds Python objects besides tensors"),
    ("sample newer format", ["sample", "--checkpoint", "newer.pt"], "written by a newer version of the course"),
    ("sample no checkpoint flag", ["sample"], "the following arguments are required: --checkpoint"),
    ("sample empty prompt", ["sample", "--checkpoint", "good.pt", "--prompt", ""],
     "--prompt is empty: the model needs at least one character to continue from"),
    ("sample unknown characters", ["sample", "--checkpoint", "good.pt", "--prompt", "caf\u00e9 \u20ac"],
     "the prompt has characters the model does not know: ['\u00e9', '\u20ac']"),
    ("sample tokens zero", ["sample", "--checkpoint", "good.pt", "--tokens", "0"], "--tokens must be an integer >= 1, got 0"),
    ("sample tokens negative", ["sample", "--checkpoint", "good.pt", "--tokens", "-5"], "--tokens must be an integer >= 1"),
    ("sample temperature zero", ["sample", "--checkpoint", "good.pt", "--temperature", "0"],
     "--temperature must be a finite number > 0, got 0.0"),
    ("sample temperature nan", ["sample", "--checkpoint", "good.pt", "--temperature", "nan"],
     "--temperature must be a finite number > 0, got nan"),
    ("sample top-k zero", ["sample", "--checkpoint", "good.pt", "--top-k", "0"], "--top-k must be an integer >= 1, got 0"),
    ("sample seed negative", ["sample", "--checkpoint", "good.pt", "--seed", "-1"], "--seed must be an integer in [0, 2**63)"),
]
if torch.cuda.is_available():
    CLI_ROWS.append(("cpu-bf16 on a GPU", ["train", "--cpu-bf16", "--device", "cuda"],
                     "--cpu-bf16 is for training on a CPU, but the device is cuda"))


@pytest.mark.parametrize("argv, message", [r[1:] for r in CLI_ROWS], ids=[r[0] for r in CLI_ROWS])
def test_bad_command_line_gives_one_clear_line_and_writes_nothing(files, capsys, argv, message):
    rc, out, err, changed = cli(argv, files, capsys)
    assert rc == 2, (rc, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert message in lines[0], lines[0]
    assert lines[0].startswith("error: ") and "Traceback" not in err and "weights_only" not in err
    assert out == ""
    assert changed == []


def model_and_tokenizer():
    tok = CharTokenizer.from_text("abc\n")
    return GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_embd=16, n_head=2, n_layer=1)), tok


# (id, a call a notebook could make with a learner's values, the exception, what its message must contain)
API_ROWS = [
    ("empty vocabulary", lambda f: CharTokenizer.from_text(""), ValueError, "the vocabulary is empty"),
    ("unknown character", lambda f: CharTokenizer.from_text("abc").encode("abz"), ValueError,
     "character 'z' at position 2 is not in the vocabulary of 3 characters"),
    ("id outside the vocabulary", lambda f: CharTokenizer.from_text("abc").decode([0, 7]), ValueError,
     "id 7 at position 1 is outside the vocabulary (0..2)"),
    ("batch from data shorter than block_size", lambda f: get_batch(torch.arange(5), 8, 4), ValueError,
     "block_size=8 is too large for data of length 5"),
    ("batch from empty data", lambda f: get_batch(torch.zeros(0, dtype=torch.long), 8, 4), ValueError, "data is empty"),
    ("batch from float data", lambda f: get_batch(torch.rand(100), 8, 4), ValueError,
     "data must hold integer token ids, got dtype torch.float32"),
    ("batch from a list", lambda f: get_batch([1, 2, 3], 1, 1), ValueError, "data must be a 1-D tensor of token ids, got list"),
    ("block_size zero", lambda f: get_batch(torch.arange(50), 0, 4), ValueError, "block_size must be a positive integer, got 0"),
    ("batch_size fractional", lambda f: get_batch(torch.arange(50), 8, 2.5), ValueError,
     "batch_size must be a positive integer, got 2.5"),
    ("generate from an empty context", lambda f: generate(model_and_tokenizer()[0], torch.zeros((1, 0), dtype=torch.long), 5),
     ValueError, "idx is an empty context (T = 0)"),
    ("generate with ids outside the vocabulary", lambda f: generate(model_and_tokenizer()[0], torch.tensor([[9]]), 5),
     ValueError, "idx holds ids outside the model's vocabulary 0..3"),
    ("generate at temperature 0", lambda f: generate(model_and_tokenizer()[0], torch.zeros((1, 1), dtype=torch.long), 5,
                                                     temperature=0.0), ValueError, "temperature must be a number > 0"),
    ("generate with top_k 0", lambda f: generate(model_and_tokenizer()[0], torch.zeros((1, 1), dtype=torch.long), 5, top_k=0),
     ValueError, "top_k must be None or an integer >= 1, got 0"),
    ("generate a negative count", lambda f: generate(model_and_tokenizer()[0], torch.zeros((1, 1), dtype=torch.long), -1),
     ValueError, "max_new_tokens must be an integer >= 0, got -1"),
    ("TrainConfig max_iters negative", lambda f: TrainConfig(max_iters=-5), ValueError,
     "TrainConfig.max_iters must be an integer >= 1, got -5"),
    ("TrainConfig lr nan", lambda f: TrainConfig(learning_rate=math.nan), ValueError,
     "TrainConfig.learning_rate must be a finite number, got nan"),
    ("TrainConfig beta2 one", lambda f: TrainConfig(beta2=1.0), ValueError, "TrainConfig.beta2 must be in [0, 1), got 1.0"),
    ("TrainConfig min_lr above lr", lambda f: TrainConfig(lr_decay=True, learning_rate=1e-3, min_lr=1e-2), ValueError,
     "TrainConfig.min_lr=0.01 is above TrainConfig.learning_rate=0.001"),
    ("GPTConfig heads do not divide", lambda f: GPTConfig(n_embd=32, n_head=5), ValueError,
     "GPTConfig.n_embd=32 must be divisible by GPTConfig.n_head=5"),
    ("corpus a folder", lambda f: load_text(f / "folder"), CorpusError, "is a folder, not a text file"),
    ("checkpoint into another vocabulary", lambda f: load_checkpoint(f / "other-shape.pt", model_and_tokenizer()[0]),
     CheckpointError, "was saved from another configuration: vocab_size: checkpoint 65 vs model 4"),
    ("checkpoint into another size", lambda f: load_checkpoint(
        f / "good.pt", GPT(GPTConfig(vocab_size=65, block_size=8, n_embd=64, n_head=4, n_layer=3))),
     CheckpointError, "n_embd: checkpoint 32 vs model 64"),
    ("resume a weights-only checkpoint", lambda f: train(load_checkpoint(f / "good.pt")[0], torch.arange(100) % 65,
                                                         torch.arange(100) % 65, TrainConfig(max_iters=1), progress=False,
                                                         resume=read_checkpoint(f / "weights-only.pt")),
     CheckpointError, "this checkpoint holds weights only, no training state to resume from"),
    ("save over a folder", lambda f: save_checkpoint(f / "folder", model_and_tokenizer()[0]), CheckpointError,
     "it is a folder; give a file name"),
] + [
    (f"read {name}", (lambda n: lambda f: read_checkpoint(f / n))(name), CheckpointError, message)
    for name, message in [("missing.pt", "checkpoint not found"), ("folder", "is a folder, not a checkpoint file"),
                          ("empty.pt", "is empty (0 bytes)"), ("truncated.pt", "is truncated or damaged"),
                          ("random.pt", "is not a checkpoint"), ("unsafe.pt", "holds Python objects besides tensors"),
                          ("not-course.pt", "is not a lecture_utils checkpoint"),
                          ("newer.pt", "written by a newer version of the course")]
]


@pytest.mark.parametrize("call, exc, message", [r[1:] for r in API_ROWS], ids=[r[0] for r in API_ROWS])
def test_bad_value_in_a_notebook_gives_a_clear_error_and_writes_nothing(files, call, exc, message):
    before = snapshot(files)
    with pytest.raises(exc) as info:
        call(files)
    assert message in str(info.value)
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)
    assert snapshot(files) == before


# --- the trained checkpoint survives --------------------------------------------------------------------------


def run(*args, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "lecture_utils", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}, **kw)


def test_a_bad_command_after_a_real_run_leaves_the_checkpoint_byte_identical(tmp_path):
    done = run("train", "--preset", "lecture-small", "--max-iters", "20", "--eval-interval", "10", "--eval-iters", "2",
               "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    trained = (tmp_path / "runs" / "lecture-small.pt").read_bytes()
    for bad in (["--max-iters", "-5"], ["--max-iters", "0"], []):  # [] : the same command again, without --overwrite
        out = run("train", "--preset", "lecture-small", *bad, cwd=tmp_path)
        assert out.returncode == 2 and out.stderr.startswith("error: "), out.stderr
        assert (tmp_path / "runs" / "lecture-small.pt").read_bytes() == trained
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["lecture-small.pt"]
    again = run("train", "--preset", "lecture-small", "--max-iters", "2", "--eval-iters", "1", "--overwrite",
                "--device", "cpu", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "runs" / "lecture-small.pt").read_bytes() != trained  # --overwrite does replace it


def test_ctrl_c_keeps_the_best_checkpoint_and_a_log_shows_each_evaluation_as_it_happens(tmp_path):
    log = open(tmp_path / "log.txt", "w")
    proc = subprocess.Popen([sys.executable, "-m", "lecture_utils", "train", "--preset", "lecture-small",
                             "--max-iters", "1000000", "--eval-interval", "20", "--eval-iters", "2", "--device", "cpu",
                             "--out", "best.pt"], stdout=log, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
                            # a learner's terminal delivers Ctrl-C; a test run started in the background (`cmd &`
                            # without job control) hands its children SIGINT ignored, so the child gets it back
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while "step     20:" not in (tmp_path / "log.txt").read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
        assert proc.poll() is None  # the log showed two evaluations while the run was still going
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == 130, err
    assert "interrupted: the best checkpoint so far (val loss" in err and "is best.pt; continue with: " \
           "python -m lecture_utils train --resume best.pt" in err, err
    assert "Traceback" not in err
    payload = read_checkpoint(tmp_path / "best.pt")
    assert payload["extra"]["iter"] >= 20 and payload["training"]["iter"] == payload["extra"]["iter"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "log.txt"]  # no temporary file left


@pytest.mark.parametrize("error, reason", [(OSError(28, "No space left on device"), "No space left on device"),
                                           (PermissionError(13, "Permission denied"), "Permission denied")])
def test_a_failed_write_keeps_the_previous_checkpoint_and_says_why(files, tmp_path, capsys, monkeypatch, error, reason):
    (tmp_path / "run.pt").write_bytes((files / "good.pt").read_bytes())
    before = snapshot(tmp_path)

    def broken_replace(src, dst):
        raise error

    monkeypatch.setattr(os, "replace", broken_replace)
    rc, out, err, changed = cli(["train", *TINY, "--max-iters", "4", "--out", "run.pt", "--overwrite"], tmp_path, capsys)
    assert rc == 2 and changed == [] and snapshot(tmp_path) == before
    assert f"error: could not write the checkpoint run.pt: {reason}; the previous checkpoint there is unchanged" in err


# --- properties on generated inputs ----------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=200), st.text(max_size=50))
def test_tokenizer_round_trips_its_own_text_and_names_any_unknown_character(text, other):
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text
    unknown = [c for c in other if c not in set(text)]
    if not unknown:
        assert tok.decode(tok.encode(other)) == other
    else:
        with pytest.raises(ValueError) as info:
            tok.encode(other)
        assert f"character {unknown[0]!r} at position {other.index(unknown[0])}" in str(info.value)
        assert tok.unknown_chars(other) == list(dict.fromkeys(unknown))


@given(st.integers(0, 40), st.integers(-2, 45), st.integers(-1, 5), st.integers(0, 2**31))
def test_get_batch_gives_shifted_chunks_or_a_clear_error(n, block_size, batch_size, seed):
    data = torch.randint(0, 1000, (n,))
    if block_size < 1 or batch_size < 1 or block_size >= n:
        with pytest.raises(ValueError, match="block_size|batch_size|data is empty"):
            get_batch(data, block_size, batch_size, generator=torch.Generator().manual_seed(seed))
        return
    x, y = get_batch(data, block_size, batch_size, generator=torch.Generator().manual_seed(seed))
    assert x.shape == y.shape == (batch_size, block_size)
    assert torch.equal(x[:, 1:], y[:, :-1])
    text = data.tolist()
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        starts = [i for i in range(n - block_size) if text[i:i + block_size] == row_x]
        assert any(text[i + 1:i + block_size + 1] == row_y for i in starts)


@pytest.fixture(scope="module")
def good_bytes(files):
    return (files / "good.pt").read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_checkpoint_reader_gives_a_checkpoint_or_a_checkpoint_error(tmp_path, good_bytes, data):
    """Arbitrary bytes, any cut of a real checkpoint, or a real one with a few bytes changed: read_checkpoint
    returns a checkpoint or raises CheckpointError - never another exception, never torch's advice."""
    kind = data.draw(st.sampled_from(["bytes", "cut", "flip"]))
    if kind == "bytes":
        blob = data.draw(st.binary(max_size=2000))
    elif kind == "cut":
        blob = good_bytes[: data.draw(st.integers(0, len(good_bytes) - 1))]
    else:
        blob = bytearray(good_bytes)
        for _ in range(data.draw(st.integers(1, 4))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    path = tmp_path / "c.pt"
    path.write_bytes(blob)
    try:
        payload = read_checkpoint(path)
    except CheckpointError as exc:
        assert "weights_only" not in str(exc) and "\n" not in str(exc)
        return
    assert 1 <= payload["format"] <= CHECKPOINT_FORMAT and isinstance(payload["state_dict"], dict)
