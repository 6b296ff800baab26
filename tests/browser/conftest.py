"""Fixtures every browser test needs (the server is ``serve`` of tests/conftest.py):
Debian's Chromium driven by Playwright with the flags that make WebGL2 render headless, and
pages that record console errors, page errors and (optionally) HTTP errors."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from deepaudio.mapping.video import CHROMIUM_ARGS

CHROMIUM = "/usr/bin/chromium"
# the video export's flags (WebGL2 on SwiftShader, headless) and audio that starts unasked
ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"   # screenshots


@contextlib.contextmanager
def _chromium(extra_args: tuple[str, ...] = ()):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS + list(extra_args))
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def _recording_page(browser, *, http_errors: bool = True, **context_options):
    """A new page whose ``errors`` list collects console errors, uncaught exceptions and,
    with ``http_errors``, every response with a status of 400 or more."""
    ctx = browser.new_context(**context_options)
    page = ctx.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(f"console.{m.type}: {m.text} ({m.location})")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(f"pageerror: {e}"))
    if http_errors:
        page.on("response", lambda r: page.errors.append(
            f"HTTP {r.status} {r.request.method} {r.url}") if r.status >= 400 else None)
    try:
        yield page
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, one per test module."""
    with _chromium() as b:
        yield b


@pytest.fixture(scope="session")
def chromium():
    """``with chromium(extra_args) as browser``: a Chromium with more flags (a fake capture
    device, say)."""
    return _chromium


@pytest.fixture(scope="session")
def recording_page():
    """``with recording_page(browser, http_errors=True, **context_options) as page``."""
    return _recording_page


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where browser tests leave their screenshots (``test-artifacts/``)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def server(sample_set, playground_models, tmp_path_factory, make_app, serve):
    """The playground on the sample set with its trained models, one per test module (the
    mixer and crossfade pages' modules define their own, without models)."""
    with serve(make_app(tmp_path_factory.mktemp("data"), sample_set, playground_models)) as url:
        yield url


@pytest.fixture(scope="module")
def song(sample_set) -> Path:
    """The sample set's first song."""
    return sorted((sample_set / "fma_small").rglob("*.mp3"))[0]
