"""The grader's re-checker: every exercise checked again in a fresh interpreter (``python -m
lecture_utils.grading.recheck JOB_DIR``, the job as JSON on stdin).

Nothing from the learner's kernel reaches this process but data: for each exercise it gets the
exercise cell's source (and the sources of the earlier exercise cells it uses), taken from the
notebook file by the grader, and the context the cell reads, as rebuilt by
:mod:`lecture_utils.grading.capture` (modules and library objects re-imported by name, plain data
read with ``torch.load(weights_only=True)``). So a monkeypatch, a redefined ``check``, a forged
outcome or an early exit anywhere else in the notebook has no effect here.

The exercise cell itself runs here, and its functions run inside the check. Before running it the
re-checker takes a fingerprint of ``builtins``, ``torch`` (its main modules and classes) and every
``lecture_utils`` module, and compares after the check: an exercise whose code replaced any of
them fails, and the remaining exercises are re-checked in a new process. A check's outcome is read
from what the check itself reported to this process, not from ``RESULTS``.

The fingerprint also follows every function of ``lecture_utils`` reachable from its modules and
the exercise registry (closures, ``__wrapped__``, defaults): changing a check in place - its code
object, defaults or closure cells, or a registry entry - is tampering too, not only replacing it.

Each outcome is one JSON line, tagged with the job's token, on the process's original stdout; the
code under test writes to /dev/null.
"""

from __future__ import annotations

import builtins
import importlib
import json
import os
import sys
import types
from pathlib import Path

from lecture_utils.status import CHECK_STATUSES, FAILED, NOT_VERIFIED

TAINTED_EXIT = 3
_TORCH_MODULES = ("torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.testing", "torch.linalg",
                  "torch.autograd", "torch.nn.modules.module", "math", "builtins", "copy", "random", "statistics",
                  "time", "functools", "inspect", "signal", "traceback", "numpy")


def _ident(value) -> tuple:
    """(identity, its code's identity, what it wraps, whether torch's own code wraps it).

    The code, because a function can be changed in place through ``__code__``; the wrapper, because
    torch rebinds a few functions itself on a lazy import (``torch._dynamo`` wraps ``torch.manual_seed``)."""
    func = value.__func__ if isinstance(value, (types.MethodType, classmethod, staticmethod)) else value
    code = func.__code__ if isinstance(func, types.FunctionType) else None
    wrapped = getattr(func, "__wrapped__", None) if isinstance(func, types.FunctionType) else None
    by_torch = code is not None and _TORCH_DIR is not None and code.co_filename.startswith(_TORCH_DIR)
    return id(value), id(code) if code is not None else 0, id(wrapped) if wrapped is not None else 0, by_torch


def _torch_dir() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("torch")
    return str(Path(spec.origin).parent) + os.sep if spec and spec.origin else None


_TORCH_DIR = _torch_dir()


def _watched_modules() -> list[types.ModuleType]:
    mods = [sys.modules[n] for n in _TORCH_MODULES if n in sys.modules]
    mods += [m for n, m in sorted(sys.modules.items()) if n.startswith("lecture_utils") and isinstance(m, types.ModuleType)]
    return mods


def _watched_classes(mods) -> list[type]:
    import torch

    classes = {torch.Tensor, torch.nn.Module, torch.nn.Parameter, torch.Generator, torch.nn.Linear,
               torch.nn.Embedding, torch.nn.LayerNorm, torch.nn.Dropout, torch.nn.Sequential, torch.nn.ModuleList,
               torch.nn.ModuleDict, torch.nn.ReLU, torch.nn.GELU, torch.nn.functional.__class__}
    classes |= set(torch.Tensor.__mro__)  # torch._C.TensorBase holds most methods
    for m in mods:
        if m.__name__.startswith("lecture_utils"):
            classes |= {v for v in vars(m).values() if isinstance(v, type) and v.__module__ == m.__name__}
    classes.discard(object)
    return sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def fingerprint() -> dict:
    """The identity of every function, class and module the checks rely on."""
    prints: dict = {}
    mods = _watched_modules()
    for m in mods:
        strict = m.__name__.startswith("lecture_utils.checks")  # constants too (e.g. TIME_LIMIT)
        for k, v in list(vars(m).items()):
            if strict or callable(v) or isinstance(v, types.ModuleType):
                prints[(m.__name__, k)] = _ident(v)
        prints[("sys.modules", m.__name__)] = id(sys.modules.get(m.__name__))
    for c in _watched_classes(mods):
        for k, v in list(vars(c).items()):
            prints[(f"{c.__module__}.{c.__qualname__}", k)] = _ident(v)
    _deep_prints(mods, prints)
    prints[("sys", "settrace")] = id(sys.gettrace())
    prints[("sys", "setprofile")] = id(sys.getprofile())
    prints[("sys", "meta_path")] = repr(tuple(map(id, sys.meta_path)))
    return prints


_NAMES: dict[int, str] = {}  # id of a function in the deep fingerprint -> its name, for the message


def _cell(cell):
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def _deep_prints(mods, prints: dict) -> None:
    """Every Python function of ``lecture_utils`` reachable from its modules, classes and the
    exercise registry - through closures, ``__wrapped__`` and defaults - with the identity of its
    code (and a hash of the bytecode), of its defaults and keyword defaults and of every closure
    cell's content. So changing a check in place (``f.__code__ = ...``, ``f.__defaults__ = ...``,
    ``f.__closure__[i].cell_contents = ...``, a registry entry's ``check``), not only replacing it
    in its module, is seen; the check's inner functions (the decorators' wrappers around its body)
    are covered, not only the names a module binds."""
    from lecture_utils.checks._core import REGISTRY

    stack: list = []
    for m in mods:
        if m.__name__.startswith("lecture_utils"):
            stack += list(vars(m).values())
            for v in list(vars(m).values()):
                if isinstance(v, type) and v.__module__ == m.__name__:
                    stack += list(vars(v).values())
    from lecture_utils.checks._parts import PARTS

    for ex_id, parts in sorted(PARTS.items()):  # the probes partial credit runs, and the registry holding them
        prints[("lecture_utils.checks.PARTS", ex_id)] = tuple((id(p), id(p.probe), p.name) for p in parts)
        stack += [p.probe for p in parts]
    for ex_id, entry in sorted(REGISTRY.items()):
        prints[("lecture_utils.checks.REGISTRY", ex_id)] = (
            id(entry), id(getattr(entry, "check", None)), id(getattr(entry, "reference", None)),
            repr(getattr(entry, "names", None)), getattr(entry, "chapter", None))
        stack += [getattr(entry, "check", None), getattr(entry, "reference", None)]
    seen: set[int] = set()
    while stack:
        obj = stack.pop()
        if isinstance(obj, (types.MethodType, classmethod, staticmethod)):
            obj = obj.__func__
        elif isinstance(obj, property):
            stack += [obj.fget, obj.fset, obj.fdel]
            continue
        if not isinstance(obj, types.FunctionType) or id(obj) in seen:
            continue
        if not str(getattr(obj, "__module__", "") or "").startswith("lecture_utils"):
            continue
        seen.add(id(obj))
        code, defaults, kwdefaults = obj.__code__, obj.__defaults__ or (), obj.__kwdefaults__ or {}
        contents = [_cell(c) for c in obj.__closure__ or ()]
        wrapped = vars(obj).get("__wrapped__")
        prints[("function", id(obj))] = (
            id(code), hash(code.co_code), id(obj.__defaults__), tuple(map(id, defaults)), id(obj.__kwdefaults__),
            tuple(sorted((k, id(v)) for k, v in kwdefaults.items())), tuple(map(id, contents)), id(wrapped),
            id(obj.__globals__))
        _NAMES[id(obj)] = f"{obj.__module__}.{obj.__qualname__}"
        stack += contents + list(defaults) + list(kwdefaults.values()) + [wrapped]


def tampered(before: dict, after: dict) -> list[str]:
    """Names whose object was replaced or removed (additions, such as lazily imported submodules, are fine)."""
    out = []
    for key, value in before.items():
        now = after.get(key)
        if now == value:
            continue
        if isinstance(now, tuple) and len(now) == 4 and now[3] and now[2] == value[0]:
            continue  # torch's own code wrapped the original (a lazy import's decorator)
        where, name = key
        if where == "function":  # changed in place: its code, defaults or closure
            out.append(f"{_NAMES.get(name, 'a function of lecture_utils')} (its code, defaults or closure)")
        else:
            out.append(f"{where}.{name}")
    for key in after.keys() - before.keys():
        if key[1] in ("__getattr__", "__getattribute__", "__setattr__", "__call__", "__eq__"):
            out.append(f"{key[0]}.{key[1]}")
    return sorted(out)


def _resolve(spec: list, data: dict, name: str):
    kind = spec[0]
    if kind == "module":
        mod = spec[1]
        if not isinstance(mod, str) or mod.split(".")[0] not in _trusted_roots():
            raise LookupError(f"module {mod!r} is not one the grader imports")
        return importlib.import_module(mod)
    if kind == "object":
        mod, qualname = spec[1], spec[2]
        if not (isinstance(mod, str) and isinstance(qualname, str)) or mod.split(".")[0] not in _trusted_roots():
            raise LookupError(f"{mod!r} is not a module the grader imports")
        obj = importlib.import_module(mod)
        for part in qualname.split("."):
            if part.startswith("__"):
                raise LookupError(f"{qualname!r} is not a plain attribute path")
            obj = getattr(obj, part)
        return obj
    if kind == "data":
        if name not in data:
            raise LookupError("its value is missing")
        return data[name]
    raise LookupError(str(spec[1]) if len(spec) > 1 else "unknown")


def _trusted_roots():
    from lecture_utils.grading.capture import TRUSTED_ROOTS

    return TRUSTED_ROOTS


def _is_magic_error(exc: SyntaxError) -> bool:
    line = (exc.text or "").lstrip()
    return line.startswith(("%", "!"))


def recheck(ex: dict, job_dir: Path, outcomes: list, registry, parts: list | None = None) -> tuple[str, str]:
    """(status, message) for one exercise. ``parts`` (partial credit on): a list that receives the outcome of each
    part the exercise declares (:func:`lecture_utils.checks._parts.run_parts`) when its check fails on the
    learner's objects; it stays empty otherwise."""
    import torch

    from lecture_utils.checks import _core

    entry = registry.get(ex["id"])
    if entry is None:
        return NOT_VERIFIED, "this course has no such exercise"
    data = {}
    if ex.get("data_file"):
        try:
            data = torch.load(job_dir / ex["data_file"], weights_only=True, map_location="cpu")
        except Exception as exc:
            return NOT_VERIFIED, f"the values the exercise cell reads could not be read back ({type(exc).__name__})"
        if not isinstance(data, dict):
            data = {}
    ns: dict = {"__name__": "__main__", "__builtins__": builtins}
    unavailable: dict[str, str] = {}
    for name, spec in ex.get("context", {}).items():
        if not (isinstance(name, str) and name.isidentifier() and isinstance(spec, list) and spec):
            continue
        try:
            ns[name] = _resolve(spec, data, name)
        except Exception as exc:
            unavailable[name] = str(exc) if isinstance(exc, LookupError) else f"{type(exc).__name__}: {exc}"

    def unavailable_used(message: str) -> tuple[str, str] | None:
        for name, why in unavailable.items():
            if f"name '{name}' is not defined" in message:
                return NOT_VERIFIED, (f"the exercise cell uses {name!r} ({why}); the grader re-runs exercise cells on "
                                      "their own, so define what an exercise needs inside its cell")
        return None

    for cell in ex["cells"]:
        try:
            code = compile(cell["source"], f"<exercise {cell['id']}>", "exec")
        except SyntaxError as exc:
            if _is_magic_error(exc):
                return NOT_VERIFIED, (f"exercise cell {cell['id']} is not plain Python (line {exc.lineno}: an IPython "
                                      "magic); the grader re-runs exercise cells outside Jupyter: move magics to another cell")
            return FAILED, f"exercise cell {cell['id']} has a syntax error (line {exc.lineno}): {exc.msg}"
        try:
            with _core.time_limit(_core.TIME_LIMIT):
                exec(code, ns)
        except BaseException as exc:
            message = f"running exercise cell {cell['id']} raised {type(exc).__name__}: {exc}"
            return unavailable_used(message) or (FAILED, message)
    missing = [n for n in entry.names if n not in ns]
    if missing:
        return NOT_VERIFIED, "the exercise cell does not define " + ", ".join(missing)
    for n in entry.names:
        module = getattr(ns[n], "__module__", "__main__")
        if module != "__main__":
            return FAILED, (f"{n} is {module}.{getattr(ns[n], '__qualname__', n)}, not code written in the exercise "
                            "cell: write your own")
    outcomes.clear()
    try:
        entry.check(*[ns[n] for n in entry.names])
    except _core.CheckFailed as exc:
        unavailable = unavailable_used(exc.hint)
        if unavailable:
            return unavailable
        if parts is not None:
            from lecture_utils.checks._parts import run_parts

            parts[:] = run_parts(ex["id"], tuple(ns[n] for n in entry.names), check_hint=exc.hint)
        return FAILED, exc.hint
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        return unavailable_used(message) or (FAILED, message)
    mine = [o for o in outcomes if o[0] == ex["id"]]
    if not mine:
        return NOT_VERIFIED, "the check reported no outcome"
    _, status, message = mine[-1]
    if status not in CHECK_STATUSES:
        return NOT_VERIFIED, "the check reported no outcome"
    return status, message


def main(argv: list[str]) -> int:
    job_dir = Path(argv[0])
    job = json.loads(sys.stdin.read())
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    if not os.environ.get("LECTURE_UTILS_GRADE_DEBUG"):
        os.dup2(devnull, 2)
    token = job["token"]

    def emit(record: dict) -> None:
        out.write(json.dumps(dict(record, token=token)) + "\n")
        out.flush()

    if job.get("sandboxed"):
        from lecture_utils.grading.sandbox import Limits, set_limits

        set_limits(Limits(**job["limits"]), nproc=True)
    import torch

    torch.set_num_threads(int(os.environ.get("LECTURE_UTILS_GRADE_THREADS", "1")))
    import lecture_utils.checks  # noqa: F401 - every check module, before the fingerprint
    from lecture_utils.checks import REGISTRY, _core

    outcomes: list = []
    report = _core._record

    def observe(exercise_id, title, status, message):
        outcomes.append((exercise_id, status, message))
        report(exercise_id, title, status, message)

    _core._record = observe
    before = fingerprint()
    emit({"event": "ready"})
    for ex in job["exercises"]:
        emit({"event": "start", "id": ex["id"]})
        parts: list | None = [] if job.get("parts") else None
        status, message = recheck(ex, job_dir, outcomes, REGISTRY, parts)
        changed = tampered(before, fingerprint())
        if changed:
            shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
            emit({"event": "result", "id": ex["id"], "status": FAILED,
                  "message": f"the exercise's code replaced {shown}: changing the libraries or the checks cannot pass"})
            out.flush()
            os._exit(TAINTED_EXIT)
        emit({"event": "result", "id": ex["id"], "status": status, "message": message, "parts": parts or []})
    emit({"event": "done"})
    out.flush()
    os._exit(0)  # no atexit handler or finaliser the learner's code registered runs after this


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
