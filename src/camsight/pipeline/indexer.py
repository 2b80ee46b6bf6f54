"""Indexing a recorded video file into the store."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camsight.config import Config
from camsight.errors import CamsightError, ConfigError, ModelError, SourceError
from camsight.pipeline.analysis import AnalysisTarget, FrameAnalyzer
from camsight.sources.video_file import VideoFile, fingerprint
from camsight.store import repository as repo
from camsight.store.db import Store
from camsight.tracking.tracker import TrackerSettings
from camsight.vision.detector import Detector, create_detector
from camsight.vision.motion import MotionSettings

if TYPE_CHECKING:
    from camsight.analytics.attributes import AttributeExtractor
    from camsight.analytics.engine import RulesEngine
    from camsight.search.embeddings import DualEncoder
    from camsight.vision.moving_objects import MovingObjects
    from camsight.vision.reid import ReidModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexSettings:
    """Everything that changes what indexing produces.

    Two runs with equal settings on the same file give the same tracks, so
    the store can skip a file already indexed with these settings.
    """

    fps: float | None = 5.0
    #: Index only this part of the file (seconds from its start).
    start: float = 0.0
    end: float | None = None
    detector: str = "yolox"
    model: str | None = None
    confidence: float | None = None
    motion: MotionSettings | None = field(default_factory=MotionSettings)
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    thumbnails_per_track: int = 3
    #: Seconds after losing a track in which a new tracker id may continue it (0: never).
    link_seconds: float = 3.0
    attributes: bool = True
    pose: bool = True
    #: Views of each person kept over the whole track to read attributes from (0: the best crops only).
    samples_per_track: int = 12
    #: Use the person attributes model (hat, long hair, bags) when it is installed.
    person_model: bool = True
    #: Embed person tracks with the re-identification model when it is installed.
    reid: bool = True
    #: Vision-language model (name or folder) whose crop embeddings are stored.
    embeddings: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> IndexSettings:
        m, t = config.motion, config.tracking
        return cls(
            fps=None if config.index.fps == "native" else float(config.index.fps),
            detector=config.detector.backend,
            model=str(config.detector.model) if config.detector.model else None,
            confidence=config.detector.confidence,
            motion=MotionSettings(
                pixel_threshold=m.pixel_threshold, area_fraction=m.area_fraction, max_skip=m.max_skip
            )
            if m.enabled
            else None,
            tracker=TrackerSettings(
                lost_seconds=t.lost_seconds,
                activation=t.activation,
                min_hits=t.min_hits,
                confirm_seconds=t.confirm_seconds,
                appearance_weight=t.appearance_weight,
                appearance_memory=t.appearance_memory,
                min_similarity=t.min_similarity,
            ),
            thumbnails_per_track=t.thumbnails_per_track,
            link_seconds=t.link_seconds,
            attributes=config.attributes.enabled,
            pose=config.attributes.pose,
            samples_per_track=config.attributes.samples_per_track,
            person_model=config.attributes.person_model,
            reid=config.attributes.reid,
            embeddings=config.embeddings.model,
        )

    def as_dict(self) -> dict:
        return asdict(self)

    def key(self) -> str:
        blob = json.dumps(self.as_dict(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class IndexResult:
    """What one file's indexing did; ``status`` is complete, damaged or skipped."""

    path: str
    camera: str
    status: str
    source_id: int | None = None
    message: str | None = None
    video_seconds: float = 0.0
    frames_decoded: int = 0
    frames_analysed: int = 0
    frames_detected: int = 0
    tracks: dict[str, int] = field(default_factory=dict)
    #: Events raised by the camera's rules, per type.
    events: dict[str, int] = field(default_factory=dict)
    #: What went wrong without stopping the indexing (a rule that failed and was suspended).
    warnings: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def speed(self) -> float:
        """Video seconds indexed per wall-clock second (a multiple of real time)."""
        return self.video_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


#: Called with (seconds of video done, total seconds or None, frames decoded).
ProgressFn = Callable[[float, float | None, int], None]


class Indexer:
    """Indexes files into a store with one detector, reused across files.

    >>> indexer = Indexer(store, IndexSettings(detector="yolox", model="yolox_nano.onnx"))  # doctest: +SKIP
    >>> indexer.index(Path("lobby.mp4"), camera="lobby").tracks  # doctest: +SKIP
    {'person': 12}
    """

    def __init__(
        self,
        store: Store,
        settings: IndexSettings,
        detector: Detector | None = None,
        config: Config | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        #: Cameras' rules and alert sinks (behaviour alerts run while indexing).
        self.config = config or Config()
        self._detector = detector
        self._extractor: AttributeExtractor | None = None
        self._encoder: DualEncoder | None = None
        self._pose: object | None = None
        self._reid: ReidModel | None = None
        self._reid_tried = False

    def settings_for(self, camera: str) -> tuple[str, dict]:
        """The settings key and dict a camera's source is indexed with (its rules included).

        Changing a camera's rules makes its files be indexed again, so the
        events always match the rules in force.
        """
        from camsight.analytics.engine import rules_key

        settings = self.settings.as_dict()
        key = self.settings.key()
        rules = rules_key(self.config, camera)
        if rules is not None:
            settings["rules"] = rules
            key = hashlib.sha256(f"{key}|{rules}".encode()).hexdigest()[:16]
        return key, settings

    def analyzer(self, target: AnalysisTarget, *, source_key: str, **options: Any) -> FrameAnalyzer:
        """A frame analyser for ``target`` with this indexer's models, the camera's rules and blobs.

        ``options`` go to :class:`FrameAnalyzer` (workers, callbacks).
        """
        return FrameAnalyzer(
            self.store,
            self.settings,
            target,
            detector=self.detector,
            alerts=self.config.alerts,
            extractor=self.extractor,
            encoder=self.encoder,
            reid=self.reid,
            engine=self.rules_engine(target.camera, target.frame_size, source_key, target.source_id),
            blobs=self._moving_objects(target.camera),
            **options,
        )

    def _moving_objects(self, camera: str) -> MovingObjects | None:
        cam = self.config.camera(camera)
        if cam is None or cam.moving_objects is None:
            return None
        from camsight.vision.moving_objects import MovingObjects, MovingObjectSettings

        m = cam.moving_objects
        return MovingObjects(MovingObjectSettings(label=m.label, min_area=m.min_area, max_area=m.max_area))

    def rules_engine(
        self, camera: str, size: tuple[int, int], source_key: str, source_id: int
    ) -> RulesEngine | None:
        """The camera's rules engine for frames of ``size`` (None without rules)."""
        from camsight.analytics.engine import RulesEngine, box_posture, pose_posture
        from camsight.store.history import camera_history

        posture = box_posture
        if self.settings.pose and self.config.camera(camera) is not None:
            if any(r.type == "fall" and r.enabled for r in self.config.cameras[camera].rules):
                if self._pose is None:
                    from camsight.vision.pose import PoseEstimator

                    self._pose = PoseEstimator()
                posture = pose_posture(self._pose)
        return RulesEngine.for_camera(
            self.config,
            camera,
            size,
            source_key=source_key,
            posture=posture,
            history=lambda: camera_history(self.store, camera, exclude_source_id=source_id),
        )

    def load_models(self) -> None:
        """Load every model this indexer needs; a missing one raises ModelError now.

        Called before any file is touched, so a missing model never leaves a
        half-registered source (or drops an earlier index of the file).
        """
        _ = self.detector, self.encoder, self.reid
        if self.extractor is not None:
            self.extractor.prepare()

    @property
    def encoder(self) -> DualEncoder | None:
        if self._encoder is None and self.settings.embeddings:
            from camsight.search.embeddings import load_encoder

            self._encoder = load_encoder(self.settings.embeddings)
        return self._encoder

    @property
    def reid(self) -> ReidModel | None:
        """The re-id model (loaded once); None when off, or absent (warned once: indexing goes on)."""
        if not self._reid_tried and self.settings.reid:
            from camsight.vision.reid import load_reid

            self._reid_tried = True
            self._reid = load_reid()
        return self._reid

    @property
    def extractor(self) -> AttributeExtractor | None:
        if self._extractor is None and self.settings.attributes:
            from camsight.analytics.attributes import AttributeExtractor

            self._extractor = AttributeExtractor(
                use_pose=self.settings.pose, person_model=self.settings.person_model
            )
        return self._extractor

    @property
    def detector(self) -> Detector:
        # Loaded on first use so a run that only skips files pays nothing.
        if self._detector is None:
            s = self.settings
            try:
                self._detector = create_detector(
                    s.detector,  # type: ignore[arg-type]
                    Path(s.model) if s.model else None,
                    confidence=s.confidence,
                )
            except CamsightError:
                raise
            except Exception as exc:
                # A runtime that does not fit the model (an OpenCV without the TensorFlow importer, a
                # broken onnxruntime) is the user's to fix: one line that names it, not a traceback.
                log.debug("cannot load the %s detector", s.detector, exc_info=True)
                raise ModelError(
                    f"cannot load the {s.detector} detector: {type(exc).__name__}: {exc}".splitlines()[0]
                ) from exc
        return self._detector

    def index(
        self,
        path: Path,
        camera: str | None = None,
        *,
        force: bool = False,
        recorded_at: datetime | None = None,
        progress: ProgressFn | None = None,
    ) -> IndexResult:
        """Index one file; raises :class:`SourceError` when nothing in it can be used.

        ``recorded_at`` is when the recording started (default: the time
        stored when this file was indexed before, else the file's
        creation_time tag, else its modification time minus its duration);
        it gives tracks wall-clock times for time-based search.
        """
        path = Path(path)
        camera = camera or path.stem
        self.load_models()
        started = time.perf_counter()
        settings_key, settings = self.settings_for(camera)
        with VideoFile(path) as video:
            info = video.info
            print_ = fingerprint(path)
            plan = plan_video(
                self.store, path, camera, print_, info, settings_key, settings, recorded_at, force
            )
            if plan.source_id is None:
                return IndexResult(str(path), camera, "skipped", message=plan.reason)
            try:
                start_at = plan.wallclock_start
                result = self._run(video, camera, plan, progress, source_key=print_, start_at=start_at)
            except (SourceError, ConfigError):
                repo.discard_source(self.store, plan.source_id)
                raise
        result.wall_seconds = time.perf_counter() - started
        if plan.replaced and result.message is None:
            result.message = "re-indexed (earlier run was interrupted or used other settings)"
        return result

    def _run(
        self,
        video: VideoFile,
        camera: str,
        plan: repo.SourcePlan,
        progress: ProgressFn | None,
        *,
        source_key: str,
        start_at: datetime | None,
    ) -> IndexResult:
        s = self.settings
        info = video.info
        source_id = plan.source_id
        assert source_id is not None
        target = AnalysisTarget(
            camera=camera,
            camera_id=plan.camera_id,
            source_id=source_id,
            source_uri=str(video.path),
            frame_size=(info.width, info.height),
            analysis_fps=s.fps or info.fps,
            start_at=start_at,
        )
        analyzer = self.analyzer(
            target,
            source_key=source_key,
            progress_fields=lambda: {"frames_decoded": video.decoded},
            on_done=None
            if progress is None
            else (lambda frame: progress(frame.t, info.duration, video.decoded)),
        )
        counts = analyzer.counts
        with analyzer:
            t_mark = time.perf_counter()
            for frame in video.frames(s.fps, start=s.start):
                if s.end is not None and frame.t >= s.end:
                    break
                counts.timing["decode"] += time.perf_counter() - t_mark
                analyzer.push(frame)
                t_mark = time.perf_counter()
            counts.timing["decode"] += time.perf_counter() - t_mark
            analyzer.finish()
        last_t = counts.last_t
        timing = counts.timing
        counts_fields = {"frames_analysed": counts.frames_analysed, "frames_detected": counts.frames_detected}

        status, message = "complete", None
        problems = list(video.errors)
        # Judge truncation by the last *decoded* frame: at a low analysis rate
        # the last analysed one can be seconds before the end of a good file.
        decoded_to = video.last_t if video.last_t is not None else last_t
        expected_end = min(info.duration, s.end) if info.duration and s.end else (info.duration or 0)
        end_gap = expected_end - decoded_to
        if info.duration and end_gap > max(1.0, 3.0 / info.fps):
            problems.insert(0, f"video ends at {decoded_to:.1f}s of {info.duration:.1f}s (truncated?)")
        if problems:
            status = "damaged"
            message = f"{video.path}: damaged video, indexed what could be decoded: {problems[0]}"
            log.warning("damaged source", extra={"source": str(video.path), "problem": problems[0]})
        repo.finish_source(
            self.store,
            source_id,
            status,
            {**counts_fields, "frames_decoded": video.decoded},
            message,
        )
        return IndexResult(
            path=str(video.path),
            camera=camera,
            status=status,
            source_id=source_id,
            message=message,
            video_seconds=last_t + 1.0 / info.fps if counts.frames_analysed else 0.0,
            frames_decoded=video.decoded,
            tracks=repo.count_tracks(self.store, source_id),
            events=counts.events,
            warnings=list(analyzer.engine.warnings) if analyzer.engine is not None else [],
            stage_seconds=timing,
            **counts_fields,
        )


def plan_video(
    store: Store,
    path: Path,
    camera: str,
    print_: str,
    info: Any,
    settings_key: str,
    settings: dict,
    recorded_at: datetime | None,
    force: bool,
) -> repo.SourcePlan:
    """:func:`repo.plan_source` for the video file ``path`` (``info``: its ``VideoFile.info``,
    ``print_`` its fingerprint): whether and as which source it is indexed, by one box or a cluster."""
    return repo.plan_source(
        store,
        camera=camera,
        uri=str(path.resolve()),
        fingerprint=print_,
        settings_key=settings_key,
        settings=settings,
        width=info.width,
        height=info.height,
        native_fps=info.fps,
        duration=info.duration,
        wallclock_start=recorded_at,
        default_start=info.recorded_at,
        force=force,
    )
