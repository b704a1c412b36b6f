"""Command line: ``python -m lecture_utils {train,sample,grade,gradescope,doctor,presets}``.

Examples::

    python -m lecture_utils doctor
    python -m lecture_utils train --preset lecture-small
    python -m lecture_utils train --preset lecture --device cuda --out runs/lecture.pt
    python -m lecture_utils train --preset cpu --tokenizer bpe:512 --out runs/bpe.pt
    python -m lecture_utils sample --checkpoint runs/lecture-small.pt --prompt "ROMEO:" --tokens 300
    python -m lecture_utils grade notebooks/ --json grades.json
    python -m lecture_utils gradescope build --chapters 01,02 --points points.toml --out autograder.zip

This file parses the command line and dispatches: ``train`` and ``sample`` check their flags here and call
:mod:`lecture_utils.train` and :mod:`lecture_utils.generation`; ``grade`` and ``gradescope`` are
:mod:`lecture_utils.grading`'s, ``doctor`` is :mod:`lecture_utils.doctor`'s.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from lecture_utils.grading import gradescope


def _add_train(sub) -> None:
    from lecture_utils.config import PRESETS

    p = sub.add_parser(
        "train",
        help="train a model from a preset",
        description="Train a model on Tiny Shakespeare (or --data FILE) from a named preset; any preset value can be\n"
        "overridden. Prints each evaluation as it happens, the last and best val loss, and saves the best\n"
        "checkpoint (with the training state, so --resume can continue it).\n\n"
        "Checkpoints are never replaced by accident: if --out already exists, train stops before doing "
        "anything\nunless you pass --overwrite (start again, replacing it) or --resume it (continue that run). "
        "Ctrl-C\nstops a run and keeps the best checkpoint so far.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="presets:\n" + "\n".join(f"  {name:<14} {p.description}" for name, p in PRESETS.items()),
    )
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="configuration to start from (default: lecture-small; with --resume, the checkpoint's)")
    p.add_argument("--data", default=None, help="a UTF-8 text file to train on instead of Tiny Shakespeare")
    p.add_argument("--tokenizer", default=None, metavar="{char,bpe:N}",
                   help="char (the default): one token per character; bpe:N: a byte-level BPE of N tokens (N > 256, "
                        "e.g. bpe:512; chapter 14), trained first on the training split only, then the model on "
                        "its tokens (the teaching BPE is slow: it prints how long it took). With --resume, the "
                        "checkpoint's")
    p.add_argument("--out", default=None, help="checkpoint path (default: runs/PRESET.pt; with --resume, the "
                   "resumed file). An existing file is never replaced unless --overwrite is given")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it exists (by default train refuses to start)")
    p.add_argument("--resume", metavar="CHECKPOINT", default=None,
                   help="continue the run saved in CHECKPOINT from its iteration (its best evaluation so far): "
                        "model, optimizer, learning-rate schedule, random state and best val loss; --max-iters "
                        "counts from the start of the original run")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: best available)")
    p.add_argument("--max-iters", type=int, help="training iterations (>= 1)")
    p.add_argument("--eval-interval", type=int, help="evaluate every N iterations (0: only at the end)")
    p.add_argument("--eval-iters", type=int, help="batches per evaluation (>= 1)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--block-size", type=int, help="context length (the model's block_size)")
    p.add_argument("--lr", type=float, dest="learning_rate", help="learning rate (> 0)")
    p.add_argument("--weight-decay", type=float, dest="weight_decay", help="AdamW's weight decay (>= 0)")
    p.add_argument("--decay-matrices-only", action="store_const", const=False, dest="decay_all",
                   help="weight decay on weight matrices and embeddings only, not on biases and norm gains")
    p.add_argument("--optimizer", choices=["adamw", "muon"],
                   help="muon: Muon for the blocks' weight matrices, AdamW for the rest")
    p.add_argument("--muon-lr", type=float, dest="muon_lr", help="Muon's peak learning rate (with --optimizer muon)")
    p.add_argument("--n-embd", type=int)
    p.add_argument("--n-head", type=int)
    p.add_argument("--n-layer", type=int)
    p.add_argument("--dropout", type=float, help="dropout rate in [0, 1)")
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
                        "split across the processes, so N must be a multiple of --nproc_per_node (left out, "
                        "the CLI picks a split and says which)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all available, shared among processes)")
    p.add_argument("--compile", action="store_true", default=None, help="use torch.compile (pays off on long GPU runs)")
    p.add_argument("--torch-dropout", action="store_const", const=False, dest="fast_cpu_dropout",
                   help="on a CPU, draw dropout masks with torch's own generator instead of numpy's faster one")
    p.add_argument("--plain-cpu-paths", action="store_const", const=False, dest="fast_cpu_paths",
                   help="on a CPU, torch's own linear layers and attention steps instead of the faster oneDNN "
                        "products and fused mask (the same numbers to fp32 rounding)")
    p.add_argument("--cpu-bf16", action="store_true", default=None, dest="cpu_bf16",
                   help="bf16 autocast on a CPU with native bf16 (AVX512-BF16/AMX): faster for large models")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none anyway when stderr is not a terminal, e.g. in a log)")
    p.add_argument("--sample-tokens", type=int, default=200, metavar="N",
                   help="tokens of text the best model writes when training ends (default 200; 0: none)")
    p.set_defaults(_flags={a.dest: a.option_strings[0] for a in p._actions if a.option_strings})


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a checkpoint",
                       description="Generate text from a checkpoint saved by `train`.")
    p.add_argument("--checkpoint", required=True, help="path of a .pt file written by `train`")
    p.add_argument("--prompt", default="\n", help="text to start from, at least one character (default: a newline)")
    p.add_argument("--tokens", type=int, default=500,
                   help="tokens to generate, >= 1 (default 500): characters for a character model")
    p.add_argument("--temperature", type=float, default=1.0, help="> 0; below 1 sharpens (default 1.0)")
    p.add_argument("--top-k", type=int, default=None, help="sample from the K most likely tokens only (K >= 1)")
    p.add_argument("--top-p", type=float, default=None,
                   help="sample from the most likely tokens whose probability reaches P only (0 < P <= 1)")
    p.add_argument("--no-cache", action="store_true",
                   help="the lecture's generate, without the KV cache (the same text for the same seed, slower)")
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
    p.add_argument("--lms", metavar="FORMATS",
                   help="with --class: also write the gradebook imports, e.g. canvas,moodle (canvas.csv, moodle.csv)")
    p.add_argument("--points", metavar="FILE",
                   help="with --class: points per exercise, a TOML table (\"1.2\" = 2, default = 1); 1 each without it")
    p.add_argument("--assignment", metavar="NAME", default="Build GPT",
                   help="with --lms: the gradebook column's (assignment's) name (default: Build GPT)")
    p.add_argument("--memory", type=float, default=6, metavar="GB",
                   help="sandbox: address-space limit of each process (default 6)")
    p.add_argument("--notebook-timeout", type=float, default=1800, metavar="SECONDS",
                   help="sandbox: wall-clock and CPU-time limit for one notebook's run (default 1800)")


def cmd_grade(args) -> int:
    from lecture_utils.grading import main as grade_main

    return grade_main(args)


# what a resumed run may change: how long it trains, how often it evaluates, how its steps are computed
_RESUME_MAY_CHANGE = ("max_iters", "eval_interval", "eval_iters", "time_budget", "grad_accum", "compile", "cpu_bf16",
                      "fast_cpu_dropout", "fast_cpu_paths")


def _overrides(args, config_class, bigram: bool = False) -> dict:
    """The flags given on the command line that set a field of ``config_class`` (GPTConfig or TrainConfig):
    the flags whose destination is the field's name. ``block_size`` is the model's, except for the bigram
    model, which has none (its context length is the training loop's)."""
    from dataclasses import fields

    from lecture_utils.model import GPTConfig

    names = [f.name for f in fields(config_class) if f.name in args._flags]
    if config_class is GPTConfig and bigram:
        names.remove("block_size")
    elif config_class is not GPTConfig and not bigram:
        names = [n for n in names if n not in {f.name for f in fields(GPTConfig)}]
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


_TOKENIZER_FORMS = "accepted: char (the default), or bpe:N with N an integer > 256, e.g. bpe:512"


def _parse_tokenizer(spec: str) -> int | None:
    """``--tokenizer``'s value: None for ``char``, the vocabulary size N for ``bpe:N``. Raises ValueError with one
    line naming the problem and the accepted forms."""
    from lecture_utils.bpe import N_BYTES

    if spec == "char":
        return None
    kind, colon, size = spec.partition(":")
    if kind != "bpe":
        raise ValueError(f"--tokenizer {spec!r} is not a tokenizer this course trains; {_TOKENIZER_FORMS}")
    if not colon or not size:
        raise ValueError(f"--tokenizer {spec!r} needs a vocabulary size after the colon; {_TOKENIZER_FORMS}")
    if not size.isdigit():  # digits only: no sign, no space, no decimal point
        raise ValueError(f"--tokenizer {spec!r}: the vocabulary size {size!r} is not a whole number; {_TOKENIZER_FORMS}")
    if int(size) <= N_BYTES:
        raise ValueError(f"--tokenizer {spec!r}: the vocabulary size must be greater than {N_BYTES} (the bytes alone "
                         f"take {N_BYTES} ids, BPE adds one per merge); {_TOKENIZER_FORMS}")
    return int(size)


def _saved_tokenizer_spec(resume: dict) -> str:
    """The ``--tokenizer`` of the run a checkpoint continues: recorded in its ``extra``, else read from its tokenizer
    (a checkpoint from before ``--tokenizer`` existed is a character model)."""
    spec = resume["extra"].get("tokenizer")
    if spec is not None:
        return spec
    state = resume.get("tokenizer") or {}
    return f"bpe:{256 + len(state.get('merges', []))}" if state.get("kind") == "bpe" else "char"


def _plan_train(args):
    """Check every flag of ``train`` and work out the run, before anything is read or written: returns
    ``(preset_name, preset, train_config, out_path, resume_payload, notes, tokenizer_spec)``, the last ``"char"``
    or ``"bpe:N"``. Raises ValueError with one line naming the flag and the fix."""
    import math

    from lecture_utils.checkpoints import read_checkpoint
    from lecture_utils.config import PRESETS, TrainConfig
    from lecture_utils.distributed import split_micro_batches, world_size_from_env
    from lecture_utils.model import ConfigError, GPTConfig

    flags = args._flags
    from lecture_utils.device import pick_device

    pick_device(args.device)  # an unknown or absent device: a ValueError naming the ones there are
    if args.tokenizer is not None:
        bpe_size = _parse_tokenizer(args.tokenizer)
        spec = "char" if bpe_size is None else f"bpe:{bpe_size}"
    else:
        spec = "char"
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be an integer >= 1, got {args.threads}")
    if args.sample_tokens < 0:
        raise ValueError(f"--sample-tokens must be an integer >= 0 (0: no sample), got {args.sample_tokens}")
    for name in ("learning_rate", "weight_decay", "muon_lr", "dropout", "attn_dropout", "time_budget"):
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{flags[name]} must be a finite number, got {value}")
    resume = None
    if args.resume is not None:
        resume = read_checkpoint(args.resume)  # CheckpointError (a ValueError): one line, exit 2
        if not isinstance(resume.get("training"), dict):
            raise ValueError(f"{args.resume} holds the weights only, no training state to resume from (an older "
                             "course version wrote it); start a new run instead")
        saved_preset = resume["extra"].get("preset")
        if args.preset is not None and saved_preset is not None and args.preset != saved_preset:
            raise ValueError(f"--preset {args.preset} differs from the preset of the run being resumed "
                             f"({saved_preset}); drop --preset: a resumed run keeps its configuration")
        saved_spec = _saved_tokenizer_spec(resume)
        if args.tokenizer is not None and spec != saved_spec:
            raise ValueError(f"--tokenizer {args.tokenizer} differs from the tokenizer of the run being resumed "
                             f"({saved_spec}); drop --tokenizer to continue that run, or start a new run with "
                             "--out NEW.pt")
        spec = saved_spec
        preset_name = args.preset or saved_preset or "lecture-small"
        base = PRESETS.get(preset_name, PRESETS["lecture-small"])
        saved_train = TrainConfig.from_dict(resume.get("train_config") or {})
        saved_model = GPTConfig.from_dict(resume["config"]) if resume["kind"] == "gpt" else None
        for name, value in _overrides(args, GPTConfig, bigram=saved_model is None).items():
            saved = getattr(saved_model, name) if saved_model is not None else None
            if saved_model is None or value != saved:
                raise ValueError(f"{flags[name]} {value} differs from the checkpoint's {name}={saved!r}: a resumed "
                                 f"run keeps its model; drop {flags[name]}, or start a new run with --out NEW.pt")
        for name, value in _overrides(args, TrainConfig, bigram=saved_model is None).items():
            if name not in _RESUME_MAY_CHANGE and value != getattr(saved_train, name):
                raise ValueError(f"{flags[name]} {value} differs from the run being resumed "
                                 f"({name}={getattr(saved_train, name)!r}); drop it to continue that run, or start "
                                 "a new run with --out NEW.pt")
        preset = replace(base, model=saved_model, train=saved_train)
    else:
        preset_name = args.preset or "lecture-small"
        preset = PRESETS[preset_name]
    bigram = preset.model is None
    try:
        tcfg = replace(preset.train, **_overrides(args, TrainConfig, bigram))
        mcfg = preset.model
        if resume is None and mcfg is not None:
            mcfg = replace(mcfg, **_overrides(args, GPTConfig))
    except ConfigError as exc:
        raise ValueError(exc.message(flags)) from None
    if bigram and _overrides(args, GPTConfig, bigram=True):
        raise ValueError("the bigram preset has no n_embd/n_head/n_layer/dropout or chapter-12 flags; drop them, or "
                         "choose a GPT preset (--preset lecture-small)")
    if args.muon_lr is not None and tcfg.optimizer != "muon":
        raise ValueError(f"--muon-lr is set but the optimizer is {tcfg.optimizer}: add --optimizer muon, or drop --muon-lr")
    if resume is not None and resume["training"].get("iter", 0) >= tcfg.max_iters:
        done = resume["training"]["iter"]
        raise ValueError(f"{args.resume} is already at iteration {done}: --max-iters {tcfg.max_iters} leaves nothing to "
                         f"train; give a larger --max-iters (it counts from the start of the run), e.g. {2 * done}")
    tcfg, note = split_micro_batches(tcfg, world_size_from_env(), grad_accum_given=args.grad_accum is not None)
    notes = [note] if note else []
    preset = replace(preset, model=mcfg, train=tcfg)
    out = Path(args.out or args.resume or f"runs/{preset_name}.pt")
    _check_out(out, args, preset_name)
    return preset_name, preset, tcfg, out, resume, notes, spec


def _check_out(out: Path, args, preset_name: str) -> None:
    """Refuse an --out that would replace a checkpoint this run did not write, or that cannot be written."""
    import os

    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name, e.g. --out {out / (preset_name + '.pt')}")
    continuing = args.resume is not None and out.resolve() == Path(args.resume).resolve()
    if out.exists() and not args.overwrite and not continuing:
        raise ValueError(f"{out} already exists (a checkpoint from an earlier run); pass --overwrite to replace it, "
                         f"--resume {out} to continue that run, or --out NEW.pt to keep both")
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write the checkpoint {out}: {folder} is a file, not a folder; choose another --out")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write the checkpoint {out}: no permission to write in {folder}; choose another --out")


def cmd_train(args) -> int:
    from lecture_utils.distributed import ProcessGroup

    preset_name, preset, tcfg, out, resume, notes, spec = _plan_train(args)
    group = ProcessGroup.from_env(args.device)
    finished = False
    try:
        rc = _train_process(args, preset_name, preset, tcfg, out, resume, notes, spec, group)
        finished = rc == 0
        return rc
    except Exception as exc:
        if group.world > 1:
            # a clear line from the failing process; torchrun then stops the others
            print(f"error: rank {group.rank} of {group.world} failed: {type(exc).__name__}: {exc}", file=sys.stderr,
                  flush=True)
            raise SystemExit(1) from exc
        raise
    finally:
        group.close(wait_for_all=finished)


def _bpe_dataset(text: str, vocab_size: int, tokenizer, say):
    """A BPE tokenizer and the train/val token tensors of ``text``. The text is split by characters first, 90/10 as
    ``data.split_data`` splits a character model's tokens, so both kinds of model are validated on the same
    characters; the tokenizer is trained on the training part only (the validation text stays unseen), unless
    ``tokenizer`` is given (a resumed run keeps its own). Each part is encoded on its own. ``say`` prints."""
    import time

    import torch

    from lecture_utils.bpe import N_BYTES, BPETokenizer

    n = int(0.9 * len(text))
    train_text, val_text = text[:n], text[n:]
    if tokenizer is None:
        say(f"tokenizer: training a byte-level BPE of {vocab_size} tokens ({vocab_size - N_BYTES} merges) on the "
            f"training split ({n:,} characters, not the validation text)...")
        start = time.perf_counter()
        tokenizer = BPETokenizer.train(train_text, vocab_size)
        short = (f" (no pair left to merge after {tokenizer.vocab_size - N_BYTES}: {tokenizer.vocab_size} tokens)"
                 if tokenizer.vocab_size < vocab_size else "")
        say(f"tokenizer: learned in {time.perf_counter() - start:.1f} s{short}")
    start = time.perf_counter()
    train_ids, val_ids = tokenizer.encode(train_text), tokenizer.encode(val_text)
    n_tokens = len(train_ids) + len(val_ids)
    say(f"tokenizer: {len(text):,} characters -> {n_tokens:,} tokens ({len(text) / max(1, n_tokens):.2f} characters "
        f"per token; {len(train_ids):,} to train on, {len(val_ids):,} to validate), encoded in "
        f"{time.perf_counter() - start:.1f} s")
    return tokenizer, torch.tensor(train_ids, dtype=torch.long), torch.tensor(val_ids, dtype=torch.long)


def _train_process(args, preset_name, preset, tcfg, out, resume, notes, spec, group) -> int:
    import os
    import uuid

    import torch

    from lecture_utils import data
    from lecture_utils.checkpoints import load_checkpoint, tokenizer_from_state
    from lecture_utils.config import build_model
    from lecture_utils.device import describe, seed_everything, set_threads
    from lecture_utils.model import num_parameters
    from lecture_utils.train import train, training_block_size

    device = group.device
    main = group.main
    if tcfg.cpu_bf16 and device.type != "cpu":
        raise ValueError(f"--cpu-bf16 is for training on a CPU, but the device is {device.type} (bf16 autocast is "
                         "already used on CUDA GPUs); drop --cpu-bf16, or add --device cpu")
    set_threads(args.threads if args.threads is not None else group.cpu_threads())
    seed_everything(tcfg.seed)  # the same initial weights in every process
    if os.environ.get("LECTURE_UTILS_FAIL_RANK") == str(group.rank):  # fault injection, for the tests
        raise RuntimeError("simulated failure (LECTURE_UTILS_FAIL_RANK)")
    saved_state = resume.get("tokenizer") if resume is not None else None
    saved_tok = tokenizer_from_state(saved_state) if saved_state else None  # read_checkpoint checked it
    if spec == "char":
        text, tokenizer, train_data, val_data = data.load_dataset(args.data)
    else:
        text = data.load_text(args.data)
        tokenizer, train_data, val_data = _bpe_dataset(text, int(spec.partition(":")[2]), saved_tok,
                                                       say=print if main else (lambda line: None))
    block_size = tcfg.block_size if preset.model is None else training_block_size(tcfg, preset.model)
    if block_size >= len(val_data):
        raise ValueError(f"block_size={block_size} is too large for the validation split ({len(val_data)} "
                         "tokens); use a smaller --block-size or more text")
    if resume is not None and saved_tok != tokenizer:
        saved = len(getattr(saved_tok, "chars", ""))
        what = (f"not the {saved} the checkpoint was trained on" if saved != tokenizer.vocab_size
                else "but other characters than the checkpoint was trained on")
        raise ValueError(f"the text to train on has a vocabulary of {tokenizer.vocab_size} characters, {what}; "
                         "resume with the same --data as the original run")
    model = build_model(preset, tokenizer.vocab_size).to(device)
    n_params = num_parameters(model)
    if main:
        print(describe(device) + (f" - {group.world} processes" if group.world > 1 else ""))
        for note in notes:
            print("note: " + note)
        length = f"{tcfg.time_budget:.0f} s of training" if tcfg.time_budget else f"{tcfg.max_iters} iterations"
        print(f"preset {preset_name}: {n_params / 1e6:.6f} M parameters; {length}, batch "
              f"{tcfg.batch_size} x {tcfg.grad_accum} micro-batches, block {block_size}, lr {tcfg.learning_rate:g}")
        if resume is not None:
            st = resume["training"]
            print(f"resuming {args.resume} at iteration {st['iter']} (best val loss {st['best_val']:.4f} at "
                  f"iteration {st['best_iter']})")
    model = group.wrap(model)  # DistributedDataParallel under torchrun

    def show(it, losses):  # each evaluation as it happens (stdout is line-buffered, also in a log file)
        if main:
            print(f"step {it:>6}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}", flush=True)

    run_id = uuid.uuid4().hex
    bar = main and not args.no_progress and sys.stderr.isatty()
    try:
        result = train(model, train_data, val_data, tcfg, progress=bar, checkpoint=out, tokenizer=tokenizer,
                       callback=show, resume=resume,
                       checkpoint_extra={"preset": preset_name, "run_id": run_id, "tokenizer": spec})
    except KeyboardInterrupt:
        if main:
            print(_where_is_the_best(out, run_id, "interrupted"), file=sys.stderr, flush=True)
        return 130
    except FloatingPointError as exc:
        if main:
            print(f"error: {exc}\n" + _where_is_the_best(out, run_id, "stopped"), file=sys.stderr, flush=True)
        return 2
    if not main:
        return 0
    print(result.summary())
    if not out.is_file() and resume is not None:  # a resumed run that never beat the checkpoint it started from
        print(f"no evaluation beat the best val loss of {args.resume}, so {out} was not written")
        out = Path(args.resume)
    print(f"best checkpoint: {out}")
    if args.sample_tokens == 0:
        return 0
    # a short sample from the best model, so the run ends with something to read
    best, tok, _ = load_checkpoint(out, device=device)
    start = [0] if spec == "char" else tok.encode("\n")  # a BPE model's token 0 is the byte 0, never in a text
    ctx = torch.tensor([start], dtype=torch.long, device=device)
    print("sample:\n" + tok.decode(best.generate(ctx, args.sample_tokens, generator=torch.Generator().manual_seed(0))[0]))
    return 0


def _where_is_the_best(out: Path, run_id: str, what: str) -> str:
    """One line for a run that ends early: where its best checkpoint is, and how to continue it."""
    from lecture_utils.checkpoints import CheckpointError, read_checkpoint

    try:
        extra = read_checkpoint(out)["extra"] if out.is_file() else {}
    except CheckpointError:
        extra = {}
    if extra.get("run_id") == run_id:
        return (f"{what}: the best checkpoint so far (val loss {extra['val_loss']:.4f} at iteration {extra['iter']}) "
                f"is {out}; continue with: python -m lecture_utils train --resume {out}")
    return f"{what}: this run wrote no checkpoint" + (f"; {out} is unchanged" if out.exists() else "")


def cmd_sample(args) -> int:
    import math

    import torch

    from lecture_utils.checkpoints import load_checkpoint
    from lecture_utils.device import pick_device

    if args.tokens < 1:
        raise ValueError(f"--tokens must be an integer >= 1, got {args.tokens}")
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise ValueError(f"--temperature must be a finite number > 0, got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        raise ValueError(f"--top-k must be an integer >= 1, got {args.top_k}")
    if not 0 <= args.seed < 2**63:
        raise ValueError(f"--seed must be an integer in [0, 2**63), got {args.seed}")
    if args.prompt == "":
        raise ValueError('--prompt is empty: the model needs at least one character to continue from; leave '
                         '--prompt out to start from a newline')
    device = pick_device(args.device)
    model, tok, _ = load_checkpoint(args.checkpoint, device=device)  # CheckpointError: one line, exit 2
    if tok is None:
        raise ValueError(f"{args.checkpoint} has no tokenizer saved with it; use a checkpoint written by "
                         "python -m lecture_utils train")
    unknown = tok.unknown_chars(args.prompt) if hasattr(tok, "unknown_chars") else []  # BPE: bytes cover all text
    if unknown:
        raise ValueError(f"the prompt has characters the model does not know: {unknown!r}; remove them "
                         f"(the model knows {tok.vocab_size} characters)")
    idx = torch.tensor([tok.encode(args.prompt)], dtype=torch.long, device=device)
    gen = torch.Generator().manual_seed(args.seed)
    from lecture_utils.generation import cacheable, generate_with_cache

    if args.no_cache or not cacheable(model):
        if args.top_p is not None:
            why = "--no-cache" if args.no_cache else "a model the KV cache does not support"
            raise ValueError(f"--top-p needs the cached generate, and this run uses the lecture's ({why})")
        out = model.generate(idx, args.tokens, temperature=args.temperature, top_k=args.top_k, generator=gen)
    else:  # the same tokens as model.generate for the same seed, faster
        out = generate_with_cache(model, idx, args.tokens, temperature=args.temperature, top_k=args.top_k,
                                  top_p=args.top_p, generator=gen)
    print(tok.decode(out[0]))
    return 0


def cmd_doctor(args) -> int:
    from lecture_utils.doctor import main as doctor_main

    return doctor_main(args)


def cmd_presets(args) -> int:
    from lecture_utils.config import PRESETS

    for name, p in PRESETS.items():
        print(f"{name:<14} {p.description}\n    model: {p.model}\n    train: {p.train}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (no usage block): what is wrong, and where the help is."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m lecture_utils",
        description="Build GPT course tools: train and sample models, check the set-up.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_sample(sub)
    _add_grade(sub)
    gradescope.add_parser(sub)
    sub.add_parser("doctor", help="check that everything the course needs works here")
    sub.add_parser("presets", help="list the training presets")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not sys.stdout.isatty() and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # a log file shows each line as it is printed
    handler = {"train": cmd_train, "sample": cmd_sample, "grade": cmd_grade, "doctor": cmd_doctor,
               "presets": cmd_presets, "gradescope": gradescope.main}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ValueError as exc:  # our clear errors (bad flag, device, data, config or checkpoint): one line
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
