"""Video files read with PyAV: real presentation timestamps, seeking, rate selection."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import av.error

from camsight.errors import SourceError
from camsight.sources.frame import Frame

#: Demuxers that read still pictures: FFmpeg opens a JPEG or PNG as a one-frame "video".
PICTURE_FORMATS = re.compile(r"^(image2|.+_pipe)$")


def picture_format(format_name: str) -> str | None:
    """The picture type (``png``, ``jpeg``) when FFmpeg's demuxer ``format_name`` reads still pictures.

    >>> picture_format("png_pipe"), picture_format("image2"), picture_format("mov,mp4,m4a,3gp,3g2,mj2")
    ('png', 'image2', None)
    """
    if not PICTURE_FORMATS.match(format_name):
        return None
    return format_name.removesuffix("_pipe")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its video stream."""

    path: Path
    width: int
    height: int
    fps: float
    duration: float | None
    frames: int | None
    codec: str
    #: When recording started: the container's creation_time tag if it has
    #: one, else the file's modification time minus its duration.
    recorded_at: datetime | None = None


class AnalysisRate:
    """Which decoded frames go to analysis.

    ``None`` keeps every frame ("native"); otherwise a frame is kept when its
    timestamp reaches the next slot of ``1/fps`` seconds, which handles
    variable frame rate streams without assuming a constant spacing.

    >>> rate = AnalysisRate(5)
    >>> [rate.take(t / 10) for t in range(6)]
    [True, False, True, False, True, False]
    """

    def __init__(self, fps: float | None) -> None:
        if fps is not None and not (fps > 0 and math.isfinite(fps)):
            raise ValueError(f"analysis rate must be a positive number of frames/s, got {fps}")
        self.fps = fps
        self._next: float | None = None

    def take(self, t: float) -> bool:
        if self.fps is None:
            return True
        period = 1.0 / self.fps
        # A little tolerance so 10 fps -> 5 fps keeps every second frame even
        # when timestamps are rounded by the container's time base.
        if self._next is None or t >= self._next - period * 0.01:
            base = t if self._next is None or t > self._next + period else self._next
            self._next = base + period
            return True
        return False


def parse_fps(value: str) -> float | None:
    """Parse ``--fps``: a positive number or ``native`` (every frame).

    >>> parse_fps("native"), parse_fps("2.5")
    (None, 2.5)
    """
    if value.strip().lower() == "native":
        return None
    try:
        fps = float(value)
    except ValueError:
        raise SourceError(f"--fps must be a number or 'native', got {value!r}") from None
    if not (fps > 0 and math.isfinite(fps)):
        raise SourceError(f"--fps must be a positive number, got {value!r}")
    return fps


def fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """A content id for a file: size plus hashes of its head, middle and tail.

    Cheap enough for multi-gigabyte recordings, and unlike the path it stays
    the same when a file is moved and changes when a file is replaced.
    """
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        if size <= 3 * chunk:
            digest.update(fh.read())
        else:
            # Head, middle and tail: an edit anywhere in a recording almost
            # always shifts or changes one of them (or the size).
            for offset in (0, size // 2 - chunk // 2, size - chunk):
                fh.seek(offset)
                digest.update(fh.read(chunk))
    return digest.hexdigest()[:32]


class VideoFile:
    """A video file decoded with PyAV.

    >>> with VideoFile(Path("clip.mp4")) as video:  # doctest: +SKIP
    ...     for frame in video.frames(fps=5):
    ...         print(frame.index, frame.t, frame.size)
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise SourceError(f"{self.path}: is a directory, not a video file")
        try:
            size = self.path.stat().st_size
            with self.path.open("rb"):
                pass
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot read ({exc.strerror})") from None
        if size == 0:
            raise SourceError(f"{self.path}: file is empty (0 bytes)")
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise SourceError(f"{self.path}: not a readable video ({_reason(exc)})") from None
        picture = picture_format(self._container.format.name or "")
        if picture is not None:
            # The upload refuses pictures too: a photo indexed as a one-frame "video" only misleads.
            self._container.close()
            raise SourceError(f"{self.path}: not a video file: a still picture ({picture}), not a video")
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"{self.path}: contains no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        ctx = self._stream.codec_context
        if not ctx.width or not ctx.height:
            self._container.close()
            raise SourceError(f"{self.path}: video stream has no picture size (corrupt header?)")
        rate = self._stream.average_rate or self._stream.guessed_rate or Fraction(25)
        duration = None
        if self._stream.duration is not None and self._stream.time_base is not None:
            duration = float(self._stream.duration * self._stream.time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / av.time_base
        self.info = VideoInfo(
            path=self.path,
            width=ctx.width,
            height=ctx.height,
            fps=float(rate),
            duration=duration,
            frames=self._stream.frames or None,
            codec=ctx.name,
            recorded_at=_recorded_at(self._container, self.path, duration),
        )
        self.errors: list[str] = []
        #: Frames decoded so far by :meth:`frames` (all of them, not only analysed ones).
        self.decoded = 0
        #: Timestamp of the last decoded frame (analysed or not).
        self.last_t: float | None = None
        self._started = False

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frames(self, fps: float | None = None, start: float = 0.0) -> Iterator[Frame]:
        """Decode frames, keeping those selected by the analysis rate.

        ``start`` seeks to the keyframe before that time and skips forward.
        Frame indices count decoded frames from the first frame of the file;
        after a seek they are derived from the timestamp (exact for constant
        frame rate streams).
        """
        rate = AnalysisRate(fps)
        stream = self._stream
        tb = float(stream.time_base) if stream.time_base else 1.0 / self.info.fps
        start_pts = stream.start_time or 0
        index = 0
        last_t = -1.0
        if start > 0 or self._started:
            # A second pass must rewind: the demuxer stands where the last one stopped.
            self._container.seek(int(start / tb) + start_pts, stream=stream, backward=True)
        self._started = True
        decoded = 0
        self.decoded = 0
        self.last_t = None
        try:
            for packet in self._container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as exc:
                    # A damaged packet inside an otherwise good file: note it
                    # and go on, as a player would.
                    self.errors.append(f"bad packet at {packet.pts}: {_reason(exc)}")
                    if len(self.errors) > 50 and decoded == 0:
                        raise SourceError(f"{self.path}: no decodable frames (corrupt video)") from None
                    continue
                for frame in frames:
                    decoded += 1
                    self.decoded = decoded
                    if frame.pts is not None:
                        t = (frame.pts - start_pts) * tb
                    else:
                        t = last_t + 1.0 / self.info.fps if last_t >= 0 else 0.0
                    # Timestamps must increase for tracking and storage;
                    # broken ones are nudged rather than trusted.
                    if t <= last_t:
                        t = last_t + 1e-3
                    last_t = t
                    self.last_t = t
                    if start > 0:
                        if t + 1e-6 < start:
                            continue
                        index = round(t * self.info.fps)
                    index += 1
                    if rate.take(t):
                        yield Frame(index, t, av_frame=frame)
        except av.error.FFmpegError as exc:
            if decoded == 0:
                raise SourceError(f"{self.path}: cannot decode video ({_reason(exc)})") from None
            self.errors.append(f"decoding stopped after frame {decoded}: {_reason(exc)}")
        if decoded == 0:
            raise SourceError(f"{self.path}: no decodable frames (truncated or corrupt video)")

    def frame_at(self, t: float) -> Frame:
        """The first frame at or after ``t`` seconds."""
        for frame in self.frames(None, start=t):
            return frame
        raise SourceError(f"{self.path}: no frame at {t:.3f}s")


def _recorded_at(container: av.container.InputContainer, path: Path, duration: float | None) -> datetime:
    tag = container.metadata.get("creation_time")
    if tag:
        try:
            value = datetime.fromisoformat(tag.replace("Z", "+00:00"))
            # Muxers write 1970 or 1904 when they had no clock: not a real time.
            if value.year >= 2000:
                return value if value.tzinfo else value.replace(tzinfo=UTC)
        except ValueError:
            pass
    end = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return end - timedelta(seconds=duration or 0.0)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip().splitlines()[0] if text else type(exc).__name__
