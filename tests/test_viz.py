"""Renderers and widgets: the picture shows the weights, controls change what is shown."""

import matplotlib.pyplot as plt  # the root conftest.py selects the Agg backend
import numpy as np
import pytest
import torch
import traitlets

from lecture_utils import viz
from lecture_utils.bpe import BPETokenizer
from lecture_utils.data import CharTokenizer
from lecture_utils.model import GPT, GPTConfig
from lecture_utils.modern import build_gpt


def _causal_weights(T, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(T, T, generator=g).masked_fill(torch.ones(T, T).tril() == 0, float("-inf")), -1)


def test_plot_attention_image_is_the_weights_with_the_future_masked():
    w = _causal_weights(7)
    fig, ax = plt.subplots()
    im = viz.plot_attention(ax, w, list("abcdefg"))
    data = np.ma.filled(im.get_array(), np.nan)
    lower = np.tril_indices(7)
    np.testing.assert_allclose(data[lower], w.numpy()[lower])
    assert np.isnan(data[np.triu_indices(7, 1)]).all()
    assert im.get_clim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcdefg")
    assert len(ax.texts) == 28  # values written in the 28 visible cells
    np.testing.assert_allclose(np.nansum(data, 1), 1.0, rtol=1e-5)  # rows sum to 1
    plt.close(fig)


def test_plot_attention_rejects_bad_shapes():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="square"):
        viz.plot_attention(ax, torch.ones(3, 4))
    with pytest.raises(ValueError, match="3 token labels"):
        viz.plot_attention(ax, torch.ones(4, 4), list("abc"))
    plt.close(fig)


def test_plot_heads_grid_has_one_panel_per_layer_and_head():
    w = torch.stack([torch.stack([_causal_weights(5, s + 10 * layer) for s in range(3)]) for layer in range(2)])
    fig = viz.plot_heads(w, list("hello"))
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 6
    np.testing.assert_allclose(np.ma.filled(images[4].get_array(), 0), np.tril(w[1, 1].numpy()), rtol=1e-6)
    plt.close(fig)


@pytest.fixture(scope="module")
def small_gpt():
    tok = CharTokenizer.from_text("ROMEO:\nabcdefghijklmnopqrstuvwxyz ")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_embd=32, n_head=4, n_layer=2)).eval()
    return model, tok


@pytest.fixture
def explorer(small_gpt):
    return viz.AttentionExplorer(*small_gpt, text="ROMEO: hi")


def _from_bytes(b, *shape):
    return torch.from_numpy(np.frombuffer(b, dtype="<f4").copy()).view(*shape)


def test_explorer_sends_the_forward_pass_the_model_computes(explorer, small_gpt):
    model, tok = small_gpt
    e = explorer
    idx = torch.tensor([tok.encode("ROMEO: hi")])
    T = 9
    assert e.tokens == list("ROMEO: hi") and e.n_layer == 2 and e.n_head == 4 and e.head_size == 8
    expected = model.attention_maps(idx)[:, 0]  # (n_layer, n_head, T, T)
    torch.testing.assert_close(_from_bytes(e.weights_f32, 2, 4, T, T), expected)
    logits, _ = model(idx)
    torch.testing.assert_close(_from_bytes(e.logits_f32, T, tok.vocab_size), logits[0])
    # the queries and keys sent remake every weight: softmax(mask(q k^T / sqrt(head_size)))
    q, k = _from_bytes(e.q_f32, 2, 4, T, 8), _from_bytes(e.k_f32, 2, 4, T, 8)
    remade = (q @ k.transpose(-2, -1) / 8**0.5).masked_fill(torch.ones(T, T).tril() == 0, float("-inf")).softmax(-1)
    torch.testing.assert_close(remade, expected, atol=1e-5, rtol=1e-4)
    # and they are the model's own: layer 0's queries from its fused projection
    x = model.blocks[0].ln1(model.token_embedding_table(idx) + model.position_embedding_table(torch.arange(T)))
    q0 = model.blocks[0].sa.qkv(x)[0, :, :32].view(T, 4, 8).transpose(0, 1)
    torch.testing.assert_close(q[0], q0.detach())


@pytest.mark.parametrize("config", [dict(attention="heads"), dict(position="rope"), dict(norm="rmsnorm", activation="swiglu")])
def test_explorer_takes_every_course_model(config):
    tok = CharTokenizer.from_text("abcdef ")
    torch.manual_seed(1)
    model = build_gpt(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_embd=16, n_head=2, n_layer=2, dropout=0.0,
                                **config))
    e = viz.AttentionExplorer(model, tok, text="abc fed")
    assert e.head_size == 8 and e.qk_note == "", e.qk_note  # queries and keys reproduce the weights (RoPE too)
    torch.testing.assert_close(_from_bytes(e.weights_f32, 2, 2, 7, 7), model.attention_maps(torch.tensor([tok.encode("abc fed")]))[:, 0])


def test_explorer_takes_a_learners_model_built_from_course_blocks():
    from lecture_utils.model import Block

    class Mine(torch.nn.Module):  # chapter 08's GPTLanguageModel, in short
        def __init__(self):
            super().__init__()
            self.block_size = 8
            self.tok = torch.nn.Embedding(5, 16)
            self.blocks = torch.nn.Sequential(Block(16, 2, 8), Block(16, 2, 8))
            self.head = torch.nn.Linear(16, 5)

        def forward(self, idx, targets=None):
            return self.head(self.blocks(self.tok(idx))), None

    e = viz.AttentionExplorer(Mine(), CharTokenizer.from_text("abcde"), text="abcde")
    assert e.n_layer == 2 and e.n_head == 2 and e.last_error is None


def test_explorer_rejects_a_model_without_course_attention():
    class NoAttention(torch.nn.Module):
        block_size = 8

        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(3, 3)

        def forward(self, idx):
            return self.emb(idx)

    with pytest.raises(TypeError, match="course's attention modules"):
        viz.AttentionExplorer(NoAttention(), CharTokenizer.from_text("abc"), text="abc")


def test_explorer_controls_change_the_state(explorer):
    e = explorer
    assert e.last_error is None and e.state["query"] == 8  # starts at the last character
    before = e.state["weights"].clone()
    e.layer = 1
    assert not torch.equal(e.state["weights"], before)
    after_layer = e.state["weights"].clone()
    e.head = 2
    assert e.state["head"] == 2 and not torch.equal(e.state["weights"], after_layer)
    text_before = e.state["top_text"]
    e.query = 3
    assert e.state["query"] == 3 and e.state["top_text"] != text_before
    assert all(k <= 3 for k in e.state["top_keys"])  # never a future key
    torch.testing.assert_close(e.state["row"], e.forward_pass.weights[1, 2, 3])
    for bad in (dict(layer=2), dict(head=-1), dict(query=9), dict(view="3d"), dict(temperature=0.0)):
        with pytest.raises(traitlets.TraitError):
            e.set_trait(*bad.popitem())


def test_next_token_distribution_follows_temperature_and_top_k(explorer):
    e = explorer
    e.query = 5
    p1 = e.next_token_probs()
    torch.testing.assert_close(p1, torch.softmax(e.forward_pass.logits[5], -1))
    e.temperature = 0.5
    p_cold = e.next_token_probs()
    assert p_cold.max() > p1.max()  # a lower temperature sharpens
    e.top_k = 3
    p_top = e.next_token_probs()
    assert (p_top > 0).sum() == 3 and abs(p_top.sum().item() - 1) < 1e-5


def test_next_token_view_keeps_the_nucleus_of_top_p(explorer):
    e = explorer
    e.query, e.temperature = 5, 0.8
    assert e.top_p == 1.0 and "top_p" in e.keys and e.trait_metadata("top_p", "sync")  # synced to the page
    before = torch.softmax(e.forward_pass.logits[5] / 0.8, -1)
    sorted_p, order = before.sort(descending=True)
    # just above the mass of the 2 most likely characters: a third one is needed, a fourth is not
    e.top_p = sorted_p[:2].sum().item() + 1e-4
    p = e.next_token_probs()
    kept = order[:3]
    assert (p > 0).sum() == 3 and bool((p[kept] > 0).all())
    torch.testing.assert_close(p[kept], before[kept] / before[kept].sum())  # renormalised over the nucleus
    torch.testing.assert_close(e.state["next_probs"], p)
    assert e.state["next_kept"].tolist() == (p > 0).tolist()
    e.top_p = sorted_p[0].item() - 1e-4  # below the top character's probability: it alone is kept
    assert e.next_token_probs()[order[0]].item() == 1.0
    e.top_k, e.top_p = 2, 0.999  # top-k first: the nucleus is taken from the 2 characters left
    assert (e.next_token_probs() > 0).sum() == 2
    e.top_k, e.top_p = 0, 1.0  # 1 keeps everything
    torch.testing.assert_close(e.next_token_probs(), before)
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(traitlets.TraitError, match=r"top_p must be in \(0, 1\]"):
            e.top_p = bad
    assert e.top_p == 1.0  # a refused value leaves the setting as it was


def test_png_of_the_next_token_view_names_the_top_p_setting(explorer):
    explorer.view, explorer.top_p = "next", 0.5
    fig = explorer.static_figure()
    title = fig.axes[0].get_title()
    n_kept = int(explorer.state["next_kept"].sum())
    assert "top-p 0.5" in title and f"keeps {n_kept} character" in title
    import matplotlib.pyplot as plt

    plt.close(fig)
    explorer.top_p = 1.0
    fig = explorer.static_figure()
    assert "top-p" not in fig.axes[0].get_title()
    plt.close(fig)


def test_replacing_the_text_reruns_the_model_and_clamps_the_positions(explorer, small_gpt):
    model, tok = small_gpt
    e = explorer
    assert e.query == 8
    revision = e.revision
    e.text = "hi"
    assert e.last_error is None and e.tokens == ["h", "i"] and e.query == 1 and e.key <= 1
    assert e.revision == revision + 1
    torch.testing.assert_close(e.forward_pass.weights, model.attention_maps(torch.tensor([tok.encode("hi")]))[:, 0])


def test_explorer_handles_unknown_characters_and_long_text(explorer):
    e = explorer
    e.text = "ROMEO: $$ zz"
    assert e.last_error is None
    assert "'$'" in e.message and "$" not in e.state["tokens"]
    e.text = "abcdefghijklmnopqrstuvwxyz"
    assert "block_size=16 characters" in e.message and e.state["tokens"] == list("klmnopqrstuvwxyz")
    assert e.state["text"] == "klmnopqrstuvwxyz"
    assert len(e.tokens) == 16


@pytest.mark.parametrize("text, problem", [("", "the text is empty"), ("$%$", "none of the text's characters")])
def test_bad_text_gets_one_clear_error(small_gpt, explorer, text, problem):
    with pytest.raises(ValueError, match=problem) as info:
        viz.AttentionExplorer(*small_gpt, text=text)
    assert "type" in str(info.value)  # and says what to do
    e = explorer
    tokens = list(e.tokens)
    e.text = text  # typed into the widget: shown there, kept, the last good text still shown
    assert problem in e.error and isinstance(e.last_error, ValueError) and e.tokens == tokens


def test_an_error_clears_the_notes_about_the_previous_text(explorer):
    e = explorer
    e.text = "ROMEO: $$ zz"
    assert "ignored characters" in e.message
    e.text = ""  # the note named characters of a text that is no longer there
    assert "the text is empty" in e.error and e.message == ""


def test_explorer_rejects_a_mismatched_tokenizer():
    model = GPT(GPTConfig(vocab_size=10, block_size=8, n_embd=16, n_head=2, n_layer=1))
    with pytest.raises(ValueError, match="tokenizer has 3 characters"):
        viz.AttentionExplorer(model, CharTokenizer.from_text("abc"), text="abc")


@pytest.mark.parametrize("view", ["heatmap", "head", "model", "qk", "next"])
def test_output_carries_a_png_of_the_current_view_for_frontends_without_widgets(explorer, view):
    explorer.view = view
    data, _ = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    import base64

    assert base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_display_publishes_the_widget_and_the_png(explorer, monkeypatch):
    # ipywidgets 7 (Colab) displays through _ipython_display_, which must carry the PNG too
    try:  # IPython 8 moved display() into display_functions; Colab's IPython 7.34 keeps it in IPython.core.display
        import IPython.core.display_functions as display_functions
    except ImportError:
        import IPython.core.display as display_functions
    from IPython.core.interactiveshell import InteractiveShell

    published = []
    monkeypatch.setattr(InteractiveShell, "initialized", classmethod(lambda cls: True))  # as in a kernel
    monkeypatch.setattr(display_functions, "publish_display_data", lambda data, **kw: published.append(data))
    explorer.show()
    assert {"application/vnd.jupyter.widget-view+json", "image/png", "text/plain"} <= set(published[0])


def test_png_shows_the_chosen_head(explorer):
    explorer.head = 1
    fig = explorer.static_figure()
    image = [ax for ax in fig.axes if ax.images][0].images[0]
    np.testing.assert_allclose(np.ma.filled(image.get_array(), 0), np.tril(explorer.forward_pass.weights[0, 1].numpy()),
                               rtol=1e-6)
    plt.close(fig)


def test_save_html_writes_a_standalone_page_with_the_module_and_data(explorer, tmp_path):
    import json
    import re

    explorer.layer, explorer.view = 1, "model"
    page = explorer.save_html(tmp_path / "sub" / "explorer.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    payload = json.loads(re.search(r'id="payload">(.*?)</script>', page, re.S).group(1))
    assert payload["state"]["layer"] == 1 and payload["state"]["view"] == "model"
    assert payload["esm"].strip().endswith("export default { render };")
    import base64

    w = _from_bytes(base64.b64decode(payload["state"]["weights_f32"]), 2, 4, 9, 9)
    torch.testing.assert_close(w, explorer.forward_pass.weights)
    assert not list((tmp_path / "sub").glob("*.tmp"))


def test_widget_module_ships_inside_the_package():
    from pathlib import Path

    static = Path(viz.__file__).parent / "static"
    assert viz.AttentionExplorer._esm == (static / "attention.js").read_text()
    assert "import " not in viz.AttentionExplorer._esm  # no dependency, nothing from a CDN


def test_averaging_explorer_versions_agree_and_follow_the_controls():
    a = viz.AveragingTrickExplorer(T=6)
    v1 = a.state["xbow"].clone()
    for version in ("v2", "v3"):
        a.version = version
        assert a.state["version"] == version and a.last_error is None
        torch.testing.assert_close(a.state["xbow"], v1)
    assert "masked_fill" in a.state["formula"]  # the formula shown follows the version
    a.T = 3
    assert a.state["weights"].shape == (3, 3)
    torch.testing.assert_close(a.state["x"], _from_bytes(a.x_f32, 16, 2)[:3])  # the rows the page shows
    with pytest.raises(traitlets.TraitError, match="'v1', 'v2' or 'v3'"):
        a.version = "v4"
    with pytest.raises(traitlets.TraitError, match="T must be in 1..16"):
        a.T = 17


def test_scaled_attention_demo_shows_variance_and_sharpening():
    s = viz.ScaledAttentionDemo(head_size=256)
    scaled_var, scaled_max = s.state["variance"], s.state["last_row_max"]
    s.scaled = False
    assert s.state["variance"] > 50 * scaled_var  # ~head_size vs ~1
    assert s.state["last_row_max"] > scaled_max
    assert 0.5 < scaled_var < 2.0


def test_scaled_demo_tables_are_the_direct_computation():
    s = viz.ScaledAttentionDemo(head_size=24, T=5, seed=3)
    g = torch.Generator().manual_seed(3)
    q = torch.randn(64, 5, 512, generator=g, dtype=torch.float64)[..., :24]
    k = torch.randn(64, 5, 512, generator=g, dtype=torch.float64)[..., :24]
    aff = q @ k.transpose(-2, -1) / 24**0.5
    wei = aff.masked_fill(torch.ones(5, 5).tril() == 0, float("-inf")).softmax(-1)
    torch.testing.assert_close(s.state["weights"], wei[0].float(), atol=1e-6, rtol=1e-5)
    assert abs(s.state["variance"] - aff.var().item()) < 1e-4


# --- a model on BPE tokens: the views are labelled with tokens, not characters ------------------------------------

E6, X97, XA5 = "日".encode()  # one character, three bytes


@pytest.fixture
def bpe_gpt():
    """A small GPT on a BPE tokenizer whose merges are chosen by hand: "a " and "th" become one token each, and
    so do the first two of the three bytes of "日" - a token that is half a character."""
    a, sp, t, h = b"a th"
    tok = BPETokenizer({(a, sp): 256, (t, h): 257, (E6, X97): 258, (257, a): 259})
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_embd=32, n_head=4, n_layer=2)).eval()
    return model, tok


def test_bpe_explorer_labels_tokens_with_their_text(bpe_gpt):
    model, tok = bpe_gpt
    text = "that a a\n日"
    ids = tok.encode(text)
    # "tha", "t", " ", "a ", "a", "\n", the first two bytes of 日, its last byte: 8 tokens, block_size
    assert ids == [259, ord("t"), ord(" "), 256, ord("a"), ord("\n"), 258, XA5]
    e = viz.AttentionExplorer(model, tok, text=text)
    assert e.unit == "token" and e.last_error is None and e.message == ""
    assert e.tokens == ["tha", "t", "\u2423", "a\u2423", "a", "\u21b5", "\\xe6\\x97", "\\xa5"]
    assert e.state["text"] == text and e.query == len(ids) - 1
    # the vocabulary the next-token view names: one readable label per id, bytes and merges alike
    assert len(e.vocab) == tok.vocab_size and e.vocab[258] == "\\xe6\\x97" and e.vocab[ord(" ")] == "\u2423"
    assert len(set(e.vocab)) == tok.vocab_size  # no two tokens look the same
    T = len(ids)
    torch.testing.assert_close(_from_bytes(e.weights_f32, 2, 4, T, T), model.attention_maps(torch.tensor([ids]))[:, 0])
    e.query, e.top_keys = 6, 7  # every key of query 6, labelled
    assert f"\\xe6\\x97 at 6: {e.state['row'][6]:.3f}" in e.state["top_text"]


def test_bpe_explorer_knows_every_text_and_cuts_long_ones_in_tokens(bpe_gpt):
    model, tok = bpe_gpt
    e = viz.AttentionExplorer(model, tok, text="€🙂z")  # characters no merge knows: still no unknown text
    assert e.message == "" and e.last_error is None and e.tokens == ["\\xe2", "\\x82", "\\xac", "\\xf0", "\\x9f",
                                                                     "\\x99", "\\x82", "z"]
    text = "the a " * 4  # 24 characters, 12 tokens: "th" "e" " " "a " ...
    e.text = text
    ids = tok.encode(text)
    assert len(ids) > 8 and "block_size=8 tokens: showing the last 8" in e.message
    assert e.state["text"] == tok.decode(ids[-8:]) and len(e.tokens) == 8
    torch.testing.assert_close(e.forward_pass.logits, model(torch.tensor([ids[-8:]]))[0][0])


def test_bpe_explorer_rejects_a_character_tokenizer_of_another_size(bpe_gpt):
    model, _ = bpe_gpt
    with pytest.raises(ValueError, match="tokenizer has 3 characters but the model expects 260"):
        viz.AttentionExplorer(model, CharTokenizer.from_text("abc"), text="abc")


@pytest.mark.parametrize("view", ["heatmap", "next", "model"])
def test_bpe_explorer_pictures_name_tokens(bpe_gpt, view):
    model, tok = bpe_gpt
    e = viz.AttentionExplorer(model, tok, text="that a a\n日", top_k=3)
    e.view = view
    fig = e.static_figure()
    labels = {t.get_text() for ax in fig.axes for t in ax.get_yticklabels()}
    titles = " ".join(ax.get_title() for ax in fig.axes)
    if view == "next":  # the 15 most likely next tokens, by their labels
        assert titles.startswith("next token after position 7 (\\xa5)")
        assert labels <= set(e.vocab) and len(labels) == 15
    else:
        assert {"tha", "a\u2423", "\u21b5", "\\xe6\\x97", "\\xa5"} <= labels
    plt.close(fig)
