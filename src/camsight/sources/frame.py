"""The unit that flows from a source into analysis."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame.

    ``index`` is 1-based in decode order (frame 1 is the first decoded
    frame, as in MOT files); ``t`` is the presentation time in seconds from
    the start of the stream.
    """

    index: int
    t: float
    image: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])
