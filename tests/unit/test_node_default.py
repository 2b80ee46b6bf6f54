"""Cameras without ``node:`` when nodes are used: ``nodes.default`` runs them, else everyone says so.

A camera with no ``node:`` of its own runs on the node ``nodes.default`` names. With nodes in
use and no default, no node runs it: a ``camsight run --node`` process logs a warning naming it,
``camsight doctor`` and ``camsight config check`` warn, and the cameras list (API and CLI) shows
it ``not-assigned``. The real two-process check is tests/integration/test_nodes_start_together.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from camsight.api.app import create_app
from camsight.auth import users
from camsight.auth.audit import Actor
from camsight.config import Config, validate_config
from camsight.config.nodes import NODE_SECRET_ENV, NodesConfig
from camsight.errors import ConfigError
from camsight.service.nodes import NodeContext
from camsight.service.supervisor import Supervisor
from camsight.store.nodes import node_states

SECRET = "a-shared-node-secret-for-tests"
PASSWORD = "correct horse battery"
URL = "rtsp://127.0.0.1:9/live"


def _config(default: str | None = None, extra: dict | None = None) -> Config:
    """yard on node a, gate and porch without ``node:``, shed disabled, attic without a URL."""
    cameras = {
        "yard": {"url": URL, "node": "a"},
        "gate": {"url": URL},
        "porch": {"url": URL},
        "shed": {"url": URL, "enabled": False},
        "attic": {},
        **(extra or {}),
    }
    nodes = {"default": default} if default else {}
    return validate_config({"cameras": cameras, "nodes": nodes})


def test_a_camera_without_node_runs_on_the_default_node_and_only_there(store) -> None:
    config = _config(default="b")
    assert config.node_of("yard") == "a" and config.node_of("gate") == "b" and config.node_of("nope") is None
    assert config.uses_nodes() and config.unassigned_cameras() == []
    assert Supervisor(config, store, node="a").cameras == ["yard"]
    assert Supervisor(config, store, node="b").cameras == ["gate", "porch"]
    # A process without --node runs none of them: each camera still runs in exactly one place.
    assert Supervisor(config, store, node=None).cameras == []
    # A config change applied while running moves cameras with the default, too.
    supervisor = Supervisor(config, store, node="b")
    changed = supervisor.apply(_config(default="a"))
    assert sorted(changed["stopped"]) == ["gate", "porch"] and supervisor.cameras == []


def test_without_a_default_the_cameras_no_node_runs_are_named() -> None:
    config = _config()
    assert config.node_of("gate") is None
    # Only enabled cameras with a URL: the disabled and the URL-less run nowhere anyway.
    assert config.unassigned_cameras() == ["gate", "porch"]
    # One box (no camera names a node, no default): nothing to say, every camera runs there.
    one_box = validate_config({"cameras": {"gate": {"url": URL}}})
    assert not one_box.uses_nodes() and one_box.unassigned_cameras() == []
    with pytest.raises(ConfigError, match=r"nodes.default: .*not a node name"):
        validate_config({"nodes": {"default": "a b"}})


def test_a_node_started_with_cameras_no_node_runs_logs_them(
    tmp_path: Path, store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from camsight.app import Service

    monkeypatch.setenv(NODE_SECRET_ENV, SECRET)
    config_path = tmp_path / "config.yaml"
    with caplog.at_level(logging.WARNING, logger="camsight.app"):
        service = Service(
            _config(), store, config_path=config_path, web=False, node="a", node_url="http://127.0.0.1:2"
        )
    try:
        assert service.live == ["yard"]
        warned = [r.getMessage() for r in caplog.records if "no node runs" in r.getMessage()]
        assert warned == [
            "no node runs cameras 'gate', 'porch': they have no `node:` and nodes.default is unset "
            "(give each a `node:`, or set nodes.default)"
        ]
        # The heartbeat tells every node which cameras this one runs.
        assert {n.name: n.cameras for n in node_states(store, 6.0)} == {"a": ["yard"]}
    finally:
        service.close()


@pytest.mark.both_databases
def test_the_cameras_list_of_a_node_shows_cameras_no_node_runs_as_not_assigned(store) -> None:
    with store.session() as session:
        users.create_user(session, "root", PASSWORD, "admin", by=Actor.system())
    store.node = "a"  # as `camsight run --node a` opens it
    config = _config(extra={"barn": {"url": URL, "node": "c"}})
    app = create_app(config, store)
    app.state.node = NodeContext("a", NodesConfig(), SECRET, "http://127.0.0.1:2")
    client = TestClient(app)
    assert client.post("/api/v1/auth/login", json={"name": "root", "password": PASSWORD}).status_code == 200
    cams = {c["name"]: c for c in client.get("/api/v1/cameras").json()["items"]}
    for name in ("gate", "porch"):
        assert cams[name]["node"] is None
        assert cams[name]["health"]["state"] == "not-assigned"
        assert "no node runs camera" in cams[name]["health"]["error"]
    assert cams["barn"]["node"] == "c" and cams["barn"]["health"] is None  # assigned, not seen yet
    assert cams["shed"]["health"] is None  # disabled: not expected to run anywhere
    # With a default, the same camera is that node's, in the list as everywhere.
    app.state.config = _config(default="b")
    cams = {c["name"]: c for c in client.get("/api/v1/cameras").json()["items"]}
    assert cams["gate"]["node"] == "b" and cams["gate"]["health"] is None
    # A process without --node runs such cameras itself: its list reports their real health.
    store.node = None
    app.state.config = config
    cams = {c["name"]: c for c in client.get("/api/v1/cameras").json()["items"]}
    assert cams["gate"]["health"] is None


def test_doctor_config_check_and_cameras_warn_about_cameras_no_node_runs(tmp_path: Path) -> None:
    from conftest import cli_env, run_cli

    from camsight.config import choose_config
    from camsight.service.doctor import _Checks, _nodes

    path = tmp_path / "site.yaml"
    path.write_text(f"cameras:\n  yard: {{url: '{URL}', node: a}}\n  gate: {{url: '{URL}'}}\n")
    checks = _Checks()
    _nodes(checks, choose_config(path, tmp_path / "data"))
    (check,) = checks.items
    assert check.status == "warn" and check.name == "nodes"
    assert check.detail.startswith("cameras per node: a 1; no node runs camera 'gate'")

    proc = run_cli("config", "check", path)
    assert proc.returncode == 0 and "config OK" in proc.stdout
    assert "warning: no node runs camera 'gate'" in proc.stderr and "Traceback" not in proc.stderr

    data = tmp_path / "data"
    from camsight.store.db import open_store

    open_store(data).close()
    proc = run_cli("cameras", "--config", path, "--data", data, "--json", env=cli_env())
    assert proc.returncode == 0, proc.stderr
    items = {c["camera"]: c for c in json.loads(proc.stdout)}
    assert items["gate"]["state"] == "not assigned" and "yard" not in items

    path.write_text(path.read_text() + "nodes: {default: b}\n")
    checks = _Checks()
    _nodes(checks, choose_config(path, tmp_path / "data"))
    assert [(c.status, c.detail) for c in checks.items] == [
        ("ok", "cameras per node: a 1, b 1 (nodes.default: b)")
    ]
    proc = run_cli("config", "check", path)
    assert proc.returncode == 0 and "warning" not in proc.stderr
