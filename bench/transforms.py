"""Behaviour clips made from the shared footage by editing time and space (bench/scenarios/README.md).

Nobody in the shared clips runs, drives erratically or wrong-way, or walks
where nobody walks. Edited copies make those situations out of real
footage, with labels that follow from the edit:

* played 3x fast, a stretch of walking is running (:func:`running_clip`);
* a car whose frame is held for seconds stops dead (:func:`stopping_clip`);
* played backwards or upside down, the road's cars drive against their lanes;
* mirrored, people walk where this camera never sees anyone (:func:`edit` with ``image``).

An edit is a list of source frame numbers (0-based), played in that order at
the source's rate, and an optional image operation. Frames are decoded once,
in order, and only those still needed later are kept, so long clips fit in
memory.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from camsight.media.writer import write_video


def source_fps(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.average_rate or stream.guessed_rate or 25)


def _played(path: Path, order: list[int]) -> Iterator[np.ndarray]:
    """The frames of ``path`` in ``order`` (frame numbers, 0-based, repeats and going back allowed)."""
    uses = collections.Counter(order)
    kept: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        decoded = enumerate(f.to_ndarray(format="bgr24") for f in container.decode(video=0))
        for want in order:
            while want not in kept:
                i, image = next(decoded)
                if uses[i]:
                    kept[i] = image
            image = kept[want]
            uses[want] -= 1
            if not uses[want]:
                del kept[want]
            yield image


def edit(
    src: Path, dst: Path, order: list[int], image: Callable[[np.ndarray], np.ndarray] | None = None
) -> Path:
    """Write ``src``'s frames in ``order`` (0-based numbers), each through ``image``, at ``src``'s rate."""
    frames = _played(src, order)
    if image is not None:
        frames = (image(f) for f in frames)
    write_video(dst, frames, source_fps(src))
    return dst


def running_clip(src: Path, dst: Path, first: int, last: int, factor: int = 3) -> tuple[Path, list[int]]:
    """``src`` with frames ``first``-``last`` (0-based, inclusive) played ``factor`` times fast.

    Returns the clip and, for each of its frames, the source frame it shows.
    """
    count = _frame_count(src)
    order = [*range(first), *range(first, last + 1, factor), *range(last + 1, count)]
    return edit(src, dst, order), order


def stopping_clip(src: Path, dst: Path, holds: dict[int, float], factor: int = 1) -> tuple[Path, list[int]]:
    """``src`` played ``factor`` times fast, each frame in ``holds`` (0-based, kept by the speed-up)
    shown for that many seconds: everything stops dead there.

    Returns the clip and, for each of its frames, the source frame it shows.
    """
    fps = source_fps(src)
    order: list[int] = []
    for i in range(0, _frame_count(src), factor):
        order += [i] * (1 + round(holds.get(i, 0.0) * fps))
    missing = set(holds) - set(order)
    if missing:
        raise ValueError(f"held frames {sorted(missing)} are dropped by the {factor}x speed-up")
    return edit(src, dst, order), order


def mirrored(image: np.ndarray) -> np.ndarray:
    """Left and right swapped."""
    return cv2.flip(image, 1)


def upside_down(image: np.ndarray) -> np.ndarray:
    """Top and bottom swapped (seen from straight above: the road's directions reversed)."""
    return cv2.flip(image, 0)


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))
