"""Clip playback and export through the API, on vtest.avi indexed for real (yolox, 20 s at 5 fps)."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from camsight.api.app import create_app
from camsight.auth import audit
from camsight.auth.roles import ROLE_PERMISSIONS, Permission, Role
from camsight.config import load_config
from camsight.store.db import open_store
from tests.conftest import API_PASSWORD, YOLOX_ARGS, add_api_users, run_cli

PASSWORD = API_PASSWORD
#: A privacy mask over the top-left corner (a fifth of the width and height).
CONFIG = """
cameras:
  vtest:
    masks:
      corner: {points: [[0, 0], [0.2, 0], [0.2, 0.2], [0, 0.2]]}
    zones:
      right: {points: [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]}
    rules:
      - {type: zone_intrusion, zone: right, notify: false, min_seconds: 0.5}
"""

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, vtest: Path, vtest_short: Path, yolox_model: Path):
    """Cameras ``vtest`` (a copy of vtest.avi, first 20 s indexed) and ``gone`` (15 s, deleted later)."""
    root = tmp_path_factory.mktemp("api-clips")
    videos = root / "videos"
    videos.mkdir()
    shutil.copy(vtest, videos / "vtest.avi")
    shutil.copy(vtest_short, videos / "gone.avi")
    config = root / "camsight.yaml"
    config.write_text(CONFIG)
    data = root / "data"
    proc = run_cli(
        "index",
        videos / "vtest.avi",
        videos / "gone.avi",
        "--fps",
        "5",
        "--end",
        "20",
        *YOLOX_ARGS,
        "--data",
        data,
        "--config",
        config,
        "--recorded-at",
        "2026-11-20T10:00:00",
    )
    assert proc.returncode == 0, proc.stderr
    store = open_store(data)
    add_api_users(store, elsewhere="gone")
    yield store, load_config(config), videos
    store.close()


@pytest.fixture(scope="module")
def store(indexed):
    return indexed[0]


def login(indexed, name: str) -> TestClient:
    store, config, _videos = indexed
    client = TestClient(create_app(config, store))
    assert client.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD}).status_code == 200
    return client


def assert_error(r, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["status"] == status and body["message"]
    assert "Traceback" not in r.text and "/tmp" not in r.text and ".avi" not in r.text
    return body


def person_tracks(client: TestClient, camera: str) -> list[dict]:
    page = client.get("/api/v1/tracks", params={"camera": camera, "class": "person", "limit": 500}).json()
    return page["items"]


def a_track(client: TestClient, *, skip: int = 0) -> dict:
    """A person track of vtest that starts after 3 s and lasts at least 2 s (so the 2 s lead-in exists)."""
    found = [t for t in person_tracks(client, "vtest") if t["start"] >= 3.0 and t["end"] - t["start"] >= 2.0]
    assert len(found) > skip, found
    return found[skip]


def entries(store, action: str, key: str, value: int) -> list:
    found = audit.list_entries(store, limit=500, action=action).entries
    return [e for e in found if e.detail.get(key) == value]


def probe(data: bytes, tmp_path: Path) -> tuple[dict, list[np.ndarray]]:
    path = tmp_path / "probe.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "size": (stream.codec_context.width, stream.codec_context.height),
            "duration": float(stream.duration * stream.time_base),
        }
        images = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    return info, images


def test_track_playback_json_and_clip(indexed, store, tmp_path):
    client = login(indexed, "olga")
    track = a_track(client)
    r = client.get(f"/api/v1/tracks/{track['id']}/playback")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["track_id"] == track["id"] and body["camera"] == "vtest" and body["label"] == "person"
    assert body["clip_url"] == f"/api/v1/tracks/{track['id']}/clip"
    assert body["download_url"] == f"/api/v1/tracks/{track['id']}/clip?download=true"
    # The clip starts 2 s before the track and ends 2 s after it (vtest.avi runs 79.5 s: room enough).
    assert body["clip_start_t"] == pytest.approx(track["start"] - 2.0, abs=0.05)
    assert body["offset"] == pytest.approx(2.0, abs=0.05)
    assert body["duration"] == pytest.approx(track["end"] - track["start"] + 4.0, abs=0.15)
    assert body["end_offset"] == pytest.approx(body["offset"] + track["end"] - track["start"], abs=0.05)
    assert (body["width"], body["height"]) == (768, 576) and body["masked"] is True
    assert body["max_duration"] == 120 and body["truncated"] is False
    assert body["recorded_start"].startswith("2026-11-20T") and body["recorded_start"].endswith("+00:00")
    boxes = body["boxes"]
    assert len(boxes) == track["observations"]
    times = [b["t"] for b in boxes]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[0] == pytest.approx(body["offset"], abs=0.01)
    assert times[-1] == pytest.approx(body["end_offset"], abs=0.01)
    for b in boxes:
        x1, y1, x2, y2 = b["box"]
        assert 0.0 <= x1 <= x2 <= 1.0 and 0.0 <= y1 <= y2 <= 1.0 and (x2 - x1) * (y2 - y1) > 0

    clip = client.get(body["clip_url"])
    assert clip.status_code == 200, clip.text
    assert clip.headers["content-type"] == "video/mp4" and clip.headers["accept-ranges"] == "bytes"
    assert "content-disposition" not in clip.headers
    assert int(clip.headers["content-length"]) == len(clip.content)
    info, images = probe(clip.content, tmp_path)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["size"] == (768, 576)
    assert info["duration"] == pytest.approx(body["duration"], abs=0.15)
    assert len(images) == pytest.approx(body["duration"] * 10, abs=2)  # vtest.avi is 10 fps
    # The privacy mask (top-left fifth) is blank in every frame; the rest of the picture is not.
    for image in images:
        assert image[4:110, 4:150].max() <= 12
    assert images[0][200:, 200:].mean() > 40


def test_range_requests_serve_exact_bytes_and_are_audited_once(indexed, store):
    client = login(indexed, "olga")
    track = a_track(client, skip=1)
    url = f"/api/v1/tracks/{track['id']}/clip"
    before = len(entries(store, "clip.view", "track_id", track["id"]))
    full = client.get(url)
    assert full.status_code == 200
    data, size = full.content, len(full.content)
    assert size > 2000
    part = client.get(url, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{size}"
    assert part.headers["content-length"] == "1000" and part.content == data[100:1100]
    tail = client.get(url, headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == data[-500:]
    rest = client.get(url, headers={"Range": f"bytes={size - 10}-"})
    assert rest.status_code == 206 and rest.content == data[-10:]
    bad = client.get(url, headers={"Range": f"bytes={size + 10}-{size + 20}"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{size}"
    # A browser starts playing with "bytes=0-": that begins a viewing too.
    start = client.get(url, headers={"Range": "bytes=0-"})
    assert start.status_code == 206 and start.content == data
    views = entries(store, "clip.view", "track_id", track["id"])
    assert len(views) - before == 2  # the full request and bytes=0-, not the seeks nor the bad range
    assert views[0].actor == "olga" and views[0].target == "vtest"


def test_head_gives_size_and_ranges_without_footage_or_audit(indexed, store):
    client = login(indexed, "olga")
    track = a_track(client)
    event_id = client.get("/api/v1/events", params={"camera": "vtest"}).json()["items"][0]["id"]
    last_id = audit.list_entries(store, limit=1).entries[0].id
    for url in (f"/api/v1/tracks/{track['id']}/clip", f"/api/v1/events/{event_id}/clip"):
        head = client.head(url)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["accept-ranges"] == "bytes" and head.headers["content-type"] == "video/mp4"
        size = int(head.headers["content-length"])
        assert (
            client.head(url, params={"download": "true"})
            .headers["content-disposition"]
            .startswith("attachment;")
        )
        new = [e for e in audit.list_entries(store, limit=100).entries if e.id > last_id]
        assert new == []  # asking the size is not a viewing
        # Not from byte 0, so this check is no viewing either (the event test counts those).
        rest = client.get(url, headers={"Range": "bytes=1-"})
        assert rest.headers["content-range"] == f"bytes 1-{size - 1}/{size}"
        assert audit.list_entries(store, limit=1).entries[0].id == last_id
    # Who may not see the clip cannot ask its size either.
    assert login(indexed, "vera").head(f"/api/v1/tracks/{track['id']}/clip").status_code == 403
    assert login(indexed, "otto").head(f"/api/v1/tracks/{track['id']}/clip").status_code == 404
    anonymous = TestClient(create_app(indexed[1], store))
    assert anonymous.head(f"/api/v1/events/{event_id}/clip").status_code == 401


def test_download_is_an_attachment_and_audited_as_export(indexed, store):
    client = login(indexed, "olga")
    track = a_track(client)
    views_before = len(entries(store, "clip.view", "track_id", track["id"]))
    r = client.get(f"/api/v1/tracks/{track['id']}/clip", params={"download": "true"})
    assert r.status_code == 200, r.text
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    assert f'"camsight-vtest-track-{track["id"]}-20261120T' in disposition and disposition.endswith('.mp4"')
    assert r.content == client.get(f"/api/v1/tracks/{track['id']}/clip").content
    exports = entries(store, "export", "track_id", track["id"])
    assert len(exports) == 1 and exports[0].actor == "olga" and exports[0].target == "vtest"
    assert len(entries(store, "clip.view", "track_id", track["id"])) == views_before + 1


def test_event_playback_and_clip(indexed, store, tmp_path):
    client = login(indexed, "olga")
    events = client.get("/api/v1/events", params={"camera": "vtest"}).json()["items"]
    assert events, "the zone rule raised no event"
    event = events[0]
    r = client.get(f"/api/v1/events/{event['id']}/playback")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["event_id"] == event["id"] and body["type"] == "zone_intrusion" and body["camera"] == "vtest"
    assert body["clip_url"] == f"/api/v1/events/{event['id']}/clip"
    # The event starts at 0.6 s: its clip starts at the file's first frame, not 5 s before.
    assert body["clip_start_t"] == pytest.approx(max(0.0, event["start_t"] - 5.0), abs=0.05)
    assert body["offset"] == pytest.approx(event["start_t"] - body["clip_start_t"], abs=0.05)
    assert body["track_ids"] == sorted(event["track_ids"])
    boxes = body["boxes"]
    assert boxes and {b["track_id"] for b in boxes} <= set(event["track_ids"])
    assert [b["t"] for b in boxes] == sorted(b["t"] for b in boxes)
    assert all(0 <= v <= 1 for b in boxes for v in b["box"])
    clip = client.get(body["clip_url"])
    assert clip.status_code == 200
    info, _ = probe(clip.content, tmp_path)
    assert info["codec"] == "h264" and info["duration"] == pytest.approx(body["duration"], abs=0.15)
    views = entries(store, "clip.view", "event_id", event["id"])
    assert len(views) == 1
    download = client.get(body["download_url"])
    assert download.headers["content-disposition"].startswith("attachment;")
    assert len(entries(store, "export", "event_id", event["id"])) == 1


def test_viewers_and_other_cameras_get_nothing(indexed, store, monkeypatch):
    admin = login(indexed, "root")
    track_id = a_track(admin)["id"]
    event_id = admin.get("/api/v1/events", params={"camera": "vtest"}).json()["items"][0]["id"]
    last_id = audit.list_entries(store, limit=1).entries[0].id
    viewer = login(indexed, "vera")
    for path in (
        f"/api/v1/tracks/{track_id}/playback",
        f"/api/v1/tracks/{track_id}/clip",
        f"/api/v1/tracks/{track_id}/clip?download=true",
        f"/api/v1/events/{event_id}/playback",
        f"/api/v1/events/{event_id}/clip",
    ):
        assert_error(viewer.get(path), 403)
    # An operator limited to another camera: exactly the answer for an id that does not exist.
    otto = login(indexed, "otto")
    missing = 10**9
    for kind, real in (("tracks", track_id), ("events", event_id)):
        for suffix in ("playback", "clip", "clip?download=true"):
            hidden = assert_error(otto.get(f"/api/v1/{kind}/{real}/{suffix}"), 404)
            absent = assert_error(otto.get(f"/api/v1/{kind}/{missing}/{suffix}"), 404)
            assert hidden["message"].replace(str(real), "N") == absent["message"].replace(str(missing), "N")
    for anonymous in (TestClient(create_app(indexed[1], store)),):
        assert_error(anonymous.get(f"/api/v1/tracks/{track_id}/clip"), 401)
    # No view was recorded for any refused request (the logins are the only new entries).
    new = [e for e in audit.list_entries(store, limit=1000).entries if e.id > last_id]
    assert {e.action for e in new} <= {"login.success"}
    # A role that may view clips but not export them (none ships so; the check must hold anyway).
    monkeypatch.setitem(
        ROLE_PERMISSIONS, Role.OPERATOR, ROLE_PERMISSIONS[Role.OPERATOR] - {Permission.EXPORT}
    )
    olga = login(indexed, "olga")
    assert olga.get(f"/api/v1/tracks/{track_id}/clip").status_code == 200
    body = assert_error(olga.get(f"/api/v1/tracks/{track_id}/clip?download=true"), 403)
    assert "export" in body["message"]
    assert_error(olga.get(f"/api/v1/events/{event_id}/clip", params={"download": True}), 403)


@pytest.mark.parametrize("bad", ["0", "-1", str(2**70), "abc", "1;DROP TABLE tracks", "1.5", "%2e%2e"])
@pytest.mark.parametrize("kind", ["tracks", "events"])
@pytest.mark.parametrize("suffix", ["playback", "clip", "clip?download=true"])
def test_hostile_ids_are_4xx(indexed, kind, suffix, bad):
    client = login(indexed, "olga")
    r = client.get(f"/api/v1/{kind}/{bad}/{suffix}")
    assert 400 <= r.status_code < 500, r.text
    assert "Traceback" not in r.text


def test_hostile_download_flag_and_range_headers(indexed):
    client = login(indexed, "olga")
    track = a_track(client)
    url = f"/api/v1/tracks/{track['id']}/clip"
    assert_error(client.get(url, params={"download": "please; rm -rf /"}), 400)
    for header in ("bytes=abc-def", "items=0-10", "bytes=5-2", "bytes=" + "0-1," * 200):
        r = client.get(url, headers={"Range": header})
        assert r.status_code in (200, 206, 400, 416), (header, r.status_code)
        assert "Traceback" not in r.text
        if r.status_code >= 400:  # the API's JSON error shape, with a reason
            assert r.json()["error"]["message"], header


def test_missing_or_replaced_source_file_is_a_clear_404(indexed, store):
    client = login(indexed, "root")
    _store, _config, videos = indexed
    tracks = person_tracks(client, "gone")
    assert tracks
    track_id = tracks[0]["id"]
    (videos / "gone.avi").unlink()
    for path in (f"/api/v1/tracks/{track_id}/playback", f"/api/v1/tracks/{track_id}/clip"):
        body = assert_error(client.get(path), 404)
        assert body["message"] == (
            f"footage for track {track_id} is no longer available (the source file is missing)"
        )
    # Another file now at the same path is not this footage.
    (videos / "gone.avi").write_bytes(b"RIFF" + b"\x00" * 5000)
    body = assert_error(client.get(f"/api/v1/tracks/{track_id}/playback"), 404)
    assert body["message"].endswith("(the source file has changed since it was indexed)")
    assert entries(store, "clip.view", "track_id", track_id) == []


@pytest.fixture
def live_server(indexed):
    """The API served by a real uvicorn on 127.0.0.1 (a browser needs a real HTTP server)."""
    import threading

    import uvicorn

    from tests.servers import free_port

    store, config, _videos = indexed
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config, store), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        thread.join(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


PLAY = """async ({src, offset}) => {
  const v = document.createElement('video');
  v.muted = true; v.preload = 'auto'; v.src = src; document.body.appendChild(v);
  const when = (name) => new Promise((ok, bad) => {
    v.addEventListener(name, ok, {once: true});
    const failed = () => bad(new Error('media error ' + (v.error && v.error.code)));
    v.addEventListener('error', failed, {once: true});
  });
  await when('loadedmetadata');
  v.currentTime = offset;
  await when('seeked');
  await v.play();
  await new Promise((ok) => v.addEventListener('timeupdate', () => v.currentTime > offset + 0.3 && ok()));
  v.pause();
  return {duration: v.duration, time: v.currentTime, width: v.videoWidth, height: v.videoHeight};
}"""


@pytest.mark.slow
def test_chromium_plays_and_seeks_the_clip(indexed, store, live_server):
    from tests.browser import browser

    client = login(indexed, "olga")
    track = a_track(client, skip=2)
    playback = client.get(f"/api/v1/tracks/{track['id']}/playback").json()
    ranges: list[str | None] = []
    with browser() as chromium:
        page = chromium.new_page()
        page.on(
            "request", lambda req: ranges.append(req.headers.get("range")) if "/clip" in req.url else None
        )
        page.goto(f"{live_server}/api/v1/health")
        status = page.evaluate(
            """async (password) => (await fetch('/api/v1/auth/login', {method: 'POST',
                 headers: {'content-type': 'application/json'},
                 body: JSON.stringify({name: 'olga', password})})).status""",
            PASSWORD,
        )
        assert status == 200
        page.set_default_timeout(60_000)
        played = page.evaluate(PLAY, {"src": playback["clip_url"], "offset": playback["offset"]})
    assert played["duration"] == pytest.approx(playback["duration"], abs=0.2)
    assert (played["width"], played["height"]) == (768, 576)
    assert played["time"] > playback["offset"]
    # However many range requests Chromium made, only those starting a viewing were audited.
    assert ranges
    starts = sum(1 for r in ranges if r is None or r.replace(" ", "").startswith("bytes=0-"))
    assert len(entries(store, "clip.view", "track_id", track["id"])) == starts >= 1


def test_search_results_page_with_limit_and_offset(indexed):
    """Search is a list like the others: pages of it join up to the unpaged ranking, without overlap."""
    client = login(indexed, "olga")
    whole = client.get("/api/v1/search", params={"q": "person", "limit": 12}).json()
    assert len(whole["hits"]) == 12, "vtest has more than a dozen people"
    ids = [h["track_id"] for h in whole["hits"]]
    pages = []
    for offset in (0, 5, 10):
        page = client.get("/api/v1/search", params={"q": "person", "limit": 5, "offset": offset}).json()
        assert (page["limit"], page["offset"]) == (5, offset)
        pages += [h["track_id"] for h in page["hits"]]
    assert pages[:12] == ids
    assert len(set(pages)) == len(pages)
    for bad in (-1, 1000, "x"):
        r = client.get("/api/v1/search", params={"q": "person", "offset": bad})
        assert r.status_code == 400 and r.json()["error"]["message"], bad
