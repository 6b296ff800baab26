"""Personalised gains: the 23-d song features and the per-user network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepaudio.data.samples import render_track
from deepaudio.mapping.encode import genre_probabilities
from deepaudio.mixer.preferences import (
    from_bytes,
    new_model,
    relative_gains,
    retrain,
    suggest,
    to_bytes,
    track_features,
    update_on_save,
)
from deepaudio.mixer.stems import STEMS


def test_track_features_are_real_and_unsaturated(song, classifier_run):
    path = song[0]
    v = track_features(path)
    assert v.shape == (23,) and v.dtype == np.float32
    assert np.all((v >= 0) & (v <= 1)) and v[13:].sum() == 0
    assert v[8:13].sum() == pytest.approx(1.0, abs=1e-5)
    assert 0.05 < v[2] < 0.95 and 0.0 < v[4] < 0.9 and 0.0 < v[7] < 1.0   # rms, centroid, tempo
    drawn = render_track("Rock", 3, seed=1, seconds=0.05)[1]["bpm"]     # the song's tempo
    assert 60 + 140 * v[7] == pytest.approx(drawn, rel=0.04)
    probs = genre_probabilities(path, classifier_run)
    g = track_features(path, genre_probabilities=probs)
    assert g[13:13 + len(probs)].sum() == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_array_equal(g[:13], v[:13])


def test_preferences_neutral_then_learn_then_retrain_from_scratch():
    rng = np.random.default_rng(0)
    feats = rng.uniform(0, 1, (4, 23)).astype(np.float32)
    assert suggest(None, feats[0]) == {"gains": dict.fromkeys(STEMS, 0.0),
                                       "trained": False, "n_examples": 0}
    assert not new_model("u")(torch.from_numpy(feats)).any()      # fresh net is neutral too
    target = relative_gains({"vocals": 6, "drums": -3})
    before, model = [], None
    for k in range(4):
        model = update_on_save(model, "u", k, feats[k], target)
        model = from_bytes(to_bytes(model))                 # as the server stores it
        before.append(suggest(model, feats[0], k + 1)["gains"]["vocals"])
    assert 0 < before[0] < before[-1] and 3.0 < before[-1] < 9.0         # towards +6.75 dB
    s = suggest(model, feats[0], 4)
    assert s["trained"] and s["n_examples"] == 4 and s["gains"]["drums"] < 0
    retrained = suggest(retrain("u", feats[:2], np.stack([target, target])), feats[0], 2)
    again = suggest(retrain("u", feats[:2], np.stack([target, target])), feats[0], 2)
    assert retrained == again and retrained != s                  # from scratch: reproducible
    assert retrain("u", np.zeros((0, 23)), np.zeros((0, 4))) is None
