"""Checks for chapter 11 (pretraining and fine-tuning, the lecture's EX3): 11.1 to_vocabulary,
11.2 copy_for_finetuning."""

from __future__ import annotations

import torch

from lecture_utils import model as ref_model
from lecture_utils import pretrain as ref
from lecture_utils.checks._core import exercise, expect, fail, fresh_seed, passed, rng
from lecture_utils.checks._device import on_second_device
from lecture_utils.checks._helpers import blame_notebook_globals, call, isolated_rng

_OUTSIDE = "()[]0123456789éœ—\t“”*#"


@exercise("11.1")
@blame_notebook_globals
def to_vocabulary(to_vocabulary, device="cpu"):
    """``to_vocabulary(text, chars)``: ``text`` with every character not in ``chars`` removed."""
    g = rng(fresh_seed())
    base = list("\n !$&',-.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    pool = base + list(_OUTSIDE)
    cases = [("Verse 1:1 (In the beginning)\tGod — created\n“Let there be light”.\n", base)]
    for _ in range(3):
        ids = torch.randint(len(pool), (300,), generator=g).tolist()
        vocab = [base[i] for i in sorted(set(torch.randint(len(base), (40,), generator=g).tolist()))] + ["\n", " "]
        cases.append(("".join(pool[i] for i in ids), sorted(set(vocab))))
    for text, chars in cases:
        got = call(to_vocabulary, text, chars)
        want = ref.to_vocabulary(text, chars)
        if isinstance(got, list) and all(isinstance(c, str) for c in got):
            fail("to_vocabulary returns a list: return a string, ''.join(...)")
        expect(isinstance(got, str), f"to_vocabulary should return a string, got {type(got).__name__}")
        if got == want:
            continue
        keep = set(chars)
        outside = sorted({c for c in got if c not in keep})
        if outside:
            fail(f"characters outside the vocabulary remain: {''.join(outside)!r}. The point is to keep the "
                 f"fine-tuning vocabulary (the pretrained embedding rows must mean the same characters): remove "
                 f"every character c with c not in chars")
        if len(got) == len(text):
            fail("unknown characters were replaced instead of removed: drop them, so no made-up character enters "
                 "the corpus")
        if "\n" in want and "\n" not in got:
            fail("the newlines were removed, but '\\n' is in the vocabulary (str.isprintable() is False for '\\n'): "
                 "test membership in chars, not a string property")
        if got.lower() == want.lower():
            fail("the case of letters changed: keep the text as it is, only drop the characters not in chars")
        if got == want.strip() or got.split() == want.split():
            fail("the spacing changed (strip/split): keep every character that is in chars, in order")
        fail(f"for the text {text[:40]!r}... expected {want[:60]!r}..., got {got[:60]!r}...")
    return passed("every character outside the vocabulary removed, everything else kept in order", to_vocabulary)


@exercise("11.2")
@blame_notebook_globals
@isolated_rng
def copy_for_finetuning(copy_for_finetuning, device="cpu"):
    """``copy_for_finetuning(pretrained)``: an independent copy (same weights, its own parameters), in
    train mode."""
    config = ref_model.GPTConfig(vocab_size=65, block_size=16, n_embd=32, n_head=4, n_layer=1, dropout=0.1)
    torch.manual_seed(fresh_seed())
    pretrained = ref_model.GPT(config).to(device).eval()  # as a loaded checkpoint comes: in eval mode
    before = {n: p.detach().clone() for n, p in pretrained.state_dict().items()}
    model = call(copy_for_finetuning, pretrained)
    expect(isinstance(model, torch.nn.Module), f"copy_for_finetuning should return a model, got {type(model).__name__}")
    if model is pretrained:
        fail("this is the pretrained model itself, not a copy: fine-tuning it would overwrite the pretrained "
             "weights, and the comparison (or a second fine-tuning) would start from the wrong place. "
             "Use copy.deepcopy(pretrained)")
    theirs = {n: p for n, p in model.state_dict().items()}
    expect(set(theirs) == set(before), "the copy should have the pretrained model's parameters, under the same names")
    shared = [n for n, p in pretrained.named_parameters() if any(p is q for q in model.parameters())]
    if shared:
        fail(f"the copy shares its parameters with the pretrained model ({shared[0]}, ...): copy.copy is a shallow "
             f"copy; use copy.deepcopy(pretrained)")
    differ = [n for n in before if not torch.equal(theirs[n].detach().cpu(), before[n].cpu())]
    if differ:
        fail(f"the copy's weights differ from the pretrained ones ({differ[0]}, ...): a new model starts from random "
             f"weights - that is training from scratch. Copy the weights (copy.deepcopy, or load_state_dict)")
    if not model.training:
        fail("the copy is in eval mode (a loaded checkpoint is): dropout would stay off during fine-tuning. "
             "Call .train() on the copy")
    # fine-tune the copy for a step: the pretrained model must not move
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    idx = torch.randint(65, (2, 16), generator=rng(fresh_seed())).to(device)
    _, loss = model(idx, idx)
    loss.backward()
    opt.step()
    moved = [n for n, p in pretrained.state_dict().items() if not torch.equal(p.detach().cpu(), before[n].cpu())]
    expect(not moved, f"a training step on the copy changed the pretrained model ({moved[:1]}): they share memory")
    expect(not pretrained.training, "copy_for_finetuning put the pretrained model in train mode: leave it as it was")
    on_second_device(copy_for_finetuning, pretrained, device=device, what="copy_for_finetuning",
                     what_input="pretrained")
    return passed("same weights, its own parameters, train mode; the pretrained model untouched by a step",
                  copy_for_finetuning)
