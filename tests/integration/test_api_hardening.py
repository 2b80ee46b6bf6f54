"""Security hardening found by an attack on a running camsight from loopback (issue 15).

Secrets named by the config, password guessing through the password change, locking the admin
out, forged client addresses, camera names in the search interpretation, DNS rebinding, and
revoking every token of a user. Real servers: ``camsight run`` as a user starts it, uvicorn on
127.0.0.1, or the app in-process through FastAPI's TestClient.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from camsight.api.app import create_app, server_config
from camsight.auth import audit, tokens, users
from camsight.auth.audit import Actor
from camsight.config import Config, load_config, parse_config, validate_config
from camsight.errors import ConfigError
from camsight.store.db import open_store
from camsight.store.repository import get_or_create_camera
from tests.conftest import CAMSIGHT, cli_env, db_query, run_cli
from tests.servers import free_port, wait_until

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "the admin's own passphrase"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Cameras lobby, gate and garage; root (admin), olga (operator), lena (operator: lobby only)."""
    data = tmp_path_factory.mktemp("hardening") / "data"
    store = open_store(data)
    try:
        with store.session() as session:
            for name in ("lobby", "gate", "garage"):
                get_or_create_camera(session, name)
        with store.session() as session:
            by = Actor.system()
            users.create_user(session, "root", PASSWORD, "admin", by=by)
            users.create_user(session, "olga", PASSWORD, "operator", by=by)
            users.create_user(session, "lena", PASSWORD, "operator", by=by, cameras=["lobby"])
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
    return create_app(Config(), store)


def signed_in(app, name: str, address: str = "testclient") -> TestClient:
    client = TestClient(app, client=(address, 50000))
    r = client.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return client


def error(r, status: int, code: str | None = None) -> str:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["status"] == status and "Traceback" not in r.text
    if code is not None:
        assert body["code"] == code, body
    return body["message"]


# --------------------------------------------------------------------------- 1: secrets by name


def test_the_api_cannot_name_the_servers_environment_as_a_secret(store, tmp_path, monkeypatch):
    monkeypatch.setenv("CAMSIGHT_ADMIN_PASSWORD", ADMIN_PASSWORD)
    path = tmp_path / "site.yaml"
    path.write_text("cameras:\n  lobby:\n    url: rtsp://127.0.0.1:9/lobby\n")
    app = create_app(load_config(path), store, config_path=path)
    with store.session() as session:
        secret = tokens.create(session, "root", "attack", by=Actor.system()).secret
    client = TestClient(app, headers={"Authorization": f"Bearer {secret}"})
    before = path.read_text()
    attack = {
        "url": "http://127.0.0.1:18999/s.mjpg",
        "username": "u",
        "password_env": "CAMSIGHT_ADMIN_PASSWORD",
    }
    message = error(client.patch("/api/v1/cameras/lobby", json=attack), 422, "invalid")
    assert "password_env" in message and "CAMSIGHT_SECRET_" in message
    assert path.read_text() == before
    # Webhook and MQTT secrets alike, whether checked over the API or loaded from a file.
    hook = (
        "alerts:\n  webhooks:\n"
        "    - {name: x, url: 'http://127.0.0.1:18999/', secret_env: CAMSIGHT_ADMIN_PASSWORD}\n"
    )
    checked = client.post("/api/v1/config/check", json={"yaml": hook}).json()
    assert checked["ok"] is False and "CAMSIGHT_SECRET_" in " ".join(checked["errors"])
    with pytest.raises(ConfigError, match=r"site\.yaml:3: cameras\.gate\.password_env: 'HOME' may not"):
        parse_config("cameras:\n  gate:\n    password_env: HOME\n", "site.yaml")
    with pytest.raises(ConfigError, match=r"alerts\.mqtt\.password_env"):
        validate_config({"alerts": {"mqtt": {"host": "127.0.0.1", "password_env": "PATH"}}})
    # A variable set aside for secrets may be named.
    ok = client.patch("/api/v1/cameras/lobby", json={**attack, "password_env": "CAMSIGHT_SECRET_LOBBY"})
    assert ok.status_code == 200, ok.text
    assert "password_env: CAMSIGHT_SECRET_LOBBY" in path.read_text()


# --------------------------------------------------------------------------- 2: the password change


def test_wrong_current_passwords_count_as_failed_sign_ins_and_are_audited(app, store):
    client = signed_in(app, "olga")
    for _ in range(5):
        r = client.post("/api/v1/auth/password", json={"current": "a wrong guess", "new": "a new long pass"})
        error(r, 400, "wrong_password")
    # The limit is the sign-in's: the sixth guess waits, even with the right password.
    r = client.post("/api/v1/auth/password", json={"current": PASSWORD, "new": "a new long pass"})
    error(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) > 0
    # And signing in as olga from this address waits too: one count for both.
    error(TestClient(app).post("/api/v1/auth/login", json={"name": "olga", "password": PASSWORD}), 429)
    failures = [e for e in audit.list_entries(store, limit=100, action="login.failure").entries]
    guesses = [e for e in failures if e.detail["reason"] == "wrong current password (password change)"]
    assert len(guesses) == 5
    assert all(e.actor == "olga" and e.target == "olga" and e.ip == "testclient" for e in guesses)
    assert any(e.actor == "olga" and e.detail["reason"] == "rate_limited" for e in failures)


# --------------------------------------------------------------------------- 3: locking the admin out


def test_a_strangers_failures_do_not_lock_the_admin_out(app, store):
    stranger = TestClient(app, client=("203.0.113.66", 4444))
    for _ in range(5):
        r = stranger.post("/api/v1/auth/login", json={"name": "root", "password": "guess guess"})
        error(r, 401)
    # The stranger's own address now waits (a delay that grows with each failure)...
    r = stranger.post("/api/v1/auth/login", json={"name": "root", "password": "guess again"})
    error(r, 429, "rate_limited")
    assert 0 < int(r.headers["retry-after"]) <= 30
    # ... while the admin, from their own address, signs in with the right password.
    signed_in(app, "root", address="192.0.2.10")
    entries = audit.list_entries(store, limit=50, action="login.success").entries
    assert entries[0].actor == "root" and entries[0].ip == "192.0.2.10"


# --------------------------------------------------------------------------- 4 and 6: `camsight run`


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``camsight run`` on 127.0.0.1 as a user starts it, with CAMSIGHT_ADMIN_PASSWORD set."""
    work = tmp_path_factory.mktemp("run")
    config = work / "site.yaml"
    config.write_text("api: {allowed_hosts: [cams.example.org]}\n")
    data = work / "data"
    port = free_port()
    proc = subprocess.Popen(
        [str(CAMSIGHT), "run", "--config", str(config), "--data", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(CAMSIGHT_ADMIN_PASSWORD=ADMIN_PASSWORD),
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"camsight run exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            return httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=60, what="camsight run to serve")
    yield {"base": base, "port": port, "data": data}
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_the_admin_password_from_the_environment_must_be_changed(running):
    with httpx.Client(base_url=f"{running['base']}/api/v1", timeout=30) as client:
        r = client.post("/auth/login", json={"name": "admin", "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        assert r.json()["user"]["must_change_password"] is True
        error(client.get("/cameras"), 403, "password_change_required")


def test_dns_rebinding_hosts_are_refused(running):
    port = running["port"]
    evil = f"evil.example:{port}"
    with httpx.Client(base_url=running["base"], timeout=30) as client:
        # A rebinding page is same-origin with itself: its Origin matches its Host, only the Host is wrong.
        r = client.post(
            "/api/v1/auth/login",
            json={"name": "admin", "password": ADMIN_PASSWORD},
            headers={"Host": evil, "Origin": f"http://{evil}"},
        )
        message = error(r, 400, "bad_host")
        assert "evil.example" in message and "api.allowed_hosts" in message
        error(client.get("/", headers={"Host": evil}), 400, "bad_host")
        error(client.get("/api/v1/health", headers={"Host": "localhost.evil.example"}), 400)
        # This machine's names and addresses, and the names in api.allowed_hosts, are served.
        for host in (
            f"localhost:{port}",
            f"127.0.0.1:{port}",
            f"{socket.gethostname()}:{port}",
            "cams.example.org",
            f"CAMS.example.org:{port}",
        ):
            assert client.get("/api/v1/health", headers={"Host": host}).status_code == 200, host


def test_forged_forwarded_for_is_ignored(running):
    """No proxy is trusted by default: 40 sign-ins, each forging another address, are one address.

    Last of the tests on this server: it leaves 127.0.0.1 waiting.
    """
    base, data = running["base"], running["data"]
    statuses = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(40):
            r = client.post(
                "/api/v1/auth/login",
                json={"name": f"nobody{i}", "password": "wrong password"},
                headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
            )
            statuses.append(r.status_code)
    # Every name is new, so only the address's limit (20 failures) can stop them.
    assert set(statuses[:20]) == {401} and 429 in statuses[20:], statuses
    ips = {ip for (ip,) in db_query(data, "SELECT ip FROM audit_log WHERE action = 'login.failure'")}
    assert ips == {"127.0.0.1"}


def test_a_named_proxy_is_believed(store):
    """With ``api.trusted_proxies`` naming it, the proxy's X-Forwarded-For is the client address."""
    config = validate_config({"api": {"trusted_proxies": ["127.0.0.1"]}})
    app = create_app(config, store)
    port = free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=30, what="uvicorn to start")
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/login",
            json={"name": "olga", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.7"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
    finally:
        server.should_exit = True
        thread.join(10)
    entry = audit.list_entries(store, limit=1, action="login.success").entries[0]
    assert entry.actor == "olga" and entry.ip == "198.51.100.7"


# --------------------------------------------------------------------------- 5: camera names in search


def _without(body: dict, word: str) -> str:
    """The interpretation of a search answer with ``word`` blanked, to compare two answers."""
    keep = {k: body[k] for k in ("interpretation", "chips", "notes", "hits")}
    return json.dumps(keep, sort_keys=True).replace(word, "WORD")


def _chips(body: dict) -> list[tuple[str, str]]:
    return [(c["kind"], c["text"]) for c in body["chips"]]


def test_search_reads_camera_names_against_the_callers_cameras_only(app):
    lena = signed_in(app, "lena")
    for extra in ({}, {"camera": "lobby"}):
        hidden = lena.get("/api/v1/search", params={"q": "car garage", **extra})
        missing = lena.get("/api/v1/search", params={"q": "car nosuchcam", **extra})
        assert hidden.status_code == missing.status_code == 200, (hidden.text, missing.text)
        assert _without(hidden.json(), "garage") == _without(missing.json(), "nosuchcam")
        assert ("unknown", "garage") in _chips(hidden.json())
        assert ("camera", "garage") not in _chips(hidden.json())
    # Her own camera is still understood, and so is every camera for an unlimited user.
    mine = lena.get("/api/v1/search", params={"q": "car lobby"}).json()
    assert ("camera", "lobby") in _chips(mine)
    olga = signed_in(app, "olga").get("/api/v1/search", params={"q": "car garage"}).json()
    assert ("camera", "garage") in _chips(olga)


# --------------------------------------------------------------------------- 9: revoking every token


def test_every_token_of_a_user_can_be_revoked_at_once(app, store):
    with store.session() as session:
        secrets = [tokens.create(session, "olga", f"t{i}", by=Actor.system()).secret for i in range(2)]
        roots = tokens.create(session, "root", "keep", by=Actor.system()).secret

    def works(secret: str) -> bool:
        me = TestClient(app).get("/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"})
        return me.is_success

    assert all(works(s) for s in [*secrets, roots])
    olga = signed_in(app, "olga")
    # Not someone else's...
    error(olga.delete("/api/v1/users/root/tokens"), 403)
    assert works(roots)
    # ... but her own, all at once; and an admin may do it for anyone.
    r = olga.delete("/api/v1/users/olga/tokens")
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 2 and {t["state"] for t in r.json()["revoked"]} == {"revoked"}
    assert not any(works(s) for s in secrets)
    r = signed_in(app, "root").delete("/api/v1/users/root/tokens")
    assert r.json()["count"] == 1 and not works(roots)
    entries = audit.list_entries(store, limit=20, action="token.revoke").entries
    revoked_all = [(e.actor, e.target, e.detail["count"]) for e in entries if e.detail.get("all")]
    assert revoked_all == [("root", "root", 1), ("olga", "olga", 2)]


def test_cli_revokes_every_token_of_a_user(tmp_path: Path):
    data = tmp_path / "data"
    store = open_store(data)
    try:
        with store.session() as session:
            users.create_user(session, "alice", PASSWORD, "operator", by=Actor.system())
            users.create_user(session, "bob", PASSWORD, "operator", by=Actor.system())
            for name in ("alice", "alice", "bob"):
                tokens.create(session, name, "script", by=Actor.system())
    finally:
        store.close()
    proc = run_cli("tokens", "revoke", "--user", "alice", "--all", "--data", data)
    assert proc.returncode == 0, proc.stderr
    assert "revoked 2 API tokens of alice" in proc.stderr
    left = json.loads(run_cli("tokens", "list", "--data", data, "--json").stdout)
    assert [t["user"] for t in left] == ["bob"]
    (detail,) = db_query(data, "SELECT detail FROM audit_log WHERE action = 'token.revoke'")[0]
    assert json.loads(detail)["all"] is True and json.loads(detail)["count"] == 2
    bad = run_cli("tokens", "revoke", "--all", "--data", data)
    assert bad.returncode != 0 and "--user" in bad.stderr
