"""The HTTP API on a real store in a temp dir: auth, permissions, camera scoping, errors."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from camsight.api.app import create_app
from camsight.auth import audit, tokens, users
from camsight.auth.audit import Actor
from camsight.config import Config
from camsight.store.db import open_store
from camsight.store.repository import get_or_create_camera

PASSWORD = "correct horse battery"


# Every test that uses the store runs on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.both_databases


def _fill(data: Path, url: str | None = None) -> None:
    store = open_store(data, url=url)
    try:
        with store.session() as session:
            get_or_create_camera(session, "lobby")
            get_or_create_camera(session, "gate")
        with store.session() as session:
            by = Actor.system()
            users.create_user(session, "root", PASSWORD, "admin", by=by)
            users.create_user(session, "olga", PASSWORD, "operator", by=by)
            users.create_user(session, "vera", PASSWORD, "viewer", by=by)
            users.create_user(session, "lena", PASSWORD, "operator", by=by, cameras=["gate"])
            users.create_user(session, "newbie", PASSWORD, "operator", by=by, must_change_password=True)
    finally:
        store.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data folder every test starts from, built once: migrating a new store and hashing
    five passwords (argon2, slow on purpose) for each test was most of this module's time."""
    data = tmp_path_factory.mktemp("api-template") / "data"
    _fill(data)
    return data


@pytest.fixture(scope="module")
def pg_template(postgres_server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same, as a PostgreSQL database (its name) that each test's database is copied from."""
    url = postgres_server.new_database()
    _fill(tmp_path_factory.mktemp("api-pg-template") / "data", url)
    return make_url(url).database


@pytest.fixture
def store(template: Path, tmp_path: Path, database: str, request: pytest.FixtureRequest):
    """A private copy of the template store (a test's changes stay its own)."""
    data = shutil.copytree(template, tmp_path / "data")
    url, server = None, None
    if database == "postgres":
        (data / "camsight.db").unlink()
        server = request.getfixturevalue("postgres_server")
        url = server.new_database(request.getfixturevalue("pg_template"))
    store = open_store(data, url=url)
    yield store
    store.close()
    if server is not None and url is not None:
        server.drop_database(url)


@pytest.fixture
def app(store):
    return create_app(Config(), store)


def client_for(app, name: str | None = None) -> TestClient:
    client = TestClient(app)
    if name is not None:
        r = client.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
    return client


PROTECTED = [
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/password"),
    ("GET", "/api/v1/search?q=person"),
    ("GET", "/api/v1/tracks"),
    ("GET", "/api/v1/tracks/1"),
    ("GET", "/api/v1/tracks/1/similar"),
    ("GET", "/api/v1/tracks/1/thumbnails/0"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/events/1"),
    ("POST", "/api/v1/events/1/ack"),
    ("GET", "/api/v1/events/1/snapshot"),
    ("GET", "/api/v1/cameras"),
    ("GET", "/api/v1/cameras/lobby"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("PATCH", "/api/v1/users/olga"),
    ("DELETE", "/api/v1/users/olga"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/1"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/audit.csv"),
    ("GET", "/api/v1/audit/verify"),
    ("GET", "/api/v1/holds"),
    ("POST", "/api/v1/holds"),
    ("POST", "/api/v1/holds/1/release"),
]


def assert_error(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["status"] == status and body["message"]
    if code:
        assert body["code"] == code
    assert "Traceback" not in r.text
    return body


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_endpoint_needs_credentials(app, method, path):
    r = TestClient(app).request(method, path, json={})
    assert_error(r, 401, "unauthorized")


def test_health_and_openapi_are_open(app):
    client = TestClient(app)
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    schema = client.get("/api/v1/openapi.json").json()
    for _method, path in PROTECTED:
        assert any(_same(path.split("?")[0], p) for p in schema["paths"]), path
    assert client.get("/api/v1/docs").status_code == 200


def _same(templ: str, path: str) -> bool:
    # A concrete path matches a schema path when only the {parameters} differ.
    a, b = templ.split("/"), path.split("/")
    return len(a) == len(b) and all(x == y or y.startswith("{") for x, y in zip(a, b, strict=True))


def test_login_sets_strict_httponly_cookie_and_me(app, store):
    client = TestClient(app)
    r = client.post("/api/v1/auth/login", json={"name": "olga", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["name"] == "olga"
    cookie = r.headers["set-cookie"].lower()
    assert "camsight_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain http test server
    assert "password" not in r.text.lower().replace("must_change_password", "")
    me = client.get("/api/v1/auth/me").json()
    assert me["user"]["role"] == "operator" and me["via"] == "session"
    secure = TestClient(app, base_url="https://testserver")
    r = secure.post("/api/v1/auth/login", json={"name": "olga", "password": PASSWORD})
    assert "secure" in r.headers["set-cookie"].lower()
    actions = [e.action for e in audit.list_entries(store, limit=50).entries]
    assert "login.success" in actions
    out = client.post("/api/v1/auth/logout")
    assert out.status_code == 204 and 'camsight_session=""' in out.headers["set-cookie"]
    assert_error(client.get("/api/v1/auth/me"), 401)
    assert "logout" in [e.action for e in audit.list_entries(store, limit=50).entries]


def test_wrong_password_then_rate_limited(app):
    client = TestClient(app)
    for _ in range(5):
        r = client.post("/api/v1/auth/login", json={"name": "olga", "password": "wrong password!"})
        body = assert_error(r, 401)
        assert body["message"] == "wrong user name or password"
    r = client.post("/api/v1/auth/login", json={"name": "olga", "password": PASSWORD})
    assert_error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) > 0


def test_login_validation_is_400_with_field(app):
    r = TestClient(app).post("/api/v1/auth/login", json={"name": "olga"})
    body = assert_error(r, 400, "validation_error")
    assert body["field"] == "password"


def test_must_change_password_gate(app, store):
    client = client_for(app, "newbie")
    body = assert_error(client.get("/api/v1/events"), 403, "password_change_required")
    assert "change your password" in body["message"]
    assert client.get("/api/v1/auth/me").status_code == 200
    wrong = client.post(
        "/api/v1/auth/password", json={"current": "not it at all", "new": "another long pass"}
    )
    assert_error(wrong, 400)
    r = client.post("/api/v1/auth/password", json={"current": PASSWORD, "new": "another long pass"})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["must_change_password"] is False
    # The old session ended with the change; the answer carried a new cookie.
    assert client.get("/api/v1/events").status_code == 200
    assert "user.password" in [e.action for e in audit.list_entries(store, limit=50).entries]


def test_viewer_forbidden_from_search_tracks_and_admin(app):
    client = client_for(app, "vera")
    for path in (
        "/api/v1/search?q=person",
        "/api/v1/tracks",
        "/api/v1/tracks/1",
        "/api/v1/users",
        "/api/v1/audit.csv",
    ):
        assert_error(client.get(path), 403, "forbidden")
    assert_error(client.post("/api/v1/events/1/ack"), 403)
    assert client.get("/api/v1/events").status_code == 200
    assert client.get("/api/v1/cameras").json()["total"] == 2


def test_limited_user_sees_only_own_cameras(app):
    client = client_for(app, "lena")
    cams = client.get("/api/v1/cameras").json()
    assert [c["name"] for c in cams["items"]] == ["gate"] and cams["total"] == 1
    hidden = assert_error(client.get("/api/v1/cameras/lobby"), 404)
    missing = assert_error(client.get("/api/v1/cameras/nowhere"), 404)
    assert hidden["message"] == "no camera named 'lobby'"
    assert missing["message"] == "no camera named 'nowhere'"
    assert_error(client.get("/api/v1/tracks?camera=lobby"), 404)
    assert_error(client.get("/api/v1/events?camera=lobby"), 404)
    assert client.get("/api/v1/events").json() == {"items": [], "total": 0, "limit": 50, "offset": 0}


def test_api_token_works_and_revoked_token_fails(app, store):
    with store.session() as session:
        new = tokens.create(session, "olga", "script", by=Actor.system())
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {new.secret}"}
    me = client.get("/api/v1/auth/me", headers=headers).json()
    assert me["via"] == "token" and me["user"]["name"] == "olga"
    admin = client_for(app, "root")
    assert admin.delete(f"/api/v1/tokens/{new.info.id}").status_code == 200
    assert_error(client.get("/api/v1/auth/me", headers=headers), 401)
    assert_error(client.get("/api/v1/auth/me", headers={"Authorization": "Bearer cs_nonsense"}), 401)


def test_admin_users_and_tokens_audited(app, store):
    client = client_for(app, "root")
    r = client.post(
        "/api/v1/users", json={"name": "gus", "password": PASSWORD, "role": "viewer", "cameras": ["gate"]}
    )
    assert r.status_code == 201, r.text
    assert r.json()["cameras"] == ["gate"] and r.json()["must_change_password"] is True
    assert_error(
        client.post("/api/v1/users", json={"name": "gus", "password": PASSWORD, "role": "viewer"}), 400
    )
    r = client.patch("/api/v1/users/gus", json={"cameras": None, "role": "operator"})
    assert r.status_code == 200 and r.json()["cameras"] is None and r.json()["role"] == "operator"
    users_page = client.get("/api/v1/users?limit=2&offset=1").json()
    assert users_page["total"] == 6 and len(users_page["items"]) == 2 and users_page["offset"] == 1
    tok = client.post("/api/v1/tokens", json={"name": "ci"})
    assert tok.status_code == 201 and tok.json()["secret"].startswith("cs_")
    assert client.get("/api/v1/tokens").json()["total"] == 1
    assert client.delete("/api/v1/users/gus").status_code == 204
    assert_error(client.delete("/api/v1/users/gus"), 404)
    actions = {e["action"] for e in client.get("/api/v1/audit?limit=500").json()["items"]}
    assert {"user.create", "user.update", "user.delete", "token.create", "login.success"} <= actions
    csv = client.get("/api/v1/audit.csv")
    assert csv.status_code == 200 and csv.text.startswith("id,at,actor")
    assert "audit.export" in {e["action"] for e in client.get("/api/v1/audit").json()["items"]}
    verify = client.get("/api/v1/audit/verify").json()
    assert verify["ok"] is True and verify["entries"] > 5


def test_csrf_origin_checked_for_cookie_posts(app):
    client = client_for(app, "root")
    r = client.post("/api/v1/tokens", json={"name": "x"}, headers={"Origin": "https://evil.example"})
    assert_error(r, 403, "csrf")
    r = client.post("/api/v1/tokens", json={"name": "x"}, headers={"Referer": "https://evil.example/page"})
    assert_error(r, 403, "csrf")
    ok = client.post("/api/v1/tokens", json={"name": "x"}, headers={"Origin": "http://testserver"})
    assert ok.status_code == 201


def test_hostile_inputs_are_4xx_never_500(app):
    client = client_for(app, "root")
    bad = [
        "/api/v1/tracks/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/tracks/1/thumbnails/..%2F..%2Fcamsight.db",
        "/api/v1/events/../../camsight.db/snapshot",
        "/api/v1/tracks/1%20OR%201=1",
        "/api/v1/cameras/' OR 1=1 --",
        "/api/v1/tracks?camera=' OR 1=1 --",
        "/api/v1/events?type=' OR 1=1 --",
        "/api/v1/tracks?limit=0",
        "/api/v1/tracks?limit=501",
        "/api/v1/events?offset=-1",
        "/api/v1/events?since=yesterdayish",
        "/api/v1/users/..%2F..",
        "/api/v1/audit?action=' OR 1=1 --",
    ]
    for path in bad:
        r = client.get(path)
        assert r.status_code < 500, (path, r.text)
        if r.status_code >= 400:
            assert r.json()["error"]["status"] == r.status_code
    assert client.get("/api/v1/tracks?limit=0").status_code == 400
    assert_error(client.get("/api/v1/search", params={"q": "x" * 501}), 400)


def test_unknown_endpoint_is_json_404(app):
    assert_error(TestClient(app).get("/api/v1/nope"), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/events/459171667063837024462045184/snapshot",
        "/api/v1/tracks/459171667063837024462045184/similar",
        "/api/v1/tracks/1/thumbnails/99999999999999999999",
        "/api/v1/events/0",
    ],
)
def test_ids_beyond_the_database_are_client_errors(app, path):
    # Found by schemathesis: ids past 64 bits used to reach SQLite and fail with a 500.
    r = client_for(app, "root").get(path)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["status"] == 400


def test_a_configured_camera_with_nothing_stored_yet_answers_empty_not_404(store):
    """A live camera just added is in the config but has no rows yet: its lists are empty."""
    from camsight.config import validate_config

    config = validate_config({"cameras": {"door": {"url": "rtsp://127.0.0.1:1/door"}}})
    client = client_for(create_app(config, store), "olga")
    r = client.get("/api/v1/search", params={"q": "person in red", "camera": "door"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hits"] == [] and any("nothing from door is indexed yet" in n for n in body["notes"])
    for path in ("/api/v1/tracks", "/api/v1/events"):
        r = client.get(path, params={"camera": "door"})
        assert r.status_code == 200 and r.json()["total"] == 0, (path, r.text)
    # A name that is neither stored nor configured is still unknown, for every list.
    for path, params in (("/api/v1/search", {"q": "person"}), ("/api/v1/tracks", {}), ("/api/v1/events", {})):
        assert_error(client.get(path, params={**params, "camera": "nowhere"}), 404)
    # And a limited user cannot learn that it exists.
    lena = client_for(create_app(config, store), "lena")
    assert_error(lena.get("/api/v1/search", params={"q": "person", "camera": "door"}), 404)


# --------------------------------------------------------------------------- issue 15


def _site(store, tmp_path: Path, text: str, quick: dict[str, str] | None = None):
    """An app whose camera edits are saved to a config file holding ``text``."""
    from camsight.app import with_quick_start_cameras
    from camsight.config import load_config

    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return create_app(with_quick_start_cameras(load_config(path), quick or {}), store, config_path=path), path


def test_camera_urls_set_over_the_api_cannot_read_local_files_or_link_local_hosts(store, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "yard.mp4").write_bytes(b"\0" * 10)
    (videos / "passwd.mp4").symlink_to("/etc/passwd")
    # The README's quick start: a local file given on the command line by the machine's owner.
    app, path = _site(
        store,
        tmp_path,
        f"storage: {{camera_folders: [{videos}]}}\n",
        {"lobby": "../shared/data/pets09/vtest.avi"},
    )
    admin = client_for(app, "root")
    before = path.read_text()
    refused = [
        "/etc/shadow",
        "/proc/self/environ",
        "/dev/zero",
        "concat:/etc/passwd|/etc/hosts",
        "subfile,,0,0,:/etc/passwd",
        str(videos / ".." / ".." / "etc" / "passwd"),
        str(videos / "passwd.mp4"),
        "http://169.254.169.254/latest/meta-data/",
        "rtsp://[fe80::1]:554/live",
    ]
    for url in refused:
        for key in ("url", "detect_url"):
            r = admin.post("/api/v1/cameras", json={"name": "probe", key: url})
            assert r.status_code == 422 and f".{key}:" in r.json()["error"]["message"], (url, r.text)
            assert_error(admin.patch("/api/v1/cameras/lobby", json={key: url}), 422)
    assert path.read_text() == before and "probe" not in app.state.config.cameras
    # Streams and files inside the configured folders are fine.
    r = admin.post("/api/v1/cameras", json={"name": "yard", "url": str(videos / "yard.mp4")})
    assert r.status_code == 201, r.text
    r = admin.post("/api/v1/cameras", json={"name": "gate", "url": "rtsp://10.0.0.5/stream1"})
    assert r.status_code == 201, r.text
    # The owner's camera stays editable, its command-line file included (it is not a change).
    door = {"door": {"points": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}}
    r = admin.patch("/api/v1/cameras/lobby", json={"zones": door, "url": "../shared/data/pets09/vtest.avi"})
    assert r.status_code == 200, r.text
    assert app.state.config.cameras["lobby"].url == "../shared/data/pets09/vtest.avi"
    # Without camera_folders (the default) no local file can be set over the API at all.
    bare, _path = _site(store, tmp_path / "bare", "")
    r = client_for(bare, "root").post(
        "/api/v1/cameras", json={"name": "yard2", "url": str(videos / "yard.mp4")}
    )
    assert "none is configured" in assert_error(r, 422)["message"]


def test_saving_zones_in_the_web_app_writes_one_accurate_audit_entry(store, tmp_path):
    # "lobby" is known from indexed footage only; another camera runs from the command line.
    app, _path = _site(store, tmp_path, "", {"porch": "rtsp://admin:porch-pw@10.0.0.7/live"})
    admin = client_for(app, "root")

    def camera_entries() -> list:
        return [e for e in audit.list_entries(store, limit=500).entries if e.action.startswith("camera.")]

    # What the editor sends on save: every kind of shape, and the rules.
    door = {"points": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]], "units": "normalised"}
    body = {"zones": {"door": door}, "lines": {}, "masks": {}, "rules": []}
    assert admin.patch("/api/v1/cameras/lobby", json=body).status_code == 200
    (entry,) = camera_entries()
    assert entry.action == "camera.zone" and entry.target == "lobby"
    assert entry.detail == {
        "change": "update",
        "keys": ["zones"],
        "zones": {"added": ["door"], "removed": [], "changed": []},
    }
    # Saving the same again changes nothing and records nothing.
    assert admin.patch("/api/v1/cameras/lobby", json=body).status_code == 200
    assert len(camera_entries()) == 1
    # A credentials change: one entry, the difference shown, no secret in it.
    r = admin.patch("/api/v1/cameras/porch", json={"password": "new-pw", "username": "ops"})
    assert r.status_code == 200, r.text
    entry = camera_entries()[0]
    assert entry.action == "camera.change" and entry.detail["keys"] == ["password", "username"]
    assert entry.detail["password"] == {"before": None, "after": "***"}
    assert entry.detail["username"] == {"before": None, "after": "ops"}
    r = admin.patch("/api/v1/cameras/porch", json={"url": "rtsp://admin:other-pw@10.0.0.8/live"})
    assert r.status_code == 200, r.text
    entry = camera_entries()[0]
    assert entry.detail["url"] == {
        "before": "rtsp://admin:***@10.0.0.7/live",
        "after": "rtsp://admin:***@10.0.0.8/live",
    }
    text = str([e.detail for e in camera_entries()])
    assert "pw" not in text.replace("password", "") and len(camera_entries()) == 3


def _event(store, camera: str, start) -> int:
    from datetime import timedelta

    from camsight.store.models import EventRow

    with store.session() as session:
        cam = get_or_create_camera(session, camera)
        row = EventRow(
            uid=f"{camera}-1", camera_id=cam.id, type="fall", rule="fall", severity="high", start_t=0.0,
            end_t=12.0, start_at=start, end_at=start + timedelta(seconds=12), summary="a person fell",
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


def test_legal_holds_over_the_api_are_scoped_audited_and_released_by_their_owner(app, store):
    from datetime import UTC, datetime

    event_id = _event(store, "gate", datetime(2026, 11, 20, 18, 0, tzinfo=UTC))
    lobby_event = _event(store, "lobby", datetime(2026, 11, 20, 18, 5, tzinfo=UTC))
    olga, lena, vera, root = (client_for(app, n) for n in ("olga", "lena", "vera", "root"))
    r = olga.post(
        "/api/v1/holds",
        json={
            "camera": "lobby",
            "start": "2026-11-20T18:00",
            "end": "2026-11-20T20:00+01:00",
            "reason": "case 118",
        },
    )
    assert r.status_code == 201, r.text
    ranged = r.json()["hold"]
    # Naive times are UTC over the API; an offset is honoured.
    assert ranged["start"] == "2026-11-20T18:00:00+00:00" and ranged["end"] == "2026-11-20T19:00:00+00:00"
    assert ranged["camera"] == "lobby" and ranged["active"] is True and ranged["created_by"] == "olga"
    r = lena.post("/api/v1/holds", json={"event_id": event_id, "reason": "insurance claim"})
    assert r.status_code == 201, r.text
    on_event = r.json()["hold"]
    # The event's 12 s with the default padding: 5 s before, 10 s after.
    assert on_event["start"] == "2026-11-20T17:59:55+00:00" and on_event["end"] == "2026-11-20T18:00:22+00:00"
    assert on_event["event_id"] == event_id and on_event["camera"] == "gate"
    # Lena sees only gate: lobby's hold and event are "not found" for her.
    assert [h["id"] for h in lena.get("/api/v1/holds").json()["items"]] == [on_event["id"]]
    assert_error(lena.post("/api/v1/holds", json={"event_id": lobby_event, "reason": "x"}), 404)
    lobby_range = {"camera": "lobby", "start": "2026-11-20T18:00", "reason": "x"}
    assert_error(lena.post("/api/v1/holds", json=lobby_range), 404)
    assert_error(lena.post(f"/api/v1/holds/{ranged['id']}/release"), 404)
    assert olga.get("/api/v1/holds").json()["total"] == 2
    # Viewers may not hold footage; a hold needs a reason and a real range.
    assert_error(vera.post("/api/v1/holds", json={"event_id": event_id, "reason": "x"}), 403)
    assert_error(vera.get("/api/v1/holds"), 403)
    assert_error(olga.post("/api/v1/holds", json={"event_id": event_id, "reason": ""}), 400)
    backwards = {"camera": "lobby", "start": "2026-11-20T18:00", "end": "2026-11-20T17:00", "reason": "x"}
    assert "must be after" in assert_error(olga.post("/api/v1/holds", json=backwards), 422)["message"]
    both = {"camera": "lobby", "start": "2026-11-20T18:00", "event_id": event_id, "reason": "x"}
    assert_error(olga.post("/api/v1/holds", json=both), 400)
    # An operator releases their own holds; an admin any.
    assert_error(olga.post(f"/api/v1/holds/{on_event['id']}/release"), 403)
    r = olga.post(f"/api/v1/holds/{ranged['id']}/release")
    assert (
        r.status_code == 200
        and r.json()["hold"]["active"] is False
        and r.json()["hold"]["released_by"] == "olga"
    )
    assert_error(olga.post(f"/api/v1/holds/{ranged['id']}/release"), 409)
    assert root.post(f"/api/v1/holds/{on_event['id']}/release").status_code == 200
    assert root.get("/api/v1/holds").json()["total"] == 0
    assert root.get("/api/v1/holds", params={"include_released": True}).json()["total"] == 2
    entries = [e for e in audit.list_entries(store, limit=500).entries if e.action.startswith("hold.")]
    assert [(e.action, e.actor, e.target) for e in reversed(entries)] == [
        ("hold.place", "olga", "lobby"),
        ("hold.place", "lena", "gate"),
        ("hold.release", "olga", "lobby"),
        ("hold.release", "root", "gate"),
    ]
    assert entries[-1].detail["reason"] == "case 118" and entries[-2].detail["event_id"] == event_id


def test_options_and_405_name_every_method_of_the_path(app):
    client = client_for(app)
    r = client.options("/api/v1/cameras/lobby")
    assert r.status_code == 204
    assert r.headers["allow"] == "DELETE, GET, PATCH, OPTIONS"
    r = client.put("/api/v1/cameras/lobby")
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, PATCH"
    assert r.json()["error"]["code"] == "method_not_allowed"
    assert client.options("/api/v1/users/someone").headers["allow"] == "DELETE, PATCH, OPTIONS"


def test_openapi_declares_the_error_answers(app):
    doc = client_for(app).get("/api/v1/openapi.json").json()
    camera = doc["paths"]["/api/v1/cameras/{name}"]
    assert {"400", "401", "403", "404", "500"} <= set(camera["patch"]["responses"])
    error = camera["get"]["responses"]["404"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorOut"}
    # FastAPI's own 422 is never sent (validation errors answer 400), so it is not documented.
    assert not any("HTTPValidationError" in str(op) for path in doc["paths"].values() for op in path.values())
    user = doc["components"]["schemas"]["UserIn"]["properties"]
    assert user["role"]["minLength"] == 1 and user["role"]["enum"] == ["admin", "operator", "viewer"]
    search = next(p for p in doc["paths"]["/api/v1/search"]["get"]["parameters"] if p["name"] == "class")
    assert "minLength" in str(search["schema"])
    assert doc["paths"]["/api/v1/search"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


# --------------------------------------------------------------------------- kept answers


def _walkers(first_id: int, colour: str) -> list[Any]:
    """Three people walking past for a second each, wearing ``colour`` on top."""
    import numpy as np

    from camsight.records.attributes import TrackAttributes
    from camsight.records.tracks import Crop, Observation, TrackRecord
    from camsight.tracking.kinematics import kinematics

    records = []
    for k in range(3):
        obs = [Observation(k * 10 + i + 1, k * 2.0 + i * 0.2, (40.0 * k, 20.0, 40.0 * k + 40, 120.0), 0.9)
               for i in range(5)]  # fmt: skip
        crop = Crop(obs[1].frame, obs[1].t, obs[1].box, 1.0, np.full((100, 40, 3), 128, np.uint8), (6, 10))
        rec = TrackRecord(
            first_id + k, "person", obs, [crop], kinematics(obs, "person"), 0.9, labels_seen={"person": 5}
        )
        rec.attributes = TrackAttributes(colours={"upper": {colour: 0.9}, "lower": {"black": 0.8}})
        records.append(rec)
    return records


def test_a_kept_search_answer_is_rendered_once_per_camera_scope(app, store):
    """Kept results are shared by every caller, their rendered JSON only by callers who see the
    same cameras: a user limited to one camera never gets a page rendered for someone else."""
    from datetime import UTC, datetime

    from conftest import save_records

    t0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    save_records(store, "lobby", _walkers(1, "red"), t0)
    save_records(store, "gate", _walkers(1, "red"), t0)
    olga, lena = client_for(app, "olga"), client_for(app, "lena")
    first = olga.get("/api/v1/search", params={"q": "person in red"})
    assert first.status_code == 200, first.text
    assert {h["camera"] for h in first.json()["hits"]} == {"lobby", "gate"}
    again = olga.get("/api/v1/search", params={"q": "person in red"})
    assert again.content == first.content  # the same kept answer, byte for byte
    assert again.headers["content-type"] == "application/json"
    kept = [r for r in app.state.engine.results._results.values() if r.renderings]
    assert kept, "the answer was not kept with its result"
    scoped = lena.get("/api/v1/search", params={"q": "person in red"})
    assert scoped.status_code == 200, scoped.text
    assert {h["camera"] for h in scoped.json()["hits"]} == {"gate"}
    # The other page of the same kept result is its own rendering.
    page = olga.get("/api/v1/search", params={"q": "person in red", "limit": 2, "offset": 1})
    assert [h["track_id"] for h in page.json()["hits"]] == [h["track_id"] for h in first.json()["hits"]][1:3]
    # Each answer was audited, kept or not.
    searches = audit.list_entries(store, action="search", limit=10).entries  # newest first
    assert [e.actor for e in searches] == ["olga", "lena", "olga", "olga"]
