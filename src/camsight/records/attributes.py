"""Per-track appearance attributes: the data, independent of how they are computed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from camsight.records.facets import FACET_INDEX, FACETS


@dataclass
class TrackAttributes:
    """What a track looked like and did, each property with a score in [0, 1].

    ``colours`` maps a region (upper, lower, headwear for people; body for
    vehicles) to colour -> score; ``shade`` a clothing region to ``light`` ->
    score (how light its main colour is). ``evidence`` says, per facet, where a score
    came from, so every search result can be explained.

    >>> a = TrackAttributes(colours={"upper": {"red": 0.9}}, motion={"walking": 1.0})
    >>> a.facet_scores()["upper:red"]
    0.9
    """

    colours: dict[str, dict[str, float]] = field(default_factory=dict)
    shade: dict[str, dict[str, float]] = field(default_factory=dict)
    headwear_worn: float | None = None
    carried: dict[str, float] = field(default_factory=dict)
    posture: dict[str, float] = field(default_factory=dict)
    motion: dict[str, float] = field(default_factory=dict)
    heading: dict[str, float] = field(default_factory=dict)
    vehicle: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)

    def facet_scores(self) -> dict[str, float]:
        """Flatten to facet keys (see records.facets)."""
        out: dict[str, float] = {}
        for region, scores in (*self.colours.items(), *self.shade.items()):
            for colour, s in scores.items():
                out[f"{region}:{colour}"] = s
        if self.headwear_worn is not None:
            out["headwear:worn"] = self.headwear_worn
        for prefix, scores in (
            ("carried", self.carried),
            ("posture", self.posture),
            ("motion", self.motion),
            ("heading", self.heading),
            ("vehicle", self.vehicle),
        ):
            for key, s in scores.items():
                out[f"{prefix}:{key}"] = s
        return {k: v for k, v in out.items() if k in FACET_INDEX}

    def facet_vector(self) -> np.ndarray:
        """uint8 scores (0-255) in FACETS order: compact rows for the search index."""
        vec = np.zeros(len(FACETS), np.uint8)
        for key, s in self.facet_scores().items():
            vec[FACET_INDEX[key]] = round(min(max(s, 0.0), 1.0) * 255)
        return vec

    def to_dict(self) -> dict[str, Any]:
        return _rounded(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackAttributes:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value
