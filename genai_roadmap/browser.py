"""Headless Chromium for the course's browser tests (the website's screenshots, JupyterLab end to end).

    from genai_roadmap.browser import chromium
    with chromium() as context:
        page = context.new_page()
        page.goto("file:///.../_site/index.html")

Playwright drives Debian's own Chromium (`apt-get install chromium`); nothing downloads a browser build.
Every page is kept offline: a request to anything but this machine (file://, 127.0.0.1, localhost) is aborted,
so a page that would need the internet shows it instead of hanging, and the closed network is not flooded.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"  # Debian's; GENAI_ROADMAP_CHROMIUM overrides it
# As root Chromium needs --no-sandbox; the rest stop its background traffic (updates, sync, QUIC probes) and GPU.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")
REQUIRE_ENV = "GENAI_ROADMAP_REQUIRE_BROWSER"  # CI sets it to 1: a missing browser then fails the tests


class ChromiumNotFound(FileNotFoundError):
    """No Chromium to drive; the message says how to install it."""


def chromium_path() -> Path:
    """The Chromium executable, or ChromiumNotFound naming the install command."""
    path = os.environ.get("GENAI_ROADMAP_CHROMIUM", CHROMIUM)
    found = shutil.which(path)
    if not found:
        raise ChromiumNotFound(f"no Chromium at {path}: install Debian's with `sudo apt-get install chromium` "
                               "(or point GENAI_ROADMAP_CHROMIUM at a Chromium executable); the browser tests never "
                               "download one")
    return Path(found)


def browser_required() -> bool:
    """Whether a missing Chromium is a failure (CI) rather than a reason to skip (a learner's machine)."""
    return os.environ.get(REQUIRE_ENV) == "1"


def missing() -> str | None:
    """Why the browser tests cannot run here (no Chromium, no playwright), or None when they can."""
    try:
        chromium_path()
    except ChromiumNotFound as e:
        return str(e)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]' (it drives the system Chromium)"
    return None


def launch_kwargs() -> dict:
    """Keyword arguments for playwright's `chromium.launch` that start the system Chromium, headless."""
    return {"executable_path": str(chromium_path()), "args": list(CHROMIUM_ARGS), "headless": True}


def _local(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("file", "data", "blob", "about") or parsed.hostname in ("127.0.0.1", "localhost")


@contextmanager
def chromium(**context_options) -> Iterator["playwright.sync_api.BrowserContext"]:  # noqa: F821 (lazy import)
    """A browser context in headless Chromium (playwright's sync API) whose pages reach only this machine.

    `context_options` go to `browser.new_context` (e.g. viewport={"width": 1280, "height": 900}). The browser and
    playwright's driver are closed on exit, also when the body raises.
    """
    from playwright.sync_api import sync_playwright

    kwargs = launch_kwargs()  # raises ChromiumNotFound before playwright starts its driver
    with sync_playwright() as p:
        browser = p.chromium.launch(**kwargs)
        try:
            context = browser.new_context(**context_options)
            context.route("**/*", lambda route: route.continue_() if _local(route.request.url) else route.abort())
            yield context
        finally:
            browser.close()
