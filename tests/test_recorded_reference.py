"""Recorded runs (lecture_utils/recorded/<run>.json, written by benchmarks/record_reference.py --run <run>): chapter
08's reference curve beside the learner's GPT and chapter 11's from-scratch baseline beside the learner's fine-tuned
copy. Each must be what the code produces for its chapter's recipe, and the chapter must use exactly the recorded
recipe (else the run trains again in every learner's notebook).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, replace
from pathlib import Path

import nbformat
import pytest
import torch

from lecture_utils import my_gpt, recordings
from lecture_utils.config import TrainConfig
from lecture_utils.data import load_dataset
from lecture_utils.device import seed_everything
from lecture_utils.model import GPT, GPTConfig
from lecture_utils.train import train

ROOT = Path(__file__).resolve().parents[1]


RUNS = [recordings.REFERENCE_RUN, recordings.SCRATCH_RUN]


@pytest.fixture(scope="module")
def record():
    return my_gpt.recording()


@pytest.fixture(scope="module", params=RUNS)
def any_record(request):
    return recordings.recording(request.param)


def _script():
    spec = importlib.util.spec_from_file_location("record_reference", ROOT / "benchmarks" / "record_reference.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


@pytest.fixture(scope="module")
def dataset():
    return load_dataset()


def _recipe(record):
    return GPTConfig.from_dict(record["model_config"]), TrainConfig.from_dict(record["train_config"])


def test_the_recording_is_what_the_reference_code_produces(any_record, dataset):
    """The first evaluation and the first steps' training losses, trained again now: the same up to float rounding
    (threads and CPUs sum in another order), and far from what another seed gives."""
    record = any_record
    _, _, train_data, val_data = dataset
    model_config, train_config = _recipe(record)
    steps = len(record["first_step_losses"])

    def stop(it, losses):
        if it >= steps:
            raise StopIteration

    def run(seed, eval_iters):
        seed_everything(seed)
        return train(GPT(model_config), train_data, val_data,
                     replace(train_config, eval_interval=steps, eval_iters=eval_iters, seed=seed),
                     callback=stop, progress=False)

    with torch.random.fork_rng():
        again = run(record["seed"], train_config.eval_iters)
    first = record["history"][0]
    assert again.history[0]["iter"] == first["iter"] == 0
    assert again.history[0]["val"] == pytest.approx(first["val"], abs=1e-3)
    assert again.history[0]["train"] == pytest.approx(first["train"], abs=1e-3)
    assert again.step_losses[:steps] == pytest.approx(record["first_step_losses"], abs=5e-3)
    with torch.random.fork_rng():
        other = run(record["seed"] + 1, 1)  # the evaluations draw from their own generator: fewer change no step
    assert max(abs(a - b) for a, b in zip(other.step_losses, record["first_step_losses"])) > 0.02


def test_the_recording_holds_a_whole_run(any_record):
    record = any_record
    model_config, train_config = _recipe(record)
    history = record["history"]
    assert [h["iter"] for h in history] == list(range(0, train_config.max_iters + 1, train_config.eval_interval))
    assert record["result"]["best_val"] == min(h["val"] for h in history)
    assert history[-1]["val"] < history[0]["val"] - 1.5  # it trained: from about ln 65 = 4.17 down
    # the whole recipe is recorded; a speed-only field added since (fast_cpu_paths) takes its default
    assert record["model_config"] == model_config.to_dict()
    assert recordings._recipe(record["train_config"]) == recordings._recipe(asdict(train_config))


def test_chapter_08_trains_your_gpt_on_the_recorded_recipe(record, dataset):
    """Run the chapter's recipe cell at full length (smoke off) and compare it with the recording's recipe, the way
    reference_run does: a changed cell would make every learner train the reference again."""
    cells = nbformat.read(ROOT / "solutions" / "08_scaling_up.ipynb", as_version=4).cells
    recipe = [c.source for c in cells if c.cell_type == "code" and c.source.lstrip().startswith(
        "from lecture_utils.config import PRESETS") and "cpu_config = " in c.source]
    assert len(recipe) == 1, "chapter 08 has no single recipe cell ('from lecture_utils.config import PRESETS' ... cpu_config)"
    space = {"replace": replace, "smoke": lambda full, small: full}
    exec(recipe[0], space)
    _, tokenizer, train_data, val_data = dataset
    model_config = replace(space["preset"].model, vocab_size=tokenizer.vocab_size)
    assert my_gpt._same_recipe(record, model_config, space["cpu_config"], 1337, train_data, val_data)


def test_reference_run_returns_the_recording_for_its_recipe_and_trains_otherwise(record, dataset, capsys):
    _, _, train_data, val_data = dataset
    model_config, train_config = _recipe(record)
    recorded = my_gpt.reference_run(model_config, train_config, train_data, val_data, seed=record["seed"])
    assert recorded.recorded is record or recorded.recorded == record
    assert [h["val"] for h in recorded.history] == [h["val"] for h in record["history"]]
    assert "recorded" in capsys.readouterr().out
    tiny = replace(train_config, max_iters=3, eval_interval=3, eval_iters=1, warmup_iters=1)
    with torch.random.fork_rng():
        trained = my_gpt.reference_run(replace(model_config, n_layer=1), tiny, train_data, val_data, seed=1,
                                       show=False)
    assert trained.recorded is None and trained.iters_done == 3


@pytest.mark.parametrize("run", RUNS)
def test_the_recording_script_builds_the_chapters_recipe(run, dataset):
    record = recordings.recording(run)
    recipe, _ = _script().RUNS[run]
    model_config, train_config = recipe(dataset[1].vocab_size)
    assert record["name"] == run
    assert run == recordings.REFERENCE_RUN or f"--run {run}" in record["command"]  # it says how to make it again
    assert recordings.same_recipe(record, model_config, train_config, record["seed"], dataset[2], dataset[3])


def _chapter_11_scratch_recipe(smoke):
    """The from-scratch recipe chapter 11's comparison cell builds (its lines 'steps =', 'quick =',
    'scratch_model =', 'scratch_recipe ='), with the smoke setting on or off."""
    from lecture_utils import pretrain
    from lecture_utils.config import PRESETS

    cells = nbformat.read(ROOT / "solutions" / "11_pretrain_finetune.ipynb", as_version=4).cells
    cell = [c.source for c in cells if c.cell_type == "code" and 'runs["from scratch"] = reference_run(' in c.source]
    assert len(cell) == 1, "chapter 11 has no single cell with runs[\"from scratch\"] = reference_run(...)"
    wanted = ("steps = ", "quick = ", "scratch_model = ", "scratch_recipe = ")
    lines = [ln for ln in cell[0].splitlines() if ln.startswith(wanted)]
    assert [ln.split(" = ")[0] for ln in lines] == [w.split(" = ")[0] for w in wanted], lines
    space = {"replace": replace, "pretrain": pretrain, "PRESETS": PRESETS, "tokenizer": load_dataset()[1],
             "smoke": (lambda full, small: small) if smoke else (lambda full, small: full)}
    exec("\n".join(lines), space)
    return space["scratch_model"], space["scratch_recipe"]


def test_chapter_11_reads_its_from_scratch_run_from_the_recording_at_full_length_only(dataset):
    record = recordings.recording(recordings.SCRATCH_RUN)
    _, _, train_data, val_data = dataset
    assert recordings.same_recipe(record, *_chapter_11_scratch_recipe(smoke=False), 1337, train_data, val_data)
    assert not recordings.same_recipe(record, *_chapter_11_scratch_recipe(smoke=True), 1337, train_data, val_data)
    assert record["train_config"]["max_iters"] == 2000 and record["result"]["iters_done"] == 2000


def test_chapter_11_falls_back_to_training_when_the_recipe_changes(dataset, capsys):
    record = recordings.recording(recordings.SCRATCH_RUN)
    _, _, train_data, val_data = dataset
    model_config, train_config = _recipe(record)
    recorded = recordings.reference_run(model_config, train_config, train_data, val_data, seed=1337,
                                        name=recordings.SCRATCH_RUN, label="from scratch")
    assert recorded.recorded == record and recorded.iters_done == 2000
    assert [h["val"] for h in recorded.history] == [h["val"] for h in record["history"]]
    assert capsys.readouterr().out.startswith("from scratch (recorded on ")
    shorter = replace(train_config, max_iters=3, eval_interval=3, eval_iters=1, warmup_iters=1)
    with torch.random.fork_rng():
        trained = recordings.reference_run(model_config, shorter, train_data, val_data, seed=1337,
                                           name=recordings.SCRATCH_RUN, label="from scratch")
        other_seed = recordings.reference_run(model_config, replace(shorter, max_iters=1, eval_interval=1),
                                              train_data, val_data, seed=7, name=recordings.SCRATCH_RUN, show=False)
    assert trained.recorded is None and trained.iters_done == 3 and trained.step_losses
    assert other_seed.recorded is None and other_seed.iters_done == 1
    assert "no recorded run of this recipe, so it trains now" in capsys.readouterr().out


def test_an_unknown_recording_is_named():
    with pytest.raises(recordings.RecordingError, match="no recorded run 'nothing_here'"):
        recordings.recording("nothing_here")
