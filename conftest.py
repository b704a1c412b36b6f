"""pytest configuration shared by tests/ and the nbval runs over notebooks/ and solutions/.

The smoke setting shrinks every long loop in the course; notebook kernels inherit it from this
process. Set LECTURE_UTILS_SMOKE=0 to run the notebooks at full length.

Under pytest-xdist (pyproject's ``-n auto``: one worker per core) each worker, and every kernel and
subprocess it starts, gets one torch thread (``OMP_NUM_THREADS=1``, unless set already): two workers
with torch's default of one thread per core would ask a 2-core machine for four. A run with ``-n 0``
keeps torch's default.

Which worker runs what (``--dist loadfile``): each test file and each notebook stays whole on one worker,
except the files in ``SPLIT`` (independent tests, each one long: each test is its own unit), and the units
go out longest first (``SECONDS``, measured), so that no long file starts last while the other worker idles.

The nbval run of the learner notebooks (notebooks/) also checks their set-up cells, the code cells before the
first section heading, which a learner runs first in a fresh kernel, as nbval does: no value display
(``Out[n]:``), no ``<... at 0x...>`` repr, nothing on stderr (warnings). A cell that shows one fails there.
"""

import os
import re

import pytest

os.environ.setdefault("LECTURE_UTILS_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

if os.environ.get("PYTEST_XDIST_WORKER"):  # set by pytest-xdist in each worker process
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import sys

    if "torch" in sys.modules:  # imported before this file (a plugin): the variable came too late for it
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# Files whose tests are independent and long (each starts its own processes): under xdist each test is
# scheduled on its own, so that one file's minutes are shared by both workers.
SPLIT = ("tests/test_benchmarks.py", "tests/test_cli.py", "tests/test_device_check.py")

# Seconds each unit took in a profile of the whole command (`python -m pytest --durations=80 -p no:randomly`,
# 2 workers, on a loaded machine: only their order matters). They only order the work, longest first; a unit
# not named here counts 0.2 s per test (the 1,700 tests outside the 80 slowest took about 0.5 s each there).
# Since that profile the benchmarks keep to the worker's one thread: five of them took 2.4-32x less CPU in a
# --quick run after it.
_QUICK = "tests/test_benchmarks.py::test_benchmark_quick_mode_runs"
SECONDS: dict[str, float] = {
    f"{_QUICK}[ablation.py]": 600, f"{_QUICK}[grade_class.py]": 531, f"{_QUICK}[pretrain.py]": 242,
    f"{_QUICK}[cpu_budget.py]": 164, f"{_QUICK}[throughput.py]": 141,
    "tests/test_benchmarks.py::test_throughput_convergence_mode_runs": 70, f"{_QUICK}[chapter_wait.py]": 48,
    f"{_QUICK}[dropout_demo.py]": 46, f"{_QUICK}[bpe_vs_char.py]": 45, f"{_QUICK}[loss_ladder.py]": 44,
    f"{_QUICK}[addition.py]": 38, f"{_QUICK}[check_stability.py]": 27,
    "tests/test_cli.py::test_lecture_preset_runs_two_iterations_on_cpu": 358,
    "tests/test_cli.py::test_modern_flags_reach_the_model_and_the_checkpoint": 92,
    "tests/test_device_check.py::test_the_notebook_mode_runs_a_solution_notebook_and_writes_its_table": 57,
    "tests/test_device_check.py::test_device_check_passes_on_the_cpu": 46,
    "tests/test_grading.py": 660, "tests/test_grading_sandbox.py": 400, "tests/test_browser.py": 340,
    "tests/test_grading_gradebook.py": 235, "tests/test_mutation.py": 190,
    "tests/test_distributed.py": 170, "tests/test_cli_bpe.py": 100, "tests/test_shipped_checkpoint.py": 67,
    "tests/test_bpe_vs_hf.py": 40,
}


def _unit_seconds(scope: str, nodeids) -> float:
    return SECONDS.get(scope, 0.2 * len(nodeids))


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: without xdist installed, nothing calls it
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with the order and splits above; any other ``--dist`` keeps xdist's own scheduler."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongestFirst(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(SPLIT):
                return nodeid
            return super()._split_scope(nodeid)

        def _assign_work_unit(self, node) -> None:
            # xdist hands out the first unit of its queue: put the longest pending one there
            scope = max(self.workqueue, key=lambda s: _unit_seconds(s, self.workqueue[s]))
            self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)


def setup_cell_problems(notebook: str, index: int, outputs) -> list[str]:
    """What a set-up cell's outputs (nbformat output dicts, as nbval collects them) show that they should not."""
    problems = []
    for out in outputs:
        text = out.get("text", "") or str(out.get("data", {}).get("text/plain", ""))
        if out.get("output_type") == "execute_result":
            problems.append(f"{notebook} set-up cell {index} shows a value: {text[:80]!r}")
        elif out.get("output_type") == "stream" and out.get("name") == "stderr":
            problems.append(f"{notebook} set-up cell {index} writes to stderr: {text[:120]!r}")
        elif re.search(r"<[\w.]+.* at 0x[0-9a-f]+>", text):
            problems.append(f"{notebook} set-up cell {index} prints a repr: {text[:80]!r}")
    return problems


def _is_setup_cell(nb, cell) -> bool:
    """``cell`` comes before the notebook's first section heading (``## ...``)."""
    for other in nb.cells:
        if other is cell:
            return True
        if other.cell_type == "markdown" and any(ln.startswith("## ") for ln in other.source.splitlines()):
            return False
    return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or not report.passed or getattr(item, "test_outputs", None) is None:
        return
    path = item.path
    if path.suffix != ".ipynb" or path.parent.name != "notebooks" or not _is_setup_cell(item.parent.nb, item.cell):
        return
    problems = setup_cell_problems(path.name, item.cell_num, item.test_outputs)
    if problems:
        report.outcome = "failed"
        report.longrepr = "\n".join(problems)


@pytest.fixture
def set_up_cell_problems():
    """The check the learner notebooks' set-up cells pass under nbval (:func:`setup_cell_problems`)."""
    return setup_cell_problems
