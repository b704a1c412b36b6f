"""lecture_utils.config: the learning-rate schedule, reading a saved TrainConfig back (also from the shipped
checkpoints), and the presets (the lecture's numbers, each small one trains, cpu-best is the benchmark's)."""

import math
from dataclasses import asdict, fields, replace

import pytest
import torch

from lecture_utils.checkpoints import SHIPPED, read_checkpoint, shipped_checkpoint_path
from lecture_utils.config import PRESETS, TrainConfig, build_model, warmup_cosine_lr
from lecture_utils.model import GPT, BigramLanguageModel
from lecture_utils.modern import ModernGPT
from lecture_utils.pretrain import SHIPPED_PRETRAINED
from lecture_utils.train import train


def test_warmup_and_cosine_schedule():
    cfg = TrainConfig(max_iters=100, learning_rate=1e-3, warmup_iters=10, lr_decay=True, min_lr=1e-4)
    assert cfg.lr_at(0) == pytest.approx(1e-4)
    assert cfg.lr_at(9) == pytest.approx(1e-3)
    assert cfg.lr_at(55) == pytest.approx((1e-3 + 1e-4) / 2)
    assert cfg.lr_at(100) == pytest.approx(1e-4)


def test_presets_match_the_lecture():
    lec = PRESETS["lecture"]
    assert (lec.model.n_embd, lec.model.n_head, lec.model.n_layer, lec.model.block_size, lec.model.dropout) == (384, 6, 6, 256, 0.2)
    assert (lec.train.batch_size, lec.train.learning_rate, lec.train.max_iters) == (64, 3e-4, 5000)
    small = PRESETS["lecture-small"]
    assert (small.model.n_embd, small.model.n_head, small.model.n_layer, small.model.block_size) == (32, 4, 3, 8)
    assert small.train.block_size is None  # the context length is the model's: one place
    big = PRESETS["bigram"].train
    assert (big.batch_size, big.block_size, big.learning_rate, big.max_iters) == (32, 8, 1e-2, 3000)


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p.model is not None and p.model.n_embd <= 128])
def test_every_small_preset_builds_and_takes_a_step(name):
    preset = PRESETS[name]
    model = build_model(preset, 65)
    cfg = replace(preset.train, max_iters=1, time_budget=0.0, eval_interval=1, eval_iters=1, batch_size=2,
                  warmup_iters=0)
    d = torch.randint(65, (400,))
    res = train(model, d, d, cfg, progress=False)
    assert res.iters_done == 1 and math.isfinite(res.last_val)



def test_each_preset_builds_the_model_its_config_describes():
    assert type(build_model(PRESETS["bigram"], 65)) is BigramLanguageModel
    lecture = build_model(PRESETS["lecture-small"], 65)
    assert type(lecture) is GPT and lecture.config == replace(PRESETS["lecture-small"].model, vocab_size=65)
    best = build_model(PRESETS["cpu-best"], 65)  # chapter 12's SwiGLU and RoPE: not the lecture's GPT
    assert type(best) is ModernGPT and best.config == replace(PRESETS["cpu-best"].model, vocab_size=65)

def test_cpu_best_preset_is_the_benchmarks_best_configuration():
    best, cpu = PRESETS["cpu-best"], PRESETS["cpu"]
    # the cpu preset's shape and schedule, with chapter 12's SwiGLU and RoPE and weight decay on matrices only
    assert replace(best.model, activation="relu", position="learned") == cpu.model
    assert (best.train.weight_decay, best.train.decay_all, best.train.time_budget) == (0.3, False, 600.0)
    assert replace(best.train, weight_decay=cpu.train.weight_decay, decay_all=True,
                   eval_interval=cpu.train.eval_interval) == cpu.train


def test_without_decay_the_rate_is_constant_after_warmup_and_the_cosine_stays_at_min_lr_after_max_iters():
    flat = TrainConfig(max_iters=100, learning_rate=1e-3, warmup_iters=4)
    assert [flat.lr_at(it) for it in (0, 3, 4, 50, 500)] == pytest.approx([2.5e-4, 1e-3, 1e-3, 1e-3, 1e-3])
    assert warmup_cosine_lr(150, 1e-3, 1e-4, 10, 100) == pytest.approx(1e-4)
    assert warmup_cosine_lr(10, 1e-3, 1e-4, 10, 100) == pytest.approx(1e-3)  # the peak right after warmup


def test_a_saved_train_config_reads_back_and_ignores_fields_it_does_not_know():
    cfg = TrainConfig(max_iters=7, learning_rate=2e-3, optimizer="muon")
    assert TrainConfig.from_dict(asdict(cfg)) == cfg
    # a newer version's field is left out; a field added since the file was written takes its default
    saved = {k: v for k, v in asdict(cfg).items() if k != "decay_all"} | {"a_field_from_the_future": 1}
    assert TrainConfig.from_dict(saved) == cfg


@pytest.mark.parametrize("name", [SHIPPED, SHIPPED_PRETRAINED])
def test_every_setting_a_shipped_checkpoint_saved_is_still_a_train_config_field(name):
    """A renamed field would be dropped silently by from_dict: the shipped checkpoints' settings must all still
    have a field of the same name, and read back to the values saved."""
    saved = read_checkpoint(shipped_checkpoint_path(name))["train_config"]
    assert set(saved) <= {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig.from_dict(saved)
    assert all(getattr(cfg, k) == v for k, v in saved.items())
