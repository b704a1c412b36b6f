"""The course's CPU threads: every core but one (one thread on a 2-core machine), overridable, set by every
chapter's set-up cell, and reported by ``doctor`` with a note when the machine is already busy.

Why (measured; benchmarks/RESULTS.md, "Two threads or one"): at the course's model sizes a thread that waits for
a core another process holds stalls every step; on this 2-core machine with one busy process beside it, a
training cell ran over ten times slower with two threads than with one.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
import torch

from lecture_utils import device as dev
from lecture_utils.doctor import _cpu_threads_lines

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_default_leaves_one_core_free(monkeypatch):
    monkeypatch.delenv(dev.THREADS_VAR, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for cores, expected in ((1, 1), (2, 1), (4, 3), (16, 15)):
        monkeypatch.setattr(dev, "cpu_cores", lambda cores=cores: cores)
        assert dev.course_threads() == expected


def test_the_variables_override_the_default_course_first(monkeypatch):
    monkeypatch.setattr(dev, "cpu_cores", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.delenv(dev.THREADS_VAR, raising=False)
    assert dev.course_threads() == 2  # a test worker's or a shared machine's limit
    monkeypatch.setenv(dev.THREADS_VAR, "3")
    assert dev.course_threads() == 3  # the course's own variable wins


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_thread_count_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(dev.THREADS_VAR, value)
    with pytest.raises(ValueError, match=rf"LECTURE_UTILS_THREADS='{value}': set it to a whole number of threads >= 1"):
        dev.course_threads()


def test_use_course_threads_sets_torch_and_describe_names_it(monkeypatch, restore_threads):
    monkeypatch.setenv(dev.THREADS_VAR, "1")
    assert dev.use_course_threads() == 1 and torch.get_num_threads() == 1
    cores = dev.cpu_cores()
    assert f"1 thread of {cores} core{'s' * (cores != 1)})" in dev.describe("cpu")


def test_cpu_cores_stays_within_the_process_affinity():
    if hasattr(os, "sched_getaffinity"):
        assert 1 <= dev.cpu_cores() <= len(os.sched_getaffinity(0))


def _doctor_lines(monkeypatch, load, cores=2):
    monkeypatch.delenv(dev.THREADS_VAR, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(dev, "cpu_cores", lambda: cores)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    lines = []
    _cpu_threads_lines(lambda ok, what, fix="": lines.append((ok, what)))
    return lines


def test_doctor_names_the_threads_and_warns_only_on_a_busy_machine(monkeypatch):
    idle = _doctor_lines(monkeypatch, 0.3)
    assert idle == [(True, "the notebooks use 1 torch thread of 2 cores (one core is left to the rest of the machine; "
                           "LECTURE_UTILS_THREADS=N changes it)")]
    busy = _doctor_lines(monkeypatch, 1.8)
    assert len(busy) == 2 and busy[1][0] is None  # a note, not a failure
    assert "the machine is busy: load average 1.8 on 2 cores" in busy[1][1]
    assert "close other heavy programs" in busy[1][1]


def test_doctor_reports_a_bad_thread_count_with_its_fix(monkeypatch):
    monkeypatch.setenv(dev.THREADS_VAR, "many")
    lines = []
    _cpu_threads_lines(lambda ok, what, fix="": lines.append((ok, what, fix)))
    assert lines == [(False, "LECTURE_UTILS_THREADS='many': set it to a whole number of threads >= 1 (e.g. "
                             "LECTURE_UTILS_THREADS=2), or unset it to use the course's default", "")]


@pytest.mark.parametrize("folder", ["solutions", "notebooks"])
def test_every_chapter_sets_the_course_threads_right_after_picking_the_device(folder):
    for path in sorted((ROOT / folder).glob("*.ipynb")):
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        setup = [c.source for c in cells if "device = pick_device()" in c.source]
        assert len(setup) == 1, f"{path.name}: expected one set-up cell with device = pick_device()"
        lines = setup[0].splitlines()
        at = lines.index("device = pick_device()")
        assert lines[at + 1].startswith("use_course_threads()"), (
            f"{path.name}: call use_course_threads() on the line after pick_device() (python -m lecture_utils.authoring "
            "build regenerates notebooks/ from solutions/)")
