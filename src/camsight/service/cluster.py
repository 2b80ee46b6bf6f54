"""Indexing files on a Ray cluster: chunks to workers, tracks stitched and stored by the driver.

The driver (``camsight index --cluster ADDRESS``) opens the store, registers
each file as a source, cuts it into overlapping chunks
(:func:`camsight.pipeline.chunks.plan_chunks`) and submits one Ray task per
chunk (:func:`camsight.pipeline.chunks.analyse_chunk`). A task gets the
file's path and the settings, not the video: every worker must see the file at
the same path (a shared mount), and find the models in its own models folder.
It sends back the chunk's finished tracks with their thumbnails' pixels; the
driver keeps each chunk's result in its data folder and marks the chunk done in
the store, and once a file's chunks are all in, stitches the tracks across the
cuts and stores them in one go (thumbnails written under the driver's data
folder). A chunk whose worker dies is submitted again (up to ``attempts``
times) and costs only itself; an interrupted run leaves its finished chunks,
and the same command run again sends only the others.

Ray is optional (``bash scripts/setup.sh --cluster``): it is imported only here,
only when a cluster is asked for. Nothing else in camsight needs it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from camsight.config import Config
from camsight.errors import CamsightError, ConfigError
from camsight.pipeline.chunks import (
    OVERLAP_SECONDS,
    ChunkOutput,
    ChunkSpec,
    ChunkTask,
    analyse_chunk,
    plan_chunks,
)
from camsight.pipeline.indexer import Indexer, IndexResult, IndexSettings, plan_video
from camsight.sources.video_file import VideoFile, fingerprint
from camsight.store import chunks as chunk_store
from camsight.store import repository as repo
from camsight.store.db import Store
from camsight.tracking.stitch import ChunkTracks, stitch

log = logging.getLogger(__name__)

RAY_MISSING = "Ray is not installed: bash scripts/setup.sh --cluster"
#: Seconds to wait for the head's port to answer before saying it cannot be reached.
CONNECT_TIMEOUT = 5.0
#: CPUs a chunk takes on its node (Ray's unit of scheduling): a node started with
#: ``--num-cpus N`` analyses N chunks at once, one detector call each.
CPUS_PER_CHUNK = 1
#: Times a chunk is run before its file is given up (a worker that dies, a node that leaves).
ATTEMPTS = 3


class ClusterError(CamsightError):
    """The cluster cannot be reached or used."""


def import_ray() -> ModuleType:
    """Ray, or the one-line error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(RAY_MISSING) from None
    return ray


def connect(address: str) -> ModuleType:
    """Join the Ray cluster at ``address`` (host:port of its head) as a driver."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    reach(address)
    try:
        ray.init(
            address=address,
            logging_level=logging.WARNING,
            log_to_driver=False,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"cannot join the Ray cluster at {address}: {first}") from None
    return ray


def reach(address: str) -> None:
    """Check that the head at ``address`` answers: Ray itself retries an unreachable one for minutes."""
    host, port = parse_address(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({reason}): is `ray start --head` running there?"
        ) from None


def parse_address(address: str) -> tuple[str, int]:
    """HOST:PORT of a Ray head, checked.

    >>> parse_address("10.0.0.5:6379")
    ('10.0.0.5', 6379)
    """
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"--cluster wants HOST:PORT of the Ray head (e.g. 10.0.0.5:6379), got {address!r}")
    return host.strip("[]"), int(port)


@dataclass
class ChunkRun:
    """One chunk as the driver saw it: where and how long it ran, and what was not analysis."""

    file: str
    index: int
    count: int
    attempts: int
    #: Seconds from submission to its result at the driver (scheduling, start-up, transfer included).
    wall_seconds: float
    analysis_seconds: float
    load_seconds: float
    worker: str
    #: Wall-clock times (epoch seconds): submitted by the driver, begun and ended on the
    #: worker (clocks of different machines may disagree), received by the driver.
    submitted_at: float = 0.0
    began_at: float = 0.0
    ended_at: float = 0.0
    received_at: float = 0.0

    @property
    def overhead_seconds(self) -> float:
        """Time from submission to result not spent analysing (queue, start-up, models, transfer)."""
        return max(0.0, self.wall_seconds - self.analysis_seconds)


@dataclass
class ClusterIndexResult(IndexResult):
    """An :class:`IndexResult` with what the cluster did: chunks, retries, stitching."""

    chunks: int = 0
    #: Chunks found done by an earlier run of the same command.
    resumed_chunks: int = 0
    #: Tracks joined across cuts, and duplicates from the overlaps dropped.
    stitched: int = 0
    stitch_seconds: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _File:
    path: Path
    camera: str
    source_id: int
    camera_id: int
    chunks: list[ChunkSpec]
    native_fps: float
    duration: float | None
    started: float
    #: Where indexing stops (the file's end, or --end).
    end: float | None = None
    outputs: dict[int, ChunkOutput] = field(default_factory=dict)
    resumed: int = 0
    replaced: bool = False
    warnings: list[str] = field(default_factory=list)
    runs: list[ChunkRun] = field(default_factory=list)
    failed: str | None = None


def plan_key(chunks: Sequence[ChunkSpec], overlap: float) -> str:
    """A short id of a chunk plan: a re-run with another plan starts the file again."""
    blob = json.dumps([[c.start, c.end, c.own_start, c.own_end] for c in chunks] + [overlap])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ClusterIndexer:
    """Indexes files on a Ray cluster into ``store``.

    ``progress(done, total)`` is told the seconds of video done over all
    files; ``notice(text)`` gets what the user should hear while it runs (a
    chunk resubmitted, a file resumed).
    """

    def __init__(
        self,
        store: Store,
        settings: IndexSettings,
        config: Config,
        *,
        chunk_seconds: float,
        overlap: float = OVERLAP_SECONDS,
        attempts: int = ATTEMPTS,
        progress: Callable[[float, float], None] | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.config = config
        self.chunk_seconds = chunk_seconds
        self.overlap = overlap
        self.attempts = attempts
        self.progress = progress or (lambda done, total: None)
        self.notice = notice or (lambda text: None)
        #: Used on the driver only for the settings key; its models are never loaded here.
        self._keys = Indexer(store, settings, config=config)
        self.failures: list[str] = []
        self.interrupted = False

    def check_camera(self, camera: str) -> None:
        """Refuse a camera whose rules would have to run: chunks are analysed without them."""
        cam = self.config.camera(camera)
        if cam is not None and any(r.enabled for r in cam.rules):
            raise ConfigError(
                f"camera {camera!r} has behaviour rules, which --cluster does not run (it stores "
                "tracks only): index it without --cluster, or disable its rules"
            )

    def index(
        self,
        ray: ModuleType,
        paths: Sequence[Path],
        camera: str | None = None,
        *,
        force: bool = False,
        recorded_at: datetime | None = None,
    ) -> list[IndexResult]:
        """Index ``paths`` on the cluster ``ray`` is connected to; one result per file not failed."""
        results: list[IndexResult] = []
        files: list[_File] = []
        for path in paths:
            try:
                planned = self._plan(path, camera or path.stem, force=force, recorded_at=recorded_at)
            except CamsightError as exc:
                self.failures.append(str(exc))
                continue
            if isinstance(planned, IndexResult):
                results.append(planned)
            else:
                files.append(planned)
        total = sum(self._seconds(f, c) for f in files for c in f.chunks)
        done = sum(self._seconds(f, f.chunks[i]) for f in files for i in f.outputs)
        self.progress(done, total)
        # max_retries=0: the driver resubmits a lost chunk itself, so it can say so and count it.
        remote = ray.remote(num_cpus=CPUS_PER_CHUNK, max_retries=0)(analyse_chunk)
        pending: dict[Any, tuple[_File, ChunkSpec, int, float]] = {}

        def submit(f: _File, chunk: ChunkSpec, attempt: int) -> None:
            task = ChunkTask(
                str(f.path.resolve()),
                f.camera,
                chunk,
                self.settings,
                self._moving_objects(f.camera),
                threads=CPUS_PER_CHUNK,
            )
            pending[remote.remote(task)] = (f, chunk, attempt, time.time())

        for f in files:
            for chunk in f.chunks:
                if chunk.index not in f.outputs:
                    submit(f, chunk, 1)
        try:
            for f in files:
                if len(f.outputs) == len(f.chunks):
                    results.append(self._finish(f))
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    f, chunk, attempt, submitted = pending.pop(ref)
                    try:
                        output: ChunkOutput = ray.get(ref)
                    except Exception as exc:  # sorted in _failed: ours, or the cluster's
                        if f.failed is None:
                            self._failed(f, chunk, attempt, exc, submit)
                        continue
                    f.runs.append(
                        ChunkRun(
                            str(f.path),
                            chunk.index,
                            chunk.count,
                            attempt,
                            time.time() - submitted,
                            output.analysis_seconds,
                            output.load_seconds,
                            output.worker,
                            submitted_at=submitted,
                            began_at=output.began_at,
                            ended_at=output.ended_at,
                            received_at=time.time(),
                        )
                    )
                    chunk_store.save_chunk(
                        self.store, f.source_id, chunk.index, pickle.dumps(output, protocol=5)
                    )
                    # Kept even when another chunk of the file failed: a re-run then needs fewer.
                    f.outputs[chunk.index] = output
                    done += self._seconds(f, chunk)
                    self.progress(done, total)
                    if f.failed is None and len(f.outputs) == len(f.chunks):
                        results.append(self._finish(f))
        except KeyboardInterrupt:
            self.interrupted = True
            for ref in pending:
                ray.cancel(ref)
        return results

    # ------------------------------------------------------------------ one file

    def _plan(
        self, path: Path, camera: str, *, force: bool, recorded_at: datetime | None
    ) -> _File | IndexResult:
        self.check_camera(camera)
        started = time.perf_counter()
        with VideoFile(path) as video:
            info = video.info
        s = self.settings
        end = info.duration if s.end is None else min(s.end, info.duration or s.end)
        step = 1.0 / (s.fps or info.fps)
        chunks = plan_chunks(s.start, end, self.chunk_seconds, self.overlap, step)
        key = plan_key(chunks, self.overlap)
        settings_key, settings = self._keys.settings_for(camera)
        print_ = fingerprint(path)
        state = None if force else chunk_store.resumable(self.store, camera, print_, settings_key, key)
        if state is not None:
            f = _File(
                path, camera, state.source_id, state.camera_id, chunks, info.fps, info.duration, started, end
            )
            for index in sorted(state.done):
                try:
                    f.outputs[index] = pickle.loads(
                        chunk_store.load_chunk(self.store, state.source_id, index)
                    )
                except (CamsightError, pickle.UnpicklingError, AttributeError, EOFError, TypeError):
                    # Unreadable, or kept by another camsight version: that chunk runs again.
                    log.warning("kept chunk unusable", extra={"file": str(path), "chunk": index})
            f.resumed = len(f.outputs)
            self.notice(
                f"{path.name}: resuming: {f.resumed} of {len(chunks)} chunks were done by an earlier run"
            )
            return f
        plan = plan_video(self.store, path, camera, print_, info, settings_key, settings, recorded_at, force)
        if plan.source_id is None:
            return IndexResult(str(path), camera, "skipped", message=plan.reason)
        chunk_store.begin(self.store, plan.source_id, key)
        return _File(
            path,
            camera,
            plan.source_id,
            plan.camera_id,
            chunks,
            info.fps,
            info.duration,
            started,
            end,
            replaced=plan.replaced,
        )

    def _seconds(self, f: _File, chunk: ChunkSpec) -> float:
        if chunk.own_end is not None:
            return chunk.own_end - chunk.own_start
        return max(0.0, (f.end or chunk.own_start) - chunk.own_start)

    def _moving_objects(self, camera: str) -> Any:
        cam = self.config.camera(camera)
        return None if cam is None else cam.moving_objects

    def _failed(
        self, f: _File, chunk: ChunkSpec, attempt: int, exc: Exception, submit: Callable[..., None]
    ) -> None:
        """A chunk did not come back: our error ends the file, the cluster's is tried again."""
        cause = getattr(exc, "cause", None) or exc
        where = f"{f.path.name}: chunk {chunk.index + 1} of {chunk.count}"
        if isinstance(cause, CamsightError):
            f.failed = f"{where}: {str(cause).splitlines()[0]}"
            self.failures.append(f.failed)
            return
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if attempt >= self.attempts:
            f.failed = (
                f"{where} failed {attempt} times ({type(exc).__name__}: {reason}); the other chunks are "
                "kept: run the same command again to finish"
            )
            self.failures.append(f.failed)
            return
        message = f"{where}: {type(exc).__name__} ({reason}); submitted again (attempt {attempt + 1})"
        log.warning("chunk resubmitted", extra={"file": str(f.path), "chunk": chunk.index, "error": reason})
        f.warnings.append(message)
        self.notice(message)
        submit(f, chunk, attempt + 1)

    def _finish(self, f: _File) -> IndexResult:
        """Stitch a file's chunks, store its tracks and close its source."""
        t0 = time.perf_counter()
        outputs = [f.outputs[c.index] for c in f.chunks]
        pieces = [
            ChunkTracks(
                c.index,
                o.records,
                cut_before=None if c.index == 0 else c.own_start,
                cut_after=c.own_end,
            )
            for c, o in zip(f.chunks, outputs, strict=True)
        ]
        records, report = stitch(pieces, thumbnails=self.settings.thumbnails_per_track)
        fields = {
            "frames_analysed": sum(o.frames_analysed for o in outputs),
            "frames_detected": sum(o.frames_detected for o in outputs),
            "frames_decoded": sum(o.frames_decoded for o in outputs),
        }
        chunk_store.clear_tracks(self.store, f.source_id)
        repo.save_tracks(self.store, f.source_id, f.camera_id, records, fields)
        stitch_seconds = time.perf_counter() - t0
        last = outputs[-1]
        problems = [e for o in outputs for e in o.errors]
        s = self.settings
        expected = last.duration if s.end is None else min(last.duration or s.end, s.end)
        decoded_to = last.decoded_to or 0.0
        if expected and expected - decoded_to > max(1.0, 3.0 / (last.native_fps or 1.0)):
            problems.insert(0, f"video ends at {decoded_to:.1f}s of {expected:.1f}s (truncated?)")
        status, message = "complete", None
        if problems:
            status = "damaged"
            message = f"{f.path}: damaged video, indexed what could be decoded: {problems[0]}"
        repo.finish_source(self.store, f.source_id, status, fields, message)
        chunk_store.finish(self.store, f.source_id)
        if message is None and f.resumed:
            message = f"resumed: {f.resumed} of {len(f.chunks)} chunks were done by an earlier run"
        elif message is None and f.replaced:
            message = "re-indexed (earlier run was interrupted or used other settings)"
        timing: dict[str, float] = {}
        for o in outputs:
            for stage, seconds in o.stage_seconds.items():
                timing[stage] = timing.get(stage, 0.0) + seconds
        seconds = sum(self._seconds(f, c) for c in f.chunks)
        return ClusterIndexResult(
            path=str(f.path),
            camera=f.camera,
            status=status,
            source_id=f.source_id,
            message=message,
            video_seconds=seconds,
            tracks=repo.count_tracks(self.store, f.source_id),
            warnings=f.warnings,
            wall_seconds=time.perf_counter() - f.started,
            stage_seconds=timing,
            chunks=len(f.chunks),
            resumed_chunks=f.resumed,
            stitched=report.merged,
            stitch_seconds=stitch_seconds,
            runs=[
                {**r.__dict__, "overhead_seconds": r.overhead_seconds} for r in sorted(f.runs, key=_by_index)
            ],
            **fields,
        )


def _by_index(run: ChunkRun) -> int:
    return run.index
