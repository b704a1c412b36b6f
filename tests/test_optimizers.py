"""lecture_utils.optimizers: AdamW's weight decay on every parameter or on the matrices only, and Muon
(orthogonalised momentum) for the blocks' weight matrices."""

import pytest
import torch

from lecture_utils import data
from lecture_utils.config import TrainConfig
from lecture_utils.model import GPT, GPTConfig
from lecture_utils.train import train


@pytest.fixture(scope="module")
def shakespeare():
    return data.load_dataset()


def test_newton_schulz_pushes_singular_values_towards_one():
    from lecture_utils.optimizers import newton_schulz

    torch.manual_seed(0)
    for shape in [(64, 128), (384, 128), (96, 64)]:
        g = torch.randn(*shape) @ torch.diag(torch.logspace(-1, 1, shape[1]))  # singular values over 2 decades
        o = newton_schulz(g)
        assert o.shape == g.shape and o.dtype == g.dtype
        s = torch.linalg.svdvals(o)
        assert s.min() > 0.6 and s.max() < 1.3, (shape, s.min().item(), s.max().item())
        # the same directions: the result is close to U V^T of g's SVD
        u, _, vh = torch.linalg.svd(g, full_matrices=False)
        assert torch.nn.functional.cosine_similarity(o.flatten(), (u @ vh).flatten(), dim=0) > 0.95


@pytest.mark.parametrize("decay_all", [True, False])
def test_weight_decay_on_matrices_only(decay_all):
    from lecture_utils.optimizers import make_optimizer

    model = GPT(GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.0))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = make_optimizer(model, TrainConfig(learning_rate=0.1, weight_decay=0.5, decay_all=decay_all),
                         torch.device("cpu"))
    for p in model.parameters():  # no gradient signal: only weight decay moves a parameter
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in model.named_parameters():
        shrunk = not torch.equal(p.detach(), before[n])
        if p.ndim >= 2:  # matrices and embedding tables decay either way (by lr * wd = 5 %)
            assert torch.allclose(p.detach(), before[n] * 0.95), n
        elif decay_all:  # the lecture's AdamW: norm gains and biases decay too (a zero bias stays zero)
            assert shrunk or not before[n].any(), n
        else:
            assert not shrunk, f"{n} decayed with decay_all=False"


def test_muon_optimizer_splits_the_parameters():
    from lecture_utils.optimizers import Muon, make_optimizer

    model = GPT(GPTConfig(vocab_size=65, block_size=8, n_embd=16, n_head=2, n_layer=2, dropout=0.0))
    cfg = TrainConfig(optimizer="muon", learning_rate=1e-3, muon_lr=0.02)
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    adamw, muon = opt.optimizers
    assert isinstance(muon, Muon) and isinstance(adamw, torch.optim.AdamW)
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    names = {n for n, p in model.named_parameters() if id(p) in in_muon}
    assert names == {n for n, p in model.named_parameters() if p.ndim == 2 and n.startswith("blocks.")}
    assert "token_embedding_table.weight" not in names and "lm_head.weight" not in names
    assert len(in_muon) + sum(len(g["params"]) for g in adamw.param_groups) == len(list(model.parameters()))
    assert muon.param_groups[0]["lr_scale"] == pytest.approx(20.0)
    with pytest.raises(ValueError, match="'adamw' or 'muon'"):
        make_optimizer(model, TrainConfig(optimizer="sgd"), torch.device("cpu"))
    with pytest.raises(ValueError, match="weight matrices only"):
        Muon([torch.nn.Parameter(torch.zeros(3))])


def test_muon_step_goes_downhill_and_training_learns(shakespeare):
    from lecture_utils.optimizers import Muon

    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(32, 16))
    target = torch.randn(32, 16)
    opt = Muon([w], lr=0.1)
    losses = []
    for _ in range(30):
        loss = ((w - target) ** 2).sum()
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]
    _, tok, tr, va = shakespeare
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_embd=32, n_head=4, n_layer=1, dropout=0.0))
    cfg = TrainConfig(max_iters=60, eval_interval=60, eval_iters=2, batch_size=8, block_size=16, learning_rate=3e-3,
                      optimizer="muon", muon_lr=0.02)
    res = train(model, tr, va, cfg, progress=False)
    assert res.history[-1]["val"] < res.history[0]["val"] - 0.5
