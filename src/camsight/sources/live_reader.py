"""The reader thread of a live camera: opens, demuxes and decodes, and hands events to the source.

Internal to :mod:`camsight.sources.live`; nothing here is used elsewhere.
"""

from __future__ import annotations

import errno
import logging
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import av
import av.error
import cv2
import numpy as np

from camsight.sources.frame import Frame
from camsight.sources.video_file import AnalysisRate
from camsight.urls import is_network, redact_url

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.stream import VideoStream

    from camsight.sources.live import LiveSource


from camsight.sources.live_settings import (
    ANALYZE_DURATION_US,
    FILE_SETTLE,
    FOLDER_POLL,
    FPS_WINDOW,
    FROZEN_DIFF,
    MAX_PENDING_EVENTS,
    MAX_PENDING_FRAMES,
    NETWORK_SLACK,
    RESYNC_SECONDS,
    THUMBNAIL,
    VIDEO_SUFFIXES,
    LiveSettings,
    State,
    _local_path,
    is_untimed,
)

log = logging.getLogger(__name__)


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
            self.untimed = is_untimed(stream)
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
