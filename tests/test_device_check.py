"""The GPU smoke test (``python -m lecture_utils.device_check``) runs to the end on a CPU too."""

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_device_check_passes_on_the_cpu():
    out = subprocess.run([sys.executable, "-m", "lecture_utils.device_check", "--device", "cpu"], capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "[FAIL]" not in out.stdout and "device check: all passed" in out.stdout
