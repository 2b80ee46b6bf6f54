"""Stitching the tracks of a file analysed in time chunks back into one set of tracks.

A long file is cut into chunks that overlap by a few seconds and are analysed
independently (on a cluster). Around each cut both chunks saw the same frames:
a track of the earlier chunk and one of the later chunk that follow the same
boxes through the overlap (mean IoU over their common frames) are one object,
and become one track whose boxes come from the earlier chunk before the cut and
from the later one after it. Each chunk's tracker is warm on its own side of
the cut (it has run for half the overlap by then), so a track that is not
matched is kept by the chunk that owns its time: one that lies wholly past the
cut is the later chunk's to report, one that ended before the cut the earlier
chunk's.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from camsight.records.tracks import Box, Observation, TrackRecord
from camsight.tracking.appearance import normalise
from camsight.tracking.kinematics import kinematics

#: Mean IoU over the common frames at which two fragments are the same object.
MIN_IOU = 0.5
#: Common frames needed to call two fragments one object.
MIN_COMMON = 2


@dataclass
class ChunkTracks:
    """The tracks one chunk produced, with the cuts it shares with its neighbours.

    ``cut_before`` is the time from which this chunk owns the video (None for
    the first chunk), ``cut_after`` the time its successor takes over (None
    for the last).
    """

    index: int
    records: list[TrackRecord]
    cut_before: float | None = None
    cut_after: float | None = None


@dataclass
class StitchReport:
    """What stitching did: tracks joined across cuts and duplicates dropped."""

    merged: int = 0
    dropped: int = 0
    kept: int = 0
    #: (chunk, local id) of every fragment -> the local id of the stored track.
    ids: dict[tuple[int, int], int] = field(default_factory=dict)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes.

    >>> round(iou((0, 0, 2, 2), (1, 0, 3, 2)), 3)
    0.333
    """
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def overlap_score(a: TrackRecord, b: TrackRecord) -> float:
    """Mean IoU of two tracks over the frames both have boxes in (0 with fewer than MIN_COMMON)."""
    boxes = {o.frame: o.box for o in a.observations}
    common = [iou(boxes[o.frame], o.box) for o in b.observations if o.frame in boxes]
    if len(common) < MIN_COMMON:
        return 0.0
    return float(np.mean(common))


def stitch(chunks: Sequence[ChunkTracks], thumbnails: int = 3) -> tuple[list[TrackRecord], StitchReport]:
    """One file's tracks from its chunks' tracks, numbered 1.. in order of their start.

    ``thumbnails`` is how many crops a stitched track keeps (the best ones of
    its fragments). Carried-item references are renumbered with the tracks.
    """
    chunks = sorted(chunks, key=lambda c: c.index)
    report = StitchReport()
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def root(key: tuple[int, int]) -> tuple[int, int]:
        while parent.get(key, key) != key:
            key = parent[key]
        return key

    dropped: set[tuple[int, int]] = set()
    for left, right in itertools.pairwise(chunks):
        cut = left.cut_after
        assert cut is not None, "chunks after the first need a cut"
        pairs = sorted(
            (
                (overlap_score(a, b), ia, ib)
                for ia, a in enumerate(left.records)
                for ib, b in enumerate(right.records)
                if a.label == b.label
            ),
            reverse=True,
        )
        used_a: set[int] = set()
        used_b: set[int] = set()
        for score, ia, ib in pairs:
            if score < MIN_IOU:
                break
            if ia in used_a or ib in used_b:
                continue
            used_a.add(ia)
            used_b.add(ib)
            parent[(right.index, right.records[ib].local_id)] = root((left.index, left.records[ia].local_id))
            report.merged += 1
        for ia, a in enumerate(left.records):
            if ia not in used_a and a.start_t >= cut:
                dropped.add((left.index, a.local_id))
        for ib, b in enumerate(right.records):
            if ib not in used_b and b.end_t < cut:
                dropped.add((right.index, b.local_id))
    report.dropped = len(dropped)

    groups: dict[tuple[int, int], list[tuple[ChunkTracks, TrackRecord]]] = {}
    for chunk in chunks:
        for rec in chunk.records:
            key = (chunk.index, rec.local_id)
            if key in dropped:
                continue
            groups.setdefault(root(key), []).append((chunk, rec))
    merged = [(*_merge(parts, thumbnails), parts) for parts in groups.values()]
    merged.sort(key=lambda m: (m[0].start_t, m[2][0][0].index, m[2][0][1].local_id))
    for new_id, (rec, _, parts) in enumerate(merged, start=1):
        for chunk, part in parts:
            report.ids[(chunk.index, part.local_id)] = new_id
        rec.local_id = new_id
    # Carrier and carried references point at fragments: renumber them (a reference to a
    # dropped duplicate is lost; the stitched track that replaced it is not known to it).
    for rec, carrier_chunk, _ in merged:
        if rec.carrier_local_id is not None:
            rec.carrier_local_id = report.ids.get((carrier_chunk, rec.carrier_local_id))
        carried = {}
        for label, info in rec.carried.items():
            track = report.ids.get((int(info["chunk"]), int(info["track"])))
            if track is not None:
                carried[label] = {k: v for k, v in info.items() if k != "chunk"} | {"track": track}
        rec.carried = carried
    report.kept = len(merged)
    return [rec for rec, _, _ in merged], report


def _merge(parts: list[tuple[ChunkTracks, TrackRecord]], thumbnails: int) -> tuple[TrackRecord, int]:
    """One track from fragments of consecutive chunks, and the chunk its carrier's id belongs to.

    A single fragment is returned as it is. Carried items are marked with
    their chunk (``chunk`` in each entry) for renumbering.
    """
    if len(parts) == 1:
        chunk, rec = parts[0]
        rec.carried = {label: info | {"chunk": chunk.index} for label, info in rec.carried.items()}
        return rec, chunk.index
    parts = sorted(parts, key=lambda p: p[0].index)
    observations: list[Observation] = []
    for chunk, rec in parts:
        lo = chunk.cut_before if chunk is not parts[0][0] else None
        hi = chunk.cut_after if chunk is not parts[-1][0] else None
        observations.extend(
            o for o in rec.observations if (lo is None or o.t >= lo) and (hi is None or o.t < hi)
        )
    observations.sort(key=lambda o: o.t)
    longest_chunk, longest = max(parts, key=lambda p: sum(o.detected for o in p[1].observations))
    labels = Counter[str]()
    for _, rec in parts:
        labels.update(rec.labels_seen)
    detected = sum(o.detected for o in observations) or 1
    crops = sorted((c for _, rec in parts for c in rec.crops), key=lambda c: -c.quality)
    seen_frames: set[int] = set()
    best = []
    for crop in crops:
        if crop.frame not in seen_frames and len(best) < thumbnails:
            seen_frames.add(crop.frame)
            best.append(crop)
    weights = [sum(o.detected for o in rec.observations) or 1 for _, rec in parts]
    carried: dict[str, dict] = {}
    for chunk, rec in parts:
        for label, info in rec.carried.items():
            frames = int(info["frames"]) + int(carried.get(label, {}).get("frames", 0))
            # The item seen longest keeps its track; frames add up over the fragments.
            keep = info | {"chunk": chunk.index}
            if label in carried and int(carried[label]["frames"]) > int(info["frames"]):
                keep = carried[label]
            carried[label] = keep | {"frames": frames, "share": round(min(1.0, frames / detected), 3)}
    carrier, carrier_chunk = longest.carrier_local_id, longest_chunk.index
    if carrier is None:
        carrier, carrier_chunk = next(
            ((r.carrier_local_id, c.index) for c, r in parts if r.carrier_local_id is not None),
            (None, carrier_chunk),
        )
    out = TrackRecord(
        local_id=longest.local_id,
        label=longest.label,
        observations=observations,
        crops=best,
        kinematics=kinematics(observations, longest.label),
        confidence=float(np.average([r.confidence for _, r in parts], weights=weights)),
        carrier_local_id=carrier,
        carried=carried,
        labels_seen=dict(labels),
        appearance=_mean([r.appearance for _, r in parts], weights),
        # Attributes were read by each chunk from its own views; the longest fragment's saw most.
        attributes=longest.attributes,
        reid=_mean([r.reid for _, r in parts], weights),
        reid_model=longest.reid_model or next((r.reid_model for _, r in parts if r.reid_model), None),
    )
    # The vision-language embedding is of the best crop: take the one of the fragment that has it.
    if best:
        owner = next((r for _, r in parts if any(c is best[0] for c in r.crops)), longest)
        out.embedding, out.embedding_model = owner.embedding, owner.embedding_model
    return out, carrier_chunk


def _mean(vectors: list[np.ndarray | None], weights: list[int]) -> np.ndarray | None:
    """The weighted mean of the L2-normalised vectors that exist, normalised again."""
    pairs = [(v, w) for v, w in zip(vectors, weights, strict=True) if v is not None]
    if not pairs:
        return None
    total = sum(w * v.astype(np.float64) for v, w in pairs)
    return normalise(np.asarray(total))
