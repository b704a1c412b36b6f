"""The course's pictures: each drawn by code here, embedded in the solutions notebooks as attachments.

    python -m lecture_utils.figures            # redraw every figure and embed it in solutions/
    python -m lecture_utils.figures --out DIR  # also write the PNG files to DIR (to look at them)

then ``python -m lecture_utils.authoring build`` carries them into notebooks/. A figure lives in a
markdown cell of its own, ``![alt text](attachment:NAME.png)`` plus a caption, with the PNG inside the
cell's ``attachments``: it shows offline in JupyterLab, Notebook 7, VS Code, Colab and a repository
host's preview, and nothing is fetched from anywhere. Re-running replaces the picture in the cell
that refers to it; a figure not yet in its notebook gets a new cell next to its anchor text.
"""

from __future__ import annotations

import argparse
import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

DPI = 80
BLUE, ORANGE, GREEN, GREY, RED, PURPLE = "#dbe9f6", "#fde3c8", "#dcefd9", "#eeeeee", "#f6d5d5", "#e6dcf2"


# ---------------------------------------------------------------------------------------------
# drawing helpers
# ---------------------------------------------------------------------------------------------


def _canvas(width: float, height: float):
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


def _box(ax, x, y, w, h, text, color=BLUE, size=10, weight="normal", edge="#555555", lw=1.0, text_color="black"):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec=edge,
                                lw=lw))
    return ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight,
                   color=text_color)


def _arrow(ax, x0, y0, x1, y1, text=None, color="#333333", style="-|>", size=9, offset=(0.08, 0)):
    ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle=style, mutation_scale=12, color=color, lw=1.2))
    if text:
        ax.text((x0 + x1) / 2 + offset[0], (y0 + y1) / 2 + offset[1], text, fontsize=size, color="#333333",
                va="center")


# ---------------------------------------------------------------------------------------------
# the figures
# ---------------------------------------------------------------------------------------------


def chunk_xy():
    """A chunk of block_size + 1 characters, x and y, and the block_size examples inside it."""
    chunk = "First Cit"
    fig, ax = _canvas(9.0, 4.6)
    ax.text(0.2, 4.3, "one chunk of block_size + 1 = 9 characters from train_data", fontsize=11, weight="bold")
    x0, w = 1.2, 0.7
    for i, ch in enumerate(chunk):
        _box(ax, x0 + i * w, 3.45, w - 0.06, 0.55, repr(ch)[1:-1] if ch != " " else "␣", GREY, 11)
        ax.text(x0 + i * w + w / 2 - 0.03, 3.3, str(i), ha="center", fontsize=8, color="#666666")
    for label, start, color, y in (("x", 0, BLUE, 2.55), ("y", 1, ORANGE, 1.85)):
        ax.text(0.3, y + 0.25, label, fontsize=13, weight="bold", va="center")
        for i in range(8):
            _box(ax, x0 + (start + i) * w, y, w - 0.06, 0.5, repr(chunk[start + i])[1:-1].replace(" ", "␣"), color, 11)
    ax.text(x0 + 9 * w + 0.1, 2.8, "x = chunk[:8]", fontsize=9, va="center")
    ax.text(x0 + 9 * w + 0.1, 2.1, "y = chunk[1:]\n(shifted by one)", fontsize=9, va="center")
    ax.text(0.2, 1.35, "the 8 examples inside it (context -> target):", fontsize=10, weight="bold")
    for t in range(8):
        col, row = t % 4, t // 4
        ctx = chunk[: t + 1].replace(" ", "␣")
        ax.text(0.3 + col * 2.2, 0.85 - row * 0.45, f"{ctx!s:>8} -> {chunk[t + 1].replace(' ', '␣')}",
                fontsize=9.5, family="monospace")
    return fig


def causal_mask():
    """The causal mask as who can see whom: the lower triangle, with the tokens on both axes."""
    import numpy as np

    tokens = list("hello!")
    T = len(tokens)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.8), gridspec_kw={"width_ratios": [1, 1.25]})
    mask = np.tril(np.ones((T, T)))
    ax.imshow(mask, cmap="Blues", vmin=0, vmax=3)
    for i in range(T):
        for j in range(T):
            ax.text(j, i, "✓" if mask[i, j] else "−inf", ha="center", va="center", fontsize=9,
                    color="#1b3a5c" if mask[i, j] else "#aa3333")
    ax.set_xticks(range(T), tokens)
    ax.set_yticks(range(T), tokens)
    ax.set_xlabel("key: the token looked at (column)")
    ax.set_ylabel("query: the token looking (row)")
    ax.xaxis.set_label_position("top")
    ax.xaxis.tick_top()
    ax.set_title("tril == 0 is masked: row t sees columns 0..t", fontsize=10, y=-0.14)
    ax2.set_xlim(-0.5, T - 0.5)
    ax2.set_ylim(-1.6, 1.6)
    ax2.set_aspect("equal")
    ax2.axis("off")
    ax2.set_title("the same as a directed graph: token 3 ('l') gathers from 0..3", fontsize=10)
    for j, tok in enumerate(tokens):
        ax2.add_patch(plt.Circle((j, 0), 0.3, fc=BLUE if j <= 3 else GREY, ec="#555555"))
        ax2.text(j, 0, tok, ha="center", va="center", fontsize=12)
        ax2.text(j, -0.55, str(j), ha="center", fontsize=8, color="#666666")
    for j in range(4):
        if j != 3:
            ax2.add_patch(FancyArrowPatch((j, 0.32), (3, 0.32), connectionstyle=f"arc3,rad={-0.5 + 0.1 * j}",
                                          arrowstyle="-|>", mutation_scale=12, color="#2a6db0", lw=1.3))
    ax2.text(3, -0.95, "(and from itself)", ha="center", fontsize=8, color="#2a6db0")
    ax2.text(4.5, -1.4, "4 and 5 are the future:\nno arrow from them", ha="center", fontsize=9, color="#aa3333")
    fig.tight_layout()
    return fig


def head_qkv():
    """One head of self-attention: query, key, value and their shapes."""
    fig, ax = _canvas(9.5, 5.0)
    _box(ax, 0.2, 2.2, 1.6, 0.7, "x\n(B, T, C)", GREY, 10)
    for y, name, color in ((4.0, "query", ORANGE), (2.2, "key", GREEN), (0.4, "value", PURPLE)):
        _box(ax, 2.4, y, 1.7, 0.7, f"{name} = Linear\n(C -> head_size)", color, 9)
        _arrow(ax, 1.8, 2.55, 2.4, y + 0.35)
    _box(ax, 4.7, 4.0, 1.15, 0.7, "q\n(B, T, hs)", ORANGE, 9)
    _box(ax, 4.7, 2.2, 1.15, 0.7, "k\n(B, T, hs)", GREEN, 9)
    _box(ax, 4.7, 0.4, 1.15, 0.7, "v\n(B, T, hs)", PURPLE, 9)
    for y in (4.0, 2.2, 0.4):
        _arrow(ax, 4.1, y + 0.35, 4.7, y + 0.35)
    _box(ax, 6.4, 3.1, 2.9, 1.5, "wei = q @ k.transpose(-2, -1)\n * head_size ** -0.5\n(B, T, T)\n"
         "masked_fill(tril == 0, -inf)\nsoftmax(dim=-1)", BLUE, 8.5)
    _arrow(ax, 5.85, 4.35, 6.4, 4.1)
    _arrow(ax, 5.85, 2.55, 6.4, 3.4)
    _box(ax, 6.6, 0.4, 2.5, 0.8, "out = wei @ v\n(B, T, hs)", RED, 10, "bold")
    _arrow(ax, 7.85, 3.1, 7.85, 1.2, "weights", offset=(0.08, 0))
    _arrow(ax, 5.85, 0.75, 6.6, 0.8)
    ax.text(0.2, 4.75, "one head: every token asks (q), offers (k) and tells (v)", fontsize=11, weight="bold")
    return fig


def heads_parallel_vs_batched():
    """Heads as a list run one after the other vs heads as a batch dimension."""
    fig, ax = _canvas(10, 4.4)
    ax.text(0.2, 4.1, "MultiHeadAttention (5.1): a list of heads", fontsize=11, weight="bold")
    _box(ax, 0.2, 1.8, 1.2, 0.7, "x\n(B, T, C)", GREY, 9)
    for i, y in enumerate((3.2, 2.4, 1.6, 0.8)):
        _box(ax, 2.0, y, 1.4, 0.55, f"Head {i}\n(B, T, hs)", BLUE, 8)
        _arrow(ax, 1.4, 2.15, 2.0, y + 0.27)
        _arrow(ax, 3.4, y + 0.27, 3.9, 2.15)
    _box(ax, 3.9, 1.8, 1.0, 0.7, "cat\ndim=-1", ORANGE, 9)
    _box(ax, 3.9, 0.6, 1.0, 0.7, "proj\n(B, T, C)", GREEN, 9)
    _arrow(ax, 4.4, 1.8, 4.4, 1.3)
    ax.text(0.2, 0.2, "num_heads small matmuls, one after the other", fontsize=9, style="italic")
    ax.plot([5.25, 5.25], [0.2, 4.2], color="#bbbbbb", lw=1)
    ax.text(5.45, 4.1, "CausalSelfAttention (5.2): heads as a batch dim.", fontsize=10.5, weight="bold")
    _box(ax, 5.5, 2.9, 1.2, 0.7, "x\n(B, T, C)", GREY, 9)
    _box(ax, 7.1, 2.9, 2.7, 0.7, "qkv: Linear(C -> 3C), split\nq, k, v (B, T, C)", BLUE, 9)
    _arrow(ax, 6.7, 3.25, 7.1, 3.25)
    _box(ax, 7.1, 1.8, 2.7, 0.7, "view(B, T, nh, hs).transpose(1, 2)\n(B, nh, T, hs)", ORANGE, 8.5)
    _arrow(ax, 8.45, 2.9, 8.45, 2.5)
    _box(ax, 7.1, 0.7, 2.7, 0.75, "attention on all heads at once\n(B, nh, T, T) -> (B, nh, T, hs)", RED, 8.5)
    _arrow(ax, 8.45, 1.8, 8.45, 1.45)
    _box(ax, 5.5, 0.7, 1.35, 0.75, "transpose,\nview(B, T, C),\nproj", GREEN, 8)
    _arrow(ax, 7.1, 1.07, 6.85, 1.07)
    ax.text(5.5, 0.2, "one large matmul per step: same function, same parameters", fontsize=9, style="italic")
    return fig


def transformer_block():
    """The pre-norm Transformer block on the residual stream, with where LayerNorm and dropout sit."""
    fig, ax = _canvas(8.5, 7.2)
    sx = 1.2  # the residual stream
    ax.add_patch(FancyArrowPatch((sx, 0.3), (sx, 6.9), arrowstyle="-|>", mutation_scale=16, color="#2a6db0", lw=3))
    ax.text(sx - 0.15, 3.6, "residual stream  x  (B, T, n_embd)", rotation=90, ha="right", va="center", fontsize=10,
            color="#2a6db0")
    # the stream flows upwards: attention first (lower), then the feed-forward network (upper)
    for y0, name, parts in ((0.7, "attention", ("ln1 = LayerNorm", "MultiHeadAttention\n(heads: softmax -> Dropout)\n"
                                                "cat -> proj", "Dropout")),
                            (3.7, "feed-forward", ("ln2 = LayerNorm", "Linear(C -> 4C), ReLU,\nLinear(4C -> C)",
                                                   "Dropout"))):
        ax.add_patch(plt.Circle((sx, y0 + 2.6), 0.2, fc="white", ec="#2a6db0", lw=2))
        ax.text(sx, y0 + 2.6, "+", ha="center", va="center", fontsize=14, color="#2a6db0")
        _arrow(ax, sx, y0 + 0.1, 2.3, y0 + 0.45)
        _box(ax, 2.3, y0 + 0.2, 1.9, 0.55, parts[0], GREEN, 9)
        _box(ax, 4.6, y0 + 0.05, 2.3, 0.9 if name == "feed-forward" else 1.05, parts[1], BLUE if name == "attention"
             else ORANGE, 8.5)
        _box(ax, 4.9, y0 + 1.5, 1.7, 0.5, parts[2], RED, 9)
        _arrow(ax, 4.2, y0 + 0.47, 4.6, y0 + 0.47)
        _arrow(ax, 5.75, y0 + (0.95 if name == "feed-forward" else 1.1), 5.75, y0 + 1.5)
        _arrow(ax, 5.75, y0 + 2.0, sx + 0.2, y0 + 2.6)
        ax.text(7.1, y0 + 0.5, {"attention": "communication:\ntokens talk", "feed-forward":
                                "computation:\neach token alone"}[name], fontsize=9, style="italic", va="center")
    ax.text(0.15, 6.95, "Block (pre-norm)", fontsize=12, weight="bold")
    ax.text(2.3, 6.55, "x = x + Dropout(sa(ln1(x)))     x = x + Dropout(ffwd(ln2(x)))", fontsize=9,
            family="monospace")
    ax.text(2.3, 0.15, "LayerNorm on each branch's input; the stream itself is never normalised (ln_f comes before "
            "lm_head).\nDropout at the end of each branch, just before it is added to the stream, and on the "
            "attention weights.", fontsize=8)
    return fig


def batchnorm_vs_layernorm():
    """BatchNorm normalises columns (features over the batch); LayerNorm rows (one example's features)."""
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.5))
    rows, cols = 6, 8
    for ax, title, along in ((axes[0], "BatchNorm: each feature (column)\nover the batch", 0),
                             (axes[1], "LayerNorm: each example (row)\nover its features", 1)):
        grid = np.zeros((rows, cols))
        if along == 0:
            grid[:, 2] = 1
        else:
            grid[2, :] = 1
        ax.imshow(grid, cmap="Oranges", vmin=-0.3, vmax=1.5)
        ax.set_xticks(range(cols), [])
        ax.set_yticks(range(rows), [])
        ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
        ax.grid(which="minor", color="white", lw=1.5)
        ax.tick_params(which="both", length=0)
        ax.set_xlabel("features (n_embd) ->")
        ax.set_ylabel("<- batch (examples, tokens)")
        ax.set_title(title, fontsize=10)
        # the label sits on the highlighted strip itself (a label outside the axes got clipped off the picture)
        if along == 0:
            ax.text(2, 2.5, "mean, var over this column", rotation=90, ha="center", va="center", fontsize=8,
                    color="white", weight="bold")
        else:
            ax.text(3.5, 2, "mean, var over this row", ha="center", va="center", fontsize=8, color="white",
                    weight="bold")
    fig.tight_layout()
    return fig


def bigram_table():
    """What a trained bigram table converges to: the corpus's next-character frequencies, as a heatmap."""
    import numpy as np

    from lecture_utils import data

    text = data.load_text()
    chars = list(" \nabcdefghijklmnopqrstuvwxyz.,")
    index = {c: i for i, c in enumerate(chars)}
    counts = np.zeros((len(chars), len(chars)))
    lower = text.lower()
    for a, b in zip(lower, lower[1:]):
        if a in index and b in index:
            counts[index[a], index[b]] += 1
    probs = counts / counts.sum(1, keepdims=True)
    labels = ["␣" if c == " " else "\\n" if c == "\n" else c for c in chars]
    fig, ax = plt.subplots(figsize=(7.5, 6.6))
    im = ax.imshow(probs, cmap="Blues")
    ax.set_xticks(range(len(chars)), labels, fontsize=8)
    ax.set_yticks(range(len(chars)), labels, fontsize=8)
    ax.set_xlabel("next character")
    ax.set_ylabel("current character")
    ax.set_title("P(next | current) in Tiny Shakespeare, lower-cased, 29 characters:\n"
                 "the kind of table a trained bigram learns (its rows after softmax, for all 65 characters)",
                 fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="probability")
    fig.tight_layout()
    return fig


def decoder_vs_encoder_decoder():
    """Decoder-only (ours) vs the original encoder-decoder Transformer with cross-attention."""
    fig, ax = _canvas(10, 4.6)
    ax.text(0.2, 4.3, "decoder-only (this course, GPT)", fontsize=11, weight="bold")
    _box(ax, 0.4, 0.3, 3.0, 0.55, "text so far (tokens)", GREY, 9)
    _box(ax, 0.4, 1.15, 3.0, 1.6, "N x [ masked self-attention\n+ feed-forward ]", BLUE, 10)
    _box(ax, 0.4, 3.1, 3.0, 0.55, "next-token probabilities", ORANGE, 9)
    _arrow(ax, 1.9, 0.85, 1.9, 1.15)
    _arrow(ax, 1.9, 2.75, 1.9, 3.1)
    ax.plot([4.1, 4.1], [0.2, 4.4], color="#bbbbbb", lw=1)
    ax.text(4.4, 4.3, "encoder-decoder (\"Attention Is All You Need\", translation)", fontsize=11, weight="bold")
    _box(ax, 4.5, 0.3, 2.3, 0.55, "French sentence", GREY, 9)
    _box(ax, 4.5, 1.15, 2.3, 1.6, "encoder: N x [ self-attention\n(no mask) + feed-forward ]", GREEN, 8.5)
    _arrow(ax, 5.65, 0.85, 5.65, 1.15)
    _box(ax, 7.3, 0.3, 2.5, 0.55, "English so far", GREY, 9)
    _box(ax, 7.3, 1.15, 2.5, 1.6, "decoder: N x [ masked self-attn\n+ cross-attention\n+ feed-forward ]", BLUE, 8.5)
    _box(ax, 7.3, 3.1, 2.5, 0.55, "next English token", ORANGE, 9)
    _arrow(ax, 8.55, 0.85, 8.55, 1.15)
    _arrow(ax, 8.55, 2.75, 8.55, 3.1)
    _arrow(ax, 6.8, 2.2, 7.3, 2.0, color="#2a6db0")
    ax.text(6.55, 2.95, "keys, values\nfrom the encoder", fontsize=8, color="#2a6db0", ha="center")
    return fig


def chatgpt_stages():
    """ChatGPT's three training stages, and where this course stops."""
    fig, ax = _canvas(10, 3.4)
    stages = (("1. pretraining", "predict the next token on\na large slice of the internet\n(GPT-3: 175 B params, "
               "300 B tokens)", BLUE),
              ("2. supervised fine-tuning", "the same loss on a few\nthousand written\nquestion -> answer demos", GREEN),
              ("3. reward model + RL", "people rank answers;\na reward model learns it;\nPPO tunes the model to it",
               ORANGE))
    for i, (title, body, color) in enumerate(stages):
        x = 0.3 + i * 3.3
        _box(ax, x, 0.7, 2.8, 1.75, f"{title}\n\n{body}", color, 9)
        if i:
            _arrow(ax, x - 0.5, 1.57, x, 1.57)
    ax.add_patch(FancyBboxPatch((0.15, 0.5), 3.1, 2.15, boxstyle="round,pad=0.02", fc="none", ec="#2a6db0", lw=2.5,
                                ls="--"))
    ax.text(0.2, 2.95, "this course does stage 1, at a tiny scale (10 M parameters, ~1 M characters)", fontsize=10,
            weight="bold", color="#2a6db0")
    ax.text(0.3, 0.2, "stage 1 gives a document completer; stages 2-3 turn it into an assistant", fontsize=9,
            style="italic")
    return fig


def gpt_overview(config=None, batch_size: int | None = None):
    """The whole GPT of chapter 08, read from the bottom up, with the tensor's shape on every arrow.

    ``config``: a :class:`lecture_utils.model.GPTConfig` (default: ``GPTConfig()``, the lecture's final
    model); ``batch_size``: the B written in the legend (default: ``TrainConfig().batch_size``). The
    numbers in the labels are read from these two, so the picture follows the chapter's configuration.
    """
    from lecture_utils.config import TrainConfig
    from lecture_utils.model import GPTConfig

    cfg = config if config is not None else GPTConfig()
    B = batch_size if batch_size is not None else TrainConfig().batch_size
    C, V, hs = cfg.n_embd, cfg.vocab_size, cfg.n_embd // cfg.n_head
    btc, btv = f"(B, T, {C})", f"(B, T, {V})"

    fig, ax = _canvas(10, 11.0)
    sx = 2.0  # the residual stream: embeddings in at the bottom, logits out at the top
    ax.text(0.2, 10.7, "the whole GPT, read from the bottom up", fontsize=12, weight="bold")
    ax.text(0.2, 10.35, f"B = batch ({B} in the lecture's run), T = context length (at most block_size = "
            f"{cfg.block_size}), C = n_embd = {C}, vocab_size = {V}", fontsize=9)

    # embeddings
    _box(ax, 0.5, 0.2, 3.0, 0.55, "idx: character ids  (B, T)", GREY, 9.5)
    _box(ax, 0.5, 1.25, 3.0, 0.7, f"token_embedding_table\nEmbedding({V}, {C})", GREEN, 9)
    _arrow(ax, sx, 0.75, sx, 1.25, "(B, T)")
    _box(ax, 4.6, 1.3, 2.9, 0.5, "torch.arange(T)  (T,)", GREY, 9)
    _box(ax, 4.6, 2.25, 2.9, 0.7, f"position_embedding_table\nEmbedding({cfg.block_size}, {C})", GREEN, 9)
    _arrow(ax, 6.05, 1.8, 6.05, 2.25, "(T,)")
    ax.add_patch(plt.Circle((sx, 2.6), 0.2, fc="white", ec="#2a6db0", lw=2))
    ax.text(sx, 2.6, "+", ha="center", va="center", fontsize=14, color="#2a6db0")
    _arrow(ax, sx, 1.95, sx, 2.4, btc)
    _arrow(ax, 4.6, 2.6, sx + 0.2, 2.6)
    ax.text(3.4, 2.72, f"(T, {C})", fontsize=9, ha="center", va="bottom", color="#333333")
    ax.text(3.4, 2.48, "broadcast over B", fontsize=7.5, ha="center", va="top", color="#666666",
            style="italic")

    # the blocks
    ax.add_patch(FancyBboxPatch((0.3, 3.45), 9.4, 4.2, boxstyle="round,pad=0.02,rounding_size=0.15", fc="none",
                                ec="#2a6db0", lw=1.5, ls="--"))
    ax.text(9.55, 7.4, f"Block  x {cfg.n_layer}  (n_layer)", fontsize=11, weight="bold", ha="right", color="#2a6db0")
    ax.text(9.55, 7.1, "each with its own weights; the output of one is the input of the next", fontsize=8,
            ha="right", style="italic", color="#2a6db0")
    _arrow(ax, sx, 2.8, sx, 3.45, f"x  {btc}")
    ax.add_patch(FancyArrowPatch((sx, 3.45), (sx, 7.65), arrowstyle="-", color="#2a6db0", lw=3))
    for y0, ln, body, color, note in (
            (3.65, "ln1: LayerNorm", f"MultiHeadAttention: {cfg.n_head} heads\n"
             f"each {btc} -> (B, T, {hs})\ncat -> {btc}, proj, Dropout", BLUE, "communication:\ntokens talk"),
            (5.45, "ln2: LayerNorm", f"FeedForward\nLinear({C} -> {4 * C}), ReLU\nLinear({4 * C} -> {C}), Dropout",
             ORANGE, "computation:\neach token alone")):
        plus_y = y0 + 1.35
        _box(ax, 2.55, y0, 1.45, 0.5, ln, GREEN, 9)
        _box(ax, 5.0, y0 - 0.15, 2.9, 0.8, body, color, 8.5)
        _arrow(ax, sx, y0 + 0.25, 2.55, y0 + 0.25)
        _arrow(ax, 4.0, y0 + 0.25, 5.0, y0 + 0.25)
        ax.text(4.5, y0 + 0.32, btc, fontsize=8, ha="center", va="bottom", color="#333333")
        # back to the stream: up from the branch, then left into the +
        ax.add_patch(FancyArrowPatch((6.45, y0 + 0.65), (sx + 0.2, plus_y), arrowstyle="-|>", mutation_scale=12,
                                     color="#333333", lw=1.2, connectionstyle="angle,angleA=90,angleB=0,rad=0"))
        ax.text(4.2, plus_y + 0.06, f"{btc}, added to x", fontsize=8.5, ha="center", va="bottom", color="#333333")
        ax.add_patch(plt.Circle((sx, plus_y), 0.2, fc="white", ec="#2a6db0", lw=2, zorder=3))
        ax.text(sx, plus_y, "+", ha="center", va="center", fontsize=14, color="#2a6db0", zorder=4)
        ax.text(8.0, y0 + 0.25, note, fontsize=8.5, style="italic", va="center")
    ax.text(1.05, 5.55, f"residual stream  x  {btc}", rotation=90, ha="center", va="center", fontsize=9,
            color="#2a6db0")

    # the head
    _box(ax, 0.5, 8.05, 3.0, 0.45, f"ln_f: LayerNorm({C})", GREEN, 9)
    _box(ax, 0.5, 8.85, 3.0, 0.45, f"lm_head: Linear({C}, {V})", PURPLE, 9)
    _box(ax, 0.5, 9.65, 3.0, 0.45, f"logits  {btv}", RED, 9.5, "bold")
    _arrow(ax, sx, 7.65, sx, 8.05, btc)
    _arrow(ax, sx, 8.5, sx, 8.85, btc)
    _arrow(ax, sx, 9.3, sx, 9.65, btv)
    ax.text(3.8, 9.87, f"training: cross_entropy with the targets (B, T) -> the loss\n"
            f"generate: softmax of the last position's {V} logits -> sample the next character", fontsize=8.5,
            va="center")
    ax.text(3.8, 8.5, f"the stream keeps C = {C} channels per position all the way up;\nonly lm_head "
            f"turns them into {V} scores, one per character", fontsize=8.5, va="center", style="italic")
    return fig


# the lecture's steps, one chapter each: (the chapter's subject, the piece it adds to the picture above)
ROADMAP_STEPS: tuple[tuple[str, str], ...] = (
    ("data", "batches x, y\n(B, T)"),
    ("bigram", "embedding ->\nlogits, loss"),
    ("averaging\ntrick", "tril, softmax,\nwei @ x"),
    ("self-attention", "Head"),
    ("multi-head", "MultiHead-\nAttention"),
    ("feed-forward", "FeedForward"),
    ("residual +\nLayerNorm", "Block"),
    ("the full GPT", "GPTLanguage-\nModel"),
)


def roadmap(chapter: int):
    """The strip at the top of chapters 01-08: the lecture's eight steps in a row, ``chapter`` highlighted
    ("you are here"), the chapters before it marked done, those after it greyed.

    Raises ValueError when ``chapter`` is not a whole number from 1 to 8.
    """
    n = len(ROADMAP_STEPS)
    if isinstance(chapter, bool) or not isinstance(chapter, int) or not 1 <= chapter <= n:
        raise ValueError(f"roadmap(chapter): chapter must be a whole number from 1 to {n} (the lecture's chapters "
                         f"01-{n:02d}), got {chapter!r}")
    fig, ax = _canvas(10, 1.75)
    w, gap, x0 = 1.1, 0.12, 0.2
    for i, (subject, piece) in enumerate(ROADMAP_STEPS, start=1):
        x = x0 + (i - 1) * (w + gap)
        if i == chapter:
            style = dict(color=ORANGE, edge="#c0601a", lw=2.5, weight="bold", text_color="black")
            ax.text(x + w / 2, 1.5, "you are here", ha="center", fontsize=8.5, weight="bold", color="#c0601a")
        elif i < chapter:
            style = dict(color=GREEN, edge="#4d8a4d", lw=1.0, weight="normal", text_color="#2b5a2b")
        else:
            style = dict(color=GREY, edge="#aaaaaa", lw=1.0, weight="normal", text_color="#777777")
        status = "✓ done" if i < chapter else ""
        _box(ax, x, 0.55, w, 0.85, f"{i:02d}\n{subject}", size=8.5, **style)
        ax.text(x + w / 2, 0.45, piece, ha="center", va="top", fontsize=8, color=style["text_color"],
                family="monospace" if piece[0].isupper() else None)
        if status:
            ax.text(x + w - 0.05, 1.33, status, ha="right", va="top", fontsize=7, color="#2b5a2b")
        if i < n:
            _arrow(ax, x + w, 0.97, x + w + gap, 0.97, style="-|>", color="#999999")
    return fig


# ---------------------------------------------------------------------------------------------
# where each figure goes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    name: str  # the attachment is NAME.png
    draw: Callable[[], object]
    notebook: str  # in solutions/
    anchor: str  # text of the cell it goes next to (used only when the figure is not yet in the notebook)
    where: str  # "after" or "before" that cell
    alt: str  # alt text: what the picture shows, for a reader who cannot see it
    caption: str


FIGURES: tuple[Figure, ...] = (
    Figure("chunk_xy", chunk_xy, "01_data.ipynb", "## Chunks of text, and why one chunk holds many examples", "after",
           "A chunk of 9 characters 'First Cit'; x is its first 8 characters, y the same shifted by one; below, the 8 "
           "examples it holds, from context 'F' -> 'i' up to 'First Ci' -> 't'.",
           "One chunk of `block_size + 1` characters is `block_size` training examples: every context length from 1 "
           "to `block_size`, each with the character that follows as its target."),
    Figure("bigram_table", bigram_table, "02_bigram.ipynb", "print(decode(generate(model, context, 400", "after",
           "Heatmap of next-character probabilities in the lower-cased text, for 29 characters (space, newline, a to "
           "z, full stop, comma): after a space many letters are likely, after 'q' only 'u', after a newline often "
           "another newline or a letter.",
           "Each row is a probability distribution over the next character, counted in the text (lower-cased and cut "
           "to 29 characters so that it fits). A trained bigram model's table, after softmax, approaches such counts "
           "for all 65 characters, capitals included: that is all a bigram can know."),
    Figure("head_qkv", head_qkv, "04_self_attention.ipynb", "## Queries, keys and values (01:02:00)", "after",
           "Data flow of one attention head: x of shape (B, T, C) goes through three linear layers to q, k and v of "
           "shape (B, T, head_size); q times k transposed, scaled, masked and softmaxed gives wei (B, T, T); wei "
           "times v gives the output (B, T, head_size).",
           "One head, with the shape at every step."),
    Figure("causal_mask", causal_mask, "04_self_attention.ipynb", "**1. Attention is communication.**", "after",
           "Left: a 6 by 6 grid for the tokens of 'hello!', ticks on and below the diagonal, -inf above it. Right: "
           "the same as a graph, token 3 receiving arrows from tokens 0, 1, 2 and itself, none from 4 and 5.",
           "Who can see whom: the causal mask is the lower triangle, or equally a directed graph in which each token "
           "receives from itself and the tokens before it."),
    Figure("heads_parallel_vs_batched", heads_parallel_vs_batched, "05_multi_head.ipynb", "## Heads in parallel (01:21:59)",
           "before",
           "Left: x feeds four separate heads whose outputs are concatenated and projected. Right: one linear layer "
           "makes q, k, v for all heads; a view and transpose make the heads a batch dimension (B, nh, T, hs); "
           "attention runs on all at once; transpose and view bring the heads side by side again before proj.",
           "The two forms you write in this chapter: the same function and the same parameters, computed as a list "
           "(exercise 5.1) or as one batched computation (exercise 5.2)."),
    Figure("batchnorm_vs_layernorm", batchnorm_vs_layernorm, "07_residual_layernorm.ipynb", "## LayerNorm (01:32:51)",
           "after",
           "Two 6 by 8 grids, rows are examples and columns features. Left, BatchNorm: one column highlighted, "
           "statistics over the batch. Right, LayerNorm: one row highlighted, statistics over one example's features.",
           "BatchNorm and LayerNorm compute the same thing along different axes of a (batch, features) matrix."),
    Figure("transformer_block", transformer_block, "07_residual_layernorm.ipynb", "## Pre-norm", "before",
           "The residual stream as a vertical arrow. Two branches leave it: LayerNorm, multi-head attention, dropout, "
           "added back; then LayerNorm, feed-forward, dropout, added back.",
           "The block you write in exercise 7.2: each branch reads a normalised copy of the stream and adds its "
           "result back. Dropout sits at the end of each branch (and on the attention weights inside each head)."),
    Figure("decoder_vs_encoder_decoder", decoder_vs_encoder_decoder, "08_scaling_up.ipynb",
           "## Decoder-only, and what ChatGPT adds", "after",
           "Left: decoder-only, the text so far goes through N blocks of masked self-attention and feed-forward to "
           "next-token probabilities. Right: an encoder without mask reads the source sentence; the decoder adds "
           "cross-attention whose keys and values come from the encoder.",
           "Decoder-only (ours) and encoder-decoder: the only new piece on the right is cross-attention."),
    Figure("chatgpt_stages", chatgpt_stages, "08_scaling_up.ipynb", "attachment:decoder_vs_encoder_decoder.png",
           "after",
           "Three boxes in a row: pretraining, supervised fine-tuning on demonstrations, reward model plus "
           "reinforcement learning; a dashed outline marks pretraining as what this course does.",
           "ChatGPT's three stages; this course is stage 1 at a tiny scale."),
    Figure("gpt_overview", gpt_overview, "08_scaling_up.ipynb", "config = GPTConfig()\nconfig", "after",
           "The whole GPT drawn from the bottom up: character ids (B, T) go through the token embedding table to "
           "(B, T, 384) and are added to the position embeddings (T, 384); the sum x (B, T, 384) passes 6 blocks, "
           "each LayerNorm, multi-head attention (6 heads of 64) and a residual add, then LayerNorm, feed-forward "
           "(384 to 1536 to 384) and a residual add; then the final LayerNorm ln_f and lm_head give logits "
           "(B, T, 65).",
           "The model of exercise 8.1 with the lecture's configuration (`GPTConfig()`), and the shape of the tensor "
           "on every arrow. The dashed box is chapter 07's `Block`, repeated `n_layer` times; the stream keeps "
           "`n_embd` channels from the embeddings to `ln_f`, and `lm_head` turns them into `vocab_size` scores."),
) + tuple(
    Figure(f"roadmap_{i:02d}", partial(roadmap, i), notebook, f"# Chapter {i:02d} —", "after",
           f"A row of the lecture's eight steps, from the data to the full GPT; step {i}, "
           f"{ROADMAP_STEPS[i - 1][0].replace(chr(10), ' ')}, is highlighted as 'you are here'"
           + (", and the steps before it are marked done." if i > 1 else "; the rest are still ahead."),
           f"Where this chapter sits: step {i} of the {len(ROADMAP_STEPS)} that build the GPT, and under each step "
           "the piece it adds.")
    for i, notebook in enumerate(("01_data.ipynb", "02_bigram.ipynb", "03_averaging_trick.ipynb",
                                  "04_self_attention.ipynb", "05_multi_head.ipynb", "06_feed_forward.ipynb",
                                  "07_residual_layernorm.ipynb", "08_scaling_up.ipynb"), start=1)
)


def png_bytes(figure: Figure, dpi: int = DPI) -> bytes:
    fig = figure.draw()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    plt.close(fig)
    return buf.getvalue()


def cell_source(figure: Figure) -> str:
    return f"![{figure.alt}](attachment:{figure.name}.png)\n\n*{figure.caption}*"


def embed(root: str | Path = ".", out: str | Path | None = None) -> list[str]:
    """Redraw every figure and put it into its notebook in ``root/solutions``. Returns what was done."""
    import nbformat

    root = Path(root)
    done = []
    by_notebook: dict[str, list[Figure]] = {}
    for f in FIGURES:
        by_notebook.setdefault(f.notebook, []).append(f)
    for name, figures in by_notebook.items():
        path = root / "solutions" / name
        nb = nbformat.read(path, as_version=4)
        for f in figures:
            data = png_bytes(f)
            if out is not None:
                Path(out).mkdir(parents=True, exist_ok=True)
                (Path(out) / f"{f.name}.png").write_bytes(data)
            ref = f"attachment:{f.name}.png"
            cells = [c for c in nb.cells if c.cell_type == "markdown" and ref in c.source]
            if cells:
                cell = cells[0]
            else:
                anchors = [i for i, c in enumerate(nb.cells) if f.anchor in c.source]
                if not anchors:
                    raise SystemExit(f"{name}: no cell contains the anchor {f.anchor!r} of figure {f.name}")
                cell = nbformat.v4.new_markdown_cell()
                nb.cells.insert(anchors[0] + (1 if f.where == "after" else 0), cell)
            cell.source = cell_source(f)
            cell["attachments"] = {f"{f.name}.png": {"image/png": base64.b64encode(data).decode("ascii")}}
            done.append(f"{name}: {f.name}.png ({len(data) / 1024:.0f} KiB)")
        nbformat.validate(nb)
        nbformat.write(nb, path)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lecture_utils.figures", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="the repository root (holds solutions/)")
    parser.add_argument("--out", default=None, help="also write the PNG files to this folder")
    args = parser.parse_args(argv)
    for line in embed(args.root, args.out):
        print(line)
    print("now run: python -m lecture_utils.authoring build")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
