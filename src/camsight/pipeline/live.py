"""One live camera: its stream, recording, analysis and health, until told to stop.

The source thread (PyAV demux/decode, see :mod:`camsight.sources.live`) hands
every packet to the recorder (stream copy, cheap) and analysis-rate frames to
a small queue; the analysis thread takes the newest frames from it. When
analysis falls behind, the oldest queued frames are dropped rather than
letting the lag grow: a live camera is only useful if what it reports is now.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from camsight.config import Config
from camsight.pipeline.analysis import AnalysisTarget, FrameAnalyzer
from camsight.pipeline.latency import LatencyHistogram, TimedDetector
from camsight.sources.frame import Frame
from camsight.store import repository as repo
from camsight.store.db import Store
from camsight.store.models import CameraStatusRow, utcnow

if TYPE_CHECKING:
    import av

    from camsight.analytics.rules.base import Event
    from camsight.media.masks import PrivacyMask
    from camsight.media.recorder import SegmentRecorder
    from camsight.pipeline.indexer import Indexer
    from camsight.pipeline.live_view import LiveChannel, LivePublisher
    from camsight.sources.live import Health

log = logging.getLogger(__name__)

#: Frames waiting for analysis; beyond this the oldest are dropped.
QUEUE_FRAMES = 3
#: Seconds between health records written to the store.
HEALTH_SECONDS = 2.0
#: Seconds between refreshes of the camera's latest picture (the web app's snapshot).
LATEST_SECONDS = 2.0


class MaskedFrame(Frame):
    """A frame whose picture (colour and grey) has the camera's privacy masks blanked.

    The masks are applied when a picture is first asked for, so frames the
    motion gate rejects still never pay for colour conversion.
    """

    __slots__ = ("_mask", "_source")

    def __init__(self, frame: Frame, mask: PrivacyMask) -> None:
        super().__init__(frame.index, frame.t, frame._image, av_frame=frame._av)
        self._image = None  # never hand out an unmasked picture, even one already converted
        self._source = frame
        self._mask = mask

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            self._image = self._mask.apply(self._source.image.copy())
        return self._image

    @property
    def gray(self) -> np.ndarray:
        if self._gray is None:
            self._gray = self._mask.apply_gray(self._source.gray.copy())
        return self._gray


@dataclass
class LiveStats:
    """What the analysis side reports into the camera's health."""

    frames_queued: int = 0
    frames_dropped: int = 0
    frames_done: int = 0
    lag_seconds: float = 0.0
    recent: list[float] = field(default_factory=list)
    #: Rules suspended after an error in this session (the camera goes on without them).
    rule_warnings: list[str] = field(default_factory=list)

    def analysed_fps(self, now: float) -> float:
        self.recent = [t for t in self.recent if now - t <= 5.0]
        return len(self.recent) / 5.0


class CameraWorker:
    """Runs one camera of the config against the store in ``data_dir`` until ``stop`` is set.

    >>> worker = CameraWorker(load_config(path), "gate", Path("data"))  # doctest: +SKIP
    >>> worker.run(threading.Event())                                  # doctest: +SKIP
    """

    def __init__(
        self,
        config: Config,
        camera: str,
        data_dir: Path,
        *,
        detector_threads: int = 1,
        live: LiveChannel | None = None,
    ) -> None:
        cam = config.camera(camera)
        if cam is None or cam.url is None:
            raise ValueError(f"camera {camera!r} has no url in the config")
        self.config = config
        self.camera = camera
        self.cam = cam
        self.data_dir = Path(data_dir)
        self.detector_threads = detector_threads
        self.stats = LiveStats()
        #: Seconds per detection, written with the health for the metrics (camsight_detector_latency_seconds).
        self.detect_latency = LatencyHistogram()
        self._queue: queue.Queue[tuple[Frame, datetime]] = queue.Queue()
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._recorder: SegmentRecorder | None = None
        self._mask: PrivacyMask | None = None
        self._mask_size: tuple[int, int] | None = None
        self._last_health = 0.0
        self._last_picture = 0.0
        self._health: Health | None = None
        self._idle_at: datetime | None = None
        self._holds: list[tuple[datetime, datetime, str]] = []
        #: Whether this connection's packets are recorded (not when a sub-stream is analysed).
        self._record_here = True
        #: What ended the analysis thread, re-raised by :meth:`run` so the worker exits with its reason.
        self._failure: BaseException | None = None
        #: Where the web app's live view gets its pictures (None: no live view, e.g. without a server).
        self._live_channel = live
        self._publisher: LivePublisher | None = None

    # ------------------------------------------------------------------ running

    def run(self, stop: threading.Event) -> None:
        """Connect, record and analyse until ``stop``; reconnects on its own.

        Raises what keeps the camera from running (a model that cannot load, a
        setting that cannot work, an analysis failure) for the process's top
        level (:func:`camsight.service.supervisor.worker_main`) to report.
        """
        from camsight.pipeline.indexer import Indexer, IndexSettings
        from camsight.sources.live import LiveSettings, LiveSource
        from camsight.store.db import open_store, url_for

        self._store = store = open_store(self.data_dir, url=url_for(self.config.store))
        # Run by a node (camsight run --node): its sessions' media is here, as other nodes must know.
        store.node = self.config.node_of(self.camera)
        with store.session() as session:
            cam_row = repo.get_or_create_camera(session, self.camera, kind="live")
            camera_id = cam_row.id
        # The camera's own analysis rate; one detector thread, as every camera has its own process.
        settings = replace(IndexSettings.from_config(self.config), fps=self.cam.fps)
        indexer = Indexer(store, settings, config=self.config)
        indexer.load_models()
        if self.cam.record.mode != "off":
            from camsight.media.recorder import SegmentRecorder
            from camsight.paths import recordings_dir

            root = recordings_dir(self.data_dir, self.config.storage.recordings)
            self._recorder = SegmentRecorder(store, camera=self.camera, root=root, settings=self.cam.record)
        threads = [
            threading.Thread(
                target=self._analyse,
                args=(indexer, camera_id, stop),
                name=f"analysis-{self.camera}",
                daemon=True,
            )
        ]
        if self._live_channel is not None:
            from camsight.pipeline.live_view import LivePublisher

            self._publisher = LivePublisher(self._live_channel, self.camera, self.cam)
            threads.append(
                threading.Thread(
                    target=self._publisher.run, args=(stop,), name=f"live-{self.camera}", daemon=True
                )
            )
        if self.cam.detect_url:
            # Analyse the camera's sub-stream; record its main stream on a second
            # connection that is never decoded.
            source = LiveSource(self.camera, LiveSettings.from_camera(self.cam, detect=True))
            if self._recorder is not None:
                main = LiveSource(f"{self.camera}-main", LiveSettings.from_camera(self.cam, decode="none"))
                self._record_here = False
                threads.append(
                    threading.Thread(
                        target=main.run,
                        args=(_RecordOnly(self._recorder), stop),
                        name=f"record-{self.camera}",
                        daemon=True,
                    )
                )
        else:
            source = LiveSource(self.camera, LiveSettings.from_camera(self.cam))
        for thread in threads:
            thread.start()
        try:
            source.run(self, stop)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            if self._recorder is not None:
                self._recorder.close()
            if self._failure is None:
                self._write_health(state="stopped", force=True)
            store.close()
        if self._failure is not None:
            raise self._failure

    def _analyse(self, indexer: Indexer, camera_id: int, stop: threading.Event) -> None:
        analyzer: FrameAnalyzer | None = None
        source_id: int | None = None
        size: tuple[int, int] | None = None
        try:
            while not stop.is_set():
                try:
                    frame, at = self._queue.get(timeout=0.5)
                except queue.Empty:
                    idle_at = self._idle_at
                    if analyzer is not None and idle_at is not None:
                        self._idle_at = None
                        analyzer.idle(idle_at)
                    continue
                h, w = frame.gray.shape[:2]
                if size != (w, h):
                    # A new picture size (first frame, or the camera was reconfigured): a new session.
                    if analyzer is not None:
                        self._end_session(analyzer, source_id)
                    size = (w, h)
                    analyzer, source_id = self._start_session(indexer, camera_id, size, frame, at)
                if self._mask is not None:
                    frame = MaskedFrame(frame, self._mask)
                analyzer.push(frame)
                self._save_picture(frame)
                with self._lock:
                    self.stats.lag_seconds = (datetime.now(UTC) - at).total_seconds()
                    if analyzer.engine is not None:
                        self.stats.rule_warnings = list(analyzer.engine.warnings)
        except Exception as exc:  # run() re-raises it: the worker reports it and the supervisor restarts it
            self._failure = exc
            stop.set()
        finally:
            if analyzer is not None:
                self._end_session(analyzer, source_id)
            self._apply_holds(everything=True)

    def _save_picture(self, frame: Frame) -> None:
        """Every few seconds, keep the (masked) frame as the camera's latest picture, atomically."""
        now = time.monotonic()
        if now - self._last_picture < LATEST_SECONDS or self._store is None:
            return
        self._last_picture = now
        import cv2

        from camsight.paths import latest_frame_path

        path = latest_frame_path(self._store.media, self.camera)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            ok, jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 85])
            if not ok:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(jpeg.tobytes())
            os.replace(tmp, path)  # readers see the old picture or the new one, never half of one
        except (OSError, cv2.error):  # best effort: the camera goes on without a snapshot
            tmp.unlink(missing_ok=True)
            log.warning("cannot save the latest picture", extra={"camera": self.camera}, exc_info=True)

    def _start_session(
        self, indexer: Indexer, camera_id: int, size: tuple[int, int], frame: Frame, at: datetime
    ) -> tuple[FrameAnalyzer, int]:
        from camsight.media.masks import PrivacyMask
        from camsight.urls import redact_url

        store = self._store
        assert store is not None
        start_at = at - timedelta(seconds=frame.t)
        settings_key, settings = indexer.settings_for(self.camera)
        # Identifies this session: event ids derive from it, so they never collide across sessions.
        session_key = f"live:{start_at.isoformat()}:{size[0]}x{size[1]}"
        plan = repo.plan_source(
            store,
            camera=self.camera,
            uri=redact_url(self.cam.url or ""),
            fingerprint=session_key,
            settings_key=settings_key,
            settings=settings,
            width=size[0],
            height=size[1],
            native_fps=self.cam.fps,
            duration=None,
            wallclock_start=start_at,
            force=True,
        )
        assert plan.source_id is not None
        self._mask = PrivacyMask.for_camera(self.cam, size)
        target = AnalysisTarget(
            camera=self.camera,
            camera_id=camera_id,
            source_id=plan.source_id,
            source_uri=redact_url(self.cam.url or ""),
            frame_size=size,
            analysis_fps=self.cam.fps,
            start_at=start_at,
        )
        analyzer = indexer.analyzer(
            target,
            source_key=session_key,
            workers=self.detector_threads,
            on_event=self._on_event,
            on_done=self._on_done,
        )
        analyzer.detector = TimedDetector(analyzer.detector, self.detect_latency)
        log.info("session started", extra={"camera": self.camera, "size": f"{size[0]}x{size[1]}"})
        return analyzer, plan.source_id

    def _end_session(self, analyzer: FrameAnalyzer, source_id: int | None) -> None:
        store = self._store
        assert store is not None
        try:
            analyzer.finish()
        finally:
            analyzer.close()
        if source_id is not None:
            c = analyzer.counts
            repo.finish_source(
                store,
                source_id,
                "complete",
                {"frames_analysed": c.frames_analysed, "frames_detected": c.frames_detected},
                None,
            )

    def _on_event(self, event: Event, kind: str) -> None:
        if self._recorder is None or event.start_at is None:
            return
        self._recorder.event(event.start_at, event.end_at)
        rec = self.cam.record
        if kind == "end" and event.end_at is not None and rec.event_hold_days > 0:
            # Held once the post-event footage has been written (see _apply_holds).
            start = event.start_at - timedelta(seconds=rec.pre_seconds)
            end = event.end_at + timedelta(seconds=rec.post_seconds)
            self._holds.append((start, end, f"event {event.uid}"))

    def _apply_holds(self, *, everything: bool = False) -> None:
        """Keep incidents' footage past normal retention, for review and export."""
        if not self._holds or self._store is None:
            return
        from camsight.media.retention import hold

        now = datetime.now(UTC)
        due = [h for h in self._holds if everything or now - h[1] > timedelta(seconds=5)]
        self._holds = [h for h in self._holds if h not in due]
        until = now + timedelta(days=self.cam.record.event_hold_days)
        for start, end, reason in due:
            try:
                hold(self._store, self.camera, start, end, until, reason)
            except Exception:  # the footage stays under normal retention; never stop the camera for it
                log.warning("cannot hold event footage", extra={"camera": self.camera}, exc_info=True)

    def _on_done(self, frame: Frame) -> None:
        with self._lock:
            self.stats.frames_done += 1
            self.stats.recent.append(time.monotonic())
        self._apply_holds()

    # ------------------------------------------------------------------ LiveHandler

    def on_connect(self, stream: av.video.stream.VideoStream, gap: bool) -> None:
        if self._recorder is not None and self._record_here:
            self._recorder.open(stream, gap)

    def on_packet(self, packet: av.Packet, at: datetime) -> None:
        if self._recorder is not None and self._record_here:
            self._recorder.packet(packet, at)

    def on_frame(self, frame: Frame, at: datetime) -> None:
        if self._publisher is not None:
            self._publisher.offer(frame)  # only while someone watches; never waits for encoding
        # Keep the newest frames: drop the oldest when analysis is behind.
        while self._queue.qsize() >= QUEUE_FRAMES:
            try:
                self._queue.get_nowait()
                with self._lock:
                    self.stats.frames_dropped += 1
            except queue.Empty:
                break
        self._queue.put((frame, at))
        with self._lock:
            self.stats.frames_queued += 1

    def on_health(self, health: Health) -> None:
        changed = self._health is None or self._health.state != health.state
        self._health = health
        self._write_health(force=changed or health.state != "connected")

    def idle(self, at: datetime) -> None:
        self._idle_at = at

    # ------------------------------------------------------------------ health

    def _write_health(
        self, state: str | None = None, error: str | None = None, *, force: bool = False
    ) -> None:
        now = time.monotonic()
        if not force and now - self._last_health < HEALTH_SECONDS:
            return
        store = self._store
        if store is None:
            return
        self._last_health = now
        h = self._health
        with self._lock:
            fps_analysed = self.stats.analysed_fps(now)
            details: dict[str, Any] = {
                "frames_queued": self.stats.frames_queued,
                "frames_dropped": self.stats.frames_dropped,
                "frames_analysed": self.stats.frames_done,
                # For the metrics: frames waiting for analysis now, and the detector's latencies.
                "queue_depth": self._queue.qsize(),
                "detect_latency": self.detect_latency.snapshot(),
            }
            if self.stats.rule_warnings:
                details["rules_suspended"] = list(self.stats.rule_warnings)
            lag = self.stats.lag_seconds
        if h is not None:
            details.update(
                {
                    "frames_in": h.frames_in,
                    "gaps": h.gaps,
                    "connected_since": _iso(h.connected_since),
                    "source_frames_dropped": h.frames_dropped,
                }
            )
        fields = {
            "state": state or (h.state if h is not None else "connecting"),
            "fps_in": h.fps_in if h is not None else 0.0,
            "fps_analysed": fps_analysed,
            "lag_seconds": lag,
            "last_frame_at": h.last_frame_at if h is not None else None,
            "reconnects": h.reconnects if h is not None else 0,
            "error": error if error is not None else (h.error if h is not None else None),
            "details": details,
            "updated_at": utcnow(),
        }
        try:
            with store.session() as session:
                cam = repo.get_or_create_camera(session, self.camera, kind="live")
                row = session.get(CameraStatusRow, cam.id)
                if row is None:
                    session.add(CameraStatusRow(camera_id=cam.id, **fields))
                else:
                    for key, value in fields.items():
                        setattr(row, key, value)
        except Exception:  # health is best effort; the stream must go on
            log.warning("cannot write camera health", extra={"camera": self.camera}, exc_info=True)


class _RecordOnly:
    """The handler of a main-stream connection that is only recorded."""

    def __init__(self, recorder: SegmentRecorder) -> None:
        self.recorder = recorder

    def on_connect(self, stream: av.video.stream.VideoStream, gap: bool) -> None:
        self.recorder.open(stream, gap)

    def on_packet(self, packet: av.Packet, at: datetime) -> None:
        self.recorder.packet(packet, at)

    def on_frame(self, frame: Frame, at: datetime) -> None:
        return

    def on_health(self, health: Health) -> None:
        return

    def idle(self, at: datetime) -> None:
        return


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
