"""A RE-STATEMENT of the model code of the lecture's ``gpt.py`` (Karpathy, "Let's build GPT"), for
``benchmarks/throughput.py`` to time the course's reference GPT against.

Not a copy: written for this repository from the lecture's description (``/work/shared/LECTURE.md``
in the course's design notes, the video from 1:19:11 to 1:37:49), kept outside the package on purpose.
What it keeps from the lecture, because it is what a step's speed depends on:

- ``Head``: key, query, value ``Linear(n_embd, head_size, bias=False)``, a ``tril`` buffer,
  ``q @ k^T * head_size**-0.5``, ``masked_fill`` of the future with ``-inf``, softmax, dropout on the
  weights, ``@ v`` - one head at a time;
- ``MultiHeadAttention``: a Python list of heads, ``torch.cat`` of their outputs, ``proj``, dropout;
- ``FeedForward``: ``Linear(n_embd, 4 n_embd)``, ReLU, ``Linear(4 n_embd, n_embd)``, dropout;
- ``Block``: pre-LayerNorm residuals, ``x + sa(ln1(x))`` then ``x + ffwd(ln2(x))``;
- ``LectureGPT``: token + position embeddings, the blocks, ``ln_f``, ``lm_head``, cross-entropy on
  ``(B*T, C)``; weights ``N(0, 0.02)``, zero biases;
- the optimizer as ``gpt.py`` builds it: ``torch.optim.AdamW(model.parameters(), lr=3e-4)`` (torch's
  defaults otherwise: on a CPU the for-loop implementation).

Its parameter count at the lecture's configuration is the reference's, 10,788,929 (vocab 65).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn import functional as F


class Head(nn.Module):
    def __init__(self, n_embd: int, head_size: int, block_size: int, dropout: float):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T)
        wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        wei = F.softmax(wei, dim=-1)
        wei = self.dropout(wei)
        v = self.value(x)  # (B, T, hs)
        return wei @ v


class MultiHeadAttention(nn.Module):
    def __init__(self, n_embd: int, num_heads: int, head_size: int, block_size: int, dropout: float):
        super().__init__()
        self.heads = nn.ModuleList([Head(n_embd, head_size, block_size, dropout) for _ in range(num_heads)])
        self.proj = nn.Linear(head_size * num_heads, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        out = torch.cat([h(x) for h in self.heads], dim=-1)
        return self.dropout(self.proj(out))


class FeedForward(nn.Module):
    def __init__(self, n_embd: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd),
                                 nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, block_size: int, dropout: float):
        super().__init__()
        self.sa = MultiHeadAttention(n_embd, n_head, n_embd // n_head, block_size, dropout)
        self.ffwd = FeedForward(n_embd, dropout)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)

    def forward(self, x):
        x = x + self.sa(self.ln1(x))
        x = x + self.ffwd(self.ln2(x))
        return x


class LectureGPT(nn.Module):
    def __init__(self, vocab_size: int = 65, block_size: int = 256, n_embd: int = 384, n_head: int = 6,
                 n_layer: int = 6, dropout: float = 0.2):
        super().__init__()
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.position_embedding_table = nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[Block(n_embd, n_head, block_size, dropout) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        tok_emb = self.token_embedding_table(idx)  # (B, T, C)
        pos_emb = self.position_embedding_table(torch.arange(T, device=idx.device))  # (T, C)
        x = self.blocks(tok_emb + pos_emb)
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab_size)
        if targets is None:
            return logits, None
        B, T, C = logits.shape
        logits = logits.view(B * T, C)
        return logits, F.cross_entropy(logits, targets.view(B * T))


def lecture_optimizer(model: nn.Module, lr: float = 3e-4) -> torch.optim.Optimizer:
    """``gpt.py``'s optimizer: AdamW with torch's defaults and the lecture's learning rate."""
    return torch.optim.AdamW(model.parameters(), lr=lr)
