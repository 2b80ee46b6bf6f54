"""A cheap motion gate that decides whether a frame needs the detector."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MotionSettings:
    """Tuning of the motion gate.

    ``pixel_threshold`` is the grey-level change that counts as motion for a
    pixel of the downscaled, blurred frame; ``area_fraction`` the share of
    such pixels that makes a frame "moving"; ``max_skip`` the longest time
    (seconds) the detector may be skipped, so slow changes are still seen.
    """

    width: int = 160
    pixel_threshold: int = 18
    area_fraction: float = 0.0015
    max_skip: float = 2.0


class MotionGate:
    """Compares each frame with the last one the detector saw.

    Comparing with the last *detected* frame rather than the previous frame
    means slow motion accumulates until it is large enough to matter, and a
    scene that is truly still costs one resize and one subtraction a frame.

    >>> gate = MotionGate()
    >>> still = np.zeros((120, 160, 3), np.uint8)
    >>> gate.check(still, 0.0), gate.check(still, 0.2)
    (True, False)
    """

    def __init__(self, settings: MotionSettings | None = None) -> None:
        self.settings = settings or MotionSettings()
        self._reference: np.ndarray | None = None
        self._reference_t = 0.0
        self.last_fraction = 0.0

    def _small(self, image: np.ndarray) -> np.ndarray:
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        h, w = grey.shape
        # A whole-number reduction keeps OpenCV's area resize on its fast path.
        factor = max(1, w // self.settings.width)
        small = cv2.resize(grey, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(small, (5, 5), 0)

    def check(self, image: np.ndarray, t: float) -> bool:
        """True when ``image`` (BGR or grey, seen at ``t`` seconds) should go to the detector."""
        small = self._small(image)
        ref = self._reference
        if ref is None or ref.shape != small.shape or t - self._reference_t >= self.settings.max_skip:
            self.last_fraction = 1.0
            self._accept(small, t)
            return True
        diff = cv2.absdiff(small, ref)
        self.last_fraction = float(np.count_nonzero(diff > self.settings.pixel_threshold)) / diff.size
        if self.last_fraction >= self.settings.area_fraction:
            self._accept(small, t)
            return True
        return False

    def _accept(self, small: np.ndarray, t: float) -> None:
        self._reference = small
        self._reference_t = t
