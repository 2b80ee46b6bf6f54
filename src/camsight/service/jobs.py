"""Background indexing jobs: one worker thread, oldest job first, every job kept in the database.

The API hands uploaded files (and "index this camera's files again") to a
:class:`JobRunner`; the web UI polls the job for progress. Jobs live in the
``jobs`` table, so the list survives a restart, and a job that was queued or
running when the process stopped is run again on the next start (the
indexer replaces a half-indexed source, so nothing is stored twice).

One job runs at a time: indexing already keeps the box's cores busy, and two
at once would only make both slower.

>>> runner = JobRunner(store, lambda: app.state.config)  # doctest: +SKIP
>>> runner.start()  # doctest: +SKIP
>>> job = runner.submit_index(Path("/data/uploads/1f2e/lobby.mp4"), "lobby", by="olga")  # doctest: +SKIP
>>> runner.wait(job.id, timeout=600).state  # doctest: +SKIP
'done'
>>> runner.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, select, update

from camsight.config import Config
from camsight.errors import CamsightError, SourceError, failure_reason
from camsight.pipeline.indexer import Indexer, IndexSettings
from camsight.service.uploads import remove_upload, sweep_orphan_uploads, uploads_folder
from camsight.sources.video_file import VideoFile, fingerprint
from camsight.store import repository as repo
from camsight.store.db import Store
from camsight.store.models import Camera, JobRow, Source, utcnow

log = logging.getLogger(__name__)

JobKind = Literal["index", "reindex"]
JobState = Literal["queued", "running", "done", "damaged", "failed"]
#: States a job does not leave. ``damaged``: the file's end (or a part) could not be decoded; what
#: could be is indexed and searchable, and ``message`` says what is missing (as `camsight index` does).
FINISHED = ("done", "damaged", "failed")
#: Finished states whose footage is indexed.
INDEXED = ("done", "damaged")
#: Seconds between progress writes to the database (the UI polls; more often only costs writes).
PROGRESS_INTERVAL = 0.5
#: Seconds the idle worker sleeps before looking for jobs another process may have queued.
POLL_SECONDS = 5.0
#: What a skipped duplicate reports (the indexer's fingerprint found the same file on the camera).
ALREADY_INDEXED = "already indexed"
INTERRUPTED = "interrupted when the server stopped; it runs again when the server starts"
#: Seconds between sweeps of the upload folder for uploads that never became a job.
SWEEP_SECONDS = 3600.0

ConfigSource = Callable[[], Config]


class NotRetryable(Exception):
    """A job that cannot be run again (not failed, or its file is gone); ``gone`` for the latter."""

    def __init__(self, message: str, *, gone: bool = False) -> None:
        super().__init__(message)
        self.gone = gone


@dataclass(frozen=True)
class Job:
    """A job as clients see it (the file's location on the server stays out)."""

    id: int
    kind: str
    camera: str
    file: str | None
    #: When the footage was recorded, as the uploader said (None: taken from the file).
    recorded_at: datetime | None
    state: str
    progress: float
    frames_done: int
    frames_total: int | None
    fps: float | None
    eta_seconds: float | None
    message: str | None
    error: str | None
    tracks: dict[str, int]
    events: dict[str, int]
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: JobRow) -> Job:
        """A detached snapshot of a ``jobs`` row."""
        return cls(
            id=row.id,
            kind=row.kind,
            camera=row.camera,
            file=row.file_name,
            recorded_at=row.recorded_at,
            state=row.state,
            progress=row.progress,
            frames_done=row.frames_done,
            frames_total=row.frames_total,
            fps=row.fps,
            eta_seconds=row.eta_seconds,
            message=row.message,
            error=row.error,
            tracks=dict(row.tracks or {}),
            events=dict(row.events or {}),
            created_by=row.created_by,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; times in ISO 8601 UTC, rates and durations rounded for display."""
        return {
            "id": self.id,
            "kind": self.kind,
            "camera": self.camera,
            "file": self.file,
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
            "state": self.state,
            "progress": round(self.progress, 4),
            "frames_done": self.frames_done,
            "frames_total": self.frames_total,
            "fps": round(self.fps, 2) if self.fps is not None else None,
            "eta_seconds": round(self.eta_seconds, 1) if self.eta_seconds is not None else None,
            "message": self.message,
            "error": self.error,
            "tracks": self.tracks,
            "events": self.events,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


class _Interrupted(Exception):
    """Raised from the progress callback when the runner stops: the job goes back to the queue."""


@dataclass
class _Outcome:
    state: JobState
    message: str | None = None
    error: str | None = None
    tracks: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)


class _Progress:
    """Turns the indexer's per-frame callbacks into job progress, written at most every ``interval``."""

    def __init__(
        self, runner: JobRunner, job_id: int, total_seconds: float | None, total_frames: int | None
    ) -> None:
        self.runner = runner
        self.job_id = job_id
        self.total_seconds = total_seconds
        self.total_frames = total_frames
        self.started = time.monotonic()
        self.base_seconds = 0.0
        self.base_frames = 0
        self.frames = 0
        self._last_write = 0.0

    def update(self, t: float, _file_total: float | None, decoded: int) -> None:
        """The indexer's ``progress`` callback: ``t`` seconds of the current file done, ``decoded`` frames."""
        if self.runner._stop.is_set():
            raise _Interrupted
        self.frames = self.base_frames + decoded
        now = time.monotonic()
        if now - self._last_write < self.runner.progress_interval:
            return
        self._last_write = now
        done = self.base_seconds + t
        elapsed = max(now - self.started, 1e-6)
        fraction = None
        if self.total_seconds:
            fraction = done / self.total_seconds
        elif self.total_frames:
            fraction = self.frames / self.total_frames
        eta = None
        if fraction is not None and fraction > 0:
            eta = max(0.0, elapsed * (1.0 - fraction) / fraction)
        self.runner._update(
            self.job_id,
            # 1.0 means finished: a running job stays just below, whatever the estimate says.
            progress=min(max(fraction or 0.0, 0.0), 0.999),
            frames_done=self.frames,
            fps=self.frames / elapsed,
            eta_seconds=eta,
        )

    def file_done(self, seconds: float, frames: int) -> None:
        """One file of the job is finished: later callbacks count from here."""
        self.base_seconds += seconds
        self.base_frames += frames
        self.frames = self.base_frames


class JobRunner:
    """Runs indexing jobs one at a time in a worker thread; jobs are rows of the ``jobs`` table.

    ``config`` is called at the start of every job, so a job uses the
    configuration in force then (cameras' rules and zones included). The
    indexer (its models) is kept while the configuration stays the same.
    """

    def __init__(
        self,
        store: Store,
        config: ConfigSource | Config,
        *,
        progress_interval: float = PROGRESS_INTERVAL,
        poll_seconds: float = POLL_SECONDS,
        sweep_seconds: float = SWEEP_SECONDS,
    ) -> None:
        self.store = store
        self._config: ConfigSource = config if callable(config) else (lambda: config)
        self.progress_interval = progress_interval
        self.poll_seconds = poll_seconds
        self.sweep_seconds = sweep_seconds
        self._next_sweep = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._indexer: tuple[str, Indexer] | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Queue again what a previous process left running, then start the worker (idempotent)."""
        if self.running:
            return
        with self.store.session() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.state == "running")
                .values(state="queued", started_at=None, progress=0.0, fps=None, eta_seconds=None)
            )
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="camsight-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker; a running job is interrupted and queued again for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning(
                    "job worker still busy after %.0f s; leaving it to exit with the process", timeout
                )
        self._thread = None

    # ------------------------------------------------------------------ submitting and reading

    def submit_index(
        self,
        path: Path,
        camera: str,
        *,
        by: str,
        file: str | None = None,
        owns_file: bool = False,
        recorded_at: datetime | None = None,
    ) -> Job:
        """Queue indexing ``path`` into ``camera``; ``file`` is the name shown (default: the file's name).

        With ``owns_file`` the job may delete the file's folder when the file
        turns out unusable or a duplicate of one already indexed (uploads).
        ``recorded_at`` is when the recording started (default: what the file says).
        """
        return self._submit(
            JobRow(
                kind="index",
                camera=camera,
                file_name=(file or Path(path).name)[:255],
                path=str(Path(path).resolve()),
                owns_file=owns_file,
                recorded_at=recorded_at,
                created_by=by[:128],
            )
        )

    def submit_reindex(self, camera: str, *, by: str) -> Job:
        """Queue indexing every stored file of ``camera`` again (those still on disk).

        Files whose settings (rules and zones included) did not change are
        skipped by the indexer; the others are re-indexed.
        """
        return self._submit(JobRow(kind="reindex", camera=camera, created_by=by[:128]))

    def retry(self, job_id: int) -> Job:
        """Queue a failed job again, as it was submitted (same id; its error and counts are cleared).

        Raises :class:`KeyError` when there is no such job, and
        :class:`NotRetryable` when it has not failed or, for a file's
        indexing, the file is no longer on the server (``gone``).
        """
        with self.store.session() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                raise KeyError(job_id)
            if row.state != "failed":
                raise NotRetryable(f"job {job_id} is {row.state}: only a failed job can be retried")
            if row.kind == "index" and not (row.path and Path(row.path).is_file()):
                raise NotRetryable(
                    f"the file of job {job_id} ({row.file_name or 'its upload'}) is no longer on the server "
                    "(an unusable upload is removed); upload it again",
                    gone=True,
                )
            # Conditional: two clicks on Retry, or another process, queue it once.
            queued = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == "failed")
                .values(
                    state="queued", progress=0.0, frames_done=0, frames_total=None, fps=None,
                    eta_seconds=None, message=None, error=None, tracks={}, events={},
                    started_at=None, finished_at=None,
                )
            )  # fmt: skip
            if queued.rowcount != 1:
                raise NotRetryable(f"job {job_id} is no longer failed: only a failed job can be retried")
            # Read back before the runner can claim it: the answer is the job as queued.
            job = Job.from_row(session.get(JobRow, job_id, populate_existing=True))
        self._wake.set()
        return job

    def _submit(self, row: JobRow) -> Job:
        row.state = "queued"
        row.progress = 0.0
        row.frames_done = 0
        row.tracks, row.events = {}, {}
        with self.store.session() as session:
            session.add(row)
            session.flush()
            job = Job.from_row(row)
        self._wake.set()
        return job

    def get(self, job_id: int) -> Job | None:
        """The job, or None when there is no such job."""
        with self.store.sessions() as session:
            row = session.get(JobRow, job_id)
            return Job.from_row(row) if row is not None else None

    def list(
        self, *, cameras: Collection[str] | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Job], int]:
        """Jobs newest first, of ``cameras`` only when given (None: all), and how many there are."""
        query = select(JobRow)
        count = select(func.count(JobRow.id))
        if cameras is not None:
            if not cameras:
                return [], 0
            query = query.where(JobRow.camera.in_(list(cameras)))
            count = count.where(JobRow.camera.in_(list(cameras)))
        with self.store.sessions() as session:
            rows = session.scalars(query.order_by(JobRow.id.desc()).limit(limit).offset(offset)).all()
            total = int(session.scalar(count) or 0)
            return [Job.from_row(r) for r in rows], total

    def wait(self, job_id: int, timeout: float, poll: float = 0.1) -> Job:
        """The job once finished; raises TimeoutError after ``timeout`` seconds (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job is None:
                raise KeyError(job_id)
            if job.finished:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state} after {timeout:.0f} s")
            time.sleep(poll)

    # ------------------------------------------------------------------ the worker

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                job_id = self._claim_next()
            except Exception:
                # A locked or unreachable database must not end the worker: try again later.
                log.exception("cannot read the job queue")
                job_id = None
            if job_id is None:
                self._sweep_when_due()
                self._wake.wait(self.poll_seconds)
                continue
            try:
                self._run(job_id)
            except Exception:
                log.exception("job %s: could not record its outcome", job_id)

    def _claim_next(self) -> int | None:
        """Mark the oldest queued job running and return its id (None when the queue is empty)."""
        with self.store.session() as session:
            while True:
                # SKIP LOCKED (PostgreSQL; SQLite has one writer and ignores it): runners of several
                # nodes take different jobs instead of queueing behind each other's claim.
                job_id = session.scalar(
                    select(JobRow.id)
                    .where(JobRow.state == "queued")
                    .order_by(JobRow.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                if job_id is None:
                    return None
                # Conditional update: another process sharing the database may have claimed it.
                claimed = session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.state == "queued")
                    .values(state="running", started_at=utcnow(), message=None, error=None)
                )
                if claimed.rowcount == 1:
                    return job_id

    def _update(self, job_id: int, **values: Any) -> None:
        with self.store.session() as session:
            session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))

    def _run(self, job_id: int) -> None:
        with self.store.sessions() as session:
            row = session.get(JobRow, job_id)
            assert row is not None
            kind, camera, owns, recorded_at = row.kind, row.camera, row.owns_file, row.recorded_at
            path = Path(row.path) if row.path else None
            shown = row.file_name or (path.name if path else "")
        started = time.monotonic()
        try:
            indexer = self._indexer_for(self._config())
            if kind == "index" and path is not None:
                outcome = self._index_file(job_id, indexer, path, camera, shown, owns, recorded_at)
            elif kind == "reindex":
                outcome = self._reindex(job_id, indexer, camera)
            else:
                outcome = _Outcome("failed", error=f"unknown job kind {kind!r}")
        except _Interrupted:
            self._update(
                job_id, state="queued", started_at=None, progress=0.0, fps=None, eta_seconds=None,
                message=INTERRUPTED,
            )  # fmt: skip
            return
        except CamsightError as exc:
            # The indexer's one-line message, with the server's path replaced by the name the user gave.
            outcome = _Outcome("failed", error=_one_line(exc, path, shown))
            if owns and path is not None and isinstance(exc, SourceError):
                remove_upload(path)
            elif not isinstance(exc, SourceError):
                # Not the file's fault (a model, a rule): the admin needs the details, under the job's id.
                log.warning(
                    "job %s failed: %s", job_id, exc, exc_info=True, extra={"job_id": job_id, "kind": kind}
                )
                self._indexer = None  # a model may be fixed in place (pulled again): load it afresh
        except Exception as exc:
            # Not the user's doing (a bug, a broken install or model): the reason still names what
            # happened, so the user can act or report it; the traceback is in the log under the job id.
            log.exception("job %s failed", job_id, extra={"job_id": job_id, "kind": kind, "camera": camera})
            reason = _clean(failure_reason(exc), path, shown) or type(exc).__name__
            outcome = _Outcome("failed", error=f"{reason} (details: job {job_id} in the server log)")
            # Whatever failed may live in the cached indexer (a model that loads but cannot run):
            # a retry, once the cause is fixed, starts from a fresh one.
            self._indexer = None
        values: dict[str, Any] = {
            "state": outcome.state,
            "message": outcome.message,
            "error": outcome.error,
            "tracks": dict(outcome.tracks),
            "events": dict(outcome.events),
            "finished_at": utcnow(),
            "eta_seconds": 0.0 if outcome.state in INDEXED else None,
        }
        if outcome.state in INDEXED:
            values["progress"] = 1.0
        with self.store.sessions() as session:
            frames = session.scalar(select(JobRow.frames_done).where(JobRow.id == job_id)) or 0
        values["fps"] = frames / max(time.monotonic() - started, 1e-6) if frames else None
        self._update(job_id, **values)
        log.info("job %s (%s %s) %s", job_id, kind, camera, outcome.state)

    def _sweep_when_due(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_seconds
        try:
            sweep_orphan_uploads(self.store, uploads_folder(self.store, self._config()))
        except Exception:
            log.exception("sweeping the upload folder failed")

    def _indexer_for(self, config: Config) -> Indexer:
        """The indexer for ``config``, as ``camsight index`` builds it; reused while the config is equal.

        Models load on first use and stay loaded with the indexer, so a queue
        of uploads pays for loading once.
        """
        key = config.model_dump_json()
        if self._indexer is None or self._indexer[0] != key:
            self._indexer = (key, Indexer(self.store, IndexSettings.from_config(config), config=config))
        return self._indexer[1]

    def _index_file(
        self,
        job_id: int,
        indexer: Indexer,
        path: Path,
        camera: str,
        shown: str,
        owns: bool,
        recorded_at: datetime | None,
    ) -> _Outcome:
        with VideoFile(path) as video:
            info = video.info
        total_frames = info.frames or (round(info.duration * info.fps) if info.duration else None)
        self._update(job_id, frames_total=total_frames, frames_done=0, progress=0.0)
        progress = _Progress(self, job_id, info.duration, total_frames)
        result = indexer.index(path, camera, recorded_at=recorded_at, progress=progress.update)
        if result.status == "skipped":
            existing = _existing_source(self.store, camera, path)
            if owns and existing is not None and existing[1] != str(path) and Path(existing[1]).is_file():
                # The same video is already stored (and indexed) from an earlier upload: drop this copy.
                remove_upload(path)
            tracks = repo.count_tracks(self.store, existing[0]) if existing is not None else {}
            message = (
                ALREADY_INDEXED if (result.message or "").startswith(ALREADY_INDEXED) else result.message
            )
            return _Outcome("done", message=message, tracks=Counter(tracks))
        self._update(job_id, frames_done=result.frames_decoded, frames_total=result.frames_decoded)
        # The same verdict and warnings as `camsight index` prints for the file.
        notes = [result.message] if result.message else []
        notes += [f"warning: {w}" for w in result.warnings]
        return _Outcome(
            "damaged" if result.status == "damaged" else "done",
            message=_clean("; ".join(notes), path, shown) or None,
            tracks=Counter(result.tracks),
            events=Counter(result.events),
        )

    def _reindex(self, job_id: int, indexer: Indexer, camera: str) -> _Outcome:
        with self.store.sessions() as session:
            uris = session.scalars(
                select(Source.uri).join(Camera, Camera.id == Source.camera_id).where(Camera.name == camera)
                .order_by(Source.id)
            ).all()  # fmt: skip
        # Live sessions have stream URLs, not files; a file deleted since cannot be read again.
        paths = list(dict.fromkeys(Path(u) for u in uris if Path(u).is_file()))
        if not paths:
            return _Outcome("done", message="no stored files of this camera to index again")
        infos = []
        for path in paths:
            try:
                with VideoFile(path) as video:
                    infos.append((path, video.info))
            except SourceError as exc:
                infos.append((path, exc))
        seconds = sum(i.duration or 0.0 for _, i in infos if not isinstance(i, Exception))
        frames = sum(
            (i.frames or round((i.duration or 0.0) * i.fps)) for _, i in infos if not isinstance(i, Exception)
        )
        self._update(job_id, frames_total=frames or None, frames_done=0, progress=0.0)
        progress = _Progress(self, job_id, seconds or None, frames or None)
        out = _Outcome("done")
        counts: Counter[str] = Counter()
        errors: list[str] = []
        for path, info in infos:
            if isinstance(info, Exception):
                errors.append(_one_line(info, path, path.name))
                continue
            try:
                result = indexer.index(path, camera, progress=progress.update)
            except SourceError as exc:
                errors.append(_one_line(exc, path, path.name))
                progress.file_done(info.duration or 0.0, 0)
                continue
            counts[result.status] += 1
            progress.file_done(info.duration or 0.0, result.frames_decoded)
            self._update(job_id, frames_done=progress.frames)
            if result.status == "skipped":
                existing = _existing_source(self.store, camera, path)
                out.tracks.update(repo.count_tracks(self.store, existing[0]) if existing else {})
            else:
                out.tracks.update(result.tracks)
                out.events.update(result.events)
        done = counts["complete"] + counts["damaged"]
        parts = [f"{len(paths)} file(s): {done} indexed again", f"{counts['skipped']} unchanged"]
        if errors:
            parts.append(f"{len(errors)} failed")
            out.error = errors[0]
            if len(errors) == len(paths):
                out.state = "failed"
        out.message = ", ".join(parts)
        return out


def _existing_source(store: Store, camera: str, path: Path) -> tuple[int, str] | None:
    """The camera's source holding the same file content as ``path`` (its id and stored location)."""
    print_ = fingerprint(path)
    with store.sessions() as session:
        found = session.execute(
            select(Source.id, Source.uri)
            .join(Camera, Camera.id == Source.camera_id)
            .where(Camera.name == camera, Source.fingerprint == print_)
        ).first()
    return (found[0], found[1]) if found is not None else None


def _clean(message: str | None, path: Path | None, shown: str) -> str | None:
    """``message`` with the server-side path of the file replaced by its display name."""
    if not message or path is None:
        return message
    for form in {str(path.resolve()), str(path)}:
        message = message.replace(form, shown)
    return message


def _one_line(exc: BaseException, path: Path | None, shown: str) -> str:
    text = _clean(str(exc), path, shown) or type(exc).__name__
    return text.strip().splitlines()[0]
