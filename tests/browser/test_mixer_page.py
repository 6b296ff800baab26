"""The stem mixer page in a real browser: Debian's Chromium driven by Playwright, against the
real server (waitress) with the DSP separator on the 6 s sample-set tracks.

The mix is heard through the page's own Web Audio graph, so the assertions read the actual
GainNode / StereoPannerNode values through ``window.__mixer`` and check that slider moves never
reach the server. A screenshot goes to ``test-artifacts/mixer.png``.
"""

from __future__ import annotations

import json
import re
import time

import pytest

MINUS_12_DB = 10 ** (-12 / 20)


@pytest.fixture(scope="module")
def server(sample_set, tmp_path_factory, make_app, serve):
    app = make_app(tmp_path_factory.mktemp("data"), sample_set,
                   tmp_path_factory.mktemp("no_models"), mixer_backend="dsp")
    with serve(app) as url:
        yield url


@pytest.fixture
def page(browser, recording_page):
    with recording_page(browser, viewport={"width": 1280, "height": 860},
                        accept_downloads=True) as pg:
        yield pg


def snap(page) -> dict:
    return page.evaluate("() => window.__mixer.snapshot()")


def move_and_wait(page, selector: str, value: float, ms: int = 100) -> dict:
    """Move a slider like a user (value + input event), wait `ms`, read the audio graph."""
    return page.evaluate("""async ([sel, v, ms]) => {
        const el = document.querySelector(sel);
        el.value = String(v);
        el.dispatchEvent(new Event('input', { bubbles: true }));
        await new Promise((r) => setTimeout(r, ms));
        return window.__mixer.snapshot(); }""", [selector, value, ms])


def _rounded(v):
    if isinstance(v, float):
        return round(v, 4)
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    return v


def settled(page, ms: int = 100, timeout: float = 5.0) -> dict:
    """The snapshot once the Web Audio node values stop moving (gain ramps done): on a busy
    machine the audio thread runs late, and the test waits for it rather than failing."""
    page.wait_for_timeout(ms)
    deadline = time.time() + timeout
    last = None
    while True:
        s = snap(page)
        now = _rounded(s["nodes"])
        if now == last or time.time() > deadline:
            return s
        last = now
        page.wait_for_timeout(50)


def click_and_wait(page, selector: str, ms: int = 100) -> dict:
    page.click(selector)
    return settled(page, ms)


def strip(stem: str) -> str:
    return f'#strips .strip[data-stem="{stem}"]'


def test_separate_mix_export_save_and_reopen(page, server, artifacts):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))

    page.goto(f"{server}/mixer.html")
    page.wait_for_selector("#track-list li")
    assert page.is_disabled("#play") and page.is_disabled("#export") and page.is_disabled("#save")
    page.locator("#track-list li").first.click()
    page.evaluate("""() => {   // every value the progress bar shows
        const bar = document.querySelector('#job-card .progress');
        window.__seen = [];
        new MutationObserver(() => window.__seen.push(Number(bar.getAttribute('aria-valuenow'))))
            .observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] }); }""")
    page.click("#separate")

    # progress: the bar runs to done, then polling stops
    page.wait_for_function("() => document.getElementById('job-card').dataset.state === 'done'",
                           timeout=120000)
    job_id = snap(page)["jobId"]
    assert re.fullmatch(r"[0-9a-f]{16}", job_id)
    assert page.evaluate("() => parseFloat(document.getElementById('job-bar').style.width)") == 100
    seen = page.evaluate("() => window.__seen")
    assert seen[-1] == 100 and any(0 < p < 100 for p in seen), seen
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    assert page.inner_text("#job-percent") == "100%"
    polls = [r for r in requests if r == f"GET {server}/api/mixer/jobs/{job_id}"]
    assert polls, "the page never polled the job"
    page.wait_for_function("() => window.__mixer.snapshot().loaded", timeout=60000)
    n_polls = len([r for r in requests if r == f"GET {server}/api/mixer/jobs/{job_id}"])
    page.wait_for_timeout(1500)
    assert len([r for r in requests if r == f"GET {server}/api/mixer/jobs/{job_id}"]) == n_polls

    # the stems: 4 strips, each preview fetched once, master gain set from the loudness
    s = snap(page)
    assert page.locator("#strips .strip").count() == 4
    assert set(s["nodeGains"]) == {"vocals", "drums", "bass", "other"}
    for stem in s["nodeGains"]:
        fetched = [r for r in requests if r.endswith(f"/api/mixer/jobs/{job_id}/stems/{stem}.ogg")]
        assert len(fetched) == 1, fetched
    assert any(r.endswith("/audio") for r in requests), "the original (for A/B) was not loaded"
    assert s["nodes"]["master"] == pytest.approx(10 ** (s["masterDb"] / 20), rel=1e-3)
    assert -24 <= s["masterDb"] <= 6
    assert not page.is_disabled("#play") and not page.is_disabled("#export")

    # suggestions: ghost ticks on every slider, never applied automatically
    page.wait_for_selector(f"{strip('vocals')} .ghost", state="visible")
    assert page.locator("#strips .ghost:visible").count() == 4
    assert "learned from 0 saved mixes" in page.inner_text("#suggest-info")
    assert snap(page)["gainsDb"] == {"vocals": 0, "drums": 0, "bass": 0, "other": 0}

    # play: the clock advances
    page.click("#play")
    page.wait_for_function("() => window.__mixer.snapshot().time > 0.5", timeout=20000)
    t1, wall = snap(page)["time"], time.monotonic()
    page.wait_for_timeout(400)
    s = snap(page)
    assert s["playing"] and 0 < s["time"] - t1 < time.monotonic() - wall + 0.3

    # vocals to -12 dB: the GainNode follows within 100 ms, without any request
    requests.clear()
    s = move_and_wait(page, f"{strip('vocals')} .gain", -12, ms=100)
    assert s["gainsDb"]["vocals"] == -12
    assert s["nodeGains"]["vocals"] == pytest.approx(MINUS_12_DB, rel=0.02)
    assert s["nodeGains"]["drums"] == pytest.approx(1.0, rel=1e-3)
    assert page.inner_text(f"{strip('vocals')} .gain-out") == "−12.0 dB"
    s = move_and_wait(page, f"{strip('bass')} .pan", -0.5, ms=100)
    assert s["nodePans"]["bass"] == pytest.approx(-0.5, abs=0.01)
    assert page.inner_text(f"{strip('bass')} .pan-out") == "L50"
    assert requests == [], f"slider moves reached the server: {requests}"

    # mute, multi-solo (both are gain 0 on the silent stems), keyboard mute
    s = click_and_wait(page, f"{strip('drums')} .mute")
    assert s["mutes"] == ["drums"] and s["nodeGains"]["drums"] == pytest.approx(0, abs=1e-3)
    assert s["nodeGains"]["other"] == pytest.approx(1.0, rel=1e-3)
    s = click_and_wait(page, f"{strip('drums')} .mute")
    assert s["nodeGains"]["drums"] == pytest.approx(1.0, rel=1e-2)
    page.click(f"{strip('vocals')} .solo")
    s = click_and_wait(page, f"{strip('bass')} .solo")
    assert s["solos"] == ["vocals", "bass"]
    g = s["nodeGains"]
    assert g["drums"] == pytest.approx(0, abs=1e-3) and g["other"] == pytest.approx(0, abs=1e-3)
    assert g["vocals"] == pytest.approx(MINUS_12_DB, rel=0.02)
    assert g["bass"] == pytest.approx(1, rel=0.01)
    page.click(f"{strip('vocals')} .solo")
    s = click_and_wait(page, f"{strip('bass')} .solo")
    assert s["solos"] == [] and s["nodeGains"]["other"] == pytest.approx(1.0, rel=1e-2)
    page.locator("body").press("4")       # key 4 mutes the fourth stem (other)
    s = settled(page)
    assert s["mutes"] == ["other"] and s["nodeGains"]["other"] == pytest.approx(0, abs=1e-3)
    page.locator("body").press("4")
    assert requests == [], f"mixing reached the server: {requests}"

    # A/B: the original plays at the same position, switching only moves two bus gains
    # (the 6 s track may have ended during the mixing above on a busy machine: from the start)
    page.fill("#seek", "0")
    if not snap(page)["playing"]:
        page.click("#play")
    page.wait_for_function("() => { const s = window.__mixer.snapshot();"
                           " return s.playing && s.time < 2; }")
    t_before, wall = snap(page)["time"], time.monotonic()
    s = click_and_wait(page, "#ab-original")
    assert s["ab"] == "original" and s["playing"]
    assert s["nodes"]["mixBus"] == pytest.approx(0, abs=1e-3)
    assert s["nodes"]["originalBus"] == pytest.approx(1, abs=1e-3)
    # playback went on from where it was: no more audio time passed than wall time
    assert 0 <= s["time"] - t_before < time.monotonic() - wall + 0.3
    s = click_and_wait(page, "#ab-mix")
    assert s["nodes"]["mixBus"] == pytest.approx(1, abs=1e-3) and s["ab"] == "mix"

    # seek recreates the sources at the new offset
    # (the 6 s track may have ended during the waits above on a busy machine: play it again)
    if not snap(page)["playing"]:
        page.click("#play")
        page.wait_for_function("() => window.__mixer.snapshot().playing")
    wall = time.monotonic()
    page.fill("#seek", "3")
    page.wait_for_timeout(150)
    s = snap(page)
    assert s["playing"] and 3.0 <= s["time"] < 3.0 + time.monotonic() - wall + 0.3

    # export a FLAC: the server renders the same settings; the file downloads
    page.select_option("#format", "flac")
    assert page.input_value("#normalize") == "lufs"
    with page.expect_response(lambda r: r.url.endswith(f"/jobs/{job_id}/mix")) as resp_info, \
            page.expect_download() as dl_info:
        page.click("#export")
    resp = resp_info.value
    assert resp.status == 200
    sent = json.loads(resp.request.post_data)
    assert sent["gains"]["vocals"] == -12 and sent["pans"]["bass"] == -0.5
    assert sent["format"] == "flac" and sent["normalize"] == "lufs" and sent["mutes"] == []
    report = json.loads(resp.headers["x-mix-report"])
    assert report["normalize"] == "lufs"
    download = dl_info.value
    assert download.suggested_filename.endswith(".flac")
    data = open(download.path(), "rb").read()
    assert len(data) > 10000 and data[:4] == b"fLaC"
    page.wait_for_function("() => document.getElementById('export-report').textContent"
                           ".includes('LUFS')")

    # save the mix: it is listed, and the suggestion model has learned from it
    page.fill("#mix-name", "quiet vocals")
    page.click("#save")
    page.wait_for_selector("#mix-list li:has-text('quiet vocals')")
    page.wait_for_function("() => document.getElementById('suggest-info').textContent"
                           ".includes('learned from 1 saved mix')")
    mix_id = page.get_attribute("#mix-list li", "data-id")

    page.fill("#seek", "1.5")
    if not snap(page)["playing"]:
        page.click("#play")
    page.wait_for_function("() => window.__mixer.snapshot().time > 2")
    loudest = {}
    for _ in range(8):      # every stem's signal flows through its channel (meters, after gain)
        for stem, db in page.evaluate("() => window.__mixer.engine.levels()").items():
            loudest[stem] = max(loudest.get(stem, -200), db)
        page.wait_for_timeout(120)
    assert min(loudest.values()) > -60, loudest
    page.screenshot(path=str(artifacts / "mixer.png"))
    assert page.errors == [], "\n".join(page.errors)

    # reload with a clean address, then open the mix from the list: its stems and settings
    page.goto(f"{server}/mixer.html")
    page.wait_for_selector(f"#mix-list li[data-id='{mix_id}']")
    assert not snap(page)["loaded"]
    page.click(f"#mix-list li[data-id='{mix_id}'] .open")
    page.wait_for_function("() => window.__mixer.snapshot().loaded", timeout=60000)
    page.wait_for_timeout(100)
    s = snap(page)
    assert s["jobId"] == job_id and s["mixId"] == mix_id
    assert s["gainsDb"] == {"vocals": -12, "drums": 0, "bass": 0, "other": 0}
    assert page.input_value(f"{strip('vocals')} .gain") == "-12"
    assert page.input_value(f"{strip('bass')} .pan") == "-0.5"
    assert page.inner_text(f"{strip('vocals')} .gain-out") == "−12.0 dB"
    assert page.input_value("#format") == "flac"
    assert s["nodeGains"]["vocals"] == pytest.approx(MINUS_12_DB, rel=0.02)
    page.wait_for_selector(f"{strip('vocals')} .ghost", state="visible")

    # reset and the suggestion button change the sliders, and only when asked
    page.click("#reset")
    assert snap(page)["gainsDb"] == {"vocals": 0, "drums": 0, "bass": 0, "other": 0}
    page.click("#apply-suggestion")
    s = snap(page)
    ghosts = page.eval_on_selector_all("#strips .ghost", "gs => gs.map(g => Number(g.dataset.db))")
    assert [s["gainsDb"][k] for k in ("vocals", "drums", "bass", "other")] == pytest.approx(
        [round(2 * g) / 2 for g in ghosts], abs=1e-6)

    # delete it
    page.click(f"#mix-list li[data-id='{mix_id}'] .delete")
    page.wait_for_selector(f"#mix-list li[data-id='{mix_id}']", state="detached")
    assert page.errors == [], "\n".join(page.errors)


def test_errors_show_in_the_status_line(page, server):
    page.goto(f"{server}/mixer.html?job=0123456789abcdef")
    page.wait_for_function("() => document.getElementById('status').textContent"
                           ".includes('unknown job')")
    assert "error" in page.get_attribute("#status", "class")
    assert page.is_disabled("#play")
    page.goto(f"{server}/mixer.html?mix=0123456789abcdef")
    page.wait_for_function("() => document.getElementById('status').textContent"
                           ".includes('unknown mix')")
    assert "mix=" not in page.url
    # JS-side console errors are what the page must never produce; the 404 responses
    # themselves are logged by Chromium as resource errors, which are expected here
    assert [e for e in page.errors if "404" not in e] == []


def wait_done(page, server, job_id: str, timeout: float = 120.0) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        job = page.request.get(f"{server}/api/mixer/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_failed_job_shows_message_and_retries(page, server):
    page.goto(f"{server}/mixer.html")
    page.wait_for_selector("#track-list li")
    track_id = page.get_attribute("#track-list li:nth-child(2)", "data-id")
    job = page.request.post(f"{server}/api/mixer/jobs", data={"track_id": track_id}).json()
    job = wait_done(page, server, job["id"])
    assert job["state"] == "done"
    # the server says the job failed (as after a restart) until the page asks for a retry
    failed = {k: v for k, v in job.items() if k not in ("stems", "mix_lufs")}
    failed.update(state="failed", progress=0.4, stage="separating", retryable=True,
                  message="interrupted by a server restart")
    seen = {"failed": True, "retries": 0}

    def job_route(route):
        if seen["failed"]:
            route.fulfill(status=200, json=failed)
        else:
            route.continue_()

    def retry_route(route):
        seen["failed"] = False
        seen["retries"] += 1
        route.fulfill(status=202, json=dict(failed, state="queued", progress=0, message="",
                                            retryable=False))

    page.route(f"**/api/mixer/jobs/{job['id']}", job_route)
    page.route(f"**/api/mixer/jobs/{job['id']}/retry", retry_route)
    page.goto(f"{server}/mixer.html?job={job['id']}")
    page.wait_for_selector("#retry:visible")
    assert page.get_attribute("#job-card", "data-state") == "failed"
    assert "interrupted by a server restart" in page.inner_text("#job-detail")
    assert "interrupted by a server restart" in page.inner_text("#status")
    assert "error" in page.get_attribute("#status", "class")
    assert page.is_disabled("#play")
    page.click("#retry")
    page.wait_for_function("() => window.__mixer.snapshot().loaded", timeout=60000)
    assert seen["retries"] == 1 and snap(page)["jobId"] == job["id"]
    assert page.get_attribute("#job-card", "data-state") == "done"
    assert page.is_hidden("#retry")
    assert page.errors == [], "\n".join(page.errors)


@pytest.mark.parametrize("ext", ["wav", "m4a"])
def test_upload_separates_the_song(page, server, tmp_path, pyav_encode, ext):
    import numpy as np
    import soundfile as sf
    sr = 44100
    t = np.arange(int(4.0 * sr)) / sr
    song = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sign(np.sin(2 * np.pi * 2 * t))
    path = tmp_path / f"My song.{ext}"
    if ext == "wav":
        sf.write(path, np.stack([song, song], 1), sr)
    else:                                   # AAC in M4A, as a music library holds it
        pyav_encode(path, np.stack([song, song]).astype(np.float32), sr, "aac",
                    container="ipod")
    page.goto(f"{server}/mixer.html")
    page.wait_for_selector("#track-list li")
    page.set_input_files("#upload", str(path))
    page.wait_for_function("() => window.__mixer.snapshot().loaded", timeout=120000)
    assert "My song" in page.inner_text("#current-track")
    assert "My song" in page.inner_text("#job-title")
    s = snap(page)
    assert s["duration"] == pytest.approx(4.0, abs=0.05)
    assert page.locator("#strips .strip").count() == 4
    assert page.errors == [], "\n".join(page.errors)


def test_six_stems_give_six_strips(browser, recording_page, sample_set, tmp_path, make_app,
                                   serve, make_demucs_repo, artifacts):
    """A six-stem model (htdemucs_6s's stem set): the page shows and mixes six strips."""
    six = ("drums", "bass", "other", "vocals", "guitar", "piano")
    repo = make_demucs_repo(tmp_path / "repo", name="tiny6", sources=six)
    app = make_app(tmp_path / "data", sample_set, tmp_path / "models", demucs_repo=str(repo),
                   demucs_model="tiny6", mixer_backend="demucs")
    with serve(app) as url, recording_page(browser, viewport={"width": 1280,
                                                               "height": 900}) as page:
        page.goto(f"{url}/mixer.html")
        page.wait_for_selector("#track-list li")
        page.locator("#track-list li").first.click()
        page.click("#separate")
        page.wait_for_function("() => window.__mixer.snapshot().loaded", timeout=120000)
        assert page.locator("#strips .strip").count() == 6
        for stem in six:
            assert page.is_visible(strip(stem))
        page.click("#play")
        page.wait_for_function("() => window.__mixer.snapshot().time > 0.3", timeout=20000)
        page.screenshot(path=str(artifacts / "mixer-six-stems.png"))
        assert page.errors == [], "\n".join(page.errors)
