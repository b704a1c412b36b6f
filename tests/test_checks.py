"""Every exercise check (chapters 01-08) is itself tested:

(a) the reference implementation passes;
(b) an untouched stub (raising NotImplementedError) is reported "not attempted" and the check
    returns the reference, so the notebook runs on;
(c) every wrong solution of the catalogue (tests/wrong_solutions.py) fails with its diagnosis.

Nothing here reads the corpus except exercise 1.1, whose check needs the vocabulary; those tests
are skipped when the corpus file is not installed.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import nn
from wrong_solutions import CATALOGUE, WrongSolution

import lecture_utils.checks as check
from lecture_utils import addition, data, pretrain, timing, train
from lecture_utils import model as M
from lecture_utils.checks import REGISTRY, RESULTS, CheckFailed
from lecture_utils.checks._core import FAILED, NOT_ATTEMPTED, PASSED
from lecture_utils.checks.ch02_bigram import reference_train_loop
from lecture_utils.checks.ch03_averaging import reference_average_v1, reference_average_v2, reference_average_v3

HAS_CORPUS = data.corpus_path().is_file()
needs_corpus = pytest.mark.skipif(not HAS_CORPUS, reason="the corpus file is not installed")


def _codec():
    tok = data.CharTokenizer.from_text(data.load_text())
    return tok.encode, tok.decode


# exercise -> the reference objects, in the order of the check's parameters
REFERENCES = {
    "1.1": _codec,
    "1.2": lambda: (data.split_data,),
    "1.3": lambda: (data.get_batch,),
    "2.1": lambda: (M.BigramLanguageModel,),
    "2.2": lambda: (M.generate,),
    "2.3": lambda: (train.estimate_loss,),
    "2.4": lambda: (reference_train_loop,),
    "3.1": lambda: (reference_average_v1,),
    "3.2": lambda: (reference_average_v2,),
    "3.3": lambda: (reference_average_v3,),
    "3.4": lambda: (M.BigramWithPositions,),
    "4.1": lambda: (M.Head,),
    "5.1": lambda: (M.MultiHeadAttention,),
    "5.2": lambda: (M.CausalSelfAttention,),
    "6.1": lambda: (M.FeedForward,),
    "7.1": lambda: (M.LayerNorm,),
    "7.2": lambda: (M.Block,),
    "8.1": lambda: (M.GPT,),
    "9.1": lambda: (M.heads_to_batched,),
    "9.2": lambda: (timing.median_seconds,),
    "10.1": lambda: (addition.encode_problem,),
    "10.2": lambda: (addition.make_batch,),
    "10.3": lambda: (addition.accuracy,),
    "11.1": lambda: (pretrain.to_vocabulary,),
    "11.2": lambda: (pretrain.copy_for_finetuning,),
    "12.1": lambda: (M.gelu,),
    "12.2": lambda: (M.RMSNorm,),
    "12.3": lambda: (M.apply_rope,),
    "12.4": lambda: (M.SwiGLU,),
    "12.5": lambda: (M.tie_weights,),
    "12.6": lambda: (train.warmup_cosine_lr,),
}
CLASS_EXERCISES = {"2.1", "3.4", "4.1", "5.1", "5.2", "6.1", "7.1", "7.2", "8.1", "12.2", "12.4"}


def _exercise_params(ids):
    return [pytest.param(e, marks=[needs_corpus] if e == "1.1" else [], id=e) for e in ids]


def _run(exercise_id: str, *objects, **kwargs):
    return REGISTRY[exercise_id].check(*objects, **kwargs)


def test_every_check_is_exported_under_its_name_and_tested():
    assert set(REFERENCES) == set(REGISTRY)
    for exercise_id, ex in REGISTRY.items():
        assert getattr(check, ex.check.__name__) is ex.check, exercise_id
        if exercise_id != "1.1":  # 1.1's reference reads the corpus
            assert len(ex.names) == len(REFERENCES[exercise_id]()), exercise_id
            registered = ex.reference()
            assert (registered if isinstance(registered, tuple) else (registered,)) == REFERENCES[exercise_id]()


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
    if exercise_id == "1.1":  # fresh bound methods each time: compare what they do
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
