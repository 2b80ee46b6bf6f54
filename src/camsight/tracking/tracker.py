"""Multi-class tracking on top of BoT-SORT from the ``trackers`` package.

BoT-SORT matches boxes by overlap; people who cross each other then swap
identities. :class:`AppearanceBoTSORT` keeps the maintained implementation
and only weights its overlap similarity by how alike the colours of the
track and the detection are (``iou * appearance ** weight``).

A person and the bicycle they walk would also swap if tracked together, so
each class group gets its own tracker, and a track's class is the majority
of its detections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import supervision as sv
from trackers import BoTSORTTracker

from camsight.tracking.appearance import SIZE, descriptors, normalise
from camsight.vision.detections import CARRIED, PERSON, Detections

#: Classes tracked together; a track never mixes groups.
GROUPS: dict[str, tuple[str, ...]] = {
    "person": (PERSON,),
    "vehicle": ("car", "motorcycle", "bus", "truck"),
    "bicycle": ("bicycle",),
    "carried": CARRIED,
}
#: Detections at least this confident get a colour descriptor.
DESCRIBE_MIN = 0.3
DEFAULT_ACTIVATION = {"person": 0.6, "vehicle": 0.3, "bicycle": 0.4, "carried": 0.4}
#: Carried objects are too small for colour histograms to tell them apart.
_NO_APPEARANCE = {"carried"}


@dataclass(frozen=True)
class TrackerSettings:
    """Tracker tuning.

    ``lost_seconds``: how long an unseen track may be recovered;
    ``activation``: per class group, the detection confidence that starts a
    track (and splits BoT-SORT's high/low association stages) — vehicles seen
    from above score lower than people seen from the side; ``min_hits``:
    detections before a track is confirmed; ``appearance_weight``: exponent
    of the colour similarity in the association score (0 disables it);
    ``appearance_memory``: how slowly a track's colours follow new boxes.
    """

    lost_seconds: float = 2.0
    activation: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_ACTIVATION))
    min_hits: int = 2
    appearance_weight: float = 2.0
    appearance_memory: float = 0.8
    #: BoT-SORT's first-stage association threshold on the fused similarity;
    #: low, because at a few frames a second people move far between frames.
    min_similarity: float = 0.2


class AppearanceBoTSORT(BoTSORTTracker):
    """BoT-SORT whose association similarity also weighs colour appearance."""

    # The base class validates tuning search spaces against __init__; this
    # subclass is not tuned by that machinery.
    search_space: ClassVar[dict[str, dict]] = {}

    def __init__(self, *, appearance_weight: float, appearance_memory: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.appearance_weight = appearance_weight
        self.appearance_memory = appearance_memory
        self._frame_features: dict[bytes, np.ndarray] = {}

    def update_with_features(
        self, detections: sv.Detections, features: np.ndarray | None, timestamp: float
    ) -> sv.Detections:
        """Like ``update``, with one appearance vector per detection (or None)."""
        use = features is not None and self.appearance_weight > 0 and len(detections) > 0
        self._frame_features = (
            {detections.xyxy[i].tobytes(): features[i] for i in range(len(detections)) if features[i].any()}
            if use and features is not None
            else {}
        )
        result = super().update(detections, timestamp=timestamp)
        if use:
            assert features is not None
            for track in self.tracks:
                if track.time_since_update != 0:
                    continue
                # The track was just updated with one of these boxes; its new
                # state sits on that box.
                state = track.get_state_bbox()
                j = int(np.abs(detections.xyxy - state).sum(axis=1).argmin())
                if not features[j].any():
                    continue  # matched a weak, undescribed box
                old = getattr(track, "camsight_appearance", None)
                m = self.appearance_memory
                track.camsight_appearance = (
                    features[j] if old is None else normalise(m * old + (1 - m) * features[j])
                )
        self._frame_features = {}
        return result

    def _get_iou_matrix(
        self, tracklets: list, detections: np.ndarray, tracklet_boxes_by_id: dict[int, np.ndarray]
    ) -> np.ndarray:
        iou = super()._get_iou_matrix(tracklets, detections, tracklet_boxes_by_id)
        if not self._frame_features or iou.size == 0:
            return iou
        det = [self._frame_features.get(b.tobytes()) for b in detections]
        described = np.array([d is not None for d in det])
        if not described.any():
            return iou
        det_features = np.stack([d for d in det if d is not None])
        # Boxes without a descriptor (weak detections) are judged on overlap alone.
        similarity = np.ones_like(iou)
        for i, track in enumerate(tracklets):
            feature = getattr(track, "camsight_appearance", None)
            if feature is not None:
                similarity[i, described] = np.clip(det_features @ feature, 0, 1)
        return iou * similarity**self.appearance_weight


@dataclass(frozen=True, slots=True)
class TrackedBox:
    """A detection that belongs to a confirmed track in this frame."""

    key: tuple[str, int]
    label: str
    xyxy: tuple[float, float, float, float]
    confidence: float
    appearance: np.ndarray | None = None


class MultiClassTracker:
    """One appearance-aware BoT-SORT per class group.

    >>> tracker = MultiClassTracker(fps=5)
    >>> tracker.update(Detections.empty(), np.zeros((10, 10, 3), np.uint8), t=0.0)
    []
    """

    def __init__(self, fps: float, settings: TrackerSettings | None = None) -> None:
        self.settings = s = settings or TrackerSettings()
        self._trackers = {
            group: AppearanceBoTSORT(
                # trackers counts its buffer in 30 fps frames.
                lost_track_buffer=max(1, round(s.lost_seconds * 30)),
                frame_rate=fps,
                track_activation_threshold=s.activation.get(group, DEFAULT_ACTIVATION[group]),
                high_conf_det_threshold=s.activation.get(group, DEFAULT_ACTIVATION[group]),
                minimum_consecutive_frames=s.min_hits,
                minimum_iou_threshold_first_assoc=s.min_similarity,
                enable_cmc=False,  # fixed cameras: no camera motion to compensate
                appearance_weight=0.0 if group in _NO_APPEARANCE else s.appearance_weight,
                appearance_memory=s.appearance_memory,
            )
            for group in GROUPS
        }
        self._group_of = {label: g for g, labels in GROUPS.items() for label in labels}

    def update(self, detections: Detections, image: np.ndarray, t: float) -> list[TrackedBox]:
        """Feed one analysed frame's detections; get the boxes of confirmed tracks."""
        out: list[TrackedBox] = []
        groups = np.array([self._group_of[lab] for lab in detections.labels], dtype=object)
        for group, tracker in self._trackers.items():
            mask = groups == group if len(groups) else np.zeros(0, bool)
            sub = detections.select(mask)
            if len(sub) == 0 and not tracker.tracks:
                continue
            xyxy = sub.xyxy.astype(np.float32).reshape(-1, 4)
            features = None
            if group not in _NO_APPEARANCE:
                # Weak boxes only ever extend a track on overlap: describing
                # them would cost as much as all the others together.
                strong = sub.confidence >= DESCRIBE_MIN
                features = np.zeros((len(sub), SIZE), np.float32)
                features[strong] = descriptors(image, xyxy[strong])
            sv_dets = sv.Detections(
                xyxy=xyxy,
                confidence=sub.confidence.astype(np.float32),
                class_id=np.zeros(len(sub), int),
                data={"label": np.array(sub.labels, dtype=object), "row": np.arange(len(sub))},
            )
            result = tracker.update_with_features(sv_dets, features, t)
            for i, tid in enumerate(result.tracker_id):
                if tid < 0:
                    continue
                row = int(result.data["row"][i])
                x1, y1, x2, y2 = (float(v) for v in result.xyxy[i])
                out.append(
                    TrackedBox(
                        key=(group, int(tid)),
                        label=str(result.data["label"][i]),
                        xyxy=(x1, y1, x2, y2),
                        confidence=float(result.confidence[i]),
                        appearance=None if features is None or not features[row].any() else features[row],
                    )
                )
        return out
