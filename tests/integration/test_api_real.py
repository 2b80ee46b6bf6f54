"""The API on a store indexed from real footage (UR Fall clip: tracks and one fall event)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from camsight.api.app import create_app
from camsight.auth import audit
from camsight.config import Config
from camsight.store.db import open_store
from tests.conftest import API_PASSWORD, add_api_users, index_fall_clip

CAMERA = "fall-01-cam0"
PASSWORD = API_PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def store(tmp_path_factory, shared_data: Path, yolox_model: Path):
    data = tmp_path_factory.mktemp("api-fall")
    index_fall_clip(data, shared_data, yolox_model)
    store = open_store(data)
    add_api_users(store)
    yield store
    store.close()


def login(store, name: str) -> TestClient:
    client = TestClient(create_app(Config(), store))
    assert client.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD}).status_code == 200
    return client


def test_search_tracks_thumbnails(store):
    client = login(store, "olga")
    r = client.get("/api/v1/search", params={"q": "person"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hits"] and body["interpretation"]
    assert {"kind": "class", "text": "person"} in body["chips"]
    hit = body["hits"][0]
    assert hit["camera"] == CAMERA and hit["label"] == "person" and hit["explanation"] is not None
    thumb = client.get(hit["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8"
    tracks = client.get("/api/v1/tracks", params={"camera": CAMERA, "limit": 1}).json()
    assert tracks["total"] >= 1 and len(tracks["items"]) == 1
    one = client.get(f"/api/v1/tracks/{hit['track_id']}").json()
    assert one["camera"] == CAMERA and one["thumbnails"]
    similar = client.get(f"/api/v1/tracks/{hit['track_id']}/similar")
    assert similar.status_code in (200, 400), similar.text  # 400 when the track has no descriptor
    black = client.get("/api/v1/search", params={"q": "dressed all in black"}).json()["chips"]
    assert [(c["text"], c["facets"], c.get("only")) for c in black if c["kind"] == "attribute"] == [
        ("black", ["upper:black"], True),
        ("black", ["lower:black"], True),
    ]
    sql = client.get("/api/v1/search", params={"q": "' OR 1=1 --"})
    assert sql.status_code < 500, sql.text
    entries = [e for e in audit.list_entries(store, limit=200, action="search").entries if e.actor == "olga"]
    assert any(e.detail.get("query") == "person" for e in entries)
    assert_status(client.get(f"/api/v1/tracks/{hit['track_id']}/thumbnails/99"), 404)


def assert_status(r, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["status"] == status


def test_events_snapshot_and_ack(store):
    client = login(store, "olga")
    page = client.get("/api/v1/events", params={"type": "fall"}).json()
    assert page["total"] == 1
    ev = page["items"][0]
    assert ev["camera"] == CAMERA and ev["type"] == "fall" and ev["track_ids"]
    assert "snapshot" not in ev and ev["snapshot_url"]
    snap = client.get(ev["snapshot_url"])
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
    assert client.get(f"/api/v1/events/{ev['id']}").json()["id"] == ev["id"]
    viewer = login(store, "vera")
    assert viewer.get(f"/api/v1/events/{ev['id']}").status_code == 200
    assert_status(viewer.post(f"/api/v1/events/{ev['id']}/ack"), 403)
    assert_status(viewer.get("/api/v1/search", params={"q": "person"}), 403)
    r = client.post(f"/api/v1/events/{ev['id']}/ack")
    assert r.status_code == 200 and r.json()["acknowledged"] is True
    assert r.json()["event"]["acknowledged_by"] == "olga"
    assert client.get("/api/v1/events", params={"unacknowledged": True}).json()["total"] == 0
    acks = audit.list_entries(store, limit=50, action="event.acknowledge").entries
    assert acks and acks[0].actor == "olga" and acks[0].detail["event_id"] == ev["id"]


def test_other_camera_user_sees_nothing_of_this_camera(store):
    client = login(store, "otto")
    ev_id = login(store, "root").get("/api/v1/events").json()["items"][0]["id"]
    track_id = login(store, "root").get("/api/v1/tracks").json()["items"][0]["id"]
    for path in (
        f"/api/v1/events/{ev_id}",
        f"/api/v1/events/{ev_id}/snapshot",
        f"/api/v1/tracks/{track_id}",
        f"/api/v1/tracks/{track_id}/thumbnails/0",
        f"/api/v1/tracks/{track_id}/similar",
        f"/api/v1/cameras/{CAMERA}",
    ):
        assert_status(client.get(path), 404)
    assert_status(client.post(f"/api/v1/events/{ev_id}/ack"), 404)
    assert client.get("/api/v1/events").json()["total"] == 0
    assert client.get("/api/v1/tracks").json()["total"] == 0
    assert [c["name"] for c in client.get("/api/v1/cameras").json()["items"]] == ["elsewhere"]
    found = client.get("/api/v1/search", params={"q": "person"})
    assert found.status_code == 200 and found.json()["hits"] == []
    hidden = client.get("/api/v1/search", params={"q": "person", "camera": CAMERA})
    assert_status(hidden, 404)
    assert CAMERA not in hidden.text or "no camera named" in hidden.text
