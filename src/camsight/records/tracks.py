"""What the track builder hands to the store: one record per finished track."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from camsight.records.attributes import TrackAttributes

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Observation:
    """A track's box in one analysed frame.

    ``detected`` is false when the box was carried over from the last
    detection because the motion gate skipped the detector for this frame,
    or interpolated between two detections while the object was hidden.
    """

    frame: int
    t: float
    box: Box
    confidence: float
    detected: bool = True


@dataclass(slots=True)
class Crop:
    """A candidate thumbnail: the image inside ``box`` (plus a margin)."""

    frame: int
    t: float
    box: Box
    quality: float
    image: np.ndarray
    #: Top-left corner of ``image`` in the frame, to map ``box`` into the crop.
    origin: tuple[int, int] = (0, 0)
    #: The frame's light, when it was measured: (white level, B, G, R gains) as in
    #: :class:`camsight.vision.light.Illuminant`, to name colours as they are, not as lit.
    light: tuple[float, float, float, float] | None = None
    #: The person with room at both sides and no margin above or below, at most
    #: :data:`camsight.tracking.crops.WIDE_MAX_HEIGHT` pixels tall: what the attributes model
    #: reads bags from (a bag hanging at the hip is often outside the detector's box).
    wide: np.ndarray | None = None

    def local_box(self) -> Box:
        """``box`` in the crop's own pixel coordinates."""
        ox, oy = self.origin
        x1, y1, x2, y2 = self.box
        return (x1 - ox, y1 - oy, x2 - ox, y2 - oy)


@dataclass(frozen=True)
class Kinematics:
    """Movement in image space.

    ``direction_deg`` is the heading of the overall displacement in image
    coordinates (0 = right, 90 = down the picture); ``speed_px_s`` the mean
    speed along the smoothed path, ``speed_bh_s`` the same in box heights a
    second, which does not depend on distance from the camera.
    """

    speed_px_s: float
    speed_bh_s: float
    max_speed_px_s: float
    direction_deg: float | None
    heading: str
    displacement_px: float
    path_px: float


@dataclass
class TrackRecord:
    """Everything known about one track when it ends."""

    local_id: int
    label: str
    observations: list[Observation]
    crops: list[Crop]
    kinematics: Kinematics
    confidence: float
    carrier_local_id: int | None = None
    carried: dict[str, dict[str, float | int]] = field(default_factory=dict)
    labels_seen: dict[str, int] = field(default_factory=dict)
    #: Mean colour descriptor over the detected frames (see tracking.appearance).
    appearance: np.ndarray | None = None
    #: Unoccluded, whole views of the object spread over the whole track, for
    #: attributes estimated from many frames (``crops`` are the few best thumbnails).
    samples: list[Crop] = field(default_factory=list)
    #: Filled by the attribute extractor before the record is stored.
    attributes: TrackAttributes | None = None
    #: Vision-language embedding of the best crop, with the model's name.
    embedding: np.ndarray | None = None
    embedding_model: str | None = None
    #: Person re-identification vector (L2-normalised) with the model's name, stored beside
    #: ``embedding`` in ``track_embeddings``: it groups a person's fragments and ranks look-alikes.
    reid: np.ndarray | None = None
    reid_model: str | None = None

    @property
    def start_t(self) -> float:
        return self.observations[0].t

    @property
    def end_t(self) -> float:
        return self.observations[-1].t

    @property
    def first_frame(self) -> int:
        return self.observations[0].frame

    @property
    def last_frame(self) -> int:
        return self.observations[-1].frame
