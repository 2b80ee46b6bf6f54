"""Multi-class tracking on top of ByteTrack from the ``trackers`` package.

ByteTrack matches boxes by overlap alone, so a person and the bicycle they
walk would swap identities if tracked together. Each class group gets its
own tracker instead, and a track's class is the majority of its detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from camsight.vision.detections import CARRIED, PERSON, Detections

#: Classes tracked together; a track never mixes groups.
GROUPS: dict[str, tuple[str, ...]] = {
    "person": (PERSON,),
    "vehicle": ("car", "motorcycle", "bus", "truck"),
    "bicycle": ("bicycle",),
    "carried": CARRIED,
}


@dataclass(frozen=True)
class TrackerSettings:
    """ByteTrack tuning; ``lost_seconds`` is how long a track survives unseen."""

    lost_seconds: float = 2.0
    activation: float = 0.45
    high_confidence: float = 0.5
    min_iou: float = 0.1
    min_hits: int = 2


@dataclass(frozen=True, slots=True)
class TrackedBox:
    """A detection that belongs to a confirmed track in this frame."""

    key: tuple[str, int]
    label: str
    xyxy: tuple[float, float, float, float]
    confidence: float


class MultiClassTracker:
    """One ByteTrack per class group.

    >>> tracker = MultiClassTracker(fps=5)
    >>> tracker.update(Detections.empty(), t=0.0)
    []
    """

    def __init__(self, fps: float, settings: TrackerSettings | None = None) -> None:
        self.settings = s = settings or TrackerSettings()
        self._trackers = {
            group: ByteTrackTracker(
                # trackers counts its buffer in 30 fps frames.
                lost_track_buffer=max(1, round(s.lost_seconds * 30)),
                frame_rate=fps,
                track_activation_threshold=s.activation,
                minimum_consecutive_frames=s.min_hits,
                minimum_iou_threshold=s.min_iou,
                high_conf_det_threshold=s.high_confidence,
            )
            for group in GROUPS
        }
        self._group_of = {label: g for g, labels in GROUPS.items() for label in labels}

    def update(self, detections: Detections, t: float) -> list[TrackedBox]:
        """Feed one analysed frame's detections; get the boxes of confirmed tracks."""
        out: list[TrackedBox] = []
        groups = np.array([self._group_of[lab] for lab in detections.labels], dtype=object)
        for group, tracker in self._trackers.items():
            mask = groups == group if len(groups) else np.zeros(0, bool)
            sub = detections.select(mask)
            sv_dets = sv.Detections(
                xyxy=sub.xyxy.astype(np.float32).reshape(-1, 4),
                confidence=sub.confidence.astype(np.float32),
                class_id=np.zeros(len(sub), int),
                data={"label": np.array(sub.labels, dtype=object)},
            )
            result = tracker.update(sv_dets, timestamp=t)
            if len(result) == 0:
                continue
            for i, tid in enumerate(result.tracker_id):
                if tid < 0:
                    continue
                x1, y1, x2, y2 = (float(v) for v in result.xyxy[i])
                out.append(
                    TrackedBox(
                        key=(group, int(tid)),
                        label=str(result.data["label"][i]),
                        xyxy=(x1, y1, x2, y2),
                        confidence=float(result.confidence[i]),
                    )
                )
        return out
