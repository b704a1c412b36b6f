"""A failed check reads like a teacher's remark: the verdict once, no frames from lecture_utils.

It must stay an ``AssertionError`` so that the cell stops and "run all" halts there, and the
notebook's error output must still say what failed (nbval and the grader see an error).
"""

from __future__ import annotations

import re
import textwrap

import pytest

from lecture_utils.checks import CheckFailed

ANSI = re.compile(r"\x1b\[[0-9;]*m")

WRONG_HEAD = textwrap.dedent('''
    import torch
    import torch.nn as nn
    from torch.nn import functional as F
    import lecture_utils.checks as check

    class Head(nn.Module):
        def __init__(self, n_embd, head_size, block_size, dropout=0.0):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            B, T, C = x.shape
            wei = self.query(x) @ self.key(x).transpose(-2, -1) * C ** -0.5
            wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
            return F.softmax(wei, dim=-1) @ self.value(x)
    ''')

CRASHING_HEAD = WRONG_HEAD.replace(
    "wei = self.query(x) @", "wei = self.querry(x) @")  # a typo a learner makes: AttributeError in forward


@pytest.fixture
def shell():
    IPython = pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    yield sh
    sh.reset()
    InteractiveShell.clear_instance()
    del IPython


def _shown(shell, capsys, source: str):
    capsys.readouterr()
    result = shell.run_cell(source)
    return result, ANSI.sub("", capsys.readouterr().out)


def test_a_failed_check_shows_its_verdict_once_and_no_package_frames(shell, capsys):
    shell.run_cell(WRONG_HEAD)
    result, shown = _shown(shell, capsys, "Head = check.head(Head)")
    assert isinstance(result.error_in_exec, CheckFailed)
    assert isinstance(result.error_in_exec, AssertionError)  # the cell stops; run-all halts
    hint = result.error_in_exec.hint
    assert "head_size" in hint  # the diagnosis of scaling by C
    assert shown.count("Exercise 4.1") == 1, shown
    assert shown.count(hint.split()[0] + " " + hint.split()[1]) == 1, shown
    assert "_core.py" not in shown and "lecture_utils" not in shown and "Traceback" not in shown, shown
    assert "Fix the exercise cell above" in shown


def test_a_crash_in_the_learners_code_shows_their_line(shell, capsys):
    shell.run_cell(WRONG_HEAD)
    shell.run_cell(CRASHING_HEAD)
    result, shown = _shown(shell, capsys, "Head = check.head(Head)")
    assert isinstance(result.error_in_exec, CheckFailed)
    assert "AttributeError" in shown
    assert "self.querry(x)" in shown  # the learner's own line, verbatim
    assert "_core.py" not in shown and "torch/nn" not in shown, shown


def test_outside_ipython_the_message_is_the_whole_verdict():
    err = CheckFailed("4.1", "one head", "softmax over the wrong dimension")
    assert str(err) == "Exercise 4.1 (one head): softmax over the wrong dimension"
    assert isinstance(err, AssertionError)


def test_in_a_kernel_the_error_output_carries_the_verdict_and_run_all_halts(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(WRONG_HEAD), nbformat.v4.new_code_cell("Head = check.head(Head)"),
                nbformat.v4.new_code_cell("print('after the failed check')")]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError):
        client.execute()
    failed = nb.cells[1].outputs
    errors = [o for o in failed if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "CheckFailed"
    assert "head_size" in errors[0].evalue
    text = ANSI.sub("", "\n".join(errors[0].traceback))
    assert "_core.py" not in text and "lecture_utils" not in text
    # shown once: no separate display line repeating the verdict
    assert [o for o in failed if o.output_type != "error"] == []
    assert nb.cells[2].outputs == []  # run-all stopped at the failed check
