"""The detector's output: boxes, scores and camsight class labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PERSON = "person"
VEHICLES = ("bicycle", "car", "motorcycle", "bus", "truck")
CARRIED = ("backpack", "handbag", "suitcase", "umbrella")
#: Every class camsight detects; a detector reports nothing else.
CLASSES: tuple[str, ...] = (PERSON, *VEHICLES, *CARRIED)
#: Detectors keep weak boxes too: the tracker starts tracks only from
#: confident ones but uses weak ones to keep a partly hidden object's track
#: alive (ByteTrack's two-stage association).
DEFAULT_CONFIDENCE = 0.1
#: Person boxes from this confidence up to the detector's floor are kept apart, in
#: :attr:`Detections.faint`: too weak to start or extend a track in the usual way, they serve
#: only the tracker's second look at where a person was lost (someone falling or lying down is
#: what a detector sees this weakly; see ``tracking.second_look``).
FAINT_CONFIDENCE = 0.03


@dataclass(frozen=True)
class Detections:
    """Boxes found in one frame.

    ``xyxy`` is an (N, 4) float32 array in pixels of the frame the detector
    was given; ``labels`` holds a class name from :data:`CLASSES` per box.
    ``faint``: person boxes below the detector's floor (down to :data:`FAINT_CONFIDENCE`),
    when the detector keeps them; selections (:meth:`select`, :meth:`of`) leave them out.

    >>> d = Detections.empty()
    >>> len(d)
    0
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    labels: tuple[str, ...] = field(default_factory=tuple)
    faint: Detections | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.xyxy.shape != (n, 4) or self.confidence.shape != (n,):
            raise ValueError(
                f"inconsistent detections: xyxy {self.xyxy.shape}, "
                f"confidence {self.confidence.shape}, {n} labels"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), ())

    def select(self, mask: np.ndarray) -> Detections:
        """Keep the boxes where ``mask`` is true."""
        idx = np.flatnonzero(mask)
        return Detections(self.xyxy[idx], self.confidence[idx], tuple(self.labels[i] for i in idx))

    def of(self, *labels: str) -> Detections:
        """Keep the boxes whose label is one of ``labels``."""
        wanted = set(labels)
        return self.select(np.array([lab in wanted for lab in self.labels], bool))
