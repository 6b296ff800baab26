"""The beat network: shapes, the receptive field, the causal variant, config checks."""

from __future__ import annotations

import pytest
import torch

from deepaudio.core.config import ConfigError, load_config
from deepaudio.networks.beats import BeatTCN, BeatTCNConfig
from deepaudio.networks.registry import build_model


def small(**kw) -> BeatTCN:
    return BeatTCN(BeatTCNConfig(channels=8, front_channels=4, dilations=[1, 2, 4], **kw))


def test_one_pair_of_logits_per_frame_any_length():
    net = small().eval()
    for frames in (1, 7, 300):
        assert net(torch.randn(2, frames, 128)).shape == (2, frames, 2)
    with pytest.raises(ValueError, match="expected"):
        net(torch.randn(2, 10, 64))


def test_receptive_field_is_what_the_output_depends_on():
    net = small().eval()
    x = torch.randn(1, 200, 128, requires_grad=True)
    net(x)[0, 100].sum().backward()
    touched = torch.nonzero(x.grad[0].abs().sum(1))[:, 0]
    span = int(touched.max() - touched.min()) + 1
    assert span == net.receptive_field == 1 + 4 + 4 * (1 + 2 + 4)
    assert touched.min() < 100 < touched.max()          # centred: past and future


def test_the_causal_variant_never_reads_the_future():
    net = small(causal=True).eval()
    x = torch.randn(1, 120, 128)
    y = x.clone()
    y[:, 80:] += 3.0
    with torch.no_grad():
        a, b = net(x), net(y)
    assert torch.equal(a[:, :80], b[:, :80])
    assert not torch.allclose(a[:, 80:], b[:, 80:])


def test_config_is_validated_with_the_key_named():
    with pytest.raises(ConfigError, match="dilations"):
        load_config(BeatTCNConfig, {"dilations": []})
    with pytest.raises(ConfigError, match="n_mels"):
        load_config(BeatTCNConfig, {"n_mels": 16})
    with pytest.raises(ConfigError, match="unknown key 'layers'"):
        build_model("beat_tcn", {"layers": 3})
    assert isinstance(build_model("beat_tcn", {"channels": 8}), BeatTCN)
