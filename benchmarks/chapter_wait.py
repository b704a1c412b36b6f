"""How long a learner waits for each chapter's cells, at full length (not the smoke setting).

Runs each chosen notebook top to bottom in a fresh kernel, the way "Run all" does, in one scratch folder
shared by the chapters in order (so chapter 08 finds the ``my_gpt/`` files chapters 04-07 kept, as on a
learner's disk). Prints, per chapter, the wall time and the kernel process's CPU time (user + system, its
own and its children's, read with ``os.times()`` in an extra last cell). On a shared machine the wall time
is an upper bound; the CPU time is what the chapter costs. The load average is printed before and after.
With ``--cells SECONDS`` the kernel's CPU time is also read after every code cell (a small probe cell run
after each), and every cell that took at least SECONDS of CPU or wall time is listed with its first line:
the cells whose markdown must say how long they take (see tests/test_waits.py).

    python benchmarks/chapter_wait.py                         # solutions/01-08 of this checkout
    python benchmarks/chapter_wait.py --folder notebooks --chapters 1 2 3
    python benchmarks/chapter_wait.py --threads 1 --chapters 4 5 6 7 8 --cells 10   # and the slow cells
    PYTHONPATH=/path/to/other/checkout python benchmarks/chapter_wait.py --folder /path/to/other/checkout/solutions

The notebook files are only read; nothing is written beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent

PROBE = "import os as _o, json as _j\n_t = _o.times()\nprint('CHAPTER_WAIT_CPU ' + _j.dumps([_t.user, _t.system, _t.children_user, _t.children_system]))"


def chapter_notebooks(folder: Path, chapters: list[int]) -> list[Path]:
    found = []
    for n in chapters:
        hits = sorted(folder.glob(f"{n:02d}_*.ipynb"))
        if not hits:
            raise SystemExit(f"chapter_wait: no notebook {n:02d}_*.ipynb in {folder}; pass --folder the solutions/ or notebooks/ folder")
        found.append(hits[0])
    return found


CELL_PROBE = "import os as _o\n_t = _o.times()\nprint('CHAPTER_WAIT_CELL', _t.user + _t.system + _t.children_user + _t.children_system)"


def _probe_value(cell, marker: str) -> str | None:
    for out in cell.get("outputs", []):
        text = out.get("text", "")
        if marker in text:
            rest = text.split(marker, 1)[1].strip().splitlines()
            return rest[0] if rest else None
    return None


def run_one(path: Path, workdir: Path, cell_timeout: int, cells: float | None = None) -> dict:
    nb = nbformat.read(path, as_version=4)
    origin = {}  # index in the run notebook -> index in the file, for the code cells followed by a probe
    if cells is not None:
        run_cells = [nbformat.v4.new_code_cell(CELL_PROBE)]
        for i, c in enumerate(nb.cells):
            run_cells.append(c)
            if c.cell_type == "code":
                origin[len(run_cells) - 1] = i
                run_cells.append(nbformat.v4.new_code_cell(CELL_PROBE))
        nb.cells = run_cells
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    t0 = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - t0
    cpu = None
    value = _probe_value(nb.cells[-1], "CHAPTER_WAIT_CPU")
    if value is not None:
        cpu = sum(json.loads(value))
    slowest = sorted(((c.get("metadata", {}).get("execution", {}), i) for i, c in enumerate(nb.cells[:-1])
                      if c.cell_type == "code"), key=lambda e: -_cell_seconds(e[0]))[:3]
    row = {"notebook": path.name, "wall_s": wall, "cpu_s": cpu,
           "slowest_cells": [(origin.get(i, i), round(_cell_seconds(m), 1)) for m, i in slowest]}
    if cells is not None:
        row["cells"] = []
        for k, i in origin.items():
            # the probe before a cell may sit above markdown cells: the nearest code cell above is one
            j = next(j for j in range(k - 1, -1, -1) if nb.cells[j].cell_type == "code")
            before, after = _probe_value(nb.cells[j], "CHAPTER_WAIT_CELL"), _probe_value(nb.cells[k + 1], "CHAPTER_WAIT_CELL")
            cell_cpu = float(after) - float(before) if before is not None and after is not None else None
            cell_wall = _cell_seconds(nb.cells[k].get("metadata", {}).get("execution", {}))
            if max(cell_cpu or 0.0, cell_wall) >= cells:
                first = next((ln for ln in nb.cells[k].source.splitlines() if ln.strip() and not ln.startswith("#")), "")
                row["cells"].append({"cell": i, "cpu_s": None if cell_cpu is None else round(cell_cpu, 1),
                                     "wall_s": round(cell_wall, 1), "first_line": first[:80]})
    return row


def _cell_seconds(meta: dict) -> float:
    from datetime import datetime
    a, b = meta.get("iopub.execute_input"), meta.get("shell.execute_reply")
    if not a or not b:
        return 0.0
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(b) - parse(a)).total_seconds()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", type=Path, default=ROOT / "solutions", help="notebook folder (default: solutions/)")
    ap.add_argument("--chapters", type=int, nargs="+", default=list(range(1, 9)), help="chapter numbers (default 1-8)")
    ap.add_argument("--cell-timeout", type=int, default=3600, help="seconds one cell may run (default 3600)")
    ap.add_argument("--label", default="", help="a label printed with each row (e.g. before/after)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads in the kernels (OMP_NUM_THREADS); default: torch's own (the cores). On a "
                         "machine shared with other work, 1 keeps the CPU time honest: threads that wait for a "
                         "descheduled partner spin and inflate both the wall and the CPU time")
    ap.add_argument("--device", default=None, help="cpu, cuda or mps for the notebooks (LECTURE_UTILS_DEVICE)")
    ap.add_argument("--cells", type=float, default=None, metavar="SECONDS",
                    help="also time every code cell (kernel CPU and wall) and list those taking at least SECONDS")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="run in this folder and keep it (default: a fresh scratch folder, deleted after); e.g. one "
                         "whose my_gpt/ holds the files chapters 04-07 kept, to time chapter 08 alone as a learner runs it")
    ap.add_argument("--quick", action="store_true", help="chapter 01 only, in the smoke setting (proves the script runs)")
    args = ap.parse_args(argv)

    # full length (the kernels inherit it); --quick only proves the script works
    os.environ["LECTURE_UTILS_SMOKE"] = "1" if args.quick else "0"
    if args.quick:
        args.chapters = [1]
    if args.device:
        os.environ["LECTURE_UTILS_DEVICE"] = args.device
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("MPLBACKEND", "Agg")
    import lecture_utils  # only to print which package the kernels will import (PYTHONPATH decides)
    print(f"chapter_wait: folder {args.folder}, lecture_utils from {Path(lecture_utils.__file__).parent}, "
          f"LECTURE_UTILS_SMOKE={os.environ['LECTURE_UTILS_SMOKE']}, threads {args.threads or 'default'}, {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)
    rows = []
    work = args.workdir or Path(tempfile.mkdtemp(prefix="chapter_wait_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for path in chapter_notebooks(args.folder, args.chapters):
            load0 = os.getloadavg()[0]
            r = run_one(path, work, args.cell_timeout, args.cells)
            r["load_before"], r["load_after"] = load0, os.getloadavg()[0]
            rows.append(r)
            cpu = f"{r['cpu_s'] / 60:6.2f}" if r["cpu_s"] is not None else "     ?"
            print(f"{args.label:8s} {r['notebook']:32s} wall {r['wall_s'] / 60:6.2f} min  kernel CPU {cpu} min  "
                  f"load {r['load_before']:.2f}->{r['load_after']:.2f}  slowest cells (index, s) {r['slowest_cells']}",
                  flush=True)
            for c in r.get("cells", []):
                print(f"{'':8s}   cell {c['cell']:3d}: kernel CPU {c['cpu_s']} s, wall {c['wall_s']} s  {c['first_line']}",
                      flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    tw, tc = sum(r["wall_s"] for r in rows), sum(r["cpu_s"] or 0 for r in rows)
    print(f"{args.label:8s} {'total':32s} wall {tw / 60:6.2f} min  kernel CPU {tc / 60:6.2f} min", flush=True)
    print("JSON " + json.dumps({"label": args.label, "folder": str(args.folder), "rows": rows}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
