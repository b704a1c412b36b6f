"""``python -m lecture_utils doctor``: is everything the course needs here, and will its widgets render?

:func:`main` prints one [OK]/[FAIL] line per requirement (Python, torch and a matrix multiply on the picked
device, the corpus and its checksum, the notebook packages), each failure with its fix; then the front end it
runs under (:func:`detect_front_end`, from the environment and this process's ancestors) and whether the
course's widgets render there (:func:`widget_verdict`, from the installed versions).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib import metadata

FRONT_ENDS = ("Colab", "VS Code", "JupyterLab", "Notebook", "plain Python")
_KERNEL_MARKERS = ("ipykernel_launcher", "ipykernel", "colab_kernel_launcher")


def _ancestor_cmdlines(limit: int = 25) -> list[str]:
    """The command lines of this process and its parents, nearest first (Linux /proc; psutil elsewhere)."""
    lines = []
    try:
        pid = os.getpid()
        for _ in range(limit):
            if pid <= 1:
                break
            if os.path.exists(f"/proc/{pid}/cmdline"):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    lines.append(f.read().replace(b"\0", b" ").decode(errors="replace").strip())
                with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
                    pid = int(f.read().rsplit(")", 1)[1].split()[1])
            else:
                import psutil  # ipykernel's dependency; present wherever a notebook kernel is

                proc = psutil.Process(pid)
                lines.append(" ".join(proc.cmdline()))
                pid = proc.ppid()
    except Exception:  # a process we may not read: keep what we have
        pass
    return lines


def detect_front_end(environ, cmdlines: list[str], colab_importable: bool = False) -> tuple[str, str]:
    """``(front end, how it was recognised)``; the front end is one of ``FRONT_ENDS``.

    ``cmdlines`` are this process's and its ancestors' command lines, nearest first: doctor run in a
    notebook (``!python -m lecture_utils doctor``) has the kernel and then the server among them."""
    if "COLAB_RELEASE_TAG" in environ or colab_importable:
        return "Colab", "Google Colab's runtime (COLAB_RELEASE_TAG / google.colab)"
    kernel = next((i for i, c in enumerate(cmdlines) if any(m in c for m in _KERNEL_MARKERS)), None)
    if kernel is None:
        where = " in VS Code's terminal" if environ.get("TERM_PROGRAM") == "vscode" else ""
        return "plain Python", f"no notebook kernel among this process's parents{where}"
    above = cmdlines[kernel + 1:]
    if "VSCODE_PID" in environ or any("vscode" in c.lower() for c in above):
        return "VS Code", "a kernel started by VS Code"
    for c in above:
        low = c.lower()
        if "jupyter-lab" in low or "jupyterlab" in low or "jupyter lab" in low:
            return "JupyterLab", f"a kernel of: {c[:80]}"
        if "jupyter-notebook" in low or "-m notebook" in low or "jupyter notebook" in low or "jupyter-nbclassic" in low:
            return "Notebook", f"a kernel of: {c[:80]}"
    return "JupyterLab", "a notebook kernel whose front end is not among its parents (assumed JupyterLab)"


def _major(version: str | None) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except (TypeError, ValueError):
        return None


def widget_verdict(front_end: str, versions: dict) -> tuple[bool | None, str, str]:
    """``(ok, what, fix)`` for whether the course's widgets render in ``front_end``, given the installed
    ``versions`` (``{"ipywidgets": "8.1.5", "jupyterlab_widgets": ..., ...}``; None for a missing package).
    ``ok`` is None where widgets cannot render by nature (plain Python): said, but not a failure."""
    iw = versions.get("ipywidgets")
    if iw is None:
        return False, "ipywidgets is not installed: no widget can render", 'pip install "ipywidgets>=7.7.1"'
    major = _major(iw)
    if front_end == "plain Python":
        return (None, "widgets do not render in a plain Python process (the course's widgets need a notebook "
                "front end)", "open the notebooks in JupyterLab (jupyter lab notebooks/), Notebook 7, VS Code or Colab")
    if front_end == "Colab":
        if major == 7:
            return True, f"widgets render in Colab: its own widget manager speaks ipywidgets {iw}", ""
        return (False, f"Colab's built-in widget manager renders ipywidgets 7, not {iw}",
                "run once: from google.colab import output; output.enable_custom_widget_manager() - or restore "
                'Colab\'s version: pip install "ipywidgets==7.7.1", then Runtime > Restart session')
    if front_end == "VS Code":
        return True, f"widgets render in VS Code: its Jupyter extension ships the manager for ipywidgets {iw}", ""
    jl, jlw, nb, wne = (versions.get(k) for k in ("jupyterlab", "jupyterlab_widgets", "notebook", "widgetsnbextension"))
    classic = front_end == "Notebook" and nb is not None and _major(nb) is not None and _major(nb) < 7
    if classic:  # Notebook 6 loads nbextensions: widgetsnbextension 4 for ipywidgets 8, 3 for 7
        want = {8: 4, 7: 3}.get(major)
        if wne is None or _major(wne) != want:
            return (False, f"classic Notebook {nb} needs widgetsnbextension {want}.x for ipywidgets {iw} "
                    f"(found: {wne or 'none'})", 'pip install -U "ipywidgets>=8" "notebook>=7"')
        return True, f"widgets render in Notebook {nb}: ipywidgets {iw} with widgetsnbextension {wne}", ""
    # JupyterLab and Notebook 7 load lab extensions: jupyterlab_widgets 3 for ipywidgets 8, 1 for 7
    app = f"{front_end} {jl if front_end == 'JupyterLab' else nb}" if (jl or nb) else front_end
    if jlw is None:
        if jl is None and nb is None:
            return (None, f"{front_end} runs from another environment than this kernel: its widget extension "
                    "cannot be checked from here", f'in the environment that runs {front_end}: pip install '
                    f'"jupyterlab_widgets{">=3" if major == 8 else "<2"}" (matching ipywidgets {iw} here)')
        return (False, f"{app} has no widget extension (jupyterlab_widgets): widgets show as text",
                'pip install -U "ipywidgets>=8", then restart the server')
    want = {8: 3, 7: 1}.get(major)
    if major == 8 and _major(jlw) != want:
        return (False, f"{app}: jupyterlab_widgets {jlw} does not speak ipywidgets {iw} (needs {want}.x)",
                'pip install -U "ipywidgets>=8" "jupyterlab_widgets>=3", then restart the server')
    if major == 7 and _major(jlw) != want:  # pip pairs ipywidgets 7.7.1 with any jupyterlab_widgets
        return (None, f"{app} with jupyterlab_widgets {jlw} and an ipywidgets {iw} kernel: not tested by the "
                "course", 'pip install -U "ipywidgets>=8", then restart the server')
    if major == 7 and _major(jl) is not None and _major(jl) >= 4:  # fixed upstream in 2024 releases of 1.1.x
        return (None, f"JupyterLab {jl} renders ipywidgets 7 only with a 2024-or-later jupyterlab_widgets 1.1 "
                f"release (found {jlw}; not tested by the course)", 'pip install -U "ipywidgets>=8", then restart the server')
    return True, f"widgets render in {app}: ipywidgets {iw} with jupyterlab_widgets {jlw}", ""


def _installed_versions() -> dict:
    found = {}
    for name in ("ipywidgets", "jupyterlab", "jupyterlab_widgets", "notebook", "widgetsnbextension", "ipykernel"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found



def _cpu_threads_lines(line) -> None:
    """The threads the notebooks will use on this CPU, and a note when other work already keeps its cores busy."""
    import os

    from lecture_utils.device import THREADS_VAR, course_threads, cpu_cores

    try:
        n = course_threads()
    except ValueError as exc:
        line(False, str(exc))  # the message says what to set
        return
    cores = cpu_cores()
    line(True, f"the notebooks use {n} torch thread{'s' * (n != 1)} of {cores} core{'s' * (cores != 1)} "
               f"(one core is left to the rest of the machine; {THREADS_VAR}=N changes it)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if load is not None and load >= cores - n + 0.5:
        line(None, f"the machine is busy: load average {load:.1f} on {cores} cores, so the longer cells will take "
                   "longer than their notes say; close other heavy programs, or keep to one thread "
                   f"({THREADS_VAR}=1): threads that wait for a busy core make every step many times slower")


def main(args=None) -> int:
    """``python -m lecture_utils doctor``: [OK]/[FAIL] for each thing the course needs, with the fix for each
    failure; then the front end this runs under and whether the course's widgets render there. Returns the
    exit status: 0 when every check passed, 1 otherwise. ``args`` (the parsed command line) is not used:
    doctor takes no options."""
    checks = []

    def line(ok: bool | None, what: str, fix: str = "") -> None:
        if ok is not None:
            checks.append(ok)
        mark = {True: "OK", False: "FAIL", None: "--"}[ok]
        print(f"[{mark}] {what}" + ("" if ok or not fix else f"\n       fix: {fix}"))

    v = sys.version_info
    line(v >= (3, 10), f"Python {v.major}.{v.minor}.{v.micro}", "install Python 3.10 or newer")
    try:
        import torch

        from lecture_utils.device import describe, pick_device, use_course_threads

        dev = pick_device()
        try:
            use_course_threads()  # as the notebooks do, so that the line below names their threads
        except ValueError:
            pass  # a bad LECTURE_UTILS_THREADS: reported with its fix below
        line(True, f"torch {torch.__version__}; {describe(dev)}")
        x = torch.randn(4, 4, device=dev)
        line(bool(torch.isfinite(x @ x).all()), f"a matrix multiply on {dev.type}",
             "set LECTURE_UTILS_DEVICE=cpu and report the problem")
        if dev.type == "cpu":
            _cpu_threads_lines(line)
    except Exception as exc:
        line(False, f"torch: {exc}", 'pip install "torch>=2.2"')
    try:
        from lecture_utils import data

        text = data.load_text()
        line(len(text) == data.TINY_SHAKESPEARE_CHARS,
             f"corpus {data.corpus_path().name}: {len(text):,} characters, SHA-256 verified")
    except Exception as exc:
        line(False, f"corpus: {exc}", 'reinstall the package: pip install -e ".[dev]"')
    for mod, fix in (("ipywidgets", 'pip install "ipywidgets>=7.7.1"'), ("matplotlib", "pip install matplotlib"),
                     ("tqdm", "pip install tqdm"), ("ipykernel", "pip install ipykernel")):
        try:
            m = __import__(mod)
            line(True, f"{mod} {getattr(m, '__version__', '')}".strip())
        except ImportError:
            line(False, f"{mod} is not installed", fix)
    versions = _installed_versions()
    try:
        colab = importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):
        colab = False
    front, how = detect_front_end(os.environ, _ancestor_cmdlines(), colab)
    print(f"front end: {front} ({how})")
    line(*widget_verdict(front, versions))
    if front == "plain Python":  # from a terminal: what the front ends installed here would show
        for app, key in (("JupyterLab", "jupyterlab"), ("Notebook", "notebook")):
            if versions.get(key):
                line(*widget_verdict(app, versions))
        if not versions.get("jupyterlab") and not versions.get("notebook"):
            line(None, "no JupyterLab or Notebook is installed in this environment",
                 'pip install -e ".[dev]" (JupyterLab), or open the notebooks in VS Code or Colab')
    ok = all(checks)
    print("everything the course needs is here" if ok else "some checks failed: see the fixes above")
    return 0 if ok else 1


__all__ = ["FRONT_ENDS", "detect_front_end", "widget_verdict", "main"]
