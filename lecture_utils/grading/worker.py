"""The grader's runner: executes one prepared notebook in a fresh kernel (``python -m
lecture_utils.grading.worker JOB_DIR``).

``JOB_DIR`` holds ``work.ipynb`` (the learner's notebook with a capture cell after each exercise,
see :mod:`lecture_utils.grading.capture`) and ``job.json`` (per-cell timeout, kernel name, limits).
The notebook runs in a private working folder, continuing past errors and interrupting cells that
run too long; what the cells print is counted and dropped beyond a cap, twice: in the kernel (the grader's first
cell, :func:`lecture_utils.grading.capture.guard_output`) and here, as it arrives. The runner prints JSON lines:
the files each capture cell wrote, as soon as it ran, and at the end the problems it saw. Nothing it reports is trusted by
the grader beyond that: the kernel runs the learner's code and could have written any of it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

CAPTURE_DIR = ".lecture_utils_grade"
OVER_MARK = "output-over"  # capture.OVER_MARK: left by the kernel's output guard past the cap (capture.guard_output)
_CAPTURE_NAME = re.compile(r"^\d+\.\d+\.(json|pt)$")
ATTEMPTS = "attempts.jsonl"  # capture.ATTEMPTS: what the kernel's audit hook saw the notebook try (capture.watch_attempts)
TRIED = {"process": "tried to start a process, a program or a shell command", "network": "tried to connect beyond this machine",
         "write": "tried to write outside its folder"}


def _read_attempts(work: Path, into: dict) -> None:
    """Add what the kernel's audit hook recorded so far to ``into`` ((kind, what) -> None, in order). The file is
    the kernel's: read a bounded amount, keep only well-formed records of a known kind."""
    path = work / CAPTURE_DIR / ATTEMPTS
    try:
        if path.is_symlink() or not path.is_file():
            return
        with path.open("rb") as f:
            text = f.read(256 * 1024).decode("utf-8", "replace")
    except OSError:
        return
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("kind") in TRIED and isinstance(rec.get("what"), str) and len(into) < 60:
            into.setdefault((rec["kind"], rec["what"][:200]), None)


def attempts_problems(attempts: dict) -> list[str]:
    """One line per kind of attempt, naming up to three targets: 'tried to ...: ls /; curl ...'."""
    lines = []
    for kind, said in TRIED.items():
        whats = [w for k, w in attempts if k == kind]
        whats = [w for w in whats if not any(o.startswith(f"{w}:") for o in whats)]  # a look-up, then its connect
        if whats:
            more = f" and {len(whats) - 3} more" if len(whats) > 3 else ""
            lines.append(f"{said} (its code may have caught the error): {'; '.join(w[:80] for w in whats[:3])}{more}")
    return lines


def _is_capture(cell) -> bool:
    return cell.get("metadata", {}).get("lecture_utils_grade") == "capture"


def _is_inserted(cell) -> bool:
    """A cell the grader added (the output guard first, a capture after each exercise), not the learner's."""
    return cell.get("metadata", {}).get("lecture_utils_grade") in ("capture", "guard")


def _run(job_dir: Path, work: Path, emit) -> dict:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    if job.get("sandboxed"):
        from lecture_utils.grading.sandbox import Limits, set_limits

        set_limits(Limits(**job["limits"]), nproc=True)
    timeout, kernel, cap = float(job["timeout"]), job["kernel"], int(job["output_cap"])
    nb = nbformat.read(job_dir / "work.ipynb", as_version=4)
    problems: list[str] = []
    printed = {"bytes": 0, "over": False}
    timed_out: list[int] = []
    sent: set[str] = set()
    attempts: dict = {}

    class GradingClient(NotebookClient):
        """nbclient with a cap on output, and a stop after two cells in a row that ignore an interrupt."""

        stuck = 0

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            size = len(json.dumps(content, default=str)) if msg.get("msg_type") != "stream" else len(content.get("text", ""))
            printed["bytes"] += size
            if printed["bytes"] > cap:
                printed["over"] = True
                return None  # dropped: the grader keeps no output, and this bounds its memory
            return super().output(outs, msg, display_id, cell_index)

        async def _async_handle_timeout(self, timeout, cell=None):
            self.stuck += 1
            if self.stuck > 1:  # the last interrupt did not free the kernel: stop here
                raise CellTimeoutError.error_from_timeout_and_cell("Cell execution timed out", timeout, cell)
            await super()._async_handle_timeout(timeout, cell)
            return {"content": {"status": "error", "ename": "CellTimeoutError", "evalue": f"interrupted after {timeout} s",
                                "traceback": []}}

    # iopub_timeout: after a cell's reply, nbclient waits only this long (default 4 s) for the rest of the cell's
    # output and then drops it unseen; a big output still in transit on a busy machine escaped the cap that way.
    # Waiting as long as a cell may run counts every byte; past that the run stops, and says so.
    client = GradingClient(nb, timeout=timeout, kernel_name=kernel, allow_errors=True, interrupt_on_timeout=True,
                           iopub_timeout=timeout, raise_on_iopub_timeout=True,
                           resources={"metadata": {"path": str(work)}}, record_timing=False)

    raised: list[str] = []

    def on_cell_executed(cell, cell_index, execute_reply):
        content = (execute_reply or {}).get("content", {})
        if content.get("ename") == "CellTimeoutError":
            timed_out.append(cell_index)
        else:
            client.stuck = 0
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error" or out.get("ename") in ("KeyboardInterrupt", "CellTimeoutError"):
                continue
            if out.get("ename") != "CheckFailed":  # a check's verdict is the re-check's business
                value = str(out.get("evalue", "")).strip().splitlines()
                learner_index = cell_index - sum(_is_inserted(c) for c in nb.cells[:cell_index])
                raised.append(f"cell {learner_index + 1} raised {out.get('ename')}: {value[0][:160] if value else ''}".rstrip(": "))
        cell.outputs = []
        _read_attempts(work, attempts)  # after every cell: a later cell cannot take back what this one tried
        if _is_capture(cell):  # hand over what the capture wrote at once: a later hang or kill loses nothing
            folder = work / CAPTURE_DIR
            if folder.is_dir():
                for f in sorted(folder.iterdir()):
                    if _CAPTURE_NAME.match(f.name) and f.name not in sent and f.is_file() and not f.is_symlink():
                        sent.add(f.name)
                        emit({"capture": f.name, "data": base64.b64encode(f.read_bytes()).decode("ascii")})

    client.on_cell_executed = on_cell_executed
    try:
        import subprocess

        client.execute(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except DeadKernelError:
        problems.append("the kernel died (os._exit, a crash, or a memory/process limit); later exercises are not verified")
    except CellTimeoutError as exc:
        if "IOPub" in str(exc):
            problems.append(f"a cell's output was still arriving {timeout:.0f} s after the cell ended; the notebook's run "
                            "stopped there")
        else:
            problems.append(f"a cell ran longer than {timeout:.0f} s and ignored the interrupt; the notebook's run "
                            "stopped there")
    except Exception as exc:
        name = type(exc).__name__
        if "NoSuchKernel" in name:
            return {"kernel_missing": True, "problems": []}
        problems.append(f"execution stopped: {name}: {exc}")
    problems += raised[:5] + ([f"{len(raised) - 5} more cells raised errors"] if len(raised) > 5 else [])
    _read_attempts(work, attempts)
    problems += attempts_problems(attempts)
    if timed_out:
        problems.append(f"{len(timed_out)} cell(s) were interrupted after {timeout:.0f} s")
    if (work / CAPTURE_DIR / OVER_MARK).is_file():  # the kernel's guard counted past the cap (what reached us or not)
        printed["over"] = True
    if printed["over"]:
        problems.append(f"the notebook printed more than {cap // 2**20} MB; the rest was dropped")
    return {"kernel_missing": False, "problems": problems}


def main(argv: list[str]) -> int:
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to stderr, which the grader discards

    def emit(record: dict) -> None:
        out.write(json.dumps(record) + "\n")
        out.flush()

    work = Path(tempfile.mkdtemp(prefix="work-"))
    try:
        emit(dict(_run(Path(argv[0]), work, emit), end=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
