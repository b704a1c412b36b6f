"""The learner's own GPT: chapters 04-07 keep the learner's classes in my_gpt/, chapter 08 builds from them.

The classes are the solutions notebooks' own exercise cells, run in an IPython shell as a learner
runs them, so the test covers reading a class's source from a notebook cell.

Colab is faked, never needed: a ``google.colab`` module whose ``drive.mount`` links a temporary folder
(standing in for the learner's Google Drive) at ``my_gpt.DRIVE``, itself pointed into the test's folder.
"""

from __future__ import annotations

import json
import os
import sys
import types
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


# --- Colab: chapter 08 rebuilds the pieces from the learner's notebooks saved in Google Drive ---


@pytest.fixture
def colab(tmp_path, monkeypatch):
    """A fake Colab runtime in ``tmp_path/content`` (the current folder, as in Colab), with the learner's
    Google Drive in ``tmp_path/cloud``; ``drive.mount`` makes it appear at ``my_gpt.DRIVE``. Yields the
    Drive's "Colab Notebooks" folder and the list of mount calls."""
    cloud = tmp_path / "cloud"
    saved = cloud / "MyDrive" / "Colab Notebooks"
    saved.mkdir(parents=True)
    mounts = []

    def mount(mountpoint):
        mounts.append(mountpoint)
        Path(mountpoint).symlink_to(cloud, target_is_directory=True)

    package = types.ModuleType("google.colab")
    package.drive = types.ModuleType("google.colab.drive")
    package.drive.mount = mount
    monkeypatch.setitem(sys.modules, "google.colab", package)
    monkeypatch.setitem(sys.modules, "google.colab.drive", package.drive)
    monkeypatch.setattr(my_gpt, "DRIVE", str(tmp_path / "drive"))
    (tmp_path / "content").mkdir()
    monkeypatch.chdir(tmp_path / "content")
    return saved, mounts


def _save(notebook: Path, target: Path, edit=lambda source: source, tags: bool = True) -> None:
    """Save ``notebook`` as the learner's copy ``target``, each code cell's source passed through ``edit``."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["source"] = edit("".join(cell["source"])).splitlines(keepends=True)
        if not tags:
            cell["metadata"].pop("tags", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(nb), encoding="utf-8")


def test_in_colab_chapter_08_rebuilds_the_pieces_from_the_saved_notebooks_after_one_drive_mount(colab, tmp_path,
                                                                                              capsys):
    saved, mounts = colab
    # done and saved as Colab saves a copy (the cells' tags dropped: the '# Exercise N.M' line is what counts)
    _save(ROOT / "solutions" / "04_self_attention.ipynb", saved / "Copy of 04_self_attention.ipynb", tags=False)
    _save(ROOT / "solutions" / "05_multi_head.ipynb", saved / "Copy of 05_multi_head.ipynb")
    _save(ROOT / "notebooks" / "06_feed_forward.ipynb", saved / "Copy of 06_feed_forward.ipynb")  # not done
    # saved in a folder of its own, its LayerNorm normalising over the batch: its check fails
    def batch_norm(source):
        return source.replace("x.mean(-1, keepdim=True)", "x.mean(0, keepdim=True)").replace("x.var(-1,", "x.var(0,")

    _save(ROOT / "solutions" / "07_residual_layernorm.ipynb", saved / "course" / "07_residual_layernorm.ipynb",
          batch_norm)

    mine = my_gpt.load()
    out = capsys.readouterr().out
    assert mounts == [my_gpt.DRIVE], "Drive is mounted once, by chapter 08's load"
    written = sorted(p.name for p in Path("my_gpt").iterdir())
    assert written == ["Block.py", "Head.py", "MultiHeadAttention.py"], out
    head = Path("my_gpt/Head.py").read_text()
    assert "rebuilt by lecture_utils.my_gpt.load from" in head and "Copy of 04_self_attention.ipynb" in head
    assert "class Head(nn.Module):" in head and "# BEGIN SOLUTION" in head  # the learner's cell, as written
    assert "FeedForward: exercise 6.1 is not done in Copy of 06_feed_forward.ipynb" in out
    assert "LayerNorm: yours in 07_residual_layernorm.ipynb is not right yet (Exercise 7.1" in out
    assert "fix exercise 7.1 in 07_residual_layernorm.ipynb, save it, and run this cell again" in out
    assert "3 of 5 pieces are yours" in out
    from lecture_utils import model as reference

    block = mine.Block(32, 4, 16, 0.0)
    assert type(block.sa) is mine.MultiHeadAttention and type(block.sa.heads[0]) is mine.Head
    assert mine.LayerNorm is reference.LayerNorm and type(block.ln1) is reference.LayerNorm

    # the learner fixes LayerNorm and Colab saves the notebook: the next load adds it and touches nothing else
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in Path("my_gpt").iterdir()}
    _save(ROOT / "solutions" / "07_residual_layernorm.ipynb", saved / "course" / "07_residual_layernorm.ipynb")
    mine = my_gpt.load()
    out = capsys.readouterr().out
    assert mounts == [my_gpt.DRIVE], "mounted already: no second dialog"
    assert "Rebuilding FeedForward, LayerNorm from" in out and "4 of 5 pieces are yours" in out
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in Path("my_gpt").iterdir() if p.name in before} \
        == before
    assert type(mine.Block(32, 4, 16, 0.0).ln1) is mine.LayerNorm is not reference.LayerNorm


def test_in_colab_drive_is_asked_for_only_when_a_piece_is_missing_and_a_refusal_is_explained(colab, capsys):
    saved, mounts = colab
    folder = Path("my_gpt")
    folder.mkdir()
    for name, _, _ in my_gpt.PIECES:  # the learner uploaded all five files: no dialog
        (folder / f"{name}.py").write_text(f"from lecture_utils.model import {name}\n")
    assert all(p.yours for p in my_gpt.load(show=False).pieces) and mounts == []

    (folder / "Head.py").unlink()

    def refuse(mountpoint):
        raise ValueError("mount failed")

    sys.modules["google.colab"].drive.mount = refuse
    mine = my_gpt.load()
    out = capsys.readouterr().out
    assert "allow this notebook to access Google Drive" in out
    assert "Google Drive is not mounted (ValueError: mount failed)" in out and "run this cell again" in out
    assert not mine.pieces[0].yours and "4 of 5 pieces are yours" in out
    assert sorted(p.name for p in folder.iterdir()) == ["Block.py", "FeedForward.py", "LayerNorm.py",
                                                        "MultiHeadAttention.py"]


def test_rebuild_outside_colab_names_what_it_cannot_use(tmp_path, capsys):
    saved = tmp_path / "saved"
    assert my_gpt.rebuild(tmp_path / "my_gpt", saved) == []
    assert f"No folder {saved}" in capsys.readouterr().out
    saved.mkdir()
    (saved / "04_self_attention.ipynb").write_text("{not json")
    mine = my_gpt.load(tmp_path / "my_gpt", notebooks=saved)
    out = capsys.readouterr().out
    assert "is not a readable notebook (JSONDecodeError" in out
    assert "MultiHeadAttention: no notebook named like 05_multi_head.ipynb here" in out
    assert not any(p.yours for p in mine.pieces) and not (tmp_path / "my_gpt").exists()


def test_keep_in_colab_says_to_save_the_notebook_in_drive(shell, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    _write_pieces(shell, names=("FeedForward",))
    assert "chapter 08 rebuilds your FeedForward from this notebook" in capsys.readouterr().out


def test_load_rechecks_a_kept_file_edited_by_hand_and_names_the_mistake(shell, tmp_path, capsys):
    from lecture_utils.checks import RESULTS
    from lecture_utils.model import Head as ReferenceHead

    _write_pieces(shell, names=("Head",))
    path = tmp_path / "my_gpt" / "Head.py"
    source = path.read_text()
    assert " * k.shape[-1] ** -0.5" in source
    path.write_text(source.replace(" * k.shape[-1] ** -0.5", ""))  # the learner "simplifies" the file
    RESULTS.clear()
    mine = my_gpt.load(tmp_path / "my_gpt")
    table = capsys.readouterr().out
    assert mine.Head is ReferenceHead
    assert "Head                 reference" in table
    assert f"your {path} fails exercise 4.1's check: the affinities are not scaled" in table
    assert "4.1" not in RESULTS  # chapter 08's own record is not touched by the re-check


def test_keep_takes_along_the_helpers_and_constants_the_class_uses(shell, tmp_path):
    _run(shell, """
SCALE_POWER = -0.5


def scaled_affinities(q, k):
    return q @ k.transpose(-2, -1) * k.shape[-1] ** SCALE_POWER


class Head(nn.Module):
    def __init__(self, n_embd, head_size, block_size, dropout=0.0):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        T = x.shape[1]
        wei = scaled_affinities(self.query(x), self.key(x))
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        return self.dropout(F.softmax(wei, dim=-1)) @ self.value(x)
""")
    _run(shell, "Head = check.head(Head)")
    _run(shell, "my_gpt.keep(Head)")
    kept = (tmp_path / "my_gpt" / "Head.py").read_text()
    assert "SCALE_POWER = -0.5" in kept and "def scaled_affinities(q, k):" in kept
    mine = my_gpt.load(tmp_path / "my_gpt", show=False)  # runs on its own: no NameError, and passes its check
    assert mine.pieces[0].yours


def test_keep_says_what_it_cannot_take_along(shell, tmp_path):
    _run(shell, """
mask = torch.tril(torch.ones(16, 16))


class Head(nn.Module):
    def __init__(self, n_embd, head_size, block_size, dropout=0.0):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", mask[:block_size, :block_size].clone())
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        T = x.shape[1]
        wei = self.query(x) @ self.key(x).transpose(-2, -1) * self.key.out_features ** -0.5
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        return self.dropout(F.softmax(wei, dim=-1)) @ self.value(x)
""")
    _run(shell, "Head = check.head(Head)")
    result = shell.run_cell("my_gpt.keep(Head)")
    assert isinstance(result.error_in_exec, my_gpt.MyGPTError)
    assert "reads mask (a Tensor) from the notebook" in str(result.error_in_exec)
    assert not (tmp_path / "my_gpt" / "Head.py").exists()
