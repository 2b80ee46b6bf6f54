"""The outbox on a real SQLite store: filters, order per sink, leases, backoff, giving up, re-queueing."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from camsight.alerts.outbox import (
    DELIVERED,
    FAILED,
    JITTER,
    PENDING,
    accepts,
    backoff_seconds,
    claim_next,
    enqueue,
    make_test_payload,
    mark_delivered,
    next_due_at,
    pending_count,
    retry_failed,
    schedule_retry,
    sink_stats,
    sinks_for,
)
from camsight.config import AlertsConfig, MqttConfig, RetryConfig, WebhookConfig
from camsight.store.db import Store
from camsight.store.models import Camera, EventRow, OutboxRow

# The store fixture runs each test on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.both_databases

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def payload(camera: str = "gate", severity: str = "high", kind: str = "start", **extra: object) -> dict:
    data = make_test_payload(camera, now=T0)
    data.update(type="zone_intrusion", rule="bays", severity=severity, kind=kind)
    data.update(extra)
    return data


def hook(name: str, **kw: object) -> WebhookConfig:
    return WebhookConfig(name=name, url="http://127.0.0.1:9/hook", **kw)


def rows(store: Store) -> list[OutboxRow]:
    with store.session() as session:
        return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def queue(store: Store, alerts: AlertsConfig, *payloads: dict, now: datetime = T0) -> None:
    with store.session() as session:
        for p in payloads:
            enqueue(session, alerts, p, now=now)


def claim(store: Store, sink: str, now: datetime = T0, lease_s: float = 30.0):
    with store.session() as session:
        return claim_next(session, sink, lease_s=lease_s, now=now)


# --------------------------------------------------------------------------- filters


def test_filter_by_camera_and_severity() -> None:
    f = hook("a", cameras=["gate"], min_severity="medium")
    assert accepts(f, payload("gate", "medium"))
    assert accepts(f, payload("gate", "critical"))
    assert not accepts(f, payload("gate", "low"))
    assert not accepts(f, payload("lobby", "critical"))
    assert accepts(hook("b"), payload("anything", "info"))


def test_enqueue_adds_one_row_per_accepting_sink(store: Store) -> None:
    alerts = AlertsConfig(
        webhooks=[hook("all"), hook("gate-only", cameras=["gate"]), hook("urgent", min_severity="critical")],
        mqtt=MqttConfig(host="127.0.0.1", min_severity="medium"),
    )
    assert sinks_for(alerts, payload("gate", "high")) == ["all", "gate-only", "mqtt"]
    with store.session() as session:
        assert enqueue(session, alerts, payload("gate", "high")) == 3
        assert enqueue(session, alerts, payload("lobby", "low")) == 1
        assert enqueue(session, alerts, payload("lobby", "critical")) == 3
    got = [(r.sink, r.payload["camera"], r.payload["severity"]) for r in rows(store)]
    assert got == [
        ("all", "gate", "high"),
        ("gate-only", "gate", "high"),
        ("mqtt", "gate", "high"),
        ("all", "lobby", "low"),
        ("all", "lobby", "critical"),
        ("urgent", "lobby", "critical"),
        ("mqtt", "lobby", "critical"),
    ]
    first = rows(store)[0]
    assert (first.status, first.attempts, first.kind) == (PENDING, 0, "start")
    assert first.event_uid == first.payload["uid"]


def test_no_sinks_means_no_rows(store: Store) -> None:
    with store.session() as session:
        assert enqueue(session, AlertsConfig(), payload()) == 0
    assert rows(store) == []


def test_enqueue_commits_with_the_event_or_not_at_all(store: Store) -> None:
    alerts = AlertsConfig(webhooks=[hook("a")])
    p = payload()
    with pytest.raises(RuntimeError), store.session() as session:
        cam = Camera(name="gate")
        session.add(cam)
        session.flush()
        event = EventRow(uid=p["uid"], camera_id=cam.id, type=p["type"], rule=p["rule"], severity="high")
        event.start_t, event.summary = 0.0, "x"
        session.add(event)
        enqueue(session, alerts, p)
        raise RuntimeError("the events code failed after enqueueing")
    assert rows(store) == []
    with store.session() as session:
        assert session.scalars(select(EventRow)).all() == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"uid": ""}, "uid"),
        ({"kind": "middle"}, "kind"),
        ({"severity": "extreme"}, "severity"),
        ({"details": {"when": datetime.now()}}, "JSON"),
        ({"camera": None}, "camera"),
    ],
)
def test_bad_payload_is_a_programming_error(store: Store, change: dict, message: str) -> None:
    with store.session() as session, pytest.raises(ValueError, match=message):
        enqueue(session, AlertsConfig(webhooks=[hook("a")]), payload() | change)


def test_explicit_sinks_bypass_filters_but_must_exist(store: Store) -> None:
    alerts = AlertsConfig(webhooks=[hook("urgent", min_severity="critical")])
    with store.session() as session:
        assert enqueue(session, alerts, payload(severity="info"), sinks=["urgent"]) == 1
        with pytest.raises(ValueError, match="nope"):
            enqueue(session, alerts, payload(), sinks=["nope"])


# --------------------------------------------------------------------------- order and claims


def test_each_sink_delivers_oldest_first_and_a_failing_head_blocks_only_its_sink(store: Store) -> None:
    alerts = AlertsConfig(webhooks=[hook("a"), hook("b")], retry=RetryConfig(initial_seconds=10))
    events = [payload(uid=uuid.uuid4().hex) for _ in range(3)]
    queue(store, alerts, *events)
    uids = [e["uid"] for e in events]

    head_a = claim(store, "a")
    assert head_a.event_uid == uids[0]
    # Leased: neither this nor another process gets sink a until the attempt is recorded.
    assert claim(store, "a") is None
    with store.session() as session:
        outcome = schedule_retry(session, head_a.id, "HTTP 500", alerts.retry, now=T0, rng=lambda: 0.0)
    assert outcome.status == PENDING and outcome.delay_s == 10.0
    # a's head waits for its retry, and a's later rows wait behind it...
    assert claim(store, "a", now=T0 + timedelta(seconds=5)) is None
    # ...while b delivers all of its rows, in order.
    delivered_b = []
    while (msg := claim(store, "b", now=T0 + timedelta(seconds=5))) is not None:
        delivered_b.append(msg.event_uid)
        with store.session() as session:
            mark_delivered(session, msg.id)
    assert delivered_b == uids
    # When a's retry is due, the same head comes back first.
    again = claim(store, "a", now=T0 + timedelta(seconds=10))
    assert again.id == head_a.id and again.attempts == 1
    with store.session() as session:
        mark_delivered(session, again.id)
    assert claim(store, "a", now=T0 + timedelta(seconds=10)).event_uid == uids[1]


def test_a_lease_runs_out_so_a_killed_delivery_is_sent_again(store: Store) -> None:
    queue(store, AlertsConfig(webhooks=[hook("a")]), payload())
    first = claim(store, "a", lease_s=30)
    assert claim(store, "a", now=T0 + timedelta(seconds=29)) is None
    again = claim(store, "a", now=T0 + timedelta(seconds=31))
    assert again is not None and again.id == first.id
    assert rows(store)[0].status == PENDING


def test_delivered_rows_are_kept_as_a_log(store: Store) -> None:
    queue(store, AlertsConfig(webhooks=[hook("a")]), payload())
    msg = claim(store, "a")
    with store.session() as session:
        mark_delivered(session, msg.id, now=T0 + timedelta(seconds=1))
    (row,) = rows(store)
    assert (row.status, row.attempts) == (DELIVERED, 1)
    assert row.delivered_at is not None
    assert claim(store, "a", now=T0 + timedelta(hours=1)) is None
    with store.session() as session:
        assert next_due_at(session, "a") is None
        assert pending_count(session) == 0


def test_a_late_outcome_does_not_undo_a_delivery(store: Store) -> None:
    """A slow attempt whose lease ran out reports after another dispatcher delivered the row."""
    retry = RetryConfig()
    queue(store, AlertsConfig(webhooks=[hook("a")], retry=retry), payload())
    slow = claim(store, "a", lease_s=1)
    fast = claim(store, "a", now=T0 + timedelta(seconds=2))
    assert fast.id == slow.id
    with store.session() as session:
        mark_delivered(session, fast.id)
        assert schedule_retry(session, slow.id, "timed out", retry, now=T0).status == DELIVERED
        mark_delivered(session, slow.id)
    (row,) = rows(store)
    assert (row.status, row.attempts, row.last_error) == (DELIVERED, 1, None)


def test_rows_not_yet_written_are_not_due(store: Store) -> None:
    queue(store, AlertsConfig(webhooks=[hook("a")]), payload(), now=T0 + timedelta(seconds=60))
    assert claim(store, "a", now=T0) is None
    assert claim(store, "a", now=T0 + timedelta(seconds=60)) is not None


# --------------------------------------------------------------------------- backoff


def test_backoff_doubles_up_to_the_maximum() -> None:
    retry = RetryConfig(initial_seconds=2, max_seconds=60)
    bases = [backoff_seconds(retry, n, rng=lambda: 0.0) for n in range(1, 10)]
    assert bases == [2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert backoff_seconds(retry, 10_000, rng=lambda: 0.0) == 60  # no overflow


def test_backoff_jitter_stays_within_bounds() -> None:
    retry = RetryConfig(initial_seconds=1, max_seconds=300)
    rng = random.Random(7)
    for attempts in range(1, 12):
        base = min(300.0, 2.0 ** (attempts - 1))
        samples = [backoff_seconds(retry, attempts, rng=rng.random) for _ in range(200)]
        assert all((1 - JITTER) * base <= s <= base for s in samples)
        # Real jitter: the samples spread over most of the allowed range.
        assert max(samples) - min(samples) > 0.8 * JITTER * base
    assert backoff_seconds(retry, 3, rng=lambda: 1.0) == pytest.approx(4 * (1 - JITTER))


def test_schedule_retry_records_attempts_error_and_growing_delays(store: Store) -> None:
    retry = RetryConfig(initial_seconds=2, max_seconds=100)
    queue(store, AlertsConfig(webhooks=[hook("a")], retry=retry), payload())
    now, delays = T0, []
    for _ in range(5):
        msg = claim(store, "a", now=now)
        assert msg is not None
        with store.session() as session:
            outcome = schedule_retry(session, msg.id, f"HTTP 503 at {now:%S}", retry, now=now)
        assert (1 - JITTER) * 2 * 2 ** len(delays) <= outcome.delay_s <= 2 * 2 ** len(delays)
        assert outcome.next_attempt_at == now + timedelta(seconds=outcome.delay_s)
        delays.append(outcome.delay_s)
        now = outcome.next_attempt_at
    (row,) = rows(store)
    assert row.attempts == 5 and row.status == PENDING
    assert row.last_error.startswith("HTTP 503")
    assert delays == sorted(delays)


def test_retry_after_hint_is_respected_but_capped(store: Store) -> None:
    retry = RetryConfig(initial_seconds=1, max_seconds=30)
    queue(store, AlertsConfig(webhooks=[hook("a")], retry=retry), payload())
    msg = claim(store, "a")
    with store.session() as session:
        assert schedule_retry(session, msg.id, "429", retry, min_delay_s=20, now=T0).delay_s == 20
        assert schedule_retry(session, msg.id, "429", retry, min_delay_s=3600, now=T0).delay_s == 30


def test_max_attempts_marks_failed_and_unblocks_the_sink(store: Store) -> None:
    retry = RetryConfig(initial_seconds=1, max_seconds=1, max_attempts=3)
    alerts = AlertsConfig(webhooks=[hook("a")], retry=retry)
    first, second = payload(uid="1" * 32), payload(uid="2" * 32)
    queue(store, alerts, first, second)
    now = T0
    for attempt in range(1, 4):
        msg = claim(store, "a", now=now)
        assert msg.event_uid == first["uid"]
        with store.session() as session:
            outcome = schedule_retry(session, msg.id, "HTTP 404 from http://127.0.0.1:9/hook", retry, now=now)
        assert outcome.attempts == attempt
        now += timedelta(seconds=2)
    assert outcome.status == FAILED
    assert [r.status for r in rows(store)] == [FAILED, PENDING]
    # The given-up row no longer holds the queue.
    assert claim(store, "a", now=now).event_uid == second["uid"]
    with store.session() as session:
        stats = sink_stats(session, ["a"])["a"]
    assert (stats.pending, stats.failed, stats.delivered) == (1, 1, 0)


def test_retry_failed_requeues_with_fresh_attempts(store: Store) -> None:
    retry = RetryConfig(initial_seconds=1, max_attempts=1)
    alerts = AlertsConfig(webhooks=[hook("a"), hook("b")], retry=retry)
    queue(store, alerts, payload())
    for sink in ("a", "b"):
        msg = claim(store, sink)
        with store.session() as session:
            assert schedule_retry(session, msg.id, "down", retry, now=T0).status == FAILED
    with store.session() as session:
        assert retry_failed(session, "a", now=T0) == 1
    assert [(r.sink, r.status, r.attempts) for r in rows(store)] == [("a", PENDING, 0), ("b", FAILED, 1)]
    assert rows(store)[0].last_error == "down"
    assert claim(store, "a") is not None
    with store.session() as session:
        assert retry_failed(session, now=T0) == 1
        assert retry_failed(session, now=T0) == 0
    assert [r.status for r in rows(store)] == [PENDING, PENDING]


# --------------------------------------------------------------------------- status


def test_sink_stats_counts_ages_and_errors(store: Store) -> None:
    retry = RetryConfig(initial_seconds=5)
    alerts = AlertsConfig(webhooks=[hook("a"), hook("quiet")], retry=retry)
    queue(store, alerts, payload(), payload(), now=T0)
    msg = claim(store, "a")
    with store.session() as session:
        mark_delivered(session, msg.id, now=T0)
    msg = claim(store, "a")
    with store.session() as session:
        schedule_retry(session, msg.id, "HTTP 500 from http://127.0.0.1:9/hook", retry, now=T0, rng=lambda: 0)
    with store.session() as session:
        stats = sink_stats(session, ["a", "quiet", "unused"])
    a = stats["a"]
    assert (a.pending, a.delivered, a.failed, a.head_attempts) == (1, 1, 0, 1)
    assert a.last_error.startswith("HTTP 500")
    assert a.oldest_pending_at == T0
    assert a.next_attempt_at == T0 + timedelta(seconds=5)
    assert a.oldest_pending_age(T0 + timedelta(seconds=90)) == 90
    assert stats["quiet"].pending == 2 and stats["quiet"].last_error is None
    assert stats["unused"].pending == 0 and stats["unused"].oldest_pending_age() is None
    assert a.to_dict(T0)["oldest_pending_age_s"] == 0
