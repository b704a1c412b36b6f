"""Chapter 08's reference curve is a recording (lecture_utils/recorded/reference_cpu_small.json, written by
benchmarks/record_reference.py): it must be what the code produces for the chapter's recipe, and the chapter must use
exactly the recorded recipe (else the reference trains again in every learner's notebook).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, replace
from pathlib import Path

import nbformat
import pytest
import torch

from lecture_utils import my_gpt
from lecture_utils.config import TrainConfig
from lecture_utils.data import load_dataset
from lecture_utils.device import seed_everything
from lecture_utils.model import GPT, GPTConfig
from lecture_utils.train import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def record():
    return my_gpt.recording()


@pytest.fixture(scope="module")
def dataset():
    return load_dataset()


def _recipe(record):
    return GPTConfig.from_dict(record["model_config"]), TrainConfig.from_dict(record["train_config"])


def test_the_recording_is_what_the_reference_code_produces(record, dataset):
    """The first evaluation and the first steps' training losses, trained again now: the same up to float rounding
    (threads and CPUs sum in another order), and far from what another seed gives."""
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


def test_the_recording_holds_a_whole_run(record):
    model_config, train_config = _recipe(record)
    history = record["history"]
    assert [h["iter"] for h in history] == list(range(0, train_config.max_iters + 1, train_config.eval_interval))
    assert record["result"]["best_val"] == min(h["val"] for h in history)
    assert history[-1]["val"] < history[0]["val"] - 1.5  # it trained: from about ln 65 = 4.17 down
    assert record["model_config"] == model_config.to_dict() and record["train_config"] == asdict(train_config)


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


def test_the_recording_script_builds_the_chapters_recipe(record, dataset):
    spec = importlib.util.spec_from_file_location("record_reference", ROOT / "benchmarks" / "record_reference.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    model_config, train_config = script.chapter_08_recipe(dataset[1].vocab_size)
    assert my_gpt._same_recipe(record, model_config, train_config, record["seed"], dataset[2], dataset[3])
