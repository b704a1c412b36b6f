"""The compatibility matrix the course proves: ``nox`` runs every session below (``nox -l`` lists them).

Each session makes a fresh virtual environment, installs torch 2.13.0 FIRST (on this project's machines
the CPU build lies on disk for Python 3.11; pinning it, and passing it as a constraint to every later
install, stops a resolver from pulling another, multi-GB torch), then one set of versions of
everything else, and runs the package tests (``tests/``) plus nbval over the learner notebooks
(``notebooks/``) in the smoke setting (the root ``conftest.py`` sets ``LECTURE_UTILS_SMOKE=1``).

- ``oldest``: the lowest version pyproject.toml admits of every dependency and dev tool (each ``>=X``
  pinned to ``==X``; torch excepted), so a lower bound is a tested version, not a guess.
- ``colab``: the versions Colab ships (numpy 1.26, ipywidgets 7.7.1, matplotlib 3.10, IPython 7.34,
  ipykernel 6.17 - from public reports of Colab's ``pip list``), with the course installed the way
  its first notebook cell installs it there, which must leave every one of them as it was
  (``tests/test_colab_cell.py``). The front end is Colab's own, so no JupyterLab or browser here.
- ``py312``: Colab's Python, with the newest of everything. PyPI has no CPU-only torch for Linux:
  torch 2.13.0 for Python 3.12 comes from PyPI as the CUDA build (2.74 GB of wheels; see README).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent
TORCH = "torch==2.13.0"

nox.options.sessions = ["oldest", "colab", "py312"]
nox.options.reuse_existing_virtualenvs = False  # every run installs fresh
nox.options.error_on_missing_interpreters = True  # a missing Python fails the matrix, never skips it
nox.options.download_python = "never"  # nothing but PyPI is reachable from CI

# Colab's kernel-side packages (public `pip list` reports from Colab, 2024-2025). Colab itself runs
# Python 3.12 and torch 2.10; here they run on Python 3.11 with torch 2.13.0 (see the module docstring).
COLAB = [
    "numpy==1.26.4",
    "ipywidgets==7.7.1",
    "matplotlib==3.10.0",
    "ipython==7.34.0",
    "ipykernel==6.17.1",
    "tqdm==4.67.1",
    "nbformat==5.10.4",
    "pytest==8.3.5",
]
# what the test run itself needs beside those (not part of Colab's kernel, not imported by the course)
NBVAL_TOOLS = ["nbval>=0.11", "nbclient>=0.8"]


def _interpreter(version: str) -> str:
    """A Python ``version`` interpreter: the one on PATH if it runs, else pyenv's (CI's machines keep
    several Pythons under ~/.pyenv/versions, reachable through its shims only when selected)."""
    on_path = shutil.which(f"python{version}")
    if on_path and subprocess.run([on_path, "-c", ""], capture_output=True).returncode == 0:
        return on_path
    found = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")))
    return found[-1] if found else version  # nox then reports it missing, and the matrix fails


def lower_bounds(extras: tuple[str, ...] = ("dev",)) -> list[str]:
    """``name==X`` for every ``name>=X`` among pyproject's dependencies and the given extras (torch left
    out: it is pinned separately). A requirement without a lower bound is an error, not a skip."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    low: dict[str, Version] = {}
    for text in reqs:
        req = Requirement(text)
        if req.name == "torch":
            continue
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==")]
        if not lows:
            raise ValueError(f"pyproject.toml: {text!r} has no lower bound; the oldest session needs one")
        # a package named twice (ipywidgets: the kernel's range, and JupyterLab's in the dev extra) is
        # installed at the higher of its lower bounds
        low[req.name] = max([*lows, low.get(req.name, lows[0])])
    return [f"{name}=={v}" for name, v in low.items()]


def _constraints(session: nox.Session, pins: list[str]) -> str:
    path = Path(session.create_tmp()) / "constraints.txt"
    path.write_text("\n".join([TORCH, *pins]) + "\n")
    session.log("constraints: " + ", ".join([TORCH, *pins]))
    return str(path)


def _run_tests(session: nox.Session, *extra: str) -> None:
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    # tests/test_benchmarks.py is left to the main run: it times torch-only scripts (minutes each on two
    # cores), with the same torch 2.13.0 as here, and proves nothing about the versions this matrix varies
    session.run("python", "-m", "pytest", "tests", "notebooks", "-q", "--ignore=tests/test_benchmarks.py",
                *extra, *session.posargs,
                env={"LECTURE_UTILS_SMOKE": "1", "MPLBACKEND": "Agg"})


@nox.session(python=_interpreter("3.11"))
def oldest(session: nox.Session) -> None:
    """The lowest versions pyproject.toml declares (torch stays 2.13.0)."""
    session.install(TORCH)
    constraints = _constraints(session, lower_bounds())
    session.install("-c", constraints, "-e", ".[dev]")
    _run_tests(session)


@nox.session(python=_interpreter("3.11"))
def colab(session: nox.Session) -> None:
    """Colab's versions; the course installed by its own Colab cell, which must change none of them."""
    session.install(TORCH)
    constraints = _constraints(session, COLAB)
    # nbval too (pyproject's pytest options name it); the constraints keep it from moving Colab's versions
    session.install("-c", constraints, *COLAB, *NBVAL_TOOLS)
    # the notebooks' first cell, run as in Colab, against this set (installs the package from the checkout)
    session.run("python", "-m", "pytest", "tests/test_colab_cell.py", "-q", env={"LECTURE_UTILS_COLAB_LIKE": "1"})
    _run_tests(session)


@nox.session(python=_interpreter("3.12"))
def py312(session: nox.Session) -> None:
    """Colab's Python; the newest of everything else (torch 2.13.0: PyPI's CUDA build, run on the CPU)."""
    session.install(TORCH)
    constraints = _constraints(session, [])
    session.install("-c", constraints, "-e", ".[dev]")
    _run_tests(session)
