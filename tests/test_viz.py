"""Renderers and widgets: the picture shows the weights, controls change what is shown."""

import matplotlib.pyplot as plt  # the root conftest.py selects the Agg backend
import numpy as np
import pytest
import torch

from lecture_utils import viz
from lecture_utils.data import CharTokenizer
from lecture_utils.model import GPT, GPTConfig


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


@pytest.fixture
def explorer():
    tok = CharTokenizer.from_text("ROMEO:\nabcdefghijklmnopqrstuvwxyz ")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_embd=32, n_head=4, n_layer=2)).eval()
    return viz.AttentionExplorer(model, tok, text="ROMEO: hi")


def test_explorer_controls_change_the_picture(explorer):
    e = explorer
    assert e.last_error is None and e.state["query"] == 8
    png = e.out.value
    assert png[:8] == b"\x89PNG\r\n\x1a\n"  # the picture is a PNG in an ipywidgets.Image
    before = e.state["weights"].clone()
    e.layer.value = 1
    assert e.last_error is None and not torch.equal(e.state["weights"], before)
    assert e.out.value != png
    after_layer = e.state["weights"].clone()
    e.head.value = 2
    assert e.state["head"] == 2 and not torch.equal(e.state["weights"], after_layer)
    text_before = e.state["top_text"]
    e.query.value = 3
    assert e.state["query"] == 3 and e.state["top_text"] != text_before
    assert all(k <= 3 for k in e.state["top_keys"])  # never a future key
    e.head.value = -1
    assert e.state["weights"].shape == (4, 9, 9)  # all heads of layer 1


def test_explorer_handles_unknown_characters_and_long_text(explorer):
    e = explorer
    e.text.value = "ROMEO: $$ zz"
    assert e.last_error is None
    assert "'$'" in e.message.value and "$" not in e.state["tokens"]
    e.text.value = "abcdefghijklmnopqrstuvwxyz"
    assert "block_size=16" in e.message.value and e.state["tokens"] == "klmnopqrstuvwxyz"
    assert e.query.max == 15


def test_explorer_rejects_a_mismatched_tokenizer():
    model = GPT(GPTConfig(vocab_size=10, block_size=8, n_embd=16, n_head=2, n_layer=1))
    with pytest.raises(ValueError, match="tokenizer has 3 characters"):
        viz.AttentionExplorer(model, CharTokenizer.from_text("abc"))


def test_averaging_explorer_versions_agree_and_redraw():
    a = viz.AveragingTrickExplorer(T=6)
    v1 = a.state["xbow"].clone()
    for version in ("v2", "v3"):
        a.version.value = version
        assert a.state["version"] == version and a.last_error is None
        torch.testing.assert_close(a.state["xbow"], v1)
    assert "masked_fill" in a.state["formula"]  # the formula shown follows the version
    a.T.value = 3
    assert a.state["weights"].shape == (3, 3)


def test_scaled_attention_demo_shows_variance_and_sharpening():
    s = viz.ScaledAttentionDemo(head_size=256)
    scaled_var, scaled_max = s.state["variance"], s.state["last_row_max"]
    s.scaled.value = False
    assert s.state["variance"] > 50 * scaled_var  # ~head_size vs ~1
    assert s.state["last_row_max"] > scaled_max
    assert 0.5 < scaled_var < 2.0


def test_widget_errors_are_kept_not_swallowed():
    a = viz.AveragingTrickExplorer()
    a.version.options = ["v1", "v2", "v3", "v4"]
    a.version.value = "v4"
    assert isinstance(a.last_error, ValueError) and "error" in a.message.value
