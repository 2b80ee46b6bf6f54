"""The persisted outbox: one row per (event change, sink), delivered at least once, in order per sink.

The events code calls :func:`enqueue` inside the transaction that stores the
event, so an event and its alerts are committed together. A dispatcher then
takes each sink's oldest pending row (:func:`claim_next`), hands it to the
sink and records the outcome (:func:`mark_delivered` or
:func:`schedule_retry`). A row is marked delivered only after the receiver
accepted it: a process killed in between leaves the row pending and it is
sent again (receivers de-duplicate by ``uid`` + ``kind``).

Ordering: a sink receives its messages oldest first. Only a sink's oldest
pending row (its *head*) is ever attempted, so a failing head holds back
that sink's later messages and no other sink's.

Times are stored in UTC; SQLite hands them back without a zone, so every
value read here goes through :func:`as_utc`.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from camsight.config import SEVERITIES, AlertsConfig, RetryConfig, SinkFilter
from camsight.store.models import OutboxRow, utcnow
from camsight.timeutil import backoff

MQTT_SINK = "mqtt"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
#: Share of a backoff delay taken off at random, so that many rows (or
#: processes) retrying after the same outage do not hit a receiver at once.
JITTER = 0.25
#: Longest error text kept per row; receivers' error pages can be large.
MAX_ERROR_CHARS = 500

PAYLOAD_SCHEMA = "camsight.event/1"
_KINDS = ("start", "end")


def as_utc(when: datetime) -> datetime:
    """``when`` with its zone set to UTC (naive values read back from SQLite are UTC)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class OutboxMessage:
    """A claimed row, detached from its session so it can travel to a delivery thread."""

    id: int
    sink: str
    event_uid: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass
class SinkStats:
    """What ``camsight alerts status`` shows for one sink."""

    sink: str
    pending: int = 0
    delivered: int = 0
    failed: int = 0
    #: When the oldest pending row was written (UTC), if any.
    oldest_pending_at: datetime | None = None
    #: When the next attempt is due (UTC), if anything is pending.
    next_attempt_at: datetime | None = None
    #: Attempts made so far on the oldest pending row.
    head_attempts: int = 0
    last_error: str | None = None
    last_delivered_at: datetime | None = None

    def oldest_pending_age(self, now: datetime | None = None) -> float | None:
        """Seconds since the oldest pending row was written (None when nothing is pending)."""
        if self.oldest_pending_at is None:
            return None
        return max(0.0, ((now or utcnow()) - self.oldest_pending_at).total_seconds())

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or utcnow()
        age = self.oldest_pending_age(now)
        return {
            "sink": self.sink,
            "pending": self.pending,
            "delivered": self.delivered,
            "failed": self.failed,
            "oldest_pending_at": self.oldest_pending_at.isoformat() if self.oldest_pending_at else None,
            "oldest_pending_age_s": round(age, 3) if age is not None else None,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "head_attempts": self.head_attempts,
            "last_error": self.last_error,
            "last_delivered_at": self.last_delivered_at.isoformat() if self.last_delivered_at else None,
        }


@dataclass(frozen=True)
class RetryOutcome:
    """Where a failed attempt left its row."""

    status: str
    attempts: int
    next_attempt_at: datetime
    delay_s: float


# --------------------------------------------------------------------------- writing


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in :data:`SEVERITIES` (``info`` is 0); unknown values are an error."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise ValueError(f"unknown severity {severity!r} (one of {', '.join(SEVERITIES)})") from None


def accepts(sink: SinkFilter, payload: Mapping[str, Any]) -> bool:
    """Whether a sink's filter lets this event through (camera list, rules, minimum severity).

    A rule is named by its name (``payload["rule"]``) or its type (``payload["type"]``).

    >>> from camsight.config import SinkFilter
    >>> accepts(SinkFilter(cameras=["gate"], min_severity="high"), {"camera": "gate", "severity": "critical"})
    True
    >>> accepts(SinkFilter(min_severity="high"), {"camera": "gate", "severity": "medium"})
    False
    >>> accepts(SinkFilter(rules=["fall"]), {"camera": "gate", "severity": "high", "type": "crowd"})
    False
    """
    if sink.cameras is not None and payload.get("camera") not in sink.cameras:
        return False
    if sink.rules is not None and not {payload.get("rule"), payload.get("type")} & set(sink.rules):
        return False
    return severity_rank(str(payload.get("severity"))) >= severity_rank(sink.min_severity)


def sinks_for(alerts: AlertsConfig, payload: Mapping[str, Any]) -> list[str]:
    """Names of the configured sinks whose filter accepts ``payload``: webhooks, MQTT, then notifiers."""
    names = [hook.name for hook in alerts.webhooks if accepts(hook, payload)]
    if alerts.mqtt is not None and accepts(alerts.mqtt, payload):
        names.append(MQTT_SINK)
    names.extend(notifier.name for notifier in alerts.notify if accepts(notifier, payload))
    return names


def _check_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    # A malformed payload is a bug in the caller: fail inside its transaction
    # (so the event is not stored without its alerts), not later in a sink.
    for key in ("uid", "kind", "camera", "type", "severity"):
        if not isinstance(payload.get(key), str) or not payload[key]:
            raise ValueError(f"event payload needs a non-empty string '{key}'")
    if payload["kind"] not in _KINDS:
        raise ValueError(f"event payload kind must be 'start' or 'end', got {payload['kind']!r}")
    severity_rank(payload["severity"])
    try:
        # A plain JSON copy: what the sinks will send, and what the JSON column can hold.
        return json.loads(json.dumps(dict(payload), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"event payload is not JSON-serialisable: {exc}") from None


def enqueue(
    session: Session,
    alerts: AlertsConfig,
    payload: Mapping[str, Any],
    *,
    sinks: Iterable[str] | None = None,
    now: datetime | None = None,
) -> int:
    """Queue ``payload`` for every configured sink whose filter accepts it; return the rows added.

    Runs inside the caller's session and transaction: commit the event row
    and its outbox rows together. ``sinks`` names the sinks explicitly,
    bypassing the filters (``camsight alerts test`` uses it). Raises
    ValueError for a payload without ``uid``/``kind``/``camera``/``type``/
    ``severity`` or one that is not JSON-serialisable.
    """
    data = _check_payload(payload)
    names = list(sinks) if sinks is not None else sinks_for(alerts, data)
    configured = set(alerts.sink_names())
    unknown = [n for n in names if n not in configured]
    if unknown:
        raise ValueError(f"no alert sink named {unknown[0]!r} is configured")
    at = as_utc(now or utcnow())
    for name in names:
        session.add(
            OutboxRow(
                event_uid=data["uid"],
                sink=name,
                kind=data["kind"],
                payload=data,
                status=PENDING,
                attempts=0,
                next_attempt_at=at,
                created_at=at,
            )
        )
    return len(names)


def make_test_payload(camera: str = "test", *, now: datetime | None = None) -> dict[str, Any]:
    """A ``camsight.event/1`` payload of type ``test`` (``camsight alerts test``), with a fresh uid."""
    at = as_utc(now or utcnow())
    return {
        "schema": PAYLOAD_SCHEMA,
        "kind": "start",
        "uid": uuid.uuid4().hex,
        "id": 0,
        "type": "test",
        "rule": "test",
        "severity": "info",
        "camera": camera,
        "state": "open",
        "start": at.isoformat(),
        "end": None,
        "start_t": 0.0,
        "end_t": None,
        "zone": None,
        "line": None,
        "tracks": [],
        "summary": f"camsight test alert for camera {camera}",
        "details": {"test": True},
        "snapshot": None,
        "source": None,
    }


# --------------------------------------------------------------------------- delivering


def _head_id(sink: str) -> Any:
    return (
        select(func.min(OutboxRow.id))
        .where(OutboxRow.sink == sink, OutboxRow.status == PENDING)
        .scalar_subquery()
    )


def claim_next(
    session: Session, sink: str, *, lease_s: float = 60.0, now: datetime | None = None
) -> OutboxMessage | None:
    """Take ``sink``'s oldest pending row if it is due; None when there is none or it is not due yet.

    The row is leased: its ``next_attempt_at`` moves ``lease_s`` ahead, so
    another dispatcher (the CLI beside the service) leaves this sink alone
    while the delivery is in flight, and a process killed mid-delivery
    gives the row back when the lease runs out. Call it at the start of its
    own transaction and commit right after: the first statement is the
    conditional UPDATE, which takes SQLite's write lock before reading, so
    two processes cannot both claim the same head.

    On PostgreSQL several deliverers (processes, nodes) claim at once without
    waiting for each other: the head row is locked ``FOR UPDATE SKIP LOCKED``,
    so a head another deliverer is claiming is skipped, not claimed twice,
    and the sink keeps its order (nothing behind a claimed head is taken).
    """
    at = as_utc(now or utcnow())
    due = (OutboxRow.id == _head_id(sink), OutboxRow.status == PENDING, OutboxRow.next_attempt_at <= at)
    lease = {"next_attempt_at": at + timedelta(seconds=lease_s)}
    if session.get_bind().dialect.name == "postgresql":
        # The status is checked again on the row's newest version once locked: a head delivered
        # and committed since this statement's snapshot is not taken again.
        head = session.scalar(select(OutboxRow.id).where(*due).with_for_update(skip_locked=True))
        if head is None:
            return None
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == head)
            .values(**lease)
            .execution_options(synchronize_session=False)
        )
        claimed_id = head
    else:
        claimed = session.execute(
            update(OutboxRow)
            .where(*due)
            .values(**lease)
            .returning(OutboxRow.id)
            .execution_options(synchronize_session=False)
        ).first()
        if claimed is None:
            return None
        claimed_id = claimed[0]
    row = session.get_one(OutboxRow, claimed_id, populate_existing=True)
    return OutboxMessage(
        id=row.id,
        sink=row.sink,
        event_uid=row.event_uid,
        kind=row.kind,
        payload=dict(row.payload),
        attempts=row.attempts,
        created_at=as_utc(row.created_at),
    )


def mark_delivered(session: Session, row_id: int, *, now: datetime | None = None) -> None:
    """Record that the receiver accepted row ``row_id`` (call only after it did)."""
    at = as_utc(now or utcnow())
    session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == row_id, OutboxRow.status == PENDING)
        .values(status=DELIVERED, attempts=OutboxRow.attempts + 1, delivered_at=at, next_attempt_at=at)
        .execution_options(synchronize_session=False)
    )


def backoff_seconds(retry: RetryConfig, attempts: int, *, rng: Callable[[], float] = random.random) -> float:
    """Delay before the next try after ``attempts`` failed attempts (1 = the first failure).

    The base doubles from ``retry.initial_seconds`` up to ``retry.max_seconds``;
    jitter then takes up to :data:`JITTER` of it off at random, so the delay
    lies in ``[(1 - JITTER) * base, base]`` and never exceeds the maximum.

    >>> from camsight.config import RetryConfig
    >>> r = RetryConfig(initial_seconds=2, max_seconds=10)
    >>> [backoff_seconds(r, n, rng=lambda: 0.0) for n in (1, 2, 3, 4)]
    [2.0, 4.0, 8.0, 10.0]
    """
    return backoff(max(attempts, 1) - 1, retry.initial_seconds, retry.max_seconds, jitter=JITTER, rng=rng)


def schedule_retry(
    session: Session,
    row_id: int,
    error: str,
    retry: RetryConfig,
    *,
    min_delay_s: float = 0.0,
    now: datetime | None = None,
    rng: Callable[[], float] = random.random,
) -> RetryOutcome:
    """Record a failed attempt on row ``row_id`` and when to try again.

    The row becomes ``failed`` once it has had ``retry.max_attempts``
    attempts (kept for :func:`retry_failed`); otherwise it stays pending,
    due after :func:`backoff_seconds` (at least ``min_delay_s``, e.g. a
    receiver's ``Retry-After``, capped at ``retry.max_seconds``).
    """
    at = as_utc(now or utcnow())
    current = session.execute(
        select(OutboxRow.status, OutboxRow.attempts).where(OutboxRow.id == row_id)
    ).first()
    if current is None or current.status != PENDING:
        # Another dispatcher took over after this attempt's lease ran out, and finished it.
        state = current.status if current is not None else FAILED
        return RetryOutcome(
            status=state, attempts=current.attempts if current else 0, next_attempt_at=at, delay_s=0
        )
    attempts = current.attempts + 1
    gave_up = retry.max_attempts is not None and attempts >= retry.max_attempts
    delay = 0.0 if gave_up else backoff_seconds(retry, attempts, rng=rng)
    delay = max(delay, min(min_delay_s, retry.max_seconds)) if not gave_up else 0.0
    due = at + timedelta(seconds=delay)
    status = FAILED if gave_up else PENDING
    session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == row_id)
        .values(status=status, attempts=attempts, next_attempt_at=due, last_error=error[:MAX_ERROR_CHARS])
        .execution_options(synchronize_session=False)
    )
    return RetryOutcome(status=status, attempts=attempts, next_attempt_at=due, delay_s=delay)


def retry_failed(session: Session, sink: str | None = None, *, now: datetime | None = None) -> int:
    """Put ``failed`` rows (all sinks, or one) back in the queue, due now; return how many.

    Their attempt count starts again, so ``max_attempts`` gives them a full
    new round; ``last_error`` is kept until the next attempt replaces it.
    """
    at = as_utc(now or utcnow())
    stmt = update(OutboxRow).where(OutboxRow.status == FAILED)
    if sink is not None:
        stmt = stmt.where(OutboxRow.sink == sink)
    result = session.execute(
        stmt.values(status=PENDING, attempts=0, next_attempt_at=at).execution_options(
            synchronize_session=False
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- reading


def next_due_at(session: Session, sink: str) -> datetime | None:
    """When ``sink``'s head is due (UTC); None when nothing is pending for it."""
    when = session.scalar(select(OutboxRow.next_attempt_at).where(OutboxRow.id == _head_id(sink)))
    return as_utc(when) if when is not None else None


def pending_count(
    session: Session, sinks: Iterable[str] | None = None, *, event_uid: str | None = None
) -> int:
    """Pending rows, for all sinks or the named ones, optionally of one event."""
    stmt = select(func.count()).select_from(OutboxRow).where(OutboxRow.status == PENDING)
    if sinks is not None:
        stmt = stmt.where(OutboxRow.sink.in_(list(sinks)))
    if event_uid is not None:
        stmt = stmt.where(OutboxRow.event_uid == event_uid)
    return int(session.scalar(stmt) or 0)


@dataclass
class _Acc:
    stats: dict[str, SinkStats] = field(default_factory=dict)

    def get(self, sink: str) -> SinkStats:
        return self.stats.setdefault(sink, SinkStats(sink=sink))


def sink_stats(session: Session, sinks: Iterable[str] = ()) -> dict[str, SinkStats]:
    """Counts per sink and status, plus the head's age, due time and last error.

    Every name in ``sinks`` (the configured ones) is present even with no
    rows; sinks that only have rows (no longer configured) are included too.
    The last error is the pending head's, else the newest failed row's.
    """
    acc = _Acc()
    for name in sinks:
        acc.get(name)
    counts = session.execute(
        select(OutboxRow.sink, OutboxRow.status, func.count()).group_by(OutboxRow.sink, OutboxRow.status)
    )
    for sink, status, n in counts:
        stats = acc.get(sink)
        if status in (PENDING, DELIVERED, FAILED):
            setattr(stats, status, int(n))
    for name, stats in acc.stats.items():
        if stats.pending:
            head = session.scalars(select(OutboxRow).where(OutboxRow.id == _head_id(name))).first()
            if head is not None:
                stats.oldest_pending_at = as_utc(head.created_at)
                stats.next_attempt_at = as_utc(head.next_attempt_at)
                stats.head_attempts = head.attempts
                stats.last_error = head.last_error
        if stats.last_error is None and stats.failed:
            stats.last_error = session.scalar(
                select(OutboxRow.last_error)
                .where(OutboxRow.sink == name, OutboxRow.status == FAILED)
                .order_by(OutboxRow.id.desc())
                .limit(1)
            )
        if stats.delivered:
            last = session.scalar(
                select(func.max(OutboxRow.delivered_at)).where(
                    OutboxRow.sink == name, OutboxRow.status == DELIVERED
                )
            )
            stats.last_delivered_at = as_utc(last) if last is not None else None
    return acc.stats


# --------------------------------------------------------------------------- what sinks raise


class DeliveryError(Exception):
    """An attempt to hand a message to a receiver failed; the row stays queued and is retried.

    The message is what ``camsight alerts status`` shows and the log
    records, so sinks build it without secrets or URL credentials.
    ``retry_after_s`` carries a receiver's own hint (HTTP ``Retry-After``).
    """

    def __init__(self, message: str, *, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret replaced by ``***`` (longest first, so no part of one is left).

    Values shorter than 4 characters are left alone: replacing every "1"
    would garble the message and hide nothing worth hiding.

    >>> redact("login bob:hunter2 failed (code 1)", ["hunter2", None, "", "1"])
    'login bob:*** failed (code 1)'
    """
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
