"""The mix-point planner: every candidate transition scored, the best one rendered.

Candidates come from :func:`deepaudio.crossfade.plan.candidate_plans` (A's phrase boundaries
in its last minute, B's first downbeat and next phrase boundaries). Each is scored without
rendering it, from the parts of both songs (stems and the rest, or the whole mix) at the gains
the schedule gives them:

==================  ========================================================================
part                measured as
==================  ========================================================================
roughness           Vassilakis roughness of the mixed overlap over that of the two songs
                    alone (mean of three 0.5 s excerpts at 1/4, 1/2, 3/4 of the overlap;
                    B unstretched): a ratio, 1 when mixing adds no roughness
dissonance          the same with Sethares' dissonance (min model)
loudness dip        the lowest 1 s loudness of the overlap against the mean of the two songs
                    there, in dB, from 0.4 s RMS envelopes of each part (parts taken as
                    uncorrelated)
vocal overlap       seconds in which both songs' vocals sound (each vocal stem, at its gain,
                    above 1/10 of its own loud level); needs stems of both songs
key                 the keys' compatibility score (1 same ... 0 a tritone; after any shift)
stretch             |rate - 1|, the tempo change B undergoes
skipped             seconds of A after the overlap and of B before its entry never heard
==================  ========================================================================

``score = 1 - sum(penalties)``, each penalty one part times its weight (:data:`WEIGHTS`):
roughness and dissonance count only above a ratio of 1; the dip only below 0 dB. Higher is
better; the sidecar lists every candidate with its parts and penalties.
"""

from __future__ import annotations

import typing as tp

import numpy as np

from deepaudio.crossfade.measures import transition_measures
from deepaudio.crossfade.render import window_rms
from deepaudio.crossfade.schedules import Schedule, gain_at

EXCERPT_SECONDS = 0.5
EXCERPT_AT = (0.25, 0.5, 0.75)       # positions in the overlap measured for roughness
ALONE_GRID = 0.05                    # a song alone is measured once per 50 ms of position
ENV_WINDOW, ENV_STEP = 0.4, 0.1      # RMS envelopes for the dip and the vocal overlap
VOICE_ON = 0.1                       # a vocal sounds above 1/10 (-20 dB) of its loud level
WEIGHTS = {"roughness": 1.0,         # per unit of ratio above 1
           "dissonance": 1.0,        # per unit of ratio above 1
           "loudness_dip": 1 / 6,    # per dB below 0
           "vocal_overlap": 1.0,     # per fraction of the overlap with two vocals
           "key": 0.5,               # per unit of key score below 1
           "stretch": 0.25 / 0.08,   # per unit of |rate - 1| (0.25 at the 8 % limit)
           "skipped": 0.5 / 60}      # per second of music skipped


def _envelopes(parts: dict[str, np.ndarray], sr: int) -> dict[str, np.ndarray]:
    return {k: window_rms(v, sr, window=ENV_WINDOW, step=ENV_STEP)[0] for k, v in parts.items()}


def _at(env: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Envelope values at times ``t`` (window starts at multiples of ENV_STEP: centred)."""
    i = np.round((t - ENV_WINDOW / 2) / ENV_STEP).astype(int)
    ok = (i >= 0) & (i < len(env))
    return np.where(ok, env[np.clip(i, 0, max(len(env) - 1, 0))], 0.0) if len(env) else \
        np.zeros(len(t))


def _smooth(x: np.ndarray) -> np.ndarray:
    """1 s moving mean of an envelope sampled every ENV_STEP."""
    k = max(1, int(round(1.0 / ENV_STEP)))
    if len(x) >= k:
        return np.convolve(x, np.ones(k) / k, mode="valid")
    return np.array([x.mean()]) if len(x) else np.zeros(1)


def _ratio(mixed: float, alone: tp.Sequence[float]) -> float:
    ref = float(np.mean(alone))
    return mixed / ref if ref > 0 else 1.0


def score_candidates(plans: list[dict], parts_a: dict[str, np.ndarray],
                     parts_b: dict[str, np.ndarray], sr: int, *, schedule: Schedule,
                     key_score: float | None = None,
                     vocals: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict]:
    """The candidates with ``score``, ``parts`` and ``penalties``, best first (``rank`` 0).

    ``parts_a`` / ``parts_b`` are the songs split as :func:`deepaudio.crossfade.schedules.
    split_parts` does (or ``{REST: mix}`` without stems), in the plans' coordinates;
    ``vocals`` the two songs' vocal stems, when they have them."""
    env_a, env_b = _envelopes(parts_a, sr), _envelopes(parts_b, sr)
    voc_env = {}
    if vocals is not None:
        voc_env = {"a": _envelopes({"v": vocals[0]}, sr)["v"],
                   "b": _envelopes({"v": vocals[1]}, sr)["v"]}
    n_a = next(iter(parts_a.values())).shape[1]
    n_b = next(iter(parts_b.values())).shape[1]
    voc_ref = {s: float(np.percentile(e, 95)) if len(e) else 0.0 for s, e in voc_env.items()}
    has_vocals = bool(voc_env)
    m = int(EXCERPT_SECONDS * sr)
    alone_cache: dict[tuple[str, int], tuple[float, float]] = {}

    def measure(x: np.ndarray) -> tuple[float, float]:
        found = transition_measures(x, sr, models=("min",))
        return found["roughness"], found["dissonance_min"]

    def alone(song: str, parts: dict[str, np.ndarray], i: int) -> tuple[float, float]:
        key = (song, int(round(i / (ALONE_GRID * sr))))     # nearby excerpts sound alike
        if key not in alone_cache:
            alone_cache[key] = measure(np.sum([p[:, i:i + m] for p in parts.values()], axis=0))
        return alone_cache[key]

    out = []
    for plan in plans:
        beats = int(plan["beats"])
        times = np.asarray(plan["overlap_beat_times_s"])
        rate = float(plan["stretch_rate"])
        a0, b0 = float(plan["a_downbeat_s"]), float(plan["b_downbeat_s"])
        # roughness and dissonance on excerpts
        mixed, ref_a, ref_b = [], [], []
        for frac in EXCERPT_AT:
            at = frac * beats
            ta = float(np.interp(at, np.arange(beats + 1), times))
            ia, ib = int(ta * sr), int((b0 + (ta - a0) * rate) * sr)   # B unstretched
            if ia + m > n_a or ib + m > n_b:
                continue
            x = np.zeros_like(next(iter(parts_a.values()))[:, :m])
            for song, song_parts, i in (("a", parts_a, ia), ("b", parts_b, ib)):
                for name, p in song_parts.items():
                    x += gain_at(schedule, name, song, beats, np.array([at]))[0] * p[:, i:i + m]
            mixed.append(measure(x))
            ref_a.append(alone("a", parts_a, ia))
            ref_b.append(alone("b", parts_b, ib))
        rough, diss = ((_ratio(float(np.mean([v[j] for v in mixed])),
                               [float(np.mean([v[j] for v in ref_a])),
                                float(np.mean([v[j] for v in ref_b]))]) if mixed else 1.0)
                       for j in (0, 1))
        # envelopes over the whole overlap: the dip and the vocal overlap
        t = np.arange(times[0], times[-1], ENV_STEP)
        pos = np.interp(t, times, np.arange(beats + 1))
        e_mix = np.zeros(len(t))
        e_a, e_b = np.zeros(len(t)), np.zeros(len(t))
        active = {}
        for song, env, tt in (("a", env_a, t), ("b", env_b, b0 + (t - a0) * rate)):
            for name, e in env.items():
                level = _at(e, tt)
                gains = gain_at(schedule, name, song, beats, pos)
                e_mix += (gains * level) ** 2
                if song == "a":
                    e_a += level ** 2
                else:
                    e_b += level ** 2
            if has_vocals and voc_ref[song] > 0:
                gains = gain_at(schedule, "vocals", song, beats, pos)
                active[song] = gains * _at(voc_env[song], tt) > VOICE_ON * voc_ref[song]
        ref = (_smooth(e_a) + _smooth(e_b)) / 2
        ok = ref > 0
        dip = float(np.min(10 * np.log10(np.maximum(_smooth(e_mix)[ok], 1e-20) / ref[ok]))) \
            if ok.any() else 0.0
        vocal = (float(np.sum(active["a"] & active["b"]) * ENV_STEP)
                 if has_vocals and len(active) == 2 else (0.0 if has_vocals else None))
        skipped = max(0.0, n_a / sr - float(times[-1])) + max(
            0.0, b0 - float(plan.get("b_first_downbeat_s", b0)))
        parts: dict[str, tp.Any] = {
                 "roughness_ratio": round(rough, 4), "dissonance_ratio": round(diss, 4),
                 "loudness_dip_db": round(dip, 2), "vocal_overlap_s": vocal,
                 "key_score": key_score, "stretch": round(abs(rate - 1), 4),
                 "skipped_s": round(skipped, 2)}
        overlap_s = float(times[-1] - times[0])
        penalties = {
            "roughness": WEIGHTS["roughness"] * max(0.0, rough - 1),
            "dissonance": WEIGHTS["dissonance"] * max(0.0, diss - 1),
            "loudness_dip": WEIGHTS["loudness_dip"] * max(0.0, -dip),
            "vocal_overlap": WEIGHTS["vocal_overlap"] * ((vocal or 0.0) / overlap_s),
            "key": WEIGHTS["key"] * (1 - key_score) if key_score is not None else 0.0,
            "stretch": WEIGHTS["stretch"] * abs(rate - 1),
            "skipped": WEIGHTS["skipped"] * skipped}
        penalties = {p: round(v, 4) for p, v in penalties.items()}
        out.append({"plan": plan, "score": round(1 - sum(penalties.values()), 4),
                    "parts": parts, "penalties": penalties})
    out.sort(key=lambda c: -c["score"])
    for rank, c in enumerate(out):
        c["rank"] = rank
    return out

