"""The web UI end to end in a real browser against a real `camsight run`.

An operator's first session: sign in with the one-time password the server printed,
choose a new password, upload a real clip, wait for it to be indexed, search it,
play a result at the right moment with its box drawn, draw a zone that raises an
alert, see the event, check the audit log, and sign out, on a desktop and a phone
screen. Screenshots of each page go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from camsight.web.site import STATIC
from tests.broken_model import broken_yolox
from tests.browser import SCREENSHOTS, browser
from tests.conftest import CAMSIGHT, cli_env, run_cli
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NEW_PASSWORD = "a much better passphrase"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
#: Indexing a 5-second clip takes seconds; model loading and a slow CI machine take the rest.
SLOW = 240_000


def start_run(args: list[str]) -> tuple[subprocess.Popen, str, str]:
    """``camsight run ARGS`` as a user starts it: returns the process, printed address, one-time password."""
    env = cli_env()
    env.pop("CAMSIGHT_ADMIN_PASSWORD", None)  # the first start must print a one-time password
    proc = subprocess.Popen(
        [str(CAMSIGHT), "run", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    password, address, seen = None, None, []
    while password is None or address is None:
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            proc.kill()
            pytest.fail(f"camsight run printed no address and first sign-in: {seen}")
        seen.append(line)
        if m := re.search(r"one-time password (\S+)", line):
            password = m.group(1)
        if m := re.search(r"(http://\S+?:\d+)/", line):
            address = m.group(1)
    return proc, address, password


def stop_run(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, yolox_model: Path) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("web")
    config = work / "site.yaml"
    config.write_text(f"detector: {{backend: yolox, model: {yolox_model}}}\n")
    port = free_port()
    proc, address, password = start_run(
        ["--config", str(config), "--data", str(work / "data"), "--port", str(port)]
    )
    yield {
        "url": f"http://127.0.0.1:{port}",
        "printed": address,
        "password": password,
        "proc": proc,
        "data": work / "data",
    }
    stop_run(proc)


def sign_in_first_time(page, url: str, password: str, screenshot: str | None = None) -> None:
    """The first sign-in with the printed one-time password, by keyboard, then a new password."""
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#sign-in input[name=name]")).to_be_focused()
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    expect(page.locator("#password-change")).to_be_visible()
    if screenshot:
        shot(page, screenshot)
    # The one-time password just typed is not asked for again (the page carries it to the server).
    expect(page.locator("input[name=current]")).to_have_count(0)
    page.fill("input[name=new]", NEW_PASSWORD)
    page.fill("input[name=again]", NEW_PASSWORD)
    page.click("#password-change button[type=submit]")
    # Hashing the new password takes a while on a machine busy analysing a camera.
    expect(page.locator("h1")).to_have_text("Search footage", timeout=30_000)


def watch_for_problems(page) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )
    return problems


def wait_until_playing(page) -> dict:
    """The player's video is playing, past its start, with the track's box drawn over it."""
    page.wait_for_function(
        "() => { const v = document.querySelector('dialog.player video');"
        " return v && v.readyState >= 2 && !v.paused && v.currentTime > 0; }",
        timeout=30_000,
    )
    page.wait_for_function(
        "() => document.querySelector('dialog.player canvas').dataset.box === 'shown'", timeout=30_000
    )
    playing = page.evaluate(
        "() => { const v = document.querySelector('dialog.player video');"
        " return {t: v.currentTime, d: v.duration, w: v.videoWidth}; }"
    )
    assert playing["w"] > 0 and 0 < playing["t"] <= playing["d"], playing
    return playing


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_operator_session_end_to_end(server: dict, shared_data: Path) -> None:
    from playwright.sync_api import expect

    clip = shared_data / "intel" / "one-by-one-person-detection.mp4"
    assert server["printed"].endswith(server["url"].rsplit(":", 1)[1])
    with browser() as chromium:
        # An operator in Berlin: the recording time typed in local time must reach the server as UTC.
        context = chromium.new_context(
            viewport=DESKTOP, accept_downloads=True, locale="en-GB", timezone_id="Europe/Berlin"
        )
        page = context.new_page()
        problems = watch_for_problems(page)
        page.set_default_timeout(20_000)

        # Sign in with the keyboard only, using the one-time password printed at start.
        page.goto(server["url"])
        expect(page.locator("#sign-in")).to_be_visible()
        shot(page, "01-sign-in")
        sign_in_first_time(page, server["url"], server["password"], "02-choose-password")
        expect(page.locator("nav a[data-page=audit]")).to_be_visible()

        # Upload a real clip and wait until it is indexed.
        page.click("nav a[data-page=upload]")
        page.fill("input[name=camera]", "falls")
        page.fill("#upload-recorded-at", "2026-11-20T18:00:00")
        page.set_input_files("#upload-file", str(clip))
        expect(page.locator("#search-upload")).to_be_visible(timeout=SLOW)
        expect(page.locator("#upload-status")).to_contain_text("tracks")
        expect(page.locator(".jobs li").first).to_contain_text("recorded 20/11/2026, 18:00:00")
        jobs = page.request.get(f"{server['url']}/api/v1/jobs").json()
        assert jobs["items"][0]["recorded_at"] == "2026-11-20T17:00:00+00:00"
        shot(page, "03-upload")

        # Search it: the interpretation shows as chips, results as thumbnails. The first search
        # ("person", from the upload page's link) answers only after the operator started typing:
        # its results must not take the focus from the box, so Enter still searches.
        held: list = []
        searches = re.compile(r"/api/v1/search\?")
        page.route(searches, lambda route: held.append(route))
        page.click("#search-upload")
        page.fill("input[name=q]", "person in black")
        page.wait_for_function("() => document.activeElement && document.activeElement.name === 'q'")
        assert len(held) == 1 and "q=person&" in held[0].request.url
        held[0].continue_()
        page.unroute(searches)
        expect(page.locator("#result-summary")).to_contain_text("person · camera: falls")
        page.keyboard.press("Enter")
        expect(page.locator(".result").first).to_be_visible()
        expect(page.locator(".chip.class")).to_contain_text("person")
        expect(page.locator(".chip.attribute")).to_contain_text("black")
        expect(page.locator(".result .badge.full").first).to_be_visible()
        expect(page.locator(".result").first).to_contain_text("20/11/2026, 18:0")  # when it was recorded
        shot(page, "04-search")

        # Open a result: the clip plays from where the track starts, with its box drawn.
        page.locator(".result .thumb").first.click()
        player = page.locator("dialog.player")
        expect(player).to_be_visible()
        wait_until_playing(page)
        shot(page, "05-player")
        page.keyboard.press("Escape")
        expect(player).to_have_count(0)

        # "All" means only that colour: the chip says so.
        page.fill("input[name=q]", "dressed all in black")
        page.keyboard.press("Enter")
        expect(page.locator(".chip.attribute")).to_have_text(re.compile(r"black only"))

        # Draw a zone over the camera's picture and save it.
        page.click("nav a[data-page=cameras]")
        card = page.locator(".camera-card[data-camera=falls]")
        expect(card).to_be_visible()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.camera-card img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        shot(page, "06-cameras")
        card.locator("text=Edit zones and masks").click()
        page.wait_for_function(
            "() => { const i = document.querySelector('.editor-image'); return i && i.naturalWidth > 0; }"
        )
        stage = page.locator("#editor-stage svg")
        box = stage.bounding_box()
        assert box is not None
        for fx, fy in ((0.02, 0.02), (0.98, 0.02), (0.98, 0.98), (0.02, 0.98)):
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        page.fill("input[name=shape-name]", "floor")
        page.click("#finish-shape")
        expect(page.locator(".shape-list")).to_contain_text("floor")
        shot(page, "07-zone-editor")
        page.click("#save-shapes")
        # The editor follows the re-analysis it started, to the end.
        expect(page.locator("#reanalysis")).to_contain_text("footage is re-analysed", timeout=SLOW)

        # The footage is analysed again with the zone; the intrusion event appears on its own.
        page.click("nav a[data-page=events]")
        event = page.locator(".event[data-type=zone_intrusion]").first
        expect(event).to_be_visible(timeout=SLOW)
        expect(page.locator("svg.timeline rect").first).to_be_visible()
        shot(page, "08-events")
        event.locator("button.ack").click()
        expect(event).to_contain_text("acknowledged by admin")
        # A legal hold on the event's footage, from its card; listed below the events, then released.
        event.locator("button.hold").click()
        event.locator("input[name=reason]").fill("case 118")
        event.locator("input[name=reason]").press("Enter")
        held = page.locator("#holds li.hold").first
        expect(held).to_contain_text("case 118")
        expect(held).to_contain_text("falls")
        held.locator("button.release").click()
        expect(page.locator("#no-holds")).to_be_visible()

        # Every look at footage left a trace, and the chain holds.
        page.click("nav a[data-page=audit]")
        table = page.locator("table")
        for action in (
            "login.success", "upload", "search", "clip.view", "camera.zone", "event.acknowledge",
            "hold.place", "hold.release",
        ):  # fmt: skip
            expect(table).to_contain_text(action)
        page.click("text=Verify the chain")
        expect(page.locator("#audit-verify")).to_contain_text("intact")
        shot(page, "09-audit")

        # A phone-sized screen: every page fits without sideways scrolling.
        page.set_viewport_size(PHONE)
        for name in ("search", "events", "cameras", "upload", "audit"):
            page.goto(f"{server['url']}/#/{name}")
            expect(page.locator("h1")).to_be_visible()
            page.wait_for_timeout(300)
            assert no_sideways_scroll(page), f"{name} scrolls sideways on a phone"
            shot(page, f"10-phone-{name}")

        # Sign out: the session is gone, the API refuses it, the sign-in form is back.
        page.set_viewport_size(DESKTOP)
        page.goto(f"{server['url']}/#/search")
        page.click("#sign-out")
        expect(page.locator("#sign-in")).to_be_visible()
        status = page.evaluate("async () => (await fetch('/api/v1/auth/me')).status")
        assert status == 401
        shot(page, "11-signed-out")
        assert not problems, problems
        context.close()


def test_a_viewer_sees_only_live_and_events(server: dict) -> None:
    """The role shapes the UI as well as the API: a viewer has no search, upload, clips or audit."""
    from playwright.sync_api import expect

    added = subprocess.run(
        [
            str(CAMSIGHT),
            "users",
            "add",
            "vic",
            "--role",
            "viewer",
            "--password-stdin",
            "--data",
            str(server["data"]),
        ],
        input=NEW_PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    with browser() as chromium:
        page = chromium.new_context(viewport=PHONE).new_page()
        problems = watch_for_problems(page)
        page.goto(server["url"])
        page.fill("input[name=name]", "vic")
        page.fill("input[name=password]", NEW_PASSWORD)
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text("Events")  # the first page a viewer may use
        visible = [
            n
            for n in ("search", "events", "cameras", "upload", "audit")
            if page.locator(f"nav a[data-page={n}]").is_visible()
        ]
        assert visible == ["events", "cameras"]
        for forbidden in ("search", "upload", "audit"):
            page.goto(f"{server['url']}/#/{forbidden}")
            expect(page.locator("h1")).to_have_text("Events")
        expect(page.locator("button.ack")).to_have_count(0)
        expect(page.locator("text=Play clip")).to_have_count(0)
        status = page.evaluate("async () => (await fetch('/api/v1/search?q=person')).status")
        assert status == 403
        shot(page, "12-viewer-phone")
        assert not problems, problems


def test_pages_are_served_without_anything_from_outside(server: dict) -> None:
    """No CDN: every script, style and image the UI loads comes from this server."""
    import httpx

    page = httpx.get(server["url"] + "/", timeout=10)
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    linked = re.findall(r"(?:src|href)=\"(/static/[^\"]+)\"", page.text)
    assert any(a.startswith("/static/app.js?v=") for a in linked)
    for asset in linked + [f"/static/{p.name}" for p in STATIC.iterdir()]:
        r = httpx.get(server["url"] + asset, timeout=10)
        assert r.status_code == 200, asset
        # The only absolute URL allowed is SVG's namespace name, which is never fetched.
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", r.text), asset
    # The API documentation page too (FastAPI's default loads Swagger UI from a CDN).
    docs = httpx.get(server["url"] + "/api/v1/docs", timeout=10)
    assert docs.status_code == 200
    assert not re.search(r"(src|href)=['\"](https?:)?//", docs.text)
    for asset in re.findall(r"(?:src|href)=['\"](/api/v1/docs-static/[^'\"]+)['\"]", docs.text):
        assert httpx.get(server["url"] + asset, timeout=10).status_code == 200, asset
    assert httpx.get(server["url"] + "/static/../../etc/passwd", timeout=10).status_code == 404
    assert httpx.get(server["url"] + "/static/%2e%2e/%2e%2e/etc/passwd", timeout=10).status_code == 404


def test_readme_first_command_live_camera_in_the_browser(tmp_path: Path, shared_data: Path) -> None:
    """The README's first command (a video played as a live camera, default detector and store):
    the printed address and one-time password work, the camera shows as healthy, what it saw is
    searchable, and a result plays from the recording with its box."""
    from playwright.sync_api import expect

    port = free_port()
    clip = shared_data / "pets09" / "vtest.avi"
    proc, address, password = start_run(
        ["--camera", f"lobby={clip}", "--data", str(tmp_path / "data"), "--port", str(port)]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert address == f"http://localhost:{port}"
        with browser() as chromium:
            page = chromium.new_context(viewport=DESKTOP).new_page()
            problems = watch_for_problems(page)
            page.set_default_timeout(20_000)
            sign_in_first_time(page, url, password)

            page.click("nav a[data-page=cameras]")
            card = page.locator(".camera-card[data-camera=lobby]")
            expect(card.locator(".state")).to_have_text("connected", timeout=90_000)
            expect(card.locator(".health")).to_contain_text("fps in", timeout=30_000)
            page.wait_for_function(
                "() => { const i = document.querySelector('.camera-card[data-camera=lobby] img');"
                " return i && i.complete && i.naturalWidth > 0; }",
                timeout=30_000,
            )
            shot(page, "20-live-cameras")

            # People walk through the scene all the time; their tracks are saved as they end.
            deadline = time.monotonic() + 120
            page.goto(f"{url}/#/search?q=person&camera=lobby")
            while True:
                page.wait_for_selector("#result-summary")
                if page.locator(".result").count() or time.monotonic() > deadline:
                    break
                page.wait_for_timeout(5000)
                page.reload()  # the same address again: a hash change would not search again
            expect(page.locator(".result").first).to_be_visible()
            page.locator(".result .thumb").first.click()
            wait_until_playing(page)
            shot(page, "21-live-player")
            assert not problems, problems
    finally:
        stop_run(proc)


def test_zone_editor_says_when_the_reanalysis_fails_and_retries_it(
    tmp_path: Path, yolox_model: Path, clip_factory
) -> None:
    """A zone saved while the detector model is broken: the editor says the re-analysis failed and
    why, not that it is under way; Retry, once the model is fixed, re-analyses the footage."""
    from playwright.sync_api import expect

    model = tmp_path / "detector.onnx"
    shutil.copyfile(yolox_model, model)
    config = tmp_path / "site.yaml"
    config.write_text(f"detector: {{backend: yolox, model: {model}}}\nattributes: {{pose: false}}\n")
    data = tmp_path / "data"
    clip = clip_factory(tmp_path / "desk.mp4", frames=30, fps=10, size=(320, 240))
    indexed = run_cli("index", clip, "--camera", "desk", "--config", config, "--data", data)
    assert indexed.returncode == 0, indexed.stderr
    broken_yolox(model)  # loads, then fails on every frame
    port = free_port()
    proc, _address, password = start_run(["--config", str(config), "--data", str(data), "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        with browser() as chromium:
            page = chromium.new_context(viewport=DESKTOP).new_page()
            problems = watch_for_problems(page)
            page.set_default_timeout(20_000)
            sign_in_first_time(page, url, password)
            page.goto(f"{url}/#/cameras?edit=desk")
            page.wait_for_function(
                "() => { const i = document.querySelector('.editor-image'); return i && i.naturalWidth > 0; }"
            )
            box = page.locator("#editor-stage svg").bounding_box()
            assert box is not None
            for fx, fy in ((0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9)):
                page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            page.fill("input[name=shape-name]", "desk-zone")
            page.click("#finish-shape")
            page.click("#save-shapes")

            status = page.locator("#reanalysis")
            expect(status).to_contain_text("Saved, re-analysis failed: the YOLOX model", timeout=SLOW)
            expect(status).to_contain_text("Reshape")
            expect(status).not_to_contain_text("re-analysing")
            shot(page, "30-reanalysis-failed")

            shutil.copyfile(yolox_model, model)  # the cause, fixed
            page.click("#retry-job")
            expect(status).to_contain_text("desk's footage is re-analysed", timeout=SLOW)
            expect(page.locator("#retry-job")).to_have_count(0)
            jobs = page.request.get(f"{url}/api/v1/jobs").json()["items"]
            assert jobs[0]["kind"] == "reindex" and jobs[0]["state"] == "done", jobs[0]
            assert not problems, problems
    finally:
        stop_run(proc)
