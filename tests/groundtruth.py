"""Which labelled person a search hit shows, as bench/search_eval.py scores it."""

from __future__ import annotations

import numpy as np


def person_of(hit: dict, gt: np.ndarray) -> int | None:
    """The labelled person a hit's box overlaps (IoU >= 0.3) in its frame, as bench/search_eval.py does."""
    rows = gt[gt[:, 0] == hit["frame"]]
    if not len(rows) or not hit.get("box"):
        return None
    a = np.array(hit["box"], float)
    b = np.column_stack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]])
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    overlaps = inter / np.maximum(union, 1e-9)
    best = int(overlaps.argmax())
    return int(rows[best, 1]) if overlaps[best] >= 0.3 else None
