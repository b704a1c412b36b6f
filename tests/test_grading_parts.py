"""The grader's parts on their own, without kernels: what it reads from a cell, what the capture cell
keeps, the tamper fingerprint, the re-check of one exercise, the roll-up."""

import builtins
import zipfile

import torch

from lecture_utils import addition, grading
from lecture_utils.checks import REGISTRY
from lecture_utils.grading import capture, cells, classroom, recheck

SPLIT = "# Exercise 1.2: train/val split\ndef split_data(data, train_frac=0.9):\n    n = int(train_frac * len(data))\n    return data[:n], data[n:]"


def test_free_and_defined_names_of_a_cell():
    src = ("import math\nstoi = {ch: i for i, ch in enumerate(chars)}\n\ndef encode(s):\n    return [stoi[c] for c in s]\n"
           "torch.equal = None\n%time x = 1\n")
    assert grading.free_names(src) == {"chars", "torch"}
    assert grading.defined_names(src) == {"math", "stoi", "encode"}  # torch.equal = ... binds no name


def test_the_kernels_output_guard_forwards_the_cap_then_drops_the_rest_and_leaves_its_mark(tmp_path):
    import io

    out, err = io.StringIO(), io.StringIO()
    budget, mark = {"left": 100, "over": False}, tmp_path / capture.FOLDER / capture.OVER_MARK
    stdout, stderr = capture.CappedStream(out, budget, mark), capture.CappedStream(err, budget, mark)
    assert stdout.write("a" * 60) == 60 and not mark.exists()
    assert stderr.write("b" * 30) == 30 and not mark.exists()  # one budget for both streams
    assert stdout.write("c" * 25) == 25  # a caller is told everything was written, as a stream would
    assert out.getvalue() == "a" * 60 + "c" * 10 and err.getvalue() == "b" * 30  # exactly the cap got through
    assert mark.is_file()  # and the worker will name it, whether or not the output reached it
    stdout.writelines(["d" * 10**6] * 3)
    assert len(out.getvalue()) == 70 and stdout.unguarded is out
    assert stdout.getvalue() == out.getvalue()  # anything else is the stream's own


def test_a_course_the_helpers_cannot_import_is_one_clear_error_before_any_grading(tmp_path):
    assert grading.helpers_problem() is None  # here the course is installed: the helpers import it
    # a Python without the course (what `pip install --user`, or running from the source folder only, gives the
    # helpers, which run with -P -s): every notebook would end "abnormally" with nothing said
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'lecture_utils'\" >&2\nexit 1\n")
    fake.chmod(0o755)
    said = grading.helpers_problem(str(fake))
    assert "cannot import the course (ModuleNotFoundError: No module named 'lecture_utils')" in said
    assert "python -m pip install -e ." in said


def test_the_plan_follows_names_to_earlier_exercise_cells():
    present = [(4, "10.1", "# Exercise 10.1\ndef encode_problem(a, b, n):\n    return tok.encode(str(a + b))"),
               (6, "10.2", "# Exercise 10.2\ndef make_batch(n):\n    return torch.tensor(encode_problem(1, 2, n))")]
    plans = cells.plan(present, REGISTRY)
    assert [e for e, _ in plans["10.2"].cells] == ["10.1", "10.2"]
    assert plans["10.2"].context == ("tok", "torch")
    assert plans["10.1"].context == ("tok",)


def test_the_capture_keeps_modules_library_objects_and_data_only():
    from lecture_utils.model import Head

    class Mine:
        pass

    ns = {"torch": torch, "Head": Head, "chars": ["a", "b"], "ids": torch.arange(3), "tok": addition.TOKENIZER,
          "model": Mine(), "f": lambda x: x}
    context, data = capture.describe(["torch", "Head", "chars", "ids", "tok", "model", "f", "nowhere"], ns)
    assert context["torch"] == ["module", "torch"]
    assert context["Head"] == ["object", "lecture_utils.model", "Head"]
    assert context["tok"] == ["object", "lecture_utils.addition", "TOKENIZER"]
    assert context["chars"] == ["data"] and context["ids"] == ["data"]
    assert context["model"][0] == context["f"][0] == context["nowhere"][0] == "missing"
    assert set(data) == {"chars", "ids"}


def test_the_fingerprint_sees_a_replaced_function_and_its_code():
    before = recheck.fingerprint()
    real_equal, real_len = torch.equal, builtins.len
    try:
        torch.equal = lambda *a, **k: True
        builtins.len = lambda x: 3
        changed = recheck.tampered(before, recheck.fingerprint())
    finally:
        torch.equal, builtins.len = real_equal, real_len
    assert "torch.equal" in changed and "builtins.len" in changed
    assert recheck.tampered(before, recheck.fingerprint()) == []
    from lecture_utils.checks import _core

    code = _core.expect.__code__
    try:
        _core.expect.__code__ = (lambda condition, hint: None).__code__
        changed = recheck.tampered(before, recheck.fingerprint())
    finally:
        _core.expect.__code__ = code
    assert "lecture_utils.checks._core.expect" in changed


def test_torch_wrapping_its_own_function_is_not_tampering_but_a_learners_wrapper_is():
    import functools
    import sys

    fresh = "torch._dynamo" not in sys.modules
    before = recheck.fingerprint()
    import torch._dynamo  # rebinds torch.manual_seed to a wrapper of the original

    assert not fresh or before[("torch", "manual_seed")][0] != id(torch.manual_seed)
    assert recheck.tampered(before, recheck.fingerprint()) == []
    real = torch.allclose
    try:
        torch.allclose = functools.wraps(real)(lambda *a, **k: True)
        assert "torch.allclose" in recheck.tampered(before, recheck.fingerprint())
    finally:
        torch.allclose = real


def recheck_one(source, context=None, data=None, tmp_path=None):
    outcomes = []
    from lecture_utils.checks import _core

    real = _core._record

    def observe(exercise_id, title, status, message):
        outcomes.append((exercise_id, status, message))

    _core._record = observe
    try:
        ex = {"id": "1.2", "cells": [{"id": "1.2", "source": source}], "context": context or {}, "data_file": None}
        return recheck.recheck(ex, tmp_path, outcomes, REGISTRY)
    finally:
        _core._record = real


def test_recheck_of_one_exercise(tmp_path):
    ctx = {"torch": ["module", "torch"]}
    assert recheck_one(SPLIT, ctx, tmp_path=tmp_path)[0] == "passed"
    shuffled = SPLIT.replace("return data[:n]", "data = data[torch.randperm(len(data))]\n    return data[:n]")
    status, message = recheck_one(shuffled, ctx, tmp_path=tmp_path)
    assert status == "failed" and "shuffled" in message
    status, message = recheck_one("# Exercise 1.2: x\nfrom lecture_utils.data import split_data", ctx, tmp_path=tmp_path)
    assert status == "failed" and "not code written in the exercise cell" in message
    status, message = recheck_one(shuffled, {"torch": ["missing", "a Foo object"]}, tmp_path=tmp_path)
    assert status == "not verified" and "'torch'" in message
    status, message = recheck_one("# Exercise 1.2: x\n%time y = 1\n" + SPLIT, ctx, tmp_path=tmp_path)
    assert status == "not verified" and "magic" in message
    status, _ = recheck_one("# Exercise 1.2: x\nimport os\nos = 1", {"os": ["module", "subprocess.nothing"]}, tmp_path=tmp_path)
    assert status == "not verified"  # split_data never defined


def test_zip_submissions_are_read_without_extracting(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    with zipfile.ZipFile(subs / "ada.zip", "w") as zf:
        zf.writestr("work/01_data.ipynb", "{}")
        zf.writestr("../../evil.ipynb", "{}")
        zf.writestr("__MACOSX/01_data.ipynb", "{}")
        zf.writestr("notes.txt", "hello")
    (subs / "bob.zip").write_bytes(b"not a zip")
    (subs / "cy" / "a").mkdir(parents=True)
    (subs / "cy" / "a" / "01_data.ipynb").write_text("{}")
    (subs / "cy" / "01_data_v2.ipynb").write_text("{}")
    found = {s.learner: s for s in classroom.find_submissions(subs)}
    assert list(found["ada"].files) == ["work/01_data.ipynb"]
    assert not (tmp_path / "evil.ipynb").exists()
    assert "not a readable zip" in found["bob"].problems[0]
    assert len(found["cy"].files) == 1 and "2 notebooks for chapter 01" in found["cy"].problems[0]


ATTEMPTS_PROBE = """
import json, os, socket, subprocess, sys
from lecture_utils.grading import capture
capture.watch_attempts()
for attempt in (lambda: subprocess.run(["true", "popen"]), lambda: os.system("true system"),
                lambda: socket.create_connection(("192.0.2.1", 9), timeout=0.01),
                lambda: open("/proc/grader-was-here", "w"), lambda: os.remove("/proc/nothing"),
                lambda: open("inside.txt", "w").write("fine"), lambda: open(sys.executable, "rb").read(1),
                lambda: socket.create_connection(("127.0.0.1", 9), timeout=0.01)):
    try:
        attempt()
    except Exception:
        pass  # the notebook caught the error itself
import site  # a program a library starts (matplotlib's fc-list) is not the notebook's attempt
exec(compile("subprocess.run(['true', 'library'])", os.path.join(site.getsitepackages()[0], "lib.py"), "exec"))
print(open(os.path.join(capture.FOLDER, capture.ATTEMPTS)).read())
"""


def test_the_kernels_audit_hook_records_attempts_the_code_caught_itself(tmp_path):
    import json
    import subprocess
    import sys

    from lecture_utils.grading import worker

    out = subprocess.run([sys.executable, "-c", ATTEMPTS_PROBE], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    seen = [(r["kind"], r["what"]) for r in (json.loads(line) for line in out.stdout.splitlines() if line.strip())]
    assert ("process", "true popen") in seen and ("process", "true system") in seen
    assert not any("library" in w for _, w in seen)
    assert ("network", "192.0.2.1:9") in seen and not any("127.0.0.1" in w for _, w in seen)  # loopback is not
    assert ("write", "/proc/grader-was-here") in seen and ("write", "/proc/nothing") in seen
    assert not any("inside.txt" in w or sys.executable in w for _, w in seen)  # its own folder; reading
    attempts: dict = {}
    worker._read_attempts(tmp_path, attempts)
    lines = worker.attempts_problems(attempts)
    assert [line.split(" (")[0] for line in lines] == list(worker.TRIED.values())
    from lecture_utils.grading import feedback

    assert len(feedback.blocked(lines)) == 3
