"""The mutation tool (lecture_utils.mutation, `python -m lecture_utils.authoring mutants`): it finds every
exercise with its check, makes the mutants it promises, survives a mutant that hangs, and - on a small fixed
sample of mutants - every mutant is killed by the check or listed as equivalent. The full run is
benchmarks/mutants.py (its table is in benchmarks/RESULTS.md)."""

from __future__ import annotations

import dataclasses

import pytest

from lecture_utils import mutation
from lecture_utils.checks import REGISTRY

EXERCISES = {e.id: e for e in mutation.find_exercises(".")}


def test_every_exercise_of_solutions_is_found_with_its_own_check():
    assert set(EXERCISES) == set(REGISTRY)
    for exercise_id, exercise in EXERCISES.items():
        assert REGISTRY[exercise_id].check.__name__ == exercise.check
        assert len(exercise.args) == len(REGISTRY[exercise_id].names)


def test_mutants_edit_only_the_solution_with_every_operator():
    operators = {m.operator for e in EXERCISES.values() for m in mutation.mutants(e)}
    assert operators == {"dim", "swap", "delete", "off-by-one", "transpose", "keepdim", "constant", "call"}
    head = mutation.mutants(EXERCISES["4.1"])
    assert len({m.source for m in head}) == len(head)  # no duplicates
    assert len({m.description for m in head}) == len(head)  # each can be named in equivalent_mutants.toml
    assert any(m.description == "dim: `wei = F.softmax(wei, dim=-1)`: `dim=-1` -> `dim=-2`" for m in head)
    for m in head:  # the signature, outside the solution block, is never touched
        assert "def __init__(self, n_embd, head_size, block_size, dropout=0.0):" in m.source


def test_equivalent_mutants_file_names_existing_mutants_with_a_reason():
    listed = mutation.load_equivalents()
    descriptions = {(e.id, m.description) for e in EXERCISES.values() for m in mutation.mutants(e)}
    assert set(listed) <= descriptions, sorted(set(listed) - descriptions)
    assert all(reason.strip() for reason in listed.values())


def test_a_hanging_mutant_is_stopped_and_counted_as_killed():
    exercise = EXERCISES["3.1"]
    loop = exercise.source.replace("def average_v1(x):", "def average_v1(x):\n    while True:\n        pass", 1)
    blocked = exercise.source.replace(
        "def average_v1(x):",
        "def average_v1(x):\n    import signal, time\n    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
        "    time.sleep(60)", 1)
    # a 10 s grace instead of the tool's 30: the hung mutant is stopped after 13 s, not 33 (the alarm's 1 s
    # still leaves the looping mutant ten times its limit to answer on a loaded machine)
    runner = mutation._Runner(exercise, time_limit=1.0, grace=10.0)
    try:
        result, message = runner.run(0, mutation.Mutant("test", "infinite loop", loop))
        assert (result, message.startswith("your code took longer")) == ("generic", True), message
        result, message = runner.run(1, mutation.Mutant("test", "blocks the alarm", blocked))
        assert (result, "hung" in message) == ("generic", True), message
        result, _ = runner.run(2, mutation.Mutant("test", "the solution itself", exercise.source))
        assert result == "survived"  # the restarted worker goes on
    finally:
        runner.close()


@pytest.mark.parametrize(("exercise_id", "every"), [("3.3", 3), ("4.1", 5)])
def test_sample_of_mutants_is_killed_or_listed_as_equivalent(exercise_id, every):
    outcomes = mutation.run_exercise(EXERCISES[exercise_id], every=every)
    assert outcomes
    unexplained = [o.mutant.description for o in outcomes if o.result == "survived" and o.equivalent is None]
    assert unexplained == []
    assert all(o.result != "invalid" for o in outcomes), [o.message for o in outcomes if o.result == "invalid"]


def test_table_counts_each_outcome_once():
    m = mutation.Mutant("delete", "d", "")
    outcomes = [mutation.Outcome(m, "specific", ""), mutation.Outcome(m, "generic", ""),
                mutation.Outcome(m, "survived", "", "same result"), mutation.Outcome(m, "survived", ""),
                mutation.Outcome(m, "invalid", "")]
    text = mutation.table({"4.1": outcomes})
    assert "| 4.1 | 4 | 1 | 1 | 2 | 1 | 1 |" in text
    assert dataclasses.is_dataclass(outcomes[0])
