"""Attention heatmaps (static renderers) and the course's interactive widgets.

Renderers are pure functions on matplotlib axes, for static figures. The widgets are drawn in the
browser by a hand-written ES module shipped in this package (``static/attention.js``, loaded by
``anywidget``: no CDN, no bundler, no JupyterLab extension to build): the kernel sends the tensors
once, and every hover, click, key press and slider move is answered in the page. Where no widget front
end exists (nbconvert, a repository host's preview, the grader) a widget's output carries a PNG of its
current state; ``.save_html(path)`` writes a standalone page (that plumbing: :mod:`lecture_utils.widgets`).

- :func:`plot_attention` - one ``(T, T)`` matrix with token labels
- :func:`plot_heads` - a layers x heads grid with a shared colour bar
- :func:`capture_forward` - one forward pass's attention weights, queries, keys and logits
- :class:`AttentionExplorer` - a trained GPT's attention: heatmap, head, model, query-key and
  next-token views
- :class:`AveragingTrickExplorer` - chapter 03's v1 / v2 / v3 weights and averaged output
- :class:`ScaledAttentionDemo` - chapter 04's note on scaling by sqrt(head_size)

Every widget's controls are traits (settable from Python), ``.state`` holds what it shows, and
errors from the page's changes are shown in the widget and kept in ``.last_error``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import traitlets
from torch.nn import functional as F

from lecture_utils.generation import next_token_probs as _rules_next_token_probs
from lecture_utils.model import eval_mode, keep_attention
from lecture_utils.widgets import BrowserWidget, f32_bytes

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
    ax.set_xticks(range(0, T, step), labels[::step], fontsize=8,
                  rotation=90 if max(map(len, labels), default=1) > 1 else 0)  # sub-word tokens: upright, no overlap
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
# the forward pass the explorer shows
# ---------------------------------------------------------------------------------------------


@dataclass
class ForwardPass:
    """What one forward pass of a model computed for one text, on the CPU in float32.

    ``weights`` ``(n_layer, n_head, T, T)``: the attention weights (row = query, column = key);
    ``q``, ``k`` ``(n_layer, n_head, T, head_size)``: the queries and keys those weights were made from
    (after RoPE where the model uses it), or None where they could not be reproduced (``qk_note`` says
    why); ``logits`` ``(T, vocab_size)``: the model's scores for the token after each position;
    ``tokens``: the T tokens' texts (see :func:`token_texts`), set by the explorer.
    """

    text: str
    weights: torch.Tensor
    q: torch.Tensor | None
    k: torch.Tensor | None
    logits: torch.Tensor
    qk_note: str = ""
    tokens: list[str] | None = None


def token_texts(tokenizer, ids) -> list[str]:
    """Each token's text, as the attention views label it: a tokenizer with a ``token_labels(ids)`` method says
    it itself (``BPETokenizer``: spaces and newlines made visible, bytes that are not UTF-8 on their own shown
    as ``\\xNN``); any other tokenizer's ids are decoded one by one (``CharTokenizer``: the characters)."""
    labels = getattr(tokenizer, "token_labels", None)
    return labels(ids) if labels is not None else [tokenizer.decode([int(i)]) for i in ids]


def capture_forward(model: torch.nn.Module, idx: torch.Tensor) -> ForwardPass:
    """Run ``model`` once on ``idx`` (``(1, T)`` token ids) in eval mode and keep what the attention
    views need: every layer's and head's weights, queries and keys, and the output logits.

    Works with any model built from the course's attention modules (``Head``, ``MultiHeadAttention``,
    ``CausalSelfAttention`` of :mod:`lecture_utils.model`, and chapter 12's rotary attention): the
    reference ``GPT``, chapter 08's ``GPTLanguageModel``, the shipped checkpoint. Those modules record
    their weights, queries and keys during the forward pass (:func:`~lecture_utils.model.keep_attention`);
    the queries and keys are checked against the weights: softmax of the masked, scaled ``q @ k^T``
    must give the weights the forward pass used.

    Raises:
        TypeError: the model has none of those attention modules.
    """
    if idx.dim() != 2 or idx.shape[0] != 1:
        raise ValueError(f"capture_forward needs ids of shape (1, T), got {tuple(idx.shape)}")
    with torch.no_grad(), eval_mode(model), keep_attention(model) as modules:
        if not modules:
            raise TypeError(
                f"the explorer needs a model built from the course's attention modules (lecture_utils.model.Head, "
                f"MultiHeadAttention or CausalSelfAttention); {type(model).__name__} has none. Load its weights "
                f"into lecture_utils.model.GPT (same parameter names) and explore that")
        out = model(idx)

        def per_layer(name: str) -> list[torch.Tensor | None]:
            # (n_head, T, ...) per module; a lone Head records (1, T, ...) and becomes one head
            recorded = [getattr(m, name) for m in modules]
            return [None if r is None else (r[0] if r.dim() == 4 else r) for r in recorded]

        weights, queries, keys = per_layer("attention"), per_layer("attention_queries"), per_layer("attention_keys")
    if any(w is None for w in weights):
        raise TypeError(f"an attention module of {type(model).__name__} recorded no weights in its forward pass")
    n_heads = {w.shape[0] for w in weights}
    if len(n_heads) != 1:
        raise ValueError(f"the explorer needs the same number of heads in every layer, got {sorted(n_heads)}")
    weights = torch.stack(weights).float().cpu()  # (n_layer, n_head, T, T)
    logits = out[0] if isinstance(out, tuple) else out
    T = idx.shape[1]
    logits = logits.reshape(-1, T, logits.shape[-1])[0].float().cpu()  # (T, vocab)

    q_all = k_all = None
    note = ""
    try:
        if any(t is None for t in queries + keys):
            raise ValueError("an attention module recorded no queries or keys")
        q_all = torch.stack(queries).float().cpu()  # (n_layer, n_head, T, hs)
        k_all = torch.stack(keys).float().cpu()
        hs = q_all.shape[-1]
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        remade = torch.softmax((q_all @ k_all.transpose(-2, -1) * hs**-0.5).masked_fill(~mask, float("-inf")), -1)
        if not torch.allclose(remade, weights, atol=1e-4, rtol=1e-3):
            raise ValueError(f"softmax(q k^T / sqrt({hs})) differs from the stored weights by "
                             f"{(remade - weights).abs().max().item():.2g}")
    except (ValueError, RuntimeError) as exc:
        q_all = k_all = None
        note = f"the query-key view is not available for this model: {exc}"
    return ForwardPass(text="", weights=weights, q=q_all, k=k_all, logits=logits, qk_note=note)


# ---------------------------------------------------------------------------------------------
# widgets: drawn in the browser by lecture_utils/static/attention.js (plumbing in lecture_utils.widgets)
# ---------------------------------------------------------------------------------------------

VIEWS = ("heatmap", "head", "model", "qk", "next")


class AttentionExplorer(BrowserWidget):
    """Explore a trained GPT's attention, drawn in the browser: type a text; hover the heatmap (row =
    query, column = key) to read a weight; the head view draws lines from a query to the keys it
    attends to, several heads at once; the model view shows every layer x head; the query-key view
    takes one weight apart (``q_i k_i`` per dimension, their sum, the scaling, the softmax); the
    next-token view shows the model's distribution for the next token, with temperature, top-k,
    top-p (the nucleus it keeps, renormalised; chapter 13's rules) and a sample button. Arrow keys
    move the query (up/down) and the key (left/right).

    Args:
        model: a model built from the course's attention modules (the reference ``GPT``, the shipped
            checkpoint, chapter 08's ``GPTLanguageModel``).
        tokenizer: the tokenizer the model was trained with: a ``CharTokenizer`` (one token per character)
            or a ``BPETokenizer`` (sub-word tokens, labelled by their text: :func:`token_texts`).
        text: what the model reads. With a character tokenizer, characters outside the vocabulary are
            removed (and named); a byte-level BPE tokenizer encodes any text. A text of more than
            ``block_size`` tokens is cut to its last ``block_size`` tokens (and said so).
        top_k: how many of the query's most-attended keys ``.state['top_keys']`` and the static
            picture list.

    Raises:
        ValueError: the text is empty or has no character of a character tokenizer's vocabulary; the
            tokenizer does not fit the model.
        TypeError: the model has none of the course's attention modules.

    Controls are traits, settable from Python too: ``layer``, ``head``, ``query``, ``key``, ``view``
    (one of ``'heatmap'``, ``'head'``, ``'model'``, ``'qk'``, ``'next'``), ``heads_shown``,
    ``temperature``, ``top_k`` (0: all), ``top_p`` (1: all), ``text``. ``.state`` holds what is shown,
    as tensors.
    """

    kind = traitlets.Unicode("explorer").tag(sync=True)
    text = traitlets.Unicode("").tag(sync=True)
    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    vocab = traitlets.List(traitlets.Unicode()).tag(sync=True)
    unit = traitlets.Unicode("character").tag(sync=True)  # what one id stands for: "character" or "token"
    n_layer = traitlets.Int(1).tag(sync=True)
    n_head = traitlets.Int(1).tag(sync=True)
    head_size = traitlets.Int(0).tag(sync=True)
    weights_f32 = traitlets.Bytes(b"").tag(sync=True)
    q_f32 = traitlets.Bytes(b"").tag(sync=True)
    k_f32 = traitlets.Bytes(b"").tag(sync=True)
    logits_f32 = traitlets.Bytes(b"").tag(sync=True)
    qk_note = traitlets.Unicode("").tag(sync=True)
    revision = traitlets.Int(0).tag(sync=True)
    layer = traitlets.Int(0).tag(sync=True)
    head = traitlets.Int(0).tag(sync=True)
    query = traitlets.Int(0).tag(sync=True)
    key = traitlets.Int(0).tag(sync=True)
    view = traitlets.Enum(VIEWS, "heatmap").tag(sync=True)
    heads_shown = traitlets.List(traitlets.Int()).tag(sync=True)
    temperature = traitlets.Float(1.0).tag(sync=True)
    top_k = traitlets.Int(0).tag(sync=True)  # next-token view: sample among the k most likely (0: all)
    top_p = traitlets.Float(1.0).tag(sync=True)  # next-token view: the nucleus's probability (1: all)
    last_sample = traitlets.Unicode("").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, model, tokenizer, text: str = "ROMEO:\nBut soft, what light", top_k: int = 5):
        self.model, self.tokenizer, self.top_keys = model, tokenizer, top_k
        self.block_size = _block_size(model)
        self.forward_pass: ForwardPass | None = None
        super().__init__(vocab=token_texts(tokenizer, range(tokenizer.vocab_size)),
                         unit="character" if hasattr(tokenizer, "chars") else "token")
        fp, notes = self._run(text)  # errors here reach the caller: a clear ValueError / TypeError
        if fp.logits.shape[-1] != tokenizer.vocab_size:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} {self.unit}s but the model expects "
                             f"{fp.logits.shape[-1]}: load the tokenizer saved with the checkpoint")
        self._show(fp, notes, query=len(fp.tokens) - 1)
        with self.hold_trait_notifications():
            self.text = text
        self.observe(self._on_text, names="text")

    # --- the model, run once per text --------------------------------------------------------
    def _run(self, text: str) -> tuple[ForwardPass, list[str]]:
        notes = []
        if not text:
            raise ValueError("the text is empty: type at least one character the model knows, e.g. 'ROMEO:'")
        unknown_chars = getattr(self.tokenizer, "unknown_chars", None)  # none for byte-level BPE: no unknown text
        unknown = unknown_chars(text) if unknown_chars is not None else []
        if unknown:
            kept = "".join(c for c in text if c not in set(unknown))
            if not kept:
                raise ValueError("none of the text's characters is in the model's vocabulary ("
                                 + ", ".join(repr(c) for c in unknown[:10])
                                 + "): type characters of the training text, e.g. letters and punctuation")
            notes.append("ignored characters not in the vocabulary: " + ", ".join(repr(c) for c in unknown))
            text = kept
        ids = self.tokenizer.encode(text)
        if self.block_size is not None and len(ids) > self.block_size:
            notes.append(f"the model sees at most block_size={self.block_size} {self.unit}s: showing the last "
                         f"{self.block_size}")
            ids = ids[-self.block_size :]
            text = self.tokenizer.decode(ids)
        device = next(self.model.parameters()).device
        fp = capture_forward(self.model, torch.tensor([ids], dtype=torch.long, device=device))
        fp.text, fp.tokens = text, token_texts(self.tokenizer, ids)
        return fp, notes

    def _show(self, fp: ForwardPass, notes: list[str], query: int | None = None):
        L, H, T, _ = fp.weights.shape
        q = min(self.query if query is None else query, T - 1)
        with self.hold_sync():
            self.forward_pass = fp
            self.n_layer, self.n_head = L, H
            self.head_size = fp.q.shape[-1] if fp.q is not None else 0
            self.tokens = list(fp.tokens)
            self.weights_f32 = f32_bytes(fp.weights)
            self.q_f32 = f32_bytes(fp.q) if fp.q is not None else b""
            self.k_f32 = f32_bytes(fp.k) if fp.k is not None else b""
            self.logits_f32 = f32_bytes(fp.logits)
            self.qk_note = fp.qk_note
            self.layer, self.head = min(self.layer, L - 1), min(self.head, H - 1)
            self.heads_shown = [h for h in self.heads_shown if h < H]
            self.query = q
            self.key = min(self.key, q)
            self.message = "; ".join(notes)
            self.error = ""
            self.revision += 1

    def _on_text(self, change):
        self.last_error = None
        try:
            fp, notes = self._run(change["new"])
        except Exception as exc:  # shown in the widget and kept: the front end cannot raise
            self.last_error = exc
            with self.hold_sync():
                self.message = ""  # the notes were about the previous text
                self.error = f"{type(exc).__name__}: {exc}"
            return
        self._show(fp, notes)

    # --- the controls' ranges -----------------------------------------------------------------
    def _check_range(self, name, value, top):
        if not 0 <= value < top:
            raise traitlets.TraitError(f"{name} must be in 0..{top - 1}, got {value}")
        return value

    @traitlets.validate("layer")
    def _valid_layer(self, proposal):
        return self._check_range("layer", proposal["value"], self.n_layer)

    @traitlets.validate("head")
    def _valid_head(self, proposal):
        return self._check_range("head", proposal["value"], self.n_head)

    @traitlets.validate("query", "key")
    def _valid_position(self, proposal):
        T = len(self.tokens) or 1
        return self._check_range(f"{proposal['trait'].name} (a position in the text)", proposal["value"], T)

    @traitlets.validate("temperature")
    def _valid_temperature(self, proposal):
        if not proposal["value"] > 0:
            raise traitlets.TraitError(f"temperature must be > 0, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("top_k")
    def _valid_top_k(self, proposal):
        return self._check_range("top_k (0: all)", proposal["value"], len(self.vocab) + 1)

    @traitlets.validate("top_p")
    def _valid_top_p(self, proposal):
        if not 0 < proposal["value"] <= 1:
            raise traitlets.TraitError(f"top_p must be in (0, 1] (1 keeps every {self.unit}), got {proposal['value']}")
        return proposal["value"]

    # --- what is shown --------------------------------------------------------------------------
    def next_token_probs(self) -> torch.Tensor:
        """The next-token view's distribution ``(vocab_size,)`` after position ``query``, with the
        current ``temperature``, ``top_k`` and ``top_p``: chapter 13's rules, in their order
        (:func:`lecture_utils.generation.next_token_probs`, the page computes the same)."""
        logits = self.forward_pass.logits[self.query][None]  # (1, vocab_size)
        return _rules_next_token_probs(logits, temperature=self.temperature, top_k=self.top_k or None,
                                       top_p=self.top_p if self.top_p < 1 else None)[0]

    @property
    def state(self) -> dict:
        """What the widget shows now: ``weights`` (the chosen layer's and head's ``(T, T)`` matrix),
        the chosen query's ``row``, its ``top_keys`` (most attended first), ``next_probs`` (after the
        temperature, top-k and top-p) and ``next_kept`` (the tokens left a probability above 0); ``tokens``
        (each token's text) and ``text`` (what the model reads)."""
        fp = self.forward_pass
        wei = fp.weights[self.layer, self.head]
        row = wei[self.query]
        k = min(self.top_keys, self.query + 1)
        vals, idx = torch.topk(row[: self.query + 1], k)
        top_text = ", ".join(f"{_label(fp.tokens[i])!s} at {i}: {v:.3f}" for v, i in zip(vals.tolist(), idx.tolist()))
        probs = self.next_token_probs()
        return {"tokens": list(fp.tokens), "text": fp.text, "layer": self.layer, "head": self.head, "query": self.query, "key": self.key,
                "view": self.view, "weights": wei, "row": row, "top_keys": idx.tolist(), "top_text": top_text,
                "next_probs": probs, "next_kept": probs > 0}

    def static_figure(self):
        import matplotlib.pyplot as plt

        fp, st = self.forward_pass, self.state
        tokens = list(fp.tokens)
        if self.view == "model":
            return plot_heads(fp.weights, tokens)
        if self.view == "next":
            p, kept = st["next_probs"], st["next_kept"]
            # the order and the grey bars: the distribution before the nucleus cut (temperature and top-k only)
            before = _rules_next_token_probs(fp.logits[self.query][None], temperature=self.temperature,
                                             top_k=self.top_k or None)[0]
            idx = torch.topk(before, min(15, before.numel())).indices
            shown = torch.where(kept[idx], p[idx], before[idx])
            fig, ax = plt.subplots(figsize=(6.5, 4.4))
            ax.barh(range(len(idx)), shown.numpy(), color=["#0072B2" if k else "#bbbbbb" for k in kept[idx].tolist()])
            ax.set_yticks(range(len(idx)), [_label(self.vocab[i]) for i in idx.tolist()], fontsize=9)
            ax.invert_yaxis()
            ax.set_xlabel("probability")
            title = (f"next {self.unit} after position {self.query} ({_label(tokens[self.query])}), "
                     f"temperature {self.temperature:g}" + (f", top-k {self.top_k}" if self.top_k else ""))
            if self.top_p < 1:
                n_kept, mass = int(kept.sum()), before[kept].sum().item()
                title += (f", top-p {self.top_p:g}\nthe nucleus keeps {n_kept} {self.unit}{'s' * (n_kept != 1)} "
                          f"({mass:.3f} of the probability), each divided by {mass:.3f}\n"
                          "grey: cut by top-p, drawn with its probability before the cut")
            ax.set_title(title, fontsize=9)
            return fig
        fig, ax = plt.subplots(figsize=(6.5, 5.5))
        plot_attention(ax, st["weights"], tokens, title=f"layer {self.layer}, head {self.head}", colorbar=True)
        ax.axhline(self.query, color="#e69f00", lw=1.2)
        ax.text(0, -0.08, f"query {self.query} ({_label(tokens[self.query])}) attends most to: {st['top_text']}",
                transform=ax.transAxes, fontsize=8, va="top")
        return fig


def _block_size(model) -> int | None:
    size = getattr(model, "block_size", None)
    if size is None and hasattr(model, "config"):
        size = getattr(model.config, "block_size", None)
    return size


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


class AveragingTrickExplorer(BrowserWidget):
    """Chapter 03: switch between v1 (loops), v2 (matmul with a normalised tril) and v3 (masked
    softmax); see the weight matrix (values on hover) and the averaged output beside the input.

    ``version`` (``'v1'``, ``'v2'``, ``'v3'``) and ``T`` (1..``max_T``) are traits, settable from Python
    too; ``.state`` holds the weights, ``x`` and ``xbow`` shown. ``x`` is the first ``T`` rows of one
    ``(max_T, C)`` draw from ``seed``, so changing ``T`` keeps the rows it shows."""

    kind = traitlets.Unicode("averaging").tag(sync=True)
    version = traitlets.Unicode("v1").tag(sync=True)
    T = traitlets.Int(8).tag(sync=True)
    C = traitlets.Int(2).tag(sync=True)
    max_T = traitlets.Int(16).tag(sync=True)
    x_f32 = traitlets.Bytes(b"").tag(sync=True)

    def __init__(self, T: int = 8, C: int = 2, seed: int = 1337):
        if not (isinstance(T, int) and T >= 1 and isinstance(C, int) and C >= 1):
            raise ValueError(f"T and C must be positive integers, got T={T!r}, C={C!r}")
        max_T = max(16, T)
        self.x_all = torch.randn(max_T, C, generator=torch.Generator().manual_seed(seed))
        super().__init__(C=C, max_T=max_T, T=T, x_f32=f32_bytes(self.x_all))

    @traitlets.validate("version")
    def _valid_version(self, proposal):
        if proposal["value"] not in ("v1", "v2", "v3"):
            raise traitlets.TraitError(f"version must be 'v1', 'v2' or 'v3', got {proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("T")
    def _valid_T(self, proposal):
        if not 1 <= proposal["value"] <= self.max_T:
            raise traitlets.TraitError(f"T must be in 1..{self.max_T}, got {proposal['value']}")
        return proposal["value"]

    @property
    def state(self) -> dict:
        wei = averaging_weights(self.version, self.T)
        x = self.x_all[: self.T]
        return {"version": self.version, "weights": wei, "x": x, "xbow": wei @ x, "formula": _FORMULAS[self.version]}

    def static_figure(self):
        import matplotlib.pyplot as plt

        st, T = self.state, self.T
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 1.2, 1.2]})
        plot_attention(axes[0], st["weights"], annotate=T <= 8, title=f"{self.version}: weights (row t averages x[0..t])")
        for ax, data_, name in ((axes[1], st["x"], "x"), (axes[2], st["xbow"], "xbow = wei @ x")):
            ax.imshow(data_.numpy(), cmap="RdBu_r", vmin=-2.5, vmax=2.5, aspect="auto")
            ax.set_title(name, fontsize=10)
            ax.set_xlabel("channel")
            ax.set_yticks(range(T))
        fig.suptitle(st["formula"], fontsize=9, family="monospace")
        fig.tight_layout()
        return fig


_FORMULAS = {"v1": "for t: xbow[t] = x[:t+1].mean(0)", "v2": "wei = tril / tril.sum(1); xbow = wei @ x",
             "v3": "wei = zeros.masked_fill(tril == 0, -inf).softmax(-1); xbow = wei @ x"}


class ScaledAttentionDemo(BrowserWidget):
    """Chapter 04, note 6: with q and k of unit variance, ``q @ k^T`` has variance ~head_size;
    dividing by sqrt(head_size) brings it back to ~1. Unscaled, softmax turns nearly one-hot.

    64 sequences of ``T`` random queries and keys with ``max_head_size`` dimensions are drawn once
    from ``seed``; a head size ``h`` uses their first ``h`` dimensions. Every head size, scaled and
    unscaled, is computed here once, so the slider answers in the browser. ``head_size`` and
    ``scaled`` are traits; ``.state`` holds the shown weights and statistics."""

    kind = traitlets.Unicode("scaled").tag(sync=True)
    head_size = traitlets.Int(16).tag(sync=True)
    scaled = traitlets.Bool(True).tag(sync=True)
    T = traitlets.Int(8).tag(sync=True)
    max_head_size = traitlets.Int(512).tag(sync=True)
    weights_f32 = traitlets.Bytes(b"").tag(sync=True)
    variance_f32 = traitlets.Bytes(b"").tag(sync=True)
    last_row_max_f32 = traitlets.Bytes(b"").tag(sync=True)

    def __init__(self, head_size: int = 16, T: int = 8, seed: int = 0):
        if not (isinstance(T, int) and 1 <= T <= 16):
            raise ValueError(f"T must be an integer in 1..16, got {T!r}")
        max_hs = 512
        if not (isinstance(head_size, int) and 1 <= head_size <= max_hs):
            raise ValueError(f"head_size must be an integer in 1..{max_hs}, got {head_size!r}")
        g = torch.Generator().manual_seed(seed)
        q = torch.randn(64, T, max_hs, generator=g, dtype=torch.float64)
        k = torch.randn(64, T, max_hs, generator=g, dtype=torch.float64)
        # scores for every head size at once: head size h sums the first h dimensions' products
        aff = (q[:, :, None, :] * k[:, None, :, :]).cumsum(-1).permute(3, 0, 1, 2)  # (max_hs, 64, T, T)
        scale = torch.arange(1, max_hs + 1, dtype=torch.float64).rsqrt().view(-1, 1, 1, 1)
        aff = torch.stack([aff, aff * scale], 1)  # (max_hs, 2 = unscaled/scaled, 64, T, T)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        wei = torch.softmax(aff.float().masked_fill(~mask, float("-inf")), -1)
        weights = wei[:, :, 0].contiguous()  # (max_hs, 2, T, T): the first sequence
        variance = aff.flatten(2).var(-1).float()  # (max_hs, 2)
        last_row_max = wei[..., -1, :].max(-1).values.mean(-1)  # how one-hot the last row is, on average
        self.tables = {"weights": weights, "variance": variance, "last_row_max": last_row_max}
        super().__init__(T=T, max_head_size=max_hs, head_size=head_size, weights_f32=f32_bytes(weights),
                         variance_f32=f32_bytes(variance), last_row_max_f32=f32_bytes(last_row_max))

    @traitlets.validate("head_size")
    def _valid_head_size(self, proposal):
        if not 1 <= proposal["value"] <= self.max_head_size:
            raise traitlets.TraitError(f"head_size must be in 1..{self.max_head_size}, got {proposal['value']}")
        return proposal["value"]

    @property
    def state(self) -> dict:
        i, s = self.head_size - 1, int(self.scaled)
        return {"variance": self.tables["variance"][i, s].item(), "last_row_max": self.tables["last_row_max"][i, s].item(),
                "weights": self.tables["weights"][i, s], "scaled": self.scaled, "head_size": self.head_size}

    def static_figure(self):
        import matplotlib.pyplot as plt

        st, T = self.state, self.T
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        plot_attention(axes[0], st["weights"], annotate=T <= 12, title="attention weights of one sequence")
        axes[1].bar(range(T), st["weights"][-1].numpy(), color="#0072B2")
        axes[1].set_ylim(0, 1)
        axes[1].set_title("last query's weights over the keys", fontsize=10)
        axes[1].set_xlabel("key position")
        fig.suptitle(f"var(q @ k^T) = {st['variance']:.2f} ({'scaled' if st['scaled'] else 'unscaled'}, head_size "
                     f"{st['head_size']}); mean largest weight in the last row: {st['last_row_max']:.2f}", fontsize=9)
        fig.tight_layout()
        return fig
