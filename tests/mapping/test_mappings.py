"""Mappings: unit range and shape for every method, fitted on train only, save and load."""


import numpy as np
import pytest

from deepaudio.core.errors import ToolkitError
from deepaudio.mapping.encode import encode_partition, encode_track
from deepaudio.mapping.mappings import METHODS, Mapping, fit_mapping


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scaling, per", [("standard", "features"), ("minmax", "across")])
def test_every_mapping_is_in_unit_range_and_shaped(ae_run, song, method, scaling, per):
    m = fit_mapping(ae_run, method, scaling=scaling, per=per)
    feats = encode_track(song, ae_run)
    out = m.transform(feats.frames)
    assert out.shape == (len(feats.frames), 10) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("method", ["pca", "kmeans", "kmeans-pca"])
def test_classifier_layers_map_to_ten(classifier_run, song, method):
    feats = encode_track(song, classifier_run, "L9")
    assert feats.frames.shape[1] == 32          # fc_units of the tiny classifier
    out = fit_mapping(classifier_run, method, layer="L9").transform(feats.frames)
    assert out.shape == (len(feats.frames), 10) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ToolkitError, match="raw mapping needs 10"):
        fit_mapping(classifier_run, "raw", layer="L9")


def test_mappings_are_fitted_on_train_only(ae_run):
    m = fit_mapping(ae_run, "pca", scaling="minmax")
    train = np.concatenate([encode_partition(ae_run, p) for p in
                            ("partition_train_0", "partition_train_1")])
    test = encode_partition(ae_run, "partition_test")
    scaler = m.steps[0]
    np.testing.assert_allclose(scaler.data_min_, train.min(0), rtol=1e-6)
    np.testing.assert_allclose(scaler.data_max_, train.max(0), rtol=1e-6)
    assert len(test) > 0 and scaler.n_samples_seen_ == len(train)
    assert m.transform(train).min() == 0.0 and m.transform(train).max() == 1.0


def test_save_load_round_trip_is_identical(ae_run, song, tmp_path):
    m = fit_mapping(ae_run, "kmeans-pca")
    x = encode_track(song, ae_run).frames
    m.save(tmp_path / "m.joblib")
    again = Mapping.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(m.transform(x), again.transform(x))
    with pytest.raises(ToolkitError, match="not found"):
        Mapping.load(tmp_path / "missing.joblib")
