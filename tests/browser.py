"""A real browser for the web UI tests: Debian's Chromium driven by Playwright.

Playwright cannot download its own browser here (no internet), so it drives the
system's ``/usr/bin/chromium`` (``apt-get install chromium``; ``scripts/setup.sh --dev``
installs it). The flags keep Chromium from calling home, which this machine's closed
network refuses.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ENV = "CAMSIGHT_CHROMIUM"
FLAGS = [
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
#: Where the test run leaves its screenshots (ignored by git).
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


def chromium_path() -> str:
    """The system Chromium, or a skip (a failure in CI, which must have it)."""
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        message = "Chromium is not installed (apt-get install chromium, or scripts/setup.sh --dev)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextmanager
def browser() -> Iterator[object]:
    """A headless Chromium (Playwright ``Browser``), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium_path(), args=FLAGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()
