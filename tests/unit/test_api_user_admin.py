"""User administration over the API (what the web app's Users page calls), on a real store.

Create with a server-made one-time password, reset a password (shown once, changed at the next
sign-in), disable (sign-in refused, sessions and tokens dead at once), enable, delete, revoke
tokens one by one and all together; 409 for the last admin and for oneself; every change audited.
Also the live view's access rules, which need no running camera.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from camsight.api.app import create_app
from camsight.auth import tokens, users
from camsight.auth.audit import Actor
from camsight.auth.errors import AccountConflict
from camsight.config import Config, validate_config
from camsight.store.db import open_store
from camsight.store.repository import get_or_create_camera

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a much better passphrase"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Users hashed once (argon2 is slow on purpose): root (admin), olga (operator), vera (viewer of gate)."""
    data = tmp_path_factory.mktemp("user-admin") / "data"
    store = open_store(data)
    try:
        with store.session() as session:
            get_or_create_camera(session, "lobby")
            get_or_create_camera(session, "gate")
        with store.session() as session:
            by = Actor.system()
            users.create_user(session, "root", PASSWORD, "admin", by=by)
            users.create_user(session, "olga", PASSWORD, "operator", by=by)
            users.create_user(session, "vera", PASSWORD, "viewer", by=by, cameras=["gate"])
    finally:
        store.close()
    return data


@pytest.fixture
def store(template: Path, tmp_path: Path):
    store = open_store(shutil.copytree(template, tmp_path / "data"))
    yield store
    store.close()


@pytest.fixture
def app(store):
    config = validate_config(
        {
            "cameras": {
                "gate": {"url": "rtsp://127.0.0.1:9/gate"},
                "lobby": {"url": "rtsp://127.0.0.1:9/lobby"},
                "files": {},
                "off": {"url": "rtsp://127.0.0.1:9/off", "enabled": False},
            }
        },
        "test",
    )
    return create_app(config, store)


def sign_in(app, name: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app)
    r = client.post("/api/v1/auth/login", json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    return client


def error(response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]["message"]


def audit_actions(client: TestClient, target: str) -> list[str]:
    items = client.get("/api/v1/audit", params={"limit": 500}).json()["items"]
    return [e["action"] for e in reversed(items) if e["target"] == target]


def test_admin_creates_resets_disables_and_deletes_a_user_each_step_audited(app):
    admin = sign_in(app, "root")

    # Created without a password: the server makes a one-time one and answers it once.
    r = admin.post("/api/v1/users", json={"name": "Gus", "role": "viewer", "cameras": ["gate"]})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["name"] == "gus" and made["cameras"] == ["gate"] and made["must_change_password"] is True
    first = made["one_time_password"]
    assert len(first) >= 20
    assert "one_time_password" not in admin.get("/api/v1/users").json()["items"][0]

    # The first sign-in with it allows nothing but the password change.
    gus = sign_in(app, "gus", first)
    assert error(gus.get("/api/v1/cameras"), 403)
    assert gus.post("/api/v1/auth/password", json={"current": first, "new": NEW_PASSWORD}).status_code == 200
    assert [c["name"] for c in gus.get("/api/v1/cameras").json()["items"]] == ["gate"]

    # A reset: a new one-time password, the old password and the session end at once.
    r = admin.post("/api/v1/users/gus/password-reset")
    assert r.status_code == 200, r.text
    reset = r.json()["password"]
    assert reset != first and r.json()["user"]["must_change_password"] is True
    error(gus.get("/api/v1/auth/me"), 401)
    error(TestClient(app).post("/api/v1/auth/login", json={"name": "gus", "password": NEW_PASSWORD}), 401)
    gus = sign_in(app, "gus", reset)
    assert gus.get("/api/v1/auth/me").json()["user"]["must_change_password"] is True
    assert gus.post("/api/v1/auth/password", json={"current": reset, "new": NEW_PASSWORD}).status_code == 200

    # Role and cameras.
    r = admin.patch("/api/v1/users/gus", json={"role": "operator", "cameras": ["gate", "lobby"]})
    assert (
        r.status_code == 200 and r.json()["role"] == "operator" and r.json()["cameras"] == ["gate", "lobby"]
    )

    # Disabled: signed out at once, sign-in refused, the token refused.
    with app.state.store.session() as session:
        token = tokens.create(session, "gus", "script", by=Actor.system()).secret
    bearer = {"Authorization": f"Bearer {token}"}
    assert TestClient(app).get("/api/v1/auth/me", headers=bearer).status_code == 200
    assert admin.patch("/api/v1/users/gus", json={"disabled": True}).json()["disabled"] is True
    error(gus.get("/api/v1/auth/me"), 401)
    error(TestClient(app).get("/api/v1/auth/me", headers=bearer), 401)
    error(TestClient(app).post("/api/v1/auth/login", json={"name": "gus", "password": NEW_PASSWORD}), 401)

    # Enabled again: the password and the token work again (disabling is not revoking).
    assert admin.patch("/api/v1/users/gus", json={"disabled": False}).json()["disabled"] is False
    assert TestClient(app).get("/api/v1/auth/me", headers=bearer).status_code == 200
    sign_in(app, "gus", NEW_PASSWORD)

    assert admin.delete("/api/v1/users/gus").status_code == 204
    error(TestClient(app).get("/api/v1/auth/me", headers=bearer), 401)
    error(admin.post("/api/v1/users/gus/password-reset"), 404)

    assert audit_actions(admin, "gus") == [
        "user.create",
        "login.success",  # with the one-time password
        "user.password",  # gus's own choice...
        "login.success",  # ...and the fresh session that comes with it
        "user.password",  # the reset
        "login.failure",  # the old password, refused
        "login.success",  # the reset password
        "user.password",
        "login.success",
        "user.update",  # role and cameras
        "token.create",
        "user.update",  # disabled
        "login.failure",  # signing in while disabled
        "user.update",  # enabled
        "login.success",
        "user.delete",
    ]
    entries = admin.get("/api/v1/audit", params={"limit": 500, "action": "user.password"}).json()["items"]
    resets = [e for e in entries if e["target"] == "gus" and e["detail"].get("generated")]
    assert len(resets) == 1 and resets[0]["actor"] == "root"
    assert reset not in str(admin.get("/api/v1/audit", params={"limit": 500}).json())


def test_tokens_are_listed_and_revoked_one_or_all_and_revoked_tokens_fail(app, store):
    with store.session() as session:
        made = [tokens.create(session, "olga", f"script-{i}", by=Actor.system()) for i in range(3)]
    admin = sign_in(app, "root")
    listed = admin.get("/api/v1/tokens", params={"user": "olga"}).json()
    assert [t["name"] for t in listed["items"]] == ["script-0", "script-1", "script-2"]
    assert all(made[0].secret not in str(t) for t in listed["items"])

    assert admin.delete(f"/api/v1/tokens/{made[0].info.id}").json()["state"] == "revoked"
    error(TestClient(app).get("/api/v1/auth/me", headers={"Authorization": f"Bearer {made[0].secret}"}), 401)
    ok = TestClient(app).get("/api/v1/auth/me", headers={"Authorization": f"Bearer {made[1].secret}"})
    assert ok.status_code == 200

    r = admin.delete("/api/v1/users/olga/tokens")
    assert r.status_code == 200 and r.json()["count"] == 2
    for new in made[1:]:
        error(TestClient(app).get("/api/v1/auth/me", headers={"Authorization": f"Bearer {new.secret}"}), 401)
    assert admin.get("/api/v1/tokens", params={"user": "olga"}).json()["total"] == 0
    assert audit_actions(admin, "olga")[-2:] == ["token.revoke", "token.revoke"]

    # Not an admin: no user admin at all.
    olga = sign_in(app, "olga")
    error(olga.post("/api/v1/users/vera/password-reset"), 403)
    error(olga.get("/api/v1/tokens", params={"user": "vera"}), 403)


def test_the_last_admin_and_oneself_are_refused_with_409(app):
    admin = sign_in(app, "root")
    assert "your own" in error(admin.patch("/api/v1/users/root", json={"disabled": True}), 409)
    assert "your own" in error(admin.delete("/api/v1/users/root"), 409)
    assert "your own" in error(admin.post("/api/v1/users/root/password-reset"), 409)
    assert "your own admin role" in error(admin.patch("/api/v1/users/root", json={"role": "viewer"}), 409)
    body = admin.patch("/api/v1/users/root", json={"disabled": True}).json()
    assert body["error"]["code"] == "conflict"

    # With a second admin, that one may disable root; then root is no longer the last.
    assert admin.patch("/api/v1/users/olga", json={"role": "admin"}).status_code == 200
    olga = sign_in(app, "olga")
    assert olga.patch("/api/v1/users/root", json={"disabled": True}).status_code == 200
    error(admin.get("/api/v1/users"), 401)  # root's session ended with the disabling
    # Now olga is the last enabled admin: nobody, not even the command line, may demote or remove her.
    with app.state.store.session() as session:
        with pytest.raises(AccountConflict, match="last enabled admin"):
            users.update_user(session, "olga", by=Actor.cli(), role="operator")
        with pytest.raises(AccountConflict, match="last enabled admin"):
            users.delete_user(session, "olga", by=Actor.cli())
    schema = app.openapi()["paths"]
    assert "409" in schema["/api/v1/users/{name}"]["delete"]["responses"]
    assert "409" in schema["/api/v1/users/{name}/password-reset"]["post"]["responses"]


def test_live_view_access_rules_without_a_running_camera(app):
    vera = sign_in(app, "vera")  # a viewer of gate only
    assert "not among your cameras" in error(vera.get("/api/v1/cameras/lobby/live"), 403)
    # The same answer for a camera that does not exist: nothing leaks about other cameras.
    assert "not among your cameras" in error(vera.get("/api/v1/cameras/nowhere/live"), 403)
    # Gate is hers, but this app runs no cameras (no supervisor).
    assert "not running" in error(vera.get("/api/v1/cameras/gate/live"), 409)
    admin = sign_in(app, "root")
    error(admin.get("/api/v1/cameras/nowhere/live"), 404)
    assert "recorded footage only" in error(admin.get("/api/v1/cameras/files/live"), 409)
    assert "disabled" in error(admin.get("/api/v1/cameras/off/live"), 409)
    error(TestClient(app).get("/api/v1/cameras/gate/live"), 401)


def test_app_config_allows_no_live_view_for_cameras_unknown_to_config(store):
    # A camera known to the store only (indexed files) has no live view either.
    app = create_app(Config(), store)
    error(sign_in(app, "root").get("/api/v1/cameras/gate/live"), 404)


def test_a_camera_of_the_config_that_never_ran_can_be_given_to_a_user(app):
    admin = sign_in(app, "root")
    r = admin.post("/api/v1/users", json={"name": "cfg", "role": "viewer", "cameras": ["files"]})
    assert r.status_code == 201, r.text
    r = admin.patch("/api/v1/users/cfg", json={"cameras": ["files", "off"]})
    assert r.status_code == 200 and r.json()["cameras"] == ["files", "off"]
    assert "no camera named 'nowhere'" in error(
        admin.patch("/api/v1/users/cfg", json={"cameras": ["nowhere"]}), 400
    )
