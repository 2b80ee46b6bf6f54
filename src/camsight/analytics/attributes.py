"""Computing a track's appearance attributes from many views of it.

People: clothing colours of the upper body, lower body and headwear, whether
headwear is worn, carried items, posture, motion and heading. Vehicles: type
and body colour. Nothing about sex, age, ethnicity or faces (DESIGN.md).

Colours come from the track's *samples*, views spread over its whole life
(:class:`camsight.tracking.crops.SampleKeeper`), each named in the light of
its own frame and with the colours of what is beside the person (floor, wall)
taken out, then averaged: one shadowed or turned frame does not decide. A
track with too few samples, or a person not standing, falls back on the best
crops with pose keypoints.

When the OpenVINO person attributes model is installed
(:mod:`camsight.vision.person_attributes`), its hat, long-hair, bag and
backpack answers, averaged over the samples, are combined with that colour
evidence: a hat needs the model to see one on a large enough person (long
hair is not headwear), and a bag it sees becomes ``carried:handbag``. The
model is weak on small people (60-150 px, README of the model folder), so
there its answers weigh less, and alone they never reach a full match.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from camsight.analytics.colour import (
    ColourMap,
    Illuminant,
    colour_lightness,
    colour_map,
    colour_scores,
    pixel_lightness,
    region_shares,
    scores_from_shares,
    without_background,
)
from camsight.records.attributes import TrackAttributes
from camsight.records.facets import SHADED_REGIONS, VEHICLE_LABELS, VEHICLE_TYPES
from camsight.records.tracks import Crop, TrackRecord
from camsight.vision.person_attributes import PersonAttributeModel, load_person_attributes
from camsight.vision.pose import (
    LYING_SECONDS,
    Pose,
    PoseEstimator,
    Rect,
    body_regions,
    lying_spell,
    posture,
    rect_slices,
    region_mask,
)

log = logging.getLogger(__name__)

#: Head colours that are just as likely hair or skin as a hat or hood; they
#: count for little as headwear evidence. Blue too: dark hair under cool light
#: (the Intel indoor clip) reads blue as often as navy hats do.
HAIR_AND_SKIN = frozenset({"black", "blue", "brown", "grey", "orange", "pink", "yellow"})
HAIR_WEIGHT = 0.4
#: Body heights a second: above this a person is running, below the walking
#: floor (and with little net movement) standing still.
RUNNING_BH_S = 1.6
WALKING_BH_S = 0.25
#: Share of a person's detected frames in which an item must be seen beside
#: them to count fully as carried.
CARRIED_SHARE = 0.2
#: Samples needed to name colours from them (fewer: the best crops with pose keypoints).
MIN_SAMPLES = 3
#: Views of a track the attributes model reads (spread over its samples).
MODEL_VIEWS = 8
#: Share of a box region taken to be background, per region, when removing what is beside
#: the person: the gap between the legs, the wall beside the head.
BACKGROUND_SHARE = {"headwear": 0.45, "upper": 0.1, "lower": 0.3}
#: Where the lower region (55-95% of a standing person's box) is split into thighs and shins,
#: as a share of its height. A knee-length coat covers the thighs: then only the shins show
#: the trousers (PETS09's long black coats over jeans read black trousers from the whole region).
SHIN_FROM = 0.42
#: Share of the shin band taken to be background: between walking legs it is mostly floor.
SHIN_BACKGROUND_SHARE = 0.5
#: Share the shins' main colour needs, in one view, to be read as the trousers below a coat.
SHIN_MAIN_SHARE = 0.5
#: Black, grey and white differ by lightness alone, which shadow changes as much as a hem: a grey
#: cardigan over dark grey leggings (Intel's one-by-one clip) reads grey thighs and black shins.
_ACHROMATIC = frozenset({"black", "grey", "white"})
#: The lightness (CIELAB L of a garment's main colour) from which it starts to be, and is fully,
#: "light". On PETS09 a light blue jacket reads 80, jeans 40-49, navy 17, black 0-10.
LIGHT_L = (50.0, 62.0)
#: Person height in pixels (median over the views) below which the attributes model is weak
#: evidence, and from which it is trusted fully (between: in proportion).
MODEL_TRUSTED_PX = (100.0, 220.0)
#: Views the model must read of a track to be trusted fully.
MODEL_TRUSTED_VIEWS = 4
#: Weight the model keeps on people smaller than ``MODEL_TRUSTED_PX[0]``.
MODEL_MIN_WEIGHT = 0.25
#: Long hair falls over the upper back: the upper body is then read this share of the box lower.
LONG_HAIR_DROP = 0.14
#: A region whose main colour is at least this light (CIELAB L) and mostly grey is a grey garment:
#: its shadows are not black (:func:`sample_appearance`).
GREY_SHADOW_L = 45.0
#: Weak evidence alone (the model on a small person) stays below a full match.
WEAK_CAP = 0.45
#: Weak evidence up to here is kept as it is; above, squeezed into the room left under the cap.
WEAK_KNEE = 0.35
_TYPE_OF_LABEL = {label: vtype for vtype, labels in VEHICLE_TYPES.items() for label in labels}


class AttributeExtractor:
    """Turns a finished :class:`TrackRecord` into :class:`TrackAttributes`.

    >>> extractor = AttributeExtractor()  # doctest: +SKIP
    >>> extractor.extract(record).facet_scores()["upper:red"]  # doctest: +SKIP
    0.83
    """

    def __init__(
        self,
        pose: PoseEstimator | None = None,
        use_pose: bool = True,
        *,
        person_model: bool = True,
        person_model_path: Path | None = None,
    ) -> None:
        self._pose = pose
        self.use_pose = use_pose
        #: Whether to use the person attributes model when it is installed.
        self.use_person_model = person_model
        self._person_model_path = person_model_path
        self._person_model: PersonAttributeModel | None = None
        self._person_model_tried = False

    def prepare(self) -> None:
        """Load the models now (a missing pose model raises ModelError here, not mid-file).

        A missing person attributes model is not an error: one warning, and
        attributes come from colours alone.
        """
        _ = self.pose, self.person_model

    @property
    def pose(self) -> PoseEstimator | None:
        if self._pose is None and self.use_pose:
            self._pose = PoseEstimator()
        return self._pose

    @property
    def person_model(self) -> PersonAttributeModel | None:
        if not self._person_model_tried and self.use_person_model:
            self._person_model_tried = True
            self._person_model = load_person_attributes(self._person_model_path)
        return self._person_model

    def extract(self, record: TrackRecord, person: dict[str, float] | None = None) -> TrackAttributes:
        """The attributes of one track; ``person`` is the attributes model's mean answers, if read."""
        attrs = TrackAttributes()
        if record.label == "person":
            self._person(record, attrs, person)
        elif record.label in VEHICLE_LABELS:
            self._vehicle(record, attrs)
        self._movement(record, attrs)
        return attrs

    def extract_all(self, records: Sequence[TrackRecord]) -> list[TrackAttributes]:
        """The attributes of several tracks, the attributes model reading all their views in one batch."""
        model_answers = self._read_people(records)
        return [self.extract(rec, model_answers.get(i)) for i, rec in enumerate(records)]

    def _read_people(self, records: Sequence[TrackRecord]) -> dict[int, dict[str, float]]:
        """Per person track (by position), the attributes model's answers averaged over its views."""
        people = [(i, _model_views(rec)) for i, rec in enumerate(records) if rec.label == "person"]
        people = [(i, views) for i, views in people if views]
        if not people or self.person_model is None:
            return {}
        # The person's box without the margin: the model was trained on tight person crops.
        images = [v.image[rect_slices(v.local_box(), v.image.shape)] for _, views in people for v in views]
        try:
            answers = self.person_model.predict(images)
        except Exception as exc:  # a model that fails on a batch must not lose the tracks
            log.warning("person attributes model failed, colours only for %d tracks: %s", len(people), exc)
            return {}
        # Bags from the same views with room at the sides (Crop.wide), where they hang: one more
        # pass over small images (about 1.3 ms a view on this machine's cores).
        wide = [v.wide for _, views in people for v in views if v.wide is not None]
        try:
            wide_answers = iter(self.person_model.predict(wide)) if wide else iter(())
        except Exception as exc:  # as above: the tight views' answers still stand
            log.warning("person attributes model failed on the wide views, bags from tight ones: %s", exc)
            wide_answers, wide = iter(()), []
        out: dict[int, dict[str, float]] = {}
        at = 0
        for i, views in people:
            mine = answers[at : at + len(views)]
            at += len(views)
            mean = {k: float(np.mean([a.scores[k] for a in mine])) for k in mine[0].scores}
            if wide:
                roomy = [next(wide_answers) for v in views if v.wide is not None]
                if len(roomy) == len(views):
                    for key in BAG_OUTPUTS:
                        mean[key] = float(np.mean([a.scores[key] for a in roomy]))
            mean["height_px"] = float(np.median([v.box[3] - v.box[1] for v in views]))
            mean["views"] = float(len(views))
            out[i] = mean
        return out

    # -- people -----------------------------------------------------------

    def _person(self, record: TrackRecord, attrs: TrackAttributes, model: dict[str, float] | None) -> None:
        postures: dict[str, float] = defaultdict(float)
        poses: list[Pose | None] = []
        weight_total = 0.0
        for crop in record.crops:
            box = crop.local_box()
            pose = self.pose.estimate(crop.image, box) if self.pose is not None else None
            poses.append(pose)
            w = max(crop.quality, 1e-3)
            weight_total += w
            for name, s in posture(pose, box).items():
                postures[name] += w * s
        if weight_total == 0 and not record.samples:
            return
        if weight_total:
            attrs.posture = {k: round(v / weight_total, 3) for k, v in postures.items()}
        standing = attrs.posture.get("standing", 1.0) >= 0.5
        if len(record.samples) >= MIN_SAMPLES and standing:
            colours, lightness = sample_appearance(record.samples, model["has_longhair"] if model else 0.0)
            span = record.samples[-1].t - record.samples[0].t
            how = f"{len(record.samples)} views over {span:.0f} s"
        else:  # few views, or not standing (box proportions would not hold): the keypoints of the best crops
            colours, lightness = _crop_appearance(record.crops, poses)
            used_pose = any(p is not None and getattr(p, "reliable", True) for p in poses)
            how = f"{len(record.crops)} crops" + (", pose keypoints" if used_pose else ", box proportions")
        for region, value in lightness.items():
            attrs.shade[region] = shade_scores(value)
            for name, s in attrs.shade[region].items():
                attrs.evidence[f"{region}:{name}"] = f"{region} {name} {s:.2f}: lightness {value:.0f} ({how})"
        reliance = _model_weight(model)
        for region in ("upper", "lower", "headwear"):
            scores = {c: s for c, s in colours.get(region, {}).items() if s >= 0.05}
            if region == "headwear":
                scores, attrs.headwear_worn, why = _headwear(scores, model, reliance)
                attrs.evidence["headwear:worn"] = f"{why} ({how})"
            attrs.colours[region] = {c: round(s, 3) for c, s in scores.items()}
            for colour, s in scores.items():
                attrs.evidence[f"{region}:{colour}"] = f"{region} {colour} {s:.2f} ({how})"
        for k, v in attrs.posture.items():
            attrs.evidence[f"posture:{k}"] = f"{k} {v:.2f} ({len(record.crops)} crops)"
        # The crops are mostly the upright part of a track: a person who went down and stayed
        # down for a while is lying, whatever the thumbnails show.
        seen = [o for o in record.observations if o.detected]
        down = lying_spell([o.t for o in seen], [o.box for o in seen])
        if down > attrs.posture.get("lying", 0.0):
            attrs.posture["lying"] = down
            attrs.evidence["posture:lying"] = f"lying {down:.2f} (box proportions for {LYING_SECONDS:g} s)"
        for item, info in record.carried.items():
            share = float(info.get("share", 0.0))
            frames = int(info.get("frames", 0))
            score = min(1.0, share / CARRIED_SHARE) * (1.0 if frames >= 2 else 0.5)
            attrs.carried[item] = round(score, 3)
            attrs.evidence[f"carried:{item}"] = f"{item} seen beside them in {frames} frames ({share:.0%})"
        if model is not None:
            for item, key in (("handbag", "has_bag"), ("backpack", "has_backpack")):
                weighed = _weigh(model[key], _model_trust(model))
                if weighed > attrs.carried.get(item, 0.0):
                    attrs.carried[item] = round(weighed, 3)
                    attrs.evidence[f"carried:{item}"] = (
                        f"{item} {weighed:.2f}: attributes model {model[key]:.2f} over "
                        f"{model['views']:.0f} views of a {model['height_px']:.0f} px tall person"
                    )

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


def _crop_appearance(
    crops: Sequence[Crop], poses: Sequence[Pose | None]
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Colour scores per body region over the best crops (regions from pose keypoints where seen),
    and the lightness of each clothing region's main colour (as :func:`sample_appearance`)."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    light_sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    weight_total = 0.0
    for crop, pose in zip(crops, poses, strict=True):
        w = max(crop.quality, 1e-3)
        weight_total += w
        for region, rect in body_regions(crop.local_box(), pose).items():
            pixels = crop.image[rect_slices(rect, crop.image.shape)]
            if pixels.shape[0] < 2 or pixels.shape[1] < 2:
                continue
            # With keypoints, only torso / leg pixels count: the pavement
            # between the legs would otherwise make every trouser grey.
            mask = region_mask(region, rect, pose, crop.image.shape) if region != "headwear" else None
            scores = colour_scores(pixels, mask)
            for colour, s in scores.items():
                sums[region][colour] += w * s
            if region in SHADED_REGIONS:
                value = pixel_lightness(pixels, mask, max(scores, key=lambda c: scores[c]))
                if value is not None:
                    light_sums[region][0] += w * value
                    light_sums[region][1] += w
    if not weight_total:
        return {}, {}
    colours = {r: {c: v / weight_total for c, v in scores.items()} for r, scores in sums.items()}
    return colours, {r: total / w for r, (total, w) in light_sums.items() if w > 0}


def _headwear(
    scores: dict[str, float], model: dict[str, float] | None, reliance: float
) -> tuple[dict[str, float], float, str]:
    """Head colours, whether headwear is worn, and why.

    From colour alone: hair and skin colours count little, another colour on
    the head means a hat. With the attributes model, its hat answer weighs in
    by ``reliance``, and hair it calls long vetoes the colour evidence (long
    hair is not headwear). Head colours are then scaled down as far as
    headwear seems absent, so hair is not read as "a white hat".
    """
    adjusted = {c: s * (HAIR_WEIGHT if c in HAIR_AND_SKIN else 1.0) for c, s in scores.items()}
    by_colour = float(min(1.0, max((s for c, s in scores.items() if c not in HAIR_AND_SKIN), default=0.0)))
    why = f"head colours {_top(scores)}; hair and skin colours count little"
    worn = by_colour
    if model is not None:
        hat, hair = model["has_hat"], model["has_longhair"]
        # The model answers the question itself; a head colour only hints at a hat.
        seen = 0.8 * hat + 0.2 * by_colour * (1.0 - hair)
        worn = (1.0 - reliance) * by_colour + reliance * seen
        why += f"; attributes model: hat {hat:.2f}, long hair {hair:.2f} (weight {reliance:.2f})"
    # Colours on a bare head are hair: they count as far as headwear is worn.
    factor = min(1.0, worn / 0.5)
    adjusted = {c: s * factor for c, s in adjusted.items()}
    return adjusted, round(worn, 3), why


#: The attributes model's outputs read from the wide views (:func:`camsight.tracking.crops.wide_view`).
BAG_OUTPUTS = ("has_bag", "has_backpack")


def _model_trust(model: dict[str, float] | None) -> float:
    """How far (0-1) the attributes model's answers are trusted: by the person's height, and by
    how many views it read (one view of a fragment is one guess)."""
    if model is None:
        return 0.0
    lo, hi = MODEL_TRUSTED_PX
    tall = float(np.clip((model["height_px"] - lo) / (hi - lo), 0.0, 1.0))
    return tall * float(np.clip((model["views"] - 1.0) / (MODEL_TRUSTED_VIEWS - 1.0), 0.0, 1.0))


def _model_weight(model: dict[str, float] | None) -> float:
    """The weight of the model's hat answer against the head's colours."""
    if model is None:
        return 0.0
    return MODEL_MIN_WEIGHT + (1.0 - MODEL_MIN_WEIGHT) * _model_trust(model)


def _weigh(p: float, trust: float) -> float:
    """A model probability as evidence: in full when trusted, squeezed under a full match when
    not. Above :data:`WEAK_KNEE` the probability is compressed, not cut, so that weak answers
    still rank people (0.55 above 0.45) without reaching the cap.

    >>> _weigh(0.9, 1.0), round(_weigh(0.9, 0.0), 3), _weigh(0.3, 0.0), _weigh(1.0, 0.0)
    (0.9, 0.435, 0.3, 0.45)
    """
    cap = WEAK_CAP + trust * (1.0 - WEAK_CAP)
    knee = min(WEAK_KNEE, cap)
    if p <= knee:
        return float(p)
    return float(knee + (p - knee) * (cap - knee) / (1.0 - knee))


def _model_views(record: TrackRecord) -> list[Crop]:
    """Up to :data:`MODEL_VIEWS` views of a person, spread over the track (its best crops without samples)."""
    views = record.samples or record.crops
    if len(views) > MODEL_VIEWS:
        pick = np.linspace(0, len(views) - 1, MODEL_VIEWS).round().astype(int)
        views = [views[i] for i in pick]
    return [v for v in views if v.box[3] - v.box[1] >= 8 and v.box[2] - v.box[0] >= 4]


def sample_colours(samples: Sequence[Crop], long_hair: float = 0.0) -> dict[str, dict[str, float]]:
    """Mean colour scores per body region over a person's views (box proportions).

    Each view is named in its frame's light, and the colours beside the
    person at the height of each region (the crop's margin) are taken out
    (:func:`camsight.analytics.colour.without_background`). ``long_hair``
    (the attributes model's probability): long hair seen from behind covers
    the shoulders, so for likely long hair the upper body is read below it.
    """
    return sample_appearance(samples, long_hair)[0]


def sample_appearance(
    samples: Sequence[Crop], long_hair: float = 0.0
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """:func:`sample_colours`, and per clothing region the lightness of its main colour.

    The lightness (CIELAB L, 0-100, in each view's light) is that of the pixels of the region's
    strongest colour in that view ("light blue" is a blue that is light), trimmed-averaged over
    the views like the colours.
    """
    seen: dict[str, list[dict[str, float]]] = defaultdict(list)
    lightness: dict[str, list[float]] = defaultdict(list)
    for view in samples:
        box = view.local_box()
        light = None if view.light is None else Illuminant(view.light[0], tuple(view.light[1:]))  # type: ignore[arg-type]
        # One map of the whole view: the three regions and what is beside them read from it.
        cmap = colour_map(view.image, light)
        width = view.image.shape[1]
        regions = body_regions(box, None)
        ux1, uy1, ux2, uy2 = regions["upper"]
        drop = LONG_HAIR_DROP * float(np.clip((long_hair - 0.2) / 0.4, 0.0, 1.0))
        regions["upper"] = (ux1, uy1 + drop * (box[3] - box[1]), ux2, uy2)
        read: dict[str, dict[str, float]] = {}
        for region, rect in regions.items():
            if rect[2] - rect[0] < 2 or rect[3] - rect[1] < 2:
                continue
            read[region] = _person_shares(cmap, rect, box, width, region, BACKGROUND_SHARE[region])
        if "upper" in read and "lower" in read:
            below = _below_coat(cmap, regions["lower"], box, width, read["upper"])
            if below is not None:
                regions["lower"], read["lower"] = below
        for region, shares in read.items():
            rect = regions[region]
            seen[region].append(scores_from_shares(shares))
            if region in SHADED_REGIONS:
                main = max(shares, key=lambda c: shares[c])
                value = colour_lightness(cmap, [rect], main)
                if value is not None:
                    lightness[region].append(value)
    colours = {region: _trimmed_mean(views) for region, views in seen.items()}
    light = {r: _trimmed_mean([{"L": v} for v in values])["L"] for r, values in lightness.items()}
    for region, value in light.items():
        scores = colours.get(region, {})
        # A mid or light grey garment's shadows are grey too, as dark denim is blue: the black
        # they read is not a black garment (PETS09's grey trousers at L 54 read black 0.87 beside
        # grey 1.0; black garments read L 1-12 on PETS09 and the Intel clip).
        if value >= GREY_SHADOW_L and 0.0 < scores.get("black", 0.0) <= scores.get("grey", 0.0):
            scores["grey"] = max(scores["grey"], scores.pop("black"))
    return colours, light


def _person_shares(
    cmap: ColourMap, rect: Rect, box: Rect, width: int, region: str, background_share: float
) -> dict[str, float]:
    """The colour shares of one region of a view, less what the floor or wall beside the person explains."""
    shares = region_shares(cmap, [rect], fold_shade=region != "headwear")
    beside = [(0.0, rect[1], box[0] - 1, rect[3]), (box[2] + 1, rect[1], float(width), rect[3])]
    background = region_shares(cmap, beside)
    if sum(background.values()) > 0:
        shares = without_background(shares, background, background_share)
    return shares


def _below_coat(
    cmap: ColourMap, lower: Rect, box: Rect, width: int, upper: Mapping[str, float]
) -> tuple[Rect, dict[str, float]] | None:
    """The shins' rectangle and shares when, in this view, a coat covers the thighs; else None.

    A coat is seen when the thighs read the upper body's main colour and the shins another one,
    clearly (``SHIN_MAIN_SHARE``), and not only a lighter or darker grey. Someone dressed in one
    colour reads it on the shins too, so their lower body is read from the whole region as before.
    """
    x1, y1, x2, y2 = lower
    split = y1 + SHIN_FROM * (y2 - y1)
    if split - y1 < 2 or y2 - split < 2 or not upper:
        return None
    coat = max(upper, key=lambda c: upper[c])
    thighs = _person_shares(cmap, (x1, y1, x2, split), box, width, "lower", BACKGROUND_SHARE["lower"])
    # Most people's thighs are not the colour of their top: then the shins need no reading.
    if not thighs or max(thighs, key=lambda c: thighs[c]) != coat:
        return None
    shin_rect = (x1, split, x2, y2)
    shins = _person_shares(cmap, shin_rect, box, width, "lower", SHIN_BACKGROUND_SHARE)
    if not shins:
        return None
    shin_main = max(shins, key=lambda c: shins[c])
    if shin_main == coat or shins[shin_main] < SHIN_MAIN_SHARE:
        return None
    if coat in _ACHROMATIC and shin_main in _ACHROMATIC:
        return None
    return shin_rect, shins


def shade_scores(lightness: float) -> dict[str, float]:
    """The ``light`` score of a garment colour's lightness (CIELAB L): 0 up to 50, 1 from 62.

    >>> shade_scores(80.0), shade_scores(45.0)
    ({'light': 1.0}, {'light': 0.0})
    """
    t = min(max((lightness - LIGHT_L[0]) / (LIGHT_L[1] - LIGHT_L[0]), 0.0), 1.0)
    return {"light": round(t * t * (3.0 - 2.0 * t), 3)}


def _trimmed_mean(views: list[dict[str, float]]) -> dict[str, float]:
    """Per colour, the mean over views without the highest and lowest quarter (from 4 views).

    A shadow, a passer-by or a turn that spoils a few views does not move it.
    """
    out: dict[str, float] = {}
    for colour in views[0]:
        values = np.sort([v.get(colour, 0.0) for v in views])
        cut = len(values) // 4
        out[colour] = float(values[cut : len(values) - cut].mean())
    return out


def _top(scores: dict[str, float]) -> str:
    best = sorted(scores.items(), key=lambda kv: -kv[1])[:2]
    return ", ".join(f"{c} {s:.2f}" for c, s in best) or "none"
