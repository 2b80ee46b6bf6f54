"""Live view end to end: `camsight run` on a real RTSP camera, the MJPEG stream over HTTP and in a browser.

The pictures are the worker's own decoded frames (no second connection to the camera), with the
privacy mask blanked; a viewer without the camera gets 403; disabling a user ends their open
stream; in Chromium the Cameras page's Live button shows a moving picture (the time from the
click to the first picture is printed, not asserted) and closing the dialog drops the stream.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from tests.browser import browser
from tests.conftest import CAMSIGHT
from tests.integration.test_web_browser import no_sideways_scroll, shot, watch_for_problems
from tests.rtsp import RtspServer, prepare_clip, require_rtsp
from tests.servers import free_port, port_open, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIRST_PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "a much better passphrase"
USER_PASSWORD = "another fine passphrase"
#: The top-left quarter of the picture is a privacy mask.
MASK = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]
PHONE = {"width": 390, "height": 844}


def sign_in(base: str, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    r = client.post("/api/v1/auth/login", json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    return client


def add_user(admin: httpx.Client, name: str, role: str, cameras: list[str]) -> None:
    """A user with their own password (the one-time one changed, as at a first sign-in)."""
    r = admin.post("/api/v1/users", json={"name": name, "role": role, "cameras": cameras})
    assert r.status_code == 201, r.text
    client = sign_in(str(admin.base_url), name, r.json()["one_time_password"])
    current = r.json()["one_time_password"]
    r = client.post("/api/v1/auth/password", json={"current": current, "new": USER_PASSWORD})
    assert r.status_code == 200, r.text


def jpeg_parts(response: httpx.Response) -> Iterator[bytes]:
    """The JPEG of each part of a ``multipart/x-mixed-replace`` answer, as they arrive."""
    buffer = b""
    for chunk in response.iter_bytes():
        buffer += chunk
        while True:
            head = re.search(rb"Content-Length: (\d+)\r\n\r\n", buffer)
            if head is None or len(buffer) < head.end() + int(head.group(1)):
                break
            end = head.end() + int(head.group(1))
            yield buffer[head.end() : end]
            buffer = buffer[end:]


def picture(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return image


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, yolox_model: Path) -> Iterator[dict]:
    require_rtsp()
    work = tmp_path_factory.mktemp("live-view")
    people = prepare_clip(shared_data / "intel" / "one-by-one-person-detection.mp4", work / "clips")
    rtsp = RtspServer({"/people": people}).start()
    config = work / "site.yaml"
    # A low analysis rate keeps this test light on a shared machine; the live view follows it.
    config.write_text(
        f"""
detector: {{backend: yolox, model: {yolox_model}}}
attributes: {{pose: false}}
cameras:
  people:
    url: {rtsp.url("/people")}
    fps: 4
    record: {{mode: "off"}}
    masks: {{corner: {{points: {MASK}}}}}
  yard: {{}}
"""
    )
    port = free_port()
    proc = subprocess.Popen(
        [str(CAMSIGHT), "run", "--config", str(config), "--data", str(work / "data"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CAMSIGHT_ADMIN_PASSWORD": FIRST_PASSWORD},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or port_open(port), 60)
        assert proc.poll() is None, "camsight run exited"
        admin = sign_in(base, "admin", FIRST_PASSWORD)
        r = admin.post("/api/v1/auth/password", json={"current": FIRST_PASSWORD, "new": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        add_user(admin, "pia", "viewer", ["people"])
        add_user(admin, "val", "viewer", ["yard"])
        yield {"url": base, "admin": admin, "proc": proc}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        rtsp.stop()


def test_the_stream_is_the_cameras_moving_masked_picture_and_access_is_checked(service: dict) -> None:
    base = service["url"]
    val = sign_in(base, "val", USER_PASSWORD)
    r = val.get("/api/v1/cameras/people/live")
    assert r.status_code == 403 and "not among your cameras" in r.json()["error"]["message"]
    assert val.get("/api/v1/cameras/yard/live").status_code == 409  # hers, but no live camera

    pia = sign_in(base, "pia", USER_PASSWORD)
    opened = time.monotonic()
    first_at = None
    with pia.stream("GET", "/api/v1/cameras/people/live") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("multipart/x-mixed-replace")
        shots: list[np.ndarray] = []
        for jpeg in jpeg_parts(response):
            if first_at is None:
                first_at = time.monotonic() - opened
            shots.append(picture(jpeg))
            if len(shots) >= 2 and not np.array_equal(shots[0], shots[-1]):
                break
            assert len(shots) < 200, "the picture never changed"
    print(f"\nlive view over HTTP: first picture {first_at:.2f} s after opening")
    first, last = shots[0], shots[-1]
    h, w = first.shape[:2]
    assert first[: h // 2 - 8, : w // 2 - 8].max() < 30  # the masked quarter is black
    assert last[h // 2 + 8 :, :].std() > 5  # the rest is a real picture
    actions = service["admin"].get("/api/v1/audit", params={"actor": "pia", "action": "live.view"}).json()
    assert [e["target"] for e in actions["items"]] == ["people"]


def test_disabling_a_user_ends_their_open_stream(service: dict) -> None:
    base, admin = service["url"], service["admin"]
    r = admin.post("/api/v1/tokens", json={"name": "wall-screen", "user": "pia"})
    assert r.status_code == 201, r.text
    viewer = httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {r.json()['secret']}"}, timeout=60
    )
    parts: list[int] = []
    ended = threading.Event()

    def watch() -> None:
        with viewer.stream("GET", "/api/v1/cameras/people/live") as response:
            assert response.status_code == 200
            for jpeg in jpeg_parts(response):
                parts.append(len(jpeg))
        ended.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    wait_for(lambda: parts, 30, step=0.1)
    assert admin.patch("/api/v1/users/pia", json={"disabled": True}).status_code == 200
    try:
        assert ended.wait(60), "the stream went on after its user was disabled"
        assert viewer.get("/api/v1/auth/me").status_code == 401
    finally:
        assert admin.patch("/api/v1/users/pia", json={"disabled": False}).status_code == 200


def open_and_close_live_view(chromium, base: str, viewport: dict, name: str) -> None:
    """pia opens the Live view of her camera, sees it move, and closes it."""
    from playwright.sync_api import expect

    context = chromium.new_context(viewport=viewport)
    page = context.new_page()
    problems = watch_for_problems(page)
    page.set_default_timeout(30_000)
    ended: list[str] = []
    live = re.compile(r"/api/v1/cameras/people/live$")
    page.on("requestfailed", lambda req: ended.append("failed") if live.search(req.url) else None)
    page.on("requestfinished", lambda req: ended.append("done") if live.search(req.url) else None)
    page.goto(base)
    page.fill("#sign-in input[name=name]", "pia")
    page.fill("#sign-in input[name=password]", USER_PASSWORD)
    page.click("#sign-in button[type=submit]")
    page.click("nav a[data-page=cameras]")
    card = page.locator('.camera-card[data-camera="people"]')
    expect(card.locator(".live-button")).to_be_visible()

    opened = time.monotonic()
    card.locator(".live-button").click()
    page.wait_for_function(
        "() => { const i = document.querySelector('dialog.live img');"
        " return i && i.complete && i.naturalWidth > 0; }",
        polling=20,
    )
    first = time.monotonic() - opened
    print(f"\nlive view in the browser ({name}): first picture {first:.2f} s after the click")
    expect(page.locator("#live-status")).to_contain_text("Live")
    img = page.locator("dialog.live img")
    before = img.screenshot()
    wait_for(lambda: img.screenshot() != before, 30, step=0.3)  # a moving picture
    assert no_sideways_scroll(page), f"the live view scrolls sideways on the {name}"
    shot(page, f"live-view-{name}")

    page.click("dialog.live button.close")
    expect(page.locator("dialog.live")).to_have_count(0)
    wait_for(lambda: ended, 30, step=0.1)  # the browser dropped the stream
    assert not problems, problems
    context.close()


def test_the_live_button_shows_a_moving_picture_and_closing_it_drops_the_stream(service: dict) -> None:
    with browser() as chromium:
        open_and_close_live_view(chromium, service["url"], {"width": 1280, "height": 860}, "desktop")
        open_and_close_live_view(chromium, service["url"], PHONE, "phone")


def test_stopping_the_server_ends_open_streams(service: dict) -> None:
    """Ctrl-C while someone watches: the stream ends and the service stops (it must not wait forever)."""
    pia = sign_in(service["url"], "pia", USER_PASSWORD)
    parts: list[int] = []
    ended = threading.Event()

    def watch() -> None:
        try:
            with pia.stream("GET", "/api/v1/cameras/people/live") as response:
                for jpeg in jpeg_parts(response):
                    parts.append(len(jpeg))
        except httpx.HTTPError:
            pass  # the server went away: ended either way
        ended.set()

    threading.Thread(target=watch, daemon=True).start()
    wait_for(lambda: parts, 30, step=0.1)
    proc = service["proc"]
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("camsight run did not stop while a live view was open")
    assert ended.wait(10)
