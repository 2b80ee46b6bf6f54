"""The audit log: append-only, each entry chained to the one before by a hash.

An entry's ``hash`` is ``sha256(prev_hash + canonical JSON of at, actor,
action, target, detail, ip)``; ``prev_hash`` is the hash of the entry
appended before it (``0`` * 64 for the first). The newest entry's id and
hash are also kept in ``meta`` (``audit.head``), so deleting the newest
entries shows too. :func:`verify` walks the chain and names the first entry
that does not fit: changed content, a missing (deleted) entry before it,
entries out of order, or missing newest entries.

Appends are serialised across processes: on SQLite the entry's INSERT takes
the database write lock before the previous hash is read (and holds it to
commit); on PostgreSQL a transaction-scoped advisory lock does the same.

What it cannot show: someone with write access to the database who rewrites
every entry from some point on and the head too. Keep the head hash that
``camsight audit verify`` prints somewhere else and check it later with
``--expect``.

>>> from pathlib import Path
>>> from camsight.store.db import open_store
>>> store = open_store(Path("/tmp/camsight-audit-doc"))  # doctest: +SKIP
>>> record(store, "alice", Action.SEARCH, target="lobby", detail={"query": "red hat"})  # doctest: +SKIP
>>> verify(store).ok  # doctest: +SKIP
True
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import io
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from camsight.errors import CamsightError
from camsight.store.db import Store
from camsight.store.models import AuditLogRow, Meta, utcnow

GENESIS = "0" * 64
HEAD_KEY = "audit.head"
#: The PostgreSQL advisory lock that serialises appends (any constant unique to camsight).
PG_LOCK_KEY = 0x63616D5F61756474  # "cam_audt"
SYSTEM = "system"
ANONYMOUS = "anonymous"
MAX_ACTOR = 128
MAX_TARGET = 1000
MAX_IP = 64
CSV_COLUMNS = ("id", "at", "actor", "action", "target", "detail", "ip", "prev_hash", "hash")


class Action(StrEnum):
    """The actions camsight records; ``record`` takes other strings too (at most 64 characters)."""

    LOGIN_SUCCESS = "login.success"
    LOGIN_FAILURE = "login.failure"
    LOGOUT = "logout"
    SEARCH = "search"
    CLIP_VIEW = "clip.view"
    #: An event's snapshot opened through a signed link sent with an alert.
    SNAPSHOT_VIEW = "snapshot.view"
    #: A camera's live view opened in the web app (one entry per stream).
    LIVE_VIEW = "live.view"
    EXPORT = "export"
    EVENT_ACKNOWLEDGE = "event.acknowledge"
    MASK_CHANGE = "camera.mask"
    ZONE_CHANGE = "camera.zone"
    CAMERA_CHANGE = "camera.change"
    CONFIG_CHANGE = "config.change"
    USER_CREATE = "user.create"
    USER_UPDATE = "user.update"
    USER_PASSWORD = "user.password"
    USER_DELETE = "user.delete"
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    SESSION_REVOKE = "session.revoke"
    AUDIT_EXPORT = "audit.export"
    UPLOAD = "upload"
    #: An upload refused (not a video, too large, a bad field...), with the reason given to the client.
    UPLOAD_REFUSED = "upload.refused"
    #: A legal hold placed on a camera's footage (a time range or an event's), or released.
    HOLD_PLACE = "hold.place"
    HOLD_RELEASE = "hold.release"
    #: A failed job (an upload's indexing, a re-analysis after a camera edit) queued again.
    JOB_RETRY = "job.retry"
    #: A backup taken (`camsight backup`), and one brought back into a data folder (`camsight restore`).
    BACKUP_CREATE = "backup.create"
    BACKUP_RESTORE = "backup.restore"


@dataclass(frozen=True)
class Actor:
    """Who does something, and from where: written into every audit entry of the change.

    ``name`` is a user name, ``cli:<os user>``, ``system`` or ``anonymous``.
    """

    name: str
    ip: str | None = None

    @classmethod
    def cli(cls) -> Actor:
        """The person at the terminal: ``cli:<os user>``."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers) and no LOGNAME/USER
            user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
        return cls(f"cli:{user}")

    @classmethod
    def system(cls) -> Actor:
        return cls(SYSTEM)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]
    ip: str | None
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, ``at`` in ISO 8601 UTC."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
            "ip": self.ip,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`. ``broken_id`` is the first entry that does not fit."""

    ok: bool
    entries: int
    broken_id: int | None = None
    reason: str | None = None
    head_id: int | None = None
    head_hash: str | None = None

    @property
    def message(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.entries} entries"
        where = f"at entry {self.broken_id}" if self.broken_id is not None else ""
        return f"audit chain broken {where}: {self.reason}".replace("  ", " ")

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready fields, with its message."""
        return {**asdict(self), "message": self.message}


@dataclass(frozen=True)
class AuditPage:
    """Entries newest first; pass ``next_before`` as ``before_id`` for the next (older) page."""

    entries: list[AuditEntry] = field(default_factory=list)
    next_before: int | None = None


# --------------------------------------------------------------------------- hashing


def _iso(at: datetime) -> str:
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")


def canonical(
    at: datetime, actor: str, action: str, target: str | None, detail: Mapping[str, Any], ip: str | None
) -> bytes:
    """The bytes an entry's hash covers: sorted-key compact JSON, UTF-8.

    The id is left out on purpose: moved entries then still hash correctly and
    :func:`verify` can say they are out of order rather than changed.
    """
    fields = {"at": _iso(at), "actor": actor, "action": action, "target": target, "detail": detail, "ip": ip}
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def entry_hash(
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    detail: Mapping[str, Any],
    ip: str | None,
) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(at, actor, action, target, detail, ip)).hexdigest()


def _normalise_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    # Hash exactly what the JSON column gives back later: tuples become lists,
    # keys become strings, unknown objects their str().
    if detail is None:
        return {}
    try:
        return json.loads(json.dumps(dict(detail), default=str, allow_nan=False))
    except ValueError as exc:
        raise ValueError(f"audit detail is not JSON: {exc}") from None


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


# --------------------------------------------------------------------------- appending


@contextmanager
def _session_of(where: Session | Store) -> Iterator[Session]:
    if isinstance(where, Store):
        with where.session() as session:
            yield session
    else:
        yield where


#: A process's own appends wait here, one at a time, rather than in SQLite's busy handler, which
#: polls with sleeps of up to 100 ms: with 30 clients searching at once (each search is audited)
#: that polling, not the writes, made most of the response time. Other processes still wait in
#: SQLite (or on PostgreSQL's advisory lock).
_APPENDING = threading.Lock()


@contextmanager
def _append_connection(where: Session | Store) -> Iterator[Connection]:
    """The connection an entry is written on: the caller's transaction, or a new one committed at once."""
    if isinstance(where, Store):
        with _APPENDING, where.engine.begin() as connection:
            yield connection
    else:
        # Pending ORM changes go first, as they did when the entry was an ORM object; the
        # entry then joins the session's transaction through its connection.
        where.flush()
        yield where.connection()


def _to_entry(row: AuditLogRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        detail=dict(row.detail or {}),
        ip=row.ip,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _parse_head(value: str | None) -> tuple[int, str] | None:
    if not value:
        return None
    head_id, _, head_hash = value.partition(":")
    try:
        return int(head_id), head_hash
    except ValueError:
        return None


def record(
    where: Session | Store,
    actor: str | Actor,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    ip: str | None = None,
    *,
    now: datetime | None = None,
) -> AuditEntry:
    """Append one entry and return it.

    With a :class:`Store` the entry is committed at once. With a ``Session``
    it joins that session's transaction, so a change and its entry are
    committed (or rolled back) together; the write lock taken here is then
    held until the caller commits, so keep such transactions short.
    An :class:`Actor` supplies ``ip`` when ``ip`` is not given.
    """
    if isinstance(actor, Actor):
        ip = ip if ip is not None else actor.ip
        actor = actor.name
    action = str(action)
    if not action or len(action) > 64:
        raise ValueError(f"audit action must be 1 to 64 characters, got {action!r}")
    actor = _clip(actor, MAX_ACTOR) or ANONYMOUS
    target = _clip(target, MAX_TARGET)
    ip = _clip(ip, MAX_IP)
    details = _normalise_detail(detail)
    with _append_connection(where) as connection:
        return _append(connection, now, actor, action, target, details, ip)


_AUDIT = AuditLogRow.__table__
_META = Meta.__table__
# Core statements built once: an entry is written on every search, and the ORM's unit of work
# (objects, identity map, flush) cost several times the SQL itself.
_INSERT_ENTRY = insert(_AUDIT)
_FINISH_ENTRY = update(_AUDIT).where(_AUDIT.c.id == bindparam("entry_id"))
_READ_META = select(_META.c.value).where(_META.c.key == bindparam("meta_key"))
_WRITE_META = update(_META).where(_META.c.key == bindparam("meta_key"))
_INSERT_META = insert(_META)
_NEWEST_BEFORE = (
    select(_AUDIT.c.hash).where(_AUDIT.c.id < bindparam("entry_id")).order_by(_AUDIT.c.id.desc()).limit(1)
)


def _append(
    connection: Connection,
    now: datetime | None,
    actor: str,
    action: str,
    target: str | None,
    details: dict[str, Any],
    ip: str | None,
) -> AuditEntry:
    """Write one entry on ``connection`` (in its transaction), linked to the newest one."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
    entry = {"actor": actor, "action": action, "target": target, "detail": details, "ip": ip}
    # The INSERT comes first: on SQLite it takes the write lock, so no other
    # process can append between our reading the head and our commit.
    placeholder = {**entry, "at": now or utcnow(), "prev_hash": "", "hash": ""}
    inserted = connection.execute(_INSERT_ENTRY, placeholder)
    entry_id = int(inserted.inserted_primary_key[0])
    at = now or utcnow()  # after waiting for the lock, so times rise with ids
    head_value = connection.execute(_READ_META, {"meta_key": HEAD_KEY}).scalar_one_or_none()
    parsed = _parse_head(head_value)
    if parsed is not None:
        prev_hash = parsed[1]
    else:
        # No head yet (the first entry), or it was deleted: link to the newest entry.
        prev_hash = connection.execute(_NEWEST_BEFORE, {"entry_id": entry_id}).scalar_one_or_none() or GENESIS
    digest = entry_hash(prev_hash, at, actor, action, target, details, ip)
    finished = {"entry_id": entry_id, "at": at, "prev_hash": prev_hash, "hash": digest}
    connection.execute(_FINISH_ENTRY, finished)
    value = f"{entry_id}:{digest}"
    if head_value is None:
        connection.execute(_INSERT_META, {"key": HEAD_KEY, "value": value})
    else:
        connection.execute(_WRITE_META, {"meta_key": HEAD_KEY, "value": value})
    return AuditEntry(entry_id, at, actor, action, target, details, ip, prev_hash, digest)


# --------------------------------------------------------------------------- checking


def verify(store: Store, *, expect: str | None = None, batch: int = 2000) -> VerifyResult:
    """Walk the whole chain, oldest first; stop at the first entry that does not fit.

    ``expect`` is a head hash (or its first 12+ characters) noted earlier, e.g.
    from a previous run: it must still be in the chain, which shows a rewrite
    of everything after it.
    """
    if expect is not None:
        expect = expect.strip().lower()
        if len(expect) < 12 or len(expect) > 64 or any(c not in "0123456789abcdef" for c in expect):
            raise CamsightError(f"expected hash must be 12 to 64 hex characters, got {expect!r}")
    with store.sessions() as session:
        # The head is read before the entries: anything appended meanwhile only
        # extends the chain after it.
        head_row = session.get(Meta, HEAD_KEY)
        head = _parse_head(head_row.value if head_row is not None else None)
        expect_found = expect is None
        checked = 0
        prev_id: int | None = None
        prev_hash = GENESIS
        head_seen = False
        rows = session.execute(
            select(
                AuditLogRow.id,
                AuditLogRow.at,
                AuditLogRow.actor,
                AuditLogRow.action,
                AuditLogRow.target,
                AuditLogRow.detail,
                AuditLogRow.ip,
                AuditLogRow.prev_hash,
                AuditLogRow.hash,
            )
            .order_by(AuditLogRow.id)
            .execution_options(yield_per=batch)
        )
        for r in rows:
            computed = entry_hash(r.prev_hash, r.at, r.actor, r.action, r.target, r.detail or {}, r.ip)
            if computed != r.hash:
                return _broken(checked, r.id, "its content was changed after it was written (hash mismatch)")
            if r.prev_hash != prev_hash:
                return _broken(checked, r.id, _link_reason(session, r.prev_hash, prev_id))
            if head is not None and r.id == head[0]:
                if r.hash != head[1]:
                    return _broken(
                        checked, r.id, "it differs from the recorded head of the chain (rewritten)"
                    )
                head_seen = True
            if expect is not None and r.hash.startswith(expect):
                expect_found = True
            checked += 1
            prev_id, prev_hash = r.id, r.hash
        if head is None and checked:
            return _broken(checked, prev_id, "the recorded head of the chain is missing (deleted from meta)")
        if head is not None and not head_seen:
            return _broken(
                checked,
                head[0],
                f"it is missing: the newest entries were deleted (the chain now ends at entry {prev_id})",
            )
        if not expect_found:
            return _broken(
                checked, None, f"the expected hash {expect} is not in the chain (rewritten or deleted)"
            )
        return VerifyResult(True, checked, head_id=prev_id, head_hash=prev_hash if checked else None)


def _broken(checked: int, entry_id: int | None, reason: str) -> VerifyResult:
    return VerifyResult(False, checked, broken_id=entry_id, reason=reason)


def _link_reason(session: Session, prev_hash: str, prev_id: int | None) -> str:
    """Why an entry's prev_hash is not the hash of the entry before it."""
    if prev_id is None:
        return "it is the first entry but does not start the chain (earlier entries were deleted)"
    follows = session.execute(
        select(AuditLogRow.id).where(AuditLogRow.hash == prev_hash).limit(1)
    ).scalar_one_or_none()
    if follows is not None:
        return f"out of order: it was written after entry {follows}, not after entry {prev_id}"
    return (
        f"the entry written before it is missing (deleted after entry {prev_id}, "
        f"or entry {prev_id} was rewritten)"
    )


# --------------------------------------------------------------------------- reading


def _filtered(
    query: Any,
    since: datetime | None,
    until: datetime | None,
    actor: str | None = None,
    action: str | None = None,
) -> Any:
    if since is not None:
        query = query.where(AuditLogRow.at >= since)
    if until is not None:
        query = query.where(AuditLogRow.at < until)
    if actor is not None:
        query = query.where(AuditLogRow.actor == actor)
    if action is not None:
        query = query.where(AuditLogRow.action == action)
    return query


def list_entries(
    where: Session | Store,
    *,
    limit: int = 100,
    before_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> AuditPage:
    """A page of entries, newest first (keyset pagination on the id; stable while entries are added).

    ``since`` is inclusive, ``until`` exclusive.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    query = _filtered(select(AuditLogRow), since, until, actor, action)
    if before_id is not None:
        query = query.where(AuditLogRow.id < before_id)
    query = query.order_by(AuditLogRow.id.desc()).limit(limit + 1)
    with _session_of(where) as session:
        rows = session.execute(query).scalars().all()
    entries = [_to_entry(r) for r in rows[:limit]]
    return AuditPage(entries, entries[-1].id if len(rows) > limit else None)


def iter_entries(
    store: Store, *, since: datetime | None = None, until: datetime | None = None, batch: int = 2000
) -> Iterator[AuditEntry]:
    """Every entry in the span, oldest first, without loading them all at once."""
    query = _filtered(select(AuditLogRow), since, until).order_by(AuditLogRow.id)
    with store.sessions() as session:
        for row in session.execute(query.execution_options(yield_per=batch)).scalars():
            yield _to_entry(row)


def _cell(value: str) -> str:
    # A cell starting with = + - @ is run as a formula by spreadsheet programs,
    # and search texts and typed user names end up here (OWASP "CSV injection").
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def write_csv(entries: Iterator[AuditEntry], out: TextIO) -> int:
    """Write ``entries`` as CSV with a header row; returns how many."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    n = 0
    for e in entries:
        writer.writerow(
            [
                e.id,
                _iso(e.at),
                _cell(e.actor),
                _cell(e.action),
                _cell(e.target or ""),
                json.dumps(e.detail, sort_keys=True, ensure_ascii=False),
                _cell(e.ip or ""),
                e.prev_hash,
                e.hash,
            ]
        )
        n += 1
    return n


def export_csv(
    store: Store, out: Path | TextIO, since: datetime | None = None, until: datetime | None = None
) -> int:
    """Write the entries in ``[since, until)`` to ``out`` (a path or an open text file) as CSV.

    Columns: id, at (ISO UTC), actor, action, target, detail (JSON), ip,
    prev_hash, hash. Text cells that a spreadsheet would run as a formula get
    a leading ``'``. A path is written whole or not at all. Returns the
    number of entries written. (Recording the export itself, as
    ``Action.AUDIT_EXPORT``, is the caller's job: it knows who asked.)
    """
    entries = iter_entries(store, since=since, until=until)
    if not isinstance(out, Path):
        return write_csv(entries, out)
    tmp = out.with_name(out.name + ".partial")
    try:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            n = write_csv(entries, fh)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CamsightError(f"cannot write {out}: {exc.strerror or exc}") from None
    return n


def csv_text(store: Store, since: datetime | None = None, until: datetime | None = None) -> str:
    """The CSV export as one string (for small spans, e.g. a download in the web UI)."""
    buf = io.StringIO()
    export_csv(store, buf, since, until)
    return buf.getvalue()
