"""Device choice (cuda, then mps, then cpu), seeding and thread counts.

Chosen once: notebooks call :func:`pick_device` at the top and pass the result on. The
environment variable ``LECTURE_UTILS_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) overrides
the automatic choice, e.g. to compare a GPU run with a CPU one.

What is known to differ on Apple's MPS backend (PyTorch 2.x):

- ``torch.multinomial`` has returned out-of-range or repeated indices on some macOS/PyTorch
  versions, and sampling with a ``torch.Generator`` requires the generator on the same device.
  :func:`lecture_utils.model.generate` therefore samples on the CPU when the model is on MPS.
- bf16 autocast is not used on MPS; training runs in fp32 there (fp16 autocast without a grad
  scaler can give NaN losses).
- MPS kernels are not bit-identical to CPU ones: losses agree to about 1e-4, not exactly.
- A learner's "MPS is not used" usually means an x86 Python under Rosetta; :func:`describe`
  says which build is running.

Threads on a CPU: the notebooks call :func:`use_course_threads` after :func:`pick_device`. torch's own
default is one thread per core; the course leaves one core to the rest of the machine (the browser,
Jupyter, a second notebook), because threads that must wait for a core taken by another process make
every step many times slower (measured: benchmarks/RESULTS.md, "Two threads or one"). On a 2-core
machine that means one thread. ``LECTURE_UTILS_THREADS`` (or ``OMP_NUM_THREADS``) overrides it.
"""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch

ENV_VAR = "LECTURE_UTILS_DEVICE"
THREADS_VAR = "LECTURE_UTILS_THREADS"

# torch's own default, one thread per physical core, read before anyone changes it (unknown when
# $OMP_NUM_THREADS chose it: then it counts the threads asked for, not the cores)
_TORCH_DEFAULT_THREADS = None if os.environ.get("OMP_NUM_THREADS", "").strip() else torch.get_num_threads()


def mps_available() -> bool:
    """True when PyTorch can use Apple's Metal backend here."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(preference: str | None = None) -> torch.device:
    """Return the device the course uses: ``preference``, else ``$LECTURE_UTILS_DEVICE``, else
    cuda, then mps, then cpu.

    Raises:
        ValueError: the requested device is not available here (the message says which are).
    """
    wanted = preference or os.environ.get(ENV_VAR, "").strip() or None
    if wanted is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(wanted)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {wanted!r}: use 'cpu', 'cuda', 'cuda:N' or 'mps'") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {wanted!r} was asked for but CUDA is not available here; available: {available_devices()}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {wanted!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not mps_available():
        raise ValueError(f"device 'mps' was asked for but MPS is not available here; available: {available_devices()}")
    return device


def available_devices() -> list[str]:
    """Names of the devices usable here, e.g. ``['cuda', 'cpu']``."""
    names = []
    if torch.cuda.is_available():
        names.append("cuda")
    if mps_available():
        names.append("mps")
    names.append("cpu")
    return names


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (every device) and return a CPU ``torch.Generator`` seeded
    the same, for code that takes an explicit generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds cuda and mps
    return torch.Generator().manual_seed(seed)


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads: ``n``, else ``OMP_NUM_THREADS`` when it is set (a test worker's or a
    shared machine's limit), else the number of physical-ish cores available to this process
    (``os.sched_getaffinity`` where it exists). Returns the number set."""
    if n is None and os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        n = int(os.environ["OMP_NUM_THREADS"]) or None
    if n is None:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # macOS, Windows
            n = os.cpu_count() or 1
    n = max(1, int(n))
    torch.set_num_threads(n)
    return n


def cpu_cores() -> int:
    """The cores torch would use by default here: its physical cores within this process's CPU affinity (the
    logical CPUs allowed, when ``OMP_NUM_THREADS`` hid torch's own count)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        allowed = os.cpu_count() or 1
    return max(1, min(_TORCH_DEFAULT_THREADS or allowed, allowed))


def course_threads() -> int:
    """The torch threads the course uses on a CPU: ``$LECTURE_UTILS_THREADS``, else ``$OMP_NUM_THREADS``,
    else every core but one (:func:`cpu_cores` - 1, at least 1).

    Why one core is left free: at the course's model sizes a thread that waits for a core another
    process holds stalls every matrix multiply; on a 2-core machine with one busy process beside it,
    chapter 07's training cell took over ten times longer with two threads than with one.

    Raises:
        ValueError: ``LECTURE_UTILS_THREADS`` is set to something that is not a whole number >= 1.
    """
    value = os.environ.get(THREADS_VAR, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{THREADS_VAR}={value!r}: set it to a whole number of threads >= 1 "
                             f"(e.g. {THREADS_VAR}=2), or unset it to use the course's default")
        return int(value)
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:
        return int(omp)
    return max(1, cpu_cores() - 1)


def use_course_threads() -> int:
    """Set torch's threads to :func:`course_threads` and return the number set. The notebooks' set-up
    cells call it; on a GPU or MPS it only affects the little work done on the CPU."""
    return set_threads(course_threads())


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 matrix multiplies natively (AVX512-BF16 or AMX, as oneDNN
    reports it): there bf16 autocast roughly halves the time of large matrix multiplies."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(device: torch.device | str, cpu_bf16: bool = False) -> torch.dtype | None:
    """The autocast dtype for training on ``device``: bf16 on CUDA GPUs that support it; on a CPU,
    bf16 only when asked (``cpu_bf16=True``) and the CPU has native bf16 (:func:`cpu_has_native_bf16`:
    elsewhere emulated bf16 is slower than fp32); else None (fp32). On MPS fp32 is the safe choice."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device.type == "cpu" and cpu_bf16 and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def describe(device: torch.device | str | None = None) -> str:
    """One line naming the device, its hardware and the torch build, for the top of a notebook."""
    device = torch.device(device) if device is not None else pick_device()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        what = f"cuda ({name})"
    elif device.type == "mps":
        what = f"mps (Apple {platform.machine()})"
    else:
        n, cores = torch.get_num_threads(), cpu_cores()
        what = f"cpu ({platform.machine()}, {n} thread{'s' * (n != 1)} of {cores} core{'s' * (cores != 1)})"
    return f"Using device: {what} - torch {torch.__version__}"
