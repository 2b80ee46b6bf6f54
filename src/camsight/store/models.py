"""SQLAlchemy 2 models. Portable SQL only, so PostgreSQL can serve them too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from camsight.store.vectors import FloatVector
from camsight.timeutil import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC.

    SQLite keeps no offset: values are converted to UTC on the way in and
    come back marked as UTC, so local times never get stored as if UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="file")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The node that runs this live camera now (``camsight run --node``); null: one box.
    node: Mapped[str | None] = mapped_column(String(64), nullable=True)

    sources: Mapped[list[Source]] = relationship(back_populates="camera")


class Source(Base):
    """One indexed video file (or, later, one live session) of a camera.

    ``status`` is ``indexing`` while work is under way (or was interrupted),
    ``complete`` when every frame was analysed, ``damaged`` when the file
    ended early and what could be decoded was indexed.
    """

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("camera_id", "fingerprint", name="uq_source_camera_file"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    uri: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="indexing")
    settings_key: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    native_fps: Mapped[float] = mapped_column(Float)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    frames_decoded: Mapped[int] = mapped_column(Integer, default=0)
    frames_analysed: Mapped[int] = mapped_column(Integer, default=0)
    frames_detected: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    wallclock_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: The node holding this source's media (file, recordings, thumbnails, snapshots); null: one box.
    node: Mapped[str | None] = mapped_column(String(64), nullable=True)

    camera: Mapped[Camera] = relationship(back_populates="sources")
    tracks: Mapped[list[Track]] = relationship(
        back_populates="source", cascade="all, delete-orphan", passive_deletes=True
    )


class Track(Base):
    __tablename__ = "tracks"
    __table_args__ = (
        UniqueConstraint("source_id", "local_id", name="uq_track_local"),
        Index("ix_tracks_camera_start", "camera_id", "start_t"),
        Index("ix_tracks_label", "label"),
        Index("ix_tracks_start_at", "start_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    local_id: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(32))
    start_t: Mapped[float] = mapped_column(Float)
    end_t: Mapped[float] = mapped_column(Float)
    first_frame: Mapped[int] = mapped_column(Integer)
    last_frame: Mapped[int] = mapped_column(Integer)
    num_observations: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    speed_px_s: Mapped[float] = mapped_column(Float)
    speed_bh_s: Mapped[float] = mapped_column(Float)
    max_speed_px_s: Mapped[float] = mapped_column(Float)
    direction_deg: Mapped[float | None] = mapped_column(Float, nullable=True)
    heading: Mapped[str] = mapped_column(String(16))
    displacement_px: Mapped[float] = mapped_column(Float)
    path_px: Mapped[float] = mapped_column(Float)
    carrier_local_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    carried: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    labels_seen: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    #: float32 colour descriptor (tracking.appearance), for "more like this" (pgvector on PostgreSQL).
    appearance: Mapped[bytes | None] = mapped_column(FloatVector, nullable=True)
    #: Wall-clock span: the source's start time plus start_t/end_t.
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Appearance attributes with scores (analytics.attributes.TrackAttributes as a dict).
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: Facet scores as uint8 (0-255) in records.facets.FACETS order, for the search index.
    facets: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)

    source: Mapped[Source] = relationship(back_populates="tracks")
    observations: Mapped[list[ObservationRow]] = relationship(
        back_populates="track",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ObservationRow.frame",
    )
    thumbnails: Mapped[list[Thumbnail]] = relationship(
        back_populates="track",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Thumbnail.rank",
    )


class TrackEmbedding(Base):
    """A vision-language embedding of a track's best crop, per model."""

    __tablename__ = "track_embeddings"

    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    #: float32, L2-normalised (pgvector on PostgreSQL, with an HNSW index per model: store.vectors).
    vector: Mapped[bytes] = mapped_column(FloatVector)


class Meta(Base):
    """Small key/value state, e.g. the tracks revision that search indexes follow."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ObservationRow(Base):
    __tablename__ = "observations"
    __table_args__ = (Index("ix_observations_track_frame", "track_id", "frame"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    frame: Mapped[int] = mapped_column(Integer)
    t: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    detected: Mapped[bool] = mapped_column(Boolean, default=True)

    track: Mapped[Track] = relationship(back_populates="observations")


class Thumbnail(Base):
    __tablename__ = "thumbnails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    frame: Mapped[int] = mapped_column(Integer)
    t: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    quality: Mapped[float] = mapped_column(Float)
    #: Relative to the data directory's media folder.
    path: Mapped[str] = mapped_column(Text)

    track: Mapped[Track] = relationship(back_populates="thumbnails")


class EventRow(Base):
    """A situation a rule raised: open while it lasts, then closed; acknowledged by a person.

    ``uid`` is stable across re-runs of the same footage with the same rules,
    so receivers can drop duplicates of an at-least-once delivery.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_camera_start", "camera_id", "start_at"),
        Index("ix_events_type", "type"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), nullable=True, index=True
    )
    type: Mapped[str] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(16))
    #: ``open`` while the situation lasts, ``closed`` after.
    state: Mapped[str] = mapped_column(String(8), default="open")
    #: Seconds into the source.
    start_t: Mapped[float] = mapped_column(Float)
    end_t: Mapped[float | None] = mapped_column(Float, nullable=True)
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    zone: Mapped[str | None] = mapped_column(String(128), nullable=True)
    line: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: The tracks involved, as local ids within the source (tracks.local_id).
    track_local_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Annotated snapshot, relative to the media folder.
    snapshot: Mapped[str | None] = mapped_column(Text, nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LineCrossingRow(Base):
    """One crossing of a configured line, for in/out counts over time."""

    __tablename__ = "line_crossings"
    __table_args__ = (Index("ix_crossings_camera_line_t", "camera_id", "line", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), nullable=True, index=True
    )
    line: Mapped[str] = mapped_column(String(128))
    #: ``in`` or ``out``.
    direction: Mapped[str] = mapped_column(String(3))
    label: Mapped[str] = mapped_column(String(32))
    track_local_id: Mapped[int] = mapped_column(Integer)
    t: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OutboxRow(Base):
    """A message waiting for (or past) delivery to one sink.

    Written in the same transaction as the event it reports, so an event is
    never stored without its alerts, nor an alert sent for an unstored event.
    Rows are kept after delivery (``status`` delivered) as a delivery log.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The event's uid (no foreign key: an alert outlives a re-indexed source's events).
    event_uid: Mapped[str] = mapped_column(String(40), index=True)
    #: A webhook's name, or ``mqtt``.
    sink: Mapped[str] = mapped_column(String(64))
    #: ``start`` when a situation begins, ``end`` when it is over.
    kind: Mapped[str] = mapped_column(String(8))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: ``pending``, ``delivered`` or ``failed`` (gave up; `camsight alerts retry` re-queues).
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RecordingRow(Base):
    """One recorded segment of a live camera: stream-copied video, a few seconds to minutes long.

    ``held_until`` keeps a segment past retention (an event or an export needs it);
    ``gap_before`` marks that the stream was interrupted just before it began.
    """

    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_camera_start", "camera_id", "start_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    #: Relative to the data directory's recordings folder.
    path: Mapped[str] = mapped_column(Text, unique=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Null while the segment is being written.
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    codec: Mapped[str | None] = mapped_column(String(32), nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gap_before: Mapped[bool] = mapped_column(Boolean, default=False)
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    hold_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LegalHoldRow(Base):
    """A legal hold: a camera's recorded footage from ``start_at`` to ``end_at`` kept until released.

    Placed by a person on a time range or on an event (its span with the
    camera's pre/post padding); retention never deletes a segment that overlaps
    a hold not yet released, whatever its age or the disk says. ``end_at`` null:
    no end (an event still open), so everything from ``start_at`` on is kept.
    Released holds stay as the record of what was held, when and by whom.
    """

    __tablename__ = "legal_holds"
    __table_args__ = (Index("ix_legal_holds_camera", "camera_id", "released_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    #: The event it was placed on (null for a time range, or once the event is analysed again: see uid).
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"), nullable=True)
    #: The event's uid, stable when its footage is analysed again (a new row, a new id).
    event_uid: Mapped[str | None] = mapped_column(String(40), nullable=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Why, e.g. a case or request number; required.
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(128), nullable=True)


class CameraStatusRow(Base):
    """The latest health of a live camera, written by its worker every few seconds."""

    __tablename__ = "camera_status"

    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    #: ``connecting``, ``connected``, ``stalled``, ``frozen``, ``error`` or ``stopped``.
    state: Mapped[str] = mapped_column(String(16))
    fps_in: Mapped[float] = mapped_column(Float, default=0.0)
    fps_analysed: Mapped[float] = mapped_column(Float, default=0.0)
    #: Seconds between a frame's arrival and the end of its analysis (growing lag = not keeping up).
    lag_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    last_frame_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reconnects: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --------------------------------------------------------------------------- accounts and audit


class UserRow(Base):
    """A person (or integration owner) who may sign in; see camsight.auth.

    ``cameras`` is the list of camera names the user may see, or NULL for
    every camera (admins always see every camera).
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Lower-case; compared case-insensitively by normalising on the way in.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: argon2id, in the PHC string format (parameters and salt included).
    password_hash: Mapped[str] = mapped_column(String(255))
    #: ``admin``, ``operator`` or ``viewer`` (camsight.auth.roles.Role).
    role: Mapped[str] = mapped_column(String(16))
    # none_as_null: "every camera" must be SQL NULL, not the JSON text 'null'.
    cameras: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApiTokenRow(Base):
    """A revocable API token of a user; only the sha256 of the secret is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The random part shown in lists (``cs_<prefix>_...``), never enough to use the token.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebSessionRow(Base):
    """A browser session; the cookie holds the token, the database only its sha256."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Slides forward on use, never past created_at + the absolute lifetime.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LoginAttemptRow(Base):
    """A failed sign-in, per user name and per client address, for rate limiting across restarts."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_key_at", "key", "at"),
        Index("ix_login_attempts_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ``name:<user name>`` or ``ip:<address>``.
    key: Mapped[str] = mapped_column(String(160))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditLogRow(Base):
    """One append-only audit entry; ``hash`` chains it to the entry before (camsight.auth.audit).

    AUTOINCREMENT on SQLite: an id is never reused, so a deleted newest entry
    cannot be silently replaced by the next append.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: A user name, ``cli:<os user>``, ``system`` or ``anonymous``.
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# --------------------------------------------------------------------------- background jobs


class JobRow(Base):
    """An indexing job run by the API's job runner (camsight.service.jobs), oldest queued first.

    ``camera`` is a name, not a foreign key: a job for a new camera exists before the camera does.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state", "state", "id"), Index("ix_jobs_camera", "camera"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ``index`` (one file) or ``reindex`` (every stored file of a camera).
    kind: Mapped[str] = mapped_column(String(16))
    camera: Mapped[str] = mapped_column(String(128))
    #: The file's display name (index jobs).
    file_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: Where the file is on this machine (never shown to API clients).
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The job owns the file (an upload): removed when it is unusable or a duplicate.
    owns_file: Mapped[bool] = mapped_column(Boolean, default=False)
    #: When the file's recording started, as the uploader said (None: from the file itself).
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: ``queued``, ``running``, ``done``, ``damaged`` (indexed what could be decoded) or ``failed``.
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    frames_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    eta_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Tracks stored, per class; events raised, per type.
    tracks: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    events: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class NodeRow(Base):
    """A ``camsight run --node NAME`` process on the shared database: where it answers, and its heartbeat.

    ``last_seen`` is written by the database's clock (every node compares against the same clock);
    ``instance`` tells a second process started under the same name from the one running.
    """

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Base URL the other nodes reach its API at (``http://host:port``).
    url: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(32))
    instance: Mapped[str] = mapped_column(String(32))
    #: The cameras it runs.
    cameras: Mapped[list[str]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Set when it stopped cleanly (it shows as stopped at once, not after the heartbeat times out).
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
