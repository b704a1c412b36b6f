"""What the grader keeps from the learner's kernel: run right after each exercise cell.

The grader inserts, after every exercise cell, a cell calling :func:`capture`. It records which of
the exercise's names the cell defined and how to rebuild, in a fresh process, the *other* globals
the exercise cell reads (``chars``, ``tok``, ``torch``, ``Head``, ...): a module by its name, a
library object by its import path, plain data (numbers, strings, containers of them, tensors) by
value. Learner-defined objects are not carried over: the re-check runs the exercise cells
themselves. The files are written to ``.lecture_utils_grade/`` in the kernel's working folder; the
grader treats them as untrusted input (the tensors are read back with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path

FOLDER = ".lecture_utils_grade"
TRUSTED_ROOTS = frozenset(sys.stdlib_module_names) | {"torch", "numpy", "lecture_utils", "matplotlib", "tqdm"}
MAX_DATA_BYTES = 16 * 2**20


def _is_data(value, depth: int = 0) -> bool:
    import torch

    if depth > 6:
        return False
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.Size)):
        return True
    if isinstance(value, torch.Tensor):
        return value.layout == torch.strided and not value.is_quantized
    if isinstance(value, (list, tuple, set, frozenset)) and type(value) in (list, tuple, set, frozenset):
        return len(value) <= 100_000 and all(_is_data(v, depth + 1) for v in value)
    if type(value) is dict:
        return len(value) <= 100_000 and all(_is_data(k, depth + 1) and _is_data(v, depth + 1) for k, v in value.items())
    return False


def _size(value) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, dict):
        return sum(_size(k) + _size(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(_size(v) for v in value) + 8 * len(value)
    return 16


def _importable(value) -> list[str] | None:
    """['module', name] or ['object', module, qualname] when a fresh process can import ``value``."""
    if isinstance(value, types.ModuleType):
        name = value.__name__
        return ["module", name] if name.split(".")[0] in TRUSTED_ROOTS else None
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and module.split(".")[0] in TRUSTED_ROOTS:
        try:
            obj = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
            if obj is value:
                return ["object", module, qualname]
        except Exception:
            pass
    for name, mod in list(sys.modules.items()):  # an instance the course's package holds, e.g. addition.TOKENIZER
        if name.startswith("lecture_utils") and mod is not None:
            for attr, obj in list(vars(mod).items()):
                if obj is value and not attr.startswith("_"):
                    return ["object", name, attr]
    return None


def describe(names, namespace: dict) -> tuple[dict, dict]:
    """(descriptors, data values) for ``names`` as they are in ``namespace``."""
    import torch

    context, data = {}, {}
    for name in names:
        if name not in namespace:
            context[name] = ["missing", "not defined when the exercise cell ran"]
            continue
        value = namespace[name]
        spec = _importable(value)
        if spec is not None:
            context[name] = spec
        elif _is_data(value) and _size(value) <= MAX_DATA_BYTES:
            context[name] = ["data"]
            data[name] = value.detach().cpu().clone() if isinstance(value, torch.Tensor) else value
        else:
            context[name] = ["missing", f"a {type(value).__name__} object the grader cannot carry into a fresh process"]
    return context, data


def capture(exercise_id: str, names, context_names, namespace: dict) -> None:
    """Record exercise ``exercise_id``: which of ``names`` exist, and ``context_names``' values."""
    import torch

    folder = Path(FOLDER)
    folder.mkdir(exist_ok=True)
    context, data = describe(context_names, namespace)
    record = {"exercise": exercise_id, "defined": [n for n in names if n in namespace], "context": context}
    torch.save(data, folder / f"{exercise_id}.pt")
    (folder / f"{exercise_id}.json").write_text(json.dumps(record), encoding="utf-8")


OVER_MARK = "output-over"  # the file the output guard leaves in FOLDER once the cap is passed


class CappedStream:
    """A kernel's ``sys.stdout``/``sys.stderr`` that forwards at most a budget of characters, shared by both, then drops
    the rest and leaves the mark file ``FOLDER/OVER_MARK``.

    Counting in the kernel matters because the grader's own count (the worker's) sees only what reaches it: a kernel
    asked to print a gigabyte coalesces the writes into one gigabyte message, which under the sandbox's memory limit
    can be lost on the way, unseen and so unnamed. Learner code can still reach the stream underneath
    (``unguarded``); the grader's count stays behind this one for that."""

    def __init__(self, unguarded, budget: dict, mark: Path):
        self.unguarded, self._budget, self._mark = unguarded, budget, mark

    def write(self, text):
        n = len(text)
        left = self._budget["left"]
        if n > left:
            if not self._budget["over"]:
                self._budget["over"] = True
                try:
                    self._mark.parent.mkdir(exist_ok=True)
                    self._mark.touch()
                except OSError:
                    pass  # the worker's own count still names it if the output reaches it
            text = text[:max(left, 0)]
        self._budget["left"] = left - len(text)
        if text:
            self.unguarded.write(text)
        return n

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):  # flush, isatty, fileno, encoding, ...: the stream's own
        return getattr(self.unguarded, name)


def guard_output(cap: int) -> None:
    """Cap what the kernel prints at ``cap`` characters (stdout and stderr together): the grader's first cell."""
    budget = {"left": cap, "over": False}
    mark = Path.cwd() / FOLDER / OVER_MARK  # absolute: the learner's code may change the working folder
    sys.stdout = CappedStream(sys.stdout, budget, mark)
    sys.stderr = CappedStream(sys.stderr, budget, mark)


def guard_cell_source(cap: int) -> str:
    """The code cell the grader inserts first: :func:`guard_output` with the grader's cap."""
    return f"__import__('lecture_utils.grading.capture', fromlist=['guard_output']).guard_output({int(cap)})"


def cell_source(exercise_id: str, names, context_names) -> str:
    """The code cell the grader inserts after exercise ``exercise_id``."""
    return (f"__import__('lecture_utils.grading.capture', fromlist=['capture']).capture("
            f"{exercise_id!r}, {tuple(names)!r}, {tuple(context_names)!r}, globals())")
