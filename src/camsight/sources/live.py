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

import logging
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from camsight.sources.live_reader import _Frozen, _Rate, _Reader, _Session, _Timeline
from camsight.sources.live_settings import (
    HEALTH_INTERVAL,
    IDLE_INTERVAL,
    STALL_GRACE,
    Health,
    LiveHandler,
    LiveSettings,
    State,
)
from camsight.sources.video_file import AnalysisRate
from camsight.urls import url_secrets

if TYPE_CHECKING:
    from av.video.stream import VideoStream

__all__ = ["Health", "LiveHandler", "LiveSettings", "LiveSource", "State"]

log = logging.getLogger(__name__)


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
