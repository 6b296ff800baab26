"""The mixer's per-user gain-suggestion network (Human Audio Mixer's layout, in torch).

23 song features -> 64 -> 32 -> 16 -> one relative gain per stem, ReLU then tanh; the output
layer starts at zero, so an untrained or freshly reset network suggests 0 dB everywhere (the
original auto-applied gains from random weights, -16 to +5 dB). What the features are, and how
the network is trained per user, is :mod:`deepaudio.mixer.preferences`.
"""

from __future__ import annotations

import torch
from torch import nn

N_FEATURES = 23


class PreferenceNet(nn.Module):
    """23 -> 64 -> 32 -> 16 -> 4, ReLU then tanh; output layer zero-initialised (neutral)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(N_FEATURES, 64), nn.ReLU(), nn.Linear(64, 32),
                                    nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4))
        nn.init.zeros_(self.layers[-1].weight)
        nn.init.zeros_(self.layers[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:     # (B, 23) -> (B, 4) in (-1, 1)
        return torch.tanh(self.layers(x))
