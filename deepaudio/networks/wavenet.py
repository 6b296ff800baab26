"""NSynth-design WaveNet autoencoder: encode audio to 31.25 Hz codes, generate audio.

Training is :mod:`deepaudio.training.wavenet`; crossfading through the embedding is
:mod:`deepaudio.crossfade.neural`.

The design is Engel et al. 2017 ("Neural Audio Synthesis of Musical Notes with WaveNet
Autoencoders"), as DeepBass used it to crossfade songs through the embedding:

* **Encoder** (non-causal): a k=3 start conv, then residual layers of ReLU → dilated k=3 conv
  (dilation ``2 ** (i % cycle)``) → ReLU → 1×1, then a 1×1 to a 16-channel bottleneck and
  average pooling over ``HOP`` = 512 samples: one 16-d code per 32 ms (31.25 Hz).
* **Decoder** (causal WaveNet): gated ``tanh · sigmoid`` layers with dilations
  1 … 2 ** (cycle - 1) repeated, residual and skip outputs, and each layer's gate biased by a 1×1
  projection of the code of the current hop. Head: ReLU → 1×1 → ReLU → 1×1 → 256 logits over
  8-bit mu-law (mu = 255), trained with cross-entropy under teacher forcing.
* **Generation**: ``method="fast"`` keeps, per layer, a FIFO of the last ``dilation`` inputs
  (Paine et al. 2016, arXiv 1611.09482; Magenta's fastgen), so one sample costs O(layers) small
  matmuls, batched over B. ``method="naive"`` reruns the causal decoder over the receptive field
  for every sample; both draw from one shared RNG stream, so they agree sample for sample.

Two layouts (``WaveNetConfig.layout``):

* ``"compact"`` (the ``small`` preset's, for models trained here) departs from NSynth on purpose:
  mu-law labels are rounded, so -1 and 1 map to 0 and 255 (DeepBass floored after clipping to
  0.999, and without that clip 1.0 gave label 256); the decoder input is the quantized mu-law
  value in [-1, 1], in training and in generation alike; the encoder reads the audio itself;
  the decoder's convolutions have 2 taps; skips start at zero and the head is not conditioned.
* ``"magenta"`` (the ``nsynth`` preset's) is the graph of Magenta's published checkpoint
  (``h512_bo16``), so its weights load unchanged in meaning (:mod:`deepaudio.networks.nsynth`):
  labels ``floor(128 · mu_law(x)) + 128`` (clipped to 255: Magenta's 1.0 gave 256) and input
  values ``(label - 128) / 128`` for the encoder and the decoder; audio back from a label as
  Magenta's ``inv_mu_law`` (the bin centre, ``label - 128 + 0.5``, and 0 for label 128);
  3-tap causal start and dilated convolutions; a 1×1 ``skip_start`` from the start conv's
  output to the skip sum; the head's first 1×1 conditioned on the code (``cond_out``).

In both, a layer's gate is ``tanh(first half) · sigmoid(second half)`` (Magenta: sigmoid half
first; the importer swaps the halves), its residual and skip 1×1s are one conv (one matmul per
layer in the fast path; the importer stacks Magenta's ``res_i`` and ``skip_i``), and the code
projections have no bias (the importer adds Magenta's ``cond_map`` biases to the gate's and the
head's biases: the same sums).
"""

from __future__ import annotations

import dataclasses
import math
import time
import typing as tp

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from deepaudio.core.config import ConfigError, load_config
from deepaudio.core.errors import ToolkitError

SR = 16000               # the NSynth sample rate; every clip is resampled to it before encoding
HOP = 512                # samples per code frame (average-pooling width): 31.25 Hz codes
N_CLASSES = 256          # 8-bit mu-law
MU = N_CLASSES - 1


@dataclasses.dataclass
class WaveNetConfig:
    enc_layers: int = 10          # non-causal residual layers; one dilation cycle covers ±1 k
    enc_channels: int = 32        # encoder width (NSynth: 128)
    dec_layers: int = 10          # causal gated layers; receptive field 2 + sum of dilations
    residual_channels: int = 32   # decoder residual stream (NSynth: 512); fast-gen cost ~ R²
    skip_channels: int = 64       # skip sum and head width (NSynth: 256)
    dilation_cycle: int = 10      # dilations 1 … 2**(cycle-1), repeated (NSynth: 10)
    bottleneck: int = 16          # code channels per 512-sample hop (NSynth: 16, ~32x smaller)
    layout: str = "compact"       # or "magenta": the graph of Magenta's checkpoint (module doc)

    def validate(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"key 'layout' must be one of {', '.join(map(repr, LAYOUTS))}, "
                              f"got {self.layout!r}")
        for f in dataclasses.fields(self):
            if f.name != "layout" and getattr(self, f.name) < 1:
                raise ConfigError(f"key {f.name!r} must be >= 1, got {getattr(self, f.name)}")
        if self.dilation_cycle > 14:
            raise ConfigError(f"key 'dilation_cycle' must be <= 14 (a dilation of at most "
                              f"8192 samples), got {self.dilation_cycle}")

    def dilations(self, n_layers: int) -> list[int]:
        return [2 ** (i % self.dilation_cycle) for i in range(n_layers)]

    @property
    def kernel(self) -> int:
        """Taps of the decoder's causal convolutions (start and dilated)."""
        return 3 if self.layout == "magenta" else 2

    def labels(self, audio):
        """Audio in [-1, 1] → int64 mu-law labels in [0, 255], as this layout quantizes."""
        return magenta_mu_law_encode(audio) if self.layout == "magenta" else mu_law_encode(audio)

    def audio(self, labels):
        """Labels → audio in [-1, 1], as this layout decodes them."""
        return magenta_mu_law_decode(labels) if self.layout == "magenta" else mu_law_decode(labels)

    def input_values(self, labels: torch.Tensor, dtype: torch.dtype = torch.float32
                     ) -> torch.Tensor:
        """The value the networks read for a label."""
        if self.layout == "magenta":
            return (labels.to(dtype) - 128) / 128
        return quantized_input(labels, dtype)

LAYOUTS = ("compact", "magenta")

PRESETS: dict[str, dict] = {
    "small": {},   # the dataclass defaults: trains on a CPU in minutes
    "nsynth": {"enc_layers": 30, "enc_channels": 128, "dec_layers": 30, "residual_channels": 512,
               "skip_channels": 256, "dilation_cycle": 10, "bottleneck": 16,
               "layout": "magenta"},
}


def preset(name: str) -> WaveNetConfig:
    """The config of a named preset: "small" (the default) or "nsynth"."""
    return make_config(name)


def make_config(name: str, overrides: dict | None = None) -> WaveNetConfig:
    """A preset's config with some keys overridden; unknown keys and wrong types are named."""
    if name not in PRESETS:
        raise ToolkitError(f"unknown WaveNet preset {name!r}; use one of {', '.join(PRESETS)}")
    return load_config(WaveNetConfig, {**PRESETS[name], **(overrides or {})},
                       where=f"WaveNet config (preset {name!r})")


@tp.overload
def mu_law_encode(x: torch.Tensor, mu: int = MU) -> torch.Tensor: ...
@tp.overload
def mu_law_encode(x: np.ndarray, mu: int = MU) -> np.ndarray: ...
def mu_law_encode(x, mu=MU):
    """Audio in [-1, 1] (clipped first) → int64 labels in [0, mu], rounded: -1 → 0, 1 → mu.

    Compression is ``sign(x) ln(1 + mu |x|) / ln(1 + mu)``; an 8-bit label is then off by at
    most half a step (1 / mu) in the compressed domain.
    """
    scale = math.log1p(mu)
    if isinstance(x, torch.Tensor):
        x = x.clamp(-1.0, 1.0)
        y = torch.sign(x) * torch.log1p(mu * x.abs()) / scale
        return torch.floor((y + 1) * (mu / 2) + 0.5).clamp_(0, mu).long()
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / scale
    return np.clip(np.floor((y + 1) * (mu / 2) + 0.5), 0, mu).astype(np.int64)


@tp.overload
def mu_law_decode(labels: torch.Tensor, mu: int = MU) -> torch.Tensor: ...
@tp.overload
def mu_law_decode(labels: np.ndarray, mu: int = MU) -> np.ndarray: ...
def mu_law_decode(labels, mu=MU):
    """Labels in [0, mu] → audio in [-1, 1] (float32 for NumPy input)."""
    scale = math.log1p(mu)
    if isinstance(labels, torch.Tensor):
        dtype = labels.dtype if labels.is_floating_point() else torch.get_default_dtype()
        y = labels.to(dtype) * (2 / mu) - 1
        return torch.sign(y) * torch.expm1(y.abs() * scale) / mu
    y = np.asarray(labels, dtype=np.float64) * (2 / mu) - 1
    return (np.sign(y) * np.expm1(np.abs(y) * scale) / mu).astype(np.float32)


@tp.overload
def magenta_mu_law_encode(x: torch.Tensor, mu: int = MU) -> torch.Tensor: ...
@tp.overload
def magenta_mu_law_encode(x: np.ndarray, mu: int = MU) -> np.ndarray: ...
def magenta_mu_law_encode(x, mu=MU):
    """Audio → int64 labels as Magenta's NSynth quantizes: ``floor(128 · compress(x)) + 128``,
    clipped to [0, 255] (audio at exactly 1.0 gave label 256 there)."""
    scale = math.log1p(mu)
    if isinstance(x, torch.Tensor):
        x = x.clamp(-1.0, 1.0)
        y = torch.sign(x) * torch.log1p(mu * x.abs()) / scale
        return (torch.floor(y * 128) + 128).clamp_(0, mu).long()
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / scale
    return np.clip(np.floor(y * 128) + 128, 0, mu).astype(np.int64)


@tp.overload
def magenta_mu_law_decode(labels: torch.Tensor, mu: int = MU) -> torch.Tensor: ...
@tp.overload
def magenta_mu_law_decode(labels: np.ndarray, mu: int = MU) -> np.ndarray: ...
def magenta_mu_law_decode(labels, mu=MU):
    """Labels → audio as Magenta's ``inv_mu_law``: the centre of the label's bin, and 0 for
    label 128 (float32 for NumPy input)."""
    if isinstance(labels, torch.Tensor):
        dtype = labels.dtype if labels.is_floating_point() else torch.get_default_dtype()
        v = labels.to(dtype) - 128
        y = (v + 0.5) * (2 / (mu + 1))
        out = torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu
        return torch.where(v == 0, torch.zeros_like(out), out)
    v = np.asarray(labels, dtype=np.float64) - 128
    y = (v + 0.5) * (2 / (mu + 1))
    out = np.sign(y) * np.expm1(np.abs(y) * math.log1p(mu)) / mu
    return np.where(v == 0, 0.0, out).astype(np.float32)


def quantized_input(labels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The decoder's input value of a label: its compressed mu-law value, 2k/mu - 1."""
    return labels.to(dtype) * (2 / MU) - 1


def upsample_codes(codes: torch.Tensor, n_samples: int) -> torch.Tensor:
    """(B, C, F) codes → (B, C, n_samples): each code held for HOP samples; samples past
    F * HOP hold the last frame."""
    frames = torch.arange(n_samples, device=codes.device) // HOP
    return codes[:, :, frames.clamp_(max=codes.shape[-1] - 1)]


class WaveNetEncoder(nn.Module):
    def __init__(self, cfg: WaveNetConfig):
        super().__init__()
        c = cfg.enc_channels
        self.start = nn.Conv1d(1, c, 3, padding=1)
        self.dilated = nn.ModuleList(nn.Conv1d(c, c, 3, dilation=d, padding=d)
                                     for d in cfg.dilations(cfg.enc_layers))
        self.mix = nn.ModuleList(nn.Conv1d(c, c, 1) for _ in range(cfg.enc_layers))
        self.bottleneck = nn.Conv1d(c, cfg.bottleneck, 1)
        # samples seen on each side of a position, before pooling
        self.half_receptive_field = 1 + sum(cfg.dilations(cfg.enc_layers))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.start(audio.unsqueeze(1))                              # (B, C, T)
        for conv, mix in zip(self.dilated, self.mix):
            x = x + mix(F.relu(conv(F.relu(x))))
        return F.avg_pool1d(self.bottleneck(x), HOP)                    # (B, bottleneck, T // HOP)


class WaveNetDecoder(nn.Module):
    def __init__(self, cfg: WaveNetConfig):
        super().__init__()
        r, s, k = cfg.residual_channels, cfg.skip_channels, cfg.kernel
        self.kernel = k
        self.dilation_list = cfg.dilations(cfg.dec_layers)
        self.start = nn.Conv1d(1, r, k)                                 # causal: left pad k - 1
        self.gate = nn.ModuleList(nn.Conv1d(r, 2 * r, k, dilation=d) for d in self.dilation_list)
        self.cond = nn.ModuleList(nn.Conv1d(cfg.bottleneck, 2 * r, 1, bias=False)
                                  for _ in self.dilation_list)
        self.res_skip = nn.ModuleList(nn.Conv1d(r, r + s, 1) for _ in self.dilation_list)
        self.head1 = nn.Conv1d(s, s, 1)
        self.head2 = nn.Conv1d(s, N_CLASSES, 1)
        magenta = cfg.layout == "magenta"
        self.skip_start = nn.Conv1d(r, s, 1) if magenta else None
        self.cond_out = nn.Conv1d(cfg.bottleneck, s, 1, bias=False) if magenta else None
        # logits[t] depend on inputs t - receptive_field + 1 … t
        self.receptive_field = (k - 1) * (1 + sum(self.dilation_list)) + 1

    def forward(self, inputs: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """inputs (B, T): quantized input values (already shifted right by one sample);
        cond (B, bottleneck, T): the code of each sample. → logits (B, 256, T)."""
        r, k = self.start.out_channels, self.kernel
        x = self.start(F.pad(inputs.unsqueeze(1), (k - 1, 0)))          # (B, R, T)
        skip = (torch.zeros((), dtype=x.dtype, device=x.device) if self.skip_start is None
                else self.skip_start(x))
        for d, gate, cond_proj, res_skip in zip(self.dilation_list, self.gate, self.cond,
                                                self.res_skip):
            a = gate(F.pad(x, ((k - 1) * d, 0))) + cond_proj(cond)      # (B, 2R, T)
            z = torch.tanh(a[:, :r]) * torch.sigmoid(a[:, r:])
            out = res_skip(z)                                           # (B, R + S, T)
            x = x + out[:, :r]
            skip = skip + out[:, r:]
        hidden = self.head1(F.relu(skip))
        if self.cond_out is not None:
            hidden = hidden + self.cond_out(cond)
        return self.head2(F.relu(hidden))


class WaveNetAutoencoder(nn.Module):
    """Encoder + conditioned decoder. ``forward`` is the teacher-forced training pass."""

    def __init__(self, cfg: WaveNetConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = WaveNetEncoder(cfg)
        self.decoder = WaveNetDecoder(cfg)

    def _param(self) -> torch.Tensor:
        return next(self.parameters())

    def _audio(self, audio: torch.Tensor | np.ndarray) -> torch.Tensor:
        p = self._param()
        audio = torch.as_tensor(audio).to(p.device, p.dtype)
        if audio.dim() != 2:
            raise ToolkitError(f"expected audio shaped (batch, samples), got {tuple(audio.shape)}")
        if audio.shape[1] < HOP:
            raise ToolkitError(f"audio of {audio.shape[1]} samples is shorter than one code "
                               f"frame ({HOP} samples at {SR} Hz)")
        return audio

    @torch.no_grad()
    def encode(self, audio: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(B, T) audio in [-1, 1] at 16 kHz → (B, bottleneck, T // HOP) codes, in eval mode."""
        audio = self._audio(audio)
        was_training = self.training
        self.eval()
        try:
            return self.encoder(self.encoder_input(audio))
        finally:
            self.train(was_training)

    def encoder_input(self, audio: torch.Tensor) -> torch.Tensor:
        """What the encoder reads: the audio (compact) or its quantized values (magenta)."""
        if self.cfg.layout == "magenta":
            return self.cfg.input_values(self.cfg.labels(audio), audio.dtype)
        return audio

    def decode(self, audio: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, 256, T) of ``audio`` (B, T) given codes (B, bottleneck, F)."""
        labels = self.cfg.labels(audio)
        inputs = F.pad(self.cfg.input_values(labels, audio.dtype), (1, -1))  # shift right one
        return self.decoder(inputs, upsample_codes(codes, audio.shape[1]))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) audio → (B, 256, T) logits of each sample given the samples before it."""
        audio = self._audio(audio)
        return self.decode(audio, self.encoder(self.encoder_input(audio)))

    def generate(self, codes: torch.Tensor | np.ndarray, n_samples: int | None = None, *,
                 method: tp.Literal["fast", "naive"] = "fast",
                 sampling: tp.Literal["greedy", "sample"] = "greedy", seed: int = 0,
                 progress: tp.Callable[[int, int], None] | bool | None = None) -> np.ndarray:
        """Autoregressive audio from codes (B, bottleneck, F) → float32 (B, n_samples) in [-1, 1].

        ``n_samples`` defaults to F * HOP. ``sampling="greedy"`` takes the most likely label;
        ``"sample"`` draws from the softmax by inverse CDF with uniforms from one stream seeded
        by ``seed`` (a (n_samples, B) table), so fast and naive draw identically. ``progress`` is
        a callable ``(done, total)`` called once per hop, or True for a tqdm bar.
        """
        if method not in ("fast", "naive"):
            raise ToolkitError(f"generation method must be 'fast' or 'naive', got {method!r}")
        if sampling not in ("greedy", "sample"):
            raise ToolkitError(f"sampling must be 'greedy' or 'sample', got {sampling!r}")
        p = self._param()
        codes = torch.as_tensor(codes).to(p.device, p.dtype)
        if codes.dim() != 3 or codes.shape[1] != self.cfg.bottleneck or codes.shape[2] < 1:
            raise ToolkitError(f"expected codes shaped (batch, {self.cfg.bottleneck}, frames), "
                               f"got {tuple(codes.shape)}")
        n = codes.shape[2] * HOP if n_samples is None else int(n_samples)
        if n < 1:
            raise ToolkitError(f"n_samples must be >= 1, got {n_samples}")
        uniforms = None
        if sampling == "sample":
            gen = torch.Generator().manual_seed(seed)
            uniforms = torch.rand(n, codes.shape[0], generator=gen, dtype=torch.float64)
            uniforms = uniforms.to(p.device, p.dtype)
        bar = None
        if progress is True:
            from tqdm import tqdm
            bar = tqdm(total=n, desc=f"generate ({method})", unit="sample", disable=None)
            progress = lambda done, total: bar.update(done - bar.n)  # noqa: E731
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                step = self._generate_fast if method == "fast" else self._generate_naive
                labels = step(codes, n, uniforms, progress or None)   # (n, B)
        finally:
            self.train(was_training)
            if bar is not None:
                bar.close()
        return self.cfg.audio(labels.T.cpu().numpy())

    def _generate_naive(self, codes, n, uniforms, progress) -> torch.Tensor:
        dec = self.decoder
        b = codes.shape[0]
        cond = upsample_codes(codes, n)                                 # (B, bottleneck, n)
        inputs = torch.zeros(b, n, dtype=codes.dtype, device=codes.device)
        labels = torch.empty(n, b, dtype=torch.long, device=codes.device)
        for t in range(n):
            lo = max(0, t + 1 - dec.receptive_field)
            logits = dec(inputs[:, lo:t + 1], cond[:, :, lo:t + 1])[:, :, -1]
            labels[t] = _pick(logits, None if uniforms is None else uniforms[t])
            if t + 1 < n:
                inputs[:, t + 1] = self.cfg.input_values(labels[t], inputs.dtype)
            if progress and ((t + 1) % HOP == 0 or t + 1 == n):
                progress(t + 1, n)
        return labels

    def _generate_fast(self, codes, n, uniforms, progress) -> torch.Tensor:
        """One sample per step at O(layers) cost: 6 small batched ops per layer.

        Per layer a ring of ``(kernel - 1) · dilation`` rows holds the layer's past inputs, so
        the dilated conv at time t is ``[x[t-2d], x[t-d], x[t]] @ W`` (3 taps; 2 taps read
        ``[x[t-d], x[t]]``; Paine et al. 2016). At batch 1 the per-op overhead, not the FLOPs,
        sets the speed, so the loop allocates nothing and makes no views: every op writes into
        a buffer (and views of it) made once, and :func:`_fast_weights` folds biases and the
        gate's sigmoid into the weights so the residual and skip sums share one state vector
        updated by one matmul per layer.
        """
        dec = self.decoder
        b, n_frames = codes.shape[0], codes.shape[2]
        r, s, k = self.cfg.residual_channels, self.cfg.skip_channels, dec.kernel
        w = _fast_weights(dec, codes)
        dev, dtype = codes.device, codes.dtype

        def buffer(*shape):
            return torch.zeros(*shape, dtype=dtype, device=dev)

        # one row per batch item: [x[t - (k-1)d] | … | x[t - d] | x[t] | skip sum]; the gate
        # conv reads the first k blocks, the residual/skip update writes the last two
        row = buffer(b, k * r + s)
        taps, x, state = row[:, :k * r], row[:, (k - 1) * r:k * r], row[:, (k - 1) * r:]
        pasts = [row[:, j * r:(j + 1) * r] for j in range(k - 1)]      # x[t - (k-1-j) d]
        gate, z = buffer(b, 2 * r), buffer(b, r)
        gate_tanh, gate_sig = gate[:, :r], gate[:, r:]
        hidden, logits = buffer(b, s), buffer(b, N_CLASSES)
        rings = [list(buffer((k - 1) * d, b, r).add_(beta).unbind(0))
                 for d, beta in zip(dec.dilation_list, w["fifo_init"])]
        layers = [(ring, len(ring), [(pasts[j], (k - 1 - j) * d) for j in range(k - 1)],
                   w_gate, w_rs)
                  for d, ring, w_gate, w_rs in zip(dec.dilation_list, rings, w["gate"],
                                                   w["res_skip"])]
        # decoder inputs, one column per sample, with k zeros in front: at step t the start
        # conv reads columns t … t+k-1, i.e. the samples t-k … t-1
        history = buffer(b, n + k)
        lut = self.cfg.input_values(torch.arange(N_CLASSES, device=dev), dtype)
        labels = torch.empty(n, b, dtype=torch.long, device=dev)
        cond_rows = w["cond"][0].unbind(0)
        head_bias = w["head1_bias"][0]
        for t in range(n):
            if t % HOP == 0 and t // HOP < n_frames:
                cond_rows = w["cond"][t // HOP].unbind(0)             # L x (B, 2R)
                head_bias = w["head1_bias"][t // HOP]                   # (B, S)
            torch.addmm(w["start_bias"], history[:, t:t + k], w["start"], out=state)
            for (ring, size, reads, w_gate, w_rs), cond in zip(layers, cond_rows):
                for past, back in reads:
                    past.copy_(ring[(t - back) % size])                 # x[t - back]
                ring[t % size].copy_(x)                                 # read again later
                torch.addmm(cond, taps, w_gate, out=gate).tanh_()       # (B, 2R)
                torch.addcmul(gate_tanh, gate_tanh, gate_sig, out=z)    # 2 tanh(.) sigmoid(.)
                state.addmm_(z, w_rs)                                   # residual | skip sums
            torch.addmm(head_bias, state.relu(), w["head1"], out=hidden).relu_()
            torch.addmm(w["head2_bias"], hidden, w["head2"], out=logits)   # (B, 256)
            labels[t] = label = _pick(logits, None if uniforms is None else uniforms[t])
            history[:, t + k] = lut[label]
            if progress and ((t + 1) % HOP == 0 or t + 1 == n):
                progress(t + 1, n)
        return labels


def _bias(conv: nn.Conv1d) -> torch.Tensor:
    assert conv.bias is not None, "the decoder's convolutions all have biases"
    return conv.bias


def _fast_weights(dec: WaveNetDecoder, codes: torch.Tensor) -> dict:
    """The decoder's weights as (in, out) matrices for one-sample steps, algebra folded in.

    * sigmoid(u) = (1 + tanh(u / 2)) / 2: the sigmoid half of each gate is pre-scaled by 1/2,
      so one tanh covers the gate; ``th + th * ts`` is twice the gate output, and the 1/2 goes
      into the residual/skip weights.
    * Residual biases: the state carries x_i - beta_i with beta_i the sum of the earlier layers'
      residual biases, so a layer's update is one ``addmm`` without a bias; the gate bias gets
      ``W beta_i`` and the rings start at -beta_i (the conv's zero padding).
    * Skip biases are summed into the start state, and ``skip_start`` (magenta) is a 1×1 of the
      start conv's output, so it folds into the start conv's weights; the head's first 1x1
      reads the skip half of the state through zero rows for the residual half.
    * Conditioning: each layer's projection of each code frame, computed once (F, L, B, 2R),
      and the head's (``cond_out``) into a per-frame head bias (F, B, S).
    """
    r, k = dec.start.out_channels, dec.kernel
    s = dec.head1.in_channels
    dtype = codes.dtype
    half = torch.ones(2 * r, dtype=dtype, device=codes.device)
    half[r:] = 0.5                                                      # the sigmoid half
    beta = torch.zeros(r, dtype=dtype, device=codes.device)
    gates, res_skip, fifo_init, gate_bias = [], [], [], []
    convs = tp.cast(list[tuple[nn.Conv1d, nn.Conv1d]], list(zip(dec.gate, dec.res_skip)))
    for gate, rs in convs:
        w_gate = torch.cat([gate.weight[:, :, j] for j in range(k)], 1) * half[:, None]
        gates.append(w_gate.T.contiguous())                            # (kR, 2R)
        gate_bias.append(_bias(gate) * half + w_gate @ torch.cat([beta] * k))
        fifo_init.append(-beta.clone())
        res_skip.append((rs.weight[:, :, 0] * 0.5).T.contiguous())     # (R, R + S)
        beta = beta + _bias(rs)[:r]
    skip_bias = torch.stack([_bias(rs)[r:] for _, rs in convs]).sum(0)
    w_cond = torch.stack([tp.cast(nn.Conv1d, c).weight[:, :, 0] for c in dec.cond])
    w_cond = w_cond * half[None, :, None]
    cond = torch.einsum("bcf,loc->flbo", codes, w_cond) + torch.stack(gate_bias)[None, :, None]
    w_start = torch.zeros(k, r + s, dtype=dtype, device=codes.device)
    w_start[:, :r] = dec.start.weight[:, 0, :].T
    start_skip_bias = skip_bias
    if dec.skip_start is not None:
        w_ss = dec.skip_start.weight[:, :, 0]                           # (S, R)
        w_start[:, r:] = dec.start.weight[:, 0, :].T @ w_ss.T
        start_skip_bias = skip_bias + w_ss @ _bias(dec.start) + _bias(dec.skip_start)
    head1 = torch.zeros(r + s, s, dtype=dtype, device=codes.device)
    head1[r:] = dec.head1.weight[:, :, 0].T
    head1_bias = _bias(dec.head1).expand(codes.shape[2], codes.shape[0], s)
    if dec.cond_out is not None:
        head1_bias = head1_bias + torch.einsum("bcf,oc->fbo", codes,
                                               dec.cond_out.weight[:, :, 0])
    return {"gate": gates, "res_skip": res_skip, "fifo_init": fifo_init,
            "cond": cond.contiguous(),                                  # (F, L, B, 2R)
            "start": w_start, "start_bias": torch.cat([_bias(dec.start), start_skip_bias]),
            "head1": head1, "head1_bias": head1_bias.contiguous(),      # (F, B, S)
            "head2": dec.head2.weight[:, :, 0].T.contiguous(), "head2_bias": _bias(dec.head2)}


def _pick(logits: torch.Tensor, uniform: torch.Tensor | None) -> torch.Tensor:
    """(B, 256) logits → (B,) labels: argmax, or the inverse CDF of the softmax at ``uniform``."""
    if uniform is None:
        return logits.argmax(1)
    cdf = torch.softmax(logits, 1).cumsum_(1)
    return (cdf < uniform[:, None]).sum(1).clamp_(max=N_CLASSES - 1)


def generation_speed(model: WaveNetAutoencoder, n_samples: int, *,
                     method: tp.Literal["fast", "naive"] = "fast", batch_size: int = 1,
                     seed: int = 0, threads: int | None = None) -> float:
    """Generated samples per second (all batch items counted) from random codes.

    ``threads`` sets torch's intra-op threads for the measurement only (None leaves them):
    on a busy machine, threads that wait on each other slow the tiny per-sample ops 10-30x.
    """
    gen = torch.Generator().manual_seed(seed)
    frames = -(-n_samples // HOP)
    codes = torch.randn(batch_size, model.cfg.bottleneck, frames, generator=gen)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        model.generate(codes, n_samples, method=method)
        return n_samples * batch_size / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
