"""Checkpoints: written atomically (a temporary file, then renamed over the old one), read with one clear
error per kind of damage, loaded into a model whose config must match; and the checkpoints that ship
with the package (:func:`load_shipped`).

A checkpoint is a ``torch.save`` zip holding plain data only: ``format``, ``kind`` (``"gpt"`` or
``"bigram"``), the model's ``config``, its ``state_dict``, the ``tokenizer``, the ``train_config``,
``extra`` facts (iteration, val loss, preset...) and, when written by the training loop, the
``training`` state that ``train(resume=...)`` continues from.

The ``tokenizer`` entry is ``{"kind": "char", "chars": ...}`` or ``{"kind": "bpe", "merges": [[a, b], ...]}``
(chapter 14). Checkpoints from before chapter 14 hold ``{"chars": ...}`` without a kind: character tokenizers.
A checkpoint with a character tokenizer (or none) is written as format 1, which every course version reads;
one with a BPE tokenizer as format 2, so that a version from before chapter 14 says "update" instead of
misreading it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from dataclasses import asdict, fields
from pathlib import Path

import torch
import torch.nn as nn

from lecture_utils.bpe import BPETokenizer
from lecture_utils.config import TrainConfig
from lecture_utils.data import CharTokenizer
from lecture_utils.model import GPT, BigramLanguageModel, GPTConfig
from lecture_utils.modern import build_gpt

CHECKPOINT_FORMAT = 2  # raise it when a change makes old readers misread new files; readers refuse newer ones
_FORMAT_BEFORE_BPE = 1  # the format of a checkpoint without a BPE tokenizer: what versions before chapter 14 read
_UPDATE = "update the course package (git pull, then pip install -e .)"


class CheckpointError(ValueError):
    """A checkpoint cannot be read or written, or does not fit the model it is loaded into."""


Tokenizer = CharTokenizer | BPETokenizer
TOKENIZER_KINDS = ("char", "bpe")


def tokenizer_state(tokenizer: Tokenizer) -> dict:
    """A tokenizer as the plain data a checkpoint stores: its ``kind`` and what rebuilds it."""
    if isinstance(tokenizer, BPETokenizer):
        return tokenizer.state_dict()
    if isinstance(tokenizer, CharTokenizer):
        return {"kind": "char", **tokenizer.state_dict()}
    raise CheckpointError(f"save_checkpoint: cannot save a {type(tokenizer).__name__} as the tokenizer; expected "
                          "CharTokenizer or BPETokenizer")


def tokenizer_from_state(state: dict) -> Tokenizer:
    """The tokenizer that :func:`tokenizer_state` stored. A state without ``kind`` is a character tokenizer
    (checkpoints from before chapter 14).

    Raises:
        ValueError: the state is not a tokenizer this course writes; the message says what is wrong.
    """
    if not isinstance(state, dict):
        raise ValueError(f"it is a {type(state).__name__}, not a dict")
    kind = state.get("kind", "char")
    if kind == "bpe":
        return BPETokenizer.from_state_dict(state)
    if kind != "char":
        raise ValueError(f"its kind {kind!r} is not one of {', '.join(TOKENIZER_KINDS)}")
    if not isinstance(state.get("chars"), str):
        raise ValueError("a character tokenizer needs its characters as a string")
    return CharTokenizer.from_state_dict(state)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    tokenizer: Tokenizer | None = None,
    train_config: TrainConfig | None = None,
    extra: dict | None = None,
    training_state: dict | None = None,
) -> Path:
    """Write the model's weights with its config and tokenizer, atomically: to a temporary file in
    the same folder, then renamed over ``path``. ``training_state`` (what :func:`train` needs to
    resume) is stored beside them. Returns the path.

    Raises:
        CheckpointError: the file cannot be written (no space, no permission, ``path`` is a folder...);
            the message says why, and the file that was at ``path`` is left as it was.
    """
    path = Path(path)
    model = getattr(model, "module", model)  # DDP
    model = getattr(model, "_orig_mod", model)  # torch.compile
    if isinstance(model, GPT):
        kind, config = "gpt", model.config.to_dict()
    elif isinstance(model, BigramLanguageModel):
        kind, config = "bigram", {"vocab_size": model.vocab_size}
    else:
        raise CheckpointError(f"save_checkpoint: cannot save a {type(model).__name__}; expected GPT or BigramLanguageModel")
    if path.is_dir():
        raise CheckpointError(f"cannot write the checkpoint {path}: it is a folder; give a file name such as {path / 'model.pt'}")
    tok_state = tokenizer_state(tokenizer) if tokenizer is not None else None
    payload = {
        "format": CHECKPOINT_FORMAT if tok_state is not None and tok_state["kind"] == "bpe" else _FORMAT_BEFORE_BPE,
        "kind": kind,
        "config": config,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "tokenizer": tok_state,
        "train_config": asdict(train_config) if train_config is not None else None,
        "extra": extra or {},
    }
    if training_state is not None:
        payload["training"] = training_state
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            kept = "the previous checkpoint there is unchanged" if path.is_file() else "nothing was written"
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise CheckpointError(f"could not write the checkpoint {path}: {reason}; {kept}. Free some space or "
                                  f"choose another place with --out") from exc
        raise
    return path


def _checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a checkpoint, judged without unpickling anything (None: worth loading)."""
    if path.is_dir():
        return f"{path} is a folder, not a checkpoint file; give the .pt file inside it"
    if not path.exists():
        return (f"checkpoint not found: {path}; check the path, or train one with "
                f"python -m lecture_utils train --out {path}")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        return f"cannot read the checkpoint {path}: {exc.strerror or exc}"
    if not head:
        return f"{path} is empty (0 bytes), not a checkpoint: the run that wrote it was stopped; train again"
    if head != b"PK\x03\x04":  # torch.save writes a zip archive
        return f"{path} is not a checkpoint: it is not a file written by torch.save; check the path"
    return None


def read_checkpoint(path: str | Path) -> dict:
    """The raw checkpoint dict (weights on the CPU).

    Only tensors and plain data are loaded (``weights_only``): a file that holds anything else is
    refused, since unpickling it could run code.

    Raises:
        CheckpointError: the file is missing, a folder, empty, truncated or damaged, not a course
            checkpoint, or written by a newer version of the course - one line saying which.
    """
    path = Path(path)
    problem = _checkpoint_problem(path)
    if problem:
        raise CheckpointError(problem)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise CheckpointError(f"{path} is not a course checkpoint: it holds Python objects besides tensors and "
                                  "plain data, and was not loaded because loading such a file can run code") from None
        raise CheckpointError(f"{path} is damaged (its contents cannot be decoded); train again or use another "
                              "checkpoint") from None
    except Exception:  # torch reports a cut-off zip archive as RuntimeError, EOFError, KeyError, OSError...
        raise CheckpointError(f"{path} is truncated or damaged (an incomplete zip archive); train again or use "
                              "another checkpoint") from None
    if not isinstance(payload, dict) or "format" not in payload or "state_dict" not in payload:
        raise CheckpointError(f"{path} is not a lecture_utils checkpoint (no format and weights entries); "
                              "use a file written by python -m lecture_utils train or save_checkpoint")
    fmt = payload["format"]
    if not isinstance(fmt, int) or fmt < 1:
        raise CheckpointError(f"{path} is not a lecture_utils checkpoint (format {fmt!r})")
    if fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} was written by a newer version of the course (checkpoint format {fmt}; "
                              f"this version reads format {CHECKPOINT_FORMAT}): {_UPDATE}")
    kind, config = payload.get("kind"), payload.get("config")
    if kind not in ("gpt", "bigram") or not isinstance(config, dict) or not isinstance(payload["state_dict"], dict):
        raise CheckpointError(f"{path} is damaged: its model kind {kind!r} or config is not one this course writes")
    if kind == "gpt":
        unknown = sorted(set(config) - {f.name for f in fields(GPTConfig)})
        if unknown:
            raise CheckpointError(f"{path} was written by a newer version of the course (model settings {unknown} "
                                  f"are unknown here): {_UPDATE}")
        try:
            GPTConfig.from_dict(config)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{path} is damaged: its model config is invalid ({exc})") from None
    elif not isinstance(config.get("vocab_size"), int) or config["vocab_size"] < 1:
        raise CheckpointError(f"{path} is damaged: its bigram config has no valid vocab_size")
    tok = payload.get("tokenizer")
    if tok is not None:
        try:
            tokenizer_from_state(tok)
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"{path} is damaged: its tokenizer is not valid ({exc})") from None
    return payload


def load_checkpoint_into(payload: dict, model: nn.Module, path: str | Path = "the checkpoint") -> nn.Module:
    """Copy a checkpoint's weights into ``model`` (whose config must match), naming each weight that does
    not fit instead of PyTorch's message."""
    target = getattr(model, "module", model)
    target = getattr(target, "_orig_mod", target)
    saved = payload["config"]
    if isinstance(target, GPT):
        mine, kind = target.config.to_dict(), "gpt"
    elif isinstance(target, BigramLanguageModel):
        mine, kind = {"vocab_size": target.vocab_size}, "bigram"
    else:
        raise CheckpointError(f"cannot load a checkpoint into a {type(target).__name__}")
    if kind != payload["kind"]:
        raise CheckpointError(f"{path} holds a {payload['kind']} model, not a {kind}")
    if kind == "gpt":  # an older checkpoint lacks the fields added since: they have their defaults
        saved = GPTConfig.from_dict(saved).to_dict()
    # dropout does not change the weights; everything else must agree
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs model {mine.get(k)!r}"
             for k in sorted(set(saved) | set(mine)) if k not in ("dropout", "attn_dropout")
             and saved.get(k) != mine.get(k)]
    if diffs:
        raise CheckpointError(f"{path} was saved from another configuration: " + "; ".join(diffs))
    state, own = payload["state_dict"], target.state_dict()
    wrong = sorted(set(own) - set(state)) + sorted(set(state) - set(own))
    wrong += [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
              if k in own and (not isinstance(v, torch.Tensor) or v.shape != own[k].shape)]
    if wrong:
        raise CheckpointError(f"{path} is damaged: its weights do not fit its own config ({', '.join(wrong[:4])}"
                              f"{' ...' if len(wrong) > 4 else ''})")
    target.load_state_dict(state)
    return target


def load_checkpoint(
    path: str | Path, model: nn.Module | None = None, device: torch.device | str = "cpu"
) -> tuple[nn.Module, Tokenizer | None, dict]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    With ``model=None`` the model is built from the saved config. With a model, its config must
    match the saved one; otherwise :class:`CheckpointError` names every field that differs.

    Returns:
        ``(model, tokenizer_or_None, payload)`` with the model on ``device`` in eval mode; the tokenizer is a
        ``CharTokenizer`` or a ``BPETokenizer``, whichever the model was trained with.

    Raises:
        CheckpointError: see :func:`read_checkpoint`; or the checkpoint does not fit ``model``.
    """
    payload = read_checkpoint(path)
    saved = payload["config"]
    if model is None:
        model = build_gpt(GPTConfig.from_dict(saved)) if payload["kind"] == "gpt" else BigramLanguageModel(saved["vocab_size"])
    model = load_checkpoint_into(payload, model, path)
    tok = payload.get("tokenizer")
    tokenizer = tokenizer_from_state(tok) if tok else None
    model.to(device).eval()
    return model, tokenizer, payload


# ---------------------------------------------------------------------------------------------
# the checkpoints shipped with the package
# ---------------------------------------------------------------------------------------------

SHIPPED = "shakespeare-cpu"


def shipped_checkpoint_path(name: str = SHIPPED) -> Path:
    """Path of a checkpoint that ships inside the package (``lecture_utils/checkpoints/NAME.pt``)."""
    from importlib import resources

    return Path(str(resources.files("lecture_utils") / "checkpoints" / f"{name}.pt"))


def shipped_record(name: str = SHIPPED) -> dict:
    """How the shipped checkpoint was made: command, configuration, wall time, val loss (JSON)."""
    import json

    path = shipped_checkpoint_path(name).with_suffix(".json")
    if not path.is_file():
        raise CheckpointError(f"no record for the shipped checkpoint {name!r} ({path})")
    return json.loads(path.read_text(encoding="utf-8"))


def load_shipped(name: str = SHIPPED, device: torch.device | str = "cpu"):
    """The trained GPT that ships with the course (trained on a CPU by the course's own CLI; see
    :func:`shipped_record`). Returns ``(model, tokenizer, record)``, the model in eval mode."""
    path = shipped_checkpoint_path(name)
    if not path.is_file():
        raise CheckpointError(f"the shipped checkpoint {path} is missing: reinstall the package (pip install -e .)")
    model, tokenizer, _ = load_checkpoint(path, device=device)
    return model, tokenizer, shipped_record(name)


__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "tokenizer_state", "tokenizer_from_state", "save_checkpoint", "read_checkpoint", "load_checkpoint_into",
           "load_checkpoint", "SHIPPED", "shipped_checkpoint_path", "shipped_record", "load_shipped"]
