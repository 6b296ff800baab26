"""Uploads: sniffed, size-limited, stored under their hash, private, shared by content,
removed in one transaction; an old database's uploads migrate."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepaudio.web.db import SCHEMA, init_db


def test_upload_stores_under_hash_and_dedupes(app, client, path_of, upload, wav_bytes):
    data = wav_bytes(1.5, freq=330.0)
    r = upload(client, data, "My Song.wav")
    assert r.status_code == 201, r.json
    t = r.json
    assert t["source"] == "upload" and t["title"] == "My Song" and t["format"] == "wav"
    assert t["duration"] == pytest.approx(1.5, abs=1e-3)
    stored = path_of(app, t["id"])
    assert stored.read_bytes() == data and stored.name == f"{t['id']}.wav"
    again = upload(client, data, "other name.wav")
    assert again.json["id"] == t["id"]
    uploads = [p for p in stored.parent.iterdir()]
    assert uploads.count(stored) == 1 and not [p for p in uploads if p.suffix == ".part"]
    assert client.get(t["audio_url"]).data == data


@pytest.mark.parametrize("fmt,subtype,ext", [("FLAC", None, "flac"), ("OGG", "VORBIS", "ogg"),
                                             ("MP3", "MPEG_LAYER_III", "mp3")])
def test_upload_formats_are_sniffed(client, fmt, subtype, ext, upload, wav_bytes):
    data = wav_bytes(1.0, freq=500.0 + len(ext), fmt=fmt, subtype=subtype)
    r = upload(client, data, "no_extension")
    assert r.status_code == 201, r.json
    assert r.json["format"] == ext


@pytest.mark.parametrize("name, codec, container, fmt", [
    ("song.m4a", "aac", "ipod", "m4a"), ("song.webm", "libopus", "webm", "webm"),
    ("song.wma", "wmav2", "asf", "wma"), ("clip.mp4", "aac", "mp4", "mp4")])
def test_library_formats_upload(client, tmp_path, pyav_encode, upload, name, codec, container,
                                fmt):
    """M4A, WebM, WMA and a video's audio track: sniffed by content, decoded by FFmpeg."""
    rate = 48000 if codec == "libopus" else 44100
    t = np.arange(int(1.5 * rate)) / rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * (300 + len(name)) * t)] * 2).astype(np.float32)
    path = pyav_encode(tmp_path / name, audio, rate, codec, container=container,
                       video=name.endswith(".mp4"))
    r = upload(client, path.read_bytes(), "no_extension")
    assert r.status_code == 201, r.json
    assert r.json["format"] == fmt and r.json["duration"] == pytest.approx(1.5, abs=0.05)
    assert r.json["sample_rate"] == rate


def test_a_video_without_sound_is_refused(client, tmp_path, pyav_encode, upload):
    path = pyav_encode(tmp_path / "silent.mp4", np.zeros((2, 44100), np.float32), 44100,
                       "aac", video=True, audio_track=False)
    r = upload(client, path.read_bytes(), "silent.mp4")
    assert r.status_code == 400 and "no audio track" in r.json["error"]


def test_bad_uploads_are_rejected_and_leave_nothing(app, client, path_of, upload, wav_bytes):
    uploads = path_of(app, upload(client, wav_bytes(0.5, freq=220.0)).json["id"]).parent
    before = sorted(uploads.iterdir())
    cases = {
        "not audio": (b"hello, this is a text file" * 10, "notes.mp3", "not an audio file"),
        "empty": (b"", "empty.wav", "empty"),
        "fake header": (b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 4, "x.wav", "cannot decode"),
    }
    for what, (data, name, msg) in cases.items():
        r = upload(client, data, name)
        assert r.status_code == 400, what
        assert msg in r.json["error"], (what, r.json)
    assert client.post("/api/tracks", data={}).status_code == 400
    assert sorted(uploads.iterdir()) == before


def test_path_traversal_name_stays_inside_data(app, client, tmp_path, path_of, upload, wav_bytes):
    r = upload(client, wav_bytes(0.7, freq=660.0), "../../../../tmp/evil.wav")
    assert r.status_code == 201
    path = path_of(app, r.json["id"])
    assert path.parent == Path(app.config["DATA_DIR"]) / "uploads"
    assert r.json["title"] == "evil"
    assert not os.path.exists("/tmp/evil.wav")


def test_oversize_upload_413(sample_set, playground_models, tmp_path, make_app, upload, wav_bytes):
    app = make_app(tmp_path / "data", sample_set, playground_models, max_upload_mb=0.05)
    r = upload(app.test_client(), wav_bytes(3.0, sr=22050), "big.wav")  # ~130 kB > 52 kB
    assert r.status_code == 413 and "limit" in r.json["error"]
    assert not list((tmp_path / "data").glob("uploads/*"))


def test_uploads_are_private_to_their_user(app, upload, wav_bytes):
    alice, bob = app.test_client(), app.test_client()
    t = upload(alice, wav_bytes(0.8, freq=770.0), "alice.wav").json
    assert t["id"] in [x["id"] for x in alice.get("/api/tracks?source=mine").json["items"]]
    for source in ("all", "upload", "mine"):
        seen = bob.get(f"/api/tracks?per_page=500&source={source}").json["items"]
        assert t["id"] not in [x["id"] for x in seen], source
    assert t["id"] in [x["id"] for x in alice.get("/api/tracks?source=upload").json["items"]]


def test_the_same_upload_belongs_to_each_uploader_under_their_own_name(app, upload, wav_bytes):
    alice, bob, carol = app.test_client(), app.test_client(), app.test_client()
    song = wav_bytes(0.7, freq=330.0)
    a = upload(alice, song, "our demo.wav").json
    b = upload(bob, song, "bobs secret title.wav")
    assert b.status_code == 201 and b.json["id"] == a["id"]       # stored once
    assert b.json["title"] == "bobs secret title" and a["title"] == "our demo"
    for client, title in ((alice, "our demo"), (bob, "bobs secret title")):
        mine = client.get("/api/tracks?source=mine").json["items"]
        assert [t["title"] for t in mine if t["id"] == a["id"]] == [title]
        assert client.get(f"/api/tracks/{a['id']}").json["title"] == title
        found = client.get(f"/api/tracks?q={title.split()[0]}").json["items"]
        assert a["id"] in [t["id"] for t in found]
    assert not bob.get("/api/tracks?q=demo&source=mine").json["items"]   # not alice's name
    seen = carol.get("/api/tracks?per_page=500").json["items"]
    assert a["id"] not in [t["id"] for t in seen]
    assert len(list((Path(app.config["DATA_DIR"]) / "uploads").glob(f"{a['id']}.*"))) == 1


def test_removing_an_upload(app, path_of, upload, wav_bytes):
    """Off the remover's list; deleted with its caches only when no other uploader has it."""
    import sqlite3
    alice, bob, carol = app.test_client(), app.test_client(), app.test_client()
    song = wav_bytes(2.0, freq=415.0)
    t = upload(alice, song, "alice take.wav").json
    upload(bob, song, "bob take.wav")
    path = path_of(app, t["id"])
    timeline = f"/api/tracks/{t['id']}/features?run=sample/conv_ae&method=pca"
    assert alice.get(timeline).status_code == 200           # a cached timeline of it
    db = Path(app.config["DB_PATH"])

    def cached() -> int:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT COUNT(*) FROM timelines WHERE track_id = ?",
                               (t["id"],)).fetchone()[0]

    assert cached() >= 1
    assert carol.delete(f"/api/tracks/{t['id']}").status_code == 404     # not hers
    r = alice.delete(f"/api/tracks/{t['id']}")
    assert r.status_code == 200 and r.json == {"id": t["id"], "removed": True, "deleted": False}
    assert t["id"] not in [x["id"] for x in alice.get("/api/tracks?source=mine").json["items"]]
    assert alice.delete(f"/api/tracks/{t['id']}").status_code == 404    # already off her list
    assert bob.get(f"/api/tracks/{t['id']}").json["title"] == "bob take"
    assert bob.get(t["audio_url"]).data == song and path.is_file() and cached() >= 1
    r = bob.delete(f"/api/tracks/{t['id']}")
    assert r.status_code == 200 and r.json["deleted"] is True
    assert not path.exists() and cached() == 0
    assert not list(path.parent.glob(".removing-*"))
    assert bob.get(f"/api/tracks/{t['id']}").status_code == 404
    assert bob.get(t["audio_url"]).status_code == 404
    again = upload(bob, song, "back again.wav")                # uploading it again works
    assert again.status_code == 201 and again.json["id"] == t["id"] and path.is_file()
    first = alice.get("/api/tracks?source=fma&per_page=1").json["items"][0]
    r = alice.delete(f"/api/tracks/{first['id']}")
    assert r.status_code == 403 and "sample set" in r.json["error"]
    assert alice.delete("/api/tracks/0123456789abcdef0123").status_code == 404


def test_an_upload_being_separated_is_not_removed(app, upload, wav_bytes):
    import sqlite3
    import time
    alice = app.test_client()
    t = upload(alice, wav_bytes(0.6, freq=590.0), "busy.wav").json
    alice.get("/api/mixer/jobs")                     # the mixer's tables exist
    with sqlite3.connect(app.config["DB_PATH"]) as con:
        con.execute("INSERT INTO mixer_jobs (id, user_id, track_id, track_path, backend, model, "
                    "cache_key, state, created) VALUES ('j1', 'x', ?, 'p', 'hpss', 'm', 'k', "
                    "'running', ?)", (t["id"], time.time()))
    r = alice.delete(f"/api/tracks/{t['id']}")
    assert r.status_code == 409 and "separation" in r.json["error"]
    assert t["id"] in [x["id"] for x in alice.get("/api/tracks?source=mine").json["items"]]
    with sqlite3.connect(app.config["DB_PATH"]) as con:
        con.execute("UPDATE mixer_jobs SET state = 'done' WHERE id = 'j1'")
    assert alice.delete(f"/api/tracks/{t['id']}").json["deleted"] is True


def test_a_failed_removal_leaves_the_upload_as_it_was(app, monkeypatch, path_of, upload, wav_bytes):
    alice = app.test_client()
    song = wav_bytes(0.6, freq=610.0)
    t = upload(alice, song, "keep.wav").json
    path = path_of(app, t["id"])

    def disk_error(*_a, **_k):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", disk_error)
    assert alice.delete(f"/api/tracks/{t['id']}").status_code == 500
    monkeypatch.undo()
    assert t["id"] in [x["id"] for x in alice.get("/api/tracks?source=mine").json["items"]]
    assert alice.get(t["audio_url"]).data == song and path.is_file()


def test_uploads_of_an_old_database_stay_their_owners(tmp_path):
    import sqlite3

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.executescript(SCHEMA.split("CREATE TABLE IF NOT EXISTS uploads")[0])
    con.execute("INSERT INTO tracks (id, source, path, format, title, duration, sample_rate, "
                "channels, size, owner, added) VALUES ('abc', 'upload', 'uploads/abc.wav', "
                "'wav', 'old song', 1.0, 44100, 1, 10, 'u1', 5.0)")
    con.commit()
    con.close()
    init_db(db)
    init_db(db)                      # idempotent
    con = sqlite3.connect(db)
    assert con.execute("SELECT user_id, track_id, title FROM uploads").fetchall() == [
        ("u1", "abc", "old song")]
    assert con.execute("SELECT owner FROM tracks").fetchall() == [(None,)]   # moved, once
    con.close()


def test_truncated_and_overlong_uploads_are_refused(app, client, upload, tmp_path):
    """A truncated MP3 promises in its header more than it holds: refused, as is a file whose
    header is past the duration cap (refused before decoding: a small FLAC of an hour of
    silence would otherwise decode to gigabytes downstream)."""
    sr = 22050
    y = 0.3 * np.sin(2 * np.pi * 440 * np.arange(20 * sr) / sr)
    sf.write(tmp_path / "song.mp3", y, sr)
    data = (tmp_path / "song.mp3").read_bytes()
    r = upload(client, data[:len(data) // 3], "cut.mp3")
    assert r.status_code == 400 and "truncated" in r.json["error"], r.json
    assert "/" not in r.json["error"].replace("cut.mp3", "")             # no server paths
    with sf.SoundFile(tmp_path / "hour.flac", "w", 8000, 1, format="FLAC") as f:
        for _ in range(60):
            f.write(np.zeros(60 * 8000, np.float32))
    assert (tmp_path / "hour.flac").stat().st_size < 2 << 20
    stored = set((Path(app.config["DATA_DIR"]) / "uploads").iterdir())
    t0 = time.monotonic()
    r = upload(client, (tmp_path / "hour.flac").read_bytes(), "hour.flac")
    assert r.status_code == 413 and "60.0 min long; the limit is 20 min" in r.json["error"]
    assert time.monotonic() - t0 < 30            # refused from the header, not by decoding
    assert set((Path(app.config["DATA_DIR"]) / "uploads").iterdir()) == stored   # nothing kept


def test_the_duration_cap_is_configurable(sample_set, playground_models, tmp_path, make_app,
                                          wav_bytes, upload):
    app = make_app(tmp_path / "data", sample_set, playground_models, max_duration_minutes=0.05)
    client = app.test_client()
    assert upload(client, wav_bytes(2.0), "short.wav").status_code == 201
    r = upload(client, wav_bytes(4.0), "long.wav")
    assert r.status_code == 413 and "the limit is 0.05 min" in r.json["error"]


def test_an_m4a_and_a_webm_upload_go_through_every_pipeline(app, tmp_path, pyav_encode,
                                                            upload):
    """What a user does with a song from their library: visualize it, separate it, crossfade
    it with another (server side; the files are M4A/AAC and WebM/Opus)."""
    import time as _time
    client = app.test_client()
    ids = []
    for name, codec, container, rate, f0 in (("a.m4a", "aac", "ipod", 44100, 220.0),
                                             ("b.webm", "libopus", "webm", 48000, 330.0)):
        t = np.arange(int(8 * rate)) / rate
        beat = (np.sin(2 * np.pi * 2 * t) > 0.9).astype(np.float32)
        audio = np.stack([0.2 * np.sin(2 * np.pi * f0 * t) + 0.3 * beat
                          * np.sin(2 * np.pi * 60 * t)] * 2).astype(np.float32)
        path = pyav_encode(tmp_path / name, audio, rate, codec, container=container)
        r = upload(client, path.read_bytes(), name)
        assert r.status_code == 201, r.json
        ids.append(r.json["id"])
    features = client.get(f"/api/tracks/{ids[0]}/features?run=sample/conv_ae&method=pca")
    assert features.status_code == 200, features.json
    assert len(features.json["frames"]) > 10
    assert client.get(f"/api/tracks/{ids[1]}/genres?run=sample/classifier").status_code == 200
    fade = client.post("/api/crossfade", json={"track_a": ids[0], "track_b": ids[1],
                                               "seconds": 2.0, "context": 1.0})
    assert fade.status_code == 200, fade.json
    assert fade.json["duration"] == pytest.approx(4.0, abs=0.05)
    job = client.post("/api/mixer/jobs", json={"track_id": ids[1], "backend": "dsp"}).json
    deadline = _time.monotonic() + 120
    while job["state"] not in ("done", "failed"):
        assert _time.monotonic() < deadline, job
        _time.sleep(0.1)
        job = client.get(f"/api/mixer/jobs/{job['id']}").json
    assert job["state"] == "done", job
