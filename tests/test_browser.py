"""The course in a real browser: JupyterLab on 127.0.0.1 driven by headless Chromium (Playwright).

What a learner does: open the learner notebook that holds the attention explorer, run all cells,
wait for the widget, move its controls and see the heatmap change; the same for chapter 03's
averaging widget. Every request that does not go to loopback fails the test (the course needs no
network), and so does any browser console error. Screenshots go to a folder the test prints
(``$LECTURE_UTILS_SCREENSHOTS``, else a temporary folder).

Needs Debian's Chromium (/usr/bin/chromium) and the Python package playwright; skipped with the
reason otherwise. Playwright never downloads a browser here: it is pointed at the system one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    if sync_playwright is None:
        pytest.skip("the Python package playwright is not installed (pip install playwright)")
    work = Path(tempfile.mkdtemp(prefix="lab-"))
    for name in ("03_averaging_trick.ipynb", "08_scaling_up.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, work / name)  # the browser may autosave: never the repo's files
    port, token = _free_port(), secrets.token_hex(16)
    # JupyterLab 4 detaches off-screen cells ("windowing"); render them all, as a scrolling learner sees them
    settings = work / ".lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env = {**os.environ, "LECTURE_UTILS_SMOKE": "1", "JUPYTER_CONFIG_DIR": str(work / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(work / ".runtime"), "JUPYTERLAB_SETTINGS_DIR": str(work / ".lab-settings")}
    log = open(work / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--ServerApp.open_browser=False",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly", "--allow-root"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(work / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    else:
        pytest.fail("JupyterLab did not start within 120 s")
    shots = Path(os.environ.get("LECTURE_UTILS_SCREENSHOTS") or work / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {shots}")
    yield {"base": base, "token": token, "work": work, "shots": shots}
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    log.close()
    assert server.poll() is not None, "the JupyterLab server is still running"


@pytest.fixture
def page(lab):
    errors, blocked = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()

        def route(r):
            host = urlparse(r.request.url).hostname
            if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page
        context.close()
        browser.close()
    assert not blocked, f"the course tried to reach the network: {blocked[:5]}"
    assert not errors, f"browser console errors: {errors[:5]}"


def _open_and_run_all(page, lab, name):
    try:
        page.goto(f"{lab['base']}/lab/tree/{name}?reset&token={lab['token']}")  # a fresh workspace: one notebook open
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.wait_for_timeout(5000)  # let the kernel start
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click(timeout=30_000)
        page.locator(".lm-Menu-item:has-text('Run All Cells')").first.click(timeout=30_000)
    except Exception:
        page.screenshot(path=str(lab["shots"] / f"open-failed-{name}.png"), full_page=True)
        raise


def _image(page, locator):
    img = locator.locator("img").first
    img.wait_for(state="attached", timeout=180_000)
    return img.get_attribute("src")


def _wait_changed(page, locator, before, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        src = locator.locator("img").first.get_attribute("src")
        if src and src != before:
            return src
        time.sleep(0.25)
    page.screenshot(path=str(Path(tempfile.gettempdir()) / "heatmap-unchanged.png"), full_page=True)
    raise AssertionError("the heatmap did not change after the control was moved")


def test_attention_explorer_redraws_when_controls_move(page, lab):
    _open_and_run_all(page, lab, "08_scaling_up.ipynb")
    explorer = page.locator(".widget-vbox:has(textarea)").last
    try:
        explorer.wait_for(state="attached", timeout=240_000)
    except Exception:
        page.screenshot(path=str(lab["shots"] / "explorer-missing.png"), full_page=True)
        raise
    explorer.scroll_into_view_if_needed()
    first = _image(page, explorer)
    explorer.scroll_into_view_if_needed()
    page.screenshot(path=str(lab["shots"] / "explorer-before.png"))
    selects = explorer.locator("select")
    selects.nth(0).select_option(label="1")  # layer
    after_layer = _wait_changed(page, explorer, first)
    slider = explorer.locator(".widget-slider .noUi-handle, .widget-slider input").first
    slider.focus()
    page.keyboard.press("Home")  # query position 0: the marked row moves
    after_query = _wait_changed(page, explorer, after_layer)
    assert "at position 0" in explorer.inner_text()  # the top-k list follows the query
    selects.nth(1).select_option(label="all heads")  # head
    _wait_changed(page, explorer, after_query)
    page.screenshot(path=str(lab["shots"] / "explorer-after.png"))


def test_averaging_widget_switches_versions(page, lab):
    _open_and_run_all(page, lab, "03_averaging_trick.ipynb")
    widget = page.locator(".widget-vbox:has(.widget-toggle-buttons)").first
    widget.wait_for(state="attached", timeout=240_000)
    widget.scroll_into_view_if_needed()
    first = _image(page, widget)
    widget.scroll_into_view_if_needed()
    page.screenshot(path=str(lab["shots"] / "averaging-v1.png"))
    widget.locator("button:has-text('v3')").click()
    _wait_changed(page, widget, first)
    page.screenshot(path=str(lab["shots"] / "averaging-v3.png"))


LATENCY_TEXT = ("ROMEO:\nBut soft, what light through yonder window breaks? It is the east, and Juliet is the sun.\n"
                "Arise, fair sun, and kill the envious")[:128]


def test_png_explorer_latency(page, lab):
    """The PNG path's figure: median time from a layer change to the new picture loaded (printed)."""
    import nbformat

    assert len(LATENCY_TEXT) == 128
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from lecture_utils import viz\nfrom lecture_utils.train import load_shipped\n"
        f"m, t, _ = load_shipped()\nviz.AttentionExplorer(m, t, text={LATENCY_TEXT!r})")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, lab["work"] / "latency.ipynb")
    _open_and_run_all(page, lab, "latency.ipynb")
    explorer = page.locator(".widget-vbox:has(textarea)").last
    explorer.wait_for(state="attached", timeout=240_000)
    _image(page, explorer)
    page.wait_for_timeout(2000)
    times = []
    for i in range(12):
        ms = page.evaluate("""(layer) => new Promise((resolve) => {
            const box = [...document.querySelectorAll('.widget-vbox')].filter(b => b.querySelector('textarea')).pop();
            const img = box.querySelector('img'); const sel = box.querySelector('select');
            const t0 = performance.now();
            img.addEventListener('load', () => requestAnimationFrame(() => resolve(performance.now() - t0)), {once: true});
            sel.value = String(layer); sel.dispatchEvent(new Event('change', {bubbles: true}));
        })""", str(1 + i % 3))
        times.append(ms)
    times.sort()
    print(f"\nPNG explorer, layer change to new picture (shipped model, T=128): median {times[len(times) // 2]:.0f} ms, "
          f"all {[round(t) for t in times]}")
