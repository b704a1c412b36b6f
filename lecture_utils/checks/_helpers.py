"""Tools shared by the checks of chapters 02-08.

- :func:`isolated_rng`: a check body runs with the global random state saved, seeded afresh and
  restored, so building modules and dropout inside a check neither disturb nor depend on the
  notebook's random numbers;
- :func:`build`: create the learner's module, failing clearly on a wrong signature;
- :func:`call`: run learner code and turn a known crash (matched by its message) into a hint;
- :func:`copy_weights`: check parameter names and shapes against the reference, then copy the
  reference's weights in, so both compute the same function when the code is right;
- :func:`randomize_`, :func:`same`, :func:`diagnose`, :func:`leaks_future`: random weights from a
  local generator, NaN-aware comparison, matching an output against known wrong variants, and the
  causality test of every attention check.
"""

from __future__ import annotations

import ast
import dis
import functools
import inspect
import textwrap
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lecture_utils.checks._core import CheckTimeout, _Mistake, fail, fail_generic, fresh_seed

# sizes and tensors a notebook defines at its top level (B, T, C = 4, 8, 32; head_size = 16; tril = ...): a
# learner's class or function that reads one of them instead of its own arguments is right only by accident
NOTEBOOK_SIZE_NAMES = frozenset({
    "B", "T", "C", "head_size", "n_embd", "n_head", "num_heads", "n_layer", "block_size", "vocab_size",
    "batch_size", "dropout", "tril", "wei", "config", "T_show", "T_big", "eval_iters",
})

# crashes whose cause is clear from the message alone, whatever the exercise
COMMON_HINTS: tuple[tuple[str, str], ...] = (
    ("before Module.__init__() call", "call super().__init__() first thing in __init__"),
)


def isolated_rng(body: Callable) -> Callable:
    """Decorator (under ``@exercise``) running a check body with the global random state forked:
    it is seeded afresh inside and restored afterwards."""

    @functools.wraps(body)
    def run(*args, **kwargs):
        device = torch.device(kwargs.get("device", "cpu"))
        cuda = []
        if device.type == "cuda":
            cuda = [device.index if device.index is not None else torch.cuda.current_device()]
        with torch.random.fork_rng(devices=cuda):
            torch.default_generator.manual_seed(fresh_seed())
            if cuda:
                torch.cuda.manual_seed(fresh_seed())
            return body(*args, **kwargs)

    return run


def call(fn: Callable, *args, hints: Sequence[tuple[str, str]] = (), **kwargs) -> Any:
    """``fn(*args, **kwargs)``; if it raises an error whose text contains a pattern of ``hints``
    (or of :data:`COMMON_HINTS`), fail with that hint and the error's first line. Other errors,
    ``NotImplementedError`` (the untouched stub) and the time limit pass through."""
    try:
        return fn(*args, **kwargs)
    except (NotImplementedError, CheckTimeout, _Mistake):
        raise
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        for pattern, hint in (*hints, *COMMON_HINTS):
            if pattern in text:
                fail(f"{hint} (your code raised {text.splitlines()[0][:300]})")
        raise


def _learner_functions(obj: Any) -> list[types.FunctionType]:
    """The plain functions behind ``obj``: itself, or the methods its class (and its bases outside torch and
    this package) define, properties included. A decorated function (``@torch.no_grad()``) is unwrapped to the
    learner's own."""
    if callable(obj) and not inspect.isclass(obj):
        obj = inspect.unwrap(obj)
    if isinstance(obj, types.FunctionType):
        return [obj]
    if isinstance(obj, functools.partial):
        return _learner_functions(obj.func)
    if not inspect.isclass(obj):
        return []
    out = []
    for klass in obj.__mro__:
        if klass.__module__.split(".")[0] in ("torch", "lecture_utils", "builtins"):
            continue
        for value in vars(klass).values():
            value = getattr(value, "__func__", value)  # staticmethod / classmethod
            value = getattr(value, "fget", value)  # property
            if isinstance(value, types.FunctionType):
                out.append(value)
    return out


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def notebook_globals_read(obj: Any, names: Iterable[str] = NOTEBOOK_SIZE_NAMES) -> dict[str, Any]:
    """The module-level (notebook) variables among ``names`` that ``obj``'s code reads, with their values.

    Only true global reads count (``LOAD_GLOBAL``/``LOAD_NAME``): a parameter or a local of the same name, or an
    attribute such as ``self.tril``, is not one."""
    names = set(names)
    found: dict[str, Any] = {}
    for fn in _learner_functions(obj):
        space = getattr(fn, "__globals__", {})
        for code in _code_objects(fn.__code__):
            for ins in dis.get_instructions(code):
                if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and ins.argval in names and ins.argval in space:
                    found[ins.argval] = space[ins.argval]
    return found


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= 40 else type(value).__name__


def blame_notebook_globals(body: Callable) -> Callable:
    """Decorator (under ``@exercise``): when the check fails and the learner's code reads a notebook-level size
    (``head_size``, ``T``, ``tril``, ... see :data:`NOTEBOOK_SIZE_NAMES`), say so - the checks build the learner's
    classes with sizes that differ from every global the notebook defines, so that is the likely cause."""

    @functools.wraps(body)
    def run(*args, **kwargs):
        try:
            return body(*args, **kwargs)
        except (NotImplementedError, CheckTimeout):
            raise
        except Exception:
            used: dict[str, Any] = {}
            for obj in args:
                used.update(notebook_globals_read(obj))
            if not used:
                raise
            listing = ", ".join(f"{name} (= {_describe(value)})" for name, value in sorted(used.items()))
            fail(f"your code reads the notebook's global variable{'s' if len(used) > 1 else ''} {listing} instead of "
                 f"its own arguments; the check uses other sizes than the notebook, so the result is wrong. Use the "
                 f"arguments given to __init__ (stored on self, e.g. self.head_size), the input's shape "
                 f"(B, T, C = x.shape), and a mask registered in __init__ (self.register_buffer('tril', ...))")

    return run


def unassigned_calls(obj: Any, method: str) -> bool:
    """True when ``obj``'s source has a statement that calls ``<something>.method(...)`` and drops the result
    (``wei.masked_fill(mask, 0)`` on a line of its own: masked_fill returns a new tensor)."""
    for fn in _learner_functions(obj):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Attribute) and node.value.func.attr == method):
                return True
    return False


def plain_tensor_attributes(module: nn.Module) -> list[str]:
    """Names of tensors kept as plain attributes (``self.tril = torch.tril(...)``), neither parameters nor buffers:
    ``module.to(device)`` does not move them and ``state_dict`` does not save them."""
    return [f"{prefix}.{name}".lstrip(".") for prefix, sub in module.named_modules()
            for name, value in vars(sub).items()
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter)]


def build(cls: Any, args: tuple, signature: str, hints: Sequence[tuple[str, str]] = ()) -> nn.Module:
    """Instantiate the learner's class as ``cls(*args)``.

    Args:
        signature: the expected parameters in words, e.g. ``"n_embd, head_size, block_size, dropout"``.
    """
    name = getattr(cls, "__name__", "the class")
    if not inspect.isclass(cls):
        fail(f"{name} should be a class (class {name}(nn.Module): ...), got {type(cls).__name__}")
    try:
        inspect.signature(cls).bind(*args)
    except TypeError:
        fail(f"{name} should be created as {name}({signature}); check the parameters of __init__")
    except ValueError:  # no signature to inspect
        pass
    module = call(cls, *args, hints=hints)
    if not isinstance(module, nn.Module):
        fail(f"{name} should subclass nn.Module (class {name}(nn.Module): ...)")
    plain = plain_tensor_attributes(module)
    if plain:
        attr = plain[0].split(".")[-1]
        if attr in ("weight", "bias") or attr.endswith(("_weight", "_bias")):
            fail(f"{name} keeps self.{plain[0]} as a plain tensor, not a parameter: nothing would learn it; wrap it, "
                 f"self.{attr} = nn.Parameter(...)")
        fail(f"{name} keeps {', '.join('self.' + p for p in plain)} as a plain tensor attribute: model.to(device) "
             f"does not move it (the model breaks on a GPU) and state_dict does not save it; register it in "
             f"__init__, self.register_buffer('{attr}', ...)")
    return module


def _shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in module.named_parameters()}


def _listing(shapes: dict[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{n} {s}" for n, s in shapes.items()) or "none"


def expect_parameters(
    learner: nn.Module,
    reference: nn.Module,
    what: str,
    shape_hint: Callable[[str, tuple, tuple], str | None] | None = None,
) -> None:
    """Fail unless ``learner`` has exactly the reference's parameters (names and shapes).

    Buffers (e.g. a ``tril`` mask) are not compared. ``shape_hint(name, got, want)`` may return a
    tailored message for a wrong shape.
    """
    want, got = _shapes(reference), _shapes(learner)
    missing = [n for n in want if n not in got]
    unexpected = [n for n in got if n not in want]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected " + ", ".join(unexpected))
        fail(f"{what}'s parameters are not the lecture's ({'; '.join(parts)}). Expected exactly: "
             f"{_listing(want)} - use these attribute names so the reference weights can be loaded")
    for n, shape in want.items():
        if got[n] != shape:
            hint = shape_hint(n, got[n], shape) if shape_hint else None
            fail(hint or f"{what}.{n} has shape {got[n]}, expected {shape}")


@torch.no_grad()
def copy_weights(reference: nn.Module, learner: nn.Module, what: str,
                 shape_hint: Callable[[str, tuple, tuple], str | None] | None = None) -> None:
    """Check names and shapes (:func:`expect_parameters`), then copy the reference's parameters
    into the learner's module."""
    expect_parameters(learner, reference, what, shape_hint)
    mine = dict(learner.named_parameters())
    for n, p in reference.named_parameters():
        mine[n].copy_(p)


@torch.no_grad()
def randomize_(module: nn.Module, g: torch.Generator, std: float = 0.5) -> nn.Module:
    """Fill every parameter with ``N(0, std)`` noise from the local generator ``g``: the default
    initialisation gives near-uniform attention, where different mistakes look alike."""
    for p in module.parameters():
        p.copy_(torch.randn(p.shape, generator=g).to(p.device) * std)
    return module


def same(a: Any, b: Any, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Same shape and values (NaN matches NaN), compared on the CPU whatever devices they are on."""
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.shape != b.shape:
        return False
    return torch.allclose(a.detach().float().cpu(), b.detach().float().cpu(), atol=atol, rtol=rtol, equal_nan=True)


def diagnose(out: torch.Tensor, variants: Iterable[tuple[str, Callable[[], torch.Tensor]]]) -> None:
    """Fail with the hint of the first known wrong variant that ``out`` matches."""
    for hint, compute in variants:
        try:
            value = compute()
        except (RuntimeError, ValueError, IndexError):  # this variant does not apply to the shape
            continue
        if same(out, value):
            fail(hint)


@torch.no_grad()
def leaks_future(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, g: torch.Generator) -> bool:
    """True when changing the inputs after position t changes an output at a position <= t."""
    T = x.shape[1]
    base = fn(x)
    for t in sorted({0, T // 2}):
        if t + 1 >= T:
            continue
        x2 = x.clone()
        x2[:, t + 1:] = torch.randn(x2[:, t + 1:].shape, generator=g).to(x.device)
        if not torch.allclose(fn(x2)[:, : t + 1], base[:, : t + 1], atol=1e-5, rtol=1e-4):
            return True
    return False


def tensor_output(value: Any, what: str, shape: tuple[int, ...] | None = None, hint: str = "") -> torch.Tensor:
    """Fail unless ``value`` is a tensor (of ``shape`` when given)."""
    if not isinstance(value, torch.Tensor):
        fail(f"{what} should return a torch.Tensor, but it returned {type(value).__name__}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        fail(f"{what} returned shape {tuple(value.shape)}, expected {tuple(shape)}" + (f": {hint}" if hint else ""))
    return value


def attention_variant(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, *, causal: bool = True,
                      softmax_dim: int = -1, swap: bool = False) -> torch.Tensor:
    """Attention over the last two dimensions (``(..., T, hs)``), with the usual mistakes as switches:
    ``swap`` computes ``k @ q^T``, ``softmax_dim`` picks the softmax dimension, ``causal`` the mask."""
    wei = (k @ q.transpose(-2, -1) if swap else q @ k.transpose(-2, -1)) * scale
    if causal:
        T = wei.shape[-1]
        keep = torch.ones(T, T, dtype=torch.bool, device=wei.device).tril()
        wei = wei.masked_fill(~keep, float("-inf"))
    return F.softmax(wei, dim=softmax_dim) @ v


EVAL_DROPOUT = ("in eval mode the output changed between two calls: dropout must be off in eval mode - use an "
                "nn.Dropout submodule (it follows model.eval()), or F.dropout(..., training=self.training)")


FUTURE = ("the mask lets a token see the future: the output at position t changed when only later tokens changed. "
          "Mask the affinities with the lower-triangular matrix before the softmax, "
          "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))")


def explain_mismatch(out: torch.Tensor, variants, model: Callable, x: torch.Tensor, g: torch.Generator,
                     hint: str) -> None:
    """An attention module's output differs from the reference: fail with the first known wrong
    variant it matches, else with :data:`FUTURE` if it leaks the future, else with ``hint``."""
    diagnose(out, variants)
    if leaks_future(model, x, g):
        fail(FUTURE)
    fail_generic(hint)


@torch.no_grad()
def check_dropout(module: nn.Module, x: torch.Tensor, want_eval: torch.Tensor, train_hint: str) -> None:
    """``module`` was built with dropout=0.5: in eval mode it must be deterministic and equal
    ``want_eval`` (the output without dropout); in training mode two calls must differ."""
    module.eval()
    a, b = module(x), module(x)
    if not torch.equal(a, b):
        fail(EVAL_DROPOUT)
    if not same(a, want_eval):
        fail("with dropout=0.5 in eval mode the output should equal the output without dropout: dropout only acts "
             "in training mode")
    module.train()
    if torch.equal(module(x), module(x)):
        fail(train_hint)
