"""The HTTP API on a real store in a temp dir: auth, permissions, camera scoping, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from camsight.api.app import create_app
from camsight.auth import audit, tokens, users
from camsight.auth.audit import Actor
from camsight.config import Config
from camsight.store.db import open_store
from camsight.store.repository import get_or_create_camera

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data folder every test starts from, built once: migrating a new store and hashing
    five passwords (argon2, slow on purpose) for each test was most of this module's time."""
    data = tmp_path_factory.mktemp("api-template") / "data"
    store = open_store(data)
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
    return data


@pytest.fixture
def store(template: Path, tmp_path: Path):
    """A private copy of the template store (a test's changes stay its own)."""
    store = open_store(shutil.copytree(template, tmp_path / "data"))
    yield store
    store.close()


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
