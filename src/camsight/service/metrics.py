"""Prometheus metrics of ``camsight run``, read at scrape time from what is already kept.

Camera workers are separate processes: they cannot update a registry here. They
already write their health (frames in and analysed, drops, lag, reconnects,
queue depth, detector latencies) to the store every ~2 s, so the
:class:`CamsightCollector` reads those rows, the events, outbox, jobs and
recordings tables and the recordings disk's free space when Prometheus scrapes,
and nothing on the frame path changes for it but timing each detector call. The
search latency is timed in this process, into a histogram the collector reads too.

Each :class:`ServiceMetrics` has its own :class:`~prometheus_client.CollectorRegistry`
(not the library's global one), so several services in one process (tests) never
clash. Every family is listed in :data:`METRICS`, documented in docs/metrics.md.

>>> metrics = ServiceMetrics(open_store(Path("data")), lambda: Config())  # doctest: +SKIP
>>> body, content_type = metrics.exposition("text/plain")                   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from camsight.auth.principal import Principal
from camsight.config import Config
from camsight.paths import recordings_dir
from camsight.pipeline.latency import LatencyHistogram, cumulative_buckets
from camsight.store.db import Store
from camsight.store.models import Camera, CameraStatusRow, EventRow, JobRow, OutboxRow, RecordingRow
from camsight.store.nodes import node_states
from camsight.timeutil import utcnow

log = logging.getLogger(__name__)

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric family: its name as queried (counters end in ``_total``), type, labels, meaning."""

    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str

    @property
    def family(self) -> str:
        """The family name as the client library and parsers see it (a counter's without ``_total``)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name


#: States a camera's health row may hold (``failed`` is the supervisor's: the worker is restarting).
CAMERA_STATES = ("connecting", "connected", "stalled", "frozen", "error", "ended", "stopped", "failed")
#: Outbox states reported: what still waits, and what was given up on (delivered rows are a log).
OUTBOX_STATES = ("pending", "failed")
#: Job states reported: the indexing queue and what runs now.
JOB_STATES = ("queued", "running")
#: Upper bounds (seconds) of the search latency buckets.
SEARCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

SEARCH_LATENCY = MetricSpec(
    "camsight_search_latency_seconds",
    "histogram",
    (),
    "Time to answer a search over the API, waiting for a free search slot included.",
)

#: Every family camsight exports (docs/metrics.md has the same table).
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "camsight_camera_frames_in_total",
        "counter",
        ("camera",),
        "Frames decoded from the camera's stream since its worker started.",
    ),
    MetricSpec(
        "camsight_camera_frames_analysed_total",
        "counter",
        ("camera",),
        "Frames analysed (motion gate, detector, tracker, rules) since the camera's worker started.",
    ),
    MetricSpec(
        "camsight_camera_frames_dropped_total",
        "counter",
        ("camera", "stage"),
        "Frames picked for analysis but dropped: stage=source (the reader could not hand them over), "
        "stage=queue (analysis was behind; the oldest waiting frames go).",
    ),
    MetricSpec(
        "camsight_camera_reconnects_total",
        "counter",
        ("camera",),
        "Connections to the camera re-established after its stream was lost.",
    ),
    MetricSpec(
        "camsight_camera_lag_seconds",
        "gauge",
        ("camera",),
        "Seconds between the last analysed frame's arrival and the end of its analysis.",
    ),
    MetricSpec(
        "camsight_camera_queue_frames",
        "gauge",
        ("camera",),
        "Frames waiting for analysis (at most 3; beyond that the oldest are dropped).",
    ),
    MetricSpec(
        "camsight_camera_state",
        "gauge",
        ("camera", "state"),
        "1 for the camera's current health state, 0 for the others.",
    ),
    MetricSpec(
        "camsight_camera_health_age_seconds",
        "gauge",
        ("camera",),
        "Seconds since the camera's health was last written (a worker writes it every ~2 s).",
    ),
    MetricSpec(
        "camsight_detector_latency_seconds",
        "histogram",
        ("camera",),
        "Time of one detector call on a frame of the camera, since its worker started.",
    ),
    MetricSpec(
        "camsight_events_total",
        "counter",
        ("camera", "type"),
        "Events raised by the behaviour rules and stored, per camera and event type.",
    ),
    MetricSpec(
        "camsight_outbox_messages",
        "gauge",
        ("sink", "status"),
        "Alert messages per sink waiting for delivery (status=pending) or given up on (status=failed).",
    ),
    MetricSpec(
        "camsight_jobs",
        "gauge",
        ("state",),
        "Indexing jobs waiting (state=queued) and running (state=running).",
    ),
    SEARCH_LATENCY,
    MetricSpec(
        "camsight_recording_bytes",
        "gauge",
        ("camera",),
        "Bytes of recorded footage kept for the camera (segments being written included).",
    ),
    MetricSpec(
        "camsight_recording_disk_free_bytes",
        "gauge",
        (),
        "Free bytes on the file system of the recordings folder.",
    ),
    MetricSpec(
        "camsight_recording_disk_size_bytes",
        "gauge",
        (),
        "Size in bytes of the file system of the recordings folder.",
    ),
    MetricSpec(
        "camsight_node_up",
        "gauge",
        ("node",),
        "1 while the node (camsight run --node) heartbeats into the shared database, 0 once it is "
        "down or stopped; no samples on a single box.",
    ),
)

_SPECS = {spec.name: spec for spec in METRICS}


def may_scrape(principal: Principal) -> str | None:
    """None when ``principal`` may read the metrics, else why not (answered 403).

    Any role may: the metrics show health, counts and latencies, which a viewer
    sees on the Cameras page, and nothing of the footage. So a dedicated viewer
    account's token serves Prometheus (no admin token in its config). But they
    name every camera: a user limited to some cameras may not read them.
    """
    if principal.user.disabled:
        return "this user is disabled"
    if principal.user.must_change_password:
        # As everywhere in the API: nothing but a password change until the password is changed.
        return "the token's user must change their password first"
    if principal.camera_scope() is not None:
        return (
            "the metrics name every camera: use an API token of a user who may see all cameras "
            "(e.g. a viewer without camera limits)"
        )
    return None


class CamsightCollector(Collector):
    """Builds every family of :data:`METRICS` from the store (and ``search``), at each scrape.

    ``config`` returns the running config (it changes when cameras are edited):
    cameras are those with a URL in it.
    """

    def __init__(self, store: Store, config: Callable[[], Config], search: LatencyHistogram) -> None:
        self.store = store
        self.config = config
        self.search = search

    def describe(self) -> Iterator[Metric]:
        """The families, without samples (the registry checks names with it; no database read)."""
        for spec in METRICS:
            yield _family(spec)

    def collect(self) -> Iterator[Metric]:
        """Every family, read now; a part that cannot be read is logged and left out of this scrape."""
        config = self.config()
        families = {spec.name: _family(spec) for spec in METRICS}
        search = cumulative_buckets(self.search.snapshot())
        assert search is not None  # a snapshot of our own
        family = families[SEARCH_LATENCY.name]
        assert isinstance(family, HistogramMetricFamily)
        family.add_metric([], search[0], search[1])
        parts: tuple[tuple[str, Callable[[Session], None]], ...] = (
            ("cameras", lambda s: self._cameras(s, config, families)),
            ("events", lambda s: self._events(s, families)),
            ("outbox", lambda s: self._outbox(s, config, families)),
            ("jobs", lambda s: self._jobs(s, families)),
            ("recordings", lambda s: self._recordings(s, config, families)),
            ("nodes", lambda _s: self._nodes(config, families)),
        )
        with self.store.sessions() as session:
            for name, part in parts:
                try:
                    part(session)
                except Exception:  # one broken part must not hide the others
                    session.rollback()
                    log.warning("metrics: cannot read %s", name, exc_info=True)
        self._disk(config, families)
        yield from families.values()

    # ------------------------------------------------------------------ parts

    def _nodes(self, config: Config, out: dict[str, Metric]) -> None:
        for node in node_states(self.store, config.nodes.down_after_seconds):
            _add(out, "camsight_node_up", [node.name], 1.0 if node.up else 0.0)

    def _cameras(self, session: Session, config: Config, out: dict[str, Metric]) -> None:
        live = sorted(n for n, c in config.cameras.items() if c.url)
        if not live:
            return
        rows = session.execute(
            select(Camera.name, CameraStatusRow)
            .join(CameraStatusRow, CameraStatusRow.camera_id == Camera.id)
            .where(Camera.name.in_(live))
            .order_by(Camera.name)
        ).all()
        now = utcnow()
        for name, row in rows:
            details = row.details if isinstance(row.details, dict) else {}
            labels = [name]
            frames_in, analysed = _number(details.get("frames_in")), _number(details.get("frames_analysed"))
            _add(out, "camsight_camera_frames_in_total", labels, frames_in)
            _add(out, "camsight_camera_frames_analysed_total", labels, analysed)
            dropped = "camsight_camera_frames_dropped_total"
            _add(out, dropped, [name, "source"], _number(details.get("source_frames_dropped")))
            _add(out, dropped, [name, "queue"], _number(details.get("frames_dropped")))
            _add(out, "camsight_camera_reconnects_total", labels, float(row.reconnects or 0))
            _add(out, "camsight_camera_lag_seconds", labels, float(row.lag_seconds or 0.0))
            _add(out, "camsight_camera_queue_frames", labels, _number(details.get("queue_depth")))
            for state in CAMERA_STATES:
                _add(out, "camsight_camera_state", [name, state], 1.0 if row.state == state else 0.0)
            if row.state not in CAMERA_STATES:
                _add(out, "camsight_camera_state", [name, str(row.state)], 1.0)
            updated = row.updated_at
            age = max(0.0, (now - updated).total_seconds()) if updated is not None else float("nan")
            _add(out, "camsight_camera_health_age_seconds", labels, age)
            latency = details.get("detect_latency")
            hist = cumulative_buckets(latency) if isinstance(latency, dict) else None
            if hist is not None:
                buckets, total, _count = hist
                family = out["camsight_detector_latency_seconds"]
                assert isinstance(family, HistogramMetricFamily)
                family.add_metric(labels, buckets, total)

    def _events(self, session: Session, out: dict[str, Metric]) -> None:
        rows = session.execute(
            select(Camera.name, EventRow.type, func.count())
            .join(Camera, Camera.id == EventRow.camera_id)
            .group_by(Camera.name, EventRow.type)
            .order_by(Camera.name, EventRow.type)
        ).all()
        for camera, kind, count in rows:
            _add(out, "camsight_events_total", [camera, kind], float(count))

    def _outbox(self, session: Session, config: Config, out: dict[str, Metric]) -> None:
        rows = session.execute(
            select(OutboxRow.sink, OutboxRow.status, func.count())
            .where(OutboxRow.status.in_(OUTBOX_STATES))
            .group_by(OutboxRow.sink, OutboxRow.status)
        ).all()
        counts = {(sink, status): n for sink, status, n in rows}
        # Every configured sink, with zeros: "nothing waiting" is a value to alert on too.
        sinks = sorted(set(config.alerts.sink_names()) | {sink for sink, _ in counts})
        for sink in sinks:
            for status in OUTBOX_STATES:
                _add(out, "camsight_outbox_messages", [sink, status], float(counts.get((sink, status), 0)))

    def _jobs(self, session: Session, out: dict[str, Metric]) -> None:
        rows = session.execute(
            select(JobRow.state, func.count()).where(JobRow.state.in_(JOB_STATES)).group_by(JobRow.state)
        ).all()
        counts = dict(rows)
        for state in JOB_STATES:
            _add(out, "camsight_jobs", [state], float(counts.get(state, 0)))

    def _recordings(self, session: Session, config: Config, out: dict[str, Metric]) -> None:
        root = recordings_dir(self.store.root, config.storage.recordings)
        closed = dict(
            session.execute(
                select(Camera.name, func.sum(RecordingRow.size_bytes))
                .join(Camera, Camera.id == RecordingRow.camera_id)
                .where(RecordingRow.end_at.is_not(None))
                .group_by(Camera.name)
            ).all()
        )
        # A segment being written says 0 bytes until it closes: its file says how far it got.
        open_rows = session.execute(
            select(Camera.name, RecordingRow.path)
            .join(Camera, Camera.id == RecordingRow.camera_id)
            .where(RecordingRow.end_at.is_(None))
        ).all()
        sizes = {name: float(total or 0) for name, total in closed.items()}
        for name, rel in open_rows:
            try:
                size = (root / rel).stat().st_size
            except OSError:
                size = 0
            sizes[name] = sizes.get(name, 0.0) + size
        for name in sorted(sizes):
            _add(out, "camsight_recording_bytes", [name], sizes[name])

    def _disk(self, config: Config, out: dict[str, Metric]) -> None:
        root = recordings_dir(self.store.root, config.storage.recordings)
        # Before the first recording the folder may not exist: its nearest parent is the same disk.
        where = next((p for p in (root, *root.parents) if p.exists()), Path("/"))
        try:
            usage = shutil.disk_usage(where)
        except OSError:
            log.warning("metrics: cannot read the free space of %s", where, exc_info=True)
            return
        _add(out, "camsight_recording_disk_free_bytes", [], float(usage.free))
        _add(out, "camsight_recording_disk_size_bytes", [], float(usage.total))


class ServiceMetrics:
    """A service's registry, its collector and the search latency it exports.

    ``config`` returns the running config.
    """

    def __init__(self, store: Store, config: Callable[[], Config]) -> None:
        self.store = store
        self.config = config
        # The library's global registry would be shared by every service in the process (tests).
        self.registry = CollectorRegistry(auto_describe=False)
        #: Searches over the API, timed by the search route (``with search_latency.measure(): ...``).
        self.search_latency = LatencyHistogram(SEARCH_BUCKETS)
        self.collector = CamsightCollector(store, config, self.search_latency)
        self.registry.register(self.collector)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The metrics as a scrape's body and content type (OpenMetrics when ``accept`` asks for it)."""
        encoder, content_type = choose_encoder(accept or "")
        started = time.perf_counter()
        body = encoder(self.registry)
        log.debug("metrics collected in %.3fs", time.perf_counter() - started)
        return body, content_type


def _family(spec: MetricSpec) -> Metric:
    labels = list(spec.labels)
    if spec.kind == "counter":
        return CounterMetricFamily(spec.family, spec.help, labels=labels)
    if spec.kind == "gauge":
        return GaugeMetricFamily(spec.family, spec.help, labels=labels)
    return HistogramMetricFamily(spec.family, spec.help, labels=labels)


def _add(out: dict[str, Metric], name: str, labels: list[str], value: float) -> None:
    family = out[name]
    assert isinstance(family, CounterMetricFamily | GaugeMetricFamily)
    family.add_metric(labels, value)


def _number(value: object) -> float:
    """A count from a health row's details (0 when absent: a worker that has not reported it yet)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
