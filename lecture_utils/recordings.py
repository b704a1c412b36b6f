"""Recorded training runs of the package's own GPT, shipped so that a learner need not wait for them.

Some curves a chapter draws are the same for every learner: the package's model (``lecture_utils.model.GPT``),
trained with a fixed recipe from a fixed seed on the shipped data. Chapter 08's reference beside the learner's GPT
and chapter 11's from-scratch baseline beside the learner's fine-tuned copy are two. Such a run is recorded once by
``benchmarks/record_reference.py --run <name>`` into ``lecture_utils/recorded/<name>.json``, and
:func:`reference_run` returns the recording when the chapter asks for exactly the recorded recipe, seed and data
(and trains the model now when anything differs: the smoke setting, a changed recipe, another seed).
``tests/test_recorded_reference.py`` trains the first steps of every recording again and compares them with it.

A recording holds the recipe (``model_config``, ``train_config``, ``seed``), the data's sizes, the history of
evaluations, the training loss of the first steps, and where, when and how it was made.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

RECORDED = Path(__file__).resolve().parent / "recorded"  # shipped recordings (package data: recorded/*.json)
REFERENCE_RUN = "reference_cpu_small"  # chapter 08's: the reference GPT on its shortened cpu-small recipe
SCRATCH_RUN = "scratch_cpu_ch11"  # chapter 11's: the cpu preset's GPT trained from scratch on Tiny Shakespeare


class RecordingError(ValueError):
    """No such recording ships with the package."""


def recording(name: str = REFERENCE_RUN) -> dict:
    """The recorded run ``lecture_utils/recorded/<name>.json`` (written by ``benchmarks/record_reference.py``).

    Raises:
        RecordingError: no such recording ships with the package.
    """
    path = RECORDED / f"{name}.json"
    if not path.is_file():
        raise RecordingError(f"no recorded run {name!r} in {RECORDED} (written by benchmarks/record_reference.py)")
    return json.loads(path.read_text(encoding="utf-8"))


# TrainConfig fields that change how fast a step is computed, not its numbers (beyond fp32 rounding)
SPEED_ONLY = ("fast_cpu_paths",)


def _recipe(train_config: dict) -> dict:
    return {k: v for k, v in train_config.items() if k not in SPEED_ONLY}


def same_recipe(record: dict, model_config, train_config, seed: int, train_data, val_data) -> bool:
    """Whether ``record`` was made with exactly this model config, training config (its speed-only fields
    aside), seed and data (by size)."""
    return (record["model_config"] == model_config.to_dict()
            and _recipe(record["train_config"]) == _recipe(asdict(train_config))
            and record["seed"] == seed and record["data"] == {"train": len(train_data), "val": len(val_data)})


def reference_run(model_config, train_config, train_data, val_data, seed: int = 1337, device=None,
                  name: str = REFERENCE_RUN, show: bool = True, label: str = "reference"):
    """``lecture_utils.model.GPT`` trained with this recipe from ``seed``: the recording ``name`` when it was made
    with exactly this recipe, seed and data (no need to wait for the same run again), else trained now, as a
    chapter would (``seed_everything(seed)``, then build, then :func:`lecture_utils.train.train`). Prints which of
    the two it is (``label`` names the run), with the summary line.

    Returns:
        a :class:`lecture_utils.train.TrainResult`; ``.recorded`` is the recording's record, or None when the run
        was trained now.
    """
    from lecture_utils.device import seed_everything
    from lecture_utils.model import GPT
    from lecture_utils.train import TrainResult, train

    try:
        record = recording(name)
    except RecordingError:
        record = None
    if record is not None and same_recipe(record, model_config, train_config, seed, train_data, val_data):
        known = {f.name for f in fields(TrainResult)}
        result = TrainResult(**{k: v for k, v in record["result"].items() if k in known})
        result.history = [dict(h) for h in record["history"]]
        result.recorded = record
        if show:
            print(f"{label} (recorded on {record['date']} by {record['command']}): {result.iters_done} "
                  f"iters: train {result.last_train:.4f}, val {result.last_val:.4f} (best val {result.best_val:.4f} "
                  f"at iter {result.best_iter})")
        return result
    if show:
        print(f"{label}: no recorded run of this recipe, so it trains now")
    seed_everything(seed)
    model = GPT(model_config)
    if device is not None:
        model = model.to(device)
    result = train(model, train_data, val_data, train_config, progress=show)
    result.recorded = None
    if show:
        print(f"{label}: {result.summary()}")
    return result


__all__ = ["RECORDED", "REFERENCE_RUN", "SCRATCH_RUN", "RecordingError", "recording", "same_recipe",
           "reference_run"]
