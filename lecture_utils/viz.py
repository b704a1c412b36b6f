"""Attention heatmaps (static renderers) and the course's interactive widgets.

Renderers are pure functions on matplotlib axes, so a saved or GitHub-rendered notebook shows a
static picture. Widgets use core ipywidgets and the inline matplotlib backend only (no custom
JavaScript, no CDN), so they work offline in JupyterLab, Notebook 7, Colab and VS Code.

- :func:`plot_attention` - one ``(T, T)`` matrix with token labels
- :func:`plot_heads` - a layers x heads grid with a shared colour bar
- :class:`AttentionExplorer` - a trained GPT's attention, by layer / head / query token
- :class:`AveragingTrickExplorer` - chapter 03's v1 / v2 / v3 weights and averaged output
- :class:`ScaledAttentionDemo` - chapter 04's note on scaling by sqrt(head_size)

Every widget keeps the last thing it drew in ``.state`` (the matrix, the text it shows), and its
callbacks catch and display errors in an output area and keep them in ``.last_error``, so tests and
learners see problems instead of a silent widget.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

CMAP = "viridis"  # perceptually uniform and colour-blind safe
MASKED_COLOR = "#d9d9d9"  # the masked (future) upper triangle: light grey, not a colour of the map


def _label(ch: str) -> str:
    return {"\n": "\\n", " ": "\u2423", "\t": "\\t"}.get(ch, ch)


def _as_numpy(weights) -> np.ndarray:
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().float().cpu().numpy()
    return np.asarray(weights, dtype=float)


def plot_attention(ax, weights, tokens=None, *, causal: bool = True, annotate: bool | None = None,
                   title: str | None = None, colorbar: bool = False):
    """Draw one attention matrix on ``ax``.

    Args:
        weights: ``(T, T)``; row = query position, column = key position.
        tokens: T labels (characters or strings) for both axes.
        causal: grey out the upper triangle (the future, which a decoder never sees).
        annotate: write each weight in its cell (default: when T <= 12).

    Returns:
        the ``AxesImage``; its data is the weights with the masked cells set to NaN.
    """
    w = _as_numpy(weights)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"plot_attention needs a square (T, T) matrix, got shape {w.shape}")
    T = w.shape[0]
    if tokens is not None and len(tokens) != T:
        raise ValueError(f"{len(tokens)} token labels for a {T} x {T} matrix")
    shown = w.copy()
    if causal:
        shown[np.triu_indices(T, k=1)] = np.nan
    cmap = _cmap()
    im = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    labels = [_label(t) for t in tokens] if tokens is not None else [str(i) for i in range(T)]
    step = max(1, T // 32)
    ax.set_xticks(range(0, T, step), labels[::step], fontsize=8)
    ax.set_yticks(range(0, T, step), labels[::step], fontsize=8)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query")
    if title:
        ax.set_title(title, fontsize=10)
    if annotate is None:
        annotate = T <= 12
    if annotate:
        for i in range(T):
            for j in range(T):
                if not np.isnan(shown[i, j]):
                    ax.text(j, i, f"{shown[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if shown[i, j] < 0.6 else "black")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def _cmap():
    import matplotlib

    return matplotlib.colormaps[CMAP].with_extremes(bad=MASKED_COLOR)


def plot_heads(weights, tokens=None, *, causal: bool = True, figsize_per=2.2, layer_labels=None):
    """A grid of attention matrices: ``weights`` of shape ``(n_layer, n_head, T, T)`` (or
    ``(n_head, T, T)`` for one layer), rows = layers, columns = heads, one shared colour bar.
    ``layer_labels`` names the rows (default 0, 1, ...).

    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    w = _as_numpy(weights)
    if w.ndim == 3:
        w = w[None]
    if w.ndim != 4:
        raise ValueError(f"plot_heads needs (n_layer, n_head, T, T), got shape {w.shape}")
    L, H, T, _ = w.shape
    labels = list(layer_labels) if layer_labels is not None else list(range(L))
    fig, axes = plt.subplots(L, H, figsize=(figsize_per * H + 1, figsize_per * L), squeeze=False)
    im = None
    for layer in range(L):
        for head in range(H):
            ax = axes[layer][head]
            im = plot_attention(ax, w[layer, head], tokens, causal=causal, annotate=False)
            ax.set_title(f"layer {labels[layer]} head {head}", fontsize=8)
            if head:
                ax.set_ylabel("")
                ax.set_yticks([])
            if layer < L - 1:
                ax.set_xlabel("")
                ax.set_xticks([])
    fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.02, pad=0.02, label="attention weight")
    return fig


# ---------------------------------------------------------------------------------------------
# widgets
# ---------------------------------------------------------------------------------------------


class _Widget:
    """Common plumbing: the picture as a PNG in an ``ipywidgets.Image`` (whatever matplotlib backend
    the kernel uses), errors caught, shown and kept."""

    def __init__(self):
        import ipywidgets as W

        self.W = W
        self.out = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.message = W.HTML()
        self.state: dict = {}
        self.last_error: BaseException | None = None

    def _safe_redraw(self, *_):
        import io

        import matplotlib.pyplot as plt

        self.last_error = None
        try:
            fig = self._draw()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
            plt.close(fig)
        except Exception as exc:  # shown, kept, never swallowed silently
            self.last_error = exc
            self.message.value = f"<span style='color:#b00'>error: {type(exc).__name__}: {exc}</span>"
            return
        self.out.value = buf.getvalue()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def show(self):
        """Display the widget (also what happens when it is the last expression of a cell)."""
        self._ipython_display_()


class AttentionExplorer(_Widget):
    """Explore a trained GPT's attention: type a text, pick a layer and head (or all heads), and a
    query position; see the weights and the top-k earlier characters that position attends to.

    Characters outside the model's vocabulary are removed (and named); text longer than
    ``block_size`` is cut to its last ``block_size`` characters (and said so).
    """

    def __init__(self, model, tokenizer, text: str = "ROMEO:\nBut soft, what light", top_k: int = 5):
        super().__init__()
        from lecture_utils.model import GPT

        if not isinstance(model, GPT):
            raise TypeError(f"AttentionExplorer needs a lecture_utils.model.GPT, got {type(model).__name__}")
        if tokenizer.vocab_size != model.config.vocab_size:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} characters but the model expects "
                             f"{model.config.vocab_size}: load the tokenizer saved with the checkpoint")
        self.model, self.tokenizer, self.top_k = model, tokenizer, top_k
        cfg = model.config
        W = self.W
        self.text = W.Textarea(value=text, description="text", layout=W.Layout(width="95%", height="60px"))
        self.layer = W.Dropdown(options=list(range(cfg.n_layer)), value=0, description="layer")
        self.head = W.Dropdown(options=[("all heads", -1)] + [(str(h), h) for h in range(cfg.n_head)],
                               value=0, description="head")
        self.query = W.IntSlider(value=0, min=0, max=0, description="query")
        self.keys = W.HTML()
        for control in (self.text, self.layer, self.head, self.query):
            control.observe(self._on_change, names="value")
        self._weights = None
        self._tokens = ""
        self._recompute()
        self.query.value = self.query.max
        self.widget = W.VBox([self.text, W.HBox([self.layer, self.head, self.query]), self.message, self.out, self.keys])
        self._safe_redraw()

    def _on_change(self, change):
        if change["owner"] is self.text:
            try:
                self._recompute()
            except Exception as exc:
                self.last_error = exc
                self.message.value = f"<span style='color:#b00'>error: {exc}</span>"
                return
        self._safe_redraw()

    def _recompute(self):
        text = self.text.value
        notes = []
        unknown = self.tokenizer.unknown_chars(text)
        if unknown:
            text = "".join(c for c in text if c not in set(unknown))
            notes.append("ignored characters not in the vocabulary: " + ", ".join(repr(c) for c in unknown))
        bs = self.model.config.block_size
        if len(text) > bs:
            notes.append(f"the model sees at most block_size={bs} characters: showing the last {bs}")
            text = text[-bs:]
        if not text:
            text = "\n"
            notes.append("empty text: showing a single newline")
        device = next(self.model.parameters()).device
        idx = torch.tensor([self.tokenizer.encode(text)], dtype=torch.long, device=device)
        self._weights = self.model.attention_maps(idx)[:, 0].cpu()  # (n_layer, n_head, T, T)
        self._tokens = text
        self.message.value = "<br>".join(notes)
        T = len(text)
        with self.query.hold_trait_notifications():
            self.query.max = T - 1
            self.query.value = min(self.query.value, T - 1)

    def _draw(self):
        import matplotlib.pyplot as plt

        layer, head, q = self.layer.value, self.head.value, self.query.value
        tokens = list(self._tokens)
        if head == -1:
            fig = plot_heads(self._weights[layer], tokens, layer_labels=[layer])
            shown = self._weights[layer]
            row = self._weights[layer, :, q].mean(0)
        else:
            fig, ax = plt.subplots(figsize=(6, 5))
            shown = self._weights[layer, head]
            plot_attention(ax, shown, tokens, title=f"layer {layer}, head {head}", colorbar=True,
                           annotate=len(tokens) <= 12)
            ax.axhline(q, color="red", lw=1.0)
            row = shown[q]
        k = min(self.top_k, q + 1)
        vals, idx = torch.topk(row, k)
        items = "".join(f"<li><code>{_label(tokens[i])!s}</code> at {i}: {v:.3f}</li>"
                        for v, i in zip(vals.tolist(), idx.tolist()))
        where = "averaged over heads" if head == -1 else f"head {head}"
        self.keys.value = (f"query <b>{_label(tokens[q])}</b> at position {q} ({where}) attends most to:"
                           f"<ol>{items}</ol>")
        self.state = {"weights": shown.clone(), "tokens": self._tokens, "layer": layer, "head": head,
                      "query": q, "top_keys": idx.tolist(), "top_text": self.keys.value}
        return fig


def averaging_weights(version: str, T: int) -> torch.Tensor:
    """The ``(T, T)`` weights of chapter 03's averaging trick, built the way each version builds them
    (v1 implicitly by loops: shown as the equivalent matrix)."""
    tril = torch.tril(torch.ones(T, T))
    if version == "v1":
        wei = torch.zeros(T, T)
        for t in range(T):
            wei[t, : t + 1] = 1.0 / (t + 1)
        return wei
    if version == "v2":
        return tril / tril.sum(1, keepdim=True)
    if version == "v3":
        return F.softmax(torch.zeros(T, T).masked_fill(tril == 0, float("-inf")), dim=-1)
    raise ValueError(f"version must be 'v1', 'v2' or 'v3', got {version!r}")


class AveragingTrickExplorer(_Widget):
    """Chapter 03: switch between v1 (loops), v2 (matmul with a normalised tril) and v3 (masked
    softmax); see the weight matrix and the averaged output beside the input."""

    def __init__(self, T: int = 8, C: int = 2, seed: int = 1337):
        super().__init__()
        W = self.W
        self.version = W.ToggleButtons(options=["v1", "v2", "v3"], value="v1", description="version")
        self.T = W.IntSlider(value=T, min=1, max=16, description="T")
        self.seed = seed
        self.C = C
        for control in (self.version, self.T):
            control.observe(self._safe_redraw, names="value")
        self.widget = W.VBox([W.HBox([self.version, self.T]), self.message, self.out])
        self._safe_redraw()

    def _draw(self):
        import matplotlib.pyplot as plt

        T, version = self.T.value, self.version.value
        x = torch.randn(T, self.C, generator=torch.Generator().manual_seed(self.seed))
        wei = averaging_weights(version, T)
        xbow = wei @ x
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 1.2, 1.2]})
        plot_attention(axes[0], wei, annotate=T <= 8, title=f"{version}: weights (row t averages x[0..t])")
        for ax, data_, name in ((axes[1], x, "x"), (axes[2], xbow, "xbow = wei @ x")):
            ax.imshow(data_.numpy(), cmap="coolwarm", vmin=-2.5, vmax=2.5, aspect="auto")
            ax.set_title(name, fontsize=10)
            ax.set_xlabel("channel")
            ax.set_yticks(range(T))
        formula = {"v1": "for t: xbow[t] = x[:t+1].mean(0)", "v2": "wei = tril / tril.sum(1); xbow = wei @ x",
                   "v3": "wei = zeros.masked_fill(tril == 0, -inf).softmax(-1); xbow = wei @ x"}[version]
        fig.suptitle(formula, fontsize=9, family="monospace")
        fig.tight_layout()
        self.message.value = ""
        self.state = {"version": version, "weights": wei, "x": x, "xbow": xbow, "formula": formula}
        return fig


class ScaledAttentionDemo(_Widget):
    """Chapter 04, note 6: with q and k of unit variance, ``q @ k^T`` has variance ~head_size;
    dividing by sqrt(head_size) brings it back to ~1. Unscaled, softmax turns nearly one-hot."""

    def __init__(self, head_size: int = 16, T: int = 8, seed: int = 0):
        super().__init__()
        W = self.W
        self.head_size = W.IntSlider(value=head_size, min=1, max=512, description="head_size")
        self.scaled = W.Checkbox(value=True, description="divide by sqrt(head_size)")
        self.T, self.seed = T, seed
        for control in (self.head_size, self.scaled):
            control.observe(self._safe_redraw, names="value")
        self.stats = W.HTML()
        self.widget = W.VBox([W.HBox([self.head_size, self.scaled]), self.stats, self.message, self.out])
        self._safe_redraw()

    def _draw(self):
        import matplotlib.pyplot as plt

        hs, scaled, T = self.head_size.value, self.scaled.value, self.T
        g = torch.Generator().manual_seed(self.seed)
        q = torch.randn(64, T, hs, generator=g)
        k = torch.randn(64, T, hs, generator=g)
        aff = q @ k.transpose(-2, -1)
        if scaled:
            aff = aff * hs**-0.5
        tril = torch.tril(torch.ones(T, T))
        wei = F.softmax(aff.masked_fill(tril == 0, float("-inf")), dim=-1)
        variance = aff.var().item()
        last_row_max = wei[:, -1].max(-1).values.mean().item()  # how one-hot the last row is, on average
        self.stats.value = (f"var(q @ k^T) = <b>{variance:.2f}</b> "
                            f"({'scaled' if scaled else 'unscaled'}, head_size {hs}); "
                            f"mean largest weight in the last row: <b>{last_row_max:.2f}</b> "
                            f"(uniform would be {1 / T:.2f}, one-hot 1.00)")
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        plot_attention(axes[0], wei[0], annotate=True, title="attention weights of one sequence")
        axes[1].bar(range(T), wei[0, -1].numpy(), color="tab:blue")
        axes[1].set_ylim(0, 1)
        axes[1].set_title("last query's weights over the keys", fontsize=10)
        axes[1].set_xlabel("key position")
        fig.tight_layout()
        self.state = {"variance": variance, "last_row_max": last_row_max, "weights": wei[0].clone(),
                      "scaled": scaled, "head_size": hs}
        return fig
