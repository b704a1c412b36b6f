"""benchmarks/bpe_vs_hf.py (chapter 14 against Hugging Face ``tokenizers``): its --quick table, and its message
when the library is missing. ``tokenizers`` is not a dependency of the package nor of its dev extra, so the run
is skipped where it is not installed; the figures come from the full run in benchmarks/RESULTS.md."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bpe_vs_hf.py"


def parse_table(stdout):
    """The markdown table the script prints last, as a list of {column: cell} dicts."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "").replace("-", "").replace(":", "")) <= {" ", ""}, lines[1]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[2:]]


def _env():
    """This process's environment without PYTHONPATH (the test puts its own in front)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_help_mentions_quick():
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--quick" in out.stdout


def test_missing_tokenizers_is_one_clear_line_and_status_2(tmp_path):
    (tmp_path / "tokenizers.py").write_text("raise ImportError('simulated: not installed')\n")
    out = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env={**_env(), "PYTHONPATH": str(tmp_path)})
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stdout.strip().splitlines() == ["bpe_vs_hf.py needs Hugging Face tokenizers, which is not installed: "
                                               "pip install tokenizers"]


@pytest.mark.slow
def test_quick_run_prints_a_consistent_table():
    pytest.importorskip("tokenizers", reason="Hugging Face tokenizers is not installed (benchmark-only: "
                                             "pip install tokenizers)")
    out = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = parse_table(out.stdout)
    # each vocabulary twice: HF trained on the text as one sequence (like ours) and cut into lines
    assert [(int(r["vocab"]), int(r["merges"]), r["HF input"]) for r in rows] == [
        (272, 16, "one sequence"), (272, 16, "lines"), (304, 48, "one sequence"), (304, 48, "lines")]
    for r in rows:
        n = int(r["merges"])
        ours, hf = float(r["chars/token ours"]), float(r["chars/token HF"])
        assert 1.0 < ours < 3.0 and 1.0 < hf < 3.0, r  # merges compress ASCII text beyond one byte per token
        in_common, of = (int(x) for x in r["merges in common"].split(" of "))
        assert of == n and 0 <= int(r["same first merges"]) <= in_common <= n, r
        if int(r["same first merges"]) == n:  # identical merges must give identical compression
            assert ours == hf and r["divergence a tie"] == "n/a", r
        # each side gives back its text exactly, and HF's encoder with our merges agrees with ours token for token
        assert r["round trip ours"] == r["round trip HF"] == r["same tokens from our merges"] == "yes", r
        for col in ("train ours CPU s", "train HF CPU s", "encode ours s", "encode HF s"):
            assert float(r[col]) > 0, (col, r)
        for col in ("train ours/HF", "encode ours/HF"):  # from the unrounded times: only the form is checked
            assert r[col].endswith("x") and float(r[col][:-1].replace(",", "")) > 0, (col, r)
    # the 48-merge tokenizer extends the 16-merge one (train_bpe is deterministic): it compresses more
    assert float(rows[2]["chars/token ours"]) > float(rows[0]["chars/token ours"])
    # our side does not depend on how HF was fed
    for a, b in ((rows[0], rows[1]), (rows[2], rows[3])):
        assert a["chars/token ours"] == b["chars/token ours"] and a["round trip ours"] == b["round trip ours"]
