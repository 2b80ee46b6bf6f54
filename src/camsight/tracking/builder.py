"""Turns per-frame tracked boxes into finished :class:`TrackRecord` objects."""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np
import supervision as sv

from camsight.records.facets import RIDDEN_ITEMS
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.sources.frame import Frame
from camsight.tracking.appearance import normalise
from camsight.tracking.crops import (
    CropKeeper,
    SampleKeeper,
    crop_region,
    occlusion,
    quality,
    quality_bound,
    wide_view,
)
from camsight.tracking.kinematics import kinematics, still_scenery
from camsight.tracking.tracker import RIDER_OVERLAP, TrackedBox
from camsight.vision.detections import CARRIED, PERSON
from camsight.vision.light import estimate_illuminant

log = logging.getLogger(__name__)

#: A person's view is sampled for attributes only when others cover less of its box than this.
SAMPLE_MAX_OCCLUSION = 0.15
#: Seconds a measurement of the frame's light is reused for.
LIGHT_SECONDS = 2.0
#: Longest a track's detections may last and still be a repeat of another's hidden stretch.
DUPLICATE_SECONDS = 1.0
#: Overlap with the other track's box, in each of those frames, that makes it a repeat: an IoU
#: of ``DUPLICATE_IOU``, or the smaller box ``DUPLICATE_INSIDE`` inside the larger (a weak box of
#: a person's legs inside their whole box).
DUPLICATE_IOU = 0.4
DUPLICATE_INSIDE = 0.8


@dataclass
class _Open:
    local_id: int
    observations: list[Observation] = field(default_factory=list)
    labels: Counter[str] = field(default_factory=Counter)
    #: Summed detection confidence per label: the track's class is the one
    #: the detector believed most over the whole track, not one frame's.
    label_scores: Counter[str] = field(default_factory=Counter)
    #: Analysed frames (index, t) since the track's last box.
    unseen: list[tuple[int, float]] = field(default_factory=list)
    crops: CropKeeper = field(default_factory=CropKeeper)
    samples: SampleKeeper = field(default_factory=SampleKeeper)
    carried: Counter[str] = field(default_factory=Counter)
    carried_track: dict[str, Counter[int]] = field(default_factory=dict)
    carriers: Counter[int] = field(default_factory=Counter)
    detected_frames: int = 0
    appearance_sum: np.ndarray | None = None
    confidence_sum: float = 0.0

    @property
    def label(self) -> str:
        return self.label_scores.most_common(1)[0][0]


def carried_by(items: np.ndarray, people: np.ndarray, min_share: float = 0.5) -> np.ndarray:
    """For each carried-object box, the index of the person carrying it, or -1.

    An object belongs to the person whose (slightly widened) box covers most
    of it: bags hang beside the body, so a person box alone is too tight.

    >>> carried_by(np.array([[8, 40, 16, 60]]), np.array([[0, 0, 10, 100], [50, 0, 60, 100]]))
    array([0])
    """
    out = np.full(len(items), -1)
    if len(items) == 0 or len(people) == 0:
        return out
    wide = people.astype(np.float64).copy()
    pw = wide[:, 2] - wide[:, 0]
    wide[:, 0] -= 0.35 * pw
    wide[:, 2] += 0.35 * pw
    x1 = np.maximum(items[:, None, 0], wide[None, :, 0])
    y1 = np.maximum(items[:, None, 1], wide[None, :, 1])
    x2 = np.minimum(items[:, None, 2], wide[None, :, 2])
    y2 = np.minimum(items[:, None, 3], wide[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = np.maximum((items[:, 2] - items[:, 0]) * (items[:, 3] - items[:, 1]), 1e-9)
    share = inter / area[:, None]
    # Among people covering the object, prefer the one whose centre is nearest.
    dist = np.abs(((items[:, None, 0] + items[:, None, 2]) - (people[None, :, 0] + people[None, :, 2])) / 2)
    score = np.where(share >= min_share, share - 1e-3 * dist, -np.inf)
    best = score.argmax(axis=1)
    ok = np.isfinite(score[np.arange(len(items)), best])
    out[ok] = best[ok]
    return out


def ridden_by(vehicles: np.ndarray, people: np.ndarray, min_share: float = RIDER_OVERLAP) -> np.ndarray:
    """For each bicycle box, the index of the person riding or pushing it, or -1.

    A rider's box sits on the bicycle's (the tracker's rider test: the bicycle
    covers ``min_share`` of the person box); one pushing it walks beside it,
    which :func:`carried_by` sees. The person whose box the bicycle covers most wins.

    >>> ridden_by(np.array([[0, 30, 40, 60]]), np.array([[10, 0, 30, 50], [100, 0, 120, 50]]))
    array([0])
    """
    out = carried_by(vehicles, people)
    if len(vehicles) == 0 or len(people) == 0:
        return out
    x1 = np.maximum(vehicles[:, None, 0], people[None, :, 0])
    y1 = np.maximum(vehicles[:, None, 1], people[None, :, 1])
    x2 = np.minimum(vehicles[:, None, 2], people[None, :, 2])
    y2 = np.minimum(vehicles[:, None, 3], people[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = np.maximum((people[:, 2] - people[:, 0]) * (people[:, 3] - people[:, 1]), 1e-9)
    share = inter / area[None, :]
    best = share.argmax(axis=1)
    on = share[np.arange(len(vehicles)), best] >= min_share
    out[on] = best[on]
    return out


@dataclass(frozen=True)
class LinkSettings:
    """When a new tracker id continues a track the tracker lost.

    ``seconds``: longest gap; ``similarity``: colour appearance needed
    (Bhattacharyya coefficient of the descriptors); ``distance``: how far
    (in box heights, plus as much again per second of gap) the new track may
    start from where the old one was last seen.
    """

    seconds: float = 3.0
    similarity: float = 0.85
    distance: float = 1.5
    #: A track last seen this close to the picture's edge (a share of the
    #: frame's width or height) left the view rather than being hidden, and is
    #: not continued: whoever comes in there later is a new visit.
    edge: float = 0.01


class TrackBuilder:
    """Accumulates boxes per track and emits a record when a track ends.

    A track ends when it has not been seen for ``end_after`` seconds, which
    should exceed the tracker's own patience plus the link window, so a track
    the tracker could still recover, or that a new id continues, is never
    cut in two. A person who walks behind a pillar and comes out under a new
    tracker id is one track for the user: the new id is linked to the lost
    track when it starts close by, soon after, and looks the same. The
    frames in which a track was hidden, between two of its boxes, get boxes
    interpolated between those two (marked not detected): the object did not
    leave.
    """

    def __init__(
        self,
        frame_size: tuple[int, int],
        end_after: float,
        crops_per_track: int = 3,
        link: LinkSettings | None = None,
        samples_per_track: int = 12,
        confident: float | None = None,
    ) -> None:
        self.frame_size = frame_size
        #: The confidence that starts a person track. Given, a "person" track that stayed put and
        #: was detected under it (median) is a part of the scene and is not kept
        #: (:func:`~camsight.tracking.kinematics.still_scenery`), and a track held only by weaker
        #: boxes is not seen confidently (:meth:`_duplicated_by`).
        self.confident = confident
        self.end_after = end_after
        self.crops_per_track = crops_per_track
        #: Views of each person kept over the whole track for attributes (0: none).
        self.samples_per_track = samples_per_track
        self.link = link
        self._open: dict[tuple[str, int], _Open] = {}
        self._next_id = 1
        #: Recently analysed frames, t -> index, to place a new track's earlier boxes.
        self._recent: deque[tuple[float, int]] = deque(maxlen=64)
        #: The objects in the last frame given to :meth:`update`: (local id, label, box, confidence),
        #: with the local id the stored track will have and the track's majority label so far.
        self.live: list[tuple[int, str, tuple[float, float, float, float], float]] = []
        #: The light last measured (frame time, light), shared by the samples taken soon after.
        self._light: tuple[float, tuple[float, float, float, float]] | None = None

    @property
    def open_tracks(self) -> int:
        return len(self._open)

    def update(self, frame: Frame, boxes: list[TrackedBox], detected: bool) -> list[TrackRecord]:
        """Add one analysed frame; returns the tracks that ended before it."""
        self._recent.append((frame.t, frame.index))
        states: list[_Open] = []
        present = {b.key for b in boxes}
        for b in boxes:
            st = self._open.get(b.key)
            if st is not None and any(st is s for s in states):
                st = None  # two ids on one state in one frame: the link was wrong
            if st is None and detected:
                st = self._relink(b, frame.t, present, states)
            if st is None:
                st = _Open(
                    self._next_id,
                    crops=CropKeeper(self.crops_per_track),
                    samples=SampleKeeper(self.samples_per_track),
                )
                self._next_id += 1
            self._open[b.key] = st
            if b.earlier:
                frames = dict(self._recent)
                for t, early in b.earlier:
                    if t in frames and (not st.observations or t > st.observations[-1].t):
                        self._observe(st, frames[t], t, early, detected=True)
            self._observe(st, frame.index, frame.t, b, detected)
            states.append(st)
        for st in self._open.values():
            if not any(st is s for s in states):
                st.unseen.append((frame.index, frame.t))
        self.live = [
            (st.local_id, st.label if st.labels else b.label, b.xyxy, b.confidence)
            for b, st in zip(boxes, states, strict=True)
        ]
        if detected and boxes:
            self._offer_crops(frame, boxes, states)
            self._associate_carried(boxes, states)
        return self._close(lambda st: frame.t - st.observations[-1].t > self.end_after)

    @staticmethod
    def _observe(st: _Open, index: int, t: float, b: TrackedBox, detected: bool) -> None:
        """Add one box to a track, first filling the frames it was hidden in since its last box."""
        if st.unseen and st.observations:
            last = st.observations[-1]
            a, z = np.array(last.box), np.array(b.xyxy)
            for i, ti in st.unseen:
                if last.t < ti < t:
                    w = (ti - last.t) / (t - last.t)
                    box = tuple(float(v) for v in (1 - w) * a + w * z)
                    conf = (1 - w) * last.confidence + w * b.confidence
                    st.observations.append(Observation(i, ti, box, conf, detected=False))  # type: ignore[arg-type]
        st.unseen = [u for u in st.unseen if u[1] > t]
        st.observations.append(Observation(index, t, b.xyxy, b.confidence, detected))
        if detected:
            st.labels[b.label] += 1
            st.label_scores[b.label] += b.confidence
            st.detected_frames += 1
            st.confidence_sum += b.confidence
            if b.appearance is not None:
                st.appearance_sum = (
                    b.appearance.copy() if st.appearance_sum is None else st.appearance_sum + b.appearance
                )

    def _relink(self, box: TrackedBox, t: float, present: set, taken: list[_Open]) -> _Open | None:
        """A lost track that ``box`` (a new tracker id) continues, if one fits."""
        link = self.link
        if link is None or box.appearance is None:
            return None
        group = box.key[0]
        x1, y1, x2, y2 = box.xyxy
        height = max(y2 - y1, 1.0)
        best: tuple[float, tuple[str, int]] | None = None
        for key, st in self._open.items():
            if key[0] != group or key in present or st.appearance_sum is None or any(st is s for s in taken):
                continue
            last = st.observations[-1]
            gap = t - last.t
            if gap <= 0 or gap > link.seconds or self._at_edge(last.box, link.edge):
                continue
            lx1, ly1, lx2, ly2 = last.box
            scale = max(height, ly2 - ly1, 1.0)
            dist = np.hypot((x1 + x2 - lx1 - lx2) / 2, (y2 - ly2)) / scale
            if dist > link.distance * (1 + gap):
                continue
            sim = float(normalise(st.appearance_sum) @ box.appearance)
            if sim >= link.similarity and (best is None or sim > best[0]):
                best = (sim, key)
        if best is None:
            return None
        return self._open.pop(best[1])

    def _at_edge(self, box: tuple[float, float, float, float], share: float) -> bool:
        w, h = self.frame_size
        x1, y1, x2, y2 = box
        return min(x1, y1, w - x2, h - y2) <= share * max(w, h)

    def finish(self) -> list[TrackRecord]:
        """End every open track (the source is exhausted)."""
        return self._close(lambda st: True)

    def _offer_crops(self, frame: Frame, boxes: list[TrackedBox], states: list[_Open]) -> None:
        xyxy = np.array([b.xyxy for b in boxes], np.float64)
        occ = occlusion(xyxy)
        for b, st, o in zip(boxes, states, occ, strict=True):
            if b.label in CARRIED:
                continue
            if b.label == PERSON and o < SAMPLE_MAX_OCCLUSION and st.samples.wants(frame.t):
                self._offer_sample(frame, b, st)
            # Reading pixels for sharpness is the costly part: skip it when
            # even a perfectly sharp crop would not be kept.
            if not st.crops.worth(quality_bound(b.xyxy, b.confidence, float(o), self.frame_size), frame.t):
                continue
            q = quality(frame.image, b.xyxy, b.confidence, float(o), self.frame_size)
            if not st.crops.worth(q, frame.t):
                continue
            x1, y1, x2, y2 = crop_region(b.xyxy, self.frame_size)
            image = frame.image[y1:y2, x1:x2].copy()
            st.crops.offer(Crop(frame.index, frame.t, b.xyxy, q, image, origin=(x1, y1)))

    def _offer_sample(self, frame: Frame, b: TrackedBox, st: _Open) -> None:
        """Keep a view of a person for attributes when the whole body is in the picture."""
        w, h = self.frame_size
        bx1, by1, bx2, by2 = b.xyxy
        if by2 - by1 < 8 or bx2 - bx1 < 4:
            return
        # A box cut by the side of the frame is someone entering or leaving; one cut at the top
        # or bottom still holds the body's proportions only if it is a whole standing figure.
        if bx1 <= 1 or bx2 >= w - 1 or ((by1 <= 1 or by2 >= h - 1) and (by2 - by1) < 1.8 * (bx2 - bx1)):
            return
        # With a margin: what is beside the person tells the floor's and the wall's colours apart
        # from their clothes'.
        x1, y1, x2, y2 = crop_region(b.xyxy, self.frame_size, margin=0.1)
        image = frame.image[y1:y2, x1:x2].copy()
        # The light changes slowly: measured at most every LIGHT_SECONDS (5 ms a frame).
        if self._light is None or abs(frame.t - self._light[0]) >= LIGHT_SECONDS:
            ill = estimate_illuminant(frame.image)
            self._light = (frame.t, (ill.white_level, *ill.gains))
        light = self._light[1]
        wide = wide_view(frame.image, b.xyxy)
        st.samples.add(
            Crop(frame.index, frame.t, b.xyxy, b.confidence, image, origin=(x1, y1), light=light, wide=wide)
        )

    def _associate_carried(self, boxes: list[TrackedBox], states: list[_Open]) -> None:
        people = [i for i, b in enumerate(boxes) if b.label == PERSON]
        items = [i for i, b in enumerate(boxes) if b.label in CARRIED]
        # A bicycle is the person's too (carried:bicycle): "person with a bicycle" is a cyclist.
        ridden = [i for i, b in enumerate(boxes) if b.label in RIDDEN_ITEMS]
        if not people or not (items or ridden):
            return
        people_xyxy = np.array([boxes[i].xyxy for i in people])
        owner = np.concatenate(
            [
                carried_by(np.array([boxes[i].xyxy for i in items]).reshape(-1, 4), people_xyxy),
                ridden_by(np.array([boxes[i].xyxy for i in ridden]).reshape(-1, 4), people_xyxy),
            ]
        )
        for item_pos, person_pos in zip(items + ridden, owner, strict=True):
            if person_pos < 0:
                continue
            person = states[people[person_pos]]
            item = states[item_pos]
            label = boxes[item_pos].label
            person.carried[label] += 1
            person.carried_track.setdefault(label, Counter())[item.local_id] += 1
            item.carriers[person.local_id] += 1

    def _duplicated_by(
        self, key: tuple[str, int], st: _Open, tracks: dict[tuple[str, int], _Open]
    ) -> int | None:
        """The local id of a longer open track that ``st`` only repeats, else None.

        A person behind a sign loses their track for a moment, or the track clings to a weak
        box of part of them; the detector may box the person meanwhile and the tracker starts a
        second track there, which ends when the first picks them up again. That second track (at
        most :data:`DUPLICATE_SECONDS` of detections, each on the first track's box of that
        frame: IoU >= :data:`DUPLICATE_IOU`, or one box nearly inside the other) is the same
        person twice, while the first was not seen confidently (interpolated, or a box weaker
        than :attr:`confident`): a second search result that reads a sign's colours as theirs.
        """
        seen = [o for o in st.observations if o.detected]
        if not seen or seen[-1].t - seen[0].t > DUPLICATE_SECONDS:
            return None
        mine = np.array([o.box for o in seen], np.float64)
        for other_key, other in tracks.items():
            if other is st or other_key[0] != key[0] or len(other.observations) <= len(st.observations):
                continue
            at: dict[int, Observation] = {}
            for o in reversed(other.observations):  # back to this track's first frame only
                if o.frame < seen[0].frame:
                    break
                at[o.frame] = o
            theirs = [at.get(o.frame) for o in seen]
            if any(
                o is None or (o.detected and (self.confident is None or o.confidence >= self.confident))
                for o in theirs
            ):
                continue
            boxes = np.array([o.box for o in theirs if o is not None], np.float64)
            iou = np.diag(sv.box_iou_batch(mine, boxes))
            inside = np.diag(sv.box_iou_batch(mine, boxes, overlap_metric=sv.OverlapMetric.IOS))
            if bool(((iou >= DUPLICATE_IOU) | (inside >= DUPLICATE_INSIDE)).all()):
                return other.local_id
        return None

    def _close(self, done) -> list[TrackRecord]:  # noqa: ANN001 - a small predicate
        finished = [key for key, st in self._open.items() if done(st)]
        # Every track open until now, those ending with this one too (at the end of a file all
        # end at once): a repeat is told by the track it repeats, whichever closes first.
        tracks = dict(self._open)
        records = []
        for key in finished:
            st = self._open.pop(key)
            if st.detected_frames == 0:
                continue
            label = st.label
            if self.confident is not None and still_scenery(st.observations, label, self.confident):
                log.debug("track %d dropped: a still part of the scene, not a person", st.local_id)
                continue
            twin = self._duplicated_by(key, st, tracks)
            if twin is not None:
                log.debug("track %d dropped: it repeats track %d while that was hidden", st.local_id, twin)
                continue
            # Trailing boxes held by the motion gate after the last detection
            # are kept: a still object stays where it was last seen.
            records.append(
                TrackRecord(
                    local_id=st.local_id,
                    label=label,
                    observations=st.observations,
                    crops=st.crops.crops,
                    samples=st.samples.samples,
                    kinematics=kinematics(st.observations, label),
                    confidence=st.confidence_sum / st.detected_frames,
                    carrier_local_id=st.carriers.most_common(1)[0][0] if st.carriers else None,
                    carried={
                        lab: {
                            "frames": n,
                            "share": round(n / st.detected_frames, 3),
                            "track": st.carried_track[lab].most_common(1)[0][0],
                        }
                        for lab, n in st.carried.items()
                    },
                    labels_seen=dict(st.labels),
                    appearance=None if st.appearance_sum is None else normalise(st.appearance_sum),
                )
            )
        return records
