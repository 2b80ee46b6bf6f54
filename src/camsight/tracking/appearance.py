"""A colour appearance descriptor for boxes: cheap, explainable re-identification.

Two HSV histograms, of the upper and lower body (or the top and bottom of a
vehicle), square-rooted and L2-normalised so that a dot product is their
Bhattacharyya coefficient. Used by the tracker to keep identities apart when
people cross, and stored per track for "more like this".
"""

from __future__ import annotations

import cv2
import numpy as np

BINS = (8, 3, 3)
REGIONS = ((0.15, 0.5), (0.5, 0.9))
SIZE = int(np.prod(BINS)) * len(REGIONS)


def descriptor(image: np.ndarray, box: tuple[float, float, float, float] | np.ndarray) -> np.ndarray:
    """Appearance vector (float32, unit length) of the object in ``box``.

    The sides of the box are trimmed because they hold mostly background.

    >>> img = np.zeros((100, 100, 3), np.uint8); img[:, :, 2] = 255
    >>> v = descriptor(img, (10, 10, 60, 90))
    >>> v.shape, round(float(v @ v), 3)
    ((144,), 1.0)
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    xa = int(max(0, x1 + 0.15 * w))
    xb = int(min(image.shape[1], x2 - 0.15 * w))
    parts = []
    for top, bottom in REGIONS:
        ya = int(max(0, y1 + top * h))
        yb = int(min(image.shape[0], y1 + bottom * h))
        patch = image[ya:yb, xa:xb]
        if patch.size == 0:
            parts.append(np.zeros(int(np.prod(BINS)), np.float32))
            continue
        hsv = cv2.cvtColor(patch, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, list(BINS), [0, 180, 0, 256, 0, 256]).ravel()
        parts.append(hist / max(float(hist.sum()), 1.0))
    vec = np.sqrt(np.concatenate(parts)).astype(np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


def descriptors(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Descriptors of several boxes, shape (N, SIZE)."""
    if len(boxes) == 0:
        return np.zeros((0, SIZE), np.float32)
    return np.stack([descriptor(image, b) for b in boxes])


def normalise(vec: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return (vec / norm).astype(np.float32) if norm > 0 else vec.astype(np.float32)
