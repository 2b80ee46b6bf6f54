"""Live view: a camera worker's newest pictures as JPEG, for the web app's MJPEG stream.

A camera's worker runs in its own process; the API runs in the supervisor's.
A :class:`LiveChannel`, made by the supervisor for each worker process it
starts, joins them through shared memory:

- the server calls :meth:`LiveChannel.want` while someone watches (it keeps
  a "wanted until" time a few seconds ahead); the worker produces nothing
  once that time has passed, so a camera nobody watches pays nothing;
- the worker's :class:`LivePublisher` (a thread beside analysis) takes the
  newest frame the worker already decoded for analysis, blanks the privacy
  masks, scales it down to at most :data:`LIVE_WIDTH` pixels wide, encodes a
  JPEG at most :data:`LIVE_FPS` times a second and publishes it;
- the server polls :meth:`LiveChannel.latest` and sends new pictures.

The recording is never touched (it stays a stream copy) and no second
connection to the camera is opened. The publisher converts frames with its
own scaler, so it never shares a decoder frame's converter with the analysis
thread, and a slow encode only makes the live picture skip frames: it never
holds up analysis.

The shared buffer is a seqlock with one writer (one worker process per
channel): the sequence number is odd while a picture is written, and a reader
keeps a copy only when the number is even and unchanged after copying. A
reader therefore never waits on a lock that a killed worker might have held.

>>> import multiprocessing as mp
>>> channel = LiveChannel(mp.get_context("spawn"), capacity=64)
>>> channel.latest(0) is None, channel.wanted()
(True, False)
>>> channel.want(); channel.wanted()
True
>>> channel.publish(b"\\xff\\xd8 a jpeg"), channel.latest(0)
(True, (2, b'\\xff\\xd8 a jpeg'))
>>> channel.latest(2) is None, channel.publish(b"x" * 65)
(True, False)
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from camsight.config import CameraConfig
    from camsight.media.masks import PrivacyMask
    from camsight.sources.frame import Frame

log = logging.getLogger(__name__)

#: Most pictures a second sent to viewers (fewer when the camera's analysis rate is lower).
LIVE_FPS = 10.0
#: Widest live picture; larger frames are scaled down (a phone or a grid needs no more).
LIVE_WIDTH = 1280
#: JPEG quality of live pictures: sharp enough to see, small enough for a phone's connection.
JPEG_QUALITY = 75
#: How long one :meth:`LiveChannel.want` keeps the worker producing.
WANT_SECONDS = 3.0
#: Largest JPEG a channel holds (a 1280-wide picture at quality 75 is usually 50 to 300 KB).
CAPACITY = 2 * 1024 * 1024


class LiveChannel:
    """Shared memory between one camera worker process and the server; see the module docstring.

    Made with the supervisor's multiprocessing context and handed to the worker
    process as an argument (its parts can be pickled only then).
    """

    def __init__(self, ctx: Any, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._buffer = ctx.RawArray(ctypes.c_ubyte, capacity)
        self._length = ctx.RawValue(ctypes.c_uint32, 0)
        self._seq = ctx.RawValue(ctypes.c_uint64, 0)
        # CLOCK_MONOTONIC is one clock for every process of the machine.
        self._wanted_until = ctx.RawValue(ctypes.c_double, 0.0)
        self._published_at = ctx.RawValue(ctypes.c_double, 0.0)

    def want(self, seconds: float = WANT_SECONDS) -> None:
        """Someone watches: keep pictures coming for ``seconds`` more (the server calls this often)."""
        self._wanted_until.value = time.monotonic() + seconds

    def wanted(self) -> bool:
        """Whether anyone watched within the last :data:`WANT_SECONDS`."""
        return time.monotonic() < self._wanted_until.value

    def publish(self, jpeg: bytes) -> bool:
        """Make ``jpeg`` the newest picture; False (and nothing changes) when it does not fit."""
        if len(jpeg) > self.capacity:
            return False
        seq = self._seq.value
        self._seq.value = seq + 1  # odd: being written
        ctypes.memmove(self._buffer, jpeg, len(jpeg))
        self._length.value = len(jpeg)
        self._published_at.value = time.monotonic()
        self._seq.value = seq + 2
        return True

    def latest(self, after: int, max_age: float | None = None) -> tuple[int, bytes] | None:
        """The newest picture and its number, when there is one newer than number ``after``.

        None also when a picture is being written right now (the caller asks again shortly), and
        when it is older than ``max_age`` seconds (the last one of an earlier viewer: not live).
        """
        seq = self._seq.value
        if seq == after or seq % 2:
            return None
        if max_age is not None and time.monotonic() - self._published_at.value > max_age:
            return None
        length = min(int(self._length.value), self.capacity)
        data = ctypes.string_at(ctypes.addressof(self._buffer), length)
        if self._seq.value != seq:
            return None
        return seq, data


class LivePublisher:
    """A camera worker's live-view thread: newest frame in, masked JPEG out to ``channel``.

    ``offer`` is called on the source's thread with every frame picked for
    analysis; it only keeps a reference (the newest replaces an older one not
    yet encoded), so the source and analysis threads never wait for it.
    """

    def __init__(self, channel: LiveChannel, camera: str, cam: CameraConfig) -> None:
        self.channel = channel
        self.camera = camera
        self.cam = cam
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._masks: dict[tuple[int, int], PrivacyMask | None] = {}
        self._unmaskable: set[tuple[int, int]] = set()
        self._scaler: Any = None

    def offer(self, frame: Frame) -> None:
        """Hand over a decoded frame if anyone watches (cheap; never blocks for long)."""
        if not self.channel.wanted():
            return
        with self._cond:
            self._frame = frame
            self._cond.notify()

    def run(self, stop: threading.Event) -> None:
        """Encode and publish offered frames, at most :data:`LIVE_FPS` a second, until ``stop``."""
        last = 0.0
        while not stop.is_set():
            with self._cond:
                if self._frame is None:
                    self._cond.wait(0.5)
                frame, self._frame = self._frame, None
            if frame is None:
                continue
            wait = last + 1.0 / LIVE_FPS - time.monotonic()
            if wait > 0:
                # Too soon: sleep, then encode the newest frame offered meanwhile.
                stop.wait(wait)
                with self._cond:
                    frame, self._frame = self._frame or frame, None
            last = time.monotonic()
            try:
                jpeg = self.encode(frame)
            except Exception:  # the live picture is best effort: analysis and recording go on
                log.warning("cannot encode a live picture", extra={"camera": self.camera}, exc_info=True)
                continue
            if jpeg is not None and not self.channel.publish(jpeg):
                log.warning(
                    "live picture too large (%d bytes), skipped", len(jpeg), extra={"camera": self.camera}
                )

    def encode(self, frame: Frame) -> bytes | None:
        """The frame as a JPEG with the camera's privacy masks blanked; None when they cannot be applied."""
        import cv2

        w, h = frame.size
        out = live_size(w, h)
        mask = self._mask((w, h), out)
        if mask is False:
            return None  # never show a picture its masks do not cover
        image = self._bgr(frame, out)
        if mask is not None:
            mask.apply(image)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        return jpeg.tobytes() if ok else None

    def _bgr(self, frame: Frame, size: tuple[int, int]) -> np.ndarray:
        """A BGR picture of ``size`` made from the frame, owned by this thread (masks go on it in place)."""
        import cv2

        image = frame._image
        if image is not None:
            if (image.shape[1], image.shape[0]) == size:
                return image.copy()
            return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        # PyAV caches one converter per decoded frame; the analysis thread may be using that one
        # right now, so this thread converts with a scaler of its own. Scaling while converting
        # costs a fraction of converting the full picture and then scaling it.
        from av.video.reformatter import VideoReformatter

        if self._scaler is None:
            self._scaler = VideoReformatter()
        converted = self._scaler.reformat(frame._av, width=size[0], height=size[1], format="bgr24")
        return np.ascontiguousarray(converted.to_ndarray())

    def _mask(self, size: tuple[int, int], out: tuple[int, int]) -> PrivacyMask | bool | None:
        """The masks of frames of ``size`` on pictures of ``out``; False when they cannot be applied.

        Made at the frame's size (pixel masks are in the frame's pixels), then scaled so that
        a live pixel that covers any masked pixel is masked.
        """
        key = (size, out)
        if key in self._unmaskable:
            return False
        if key not in self._masks:
            from camsight.errors import ConfigError
            from camsight.media.masks import PrivacyMask

            try:
                mask = PrivacyMask.for_camera(self.cam, size, self.camera)
            except ConfigError as exc:
                self._unmaskable.add(key)
                log.warning("no live view: %s", exc, extra={"camera": self.camera})
                return False
            self._masks[key] = scaled_mask(mask, out) if mask is not None and out != size else mask
        return self._masks[key]


def live_size(width: int, height: int) -> tuple[int, int]:
    """The live picture's size for a frame's: at most :data:`LIVE_WIDTH` wide, in proportion, even.

    >>> live_size(640, 480), live_size(1920, 1080), live_size(2560, 1440)
    ((640, 480), (1280, 720), (1280, 720))
    """
    if width <= LIVE_WIDTH:
        return width, height
    return LIVE_WIDTH, max(2, round(height * LIVE_WIDTH / width / 2) * 2)


def scaled_mask(mask: PrivacyMask, size: tuple[int, int]) -> PrivacyMask | None:
    """``mask`` for a picture scaled to ``size``, erring on the side of hiding.

    >>> import numpy as np
    >>> from camsight.media.masks import PrivacyMask
    >>> square = np.array([[0, 0], [3, 0], [3, 3], [0, 3]], float)
    >>> small = scaled_mask(PrivacyMask.from_polygons([square], (10, 10)), (5, 5))
    >>> small.mask.astype(int)[:, :3].tolist()
    [[1, 1, 1], [1, 1, 1], [1, 1, 1], [0, 0, 0], [0, 0, 0]]
    """
    import cv2

    from camsight.media.masks import PrivacyMask

    # Any share of a masked pixel in a live pixel masks it (INTER_AREA averages, > 0 keeps any),
    # and one more pixel around, for what rounding in the average may lose.
    covered = cv2.resize(mask.mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    covered = cv2.dilate(covered.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if not covered.any():
        return None
    ys = np.flatnonzero(covered.any(axis=1))
    xs = np.flatnonzero(covered.any(axis=0))
    y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
    keep = np.where(covered[y0:y1, x0:x1], 0, 255).astype(np.uint8)
    return PrivacyMask(size, covered, (y0, y1, x0, x1), keep)
