"""camsight on a real PostgreSQL server (tests/postgres.py): what only a server with concurrent writers shows.

Track ids committed out of order, several alert deliverers on one outbox, several
job runners on one queue; and the PostgreSQL store chosen through the config or
``CAMSIGHT_DATABASE_URL``, with clear errors when it cannot be used.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from servers import HttpReceiver, wait_until
from sqlalchemy import event, select
from test_search_index_incremental import Feed, assert_same_as_rebuilt

from camsight.alerts.dispatcher import Dispatcher
from camsight.alerts.outbox import DELIVERED, enqueue, make_test_payload
from camsight.config import AlertsConfig, Config, RetryConfig, WebhookConfig
from camsight.search.engine import SearchEngine
from camsight.service.jobs import JobRunner
from camsight.store import repository as repo
from camsight.store.db import Store, open_store
from camsight.store.models import OutboxRow, Track

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store(tmp_path: Path, postgres_url: str):
    store = open_store(tmp_path / "data", url=postgres_url)
    yield store
    store.close()


def _full_url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def _waiting_for_advisory_lock(store: Store) -> bool:
    with store.engine.connect() as conn:
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        return bool(conn.exec_driver_sql(waiting).scalar())


# --------------------------------------------------------------------------- migrations


def test_the_migrations_build_exactly_the_models_schema_on_postgresql(pg_store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from camsight.store.db import MIGRATIONS
    from camsight.store.models import Base

    with pg_store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert context.get_current_revision() == ScriptDirectory(str(MIGRATIONS)).get_current_head()
        assert compare_metadata(context, Base.metadata) == []
        zone = conn.exec_driver_sql(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_name = 'tracks' AND column_name = 'start_at'"
        ).scalar()
    assert zone == "timestamp with time zone"


# --------------------------------------------------------------------------- track ids and the search index


def test_two_track_writers_commit_ids_in_order_so_the_index_only_appends(pg_store: Store) -> None:
    """Writer A takes an id and is slow to commit; writer B must not commit a higher id before it.

    Without the tracks lock B commits id n+1 first, the index appends it, and A's id n
    arrives below the index's highest id: the index then has to be rebuilt from scratch.
    """
    lobby, gate = Feed(pg_store, "lobby"), Feed(pg_store, "gate")
    lobby.add("blue")
    engine = SearchEngine(pg_store)
    engine.index_cache.get()
    inserted, release = threading.Event(), threading.Event()

    def pause_writer_a(session: object, _context: object) -> None:
        if threading.current_thread().name == "writer-a" and not inserted.is_set():
            inserted.set()  # A's track has its id, its transaction is open
            assert release.wait(30)

    event.listen(pg_store.sessions, "after_flush", pause_writer_a)
    try:
        a = threading.Thread(target=lobby.add, args=("red",), name="writer-a")
        b = threading.Thread(target=gate.add, args=("red",), name="writer-b")
        a.start()
        assert inserted.wait(30)
        b.start()
        wait_until(lambda: not b.is_alive() or _waiting_for_advisory_lock(pg_store), timeout=30)
        engine.index_cache.get()  # a search between the two commits
        release.set()
        a.join(30)
        b.join(30)
    finally:
        release.set()
        event.remove(pg_store.sessions, "after_flush", pause_writer_a)
    index = engine.index_cache.get()
    with pg_store.session() as session:
        rows = session.execute(select(Track.id, Track.camera_id).order_by(Track.id)).all()
    assert [cam for _, cam in rows] == [lobby.camera_id, lobby.camera_id, gate.camera_id]  # A's id < B's
    assert list(index.track_ids) == [track_id for track_id, _ in rows]  # nothing missed
    assert engine.index_cache.stats["full_builds"] == 1 and engine.index_cache.stats["appends"] >= 1
    with pg_store.session() as session:
        assert repo.tracks_revision(session) == 3  # both writers' revisions counted, none lost
    assert_same_as_rebuilt(pg_store, index)


def test_ids_committed_out_of_order_by_two_connections_are_not_missed(pg_store: Store) -> None:
    """A writer that skips the lock (another tool, an older camsight) commits a lower id late:
    the index still ends up with every row (it notices the count and rebuilds)."""
    lobby = Feed(pg_store, "lobby")
    lobby.add("blue")
    engine = SearchEngine(pg_store)
    assert len(engine.index_cache.get()) == 1
    insert = sa.text(
        "INSERT INTO tracks (source_id, camera_id, local_id, label, start_t, end_t, first_frame, last_frame,"
        " num_observations, confidence, speed_px_s, speed_bh_s, max_speed_px_s, heading, displacement_px,"
        " path_px, carried, labels_seen) VALUES (:s, :c, :l, 'person', 0, 1, 1, 2, 2, 0.9, 0, 0, 0,"
        " 'stationary', 0, 0, '{}', '{}') RETURNING id"
    )
    bump = sa.text("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS VARCHAR) WHERE key = :k")
    params = {"s": lobby.source_id, "c": lobby.camera_id}
    with pg_store.engine.connect() as first, pg_store.engine.connect() as second:
        early_id = first.execute(insert, {**params, "l": 100}).scalar_one()  # not committed yet
        late_id = second.execute(insert, {**params, "l": 101}).scalar_one()
        second.execute(bump, {"k": repo.REVISION_KEY})
        second.commit()  # the higher id is committed first
        assert late_id > early_id
        assert list(engine.index_cache.get().track_ids)[-1] == late_id
        first.execute(bump, {"k": repo.REVISION_KEY})
        first.commit()
    index = engine.index_cache.get()
    assert early_id in set(index.track_ids.tolist())
    assert_same_as_rebuilt(pg_store, index)


# --------------------------------------------------------------------------- alert outbox


def test_several_deliverers_on_one_outbox_deliver_each_message_exactly_once(
    pg_store: Store, postgres_url: str, tmp_path: Path
) -> None:
    receiver = HttpReceiver().start()
    receiver.delay_s = 0.01  # deliveries overlap with the other deliverers' claims
    try:
        alerts = AlertsConfig(
            webhooks=[WebhookConfig(name=f"hook{i}", url=f"{receiver.url}/{i}") for i in range(2)],
            retry=RetryConfig(initial_seconds=1, max_seconds=2),
        )
        n = 30
        order_of: dict[str, int] = {}
        with pg_store.session() as session:
            for i in range(n):
                payload = make_test_payload("gate")
                order_of[payload["uid"]] = i
                enqueue(session, alerts, payload)
        # Three deliverers, each with its own store (connection pool), as three processes or nodes.
        stores = [open_store(tmp_path / f"node{k}", url=postgres_url) for k in range(3)]
        dispatchers = [Dispatcher(s, alerts) for s in stores]
        stop = threading.Event()
        threads = [threading.Thread(target=d.run, args=(stop, 0.05)) for d in dispatchers]
        for t in threads:
            t.start()

        def delivered() -> int:
            with pg_store.session() as session:
                return len(session.scalars(select(OutboxRow.id).where(OutboxRow.status == DELIVERED)).all())

        try:
            wait_until(lambda: delivered() == 2 * n, timeout=60, what="every message delivered")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
            for s in stores:
                s.close()
        sent = Counter((r.path, r.json()["uid"]) for r in receiver.accepted)
        assert len(sent) == 2 * n and set(sent.values()) == {1}, sent.most_common(3)
        for i in range(2):  # and each sink's messages went out in order
            order = [order_of[r.json()["uid"]] for r in receiver.accepted if r.path.endswith(f"/{i}")]
            assert order == sorted(order)
    finally:
        receiver.stop()


# --------------------------------------------------------------------------- job queue


def test_two_job_runners_never_claim_the_same_job(pg_store: Store, postgres_url: str, tmp_path: Path) -> None:
    submitter = JobRunner(pg_store, Config())
    ids = {submitter.submit_index(tmp_path / f"clip{i}.mp4", "gate", by="olga").id for i in range(40)}
    stores = [open_store(tmp_path / f"node{k}", url=postgres_url) for k in range(2)]
    runners = [JobRunner(s, Config()) for s in stores]
    claimed: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def claim_all(k: int) -> None:
        start.wait(30)
        while (job_id := runners[k]._claim_next()) is not None:
            claimed[k].append(job_id)

    threads = [threading.Thread(target=claim_all, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in stores:
        s.close()
    both = claimed[0] + claimed[1]
    assert sorted(both) == sorted(ids) and len(set(both)) == len(both)
