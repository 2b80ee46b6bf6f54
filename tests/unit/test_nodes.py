"""Nodes on one database: heartbeats and who is down, signed node requests, footage of a node that is down.

The two-process test (real `camsight run --node` processes, real footage) is
tests/integration/test_nodes.py; these check the parts on a real store (SQLite
and PostgreSQL) and the API in-process.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from camsight.api.app import create_app
from camsight.auth import users
from camsight.auth.audit import Actor
from camsight.auth.node_auth import NodeAuthError, sign, verify
from camsight.config import Config
from camsight.config.nodes import NODE_SECRET_ENV, NodesConfig, load_node_secret
from camsight.errors import ConfigError
from camsight.service.nodes import NodeContext
from camsight.store.models import NodeRow, Source, Thumbnail, Track
from camsight.store.nodes import (
    NodeConflict,
    camera_nodes,
    db_now,
    heartbeat,
    mark_stopped,
    node_states,
    register_node,
)
from camsight.store.repository import get_or_create_camera

SECRET = "a-shared-node-secret-for-tests"
PASSWORD = "correct horse battery"


def _register(store, name: str, instance: str, cameras: list[str], url: str = "http://127.0.0.1:1") -> None:
    register_node(
        store, name, url=url, host="box", version="t", instance=instance, cameras=cameras, down_after=6.0
    )


def _age(store, name: str, seconds: float) -> None:
    """Make ``name``'s last heartbeat ``seconds`` old, by the database's clock."""
    with store.session() as session:
        then = db_now(session) - timedelta(seconds=seconds)
        session.execute(update(NodeRow).where(NodeRow.name == name).values(last_seen=then))


@pytest.mark.both_databases
def test_a_node_that_stops_beating_shows_down_and_a_clean_stop_shows_at_once(store) -> None:
    _register(store, "a", "i1", ["lobby"])
    _register(store, "b", "i2", ["gate"])
    assert {n.name: n.state for n in node_states(store, 6.0)} == {"a": "up", "b": "up"}
    assert camera_nodes(store) == {"lobby": "a", "gate": "b"}
    _age(store, "b", 7.0)
    states = {n.name: n for n in node_states(store, 6.0)}
    assert states["b"].state == "down" and 7.0 <= states["b"].age_seconds < 30
    assert states["a"].up
    # Its heartbeat brings it back; a clean stop shows at once, without waiting for the timeout.
    assert heartbeat(store, "b", "i2")
    assert {n.name: n.state for n in node_states(store, 6.0)}["b"] == "up"
    mark_stopped(store, "b", "i2")
    assert {n.name: n.state for n in node_states(store, 6.0)}["b"] == "stopped"


@pytest.mark.both_databases
def test_a_second_process_under_a_running_nodes_name_is_refused(store) -> None:
    _register(store, "a", "first", ["lobby"])
    with pytest.raises(NodeConflict, match="node 'a' is already running"):
        _register(store, "a", "second", ["lobby"])
    # The first one's heartbeat is still its own; once it is down, the name may be taken over.
    _age(store, "a", 60.0)
    _register(store, "a", "second", ["lobby", "hall"])
    assert not heartbeat(store, "a", "first")  # taken over: the old process is told
    assert camera_nodes(store) == {"lobby": "a", "hall": "a"}
    # A camera moved to another node in the config is that node's now.
    _register(store, "b", "b1", ["hall"])
    assert camera_nodes(store) == {"lobby": "a", "hall": "b"}


def test_signed_requests_between_nodes() -> None:
    path = "/api/v1/node/media?path=1%2Fthumb.jpg"
    headers = sign(SECRET, "a", "GET", path)
    assert verify(SECRET, headers, "GET", path) == "a"
    with pytest.raises(NodeAuthError, match="not signed"):
        verify(SECRET, {}, "GET", path)
    with pytest.raises(NodeAuthError, match="does not match"):
        verify(SECRET, headers, "GET", "/api/v1/node/media?path=other.jpg")
    with pytest.raises(NodeAuthError, match="does not match"):
        verify("another-secret-of-enough-length", headers, "GET", path)
    old = sign(SECRET, "a", "GET", path, now=time.time() - 600)
    with pytest.raises(NodeAuthError, match="off this node's clock"):
        verify(SECRET, old, "GET", path)


def test_a_node_without_the_shared_secret_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"set {NODE_SECRET_ENV} or nodes.secret_file"):
        load_node_secret(NodesConfig(), environ={})
    with pytest.raises(ConfigError, match="too short"):
        load_node_secret(NodesConfig(), environ={NODE_SECRET_ENV: "short"})
    secret_file = tmp_path / "node.secret"
    secret_file.write_text(SECRET + "\n")
    assert load_node_secret(NodesConfig(secret_file=secret_file), environ={}) == SECRET
    with pytest.raises(ConfigError, match="cannot read"):
        load_node_secret(NodesConfig(secret_file=tmp_path / "missing"), environ={})
    with pytest.raises(ValueError, match="longer than heartbeat_seconds"):
        NodesConfig(heartbeat_seconds=5, down_after_seconds=5)


@pytest.fixture
def api(store) -> TestClient:
    """The API of node ``a`` on a store where node ``b`` (down) holds camera gate's footage."""
    with store.session() as session:
        users.create_user(session, "root", PASSWORD, "admin", by=Actor.system())
    _register(store, "a", "ia", ["lobby"])
    _register(store, "b", "ib", ["gate"], url="http://127.0.0.1:9")
    with store.session() as session:
        gate = get_or_create_camera(session, "gate")
        source = Source(
            camera_id=gate.id,
            uri="rtsp://gate/live",
            fingerprint="live:1",
            settings_key="k",
            settings={},
            width=640,
            height=480,
            native_fps=10.0,
            node="b",
        )
        session.add(source)
        session.flush()
        track = Track(
            source_id=source.id,
            camera_id=gate.id,
            local_id=1,
            label="person",
            start_t=0.0,
            end_t=2.0,
            first_frame=0,
            last_frame=20,
            num_observations=20,
            confidence=0.9,
            speed_px_s=1.0,
            speed_bh_s=0.1,
            max_speed_px_s=1.0,
            heading="east",
            displacement_px=1.0,
            path_px=1.0,
        )
        session.add(track)
        session.flush()
        session.add(
            Thumbnail(
                track_id=track.id, rank=0, frame=3, t=0.3, x1=0, y1=0, x2=9, y2=9, quality=1.0, path="x.jpg"
            )
        )
    app = create_app(Config(), store)
    app.state.node = NodeContext("a", NodesConfig(), SECRET, "http://127.0.0.1:2")
    client = TestClient(app)
    assert client.post("/api/v1/auth/login", json={"name": "root", "password": PASSWORD}).status_code == 200
    client.track_id = track.id  # type: ignore[attr-defined]
    return client


@pytest.mark.both_databases
def test_footage_of_a_node_that_is_down_is_a_503_naming_it_and_health_shows_it(
    api: TestClient, store
) -> None:
    track_id = api.track_id  # type: ignore[attr-defined]
    _age(store, "b", 30.0)
    for path in (f"/api/v1/tracks/{track_id}/thumbnails/0", f"/api/v1/tracks/{track_id}/clip"):
        r = api.get(path)
        assert r.status_code == 503, r.text
        message = r.json()["error"]["message"]
        assert "node 'b' that holds" in message and "is down" in message, message
    health = TestClient(api.app).get("/api/v1/health").json()
    assert health["nodes"] == {"a": "up", "b": "down"} and health["node"] == "a"
    listed = {n["name"]: n for n in api.get("/api/v1/nodes").json()["items"]}
    assert listed["b"]["state"] == "down" and listed["b"]["cameras"] == ["gate"]
    cams = {c["name"]: c for c in api.get("/api/v1/cameras").json()["items"]}
    # gate is in no config here: listed because a node runs it, and shown as unknown while it is down.
    assert cams["gate"]["node"] == "b"
    assert cams["gate"]["health"]["state"] == "node-down"
    # An up node that does not answer (nothing listens on its address) is a 503 too, not a 500.
    with store.session() as session:
        session.execute(update(NodeRow).where(NodeRow.name == "b").values(last_seen=db_now(session)))
    r = api.get(f"/api/v1/tracks/{track_id}/thumbnails/0")
    assert r.status_code == 503 and "did not answer" in r.json()["error"]["message"]


def test_node_routes_refuse_unsigned_and_badly_signed_requests(api: TestClient) -> None:
    bare = TestClient(api.app)
    r = bare.get("/api/v1/node/media?path=x.jpg")
    assert r.status_code == 401 and "not signed" in r.json()["error"]["message"]
    path = "/api/v1/node/media?path=x.jpg"
    forged = sign("not-the-shared-secret-at-all", "b", "GET", path)
    r = bare.get(path, headers=forged)
    assert r.status_code == 401 and "does not match" in r.json()["error"]["message"]
    # Signed right: the route answers (404 here: this node has no such file), a user session is not needed.
    r = bare.get(path, headers=sign(SECRET, "b", "GET", path))
    assert r.status_code == 404, r.text
    # Another node asking for a clip is trusted with every camera; a missing subject is still a 404.
    for kind in ("event", "track"):
        path = f"/api/v1/node/clips/{kind}/999"
        r = bare.get(path, headers=sign(SECRET, "b", "GET", path))
        assert r.status_code == 404 and r.json()["error"]["message"] == f"no {kind} with id 999", r.text


@pytest.mark.both_databases
def test_metrics_say_which_nodes_are_up(store) -> None:
    from camsight.pipeline.latency import LatencyHistogram
    from camsight.service.metrics import SEARCH_BUCKETS, CamsightCollector

    def node_up() -> dict[str, float]:
        collector = CamsightCollector(store, Config, LatencyHistogram(SEARCH_BUCKETS))
        family = next(f for f in collector.collect() if f.name == "camsight_node_up")
        return {s.labels["node"]: s.value for s in family.samples}

    assert node_up() == {}  # a single box: no samples
    _register(store, "a", "ia", ["lobby"])
    _register(store, "b", "ib", ["gate"])
    _age(store, "b", 60.0)
    assert node_up() == {"a": 1.0, "b": 0.0}


def test_run_as_a_node_refuses_clearly_without_a_secret_or_with_a_bad_name_or_address(tmp_path: Path) -> None:
    from conftest import assert_clean_failure, cli_env, run_cli

    data = tmp_path / "data"
    env = cli_env()
    env.pop(NODE_SECRET_ENV, None)
    proc = run_cli("run", "--node", "a", "--data", data, "--port", "1", env=env)
    assert_clean_failure(proc, "a node needs the secret the nodes share", NODE_SECRET_ENV)
    env[NODE_SECRET_ENV] = SECRET
    assert_clean_failure(
        run_cli("run", "--node", "a b", "--data", data, env=env), "--node", "not a node name"
    )
    proc = run_cli("run", "--node", "a", "--host", "0.0.0.0", "--data", data, env=env)
    assert_clean_failure(proc, "--node-url is needed")
    proc = run_cli("run", "--node", "a", "--node-url", "ftp://x", "--data", data, env=env)
    assert_clean_failure(proc, "--node-url must be an http(s) URL")
    config = tmp_path / "site.yaml"
    config.write_text("cameras:\n  gate: {url: rtsp://10.0.0.5/live, node: b}\n")
    proc = run_cli("run", "--node", "a", "--only", "gate", "--config", config, "--data", data, env=env)
    assert_clean_failure(proc, "--only: camera 'gate' runs on node 'b'")
