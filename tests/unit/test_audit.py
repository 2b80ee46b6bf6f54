"""The audit log: appends chain by hash, verify names the first tampered entry, parallel appends are safe."""

from __future__ import annotations

import csv
import io
import itertools
import json
import multiprocessing as mp
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from camsight.auth import audit
from camsight.auth.audit import GENESIS, Action, Actor
from camsight.errors import CamsightError
from camsight.store.db import open_store
from camsight.store.models import AuditLogRow, utcnow

# The store fixture runs each test on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.both_databases


def sql(store, statement, params=()):
    """Tamper as an attacker would: plain sqlite3 (or psycopg), behind camsight's back."""
    if store.dialect == "postgresql":
        import psycopg

        dsn = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as pg:
            cursor = pg.execute(statement.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []
    con = sqlite3.connect(store.root / "camsight.db")
    try:
        rows = con.execute(statement, params).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def fill(store, n=5):
    return [
        audit.record(
            store, f"user{i}", Action.SEARCH, target="lobby", detail={"query": f"red hat {i}"}, ip="10.0.0.1"
        )
        for i in range(n)
    ]


def test_append_chains_and_verifies(store):
    entries = fill(store, 5)
    assert [e.id for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    result = audit.verify(store)
    assert result.ok and result.entries == 5 and result.head_id == 5 and result.head_hash == entries[-1].hash
    assert result.message == "audit chain intact: 5 entries"
    assert audit.verify(store, expect=entries[2].hash[:16]).ok


def test_empty_log_verifies(store):
    result = audit.verify(store)
    assert result.ok and result.entries == 0


def test_entry_fields_round_trip(store):
    e = audit.record(
        store,
        Actor("alice", "10.0.0.9"),
        "clip.view",
        target="track 42",
        detail={"camera": "lobby", "span": (1.5, 3.0), "n": 3, "ü": "ß"},
    )
    (row,) = audit.list_entries(store).entries
    assert row == e
    assert row.ip == "10.0.0.9" and row.detail["span"] == [1.5, 3.0] and row.at.tzinfo is not None
    with pytest.raises(ValueError, match="not JSON"):
        audit.record(store, "alice", "search", detail={"score": float("nan")})
    with pytest.raises(ValueError, match="1 to 64"):
        audit.record(store, "alice", "")
    assert audit.verify(store).ok


def test_record_joins_the_callers_transaction(store):
    fill(store, 2)
    with pytest.raises(RuntimeError), store.session() as session:
        audit.record(session, "alice", Action.USER_UPDATE, target="bob")
        raise RuntimeError("the change failed")
    assert len(audit.list_entries(store).entries) == 2
    audit.record(store, "alice", Action.USER_UPDATE, target="bob")
    assert audit.verify(store).ok and audit.verify(store).entries == 3


@pytest.mark.parametrize(
    ("column", "value"),
    [("detail", json.dumps({"query": "blue hat 2"})), ("actor", "someone-else"), ("ip", "192.0.2.1")],
)
def test_changed_entry_is_named(store, column, value):
    fill(store, 5)
    sql(store, f"UPDATE audit_log SET {column} = ? WHERE id = 3", (value,))
    result = audit.verify(store)
    assert not result.ok and result.broken_id == 3 and result.entries == 2
    assert "changed" in result.reason
    assert result.message.startswith("audit chain broken at entry 3:")


def test_changed_time_is_named(store):
    fill(store, 3)
    sql(store, "UPDATE audit_log SET at = '2020-01-01 00:00:00.000000' WHERE id = 2")
    assert audit.verify(store).broken_id == 2


def test_deleted_middle_entry_is_named(store):
    fill(store, 5)
    sql(store, "DELETE FROM audit_log WHERE id = 3")
    result = audit.verify(store)
    assert not result.ok and result.broken_id == 4
    assert "missing" in result.reason and "entry 2" in result.reason


def test_deleted_first_entry_is_named(store):
    fill(store, 3)
    sql(store, "DELETE FROM audit_log WHERE id = 1")
    result = audit.verify(store)
    assert result.broken_id == 2 and "first entry" in result.reason


def test_deleted_newest_entries_are_noticed(store):
    fill(store, 5)
    sql(store, "DELETE FROM audit_log WHERE id >= 4")
    result = audit.verify(store)
    assert not result.ok and result.broken_id == 5 and "newest entries were deleted" in result.reason
    assert "ends at entry 3" in result.reason


def test_deleted_newest_then_append_is_a_gap(store):
    fill(store, 5)
    sql(store, "DELETE FROM audit_log WHERE id = 5")
    audit.record(store, "alice", Action.SEARCH)
    result = audit.verify(store)
    # AUTOINCREMENT: the id 5 is not reused, and the new entry still links to the deleted one.
    assert result.broken_id == 6 and "missing" in result.reason


def test_reordered_entries_are_named(store):
    fill(store, 5)
    sql(store, "UPDATE audit_log SET id = -1 WHERE id = 2")
    sql(store, "UPDATE audit_log SET id = 2 WHERE id = 3")
    sql(store, "UPDATE audit_log SET id = 3 WHERE id = -1")
    result = audit.verify(store)
    assert result.broken_id == 2 and "out of order" in result.reason


def test_rewritten_and_rehashed_entry_is_caught_by_its_successor(store):
    entries = fill(store, 4)
    e = entries[1]
    forged = audit.entry_hash(e.prev_hash, e.at, e.actor, e.action, e.target, {"query": "nothing"}, e.ip)
    sql(
        store,
        "UPDATE audit_log SET detail = ?, hash = ? WHERE id = 2",
        (json.dumps({"query": "nothing"}), forged),
    )
    assert audit.verify(store).broken_id == 3


def test_full_rewrite_is_caught_by_an_expected_head(store):
    entries = fill(store, 3)
    noted = entries[-1].hash
    sql(store, "DELETE FROM audit_log")
    sql(store, "DELETE FROM meta WHERE key = 'audit.head'")
    fill(store, 3)  # a forger's consistent new chain
    assert audit.verify(store).ok
    result = audit.verify(store, expect=noted[:20])
    assert not result.ok and "not in the chain" in result.reason
    with pytest.raises(CamsightError, match="hex"):
        audit.verify(store, expect="xyz")


def test_deleted_head_record_is_noticed(store):
    fill(store, 2)
    sql(store, "DELETE FROM meta WHERE key = 'audit.head'")
    result = audit.verify(store)
    assert not result.ok and result.broken_id == 2 and "head" in result.reason


def _append_many(data_dir: str, url: str | None, who: str, n: int, barrier) -> None:
    s = open_store(Path(data_dir), url=url)
    try:
        barrier.wait(60)  # start together, so the appends really race
        for i in range(n):
            audit.record(s, who, Action.SEARCH, target="lobby", detail={"i": i})
            # A breath between appends: else SQLite's busy back-off can let one process run alone.
            time.sleep(0.001)
    finally:
        s.close()


@pytest.mark.slow
def test_concurrent_appends_from_two_processes_keep_the_chain(store):
    # (Reading the head before taking the write lock fails this test within a few appends.)
    # On PostgreSQL the children race for the advisory lock instead of SQLite's write lock.
    url = None if store.dialect == "sqlite" else store.engine.url.render_as_string(hide_password=False)
    store.close()  # only the children write
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    n = 100
    procs = [
        ctx.Process(target=_append_many, args=(str(store.root), url, f"p{k}", n, barrier)) for k in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    result = audit.verify(store)
    assert result.ok, result.message
    assert result.entries == 2 * n
    with store.sessions() as session:
        actors = session.execute(select(AuditLogRow.actor).order_by(AuditLogRow.id)).scalars().all()
    assert actors.count("p0") == n and actors.count("p1") == n
    # The two really ran at the same time: their entries interleave.
    switches = sum(1 for a, b in itertools.pairwise(actors) if a != b)
    assert switches >= 2


def test_list_entries_pages_and_filters(store):
    fill(store, 5)
    audit.record(store, "admin", Action.USER_CREATE, target="bob")
    page = audit.list_entries(store, limit=2)
    assert [e.id for e in page.entries] == [6, 5] and page.next_before == 5
    page = audit.list_entries(store, limit=2, before_id=page.next_before)
    assert [e.id for e in page.entries] == [4, 3]
    page = audit.list_entries(store, limit=10, before_id=3)
    assert [e.id for e in page.entries] == [2, 1] and page.next_before is None
    assert [e.id for e in audit.list_entries(store, actor="user2").entries] == [3]
    assert [e.id for e in audit.list_entries(store, action="user.create").entries] == [6]
    assert audit.list_entries(store, since=utcnow() + timedelta(minutes=1)).entries == []


def test_csv_export(store, tmp_path):
    t0 = utcnow()
    audit.record(store, "alice", Action.LOGIN_SUCCESS, target="alice", ip="10.0.0.5", now=t0)
    audit.record(
        store,
        "alice",
        Action.SEARCH,
        detail={"query": '=HYPERLINK("x")', "camera": "lobby"},
        now=t0 + timedelta(hours=1),
    )
    audit.record(
        store,
        "anonymous",
        Action.LOGIN_FAILURE,
        target="-bob",
        detail={"reason": "unknown user"},
        now=t0 + timedelta(hours=2),
    )
    out = tmp_path / "audit.csv"
    assert audit.export_csv(store, out) == 3
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert list(rows[0]) == list(audit.CSV_COLUMNS)
    assert [r["action"] for r in rows] == ["login.success", "search", "login.failure"]
    assert rows[0]["actor"] == "alice" and rows[0]["ip"] == "10.0.0.5" and rows[0]["target"] == "alice"
    assert rows[0]["at"].startswith(t0.isoformat()[:19]) and rows[0]["at"].endswith("+00:00")
    assert json.loads(rows[1]["detail"])["query"] == '=HYPERLINK("x")'  # inside JSON: starts with {
    assert rows[2]["target"] == "'-bob"  # a spreadsheet must not run it as a formula
    assert rows[1]["prev_hash"] == rows[0]["hash"] and len(rows[2]["hash"]) == 64
    assert not (tmp_path / "audit.csv.partial").exists()
    # A span: since inclusive, until exclusive.
    buf = io.StringIO()
    assert audit.export_csv(store, buf, since=t0 + timedelta(minutes=30), until=t0 + timedelta(hours=2)) == 1
    assert "search" in buf.getvalue() and "login" not in buf.getvalue()
    with pytest.raises(CamsightError, match="cannot write"):
        audit.export_csv(store, tmp_path / "missing-dir" / "a.csv")
