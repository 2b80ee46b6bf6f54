"""Cameras over the API on real footage: list, snapshot, add/edit/remove, geometry, config check.

The store holds 15 s of PETS09 (people walking) indexed as camera ``pets``;
every test gets a fresh config file and app. The last test runs a real camera
worker (the clip played as a live camera) under a Supervisor that the API
starts, restarts and stops.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest
import yaml
from fastapi.testclient import TestClient

from camsight.api.app import create_app
from camsight.auth import audit, tokens, users
from camsight.auth.audit import Actor
from camsight.config import Config, load_config
from camsight.paths import camera_media_dir, latest_frame_path
from camsight.service.supervisor import Supervisor
from camsight.store.db import open_store
from camsight.store.repository import camera_status, get_or_create_camera
from tests.conftest import YOLOX_ARGS, run_cli
from tests.servers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "correct horse battery"
DOOR = [[0.05, 0.4], [0.95, 0.4], [0.95, 0.98], [0.05, 0.98]]
TOP_LEFT = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]
USERS = {"root": "admin", "olga": "operator", "vera": "viewer", "lena": "operator"}


def site_yaml(model: Path) -> str:
    return f"""\
# camsight test site: edited by the API under test
detector: {{backend: yolox, model: {model}}}   # fast detector
attributes: {{pose: false}}
schedules:
  night: {{hours: ["18:00-06:00"]}}
cameras:
  # the front gate; off so that nothing connects to it
  gate:
    url: rtsp://admin:gate-pw@127.0.0.1:9/stream1
    enabled: false
"""


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, vtest_short: Path, yolox_model: Path):
    work = tmp_path_factory.mktemp("api-cameras")
    base = work / "base.yaml"
    base.write_text(site_yaml(yolox_model))
    data = work / "data"
    proc = run_cli("index", vtest_short, "--camera", "pets", "--data", data, "--config", base, *YOLOX_ARGS)
    assert proc.returncode == 0, proc.stderr
    store = open_store(data)
    secrets = {}
    with store.session() as session:
        get_or_create_camera(session, "gate")
        by = Actor.system()
        for name, role in USERS.items():
            users.create_user(
                session, name, PASSWORD, role, by=by, cameras=["pets"] if name == "lena" else None
            )
            secrets[name] = tokens.create(session, name, "tests", by=by).secret
    yield {"store": store, "secrets": secrets, "model": yolox_model, "clip": vtest_short, "work": work}
    store.close()


@pytest.fixture
def site(indexed, tmp_path: Path):
    path = tmp_path / "site.yaml"
    path.write_text(site_yaml(indexed["model"]))
    app = create_app(load_config(path), indexed["store"], config_path=path)
    yield {"app": app, "path": path, **indexed}
    app.state.jobs.stop()


def client(site: dict, user: str | None = None) -> TestClient:
    c = TestClient(site["app"])
    if user is not None:
        c.headers["Authorization"] = f"Bearer {site['secrets'][user]}"
    return c


def error(r, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["status"] == status and "Traceback" not in r.text
    return body["message"]


def jpeg(r) -> np.ndarray:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def entries(store, action: str) -> list:
    return audit.list_entries(store, limit=200, action=action).entries


def test_list_shows_config_and_indexed_cameras_without_secrets(site):
    admin = client(site, "root")
    page = admin.get("/api/v1/cameras").json()
    by_name = {c["name"]: c for c in page["items"]}
    assert set(by_name) == {"gate", "pets"} and page["total"] == 2
    gate, pets = by_name["gate"], by_name["pets"]
    assert gate["kind"] == "live" and gate["enabled"] is False and gate["in_config"] is True
    assert gate["url"] == "rtsp://admin:***@127.0.0.1:9/stream1"
    assert pets["kind"] == "file" and pets["in_config"] is False and pets["url"] is None
    assert pets["size"] == [768, 576] and pets["snapshot_url"] == "/api/v1/cameras/pets/snapshot"
    assert pets["zones"] == {} and pets["rules"] == []
    assert "gate-pw" not in admin.get("/api/v1/cameras").text
    assert admin.get("/api/v1/cameras/gate").json() == gate
    operator = client(site, "olga").get("/api/v1/cameras/gate").json()
    assert operator["url"] is None  # only admins see where a camera's video comes from
    assert client(site, "vera").get("/api/v1/cameras").json()["total"] == 2


def test_snapshot_of_an_indexed_file_camera(site):
    viewer = client(site, "vera")
    image = jpeg(viewer.get("/api/v1/cameras/pets/snapshot"))
    assert image.shape[:2] == (576, 768) and image.mean() > 40  # a real picture of the scene
    cached = list(camera_media_dir(site["store"].media, "pets").glob("file-*.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == viewer.get("/api/v1/cameras/pets/snapshot").content
    r = viewer.get("/api/v1/cameras/gate/snapshot")
    assert "has no picture yet" in error(r, 404)


def test_add_camera_is_saved_listed_audited(site):
    admin = client(site, "root")
    r = admin.post(
        "/api/v1/cameras",
        json={"name": "dock", "url": "rtsp://ops:dock-pw@10.0.0.8/live", "record": {"mode": "events"}},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["camera"]["name"] == "dock" and body["camera"]["url"] == "rtsp://ops:***@10.0.0.8/live"
    assert body["job"] is None and "dock-pw" not in r.text
    saved = load_config(site["path"])
    assert saved.cameras["dock"].record.mode == "events"
    assert "# the front gate" in site["path"].read_text()  # comments kept
    assert "dock" in [c["name"] for c in admin.get("/api/v1/cameras").json()["items"]]
    assert site["app"].state.config.cameras["dock"].url == "rtsp://ops:dock-pw@10.0.0.8/live"
    entry = next(e for e in entries(site["store"], "camera.change") if e.target == "dock")
    assert entry.actor == "root" and entry.detail["change"] == "add"
    assert entry.detail["keys"] == ["record", "url"] and "dock-pw" not in str(entry.detail)
    assert "already in the config" in error(admin.post("/api/v1/cameras", json={"name": "dock"}), 409)


def test_patch_zone_and_rule_saves_audits_and_reindexes_the_footage(site):
    admin = client(site, "root")
    site["app"].state.jobs.start()
    change = {
        "zones": {"walkway": {"points": DOOR, "units": "normalised"}},
        "rules": [{"type": "zone_intrusion", "zone": "walkway", "min_seconds": 1, "classes": ["person"]}],
    }
    r = admin.patch("/api/v1/cameras/pets", json=change)
    assert r.status_code == 200, r.text
    camera, job = r.json()["camera"], r.json()["job"]
    assert camera["in_config"] is True and camera["zones"]["walkway"]["points"] == DOOR
    (rule,) = camera["rules"]
    assert {
        "type": "zone_intrusion",
        "zone": "walkway",
        "min_seconds": 1.0,
        "classes": ["person"],
    }.items() <= (rule.items())
    assert rule["cooldown"] == 30.0 and "schedule" not in rule  # defaults shown, nulls left out
    saved = load_config(site["path"])
    assert saved.cameras["pets"].zones["walkway"].points == [tuple(p) for p in DOOR]
    entry = next(e for e in entries(site["store"], "camera.zone") if e.target == "pets")
    assert entry.actor == "root" and entry.detail["keys"] == ["rules", "zones"]
    assert entry.detail["zones"]["added"] == ["walkway"] and entry.detail["rules"] == {
        "before": 0,
        "after": 1,
        "added": ["zone_intrusion:walkway"],
        "removed": [],
        "changed": [],
    }
    # The stored footage is checked against the new rule: people walking through the zone.
    assert job is not None and job["kind"] == "reindex" and job["camera"] == "pets"
    done = site["app"].state.jobs.wait(job["id"], timeout=300)
    assert done.state == "done", done
    events = admin.get("/api/v1/events", params={"camera": "pets", "type": "zone_intrusion"}).json()
    assert events["total"] > 0
    # Nothing changed: no audit entry, no job.
    before = len(entries(site["store"], "camera.zone"))
    r = admin.patch("/api/v1/cameras/pets", json={"zones": change["zones"]})
    assert r.status_code == 200 and r.json()["job"] is None
    assert len(entries(site["store"], "camera.zone")) == before


@pytest.mark.parametrize(
    ("zone", "reason"),
    [
        ({"points": [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]}, "intersects itself"),
        ({"points": [[0.1, 0.1], [1.5, 0.1], [0.5, 0.9]], "units": "normalised"}, "outside the frame"),
        ({"points": [[-0.1, 0.1], [0.5, 0.1], [0.5, 0.9]]}, "negative coordinate"),
        ({"points": [[0.1, 0.1], [0.2, 0.2]]}, "at least 3"),
        ({"points": "everywhere"}, "cameras.pets.zones.z.points"),
    ],
)
def test_bad_geometry_is_422_with_reason_and_the_file_unchanged(site, zone, reason):
    before = site["path"].read_bytes()
    r = client(site, "root").patch("/api/v1/cameras/pets", json={"zones": {"z": zone}})
    message = error(r, 422)
    assert reason in message and message.startswith("site.yaml:"), message
    assert site["path"].read_bytes() == before
    assert "pets" not in site["app"].state.config.cameras


def test_rule_referencing_unknown_zone_or_schedule_is_refused(site):
    admin = client(site, "root")
    r = admin.patch("/api/v1/cameras/gate", json={"rules": [{"type": "dwell", "zone": "nowhere"}]})
    assert "unknown zone 'nowhere'" in error(r, 422)
    r = admin.patch("/api/v1/cameras/gate", json={"rules": [{"type": "tampering", "schedule": "weekend"}]})
    assert "unknown schedule 'weekend'" in error(r, 422)
    assert "unknown key" in error(admin.patch("/api/v1/cameras/gate", json={"colour": "red"}), 422)
    assert "nothing to change" in error(admin.patch("/api/v1/cameras/gate", json={}), 400)


def test_masks_are_audited_and_blank_in_the_snapshot(site):
    admin = client(site, "root")
    plain = jpeg(admin.get("/api/v1/cameras/pets/snapshot"))
    assert plain[20:270, 20:360].mean() > 40
    r = admin.patch("/api/v1/cameras/pets", json={"masks": {"office": {"points": TOP_LEFT}}})
    assert r.status_code == 200, r.text
    masked = jpeg(admin.get("/api/v1/cameras/pets/snapshot"))
    assert masked[4:284, 4:380].max() < 25  # the top-left quarter is blank (JPEG noise aside)
    assert masked[300:570, 400:760].mean() > 40  # the rest is still the picture
    entry = next(e for e in entries(site["store"], "camera.mask") if e.target == "pets")
    assert entry.detail["keys"] == ["masks"] and entry.detail["masks"]["added"] == ["office"]
    assert not [e for e in entries(site["store"], "camera.zone") if e.id > entry.id]


def test_delete_removes_from_config_and_list_but_keeps_footage(site):
    admin = client(site, "root")
    assert (
        admin.post("/api/v1/cameras", json={"name": "porch", "url": "rtsp://10.0.0.3/1"}).status_code == 201
    )
    r = admin.delete("/api/v1/cameras/porch")
    assert r.status_code == 204 and r.content == b""
    assert "porch" not in load_config(site["path"]).cameras
    assert "porch" not in site["app"].state.config.cameras
    error(admin.get("/api/v1/cameras/porch"), 404)
    entry = next(e for e in entries(site["store"], "camera.change") if e.target == "porch")
    assert entry.detail["change"] == "remove" and entry.detail["footage_kept"] is True
    # A camera with indexed footage loses its config block, not its footage.
    assert admin.patch("/api/v1/cameras/pets", json={"size": [768, 576]}).status_code == 200
    assert admin.delete("/api/v1/cameras/pets").status_code == 204
    pets = admin.get("/api/v1/cameras/pets").json()
    assert (
        pets["in_config"] is False and admin.get("/api/v1/tracks", params={"camera": "pets"}).json()["total"]
    )
    assert "nothing to remove" in error(admin.delete("/api/v1/cameras/pets"), 409)


def test_only_admins_change_cameras_and_config(site):
    before = site["path"].read_bytes()
    for user in ("olga", "vera", "lena"):
        c = client(site, user)
        for r in (
            c.post("/api/v1/cameras", json={"name": "x", "url": "rtsp://x/1"}),
            c.patch("/api/v1/cameras/pets", json={"enabled": False}),
            c.delete("/api/v1/cameras/pets"),
            c.get("/api/v1/config"),
            c.post("/api/v1/config/check", json={"yaml": "cameras: {}"}),
        ):
            assert "may not" in error(r, 403)
    assert site["path"].read_bytes() == before


def test_limited_operator_cannot_tell_hidden_from_missing(site):
    lena = client(site, "lena")
    assert [c["name"] for c in lena.get("/api/v1/cameras").json()["items"]] == ["pets"]
    for suffix in ("", "/snapshot"):
        hidden = lena.get(f"/api/v1/cameras/gate{suffix}")
        missing = lena.get(f"/api/v1/cameras/nowhere{suffix}")
        assert error(hidden, 404).replace("gate", "X") == error(missing, 404).replace("nowhere", "X")
        assert hidden.json()["error"]["code"] == missing.json()["error"]["code"]
    jpeg(lena.get("/api/v1/cameras/pets/snapshot"))


def test_unauthenticated_requests_get_401(site):
    anon = client(site)
    for method, path in (
        ("GET", "/api/v1/cameras"),
        ("GET", "/api/v1/cameras/pets"),
        ("GET", "/api/v1/cameras/pets/snapshot"),
        ("POST", "/api/v1/cameras"),
        ("PATCH", "/api/v1/cameras/pets"),
        ("DELETE", "/api/v1/cameras/pets"),
        ("GET", "/api/v1/config"),
        ("POST", "/api/v1/config/check"),
    ):
        error(anon.request(method, path, json={"name": "x"}), 401)


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "x" * 65, "bad\x07name", "tab\tname", " lead", "", ".hidden", 7]
)
def test_hostile_new_names_are_refused(site, name):
    before = site["path"].read_bytes()
    r = client(site, "root").post("/api/v1/cameras", json={"name": name, "url": "rtsp://x/1"})
    assert "name:" in error(r, 400)
    assert site["path"].read_bytes() == before


def test_hostile_paths_and_bodies_are_4xx(site):
    admin = client(site, "root")
    for path in ("/api/v1/cameras/..%2F..%2Fcamsight.db", "/api/v1/cameras/%00", "/api/v1/cameras/a%07b"):
        for r in (admin.get(path), admin.get(path + "/snapshot"), admin.patch(path, json={"enabled": True})):
            assert r.status_code == 404, (path, r.text)
        assert admin.delete(path).status_code == 404
    assert error(admin.get("/api/v1/cameras/" + "x" * 300), 400)
    url = "/api/v1/cameras/pets"
    assert "not valid JSON" in error(admin.patch(url, content=b"{not json", headers=_json()), 400)
    assert "JSON object" in error(admin.patch(url, json=[1, 2]), 400)
    assert "JSON" in error(admin.patch(url, content=b'{"fps": NaN}', headers=_json()), 400)
    assert "nested" in error(
        admin.patch(url, content=b'{"a":' + b"[" * 100 + b"]" * 100 + b"}", headers=_json()), 400
    )
    assert error(admin.patch(url, content=b"\xff\xfe", headers=_json()), 400)
    assert "larger than" in error(admin.patch(url, content=b" " * 1_000_001, headers=_json()), 413)
    assert error(admin.patch(url, content=b"enabled=1", headers={"Content-Type": "text/plain"}), 415)
    sql = admin.patch(url, json={"zones": {"'; DROP TABLE cameras; --": {"points": DOOR}}})
    assert (
        sql.status_code == 200
        and "'; DROP TABLE cameras; --" in load_config(site["path"]).cameras["pets"].zones
    )


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def test_config_check_and_redacted_config(site):
    admin = client(site, "root")
    ok = admin.post("/api/v1/config/check", json={"yaml": site["path"].read_text()})
    assert ok.status_code == 200 and ok.json() == {"ok": True}
    bad = admin.post(
        "/api/v1/config/check",
        json={"yaml": "detector:\n  backnd: ssd\ncameras:\n  g:\n    zones:\n      z: {points: [[0, 0]]}\n"},
    )
    assert bad.status_code == 200 and bad.json()["ok"] is False
    errors = bad.json()["errors"]
    assert errors[0] == "site.yaml:2: detector.backnd: unknown key"
    assert errors[1].startswith("site.yaml:6: cameras.g.zones.z.points")
    assert admin.post("/api/v1/config/check", json={"yaml": "a: [1,\n"}).json()["ok"] is False
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [" + ", ".join([f"*{p}"] * 10) + "]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True)
    )
    assert "aliases" in admin.post("/api/v1/config/check", json={"yaml": bomb}).json()["errors"][0]
    assert error(admin.post("/api/v1/config/check", json={"yaml": 42}), 422)
    assert error(admin.post("/api/v1/config/check", json={"yaml": "a: 1\x00"}), 422)
    assert error(admin.post("/api/v1/config/check", json={"text": "a: 1"}), 422)
    assert error(admin.post("/api/v1/config/check", json={"yaml": "#" * 1_100_000}), 413)
    shown = admin.get("/api/v1/config").json()
    assert shown["file"] == "site.yaml" and shown["runtime_cameras"] == []
    assert "gate-pw" not in shown["yaml"] and "admin:***@127.0.0.1" in shown["yaml"]
    assert "# the front gate" in shown["yaml"]
    assert yaml.safe_load(shown["yaml"])["cameras"]["gate"]["enabled"] is False


def test_changes_without_a_config_file_are_refused(indexed):
    app = create_app(Config(), indexed["store"])
    admin = client({"app": app, **indexed}, "root")
    r = admin.post("/api/v1/cameras", json={"name": "x", "url": "rtsp://x/1"})
    assert "no config file" in error(r, 409)
    assert admin.get("/api/v1/config").json()["file"] is None
    assert admin.get("/api/v1/cameras").json()["total"] == 2


@pytest.mark.slow
def test_supervisor_follows_api_changes_with_a_real_camera_worker(indexed, tmp_path: Path):
    """The clip played as a live camera: added, re-masked (worker restarted) and removed over the API."""
    store = indexed["store"]
    path = tmp_path / "site.yaml"
    # Over the API a camera may play only files inside the folders the owner lists.
    folders = f"storage: {{camera_folders: [{indexed['clip'].parent}]}}\n"
    path.write_text(site_yaml(indexed["model"]) + folders)
    config = load_config(path)
    supervisor = Supervisor(config, store)
    assert supervisor.pids() == {}  # the gate is disabled: nothing runs
    stop = threading.Event()
    runner = threading.Thread(target=supervisor.run, args=(stop,), daemon=True)
    runner.start()
    app = create_app(config, store, config_path=path, supervisor=supervisor)
    admin = client({"app": app, **indexed}, "root")
    try:
        r = admin.post("/api/v1/cameras", json={"name": "hall", "url": str(indexed["clip"]), "fps": 5})
        assert r.status_code == 201, r.text
        assert r.json()["camera"]["kind"] == "live"
        first = wait_for(lambda: supervisor.pids().get("hall"), 30)
        latest = latest_frame_path(store.media, "hall")
        wait_for(latest.is_file, 120)
        picture = jpeg(admin.get("/api/v1/cameras/hall/snapshot"))
        assert picture.shape[:2] == (576, 768)
        wait_for(lambda: (h := dict(camera_status(store)).get("hall")) and h.state == "connected", 60)
        # A changed block restarts the worker with it; the snapshot is masked at once.
        r = admin.patch("/api/v1/cameras/hall", json={"masks": {"office": {"points": TOP_LEFT}}})
        assert r.status_code == 200, r.text
        second = wait_for(lambda: (p := supervisor.pids().get("hall")) and p != first and p, 60)
        assert second != first
        masked = jpeg(admin.get("/api/v1/cameras/hall/snapshot"))
        assert masked[4:284, 4:380].max() < 25
        # The new worker saves masked pictures itself.
        stamp = latest.stat().st_mtime_ns
        wait_for(lambda: latest.stat().st_mtime_ns != stamp, 120)
        own = cv2.imread(str(latest))
        assert own[4:284, 4:380].max() < 25
        # Disabling stops it; removing forgets it.
        assert admin.patch("/api/v1/cameras/hall", json={"enabled": False}).status_code == 200
        wait_for(lambda: "hall" not in supervisor.pids(), 30)
        wait_for(lambda: dict(camera_status(store))["hall"].state == "stopped", 60)
        assert admin.patch("/api/v1/cameras/hall", json={"enabled": True}).status_code == 200
        third = wait_for(lambda: supervisor.pids().get("hall"), 30)
        assert admin.delete("/api/v1/cameras/hall").status_code == 204
        assert "hall" not in supervisor.pids()
        wait_for(lambda: not psutil.pid_exists(third), 60)  # exited, and reaped by the supervisor
        assert "hall" not in load_config(path).cameras
        error(admin.get("/api/v1/cameras/hall"), 404)  # a removed live camera is gone from the list
    finally:
        stop.set()
        runner.join(60)
        app.state.jobs.stop()
    assert not runner.is_alive()
