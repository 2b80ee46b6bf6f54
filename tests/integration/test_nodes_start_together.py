"""Nodes started at the same moment on one fresh PostgreSQL database, and the node that takes the
cameras without ``node:``.

Two processes that open an empty database together both ran the migrations: the second one
failed on a duplicate type (``pg_type_typname_nsp_index``) and the node did not start. The
migrations now run under a PostgreSQL advisory lock. Checked twice: two processes opening
the store and making the first admin at the same instant (a barrier), and two real
``camsight run --node`` processes started together, which must both come up, with one
admin, one ``user.create`` in the audit log and the schema at the newest revision. The
config names ``nodes.default: b``, so the camera without ``node:`` runs on node b.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import CAMSIGHT, run_cli
from servers import free_port, health, wait_for
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.slow

SECRET = "the-nodes-shared-secret-0123456789"


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(_dsn(url)) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[return-value]


def _head() -> str:
    from alembic.script import ScriptDirectory

    from camsight.store.db import MIGRATIONS

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()  # type: ignore[return-value]


def _open_at_once(url: str, root: str, barrier: Any, results: Any) -> None:
    """In a child process: wait for the other one, then open the store and make the first admin."""
    from camsight.auth.users import bootstrap_admin
    from camsight.store.db import open_store

    barrier.wait()
    try:
        store = open_store(Path(root), url=url)
        try:
            results.put(("ok", bootstrap_admin(store, None) is not None))
        finally:
            store.close()
    except Exception as exc:  # reported to the test, which shows it
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def test_two_processes_opening_an_empty_database_at_once_both_succeed(
    tmp_path: Path, postgres_url: str
) -> None:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_open_at_once, args=(postgres_url, str(tmp_path / f"d{i}"), barrier, results))
        for i in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    outcomes = sorted(results.get(timeout=5) for _ in procs)
    # Both opened the store; exactly one of them made the admin (the other found it made).
    assert outcomes == [("ok", False), ("ok", True)], outcomes
    assert _query(postgres_url, "SELECT version_num FROM alembic_version") == [(_head(),)]
    assert _query(postgres_url, "SELECT name FROM users") == [("admin",)]
    assert _query(postgres_url, "SELECT count(*) FROM audit_log WHERE action = 'user.create'") == [(1,)]


def test_two_nodes_started_together_on_an_empty_database_and_the_default_node(
    tmp_path: Path, postgres_url: str
) -> None:
    closed = free_port()  # nothing listens: the cameras keep reconnecting, which is all this needs
    config = tmp_path / "site.yaml"
    config.write_text(
        f"""
store: {{url: "{postgres_url}"}}
nodes: {{default: b}}
cameras:
  yard: {{url: "rtsp://127.0.0.1:{closed}/yard", node: a, record: {{mode: "off"}}}}
  gate: {{url: "rtsp://127.0.0.1:{closed}/gate", record: {{mode: "off"}}}}
"""
    )
    env = {**os.environ, "CAMSIGHT_NODE_SECRET": SECRET, "CAMSIGHT_LOG": "info"}
    for name in ("CAMSIGHT_DATABASE_URL", "CAMSIGHT_ADMIN_PASSWORD", "CAMSIGHT_CONFIG"):
        env.pop(name, None)
    nodes: dict[str, tuple[subprocess.Popen, int, Path]] = {}
    try:
        # Both at once, on a database nobody has migrated yet.
        for name in ("a", "b"):
            port, log = free_port(), tmp_path / f"{name}.log"
            with log.open("w") as out:
                proc = subprocess.Popen(
                    [CAMSIGHT, "run", "--node", name, "--config", config, "--data", tmp_path / name,
                     "--port", str(port)],
                    stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                )  # fmt: skip
            nodes[name] = (proc, port, log)

        def both_up() -> bool:
            for name, (proc, _port, log) in nodes.items():
                assert proc.poll() is None, f"node {name} exited:\n{log.read_text()[-4000:]}"
            return all(
                (health(f"http://127.0.0.1:{port}") or {}).get("nodes") == {"a": "up", "b": "up"}
                for _, port, _ in nodes.values()
            )

        wait_for(both_up, 120)
        assert _query(postgres_url, "SELECT version_num FROM alembic_version") == [(_head(),)]
        # One admin, made once: one node printed its one-time password, the other found it made.
        assert _query(postgres_url, "SELECT name FROM users") == [("admin",)]
        assert _query(postgres_url, "SELECT count(*) FROM audit_log WHERE action = 'user.create'") == [(1,)]
        printed = [n for n, (_, _, log) in nodes.items() if "one-time password" in log.read_text()]
        assert len(printed) == 1, printed
        # The camera without `node:` is node b's (nodes.default), as every node sees it.
        listed = run_cli("nodes", "--config", config, "--data", tmp_path / "a", "--json")
        assert listed.returncode == 0, listed.stderr
        cameras = {n["name"]: n["cameras"] for n in json.loads(listed.stdout)}
        assert cameras == {"a": ["yard"], "b": ["gate"]}
        assert not any("no node runs" in log.read_text() for _, _, log in nodes.values())
    finally:
        for proc, _, _ in nodes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc, _, _ in nodes.values():
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # camera workers left behind
