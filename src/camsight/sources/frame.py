"""The unit that flows from a source into analysis."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


class Frame:
    """One decoded frame.

    ``index`` is 1-based in decode order (frame 1 is the first decoded
    frame, as in MOT files); ``t`` is the presentation time in seconds from
    the start of the stream. The BGR ``image`` is converted from the decoder's
    frame only when first asked for: the motion gate needs just the grey
    (luma) plane, so frames it rejects never pay for colour conversion.

    >>> f = Frame(1, 0.0, np.zeros((4, 6, 3), np.uint8))
    >>> f.size, f.gray.shape
    ((6, 4), (4, 6))
    """

    __slots__ = ("_av", "_gray", "_image", "index", "t")

    def __init__(
        self, index: int, t: float, image: np.ndarray | None = None, *, av_frame: Any = None
    ) -> None:
        if image is None and av_frame is None:
            raise ValueError("a Frame needs an image or a decoded av frame")
        self.index = index
        self.t = t
        self._image = image
        self._av = av_frame
        self._gray: np.ndarray | None = None

    @property
    def image(self) -> np.ndarray:
        """The picture as BGR uint8 (H, W, 3)."""
        if self._image is None:
            self._image = self._av.to_ndarray(format="bgr24")
        return self._image

    @property
    def gray(self) -> np.ndarray:
        """The picture's brightness as uint8 (H, W); free for YUV video."""
        if self._gray is None:
            av_frame = self._av
            if (
                self._image is None
                and av_frame is not None
                and av_frame.format.name.startswith(("yuv", "yuvj"))
            ):
                plane = av_frame.planes[0]
                rows = np.frombuffer(plane, np.uint8).reshape(av_frame.height, plane.line_size)
                self._gray = rows[:, : av_frame.width]
            else:
                self._gray = cv2.cvtColor(self.image, cv2.COLOR_BGR2GRAY)
        return self._gray

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        if self._image is not None:
            return int(self._image.shape[1]), int(self._image.shape[0])
        return int(self._av.width), int(self._av.height)

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, t={self.t:.3f}, size={self.size})"
