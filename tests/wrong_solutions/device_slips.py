"""Device slips, chapter by chapter: code that is right on the CPU and breaks on a GPU or a Mac (issue 26).

Each entry is the solution's exercise cell with one slip a learner makes (a tensor created without ``device=``, a
mask built in ``forward`` on the CPU, a sample left on the CPU, a CPU generator on the GPU, ...). On the CPU every one
of them computes the right numbers, so only the checks' second run (``lecture_utils/checks/_device.py``: the
notebook's GPU, or the ``meta`` device on a machine without one) can catch them; the expected text is the part of the
diagnosis that names the slip or its line. They live in one module, not in the chapters' modules, because they are one
kind of mistake with one mechanism behind every diagnosis, and ``benchmarks/catalogue_precision.py`` counts them apart.

The cells are defined with :func:`in_notebook`, which registers their source the way IPython does, so a diagnosis
quotes the learner's line as it would in Jupyter.
"""

from __future__ import annotations

import copy

from lecture_utils import addition as A
from lecture_utils import data
from lecture_utils import model as M

from ._catalogue import in_notebook, wrong

# ---------------------------------------------------------------------------------------------
# chapter 01
# ---------------------------------------------------------------------------------------------


@wrong("1.2", "split_data", "torch.tensor on line 4")
def split_through_a_list():
    return in_notebook("01_data", """
        def split_data(data, train_frac=0.9):
            n = int(train_frac * len(data))
            return torch.tensor(data.tolist()[:n]), torch.tensor(data.tolist()[n:])
    """, "split_data")


@wrong("1.3", "get_batch", "torch.tensor on line 4")
def get_batch_through_lists():
    return in_notebook("01_data", """
        def get_batch(data, block_size, batch_size, generator=None):
            ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
            x = torch.tensor([data[i : i + block_size].tolist() for i in ix])
            y = torch.tensor([data[i + 1 : i + block_size + 1].tolist() for i in ix])
            return x, y
    """, "get_batch")


@wrong("1.3", "get_batch", "torch.zeros on line 3")
def get_batch_filled_rows():
    return in_notebook("01_data", """
        def get_batch(data, block_size, batch_size, generator=None):
            x = torch.zeros((batch_size, block_size), dtype=torch.long)
            y = torch.zeros((batch_size, block_size), dtype=torch.long)
            ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
            for row, i in enumerate(ix):
                x[row] = data[i : i + block_size]
                y[row] = data[i + 1 : i + block_size + 1]
            return x, y
    """, "get_batch")


@wrong("1.3", "get_batch", "no device=): CPU offsets can index a tensor on any device")
def get_batch_offsets_on_the_device():
    return in_notebook("01_data", """
        def get_batch(data, block_size, batch_size, generator=None):
            ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator, device=data.device)
            x = torch.stack([data[i : i + block_size] for i in ix])
            y = torch.stack([data[i + 1 : i + block_size + 1] for i in ix])
            return x, y
    """, "get_batch")


# ---------------------------------------------------------------------------------------------
# chapter 02
# ---------------------------------------------------------------------------------------------

_GENERATE = """
    @torch.no_grad()
    def generate(model, idx, max_new_tokens, generator=None):
        block_size = getattr(model, "block_size", None)
        for _ in range(max_new_tokens):
            idx_cond = idx if block_size is None else idx[:, -block_size:]
            logits, _ = model(idx_cond)
            probs = F.softmax(logits[:, -1, :], dim=-1)
            idx_next = {sample}
            idx = torch.cat((idx, idx_next), dim=1)
        return idx
"""


@wrong("2.2", "generate", ".cpu() on line 9")
def generate_sample_left_on_the_cpu():
    sample = "torch.multinomial(probs.cpu(), num_samples=1, generator=generator)"
    return in_notebook("02_bigram", _GENERATE.format(sample=sample), "generate")


@wrong("2.2", "generate", "sample on the CPU with the CPU generator, then move the sample back")
def generate_cpu_generator_on_the_device():
    sample = "torch.multinomial(probs, num_samples=1, generator=generator)"
    return in_notebook("02_bigram", _GENERATE.format(sample=sample), "generate")


_ESTIMATE_LOSS = """
    @torch.no_grad()
    def estimate_loss(model, splits, eval_iters, block_size, batch_size, generator=None):
        was_training = model.training
        model.eval()
        out = {}
        for name, split in splits.items():
            losses = torch.zeros(eval_iters)
            for k in range(eval_iters):
                x, y = data.get_batch(split, block_size, batch_size, generator=generator)
                _, loss = model(x, y)
                losses[k] = loss.item()
            out[name] = losses.mean().item()
        model.train(was_training)
        return out
"""


@wrong("2.3", "estimate_loss", "the call on line 10, in estimate_loss: x, y = data.get_batch(split, block_size, batch_size, generator=generator) returns a tensor on the CPU")
def estimate_loss_batches_on_the_cpu():
    return in_notebook("02_bigram", _ESTIMATE_LOSS, "estimate_loss", data=data)


@wrong("2.4", "train_loop", "xb, yb = data.get_batch(train_data, block_size, batch_size, generator=generator) returns a tensor on the CPU")
def train_loop_batches_on_the_cpu():
    from lecture_utils.train import estimate_loss  # the notebook's (right) estimate_loss

    return in_notebook("02_bigram", """
        def train_loop(model, optimizer, train_data, val_data, max_iters, eval_interval, eval_iters, block_size,
                       batch_size, generator=None):
            history = []
            for step in range(max_iters):
                if step % eval_interval == 0 or step == max_iters - 1:
                    losses = estimate_loss(model, {"train": train_data, "val": val_data}, eval_iters, block_size,
                                           batch_size, generator=generator)
                    history.append({"step": step, **losses})
                xb, yb = data.get_batch(train_data, block_size, batch_size, generator=generator)
                logits, loss = model(xb, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            return history
    """, "train_loop", data=data, estimate_loss=estimate_loss)


# ---------------------------------------------------------------------------------------------
# chapter 03
# ---------------------------------------------------------------------------------------------


@wrong("3.1", "average_v1", "torch.zeros on line 4")
def average_v1_lecture_zeros():
    return in_notebook("03_averaging_trick", """
        def average_v1(x):
            B, T, C = x.shape
            xbow = torch.zeros((B, T, C))
            for b in range(B):
                for t in range(T):
                    xprev = x[b, : t + 1]
                    xbow[b, t] = torch.mean(xprev, 0)
            return xbow
    """, "average_v1")


@wrong("3.2", "average_v2", "torch.ones on line 4")
def average_v2_tril_on_the_cpu():
    return in_notebook("03_averaging_trick", """
        def average_v2(x):
            B, T, C = x.shape
            wei = torch.tril(torch.ones(T, T))
            wei = wei / wei.sum(1, keepdim=True)
            return wei @ x
    """, "average_v2")


@wrong("3.3", "average_v3", "torch.zeros on line 5")
def average_v3_tril_on_the_cpu():
    return in_notebook("03_averaging_trick", """
        def average_v3(x):
            B, T, C = x.shape
            tril = torch.tril(torch.ones(T, T))
            wei = torch.zeros((T, T))
            wei = wei.masked_fill(tril == 0, float("-inf"))
            wei = F.softmax(wei, dim=-1)
            return wei @ x
    """, "average_v3")


@wrong("3.4", "positional_model", "torch.arange(..., device=idx.device)")
def positions_on_the_cpu():
    return in_notebook("03_averaging_trick", """
        class BigramWithPositions(nn.Module):
            def __init__(self, vocab_size, n_embd, block_size):
                super().__init__()
                self.block_size = block_size
                self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
                self.position_embedding_table = nn.Embedding(block_size, n_embd)
                self.lm_head = nn.Linear(n_embd, vocab_size)

            def forward(self, idx, targets=None):
                B, T = idx.shape
                tok_emb = self.token_embedding_table(idx)
                pos_emb = self.position_embedding_table(torch.arange(T))
                logits = self.lm_head(tok_emb + pos_emb)
                if targets is None:
                    return logits, None
                B, T, C = logits.shape
                logits = logits.view(B * T, C)
                return logits, F.cross_entropy(logits, targets.view(B * T))
    """, "BigramWithPositions")


# ---------------------------------------------------------------------------------------------
# chapters 04-07: the mask, the pieces
# ---------------------------------------------------------------------------------------------

_HEAD_MASK_IN_FORWARD = """
    class Head(nn.Module):
        def __init__(self, n_embd, head_size, block_size, dropout=0.0):
            super().__init__()
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            B, T, C = x.shape
            k, q = self.key(x), self.query(x)
            wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
            tril = torch.tril(torch.ones(T, T))
            wei = wei.masked_fill(tril == 0, float("-inf"))
            wei = self.dropout(F.softmax(wei, dim=-1))
            return wei @ self.value(x)
"""


@wrong("4.1", "head", "torch.ones on line 14, in forward: tril = torch.tril(torch.ones(T, T))")
def head_mask_made_in_forward_on_the_cpu():
    return in_notebook("04_self_attention", _HEAD_MASK_IN_FORWARD, "Head")


@wrong("4.2", "cross_head", "torch.ones on line 12, in forward: keep = torch.ones(x.shape[1], context.shape[1])")
def cross_head_keep_everything_mask_made_on_the_cpu():
    # Head's masked_fill kept, its tril turned into "keep every context token": right numbers, a CPU mask
    return in_notebook("04_self_attention", """
        class CrossHead(nn.Module):
            def __init__(self, n_embd, head_size):
                super().__init__()
                self.key = nn.Linear(n_embd, head_size, bias=False)
                self.query = nn.Linear(n_embd, head_size, bias=False)
                self.value = nn.Linear(n_embd, head_size, bias=False)

            def forward(self, x, context):
                q, k, v = self.query(x), self.key(context), self.value(context)
                wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
                keep = torch.ones(x.shape[1], context.shape[1])
                wei = wei.masked_fill(keep == 0, float("-inf"))
                return F.softmax(wei, dim=-1) @ v
    """, "CrossHead")


@wrong("5.1", "multi_head", "torch.empty on line 11")
def multi_head_grown_from_an_empty_cpu_tensor():
    return in_notebook("05_multi_head", """
        class MultiHeadAttention(nn.Module):
            def __init__(self, n_embd, num_heads, head_size, block_size, dropout=0.0):
                super().__init__()
                self.heads = nn.ModuleList([Head(n_embd, head_size, block_size, dropout) for _ in range(num_heads)])
                self.proj = nn.Linear(num_heads * head_size, n_embd)
                self.dropout = nn.Dropout(dropout)

            def forward(self, x):
                B, T, C = x.shape
                out = torch.empty(B, T, 0)
                for h in self.heads:
                    out = torch.cat([out, h(x)], dim=-1)
                return self.dropout(self.proj(out))
    """, "MultiHeadAttention", Head=M.Head)


@wrong("5.2", "batched_multi_head", "in forward: mask = torch.ones(T, T).tril()")
def batched_mask_made_in_forward_on_the_cpu():
    return in_notebook("05_multi_head", """
        class CausalSelfAttention(nn.Module):
            def __init__(self, n_embd, n_head, block_size, dropout=0.0):
                super().__init__()
                self.n_head = n_head
                self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
                self.proj = nn.Linear(n_embd, n_embd)
                self.attn_dropout = nn.Dropout(dropout)
                self.resid_dropout = nn.Dropout(dropout)

            def forward(self, x):
                B, T, C = x.shape
                q, k, v = self.qkv(x).split(C, dim=2)
                hs = C // self.n_head
                q = q.view(B, T, self.n_head, hs).transpose(1, 2)
                k = k.view(B, T, self.n_head, hs).transpose(1, 2)
                v = v.view(B, T, self.n_head, hs).transpose(1, 2)
                wei = q @ k.transpose(-2, -1) * hs**-0.5
                mask = torch.ones(T, T).tril()
                wei = wei.masked_fill(mask == 0, float("-inf"))
                wei = self.attn_dropout(F.softmax(wei, dim=-1))
                out = (wei @ v).transpose(1, 2).contiguous().view(B, T, C)
                return self.resid_dropout(self.proj(out))
    """, "CausalSelfAttention")


@wrong("6.1", "feed_forward", "torch.zeros on line 12")
def feed_forward_relu_against_cpu_zeros():
    return in_notebook("06_feed_forward", """
        class FeedForward(nn.Module):
            def __init__(self, n_embd, dropout=0.0):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd),
                                         nn.Dropout(dropout))

            def forward(self, x):
                first, _, second, drop = self.net
                h = first(x)
                # ReLU by hand: the larger of h and 0
                h = torch.maximum(h, torch.zeros(h.shape))
                return drop(second(h))
    """, "FeedForward")


@wrong("7.1", "layer_norm", "torch.tensor on line 11")
def layer_norm_eps_as_a_cpu_vector():
    return in_notebook("07_residual_layernorm", """
        class LayerNorm(nn.Module):
            def __init__(self, dim, eps=1e-5):
                super().__init__()
                self.eps = eps
                self.weight = nn.Parameter(torch.ones(dim))
                self.bias = nn.Parameter(torch.zeros(dim))

            def forward(self, x):
                mean = x.mean(-1, keepdim=True)
                var = x.var(-1, keepdim=True, unbiased=False) + torch.tensor([self.eps])
                return (x - mean) / torch.sqrt(var) * self.weight + self.bias
    """, "LayerNorm")


@wrong("7.2", "block", "in forward: tril = torch.tril(torch.ones(T, T))")
def block_on_a_head_with_a_cpu_mask():
    """The Block is right; the learner's Head, which the notebook's MultiHeadAttention uses, makes its mask on the CPU:
    the diagnosis must point into Head, not at the Block."""
    (Head,) = in_notebook("04_self_attention", _HEAD_MASK_IN_FORWARD, "Head")
    return in_notebook("07_residual_layernorm", """
        class MultiHeadAttention(nn.Module):
            def __init__(self, n_embd, num_heads, head_size, block_size, dropout=0.0):
                super().__init__()
                self.heads = nn.ModuleList([Head(n_embd, head_size, block_size, dropout) for _ in range(num_heads)])
                self.proj = nn.Linear(num_heads * head_size, n_embd)
                self.dropout = nn.Dropout(dropout)

            def forward(self, x):
                return self.dropout(self.proj(torch.cat([h(x) for h in self.heads], dim=-1)))


        class Block(nn.Module):
            def __init__(self, n_embd, n_head, block_size, dropout=0.0):
                super().__init__()
                self.sa = MultiHeadAttention(n_embd, n_head, n_embd // n_head, block_size, dropout)
                self.ffwd = FeedForward(n_embd, dropout)
                self.ln1 = LayerNorm(n_embd)
                self.ln2 = LayerNorm(n_embd)

            def forward(self, x):
                x = x + self.sa(self.ln1(x))
                return x + self.ffwd(self.ln2(x))
    """, "Block", Head=Head, FeedForward=M.FeedForward, LayerNorm=M.LayerNorm)


# ---------------------------------------------------------------------------------------------
# chapter 08
# ---------------------------------------------------------------------------------------------


@wrong("8.1", "gpt", "torch.arange on line 24, in forward")
def gpt_positions_on_the_cpu():
    return in_notebook("08_scaling_up", """
        class GPTLanguageModel(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.config = config
                self.block_size = config.block_size
                self.token_embedding_table = nn.Embedding(config.vocab_size, config.n_embd)
                self.position_embedding_table = nn.Embedding(config.block_size, config.n_embd)
                self.blocks = nn.Sequential(*[
                    Block(config.n_embd, config.n_head, config.block_size, config.dropout)
                    for _ in range(config.n_layer)
                ])
                self.ln_f = LayerNorm(config.n_embd)
                self.lm_head = nn.Linear(config.n_embd, config.vocab_size)
                self.apply(self._init_weights)

            def _init_weights(self, module):
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

            def forward(self, idx, targets=None):
                B, T = idx.shape
                tok_emb = self.token_embedding_table(idx)
                pos_emb = self.position_embedding_table(torch.arange(T))
                x = self.ln_f(self.blocks(tok_emb + pos_emb))
                logits = self.lm_head(x)
                if targets is None:
                    return logits, None
                B, T, C = logits.shape
                logits = logits.view(B * T, C)
                return logits, F.cross_entropy(logits, targets.view(B * T))
    """, "GPTLanguageModel", Block=M.Block, LayerNorm=M.LayerNorm)


# ---------------------------------------------------------------------------------------------
# chapters 09-12
# ---------------------------------------------------------------------------------------------


@wrong("9.1", "heads_to_batched", "leaves qkv.weight on the cpu")
def fused_weight_built_on_the_cpu():
    return in_notebook("09_batched_heads", """
        @torch.no_grad()
        def heads_to_batched(mha, csa):
            n_embd = csa.qkv.weight.shape[1]
            fused = torch.empty(3 * n_embd, n_embd)
            hs = mha.heads[0].query.weight.shape[0]
            for i, h in enumerate(mha.heads):
                fused[i * hs:(i + 1) * hs] = h.query.weight
                fused[n_embd + i * hs:n_embd + (i + 1) * hs] = h.key.weight
                fused[2 * n_embd + i * hs:2 * n_embd + (i + 1) * hs] = h.value.weight
            csa.qkv.weight = nn.Parameter(fused)
            csa.proj.load_state_dict(mha.proj.state_dict())
            return csa
    """, "heads_to_batched")


@wrong("10.3", "addition_accuracy", "torch.tensor on line 7")
def accuracy_problems_on_the_cpu():
    return in_notebook("10_addition", """
        @torch.no_grad()
        def accuracy(model, problems, n_digits):
            was_training = model.training
            model.eval()
            p = 2 * n_digits + 2
            seqs = torch.tensor([encode_problem(a, b, n_digits) for a, b in problems])
            idx = seqs[:, :p]
            for _ in range(n_digits + 1):
                logits, _ = model(idx)
                idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
            model.train(was_training)
            return (idx[:, p:] == seqs[:, p:]).all(dim=1).float().mean().item()
    """, "accuracy", encode_problem=A.encode_problem)


@wrong("11.2", "copy_for_finetuning", "leaves token_embedding_table.weight on the cpu")
def copy_moved_to_the_cpu():
    return in_notebook("11_pretrain_finetune", """
        def copy_for_finetuning(pretrained):
            return copy.deepcopy(pretrained).to("cpu").train()
    """, "copy_for_finetuning", copy=copy)


@wrong("12.1", "gelu", "torch.tensor on line 3")
def gelu_sqrt2_as_a_cpu_vector():
    return in_notebook("12_modern_features", """
        def gelu(x):
            return 0.5 * x * (1.0 + torch.erf(x / torch.sqrt(torch.tensor([2.0]))))
    """, "gelu")


@wrong("12.2", "rms_norm", "torch.full on line 9")
def rms_norm_eps_as_a_cpu_vector():
    return in_notebook("12_modern_features", """
        class RMSNorm(nn.Module):
            def __init__(self, dim, eps=1e-5):
                super().__init__()
                self.eps = eps
                self.weight = nn.Parameter(torch.ones(dim))

            def forward(self, x):
                eps = torch.full((x.shape[-1],), self.eps)
                return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps[:1]) * self.weight
    """, "RMSNorm")


@wrong("12.3", "rope", "torch.empty on line 5")
def rope_written_into_a_cpu_tensor():
    return in_notebook("12_modern_features", """
        def apply_rope(x, cos, sin):
            half = x.shape[-1] // 2
            x1, x2 = x[..., :half], x[..., half:]
            out = torch.empty(x.shape)
            out[..., :half] = x1 * cos - x2 * sin
            out[..., half:] = x1 * sin + x2 * cos
            return out
    """, "apply_rope")


# ---------------------------------------------------------------------------------------------
# chapter 13
# ---------------------------------------------------------------------------------------------


@wrong("13.4", "cached_attention", "torch.ones on line 12")
def cached_attention_mask_on_the_cpu():
    return in_notebook("13_generation", """
        def attend_with_cache(attn, x, cache):
            B, T, C = x.shape
            start = len(cache)
            hs = C // attn.n_head
            q, k, v = attn.qkv(x).split(C, dim=2)
            q = q.view(B, T, attn.n_head, hs).transpose(1, 2)
            k = k.view(B, T, attn.n_head, hs).transpose(1, 2)
            v = v.view(B, T, attn.n_head, hs).transpose(1, 2)
            k, v = cache.append(k, v)
            wei = q @ k.transpose(-2, -1) * hs**-0.5
            mask = torch.tril(torch.ones(T, start + T), diagonal=start)
            wei = F.softmax(wei.masked_fill(mask == 0, float("-inf")), dim=-1)
            return attn.proj((wei @ v).transpose(1, 2).contiguous().view(B, T, C))
    """, "attend_with_cache")


@wrong("13.5", "cached_generate", "torch.arange on line 7")
def cached_generate_positions_on_the_cpu():
    from lecture_utils.generation import KVCache, attend_with_cache

    return in_notebook("13_generation", """
        def generate_with_cache(model, idx, max_new_tokens, generator=None):
            caches = [KVCache() for _ in model.blocks]

            def forward(tokens):
                start = len(caches[0])
                pos = torch.arange(start, start + tokens.size(1))
                x = model.token_embedding_table(tokens) + model.position_embedding_table(pos)
                for block, cache in zip(model.blocks, caches):
                    x = x + attend_with_cache(block.sa, block.ln1(x), cache)
                    x = x + block.ffwd(block.ln2(x))
                return model.lm_head(model.ln_f(x))[:, -1, :]

            with torch.no_grad():
                logits = forward(idx)
                for _ in range(max_new_tokens):
                    idx_next = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)
                    idx = torch.cat((idx, idx_next), dim=1)
                    logits = forward(idx_next)
            return idx
    """, "generate_with_cache", KVCache=KVCache, attend_with_cache=attend_with_cache)
