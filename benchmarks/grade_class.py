"""Grade a made-up class with `python -m lecture_utils grade SUBMISSIONS/ --class --lms canvas,moodle` and print
the wall time for each --jobs, the sandbox's overhead per notebook against --no-sandbox, whether the roll-up is
right, and what the gradebook files (the two LMS CSVs and one feedback report per learner) add to a class run.

The class: N learners, each with one chapter-01 notebook: solved (a copy of solutions/), untouched (a copy
of notebooks/), broken (one wrong exercise), or hostile (a fork bomb, filling memory, os._exit, or
monkeypatching the checks), in a fixed rotation.

    python benchmarks/grade_class.py                      # 20 learners, --jobs 1 and 2, and --no-sandbox
    python benchmarks/grade_class.py --learners 8 --jobs 2
    python benchmarks/grade_class.py --quick              # 4 learners: proves it runs
    python benchmarks/grade_class.py --skip-class --reps 5   # only the interleaved overhead measurement

The class runs follow each other, so on a shared machine their difference mixes the sandbox's cost with
changes in load; the overhead measurement interleaves: the same solved notebook graded with and without the
sandbox in turn, --reps times each, medians compared.

The gradebook files are timed the same way, after the class run and on its roll-up: what the class run wrote
before them (grades.csv and grades.json) and the same plus canvas.csv, moodle.csv and the reports, in turn,
--files-reps times each. The grading itself is the same code either way, so the class run without them takes
its wall time less the median difference; the script prints the ratio of the two (the goal: under 1.10).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]

SOLVED, UNTOUCHED, BROKEN, HOSTILE = "solved", "untouched", "broken", "hostile"
ALL_PASSED = {"1.1": "passed", "1.2": "passed", "1.3": "passed"}
HOSTILE_CELLS = [
    ("patch", "import torch, lecture_utils.checks as check\ntorch.equal = lambda *a, **k: True\n"
              "torch.allclose = lambda *a, **k: True\ncheck.split_data = lambda f: f", None),
    ("memory", "hog = []\nwhile True:\n    hog.append(bytearray(2**28))", ALL_PASSED),
    ("exit", "import os\nos._exit(0)", {"1.1": "not verified", "1.2": "not verified", "1.3": "not verified"}),
    ("forkbomb", "import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(300)\n        os._exit(0)", ALL_PASSED),
]
ROTATION = [SOLVED, UNTOUCHED, BROKEN, HOSTILE, SOLVED]


def make_class(folder: Path, learners: int) -> dict[str, dict]:
    """Write the submissions; return each learner's expected statuses."""
    solution = nbformat.read(ROOT / "solutions" / "01_data.ipynb", as_version=4)
    untouched = nbformat.read(ROOT / "notebooks" / "01_data.ipynb", as_version=4)
    expected = {}
    hostile_k = 0
    for i in range(learners):
        kind = ROTATION[i % len(ROTATION)]
        name = f"learner{i + 1:02d}-{kind}"
        nb = nbformat.from_dict(json.loads(json.dumps(solution if kind != UNTOUCHED else untouched)))
        want = dict(ALL_PASSED) if kind != UNTOUCHED else {k: "not attempted" for k in ALL_PASSED}
        if kind == BROKEN:
            for cell in nb.cells:
                if cell.source.startswith("# Exercise 1.2"):
                    cell.source = cell.source.replace("return data[:n], data[n:]",
                                                      "data = data[torch.randperm(len(data))]\n    return data[:n], data[n:]")
            want["1.2"] = "failed"
        if kind == HOSTILE:
            label, code, outcome = HOSTILE_CELLS[hostile_k % len(HOSTILE_CELLS)]
            hostile_k += 1
            name = f"learner{i + 1:02d}-hostile-{label}"
            # after the set-up cell that imports torch, as the results assume (a memory hog before it leaves no room
            # to load torch at all; the notebook's cells have moved before: look the cell up)
            setup = next(k for k, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith("import torch"))
            nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(code))
            if outcome is None:  # monkeypatching, with a wrong (shuffled) split that must still fail
                for cell in nb.cells:
                    if cell.source.startswith("# Exercise 1.2"):
                        cell.source = cell.source.replace(
                            "return data[:n], data[n:]", "data = data[torch.randperm(len(data))]\n    return data[:n], data[n:]")
                outcome = dict(ALL_PASSED, **{"1.2": "failed"})
            want = dict(outcome)
        (folder / name).mkdir(parents=True)
        nbformat.write(nb, folder / name / "01_data.ipynb")
        expected[name] = want
    return expected


def grade(subs: Path, out: Path, jobs: int, sandbox: bool, timeout: int) -> tuple[float, dict, str]:
    cmd = [sys.executable, "-m", "lecture_utils", "grade", str(subs), "--class", "--jobs", str(jobs), "--out", str(out),
           "--no-progress", "--timeout", str(timeout), "--memory", "3", "--notebook-timeout", "600",
           "--lms", "canvas,moodle"]
    if not sandbox:
        cmd.append("--no-sandbox")
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"grading failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, json.loads((out / "grades.json").read_text()), proc.stdout


def check_rollup(out: Path, expected: dict[str, dict]) -> list[str]:
    wrong = []
    for row in csv.DictReader((out / "grades.csv").open()):
        want = expected[row["learner"]]
        got = {k: row[k] for k in want}
        if got != want:
            wrong.append(f"{row['learner']}: expected {want}, got {got}")
    return wrong


def gradebook_files(out: Path, learners: int) -> list[str]:
    """What is missing of the files a class run with --lms canvas,moodle writes ([] when all are there)."""
    missing = [n for n in ("grades.csv", "grades.json", "canvas.csv", "moodle.csv") if not (out / n).is_file()]
    reports = len(list((out / "feedback").glob("*.html"))), len(list((out / "feedback").glob("*.md")))
    if reports != (learners, learners):
        missing.append(f"{learners} reports in each format (found {reports[0]} HTML, {reports[1]} Markdown)")
    return missing


def files_cost(out: Path, reps: int) -> tuple[float, float]:
    """Median seconds to write, from the class run's roll-up, (grades.csv + grades.json) and (those + canvas.csv,
    moodle.csv and every report), timed in turn ``reps`` times each into a scratch folder."""
    import statistics

    from lecture_utils.grading import classroom, lms

    roll_up = json.loads((out / "grades.json").read_text())
    subs = []
    for entry in roll_up["learners"]:
        sub = classroom.Submission(entry["learner"], entry["source"], hash=entry["hash"], cached=entry["cached"])
        sub.notebooks = [classroom._notebook_from_dict(d) for d in entry["notebooks"]]
        subs.append(sub)

    def before(folder: Path) -> dict:  # what the class run wrote before the gradebook files
        rolled = classroom.to_json(subs, roll_up["sandboxed"], roll_up["points"], roll_up.get("partial_credit", False))
        (folder / "grades.csv").write_text(classroom.to_csv(subs))
        (folder / "grades.json").write_text(json.dumps(rolled, indent=2) + "\n")
        return rolled

    def with_files(folder: Path) -> None:
        rolled = before(folder)
        classroom.write_feedback(rolled, folder / "feedback")
        lms.write(["canvas", "moodle"], classroom.lms_rows(rolled), "Build GPT", sum(rolled["points"].values()), folder)

    times: dict[str, list[float]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as scratch:
        for k in range(reps):
            for name, write in (("without", before), ("with", with_files)):
                folder = Path(scratch) / f"{name}-{k}"
                folder.mkdir()
                start = time.perf_counter()
                write(folder)
                times[name].append(time.perf_counter() - start)
    return statistics.median(times["without"]), statistics.median(times["with"])


def overhead(reps: int) -> None:
    """The same solved notebook graded with and without the sandbox in turn; medians compared."""
    import statistics

    from lecture_utils.grading import grade_notebook
    from lecture_utils.grading import sandbox as sb

    box, limits = sb.find_sandbox(), sb.Limits(memory=3 * 2**30)
    starts = []
    with tempfile.TemporaryDirectory() as job:
        for _ in range(10):
            t = time.perf_counter()
            subprocess.run(box.command(["/bin/true"], Path(job), limits), check=True)
            starts.append(time.perf_counter() - t)
    print(f"starting and ending an empty sandbox (bwrap, /bin/true): median {statistics.median(starts) * 1000:.0f} ms")
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(reps):
        for boxed in (True, False):
            r = grade_notebook(ROOT / "solutions" / "01_data.ipynb", sandbox=box if boxed else None, limits=limits,
                               threads=1)
            if {e.status for e in r.exercises} != {"passed"}:
                raise SystemExit(f"solutions/01_data.ipynb did not pass: {r}")
            times[boxed].append(r.seconds)
    show = {k: ", ".join(f"{t:.1f}" for t in v) for k, v in times.items()}
    print(f"solutions/01_data.ipynb, interleaved: sandboxed {show[True]} s; --no-sandbox {show[False]} s; "
          f"median overhead {statistics.median(times[True]) - statistics.median(times[False]):+.1f} s per notebook")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--learners", type=int, default=20)
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="--jobs values to time, sandboxed")
    p.add_argument("--no-baseline", action="store_true", help="skip the --no-sandbox run")
    p.add_argument("--timeout", type=int, default=60, help="per-cell time limit (default 60)")
    p.add_argument("--quick", action="store_true", help="4 learners, --jobs 2 sandboxed only (no --no-sandbox baseline), 1 rep")
    p.add_argument("--reps", type=int, default=3, help="interleaved gradings of one notebook each way (default 3)")
    p.add_argument("--skip-class", action="store_true", help="only the interleaved overhead measurement")
    p.add_argument("--files-reps", type=int, default=7,
                   help="interleaved timings of the roll-up with and without the gradebook files (default 7)")
    p.add_argument("--device", default="cpu", help="ignored (grading runs on the CPU); accepted for uniformity")
    args = p.parse_args()
    if args.quick:
        args.learners, args.jobs, args.reps, args.no_baseline = 4, [2], 1, True
    from lecture_utils.grading import sandbox as sb

    try:
        sb.find_sandbox()
        have_sandbox = True
    except sb.SandboxUnavailable as exc:
        print(f"no sandbox here ({exc}): timing --no-sandbox only")
        have_sandbox = False
    if have_sandbox and args.reps > 0:
        overhead(args.reps)
    if args.skip_class:
        return 0
    base = Path(tempfile.mkdtemp(prefix="grade-class-bench-"))
    try:
        expected = make_class(base / "subs", args.learners)
        print(f"class: {args.learners} learners, one chapter-01 notebook each "
              f"({', '.join(f'{k} {sum(n.split(chr(45))[1] == k for n in expected)}' for k in (SOLVED, UNTOUCHED, BROKEN, HOSTILE))})")
        runs = [(j, True) for j in args.jobs] if have_sandbox else []
        if not args.no_baseline or not have_sandbox:
            runs.append((1, False))
        timings = {}
        for jobs, sandbox in runs:
            out = base / f"out-{jobs}-{sandbox}"
            seconds, report, _ = grade(base / "subs", out, jobs, sandbox, args.timeout)
            per_nb = [nb["seconds"] for entry in report["learners"] for nb in entry["notebooks"]]
            wrong = check_rollup(out, expected) + gradebook_files(out, args.learners)
            timings[(jobs, sandbox)] = (seconds, per_nb)
            print(f"--jobs {jobs} {'sandboxed   ' if sandbox else '--no-sandbox'}: wall {seconds:6.1f} s for "
                  f"{len(per_nb)} notebooks; per notebook mean {sum(per_nb) / len(per_nb):5.1f} s; roll-up, "
                  f"canvas.csv, moodle.csv and {args.learners} reports "
                  + ("right" if not wrong else "WRONG:\n  " + "\n  ".join(wrong)))
            if args.files_reps > 0:
                without, with_ = files_cost(out, args.files_reps)
                extra = with_ - without
                print(f"  gradebook files: roll-up alone {without * 1000:.1f} ms, with canvas.csv, moodle.csv and the "
                      f"reports {with_ * 1000:.1f} ms (medians of {args.files_reps}, interleaved): +{extra * 1000:.1f} "
                      f"ms; class run with them {seconds:.1f} s, without {seconds - extra:.1f} s: ratio "
                      f"{seconds / (seconds - extra):.4f}")
        if (1, True) in timings and (1, False) in timings:
            (ws, ps), (wn, pn) = timings[(1, True)], timings[(1, False)]
            n = len(ps)
            print(f"sandbox overhead per notebook (--jobs 1): {(ws - wn) / n:+.1f} s wall "
                  f"({(sum(ps) - sum(pn)) / n:+.1f} s by the per-notebook times; {ws / wn:.2f}x overall)")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
