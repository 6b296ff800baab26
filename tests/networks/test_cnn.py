import numpy as np
import pytest
import torch

from deepaudio.core.config import ConfigError
from deepaudio.core.errors import ToolkitError
from deepaudio.networks.cnn import (
    ClassifierConfig,
    ConvAEConfig,
    ConvAutoencoder,
    DenseAEConfig,
    DenseAutoencoder,
    GenreClassifier,
)
from deepaudio.networks.registry import build_model, count_parameters

TINY_AE = {"num_init_filters": 2, "num_pools": 4, "num_fc": 2, "kernel_size": 3, "padding": 1}
MIX = {"num_init_filters": 32, "num_pools": 4, "kernel_size": 3, "padding": 1, "num_fc": 2,
       "fc_scale_down": 2}


@pytest.mark.parametrize("variant", ["plain", "shared", "skip"])
@pytest.mark.parametrize("act", ["sigmoid", "tanh"])
def test_conv_ae_shapes_and_arbitrary_codes(variant, act):
    m = build_model("conv_autoencoder", {**TINY_AE, "variant": variant, "enc_activation": act})
    x = torch.rand(5, 64, 96)
    assert m(x).shape == (5, 1, 64, 96)
    z = m.encode(x)
    assert z.shape == (5, 10)
    assert (z.min() >= (0 if act == "sigmoid" else -1)) and z.max() <= 1
    # any code decodes, e.g. the midpoint between two tracks' codes
    mid = m.decode((z[:1] + z[1:2]) / 2)
    assert mid.shape == (1, 1, 64, 96) and torch.isfinite(mid).all()


@pytest.mark.parametrize("variant, expected", [("plain", 40_165_579), ("shared", 20_089_771)])
def test_reference_parameter_counts(variant, expected):
    # the reference's conv_ae_mix layout, built on the meta device (no memory)
    with torch.device("meta"):
        m = build_model("conv_autoencoder", {**MIX, "variant": variant})
    assert count_parameters(m) == expected


def test_shared_variant_really_shares():
    torch.manual_seed(0)
    plain = ConvAutoencoder(ConvAEConfig(**TINY_AE, variant="plain"))
    shared = ConvAutoencoder(ConvAEConfig(**TINY_AE, variant="shared"))
    enc = sum(p.numel() for n, p in shared.named_parameters()
              if n.startswith(("conv_a", "conv_b", "fc.")))
    biases = sum(p.numel() for n, p in shared.named_parameters() if "bias" in n
                 and n.startswith(("dfc_bias", "deconv_")))
    assert count_parameters(shared) == enc + biases
    assert count_parameters(plain) > count_parameters(shared)
    assert not any(n.startswith(("dfc.", "deconv_a.", "deconv_b.")) for n, _ in
                   shared.named_parameters())
    # tied: the decoder's output depends on the encoder's weight tensors
    z = torch.rand(2, 10)
    before = shared.decode(z)
    with torch.no_grad():
        shared.conv_a[0].weight.mul_(2)
    assert not torch.allclose(before, shared.decode(z))
    # and the decoder's gradient reaches the encoder's weights
    shared.zero_grad()
    shared.decode(z).sum().backward()
    assert shared.fc[0].weight.grad is not None and shared.fc[0].weight.grad.abs().sum() > 0


def test_skip_variant_changes_output():
    torch.manual_seed(0)
    plain = ConvAutoencoder(ConvAEConfig(**TINY_AE, variant="plain"))
    skip = ConvAutoencoder(ConvAEConfig(**TINY_AE, variant="skip"))
    skip.load_state_dict(plain.state_dict())       # same weights, only the wiring differs
    x = torch.rand(3, 64, 96)
    assert torch.equal(plain.encode(x), skip.encode(x))
    assert not torch.allclose(plain(x), skip(x))
    assert torch.allclose(plain.decode(plain.encode(x)), skip.decode(skip.encode(x)))


@pytest.mark.parametrize("arch, bn, taps", [
    ("vgg11", False, {"L8": 3072, "L9": 64, "L10": 64}),
    ("vgg11", True, {"L8": 3072, "L9": 64, "L10": 64}),
    ("vgg13", True, {"L10": 3072, "L11": 64, "L12": 64}),
    ("vgg16", True, {"L13": 3072, "L14": 64, "L15": 64}),
    ("alexnet", False, {"L5": 6144, "L6": 64, "L7": 64}),
])
def test_classifier_shapes_and_taps(arch, bn, taps):
    m = build_model("cnn_classifier", {"arch": arch, "batchnorm": bn, "fc_units": 64,
                                       "num_classes": 8})
    x = torch.randn(2, 64, 96)
    assert m(x).shape == (2, 8)
    assert {layer: m.encode(x, layer).shape[1] for layer in m.layers} == taps


def test_reference_tap_indices_and_size():
    with torch.device("meta"):
        vgg16 = GenreClassifier(ClassifierConfig(arch="vgg16", batchnorm=True, num_classes=16))
        vgg13 = GenreClassifier(ClassifierConfig(arch="vgg13", batchnorm=True))
        vgg11 = GenreClassifier(ClassifierConfig(arch="vgg11", batchnorm=True))
    assert count_parameters(vgg16) == 44_155_856      # the reference's vgg16_bn count
    assert vgg16.taps["L13"] == ("features", 43)      # reference: features[43]
    assert vgg16.taps["L14"] == ("classifier", 1) and vgg16.taps["L15"] == ("classifier", 4)
    assert vgg13.taps["L10"] == ("features", 34) and vgg11.taps["L8"] == ("features", 28)


# torchvision's key layout, written out by hand so the test does not need torchvision
TV_VGG11 = [0, 3, 6, 8, 11, 13, 16, 18]
TV_VGG16_BN = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]
TV_ALEXNET = [0, 3, 6, 8, 10]


@pytest.mark.parametrize("arch, bn, convs, head", [
    ("vgg11", False, TV_VGG11, [0, 3, 6]),
    ("vgg16", True, TV_VGG16_BN, [0, 3, 6]),
    ("alexnet", False, TV_ALEXNET, [1, 4, 6]),
])
def test_state_dict_keys_match_torchvision(arch, bn, convs, head):
    with torch.device("meta"):
        m = GenreClassifier(ClassifierConfig(arch=arch, batchnorm=bn))
    keys = set(m.state_dict())
    expected = {f"features.{i}.{p}" for i in convs for p in ("weight", "bias")}
    if bn:
        expected |= {f"features.{i + 1}.{p}" for i in convs
                     for p in ("weight", "bias", "running_mean", "running_var",
                               "num_batches_tracked")}
    expected |= {f"classifier.{i}.{p}" for i in head for p in ("weight", "bias")}
    assert keys == expected


def imagenet_like_state_dict(arch, bn):
    """A state dict shaped like torchvision's ImageNet one (3-channel input, 1000 classes)."""
    torch.manual_seed(1)
    m = GenreClassifier(ClassifierConfig(arch=arch, batchnorm=bn, num_classes=1000))
    sd = {k: torch.randn_like(v.float()) if v.is_floating_point() else v
          for k, v in m.state_dict().items()}
    sd["features.0.weight"] = torch.randn(sd["features.0.weight"].shape[0], 3,
                                          *sd["features.0.weight"].shape[2:])
    sd["classifier.0.weight" if arch != "alexnet" else "classifier.1.weight"] = \
        torch.randn(4096, 25088 if arch != "alexnet" else 9216)
    return sd


@pytest.mark.parametrize("arch, bn", [("vgg11", False), ("vgg11", True), ("alexnet", False)])
def test_loads_a_local_imagenet_state_dict(tmp_path, arch, bn):
    sd = imagenet_like_state_dict(arch, bn)
    path = tmp_path / f"{arch}.pth"
    torch.save(sd, path)
    torch.manual_seed(0)
    fresh = GenreClassifier(ClassifierConfig(arch=arch, batchnorm=bn))
    torch.manual_seed(0)
    m = GenreClassifier(ClassifierConfig(arch=arch, batchnorm=bn, pretrained_path=str(path),
                                         freeze=True))
    own = m.state_dict()
    assert torch.allclose(own["features.0.weight"], sd["features.0.weight"].sum(1, keepdim=True))
    second_conv = [k for k, v in own.items() if k.startswith("features.") and v.dim() == 4][1]
    assert torch.equal(own[second_conv], sd[second_conv])
    assert torch.equal(own["classifier.6.weight"], fresh.state_dict()["classifier.6.weight"])
    assert own["classifier.6.weight"].shape == (8, 4096)          # head re-initialised
    assert not any(p.requires_grad for p in m.features.parameters())
    assert all(p.requires_grad for p in m.classifier.parameters())


def test_pretrained_errors(tmp_path):
    with pytest.raises(ToolkitError, match="not found"):
        GenreClassifier(ClassifierConfig(arch="vgg11", pretrained_path=str(tmp_path / "x.pth")))
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ToolkitError, match="not a readable"):
        GenreClassifier(ClassifierConfig(arch="vgg11", pretrained_path=str(tmp_path / "junk.pth")))
    torch.save(imagenet_like_state_dict("vgg11", False), tmp_path / "v11.pth")
    with pytest.raises(ToolkitError, match="shape"):
        GenreClassifier(ClassifierConfig(arch="vgg11", width=0.5,
                                         pretrained_path=str(tmp_path / "v11.pth")))


def test_encode_is_deterministic_in_eval_mode_and_restores_training():
    m = build_model("cnn_classifier", {"arch": "vgg11", "batchnorm": True, "width": 0.125,
                                       "fc_units": 32})
    m.train()
    x = torch.randn(4, 64, 96)
    a, b = m.encode(x, "L10"), m.encode(x, "L10")
    assert torch.equal(a, b) and m.training
    single = m.encode(x[:1], "L10")      # batch statistics would make this differ
    assert torch.allclose(single, a[:1], atol=1e-5)
    with pytest.raises(ToolkitError, match="unknown layer"):
        m.encode(x, "L99")


def test_dense_ae_wiring():
    m = DenseAutoencoder(DenseAEConfig(input_dim=100, widths=[50, 20, 10]))
    x = torch.randn(3, 100)
    z = m.encode(x)
    assert z.shape == (3, 10)
    h = torch.sigmoid(m.encoder[1](torch.sigmoid(m.encoder[0](x))))
    assert torch.allclose(z, m.encoder[2](h), atol=1e-6)          # linear code
    d = torch.sigmoid(m.decoder[0](z))                           # the reference skipped this
    d = torch.sigmoid(m.decoder[1](d))
    assert torch.allclose(m(x), m.decoder[2](d), atol=1e-6)        # linear output
    assert [lay.in_features for lay in m.decoder] == [10, 20, 50]
    with torch.device("meta"):
        ref = DenseAutoencoder(DenseAEConfig(input_dim=11025))
    assert abs(count_parameters(ref) - 136.1e6) < 0.1e6          # the reference's size


def test_dense_ae_relu_tanh_on_mfcc_segments():
    """The real-folder recipe's dense AE: MFCC segments (B, 64, 96) flattened, ReLU hidden
    layers, a tanh code, a linear output shaped back by the loss."""
    m = DenseAutoencoder(DenseAEConfig(input_dim=64 * 96, widths=[32, 10], activation="relu",
                                       code_activation="tanh"))
    x = 3 * torch.randn(4, 64, 96)
    z = m.encode(x)
    assert torch.allclose(z, torch.tanh(m.encoder[1](torch.relu(m.encoder[0](x.flatten(1))))))
    assert z.abs().max() < 1 and m(x).shape == (4, 64 * 96)
    assert torch.allclose(m(x), m.decoder[1](torch.relu(m.decoder[0](z))), atol=1e-6)


def test_dense_ae_linear_path_starts_at_pca():
    """Before training, a model with a linear path is exactly PCA: its code is the PCA
    projection and its output the PCA reconstruction."""
    from sklearn.decomposition import PCA
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 12)) @ rng.normal(size=(12, 40)) + 3).astype(np.float32)
    m = DenseAutoencoder(DenseAEConfig(input_dim=40, widths=[16, 4], activation="relu",
                                       linear_path=True))
    m.init_from_data(x)
    pca = PCA(4, svd_solver="randomized", random_state=0).fit(x.astype(np.float64))
    t = torch.from_numpy(x)
    np.testing.assert_allclose(m.encode(t).numpy(), pca.transform(x), atol=1e-3)
    with torch.no_grad():
        np.testing.assert_allclose(m(t).numpy(), pca.inverse_transform(pca.transform(x)),
                                   atol=1e-3)
    # the layers are live: their first weights still have gradients to follow
    m(t).pow(2).mean().backward()
    assert m.encoder[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ToolkitError, match="at least 4"):
        m.init_from_data(x[:3])


@pytest.mark.parametrize("name, params, key", [
    ("conv_autoencoder", {"variant": "tied"}, "variant"),
    ("conv_autoencoder", {"shared_weights": "false"}, "shared_weights"),
    ("conv_autoencoder", {"num_pools": 7}, "input_dims"),
    ("conv_autoencoder", {"num_pools": 0}, "num_pools"),
    ("conv_autoencoder", {"input_dims": [64]}, "input_dims"),
    ("cnn_classifier", {"input_dims": [16, 16], "arch": "vgg16"}, "input_dims"),
    ("cnn_classifier", {"batchnorm": "false"}, "batchnorm"),
    ("cnn_classifier", {"arch": "resnet"}, "arch"),
    ("dense_autoencoder", {"widths": [10, "5"]}, "widths"),
    ("dense_autoencoder", {"activation": "gelu"}, "activation"),
    ("dense_autoencoder", {"code_activation": "sigmoid"}, "code_activation"),
    ("dense_autoencoder", {"linear_path": "yes"}, "linear_path"),
    ("dense_autoencoder", {"linear_path": True, "code_activation": "tanh"}, "linear_path"),
    ("transformer", {}, "model"),
])
def test_bad_params_name_the_key(name, params, key):
    with pytest.raises(ConfigError, match=key):
        build_model(name, params)


def test_wrong_input_shape_is_explained():
    m = build_model("conv_autoencoder", TINY_AE)
    with pytest.raises(ToolkitError, match=r"\(B, 64, 96\)"):
        m(torch.rand(2, 20, 90))
