"""Chapter 08's "Dropout, seen" run, reproduced from the chapter itself, with the figures its text quotes.

Runs the solution notebook ``solutions/08_scaling_up.ipynb`` from the top down to (and including) the dropout
cell, at full length (``LECTURE_UTILS_SMOKE=0``), in a fresh kernel in an empty scratch folder — so the model is
exercise 8.1's ``GPTLanguageModel`` built from the reference pieces, as in the grader — then prints, for each
dropout rate: the last evaluation's train and val loss and their gap, and the best val loss with its step; and the kernel's CPU
time for the dropout cell (on a shared machine the wall time is only an upper bound).

    python benchmarks/dropout_demo.py                 # about 2-4 minutes of one CPU core
    python benchmarks/dropout_demo.py --notebook notebooks/08_scaling_up.ipynb   # the learner copy

The notebook file is only read.
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
MARKER = "runs[p] = train("

BEFORE = "import os as _o\n_t0 = sum(_o.times()[:4])"

REPORT = """
import json as _j, os as _o
_rows = {"cpu_s": sum(_o.times()[:4]) - _t0}
for _p, _r in runs.items():
    _h = _r.history
    _b = min(_h, key=lambda h: h["val"])
    _rows[str(_p)] = {"last_iter": _h[-1]["iter"], "train": _h[-1]["train"], "val": _h[-1]["val"],
                      "gap": _h[-1]["val"] - _h[-1]["train"], "best_val": _b["val"], "best_iter": _b["iter"],
                      "evals": len(_h)}
print("DROPOUT_DEMO " + _j.dumps(_rows))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notebook", type=Path, default=ROOT / "solutions" / "08_scaling_up.ipynb")
    ap.add_argument("--device", default=None, help="cpu, cuda or mps for the notebook (LECTURE_UTILS_DEVICE)")
    ap.add_argument("--quick", action="store_true", help="the smoke setting (a few steps; proves the script runs)")
    args = ap.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    ends = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and MARKER in c.source]
    if len(ends) != 1:
        raise SystemExit(f"dropout_demo: expected one cell with {MARKER!r} in {args.notebook}, found {len(ends)}")
    nb.cells = (nb.cells[: ends[0]] + [nbformat.v4.new_code_cell(BEFORE), nb.cells[ends[0]]]
                + [nbformat.v4.new_code_cell(REPORT)])
    ends[0] += 1
    os.environ["LECTURE_UTILS_SMOKE"] = "1" if args.quick else "0"
    if args.device:
        os.environ["LECTURE_UTILS_DEVICE"] = args.device
    os.environ["MPLBACKEND"] = "Agg"
    work = Path(tempfile.mkdtemp(prefix="dropout_demo_"))
    print(f"dropout_demo: {args.notebook} cells 0-{ends[0]} ({'smoke setting' if args.quick else 'full length'}), load average {os.getloadavg()}", flush=True)
    try:
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for out in nb.cells[ends[0]].get("outputs", []):
        if out.get("name") == "stdout":
            print(out["text"].rstrip())
    rows = None
    for out in nb.cells[-1].get("outputs", []):
        if "DROPOUT_DEMO" in out.get("text", ""):
            rows = json.loads(out["text"].split("DROPOUT_DEMO", 1)[1])
    if rows is None:
        raise SystemExit("dropout_demo: the report cell printed nothing")
    cpu = rows.pop("cpu_s")
    for p, r in rows.items():
        print(f"dropout {p}: at step {r['last_iter']} train {r['train']:.2f} val {r['val']:.2f} (gap {r['gap']:.2f}); "
              f"best val {r['best_val']:.2f} at step {r['best_iter']} ({r['evals']} evaluations)")
    print(f"the dropout cell (both runs): {cpu:.0f} s of the kernel's CPU time (all its threads); wall {wall:.0f} s for "
          f"the notebook's cells up to it; load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
