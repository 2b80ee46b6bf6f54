"""Writing BGR frames to a video file with PyAV."""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from camsight.errors import SourceError


def write_video(
    path: Path, frames: Iterable[np.ndarray], fps: float, *, codec: str = "libx264", crf: int = 20
) -> int:
    """Encode BGR frames (all the same size) into ``path``; returns the number written.

    Written to a temporary name and moved into place, so a failure never
    leaves a half-written video behind.

    >>> write_video(Path("/tmp/out.mp4"), [np.zeros((48, 64, 3), np.uint8)] * 10, fps=10)  # doctest: +SKIP
    10
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part{path.suffix}")
    count = 0
    rate = Fraction(fps).limit_denominator(1000)
    try:
        with av.open(str(tmp), "w") as container:
            stream = None
            for image in frames:
                if stream is None:
                    h, w = image.shape[:2]
                    stream = container.add_stream(codec, rate=rate)
                    stream.width, stream.height = w - w % 2, h - h % 2
                    stream.pix_fmt = "yuv420p"
                    if codec == "libx264":
                        stream.options = {"crf": str(crf), "preset": "veryfast"}
                frame = av.VideoFrame.from_ndarray(
                    np.ascontiguousarray(image[: stream.height, : stream.width]), format="bgr24"
                )
                container.mux(stream.encode(frame))
                count += 1
            if stream is not None:
                container.mux(stream.encode())
        if count == 0:
            raise SourceError(f"{path}: no frames to write")
        os.replace(tmp, path)
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot write {path}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return count


def read_frames(path: Path) -> tuple[list[np.ndarray], float]:
    """Every frame of a (short) video as BGR arrays, with its frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        return [f.to_ndarray(format="bgr24") for f in container.decode(stream)], fps


def reversed_copy(src: Path, dst: Path) -> Path:
    """``src`` played backwards (for tests and evaluations of direction rules)."""
    frames, fps = read_frames(src)
    write_video(dst, reversed(frames), fps)
    return dst
