"""Nodes on one shared database: registration, heartbeats, who is up, and who holds which footage.

Every ``camsight run --node NAME`` registers itself in the ``nodes`` table and
writes ``last_seen`` every ``nodes.heartbeat_seconds``. Times come from the
database's clock, so nodes on machines whose clocks disagree still agree on
who is down. A node counts as down when it has not been seen for
``down_after`` seconds, or at once when it stopped cleanly.

>>> NodeState("b", "http://10.0.0.2:8080", "box-b", "0.1.0", [], None, None, None, 12.0, 6.0).state
'down'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from camsight.errors import StoreError
from camsight.store.db import Store
from camsight.store.models import Camera, NodeRow, Source
from camsight.store.repository import get_or_create_camera


class NodeConflict(StoreError):
    """Another process is running under the same node name."""


@dataclass(frozen=True)
class NodeState:
    """A node as every node sees it (``state``: ``up``, ``down`` or ``stopped``)."""

    name: str
    url: str
    host: str
    version: str
    cameras: list[str]
    started_at: datetime | None
    last_seen: datetime | None
    stopped_at: datetime | None
    #: Seconds since its last heartbeat, by the database's clock.
    age_seconds: float
    #: The ``nodes.down_after_seconds`` it was judged by.
    down_after: float

    @property
    def state(self) -> str:
        if self.stopped_at is not None:
            return "stopped"
        return "up" if self.age_seconds <= self.down_after else "down"

    @property
    def up(self) -> bool:
        return self.state == "up"

    def as_dict(self) -> dict[str, Any]:
        """The node for the API and the CLI (times in ISO 8601 UTC)."""

        def iso(value: datetime | None) -> str | None:
            return value.astimezone(UTC).isoformat() if value is not None else None

        return {
            "name": self.name,
            "state": self.state,
            "url": self.url,
            "host": self.host,
            "version": self.version,
            "cameras": list(self.cameras),
            "started_at": iso(self.started_at),
            "last_seen": iso(self.last_seen),
            "seconds_since_seen": round(self.age_seconds, 1),
        }


def db_now(session: Session) -> datetime:
    """The database's current time (UTC, aware): the one clock every node's heartbeat is judged by."""
    if session.get_bind().dialect.name == "sqlite":
        # CURRENT_TIMESTAMP has whole seconds only; this has milliseconds.
        raw = session.scalar(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
        return datetime.fromisoformat(str(raw)).replace(tzinfo=UTC)
    # clock_timestamp(), not now(): now() is the transaction's start, and this may run late in one.
    value = session.scalar(select(func.clock_timestamp()))
    assert isinstance(value, datetime)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def register_node(
    store: Store,
    name: str,
    *,
    url: str,
    host: str,
    version: str,
    instance: str,
    cameras: list[str],
    down_after: float,
) -> None:
    """Register this process as node ``name`` running ``cameras`` (creating their rows).

    :class:`NodeConflict` when another process runs under the same name (it was
    seen within ``down_after`` seconds and did not stop): two processes recording
    the same cameras into one database would interleave their sessions.
    """
    with store.session() as session:
        row = session.execute(
            select(NodeRow).where(NodeRow.name == name).with_for_update()
        ).scalar_one_or_none()
        now = db_now(session)
        if row is not None and row.instance != instance and row.stopped_at is None:
            seen = _aware(row.last_seen)
            age = (now - seen).total_seconds() if seen is not None else float("inf")
            if age <= down_after:
                wait = max(1, round(down_after - age + 0.5))
                raise NodeConflict(
                    f"node {name!r} is already running at {row.url} on {row.host} (seen {age:.0f} s ago); "
                    f"choose another --node name, or stop it (a node killed just now counts as gone "
                    f"after {wait} s more)"
                )
        if row is None:
            row = NodeRow(name=name)
            session.add(row)
        row.url, row.host, row.version, row.instance = url, host, version, instance
        row.cameras = sorted(cameras)
        row.started_at = row.last_seen = now
        row.stopped_at = None
        for camera in cameras:
            get_or_create_camera(session, camera, kind="live").node = name
        # A camera moved to another node in the config is that node's now; one dropped is nobody's.
        session.execute(
            update(Camera).where(Camera.node == name, Camera.name.not_in(cameras or [""])).values(node=None)
        )


def heartbeat(store: Store, name: str, instance: str) -> bool:
    """Write ``name``'s heartbeat; False when another process has taken the name over since."""
    with store.session() as session:
        now = db_now(session)
        done = session.execute(
            update(NodeRow)
            .where(NodeRow.name == name, NodeRow.instance == instance)
            .values(last_seen=now, stopped_at=None)
        )
        return bool(getattr(done, "rowcount", 0))


def mark_stopped(store: Store, name: str, instance: str) -> None:
    """Record that node ``name`` stopped cleanly: it shows as stopped at once."""
    with store.session() as session:
        now = db_now(session)
        session.execute(
            update(NodeRow).where(NodeRow.name == name, NodeRow.instance == instance).values(stopped_at=now)
        )


def node_states(store: Store, down_after: float) -> list[NodeState]:
    """Every node ever registered on this database, by name, judged up or down now."""
    with store.sessions() as session:
        now = db_now(session)
        rows = session.scalars(select(NodeRow).order_by(NodeRow.name)).all()
    out = []
    for row in rows:
        seen = _aware(row.last_seen)
        out.append(
            NodeState(
                name=row.name,
                url=row.url,
                host=row.host,
                version=row.version,
                cameras=list(row.cameras or []),
                started_at=_aware(row.started_at),
                last_seen=seen,
                stopped_at=_aware(row.stopped_at),
                age_seconds=max(0.0, (now - seen).total_seconds()) if seen is not None else float("inf"),
                down_after=down_after,
            )
        )
    return out


def camera_nodes(store: Store) -> dict[str, str]:
    """Camera name -> the node that runs it, for the cameras that a node runs."""
    with store.sessions() as session:
        rows = session.execute(select(Camera.name, Camera.node).where(Camera.node.is_not(None))).all()
    return {name: node for name, node in rows}


def source_node(session: Session, source_id: int | None, camera: str) -> str | None:
    """The node holding a source's media: the source's own, else (no source) its camera's node."""
    if source_id is not None:
        node = session.scalar(select(Source.node).where(Source.id == source_id))
        if node is not None:
            return node
        if session.scalar(select(Source.id).where(Source.id == source_id)) is not None:
            return None  # made by a single box (or before nodes): here
    return session.scalar(select(Camera.node).where(Camera.name == camera))
