"""The trained checkpoint that ships with the package: it loads, its config is the recorded one,
its val loss on the shipped corpus is what its record says, and the explorer reruns it for a new text."""

import time

import pytest
import torch

from lecture_utils import data
from lecture_utils.checkpoints import load_shipped, shipped_checkpoint_path
from lecture_utils.model import GPT, GPTConfig
from lecture_utils.train import estimate_loss


@pytest.fixture(scope="module")
def shipped():
    return load_shipped()


def test_checkpoint_is_small_enough_to_ship():
    assert shipped_checkpoint_path().stat().st_size < 15 * 2**20


def test_checkpoint_loads_with_its_recorded_config(shipped):
    model, tok, record = shipped
    assert isinstance(model, GPT) and not model.training
    # a record written before chapter 12's flags existed has their defaults
    assert model.config == GPTConfig.from_dict(record["model_config"])
    assert tok == data.CharTokenizer.from_text(data.load_text())
    for key in ("command", "wall_seconds", "best_val", "iters", "machine"):
        assert key in record


@pytest.mark.slow
def test_val_loss_matches_the_record(shipped):
    model, tok, record = shipped
    _, _, _, val = data.load_dataset()
    torch.manual_seed(0)
    got = estimate_loss(model, {"val": val}, eval_iters=100, block_size=model.config.block_size, batch_size=16,
                        generator=torch.Generator().manual_seed(123))["val"]
    assert abs(got - record["best_val"]) < 0.03, (got, record["best_val"])  # 100 random batches: noise ~0.01


def test_explorer_reruns_the_shipped_model_for_a_new_text(shipped):
    """The kernel's share of the explorer: one forward pass and its tensors per text (hovers and
    controls are answered in the browser; tests/test_browser.py measures those). Prints the time."""
    from lecture_utils import viz

    model, tok, _ = shipped
    bs = model.config.block_size
    e = viz.AttentionExplorer(model, tok, text="ROMEO:\nBut soft, what light through yonder window breaks?")
    texts = [data.load_text()[i * 1000 : i * 1000 + bs] for i in range(1, 6)]  # block_size characters each
    times = []
    for text in texts:
        start = time.perf_counter()
        e.text = text
        times.append(time.perf_counter() - start)
        assert e.last_error is None and "".join(e.tokens) == text and e.query <= bs - 1
    assert len(e.weights_f32) == 4 * model.config.n_layer * model.config.n_head * bs * bs
    print(f"explorer, new text of {bs} characters (forward pass + tensors for the page): "
          f"median {sorted(times)[len(times) // 2] * 1e3:.0f} ms")


# --- chapter 11's pretrained model (King James Bible) ----------------------------------------


@pytest.mark.slow
def test_pretrained_kjv_checkpoint_matches_its_record():
    from lecture_utils import pretrain

    model, tok, record = load_shipped(pretrain.SHIPPED_PRETRAINED)
    assert shipped_checkpoint_path(pretrain.SHIPPED_PRETRAINED).stat().st_size < 15 * 2**20
    assert model.config == GPTConfig.from_dict(record["model_config"]) and not model.training
    assert tok == data.CharTokenizer.from_text(data.load_text())  # Shakespeare's vocabulary, ready to fine-tune
    _, kjv_val = pretrain.pretraining_splits(tok)
    got = estimate_loss(model, {"val": kjv_val}, eval_iters=100, block_size=model.config.block_size, batch_size=12,
                        generator=torch.Generator().manual_seed(123))["val"]
    assert abs(got - record["kjv_val"]) < 0.03, (got, record["kjv_val"])
