"""How a live camera is read (its settings and tunables) and what it reports (health, the handler protocol).

See :mod:`camsight.sources.live` for the source itself.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

import av
import av.error

from camsight.errors import ConfigError
from camsight.sources.frame import Frame
from camsight.timeutil import backoff
from camsight.urls import is_network, redact_url, with_credentials

if TYPE_CHECKING:
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


def is_untimed(stream: Any) -> bool:
    """Whether a PyAV input stream's timestamps are a frame counter, not time (see UNTIMED_FORMATS).

    Such a stream is timed by arrival: for analysis by the reader, for
    recording by the recorder (which stamps each packet with when it came).
    """
    container = getattr(stream, "container", None)
    name = getattr(getattr(container, "format", None), "name", None) or ""
    return bool(set(name.split(",")) & UNTIMED_FORMATS)


def _local_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path)) if url.lower().startswith("file://") else Path(url)


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
