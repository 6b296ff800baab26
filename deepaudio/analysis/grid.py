"""The beat grid every consumer reads: beats, tempo, metre and downbeats, and which tracker
made it.

:class:`BeatGrid` is what :func:`deepaudio.analysis.beats.analyse_beats` returns, whatever the
backend (the learned tracker, or the DSP fallback with the reason). It carries the frame-wise
onset and harmony features of the analysed audio (:class:`OnsetFeatures`), which the planner
reads to find phrase boundaries (how much each bar changes) and the DSP tracker to weigh
downbeats.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from deepaudio.core.errors import ToolkitError

BEATS_PER_BAR = 4             # the bar length a grid assumes unless the tracker says otherwise


class NoBeatError(ToolkitError):
    """The audio has no steady beat to track (the message says why)."""


@dataclasses.dataclass
class OnsetFeatures:
    """Frame-wise features of the analysed audio at ``fps`` frames per second; frame 0 is at
    song time ``start``."""
    fps: float
    env: np.ndarray = dataclasses.field(repr=False)        # onset strength (log-mel flux)
    low_env: np.ndarray = dataclasses.field(repr=False)    # the same below 200 Hz (kicks)
    chroma: np.ndarray = dataclasses.field(repr=False)     # (12, frames) pitch-class energy
    start: float = 0.0

    def frames(self, times: np.ndarray) -> np.ndarray:
        """The frame index of each song time, clipped to the analysed frames."""
        f = np.round((np.asarray(times, np.float64) - self.start) * self.fps).astype(int)
        return np.clip(f, 0, len(self.env) - 1)


def tempo_of(times: np.ndarray) -> float:
    """bpm from the mean of the beat intervals within 15 % of the median: the median alone
    is quantised by the beat-time noise (a 0.3 % error drifts 25 ms over a 16-beat overlap),
    the mean of the consistent intervals averages that noise out."""
    ibi = np.diff(np.asarray(times, np.float64))
    if not len(ibi):
        return 0.0
    med = np.median(ibi)
    return float(60.0 / ibi[np.abs(ibi - med) <= 0.15 * med].mean())


@dataclasses.dataclass
class BeatGrid:
    times: np.ndarray          # beat times in seconds, in the song's coordinates
    tempo: float               # bpm, from the beat intervals (tempo_of)
    downbeat_phase: int        # beat i is a downbeat when i % beats_per_bar == downbeat_phase
    features: OnsetFeatures = dataclasses.field(repr=False)
    beats_per_bar: int = BEATS_PER_BAR
    backend: str = "dsp"       # "model" (the learned tracker) or "dsp" (the fallback)
    backend_reason: str | None = None     # why the fallback ran, when it did

    @property
    def start(self) -> float:
        return self.features.start

    @property
    def downbeats(self) -> np.ndarray:
        return self.times[self.downbeat_phase::self.beats_per_bar]

    def with_times(self, times: np.ndarray) -> BeatGrid:
        """The grid re-gridded onto ``times`` (a doubled or halved beat list): the tempo from
        the new beats, the downbeats on the new beats nearest the old ones."""
        new = np.asarray(times, dtype=np.float64)
        old = self.downbeats
        m = self.beats_per_bar
        phase = 0
        if len(old) and len(new) >= m:
            near = np.abs(new[:, None] - old[None, :]).min(axis=1)
            phase = int(np.argmin([near[p::m].mean() for p in range(m)]))
        return dataclasses.replace(self, times=new, tempo=tempo_of(new), downbeat_phase=phase)

    def to_json(self) -> dict:
        """What a client needs of the grid (times rounded to 0.1 ms)."""
        return {"bpm": round(self.tempo, 2), "beats": np.round(self.times, 4).tolist(),
                "downbeats": np.round(self.downbeats, 4).tolist(),
                "beats_per_bar": self.beats_per_bar, "backend": self.backend,
                "backend_reason": self.backend_reason}
