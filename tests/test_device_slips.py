"""The checks' second run (lecture_utils/checks/_device.py): code that is right on every device passes it, written
in the ways learners write it; the device slips themselves are catalogue entries (tests/wrong_solutions/device_slips.py,
run by tests/test_checks.py with their diagnoses asserted)."""

from __future__ import annotations

import inspect

import pytest
import torch
from wrong_solutions import CATALOGUE
from wrong_solutions._catalogue import in_notebook

import lecture_utils.checks as check
from lecture_utils import data
from lecture_utils.checks import CheckFailed
from lecture_utils.checks._device import DeviceWatch, second_device


def test_without_an_accelerator_the_second_device_is_meta(monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_DEVICE", "cpu")
    assert second_device().type == "meta"
    assert second_device("cpu").type == "meta"
    monkeypatch.setenv("LECTURE_UTILS_DEVICE", "cuda:7")  # asked for but not there: the notebook says so, not the check
    if not torch.cuda.is_available():
        assert second_device().type == "meta"


def test_every_chapter_with_tensors_has_device_slips_in_the_catalogue():
    slips = {w.exercise for w in CATALOGUE if w.build.__module__.endswith("device_slips")}
    assert {"1.3", "2.2", "2.3", "2.4", "3.1", "3.2", "3.3", "3.4", "4.1", "5.1", "5.2", "6.1", "7.1", "7.2",
            "8.1"} <= slips


def test_the_watch_allows_what_a_gpu_allows():
    """0-dim CPU tensors beside device tensors, CPU index tensors, moves: a GPU accepts them, so the watch does."""
    x = torch.randn(3, 4, device="meta")
    with DeviceWatch(torch.device("meta")):
        y = x * torch.tensor(2.0) + torch.tensor(1.0)
        y = y[torch.tensor([0, 2])]
        y = y + torch.ones(4).to(x.device)
    assert y.device.type == "meta" and y.shape == (2, 4)


def test_the_watch_names_a_cpu_tensor_beside_a_device_tensor():
    from lecture_utils.checks._device import DeviceSlip

    x = torch.randn(3, 4, device="meta")
    with pytest.raises(DeviceSlip, match=r"torch.ones on line \d+, in test_the_watch_names.*makes a tensor on the CPU"):
        with DeviceWatch(torch.device("meta")):
            x + torch.ones(4)


# correct code, written the ways learners write it, passes the second run too


def test_lecture_style_global_device_passes():
    """gpt.py's style: get_batch moves the batch with the notebook's global `device`; on a GPU machine that global is
    the GPU, so the second run sets it to the second device while it runs, and restores it."""
    device = torch.device("cpu")
    get_batch, estimate_loss = in_notebook("02_bigram", """
        def get_batch(split, block_size, batch_size, generator=None):
            ix = torch.randint(len(split) - block_size, (batch_size,), generator=generator)
            x = torch.stack([split[i:i + block_size] for i in ix])
            y = torch.stack([split[i + 1:i + block_size + 1] for i in ix])
            return x.to(device), y.to(device)

        @torch.no_grad()
        def estimate_loss(model, splits, eval_iters, block_size, batch_size, generator=None):
            was_training = model.training
            model.eval()
            out = {}
            for name, split in splits.items():
                losses = torch.zeros(eval_iters)
                for k in range(eval_iters):
                    X, Y = get_batch(split, block_size, batch_size, generator)
                    logits, loss = model(X, Y)
                    losses[k] = loss.item()
                out[name] = losses.mean().item()
            model.train(was_training)
            return out
    """, "get_batch", "estimate_loss", device=device)
    check.estimate_loss(estimate_loss)
    assert inspect.unwrap(estimate_loss).__globals__["device"] is device  # restored


def test_get_batch_with_index_arithmetic_passes():
    (get_batch,) = in_notebook("01_data", """
        def get_batch(data, block_size, batch_size, generator=None):
            ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
            offsets = ix[:, None] + torch.arange(block_size)
            return data[offsets], data[offsets + 1]
    """, "get_batch")
    check.get_batch(get_batch)


def test_masks_and_positions_made_on_the_input_device_pass():
    (Head,) = in_notebook("04_self_attention", """
        class Head(nn.Module):
            def __init__(self, n_embd, head_size, block_size, dropout=0.0):
                super().__init__()
                self.key = nn.Linear(n_embd, head_size, bias=False)
                self.query = nn.Linear(n_embd, head_size, bias=False)
                self.value = nn.Linear(n_embd, head_size, bias=False)
                self.dropout = nn.Dropout(dropout)

            def forward(self, x):
                B, T, C = x.shape
                k, q = self.key(x), self.query(x)
                wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
                mask = torch.ones(T, T, device=x.device).tril()
                wei = wei.masked_fill(mask == 0, float("-inf"))
                return self.dropout(F.softmax(wei, dim=-1)) @ self.value(x)
    """, "Head")
    check.head(Head)
    (average_v1,) = in_notebook("03_averaging_trick", """
        def average_v1(x):
            xbow = torch.zeros_like(x)
            for t in range(x.shape[1]):
                xbow[:, t] = x[:, : t + 1].mean(1)
            return xbow
    """, "average_v1")
    check.average_v1(average_v1)
    (gelu,) = in_notebook("12_modern_features", """
        def gelu(x):
            return 0.5 * x * (1.0 + torch.erf(x / torch.tensor(2.0).sqrt()))
    """, "gelu")
    check.gelu(gelu)


def test_the_solutions_reference_code_passes_with_the_watch_on():
    from lecture_utils.train import estimate_loss

    check.estimate_loss(estimate_loss)
    check.get_batch(data.get_batch)


def test_a_slip_is_reported_once_as_a_check_failure_not_a_raw_error():
    slip = next(w for w in CATALOGUE if w.name == "positions_on_the_cpu")
    with pytest.raises(CheckFailed) as failure:
        check.positional_model(*slip.build())
    assert "Expected all tensors to be on the same device" in failure.value.hint
    hint = failure.value.hint
    assert hint.startswith("torch.arange on line 13, in forward: pos_emb = ")  # the culprit, with the learner's line
    assert hint.count("device=idx.device") == 1  # and the fix, once
