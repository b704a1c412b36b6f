"""The learner's own GPT: chapters 04-07 keep the learner's classes in my_gpt/, chapter 08 builds from them.

The classes are the solutions notebooks' own exercise cells, run in an IPython shell as a learner
runs them, so the test covers reading a class's source from a notebook cell.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
import torch

from lecture_utils import my_gpt
from lecture_utils.model import GPTConfig

ROOT = Path(__file__).resolve().parents[1]
SETUP = """
import math
import torch
import torch.nn as nn
from torch.nn import functional as F
import lecture_utils.checks as check
from lecture_utils import my_gpt
"""


def _exercise_cell(notebook: str, exercise: str) -> str:
    nb = nbformat.read(ROOT / "solutions" / f"{notebook}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.lstrip().startswith(f"# Exercise {exercise}:"):
            return cell.source
    raise AssertionError(f"no exercise {exercise} in {notebook}")


@pytest.fixture
def shell(tmp_path):
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell

    old = os.getcwd()
    os.chdir(tmp_path)
    sh = InteractiveShell.instance()
    sh.run_cell(SETUP)
    yield sh
    os.chdir(old)
    sh.reset()
    InteractiveShell.clear_instance()


def _run(shell, source: str):
    result = shell.run_cell(source)
    assert result.error_in_exec is None and result.error_before_exec is None, result
    return result


def _write_pieces(shell, names=("Head", "MultiHeadAttention", "FeedForward", "LayerNorm", "Block")):
    from lecture_utils.model import FeedForward, Head, LayerNorm, MultiHeadAttention

    # what each chapter's set-up imports from the package before its own exercise
    shell.user_ns.update(Head=Head, MultiHeadAttention=MultiHeadAttention, FeedForward=FeedForward,
                         LayerNorm=LayerNorm)
    checks = {"Head": ("04_self_attention", "4.1", "head"), "MultiHeadAttention": ("05_multi_head", "5.1", "multi_head"),
              "FeedForward": ("06_feed_forward", "6.1", "feed_forward"),
              "LayerNorm": ("07_residual_layernorm", "7.1", "layer_norm"),
              "Block": ("07_residual_layernorm", "7.2", "block")}
    for name in names:
        notebook, exercise, check = checks[name]
        _run(shell, _exercise_cell(notebook, exercise))
        _run(shell, f"{name} = check.{check}({name})")
        _run(shell, f"my_gpt.keep({name})")


def test_keep_writes_the_learners_own_cell_and_load_builds_from_it(shell, tmp_path, capsys):
    _write_pieces(shell)
    files = sorted(p.name for p in (tmp_path / "my_gpt").iterdir())
    assert files == ["Block.py", "FeedForward.py", "Head.py", "LayerNorm.py", "MultiHeadAttention.py"]
    head_file = (tmp_path / "my_gpt" / "Head.py").read_text()
    assert "class Head(nn.Module):" in head_file and "# BEGIN SOLUTION" in head_file  # the cell, as written
    capsys.readouterr()
    mine = my_gpt.load(tmp_path / "my_gpt")
    table = capsys.readouterr().out
    assert "5 of 5 pieces are yours" in table
    assert all(p.yours for p in mine.pieces)
    block = mine.Block(32, 4, 16, 0.0)
    # the learner's Block is made of the learner's pieces, found by name in the one namespace
    assert type(block.sa) is mine.MultiHeadAttention and type(block.sa.heads[0]) is mine.Head
    assert type(block.ffwd) is mine.FeedForward and type(block.ln1) is mine.LayerNorm


def test_chapter_08_model_from_the_learners_pieces_equals_the_reference_with_their_weights(shell, tmp_path):
    _write_pieces(shell)
    mine = my_gpt.load(tmp_path / "my_gpt", show=False)
    shell.user_ns.update(Block=mine.Block, LayerNorm=mine.LayerNorm)
    _run(shell, _exercise_cell("08_scaling_up", "8.1"))
    _run(shell, "GPTLanguageModel = check.gpt(GPTLanguageModel)")
    GPTLanguageModel = shell.user_ns["GPTLanguageModel"]
    config = GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=2, dropout=0.0)
    model = GPTLanguageModel(config).eval()
    same = my_gpt.as_reference(model).eval()
    idx = torch.randint(65, (2, 16))
    torch.testing.assert_close(model(idx)[0], same(idx)[0], atol=1e-5, rtol=1e-5)


def test_skipped_pieces_come_from_the_reference_and_the_table_says_so(shell, tmp_path, capsys):
    _write_pieces(shell, names=("Head", "MultiHeadAttention"))
    capsys.readouterr()
    mine = my_gpt.load(tmp_path / "my_gpt")
    table = capsys.readouterr().out
    assert "2 of 5 pieces are yours" in table
    assert "Block                reference" in table and "exercise 7.2 skipped" in table
    assert "your MultiHeadAttention is not used" in table  # the reference Block builds its own parts
    from lecture_utils import model as reference

    assert mine.Block is reference.Block and mine.FeedForward is reference.FeedForward


def test_keep_refuses_a_class_whose_check_has_not_passed(shell, tmp_path):
    from lecture_utils.checks import RESULTS

    RESULTS.pop("6.1", None)
    _run(shell, _exercise_cell("06_feed_forward", "6.1"))
    result = shell.run_cell("my_gpt.keep(FeedForward)")
    assert isinstance(result.error_in_exec, my_gpt.MyGPTError)
    assert "run the check cell above" in str(result.error_in_exec)
    assert not (tmp_path / "my_gpt").exists()


def test_keep_of_the_reference_writes_nothing(tmp_path, capsys):
    from lecture_utils.model import Head

    my_gpt.keep(Head, folder=tmp_path / "my_gpt")
    assert "nothing written" in capsys.readouterr().out
    assert not (tmp_path / "my_gpt").exists()


def test_a_broken_file_is_named_in_the_error(tmp_path):
    (tmp_path / "Head.py").write_text("class Head(nn.Module):\n    def forward(self, x):\n        return x +\n")
    with pytest.raises(my_gpt.MyGPTError, match=r"Head\.py does not run"):
        my_gpt.load(tmp_path, show=False)


def test_chapter_08_exercise_passes_with_the_reference_pieces_too(shell, tmp_path):
    """The grader runs chapter 08 in an empty folder: every piece is the reference (batched heads)."""
    mine = my_gpt.load(tmp_path / "nothing here", show=False)
    shell.user_ns.update(Block=mine.Block, LayerNorm=mine.LayerNorm)
    _run(shell, _exercise_cell("08_scaling_up", "8.1"))
    _run(shell, "GPTLanguageModel = check.gpt(GPTLanguageModel)")
    model = shell.user_ns["GPTLanguageModel"](GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=2))
    idx = torch.randint(65, (1, 8))
    torch.testing.assert_close(model.eval()(idx)[0], my_gpt.as_reference(model).eval()(idx)[0])
