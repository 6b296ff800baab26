"""The FMA models: autoencoders and genre classifiers, each with a validated dataclass config
and ``encode(x)``.

* :class:`ConvAutoencoder`: 64×96 MFCC segments → 10-d code → reconstruction, in three
  variants (``plain``, ``shared`` weights, additive ``skip`` connections). Unlike
  deep-audioviz-experiments, upsampling is parameter-free (nearest neighbour) instead of
  ``MaxUnpool`` with the encoder's pool indices, so any code (an interpolation, a PCA
  direction) can be decoded.
* :class:`GenreClassifier`: VGG-11/13/16 (± batch norm) and AlexNet layouts on 1-channel
  64×96 input, with torchvision's parameter names so a local ImageNet ``.pth`` loads by path,
  and named tap layers (L5 … L15) for feature extraction.
* :class:`DenseAutoencoder`: the 0.5 s spectrum model (sigmoid hidden layers, linear code),
  with the decoder wired correctly (Deep-Audio-Visualization skipped a nonlinearity), and
  optionally a linear path started at PCA (what makes it learn on a small data set).

``encode`` always runs in eval mode (deep-audioviz-experiments encoded with dropout and
batch-statistics batch norm active, so its classifier features were random).
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing as tp

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from deepaudio.core.config import ConfigError
from deepaudio.core.errors import ToolkitError


class EncoderMixin(nn.Module):
    """``encode(x, layer)``: features in eval mode, no grad, training mode restored after."""

    default_layer: str
    layers: tuple[str, ...]

    def _features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, x: torch.Tensor, layer: str | None = None) -> torch.Tensor:
        layer = layer or self.default_layer
        if layer not in self.layers:
            raise ToolkitError(f"unknown layer {layer!r}; this model has {', '.join(self.layers)}")
        was_training = self.training
        self.eval()
        try:
            return self._features(x, layer).flatten(1)
        finally:
            self.train(was_training)

    @torch.inference_mode()
    def encode_array(self, segs: np.ndarray, layer: str | None = None, *,
                     batch_size: int = 256) -> np.ndarray:
        """``encode`` of a NumPy array of (scaled) segments in batches, on the model's device;
        float32 (N, D)."""
        dev = next(self.parameters()).device
        out = [self.encode(torch.from_numpy(segs[i:i + batch_size]).to(dev), layer).cpu().numpy()
               for i in range(0, len(segs), batch_size)]
        if not out:
            return np.zeros((0, 0), np.float32)
        return np.concatenate(out).astype(np.float32)


def _as_image(x: torch.Tensor, dims: tp.Sequence[int]) -> torch.Tensor:
    """(B, H, W) or (B, 1, H, W) → (B, 1, H, W), checking H and W."""
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or tuple(x.shape[-2:]) != tuple(dims) or x.shape[1] != 1:
        raise ToolkitError(f"expected input of shape (B, {dims[0]}, {dims[1]}), "
                           f"got {tuple(x.shape)}")
    return x


@dataclasses.dataclass
class ConvAEConfig:
    input_dims: list[int] = dataclasses.field(default_factory=lambda: [64, 96])
    enc_len: int = 10                 # the 10 features users map to visual parameters
    num_init_filters: int = 16        # filters of the first block; doubled per block
    num_pools: int = 4                # conv blocks, each ending in a 2×2 max-pool
    num_fc: int = 4                   # FC layers from the flattened maps to the code
    fc_scale_down: int = 4            # each FC layer divides the width by this
    kernel_size: int = 5
    padding: int = 2                  # same-size convolutions (kernel_size // 2)
    variant: tp.Literal["plain", "shared", "skip"] = "plain"
    enc_activation: tp.Literal["sigmoid", "tanh"] = "sigmoid"
    out_activation: tp.Literal["sigmoid", "none"] = "sigmoid"  # sigmoid for minmax data

    def validate(self) -> None:
        if len(self.input_dims) != 2 or min(self.input_dims) < 1:
            raise ConfigError(f"key 'input_dims' must be [height, width], got {self.input_dims}")
        h, w = self.input_dims
        if h % 2 ** self.num_pools or w % 2 ** self.num_pools:
            raise ConfigError(f"input_dims {self.input_dims} must be divisible by "
                              f"2**num_pools = {2 ** self.num_pools}")
        if self.padding * 2 != self.kernel_size - 1:
            raise ConfigError("key 'padding' must be kernel_size // 2 for same-size convs")
        if min(self.enc_len, self.num_init_filters, self.num_fc, self.fc_scale_down,
               self.num_pools) < 1:
            raise ConfigError("enc_len, num_init_filters, num_pools, num_fc and fc_scale_down "
                              "must be >= 1")

    def fc_widths(self) -> list[int]:
        h, w = self.input_dims
        flat = self.num_init_filters * 2 ** (self.num_pools - 1) * h * w // 4 ** self.num_pools
        widths = [flat]
        for _ in range(self.num_fc - 1):
            widths.append(max(self.enc_len, widths[-1] // self.fc_scale_down))
        return widths + [self.enc_len]


class ConvAutoencoder(EncoderMixin, nn.Module):
    kind = "autoencoder"
    layers = ("code",)
    default_layer = "code"

    def __init__(self, cfg: ConvAEConfig):
        super().__init__()
        self.cfg = cfg
        k, p = cfg.kernel_size, cfg.padding
        self.channels = [1] + [cfg.num_init_filters * 2 ** i for i in range(cfg.num_pools)]
        self.conv_a = nn.ModuleList(nn.Conv2d(self.channels[i], self.channels[i + 1], k, padding=p)
                                    for i in range(cfg.num_pools))
        self.conv_b = nn.ModuleList(nn.Conv2d(c, c, k, padding=p) for c in self.channels[1:])
        widths = cfg.fc_widths()
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        if cfg.variant == "shared":
            # decoder = the encoder's weights transposed, with biases of its own
            self.dfc_bias = nn.ParameterList(nn.Parameter(torch.zeros(a)) for a in widths[:-1])
            self.deconv_a_bias = nn.ParameterList(nn.Parameter(torch.zeros(c))
                                                  for c in self.channels[1:])
            self.deconv_b_bias = nn.ParameterList(nn.Parameter(torch.zeros(c))
                                                  for c in self.channels[:-1])
        else:
            self.dfc = nn.ModuleList(nn.Linear(b, a) for a, b in zip(widths[:-1], widths[1:]))
            self.deconv_a = nn.ModuleList(nn.ConvTranspose2d(c, c, k, padding=p)
                                          for c in self.channels[1:])
            self.deconv_b = nn.ModuleList(nn.ConvTranspose2d(self.channels[i + 1],
                                                             self.channels[i], k, padding=p)
                                          for i in range(cfg.num_pools))
        for m in self.modules():   # He init for convs, as the original; zero biases
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0, math.sqrt(2 / (k * k * m.out_channels)))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # FC layers keep PyTorch's default init. Tried: He for the ReLU layers + Xavier for the
        # code layer. It spreads a new model's codes 5x wider but saturates the sigmoid code:
        # on the sample set cv MSE stalled at 0.0169 instead of reaching 0.0145 in 15 epochs.

    def _encode(self, x):
        x = _as_image(x, self.cfg.input_dims)
        skips = []
        for conv_a, conv_b in zip(self.conv_a, self.conv_b):
            a = F.relu(conv_a(x))
            b = F.relu(conv_b(a))
            skips.append((a, b))
            x = F.max_pool2d(b, 2)
        self._pooled_shape = x.shape[1:]
        x = x.flatten(1)
        for i, fc in enumerate(self.fc):
            x = fc(x)
            if i < len(self.fc) - 1:
                x = F.relu(x)
        act = torch.sigmoid if self.cfg.enc_activation == "sigmoid" else torch.tanh
        return act(x), skips

    def decode(self, z: torch.Tensor, skips=None) -> torch.Tensor:
        """Code (B, enc_len) → reconstruction (B, 1, H, W). ``skips`` only for ``skip``."""
        cfg, shared = self.cfg, self.cfg.variant == "shared"
        x = z
        for i in reversed(range(len(self.fc))):
            x = (F.linear(x, tp.cast(nn.Linear, self.fc[i]).weight.t(), self.dfc_bias[i]) if shared
                 else self.dfc[i](x))
            x = F.relu(x)
        h, w = (d // 2 ** cfg.num_pools for d in cfg.input_dims)
        x = x.view(len(z), self.channels[-1], h, w)
        for i in reversed(range(cfg.num_pools)):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            if skips is not None:
                x = F.relu(x + skips[i][1])
            x = (F.conv_transpose2d(x, tp.cast(nn.Conv2d, self.conv_b[i]).weight,
                                    self.deconv_a_bias[i],
                                    padding=cfg.padding) if shared else self.deconv_a[i](x))
            x = F.relu(x)
            if skips is not None:
                x = F.relu(x + skips[i][0])
            x = (F.conv_transpose2d(x, tp.cast(nn.Conv2d, self.conv_a[i]).weight,
                                    self.deconv_b_bias[i],
                                    padding=cfg.padding) if shared else self.deconv_b[i](x))
            if i > 0:
                x = F.relu(x)
        return torch.sigmoid(x) if cfg.out_activation == "sigmoid" else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, skips = self._encode(x)
        return self.decode(z, skips if self.cfg.variant == "skip" else None)

    def _features(self, x, layer):
        return self._encode(x)[0]

VGG_LAYOUTS = {  # torchvision's cfgs "A", "B", "D": conv widths, "M" = max-pool
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
}


@dataclasses.dataclass
class ClassifierConfig:
    arch: tp.Literal["vgg11", "vgg13", "vgg16", "alexnet"] = "vgg16"
    batchnorm: bool = False           # VGG only: the *_bn layouts
    num_classes: int = 8
    input_dims: list[int] = dataclasses.field(default_factory=lambda: [64, 96])
    width: float = 1.0                # channel multiplier; 1.0 to load ImageNet weights
    fc_units: int = 4096              # hidden FC width; 4096 as torchvision
    dropout: float = 0.5
    pretrained_path: str | None = None   # a local torchvision ImageNet state dict (.pth)
    freeze: bool = False              # freeze the pretrained conv layers

    def validate(self) -> None:
        if self.batchnorm and self.arch == "alexnet":
            raise ConfigError("key 'batchnorm': AlexNet has no batch-norm layout")
        if not 0 < self.width <= 4 or self.fc_units < 1 or self.num_classes < 2:
            raise ConfigError("width must be in (0, 4], fc_units >= 1, num_classes >= 2")
        if not 0 <= self.dropout < 1:
            raise ConfigError("key 'dropout' must be in [0, 1)")
        if len(self.input_dims) != 2 or min(self.input_dims) < 1:
            raise ConfigError(f"key 'input_dims' must be [height, width], got {self.input_dims}")
        if self.freeze and not self.pretrained_path:
            raise ConfigError("key 'freeze' needs pretrained_path (nothing to keep frozen)")


class GenreClassifier(EncoderMixin, nn.Module):
    """``features`` and ``classifier`` Sequentials indexed exactly as torchvision's."""

    kind = "classifier"

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        c = lambda n: max(1, int(round(n * cfg.width)))  # noqa: E731
        layers: list[nn.Module] = []
        if cfg.arch == "alexnet":
            # first conv adapted to 64×96: stride (1, 2) as in the original → 256×6×4 maps
            layers = [nn.Conv2d(1, c(64), 11, stride=(1, 2), padding=2), nn.ReLU(True),
                      nn.MaxPool2d(3, 2), nn.Conv2d(c(64), c(192), 5, padding=2), nn.ReLU(True),
                      nn.MaxPool2d(3, 2), nn.Conv2d(c(192), c(384), 3, padding=1),
                      nn.ReLU(True), nn.Conv2d(c(384), c(256), 3, padding=1), nn.ReLU(True),
                      nn.Conv2d(c(256), c(256), 3, padding=1), nn.ReLU(True),
                      nn.MaxPool2d(3, 2)]
        else:
            cin = 1
            for v in VGG_LAYOUTS[cfg.arch]:
                if v == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                    continue
                layers.append(nn.Conv2d(cin, c(v), 3, padding=1))
                if cfg.batchnorm:
                    layers.append(nn.BatchNorm2d(c(v)))
                layers.append(nn.ReLU(True))
                cin = c(v)
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            try:  # on the meta device too, so counting parameters allocates nothing
                flat = self.features(torch.zeros(1, 1, *cfg.input_dims)).numel()
            except RuntimeError:
                raise ConfigError(f"key 'input_dims': {cfg.input_dims} is too small for the "
                                  f"{cfg.arch} layout") from None
        self.flat_dim = flat
        u = cfg.fc_units
        if cfg.arch == "alexnet":  # torchvision: Dropout Linear ReLU Dropout Linear ReLU Linear
            self.classifier = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(flat, u),
                                            nn.ReLU(True), nn.Dropout(cfg.dropout),
                                            nn.Linear(u, u), nn.ReLU(True),
                                            nn.Linear(u, cfg.num_classes))
        else:                      # torchvision: Linear ReLU Dropout Linear ReLU Dropout Linear
            self.classifier = nn.Sequential(nn.Linear(flat, u), nn.ReLU(True),
                                            nn.Dropout(cfg.dropout), nn.Linear(u, u),
                                            nn.ReLU(True), nn.Dropout(cfg.dropout),
                                            nn.Linear(u, cfg.num_classes))
        # Taps named by weight-layer count, as the original: VGG-16 L13 = last pool,
        # L14/L15 = ReLU after FC1/FC2 (VGG-13: L10-L12, VGG-11: L8-L10, AlexNet: L5-L7).
        n_conv = sum(isinstance(m, nn.Conv2d) for m in self.features)
        relus = [i for i, m in enumerate(self.classifier) if isinstance(m, nn.ReLU)]
        self.taps = {f"L{n_conv}": ("features", len(self.features) - 1),
                     f"L{n_conv + 1}": ("classifier", relus[0]),
                     f"L{n_conv + 2}": ("classifier", relus[1])}
        self.layers = tuple(self.taps)
        self.default_layer = self.layers[-1]
        self._init_weights()
        if cfg.pretrained_path:
            self.load_pretrained(cfg.pretrained_path)

    def _init_weights(self):
        for m in self.modules():  # torchvision's VGG init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def load_pretrained(self, path: str | os.PathLike) -> list[str]:
        """Load the conv layers of a torchvision ImageNet state dict (e.g. vgg16_bn-*.pth).

        The first conv's RGB filters are summed to one input channel; the classifier head is
        left freshly initialised (its input size differs). Returns the keys loaded.
        """
        if not os.path.isfile(path):
            raise ToolkitError(f"pretrained weights not found: {path}. Download the torchvision "
                               f"ImageNet state dict for {self.cfg.arch}"
                               f"{'_bn' if self.cfg.batchnorm else ''} and pass its local path")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ToolkitError(f"{path}: not a readable torch state dict ({e})") from None
        state = state.get("state_dict", state)
        own = self.state_dict()
        loaded = []
        for key, value in state.items():
            if not key.startswith("features.") or key not in own:
                continue
            if key == "features.0.weight" and value.shape[1] == 3:
                value = value.sum(1, keepdim=True)
            if own[key].shape != value.shape:
                raise ToolkitError(f"{path}: {key} has shape {tuple(value.shape)}, the model "
                                   f"{tuple(own[key].shape)}; is it a {self.cfg.arch}"
                                   f"{'_bn' if self.cfg.batchnorm else ''} state dict with "
                                   "width 1.0?")
            own[key] = value
            loaded.append(key)
        if not loaded:
            raise ToolkitError(f"{path}: no 'features.*' weights matched {self.cfg.arch}")
        self.load_state_dict(own)
        if self.cfg.freeze:
            for p in self.features.parameters():
                p.requires_grad_(False)
        return loaded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(_as_image(x, self.cfg.input_dims))
        return self.classifier(x.flatten(1))

    def _features(self, x, layer):
        where, index = self.taps[layer]
        x = self.features(_as_image(x, self.cfg.input_dims))
        if where == "features":
            return x
        return self.classifier[:index + 1](x.flatten(1))


@dataclasses.dataclass
class DenseAEConfig:
    input_dim: int = 5513             # one-sided spectrum of a 0.5 s window at 22050 Hz
    widths: list[int] = dataclasses.field(
        default_factory=lambda: [5000, 2048, 1024, 512, 128, 32, 10])  # last = code size
    # the original's sigmoid hidden layers and linear code; relu + tanh is what learns on
    # small real folders (see docs/training.md)
    activation: tp.Literal["sigmoid", "relu"] = "sigmoid"
    code_activation: tp.Literal["linear", "tanh"] = "linear"
    # a linear encoder and decoder beside the layers (the code is their sum, and so is the
    # output), started at the PCA of the training data with the layers' last weights at zero:
    # training starts from the best linear code and the layers learn what PCA misses
    linear_path: bool = False

    def validate(self) -> None:
        if self.input_dim < 1 or not self.widths or min(self.widths) < 1:
            raise ConfigError("input_dim and every entry of 'widths' must be >= 1")
        if self.activation not in ("sigmoid", "relu"):
            raise ConfigError("key 'activation' must be 'sigmoid' or 'relu'")
        if self.code_activation not in ("linear", "tanh"):
            raise ConfigError("key 'code_activation' must be 'linear' or 'tanh'")
        if not isinstance(self.linear_path, bool):
            raise ConfigError("key 'linear_path' must be true or false")
        if self.linear_path and self.code_activation != "linear":
            raise ConfigError("key 'linear_path' needs 'code_activation': 'linear'")


class DenseAutoencoder(EncoderMixin, nn.Module):
    """Hidden layers with ``activation`` (sigmoid in the original), a code with
    ``code_activation`` (linear in the original), a mirrored decoder with a linear output.
    Any input shape: segments are flattened (an MFCC segment of 64x96 is 6144 inputs).

    With ``linear_path`` a linear encoder/decoder pair runs beside the layers; before
    training, :meth:`init_from_data` sets it to the training data's PCA and zeroes the
    layers' last weights, so the untrained model *is* PCA and training can only go below it
    on the training data."""

    kind = "autoencoder"
    layers = ("code",)
    default_layer = "code"

    def __init__(self, cfg: DenseAEConfig):
        super().__init__()
        self.cfg = cfg
        dims = [cfg.input_dim] + list(cfg.widths)
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.decoder = nn.ModuleList(nn.Linear(b, a) for a, b in
                                     reversed(list(zip(dims[:-1], dims[1:]))))
        self._act = torch.sigmoid if cfg.activation == "sigmoid" else F.relu
        self.linear_encoder = nn.Linear(dims[0], dims[-1]) if cfg.linear_path else None
        self.linear_decoder = nn.Linear(dims[-1], dims[0]) if cfg.linear_path else None

    @torch.no_grad()
    def init_from_data(self, x: np.ndarray) -> None:
        """Start the linear path at the PCA of (a sample of) the scaled training segments
        ``x`` and zero the layers' last weights (no-op without ``linear_path``)."""
        if self.linear_encoder is None or self.linear_decoder is None:
            return
        flat = np.asarray(x, np.float64).reshape(len(x), -1)
        k = self.cfg.widths[-1]
        if len(flat) < k:
            raise ToolkitError(f"the linear path needs at least {k} training segments, "
                               f"got {len(flat)}")
        from sklearn.decomposition import PCA
        mean = flat.mean(0)
        pca = PCA(k, svd_solver="randomized", random_state=0).fit(flat - mean)
        comps = torch.from_numpy(pca.components_.astype(np.float32))
        m = torch.from_numpy(mean.astype(np.float32))
        self.linear_encoder.weight.copy_(comps)
        self.linear_encoder.bias.copy_(-(comps @ m))
        self.linear_decoder.weight.copy_(comps.T)
        self.linear_decoder.bias.copy_(m)
        for last in (self.encoder[-1], self.decoder[-1]):
            for p in last.parameters():
                p.zero_()

    def _features(self, x, layer):
        x = x.flatten(1)
        h = x
        for i, layer_ in enumerate(self.encoder):
            h = layer_(h)
            if i < len(self.encoder) - 1:
                h = self._act(h)
        if self.linear_encoder is not None:
            h = h + self.linear_encoder(x)
        return torch.tanh(h) if self.cfg.code_activation == "tanh" else h

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = z
        for i, layer_ in enumerate(self.decoder):
            x = layer_(x)
            if i < len(self.decoder) - 1:   # every hidden decoder layer has its activation
                x = self._act(x)
        if self.linear_decoder is not None:
            x = x + self.linear_decoder(z)
        return x

    def forward(self, x):
        return self.decode(self._features(x, "code"))
