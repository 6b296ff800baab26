"""The roughness and dissonance measures against values computed by hand from the published
formulas (written out below, independently of the module), on pure tones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepaudio.crossfade.measures import (
    dissonance,
    roughness,
    sethares_dissonance,
    vassilakis_pair_roughness,
)

SR = 44100
MODELS = ("min", "product")


def sethares_pair(f1, f2, a12):
    """Sethares 1993, "Local consonance and the relationship between timbre and scale", JASA
    94(3); dissmeasure.m: d = a12 (C1 e^(-b1 s |f2-f1|) + C2 e^(-b2 s |f2-f1|)),
    s = x* / (s1 fmin + s2), b1 3.51, b2 5.75, s1 0.0207, s2 18.96, x* 0.24, C1 5, C2 -5."""
    s = 0.24 / (0.0207 * min(f1, f2) + 18.96)
    df = abs(f2 - f1)
    return a12 * (5.0 * math.exp(-3.51 * s * df) - 5.0 * math.exp(-5.75 * s * df))


def vassilakis_pair(f1, a1, f2, a2):
    """Vassilakis 2005, "Auditory roughness as a means of musical expression" (SRA 2007):
    r = X^0.1 * 0.5 * Y^3.11 * Z, X = Amin Amax, Y = 2 Amin / (Amin + Amax),
    Z = e^(-b1 s df) - e^(-b2 s df), b1 3.5, b2 5.75, s = 0.24 / (0.0207 fmin + 18.96)."""
    lo, hi = min(a1, a2), max(a1, a2)
    s = 0.24 / (0.0207 * min(f1, f2) + 18.96)
    df = abs(f2 - f1)
    z = math.exp(-3.5 * s * df) - math.exp(-5.75 * s * df)
    return (lo * hi) ** 0.1 * 0.5 * (2 * lo / (lo + hi)) ** 3.11 * z


def peak_spacing(fmin, b1, b2):
    """d/ddf (e^(-b1 s df) - e^(-b2 s df)) = 0  <=>  df* = ln(b2 / b1) / (s (b2 - b1))."""
    return math.log(b2 / b1) / (0.24 / (0.0207 * fmin + 18.96) * (b2 - b1))


def zwicker_cb(f):
    """Critical bandwidth, Zwicker & Terhardt 1980 (JASA 68(5) 1523):
    25 + 75 (1 + 1.4 (f / kHz)^2)^0.69 Hz."""
    return 25 + 75 * (1 + 1.4 * (f / 1000) ** 2) ** 0.69


def two_sines(f1, f2, a1=0.5, a2=0.5, seconds=1.0):
    t = np.arange(int(seconds * SR)) / SR
    x = a1 * np.sin(2 * np.pi * f1 * t) + a2 * np.sin(2 * np.pi * f2 * t)
    return x.astype(np.float32)[None]


# --- Sethares -----------------------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("f", [100.0, 440.0, 1000.0])
def test_sethares_unison_is_zero(f, model):
    assert sethares_dissonance([f, f], [1.0, 0.3], model=model) == pytest.approx(0, abs=1e-15)


@pytest.mark.parametrize("f1,a1,f2,a2", [(440, 0.5, 466.16, 1.0), (440, 1.0, 660, 1.0),
                                         (230, 0.8, 200, 0.3), (1000, 1.0, 1040, 0.25)])
def test_sethares_pair_values(f1, a1, f2, a2):
    for model, a12 in (("min", min(a1, a2)), ("product", a1 * a2)):
        want = sethares_pair(f1, f2, a12)
        assert sethares_dissonance([f1, f2], [a1, a2], model=model) == pytest.approx(want, 1e-12)
        assert sethares_dissonance([f2, f1], [a2, a1], model=model) == pytest.approx(want, 1e-12)
    # a hand-worked anchor: 440 / 660 Hz, s = 0.24 / 28.068, 5 (e^-6.6027 - e^-10.8164)
    if (f1, f2) == (440, 660):
        assert sethares_dissonance([f1, f2], [a1, a2]) == pytest.approx(0.006682, abs=2e-6)


@pytest.mark.parametrize("f0", [200.0, 440.0, 1000.0])
def test_sethares_maximum_near_quarter_critical_band(f0):
    step = 0.01
    dfs = np.arange(step, 150, step)
    curve = np.array([sethares_dissonance([f0, f0 + d], [1.0, 1.0]) for d in dfs])
    found, want = dfs[curve.argmax()], peak_spacing(f0, 3.51, 5.75)
    assert found == pytest.approx(want, abs=step)
    # height at df*: 5 (r^(b1/(b2-b1)) - r^(b2/(b2-b1))), r = b1/b2: 0.8988, whatever f0
    r = 3.51 / 5.75
    assert curve.max() == pytest.approx(5 * (r ** (3.51 / 2.24) - r ** (5.75 / 2.24)), 1e-8)
    assert curve.max() == pytest.approx(0.8988, abs=1e-4)
    # Plomp & Levelt 1965 (JASA 38, 548): maximal dissonance at about 1/4 of the critical
    # bandwidth, which Sethares' s1, s2, x* were fitted to. Zwicker's CB/4 is 25.7, 28.4 and
    # 40.6 Hz here, df* 21.2, 25.8 and 36.4 Hz: ratios 0.82..0.91; allow a factor of 1.3.
    assert 1 / 1.3 < found / (zwicker_cb(f0) / 4) < 1.3


def test_sethares_sum_over_three_partials():
    f, a = [660.0, 440.0, 550.0], [0.3, 1.0, 0.6]
    for model, a12 in (("min", min), ("product", lambda x, y: x * y)):
        want = sum(sethares_pair(f[i], f[j], a12(a[i], a[j])) for i, j in ((0, 1), (0, 2), (1, 2)))
        assert sethares_dissonance(f, a, model=model) == pytest.approx(want, 1e-12)
    # by hand: 0.3*5(e^-6.603 - e^-10.82) + 0.3*5(e^-3.054 - e^-5.003) + 0.6*5(e^-3.302 - e^-5.409)
    assert sethares_dissonance(f, a) == pytest.approx(0.15976, abs=1e-5)


# --- Vassilakis ---------------------------------------------------------------------------

@pytest.mark.parametrize("a1,a2", [(0.5, 0.5), (1.0, 0.25)])
@pytest.mark.parametrize("df", [5.0, 20.0, 33.0, 60.0, 200.0])
def test_vassilakis_pair_values(df, a1, a2):
    got = vassilakis_pair_roughness(440.0, a1, 440.0 + df, a2)
    assert float(got) == pytest.approx(vassilakis_pair(440.0, a1, 440.0 + df, a2), 1e-12)


def test_vassilakis_unison_zero_and_symmetry():
    assert float(vassilakis_pair_roughness(440, 0.7, 440, 0.2)) == pytest.approx(0, abs=1e-15)
    r = float(vassilakis_pair_roughness(440, 0.7, 470, 0.2))
    assert r > 0
    assert float(vassilakis_pair_roughness(470, 0.2, 440, 0.7)) == pytest.approx(r, 1e-14)
    # A_min / A_max are the smaller / larger amplitude, not tied to the lower frequency
    assert float(vassilakis_pair_roughness(440, 0.2, 470, 0.7)) == pytest.approx(r, 1e-14)


def test_vassilakis_amplitude_dependence():
    full = float(vassilakis_pair_roughness(440, 0.8, 470, 0.8))
    half = float(vassilakis_pair_roughness(440, 0.4, 470, 0.4))
    # both halved: X -> X/4, Y = 2 Amin/(Amin+Amax) unchanged, Z unchanged => x 0.25^0.1
    assert half / full == pytest.approx(0.25 ** 0.1, 1e-12)
    assert half / full == pytest.approx(0.870551, abs=1e-6)
    # one halved: X -> X/2, Y 1 -> 2/3 => x 0.5^0.1 (2/3)^3.11
    one = float(vassilakis_pair_roughness(440, 0.8, 470, 0.4))
    assert one / full == pytest.approx(0.5 ** 0.1 * (2 / 3) ** 3.11, 1e-12)
    assert float(vassilakis_pair_roughness(440, 0.8, 470, 0.0)) == 0


@pytest.mark.parametrize("f0", [200.0, 440.0, 1000.0])
def test_vassilakis_maximum_where_dz_vanishes(f0):
    step = 0.01
    dfs = np.arange(step, 150, step)
    curve = vassilakis_pair_roughness(f0, 1.0, f0 + dfs, 1.0)
    want = peak_spacing(f0, 3.5, 5.75)
    assert dfs[curve.argmax()] == pytest.approx(want, abs=step)

    def r(df):
        return float(vassilakis_pair_roughness(f0, 1.0, f0 + df, 1.0))

    h = 1e-3  # central difference of the implementation at the hand df*: dZ/ddf = 0
    assert abs(r(want + h) - r(want - h)) / (2 * h) < 1e-8
    assert r(want) > max(r(want - 1), r(want + 1))


# --- on audio -----------------------------------------------------------------------------

def test_roughness_of_two_sines():
    single = roughness(two_sines(440, 440, 1.0, 0.0), SR)["roughness"]
    close = roughness(two_sines(440, 470), SR)["roughness"]
    far = roughness(two_sines(440, 640), SR)["roughness"]
    assert single == 0  # one spectral peak per frame: no pair, no roughness
    assert close > 20 * far > 0
    # close is 0.209, 25 % under its hand value 0.279: 30 Hz is inside the 50 ms Hamming main
    # lobe, so every 4th frame finds one peak (see the unresolved dissonance test below)
    assert far == pytest.approx(0.00378, rel=0.05)


@pytest.mark.parametrize("df", [60.0, 100.0, 200.0])
def test_roughness_matches_hand_value_for_resolved_sines(df):
    # raw FFT magnitude of a sine of amplitude a in a 50 ms Hamming frame: a * sum(w) / 2,
    # after the audio is peak-normalised
    x = two_sines(440, 440 + df)
    amp = 0.5 / np.abs(x).max() * np.hamming(int(0.05 * SR)).sum() / 2
    want = vassilakis_pair(440, amp, 440 + df, amp)
    assert roughness(x, SR)["roughness"] == pytest.approx(want, rel=0.02)


@pytest.mark.parametrize("f0,df,a1,a2", [(440, 60, 0.5, 0.5), (440, 100, 0.5, 0.5),
                                         (440, 200, 0.5, 0.5), (440, 100, 0.6, 0.3),
                                         (1000, 150, 0.3, 0.6), (200, 60, 0.4, 0.4)])
def test_dissonance_matches_hand_sethares(f0, df, a1, a2):
    # measured: within 1.4 % for these (worst 440 + 200 Hz, product); 2 % allowed
    got = dissonance(two_sines(f0, f0 + df, a1, a2), SR)
    assert got["dissonance_min"] == pytest.approx(sethares_pair(f0, f0 + df, min(a1, a2)), 0.02)
    assert got["dissonance_product"] == pytest.approx(sethares_pair(f0, f0 + df, a1 * a2), 0.02)


@pytest.mark.parametrize("df", [20.0, 30.0])
def test_dissonance_of_unresolved_sines_reads_low(df):
    """A documented limit, not a tolerance: 50 ms Hamming frames (main lobe +-40 Hz), as the
    timbral scale needs, do not resolve sines less than ~36 Hz apart, so some frames find one
    peak and the pair reads 19-65 % low there. Resolving them would need longer frames, which
    would change the timbral scale's calibration."""
    got = dissonance(two_sines(440, 440 + df), SR)["dissonance_min"]
    assert 0 < got < 0.9 * sethares_pair(440, 440 + df, 0.5)
