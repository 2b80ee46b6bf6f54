"""The search page shows one card per person with its segments, and "More like this" shows the
track it started from (a real browser on a store indexed from real footage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import browser
from tests.conftest import SHARED, cli_env, remux, run_cli
from tests.integration.test_web_browser import (
    DESKTOP,
    sign_in_first_time,
    start_run,
    stop_run,
    watch_for_problems,
)
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REID = "person-reidentification-retail-0288"
OPENVINO = SHARED / "models" / "openvino"


@pytest.fixture(scope="module")
def split(people_clip: Path, yolox_model: Path, tmp_path_factory) -> Path:
    """One person in two files of one camera (cut at 12 s): two tracks, one card."""
    if not (OPENVINO / f"{REID}.xml").is_file():
        pytest.skip(f"the re-id model is not in {OPENVINO}")
    root = tmp_path_factory.mktemp("web-card")
    env = cli_env(CAMSIGHT_MODELS=str(root / "models"))
    assert run_cli("models", "pull", REID, "--from", OPENVINO.parent, env=env).returncode == 0
    first, second = remux(people_clip, root / "a.mp4", 20.0), remux(people_clip, root / "b.mp4", 21.0)
    for clip, window in ((first, ("--end", "12")), (second, ("--start", "12.4"))):
        proc = run_cli(
            "index", clip, "--camera", "hall", *window, "--recorded-at", "2026-11-20T10:00:00",
            "--detector", "yolox", "--model", yolox_model, "--data", root / "data", env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    return root / "data"


def test_one_card_with_segments_and_the_reference_of_more_like_this(split: Path) -> None:
    from playwright.sync_api import expect

    port = free_port()
    proc, _, password = start_run(["--data", str(split), "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        with browser() as chromium:
            page = chromium.new_context(viewport=DESKTOP).new_page()
            problems = watch_for_problems(page)
            page.set_default_timeout(30_000)
            sign_in_first_time(page, url, password)
            page.goto(f"{url}/#/search?q=person")
            expect(page.locator(".result")).to_have_count(1)
            segments = page.locator(".result .segments li")
            expect(segments).to_have_count(2)
            page.locator(".result button", has_text="More like this").click()
            reference = page.locator(".reference .result")
            expect(reference).to_be_visible()
            expect(reference.locator("img")).to_have_count(1)
            expect(reference.locator(".segments li")).to_have_count(2)
            expect(page.locator("#result-summary")).to_contain_text("like track")
            assert not problems, problems
    finally:
        stop_run(proc)
