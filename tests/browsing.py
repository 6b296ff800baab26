"""What every browser test needs: the real server (waitress) in a thread, Debian's Chromium
driven by Playwright with the flags that make WebGL2 render headless, and pages that record
console errors, page errors and (optionally) HTTP errors for the test to assert on."""

from __future__ import annotations

import contextlib
import threading

from playwright.sync_api import sync_playwright

from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-gpu-sandbox", "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = ROOT / "test-artifacts"


@contextlib.contextmanager
def serve(app):
    """``app`` served by waitress on a free local port; yields the base URL."""
    from waitress import create_server

    import mixer_api
    srv = create_server(app, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=srv.run, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.effective_port}"
    finally:
        srv.close()
        mixer_api.shutdown(app)


@contextlib.contextmanager
def chromium():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def recording_page(browser, *, http_errors: bool = True, **context_options):
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
