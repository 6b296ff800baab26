"""The beat and downbeat network: a temporal convolutional network (TCN) on log-mel frames.

Why a TCN: Davies & Böck (2019, "Temporal convolutional networks for musical audio beat
tracking") matched the bidirectional LSTMs of madmom with a small non-recurrent network, and
Böck & Davies (2020, "Deconstruct, analyse, reconstruct") trained the same TCN jointly for
beats and downbeats at the state of the art of its time; Beat This! (Foscarin et al. 2024)
reaches further with a transformer hundreds of times larger. A TCN trains fast on a CPU,
runs every frame in parallel (a minute of audio in tens of milliseconds), its receptive field
is set by its dilations, and a causal variant (padding on the past side only) is the same
network for live input.

Layout (frames at 50 fps, ``n_mels`` bands):

- front end: three convolutions over (time, frequency) with ELU and max-pooling over
  frequency, the last one spanning the remaining bands, so every frame becomes one
  ``channels``-wide vector;
- ``len(dilations)`` residual blocks: a dilated convolution over time (``kernel`` taps,
  dilation d), ELU, dropout, a 1x1 convolution, added to the block's input;
- a linear head: two logits per frame, beat (downbeats included) and downbeat.

``causal=True`` pads every convolution on the past side only: frame t sees frames <= t.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from deepaudio.core.config import ConfigError


@dataclasses.dataclass
class BeatTCNConfig:
    n_mels: int = 128
    channels: int = 32
    front_channels: int = 16
    kernel: int = 5
    dilations: list[int] = dataclasses.field(default_factory=lambda: [2 ** i for i in range(8)])
    dropout: float = 0.1
    causal: bool = False

    def validate(self) -> None:
        if self.n_mels < 27:
            raise ConfigError("key 'n_mels' must be >= 27 (two 3x pools of the front end)")
        for key in ("channels", "front_channels"):
            if getattr(self, key) < 1:
                raise ConfigError(f"key {key!r} must be >= 1")
        if self.kernel < 2:
            raise ConfigError("key 'kernel' must be >= 2")
        if not self.dilations or any(d < 1 for d in self.dilations):
            raise ConfigError("key 'dilations' must be a non-empty list of integers >= 1")
        if not 0 <= self.dropout < 1:
            raise ConfigError("key 'dropout' must be in [0, 1)")


def _pad_time(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Pad the last axis (time) of (B, C, T) or the second-to-last of (B, C, T, F)."""
    if x.dim() == 3:
        return F.pad(x, (before, after))
    return F.pad(x, (0, 0, before, after))


class _Block(nn.Module):
    def __init__(self, ch: int, kernel: int, dilation: int, dropout: float, causal: bool):
        super().__init__()
        self.span = (kernel - 1) * dilation
        self.causal = causal
        self.conv = nn.Conv1d(ch, ch, kernel, dilation=dilation)
        self.mix = nn.Conv1d(ch, ch, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        before = self.span if self.causal else self.span // 2
        y = self.conv(_pad_time(x, before, self.span - before))
        return x + self.mix(self.drop(F.elu(y)))


class BeatTCN(nn.Module):
    """(B, T, n_mels) log-mel frames -> (B, T, 2) logits: beat, downbeat."""

    def __init__(self, cfg: BeatTCNConfig):
        super().__init__()
        self.cfg = cfg
        c0 = cfg.front_channels
        bands = ((cfg.n_mels - 2) // 3 - 2) // 3          # after conv 3, pool 3, conv 3, pool 3
        self.front = nn.ModuleList([nn.Conv2d(1, c0, (3, 3)), nn.Conv2d(c0, c0, (3, 3)),
                                    nn.Conv2d(c0, cfg.channels, (1, bands))])
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([_Block(cfg.channels, cfg.kernel, d, cfg.dropout,
                                            cfg.causal) for d in cfg.dilations])
        self.head = nn.Conv1d(cfg.channels, 2, 1)

    @property
    def receptive_field(self) -> int:
        """Frames that one output frame depends on."""
        return 1 + 2 * 2 + sum((self.cfg.kernel - 1) * d for d in self.cfg.dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.cfg.n_mels:
            raise ValueError(f"expected (batch, frames, {self.cfg.n_mels}), got {tuple(x.shape)}")
        h = x.unsqueeze(1)                                  # (B, 1, T, F)
        for i, conv in enumerate(self.front):
            if conv.kernel_size == (3, 3):
                h = _pad_time(h, 2, 0) if self.cfg.causal else _pad_time(h, 1, 1)
            h = F.elu(conv(h))
            if i < 2:
                h = self.drop(F.max_pool2d(h, (1, 3)))
        h = h.squeeze(-1)                                   # (B, C, T)
        for block in self.blocks:
            h = block(h)
        return self.head(h).transpose(1, 2)                 # (B, T, 2)
