"""Live cameras: RTSP, HTTP (MJPEG, HLS), and local files or folders played as cameras.

A :class:`LiveSource` connects, reads and decodes a camera's stream and hands a
:class:`LiveHandler` every demuxed video packet (for stream-copy recording),
the decoded frames picked at the analysis rate, and regular :class:`Health`
reports. It reconnects forever, with exponential backoff and jitter, until it
is told to stop; a stalled stream (no packets for ``stall_seconds``) is closed
and opened again, and a frozen picture (unchanged for ``frozen_seconds``) is
reported while reading goes on.

    settings = LiveSettings.from_camera(config.cameras["gate"])
    source = LiveSource("gate", settings)
    stop = threading.Event()
    source.run(handler, stop)      # returns within ~1 s of stop.set()

Threads: a reader thread opens the stream, demuxes and decodes; every handler
method is called on the thread that called :meth:`LiveSource.run`, one call at
a time, so a handler needs no locking. The reader never waits for the handler:
when analysis falls behind, older pending frames are dropped (counted in
``Health.frames_dropped``); when even packets pile up, they are dropped and
``on_connect(stream, gap=True)`` is sent again so a recorder starts afresh.

What a URL can be:

- ``rtsp://`` / ``rtsps://``: over TCP or UDP (``transport``); video only.
- ``http(s)://``: MJPEG (``multipart/x-mixed-replace``) or HLS (``.m3u8``).
- a local video file: played at real-time pace by its timestamps and looped, so
  a camera that is a file never ends; packet timestamps keep increasing
  across loops (they are shifted by the clip length), so a recorder sees one
  continuous stream.
- a local folder: its video files are played once each in name order
  (``on_connect(stream, gap=False)`` before each file), then the folder is
  watched for new files (a file must be unchanged for a second before it is
  played, so one still being written is not read half-way). While it waits the
  state stays ``connected`` and ``idle`` is called.

Passwords: a URL may carry credentials (see :func:`with_credentials`); every
log line, exception message and health record shows them as ``***``
(:func:`redact_url`).
"""

from __future__ import annotations

import errno
import logging
import math
import os
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

import av
import av.error
import cv2
import numpy as np

from camsight.errors import ConfigError
from camsight.sources.frame import Frame
from camsight.sources.video_file import AnalysisRate
from camsight.timeutil import backoff
from camsight.urls import is_network, redact_url, url_secrets, with_credentials

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.stream import VideoStream

    from camsight.config import CameraConfig

log = logging.getLogger(__name__)

State = Literal["connecting", "connected", "stalled", "frozen", "error", "ended", "stopped"]

#: Seconds between periodic health reports (there is one on every state change too).
HEALTH_INTERVAL = 2.0
#: ``idle`` is called about this often while no frame arrives.
IDLE_INTERVAL = 1.0
#: fps_in / fps_analysed are measured over this many seconds.
FPS_WINDOW = 5.0
#: Frozen picture: the mean absolute difference of a 64x36 grey thumbnail to the
#: picture at the start of the unchanged stretch stays below this (grey levels).
#: Real static scenes (Intel and PETS clips: empty rooms, parking lots) never stay
#: under 0.25 for more than a second because of sensor noise and keyframes,
#: while they do stay under 1.0 for up to 9 s; a frozen encoder repeats the
#: exact picture (difference 0).
FROZEN_DIFF = 0.25
THUMBNAIL = (64, 36)
#: Seconds past ``stall_seconds`` after which a reader still stuck in a read is
#: abandoned (it closes itself when the read returns) and a new one connects.
STALL_GRACE = 1.0
#: Decoded frames waiting for the handler; older ones are dropped beyond this.
MAX_PENDING_FRAMES = 2
#: Packets waiting for the handler; beyond this they are all dropped (a gap).
MAX_PENDING_EVENTS = 3000
#: How much of a network stream libavformat reads to learn its format (µs):
#: the default (5 s, usually ~2.7 s on RTSP) makes every reconnect slow; RTSP
#: and MJPEG describe the picture in their first packets anyway.
ANALYZE_DURATION_US = 500_000
#: A network stream may run this many seconds ahead of real time before it is
#: held back (live streams arrive in real time, after a first burst of about
#: ANALYZE_DURATION_US that must not add latency).
NETWORK_SLACK = 1.0
#: A new timeline anchor is taken when stream time and wall time drift apart
#: by more than this (camera clock jumps, timestamp resets).
RESYNC_SECONDS = 3.0
#: Demuxers whose timestamps are a frame counter at an assumed rate, not real
#: time: their frames are timed by arrival instead.
UNTIMED_FORMATS = frozenset({"mpjpeg", "mjpeg", "jpeg_pipe", "image2pipe"})
#: Files a folder camera plays.
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".flv"}
    | {".h264", ".264", ".h265", ".hevc", ".mjpeg", ".mjpg", ".wmv", ".3gp"}
)
#: Seconds between looks for new files in a folder camera, and how long a new
#: file must be unchanged before it is played.
FOLDER_POLL = 1.0
FILE_SETTLE = 1.0

def _local_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path)) if url.lower().startswith("file://") else Path(url)


# --------------------------------------------------------------------------- settings and health


@dataclass(frozen=True)
class LiveSettings:
    """How to read one live stream.

    ``url`` may hold credentials; it is left out of ``repr`` (use :attr:`redacted_url`).

    >>> s = LiveSettings("rtsp://admin:secret@cam/live", fps=2)
    >>> s.redacted_url, "secret" in repr(s)
    ('rtsp://admin:***@cam/live', False)
    """

    url: str = field(repr=False)
    transport: Literal["tcp", "udp"] = "tcp"
    #: Frames analysed per second (picked by timestamp).
    fps: float = 5.0
    #: ``keyframes``: decode keyframes only (cheapest; for cameras with short GOPs);
    #: ``none``: no decoding at all (a connection that only records).
    decode: Literal["all", "keyframes", "none"] = "all"
    #: No packet for this long: the stream has stalled and is reconnected.
    stall_seconds: float = 10.0
    #: An unchanged picture for this long is reported as frozen.
    frozen_seconds: float = 30.0
    #: Seconds to wait for a connection to open.
    open_timeout: float = 10.0
    backoff_initial: float = 0.5
    #: Cameras sit on the local network and retrying is cheap: a short cap means a camera is
    #: back within seconds of returning, however long it was away.
    backoff_max: float = 3.0
    #: Random spread of each backoff delay, as a fraction (0.3: ±30 %).
    jitter: float = 0.3

    def __post_init__(self) -> None:
        if self.transport not in ("tcp", "udp"):
            raise ValueError(f"transport must be 'tcp' or 'udp', got {self.transport!r}")
        if self.decode not in ("all", "keyframes", "none"):
            raise ValueError(f"decode must be 'all', 'keyframes' or 'none', got {self.decode!r}")
        for name in ("fps", "stall_seconds", "frozen_seconds", "open_timeout", "backoff_initial"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must be at least backoff_initial")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be a fraction in [0, 1), got {self.jitter!r}")

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    @classmethod
    def from_camera(cls, cfg: CameraConfig, *, detect: bool = False, **overrides: Any) -> LiveSettings:
        """Settings for a configured camera; credentials come from username/password/password_env.

        ``detect=True`` reads the camera's ``detect_url`` (its analysis stream)
        when it has one. ``overrides`` set other fields (``open_timeout``...).
        A ``password_env`` naming an unset variable raises :class:`ConfigError`.
        """
        url = (cfg.detect_url if detect else None) or cfg.url
        if not url:
            raise ConfigError("camera has no url: give url: rtsp://..., http(s)://..., a file or a folder")
        password = cfg.password
        if cfg.password_env:
            password = os.environ.get(cfg.password_env)
            if password is None:
                raise ConfigError(
                    f"environment variable {cfg.password_env} is not set "
                    "(it holds the camera password: password_env)"
                )
        if is_network(url):
            url = with_credentials(url, cfg.username, password)
        fields = {
            "url": url,
            "transport": cfg.transport,
            "fps": cfg.fps,
            "decode": cfg.decode,
            "stall_seconds": cfg.stall_seconds,
            "frozen_seconds": cfg.frozen_seconds,
        }
        fields.update(overrides)
        return cls(**fields)

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (0 = first retry).

        ``backoff_initial * 2**attempt``, capped at ``backoff_max``, less up to
        ``jitter`` of it at random (:func:`camsight.timeutil.backoff`), so cameras
        that went down together do not all reconnect at the same instant.

        >>> s = LiveSettings("rtsp://cam/live", jitter=0.0)
        >>> [s.backoff(n) for n in range(8)]
        [0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0]
        """
        return backoff(attempt, self.backoff_initial, self.backoff_max, jitter=self.jitter, rng=rand)


@dataclass
class Health:
    """How a live source is doing; sent to ``on_health`` every ~2 s and on each state change.

    States: ``connecting`` (opening), ``connected`` (receiving), ``stalled`` (no
    packet for ``stall_seconds``; a reconnect follows), ``frozen`` (connected
    but the picture has not changed for ``frozen_seconds``), ``error`` (cannot
    connect or read; ``error`` says why, retried with backoff), ``ended`` (the
    server closed the stream; reconnecting), ``stopped`` (``run`` returned).
    """

    state: State = "connecting"
    #: Decoded frames per second over the last few seconds.
    fps_in: float = 0.0
    #: Frames handed to ``on_frame`` per second over the last few seconds.
    fps_analysed: float = 0.0
    frames_in: int = 0
    frames_analysed: int = 0
    #: When the last frame was decoded (UTC).
    last_frame_at: datetime | None = None
    #: Connections re-established after data was lost.
    reconnects: int = 0
    #: Why the last connection attempt or read failed (passwords redacted); None once connected.
    error: str | None = None
    connected_since: datetime | None = None
    #: Interruptions of the stream (each one ends a recording segment).
    gaps: int = 0
    #: Frames picked for analysis but dropped because the handler was busy.
    frames_dropped: int = 0


class LiveHandler(Protocol):
    """What a :class:`LiveSource` feeds; every method is called on the ``run`` thread, one at a time."""

    def on_connect(self, stream: VideoStream, gap: bool) -> None:
        """A (re)connection: ``stream`` is the input video stream, a template for stream copy.

        ``gap`` is True when data was lost since the previous connection (a
        recorder starts a new segment). The stream stays usable (its container
        open) until the next ``on_connect`` returns, and after ``run`` returns
        for as long as the handler keeps it; replace it at each ``on_connect``.
        Packets that follow may start before the first keyframe.
        """

    def on_packet(self, packet: av.Packet, at: datetime) -> None:
        """Every demuxed video packet, in order; ``at`` is its wall-clock arrival (UTC).

        Timestamps are the stream's own (``packet.time_base``); they restart
        after each ``on_connect``. The handler may keep or remux the packet.
        """

    def on_frame(self, frame: Frame, at: datetime) -> None:
        """A decoded frame picked at the analysis rate.

        ``frame.index`` counts analysed frames from 1; ``frame.t`` is seconds since
        the source started, increasing across reconnects; ``at`` is when it was
        decoded (UTC).
        """

    def on_health(self, health: Health) -> None:
        """The source's health, every ~2 s and on every state change."""

    def idle(self, at: datetime) -> None:
        """Called about once a second while no frame arrives (so rules can report video loss)."""


# --------------------------------------------------------------------------- internals


class _Stalled(Exception):
    """No video packet for ``stall_seconds``."""


class _Events:
    """The reader's output queue: never blocks the reader, keeps the newest frames."""

    def __init__(self) -> None:
        self._items: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._cond = threading.Condition()
        self._frames = 0
        self.dropped_frames = 0

    def put(self, kind: str, *args: Any) -> None:
        with self._cond:
            if kind == "frame" and self._frames >= MAX_PENDING_FRAMES:
                # Analysis is slower than the stream: the oldest waiting frame goes.
                for i, (k, _) in enumerate(self._items):
                    if k == "frame":
                        del self._items[i]
                        self._frames -= 1
                        self.dropped_frames += 1
                        break
            elif kind == "packet" and len(self._items) >= MAX_PENDING_EVENTS:
                # The handler cannot keep up even with packets: drop them all and
                # tell the handler there is a gap.
                kept = [(k, a) for k, a in self._items if k in ("state", "connect")]
                self.dropped_frames += self._frames
                self._items = deque(kept)
                self._frames = 0
                self._items.append(("resync", ()))
            if kind == "frame":
                self._frames += 1
            self._items.append((kind, args))
            self._cond.notify()

    def get(self, timeout: float) -> tuple[str, tuple[Any, ...]] | None:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                return None
            kind, args = self._items.popleft()
            if kind == "frame":
                self._frames -= 1
            return kind, args


class _Rate:
    """Events per second over the last :data:`FPS_WINDOW` seconds."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def add(self, now: float) -> None:
        self._times.append(now)

    def value(self, now: float) -> float:
        while self._times and self._times[0] < now - FPS_WINDOW:
            self._times.popleft()
        if len(self._times) < 2:
            return 0.0
        return (len(self._times) - 1) / max(now - self._times[0], 1e-6)


class _Timeline:
    """Stream timestamps -> seconds since the source started, increasing across reconnects.

    The first frame of a connection is anchored to the wall clock, later frames
    keep the stream's own spacing (truer than arrival times, which come in
    bursts); a new anchor is taken when the two drift apart.
    """

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.last = -math.inf
        self._anchor: tuple[float, float] | None = None

    def reset(self) -> None:
        self._anchor = None

    def t(self, stream_time: float | None, now: float) -> float:
        wall = now - self.origin
        if stream_time is None:
            t = wall
        else:
            if (
                self._anchor is None
                or abs(self._anchor[0] + stream_time - self._anchor[1] - wall) > RESYNC_SECONDS
            ):
                self._anchor = (wall, stream_time)
            t = self._anchor[0] + stream_time - self._anchor[1]
        # Tracking and storage need increasing times: nudge rather than trust.
        if t <= self.last:
            t = self.last + 1e-3
        self.last = t
        return t


class _Frozen:
    """Detects a picture that has not changed for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ref: np.ndarray | None = None
        self._since = 0.0

    def reset(self) -> None:
        self._ref = None

    def update(self, gray: np.ndarray, now: float) -> bool:
        thumb = cv2.resize(gray, THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)
        # Compared with the picture at the start of the unchanged stretch, not the
        # previous one, so a slow change (dusk) is not taken for a frozen picture.
        if self._ref is None or float(np.abs(thumb - self._ref).mean()) >= FROZEN_DIFF:
            self._ref = thumb
            self._since = now
            return False
        return now - self._since >= self.seconds


@dataclass
class _Session:
    """What outlives a reader within one ``run``: the timeline, rate, counters."""

    settings: LiveSettings
    origin: float
    timeline: _Timeline
    rate: AnalysisRate
    frozen: _Frozen
    lock: threading.Lock = field(default_factory=threading.Lock)
    frames_in: int = 0
    fps_in: _Rate = field(default_factory=_Rate)
    last_frame_at: datetime | None = None
    #: monotonic time of the last video packet (or of the connection).
    last_packet: float = 0.0
    #: Data has flowed at some point: the next connection is a gap.
    had_data: bool = False
    #: Files a folder camera has played.
    played: set[str] = field(default_factory=set)
    decode_errors: int = 0
    #: Containers of connections that ended. Their stream may still be the
    #: handler's template (and PyAV crashes on a stream of a closed container),
    #: so they are closed only after the handler has had the next on_connect.
    retired: list[Any] = field(default_factory=list)

    def retire(self, container: InputContainer) -> None:
        with self.lock:
            self.retired.append(container)

    def close_retired(self, keep: Any = None) -> None:
        with self.lock:
            retired = [c for c in self.retired if c is not keep]
            self.retired = [c for c in self.retired if c is keep]
        for container in retired:
            container.close()


class _Reader(threading.Thread):
    """Opens, reads and decodes; reconnects with backoff. Reports through ``events`` only."""

    def __init__(self, source: LiveSource, session: _Session, stop: threading.Event) -> None:
        super().__init__(name=f"camsight-live-{source.name}", daemon=True)
        self.source = source
        self.session = session
        self.settings = session.settings
        self.stop_event = stop
        self.cancel = threading.Event()
        self.events = _Events()
        self.exception: BaseException | None = None
        #: True while reading packets from an open stream (the stall watchdog applies).
        self.reading = False
        self._last_state: tuple[State, str | None] | None = None
        #: The stream's timestamps are not real time (MJPEG over HTTP): use arrival times.
        self.untimed = False

    # -- control

    def done(self) -> bool:
        return self.cancel.is_set() or self.stop_event.is_set()

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.done():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.cancel.wait(min(left, 0.1))

    def emit(self, kind: str, *args: Any) -> None:
        if not self.cancel.is_set():
            self.events.put(kind, *args)

    def state(self, state: State, error: str | None = None) -> None:
        if (state, error) != self._last_state:  # frames report their state; send changes only
            self._last_state = (state, error)
            self.emit("state", state, error)

    def release(self, container: InputContainer, handed_out: bool) -> None:
        """Close ``container`` now, or once the handler has a newer stream if it has seen this one."""
        if handed_out:
            self.session.retire(container)
        else:
            container.close()

    # -- the loop

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a programming error: run() re-raises it
            self.exception = exc
        finally:
            self.reading = False

    def _loop(self) -> None:
        failures = 0
        url = self.settings.url
        while not self.done():
            delivered_before = self.session.frames_in
            try:
                if not is_network(url) and _local_path(url).is_dir():
                    self._play_folder(_local_path(url))
                elif not is_network(url):
                    self._play(_local_path(url), loop=True)
                else:
                    self._play_network(url)
                if not self.done():
                    self.state("ended", f"{self.settings.redacted_url}: the stream ended")
            except _Stalled:
                self.state(
                    "stalled", f"{self.settings.redacted_url}: no video for {self.settings.stall_seconds:g}s"
                )
            except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
                if self.done():
                    break
                self.state("error", self.source.scrub(f"{self.settings.redacted_url}: {self._describe(exc)}"))
            finally:
                self.reading = False
            if self.done():
                break
            # A connection that delivered frames resets the backoff: this is a new outage.
            failures = 0 if self.session.frames_in > delivered_before else failures + 1
            self.wait(self.settings.backoff(max(failures - 1, 0)))

    def _describe(self, exc: BaseException) -> str:
        """A short, clear reason for a failed connection (no URL: the caller adds the redacted one)."""
        if isinstance(exc, av.error.HTTPUnauthorizedError):
            return "401 Unauthorized (wrong or missing user name or password)"
        if isinstance(exc, av.error.HTTPForbiddenError):
            return "403 Forbidden (the user may not view this stream)"
        if isinstance(exc, av.error.HTTPNotFoundError):
            return "no such stream (404 Not Found)"
        if isinstance(exc, av.error.ExitError):
            # Raised by PyAV's open timeout: nothing answered, or no video came.
            seconds = self.settings.open_timeout
            return f"no video within {seconds:g}s (host unreachable, or a camera sending nothing)"
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused (nothing listens at that host and port)"
        if isinstance(exc, FileNotFoundError):
            return "no such file or folder"
        code = getattr(exc, "errno", None)
        if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "host unreachable"
        if code == errno.ETIMEDOUT:
            return "connection timed out"
        if code in (errno.ECONNRESET, errno.EPIPE):
            return "connection reset by the camera"
        if code == errno.EIO and is_network(self.settings.url):
            host = urlsplit(redact_url(self.settings.url)).hostname
            if host:
                try:
                    socket.getaddrinfo(host, None)
                except OSError:
                    return f"unknown host '{host}'"
            return "cannot connect (input/output error)"
        if isinstance(exc, av.error.InvalidDataError):
            return "no readable video (invalid data: not a camera stream, or unreachable)"
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return str(text).strip().splitlines()[0]

    # -- network streams

    def _play_network(self, url: str) -> None:
        self.state("connecting")
        scheme = url.split("://", 1)[0].lower()
        options = {"analyzeduration": str(ANALYZE_DURATION_US)}
        formats: list[str | None] = [None]
        if scheme in ("rtsp", "rtsps"):
            options.update(rtsp_transport=self.settings.transport, allowed_media_types="video")
        elif scheme in ("http", "https") and ".m3u8" not in url.lower():
            # MJPEG over HTTP: libavformat usually recognises multipart/x-mixed-replace,
            # and otherwise the mpjpeg demuxer is named explicitly.
            formats.append("mpjpeg")
        container = None
        for i, fmt in enumerate(formats):
            try:
                container = av.open(
                    url,
                    format=fmt,
                    options=options,
                    timeout=(self.settings.open_timeout, self.settings.stall_seconds),
                )
                break
            except av.error.InvalidDataError:
                if i == len(formats) - 1:
                    raise
        assert container is not None
        self._read(container, loop=False)

    # -- files and folders

    def _play_folder(self, folder: Path) -> None:
        self.state("connecting")
        if not folder.is_dir():
            raise FileNotFoundError(errno.ENOENT, "no such folder", str(folder))
        self.state("connected")
        while not self.done():
            now = time.time()
            ready = []
            for path in sorted(folder.iterdir()):
                if path.name in self.session.played or path.suffix.lower() not in VIDEO_SUFFIXES:
                    continue
                try:
                    stat = path.stat()
                except OSError:
                    continue
                if path.is_file() and stat.st_size > 0 and now - stat.st_mtime >= FILE_SETTLE:
                    ready.append(path)
            for path in ready:
                if self.done():
                    return
                self.session.played.add(path.name)
                try:
                    self._play(path, loop=False, folder=True)
                except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
                    log.warning(
                        "camera %s: skipping %s (%s)", self.source.name, path.name, self._describe(exc)
                    )
                self.state("connected")
            self.wait(FOLDER_POLL)

    def _play(self, path: Path, *, loop: bool, folder: bool = False) -> None:
        if not folder:
            self.state("connecting")
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
        container = av.open(str(path))
        self._read(container, loop=loop, slack=0.0, gap=False if folder else None)

    # -- reading and decoding

    def _read(
        self, container: InputContainer, *, loop: bool, slack: float = NETWORK_SLACK, gap: bool | None = None
    ) -> None:
        """Demux, decode and emit until the stream ends (or stalls, or the reader stops).

        Packets are delivered at real-time pace by their timestamps, at most
        ``slack`` seconds ahead: files play like cameras, and a network stream
        that arrives faster than real time (a recorded HLS playlist) too, while
        live streams, which arrive in real time, are never held back.
        """
        session = self.session
        handed_out = False
        try:
            if not container.streams.video:
                raise av.error.InvalidDataError(errno.EINVAL, "the stream has no video")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            if self.settings.decode == "keyframes":
                ctx.skip_frame = "NONKEY"
            session.timeline.reset()
            session.frozen.reset()
            self.emit("connect", stream, session.had_data if gap is None else gap)
            handed_out = True
            self.state("connected")
            session.last_packet = time.monotonic()
            self.reading = True
            tb = float(stream.time_base) if stream.time_base else None
            self.untimed = bool(set(container.format.name.split(",")) & UNTIMED_FORMATS)
            default_step = 1.0 / float(stream.average_rate or stream.guessed_rate or 25)
            shift = 0  # ticks added to every packet (file loops)
            pace: tuple[float, float] | None = None  # (monotonic, stream seconds) of the pacing anchor
            while True:
                first: int | None = None
                end: int | None = None
                for packet in self._packets(container, stream):
                    if packet.size == 0:  # end of stream: drain the decoder
                        self._decode(ctx, None, time.monotonic())
                        continue
                    ts = packet.dts if packet.dts is not None else packet.pts
                    if ts is not None:
                        first = ts if first is None else min(first, ts)
                        step = packet.duration or (round(default_step / tb) if tb else 0)
                        start = packet.pts if packet.pts is not None else ts
                        end = max(end if end is not None else ts, start + step)
                    if shift:
                        # A looped file: keep timestamps increasing for recorders and the timeline.
                        if packet.pts is not None:
                            packet.pts += shift
                        if packet.dts is not None:
                            packet.dts += shift
                    silence = time.monotonic() - session.last_packet
                    if ts is not None and tb and not self.untimed:
                        pace = self._pace((ts + shift) * tb, pace, slack)
                        if self.done():
                            return
                    now = time.monotonic()
                    session.last_packet = now
                    session.had_data = True
                    self._decode(ctx, packet, now)
                    if silence >= self.settings.stall_seconds:
                        # The read timed out and libavformat flushed the access unit its
                        # parser was holding: real data, but the stream has stalled.
                        raise _Stalled()
                if not loop or first is None or end is None or self.done():
                    return
                # Loop a file: rewind and shift timestamps by the clip's length.
                shift += max(end - first, 1)
                container.seek(0)
                ctx.flush_buffers()
        finally:
            self.reading = False
            self.release(container, handed_out)

    def _packets(self, container: InputContainer, stream: VideoStream) -> Iterator[av.Packet]:
        """The video packets; all streams are read so that audio alone cannot hide a video stall."""
        stall = self.settings.stall_seconds
        try:
            for packet in container.demux():
                if self.done():
                    return
                if packet.stream.index == stream.index:
                    yield packet
                elif time.monotonic() - self.session.last_packet > stall:
                    raise _Stalled()
        except av.error.ExitError:
            # PyAV's read timeout (= stall_seconds) fired inside a blocking read.
            if not self.done():
                raise _Stalled() from None

    def _pace(
        self, stream_time: float, anchor: tuple[float, float] | None, slack: float
    ) -> tuple[float, float]:
        """Wait until ``stream_time`` is due (less ``slack``); returns the (maybe new) anchor."""
        now = time.monotonic()
        if anchor is None:
            return now, stream_time
        due = anchor[0] + stream_time - anchor[1]
        if due - now > RESYNC_SECONDS or now - due > 1.0:
            # A timestamp jump, or decoding fell behind: re-anchor rather than sleep or burst.
            return now, stream_time
        if due - slack > now:
            self.wait(due - slack - now)
        return anchor

    def _decode(self, ctx: Any, packet: av.Packet | None, now: float) -> None:
        session = self.session
        if self.settings.decode == "none":
            if packet is not None:
                self.emit("packet", packet, datetime.now(UTC))
            return
        try:
            frames = ctx.decode(packet)
        except av.error.ExitError:
            raise
        except av.error.FFmpegError as exc:
            # A damaged packet (UDP loss, a glitch): count it and go on, as a player would.
            session.decode_errors += 1
            log.debug("camera %s: undecodable packet (%s)", self.source.name, exc.strerror)
            frames = []
        at = datetime.now(UTC)
        # The packet goes to the handler only after decoding: the handler may
        # change it (remuxing sets its stream and rescales its timestamps).
        if packet is not None:
            self.emit("packet", packet, at)
        for frame in frames:
            with session.lock:
                session.frames_in += 1
                session.fps_in.add(now)
                session.last_frame_at = at
            t = session.timeline.t(None if self.untimed else frame.time, now)
            if not session.rate.take(t):
                continue
            item = Frame(0, t, av_frame=frame)
            frozen = session.frozen.update(item.gray, now)
            self.state("frozen" if frozen else "connected")
            self.emit("frame", item, at)


# --------------------------------------------------------------------------- the source


class LiveSource:
    """A live camera read with PyAV; see the module docstring.

    >>> source = LiveSource("gate", LiveSettings("rtsp://admin:pw@10.0.0.5/live"))
    >>> source
    LiveSource('gate', 'rtsp://admin:***@10.0.0.5/live')
    """

    def __init__(self, name: str, settings: LiveSettings) -> None:
        self.name = name
        self.settings = settings
        self._secrets = url_secrets(settings.url)

    def __repr__(self) -> str:
        return f"LiveSource({self.name!r}, {self.settings.redacted_url!r})"

    def scrub(self, text: str) -> str:
        """``text`` with this camera's URL redacted and its secrets replaced by ``***``."""
        text = text.replace(self.settings.url, self.settings.redacted_url)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def run(self, handler: LiveHandler, stop: threading.Event) -> None:
        """Read the camera and feed ``handler`` until ``stop`` is set (returns within ~1 s of it).

        Never raises for camera or network trouble (that is reported through
        ``on_health``); exceptions raised by the handler propagate, after the
        reader has been told to stop.
        """
        settings = self.settings
        origin = time.monotonic()
        session = _Session(
            settings=settings,
            origin=origin,
            timeline=_Timeline(origin),
            rate=AnalysisRate(settings.fps),
            frozen=_Frozen(settings.frozen_seconds),
        )
        health = Health()
        analysed = 0
        fps_out = _Rate()
        stream: VideoStream | None = None
        last_frame = origin
        next_idle = origin + IDLE_INTERVAL
        next_health = origin
        idle_after = max(IDLE_INTERVAL, 1.5 / settings.fps)
        dropped_before = 0  # frames dropped by readers that are gone
        reader = _Reader(self, session, stop)
        log.info("camera %s: opening %s", self.name, settings.redacted_url)
        reader.start()

        def report(now: float) -> None:
            nonlocal next_health
            with session.lock:
                health.frames_in = session.frames_in
                health.fps_in = round(session.fps_in.value(now), 2)
                health.last_frame_at = session.last_frame_at
            health.frames_analysed = analysed
            health.fps_analysed = round(fps_out.value(now), 2)
            health.frames_dropped = dropped_before + reader.events.dropped_frames
            next_health = now + HEALTH_INTERVAL
            handler.on_health(replace(health))

        def set_state(state: State, error: str | None, now: float) -> None:
            if state == health.state and (error is None or error == health.error):
                return
            previous = health.state
            if state in ("connected", "frozen"):
                health.error = None
                if health.connected_since is None:
                    health.connected_since = datetime.now(UTC)
            else:
                health.connected_since = None
                if error is not None:
                    health.error = self.scrub(error)
            health.state = state
            if (state == "error" and previous == "error") or state == "connecting":
                log.debug("camera %s: %s %s", self.name, state, health.error or "")
            elif state in ("error", "stalled", "ended"):
                log.warning("camera %s: %s: %s", self.name, state, health.error)
            else:
                log.info("camera %s: %s", self.name, state)
            report(now)

        try:
            while not stop.is_set():
                item = reader.events.get(timeout=0.1)
                now = time.monotonic()
                if item is not None:
                    kind, args = item
                    if kind == "packet":
                        handler.on_packet(*args)
                    elif kind == "frame":
                        frame, at = args
                        analysed += 1
                        frame.index = analysed
                        fps_out.add(now)
                        last_frame = now
                        handler.on_frame(frame, at)
                    elif kind == "state":
                        set_state(args[0], args[1], now)
                    elif kind == "connect":
                        stream, gap = args
                        if gap:
                            health.gaps += 1
                            health.reconnects += 1
                        handler.on_connect(stream, gap)
                        # The handler has a new template: older connections can go.
                        session.close_retired(keep=stream.container)
                    elif kind == "resync" and stream is not None:
                        log.warning("camera %s: handler fell behind; packets dropped", self.name)
                        health.gaps += 1
                        handler.on_connect(stream, True)
                if reader.exception is not None:
                    raise reader.exception
                # Our own stall watchdog: the reader reports a stall itself when PyAV's
                # read timeout (= stall_seconds) fires; one still stuck in a read after
                # that is abandoned (it closes its stream when the read returns) and replaced.
                silent = now - session.last_packet
                if reader.reading and silent > settings.stall_seconds + STALL_GRACE:
                    set_state("stalled", f"{settings.redacted_url}: no video for {silent:.0f}s", now)
                    log.info("camera %s: abandoning a reader stuck in a read", self.name)
                    reader.cancel.set()
                    dropped_before += reader.events.dropped_frames
                    stream = None
                    session.last_packet = now
                    reader = _Reader(self, session, stop)
                    reader.start()
                elif not reader.is_alive() and reader.exception is None and not stop.is_set():
                    reader = _Reader(self, session, stop)  # cannot happen; keep the camera alive anyway
                    reader.start()
                if now - last_frame >= idle_after and now >= next_idle:
                    next_idle = now + IDLE_INTERVAL
                    handler.idle(datetime.now(UTC))
                if now >= next_health:
                    report(now)
        except BaseException:
            reader.cancel.set()
            raise
        reader.cancel.set()
        reader.join(timeout=1.0)
        # Containers still open (retired, or the reader's last) are not closed here:
        # the handler may still use its stream; they close when it lets go of it.
        health.state = "stopped"
        health.connected_since = None
        log.info("camera %s: stopped", self.name)
        report(time.monotonic())
