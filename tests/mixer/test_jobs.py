"""A separation job as a worker runs it: where its song is on the worker's machine, the stem
cache's claims (build, wait for another job, reuse), and failures reported, never raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepaudio.mixer.jobs import JobSpec, run_job, track_ref


class Recorder:
    """A JobStatus that records what a job reports; ``claims`` scripts the stem cache."""

    def __init__(self, claims=("build",), start=True):
        self.claims, self.started, self.events = list(claims), start, []

    def start(self):
        self.events.append("start")
        return self.started

    def progress(self, fraction, stage):
        self.events.append(("progress", round(fraction, 2), stage))

    def claim(self, key):
        return self.claims.pop(0)

    def builder_progress(self, key):
        return 0.5, "separating"

    def built(self, key, manifest):
        self.events.append(("built", sorted(manifest["sources"])))

    def build_failed(self, key):
        self.events.append("build_failed")

    def done(self, cache_hit):
        self.events.append(("done", cache_hit))

    def fail(self, message, retryable):
        self.events.append(("fail", message, retryable))


def _spec(track: str, key: str = "k-dsp-dsp-v1") -> JobSpec:
    return JobSpec(id="j1", attempt=0, track_id="k", track=track, backend="dsp",
                   model="dsp-v1", cache_key=key)


def test_songs_are_named_relative_to_the_shared_folders(tmp_path):
    data, fma = tmp_path / "data", tmp_path / "fma"
    assert track_ref(data / "uploads" / "a.flac", data, fma) == "data:uploads/a.flac"
    assert track_ref(fma / "fma_small" / "000" / "1.mp3", data, fma) == "fma:fma_small/000/1.mp3"
    assert track_ref(tmp_path / "x.wav", data, None) == str(tmp_path / "x.wav")
    other = tmp_path / "elsewhere"                 # the same files mounted elsewhere
    assert _spec("data:uploads/a.flac").track_file(other, None) == other / "uploads" / "a.flac"
    assert _spec("fma:f/1.mp3").track_file(other, other / "fma") == other / "fma" / "f" / "1.mp3"


def test_a_job_builds_then_reuses_and_waits(tmp_path, song):
    data = tmp_path / "data"
    (data / "uploads").mkdir(parents=True)
    (data / "uploads" / "s.wav").write_bytes(Path(song[0]).read_bytes())
    first = Recorder(["build"])
    assert run_job(_spec("data:uploads/s.wav"), data, None, first)
    assert ("built", ["bass", "drums", "other", "vocals"]) in first.events
    assert first.events[-1] == ("done", False)
    assert (data / "mixer" / "jobs" / "j1" / "stems" / "vocals.flac").is_file()
    again = Recorder(["wait", "wait", "done"])    # another job builds them: follow, then reuse
    assert run_job(_spec("data:uploads/s.wav"), data, None, again)
    waits = [e for e in again.events if e[0] == "progress" and e[2] == "waiting: separating"]
    assert waits and waits[0][1] == pytest.approx(0.5 * 0.97, abs=0.01)
    assert again.events[-1] == ("done", True)


@pytest.mark.parametrize("track, message", [
    ("fma:f/1.mp3", "start the worker with --fma"),
    ("data:uploads/missing.wav", "missing.wav"),
])
def test_a_song_that_is_not_there_fails_the_job(tmp_path, track, message):
    status = Recorder()
    assert not run_job(_spec(track), tmp_path, None, status)
    kind, text, retryable = status.events[-1]
    assert kind == "fail" and message in text and retryable is False
    assert "build_failed" in status.events or track.startswith("fma")


def test_a_job_no_longer_queued_is_left_alone(tmp_path):
    status = Recorder(start=False)
    assert not run_job(_spec("data:uploads/x.wav"), tmp_path, None, status)
    assert status.events == ["start"]
