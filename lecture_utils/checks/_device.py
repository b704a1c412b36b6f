"""Running the learner's code on a second device, so that code which passes on the CPU also runs on a GPU or a Mac.

Most learners run the course on a Colab GPU or on Apple's MPS, where the commonest PyTorch slip, a tensor created
without ``device=`` (``torch.arange(T)``, ``torch.tril(torch.ones(T, T))`` in ``forward``), stops training two cells
later with "Expected all tensors to be on the same device". On the CPU nothing shows it. So, after a check has
compared the learner's code with the reference on the CPU, it runs the same code once more on a second device
(:func:`second_device`): the notebook's accelerator where there is one (cuda or mps), else PyTorch's ``meta``
device, which has no values but does keep track of where every tensor lives, on any machine.

While that second run goes on, :class:`DeviceWatch` (a ``TorchFunctionMode``: it sees every torch call the learner's
code makes) does three things:

- it **remembers where each CPU tensor was made**: the torch call and the learner's own line (``torch.arange`` on
  ``line 14, in forward: pos = self.pos(torch.arange(T))``); a tensor computed from such a tensor inherits it;
- it **stops at the first call that mixes** a tensor on the second device with a CPU tensor that a GPU would refuse
  (any CPU tensor with a dimension: PyTorch accepts only 0-dim CPU tensors beside GPU tensors; indices of ``x[i]``
  excepted, as on a GPU), or that samples with a CPU ``torch.Generator`` on the second device - meta alone would let
  some of these through (an ``nn.Embedding`` on meta accepts CPU ids), a GPU would not;
- on ``meta`` it **stands in for what a value-less device cannot do** and a GPU can: ``.item()``, ``.tolist()``,
  ``float(t)`` return zeros, a copy to the CPU (``.cpu()``) gives a CPU tensor of ones, writing a meta value into a CPU
  tensor is skipped. Anything else meta cannot run ends the second run without a verdict (the CPU run has passed).

:func:`run_on_second_device` turns a mix into a diagnosis (:data:`DEVICE_HINT`-style: what was made where, the
learner's line, the fix), and :func:`expect_on_device` does the same for a result or a parameter left on the CPU.

Which exercise uses what (the device slips each is tested with live in tests/wrong_solutions/):

============  ====================================================================================================
1.2, 1.3      the function on a meta (or cuda/mps) data tensor; the results must stay on the data's device
2.1, 3.4, 8.1 the model's forward (with and without targets) on the second device
2.2           generate on the second device, with and without a CPU generator; the result on the context's device
2.3, 2.4      the model on the second device, the splits on the CPU (as in the notebooks); the functions' batches
              must follow the model (``.item()`` stood in for on meta; the optimizer steps on meta)
3.1-3.3       the averages of an input on the second device; the result on the input's device
4.1, 4.2,     each module's forward (training mode, dropout on) on the second device; the output stays there
5.1-7.2
9.1, 11.2,    the returned module's parameters on the device of the module given
12.5
10.3          accuracy of a model on the second device
12.1-12.4     the function or module on inputs on the second device
13.1-13.5     the sampling rules on logits, the cached attention and the cached generate on the second device
============  ====================================================================================================

Exercises 1.1, 4.3, 9.2, 10.1, 10.2, 11.1 and 12.6 make no tensor on a device (strings, lists, CPU batches by their
specification, timings, a number drawn on the CPU), so they have no second run.
"""

from __future__ import annotations

import contextlib
import copy
import linecache
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from lecture_utils.checks._core import CheckTimeout, _is_learner_frame, _Mistake, fail
from lecture_utils.checks._helpers import _learner_functions

# torch calls that make a new tensor from sizes or Python values: a tensor they make on the CPU inside code that
# runs on another device is the usual culprit
FACTORIES = frozenset({
    "arange", "ones", "zeros", "full", "empty", "eye", "rand", "randn", "randint", "randperm", "linspace", "logspace",
    "tensor", "as_tensor", "from_numpy", "ones_like", "zeros_like", "full_like", "empty_like", "rand_like",
    "randn_like", "tril_indices", "triu_indices", "multinomial",
})
# calls whose tensor arguments may sit on different devices on a GPU too: moves and copies, and indexing (a CPU
# index tensor is accepted for a GPU tensor)
_MIXING_ALLOWED = frozenset({"to", "cpu", "cuda", "copy_", "type_as", "new_tensor", "__getitem__", "__setitem__",
                             "index_select", "equal", "__repr__", "__format__", "__str__"})
_SCALAR_READS = frozenset({"item", "tolist", "__float__", "__int__", "__bool__", "__index__", "numpy", "__len__"})


class DeviceSlip(Exception):
    """Raised inside the second run at the first call a GPU would refuse; its text is the diagnosis."""


def second_device(device: str | torch.device | None = None) -> torch.device:
    """The device a check runs the learner's code on after the CPU: ``device`` when it is an accelerator, else the
    notebook's own device (:func:`lecture_utils.device.pick_device`, which follows ``$LECTURE_UTILS_DEVICE``) when
    that is cuda or mps, else ``meta``."""
    if device is not None and torch.device(device).type in ("cuda", "mps"):
        return torch.device(device)
    from lecture_utils.device import pick_device

    try:
        picked = pick_device()
    except ValueError:  # an unavailable device asked for in the environment: the notebook's first cell says so
        picked = torch.device("cpu")
    return picked if picked.type in ("cuda", "mps") else torch.device("meta")


def device_name(device: torch.device) -> str:
    """How a diagnosis names the second device."""
    if device.type == "meta":
        return "the 'meta' device (the check's stand-in for a GPU on a machine without one)"
    return device.type


def _learner_line() -> tuple[str, bool]:
    """('line 14, in forward: pos = ...', direct) for the innermost frame of the learner's code on the current stack;
    ``direct`` is False when the torch call was made by a library function the learner called (data.get_batch)."""
    frame = sys._getframe(2)
    direct = None
    while frame is not None:
        code = frame.f_code
        inside_torch = f"{os.sep}torch{os.sep}" in code.co_filename
        if _is_learner_frame(code.co_filename):
            text = linecache.getline(code.co_filename, frame.f_lineno).strip()
            return f"line {frame.f_lineno}, in {code.co_name}" + (f": {text}" if text else ""), direct is not False
        if not inside_torch and direct is None and not code.co_filename.endswith("_device.py"):
            direct = False
        frame = frame.f_back
    return "", True


def _name(func: Callable) -> str:
    return getattr(func, "__name__", None) or str(func)


_OPERATORS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "true_divide": "/", "matmul": "@", "pow": "**",
              "eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">="}


def _shown(func: Callable) -> str:
    """``torch.arange``, ``.cpu()`` or ``the `@``` : a call as the learner wrote it."""
    name = _name(func)
    if (getattr(func, "__qualname__", "") or "").startswith(("TensorBase.", "Tensor.")):
        op = _OPERATORS.get(name.strip("_").removeprefix("r").removeprefix("i")) or _OPERATORS.get(name.strip("_"))
        return f"the `{op}`" if op else f".{name}()"
    module = getattr(func, "__module__", "") or ""
    prefix = "F." if module.endswith("functional") else "torch."
    return f"{prefix}{name}"


def _device_of(what_input: str) -> str:
    """The expression for the device the learner's code should use: ``x.device``, or the model's."""
    return "next(model.parameters()).device" if what_input == "model" else f"{what_input}.device"


def _fix(shown: str, what_input: str, line: str = "") -> str:
    """The fix for a CPU tensor made by ``shown`` (``torch.arange``, ``.cpu()``) on the learner's ``line``."""
    name = shown.strip(".()").split(".")[-1]
    device = _device_of(what_input)
    if name in ("cpu", "to", "numpy", "tolist"):
        return f"keep the tensor on the input's device, or move it back with .to({device})"
    fix = f"create it where the input is: {shown}(..., device={device})"
    if name in ("ones", "tril") and ", in forward" in line:
        if "tril" in line:  # a causal mask of fixed size (Head's): it can be made once instead
            fix += ("; a fixed causal mask can instead be made once in __init__ as self.register_buffer('tril', "
                    "...), which model.to(device) moves along")
        else:  # sized by this call's lengths (cross-attention's T_q x T_kv): it is built per call, so device= it is
            fix += "; a mask sized by this call's lengths is built in forward on every call, so it needs that device="
    return fix


def _generator_fix(shown: str, what_input: str) -> str:
    device = _device_of(what_input)
    if shown.endswith("multinomial"):
        return (f"sample on the CPU with the CPU generator, then move the sample back: torch.multinomial(probs.cpu(), "
                f"1, generator=generator).to({device})")
    return (f"draw them on the CPU with the CPU generator ({shown}(..., generator=generator), no device=): CPU "
            f"offsets can index a tensor on any device, or move them with .to({device})")


def _is_cpu_array(t: Any) -> bool:
    """A CPU tensor a GPU op refuses beside GPU tensors (0-dim CPU tensors are accepted as scalars)."""
    return isinstance(t, torch.Tensor) and t.device.type == "cpu" and t.dim() > 0


class DeviceWatch(TorchFunctionMode):
    """Watches every torch call while the learner's code runs on ``target`` (see the module docstring)."""

    def __init__(self, target: torch.device, what_input: str = "x"):
        super().__init__()
        self.target = target
        self.what_input = what_input
        # id -> (tensor, the call as shown, the learner's line, whether the learner made that call themselves)
        self.origins: dict[int, tuple[torch.Tensor, str, str, bool]] = {}

    # -- where CPU tensors come from ------------------------------------------------------------------------------

    def origin(self, t: torch.Tensor) -> tuple[str, str, bool] | None:
        found = self.origins.get(id(t))
        return found[1:] if found is not None and found[0] is t else None

    def _remember(self, result: Any, func: Callable, inputs: list[torch.Tensor]) -> None:
        outs = [t for t in tree_flatten(result)[0] if isinstance(t, torch.Tensor) and t.device.type == "cpu"]
        if not outs:
            return
        inherited = next((self.origin(t) for t in inputs if self.origin(t) is not None), None)
        name = _name(func)
        if inherited is None and not (name in FACTORIES or name in ("cpu", "to", "numpy") or not inputs):
            return
        shown, line, direct = inherited if inherited is not None else (_shown(func), *_learner_line())
        for t in outs:
            self.origins[id(t)] = (t, shown, line, direct)

    def describe(self, t: torch.Tensor) -> tuple[str, str]:
        """(what made the CPU tensor, the fix) for a diagnosis."""
        found = self.origin(t)
        if found is None:
            return (f"a CPU tensor of shape {tuple(t.shape)} from outside the code that ran (a notebook variable, or "
                    f"a plain attribute set in __init__?)",
                    f"create it on the input's device, or move it with .to({_device_of(self.what_input)})")
        shown, line, direct = found
        if not direct:  # made inside a function the learner called: their call is what to change
            return (f"the call on {line or 'a line of your code'} returns a tensor on the CPU",
                    f"pass the device on, e.g. device={_device_of(self.what_input)} (data.get_batch(..., device=...)), "
                    f"or move the result with .to({_device_of(self.what_input)})")
        where = f" on {line}" if line else ""
        return f"{shown}{where} makes a tensor on the CPU", _fix(shown, self.what_input, line)

    # -- the interception -----------------------------------------------------------------------------------------

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _name(func)
        flat = tree_flatten((args, kwargs))[0]
        tensors = [a for a in flat if isinstance(a, torch.Tensor)]
        asked = kwargs.get("device")
        on_target = any(t.device.type == self.target.type for t in tensors) or (
            isinstance(asked, (str, torch.device)) and torch.device(asked).type == self.target.type)
        meta = self.target.type == "meta"

        if meta and name in _SCALAR_READS and tensors and tensors[0].device.type == "meta":
            return _stand_in(name, tensors[0])
        if meta and name in ("cpu", "to") and tensors and tensors[0].device.type == "meta" and _to_cpu(name, args, kwargs):
            src = tensors[0]
            dtype = kwargs.get("dtype") or next((a for a in args[1:] if isinstance(a, torch.dtype)), src.dtype)
            out = torch.ones(src.shape, dtype=dtype)
            self.origins[id(out)] = (out, f".{name}()", *_learner_line())
            return out
        if meta and name in ("__setitem__", "copy_") and tensors and tensors[0].device.type == "cpu" and any(
                t.device.type == "meta" for t in tensors[1:]):
            return None if name == "__setitem__" else tensors[0]  # a GPU copies the value over; meta has none

        if on_target and name not in _MIXING_ALLOWED and not name.startswith("_"):
            stray = next((t for t in tensors if _is_cpu_array(t)), None)
            if stray is not None:
                made, fix = self.describe(stray)
                raise DeviceSlip(f"{made}, and {_shown(func)} then mixes it with tensors on "
                                 f"{device_name(self.target)} - on a GPU (Colab) or a Mac your code stops there with "
                                 f"'Expected all tensors to be on the same device'. Fix: {fix}")
            gen = next((a for a in flat if isinstance(a, torch.Generator) and a.device.type != self.target.type), None)
            if gen is not None and self.target.type != "cpu":
                raise DeviceSlip(f"{_shown(func)} on {_learner_line()[0] or 'your code'} draws random numbers on "
                                 f"{device_name(self.target)} with a torch.Generator made on the {gen.device.type} - on "
                                 f"a GPU that stops with 'Expected a cuda device type for generator'. Fix: "
                                 f"{_generator_fix(_shown(func), self.what_input)}")
        result = func(*args, **kwargs)
        self._remember(result, func, tensors)
        return result


def _to_cpu(name: str, args: tuple, kwargs: dict) -> bool:
    """True for ``t.cpu()`` and ``t.to('cpu')`` / ``t.to(torch.device('cpu'))`` / ``t.to(cpu_tensor)``."""
    if name == "cpu":
        return True
    target = kwargs.get("device", args[1] if len(args) > 1 else None)
    if isinstance(target, (str, torch.device)):
        return torch.device(target).type == "cpu"
    if isinstance(target, torch.Tensor):
        return target.device.type == "cpu"
    return False


def _stand_in(name: str, t: torch.Tensor) -> Any:
    """What ``.item()``, ``.tolist()``, ``float(t)``, ... return for a meta tensor: zeros of the right kind."""
    if name == "__len__":
        return t.shape[0]
    zeros = torch.zeros(t.shape, dtype=t.dtype)
    if name == "numpy":
        return np.zeros(tuple(t.shape))
    if name == "tolist":
        return zeros.tolist()
    value = zeros.reshape(-1)[0].item() if zeros.numel() else 0
    return {"__float__": float, "__int__": int, "__index__": int, "__bool__": bool}.get(name, lambda v: v)(value)


_DEVICE_ERRORS = ("same device", "expected device", "is not on the expected device", "device type",
                  "Expected all tensors", "but got cpu", "device cpu")


def _notebook_namespaces(objects: tuple) -> list[dict]:
    """The global namespaces (a notebook's, in Jupyter) of the learner's functions and classes among ``objects``."""
    spaces: dict[int, dict] = {}
    for obj in objects:
        if isinstance(obj, nn.Module):
            obj = type(obj)
        for fn in _learner_functions(obj):
            space = getattr(fn, "__globals__", None)
            if isinstance(space, dict) and not str(space.get("__name__", "")).startswith("lecture_utils"):
                spaces[id(space)] = space
    return list(spaces.values())


@contextlib.contextmanager
def notebook_device(objects: tuple, target: torch.device):
    """While the second run goes on, the notebook's global ``device`` (which the lecture's code uses, e.g.
    ``x.to(device)`` in get_batch) names the second device, as it would on a machine with a GPU."""
    patched = []
    for space in _notebook_namespaces(objects):
        value = space.get("device")
        if isinstance(value, (torch.device, str)):
            patched.append((space, value))
            space["device"] = target
    try:
        yield
    finally:
        for space, value in patched:
            space["device"] = value


def run_on_second_device(setup: Callable[[torch.device], tuple], run: Callable[..., Any],
                         device: str | torch.device | None = None, *, what: str = "your code", what_input: str = "x",
                         returns: bool = True, learner: tuple = ()) -> Any:
    """``run(*setup(second_device))`` under :class:`DeviceWatch`: ``setup`` moves the learner's objects and the
    inputs to the second device (outside the watch: moving is not the learner's code), ``run`` calls them. A mix of devices fails the check with a diagnosis naming the learner's line; with ``returns``, so does a
    result (tensors, or a module's parameters and buffers) that is not on the second device. Returns what ``fn``
    returned, or None when meta cannot run the code to its end (it has no values)."""
    target = second_device(device)
    watch = DeviceWatch(target, what_input)
    forked = [target.index if target.index is not None else torch.cuda.current_device()] if target.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        try:
            objects = setup(target)
            with notebook_device((*learner, *objects), target), watch:
                value = run(*objects)
        except DeviceSlip as slip:
            fail(str(slip))
        except (CheckTimeout, _Mistake):
            raise
        except Exception as exc:  # sorted below: a device error, meta's limits, or a real crash
            text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            where = _learner_line_of(exc)
            if any(k in text for k in _DEVICE_ERRORS):
                fail(f"your code mixes devices{' on ' + where if where else ''} when its input is on "
                     f"{device_name(target)} ({text}): on a GPU (Colab) or a Mac it stops there. Create every "
                     f"tensor where the input is, device={_device_of(what_input)}, and keep fixed masks as buffers "
                     f"(self.register_buffer)")
            if target.type == "meta":
                return None  # meta has no values for this code: the CPU run has already checked it
            fail(f"your code passes on the CPU but raised {text} on {target.type}"
                 f"{' (' + where + ')' if where else ''}")
    if returns:
        expect_on_device(value, watch, what)
    return value


def _learner_line_of(exc: BaseException) -> str:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if _is_learner_frame(frame.filename):
            return f"line {frame.lineno}, in {frame.name}" + (f": {frame.line}" if frame.line else "")
    return ""


def expect_on_device(value: Any, watch: DeviceWatch, what: str) -> None:
    """Fail when a tensor in ``value`` (a tensor, a tuple or dict of them, a module's parameters and buffers) is
    not on the watched run's device, saying where it was made."""
    target = watch.target
    if isinstance(value, nn.Module):
        for name, t in [*value.named_parameters(), *value.named_buffers()]:
            if t.device.type != target.type:
                fail(f"{what} leaves {name} on the {t.device.type} while the model it was given is on "
                     f"{device_name(target)}: a GPU run breaks at the first step. Keep every parameter where the "
                     f"given model's are (copy values into the existing parameters with .copy_, or create new ones "
                     f"with device=...)")
        return
    for t in tree_flatten(value)[0]:
        if isinstance(t, torch.Tensor) and t.device.type != target.type:
            made, fix = watch.describe(t)
            fail(f"{what} returns a tensor on the {t.device.type} for an input on {device_name(target)}: {made}; "
                 f"the next step on a GPU would mix devices. Fix: {fix}")


def _move(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, nn.Module):
        return module_copy_on(obj, device)
    if isinstance(obj, torch.Tensor):
        return obj.detach().to(device)
    return obj


def on_second_device(run: Callable[..., Any], *objects: Any, device: str | torch.device | None = None,
                     what: str = "your code", what_input: str = "x", returns: bool = True, learner: tuple = ()) -> Any:
    """:func:`run_on_second_device` for the common case: ``run(*objects)`` with every tensor among ``objects``
    moved to the second device and every module copied there (anything else passed as it is)."""
    return run_on_second_device(lambda d: tuple(_move(o, d) for o in objects), run, device, what=what,
                                what_input=what_input, returns=returns, learner=(run, *objects, *learner))


def module_copy_on(module: nn.Module, device: torch.device) -> nn.Module:
    """A copy of the learner's module on ``device`` (the CPU original, compared with the reference, is kept)."""
    return copy.deepcopy(module).to(device)


def forward_on_second_device(module: nn.Module, *inputs: Any, device: str | torch.device | None = None,
                             what: str = "forward", what_input: str = "x") -> Any:
    """A copy of the learner's module in training mode (so that dropout runs too) called on ``inputs`` moved to the
    second device; its output must stay there."""

    def forward(m: nn.Module, *xs: torch.Tensor) -> Any:
        m.train()
        with torch.no_grad():
            return m(*xs)

    return on_second_device(forward, module, *inputs, device=device, what=what, what_input=what_input)
