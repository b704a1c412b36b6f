"""torchrun with two CPU processes (gloo): the same trajectory as one process with the same global
batch, a clear exit when a rank fails, and a checkpoint that loads in a single process."""

import os
import re
import subprocess
import sys

import pytest
import torch

from lecture_utils.checkpoints import load_checkpoint

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")]

def train_args(grad_accum=2):
    return ["train", "--preset", "lecture-small", "--device", "cpu", "--max-iters", "6", "--eval-interval", "1",
            "--eval-iters", "2", "--batch-size", "8", "--grad-accum", str(grad_accum), "--no-progress", "--threads", "1"]


ARGS = train_args()


def torchrun(*args, env=None, nproc=2):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "lecture_utils", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def single(*args):
    return subprocess.run([sys.executable, "-m", "lecture_utils", *args], capture_output=True, text=True, timeout=300)


def losses(stdout):
    return [(float(a), float(b)) for a, b in re.findall(r"train loss ([\d.]+), val loss ([\d.]+)", stdout)]


def test_two_processes_follow_the_single_process_trajectory(tmp_path):
    two = torchrun(*ARGS, "--out", str(tmp_path / "two.pt"))
    assert two.returncode == 0, two.stderr[-3000:]
    one = single(*ARGS, "--out", str(tmp_path / "one.pt"))
    assert one.returncode == 0, one.stderr[-3000:]
    l2, l1 = losses(two.stdout), losses(one.stdout)
    assert len(l1) == len(l2) == 7
    assert l1[0] == l2[0]  # the same initial weights and evaluation batches
    for (t1, v1), (t2, v2) in zip(l1, l2):
        assert abs(t1 - t2) < 2e-3 and abs(v1 - v2) < 2e-3, (l1, l2)
    assert l1[-1][1] < l1[0][1]  # and it trained
    assert "2 processes" in two.stdout and two.stdout.count("best checkpoint") == 1  # rank 0 alone prints
    # the checkpoint written by the 2-process run loads in one process
    m2, tok, payload = load_checkpoint(tmp_path / "two.pt")
    assert payload["extra"]["world_size"] == 2 and tok.vocab_size == 65


def test_a_failing_rank_stops_the_whole_run_with_a_clear_message(tmp_path):
    out = torchrun(*ARGS, "--out", str(tmp_path / "x.pt"), env={"LECTURE_UTILS_FAIL_RANK": "1"})
    assert out.returncode != 0
    assert "rank 1 of 2 failed" in out.stderr and "simulated failure" in out.stderr


def test_grad_accum_must_split_across_processes(tmp_path):
    out = torchrun(*train_args(3), "--out", str(tmp_path / "y.pt"))  # 3 micro-batches, 2 processes
    assert out.returncode != 0 and "multiple of the number of processes" in out.stderr


def test_single_process_rejects_a_bad_grad_accum(tmp_path):
    out = single(*train_args(0), "--out", str(tmp_path / "z.pt"))
    assert out.returncode == 2 and "--grad-accum must be an integer >= 1, got 0" in out.stderr


def test_torchrun_as_typed_picks_a_split_and_says_which(tmp_path):
    """`torchrun --nproc_per_node=2 -m lecture_utils train --preset lecture-small` with the preset's one
    micro-batch: the CLI halves the batch and gives each process one micro-batch (the same global batch of 32),
    says so, and trains."""
    args = ["train", "--preset", "lecture-small", "--device", "cpu", "--max-iters", "4", "--eval-interval", "2",
            "--eval-iters", "1", "--no-progress", "--threads", "1", "--out", str(tmp_path / "typed.pt")]
    out = torchrun(*args)
    assert out.returncode == 0, out.stderr[-3000:]
    assert ("note: 2 processes: --grad-accum 1 does not split across them, so this run uses --batch-size 16 "
            "--grad-accum 2 (1 micro-batch(es) of 16 per process per step, the same global batch of 32 sequences)"
            in out.stdout), out.stdout
    assert "batch 16 x 2 micro-batches" in out.stdout and len(losses(out.stdout)) == 3
    _, _, payload = load_checkpoint(tmp_path / "typed.pt")
    assert (payload["train_config"]["batch_size"], payload["train_config"]["grad_accum"]) == (16, 2)
