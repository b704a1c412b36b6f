"""The grader's runner: executes one prepared notebook in a fresh kernel (``python -m
lecture_utils.grading.worker JOB_DIR``).

``JOB_DIR`` holds ``work.ipynb`` (the learner's notebook with a capture cell after each exercise,
see :mod:`lecture_utils.grading.capture`) and ``job.json`` (per-cell timeout, kernel name, limits).
The notebook runs in a private working folder, continuing past errors and interrupting cells that
run too long; what the cells print is counted and dropped beyond a cap. The runner prints one JSON
object: the problems it saw and the files the capture cells wrote. Nothing it reports is trusted by
the grader beyond that: the kernel runs the learner's code and could have written any of it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import tempfile
from pathlib import Path

CAPTURE_DIR = ".lecture_utils_grade"
_CAPTURE_NAME = re.compile(r"^\d+\.\d+\.(json|pt)$")


def _run(job_dir: Path) -> dict:
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
    work = Path(tempfile.mkdtemp(prefix="work-"))
    printed = {"bytes": 0, "over": False}
    timed_out: list[int] = []

    class CappedClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            size = len(json.dumps(content, default=str)) if msg.get("msg_type") != "stream" else len(content.get("text", ""))
            printed["bytes"] += size
            if printed["bytes"] > cap:
                printed["over"] = True
                return None  # dropped: the grader keeps no output, and this bounds its memory
            return super().output(outs, msg, display_id, cell_index)

    client = CappedClient(nb, timeout=timeout, kernel_name=kernel, allow_errors=True, interrupt_on_timeout=True,
                          resources={"metadata": {"path": str(work)}}, record_timing=False)

    def on_cell_executed(cell, cell_index, execute_reply):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and out.get("ename") in ("CellTimeoutError", "KeyboardInterrupt"):
                timed_out.append(cell_index)
        cell.outputs = []

    client.on_cell_executed = on_cell_executed
    try:
        import subprocess

        client.execute(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except DeadKernelError:
        problems.append("the kernel died (os._exit, a crash, or a memory/process limit); later exercises are not verified")
    except CellTimeoutError:
        problems.append(f"a cell ran longer than {timeout:.0f} s and could not be interrupted")
    except Exception as exc:
        name = type(exc).__name__
        if "NoSuchKernel" in name:
            return {"kernel_missing": True, "problems": [], "captures": {}}
        problems.append(f"execution stopped: {name}: {exc}")
    if timed_out:
        problems.append(f"{len(timed_out)} cell(s) were interrupted after {timeout:.0f} s")
    if printed["over"]:
        problems.append(f"the notebook printed more than {cap // 2**20} MB; the rest was dropped")
    captures = {}
    folder = work / CAPTURE_DIR
    if folder.is_dir():
        for f in sorted(folder.iterdir()):
            if _CAPTURE_NAME.match(f.name) and f.is_file() and not f.is_symlink():
                captures[f.name] = base64.b64encode(f.read_bytes()).decode("ascii")
    return {"kernel_missing": False, "problems": problems, "captures": captures}


def main(argv: list[str]) -> int:
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to stderr, which the grader discards
    result = _run(Path(argv[0]))
    out.write(json.dumps(result))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
