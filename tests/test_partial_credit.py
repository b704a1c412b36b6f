"""Partial credit that says why (lecture_utils.checks._parts): the parts each multi-part check declares, run on
the catalogue's wrong solutions that are wrong in exactly one way, and the grade the gradebook files carry.

A solution wrong in one way must fail the part that tests that way, with the catalogue's diagnosis, and pass every
other part: no part fails merely because an earlier one did."""

from __future__ import annotations

import csv
import io

import pytest
from wrong_solutions import CATALOGUE

from lecture_utils.checks import REGISTRY, CheckFailed
from lecture_utils.checks._parts import PARTS, REST, declared, fraction, run_parts
from lecture_utils.grading import classroom, feedback, lms
from lecture_utils.grading.results import ExerciseResult, NotebookResult

# catalogue entry -> the start of the one part it must fail (every other part of its exercise passes)
ONE_WAY = {
    "bigram_reshapes_only_inside_the_loss": "forward(idx, targets): logits reshaped",
    "bigram_loss_summed": "the loss", "bigram_softmax_before_cross_entropy": "the loss",
    "bigram_nll_on_logits": "the loss", "bigram_always_computes_loss": "forward(idx):",
    "bigram_zero_loss_without_targets": "forward(idx):", "bigram_always_flattens": "forward(idx):",
    "head_without_mask": "causal mask", "head_masked_fill_unassigned": "causal mask",
    "head_mask_filled_with_zero": "causal mask", "head_scaled_by_c": "scale", "head_not_scaled": "scale",
    "head_keys_times_queries": "scale", "head_scaled_by_global_head_size": "scale",
    "head_mask_not_sliced": "output shape", "head_dropout_in_eval": "dropout", "head_without_dropout": "dropout",
    "head_dropout_before_softmax": "dropout", "head_dropout_before_mask": "dropout",
    "head_dropout_on_output": "dropout", "head_mask_made_in_forward_on_the_cpu": "runs on another device",
    "multi_head_proj_unused": "the heads concatenated", "multi_head_without_dropout": "dropout",
    "multi_head_dropout_before_proj": "dropout", "multi_head_grown_from_an_empty_cpu_tensor": "runs on another",
    "layer_norm_over_batch": "mean and variance", "layer_norm_over_dim_1": "mean and variance",
    "layer_norm_unbiased_variance": "the biased variance", "layer_norm_eps_outside_sqrt": "eps",
    "layer_norm_without_eps": "eps", "layer_norm_fixed_eps": "eps", "layer_norm_without_parameters": "parameters",
    "layer_norm_parameters_unused": "weight and bias applied", "layer_norm_eps_as_a_cpu_vector": "runs on another",
    "block_without_residual": "a residual connection", "block_parallel_residual": "the feed-forward reads",
    "block_post_norm": "pre-norm", "block_norms_swapped": "pre-norm", "block_one_norm_twice": "pre-norm",
    "block_dropout_not_passed_down": "dropout", "block_dropout_not_passed_to_ffwd": "dropout",
    "block_on_a_head_with_a_cpu_mask": "runs on another device",
}
ENTRIES = {w.name: w for w in CATALOGUE if w.name in ONE_WAY}


def _references(exercise_id: str) -> tuple:
    objects = REGISTRY[exercise_id].reference()
    return objects if isinstance(objects, tuple) else (objects,)


def test_the_multi_part_exercises_declare_their_parts():
    assert {"2.1", "4.1", "5.1", "7.1", "7.2"} <= set(PARTS)
    assert set(ONE_WAY) == set(ENTRIES), "every entry named here is in the catalogue"
    assert {w.exercise for w in ENTRIES.values()} == {"2.1", "4.1", "5.1", "7.1", "7.2"}
    for ex in PARTS:
        assert len(declared(ex)) >= 4 and len(set(declared(ex))) == len(declared(ex))


@pytest.mark.parametrize("exercise_id", sorted(PARTS))
def test_the_reference_passes_every_part(exercise_id):
    results = run_parts(exercise_id, _references(exercise_id))
    assert [r["name"] for r in results] == declared(exercise_id)
    assert all(r["passed"] and r["diagnosis"] == "" for r in results), results


@pytest.mark.parametrize("name", sorted(ONE_WAY), ids=str)
def test_a_solution_wrong_in_one_way_fails_only_that_part_with_its_diagnosis(name):
    wrong = ENTRIES[name]
    objects = wrong.build()
    with pytest.raises(CheckFailed) as caught:  # the learner-facing check: first failure, one remark, unchanged
        REGISTRY[wrong.exercise].check(*objects)
    assert wrong.expect in caught.value.hint
    results = run_parts(wrong.exercise, objects, check_hint=caught.value.hint)
    failed = [r for r in results if not r["passed"]]
    assert [r["name"] for r in failed] == [n for n in declared(wrong.exercise) if n.startswith(ONE_WAY[name])], results
    assert wrong.expect in failed[0]["diagnosis"]
    assert fraction(results) == (len(results) - 1) / len(results)


def test_a_failed_check_with_every_part_right_still_loses_a_part():
    results = run_parts("7.1", _references("7.1"), check_hint="the output differs somewhere no part looks")
    assert results[-1] == {"name": REST, "passed": False, "diagnosis": "the output differs somewhere no part looks"}
    assert all(r["passed"] for r in results[:-1]) and fraction(results) < 1
    timed_out = run_parts("7.1", _references("7.1"), check_hint="your code took longer than 20 s on small inputs")
    assert not any(r["passed"] for r in timed_out)  # a hanging solution is not run once per part
    assert run_parts("1.2", ()) == []  # no parts declared: all or nothing


def test_points_are_earned_part_by_part_only_when_the_instructor_turns_it_on(tmp_path):
    parts = [{"name": "a", "passed": True, "diagnosis": ""}, {"name": "b", "passed": False, "diagnosis": "why"},
             {"name": "c", "passed": True, "diagnosis": ""}, {"name": "d", "passed": True, "diagnosis": ""}]
    assert feedback.earned("failed", parts, 2.0, partial=True) == 1.5
    assert feedback.earned("failed", parts, 2.0, partial=False) == 0.0
    assert feedback.earned("failed", [], 2.0, partial=True) == 0.0  # an exercise without parts
    assert feedback.earned("not verified", parts, 2.0, partial=True) == 0.0
    assert feedback.earned("passed", [], 2.0, partial=False) == 2.0
    table = tmp_path / "points.toml"
    table.write_text('partial_credit = true\ndefault = 2\n')
    assert feedback.load_partial(table) is True and feedback.load_points(table, ["4.1"]) == {"4.1": 2.0}
    table.write_text('[points]\npartial_credit = ["4.1"]\n"4.1" = 3\n')
    assert feedback.load_partial(table) == ["4.1"] and feedback.load_points(table, ["4.1", "5.1"])["4.1"] == 3.0
    assert feedback.score({"4.1": "failed", "5.1": "failed"}, {"4.1": 2.0, "5.1": 2.0},
                          {"4.1": parts, "5.1": parts}, ["4.1"]) == 1.5
    assert feedback.load_partial(None) is False
    table.write_text("partial_credit = 3\n")
    with pytest.raises(ValueError, match="partial_credit"):
        feedback.load_partial(table)


def test_the_roll_up_the_lms_files_and_the_reports_carry_the_partial_score_and_the_failed_part():
    objects = ENTRIES["head_scaled_by_c"].build()
    with pytest.raises(CheckFailed) as caught:
        REGISTRY["4.1"].check(*objects)
    parts = run_parts("4.1", objects, check_hint=caught.value.hint)
    sub = classroom.Submission("ada@uni.edu", "subs/ada")
    sub.notebooks = [NotebookResult("ada@uni.edu/04_attention.ipynb", 4, seconds=3.0, exercises=[
        ExerciseResult("4.1", "one head", "failed", caught.value.hint, parts),
        ExerciseResult("4.2", "cross head", "passed", "ok")])]
    points = {"4.1": 6.0, "4.2": 1.0}
    off = classroom.to_json([sub], True, points)
    assert off["learners"][0]["score"] == 1.0  # partial credit off: all or nothing
    roll_up = classroom.to_json([sub], True, points, partial=True)
    entry = roll_up["learners"][0]
    assert entry["score"] == 6.0 and entry["earned"] == {"4.1": 5.0, "4.2": 1.0}  # 5 of 6 parts of 6 points
    rows = classroom.lms_rows(roll_up)
    canvas = list(csv.reader(io.StringIO(lms.canvas_csv(rows, "ch04", 7.0))))
    assert canvas[2][5] == "6"
    moodle = list(csv.reader(io.StringIO(lms.moodle_csv(rows, "ch04"))))
    assert moodle[1][1] == "6" and "4.1 (5/6 parts; wrong: scale head_size**-0.5" in moodle[1][2]
    page, text = feedback.to_html(entry, points), feedback.to_markdown(entry, points)
    for report in (page, text):
        assert "Parts: 5 of 6 right." in report and "wrong: scale head_size**-0.5" in report
        assert "scaled by C (n_embd) instead of head_size" in report and "(the diagnosis above)" in report
    assert "5/6 points" in text and "Score: 6 / 7" in text
