"""Person re-identification embeddings from Intel's ``person-reidentification-retail-0288``.

The model reads one person crop (128x256, BGR, 0-255) and gives a 256-d
appearance vector; two views of one person have a high cosine similarity.
camsight uses it to group a person's track fragments into one search result
and to rank "more like this" (:mod:`camsight.search.grouping`). It describes
clothing and build as seen, not identity: nothing here is matched against
anyone known (DESIGN.md).

A track's vector is the normalised mean of the vectors of a few of its best,
whole views, all of a flush's tracks in one batch on one inference thread.

>>> model = ReidModel()  # doctest: +SKIP
>>> model.embed_tracks([[crop_a, crop_b]])[0].shape  # doctest: +SKIP
(256,)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from camsight.errors import ModelError
from camsight.records.tracks import Crop
from camsight.vision.models import resolve_model
from camsight.vision.openvino_runner import BatchRunner

log = logging.getLogger(__name__)

#: The registry name (``camsight models pull person-reidentification-retail-0288``); also the
#: ``model`` of its rows in ``track_embeddings``.
REGISTRY_NAME = "person-reidentification-retail-0288"
MODEL_FILES = (f"{REGISTRY_NAME}.xml",)
HOW_TO_GET = f"run: camsight models pull {REGISTRY_NAME} (add --from FOLDER to copy a local copy)"
INPUT_HW = (256, 128)
DIM = 256
#: Views of a track embedded: a few good ones average out pose and occlusion; more cost more.
VIEWS_PER_TRACK = 4
#: Crops smaller than this (pixels high) say little about clothing; they are skipped when bigger exist.
MIN_HEIGHT = 24


class ReidModel:
    """The OpenVINO re-identification model, compiled once for batches of crops on one thread."""

    name = REGISTRY_NAME

    def __init__(self, model: Path | None = None, *, threads: int = 1) -> None:
        self.model_path = resolve_model(
            model,
            MODEL_FILES,
            package=None,
            what="person re-identification",
            how_to_get=HOW_TO_GET,
            folder=REGISTRY_NAME,
        )
        self._runner = BatchRunner(
            self.model_path, INPUT_HW, what="person re-identification", threads=threads
        )
        widths = [o.get_partial_shape()[-1].get_length() for o in self._runner.outputs]
        if widths != [DIM]:
            raise ModelError(f"{self.model_path} is not {REGISTRY_NAME} (outputs of widths {widths})")
        self._output = self._runner.outputs[0]

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """One L2-normalised vector per BGR person crop, as an (N, 256) float32 array."""
        if not crops:
            return np.zeros((0, DIM), np.float32)
        parts = [np.asarray(r[self._output], np.float32).reshape(-1, DIM) for r in self._runner.run(crops)]
        vectors = np.concatenate(parts)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    def embed_tracks(self, views: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray | None]:
        """Per track, the normalised mean vector of its views (None for a track without one)."""
        flat = [crop for track in views for crop in track]
        vectors = self.embed(flat)
        out: list[np.ndarray | None] = []
        at = 0
        for track in views:
            n = len(track)
            if n == 0:
                out.append(None)
                continue
            mean = vectors[at : at + n].mean(axis=0)
            at += n
            out.append((mean / max(float(np.linalg.norm(mean)), 1e-9)).astype(np.float32))
        return out


def track_views(
    crops: Sequence[Crop], samples: Sequence[Crop], limit: int = VIEWS_PER_TRACK
) -> list[np.ndarray]:
    """Up to ``limit`` person crops (the box only, no margin) to embed a track from.

    The best thumbnails first (sharpest, least hidden), then whole views spread
    over the track, so a vector is not one pose's.
    """
    chosen: list[np.ndarray] = []
    for crop in [*sorted(crops, key=lambda c: -c.quality), *samples]:
        x1, y1, x2, y2 = (round(v) for v in crop.local_box())
        h, w = crop.image.shape[:2]
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if x2 - x1 < 4 or y2 - y1 < 8:
            continue
        chosen.append(crop.image[y1:y2, x1:x2])
    big = [c for c in chosen if c.shape[0] >= MIN_HEIGHT]
    return (big or chosen)[:limit]


def load_reid(model: Path | None = None) -> ReidModel | None:
    """The re-id model, or None (with a one-line warning) when it is not installed or cannot load.

    Indexing then goes on without re-id vectors: grouping and "more like this"
    fall back to the colour appearance descriptor.
    """
    try:
        return ReidModel(model)
    except ModelError as exc:
        log.warning("person re-identification model not used: %s", exc)
        return None
