"""The per-frame analysis shared by file indexing and live cameras.

motion gate -> detector (ahead, in worker threads) -> tracker -> track
builder -> rules -> store. Frames go in with :meth:`FrameAnalyzer.push`;
finished tracks and events are written every couple of seconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from camsight.analytics.engine import RulesEngine, RulesOutput, wall_clock
from camsight.config import AlertsConfig
from camsight.records.tracks import TrackRecord
from camsight.sources.frame import Frame
from camsight.store import repository as repo
from camsight.store.db import Store
from camsight.tracking.builder import LinkSettings, TrackBuilder
from camsight.tracking.tracker import MultiClassTracker, TrackedBox, leaving_picture
from camsight.vision.detections import Detections
from camsight.vision.detector import Detector
from camsight.vision.motion import MotionGate

if TYPE_CHECKING:
    from camsight.analytics.attributes import AttributeExtractor
    from camsight.analytics.rules.base import Event
    from camsight.pipeline.indexer import IndexSettings
    from camsight.search.embeddings import DualEncoder
    from camsight.vision.moving_objects import MovingObjects
    from camsight.vision.reid import ReidModel

STAGES = ("decode", "motion", "detect", "track", "rules", "attributes", "store")
FLUSH_SECONDS = 2.0
#: How often (wall-clock seconds) open events are checked for an acknowledgement made meanwhile.
ACK_SECONDS = 2.0
#: Frames detected ahead of the one being tracked, beyond the detector's parallelism.
DETECT_AHEAD = 1


@dataclass
class AnalysisTarget:
    """Where results go: the camera and source rows, and the source's wall-clock start."""

    camera: str
    camera_id: int
    source_id: int
    source_uri: str
    frame_size: tuple[int, int]
    analysis_fps: float
    start_at: datetime | None


@dataclass
class AnalysisCounts:
    frames_analysed: int = 0
    frames_detected: int = 0
    last_t: float = 0.0
    timing: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    events: dict[str, int] = field(default_factory=dict)


class FrameAnalyzer:
    """Analyses one source's frames in order and stores what it finds.

    ``workers`` detector threads run ahead of tracking (onnxruntime and
    OpenCV release the GIL); results are consumed strictly in frame order.
    ``on_event`` is told about every event change (live recording uses it).
    Use as a context manager, or call :meth:`close` after :meth:`finish`.
    """

    def __init__(
        self,
        store: Store,
        settings: IndexSettings,
        target: AnalysisTarget,
        *,
        detector: Detector,
        alerts: AlertsConfig,
        extractor: AttributeExtractor | None = None,
        encoder: DualEncoder | None = None,
        reid: ReidModel | None = None,
        engine: RulesEngine | None = None,
        blobs: MovingObjects | None = None,
        workers: int | None = None,
        progress_fields: Callable[[], dict[str, int]] | None = None,
        on_event: Callable[[Event, str], None] | None = None,
        on_done: Callable[[Frame], None] | None = None,
        sink: Callable[[list[TrackRecord]], None] | None = None,
    ) -> None:
        s = settings
        self.store = store
        self.settings = s
        self.target = target
        self.detector = detector
        self.alerts = alerts
        self.extractor = extractor
        self.encoder = encoder
        self.reid = reid
        self.engine = engine
        self.blobs = blobs
        self.progress_fields = progress_fields or (lambda: {})
        self.on_event = on_event
        self.on_done = on_done
        #: Given, finished tracks (described) go to it instead of the store: a cluster worker
        #: has no store and hands them back to the driver (see service.cluster).
        self.sink = sink
        self.tracker = MultiClassTracker(target.analysis_fps, s.tracker)
        self.builder = TrackBuilder(
            target.frame_size,
            end_after=s.tracker.lost_seconds + s.link_seconds + 2.0 / target.analysis_fps,
            crops_per_track=s.thumbnails_per_track,
            link=LinkSettings(seconds=s.link_seconds) if s.link_seconds > 0 else None,
            samples_per_track=s.samples_per_track if s.attributes else 0,
            confident=s.tracker.activation.get("person"),
        )
        self.gate = None
        if s.motion is not None:
            # The tracker drops a track unseen for lost_seconds; the gate must
            # look again well before that, or still objects would get new ids.
            max_skip = min(s.motion.max_skip, 0.75 * s.tracker.lost_seconds)
            self.gate = MotionGate(replace(s.motion, max_skip=max_skip))
        self.counts = AnalysisCounts()
        self.workers = max(1, workers if workers is not None else int(getattr(detector, "parallel", 1)))
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="camsight-detect")
        self._ahead: deque[tuple[Frame, Future[Detections] | None, Detections | None]] = deque()
        self._pending: list[TrackRecord] = []
        self._rules = RulesOutput()
        self._last_boxes: list[TrackedBox] = []
        #: Objects that were driving out of the picture in the last detected frame.
        self._leaving: set[tuple[str, int]] = set()
        self._last_flush = time.perf_counter()
        self._last_ack_check = time.perf_counter()

    # ------------------------------------------------------------------ frames in

    def push(self, frame: Frame) -> None:
        """Analyse one frame (its results may be consumed a frame or two later)."""
        timing = self.counts.timing
        now = time.perf_counter()
        self.counts.frames_analysed += 1
        self.counts.last_t = frame.t
        moving = True
        if self.gate is not None:
            moving = self.gate.check(frame.gray, frame.t)
            timing["motion"] += time.perf_counter() - now
        frame_blobs = self.blobs.update(frame.gray, frame.t) if self.blobs is not None else None
        if frame_blobs is not None and (len(frame_blobs) or getattr(frame_blobs, "oversize", ())):
            moving = True
        future = None
        if moving:
            self.counts.frames_detected += 1
            future = self._pool.submit(self.detector.detect, frame.image)
        self._ahead.append((frame, future, frame_blobs))
        if len(self._ahead) > self.workers + DETECT_AHEAD:
            self._consume(*self._ahead.popleft())

    def drain(self) -> None:
        """Consume every frame pushed so far."""
        while self._ahead:
            self._consume(*self._ahead.popleft())

    def idle(self, at: datetime) -> None:
        """No frame is arriving (a live source stalled): let rules report video loss."""
        if self.engine is None or self.target.start_at is None:
            return
        t = (at - self.target.start_at).total_seconds()
        self._add(self.engine.idle(t, at))
        self.flush_if_due()

    def finish(self) -> None:
        """The source ended: close every track and event, and store everything."""
        self.drain()
        t0 = time.perf_counter()
        self._pending.extend(self._ended(self.builder.finish()))
        if self.engine is not None:
            self._add(self.engine.finish())
        self.counts.timing["track"] += time.perf_counter() - t0
        self.flush()

    def close(self) -> None:
        for _, future, _ in self._ahead:  # interrupted: do not start work nobody will read
            if future is not None:
                future.cancel()
        self._ahead.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> FrameAnalyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _consume(self, frame: Frame, future: Future[Detections] | None, blobs: Detections | None) -> None:
        timing = self.counts.timing
        now = time.perf_counter()
        moving = future is not None
        detections = None
        if future is not None:
            detections = future.result()
            if blobs is not None:
                from camsight.vision.moving_objects import merge

                # Where the tracks are expected splits a blob of touching objects between them.
                label = self.blobs.settings.label if self.blobs is not None else None
                expected = self.tracker.expected(label) if label else None
                detections = merge(detections, blobs, expected=expected)
            t1 = time.perf_counter()
            timing["detect"] += t1 - now
            now = t1
            before = {b.key: b.xyxy for b in self._last_boxes}
            self._last_boxes = self.tracker.update(detections, frame.image, frame.t)
            size = (frame.image.shape[1], frame.image.shape[0])
            self._leaving = {
                b.key
                for b in self._last_boxes
                if b.key in before and leaving_picture(before[b.key], b.xyxy, size)
            }
        elif self._leaving:
            # Nothing moves now: an object that was driving out of the picture has left it
            # (held at the edge, a car that left would seem to have stopped dead there).
            self._last_boxes = [b for b in self._last_boxes if b.key not in self._leaving]
            self._leaving = set()
        # With no motion the scene is as it was: the last boxes still hold,
        # and the tracker is not told about a frame it did not see, so still
        # objects keep their tracks.
        finished = self.builder.update(frame, self._last_boxes, detected=moving)
        t1 = time.perf_counter()
        timing["track"] += t1 - now
        if self.engine is not None:
            at = wall_clock(self.target.start_at, frame.t)
            self._add(
                self.engine.update(frame, self.builder.live, detected=moving, at=at, detections=detections)
            )
            self._pending.extend(self._ended(finished))
            timing["rules"] += time.perf_counter() - t1
        else:
            self._pending.extend(finished)
        self.flush_if_due()
        if self.on_done is not None:
            self.on_done(frame)

    def _ended(self, records: list[TrackRecord]) -> list[TrackRecord]:
        if self.engine is not None:
            for rec in records:
                self._add(self.engine.track_ended(rec, self.target.start_at))
        return records

    def _add(self, out: RulesOutput) -> None:
        for change in out.changes:
            if change.kind == "start":
                self.counts.events[change.event.type] = self.counts.events.get(change.event.type, 0) + 1
            if self.on_event is not None:
                self.on_event(change.event, change.kind)
        self._rules.extend(out)

    def flush_if_due(self) -> None:
        if (self._pending or self._rules) and time.perf_counter() - self._last_flush > FLUSH_SECONDS:
            self.flush()
        if self.engine is not None and time.perf_counter() - self._last_ack_check > ACK_SECONDS:
            self.check_acknowledged()

    def check_acknowledged(self) -> None:
        """Tell the rules which of their open events someone acknowledged (API, CLI) meanwhile.

        A zone or crowd episode then ends, so new objects entering raise a new
        event rather than updating one that was already dealt with.
        """
        self._last_ack_check = time.perf_counter()
        if self.engine is None:
            return
        open_uids = self.engine.open_uids
        if not open_uids:
            return
        from camsight.store.events import acknowledged_uids

        acked = acknowledged_uids(self.store, open_uids)
        if acked:
            self._add(self.engine.acknowledge(acked))

    def flush(self) -> None:
        """Store finished tracks (with attributes and embeddings) and rule output now."""
        timing = self.counts.timing
        records, self._pending = self._pending, []
        t0 = time.perf_counter()
        if self.extractor is not None:
            # All tracks at once: the person attributes model reads their views in one batch.
            for rec, attrs in zip(records, self.extractor.extract_all(records), strict=True):
                rec.attributes = attrs
        if self.encoder is not None:
            with_crops = [rec for rec in records if rec.crops]
            vectors = self.encoder.embed_images([rec.crops[0].image for rec in with_crops])
            for rec, vec in zip(with_crops, vectors, strict=True):
                rec.embedding, rec.embedding_model = vec, self.encoder.name
        if self.reid is not None:
            self._embed_people(records, self.reid)
        t1 = time.perf_counter()
        timing["attributes"] += t1 - t0
        fields = {
            "frames_analysed": self.counts.frames_analysed,
            "frames_detected": self.counts.frames_detected,
            **self.progress_fields(),
        }
        tgt = self.target
        if self.sink is not None:
            self.sink(records)
        else:
            repo.save_tracks(self.store, tgt.source_id, tgt.camera_id, records, fields)
            self._save_events()
        timing["store"] += time.perf_counter() - t1
        self._last_flush = time.perf_counter()

    @staticmethod
    def _embed_people(records: list[TrackRecord], reid: ReidModel) -> None:
        """Re-id vectors of the person tracks, from a few good views each, in one batch."""
        from camsight.vision.reid import track_views

        people = [rec for rec in records if rec.label == "person"]
        views = [track_views(rec.crops, rec.samples) for rec in people]
        for rec, vec in zip(people, reid.embed_tracks(views), strict=True):
            if vec is not None:
                rec.reid, rec.reid_model = vec, reid.name

    def _save_events(self) -> None:
        out, self._rules = self._rules, RulesOutput()
        if not out:
            return
        from camsight.alerts.outbox import enqueue
        from camsight.store.events import event_payload, save_rules_output

        tgt = self.target
        # One transaction for the events and their alerts: never one without the other.
        with self.store.session() as session:
            notify = save_rules_output(
                self.store, session, out, camera_id=tgt.camera_id, source_id=tgt.source_id
            )
            for row, kind in notify:
                enqueue(session, self.alerts, event_payload(row, tgt.camera, kind, tgt.source_uri))
