"""A smoke test for a GPU machine: the package's accelerator code paths on one device (cuda, mps or cpu).

Not part of the test suite (which never needs a GPU) and not a benchmark (it prints no figures to keep):
run it where a GPU is, from a checkout or after ``pip install``, and read what it prints.

    python -m lecture_utils.device_check --device cuda

It checks that every exercise's check passes the reference on that device (so every tensor a
check creates follows the device), that get_batch lands on the device (pinned on CUDA), that a
training step runs under the device's autocast, that generate works with a CPU generator and
with none, and that attention maps come back on the CPU for the heatmaps.
"""

from __future__ import annotations

import argparse
import time

import torch

from lecture_utils import data
from lecture_utils.device import autocast_dtype, describe, pick_device
from lecture_utils.model import GPT, GPTConfig
from lecture_utils.train import TrainConfig, estimate_loss, train


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    device = pick_device(args.device)
    print(describe(device), "| autocast:", autocast_dtype(device))

    import lecture_utils.checks as check

    failures = 0
    for ex_id, ex in sorted(check.REGISTRY.items(), key=lambda kv: [int(x) for x in kv[0].split(".")]):
        refs = ex.reference()
        refs = refs if isinstance(refs, tuple) else (refs,)
        start = time.perf_counter()
        try:
            ex.check(*refs, device=device)
            print(f"[OK]   check {ex_id:<4} with the reference on {device.type} ({time.perf_counter() - start:.2f} s)")
        except Exception as exc:
            failures += 1
            print(f"[FAIL] check {ex_id:<4} on {device.type}: {type(exc).__name__}: {exc}")

    _, tok, tr, va = data.load_dataset()
    x, y = data.get_batch(tr, 64, 8, device=device, generator=torch.Generator().manual_seed(0))
    print(f"[OK]   get_batch -> {x.device}, contiguous={x.is_contiguous()}")
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_embd=128, n_head=4, n_layer=2)).to(device)
    res = train(model, tr, va, TrainConfig(max_iters=50, eval_interval=25, eval_iters=5, batch_size=8, block_size=64),
                progress=False)
    print(f"[OK]   50 training steps: {res.summary()}")
    print(f"[OK]   estimate_loss: {estimate_loss(model, {'val': va}, 5, 64, 8)}")
    ctx = torch.zeros((2, 1), dtype=torch.long, device=device)
    a = model.generate(ctx, 80, generator=torch.Generator().manual_seed(1))
    b = model.generate(ctx, 80, generator=torch.Generator().manual_seed(1))
    c = model.generate(ctx, 80, top_k=5, temperature=0.8)
    print(f"[OK]   generate: reproducible with a CPU generator: {torch.equal(a, b)}; without: {tuple(c.shape)} on {c.device}")
    maps = model.attention_maps(ctx[:1, :1].repeat(1, 16)).cpu()
    print(f"[OK]   attention maps {tuple(maps.shape)}, rows sum to 1: {torch.allclose(maps.sum(-1), torch.ones(()))}")
    modern = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_embd=128, n_head=4, n_layer=2,
                           activation="swiglu", norm="rmsnorm", position="rope", tie_weights=True)).to(device)
    res = train(modern, tr, va, TrainConfig(max_iters=20, eval_interval=20, eval_iters=2, batch_size=8, block_size=64,
                                            cpu_bf16=True), progress=False)
    print(f"[OK]   chapter 12's features (SwiGLU, RMSNorm, RoPE, tied) train under autocast: {res.summary()}")
    print("device check:", "all passed" if failures == 0 else f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
