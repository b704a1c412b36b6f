"""The whole course on one device (cuda, mps or cpu): the check to run on a GPU machine.

Not part of the test suite (which never needs a GPU) and not a benchmark: run it where a GPU is (Colab, a
rented machine, a Mac), from a checkout after ``pip install -e ".[dev]"``, and read what it prints.

    python -m lecture_utils.device_check --device cuda                  # the package on the GPU
    python -m lecture_utils.device_check --device cuda --notebooks      # + every notebook of the course
    python -m lecture_utils.device_check --device cuda --notebooks --markdown gpu.md

Without ``--device`` it picks the course's device (cuda, then mps, then cpu).

The package part checks that every exercise's check passes the reference on that device (so every
tensor a check creates follows the device), that get_batch lands on the device (pinned on CUDA), that
50 training steps run under the device's autocast, that generate works with a CPU generator and with
none, that attention maps come back on the CPU for the heatmaps, and that every model the course builds
(the bigram, the bigram with positions, the lecture's GPT with its list of heads and with batched heads,
chapter 12's variants) takes one training step under autocast with finite losses and weights.

``--notebooks`` then runs every notebook of the checkout's ``solutions/`` and ``notebooks/`` (or the
folders and notebooks named after it) under nbval, one pytest process per notebook, with
``LECTURE_UTILS_DEVICE`` set to the device (every notebook picks its device, and its checks theirs, from
it) and ``LECTURE_UTILS_SMOKE=1`` (long loops shrunk; ``--full`` runs them at full length). It prints a line
as each notebook finishes, then a Markdown table (notebook, result with the count of cells, seconds);
``--markdown FILE`` also writes that table, with the machine named, for ``benchmarks/RESULTS.md``. The
exit status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch

from lecture_utils import data
from lecture_utils.chapters import exercise_key
from lecture_utils.config import TrainConfig
from lecture_utils.device import autocast_dtype, describe, pick_device
from lecture_utils.files import atomic_write_text
from lecture_utils.model import GPT, BigramLanguageModel, BigramWithPositions, GPTConfig
from lecture_utils.modern import build_gpt
from lecture_utils.timing import training_step
from lecture_utils.train import estimate_loss, train

COURSE_ROOT = Path(__file__).resolve().parent.parent  # the checkout, when the package is installed from one
COURSE_FOLDERS = ("solutions", "notebooks")


# ---------------------------------------------------------------------------------------------
# the package part
# ---------------------------------------------------------------------------------------------


def course_models(vocab_size: int, block_size: int = 32) -> list[tuple[str, torch.nn.Module]]:
    """One small instance of every model the course builds, on the CPU, named for the progress lines."""
    small = dict(vocab_size=vocab_size, block_size=block_size, n_embd=64, n_head=4, n_layer=2)
    gpts = [
        ("the lecture's GPT, list of heads (ch. 08)", dict(attention="heads")),
        ("the lecture's GPT, batched heads (ch. 05, 09)", {}),
        ("GPT with GELU (ch. 12)", dict(activation="gelu")),
        ("GPT with SwiGLU (ch. 12)", dict(activation="swiglu")),
        ("GPT with RMSNorm (ch. 12)", dict(norm="rmsnorm")),
        ("GPT with RoPE (ch. 12)", dict(position="rope")),
        ("GPT with tied weights (ch. 12)", dict(tie_weights=True)),
        ("GPT with all of ch. 12's features", dict(activation="swiglu", norm="rmsnorm", position="rope",
                                                  tie_weights=True)),
    ]
    return [("the bigram (ch. 02)", BigramLanguageModel(vocab_size)),
            ("the bigram with positions (ch. 03)", BigramWithPositions(vocab_size, 64, block_size)),
            *((name, build_gpt(GPTConfig(**small, **extra))) for name, extra in gpts)]


def autocast_step(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> float:
    """One training step (forward, backward, AdamW) of ``model`` on ``batch`` under ``device``'s autocast
    (bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere). Returns the loss.

    Raises:
        AssertionError: the loss or a weight after the step is not finite.
    """
    loss = training_step(model.to(device), [batch], device, cpu_bf16=True)()
    assert math.isfinite(loss), f"the loss is {loss}"
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    assert not bad, f"weights not finite after one step: {', '.join(bad)}"
    return loss


def _training_and_sampling(device: torch.device, tok, tr, va) -> None:
    """get_batch, 50 training steps, estimate_loss, generate and the attention maps on ``device``;
    prints a line for each and raises on the first that goes wrong."""
    x, y = data.get_batch(tr, 64, 8, device=device, generator=torch.Generator().manual_seed(0))
    assert x.device.type == device.type, f"get_batch returned a batch on {x.device}"
    print(f"[OK]   get_batch -> {x.device}, contiguous={x.is_contiguous()}")
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_embd=128, n_head=4, n_layer=2)).to(device)
    res = train(model, tr, va, TrainConfig(max_iters=50, eval_interval=25, eval_iters=5, batch_size=8, block_size=64),
                progress=False)
    print(f"[OK]   50 training steps: {res.summary()}")
    print(f"[OK]   estimate_loss: {estimate_loss(model, {'val': va}, 5, 64, 8)}")
    ctx = torch.zeros((2, 1), dtype=torch.long, device=device)
    a = model.generate(ctx, 80, generator=torch.Generator().manual_seed(1))
    b = model.generate(ctx, 80, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b), "generate with the same seeded CPU generator gave two different samples"
    c = model.generate(ctx, 80, top_k=5, temperature=0.8)
    print(f"[OK]   generate: reproducible with a CPU generator; without one: {tuple(c.shape)} on {c.device}")
    maps = model.attention_maps(ctx[:1, :1].repeat(1, 16)).cpu()
    assert torch.allclose(maps.sum(-1), torch.ones(())), "attention rows do not sum to 1"
    print(f"[OK]   attention maps {tuple(maps.shape)}, rows sum to 1")


def check_package(device: torch.device) -> tuple[int, int]:
    """The package part on ``device`` (see the module's docstring), a line printed per item.
    Returns ``(passed, failed)``."""
    import lecture_utils.checks as check

    passed = failed = 0
    for ex_id, ex in sorted(check.REGISTRY.items(), key=lambda kv: exercise_key(kv[0])):
        refs = ex.reference()
        refs = refs if isinstance(refs, tuple) else (refs,)
        start = time.perf_counter()
        try:
            ex.check(*refs, device=device)
            passed += 1
            print(f"[OK]   check {ex_id:<4} with the reference on {device.type} ({time.perf_counter() - start:.2f} s)")
        except Exception as exc:
            failed += 1
            print(f"[FAIL] check {ex_id:<4} on {device.type}: {type(exc).__name__}: {exc}")

    _, tok, tr, va = data.load_dataset()
    try:
        _training_and_sampling(device, tok, tr, va)
        passed += 1
    except Exception as exc:
        failed += 1
        print(f"[FAIL] training and sampling on {device.type}: {type(exc).__name__}: {exc}")

    amp = autocast_dtype(device, cpu_bf16=True)
    precision = f"{str(amp).removeprefix('torch.')} autocast" if amp else "fp32 (no autocast here)"
    batch = data.get_batch(tr, 4, 32, device=device, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    for name, model in course_models(tok.vocab_size):
        try:
            loss = autocast_step(model, batch, device)
            passed += 1
            print(f"[OK]   one training step, {precision}: {name} (loss {loss:.3f})")
        except Exception as exc:
            failed += 1
            print(f"[FAIL] one training step, {precision}: {name}: {type(exc).__name__}: {exc}")
    print("package checks:", "all passed" if failed == 0 else f"{failed} of {passed + failed} failed",
          f"({passed + failed} items)")
    return passed, failed


# ---------------------------------------------------------------------------------------------
# the notebook part
# ---------------------------------------------------------------------------------------------


class NotebookError(ValueError):
    """The notebooks to run cannot be found (or cannot be run here); the message says what to do."""


def find_notebooks(paths: list[str] | None) -> list[Path]:
    """The notebooks to run: those named and every ``*.ipynb`` of the folders named, in that order, each
    folder's sorted; with no paths, the checkout's ``solutions/`` then ``notebooks/``.

    Raises:
        NotebookError: no checkout next to the package (and no paths), a path that does not exist, a
            file that is not a notebook or a folder without any.
    """
    if not paths:
        folders = [COURSE_ROOT / name for name in COURSE_FOLDERS]
        if not all(f.is_dir() for f in folders):
            from lecture_utils.authoring import COURSE_REPO_URL

            raise NotebookError(
                f"the course's notebooks are not next to the package (no solutions/ and notebooks/ in {COURSE_ROOT}): "
                f"they are not part of a plain `pip install`. Clone the repository (git clone {COURSE_REPO_URL}), "
                f"run `pip install -e \".[dev]\"` in it and run this command from there, or name the notebooks' "
                f"folders: --notebooks PATH [PATH ...]")
        paths = [str(f) for f in folders]
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            notebooks = sorted(p.glob("*.ipynb"))
            if not notebooks:
                raise NotebookError(f"no notebooks (*.ipynb) in the folder {p}")
            found += notebooks
        elif p.suffix == ".ipynb" and p.is_file():
            found.append(p)
        elif p.exists():
            raise NotebookError(f"{p} is not a notebook (*.ipynb) or a folder of notebooks")
        else:
            raise NotebookError(f"no such notebook or folder: {p}")
    return found


@dataclass
class NotebookRun:
    """How one notebook went under nbval: its code cells passed, failed (errors included) and skipped."""

    notebook: str
    passed: int
    failed: int
    skipped: int
    seconds: float
    problem: str = ""  # the first failing cell, or why pytest itself failed

    @property
    def ok(self) -> bool:
        return not self.problem and self.failed == 0

    def result(self, markdown: bool = False) -> str:
        """``passed (16 cells)`` or ``failed (1 of 16 cells: Cell 3: RuntimeError: ...)``, bold in Markdown."""
        cells = self.passed + self.failed + self.skipped
        skipped = f", {self.skipped} skipped" if self.skipped else ""
        if self.ok:
            return f"passed ({cells} cells{skipped})"
        failed = "**failed**" if markdown else "failed"
        return f"{failed} ({self.failed} of {cells} cells{skipped}: {self.problem})"


def _shown(path: Path) -> str:
    """``path`` relative to the checkout (or the working folder) where it is inside one."""
    for base in (COURSE_ROOT, Path.cwd()):
        try:
            return path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


_ANSI = re.compile(r"(?:\x1b|#x1B)\[[0-9;]*m")  # colours, raw or as JUnit XML escapes them
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Failed|Interrupt|Exit)\b")


def _exception_line(message: str) -> str:
    """The line of a failed cell's report that names the exception (``RuntimeError: boom``), else its last
    line, without colours and shortened, fit for a table cell."""
    lines = [line.strip() for line in _ANSI.sub("", message).splitlines() if line.strip()]
    named = [line for line in lines if _EXCEPTION.match(line)]
    line = (named or lines or ["no message"])[-1]
    return (line if len(line) <= 120 else line[:117] + "...").replace("|", "\\|")


def _read_junit(report: Path, name: str, seconds: float, returncode: int, output: str) -> NotebookRun:
    """A :class:`NotebookRun` from pytest's JUnit XML (one test case per code cell)."""
    run = NotebookRun(name, 0, 0, 0, seconds)
    cases = ET.parse(report).getroot().iter("testcase") if report.exists() else ()
    for case in cases:
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            run.passed += 1
        elif outcome.tag == "skipped":
            run.skipped += 1
        else:
            run.failed += 1
            if not run.problem:
                # the message attribute is the report's first line in some nbval/pytest versions (a bare
                # "Traceback (most recent call last)"), the element's text the whole report: read both
                report_text = f"{outcome.get('message') or ''}\n{outcome.text or ''}"
                run.problem = f"{case.get('name', 'a cell')}: {_exception_line(report_text)}"
    if returncode != 0 and not run.problem:
        tail = output.strip().splitlines()[-1:] or [""]
        run.problem = f"pytest exited with status {returncode}: {tail[0][:160]}"
    return run


def run_notebook(notebook: Path, device: torch.device, full: bool = False) -> tuple[NotebookRun, str]:
    """Run ``notebook`` under nbval in a pytest process of its own, on ``device`` (``LECTURE_UTILS_DEVICE``),
    in the smoke setting unless ``full``. Returns the run and pytest's output."""
    env = dict(os.environ, LECTURE_UTILS_DEVICE=str(device), LECTURE_UTILS_SMOKE="0" if full else "1")
    env.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory(prefix="device-check-") as tmp:
        report = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-o", "addopts=",  # the checkout's addopts (xdist workers) do not apply
               "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
               "-q", f"--junitxml={report}", str(notebook)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        output = proc.stdout + proc.stderr
        return _read_junit(report, _shown(notebook), seconds, proc.returncode, output), output


def run_notebooks(notebooks: list[Path], device: torch.device, full: bool = False) -> list[NotebookRun]:
    """Run every notebook (:func:`run_notebook`), printing a line as each finishes and, for a failure,
    the end of pytest's output.

    Raises:
        NotebookError: nbval is not installed.
    """
    if importlib.util.find_spec("nbval") is None:
        raise NotebookError("the notebooks run under nbval, which is not installed: run `pip install -e \".[dev]\"` "
                            "in the checkout")
    setting = "full length" if full else "smoke setting"
    print(f"running {len(notebooks)} notebook(s) under nbval on {device.type} ({setting}), one at a time", flush=True)
    runs = []
    for i, notebook in enumerate(notebooks, 1):
        run, output = run_notebook(notebook, device, full)
        runs.append(run)
        tag = "[OK]  " if run.ok else "[FAIL]"
        print(f"{tag} {i}/{len(notebooks)} {run.notebook}: {run.result()} in {run.seconds:.1f} s", flush=True)
        if not run.ok:
            print("\n".join("       " + line for line in output.strip().splitlines()[-30:]), flush=True)
    return runs


def markdown_table(runs: list[NotebookRun]) -> str:
    """The runs as a Markdown table (notebook, result, seconds) and a closing line."""
    rows = [f"| `{r.notebook}` | {r.result(markdown=True)} | {r.seconds:.1f} |" for r in runs]
    failed = sum(not r.ok for r in runs)
    total = sum(r.seconds for r in runs)
    closing = (f"{len(runs)} notebook(s): {len(runs) - failed} passed, {failed} failed, "
               f"{total:.0f} s in all.")
    return "\n".join(["| notebook | result | seconds |", "|---|---|---:|", *rows, "", closing])


def markdown_report(device: torch.device, argv: list[str], full: bool, runs: list[NotebookRun],
                    package: tuple[int, int] | None) -> str:
    """What ``--markdown`` writes: the machine, the date, the command, the package part's count and the table."""
    machine = describe(device).removeprefix("Using device: ")
    paragraphs = [f"Machine: {machine}. Run on {date.today().isoformat()}: "
                  f"`python -m lecture_utils.device_check {' '.join(argv)}` "
                  f"({'full length' if full else 'smoke setting, LECTURE_UTILS_SMOKE=1'})."]
    if package is not None:
        passed, failed = package
        paragraphs.append(f"Package checks on {device.type}: {passed} of {passed + failed} passed.")
    return "\n\n".join([*paragraphs, markdown_table(runs)]) + "\n"


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(prog="python -m lecture_utils.device_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: cuda, then mps, then cpu)")
    p.add_argument("--notebooks", nargs="*", default=None, metavar="PATH",
                   help="also run notebooks under nbval: these folders or notebooks (default: the checkout's "
                        "solutions/ and notebooks/)")
    p.add_argument("--notebooks-only", action="store_true",
                   help="skip the package part: only the notebooks (implies --notebooks)")
    p.add_argument("--full", action="store_true", help="run the notebooks at full length, not in the smoke setting")
    p.add_argument("--markdown", metavar="FILE", default=None,
                   help="also write the notebooks' table, with the machine named, to FILE")
    args = p.parse_args(argv)
    notebook_mode = args.notebooks is not None or args.notebooks_only
    if (args.full or args.markdown) and not notebook_mode:
        p.error("--full and --markdown are about the notebooks: add --notebooks")
    if args.markdown and Path(args.markdown).is_dir():
        p.error(f"--markdown {args.markdown} is a folder: name the file to write the table to")
    try:
        device = pick_device(args.device)
        notebooks = find_notebooks(args.notebooks) if notebook_mode else []
    except (ValueError, NotebookError) as exc:
        p.error(str(exc))
    print(describe(device), "| autocast:", autocast_dtype(device), flush=True)

    package = None if args.notebooks_only else check_package(device)
    failed = package[1] if package else 0
    if notebook_mode:
        try:
            runs = run_notebooks(notebooks, device, args.full)
        except NotebookError as exc:
            p.error(str(exc))
        table = markdown_table(runs)
        print("\n" + table + "\n")
        if args.markdown:
            atomic_write_text(args.markdown, markdown_report(device, argv, args.full, runs, package))
            print(f"table written to {args.markdown}")
        failed += sum(not r.ok for r in runs)
    print("device check:", "all passed" if failed == 0 else f"{failed} failure(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
