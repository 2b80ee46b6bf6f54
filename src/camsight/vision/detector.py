"""The detector interface and the factory that picks a backend."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from camsight.vision.detections import Detections

DetectorName = Literal["ssd", "yolox"]


class Detector(Protocol):
    """Finds camsight's classes in a BGR uint8 image (H, W, 3).

    ``parallel`` is how many ``detect`` calls may run at once from different
    threads (1 when the backend is not thread-safe).
    """

    name: str
    parallel: int

    def detect(self, image: np.ndarray) -> Detections: ...


def create_detector(
    name: DetectorName,
    model: Path | None = None,
    confidence: float | None = None,
) -> Detector:
    """Build a detector backend; ``model`` overrides where its weights are found.

    >>> det = create_detector("yolox", Path("../shared/models/yolox_nano.onnx"))  # doctest: +SKIP
    """
    if name == "ssd":
        from camsight.vision.ssd import SsdMobileNetDetector

        return SsdMobileNetDetector(model, confidence=confidence)
    if name == "yolox":
        from camsight.vision.yolox import YoloxDetector

        return YoloxDetector(model, confidence=confidence)
    raise ValueError(f"unknown detector {name!r}: choose 'ssd' or 'yolox'")
