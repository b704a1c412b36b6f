"""lecture_utils.train: estimate_loss, whole_split_loss and the training loop (callbacks, time budget, bf16,
resuming, the context length, the fast CPU dropout). Configuration, optimizers and checkpoints have their own
test files: test_config.py, test_optimizers.py, test_checkpoints.py."""

import os
from dataclasses import replace

import pytest
import torch

from lecture_utils import data
from lecture_utils.config import TrainConfig
from lecture_utils.model import GPT, BigramLanguageModel, GPTConfig
from lecture_utils.train import estimate_loss, train

SMALL = GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.1)


@pytest.fixture(scope="module")
def shakespeare():
    return data.load_dataset()


def test_estimate_loss_uses_eval_mode_and_restores_train_mode():
    m = GPT(SMALL)
    d = torch.randint(65, (500,))
    m.train()
    out = estimate_loss(m, {"train": d, "val": d}, eval_iters=3, block_size=8, batch_size=4,
                        generator=torch.Generator().manual_seed(0))
    assert set(out) == {"train", "val"} and all(isinstance(v, float) for v in out.values())
    again = estimate_loss(m, {"train": d, "val": d}, eval_iters=3, block_size=8, batch_size=4,
                          generator=torch.Generator().manual_seed(0))
    assert again == out  # dropout (0.1) is off in eval mode, so the same batches give the same losses
    assert m.training
    m.eval()
    estimate_loss(m, {"val": d}, 2, 8, 4)
    assert not m.training


def test_short_bigram_run_learns(shakespeare):
    _, tok, tr, va = shakespeare
    torch.manual_seed(1337)
    m = BigramLanguageModel(tok.vocab_size)
    cfg = TrainConfig(max_iters=1500, eval_interval=500, eval_iters=50, batch_size=32, block_size=8,
                      learning_rate=1e-2)
    res = train(m, tr, va, cfg, progress=False)
    assert res.last_val < 2.6, res.summary()
    assert res.best_val <= res.last_val
    assert [h["iter"] for h in res.history] == [0, 500, 1000, 1500]


def test_callback_sees_every_evaluation_and_can_stop_training():
    d = torch.randint(65, (400,))
    seen = []

    def cb(it, losses):
        seen.append(it)
        if it >= 4:
            raise StopIteration

    res = train(GPT(SMALL), d, d, TrainConfig(max_iters=50, eval_interval=2, eval_iters=1, batch_size=4, block_size=8),
                callback=cb, progress=False)
    assert seen == [0, 2, 4] and res.iters_done == 4


def test_time_budget_stops_training_and_decays_over_the_budget():
    d = torch.randint(65, (400,))
    cfg = TrainConfig(max_iters=10**6, eval_interval=50, eval_iters=1, batch_size=4, block_size=8,
                      learning_rate=1e-3, lr_decay=True, min_lr=1e-4, time_budget=1.5)
    res = train(GPT(SMALL), d, d, cfg, progress=False)
    assert 0 < res.iters_done < 10**6
    # stops at the budget, not at max_iters; the margin is wide because a loaded CI machine can stall a step
    assert res.seconds < 1.5 + 20.0
    assert res.history[-1]["lr"] < 1e-3  # the learning rate decayed with the elapsed time
    assert cfg.lr_at(10, elapsed=0.75) == pytest.approx((1e-3 + 1e-4) / 2)


def test_cpu_bf16_is_opt_in_and_trains():
    from lecture_utils.device import autocast_dtype, cpu_has_native_bf16

    assert autocast_dtype("cpu") is None  # fp32 on a CPU unless asked
    assert autocast_dtype("cpu", cpu_bf16=True) == (torch.bfloat16 if cpu_has_native_bf16() else None)
    _, tok, tr, va = data.load_dataset()
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_embd=32, n_head=4, n_layer=1, dropout=0.0))
    cfg = TrainConfig(max_iters=30, eval_interval=30, eval_iters=2, batch_size=8, block_size=16, learning_rate=3e-3,
                      cpu_bf16=True)
    res = train(model, tr, va, cfg, progress=False)
    assert res.history[-1]["val"] < res.history[0]["val"] - 0.3
    assert next(model.parameters()).dtype == torch.float32  # autocast leaves the weights in fp32


def test_whole_split_loss_is_the_mean_over_every_window():
    from lecture_utils.train import whole_split_loss

    torch.manual_seed(0)
    model = GPT(SMALL).train()
    split = torch.randint(65, (8 * 13 + 5,))  # 13 windows of 8, and a remainder that no window covers
    got = whole_split_loss(model, split, block_size=8, batch_size=5)  # batches of 5, 5, 3 windows
    model.eval()
    with torch.no_grad():
        logits, _ = model(split[:104].view(13, 8))
        want = torch.nn.functional.cross_entropy(logits.reshape(-1, 65), split[1:105]).item()
    assert got == pytest.approx(want, rel=1e-6)
    model.train()
    whole_split_loss(model, split, 8)
    assert model.training  # mode restored (dropout 0.1 was off while measuring: same value twice)
    assert whole_split_loss(model, split, 8) == pytest.approx(got, rel=1e-6)
    with pytest.raises(ValueError, match="too short"):
        whole_split_loss(model, split[:8], 8)


def _cli_in(folder, *argv):
    from lecture_utils.__main__ import main

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return main(list(argv))
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_a_resumed_run_has_the_losses_of_an_uninterrupted_one(tmp_path, optimizer):
    """N steps straight vs N/2 steps, then --resume to N: the same training loss at every step and the same
    evaluations, to 1e-5 (dropout on, so torch's random state must come back too)."""
    from lecture_utils.checkpoints import read_checkpoint

    common = ["--preset", "lecture-small", "--device", "cpu", "--eval-interval", "5", "--eval-iters", "2",
              "--dropout", "0.1", "--no-progress", "--threads", "1", "--optimizer", optimizer]
    assert _cli_in(tmp_path, "train", *common, "--max-iters", "20", "--out", "straight.pt") == 0
    assert _cli_in(tmp_path, "train", *common, "--max-iters", "10", "--out", "halves.pt") == 0
    assert read_checkpoint(tmp_path / "halves.pt")["training"]["iter"] == 10  # stopped at a known step
    assert _cli_in(tmp_path, "train", "--resume", "halves.pt", "--max-iters", "20", "--device", "cpu",
                   "--no-progress", "--threads", "1") == 0
    straight = read_checkpoint(tmp_path / "straight.pt")["training"]
    resumed = read_checkpoint(tmp_path / "halves.pt")["training"]
    assert straight["iter"] == resumed["iter"] == 20 and len(resumed["step_losses"]) == 20
    torch.testing.assert_close(torch.tensor(resumed["step_losses"]), torch.tensor(straight["step_losses"]),
                               rtol=0, atol=1e-5)
    assert [h["iter"] for h in resumed["history"]] == [h["iter"] for h in straight["history"]] == [0, 5, 10, 15, 20]
    for a, b in zip(resumed["history"], straight["history"]):
        assert abs(a["val"] - b["val"]) < 1e-5 and abs(a["train"] - b["train"]) < 1e-5


def test_resume_continues_the_schedule_and_the_time_budget(tmp_path, shakespeare):
    """The learning rate after resuming is the schedule's value at that iteration, not its start."""
    from lecture_utils.checkpoints import read_checkpoint

    _, tok, tr, va = shakespeare
    cfg = TrainConfig(max_iters=12, eval_interval=6, eval_iters=1, batch_size=4, block_size=8, learning_rate=1e-2,
                      warmup_iters=4, lr_decay=True, min_lr=1e-3)
    torch.manual_seed(0)
    model = GPT(replace(SMALL, vocab_size=tok.vocab_size, dropout=0.0))
    train(model, tr, va, replace(cfg, max_iters=6), progress=False, checkpoint=tmp_path / "c.pt", tokenizer=tok)
    payload = read_checkpoint(tmp_path / "c.pt")
    seen = []
    res = train(GPT(replace(SMALL, vocab_size=tok.vocab_size, dropout=0.0)), tr, va, cfg, progress=False,
                resume=payload, callback=lambda it, losses: seen.append((it, losses["lr"])))
    assert res.iters_done == 12 and [h["iter"] for h in res.history] == [0, 6, 12]
    assert seen == [(12, pytest.approx(cfg.lr_at(11)))]  # the rate of the last step taken: iteration 11's


def test_micro_batches_split_across_processes_or_say_why():
    from lecture_utils.distributed import split_micro_batches

    cfg = TrainConfig(batch_size=32, grad_accum=1)
    assert split_micro_batches(cfg, 1, grad_accum_given=False) == (cfg, None)
    two, note = split_micro_batches(cfg, 2, grad_accum_given=False)
    assert (two.batch_size, two.grad_accum) == (16, 2) and "the same global batch of 32 sequences" in note
    odd, note = split_micro_batches(replace(cfg, batch_size=7), 2, grad_accum_given=False)
    assert (odd.batch_size, odd.grad_accum) == (7, 2) and "a global batch of 14 sequences instead of 7" in note
    with pytest.raises(ValueError, match="--grad-accum 1 cannot be split across 2 processes"):
        split_micro_batches(cfg, 2, grad_accum_given=True)


def test_the_context_length_is_the_model_s_unless_the_model_has_none():
    from lecture_utils.train import training_block_size

    gpt = GPT(SMALL)
    assert training_block_size(TrainConfig(), gpt) == 8
    assert training_block_size(TrainConfig(block_size=4), gpt) == 4
    assert training_block_size(TrainConfig(block_size=8), BigramLanguageModel(7)) == 8
    with pytest.raises(ValueError, match=r"BigramLanguageModel has no block_size of its own.*TrainConfig\(block_size=8\)"):
        training_block_size(TrainConfig(), BigramLanguageModel(7))


def test_training_gives_the_reference_gpt_fast_cpu_dropout_and_leaves_other_models_alone():
    import torch.nn as nn

    from lecture_utils.speed import CPUDropout

    d = torch.arange(200) % 65
    cfg = TrainConfig(max_iters=1, eval_interval=0, eval_iters=1, batch_size=2)
    ref = GPT(SMALL)
    train(ref, d, d, cfg, progress=False)
    assert {type(m) for m in ref.modules() if isinstance(m, nn.Dropout)} == {CPUDropout}
    plain = GPT(SMALL)
    train(plain, d, d, replace(cfg, fast_cpu_dropout=False), progress=False)
    assert {type(m) for m in plain.modules() if isinstance(m, nn.Dropout)} == {nn.Dropout}

    class Mine(nn.Module):  # a learner's model keeps the modules they wrote
        def __init__(self):
            super().__init__()
            self.block_size = 8
            self.emb = nn.Embedding(65, 65)
            self.drop = nn.Dropout(0.1)

        def forward(self, idx, targets=None):
            logits = self.drop(self.emb(idx))
            return logits, nn.functional.cross_entropy(logits.view(-1, 65), targets.view(-1))

    mine = Mine()
    train(mine, d, d, cfg, progress=False)
    assert type(mine.drop) is nn.Dropout


def test_training_gives_the_reference_gpt_the_fast_cpu_paths_unless_switched_off():
    import torch.nn as nn

    from lecture_utils.model import CausalSelfAttention
    from lecture_utils.speed import OneDNNLinear

    d = torch.arange(200) % 65
    cfg = TrainConfig(max_iters=1, eval_interval=0, eval_iters=1, batch_size=2)
    ref = GPT(SMALL)
    train(ref, d, d, cfg, progress=False)
    assert {type(m) for m in ref.modules() if isinstance(m, nn.Linear)} == {OneDNNLinear}
    attention = [m for m in ref.modules() if isinstance(m, CausalSelfAttention)]
    assert attention and all(type(m).__name__ == "FastCPUAttention" for m in attention)
    plain = GPT(SMALL)
    train(plain, d, d, replace(cfg, fast_cpu_paths=False), progress=False)
    assert {type(m) for m in plain.modules() if isinstance(m, nn.Linear)} == {nn.Linear}
    assert all(type(m) is CausalSelfAttention for m in plain.modules() if isinstance(m, CausalSelfAttention))


def test_set_threads_follows_omp_num_threads_when_it_is_set(monkeypatch):
    # a test worker (or a shared machine) sets OMP_NUM_THREADS=1; "all cores" must not override it
    from lecture_utils.device import set_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_threads() == 1 and torch.get_num_threads() == 1
        assert set_threads(2) == 2  # an explicit number still wins
        monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
        assert set_threads() >= 1  # ignored: all cores
    finally:
        torch.set_num_threads(before)
