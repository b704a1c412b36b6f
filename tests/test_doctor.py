"""`python -m lecture_utils doctor` names the front end it runs under and says whether the course's widgets
render there, with the fix when they do not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lecture_utils.doctor import detect_front_end, widget_verdict

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "/usr/bin/python3 -m ipykernel_launcher -f /run/kernel-1.json"
NEW = {"ipywidgets": "8.1.5", "jupyterlab": "4.2.0", "jupyterlab_widgets": "3.0.13", "notebook": None,
       "widgetsnbextension": "4.0.13"}


@pytest.mark.parametrize("environ, cmdlines, expected", [
    ({"COLAB_RELEASE_TAG": "release-colab_20250101"}, [KERNEL], "Colab"),
    ({}, ["python -m lecture_utils doctor", KERNEL, "/usr/bin/python3 /usr/local/bin/jupyter-lab --no-browser"],
     "JupyterLab"),
    ({}, ["sh -c python -m lecture_utils doctor", KERNEL, "python -m jupyterlab"], "JupyterLab"),
    ({}, ["python -m lecture_utils doctor", KERNEL, "/opt/conda/bin/python /opt/conda/bin/jupyter-notebook"], "Notebook"),
    ({"VSCODE_PID": "4242"}, ["python -m lecture_utils doctor", KERNEL, "/usr/share/code/code --type=utility"], "VS Code"),
    ({}, [KERNEL, "/home/me/.vscode-server/bin/abc/node /home/me/.vscode-server/bin/abc/out/server-main.js"], "VS Code"),
    ({"TERM_PROGRAM": "vscode"}, ["python -m lecture_utils doctor", "-bash"], "plain Python"),
    ({}, ["python -m lecture_utils doctor", "-bash", "sshd: me@pts/0"], "plain Python"),
])
def test_the_front_end_is_recognised_from_the_environment_and_the_process_tree(environ, cmdlines, expected):
    assert detect_front_end(environ, cmdlines)[0] == expected


def test_colab_is_recognised_by_its_module_alone():
    assert detect_front_end({}, [KERNEL], colab_importable=True)[0] == "Colab"


@pytest.mark.parametrize("front_end, versions, ok, says, fix", [
    ("JupyterLab", NEW, True, "jupyterlab_widgets 3.0.13", ""),
    ("JupyterLab", {**NEW, "jupyterlab_widgets": None}, False, "no widget extension", '"ipywidgets>=8"'),
    ("JupyterLab", {**NEW, "ipywidgets": "8.1.5", "jupyterlab_widgets": "1.1.1"}, False, "does not speak", "ipywidgets>=8"),
    ("JupyterLab", {**NEW, "ipywidgets": "7.7.1", "jupyterlab_widgets": "3.0.13"}, None, "not tested", "ipywidgets>=8"),
    ("JupyterLab", {**NEW, "ipywidgets": "7.7.1", "jupyterlab_widgets": "1.1.1"}, None, "not tested", "ipywidgets>=8"),
    ("JupyterLab", {**NEW, "ipywidgets": "7.7.1", "jupyterlab": "3.6.3", "jupyterlab_widgets": "1.1.1"}, True,
     "jupyterlab_widgets 1.1.1", ""),
    ("JupyterLab", {**NEW, "jupyterlab": None, "jupyterlab_widgets": None}, None, "another environment",
     "jupyterlab_widgets>=3"),
    ("Notebook", {**NEW, "notebook": "7.2.0"}, True, "Notebook 7.2.0", ""),
    ("Notebook", {**NEW, "notebook": "6.5.4", "widgetsnbextension": "3.6.6"}, False, "widgetsnbextension 4.x",
     "notebook>=7"),
    ("Colab", {**NEW, "ipywidgets": "7.7.1"}, True, "Colab", ""),
    ("Colab", NEW, False, "renders ipywidgets 7, not 8.1.5", "enable_custom_widget_manager"),
    ("VS Code", NEW, True, "VS Code", ""),
    ("plain Python", NEW, None, "do not render in a plain Python process", "jupyter lab notebooks/"),
    ("JupyterLab", {**NEW, "ipywidgets": None}, False, "ipywidgets is not installed", "pip install"),
])
def test_the_widget_verdict_says_whether_widgets_render_and_the_fix(front_end, versions, ok, says, fix):
    got_ok, what, got_fix = widget_verdict(front_end, versions)
    assert got_ok is ok and says in what and fix in got_fix, (got_ok, what, got_fix)
    assert bool(got_fix) == (ok is not True)


def _doctor_under(*argv0s: str) -> str:
    """Run doctor with fake ancestors: each name is the argv[0] of one process in the chain above it."""
    cmd = f"{sys.executable} -m lecture_utils doctor; :"
    for name in reversed(argv0s):  # innermost first
        cmd = f"(exec -a {name!r} bash -c {cmd!r}); :"
    env = {k: v for k, v in os.environ.items() if k not in ("VSCODE_PID", "COLAB_RELEASE_TAG", "TERM_PROGRAM")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode in (0, 1), out.stderr
    return out.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fakes a process tree with bash's exec -a")
def test_doctor_in_a_jupyterlab_kernel_names_jupyterlab_from_the_real_process_tree():
    out = _doctor_under("/usr/bin/jupyter-lab --no-browser", "python -m ipykernel_launcher -f kernel.json")
    assert "front end: JupyterLab" in out, out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fakes a process tree with bash's exec -a")
def test_doctor_from_a_terminal_says_widgets_need_a_notebook_and_what_the_installed_front_ends_show():
    out = _doctor_under()
    assert "front end: plain Python" in out and "[--] widgets do not render" in out, out
    assert "fix: open the notebooks in JupyterLab" in out
