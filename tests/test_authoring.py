"""The generator: learner notebooks come from solutions/, and never overwrite a learner's work."""

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from lecture_utils import authoring

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def test_notebooks_are_in_sync_with_solutions():
    problems = authoring.build(ROOT, check_only=True)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_every_notebook_is_clean_valid_and_colab_ready(path):
    for nb_path in (path, ROOT / "notebooks" / path.name):
        nb = authoring.read_notebook(nb_path)
        assert nb.nbformat == 4
        assert nb.metadata["kernelspec"]["name"] == "python3"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), "outputs must be stripped"
        assert code[0].source == authoring.COLAB_CELL, "the first code cell must be the Colab set-up cell"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_learner_copies_hold_no_solution_and_every_exercise_is_checked(path):
    learner = authoring.read_notebook(ROOT / "notebooks" / path.name)
    solution = authoring.read_notebook(path)
    text = json.dumps([c.source for c in learner.cells])
    assert authoring.BEGIN not in text and authoring.END not in text
    exercises = authoring.exercises_in(solution)
    assert exercises, f"{path.name} has no exercise"
    chapter = int(path.name[:2])
    import lecture_utils.checks as check

    sources = [c.source for c in solution.cells]
    for ex_id, _ in exercises:
        assert int(ex_id.split(".")[0]) == chapter
        assert ex_id in check.REGISTRY, f"exercise {ex_id} has no check in lecture_utils.checks"
        name = check.REGISTRY[ex_id].check.__name__
        i = next(i for i, s in enumerate(sources) if s.startswith(f"# Exercise {ex_id}"))
        assert f"check.{name}(" in sources[i + 1], f"the cell after exercise {ex_id} must call check.{name}"
        assert f'NotImplementedError("Exercise {ex_id}' in learner.cells[i].source


def _solution(cells):
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return nb


def test_strip_solution_keeps_signature_and_indentation():
    src = "# Exercise 9.1: thing\ndef f(x):\n    y = 1\n    # BEGIN SOLUTION\n    return x + y\n    # END SOLUTION\n"
    out = authoring.strip_solution(src)
    assert out == '# Exercise 9.1: thing\ndef f(x):\n    y = 1\n    raise NotImplementedError("Exercise 9.1: thing - your code here")'
    compile(out, "cell", "exec")


@pytest.mark.parametrize(
    "src, message",
    [
        ("def f():\n    # BEGIN SOLUTION\n    pass\n    # END SOLUTION", "must start with '# Exercise"),
        ("# Exercise 9.1: x\ndef f():\n    # BEGIN SOLUTION\n    pass", "never closed"),
        ("# Exercise 9.1: x\ndef f():\n    pass", "has no # BEGIN SOLUTION"),
        ("# Exercise 9.1: x\n# END SOLUTION", "without"),
    ],
)
def test_malformed_exercises_are_clear_errors(src, message):
    with pytest.raises(authoring.AuthoringError, match=message):
        authoring.strip_solution(src)


def test_build_never_overwrites_a_learners_edited_notebook(tmp_path):
    (tmp_path / "solutions").mkdir()
    cell = nbformat.v4.new_code_cell("# Exercise 9.1: x\ndef f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION")
    cell.metadata["tags"] = ["exercise"]
    nbformat.write(_solution([cell]), tmp_path / "solutions" / "09_x.ipynb")
    assert authoring.build(tmp_path) == []
    learner = tmp_path / "notebooks" / "09_x.ipynb"
    nb = nbformat.read(learner, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("raise NotImplementedError", "return 2  #")
    nbformat.write(nb, learner)
    edited = learner.read_bytes()
    # the solution changes; the learner's file must survive a rebuild
    sol = nbformat.read(tmp_path / "solutions" / "09_x.ipynb", as_version=4)
    sol.cells.append(nbformat.v4.new_markdown_cell("new text"))
    nbformat.write(sol, tmp_path / "solutions" / "09_x.ipynb")
    problems = authoring.build(tmp_path)
    assert problems and "edited since it was generated" in problems[0]
    assert learner.read_bytes() == edited
    assert authoring.build(tmp_path, check_only=True)  # and check reports it out of date
    authoring.build(tmp_path, force=True)
    assert (tmp_path / "notebooks" / "09_x.ipynb.bak").read_bytes() == edited
    assert "new text" in learner.read_text()


def test_invalid_notebook_is_a_clear_error(tmp_path):
    (tmp_path / "bad.ipynb").write_text("{not json")
    with pytest.raises(authoring.AuthoringError, match="not valid JSON"):
        authoring.read_notebook(tmp_path / "bad.ipynb")
    (tmp_path / "v3.ipynb").write_text(json.dumps({"nbformat": 3, "worksheets": []}))
    with pytest.raises(authoring.AuthoringError, match="not an nbformat 4"):
        authoring.read_notebook(tmp_path / "v3.ipynb")


def test_cli_check_fails_when_out_of_date(tmp_path):
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    assert authoring.main(["check", "--root", str(tmp_path)]) == 1
    assert authoring.main(["build", "--root", str(tmp_path)]) == 0
    assert authoring.main(["check", "--root", str(tmp_path)]) == 0


JUPYTERLAB_ONLY = ("%matplotlib widget", "%matplotlib ipympl", "IPython.display.Javascript", "%%javascript",
                   "import jupyterlab", "from jupyterlab", "anywidget", "ipympl")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_no_notebook_depends_on_a_jupyterlab_only_feature(path):
    """Colab, VS Code and Notebook 7 run the course too: core ipywidgets and inline matplotlib only."""
    for nb_path in (path, ROOT / "notebooks" / path.name):
        code = "\n".join(c.source for c in authoring.read_notebook(nb_path).cells if c.cell_type == "code")
        for feature in JUPYTERLAB_ONLY:
            assert feature not in code, f"{nb_path.name} uses {feature!r}"


def test_every_exercise_has_hints_then_its_solution_collapsed_in_the_learner_copy():
    """Hints in steps, Hint 1, Hint 2, ... (at least two; the core exercises have three, tests/test_hints.py), then
    the solution (generated from the exercise cell)."""
    import re

    root = Path(__file__).resolve().parents[1]
    for path in sorted((root / "solutions").glob("*.ipynb")):
        solution = nbformat.read(path, as_version=4)
        learner = authoring.learner_copy(solution, path.name)
        text = "\n".join(c.source for c in learner.cells if c.cell_type == "markdown")
        for ex_id, _ in authoring.exercises_in(solution):
            assert f"<!-- solution {ex_id} -->" not in text, f"{path.name}: marker of {ex_id} not expanded"
            cell = next(c for c in solution.cells if c.source.startswith(f"# Exercise {ex_id}:"))
            block = authoring.solution_block(cell.source)
            assert block in text, f"{path.name}: exercise {ex_id} has no collapsed solution"
            statement = next(c.source for c in solution.cells
                             if c.cell_type == "markdown" and re.search(rf"### Exercise {re.escape(ex_id)}\b", c.source))
            hints = re.findall(r"<summary>Hint (\d+)\b[^<]*</summary>", statement)
            assert len(hints) >= 2 and hints == [str(n) for n in range(1, len(hints) + 1)], \
                f"{path.name}: exercise {ex_id} hints {hints}"
            first = re.search(r"<summary>Hint 1\b[^<]*</summary>(.*?)</details>", statement, re.S).group(1)
            solution_lines = [ln.strip() for ln in authoring.solution_text(cell.source).splitlines()[1:] if len(ln.strip()) > 25]
            assert not any(ln in first for ln in solution_lines), f"{path.name}: hint 1 of {ex_id} gives a solution line"


def test_a_solution_mark_naming_no_exercise_is_an_error():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("<!-- solution 9.9 -->")]
    with pytest.raises(authoring.AuthoringError, match="names no exercise"):
        authoring.learner_copy(nb, "x.ipynb")
