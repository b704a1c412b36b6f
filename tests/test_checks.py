"""Every exercise check (chapters 01-08) is itself tested:

(a) the reference implementation passes;
(b) an untouched stub (raising NotImplementedError) is reported "not attempted" and the check
    returns the reference, so the notebook runs on;
(c) every wrong solution of the catalogue (tests/wrong_solutions/, one module per chapter) fails with its diagnosis;
(d) correct code written differently (scaled_dot_product_attention, einsum, -1e9, a mask made in forward) passes.

Nothing here reads the corpus except exercise 1.1, whose check needs the vocabulary; those tests
are skipped when the corpus file is not installed.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from wrong_solutions import CATALOGUE, WrongSolution

import lecture_utils.checks as check
from lecture_utils import data
from lecture_utils.chapters import EXERCISES
from lecture_utils.checks import REGISTRY, RESULTS, CheckFailed
from lecture_utils.checks._core import FAILED, NOT_ATTEMPTED, PASSED

HAS_CORPUS = data.corpus_path().is_file()
needs_corpus = pytest.mark.skipif(not HAS_CORPUS, reason="the corpus file is not installed")


def _references(exercise_id: str) -> tuple:
    """The registered reference object(s) of an exercise, in the order of the check's parameters (the registry
    reads them from the chapter manifest, lecture_utils/chapters.py, their one source of truth)."""
    out = REGISTRY[exercise_id].reference()
    return out if isinstance(out, tuple) else (out,)


REFERENCES = {exercise_id: (lambda e=exercise_id: _references(e)) for exercise_id in REGISTRY}
CLASS_EXERCISES = {e.id for e in EXERCISES.values() if e.names[0][:1].isupper()}  # the learner writes a class


def _exercise_params(ids):
    return [pytest.param(e, marks=[needs_corpus] if e == "1.1" else [], id=e) for e in ids]


def _run(exercise_id: str, *objects, **kwargs):
    return REGISTRY[exercise_id].check(*objects, **kwargs)


def test_every_check_is_exported_under_its_name_and_tested():
    for exercise_id, ex in REGISTRY.items():
        assert getattr(check, ex.check.__name__) is ex.check, exercise_id
        if exercise_id != "1.1":  # 1.1's reference reads the corpus
            assert len(ex.names) == len(REFERENCES[exercise_id]()), exercise_id
            assert all(callable(obj) for obj in REFERENCES[exercise_id]()), exercise_id


def test_every_exercise_has_at_least_three_wrong_solutions():
    counts = Counter(w.exercise for w in CATALOGUE)
    assert {e: counts[e] for e in REGISTRY if counts[e] < 3} == {}
    assert {w.check for w in CATALOGUE} <= {ex.check.__name__ for ex in REGISTRY.values()}
    assert all(REGISTRY[w.exercise].check.__name__ == w.check for w in CATALOGUE)


# ---------------------------------------------------------------------------------------------
# (a) the reference passes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exercise_id", _exercise_params(REFERENCES))
def test_reference_passes(exercise_id):
    objects = REFERENCES[exercise_id]()
    out = _run(exercise_id, *objects)
    assert RESULTS[exercise_id]["status"] == PASSED
    assert (out if isinstance(out, tuple) else (out,)) == tuple(objects)


@pytest.mark.parametrize("exercise_id", _exercise_params(REFERENCES))
def test_check_takes_a_device_and_leaves_the_global_random_state_alone(exercise_id):
    state = torch.get_rng_state()
    _run(exercise_id, *REFERENCES[exercise_id](), device="cpu")
    assert torch.equal(torch.get_rng_state(), state)


# ---------------------------------------------------------------------------------------------
# (b) an untouched stub: "not attempted", and the reference stands in
# ---------------------------------------------------------------------------------------------


def _stub_function(exercise_id: str):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"Exercise {exercise_id}: write this function")

    return stub


def _stub_class(exercise_id: str):
    """A class whose __init__ body was removed (as the notebook generator leaves it)."""

    class Stub(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()
            raise NotImplementedError(f"Exercise {exercise_id}: write __init__")

    return Stub


def _stub_forward(exercise_id: str):
    """The reference class with only forward removed: the check gets past the parameters."""
    reference = REFERENCES[exercise_id]()[0]

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Exercise {exercise_id}: write forward")

    return type(reference.__name__, (reference,), {"forward": forward})


def _stubs():
    cases = []
    for exercise_id in REFERENCES:
        n = 2 if exercise_id == "1.1" else 1
        if exercise_id in CLASS_EXERCISES:
            cases.append((exercise_id, "init", lambda e=exercise_id: (_stub_class(e),)))
            cases.append((exercise_id, "forward", lambda e=exercise_id: (_stub_forward(e),)))
        else:
            cases.append((exercise_id, "function", lambda e=exercise_id, n=n: (_stub_function(e),) * n))
    return [pytest.param(e, build, id=f"{e}-{kind}", marks=[needs_corpus] if e == "1.1" else [])
            for e, kind, build in cases]


@pytest.mark.parametrize(("exercise_id", "build"), _stubs())
def test_untouched_stub_is_not_attempted_and_returns_the_reference(exercise_id, build):
    out = _run(exercise_id, *build())
    assert RESULTS[exercise_id]["status"] == NOT_ATTEMPTED
    if exercise_id == "1.1":  # two functions: compare what they do
        encode, decode = out
        assert decode(encode("To be, or not to be")) == "To be, or not to be"
    else:
        assert out is REFERENCES[exercise_id]()[0]


# ---------------------------------------------------------------------------------------------
# (c) each wrong solution fails with its diagnosis
# ---------------------------------------------------------------------------------------------


def _wrong_params():
    return [pytest.param(w, id=f"{w.exercise}-{w.name}", marks=[needs_corpus] if w.needs_corpus else [])
            for w in CATALOGUE]


def _diagnosis(wrong: WrongSolution) -> str | None:
    """The check's message for ``wrong``, or None when the check passed it."""
    try:
        getattr(check, wrong.check)(*wrong.build())
    except CheckFailed as failure:
        return str(failure)
    return None


@pytest.mark.parametrize("wrong", _wrong_params())
def test_wrong_solution_gets_its_diagnosis(wrong):
    message = _diagnosis(wrong)
    assert message is not None, f"{wrong.name} passed the check of exercise {wrong.exercise}"
    assert wrong.expect in message
    assert RESULTS[wrong.exercise]["status"] == FAILED


def test_cropping_the_wrong_end_is_caught_whatever_the_check_draws():
    """2.2's block_size stage draws a fresh context each run. Its chain once had a fixed point (3i + 1 mod 11 maps 5
    to 5): a context ending in 5 made idx[:, :block_size] give the right tokens, and the wrong solution passed about 1
    run in 121 (a fresh-clone CI run met it). 300 runs, every one with the diagnosis."""
    wrong = next(w for w in CATALOGUE if w.name == "generate_crops_the_start")
    messages = [_diagnosis(wrong) for _ in range(300)]
    assert all(m is not None and wrong.expect in m for m in messages), Counter(m and m[:80] for m in messages)


def test_wrong_solutions_caught_figure(capsys):
    """Runs the whole catalogue and prints how many wrong solutions got their diagnosis."""
    runnable = [w for w in CATALOGUE if HAS_CORPUS or not w.needs_corpus]
    caught = [w for w in runnable if (m := _diagnosis(w)) is not None and w.expect in m]
    with capsys.disabled():
        print(f"\nwrong solutions caught: {len(caught)}/{len(runnable)}"
              + ("" if HAS_CORPUS else " (exercise 1.1 skipped: no corpus)"))
    assert len(caught) == len(runnable), sorted({w.name for w in runnable} - {w.name for w in caught})


def test_progress_lists_checked_and_pending_exercises(capsys):
    import lecture_utils

    RESULTS.clear()
    _run("1.2", data.split_data)
    assert lecture_utils.progress("01_data") is None  # prints; nothing to echo in a notebook
    out = capsys.readouterr().out
    assert "1.2" in out and "passed" in out and "1.3" in out and "not checked yet" in out


def test_every_marker_has_a_plain_word_beside_it(capsys):
    # without an emoji font the symbols show as empty boxes: the word beside each still says the status
    RESULTS.clear()
    _run("1.2", data.split_data)
    _run("1.3", _stub_function("1.3"))
    with pytest.raises(CheckFailed) as failed:
        _run("1.2", lambda d, frac: (d, d))
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("\u2705 passed: Exercise 1.2") for line in lines), lines
    assert any(line.startswith("\u23f3 not attempted: Exercise 1.3") for line in lines), lines
    assert "\u274c failed: Exercise 1.2" in failed.value._render_traceback_()[0]
    check.progress("01")
    table = capsys.readouterr().out
    assert "\u274c failed" in table and "\u23f3 not attempted" in table and "not checked yet" in table


def test_progress_works_after_a_plain_import_in_a_fresh_kernel(tmp_path):
    import subprocess
    import sys

    import nbformat

    # a fresh notebook imports only lecture_utils: progress() is there, and reads the notebooks saved beside it
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("check.split_data(split_data)", outputs=[nbformat.v4.new_output(
                    "display_data", data={"text/plain": "passed", check.MIME: {
                        "exercise": "1.2", "title": "train/val split", "status": PASSED, "message": "ok"}})]),
                nbformat.v4.new_code_cell("check.get_batch(get_batch)", outputs=[nbformat.v4.new_output(
                    "error", ename="CheckFailed", evalue="Exercise 1.3 (get_batch): y equals x", traceback=[])])]
    nbformat.write(nb, tmp_path / "01_data.ipynb")
    run = subprocess.run([sys.executable, "-c", "import lecture_utils; lecture_utils.progress()"], cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    assert "saved in" in run.stdout and "\u2705 passed" in run.stdout and "1.2" in run.stdout, run.stdout
    assert "\u274c failed" in run.stdout and "1.3" in run.stdout, run.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    run = subprocess.run([sys.executable, "-c", "import lecture_utils; lecture_utils.progress()"], cwd=empty,
                         capture_output=True, text=True, check=True)
    assert "python -m lecture_utils grade notebooks/" in run.stdout, run.stdout


# ---------------------------------------------------------------------------------------------
# (d) correct code written differently passes
# ---------------------------------------------------------------------------------------------


def _head_variant(attend):
    """A correct Head whose attention is ``attend(self, q, k, v, T)``: the parameters are the lecture's."""

    class Head(nn.Module):
        def __init__(self, n_embd, head_size, block_size, dropout=0.0):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
            self.dropout = nn.Dropout(dropout)
            self.p = dropout

        def forward(self, x):
            T = x.shape[1]
            return attend(self, self.query(x), self.key(x), self.value(x), T)

    return Head


def _sdpa(self, q, k, v, T):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.p if self.training else 0.0)


def _einsum(self, q, k, v, T):
    wei = torch.einsum("btd,bsd->bts", q, k) / math.sqrt(k.shape[-1])
    wei = self.dropout(F.softmax(wei.masked_fill(self.tril[:T, :T] == 0, float("-inf")), dim=-1))
    return torch.einsum("bts,bsd->btd", wei, v)


def _minus_1e9(self, q, k, v, T):
    wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
    wei = wei.masked_fill(self.tril[:T, :T] == 0, -1e9)
    return self.dropout(F.softmax(wei, dim=-1)) @ v


def _mask_in_forward(self, q, k, v, T):
    wei = q @ k.transpose(-2, -1) / k.size(-1) ** 0.5
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=q.device))
    wei = wei.masked_fill(~mask, float("-inf"))
    return self.dropout(wei.softmax(-1)) @ v


def _masked_fill_in_place(self, q, k, v, T):
    wei = (q @ k.mT) * k.shape[-1] ** -0.5
    wei.masked_fill_(self.tril[:T, :T] == 0, float("-inf"))
    return self.dropout(torch.softmax(wei, dim=2)) @ v


def _batched_variant(attend):
    class CausalSelfAttention(nn.Module):
        def __init__(self, n_embd, n_head, block_size, dropout=0.0):
            super().__init__()
            self.n_head, self.p = n_head, dropout
            self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
            self.proj = nn.Linear(n_embd, n_embd)
            self.drop = nn.Dropout(dropout)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = (t.unflatten(-1, (self.n_head, -1)).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
            out = attend(self, q, k, v, T)
            return self.drop(self.proj(out.transpose(1, 2).reshape(B, T, C)))

    return CausalSelfAttention


def _batched_einsum(self, q, k, v, T):
    wei = torch.einsum("bhtd,bhsd->bhts", q, k) * q.shape[-1] ** -0.5
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    wei = F.dropout(wei.masked_fill(~mask, -1e9).softmax(dim=-1), self.p, training=self.training)
    return torch.einsum("bhts,bhsd->bhtd", wei, v)


CORRECT_VARIANTS = {
    "4.1-scaled_dot_product_attention": ("4.1", lambda: _head_variant(_sdpa)),
    "4.1-einsum": ("4.1", lambda: _head_variant(_einsum)),
    "4.1-masked_fill_minus_1e9": ("4.1", lambda: _head_variant(_minus_1e9)),
    "4.1-mask_computed_in_forward": ("4.1", lambda: _head_variant(_mask_in_forward)),
    "4.1-masked_fill_in_place": ("4.1", lambda: _head_variant(_masked_fill_in_place)),
    "5.2-scaled_dot_product_attention": ("5.2", lambda: _batched_variant(_sdpa)),
    "5.2-einsum_minus_1e9_mask_in_forward": ("5.2", lambda: _batched_variant(_batched_einsum)),
}


@pytest.mark.parametrize("name", CORRECT_VARIANTS)
def test_correct_variant_passes(name):
    exercise_id, build = CORRECT_VARIANTS[name]
    cls = build()
    assert _run(exercise_id, cls) is cls
    assert RESULTS[exercise_id]["status"] == PASSED


def test_correct_mha_with_sdpa_heads_passes():
    """5.1 and 7.2 with heads written the SDPA way (a learner's own Head, not the reference's)."""
    Head = _head_variant(_sdpa)

    class MultiHeadAttention(nn.Module):
        def __init__(self, n_embd, num_heads, head_size, block_size, dropout=0.0):
            super().__init__()
            self.heads = nn.ModuleList([Head(n_embd, head_size, block_size, dropout) for _ in range(num_heads)])
            self.proj = nn.Linear(num_heads * head_size, n_embd)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            return self.dropout(self.proj(torch.cat([h(x) for h in self.heads], dim=-1)))

    assert _run("5.1", MultiHeadAttention) is MultiHeadAttention
