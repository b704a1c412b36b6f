"""Command line: ``python -m lecture_utils {train,sample,grade,doctor,presets}``.

Examples::

    python -m lecture_utils doctor
    python -m lecture_utils train --preset lecture-small
    python -m lecture_utils train --preset lecture --device cuda --out runs/lecture.pt
    python -m lecture_utils sample --checkpoint runs/lecture-small.pt --prompt "ROMEO:" --tokens 300
    python -m lecture_utils grade notebooks/ --json grades.json
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path


def _add_train(sub) -> None:
    from lecture_utils.train import PRESETS

    p = sub.add_parser(
        "train",
        help="train a model from a preset",
        description="Train a model on Tiny Shakespeare (or --data FILE) from a named preset; any "
        "preset value can be overridden. Prints the last and best val loss and saves the "
        "best checkpoint.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets:\n" + "\n".join(f"  {name:<14} {p.description}" for name, p in PRESETS.items()),
    )
    p.add_argument("--preset", default="lecture-small", choices=sorted(PRESETS), help="configuration to start from (default: lecture-small)")
    p.add_argument("--data", default=None, help="a UTF-8 text file to train on instead of Tiny Shakespeare")
    p.add_argument("--out", default=None, help="checkpoint path (default: runs/PRESET.pt)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: best available)")
    p.add_argument("--max-iters", type=int, help="training iterations")
    p.add_argument("--eval-interval", type=int, help="evaluate every N iterations")
    p.add_argument("--eval-iters", type=int, help="batches per evaluation")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--block-size", type=int, help="context length (also the model's block_size)")
    p.add_argument("--lr", type=float, dest="learning_rate", help="learning rate")
    p.add_argument("--weight-decay", type=float, dest="weight_decay", help="AdamW's weight decay")
    p.add_argument("--decay-matrices-only", action="store_const", const=False, dest="decay_all",
                   help="weight decay on weight matrices and embeddings only, not on biases and norm gains")
    p.add_argument("--optimizer", choices=["adamw", "muon"],
                   help="muon: Muon for the blocks' weight matrices, AdamW for the rest")
    p.add_argument("--muon-lr", type=float, dest="muon_lr", help="Muon's peak learning rate (with --optimizer muon)")
    p.add_argument("--n-embd", type=int)
    p.add_argument("--n-head", type=int)
    p.add_argument("--n-layer", type=int)
    p.add_argument("--dropout", type=float)
    p.add_argument("--attn-dropout", type=float, dest="attn_dropout",
                   help="a separate dropout rate for the attention weights (default: --dropout's)")
    p.add_argument("--activation", choices=["relu", "gelu", "swiglu"], help="feed-forward activation (chapter 12)")
    p.add_argument("--norm", choices=["layernorm", "rmsnorm"], help="normalisation layer (chapter 12)")
    p.add_argument("--position", choices=["learned", "rope"], help="position embeddings (chapter 12)")
    p.add_argument("--tie-weights", action="store_true", default=None, dest="tie_weights",
                   help="share the token embedding with the output layer (chapter 12)")
    p.add_argument("--seed", type=int)
    p.add_argument("--time-budget", type=float, dest="time_budget", metavar="SECONDS",
                   help="stop after this much wall-clock time (evaluation included); 0 = run --max-iters")
    p.add_argument("--grad-accum", type=int, dest="grad_accum", metavar="N",
                   help="micro-batches per step (global batch = batch size x N); under torchrun they are "
                        "split across the processes, so N must be a multiple of --nproc_per_node")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all available, shared among processes)")
    p.add_argument("--compile", action="store_true", help="use torch.compile (pays off on long GPU runs)")
    p.add_argument("--cpu-bf16", action="store_true", dest="cpu_bf16",
                   help="bf16 autocast on a CPU with native bf16 (AVX512-BF16/AMX): faster for large models")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a checkpoint",
                       description="Generate text from a checkpoint saved by `train`.")
    p.add_argument("--checkpoint", required=True, help="path of a .pt file written by `train`")
    p.add_argument("--prompt", default="\n", help="text to start from (default: a newline)")
    p.add_argument("--tokens", type=int, default=500, help="characters to generate (default 500)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", default=None)


def _add_grade(sub) -> None:
    p = sub.add_parser(
        "grade", help="run notebooks headless and report every exercise's status",
        description="Run each notebook in its own fresh kernel (never writing it), re-check every "
        "exercise in a fresh interpreter, and print a table per chapter. Exit status 0 only when every "
        "exercise found passed, 2 on bad input. With --class: one folder or .zip per learner in "
        "SUBMISSIONS, graded in parallel inside a sandbox, with a CSV/JSON roll-up.",
    )
    p.add_argument("paths", nargs="+", help="notebooks, or folders of notebooks (e.g. notebooks/); with --class: "
                   "the folder of submissions")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON (schema: lecture_utils.grade/1)")
    p.add_argument("--timeout", type=float, default=600, metavar="SECONDS", help="per-cell time limit (default 600)")
    p.add_argument("--chapter", type=int, metavar="N", help="grade only chapter N")
    p.add_argument("--full", action="store_true", help="run training loops at full length (default: the smoke setting)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--class", dest="class_", action="store_true",
                   help="grade a class: SUBMISSIONS/ holds one folder or .zip per learner (sandboxed)")
    p.add_argument("--sandbox", action="store_true",
                   help="run the notebooks inside the bubblewrap sandbox (always on with --class)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="with --class: grade without isolation (only for work you trust)")
    p.add_argument("--jobs", type=int, metavar="N", help="with --class: notebooks graded at once (default: the CPU cores)")
    p.add_argument("--out", metavar="DIR", default="grades",
                   help="with --class: folder for grades.csv, grades.json and the cache (default: grades)")
    p.add_argument("--memory", type=float, default=6, metavar="GB",
                   help="sandbox: address-space limit of each process (default 6)")
    p.add_argument("--notebook-timeout", type=float, default=1800, metavar="SECONDS",
                   help="sandbox: wall-clock and CPU-time limit for one notebook's run (default 1800)")


def cmd_grade(args) -> int:
    from lecture_utils.grading import main as grade_main

    return grade_main(args)


def cmd_train(args) -> int:
    from lecture_utils.train import PRESETS

    preset = PRESETS[args.preset]
    overrides = {k: getattr(args, k) for k in ("max_iters", "eval_interval", "eval_iters", "batch_size",
                                               "block_size", "learning_rate", "seed", "time_budget", "grad_accum",
                                               "weight_decay", "optimizer", "muon_lr", "decay_all")
                 if getattr(args, k) is not None}
    if args.compile:
        overrides["compile"] = True
    if args.cpu_bf16:
        overrides["cpu_bf16"] = True
    tcfg = replace(preset.train, **overrides)
    mcfg = preset.model
    if mcfg is not None:
        m_over = {k: getattr(args, k) for k in ("n_embd", "n_head", "n_layer", "dropout", "activation", "norm",
                                                "position", "tie_weights", "attn_dropout")
                  if getattr(args, k) is not None}
        m_over["block_size"] = tcfg.block_size
        mcfg = replace(mcfg, **m_over)
    elif any(getattr(args, k) is not None for k in ("n_embd", "n_head", "n_layer", "dropout", "activation", "norm",
                                                     "position", "tie_weights", "attn_dropout")):
        print("error: the bigram preset has no n_embd/n_head/n_layer/dropout or chapter-12 flags", file=sys.stderr)
        return 2
    preset = replace(preset, model=mcfg, train=tcfg)
    dist = _Distributed.from_env(args.device)
    finished = False
    try:
        rc = _train_process(args, preset, tcfg, dist)
        finished = True
        return rc
    except Exception as exc:
        if dist.world > 1:
            # a clear line from the failing process; torchrun then stops the others
            print(f"error: rank {dist.rank} of {dist.world} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(1) from exc
        raise
    finally:
        dist.close(wait_for_all=finished)


class _Distributed:
    """The process group under ``torchrun`` (nccl on CUDA, gloo on the CPU); a no-op otherwise."""

    def __init__(self, rank=0, world=1, local_rank=0, device=None, active=False):
        self.rank, self.world, self.local_rank, self.device, self.active = rank, world, local_rank, device, active

    @classmethod
    def from_env(cls, device_arg):
        import os

        from lecture_utils.device import pick_device

        world = int(os.environ.get("WORLD_SIZE", "1"))
        device = pick_device(device_arg)
        if world == 1:
            return cls(device=device)
        import torch
        import torch.distributed as tdist

        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        tdist.init_process_group(backend=backend)
        return cls(rank, world, local_rank, device, True)

    def close(self, wait_for_all: bool = True):
        """Tear the process group down; after a normal run, first wait until every rank is done (rank 0
        still samples and prints after training: a rank that leaves early can abort gloo's teardown)."""
        if self.active:
            import torch.distributed as tdist

            if tdist.is_initialized():
                if wait_for_all:
                    tdist.barrier()
                tdist.destroy_process_group()


def _train_process(args, preset, tcfg, dist) -> int:
    import os

    import torch

    from lecture_utils import data
    from lecture_utils.device import describe, seed_everything, set_threads
    from lecture_utils.train import build_model, load_checkpoint, train

    device = dist.device
    main = dist.rank == 0
    if args.threads is None and dist.world > 1 and device.type == "cpu":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world))
        set_threads(max(1, (os.cpu_count() or 1) // local_world))
    else:
        set_threads(args.threads)
    seed_everything(tcfg.seed)  # the same initial weights in every process
    if os.environ.get("LECTURE_UTILS_FAIL_RANK") == str(dist.rank):  # fault injection, for the tests
        raise RuntimeError("simulated failure (LECTURE_UTILS_FAIL_RANK)")
    text, tokenizer, train_data, val_data = data.load_dataset(args.data)
    if tcfg.block_size >= len(val_data):
        print(f"error: block_size={tcfg.block_size} is too large for the validation split "
              f"({len(val_data)} tokens); use a smaller --block-size or more text", file=sys.stderr)
        return 2
    model = build_model(preset, tokenizer.vocab_size).to(device)
    out = Path(args.out or f"runs/{args.preset}.pt")
    n_params = sum(p.numel() for p in model.parameters())
    if main:
        print(describe(device) + (f" - {dist.world} processes" if dist.world > 1 else ""))
        length = f"{tcfg.time_budget:.0f} s of training" if tcfg.time_budget else f"{tcfg.max_iters} iterations"
        print(f"preset {args.preset}: {n_params / 1e6:.6f} M parameters; {length}, batch "
              f"{tcfg.batch_size} x {tcfg.grad_accum} micro-batches, block {tcfg.block_size}, lr {tcfg.learning_rate:g}")
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    result = train(model, train_data, val_data, tcfg, progress=main and not args.no_progress, checkpoint=out,
                   tokenizer=tokenizer)
    if not main:
        return 0
    for h in result.history:
        print(f"step {h['iter']:>6}: train loss {h['train']:.4f}, val loss {h['val']:.4f}")
    print(result.summary())
    print(f"best checkpoint: {out}")
    # a short sample from the best model, so the run ends with something to read
    best, tok, _ = load_checkpoint(out, device=device)
    ctx = torch.zeros((1, 1), dtype=torch.long, device=device)
    print("sample:\n" + tok.decode(best.generate(ctx, 200, generator=torch.Generator().manual_seed(0))[0]))
    return 0


def cmd_sample(args) -> int:
    import torch

    from lecture_utils.device import pick_device
    from lecture_utils.train import CheckpointError, load_checkpoint

    device = pick_device(args.device)
    try:
        model, tok, _ = load_checkpoint(args.checkpoint, device=device)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if tok is None:
        print("error: this checkpoint has no tokenizer saved with it", file=sys.stderr)
        return 2
    unknown = tok.unknown_chars(args.prompt)
    if unknown:
        print(f"error: the prompt has characters the model does not know: {unknown!r}", file=sys.stderr)
        return 2
    if args.tokens < 0:
        print("error: --tokens must be >= 0", file=sys.stderr)
        return 2
    idx = torch.tensor([tok.encode(args.prompt)], dtype=torch.long, device=device)
    gen = torch.Generator().manual_seed(args.seed)
    out = model.generate(idx, args.tokens, temperature=args.temperature, top_k=args.top_k, generator=gen)
    print(tok.decode(out[0]))
    return 0


def cmd_doctor(args) -> int:
    """[OK]/[FAIL] for each thing the course needs, with the fix for each failure."""
    checks = []

    def line(ok: bool, what: str, fix: str = "") -> None:
        checks.append(ok)
        print(f"[{'OK' if ok else 'FAIL'}] {what}" + ("" if ok or not fix else f"\n       fix: {fix}"))

    v = sys.version_info
    line(v >= (3, 10), f"Python {v.major}.{v.minor}.{v.micro}", "install Python 3.10 or newer")
    try:
        import torch

        from lecture_utils.device import describe, pick_device

        dev = pick_device()
        line(True, f"torch {torch.__version__}; {describe(dev)}")
        x = torch.randn(4, 4, device=dev)
        line(bool(torch.isfinite(x @ x).all()), f"a matrix multiply on {dev.type}",
             "set LECTURE_UTILS_DEVICE=cpu and report the problem")
    except Exception as exc:
        line(False, f"torch: {exc}", 'pip install "torch>=2.2"')
    try:
        from lecture_utils import data

        text = data.load_text()
        line(len(text) == data.TINY_SHAKESPEARE_CHARS,
             f"corpus {data.corpus_path().name}: {len(text):,} characters, SHA-256 verified")
    except Exception as exc:
        line(False, f"corpus: {exc}", 'reinstall the package: pip install -e ".[dev]"')
    for mod, fix in (("jupyterlab", 'pip install -e ".[dev]"'), ("ipykernel", 'pip install -e ".[dev]"'),
                     ("ipywidgets", "pip install ipywidgets>=8"), ("matplotlib", "pip install matplotlib"),
                     ("tqdm", "pip install tqdm")):
        try:
            m = __import__(mod)
            line(True, f"{mod} {getattr(m, '__version__', '')}".strip())
        except ImportError:
            line(False, f"{mod} is not installed", fix)
    ok = all(checks)
    print("everything the course needs is here" if ok else "some checks failed: see the fixes above")
    return 0 if ok else 1


def cmd_presets(args) -> int:
    from lecture_utils.train import PRESETS

    for name, p in PRESETS.items():
        print(f"{name:<14} {p.description}\n    model: {p.model}\n    train: {p.train}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lecture_utils",
        description="Build GPT course tools: train and sample models, check the set-up.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_sample(sub)
    _add_grade(sub)
    sub.add_parser("doctor", help="check that everything the course needs works here")
    sub.add_parser("presets", help="list the training presets")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = {"train": cmd_train, "sample": cmd_sample, "grade": cmd_grade, "doctor": cmd_doctor,
               "presets": cmd_presets}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ValueError as exc:  # our clear errors (bad device, bad data, bad config)
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
