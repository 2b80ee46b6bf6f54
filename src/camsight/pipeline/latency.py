"""A camera worker's detector latency, counted where it happens and read by the metrics.

A camera runs in its own process, so the Prometheus registry of ``camsight run``
cannot be told about each detection. The worker keeps a fixed-bucket histogram
here (a bisect and an addition per detection, next to ~16 ms of inference) and
writes :meth:`LatencyHistogram.snapshot` into its health row with the rest; the
metrics collector turns that into ``camsight_detector_latency_seconds``.

>>> h = LatencyHistogram((0.01, 0.1))
>>> for seconds in (0.005, 0.05, 0.5):
...     h.observe(seconds)
>>> h.snapshot()
{'le': [0.01, 0.1], 'counts': [1, 1, 1], 'sum': 0.555}
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from camsight.vision.detections import Detections
from camsight.vision.detector import Detector

#: Upper bounds (seconds) of the detector latency buckets: YOLOX-nano takes ~16 ms on one core.
DETECT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class LatencyHistogram:
    """Counts of durations per bucket (not cumulative; the last count is above every bound), and
    their sum. Thread-safe: several detector threads (or API requests) may observe at once.

    The metrics collector exports it; unlike ``prometheus_client.Histogram`` it works across
    processes (a snapshot is plain data) and adds no ``_created`` series.
    """

    def __init__(self, bounds: Sequence[float] = DETECT_BUCKETS) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError("bucket bounds must be increasing")
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """Count one duration (a bound is inclusive, as Prometheus' ``le``)."""
        i = bisect.bisect_left(self.bounds, seconds)
        with self._lock:
            self._counts[i] += 1
            self._sum += seconds

    @contextmanager
    def measure(self) -> Iterator[None]:
        """Count how long the ``with`` block takes (also when it raises)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - start)

    def snapshot(self) -> dict[str, Any]:
        """The histogram as JSON-ready data: bucket bounds, per-bucket counts, sum of durations."""
        with self._lock:
            return {"le": list(self.bounds), "counts": list(self._counts), "sum": round(self._sum, 6)}


class TimedDetector:
    """A :class:`~camsight.vision.detector.Detector` that times every ``detect`` call into a histogram."""

    def __init__(self, detector: Detector, histogram: LatencyHistogram) -> None:
        self.detector = detector
        self.histogram = histogram
        self.name = detector.name
        self.parallel = detector.parallel

    def detect(self, image: np.ndarray) -> Detections:
        """The wrapped detector's result; its duration is counted even when it raises."""
        start = time.perf_counter()
        try:
            return self.detector.detect(image)
        finally:
            self.histogram.observe(time.perf_counter() - start)


def cumulative_buckets(snapshot: dict[str, Any]) -> tuple[list[tuple[str, float]], float, int] | None:
    """Prometheus' view of a :meth:`LatencyHistogram.snapshot`: cumulative ``(le, count)`` pairs
    ending with ``+Inf``, the sum, and the count; None when the data is not such a snapshot (a
    health row written by an older worker).

    >>> cumulative_buckets({"le": [0.01, 0.1], "counts": [1, 1, 1], "sum": 0.555})
    ([('0.01', 1.0), ('0.1', 2.0), ('+Inf', 3.0)], 0.555, 3)
    """
    try:
        bounds = [float(b) for b in snapshot["le"]]
        counts = [int(c) for c in snapshot["counts"]]
        total_sum = float(snapshot["sum"])
    except (KeyError, TypeError, ValueError):
        return None
    if len(counts) != len(bounds) + 1:
        return None
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip([*bounds, float("inf")], counts, strict=True):
        running += count
        buckets.append(("+Inf" if bound == float("inf") else f"{bound:g}", float(running)))
    return buckets, total_sum, running
