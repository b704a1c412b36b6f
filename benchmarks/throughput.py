"""Training throughput: the lecture's list of heads vs the course's reference GPT, in one run.

(a) "heads": ``GPT(attention="heads")`` with every head on the readable path the lecture writes
    (``q @ k^T``, ``masked_fill``, softmax, dropout on the weights, ``@ v``), one head at a time;
(b) "batched": the reference ``GPT`` - one fused QKV projection, heads as a batch dimension,
    ``F.scaled_dot_product_attention`` - as the training loop runs it: on a CPU with its dropout masks
    drawn by numpy (:func:`lecture_utils.speed.use_fast_cpu_dropout`, ``TrainConfig.fast_cpu_dropout``;
    torch draws its own masks slowly there, and the attention weights' dropout then takes the written-out
    path); and (b0), the same model with the readable attention of (a), which separates what
    batching the heads buys from what SDPA buys; on a CPU with dropout, also (b) without the fast
    masks (``fast_cpu_dropout=False``), which shows what they buy; on a CPU with native bf16 (AVX512-BF16 or AMX), also
    (b) under bf16 autocast - the same model, its training arithmetic in bf16.

Both have the same parameters (10,788,929 at the lecture's size) and compute the same function
(``tests/test_model.py`` checks it). Each configuration times full training steps (forward,
backward, AdamW) on the same batches and prints tokens per second, medians over warm steps, and
the ratio b/a.

    python benchmarks/throughput.py                 # lecture + small configurations
    python benchmarks/throughput.py --quick         # a couple of steps, to prove it runs
    python benchmarks/throughput.py --device cuda   # the same on a GPU (bf16 autocast there)
    python benchmarks/throughput.py --configs lecture --convergence 150   # + does bf16 train like fp32?
    python benchmarks/throughput.py --steps 0 --matmul   # fp32 vs bf16 matrix multiplies of the lecture's shapes
    python benchmarks/throughput.py --steps 0 --profile  # where a step's time goes (torch.profiler), per variant
    python benchmarks/throughput.py --steps 0 --configs cpu --optimizers   # AdamW (loop/fused) and Muon per step
    python benchmarks/throughput.py --steps 0 --vs-gpt-py --rounds 5 --threads 1 [--cpu-bf16]   # against gpt.py
    python benchmarks/throughput.py --steps 0 --vs-gpt-py --rounds 0 --profile --configs lecture --batch 16

``--vs-gpt-py`` times the reference against the lecture's own ``gpt.py`` model (re-stated in
``benchmarks/lecture_gpt.py``, with ``gpt.py``'s optimizer: ``AdamW(lr=3e-4)``, torch's defaults) at the
lecture's configuration, batch 16 (``--batch``), on the same batches, in interleaved rounds (each variant
``--round-steps`` steps per round, one after the other, round after round): the reference with numpy's
dropout masks and ``train()``'s fused AdamW, the same + oneDNN's linear layers
(:func:`lecture_utils.speed.use_onednn_linear`), + the attention's scale and mask inside its first product
(:func:`lecture_utils.speed.use_fast_cpu_paths`: both; what ``train()`` runs on a CPU since
``TrainConfig.fast_cpu_paths``), and with ``--cpu-bf16`` the last under bf16 autocast.
``--fast-paths`` times the last against the first at each of ``--configs`` (should ``train()`` use them there?).
Per round: each variant's median ms/step (wall clock and CPU time) and gpt.py's time over its own.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from lecture_utils.device import cpu_has_native_bf16, describe, pick_device, set_threads
from lecture_utils.model import GPT, GPTConfig
from lecture_utils.speed import use_fast_cpu_dropout, use_fast_cpu_paths, use_onednn_linear
from lecture_utils.timing import median_seconds, optimizer_step, random_batches, synchronize, training_step

CONFIGS = {
    # name: (model config, batch size)
    "lecture": (GPTConfig(vocab_size=65, block_size=256, n_embd=384, n_head=6, n_layer=6, dropout=0.2), 8),
    "small": (GPTConfig(vocab_size=65, block_size=8, n_embd=32, n_head=4, n_layer=3, dropout=0.0), 32),
    # the package's cpu preset (not in the default run): python benchmarks/throughput.py --configs cpu --compile
    "cpu": (GPTConfig(vocab_size=65, block_size=64, n_embd=128, n_head=4, n_layer=4, dropout=0.0), 12),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None)
    p.add_argument("--steps", type=int, default=8, help="timed steps per model (after --warmup); 0: no timing")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=None, help="override the batch size of every configuration")
    p.add_argument("--configs", nargs="*", default=["lecture", "small"], choices=list(CONFIGS))
    p.add_argument("--compile", action="store_true", help="also time (b) under torch.compile")
    p.add_argument("--quick", action="store_true", help="2 steps, 1 warm-up, batch 2: proves the script runs")
    p.add_argument("--convergence", type=int, default=0, metavar="STEPS",
                   help="also train (b) for STEPS steps on Tiny Shakespeare in fp32 and under bf16 autocast, from "
                        "the same seed and batches, and print both losses (CPU with native bf16 only)")
    p.add_argument("--matmul", action="store_true",
                   help="also time bare matrix multiplies of the lecture's linear-layer shapes in fp32 and bf16")
    p.add_argument("--profile", action="store_true",
                   help="also profile one step of (b) with torch's masks, (b) and (b) + bf16: shares of its time")
    p.add_argument("--optimizers", action="store_true",
                   help="also time one optimizer step: AdamW (for-loop, fused) and Muon, next to a training step")
    p.add_argument("--vs-gpt-py", action="store_true",
                   help="also time the reference against the lecture's gpt.py model, interleaved rounds (see above)")
    p.add_argument("--rounds", type=int, default=5,
                   help="--vs-gpt-py: interleaved rounds (0: none; with --profile, the profiles only)")
    p.add_argument("--round-steps", type=int, default=3, help="--vs-gpt-py: timed steps per variant per round")
    p.add_argument("--cpu-bf16", action="store_true", help="--vs-gpt-py: also the reference under bf16 autocast")
    p.add_argument("--threads", type=int, default=None, help="torch's CPU threads (default: every core available)")
    p.add_argument("--fast-paths", action="store_true",
                   help="also time, per --configs entry, the reference with numpy's dropout masks against the same with "
                        "speed.use_fast_cpu_paths (train()'s), interleaved rounds (--rounds, --round-steps)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.batch = min(args.steps, 2), 1, 2
        args.rounds, args.round_steps = 2, 1
    device = pick_device(args.device)
    if device.type == "cpu":
        set_threads(args.threads)
    print(describe(device), f"threads {torch.get_num_threads()}" if device.type == "cpu" else "")
    rows = []
    for name in args.configs if args.steps > 0 else []:
        cfg, batch = CONFIGS[name]
        batch = args.batch or batch
        batches = random_batches(65, batch, cfg.block_size, args.warmup + args.steps, device)
        tokens = batch * cfg.block_size
        # (label, attention, readable path, torch.compile / bf16, fast CPU dropout masks)
        variants = [("a: list of heads, readable", "heads", True, False, False),
                    ("b0: batched, readable attention", "batched", True, False, True)]
        if device.type == "cpu" and cfg.dropout > 0:
            variants.append(("b with torch's dropout masks", "batched", False, False, False))
        variants.append(("b: reference GPT (batched, SDPA)", "batched", False, False, True))
        if args.compile:
            variants.append(("b + torch.compile", "batched", False, True, True))
        if device.type == "cpu" and cpu_has_native_bf16():
            variants.append(("b + bf16 autocast (CPU)", "batched", False, "bf16", True))
        results = {}
        for label, attention, readable, comp, fast_masks in variants:
            torch.manual_seed(0)
            model = GPT(GPTConfig(**{**cfg.to_dict(), "attention": attention})).to(device).train()
            if fast_masks and device.type == "cpu":
                use_fast_cpu_dropout(model)  # before compiling: the compiled graph sees the swapped modules
            step = training_step(torch.compile(model) if comp is True else model, batches, device, readable,
                                 cpu_bf16=comp == "bf16", fast_cpu_dropout=False)
            med = median_seconds(step, args.warmup, args.steps, device)
            results[label] = tokens / med
            print(f"{name:<8} {label:<34} {med * 1e3:9.1f} ms/step  {tokens / med:10.0f} tokens/s", flush=True)
        a = results["a: list of heads, readable"]
        rows.append((name, batch, cfg.block_size, {k: v / a for k, v in results.items()}))
    if args.convergence and device.type == "cpu" and cpu_has_native_bf16():
        for name in args.configs:
            cfg, batch = CONFIGS[name]
            _convergence(cfg, args.batch or batch, 3 if args.quick else args.convergence, device)
    if args.fast_paths and args.rounds > 0:
        for name in args.configs:
            cfg, batch = CONFIGS[name]
            _fast_paths_rounds(name, cfg, args.batch or batch, device, args.rounds, args.round_steps)
    if args.vs_gpt_py and args.rounds > 0:
        _versus_gpt_py(device, args.batch or 16, args.rounds, args.round_steps, args.cpu_bf16, quick=args.quick)
    if args.matmul:
        _matmuls(device, quick=args.quick)
    for name in args.configs if args.profile or args.optimizers else []:
        cfg, batch = CONFIGS[name]
        batch = args.batch or batch
        batches = random_batches(65, batch, cfg.block_size, 4, device)
        if args.profile:
            _profile(name, cfg, batches, device, args.vs_gpt_py)
        if args.optimizers:
            _optimizers(name, cfg, batches, device)
    print()
    for name, batch, T, ratios in rows:
        for label, r in ratios.items():
            if not label.startswith("a:"):
                print(f"{name} (batch {batch} x block {T}): {label} / list of heads = {r:.2f}x")
    return 0


def _profile(name: str, cfg: GPTConfig, batches, device: torch.device, vs_gpt_py: bool = False) -> None:
    """Share of one warm training step's operator time (torch.profiler, self time) by group, and the
    optimizer step's share (its total time). With ``vs_gpt_py`` also the lecture's gpt.py model (with its
    optimizer) and the reference with numpy's dropout masks, without and with the fast CPU paths (train() uses both)."""
    from torch.profiler import ProfilerActivity, profile

    from lecture_utils.config import TrainConfig
    from lecture_utils.optimizers import make_optimizer

    variants = [("b with torch's dropout masks", False), ("b: reference GPT", False)]
    if device.type == "cpu" and cpu_has_native_bf16():
        variants.append(("b + bf16 autocast", True))
    if vs_gpt_py:
        variants = [("gpt.py", False), ("reference, numpy's masks", False), ("reference + fast paths", False)]
    for label, bf16 in variants:
        torch.manual_seed(0)
        if label == "gpt.py":
            from lecture_gpt import LectureGPT

            keys = ("vocab_size", "block_size", "n_embd", "n_head", "n_layer", "dropout")
            model, opt = _to(LectureGPT(**{k: getattr(cfg, k) for k in keys}), device)
            step = optimizer_step(model, opt, batches)
        elif label.startswith("reference"):
            model = GPT(cfg).to(device).train()
            (use_fast_cpu_paths if "fast paths" in label else use_fast_cpu_dropout)(model)
            step = optimizer_step(model, make_optimizer(model, TrainConfig(), device), batches)
        else:
            step = training_step(GPT(cfg).to(device).train(), batches, device, cpu_bf16=bf16,
                                 fast_cpu_dropout=not label.startswith("b with torch's"))
        step()
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        groups = {"matmuls (linear)": 0.0, "attention": 0.0, "dropout masks": 0.0, "layer norm": 0.0,
                  "copies": 0.0, "other": 0.0}
        optimizer = 0.0
        for e in prof.key_averages():
            key, t = e.key, e.self_cpu_time_total
            if key.startswith("Optimizer.step"):
                optimizer += e.cpu_time_total
            if key in ("aten::mm", "aten::addmm", "mkldnn::_linear_pointwise"):
                groups["matmuls (linear)"] += t
            elif "attention" in key or key in ("aten::bmm", "aten::baddbmm", "aten::_softmax", "aten::_softmax_backward_data",
                                               "aten::masked_fill_"):
                groups["attention"] += t
            elif key in ("aten::bernoulli_", "cpu_dropout mask"):
                groups["dropout masks"] += t
            elif "layer_norm" in key:
                groups["layer norm"] += t
            elif key in ("aten::copy_", "aten::cat", "aten::_to_copy", "aten::clone"):
                groups["copies"] += t
            elif key.startswith("aten::"):
                groups["other"] += t
        total = sum(groups.values())
        print(f"profile {name:<8} {label:<30} threads {torch.get_num_threads()} "
              + "  ".join(f"{k} {v / total:5.1%}" for k, v in groups.items())
              + f"  (optimizer step {optimizer / total:5.1%})", flush=True)


def _optimizers(name: str, cfg: GPTConfig, batches, device: torch.device) -> None:
    """Milliseconds of one optimizer step for the model's parameters (gradients from one batch): AdamW as a
    for-loop (torch's default on a CPU), AdamW fused, and Muon (newton_schulz per weight matrix) for the
    blocks' matrices; and a whole training step for scale."""
    from lecture_utils.optimizers import Muon

    torch.manual_seed(0)
    model = GPT(cfg).to(device).train()
    x, y = batches[0]
    model(x, y)[1].backward()
    matrices = [p_ for n, p_ in model.named_parameters() if p_.ndim == 2 and n.startswith("blocks.")]
    optimizers = {"AdamW (for-loop)": torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False),
                  "AdamW (fused)": torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True),
                  "Muon (blocks' matrices only)": Muon(matrices, lr=1e-4)}
    for label, opt in optimizers.items():
        print(f"optimizer {name:<8} {label:<30} {median_seconds(opt.step, 3, 20, device) * 1e3:7.2f} ms/step",
              flush=True)
    torch.manual_seed(0)
    step = training_step(GPT(cfg).to(device).train(), batches, device)
    print(f"optimizer {name:<8} {'(a whole training step)':<30} {median_seconds(step, 3, 20, device) * 1e3:7.2f} "
          f"ms/step", flush=True)


def _versus_gpt_py(device: torch.device, batch: int, rounds: int, round_steps: int, bf16: bool,
                   quick: bool = False) -> None:
    """The reference against the lecture's ``gpt.py`` model (``lecture_gpt.LectureGPT``), each with its own
    optimizer, on the same batches, interleaved: per round every variant runs ``round_steps`` timed steps
    (an untimed warm-up round comes first). Prints each round and the medians."""
    import statistics

    from lecture_gpt import LectureGPT

    from lecture_utils.config import TrainConfig
    from lecture_utils.device import autocast_dtype
    from lecture_utils.optimizers import make_optimizer

    cfg = GPTConfig(block_size=16, n_embd=32, n_head=4, n_layer=2) if quick else GPTConfig()  # lecture's
    batches = random_batches(cfg.vocab_size, batch, cfg.block_size, 4, device)
    on_cpu = device.type == "cpu"

    def reference(paths):
        model = GPT(cfg).to(device).train()
        if on_cpu:
            paths(model)
        return model, make_optimizer(model, TrainConfig(), device)  # train()'s own: fused AdamW

    builders = {"gpt.py (lecture_gpt.py, its AdamW)": lambda: _to(LectureGPT(**{
                    k: getattr(cfg, k) for k in ("vocab_size", "block_size", "n_embd", "n_head", "n_layer", "dropout")}),
                    device),
                "reference, numpy's dropout masks": lambda: reference(use_fast_cpu_dropout),
                "+ oneDNN linear": lambda: reference(lambda m: use_onednn_linear(use_fast_cpu_dropout(m))),
                "+ oneDNN linear + fast attention (train()'s)": lambda: reference(use_fast_cpu_paths)}
    amp = {"train()'s + bf16 autocast": autocast_dtype(device, True)} if bf16 else {}
    if bf16 and amp[next(iter(amp))] is None:
        print("vs gpt.py: no bf16 autocast on this device/CPU; the bf16 row is left out")
        amp = {}
    for label in amp:
        builders[label] = lambda: reference(use_fast_cpu_paths)
    steps = {}
    for label, build in builders.items():
        torch.manual_seed(0)
        model, opt = build()
        steps[label] = optimizer_step(model, opt, batches, amp.get(label), device.type)
    print(f"vs gpt.py: lecture configuration{' (--quick: a tiny one)' if quick else ''}, batch {batch} x block "
          f"{cfg.block_size}, {rounds} rounds x {round_steps} steps per variant, threads {torch.get_num_threads()}",
          flush=True)
    base = next(iter(steps))

    def report(r, wall, cpu):
        print(f"round {r + 1}: " + "; ".join(
            f"{label}: {wall[label][r] * 1e3:.0f} ms wall, {cpu[label][r] * 1e3:.0f} ms CPU"
            + ("" if label == base else f" ({wall[base][r] / wall[label][r]:.2f}x wall, "
                                        f"{cpu[base][r] / cpu[label][r]:.2f}x CPU)") for label in steps), flush=True)

    wall, cpu = _interleaved(steps, rounds, round_steps, device, after_round=report)
    for label in steps:
        if label == base:
            print(f"vs gpt.py: {label:<44} median {statistics.median(wall[label]) * 1e3:7.0f} ms/step wall, "
                  f"{statistics.median(cpu[label]) * 1e3:7.0f} ms CPU", flush=True)
            continue
        rw = [a / b for a, b in zip(wall[base], wall[label])]
        rc = [a / b for a, b in zip(cpu[base], cpu[label])]
        print(f"vs gpt.py: {label:<44} median {statistics.median(wall[label]) * 1e3:7.0f} ms/step wall, "
              f"{statistics.median(cpu[label]) * 1e3:7.0f} ms CPU; gpt.py / this: per round wall "
              f"{' '.join(f'{x:.2f}' for x in rw)} (median {statistics.median(rw):.2f}x), CPU "
              f"{' '.join(f'{x:.2f}' for x in rc)} (median {statistics.median(rc):.2f}x)", flush=True)


def _interleaved(steps: dict, rounds: int, round_steps: int, device: torch.device,
                 after_round=None) -> tuple[dict, dict]:
    """Run every step function ``round_steps`` times per round, one variant after the other, after a warm-up
    round; return each variant's per-round medians of wall-clock and CPU seconds per step (``after_round(r,
    wall, cpu)`` is called after each round)."""
    import statistics
    import time

    for step in steps.values():
        step()
    wall = {label: [] for label in steps}
    cpu = {label: [] for label in steps}
    for r in range(rounds):
        for label, step in steps.items():
            w, c = [], []
            for _ in range(round_steps):
                synchronize(device)
                t0, c0 = time.perf_counter(), time.process_time()
                step()
                synchronize(device)
                w.append(time.perf_counter() - t0)
                c.append(time.process_time() - c0)
            wall[label].append(statistics.median(w))
            cpu[label].append(statistics.median(c))
        if after_round is not None:
            after_round(r, wall, cpu)
    return wall, cpu


def _fast_paths_rounds(name: str, cfg: GPTConfig, batch: int, device: torch.device, rounds: int,
                       round_steps: int) -> None:
    """The reference as ``train()`` runs it on a CPU (numpy's dropout masks, fused AdamW) against the same
    with :func:`lecture_utils.speed.use_fast_cpu_paths` (oneDNN's linear layers, the attention's scale and
    mask in its first product), on the same batches, in interleaved rounds; prints the per-round ratios."""
    import statistics

    from lecture_utils.config import TrainConfig
    from lecture_utils.optimizers import make_optimizer

    batches = random_batches(cfg.vocab_size, batch, cfg.block_size, 4, device)
    steps = {}
    for label, paths in (("numpy's dropout masks only", use_fast_cpu_dropout), ("+ fast paths", use_fast_cpu_paths)):
        torch.manual_seed(0)
        model = GPT(cfg).to(device).train()
        if device.type == "cpu":
            paths(model)
        steps[label] = optimizer_step(model, make_optimizer(model, TrainConfig(), device), batches)
    wall, cpu = _interleaved(steps, rounds, round_steps, device)
    base, fast = steps
    rw = [a / b for a, b in zip(wall[base], wall[fast])]
    rc = [a / b for a, b in zip(cpu[base], cpu[fast])]
    print(f"fast paths {name:<8} batch {batch} x block {cfg.block_size}, threads {torch.get_num_threads()}: "
          f"{statistics.median(wall[base]) * 1e3:.1f} -> {statistics.median(wall[fast]) * 1e3:.1f} ms/step wall, "
          f"{statistics.median(cpu[base]) * 1e3:.1f} -> {statistics.median(cpu[fast]) * 1e3:.1f} ms CPU; "
          f"speed-up per round wall {' '.join(f'{x:.2f}' for x in rw)} (median {statistics.median(rw):.2f}x), "
          f"CPU {' '.join(f'{x:.2f}' for x in rc)} (median {statistics.median(rc):.2f}x)", flush=True)


def _to(model: torch.nn.Module, device: torch.device):
    from lecture_gpt import lecture_optimizer

    model = model.to(device).train()
    return model, lecture_optimizer(model)


def _matmuls(device: torch.device, quick: bool = False) -> None:
    """GFLOP/s of ``a @ b`` in fp32 and bf16 for the lecture's linear layers at batch 8 x 256 tokens:
    feed-forward up (384 -> 1536), down (1536 -> 384), and the fused QKV (384 -> 1152); on a CPU also the
    same fp32 product by oneDNN (:class:`lecture_utils.speed.OneDNNLinear`'s kernel) and each rate per
    core-second of CPU time (the figure a loaded machine does not move much)."""
    import time

    from lecture_utils.speed import _LINEAR

    def cpu_seconds(fn):
        for _ in range(2):
            fn()
        times = []
        for _ in range(5):
            c = time.process_time()
            fn()
            times.append(time.process_time() - c)
        return sorted(times)[2]

    for m, k, n in [(2048, 384, 1536), (2048, 1536, 384), (2048, 384, 1152)]:
        if quick:
            m, k, n = m // 16, k // 16, n // 16
        a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        ab, bb = a.bfloat16(), b.bfloat16()
        fp32 = median_seconds(lambda a=a, b=b: a @ b, 3, 10, device)
        bf16 = median_seconds(lambda a=ab, b=bb: a @ b, 3, 10, device)
        flop = 2 * m * k * n
        line = (f"matmul {m}x{k} @ {k}x{n}: fp32 {flop / fp32 / 1e9:6.0f} GFLOP/s, "
                f"bf16 {flop / bf16 / 1e9:6.0f} GFLOP/s, bf16 {fp32 / bf16:.2f}x faster")
        if device.type == "cpu" and _LINEAR is not None:
            wt = b.t().contiguous()  # (n, k): a Linear's weight
            onednn = median_seconds(lambda a=a, w=wt: _LINEAR(a, w, None, "none", [], ""), 3, 10, device)
            mkl_cpu = cpu_seconds(lambda a=a, b=b: a @ b)
            onednn_cpu = cpu_seconds(lambda a=a, w=wt: _LINEAR(a, w, None, "none", [], ""))
            line += (f"; fp32 by oneDNN {flop / onednn / 1e9:6.0f} GFLOP/s ({fp32 / onednn:.2f}x); per CPU-second: "
                     f"fp32 {flop / mkl_cpu / 1e9:.0f}, oneDNN fp32 {flop / onednn_cpu / 1e9:.0f} GFLOP")
        print(line, flush=True)


def _convergence(cfg: GPTConfig, batch: int, steps: int, device: torch.device) -> None:
    """Train the reference GPT for ``steps`` steps in fp32 and under bf16 autocast on the same batches of
    Tiny Shakespeare (AdamW, lr 3e-4 as in the lecture); print the training loss along the way and the
    validation loss at the end (in fp32, 20 batches) of each."""
    from lecture_utils import data
    from lecture_utils.data import get_batch
    from lecture_utils.train import estimate_loss

    _, tok, train_data, val_data = data.load_dataset()
    gen = torch.Generator().manual_seed(0)
    batches = [get_batch(train_data, cfg.block_size, batch, device=device, generator=gen) for _ in range(steps)]
    for label, bf16 in [("fp32", False), ("bf16 autocast", True)]:
        torch.manual_seed(0)
        model = GPT(replace(cfg, vocab_size=tok.vocab_size)).to(device).train()
        step = training_step(model, batches, device, cpu_bf16=bf16)
        losses = [step() for _ in range(steps)]
        val = estimate_loss(model, {"val": val_data}, 20, cfg.block_size, batch,
                            generator=torch.Generator().manual_seed(1))["val"]
        marks = " ".join(f"{losses[i]:.3f}" for i in range(0, steps, max(1, steps // 5)))
        print(f"{label:<14} train loss every {max(1, steps // 5)} steps: {marks}; val after {steps} steps "
              f"{val:.4f}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
