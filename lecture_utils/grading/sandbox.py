"""Running the grader's helper processes: plainly, or inside a bubblewrap sandbox with limits.

The grader starts two kinds of helper process per notebook: the *runner* (``worker``: nbclient
and the notebook's kernel) and the *re-checker* (``recheck``: a fresh interpreter that re-runs the
checks). :func:`run` starts one, enforces a wall-clock limit and a cap on what it prints, and kills
the whole process tree when either is exceeded.

With a :class:`Sandbox` (Linux, Debian/Ubuntu package ``bubblewrap``) the helper runs under
``bwrap`` with

- new user, PID, network, IPC, UTS and cgroup namespaces: no network at all (only a private
  loopback), no view of or signal to the grader's processes, no capabilities;
- a read-only view of the Python environment (its prefix and the ``lecture_utils`` package folder
  only: not the course repository, not the instructor's notebooks) and of ``/usr``;
- an empty, size-limited ``/tmp`` (a tmpfs) that holds the notebook's copy; ``HOME`` inside it;
  no view of ``/home``, ``/root``, the instructor's files or the other submissions;
- resource limits (setrlimit): CPU seconds, address space, file size, open files; the number of
  processes through ``RLIMIT_NPROC`` for an ordinary user, and a ``pids`` cgroup for root (the
  kernel does not apply ``RLIMIT_NPROC`` to root).

:func:`find_sandbox` says why no sandbox is available (bwrap missing, namespaces refused, root
without a writable pids cgroup) rather than silently grading without one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install "
                "bubblewrap), or pass --no-sandbox to grade without isolation (only for work you trust)")


@dataclass(frozen=True)
class Limits:
    """Per-helper-process limits. ``memory`` is the address space of each process (bytes)."""

    cpu_seconds: int = 1800
    memory: int = 6 * 2**30
    processes: int = 256
    file_size: int = 256 * 2**20
    tmp_size: int = 512 * 2**20
    open_files: int = 1024
    output: int = 64 * 2**20  # bytes a helper may print to the grader


class SandboxUnavailable(RuntimeError):
    """No isolation here; the message says why and what to install."""


def _package_dir() -> Path:
    return Path(__file__).resolve().parents[1]


def _python_roots() -> list[Path]:
    """The folders the interpreter and its installed packages live in (bound read-only)."""
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent.parent}
    out: list[Path] = []
    for r in sorted(roots, key=lambda p: len(p.parts)):
        if not any(r.is_relative_to(o) for o in out) and r != Path("/"):
            out.append(r)
    return out


class _PidsCgroup:
    """A ``pids`` cgroup (v1 or v2) for one sandbox: the process limit for root. None when the
    cgroup file system is not writable here."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, limit: int) -> _PidsCgroup | None:
        for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
            if not (base / "cgroup.procs").exists():
                continue
            if base == Path("/sys/fs/cgroup/unified") or base == Path("/sys/fs/cgroup"):
                try:  # v2: the controller must be enabled for children
                    if "pids" not in (base / "cgroup.subtree_control").read_text():
                        continue
                except OSError:
                    continue
            path = base / f"lecture-utils-grade-{uuid.uuid4().hex[:12]}"
            try:
                path.mkdir()
                (path / "pids.max").write_text(str(limit))
                return cls(path)
            except OSError:
                with _quiet():
                    path.rmdir()
        return None

    def enter(self) -> None:  # runs in the child between fork and exec
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


@dataclass
class Sandbox:
    """bubblewrap with the binds of this Python environment. Build it with :func:`find_sandbox`."""

    bwrap: str
    root_needs_cgroup: bool

    def command(self, argv: list[str], job_dir: Path, limits: Limits) -> list[str]:
        cmd = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            p = Path(top)
            if p.is_symlink():
                cmd += ["--symlink", os.readlink(p), top]
            elif p.is_dir():
                cmd += ["--ro-bind", top, top]
        for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/nsswitch.conf", "/etc/alternatives"):
            if os.path.exists(f):
                cmd += ["--ro-bind", f, f]
        if os.path.isdir("/sys/devices/system/cpu"):
            cmd += ["--ro-bind", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
        cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.tmp_size), "--perms", "1777", "--tmpfs", "/tmp",
                "--dir", "/tmp/home"]
        for root in _python_roots():
            cmd += ["--ro-bind", str(root), str(root)]
        pkg = _package_dir()
        if not any(pkg.is_relative_to(r) for r in _python_roots()):
            cmd += ["--ro-bind", str(pkg), str(pkg)]
        cmd += ["--ro-bind", str(job_dir), "/job", "--chdir", "/tmp", "--"]
        return cmd + argv

    def environment(self, threads: int, smoke: bool) -> dict[str, str]:
        pkg_parent = str(_package_dir().parent)
        env = {"HOME": "/tmp/home", "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
               "PYTHONPATH": pkg_parent, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
               "LECTURE_UTILS_DEVICE": "cpu", "CUDA_VISIBLE_DEVICES": ""}  # no GPU device is bound in
        return env | _common_env(threads, smoke)


def _common_env(threads: int, smoke: bool) -> dict[str, str]:
    t = str(max(1, threads))
    return {"LECTURE_UTILS_SMOKE": "1" if smoke else "0", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": t,
            "MKL_NUM_THREADS": t, "LECTURE_UTILS_GRADE_THREADS": t, "PYTHONDONTWRITEBYTECODE": "1",
            "JUPYTER_PLATFORM_DIRS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


_CACHED: dict[str, Sandbox | str] = {}


def find_sandbox() -> Sandbox:
    """The sandbox for this machine, after proving that it starts; :class:`SandboxUnavailable`
    (naming what to install or change) otherwise."""
    if "s" in _CACHED:
        found = _CACHED["s"]
        if isinstance(found, str):
            raise SandboxUnavailable(found)
        return found
    try:
        box = _probe()
    except SandboxUnavailable as exc:
        _CACHED["s"] = str(exc)
        raise
    _CACHED["s"] = box
    return box


def _probe() -> Sandbox:
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"the grader's sandbox needs Linux (bubblewrap); this is {sys.platform}. "
                                 "Grade untrusted work on a Linux machine, or pass --no-sandbox for work you trust")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("the sandbox tool bwrap is not installed: " + INSTALL_HINT)
    root = os.geteuid() == 0
    box = Sandbox(bwrap, root_needs_cgroup=root)
    with tempfile.TemporaryDirectory(prefix="grade-probe-") as tmp:
        os.chmod(tmp, 0o755)
        probe = ("import socket, os\n"
                 "s = socket.socket(); s.settimeout(2)\n"
                 "try:\n    s.connect(('1.1.1.1', 53)); print('NET')\n"
                 "except OSError:\n    print('NONET')\n"
                 "print('HOME' if os.path.exists(os.path.expanduser('~/.ssh')) else 'NOHOME')\n")
        try:
            out = subprocess.run(box.command([sys.executable, "-s", "-c", probe], Path(tmp), Limits()),
                                 capture_output=True, text=True, timeout=60, env=box.environment(1, True))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(f"bwrap could not start a sandbox: {exc}") from None
    if out.returncode != 0 or "NONET" not in out.stdout:
        err = (out.stderr.strip().splitlines() or ["no message"])[-1]
        raise SandboxUnavailable(
            f"bwrap is installed but cannot create the sandbox here ({err}); it needs unprivileged user "
            "namespaces (sysctl kernel.unprivileged_userns_clone=1, or kernel.apparmor_restrict_unprivileged_userns=0 "
            "on Ubuntu 24.04+), or a container started with --privileged or a seccomp profile that allows them")
    if root:
        cg = _PidsCgroup.create(8)
        if cg is None:
            raise SandboxUnavailable(
                "running as root, the process limit needs a writable pids cgroup (the kernel does not apply "
                "RLIMIT_NPROC to root) and there is none here: run the grader as an ordinary user, or give it "
                "a writable cgroup file system")
        cg.remove()
    return box


def set_limits(limits: Limits, nproc: bool) -> None:
    """Apply ``limits`` to this process (and what it starts). Call inside the sandbox."""
    import resource

    def lim(kind, value):
        soft, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))

    lim(resource.RLIMIT_CPU, limits.cpu_seconds)
    lim(resource.RLIMIT_AS, limits.memory)
    lim(resource.RLIMIT_FSIZE, limits.file_size)
    lim(resource.RLIMIT_NOFILE, limits.open_files)
    lim(resource.RLIMIT_CORE, 0)
    if nproc:
        lim(resource.RLIMIT_NPROC, limits.processes)


@dataclass
class Finished:
    """How a helper process ended."""

    returncode: int | None
    stdout: bytes
    timed_out: bool = False
    output_overflow: bool = False
    seconds: float = 0.0
    sandboxed: bool = False

    def describe(self) -> str:
        """Plain words for an abnormal end."""
        if self.timed_out:
            return "it ran past the grader's time limit and was stopped"
        if self.output_overflow:
            return "it printed more than the grader accepts and was stopped"
        rc = self.returncode
        if rc is None:
            return "it did not finish"
        if rc < 0 or (self.sandboxed and rc > 128):  # bwrap reports a signal as 128 + its number
            sig = -rc if rc < 0 else rc - 128
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            why = {signal.SIGKILL: " (killed: the memory or process limit, or the notebook killed it)",
                   signal.SIGXCPU: " (its CPU-time limit)", signal.SIGXFSZ: " (it wrote a file over the size limit)",
                   signal.SIGSEGV: " (a crash)"}.get(sig, "")
            return f"it was ended by signal {name}{why}"
        return f"it exited with status {rc}"


def run(argv: list[str], job_dir: Path, *, sandbox: Sandbox | None, limits: Limits | None, timeout: float,
        threads: int, smoke: bool, stdin: bytes = b"") -> Finished:
    """Run a helper (``[python, -m, module, ...]``) with ``job_dir`` as its input folder (``/job`` in
    the sandbox, the path itself otherwise), returning its stdout (at most ``limits.output`` bytes)."""
    cap = (limits or Limits()).output
    cgroup = None
    nproc_outside = None
    if sandbox is not None:
        assert limits is not None
        cmd = sandbox.command(argv + ["/job"], job_dir, limits)
        env = sandbox.environment(threads, smoke)
        if sandbox.root_needs_cgroup:
            cgroup = _PidsCgroup.create(limits.processes)
            if cgroup is None:
                raise SandboxUnavailable("could not create a pids cgroup for the sandbox")
        cwd = None
    else:
        cmd = argv + [str(job_dir)]
        env = dict(os.environ) | _common_env(threads, smoke)
        cwd = job_dir
        if limits is not None and os.geteuid() == 0:  # a process limit without the sandbox, where root can have one
            cgroup = _PidsCgroup.create(limits.processes)
        elif limits is not None:  # RLIMIT_NPROC counts all this user's processes here: allow that many more
            nproc_outside = _user_processes() + limits.processes

    def preexec():  # in the child, before exec: limits inherited by everything the helper starts
        if cgroup is not None:
            cgroup.enter()
        if limits is not None:
            set_limits(limits, nproc=False)  # in the sandbox RLIMIT_NPROC is set inside, in its user namespace
        if nproc_outside is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NPROC, (nproc_outside, nproc_outside))

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=None if os.environ.get("LECTURE_UTILS_GRADE_DEBUG") else subprocess.DEVNULL,
                            env=env, cwd=cwd, preexec_fn=preexec, start_new_session=True)
    chunks: list[bytes] = []
    state = {"size": 0, "overflow": False}

    def reader():
        while True:
            block = proc.stdout.read(65536)
            if not block:
                return
            if state["size"] + len(block) > cap:
                state["overflow"] = True
                _kill(proc)
                return
            state["size"] += len(block)
            chunks.append(block)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        proc.stdin.write(stdin)
        proc.stdin.close()
    except OSError:
        pass
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(proc)
        proc.wait()
    _kill(proc)  # anything the helper left behind in its session
    t.join(timeout=10)
    if cgroup is not None:
        _kill_cgroup(cgroup)
        cgroup.remove()
    return Finished(proc.returncode, b"".join(chunks), timed_out, state["overflow"], time.perf_counter() - start,
                    sandbox is not None)


def _user_processes() -> int:
    """Processes and threads this user runs now (what RLIMIT_NPROC counts)."""
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                pass
    return count


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_cgroup(cgroup: _PidsCgroup) -> None:
    try:
        pids = (cgroup.path / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError, PermissionError):
            pass
