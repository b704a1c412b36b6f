"""Checks for chapter 02 (bigram): 2.1 the bigram model's forward, 2.2 generate, 2.3 estimate_loss,
2.4 the training loop.

None of them reads the corpus: token ids are random integers below the vocabulary size (65).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lecture_utils import model as ref
from lecture_utils.checks._core import exercise, expect, fail, fail_generic, fresh_seed, passed, rng
from lecture_utils.checks._device import on_second_device
from lecture_utils.checks._helpers import (
    blame_notebook_globals,
    build,
    call,
    copy_weights,
    isolated_rng,
    randomize_,
    same,
    tensor_output,
)
from lecture_utils.checks._parts import part

VOCAB = 65

_RESHAPE_BOTH = ("cross_entropy wants the classes in dimension 1: reshape the logits to (B*T, C) and the targets "
                 "to (B*T,) first - B, T, C = logits.shape; logits = logits.view(B*T, C); targets = targets.view(B*T)")
_LOSS_HINTS = (
    ("Expected target size", "logits not reshaped to (B*T, C): " + _RESHAPE_BOTH),
    ("to match target batch_size", ("targets not reshaped: with logits of shape (B*T, C) the targets must be "
                                   "(B*T,) - targets = targets.view(B*T)")),
)
_NO_TARGETS_HINTS = (
    ("missing 1 required positional argument: 'targets'", "targets should be optional: def forward(self, idx, targets=None)"),
    ("NoneType", ("without targets there is no loss to compute: if targets is None, return the logits (B, T, C) "
                 "and loss = None")),
)


# ---------------------------------------------------------------------------------------------
# 2.1
# ---------------------------------------------------------------------------------------------


def _table_hint(name: str, got: tuple, want: tuple) -> str:
    return (f"token_embedding_table should be nn.Embedding(vocab_size, vocab_size) (weight {want}), got {got}: "
            f"each token reads the logits of the next token off its own row")


@exercise("2.1")
@blame_notebook_globals
@isolated_rng
def bigram_forward(BigramLanguageModel, device="cpu"):
    """``BigramLanguageModel(vocab_size)``; ``forward(idx, targets=None) -> (logits, loss)`` with logits
    ``(B, T, C)`` without targets, ``(B*T, C)`` and the cross-entropy loss with them."""
    g = rng(fresh_seed())
    for vocab in (VOCAB, 11):
        model = build(BigramLanguageModel, (vocab,), "vocab_size").to(device)
        reference = randomize_(ref.BigramLanguageModel(vocab), g, std=1.0).to(device)
        copy_weights(reference, model, "BigramLanguageModel", _table_hint)
        for B, T in ((4, 8), (1, 1), (3, 5)):
            idx = torch.randint(vocab, (B, T), generator=g).to(device)
            targets = torch.randint(vocab, (B, T), generator=g).to(device)
            want_logits, _ = reference(idx)

            out = call(model, idx, hints=_NO_TARGETS_HINTS)
            expect(isinstance(out, tuple) and len(out) == 2, "forward should return a pair: return logits, loss")
            logits, loss = out
            if loss is not None:
                fail("without targets, loss should be None (there is nothing to compare the logits with): "
                     "if targets is None: loss = None")
            if isinstance(logits, torch.Tensor) and logits.shape == (B * T, vocab) and T > 1:
                fail("without targets, the logits should keep their shape (B, T, C); reshape to (B*T, C) only when "
                     "computing the loss")
            tensor_output(logits, "forward(idx)", (B, T, vocab))
            if not same(logits, want_logits):
                fail_generic("the logits differ from the reference: logits = self.token_embedding_table(idx) - token idx[b, t] "
                     "reads row idx[b, t] of the table")

            want_flat, want_loss = reference(idx, targets)
            out = call(model, idx, targets, hints=_LOSS_HINTS)
            expect(isinstance(out, tuple) and len(out) == 2, "forward should return a pair: return logits, loss")
            logits, loss = out
            tensor_output(logits, "forward(idx, targets) (the logits)", (B * T, vocab),
                          "logits not reshaped to (B*T, C): with targets, return the logits in the shape "
                          "cross_entropy needs, logits.view(B*T, C)")
            if not same(logits, want_flat):
                if same(logits, reference(targets, targets)[0]):
                    fail("the logits were looked up with the targets: use idx (the current tokens); the targets "
                         "are only what the loss compares the logits with")
                fail_generic("with targets, the logits differ from the reference: logits = self.token_embedding_table(idx), "
                     "then logits.view(B*T, C)")
            _check_loss(loss, want_flat, targets.view(B * T), want_loss)
    idx, targets = torch.randint(VOCAB, (2, 5), generator=g), torch.randint(VOCAB, (2, 5), generator=g)
    model = build(BigramLanguageModel, (VOCAB,), "vocab_size")
    on_second_device(lambda m, i: m(i)[0], model, idx, device=device, what="forward(idx)", what_input="idx")
    on_second_device(lambda m, i, t: m(i, t), model, idx, targets, device=device, what="forward(idx, targets)",
                     what_input="idx")
    return passed("logits (B, T, C) without targets; (B*T, C) and the mean cross-entropy with them; "
                  "loss None without targets", BigramLanguageModel)


# parts of 2.1 for partial credit (lecture_utils.checks._parts): each builds its own model and tests one property


def _bigram_pair(BigramLanguageModel, g: torch.Generator, device, vocab: int = VOCAB):
    model = build(BigramLanguageModel, (vocab,), "vocab_size").to(device)
    reference = randomize_(ref.BigramLanguageModel(vocab), g, std=1.0).to(device)
    copy_weights(reference, model, "BigramLanguageModel", _table_hint)
    return model, reference


def _pair(out) -> tuple:
    expect(isinstance(out, tuple) and len(out) == 2, "forward should return a pair: return logits, loss")
    return out


@part("2.1", "forward(idx): logits (B, T, C) read off the table, loss None")
def _bigram_no_targets(BigramLanguageModel, device="cpu"):
    g = rng(fresh_seed())
    model, reference = _bigram_pair(BigramLanguageModel, g, device)
    for B, T in ((4, 8), (1, 1), (3, 5)):
        idx = torch.randint(VOCAB, (B, T), generator=g).to(device)
        logits, loss = _pair(call(model, idx, hints=_NO_TARGETS_HINTS))
        if loss is not None:
            fail("without targets, loss should be None (there is nothing to compare the logits with): "
                 "if targets is None: loss = None")
        tensor_output(logits, "forward(idx)", (B, T, VOCAB), "without targets the logits keep their shape (B, T, C)")
        if not same(logits, reference(idx)[0]):
            fail_generic("the logits differ from the reference: logits = self.token_embedding_table(idx)")


@part("2.1", "forward(idx, targets): logits reshaped to (B*T, C)")
def _bigram_flat_logits(BigramLanguageModel, device="cpu"):
    g = rng(fresh_seed())
    model, reference = _bigram_pair(BigramLanguageModel, g, device)
    for B, T in ((4, 8), (3, 5)):
        idx, targets = (torch.randint(VOCAB, (B, T), generator=g).to(device) for _ in range(2))
        logits, _ = _pair(call(model, idx, targets, hints=_LOSS_HINTS))
        tensor_output(logits, "forward(idx, targets) (the logits)", (B * T, VOCAB),
                      "logits not reshaped to (B*T, C): with targets, return the logits in the shape cross_entropy "
                      "needs, logits.view(B*T, C)")
        if not same(logits, reference(idx, targets)[0]):
            if same(logits, reference(targets, targets)[0]):
                fail("the logits were looked up with the targets: use idx (the current tokens)")
            fail_generic("with targets, the logits differ from the reference: logits = self.token_embedding_table(idx), "
                         "then logits.view(B*T, C)")


@part("2.1", "the loss: the mean cross-entropy of the logits against the targets, a tensor that can backpropagate")
def _bigram_loss(BigramLanguageModel, device="cpu"):
    g = rng(fresh_seed())
    model, reference = _bigram_pair(BigramLanguageModel, g, device)
    for B, T in ((4, 8), (3, 5)):
        idx, targets = (torch.randint(VOCAB, (B, T), generator=g).to(device) for _ in range(2))
        _, loss = _pair(call(model, idx, targets, hints=_LOSS_HINTS))
        want_flat, want_loss = reference(idx, targets)
        _check_loss(loss, want_flat, targets.view(B * T), want_loss)


@part("2.1", "runs on another device (no tensor left on the CPU)")
def _bigram_device(BigramLanguageModel, device="cpu"):
    g = rng(fresh_seed())
    idx, targets = torch.randint(VOCAB, (2, 5), generator=g), torch.randint(VOCAB, (2, 5), generator=g)
    model = build(BigramLanguageModel, (VOCAB,), "vocab_size")
    on_second_device(lambda m, i: m(i)[0], model, idx, device=device, what="forward(idx)", what_input="idx")
    on_second_device(lambda m, i, t: m(i, t), model, idx, targets, device=device, what="forward(idx, targets)",
                     what_input="idx")


def _check_loss(loss, logits: torch.Tensor, targets: torch.Tensor, want: torch.Tensor) -> None:
    """Compare the learner's loss with ``F.cross_entropy`` and name the usual ways it goes wrong."""
    if not isinstance(loss, torch.Tensor):
        fail(f"the loss should be a tensor (F.cross_entropy(logits, targets)), got {type(loss).__name__}"
             + (": keep the tensor, do not call .item(), so loss.backward() works" if isinstance(loss, float) else ""))
    if loss.dim() != 0:
        fail(f"the loss should be one number (a 0-d tensor), got shape {tuple(loss.shape)}: take the mean over the "
             f"B*T positions (F.cross_entropy's default reduction)")
    if math.isclose(loss.item(), want.item(), rel_tol=1e-4, abs_tol=1e-5):
        expect(loss.requires_grad, "the loss is detached from the model: return the tensor F.cross_entropy gives, "
                                   "so loss.backward() reaches the embedding table")
        return
    n = len(targets)
    known = [
        (want * n, ("the loss is summed over the B*T positions, not averaged: F.cross_entropy takes the mean "
                   "(reduction='mean', the default)")),
        (F.cross_entropy(F.softmax(logits, -1), targets), ("the loss was computed on probabilities: F.cross_entropy "
                                                          "applies log-softmax itself, so give it the raw logits")),
        (F.nll_loss(logits, targets), ("the log-softmax is missing: F.nll_loss wants log-probabilities; use "
                                      "F.cross_entropy(logits, targets) on the raw logits")),
        (-F.log_softmax(logits, -1).mean(), ("the loss averages the log-probabilities of every class, not of the "
                                            "target: F.cross_entropy(logits, targets) picks the target's column")),
    ]
    for value, hint in known:
        if math.isclose(loss.item(), value.item(), rel_tol=1e-4, abs_tol=1e-5):
            fail(hint)
    fail(f"the loss is {loss.item():.4f}, F.cross_entropy(logits, targets) gives {want.item():.4f}: compute it "
         f"with F.cross_entropy on logits (B*T, C) and targets (B*T,)")


# ---------------------------------------------------------------------------------------------
# 2.2
# ---------------------------------------------------------------------------------------------


class ContextTooLong(ValueError):
    """Raised by the check's test model when it is given more than ``block_size`` tokens."""


class _TableModel(nn.Module):
    """A bigram model with a fixed table of logits (the next token depends only on the last one),
    refusing contexts longer than ``block_size`` when that is set."""

    def __init__(self, table: torch.Tensor, block_size: int | None = None):
        super().__init__()
        self.register_buffer("table", table)
        self.anchor = nn.Parameter(torch.zeros(()))  # so that next(model.parameters()) works
        self.block_size = block_size

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        if self.block_size is not None and idx.shape[1] > self.block_size:
            raise ContextTooLong(f"the model got {idx.shape[1]} tokens of context, more than block_size={self.block_size}")
        return self.table[idx], None


_LAST_STEP = ("use only the last time step: logits = logits[:, -1, :] has shape (B, C), and torch.multinomial "
              "then gives idx_next of shape (B, 1)")
_GENERATE_HINTS = (
    ("prob_dist must be 1 or 2 dim", _LAST_STEP),
    ("Sizes of tensors must match", _LAST_STEP),
    ("element < 0", ("torch.multinomial got negative numbers: it needs probabilities, so apply "
                    "F.softmax(logits, dim=-1) first")),
    ("ContextTooLong", ("generate feeds the model more than block_size tokens: crop the context to the last "
                       "block_size tokens, idx_cond = idx[:, -block_size:] (the position table has only "
                       "block_size rows)")),
    ("unary -: 'NoneType'", ("model.block_size is None for the bigram model (any context length works): crop only "
                            "when it is set, idx_cond = idx if block_size is None else idx[:, -block_size:]")),
)


def _chain(start: torch.Tensor, nxt: torch.Tensor, n: int) -> torch.Tensor:
    """The tokens a deterministic table model produces after ``start`` (shape (B,)): (B, n)."""
    out, cur = [], start
    for _ in range(n):
        cur = nxt[cur]
        out.append(cur)
    return torch.stack(out, dim=1)


@exercise("2.2")
@blame_notebook_globals
@isolated_rng
def generate(generate, device="cpu"):
    """``generate(model, idx, max_new_tokens, generator=None)`` -> ``(B, T + max_new_tokens)``: sample from
    the softmax of the last time step's logits, append, repeat; crop to ``model.block_size`` when set."""
    seed = fresh_seed()
    g = rng(seed)
    # 1. a deterministic chain: token i is always followed by (3i + 1) % V
    V = 11
    nxt = (3 * torch.arange(V) + 1) % V
    table = torch.zeros(V, V)
    table[torch.arange(V), nxt] = 40.0
    model = _TableModel(table).to(device)
    B, T, n = 5, 4, 6
    idx = torch.randint(V, (B, T), generator=g).to(device)
    out = call(generate, model, idx, n, generator=rng(seed), hints=_GENERATE_HINTS)
    tensor_output(out, "generate")
    if out.shape == (B, n) and n != T:
        fail("generate returned only the new tokens: return the whole sequence, the context followed by the new "
             "tokens, shape (B, T + max_new_tokens) - idx = torch.cat((idx, idx_next), dim=1) at every step")
    if out.shape == (B, T):
        fail("generate returned idx unchanged: append each sampled token, idx = torch.cat((idx, idx_next), dim=1)")
    tensor_output(out, "generate", (B, T + n), "the context followed by max_new_tokens new tokens")
    expect(out.dtype == torch.long, f"generate should return token ids (torch.long), got {out.dtype}")
    out, idx = out.cpu(), idx.cpu()
    expect(torch.equal(out[:, :T], idx), "the first T tokens of the result should be idx itself, unchanged")
    new = out[:, T:]
    if not torch.equal(new, _chain(idx[:, -1], nxt, n)):
        if torch.equal(new[:, 0], nxt[idx[:, 0]]):
            fail("the next token was sampled from the first time step's logits: take the last, logits[:, -1, :]")
        if (new == nxt[idx[:, -1]][:, None]).all():
            fail("every step predicts from the original context: append each sampled token to idx and feed the "
                 "longer idx to the model at the next step")
        fail("the new tokens do not follow the model: at each step take logits[:, -1, :], softmax, sample one token "
             "with torch.multinomial and append it to idx")

    # 2. sampling follows softmax(logits): two contexts with known next-token probabilities
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]])
    table = torch.log(probs) + 5.0  # positive logits, so sampling the logits themselves runs but is wrong
    model = _TableModel(table).to(device)
    N = 3000
    idx = torch.cat([torch.zeros(N, 1, dtype=torch.long), torch.ones(N, 1, dtype=torch.long)]).to(device)
    out = call(generate, model, idx, 1, generator=rng(seed + 1), hints=_GENERATE_HINTS)
    tensor_output(out, "generate", (2 * N, 2))
    last = out[:, -1].cpu()
    freq = torch.stack([torch.bincount(last[:N], minlength=4)[:4], torch.bincount(last[N:], minlength=4)[:4]]) / N
    if (freq - probs).abs().max() > 0.04:
        if freq[0, 0] == 1 and freq[1, 3] == 1:
            fail("generate always picks the most likely token (argmax): sample instead, "
                 "idx_next = torch.multinomial(probs, num_samples=1)")
        if (freq - table / table.sum(-1, keepdim=True)).abs().max() < 0.04:
            fail("torch.multinomial was given the logits, not probabilities: apply probs = F.softmax(logits, dim=-1) "
                 "first")
        fail(f"the samples do not follow softmax(logits): for probabilities {probs[0].tolist()} the frequencies were "
             f"{[round(f, 3) for f in freq[0].tolist()]}; probs = F.softmax(logits, dim=-1), then torch.multinomial")

    # 3. the generator makes sampling reproducible
    model = _TableModel(torch.zeros(VOCAB, VOCAB)).to(device)
    idx = torch.zeros(2, 1, dtype=torch.long, device=device)
    a = generate(model, idx, 20, generator=rng(seed))
    b = generate(model, idx, 20, generator=rng(seed))
    c = generate(model, idx, 20, generator=rng(seed + 1))
    if not torch.equal(a, b):
        fail("the same generator seed gave different samples: pass it on, "
             "torch.multinomial(probs, num_samples=1, generator=generator)")
    expect(not torch.equal(a, c), "different generator seeds gave the same samples: sample with torch.multinomial")

    # 4. a model with a block_size: the context must be cropped to its last block_size tokens. The chain steps
    # by +3 (mod V): a map without a fixed point, so that cropping the wrong end always shows (3i + 1 has one,
    # i = 5: a context ending in 5 made idx[:, :block_size] give the right tokens in 1 run out of 121)
    nxt = (torch.arange(V) + 3) % V
    table = torch.zeros(V, V)
    table[torch.arange(V), nxt] = 40.0
    model = _TableModel(table, block_size=4).to(device)
    idx = torch.randint(V, (2, 3), generator=g).to(device)
    out = call(generate, model, idx, 7, generator=rng(seed), hints=_GENERATE_HINTS)
    tensor_output(out, "generate")
    full = torch.cat((idx.cpu(), _chain(idx[:, -1].cpu(), nxt, 7)), dim=1)
    if out.dim() == 2 and out.shape[1] in (4, 5) and torch.equal(out.cpu(), full[:, -out.shape[1]:]):
        fail(f"the cropped context replaced the sequence: generate returned only its last {out.shape[1]} tokens. "
             f"Crop a copy for the model, idx_cond = idx[:, -block_size:]; logits, _ = model(idx_cond), and keep "
             f"appending to the whole idx, which grows to T + max_new_tokens")
    tensor_output(out, "generate", (2, 10))
    if not torch.equal(out[:, 3:].cpu(), _chain(idx[:, -1].cpu(), nxt, 7)):
        fail("with a block_size the context must be cropped to its LAST block_size tokens, idx[:, -block_size:]: "
             "the next token depends on the most recent ones")
    # 5. on a GPU (or meta): the samples join the context on its device, also with a CPU generator
    idx = torch.randint(V, (2, 3), generator=g)
    on_second_device(lambda m, i: generate(m, i, 4), _TableModel(table, block_size=4), idx, device=device,
                     what="generate", what_input="idx", learner=(generate,))
    on_second_device(lambda m, i: generate(m, i, 4, generator=rng(seed)), _TableModel(table, block_size=4), idx,
                     device=device, what="generate", what_input="idx", learner=(generate,))
    return passed("appends max_new_tokens samples of softmax(last logits), reproducible with the generator, "
                  "crops the context to block_size", generate)


# ---------------------------------------------------------------------------------------------
# 2.3
# ---------------------------------------------------------------------------------------------


class _ProbeModel(nn.Module):
    """Records every call (split, training mode, grad mode, loss). The loss is the batch's mean token
    id / 10, plus 100 in training mode; split "low" holds ids < 32, split "high" ids >= 32."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.calls: list[dict] = []

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        loss = self.w * idx.float().mean() / 10 + (100.0 if self.training else 0.0)
        self.calls.append({"split": "low" if int(idx.max()) < 32 else "high", "training": self.training,
                           "grad": torch.is_grad_enabled(), "loss": float(loss.detach()),
                           "shape": tuple(idx.shape), "batch": tuple(idx.flatten().tolist())})
        B, T = idx.shape
        return torch.zeros(B * T, VOCAB, device=idx.device), loss


@exercise("2.3")
@blame_notebook_globals
@isolated_rng
def estimate_loss(estimate_loss, device="cpu"):
    """``estimate_loss(model, splits, eval_iters, block_size, batch_size, generator=None)`` -> ``{split: float}``,
    the mean loss over ``eval_iters`` batches, in eval mode, without gradients, train mode restored."""
    seed = fresh_seed()
    g = rng(seed)
    splits = {"train": torch.randint(32, (300,), generator=g), "val": torch.randint(32, VOCAB, (200,), generator=g)}
    which = {"train": "low", "val": "high"}
    eval_iters = int(torch.randint(3, 7, (1,), generator=g))
    block_size, batch_size = 8, 4
    model = _ProbeModel().to(device)
    model.train()
    out = estimate_loss(model, splits, eval_iters, block_size, batch_size, generator=rng(seed))
    expect(isinstance(out, dict), f"estimate_loss should return a dict {{split name: mean loss}}, got {type(out).__name__}")
    expect(set(out) == set(splits), f"the result has keys {sorted(out)}, expected the split names {sorted(splits)}: "
                                    f"loop over splits.items()")
    calls = model.calls
    if any(c["training"] for c in calls):
        fail("the model was in training mode during evaluation: call model.eval() first, so dropout is off while "
             "measuring (and model.train() at the end)")
    if any(c["grad"] for c in calls):
        fail("gradients were being tracked during evaluation: decorate estimate_loss with @torch.no_grad() (or use "
             "with torch.no_grad():) - evaluation needs no backward pass")
    if not model.training:
        fail("estimate_loss left the model in eval mode: call model.train() before returning, so training goes on "
             "with dropout")
    shapes = {c["shape"] for c in calls}
    expect(shapes == {(batch_size, block_size)}, f"the batches had shapes {sorted(shapes)}, expected "
           f"(batch_size, block_size) = {(batch_size, block_size)}: get_batch(data, block_size, batch_size, generator=generator)")
    for name, value in out.items():
        if isinstance(value, torch.Tensor):
            fail(f"out[{name!r}] is a tensor: return plain Python floats, e.g. losses.mean().item()")
        expect(isinstance(value, (float, int)), f"out[{name!r}] should be a float, got {type(value).__name__}")
        losses = [c["loss"] for c in calls if c["split"] == which[name]]
        batches = {c["batch"] for c in calls if c["split"] == which[name]}
        if len(losses) == eval_iters > 1 and len(batches) == 1:
            fail(f"the model evaluated the same batch eval_iters={eval_iters} times for split {name!r}: draw a new "
                 f"batch inside the loop, x, y = get_batch(...) for each k, so the mean is over different batches")
        if len(losses) != eval_iters:
            fail(f"the model saw {len(losses)} batch(es) of split {name!r}, expected eval_iters={eval_iters}: average "
                 f"the loss over eval_iters random batches (one batch is noisy)")
        want = sum(losses) / len(losses)
        if not math.isclose(value, want, rel_tol=1e-5, abs_tol=1e-6):
            if math.isclose(value, sum(losses), rel_tol=1e-5):
                fail("the losses are summed: return their mean, losses.mean().item()")
            if math.isclose(value, losses[-1], rel_tol=1e-5):
                fail("the result is the last batch's loss: store every batch's loss and return their mean")
            fail_generic(f"out[{name!r}] = {value:.4f} is not the mean of the {eval_iters} batch losses ({want:.4f}): "
                 f"losses = torch.zeros(eval_iters); losses[k] = loss.item(); losses.mean().item()")
    # the same generator seed gives the same batches, hence the same result
    again = estimate_loss(model, splits, eval_iters, block_size, batch_size, generator=rng(seed))
    if again != out:
        fail("the same generator seed gave different results: pass generator=generator on to get_batch, so the "
             "evaluation batches are reproducible")
    # the mode it was in is restored: a model in eval mode stays in eval mode
    model.eval()
    estimate_loss(model, splits, 1, block_size, batch_size, generator=rng(seed))
    if model.training:
        fail("estimate_loss switched a model that was in eval mode to training mode: remember the mode first, "
             "was_training = model.training, and restore it at the end with model.train(was_training)")
    model.train()
    # any split names
    single = {"test": splits["val"]}
    out = call(estimate_loss, model, single, 1, block_size, batch_size, generator=rng(seed),
               hints=(("KeyError", ("loop over the splits you are given, for name, data in splits.items(): do not "
                                   "assume they are called 'train' and 'val'")),))
    expect(isinstance(out, dict) and set(out) == {"test"}, "estimate_loss should loop over the given splits "
           "(splits.items()), whatever their names; with {'test': data} the result should have the key 'test'")
    # on a GPU (or meta) the model is there and the splits stay on the CPU, as in the notebooks: the batches must follow
    # the model
    on_second_device(lambda m: estimate_loss(m, splits, 2, block_size, batch_size, generator=rng(seed)),
                     ref.BigramLanguageModel(VOCAB), device=device, what="estimate_loss", what_input="model",
                     returns=False, learner=(estimate_loss,))
    return passed(f"mean of eval_iters={eval_iters} batch losses per split as floats, in eval mode without "
                  f"gradients, train mode restored", estimate_loss)


# ---------------------------------------------------------------------------------------------
# 2.4
# ---------------------------------------------------------------------------------------------


_VAL_OFFSET = 10.0  # added to the probe's val loss in eval mode: a constant, so no gradient changes


class _LoopProbe(nn.Module):
    """A bigram table that records, in order, every forward (split, training mode, grad mode), every
    backward (whether a gradient was already there, i.e. gradients pile up), and, through
    :class:`_ProbeOptimizer`, every ``zero_grad`` and ``step`` (whether it found a gradient).
    Split "train" holds token ids < 32, split "val" ids >= 32; in eval mode the val split's loss is raised by
    :data:`_VAL_OFFSET`, so that a history whose "train" and "val" are swapped shows it."""

    def __init__(self):
        super().__init__()
        self.token_embedding_table = nn.Embedding(VOCAB, VOCAB)
        self.events: list[tuple] = []
        self.token_embedding_table.weight.register_hook(self._on_backward)

    def _has_grad(self) -> bool:
        grad = self.token_embedding_table.weight.grad
        return grad is not None and bool(grad.abs().sum() > 0)

    def _on_backward(self, grad):
        self.events.append(("backward", self._has_grad()))  # runs before the new gradient is added

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.events.append(("zero_grad",))
        super().zero_grad(set_to_none)

    def forward(self, idx, targets=None):
        split = "train" if int(idx.max()) < 32 else "val"
        self.events.append(("forward", split, self.training, torch.is_grad_enabled()))
        logits = self.token_embedding_table(idx)
        if targets is None:
            return logits, None
        B, T, C = logits.shape
        logits = logits.view(B * T, C)
        loss = F.cross_entropy(logits, targets.view(B * T))
        return logits, loss + _VAL_OFFSET if split == "val" and not self.training else loss


class _ProbeOptimizer(torch.optim.SGD):
    def __init__(self, model: _LoopProbe):
        super().__init__(model.parameters(), lr=0.5)
        self.probe = model

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.probe.events.append(("zero_grad",))
        super().zero_grad(set_to_none)

    def step(self, closure=None):
        self.probe.events.append(("step", self.probe._has_grad()))
        return super().step(closure)


@exercise("2.4")
@blame_notebook_globals
@isolated_rng
def train_loop(train_loop, device="cpu"):
    """``train_loop(model, optimizer, train_data, val_data, max_iters, eval_interval, eval_iters, block_size,
    batch_size, generator=None)`` -> ``[{"step", "train", "val"}, ...]``: zero_grad, backward, step each
    step; ``estimate_loss`` every ``eval_interval`` steps and at the last step."""
    seed = fresh_seed()
    g = rng(seed)
    train_data = torch.randint(32, (400,), generator=g)
    val_data = torch.randint(32, VOCAB, (200,), generator=g)
    max_iters = int(torch.randint(7, 11, (1,), generator=g))
    eval_interval = int(torch.randint(3, 5, (1,), generator=g))
    eval_iters = int(torch.randint(2, 4, (1,), generator=g))
    if (max_iters - 1) % eval_interval == 0:
        max_iters += 1  # so that "and at the last step" is tested
    block_size, batch_size = 4, 3
    model = _LoopProbe().to(device)
    model.train()
    optimizer = _ProbeOptimizer(model)
    before = model.token_embedding_table.weight.detach().clone()
    try:
        history = call(train_loop, model, optimizer, train_data, val_data, max_iters, eval_interval, eval_iters,
                       block_size, batch_size, generator=rng(seed))
    except RuntimeError as exc:
        if "does not require grad" in str(exc) and any(e[0] == "forward" and e[2] and not e[3] for e in model.events):
            fail("the training forward ran under torch.no_grad(), so the loss has no graph and loss.backward() fails: "
                 "only the evaluation needs no gradients (estimate_loss has its own @torch.no_grad()); compute "
                 "_, loss = model(xb, yb) outside any torch.no_grad() block")
        raise
    events = model.events
    at = {kind: [i for i, e in enumerate(events) if e[0] == kind] for kind in ("forward", "backward", "zero_grad", "step")}
    if not at["step"]:
        fail("optimizer.step() is never called: without it the parameters never change")
    if not at["backward"]:
        fail("the loss is never backpropagated: call loss.backward() after computing the loss and before "
             "optimizer.step(), or there are no gradients for the step to follow")
    if at["step"][0] < at["backward"][0]:
        fail("optimizer.step() comes before loss.backward(): the step follows the gradients, so compute them first - "
             "optimizer.zero_grad(set_to_none=True); loss.backward(); optimizer.step()")
    if any(e[0] == "backward" and e[1] for e in events):
        fail("gradients pile up: loss.backward() adds to the .grad left by the previous step. Call "
             "optimizer.zero_grad(set_to_none=True) in every step, before loss.backward()")
    if any(e[0] == "step" and not e[1] for e in events):
        fail("optimizer.step() found no gradients: zero_grad between backward and step erases them - the order is "
             "zero_grad, backward, step")
    if len(at["step"]) != max_iters:
        fail(f"the loop took {len(at['step'])} optimizer steps for max_iters={max_iters}: one step per iteration, "
             f"for step in range(max_iters)")
    # the forwards that a backward follows are the training steps: they must all be on the train split
    trained_on = [e[1] for i, e in enumerate(events) if e[0] == "forward"
                  and next((n[0] for n in events[i + 1:] if n[0] in ("forward", "backward")), None) == "backward"]
    if "val" in trained_on:
        fail("the model trained on the validation split: the batches it learns from must come from train_data, "
             "xb, yb = get_batch(train_data, ...); val_data is only measured, so that its loss tells how well the "
             "model does on text it never learned from")
    if any(e[0] == "forward" and e[1] == "val" and e[2] for e in events):
        fail("the validation loss was measured in training mode (dropout on, and a noisy single batch): evaluate "
             "with estimate_loss(model, {'train': train_data, 'val': val_data}, ...), which switches to model.eval() "
             "and back")
    if any(e[0] == "forward" and e[3] and not e[2] for e in events):
        fail("the model trained in eval mode: after evaluating, put it back with model.train() (estimate_loss does "
             "this itself; do not call model.eval() around it)")
    if torch.equal(before, model.token_embedding_table.weight.detach()):
        fail("the parameters did not change: the optimizer must be the one given, stepping on the model's loss")
    expect(isinstance(history, list), f"train_loop should return the list of evaluations, got {type(history).__name__}")
    expected = [s for s in range(max_iters) if s % eval_interval == 0 or s == max_iters - 1]
    got = [h.get("step") if isinstance(h, dict) else None for h in history]
    if got != expected:
        if got == expected[:-1]:
            fail(f"the last step is not evaluated (steps {got} for max_iters={max_iters}): evaluate when "
                 f"step % eval_interval == 0 or step == max_iters - 1, so the final loss is reported")
        fail(f"evaluations at steps {got}, expected {expected}: evaluate when step % eval_interval == 0 or "
             f"step == max_iters - 1, and append {{'step': step, **losses}}")
    for h in history:
        for name in ("train", "val"):
            value = h.get(name)
            expect(isinstance(value, float), f"each evaluation should hold the float losses of both splits, "
                                             f"{{'step': step, 'train': ..., 'val': ...}}; got {h!r}")
    if all(h["val"] < h["train"] for h in history):  # the probe's val loss is _VAL_OFFSET above its train loss
        fail("the splits are swapped: the loss reported as 'val' was measured on train_data and 'train' on val_data - "
             "estimate_loss(model, {'train': train_data, 'val': val_data}, ...), and "
             "history.append({'step': step, **losses}) keeps each loss under its own name")
    val_batches = sum(1 for e in events if e[0] == "forward" and e[1] == "val")
    if val_batches != len(expected) * eval_iters:
        fail(f"the validation split was evaluated on {val_batches} batches over {len(expected)} evaluations, expected "
             f"eval_iters={eval_iters} per evaluation: estimate_loss(model, splits, eval_iters, block_size, batch_size, "
             f"generator=generator)")
    def two_steps(m):
        return train_loop(m, torch.optim.AdamW(m.parameters(), lr=1e-3), train_data, val_data, 2, 1, 1, block_size,
                          batch_size, generator=rng(seed))

    on_second_device(two_steps, ref.BigramLanguageModel(VOCAB), device=device, what="train_loop", what_input="model",
                     returns=False, learner=(train_loop,))
    return passed(f"{max_iters} steps of zero_grad, backward, step in train mode; estimate_loss at steps {expected}",
                  train_loop)
