"""Wrong solutions of chapter 06: the feed-forward layer (6.1)."""

from __future__ import annotations

from torch import nn

from ._catalogue import wrong


def _feed_forward(inner: int = 4, activation: type[nn.Module] | None = nn.ReLU, project: bool = True,
                  dropout: bool = True):
    class FeedForward(nn.Module):
        def __init__(self, n_embd, dropout_p=0.0):
            super().__init__()
            layers: list[nn.Module] = [nn.Linear(n_embd, inner * n_embd)]
            if activation is not None:
                layers.append(activation())
            if project:
                layers.append(nn.Linear(inner * n_embd, n_embd))
            if dropout:
                layers.append(nn.Dropout(dropout_p))
            self.net = nn.Sequential(*layers)

        def forward(self, x):
            return self.net(x)

    return (FeedForward,)


@wrong("6.1", "feed_forward", "4 * n_embd = 64 wide")
def feed_forward_not_4x():
    return _feed_forward(inner=1)


@wrong("6.1", "feed_forward", "linear function of the input")
def feed_forward_without_nonlinearity():
    return _feed_forward(activation=None)


@wrong("6.1", "feed_forward", "projection back is missing")
def feed_forward_without_projection():
    return _feed_forward(project=False)


@wrong("6.1", "feed_forward", "end self.net with nn.Dropout")
def feed_forward_without_dropout():
    return _feed_forward(dropout=False)


@wrong("6.1", "feed_forward", "not GELU")
def feed_forward_gelu():
    return _feed_forward(activation=nn.GELU)


@wrong("6.1", "feed_forward", "the output is the input itself")
def feed_forward_returns_input():
    class FeedForward(nn.Module):
        def __init__(self, n_embd, dropout=0.0):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd),
                                     nn.Dropout(dropout))

        def forward(self, x):
            self.net(x)  # computed, then dropped
            return x

    return (FeedForward,)
