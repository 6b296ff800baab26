import json

import numpy as np
import pandas as pd
import pytest

from deepaudio.core.audio import load_audio
from deepaudio.core.config import ConfigError
from deepaudio.data.fma import fma_audio_path, load_fma_tracks
from deepaudio.data.samples import GENRE_IDS, STEMS, render_track, write_sample_set


def test_layout_and_metadata(sample_set):
    tracks = load_fma_tracks(sample_set / "fma_metadata")
    assert len(tracks) == 24
    assert sorted(tracks[("track", "genre_top")].unique()) == sorted(GENRE_IDS)
    assert (tracks[("track", "genre_top")].value_counts() == 3).all()
    assert set(tracks[("set", "subset")]) == {"small"}
    assert set(tracks[("set", "split")]) <= {"training", "validation", "test"}
    genres = pd.read_csv(sample_set / "fma_metadata" / "genres.csv")
    assert list(genres.columns) == ["genre_id", "#tracks", "parent", "title", "top_level"]
    assert dict(zip(genres.title, genres.genre_id)) == GENRE_IDS
    for tid in tracks.index:
        p = fma_audio_path(sample_set / "fma_small", tid)
        y, sr = load_audio(p, mono=False)
        assert sr == 44100 and y.shape == (2, 6 * 44100)
        assert 0.01 < np.sqrt(np.mean(y ** 2)) and np.abs(y).max() <= 1.0


def test_stems_sum_to_the_mix(sample_set):
    tid = int(load_fma_tracks(sample_set / "fma_metadata").index[0])
    stem_dir = sample_set / "fma_stems" / f"{tid:06d}"[:3] / f"{tid:06d}"
    stems = {s: load_audio(stem_dir / f"{s}.flac", mono=False)[0] for s in STEMS}
    mix, _ = load_audio(fma_audio_path(sample_set / "fma_small", tid), mono=False)
    total = sum(stems.values())
    # the mp3 is a perceptual copy of the stem sum: waveform-faithful below 4 kHz
    f = np.fft.rfftfreq(total.shape[1], 1 / 44100)
    T, M = np.fft.rfft(total)[:, f < 4000], np.fft.rfft(mix)[:, f < 4000]
    assert 10 * np.log10(np.sum(np.abs(T) ** 2) / np.sum(np.abs(T - M) ** 2)) > 20
    assert np.corrcoef(total.ravel(), mix.ravel())[0, 1] > 0.95


def test_every_stem_is_used(sample_set):
    """Across the set each stem carries sound (single short clips may be all intro)."""
    loud = {s: 0 for s in STEMS}
    for d in (sample_set / "fma_stems").glob("*/*"):
        for s in STEMS:
            loud[s] += np.sqrt(np.mean(load_audio(d / f"{s}.flac")[0] ** 2)) > 1e-3
    assert len(list((sample_set / "fma_stems").glob("*/*"))) == 24
    assert all(n >= 8 for n in loud.values()), loud


def test_render_is_deterministic_per_seed():
    a, da = render_track("Rock", 42, seed=1, seconds=2)
    b, db = render_track("Rock", 42, seed=1, seconds=2)
    c, _ = render_track("Rock", 42, seed=2, seconds=2)
    assert da == db and all(np.array_equal(a[s], b[s]) for s in STEMS)
    assert not np.array_equal(a["drums"], c["drums"])


def test_instrumental_has_silent_vocals():
    stems, _ = render_track("Instrumental", 7, seed=0, seconds=2)
    assert np.abs(stems["vocals"]).max() == 0


def test_write_is_deterministic_and_idempotent(tmp_path):
    kw = dict(tracks_per_genre=1, seconds=1.5, seed=3)
    write_sample_set(tmp_path / "a", **kw)
    write_sample_set(tmp_path / "b", **kw)
    ta = (tmp_path / "a/fma_metadata/tracks.csv").read_bytes()
    assert ta == (tmp_path / "b/fma_metadata/tracks.csv").read_bytes()
    for p in (tmp_path / "a/fma_small").rglob("*.mp3"):
        q = tmp_path / "b" / p.relative_to(tmp_path / "a")
        assert np.array_equal(load_audio(p)[0], load_audio(q)[0])
    assert write_sample_set(tmp_path / "a", **kw)["already_done"]
    with pytest.raises(ConfigError, match="--overwrite"):
        write_sample_set(tmp_path / "a", tracks_per_genre=2, seconds=1.5, seed=3)
    params = json.loads((tmp_path / "a/fma_metadata/sample_params.json").read_text())
    assert params["seed"] == 3


def test_genre_is_learnable(sample_set):
    """Simple MFCC statistics + logistic regression beat chance (1/8) by a wide margin."""
    import librosa
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    tracks = load_fma_tracks(sample_set / "fma_metadata")
    X, y = [], []
    for tid, g in tracks[("track", "genre_top")].items():
        a, sr = load_audio(fma_audio_path(sample_set / "fma_small", tid), sr=22050)
        m = librosa.feature.mfcc(y=a[0], sr=sr, n_mfcc=20)
        X.append(np.concatenate([m.mean(1), m.std(1)]))
        y.append(g)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    acc = cross_val_score(clf, np.array(X), np.array(y), cv=3).mean()
    assert acc > 0.4, acc
