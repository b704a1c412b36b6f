"""The course's widgets in a real browser: JupyterLab 4 and Notebook 7 on 127.0.0.1, driven by headless
Chromium (Playwright).

What a learner does: open a notebook, run all cells, and use the widgets: hover the attention heatmap
and read a weight, move the query with the keyboard, open a head from the model view, take one weight
apart in the query-key view, change the temperature and top-p and sample in the next-token view (the
page's top-p checked against the kernel's rule); switch the averaging trick's version and the
scaled-attention demo's head size. Each step checks that the picture changed and that the value the page
shows is the model's tensor, computed here, to 3 decimals. Every request that does not go to loopback
fails the test (the course needs no network), and so does any browser console error.

It prints the median time from a hover or control change to the redrawn view (a figure, not an
assertion). Screenshots of every view go to ``screenshots/browser-<front end>/`` at the repository root
(git-ignored), or to ``$LECTURE_UTILS_SCREENSHOTS``.

Needs Debian's Chromium (/usr/bin/chromium) and the Python package playwright; skipped with the
reason otherwise. Playwright never downloads a browser here: it is pointed at the system one.
"""

from __future__ import annotations

import os
import re
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
import torch

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

# 128 characters: the shipped model's whole block_size
TEXT = ("ROMEO:\nBut soft, what light through yonder window breaks? It is the east, and Juliet is the sun.\n"
        "Arise, fair sun, and kill the envious")[:128]
KERNELSPEC = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _views_notebook(path: Path) -> None:
    import nbformat

    cells = [
        "from lecture_utils import viz\nfrom lecture_utils.checkpoints import load_shipped\n"
        f"model, tokenizer, _ = load_shipped()\nviz.AttentionExplorer(model, tokenizer, text={TEXT!r})",
        "viz.AveragingTrickExplorer()",
        "viz.ScaledAttentionDemo()",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells], metadata=KERNELSPEC)
    nbformat.write(nb, path)


@pytest.fixture(scope="module", params=["jupyterlab", "notebook"])
def server(request):
    """JupyterLab 4 or Notebook 7 on 127.0.0.1, serving a temporary folder."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    if sync_playwright is None:
        pytest.skip("the Python package playwright is not installed (pip install playwright)")
    app = request.param
    work = Path(tempfile.mkdtemp(prefix=f"{app}-"))
    _views_notebook(work / "views.ipynb")
    for name in ("03_averaging_trick", "01_data", "04_self_attention", "07_residual_layernorm"):
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", work)  # the browser may autosave: never the repo's
    port, token = _free_port(), secrets.token_hex(16)
    # JupyterLab 4 detaches off-screen cells ("windowing"); render them all, as a scrolling learner sees them
    settings = work / ".lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env = {**os.environ, "LECTURE_UTILS_SMOKE": "1", "JUPYTER_CONFIG_DIR": str(work / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(work / ".runtime"), "JUPYTERLAB_SETTINGS_DIR": str(work / ".lab-settings"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    extra = (["--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
              "--LabApp.extension_manager=readonly"] if app == "jupyterlab" else [])
    log = open(work / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", app, "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--ServerApp.open_browser=False",
         "--allow-root", *extra],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"{app} exited: {(work / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    else:
        pytest.fail(f"{app} did not start within 120 s")
    shots = Path(os.environ.get("LECTURE_UTILS_SCREENSHOTS") or ROOT / "screenshots") / f"browser-{app}"
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {shots}")
    yield {"app": app, "base": base, "token": token, "work": work, "shots": shots}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    log.close()
    assert proc.poll() is not None, f"the {app} server is still running"


@pytest.fixture
def page(server):
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
        page.on("console", lambda m: errors.append(f"{m.text} (at {m.location.get('url', '')}:{m.location.get('lineNumber')})") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"{e} {(getattr(e, 'stack', '') or '')[:300]}"))
        yield page
        context.close()
        browser.close()
    assert not blocked, f"the course tried to reach the network: {blocked[:5]}"
    errors = [e for e in errors if not _front_end_own_error(server["app"], e)]
    assert not errors, f"browser console errors: {errors[:5]}"


def _front_end_own_error(app: str, error: str) -> bool:
    """Whether a console error is the front end's own, logged with any notebook open (each one reproduced with a
    notebook holding only ``1+1`` and no widget), not the course's."""
    if "ERR_UNKNOWN_URL_SCHEME" in error and "(at attachment:" in error:
        # JupyterLab's Markdown renderer puts <img src="attachment:NAME.png"> into the page and then replaces
        # the src with the attachment's data; the browser's first try at the raw reference logs this. The
        # figures test checks every such picture is then shown.
        return True
    if app != "notebook":
        return False
    first_line, _, stack = error.partition("\n")
    frames = re.findall(r"\bat .*?\(?(https?://\S+?):\d+:\d+\)?$", stack, flags=re.M)
    from_notebook = bool(frames) and "/static/notebook/" in frames[0]  # thrown inside Notebook's own bundle
    if "reading 'last_modified'" in first_line and from_notebook:
        # Notebook 7.0.8 (the lower bound in pyproject.toml) to 7.3.0, not 7.4.0 or 7.5.0: the top bar's
        # "Last Checkpoint" plugin (@jupyter-notebook/notebook-extension:checkpoints) reads ``last_modified``
        # of the last entry of the notebook's checkpoint list, which is empty while the notebook has no
        # checkpoint yet. Reproduced with the ``1+1`` notebook in 7.0.8, 7.1.0, 7.1.3, 7.2.0 and 7.3.0.
        return True
    if "reading 'newValue'" in first_line and from_notebook:
        # Notebook 7.1 (7.1.0 and 7.1.3; not 7.2.0): the LSP adapter tracker JupyterLab 4.1 bundles into
        # Notebook listens to the shell's currentChanged signal and reads ``newValue`` of a change Notebook's
        # shell emits without one when a document opens. Reproduced with the ``1+1`` notebook in both.
        return True
    # Notebook 7.6's keyboard-shortcuts plugin (reproduced with notebook 7.6.5)
    return "reading 'schema'" in error and "/static/notebook/notebook_core." in error and "pluginChanged" not in first_line


def _open_and_run_all(page, server, name):
    if server["app"] == "jupyterlab":
        url = f"{server['base']}/lab/tree/{name}?reset&token={server['token']}"  # a fresh workspace
    else:
        url = f"{server['base']}/notebooks/{name}?token={server['token']}"
    try:
        page.goto(url)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], .jp-KernelStatus-success, "
                               "[data-status='idle']", timeout=60_000, state="attached")
        for _attempt in range(3):  # a Run All clicked while the kernel still starts can be lost: try again
            page.wait_for_timeout(2000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click(timeout=30_000)
            page.locator(".lm-Menu-item:has-text('Run All Cells')").first.click(timeout=30_000)
            try:
                page.wait_for_function("""() => [...document.querySelectorAll('.jp-InputPrompt')]
                    .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))""", timeout=20_000)
                break
            except Exception:
                continue
    except Exception:
        page.screenshot(path=str(server["shots"] / f"open-failed-{name}.png"), full_page=True)
        raise


def _widget(page, server, selector, name):
    loc = page.locator(selector).first
    try:
        loc.wait_for(state="visible", timeout=240_000)
    except Exception:
        page.screenshot(path=str(server["shots"] / f"{name}-missing.png"), full_page=True)
        raise
    loc.scroll_into_view_if_needed()
    return loc


def _picture(loc) -> str:
    """Every canvas of a widget, as data URLs: what the learner sees, for before/after comparisons."""
    return loc.evaluate("root => [...root.querySelectorAll('canvas')].map(c => c.toDataURL()).join('|')")


def _hover_cell(page, canvas, i, j):
    """Put the mouse over cell (i, j) of a heatmap, and wait until the heatmap says it is hovered there.

    ``page.mouse.move`` goes to viewport coordinates without scrolling: a cell below the fold (row 127 of a 542-px
    heatmap in Notebook 7.0.8's taller layout) got no event, and the readout still showed the previous cell. So the
    canvas is scrolled into view first, and the move is checked against the heatmap's ``data-hover`` (set on each
    hovered cell), taking a fresh bounding box if the page moved meanwhile."""
    px, margin = float(canvas.get_attribute("data-px")), float(canvas.get_attribute("data-margin"))
    want = f"{i},{j}"
    for _ in range(3):
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + margin + (j + 0.5) * px, box["y"] + margin + (i + 0.5) * px)
        try:
            page.wait_for_function("([el, want]) => el.dataset.hover === want", arg=[canvas.element_handle(), want],
                                   timeout=3_000)
            return
        except PlaywrightTimeoutError:
            continue
    x, y = box["x"] + margin + (j + 0.5) * px, box["y"] + margin + (i + 0.5) * px
    on_top = page.evaluate("([x, y]) => { const e = document.elementFromPoint(x, y); "
                           "return e ? e.outerHTML.slice(0, 200) : null; }", [x, y])
    raise AssertionError(f"the mouse never reached heatmap cell ({i}, {j}) at ({x}, {y}): the canvas is at {box}, its "
                         f"data-hover says {canvas.get_attribute('data-hover')!r}, viewport {page.viewport_size}, "
                         f"on top there: {on_top}")


def _set_range(loc, value):
    """Move a slider as a drag does: a new value and an input event."""
    loc.evaluate("(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', {bubbles: true})); }", value)


def _shown_value(root) -> float:
    text = root.locator(".bg-info").first.inner_text()
    m = re.search(r": (-?\d+\.\d{4})\s*$", text)
    assert m, f"no value in the readout {text!r}"
    return float(m.group(1))


def _median_latency(root, script, n=25):
    """Median over n runs of: dispatch one event (script(i) returns the event's target and event), then
    the time until the next animation frame after the view was redrawn, in ms; and the redraw alone."""
    return root.evaluate("""async (root, [script, n]) => {
        const act = new Function('root', 'i', script);
        const total = [], draw = [];
        for (let i = 0; i < n; i++) {
            await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
            const t0 = performance.now();
            act(root, i);
            const t1 = performance.now();
            await new Promise((r) => requestAnimationFrame(r));
            total.push(performance.now() - t0);
            draw.push(t1 - t0);
        }
        const med = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
        return [med(total), med(draw)];
    }""", [script, n])


@pytest.fixture(scope="module")
def shipped_pass():
    """The kernel's tensors, computed here the same way: the shipped model on the same 128 characters."""
    from lecture_utils import viz
    from lecture_utils.checkpoints import load_shipped

    model, tok, _ = load_shipped()
    return viz.capture_forward(model, torch.tensor([tok.encode(TEXT)]))


def test_attention_explorer_views_answer_in_the_browser(page, server, shipped_pass):
    fp, T = shipped_pass, len(TEXT)
    assert T == 128
    _open_and_run_all(page, server, "views.ipynb")
    root = _widget(page, server, ".bg-root[data-view]", "explorer")
    shots = server["shots"]
    canvas = root.locator("canvas.bg-heatmap")
    canvas.wait_for(state="visible")
    assert root.locator(".bg-query").inner_text().startswith(f"{T - 1} ")  # starts at the last character

    # heatmap: hover a cell, read the weight; it is the kernel's weight
    before = _picture(root)
    j = fp.weights[0, 0, 100].argmax().item()  # the key query 100 attends to most: a weight worth reading
    _hover_cell(page, canvas, 100, j)
    assert _picture(root) != before, "hovering did not mark the cell"
    assert abs(_shown_value(root) - fp.weights[0, 0, 100, j].item()) < 5e-4 and fp.weights[0, 0, 100, j] > 0.05
    page.screenshot(path=str(shots / "heatmap-hover.png"))
    _hover_cell(page, canvas, 10, 40)  # the future: said so, never a number
    assert "masked" in root.locator(".bg-info").inner_text()
    # click picks the query, the keyboard moves it
    _hover_cell(page, canvas, 60, 12)
    page.mouse.down()
    page.mouse.up()
    assert root.locator(".bg-query").inner_text().startswith("60 ")
    canvas.focus()
    before = _picture(root)
    page.keyboard.press("ArrowUp")
    assert root.locator(".bg-query").inner_text().startswith("59 ") and _picture(root) != before
    page.keyboard.press("ArrowLeft")
    assert abs(_shown_value(root) - fp.weights[0, 0, 59, 11].item()) < 5e-4  # the readout follows the keys
    page.keyboard.press("End")
    assert root.locator(".bg-query").inner_text().startswith(f"{T - 1} ")
    # the keyboard's way in: Tab from the last control before the heatmap; its focus says the chosen cell's value as
    # text. (Tab out of the widget and Shift+Tab back was front-end dependent: JupyterLab 4.0.2 and Notebook 7.0.8 put
    # the focus in the next cell's editor, where Shift+Tab opens the inspector's tooltip over the heatmap.)
    _hover_cell(page, canvas, 100, j)  # first a different readout, so the focus's own must replace it
    assert abs(_shown_value(root) - fp.weights[0, 0, T - 1, 11].item()) > 5e-4
    page.mouse.move(0, 0)
    root.locator("button[aria-label='next query position']").focus()
    page.keyboard.press("Tab")
    assert canvas.evaluate("c => document.activeElement === c"), "Tab from the controls did not reach the heatmap"
    assert abs(_shown_value(root) - fp.weights[0, 0, T - 1, 11].item()) < 5e-4
    # the layer and head controls
    before = _picture(root)
    root.locator("select[aria-label=layer]").select_option("3")
    root.locator("select[aria-label=head]").select_option("2")
    assert _picture(root) != before
    _hover_cell(page, canvas, 127, 126)
    assert abs(_shown_value(root) - fp.weights[3, 2, 127, 126].item()) < 5e-4

    hover_ms, hover_draw = _median_latency(root, """
        const c = root.querySelector('canvas.bg-heatmap'), r = c.getBoundingClientRect();
        const px = +c.dataset.px, m = +c.dataset.margin, q = 20 + (i * 37) % 100, k = (i * 13) % (q + 1);
        c.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + m + (k + .5) * px,
                                                     clientY: r.top + m + (q + .5) * px, bubbles: true}));""")
    layer_ms, layer_draw = _median_latency(root, """
        const s = root.querySelector('select[aria-label=layer]');
        s.value = String(i % 4); s.dispatchEvent(new Event('change', {bubbles: true}));""")
    print(f"\n[{server['app']}] heatmap, shipped model, T=128: hover -> redrawn view median {hover_ms:.1f} ms "
          f"(redraw {hover_draw:.2f} ms); layer change -> redrawn view median {layer_ms:.1f} ms (redraw {layer_draw:.2f} ms)")

    # head view: lines from the hovered query; hover a key to read each shown head's weight
    root.locator("button[data-view=head]").click()
    root.locator("select[aria-label=layer]").select_option("1")
    root.locator("select[aria-label=head]").select_option("0")
    head_canvas = root.locator("canvas[aria-label^='head view']")
    columns = root.locator(".bg-scroll")
    key = 45 + fp.weights[1, 0, 80, 45:81].argmax().item()  # a key near the query that it attends to
    columns.evaluate("s => { s.scrollTop = 45 * 14; }")  # rows 45..80 of the tall token columns in sight
    columns.scroll_into_view_if_needed()
    box = head_canvas.bounding_box()
    before = _picture(root)
    page.mouse.move(box["x"] + 30, box["y"] + 4 + 80 * 14 + 7)  # query 80, left column
    assert _picture(root) != before, "hovering a query did not redraw its lines"
    page.mouse.move(box["x"] + 310, box["y"] + 4 + key * 14 + 7)  # the key, right column
    info = root.locator(".bg-info").inner_text()
    assert "query 80" in info and f"key {key} " in info
    shown = float(re.search(r"head 0 (\d\.\d{4})", info).group(1))
    assert abs(shown - fp.weights[1, 0, 80, key].item()) < 5e-4
    before = _picture(root)
    root.locator("button:has-text('all')").click()  # all four heads overlaid, in their colours
    assert _picture(root) != before
    page.mouse.move(box["x"] + 30, box["y"] + 4 + 80 * 14 + 7)
    page.screenshot(path=str(shots / "head-view.png"))

    # model view: every layer x head; a click opens one in the heatmap
    root.locator("button[data-view=model]").click()
    thumbs = root.locator("button[data-layer]")
    assert thumbs.count() == 16
    page.screenshot(path=str(shots / "model-view.png"))
    root.locator("button[data-layer='2'][data-head='1']").click()
    assert root.get_attribute("data-view") == "heatmap"
    key = fp.weights[2, 1, 90].argmax().item()
    _hover_cell(page, canvas, 90, key)
    assert abs(_shown_value(root) - fp.weights[2, 1, 90, key].item()) < 5e-4

    # query-key view: the weight rebuilt from q and k is the heatmap's
    canvas.focus()
    page.keyboard.press("Home")
    for _ in range(30):
        page.keyboard.press("ArrowDown")
    key = fp.weights[2, 1, 30, 1:].argmax().item() + 1  # a key the query attends to (not the first)
    for _ in range(key):
        page.keyboard.press("ArrowRight")
    root.locator("button[data-view=qk]").click()
    weight = float(root.locator(".bg-qk-weight").inner_text())
    assert abs(weight - fp.weights[2, 1, 30, key].item()) < 5e-4
    dot = float(re.search(r"dimensions = (-?\d+\.\d{4})", root.locator(".bg-formula").inner_text()).group(1))
    assert abs(dot - (fp.q[2, 1, 30] @ fp.k[2, 1, key]).item()) < 5e-4  # the sum of the products shown
    page.screenshot(path=str(shots / "query-key-view.png"))
    before = _picture(root)
    root.locator("canvas[aria-label^='the softmax weights']").focus()
    page.keyboard.press("ArrowLeft")
    assert _picture(root) != before
    assert abs(float(root.locator(".bg-qk-weight").inner_text()) - fp.weights[2, 1, 30, key - 1].item()) < 5e-4

    # next-token view: the distribution after the query, temperature, top-k, a sample
    root.locator("button[data-view=next]").click()
    bars = root.locator(".bg-stage canvas").last
    bbox = bars.bounding_box()
    page.mouse.move(bbox["x"] + 100, bbox["y"] + 2 + 8)  # the most likely character
    p = torch.softmax(fp.logits[30], -1)
    assert abs(float(root.locator(".bg-info").get_attribute("data-value")) - p.max().item()) < 5e-4
    before = _picture(root)
    _set_range(root.locator("input[aria-label=temperature]"), 2)
    assert _picture(root) != before
    root.locator("input[aria-label^='top-k']").fill("3")
    root.locator("button:has-text('sample')").click()
    sampled = root.locator(".bg-sampled").inner_text()
    prob = float(re.search(r"probability (\d\.\d{4})", sampled).group(1))
    tempered_top3 = torch.softmax(torch.topk(fp.logits[30], 3).values / 2, -1)
    assert any(abs(prob - c) < 5e-4 for c in tempered_top3.tolist()), (sampled, tempered_top3)
    page.screenshot(path=str(shots / "next-token-view.png"))

    # a new text: the kernel reruns the model once; the query is clamped into the shorter text
    textarea = root.locator("textarea")
    textarea.fill("ROMEO: hi")
    textarea.blur()
    page.wait_for_function("el => el.textContent.startsWith('8 ')", arg=root.locator(".bg-query").element_handle(),
                           timeout=60_000)
    textarea.fill("\u20ac\u20ac")  # no character of the vocabulary: one clear error, the last text still shown
    textarea.blur()
    root.locator(".bg-error:has-text('none of the text')").wait_for(timeout=60_000)
    assert root.locator(".bg-query").inner_text().startswith("8 ")


def test_chapter_03_and_04_widgets_answer_in_the_browser(page, server):
    from lecture_utils import viz

    _open_and_run_all(page, server, "views.ipynb")
    avg = _widget(page, server, ".bg-root:has(button[data-version])", "averaging")
    heat = avg.locator("canvas.bg-heatmap")
    _hover_cell(page, heat, 5, 2)
    assert abs(_shown_value(avg) - 1 / 6) < 5e-4
    avg.locator("button[data-version=v3]").click()
    assert "masked_fill" in avg.locator(".bg-formula").inner_text()
    before = _picture(avg)
    _set_range(avg.locator("input[aria-label=T]"), 12)
    assert _picture(avg) != before
    page.screenshot(path=str(server["shots"] / "averaging.png"))

    demo = _widget(page, server, ".bg-root:has(input[aria-label=head_size])", "scaled")
    expected = viz.ScaledAttentionDemo(head_size=16)
    heat = demo.locator("canvas.bg-heatmap")
    _hover_cell(page, heat, 7, 3)
    assert abs(_shown_value(demo) - expected.state["weights"][7, 3].item()) < 5e-4
    before = _picture(demo)
    _set_range(demo.locator("input[aria-label=head_size]"), 400)
    demo.locator("input[type=checkbox]").uncheck()
    assert _picture(demo) != before
    expected.head_size, expected.scaled = 400, False
    _hover_cell(page, heat, 7, 3)
    assert abs(_shown_value(demo) - expected.state["weights"][7, 3].item()) < 5e-4
    assert f"{expected.state['variance']:.2f}" in demo.locator(".bg-formula").inner_text()
    slider_ms, slider_draw = _median_latency(demo, """
        const s = root.querySelector('input[aria-label=head_size]');
        s.value = String(1 + (i * 97) % 512); s.dispatchEvent(new Event('input', {bubbles: true}));""")
    print(f"\n[{server['app']}] scaled-attention demo: head_size slider -> redrawn view median {slider_ms:.1f} ms "
          f"(redraw {slider_draw:.2f} ms)")
    page.screenshot(path=str(server["shots"] / "scaled-attention.png"))


def test_learner_notebook_03_shows_its_widget(page, server):
    if server["app"] != "jupyterlab":
        pytest.skip("one front end is enough for the learner notebook; the widgets are tested in both above")
    _open_and_run_all(page, server, "03_averaging_trick.ipynb")
    avg = _widget(page, server, ".bg-root:has(button[data-version])", "notebook-03")
    before = _picture(avg)
    _set_range(avg.locator("input[aria-label=T]"), 4)
    assert _picture(avg) != before


def test_saved_page_works_alone(tmp_path, shipped_pass):
    """``.save_html`` of the explorer, opened from disk with no server and no network: the views answer."""
    if CHROMIUM is None or sync_playwright is None:
        pytest.skip("needs Chromium and playwright")
    from lecture_utils import viz
    from lecture_utils.checkpoints import load_shipped

    model, tok, _ = load_shipped()
    e = viz.AttentionExplorer(model, tok, text=TEXT)
    e.layer, e.head = 1, 3
    path = e.save_html(tmp_path / "explorer.html")
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        root = page.locator(".bg-root")
        canvas = root.locator("canvas.bg-heatmap")
        canvas.wait_for(state="visible", timeout=30_000)
        j = shipped_pass.weights[1, 3, 64].argmax().item()
        _hover_cell(page, canvas, 64, j)
        assert abs(_shown_value(root) - shipped_pass.weights[1, 3, 64, j].item()) < 5e-4
        root.locator("button[data-view=model]").click()
        assert root.locator("button[data-layer]").count() == 16
        browser.close()
    assert not errors, errors
    assert all(u.startswith(("file:", "blob:", "data:")) for u in requests), requests


def _page_next_probs(root) -> torch.Tensor:
    """The next-token view's distribution as the page computed and drew it (every character)."""
    bars = root.locator("canvas[data-probs]")
    return torch.tensor([float(x) for x in bars.get_attribute("data-probs").split(",")], dtype=torch.float64)


def test_saved_page_top_p_matches_the_kernels_rule(tmp_path):
    """The next-token view computes top-p in the page (a saved page has no kernel): for settings on either side of
    each nucleus boundary, the page's distribution is the package's ``next_token_probs``, character for character;
    and the top-p slider changes the view to the kernel's numbers."""
    if CHROMIUM is None or sync_playwright is None:
        pytest.skip("needs Chromium and playwright")
    from lecture_utils import viz
    from lecture_utils.checkpoints import load_shipped

    model, tok, _ = load_shipped()
    e = viz.AttentionExplorer(model, tok, text=TEXT)
    e.view = "next"
    cases = []
    for query, temperature, top_k in ((30, 1.0, 0), (100, 0.7, 0), (64, 1.5, 10)):
        e.query, e.temperature, e.top_k = query, temperature, top_k
        e.top_p = 1.0
        cum = e.next_token_probs().double().sort(descending=True).values.cumsum(0)
        for p in [c + d for c in cum[:4].tolist() for d in (-2e-4, 2e-4)] + [0.5, 0.9]:
            if 0 < p <= 1 and (cum - p).abs().min() > 1e-5:  # clear of every boundary: float32 rounding decides none
                cases.append((query, temperature, top_k, p))
    assert len(cases) >= 20
    errors, requests = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on("request", lambda r: requests.append(r.url))
        for i, (query, temperature, top_k, p) in enumerate(cases):
            e.query, e.temperature, e.top_k, e.top_p = query, temperature, top_k, p
            expected = e.next_token_probs().double()
            page.goto(e.save_html(tmp_path / f"explorer-{i}.html").as_uri())
            root = page.locator(".bg-root")
            root.locator("canvas[data-probs]").wait_for(state="visible", timeout=30_000)
            shown = _page_next_probs(root)
            setting = f"query {query}, temperature {temperature}, top-k {top_k}, top-p {p}"
            assert (shown > 0).tolist() == (expected > 0).tolist(), f"{setting}: the page keeps other characters"
            torch.testing.assert_close(shown, expected, atol=1e-5, rtol=0, msg=lambda m, s=setting: f"{s}: {m}")
            assert int(root.locator("canvas[data-probs]").get_attribute("data-kept")) == int((expected > 0).sum())
            if p < 1:
                n = int((expected > 0).sum())
                keeps = "the most likely character " if n == 1 else f"the {n} most likely characters "
                assert f"top-p {p:.2f}: the nucleus keeps {keeps}" in root.locator(".bg-formula").inner_text()
        # the slider: a learner's drag to 0.6 redraws the view with the kernel's numbers
        before = _picture(root)
        _set_range(root.locator("input[aria-label^='top-p']"), 0.6)
        assert _picture(root) != before
        e.top_p = 0.6
        torch.testing.assert_close(_page_next_probs(root), e.next_token_probs().double(), atol=1e-5, rtol=0)
        browser.close()
    assert not errors, errors
    assert all(u.startswith(("file:", "blob:", "data:")) for u in requests), requests


def _open_without_running(page, server, name):
    """Open a notebook in a fresh JupyterLab workspace and wait until its kernel is idle (nothing is run)."""
    page.goto(f"{server['base']}/lab/tree/{name}?reset&token={server['token']}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], [data-status='idle']",
                           timeout=120_000, state="attached")


def test_a_fresh_learner_notebook_opens_unmodified(page, server):
    """JupyterLab 4 fills in the metadata it expects on open (kernelspec, language_info from the kernel); a
    notebook that lacks any of it is marked modified at once, and a learner is asked to save a notebook they
    never touched. The generated notebooks carry that metadata, so the tab stays clean."""
    if server["app"] != "jupyterlab":
        pytest.skip("JupyterLab 4 is the front end whose dirty marker is checked here")
    import json
    import platform

    from lecture_utils import authoring

    name = "01_data.ipynb"
    original = json.loads((ROOT / "notebooks" / name).read_text())
    _open_without_running(page, server, name)
    page.wait_for_timeout(5000)  # the kernel's language_info arrives after the kernel is ready
    tab = page.locator(".lm-TabBar-tab.jp-mod-current", has_text=name).first
    dirty = "jp-mod-dirty" in (tab.get_attribute("class") or "")
    if dirty:  # save it and say what JupyterLab changed
        page.keyboard.press("Control+s")
        page.wait_for_timeout(3000)
        saved = json.loads((server["work"] / name).read_text())
        changes = {k: (original["metadata"].get(k), saved["metadata"].get(k))
                   for k in set(original["metadata"]) | set(saved["metadata"])
                   if original["metadata"].get(k) != saved["metadata"].get(k)}
        cells = sum(a != b for a, b in zip(original["cells"], saved["cells"]))
        # the one field no notebook can get right for every learner: the kernel's Python version
        expected = {**original["metadata"]["language_info"], "version": platform.python_version()}
        if (platform.python_version() != authoring.LANGUAGE_INFO["version"] and not cells
                and set(changes) == {"language_info"} and saved["metadata"]["language_info"] == expected):
            pytest.skip(f"JupyterLab changed only language_info.version ({authoring.LANGUAGE_INFO['version']} -> "
                        f"{platform.python_version()}), the kernel's Python; clean on the reference Python")
        pytest.fail(f"JupyterLab marked {name} modified on open; notebook metadata it changed: {changes}; "
                    f"nbformat {original['nbformat']}.{original['nbformat_minor']} -> "
                    f"{saved['nbformat']}.{saved['nbformat_minor']}; {cells} cells changed")


# three of the course's figures, as a learner sees them in JupyterLab: (notebook, attachment)
FIGURE_SHOTS = [("01_data.ipynb", "chunk_xy"), ("04_self_attention.ipynb", "causal_mask"),
                ("07_residual_layernorm.ipynb", "transformer_block")]


def test_figures_render_in_jupyterlab(page, server):
    """The figures are cell attachments: JupyterLab shows them from the notebook alone (no file beside it, no
    network). Each is found by its alt text, must be a decoded image of real size, and is saved as a PNG
    screenshot in the screenshots folder (printed)."""
    if server["app"] != "jupyterlab":
        pytest.skip("the figures are checked in JupyterLab; Notebook 7 uses the same renderer")
    from lecture_utils.figures import FIGURES

    alts = {f.name: f.alt for f in FIGURES}
    for notebook, figure in FIGURE_SHOTS:
        _open_without_running(page, server, notebook)
        img = page.locator(f".jp-RenderedMarkdown img[alt^={alts[figure][:40]!r}]").first
        img.wait_for(state="attached", timeout=60_000)
        img.scroll_into_view_if_needed()
        page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=30_000)
        width, height = img.evaluate("(el) => [el.naturalWidth, el.naturalHeight]")
        assert width >= 400 and height >= 150, f"{figure} in {notebook} decoded as {width}x{height}"
        assert img.get_attribute("src").startswith(("data:", "blob:")), "the figure must come from the notebook itself"
        shot = server["shots"] / f"figure-{figure}.png"
        img.locator("xpath=ancestor::div[contains(@class, 'jp-Cell')][1]").screenshot(path=str(shot))
        print(f"figure {figure} ({notebook}): {width}x{height} px, screenshot {shot}")
