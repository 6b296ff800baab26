"""The WaveNet autoencoder: mu-law, shapes, causality, fast generation equal to naive
(greedy and sampled, float32 and batched), presets and config errors."""


import numpy as np
import pytest
import torch

from deepaudio.core.config import ConfigError
from deepaudio.core.errors import ToolkitError
from deepaudio.networks.wavenet import (
    HOP,
    WaveNetAutoencoder,
    WaveNetConfig,
    generation_speed,
    magenta_mu_law_decode,
    magenta_mu_law_encode,
    make_config,
    mu_law_decode,
    mu_law_encode,
    preset,
)

# 3 + 6 layers, dilations 1, 2, 4: encoder sees ±8 samples, decoder 16 samples back
TINY = {"enc_layers": 3, "enc_channels": 6, "dec_layers": 6, "residual_channels": 8,
        "skip_channels": 8, "dilation_cycle": 3, "bottleneck": 4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


LAYOUTS = pytest.mark.parametrize("layout", ["compact", "magenta"])


def tiny_model(seed: int = 0, dtype=torch.float64, layout: str = "compact"
               ) -> WaveNetAutoencoder:
    torch.manual_seed(seed)
    m = WaveNetAutoencoder(make_config("small", {**TINY, "layout": layout})).to(dtype)
    with torch.no_grad():                       # biases off zero, so folding them is tested
        for name, param in m.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.1)
    return m


def random_codes(batch: int, frames: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 2 * torch.randn(batch, TINY["bottleneck"], frames, generator=gen, dtype=torch.float64)


def random_audio(batch: int, n: int, seed: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 0.5 * torch.randn(batch, n, generator=gen, dtype=torch.float64).clamp(-1, 1)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_mu_law_round_trip(kind):
    x = np.linspace(-1, 1, 20001)
    to = (lambda a: a) if kind == "numpy" else torch.from_numpy
    back = (lambda a: a) if kind == "numpy" else (lambda a: a.numpy())
    labels = back(mu_law_encode(to(x)))
    assert labels.dtype == np.int64
    assert labels[0] == 0 and labels[-1] == 255 and labels.min() == 0 and labels.max() == 255
    assert (np.diff(labels) >= 0).all()                    # monotonic
    assert np.array_equal(np.unique(labels), np.arange(256))
    y = back(mu_law_decode(to(labels)))
    assert np.abs(y).max() <= 1 and y[0] == -1 and y[-1] == pytest.approx(1, abs=1e-6)
    # 8 bits: half a step (1/255) in the compressed domain; absolute error < 0.022 at full scale
    compress = lambda v: np.sign(v) * np.log1p(255 * np.abs(v)) / np.log1p(255)  # noqa: E731
    assert np.abs(compress(y) - compress(x)).max() <= 1 / 255 + 1e-6
    assert np.abs(y - x).max() < 0.022
    quiet = np.abs(x) < 0.001
    assert np.abs(y - x)[quiet].max() < 1.2e-4             # fine steps near zero
    # every label survives decode → encode, out-of-range audio is clipped
    k = np.arange(256)
    assert np.array_equal(back(mu_law_encode(mu_law_decode(to(k)))), k)
    assert back(mu_law_encode(to(np.array([-3.0, 1.5])))).tolist() == [0, 255]


def test_mu_law_numpy_and_torch_agree():
    x = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    assert np.array_equal(mu_law_encode(x), mu_law_encode(torch.from_numpy(x)).numpy())
    assert mu_law_decode(np.arange(256)).dtype == np.float32
    assert np.array_equal(magenta_mu_law_encode(x),
                          magenta_mu_law_encode(torch.from_numpy(x)).numpy())
    assert np.allclose(magenta_mu_law_decode(np.arange(256)),
                       magenta_mu_law_decode(torch.arange(256)).numpy(), atol=1e-7)


def test_magenta_mu_law_is_nsynths():
    """Magenta's utils.mu_law / inv_mu_law written out: floor(128 compress(x)) + 128 labels,
    the bin centre back (0 at label 128); full-scale 1.0 clipped to 255 instead of 256."""
    x = np.linspace(-1, 1, 20001)
    compressed = np.sign(x) * np.log1p(255 * np.abs(x)) / np.log(256)
    expected = np.floor(compressed * 128) + 128
    labels = magenta_mu_law_encode(x)
    assert np.array_equal(labels, np.minimum(expected, 255))
    assert labels[0] == 0 and labels[-1] == 255 and expected[-1] == 256
    k = np.arange(256)
    y = magenta_mu_law_decode(k)
    centre = (k - 128 + 0.5) * 2 / 256
    ref = np.where(k == 128, 0, np.sign(centre) / 255 * (256.0 ** np.abs(centre) - 1))
    assert np.allclose(y, ref, atol=1e-7) and y[128] == 0
    assert np.array_equal(magenta_mu_law_encode(y), k)
    cfg = make_config("small", {"layout": "magenta"})
    assert cfg.input_values(torch.tensor([0, 128, 255])).tolist() == [-1.0, 0.0, 127 / 128]


def test_shapes_and_non_causal_encoder():
    m = tiny_model()
    m.train()
    audio = random_audio(2, 4 * HOP + 100)
    codes = m.encode(audio)
    assert codes.shape == (2, TINY["bottleneck"], 4) and not codes.requires_grad
    assert m.training                                     # encode restores the mode
    assert m(audio).shape == (2, 256, 4 * HOP + 100)
    # a sample at the start of frame 2 changes frame 1 (it looks ahead 8 samples), not frame 0
    changed = audio.clone()
    changed[:, 2 * HOP] += 0.5
    moved = (m.encode(changed) - codes).abs().amax(dim=(0, 1))
    assert moved[1] > 1e-6 and moved[2] > 1e-6 and moved[0] == 0 and moved[3] == 0
    assert m.encoder.half_receptive_field == 8


@LAYOUTS
def test_decoder_is_causal(layout):
    m = tiny_model(layout=layout)
    audio, codes = random_audio(2, 300), random_codes(2, 1)
    logits = m.decode(audio, codes)
    assert logits.shape == (2, 256, 300)
    t = 150
    changed = audio.clone()
    changed[:, t] = -audio[:, t] + 0.3
    after = m.decode(changed, codes)
    assert torch.equal(after[:, :, :t + 1], logits[:, :, :t + 1])
    assert not torch.allclose(after[:, :, t + 1], logits[:, :, t + 1])
    # and it only looks back receptive_field samples
    rf = m.decoder.receptive_field
    assert rf == (16 if layout == "compact" else 31)
    assert torch.equal(after[:, :, t + rf + 1:], logits[:, :, t + rf + 1:])
    assert not torch.equal(after[:, :, t + rf], logits[:, :, t + rf])   # the far edge


@LAYOUTS
@pytest.mark.parametrize("sampling", ["greedy", "sample"])
def test_fast_generation_equals_naive(sampling, layout):
    m = tiny_model(layout=layout)
    codes = random_codes(2, 2)
    n = 2 * HOP + 37                                     # crosses a frame, then holds the last
    fast = m.generate(codes, n, method="fast", sampling=sampling, seed=5)
    naive = m.generate(codes, n, method="naive", sampling=sampling, seed=5)
    assert fast.shape == (2, n) and fast.dtype == np.float32
    assert np.array_equal(fast, naive)
    assert np.abs(fast).max() <= 1
    if sampling == "sample":
        assert len(np.unique(fast)) > 20
        assert not np.array_equal(fast, m.generate(codes, n, sampling=sampling, seed=6))
    # conditioning matters
    other = m.generate(random_codes(2, 2, seed=9), n, sampling=sampling, seed=5)
    assert not np.array_equal(fast, other)


@LAYOUTS
def test_fast_generation_in_float32_equals_naive(layout):
    m = tiny_model(dtype=torch.float32, layout=layout)
    codes = random_codes(1, 1).float()
    fast = m.generate(codes, 300, sampling="sample", seed=1)
    assert np.array_equal(fast, m.generate(codes, 300, method="naive", sampling="sample", seed=1))


@LAYOUTS
def test_generation_matches_teacher_forcing(layout):
    # the cache-equivalence check against the training pass: re-scoring the generated audio
    # with teacher forcing gives back every greedy choice
    m = tiny_model(seed=3, layout=layout)
    codes = random_codes(2, 1, seed=4)
    audio = m.generate(codes, 400)
    logits = m.decode(torch.from_numpy(audio).double(), codes)
    assert torch.equal(logits.argmax(1), m.cfg.labels(torch.from_numpy(audio)))


@LAYOUTS
def test_batched_generation_equals_per_item(layout):
    m = tiny_model(layout=layout)
    codes = random_codes(3, 2)
    batched = m.generate(codes, HOP + 50)
    for i in range(3):
        assert np.array_equal(batched[i], m.generate(codes[i:i + 1], HOP + 50)[0])
    assert m.generate(codes).shape == (3, 2 * HOP)        # n_samples defaults to F * HOP


def test_generate_rejects_bad_arguments():
    m = tiny_model()
    with pytest.raises(ToolkitError, match="'beam'"):
        m.generate(random_codes(1, 1), 10, method="beam")
    with pytest.raises(ToolkitError, match="'top_k'"):
        m.generate(random_codes(1, 1), 10, sampling="top_k")
    with pytest.raises(ToolkitError, match=r"\(batch, 4, frames\)"):
        m.generate(torch.zeros(1, 5, 2), 10)


def test_generation_speed_and_progress():
    m = tiny_model(dtype=torch.float32)
    calls = []
    m.generate(random_codes(1, 2).float(), 2 * HOP, progress=lambda d, n: calls.append((d, n)))
    assert calls == [(HOP, 2 * HOP), (2 * HOP, 2 * HOP)]
    assert generation_speed(m, 200, method="fast") > 0


def test_presets():
    small, nsynth = preset("small"), preset("nsynth")
    assert small == WaveNetConfig()
    assert (nsynth.enc_layers, nsynth.dec_layers, nsynth.enc_channels) == (30, 30, 128)
    assert (nsynth.residual_channels, nsynth.skip_channels, nsynth.bottleneck) == (512, 256, 16)
    with torch.device("meta"):
        big = WaveNetAutoencoder(nsynth)
    assert nsynth.layout == "magenta" and small.layout == "compact"
    assert big.decoder.receptive_field == 2 * (1 + 3 * 1023) + 1     # 3 taps
    assert big.decoder.skip_start is not None and big.decoder.cond_out is not None
    assert big.decoder.dilation_list[:11] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1]
    with pytest.raises(ToolkitError, match="'huge'"):
        preset("huge")


@pytest.mark.parametrize("overrides, key", [({"residual_channel": 8}, "residual_channel"),
                                            ({"dec_layers": "10"}, "dec_layers"),
                                            ({"bottleneck": 0}, "bottleneck"),
                                            ({"dilation_cycle": 20}, "dilation_cycle"),
                                            ({"layout": "tf"}, "layout")])
def test_bad_config_rejected_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        make_config("small", overrides)
