"""Settings shared by every camera and file.

The detector, motion gate, tracking, attributes, embeddings, analysis rate,
storage and uploads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from camsight.config.base import StrictModel


class DetectorConfig(StrictModel):
    """Which detector finds people and vehicles."""

    backend: Literal["ssd", "yolox"] = "yolox"
    """YOLOX-nano (Apache-2.0, onnxruntime) tracks best of the models camsight knows; SSD is the legacy
    OpenCV DNN backend (its package declares no licence)."""
    model: Path | None = None
    """The model file; default: the backend's own (yolox-nano from the models folder)."""
    confidence: Annotated[float, Field(gt=0, lt=1)] | None = None
    """Lowest detection confidence kept; default: the backend's own."""


class MotionConfig(StrictModel):
    """The motion gate: frames where nothing moved skip the detector."""

    enabled: bool = True
    pixel_threshold: Annotated[int, Field(ge=1, le=255)] = 18
    """Grey-level change that counts as a moving pixel."""
    area_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.0015
    """Share of the picture that must move for the detector to run."""
    max_skip: Annotated[float, Field(gt=0)] = 2.0
    """Seconds after which the detector runs anyway, moving or not."""


class TrackingConfig(StrictModel):
    """How detections become tracks."""

    lost_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0
    """Seconds a track survives without a detection."""
    activation: dict[
        Literal["person", "vehicle", "bicycle", "carried"], Annotated[float, Field(gt=0, lt=1)]
    ] = Field(default_factory=lambda: {"person": 0.6, "vehicle": 0.3, "bicycle": 0.4, "carried": 0.4})
    """Detection confidence that starts a track, per class group."""
    min_hits: Annotated[int, Field(ge=1, le=10)] = 2
    """Detections in a row before a track is confirmed (its first boxes are kept once it is)."""
    appearance_weight: Annotated[float, Field(ge=0, le=10)] = 2.0
    """How much colour appearance counts against box overlap when matching."""
    appearance_memory: Annotated[float, Field(ge=0, lt=1)] = 0.8
    """How slowly a track's appearance follows new detections (0: only the last)."""
    min_similarity: Annotated[float, Field(gt=0, lt=1)] = 0.2
    """Lowest fused (overlap x confidence x colour) similarity that continues a track."""
    thumbnails_per_track: Annotated[int, Field(ge=1, le=10)] = 3
    """Sharp, large, unoccluded crops kept per track."""
    link_seconds: Annotated[float, Field(ge=0, le=30)] = 3.0
    """Seconds after a track is lost in which a new track that starts nearby and looks the same
    continues it (0 turns linking off)."""


class AttributesConfig(StrictModel):
    """Appearance attributes for search."""

    enabled: bool = True
    """Compute appearance attributes (clothing colours, posture...) for search."""
    pose: bool = True
    """Use the pose model for body regions and posture (else box proportions)."""


class EmbeddingsConfig(StrictModel):
    """The optional vision-language plug-in."""

    model: str | None = None
    """An installed vision-language model (name or folder) to embed crops with at index time and
    queries with at search time; off when null. Install one with `camsight models pull NAME`."""
    weight: Annotated[float, Field(ge=0, le=1)] = 0.3
    """Share of the ranking score given to visual similarity when both it and attribute facets are
    available."""


class IndexConfig(StrictModel):
    """Indexing recorded files."""

    fps: Annotated[float, Field(gt=0, le=240)] | Literal["native"] = 5.0
    """Frames analysed per second of video, or "native" for every frame."""


class StorageConfig(StrictModel):
    """Where recordings go and how much disk they may use."""

    recordings: Path | None = None
    """Recordings folder (default: ``recordings/`` in the data directory; ``~`` is your home)."""
    min_free_gb: Annotated[float, Field(ge=0, le=100000)] = 1.0
    """Keep at least this much disk free: below it the oldest footage is deleted (and a warning
    raised)."""


class UploadsConfig(StrictModel):
    """Videos uploaded through the API to be indexed."""

    max_mb: Annotated[float, Field(gt=0, le=1_000_000)] = 4096
    """Largest file accepted, in MiB."""
    folder: Path | None = None
    """Where uploaded files are kept (default: ``uploads/`` in the data directory)."""
