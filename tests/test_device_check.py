"""The GPU check (``python -m lecture_utils.device_check``) on the CPU: the package part runs to the end,
the notebook part runs a notebook under nbval and reports it in its table, and bad input is one clear error."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from lecture_utils import data, device_check
from lecture_utils.model import GPT, BigramLanguageModel, BigramWithPositions

ROOT = Path(__file__).resolve().parents[1]


def device_check_cli(*args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, "-m", "lecture_utils.device_check", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


@pytest.mark.slow
def test_device_check_passes_on_the_cpu():
    out = device_check_cli("--device", "cpu", timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "[FAIL]" not in out.stdout and "device check: all passed" in out.stdout


def test_one_training_step_under_autocast_for_every_model_the_course_builds():
    _, tok, tr, _ = data.load_dataset()
    models = device_check.course_models(tok.vocab_size)
    kinds = {type(m) for _, m in models}
    assert {BigramLanguageModel, BigramWithPositions, GPT} <= kinds
    configs = [m.config for _, m in models if isinstance(m, GPT)]
    assert {c.attention for c in configs} == {"heads", "batched"}
    for feature, value in [("activation", "gelu"), ("activation", "swiglu"), ("norm", "rmsnorm"),
                           ("position", "rope"), ("tie_weights", True)]:
        assert any(getattr(c, feature) == value for c in configs), f"no model with {feature}={value!r}"
    cpu = torch.device("cpu")
    batch = data.get_batch(tr, 4, 32, device=cpu, generator=torch.Generator().manual_seed(0))
    for name, model in models:
        assert 0 < device_check.autocast_step(model, batch, cpu) < 10, name


@pytest.mark.slow
def test_the_notebook_mode_runs_a_solution_notebook_and_writes_its_table(tmp_path):
    table = tmp_path / "gpu.md"
    out = device_check_cli("--device", "cpu", "--notebooks-only", "--notebooks", "solutions/01_data.ipynb",
                           "--markdown", str(table))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    row = "| `solutions/01_data.ipynb` | passed ("
    assert "[OK]   1/1 solutions/01_data.ipynb: passed (" in out.stdout  # the progress line
    assert row in out.stdout and "1 notebook(s): 1 passed, 0 failed" in out.stdout
    written = table.read_text()
    assert written.startswith("Machine: cpu (") and "smoke setting" in written and row in written


@pytest.mark.slow
@pytest.mark.parametrize("flags, smoke", [([], "1"), (["--full"], "0")])
def test_the_device_and_the_smoke_setting_reach_the_kernel_and_a_failing_cell_fails_the_run(tmp_path, flags, smoke):
    sees = f"import os\nassert (os.environ['LECTURE_UTILS_DEVICE'], os.environ['LECTURE_UTILS_SMOKE']) == ('cpu', {smoke!r})"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(sees),
                                         nbformat.v4.new_code_cell("raise RuntimeError('boom on purpose')")])
    nbformat.write(nb, tmp_path / "broken.ipynb")
    out = device_check_cli("--device", "cpu", "--notebooks-only", *flags, "--notebooks", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    # the name is shown relative to the checkout when the notebook is inside it (as nox's temporary folders are)
    assert re.search(r"\| `(\S+/)?broken\.ipynb` \| \*\*failed\*\* \(1 of 2 cells: Cell 1: RuntimeError: boom on purpose\) \|",
                     out.stdout), out.stdout[-3000:]
    assert "device check: 1 failure(s)" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["--notebooks-only", "--notebooks", "no/such/folder"], "no such notebook or folder: no/such/folder"),
    (["--notebooks", "README.md"], "README.md is not a notebook (*.ipynb) or a folder of notebooks"),
    (["--markdown", "gpu.md"], "--full and --markdown are about the notebooks: add --notebooks"),
])
def test_bad_input_is_one_clear_error_before_anything_runs(args, message):
    out = device_check_cli("--device", "cpu", *args)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_by_default_the_checkouts_solutions_then_its_learner_notebooks():
    found = [f"{p.parent.name}/{p.name}" for p in device_check.find_notebooks(None)]
    assert found[0] == "solutions/01_data.ipynb" and "notebooks/01_data.ipynb" in found
    assert found == sorted(found, key=lambda name: not name.startswith("solutions/"))  # solutions first


def test_without_a_checkout_the_error_says_to_clone_the_repository(tmp_path, monkeypatch):
    monkeypatch.setattr(device_check, "COURSE_ROOT", tmp_path)  # as after a plain pip install: no notebooks beside
    with pytest.raises(device_check.NotebookError, match=r"Clone the repository \(git clone https://github.com/"):
        device_check.find_notebooks(None)


def test_a_failed_cell_is_named_by_its_exception_when_the_report_starts_with_the_traceback(tmp_path):
    """Some nbval/pytest versions put only the report's first line in the JUnit message attribute."""
    from lecture_utils.device_check import _read_junit

    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite><testcase name="Cell 1"><failure message="Traceback (most recent call last)">'
        "Traceback (most recent call last)\n  File \"x\", line 1\n#x1B[0;31mRuntimeError#x1B[0m: boom on purpose\n"
        '</failure></testcase><testcase name="Cell 0"/></testsuite></testsuites>')
    run = _read_junit(report, "broken.ipynb", 1.0, 1, "")
    assert (run.passed, run.failed) == (1, 1)
    assert run.problem == "Cell 1: RuntimeError: boom on purpose"
