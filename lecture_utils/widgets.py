"""The plumbing every course widget shares: an ``anywidget`` drawn in the browser by the hand-written ES
module ``static/attention.js`` (no CDN, no bundler, no JupyterLab extension to build), a PNG of the current
state where no widget front end exists (nbconvert, a repository host's preview, the grader), and
``.save_html(path)`` for a standalone page.

- :class:`BrowserWidget` - the base class of the widgets in :mod:`lecture_utils.viz`
- :func:`f32_bytes` - a tensor as the float32 bytes the page reads
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import numpy as np
import torch
import traitlets

from lecture_utils.files import atomic_write_text

_STATIC = Path(__file__).resolve().parent / "static"


def f32_bytes(t) -> bytes:
    """A tensor (or array) as little-endian float32 bytes (how the browser reads it: Float32Array)."""
    if isinstance(t, torch.Tensor):
        t = t.detach().float().cpu().numpy()
    return np.ascontiguousarray(t, dtype="<f4").tobytes()


class BrowserWidget(anywidget.AnyWidget):
    """Common plumbing of the course's browser-drawn widgets.

    The kernel sends data once; the JavaScript module answers every hover and control in the page.
    Where no widget front end exists (nbconvert, a repository host's preview, the grader), the
    output's ``image/png`` shows :meth:`static_figure` of the current state instead. Errors from the
    front end's changes are shown in the widget and kept in ``.last_error``.
    """

    _esm = (_STATIC / "attention.js").read_text(encoding="utf-8")
    _css = (_STATIC / "attention.css").read_text(encoding="utf-8")
    kind = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs):
        self.last_error: BaseException | None = None
        super().__init__(**kwargs)

    # --- what to show where no widget front end exists ---------------------------------------
    def static_figure(self):
        """A matplotlib figure of the current state (what the PNG fallback shows)."""
        raise NotImplementedError

    def to_png(self, dpi: int = 80) -> bytes:
        """The current state as PNG bytes."""
        import io

        import matplotlib.pyplot as plt

        fig = self.static_figure()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        return buf.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        import base64

        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        try:
            data["image/png"] = base64.b64encode(self.to_png()).decode("ascii")
        except Exception as exc:  # the widget still shows; the fallback picture says what went wrong
            data["text/plain"] = f"{data.get('text/plain', '')} (no static picture: {type(exc).__name__}: {exc})"
        return data, metadata

    def _ipython_display_(self, **kwargs):
        # ipywidgets 7 (Colab) displays widgets through _ipython_display_ and would skip the PNG
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        if bundle is not None:
            display(bundle[0], metadata=bundle[1], raw=True)

    def show(self):
        """Display the widget (also what happens when it is the last expression of a cell)."""
        self._ipython_display_()

    # --- a page to share ----------------------------------------------------------------------
    def _page_state(self) -> dict:
        import base64

        skip = {"layout", "tabbable", "tooltip", "comm", "log"}
        state = {}
        for name in self.keys:
            if name.startswith("_") or name in skip:
                continue
            value = getattr(self, name)
            if isinstance(value, bytes):
                value = base64.b64encode(value).decode("ascii")
            state[name] = value
        return state

    def save_html(self, path) -> Path:
        """Write a standalone HTML page of the current view: the same drawing code and data, inlined
        (no network, no Python needed to open it; controls work, only the text is fixed). Written
        atomically. Returns the path."""
        import json

        path = Path(path)
        payload = json.dumps({"state": self._page_state(), "esm": self._esm, "css": self._css})
        payload = payload.replace("</", "<\\/")  # nothing in the data can close the script element
        title = type(self).__name__
        page = _PAGE.replace("@TITLE@", title).replace("@PAYLOAD@", payload)
        return atomic_write_text(path, page)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>@TITLE@ - Build GPT</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><div id="app"></div>
<script type="application/json" id="payload">@PAYLOAD@</script>
<script type="module">
const payload = JSON.parse(document.getElementById("payload").textContent);
const style = document.createElement("style");
style.textContent = payload.css;
document.head.append(style);
const state = { ...payload.state, standalone: true };
const model = {  // a stand-in for the widget model: the state lives in this page
  get: (name) => state[name], set: (name, value) => { state[name] = value; },
  save_changes() {}, on() {}, off() {}, send() {},
};
const url = URL.createObjectURL(new Blob([payload.esm], { type: "text/javascript" }));
const module = await import(url);
module.default.render({ model, el: document.getElementById("app") });
</script></body></html>
"""


__all__ = ["BrowserWidget", "f32_bytes"]
