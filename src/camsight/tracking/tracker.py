"""Multi-class tracking on top of BoT-SORT from the ``trackers`` package.

BoT-SORT matches boxes by overlap; people who cross each other then swap
identities. :class:`AppearanceBoTSORT` keeps the maintained implementation
and only weights its overlap similarity by how alike the colours of the
track and the detection are (``iou * appearance ** weight``).

A person and the bicycle they walk would also swap if tracked together, so
classes that can share a box in the picture (a person and what they carry or
push) get separate trackers. Classes that cannot are tracked together,
whatever the detector calls the object from frame to frame: a car seen from
above flickers between car, bus, truck and even suitcase, and is still one
object. The track's class is decided later, by its detections' votes.

At the picture's edge a vehicle is only partly seen: its predicted box is
clipped to the picture before it is matched, and a box cut by the edge is
matched on overlap alone (its colours are a part's, not the vehicle's), so a
car driving in or out stays one track.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import supervision as sv
from trackers import BoTSORTTracker
from trackers.utils.iou import BIoU

from camsight.tracking.appearance import SIZE, descriptors, normalise
from camsight.tracking.second_look import (
    RECOVER_IOU,
    LostPerson,
    greedy_pairs,
    match_lost,
    wide,
)
from camsight.vision.detections import CARRIED, PERSON, Detections

#: Class groups, each with its own activation threshold (``tracking.activation``).
GROUPS: dict[str, tuple[str, ...]] = {
    "person": (PERSON,),
    "vehicle": ("car", "motorcycle", "bus", "truck"),
    "bicycle": ("bicycle",),
    "carried": CARRIED,
}
#: Class groups associated by one tracker; a track never mixes trackers. A bag
#: and a vehicle never share a box, so boxes the detector labels either way are
#: the same object; a person and their bag or bicycle do share one.
ASSOCIATION: dict[str, tuple[str, ...]] = {
    "person": ("person",),
    "bicycle": ("bicycle",),
    "object": ("vehicle", "carried"),
}
#: Detections at least this confident get a colour descriptor.
DESCRIBE_MIN = 0.3
DEFAULT_ACTIVATION = {"person": 0.6, "vehicle": 0.3, "bicycle": 0.4, "carried": 0.4}
#: Carried objects are too small for colour histograms to tell them apart.
_NO_APPEARANCE = {"carried"}
#: Overlap above which two boxes of one association group are one object. The
#: detectors already suppress same-class boxes at this overlap (their NMS); this
#: extends it across the classes a tracker associates, so a van seen as both
#: car and truck in one frame is one box, not two tracks.
GROUP_NMS_IOU = 0.45
#: Boxes shorter than this (pixels) are associated by buffered IoU (see ``_get_iou_matrix``).
SMALL_HEIGHT = 56.0
_BUFFERED = BIoU(buffer_ratio=0.5)
#: Classes a person rides or pushes: an overlapping person and vehicle box corroborate each other.
RIDDEN = ("bicycle", "motorcycle")
#: Share of the person box the vehicle box must cover, and the prior that such a pair is a rider.
RIDER_OVERLAP = 0.2
RIDER_PRIOR = 0.3
#: A box this close to the picture's edge (pixels) is cut by it.
EDGE_PIXELS = 2.0
#: Tracks unseen for longer than this (seconds) are not expected anywhere any more (see
#: :meth:`MultiClassTracker.expected`): their predicted boxes drift away from the object.
EXPECT_SECONDS = 1.0


@dataclass(frozen=True)
class TrackerSettings:
    """Tracker tuning.

    ``lost_seconds``: how long an unseen track may be recovered;
    ``activation``: per class group, the detection confidence that starts a
    track (and splits BoT-SORT's high/low association stages) — vehicles seen
    from above score lower than people seen from the side; ``min_hits``:
    the fewest detections in a row before a track is confirmed — its earlier
    boxes are reported then, so a real track loses nothing and flickering false
    positives shorter than this never become tracks; ``confirm_seconds``: how
    long those detections must also last, so confirmation means the same at
    any analysis rate (see :meth:`confirmation_hits`); ``appearance_weight``: exponent
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
    confirm_seconds: float = 0.25

    def confirmation_hits(self, fps: float) -> int:
        """Detections in a row that confirm a track at ``fps`` analysed frames a second.

        ``confirm_seconds`` of frames, never fewer than ``min_hits``: at 10 fps a track
        needs 3 hits (PETS09 at native rate: IDF1 0.77 -> 0.80, false starts in a crowd
        never become tracks), at 2-5 fps still 2, so a live camera analysing a few frames
        a second does not lose people who pass quickly.

        At high analysis rates it is capped at ``MAX_CONFIRM_HITS``: one missed detection
        drops a track not yet confirmed, so asking 7-8 hits in a row at 25-30 fps would lose
        short tracks of a detector that flickers.

        >>> [TrackerSettings().confirmation_hits(f) for f in (2, 5, 10, 25)]
        [2, 2, 3, 4]
        """
        # The tolerance keeps 0.3 s x 10 fps (3.0000000000000004 in floats) at 3 frames.
        frames = math.ceil(self.confirm_seconds * fps - 1e-6) if fps > 0 else 0
        return max(self.min_hits, min(frames, MAX_CONFIRM_HITS))


#: Most detections in a row that ``confirm_seconds`` may ask for (see ``confirmation_hits``).
MAX_CONFIRM_HITS = 4


class AppearanceBoTSORT(BoTSORTTracker):
    """BoT-SORT whose association similarity also weighs colour appearance."""

    # The base class validates tuning search spaces against __init__; this
    # subclass is not tuned by that machinery.
    search_space: ClassVar[dict[str, dict]] = {}

    def __init__(
        self,
        *,
        appearance_weight: float,
        appearance_memory: float,
        recover_lost: bool = False,
        edge_aware: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        #: Let weak, wide boxes continue lost tracks (people: see :meth:`_recover_lost`).
        self.recover_lost = recover_lost
        #: Clip predictions to the picture and match boxes cut by its edge on overlap alone
        #: (vehicles: see :meth:`_get_iou_matrix`).
        self.edge_aware = edge_aware
        self.appearance_weight = appearance_weight
        self.appearance_memory = appearance_memory
        self._frame_features: dict[bytes, np.ndarray] = {}
        #: This frame's boxes (as bytes) of people on or at a bicycle, and of those bicycles.
        self._frame_riders: set[bytes] = set()
        self._frame_activation: np.ndarray | None = None
        #: The analysed picture's (width, height), to clip predicted boxes to it.
        self._frame_size: tuple[int, int] | None = None
        #: For each track confirmed by the last update, its boxes from the
        #: frames before: tracker id -> [(timestamp, detection)].
        self.confirmed_history: dict[int, list[tuple[float, sv.Detections]]] = {}

    def update_with_features(
        self,
        detections: sv.Detections,
        features: np.ndarray | None,
        timestamp: float,
        activation: np.ndarray | None = None,
        riders: np.ndarray | None = None,
        frame_size: tuple[int, int] | None = None,
        faint: Detections | None = None,
    ) -> sv.Detections:
        """Like ``update``, with one appearance vector per detection (or None).

        ``activation``: per detection, the confidence it needs to start a track
        (default: the tracker's single threshold); ``riders``: which detections are a
        rider or what they ride (see :func:`corroborate_riders`); ``frame_size``: the
        picture's (width, height), to which an edge-aware tracker clips predicted boxes;
        ``faint``: person boxes below the detector's floor, for the second look at lost people
        (see :meth:`_second_look`).
        """
        self._frame_size = frame_size if self.edge_aware else None
        use = features is not None and self.appearance_weight > 0 and len(detections) > 0
        self._frame_features = (
            {detections.xyxy[i].tobytes(): features[i] for i in range(len(detections)) if features[i].any()}
            if use and features is not None
            else {}
        )
        self._frame_activation = activation
        self._frame_riders = (
            {detections.xyxy[i].tobytes() for i in np.flatnonzero(riders)} if riders is not None else set()
        )
        unconfirmed = {id(track) for track in self.tracks if track.tracker_id == -1}
        result = super().update(detections, timestamp=timestamp)
        self._frame_activation = None
        self._recover_lost(result)
        taken = self._second_look(result, faint, timestamp, frame_size)
        if taken and faint is not None:
            rows = np.array([j for j, _ in taken])
            found = sv.Detections(
                xyxy=faint.xyxy[rows].astype(np.float32),
                confidence=faint.confidence[rows].astype(np.float32),
                class_id=np.zeros(len(rows), int),
                tracker_id=np.array([tid for _, tid in taken], int),
                data={k: _faint_data(k, v, len(rows)) for k, v in detections.data.items()},
            )
            # The faint boxes that continued a track join the frame's boxes and its result.
            box = found[:]
            box.tracker_id = None
            detections = sv.Detections.merge([detections, box])
            result = sv.Detections.merge([result, found])
            if features is not None:
                features = np.concatenate(
                    [features, np.zeros((len(found), features.shape[1]), features.dtype)]
                )
        self.confirmed_history = {}
        for track in self.tracks:
            if track.time_since_update != 0:
                continue
            # The track was just updated with one of these boxes; its new
            # state sits on that box.
            state = track.get_state_bbox()
            j = int(np.abs(detections.xyxy - state).sum(axis=1).argmin())
            # Where it was last seen: a lost object that stopped (lying down) is still there.
            track.camsight_last_box = detections.xyxy[j]
            if not wide(detections.xyxy[j])[0]:
                # Upright: where a fall would start from (see tracking.second_look).
                track.camsight_upright = (detections.xyxy[j].copy(), timestamp)
            if detections.xyxy[j].tobytes() in self._frame_riders:
                track.camsight_rider = True
            if track.tracker_id == -1:
                # min_hits withholds a new track's first boxes; they are
                # reported when (if) it is confirmed.
                track.camsight_pending = [*getattr(track, "camsight_pending", []), (timestamp, detections[j])]
            elif id(track) in unconfirmed:
                self.confirmed_history[int(track.tracker_id)] = getattr(track, "camsight_pending", [])
                track.camsight_pending = []
            if not use:
                continue
            assert features is not None
            if not features[j].any():
                continue  # matched a weak, undescribed box
            if self._frame_size is not None and _cut_by_edge(detections.xyxy[j : j + 1], self._frame_size)[0]:
                continue  # part of the object: not its colours (see _get_iou_matrix)
            old = getattr(track, "camsight_appearance", None)
            m = self.appearance_memory
            track.camsight_appearance = (
                features[j] if old is None else normalise(m * old + (1 - m) * features[j])
            )
        self._frame_features = {}
        return result

    def _recover_lost(self, result: sv.Detections) -> None:
        """Let a weak box continue a confirmed track lost a few frames ago, where it was.

        BoT-SORT lets weak boxes extend only tracks matched in the previous frame; one
        missed frame and a lost track needs a confident box again. A person falling or
        lying down is seen weakly (wide, low boxes) and would be dropped: here a weak box
        that overlaps a lost track's predicted or last box by :data:`RECOVER_IOU` continues it.
        """
        if result.tracker_id is None or not len(result):
            return
        if not self.recover_lost:
            return
        free = np.flatnonzero((result.tracker_id == -1) & wide(result.xyxy))
        lost = [t for t in self.tracks if t.tracker_id != -1 and t.time_since_update >= 2]
        if not len(free) or not lost:
            return
        boxes = result.xyxy[free]
        iou = sv.box_iou_batch(np.stack([t.get_state_bbox() for t in lost]), boxes)
        last = [getattr(t, "camsight_last_box", None) for t in lost]
        if all(b is not None for b in last):
            # The prediction drifts on with the last velocity; someone who fell stays put.
            iou = np.maximum(iou, sv.box_iou_batch(np.stack(last), boxes))
        for i, j in greedy_pairs(iou, RECOVER_IOU):
            lost[i].update(result.xyxy[free[j]])
            result.tracker_id[free[j]] = lost[i].tracker_id

    def _second_look(
        self,
        result: sv.Detections,
        faint: Detections | None,
        timestamp: float,
        frame_size: tuple[int, int] | None,
    ) -> list[tuple[int, int]]:
        """Let a box nobody took, weak or faint, continue a person lost mid-picture who went down.

        See :mod:`camsight.tracking.second_look`. Weak boxes that continue a track get its
        id in ``result``; for the faint boxes that do, (row in ``faint``, tracker id) pairs
        are returned, to be added to it. Tracks this frame updated are the people seen; the
        others, confirmed and not yet dropped, are looked for.
        """
        if not self.recover_lost or result.tracker_id is None:
            return []
        lost = [
            t
            for t in self.tracks
            if t.tracker_id != -1
            and t.time_since_update >= 1
            and getattr(t, "camsight_last_box", None) is not None
        ]
        if not lost:
            return []
        free = np.flatnonzero(result.tracker_id == -1)
        faint = faint if faint is not None and len(faint) else None
        if not len(free) and faint is None:
            return []
        # Both always carry confidences: MultiClassTracker builds them.
        boxes = [result.xyxy[free], *([faint.xyxy] if faint is not None else [])]
        confidence = [result.confidence[free], *([faint.confidence] if faint is not None else [])]
        people = []
        for t in lost:
            up = getattr(t, "camsight_upright", None)
            since = float("inf") if up is None else timestamp - up[1]
            people.append(
                LostPerson(t.camsight_last_box, t.get_state_bbox(), None if up is None else up[0], since)
            )
        seen = [t.get_state_bbox() for t in self.tracks if t.tracker_id != -1 and t.time_since_update == 0]
        pairs = match_lost(
            people,
            np.concatenate(boxes),
            np.concatenate(confidence),
            np.array(seen).reshape(-1, 4),
            frame_size,
        )
        taken: list[tuple[int, int]] = []
        for i, j in pairs:
            if j < len(free):
                lost[i].update(result.xyxy[free[j]])
                result.tracker_id[free[j]] = lost[i].tracker_id
            else:
                assert faint is not None
                lost[i].update(faint.xyxy[j - len(free)])
                taken.append((j - len(free), int(lost[i].tracker_id)))
        return taken

    def _spawn_new_tracks(
        self,
        detection_boxes: np.ndarray,
        confidences: np.ndarray,
        unmatched_high_local: list[int],
        high_indices: np.ndarray,
        out_det_indices: list[int],
        out_tracker_ids: list[int],
        is_first_frame: bool = False,
    ) -> None:
        activation = self._frame_activation
        spawn = []
        for local in unmatched_high_local:
            g = int(high_indices[local])
            # One tracker serves classes with different activation thresholds: a
            # box too weak for its own class is reported untracked, as the base
            # class does for a box under its single threshold.
            if activation is None or confidences[g] >= activation[g]:
                spawn.append(local)
            else:
                out_det_indices.append(g)
                out_tracker_ids.append(-1)
        super()._spawn_new_tracks(
            detection_boxes,
            confidences,
            spawn,
            high_indices,
            out_det_indices,
            out_tracker_ids,
            is_first_frame=is_first_frame,
        )

    def _get_iou_matrix(
        self, tracklets: list, detections: np.ndarray, tracklet_boxes_by_id: dict[int, np.ndarray]
    ) -> np.ndarray:
        if self._frame_size is not None and tracklets:
            # An object driving out of the picture is predicted partly beyond its edge, where
            # the detector's box is cut off: only the part in the picture can overlap a box.
            # (Seen from above a car leaving is a box shrinking against the edge: unclipped,
            # its prediction overlaps that box too little and the car becomes a new track.)
            w, h = self._frame_size
            tracklet_boxes_by_id = {
                key: np.clip(box, 0, [w, h, w, h]) for key, box in tracklet_boxes_by_id.items()
            }
        iou = super()._get_iou_matrix(tracklets, detections, tracklet_boxes_by_id)
        if iou.size == 0:
            return iou
        # A small rider moves its own size between analysed frames (a cyclist 30 px tall at
        # 5 fps): plain overlap is near zero, and its colours are a few pixels. Pairs of a
        # rider's track or box and a small box are matched by buffered IoU (boxes widened by
        # half their size), on overlap alone. Only riders: for small walkers in a crowd
        # (PETS09) that cost IDF1 0.77 -> 0.71.
        small = (detections[:, 3] - detections[:, 1]) < SMALL_HEIGHT
        rider_box = np.array([b.tobytes() in self._frame_riders for b in detections], bool)
        rider_track = np.array([getattr(t, "camsight_rider", False) for t in tracklets], bool)
        loose = small[None, :] & (rider_box[None, :] | rider_track[:, None])
        if loose.any():
            tracks = np.stack([tracklet_boxes_by_id[id(t)] for t in tracklets])
            buffered = _BUFFERED.compute(tracks, detections)
            iou = np.where(loose, np.maximum(iou, buffered), iou)
        if not self._frame_features:
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
        similarity[loose] = 1.0
        if self._frame_size is not None:
            # A box cut by the picture's edge shows only part of the object, a part that
            # changes as it drives in or out (a car seen from above: bonnet, windscreen,
            # roof): its colours are not the track's. Judged on overlap alone, and they do
            # not become the track's colours either (update_with_features).
            similarity[:, _cut_by_edge(detections, self._frame_size)] = 1.0
        return iou * similarity**self.appearance_weight


def _cut_by_edge(xyxy: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Which (N, 4) boxes touch the edge of a picture of ``frame_size`` (width, height).

    >>> _cut_by_edge(np.array([[0, 10, 50, 60], [10, 10, 50, 60], [10, 10, 100, 60]]), (100, 80)).tolist()
    [True, False, True]
    """
    w, h = frame_size
    return (xyxy[:, :2] <= EDGE_PIXELS).any(axis=1) | (
        xyxy[:, 2:] >= np.array([w, h], np.float32) - EDGE_PIXELS
    ).any(axis=1)


def leaving_picture(
    before: tuple[float, float, float, float],
    after: tuple[float, float, float, float],
    frame_size: tuple[int, int],
) -> bool:
    """Whether an object whose box went from ``before`` to ``after`` is driving out of the picture.

    Its box touches an edge of the picture and its far side came closer to that edge: it
    shrinks against it or moves towards it. One driving in grows from the edge instead.

    >>> leaving_picture((300, 0, 420, 120), (300, 0, 420, 60), (768, 432))  # out through the top
    True
    >>> leaving_picture((300, 0, 420, 60), (300, 0, 420, 120), (768, 432))  # in through the top
    False
    >>> leaving_picture((300, 50, 420, 120), (300, 40, 420, 110), (768, 432))  # not at an edge
    False
    """
    w, h = frame_size
    x1, y1, x2, y2 = after
    bx1, by1, bx2, by2 = before
    return bool(
        (y1 <= EDGE_PIXELS and y2 < by2)
        or (y2 >= h - EDGE_PIXELS and y1 > by1)
        or (x1 <= EDGE_PIXELS and x2 < bx2)
        or (x2 >= w - EDGE_PIXELS and x1 > bx1)
    )


@dataclass(frozen=True, slots=True)
class TrackedBox:
    """A detection that belongs to a confirmed track in this frame.

    ``earlier``: when the track is confirmed in this frame, its boxes from the
    analysed frames before (with their times), which were withheld until
    then: the object was there, and a track that starts late loses them.
    """

    key: tuple[str, int]
    label: str
    xyxy: tuple[float, float, float, float]
    confidence: float
    appearance: np.ndarray | None = None
    earlier: tuple[tuple[float, TrackedBox], ...] = ()


class MultiClassTracker:
    """One appearance-aware BoT-SORT per association group.

    >>> tracker = MultiClassTracker(fps=5)
    >>> tracker.update(Detections.empty(), np.zeros((10, 10, 3), np.uint8), t=0.0)
    []
    """

    def __init__(self, fps: float, settings: TrackerSettings | None = None) -> None:
        self.settings = s = settings or TrackerSettings()
        self._activation = {g: s.activation.get(g, DEFAULT_ACTIVATION[g]) for g in GROUPS}
        self._trackers = {}
        for assoc, groups in ASSOCIATION.items():
            # A box too weak to start a track of its own class may still
            # extend one: the weakest class threshold splits the two stages.
            threshold = min(self._activation[g] for g in groups)
            self._trackers[assoc] = AppearanceBoTSORT(
                # trackers counts its buffer in 30 fps frames.
                lost_track_buffer=max(1, round(s.lost_seconds * 30)),
                frame_rate=fps,
                track_activation_threshold=threshold,
                high_conf_det_threshold=threshold,
                minimum_consecutive_frames=s.confirmation_hits(fps),
                minimum_iou_threshold_first_assoc=s.min_similarity,
                enable_cmc=False,  # fixed cameras: no camera motion to compensate
                appearance_weight=0.0 if set(groups) <= _NO_APPEARANCE else s.appearance_weight,
                appearance_memory=s.appearance_memory,
                recover_lost=assoc == "person",
                # A vehicle is big: at the edge its visible part changes entirely (seen from
                # above, as long as half the picture). People stay mostly in view there, and in
                # a crowd their colours keep neighbours apart (for people too, PETS09 MOTA fell
                # from 0.836 to 0.833).
                edge_aware=assoc == "object",
            )
        self._group_of = {label: g for g, labels in GROUPS.items() for label in labels}
        self._assoc_of = {g: a for a, groups in ASSOCIATION.items() for g in groups}

    def expected(self, label: str) -> np.ndarray:
        """Where the confirmed tracks that ``label`` objects could continue are, as (N, 4) xyxy boxes.

        The tracker's estimate after the last analysed frame, for tracks seen in the last
        :data:`EXPECT_SECONDS`: moving blobs that hold several of them are split between them
        (``vision.moving_objects.split``), so objects that touch keep their own tracks.
        """
        group = self._group_of.get(label)
        if group is None:
            return np.zeros((0, 4), np.float32)
        tracker = self._trackers[self._assoc_of[group]]
        boxes = [
            t.get_state_bbox()
            for t in tracker.tracks
            if t.tracker_id != -1 and getattr(t, "time_since_update_seconds", 0.0) <= EXPECT_SECONDS
        ]
        return np.array(boxes, np.float32).reshape(-1, 4)

    def update(self, detections: Detections, image: np.ndarray, t: float) -> list[TrackedBox]:
        """Feed one analysed frame's detections; get the boxes of confirmed tracks."""
        out: list[TrackedBox] = []
        faint = detections.faint.of(PERSON) if detections.faint is not None else None
        detections, rider = corroborate_riders(detections)
        groups = [self._group_of[lab] for lab in detections.labels]
        assoc = np.array([self._assoc_of[g] for g in groups], dtype=object)
        for name, tracker in self._trackers.items():
            mask = assoc == name if len(assoc) else np.zeros(0, bool)
            sub = detections.select(mask)
            sub_riders = rider[mask]
            if len(set(sub.labels)) > 1:  # the detector's own NMS already parted same-class boxes
                kept = np.isin(np.arange(len(sub)), nms(sub.xyxy, sub.confidence, GROUP_NMS_IOU))
                sub, sub_riders = sub.select(kept), sub_riders[kept]
            # Every tracker sees every frame, empty or not: the base class
            # confirms the boxes of its first frame at once, which must be the
            # video's first frame, not the first one with a box of this group.
            xyxy = sub.xyxy.astype(np.float32).reshape(-1, 4)
            sub_groups = [self._group_of[lab] for lab in sub.labels]
            # Weak boxes only ever extend a track on overlap: describing them
            # would cost as much as all the others together.
            describe = (sub.confidence >= DESCRIBE_MIN) & np.array(
                [g not in _NO_APPEARANCE for g in sub_groups], bool
            ).reshape(-1)
            features = None
            data = {"label": np.array(sub.labels, dtype=object), "row": np.arange(len(sub))}
            if tracker.appearance_weight > 0:
                features = np.zeros((len(sub), SIZE), np.float32)
                features[describe] = descriptors(image, xyxy[describe])
                data["feature"] = features
            sv_dets = sv.Detections(
                xyxy=xyxy,
                confidence=sub.confidence.astype(np.float32),
                class_id=np.zeros(len(sub), int),
                data=data,
            )
            activation = np.array([self._activation[g] for g in sub_groups], np.float32)
            result = tracker.update_with_features(
                sv_dets,
                features,
                t,
                activation,
                sub_riders,
                frame_size=(image.shape[1], image.shape[0]),
                faint=faint if tracker.recover_lost else None,
            )
            for i, tid in enumerate(result.tracker_id):
                if tid < 0:
                    continue
                box = _tracked((name, int(tid)), result[i : i + 1])
                history = tracker.confirmed_history.get(int(tid), [])
                if history:
                    earlier = tuple((ts, _tracked(box.key, det)) for ts, det in history)
                    box = replace(box, earlier=earlier)
                out.append(box)
        return out


def _faint_data(key: str, column: np.ndarray, n: int) -> np.ndarray:
    """The ``data`` column ``key`` of ``n`` faint person boxes, shaped like ``column``'s.

    Labels are person; rows -1 (not among the frame's detections); features zero (undescribed).
    """
    if key == "label":
        return np.array([PERSON] * n, dtype=object)
    if key == "row":
        return np.full(n, -1)
    return np.zeros((n, *column.shape[1:]), column.dtype)


def _tracked(key: tuple[str, int], det: sv.Detections) -> TrackedBox:
    """The :class:`TrackedBox` of a one-row detections object."""
    x1, y1, x2, y2 = (float(v) for v in det.xyxy[0])
    feature = det.data["feature"][0] if "feature" in det.data else None
    return TrackedBox(
        key=key,
        label=str(det.data["label"][0]),
        xyxy=(x1, y1, x2, y2),
        confidence=float(det.confidence[0]),
        appearance=feature if feature is not None and feature.any() else None,
    )


def corroborate_riders(detections: Detections) -> tuple[Detections, np.ndarray]:
    """A person box over a bicycle (or motorcycle) box and that box vouch for each other.

    Seen from above, a cyclist is a small person box on a small bicycle box, each
    scored low (0.1-0.6 by YOLOX-nano); together they are one likely thing. Each
    overlapping pair's confidences become ``1 - (1-p)(1-b)(1-RIDER_PRIOR)``, so both
    can start and keep tracks. Also returns which boxes are in such a pair. Frames
    without a ridden class are returned as they are.

    >>> boxes = np.array([[10, 0, 30, 40], [5, 25, 35, 50]], np.float32)
    >>> d = Detections(boxes, np.array([0.4, 0.3], np.float32), ("person", "bicycle"))
    >>> fused, riders = corroborate_riders(d)
    >>> [round(float(c), 2) for c in fused.confidence], riders.tolist()
    ([0.71, 0.71], [True, True])
    """
    ridden = [j for j, lab in enumerate(detections.labels) if lab in RIDDEN]
    people = [i for i, lab in enumerate(detections.labels) if lab == PERSON]
    paired = np.zeros(len(detections), bool)
    if not ridden or not people:
        return detections, paired
    xyxy, conf = detections.xyxy, detections.confidence
    fused = conf.copy()
    for i in people:
        p = xyxy[i]
        area = max(float((p[2] - p[0]) * (p[3] - p[1])), 1e-6)
        for j in ridden:
            b = xyxy[j]
            iw = min(p[2], b[2]) - max(p[0], b[0])
            ih = min(p[3], b[3]) - max(p[1], b[1])
            if iw <= 0 or ih <= 0 or iw * ih < RIDER_OVERLAP * area:
                continue
            both = 1.0 - (1.0 - conf[i]) * (1.0 - conf[j]) * (1.0 - RIDER_PRIOR)
            fused[i], fused[j] = max(fused[i], both), max(fused[j], both)
            paired[i] = paired[j] = True
    return Detections(xyxy, fused.astype(np.float32), detections.labels), paired


def nms(xyxy: np.ndarray, confidence: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, whatever their classes.

    >>> nms(np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10]]), np.array([0.5, 0.9, 0.4]), 0.45)
    array([1, 2])
    """
    order = np.argsort(-confidence, kind="stable")
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    keep: list[int] = []
    for i in order:
        if keep:
            k = np.array(keep)
            x1 = np.maximum(xyxy[k, 0], xyxy[i, 0])
            y1 = np.maximum(xyxy[k, 1], xyxy[i, 1])
            x2 = np.minimum(xyxy[k, 2], xyxy[i, 2])
            y2 = np.minimum(xyxy[k, 3], xyxy[i, 3])
            inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
            if (inter / np.maximum(area[k] + area[i] - inter, 1e-9)).max() > iou:
                continue
        keep.append(int(i))
    return np.sort(np.array(keep, dtype=np.int64))
