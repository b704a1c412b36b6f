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
import os
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


ATTEMPTS = "attempts.jsonl"  # what watch_attempts records, one JSON object a line, in FOLDER
MAX_ATTEMPTS = 60  # distinct attempts recorded per notebook
_PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                             "os.forkpty", "pty.spawn"})
_WRITE_EVENTS = frozenset({"os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.symlink", "os.link", "os.truncate",
                           "os.chmod", "os.chown", "shutil.rmtree", "shutil.copyfile", "shutil.move"})
_NET_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.getaddrinfo", "urllib.Request"})
_WATCHED = _PROCESS_EVENTS | _WRITE_EVENTS | _NET_EVENTS | {"open"}
_LOOPBACK = ("localhost", "127.", "::1", "0.0.0.0")


def _remote(host) -> bool:
    host = os.fsdecode(host) if isinstance(host, bytes) else str(host or "")
    return bool(host) and not host.startswith(_LOOPBACK)


_RUNNERS = ("IPython", "ipykernel", "pexpect", "ptyprocess")  # how a ! shell command reaches subprocess


def _dirs(*paths) -> tuple[str, ...]:
    return tuple(os.path.realpath(d).rstrip(os.sep) + os.sep for d in paths if d)


def _code_places() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(installed packages and the course, the standard library, the interpreter's prefixes)."""
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    packages = _dirs(*site.getsitepackages(), site.getusersitepackages(), paths.get("purelib"), paths.get("platlib"),
                     str(Path(__file__).resolve().parents[1]))
    return packages, _dirs(paths.get("stdlib"), paths.get("platstdlib")), _dirs(sys.prefix, sys.base_prefix,
                                                                                   sys.exec_prefix)


def _started_by_the_notebook(frame, places) -> bool:
    """True when the innermost frame that is neither the standard library nor IPython's own way of running a
    ``!`` command is the notebook's code (a cell), not an installed package's: matplotlib starting ``fc-list`` to
    build its font cache is not the learner's attempt; ``subprocess.run`` or ``!ls`` in a cell is."""
    packages, stdlib, prefixes = places
    while frame is not None:
        name = frame.f_code.co_filename
        module = str(frame.f_globals.get("__name__", ""))
        if name.startswith("<frozen") or module.split(".")[0] in _RUNNERS:
            frame = frame.f_back
            continue
        real = os.path.realpath(name) if name and not name.startswith("<") else name
        if real.startswith(packages):
            return False
        if real.startswith(stdlib):
            frame = frame.f_back
            continue
        return not real.startswith(prefixes)
    return False


def _writes(mode, flags) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))


def watch_attempts(allowed=None) -> None:
    """Record, from inside the kernel, what the notebook's code tried that the sandbox confines or refuses - even
    when the code caught the error itself, so that no exception reached the grader: starting a program or a shell
    command (``!ls``, ``subprocess``, ``os.system``, ``os.fork``), a connection or a name look-up beyond this
    machine, and a write (or a removal, a rename, ...) outside the allowed folders (the notebook's working folder,
    the temporary folder and ``HOME``; inside the sandbox all three lie in its private ``/tmp``) or ``/dev``.

    Python's audit hooks (PEP 578) see these events whoever calls the function, library code included, and cannot
    be removed once added. A process counts only when the notebook's own code started it (see
    :func:`_started_by_the_notebook`: matplotlib runs ``fc-list`` on a fresh ``HOME``); a connection or a write
    outside counts whoever made it, as nothing the course imports makes one inside the sandbox. Each distinct attempt is appended at once to ``FOLDER/ATTEMPTS`` through a file
    descriptor opened here, and the runner forwards the file after every cell, so a later cell cannot take back
    what an earlier one tried. It is a record, not a wall: the sandbox is the wall. Code that means to hide can
    still close or overwrite the descriptor in the same cell as its attempt, or act from C without an audit event
    (``ctypes``); the sandbox refuses it all the same."""
    import tempfile

    folder = Path.cwd() / FOLDER
    folder.mkdir(exist_ok=True)
    roots = [Path.cwd(), Path(tempfile.gettempdir()), Path.home(), Path("/dev"), *(allowed or ())]
    roots_text = tuple(os.path.realpath(r).rstrip(os.sep) + os.sep for r in roots)
    fd = os.open(folder / ATTEMPTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    seen: set = set()
    busy = [False]
    places = _code_places()

    def inside(path) -> bool:
        if isinstance(path, int):  # a file descriptor already open
            return True
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        text = os.path.realpath(os.path.abspath(str(path))) + os.sep
        return text.startswith(roots_text)

    def record(kind: str, what) -> None:
        key = (kind, str(what)[:200])
        if key in seen or len(seen) >= MAX_ATTEMPTS:
            return
        seen.add(key)
        os.write(fd, (json.dumps({"kind": kind, "what": key[1]}) + "\n").encode())

    def hook(event, args):
        if event not in _WATCHED or busy[0]:
            return
        busy[0] = True
        try:
            if event == "open":
                if _writes(args[1], args[2]) and not inside(args[0]):
                    record("write", args[0])
            elif event in _WRITE_EVENTS:
                if args and not isinstance(args[0], int) and not inside(args[0]):
                    record("write", args[0])
            elif event in _PROCESS_EVENTS:
                if not _started_by_the_notebook(sys._getframe(1), places):
                    return
                if event == "subprocess.Popen":
                    what = " ".join(map(str, args[1])) if isinstance(args[1], (list, tuple)) else args[1]
                elif event == "os.system":
                    what = args[0]
                elif event == "os.forkpty":
                    what = "os.forkpty() (how IPython runs a ! shell command)"
                elif event == "os.fork":
                    what = "os.fork()"
                else:
                    what = " ".join(map(str, args[2])) if event == "os.spawn" and len(args) > 2 else args[1] if len(args) > 1 else args
                record("process", os.fsdecode(what) if isinstance(what, bytes) else what)
            elif event == "urllib.Request":
                record("network", args[0])
            elif event == "socket.getaddrinfo":
                if _remote(args[0]):
                    record("network", os.fsdecode(args[0]) if isinstance(args[0], bytes) else args[0])
            else:  # socket.connect, socket.sendto: (socket, address)
                address = args[1]
                if isinstance(address, (str, bytes)):  # a Unix socket: a file outside, or not
                    if not inside(address):
                        record("network", os.fsdecode(address) if isinstance(address, bytes) else address)
                elif isinstance(address, tuple) and address and _remote(address[0]):
                    record("network", f"{address[0]}:{address[1]}" if len(address) > 1 else address[0])
        except Exception:  # never break the learner's code: the hook only records
            pass
        finally:
            busy[0] = False

    sys.addaudithook(hook)


def guard_cell_source(cap: int) -> str:
    """The code cell the grader inserts first: :func:`guard_output` with the grader's cap, then
    :func:`watch_attempts`."""
    return (f"__import__('lecture_utils.grading.capture', fromlist=['guard_output']).guard_output({int(cap)}); "
            "__import__('lecture_utils.grading.capture', fromlist=['watch_attempts']).watch_attempts()")


def cell_source(exercise_id: str, names, context_names) -> str:
    """The code cell the grader inserts after exercise ``exercise_id``."""
    return (f"__import__('lecture_utils.grading.capture', fromlist=['capture']).capture("
            f"{exercise_id!r}, {tuple(names)!r}, {tuple(context_names)!r}, globals())")
