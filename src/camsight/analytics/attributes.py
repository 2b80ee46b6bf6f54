"""Computing a track's appearance attributes from its best crops.

People: clothing colours of the upper body, lower body and headwear (body
regions from pose keypoints where visible, from the box otherwise), whether
headwear is worn, carried items, posture, motion and heading. Vehicles: type
and body colour. Nothing about sex, age, ethnicity or faces (DESIGN.md).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from camsight.analytics.colour import colour_scores
from camsight.records.attributes import TrackAttributes
from camsight.records.facets import VEHICLE_LABELS, VEHICLE_TYPES
from camsight.records.tracks import TrackRecord
from camsight.vision.pose import PoseEstimator, body_regions, posture, rect_slices, region_mask

#: Head colours that are just as likely hair or skin as a hat or hood; they
#: count for little as headwear evidence.
HAIR_AND_SKIN = frozenset({"black", "brown", "grey", "orange", "pink", "yellow"})
HAIR_WEIGHT = 0.4
#: Body heights a second: above this a person is running, below the walking
#: floor (and with little net movement) standing still.
RUNNING_BH_S = 1.6
WALKING_BH_S = 0.25
#: Share of a person's detected frames in which an item must be seen beside
#: them to count fully as carried.
CARRIED_SHARE = 0.2
_TYPE_OF_LABEL = {label: vtype for vtype, labels in VEHICLE_TYPES.items() for label in labels}


class AttributeExtractor:
    """Turns a finished :class:`TrackRecord` into :class:`TrackAttributes`.

    >>> extractor = AttributeExtractor()  # doctest: +SKIP
    >>> extractor.extract(record).facet_scores()["upper:red"]  # doctest: +SKIP
    0.83
    """

    def __init__(self, pose: PoseEstimator | None = None, use_pose: bool = True) -> None:
        self._pose = pose
        self.use_pose = use_pose

    def prepare(self) -> None:
        """Load the models now (a missing one raises ModelError here, not mid-file)."""
        _ = self.pose

    @property
    def pose(self) -> PoseEstimator | None:
        if self._pose is None and self.use_pose:
            self._pose = PoseEstimator()
        return self._pose

    def extract(self, record: TrackRecord) -> TrackAttributes:
        attrs = TrackAttributes()
        if record.label == "person":
            self._person(record, attrs)
        elif record.label in VEHICLE_LABELS:
            self._vehicle(record, attrs)
        self._movement(record, attrs)
        return attrs

    # -- people -----------------------------------------------------------

    def _person(self, record: TrackRecord, attrs: TrackAttributes) -> None:
        sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        postures: dict[str, float] = defaultdict(float)
        weight_total = 0.0
        used_pose = 0
        for crop in record.crops:
            box = crop.local_box()
            pose = self.pose.estimate(crop.image, box) if self.pose is not None else None
            regions = body_regions(box, pose)
            used_pose += int(pose is not None and getattr(pose, "reliable", True))
            w = max(crop.quality, 1e-3)
            weight_total += w
            for region, rect in regions.items():
                pixels = crop.image[rect_slices(rect, crop.image.shape)]
                if pixels.shape[0] < 2 or pixels.shape[1] < 2:
                    continue
                # With keypoints, only torso / leg pixels count: the pavement
                # between the legs would otherwise make every trouser grey.
                mask = region_mask(region, rect, pose, crop.image.shape) if region != "headwear" else None
                for colour, s in colour_scores(pixels, mask).items():
                    sums[region][colour] += w * s
            for name, s in posture(pose, box).items():
                postures[name] += w * s
        if weight_total == 0:
            return
        how = f"{len(record.crops)} crops" + (", pose keypoints" if used_pose else ", box proportions")
        for region in ("upper", "lower", "headwear"):
            mean = {c: v / weight_total for c, v in sums.get(region, {}).items()}
            scores = {c: s for c, s in mean.items() if s >= 0.05}
            if region == "headwear":
                scores, attrs.headwear_worn = _headwear(scores)
                attrs.evidence["headwear:worn"] = (
                    f"head colours {_top(scores)} ({how}); hair and skin colours count little"
                )
            attrs.colours[region] = {c: round(s, 3) for c, s in scores.items()}
            for colour, s in scores.items():
                attrs.evidence[f"{region}:{colour}"] = f"{region} {colour} {s:.2f} ({how})"
        attrs.posture = {k: round(v / weight_total, 3) for k, v in postures.items()}
        for k, v in attrs.posture.items():
            attrs.evidence[f"posture:{k}"] = f"{k} {v:.2f} ({how})"
        for item, info in record.carried.items():
            share = float(info.get("share", 0.0))
            frames = int(info.get("frames", 0))
            score = min(1.0, share / CARRIED_SHARE) * (1.0 if frames >= 2 else 0.5)
            attrs.carried[item] = round(score, 3)
            attrs.evidence[f"carried:{item}"] = f"{item} seen beside them in {frames} frames ({share:.0%})"

    # -- vehicles ---------------------------------------------------------

    def _vehicle(self, record: TrackRecord, attrs: TrackAttributes) -> None:
        total = sum(record.labels_seen.values()) or 1
        for label, n in record.labels_seen.items():
            vtype = _TYPE_OF_LABEL.get(label)
            if vtype is not None:
                attrs.vehicle[vtype] = round(attrs.vehicle.get(vtype, 0.0) + n / total, 3)
                attrs.evidence[f"vehicle:{vtype}"] = f"detected as {label} in {n} of {total} frames"
        sums: dict[str, float] = defaultdict(float)
        weight_total = 0.0
        for crop in record.crops:
            x1, y1, x2, y2 = crop.local_box()
            w, h = x2 - x1, y2 - y1
            # The middle of the box: paintwork, not road, windows or wheels.
            pixels = crop.image[
                rect_slices((x1 + 0.2 * w, y1 + 0.25 * h, x2 - 0.2 * w, y2 - 0.2 * h), crop.image.shape)
            ]
            if pixels.shape[0] < 2 or pixels.shape[1] < 2:
                continue
            q = max(crop.quality, 1e-3)
            weight_total += q
            for colour, s in colour_scores(pixels).items():
                sums[colour] += q * s
        if weight_total:
            body = {c: round(v / weight_total, 3) for c, v in sums.items() if v / weight_total >= 0.05}
            attrs.colours["body"] = body
            for colour, s in body.items():
                attrs.evidence[f"body:{colour}"] = f"body {colour} {s:.2f} ({len(record.crops)} crops)"

    # -- movement ---------------------------------------------------------

    @staticmethod
    def _movement(record: TrackRecord, attrs: TrackAttributes) -> None:
        k = record.kinematics
        speed = k.speed_bh_s
        if k.heading == "stationary":
            attrs.motion = {"stationary": 1.0}
        elif record.label == "person":
            running = float(np.clip((speed - 0.8 * RUNNING_BH_S) / (0.4 * RUNNING_BH_S), 0, 1))
            walking = float(np.clip((speed - 0.5 * WALKING_BH_S) / WALKING_BH_S, 0, 1)) * (1 - running)
            attrs.motion = {"running": round(running, 3), "walking": round(walking, 3)}
            attrs.motion["stationary"] = round(max(0.0, 1 - running - walking), 3)
        else:
            attrs.motion = {"walking": 1.0} if speed > 0 else {"stationary": 1.0}
        attrs.motion = {m: s for m, s in attrs.motion.items() if s > 0}
        for m, s in attrs.motion.items():
            attrs.evidence[f"motion:{m}"] = (
                f"{m} {s:.2f}: {k.speed_bh_s:.2f} body heights/s, moved {k.displacement_px:.0f} px"
            )
        if k.heading != "stationary":
            attrs.heading = {k.heading: 1.0}
            attrs.evidence[f"heading:{k.heading}"] = f"net movement towards {k.heading} of the picture"


def _headwear(scores: dict[str, float]) -> tuple[dict[str, float], float]:
    """Discount hair/skin-like head colours; headwear is 'worn' when others dominate."""
    adjusted = {c: s * (HAIR_WEIGHT if c in HAIR_AND_SKIN else 1.0) for c, s in scores.items()}
    worn = max((s for c, s in scores.items() if c not in HAIR_AND_SKIN), default=0.0)
    return adjusted, round(float(min(1.0, worn)), 3)


def _top(scores: dict[str, float]) -> str:
    best = sorted(scores.items(), key=lambda kv: -kv[1])[:2]
    return ", ".join(f"{c} {s:.2f}" for c, s in best) or "none"
