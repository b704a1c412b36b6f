"""The CLI end to end, as a user types it."""

import subprocess
import sys


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lecture_utils", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_help_lists_the_commands():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("train", "sample", "doctor"):
        assert cmd in out.stdout
    out = run("train", "--help")
    assert "lecture-small" in out.stdout and "--max-iters" in out.stdout


def test_train_then_sample(tmp_path):
    ckpt = tmp_path / "small.pt"
    out = run("train", "--preset", "lecture-small", "--max-iters", "3", "--eval-interval", "2", "--eval-iters", "2",
              "--device", "cpu", "--out", str(ckpt), "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "best val" in out.stdout and ckpt.exists()
    sample = out.stdout.split("sample:\n", 1)[1]  # the run ends with 200 tokens from the best model
    assert len(sample.rstrip("\n")) >= 150, out.stdout
    out = run("sample", "--checkpoint", str(ckpt), "--prompt", "ROMEO:", "--tokens", "20")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ROMEO:") and len(out.stdout.rstrip("\n")) >= 20


def test_modern_flags_reach_the_model_and_the_checkpoint(tmp_path):
    ckpt = tmp_path / "modern.pt"
    out = run("train", "--preset", "lecture-small", "--max-iters", "2", "--eval-interval", "2", "--eval-iters", "1",
              "--activation", "swiglu", "--norm", "rmsnorm", "--position", "rope", "--tie-weights",
              "--dropout", "0.1", "--attn-dropout", "0", "--weight-decay", "0.3", "--decay-matrices-only",
              "--plain-cpu-paths", "--device", "cpu", "--out", str(ckpt), "--no-progress")
    assert out.returncode == 0, out.stderr
    from lecture_utils.checkpoints import read_checkpoint

    ck = read_checkpoint(ckpt)
    cfg = ck["config"]
    assert (cfg["activation"], cfg["norm"], cfg["position"], cfg["tie_weights"]) == ("swiglu", "rmsnorm", "rope", True)
    assert (cfg["dropout"], cfg["attn_dropout"]) == (0.1, 0.0)
    assert (ck["train_config"]["weight_decay"], ck["train_config"]["decay_all"]) == (0.3, False)
    assert ck["train_config"]["fast_cpu_paths"] is False  # --plain-cpu-paths
    out = run("train", "--preset", "bigram", "--max-iters", "1", "--norm", "rmsnorm", "--no-progress")
    assert out.returncode == 2 and "chapter-12 flags" in out.stderr


def test_lecture_preset_runs_two_iterations_on_cpu(tmp_path):
    out = run("train", "--preset", "lecture", "--device", "cpu", "--max-iters", "2", "--eval-iters", "1",
              "--batch-size", "2", "--out", str(tmp_path / "l.pt"), "--no-progress", "--sample-tokens", "0")
    assert out.returncode == 0, out.stderr
    assert "10.788929 M parameters" in out.stdout
    assert "best checkpoint:" in out.stdout and "sample:" not in out.stdout  # --sample-tokens 0: no sample


def test_sample_errors_are_clear(tmp_path):
    out = run("sample", "--checkpoint", str(tmp_path / "missing.pt"))
    assert out.returncode == 2 and "checkpoint not found" in out.stderr
    out = run("train", "--device", "tpu9")
    assert out.returncode == 2 and "unknown device" in out.stderr


def test_doctor_reports_ok():
    out = run("doctor")
    assert out.returncode == 0, out.stdout
    assert "[OK] corpus" in out.stdout and "[FAIL]" not in out.stdout
