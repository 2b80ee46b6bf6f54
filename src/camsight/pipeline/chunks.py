"""Cutting a file into overlapping time chunks, and analysing one chunk where no store is.

This is what a cluster worker runs (see :mod:`camsight.service.cluster`): it
reads the chunk's part of the video itself (the file must be at the same path
on the worker), runs the same per-frame analysis as ``camsight index`` and
returns the finished tracks, thumbnails included, instead of storing them. The
driver stitches the chunks' tracks and stores them. Nothing here imports Ray.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from camsight.config import AlertsConfig
from camsight.pipeline.analysis import AnalysisTarget, FrameAnalyzer
from camsight.pipeline.indexer import Indexer, IndexSettings
from camsight.records.tracks import TrackRecord
from camsight.sources.video_file import VideoFile

if TYPE_CHECKING:
    from camsight.config.camera import MovingObjectsConfig
    from camsight.store.db import Store

#: Default length of a chunk, seconds of video: long enough that the overlap and the
#: per-chunk start-up are a few percent, short enough to spread an hour over many workers.
CHUNK_SECONDS = 300.0
#: Seconds of video both chunks analyse around a cut (half before, half after it). Each
#: tracker is then warm for 2 s on its own side: past the tracker's confirmation (0.25 s)
#: and its default patience (lost_seconds 2 s), so an object crossing the cut is tracked
#: by both chunks through the frames where they are matched.
OVERLAP_SECONDS = 4.0


@dataclass(frozen=True)
class ChunkSpec:
    """One chunk: the video it analyses (``start``..``end``) and the part it owns (``own_*``).

    ``end``/``own_end`` None: to the end of the file. The owned parts of a
    file's chunks tile it; the analysed parts overlap by the overlap around
    every cut.
    """

    index: int
    count: int
    start: float
    end: float | None
    own_start: float
    own_end: float | None

    @property
    def seconds(self) -> float | None:
        """Seconds of video this chunk owns (None: unknown, to the end of a file of unknown length)."""
        return None if self.own_end is None else self.own_end - self.own_start


def plan_chunks(
    start: float,
    end: float | None,
    chunk_seconds: float,
    overlap: float = OVERLAP_SECONDS,
    step: float = 0.0,
) -> list[ChunkSpec]:
    """Chunks of about ``chunk_seconds`` covering ``start``..``end`` (end None: the whole file, one chunk).

    Cuts fall on multiples of ``step`` (the analysis frame period) from
    ``start``, so every chunk picks the same frames a whole-file run would;
    the last chunk takes the remainder (up to 1.5 chunks) rather than leave a
    sliver.

    >>> [(c.start, c.end, c.own_start, c.own_end) for c in plan_chunks(0, 50, 20, 4, 0.2)]
    [(0, 22.0, 0, 20.0), (18.0, None, 20.0, None)]
    >>> len(plan_chunks(0, 10, 20))
    1
    """
    if end is None or end - start <= chunk_seconds * 1.5:
        return [ChunkSpec(0, 1, start, None, start, None)]
    if step > 0:
        chunk_seconds = max(step, round(chunk_seconds / step) * step)
    count = max(1, round((end - start) / chunk_seconds))
    cuts = [round(start + k * chunk_seconds, 6) for k in range(1, count)]
    half = overlap / 2
    chunks = []
    for k in range(count):
        own_start = start if k == 0 else cuts[k - 1]
        own_end = None if k == count - 1 else cuts[k]
        chunks.append(
            ChunkSpec(
                index=k,
                count=count,
                start=own_start if k == 0 else round(own_start - half, 6),
                end=None if own_end is None else round(own_end + half, 6),
                own_start=own_start,
                own_end=own_end,
            )
        )
    return chunks


@dataclass(frozen=True)
class ChunkTask:
    """What is shipped to a worker for one chunk: the file's path (not its bytes) and the settings.

    No store, no secrets: alert settings and rules stay with the driver.
    """

    path: str
    camera: str
    chunk: ChunkSpec
    settings: IndexSettings
    moving_objects: MovingObjectsConfig | None = None
    #: Detector calls at once: the CPUs the cluster gave the task (a plain run uses 2 on 2 cores;
    #: a chunk must keep to its share, or two chunks on one machine fight over the same cores).
    threads: int = 1


@dataclass
class ChunkOutput:
    """What a worker sends back: the chunk's finished tracks (thumbnail pixels included) and counts.

    ``frames_*`` count the frames of the part the chunk owns, so a file's
    chunks add up to what a whole-file run reports.
    """

    chunk: ChunkSpec
    records: list[TrackRecord]
    frames_decoded: int = 0
    frames_analysed: int = 0
    frames_detected: int = 0
    #: Time of the last decoded frame (the file's end, for the last chunk).
    decoded_to: float | None = None
    duration: float | None = None
    native_fps: float = 0.0
    errors: list[str] = field(default_factory=list)
    #: Seconds spent analysing (decode to described tracks), and loading models first.
    analysis_seconds: float = 0.0
    load_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: Where it ran: host name and process id.
    worker: str = ""
    #: When the task began on the worker and when it ended (epoch seconds, the worker's clock).
    began_at: float = 0.0
    ended_at: float = 0.0


#: Models loaded in this worker process, by settings key: a worker keeps them for its next chunks.
_MODELS: dict[str, Indexer] = {}


def _models(settings: IndexSettings) -> tuple[Indexer, float]:
    key = settings.key()
    if key in _MODELS:
        return _MODELS[key], 0.0
    t0 = time.perf_counter()
    # A worker has no store: the indexer is only the holder of the models here.
    indexer = Indexer(cast("Store", None), settings)
    indexer.load_models()
    _MODELS.clear()
    _MODELS[key] = indexer
    return indexer, time.perf_counter() - t0


def analyse_chunk(task: ChunkTask) -> ChunkOutput:
    """Analyse one chunk of a file and return its finished tracks (runs on a cluster worker).

    Raises :class:`camsight.errors.SourceError` when the file cannot be read
    here, :class:`camsight.errors.ModelError` when a model is missing here.
    """
    began_at = time.time()
    indexer, load_seconds = _models(task.settings)
    s, chunk = task.settings, task.chunk
    started = time.perf_counter()
    records: list[TrackRecord] = []
    with VideoFile(Path(task.path)) as video:
        info = video.info
        target = AnalysisTarget(
            camera=task.camera,
            camera_id=0,
            source_id=0,
            source_uri=task.path,
            frame_size=(info.width, info.height),
            analysis_fps=s.fps or info.fps,
            start_at=None,
        )
        blobs = None
        if task.moving_objects is not None:
            from camsight.vision.moving_objects import MovingObjects, MovingObjectSettings

            m = task.moving_objects
            blob_settings = MovingObjectSettings(label=m.label, min_area=m.min_area, max_area=m.max_area)
            blobs = MovingObjects(blob_settings)
        analyzer = FrameAnalyzer(
            cast("Store", None),
            s,
            target,
            detector=indexer.detector,
            alerts=AlertsConfig(),
            extractor=indexer.extractor,
            encoder=indexer.encoder,
            reid=indexer.reid,
            blobs=blobs,
            workers=task.threads,
            sink=records.extend,
        )
        counts = analyzer.counts
        owned = detected = last_mine = 0
        first_decoded: int | None = None
        with analyzer:
            t_mark = time.perf_counter()
            for frame in video.frames(s.fps, start=chunk.start):
                counts.timing["decode"] += time.perf_counter() - t_mark
                if chunk.end is not None and frame.t >= chunk.end:
                    break
                if s.end is not None and frame.t >= s.end:
                    break
                mine = frame.t >= chunk.own_start and (chunk.own_end is None or frame.t < chunk.own_end)
                if mine and first_decoded is None:
                    first_decoded = video.decoded - 1
                before = counts.frames_detected
                analyzer.push(frame)
                if mine:
                    owned += 1
                    detected += counts.frames_detected - before
                    last_mine = video.decoded
                t_mark = time.perf_counter()
            analyzer.finish()
        decoded = 0 if first_decoded is None else last_mine - first_decoded
        if chunk.own_end is None and first_decoded is not None:
            decoded = video.decoded - first_decoded
        return ChunkOutput(
            chunk=chunk,
            records=[_slim(r) for r in records],
            frames_decoded=decoded,
            frames_analysed=owned,
            frames_detected=detected,
            decoded_to=video.last_t,
            duration=info.duration,
            native_fps=info.fps,
            errors=list(video.errors),
            analysis_seconds=time.perf_counter() - started,
            load_seconds=load_seconds,
            stage_seconds=dict(counts.timing),
            worker=f"{socket.gethostname()}:{os.getpid()}",
            began_at=began_at,
            ended_at=time.time(),
        )


def _slim(record: TrackRecord) -> TrackRecord:
    """Drop what was only needed to describe the track (its many views): less to send back."""
    record.samples = []
    return record
