"""YOLOX (any COCO export) run by onnxruntime."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from camsight.errors import ModelError
from camsight.vision.detections import CLASSES, DEFAULT_CONFIDENCE, FAINT_CONFIDENCE, PERSON, Detections
from camsight.vision.models import resolve_model

#: COCO-80 index -> camsight class, for the classes camsight keeps.
COCO80 = {
    0: "person",
    1: "bicycle",
    2: "car",
    3: "motorcycle",
    5: "bus",
    7: "truck",
    24: "backpack",
    25: "umbrella",
    26: "handbag",
    28: "suitcase",
}
_KEEP = np.array(sorted(COCO80), dtype=np.int64)
#: The person's position among the kept classes.
_PERSON = int(np.flatnonzero(_KEEP == 0)[0])
assert set(COCO80.values()) == set(CLASSES)

MODEL_FILES = ("yolox_nano.onnx", "yolox_tiny.onnx", "yolox_s.onnx")
#: The registry name of the default weights (``camsight models pull yolox-nano``).
REGISTRY_NAME = "yolox-nano"
HOW_TO_GET = (
    f"run: camsight models pull {REGISTRY_NAME} (or pass --model PATH to a YOLOX .onnx export, "
    "or put one in the CAMSIGHT_MODELS directory)"
)


class YoloxDetector:
    """YOLOX detector; input BGR, letterboxed with pad 114, no normalisation."""

    name = "yolox"

    def __init__(
        self,
        model: Path | None = None,
        *,
        confidence: float | None = None,
        nms_iou: float = 0.45,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.model_path = resolve_model(
            model, MODEL_FILES, package=None, what="YOLOX", how_to_get=HOW_TO_GET, folder=REGISTRY_NAME
        )
        options = ort.SessionOptions()
        # One thread per call, several calls at once: for a model this small,
        # frames detected side by side use two cores better than one frame
        # split across them (measured: 13x vs 9x real time on vtest.avi).
        options.intra_op_num_threads = threads or 1
        #: Concurrent detect() calls worth making (onnxruntime sessions are thread-safe).
        self.parallel = 1 if threads and threads > 1 else max(1, min(2, os.cpu_count() or 1))
        options.log_severity_level = 3
        # Spinning worker threads burn the CPU that decoding and tracking
        # need between two detections on a 2-core box.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                str(self.model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise ModelError(f"cannot load YOLOX model {self.model_path}: {exc}") from None
        inp = self._session.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or not all(isinstance(s, int) for s in shape[2:]):
            raise ModelError(f"{self.model_path} is not a YOLOX export with a fixed NCHW input (got {shape})")
        self._input_name = inp.name
        self.input_hw = (int(shape[2]), int(shape[3]))
        out = self._session.get_outputs()[0].shape
        if len(out) != 3 or out[-1] != 85:
            raise ModelError(f"{self.model_path} does not output COCO YOLOX rows (got {out})")
        self.confidence = DEFAULT_CONFIDENCE if confidence is None else confidence
        self.nms_iou = nms_iou
        self._grid, self._stride = _grids(self.input_hw)

    def detect(self, image: np.ndarray) -> Detections:
        """Detect camsight's classes in a BGR image."""
        blob, ratio = _letterbox(image, self.input_hw)
        try:
            raw = self._session.run(None, {self._input_name: blob})[0][0]
        except Exception as exc:  # onnxruntime raises its own unrelated types; a broken model is fixable
            # The file's name, not its path: this sentence reaches API users through a job's reason.
            raise ModelError(f"the YOLOX model {self.model_path.name} failed on a frame: {exc}") from exc
        xy = (raw[:, :2] + self._grid) * self._stride
        wh = np.exp(raw[:, 2:4]) * self._stride
        scores = raw[:, 4:5] * raw[:, 5 + _KEEP]
        cls_pos = scores.argmax(1)
        conf = scores[np.arange(len(scores)), cls_pos]
        # Faint person boxes go through the same NMS: one under a confident box of the same
        # person is suppressed by it, and a faint box never suppresses a stronger one.
        keep = (conf >= self.confidence) | ((cls_pos == _PERSON) & (conf >= FAINT_CONFIDENCE))
        if not keep.any():
            return Detections.empty()
        xy, wh, conf, cls_pos = xy[keep], wh[keep], conf[keep], cls_pos[keep]
        boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1) / ratio
        h, w = image.shape[:2]
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        found = _nms(boxes, conf, [COCO80[int(_KEEP[c])] for c in cls_pos], self.nms_iou)
        strong = found.confidence >= self.confidence
        if strong.all():
            return found
        faint = found.select(~strong)
        return replace(found.select(strong), faint=faint.of(PERSON))


def _letterbox(image: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    ratio = min(hw[0] / h, hw[1] / w)
    nh, nw = round(h * ratio), round(w * ratio)
    canvas = np.full((hw[0], hw[1], 3), 114, np.uint8)
    canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    blob = canvas.transpose(2, 0, 1)[None].astype(np.float32)
    return blob, ratio


def _grids(hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    grids, strides = [], []
    for stride in (8, 16, 32):
        gh, gw = hw[0] // stride, hw[1] // stride
        xv, yv = np.meshgrid(np.arange(gw), np.arange(gh))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((gh * gw, 1), stride))
    return (
        np.concatenate(grids).astype(np.float32),
        np.concatenate(strides).astype(np.float32),
    )


def _nms(boxes: np.ndarray, conf: np.ndarray, labels: list[str], iou: float) -> Detections:
    """Class-aware non-maximum suppression."""
    if len(boxes) == 0:
        return Detections.empty()
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    class_ids = [CLASSES.index(lab) for lab in labels]
    idx = cv2.dnn.NMSBoxesBatched(xywh.tolist(), conf.tolist(), class_ids, 0.0, iou)
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    return Detections(
        boxes[idx].astype(np.float32),
        conf[idx].astype(np.float32),
        tuple(labels[i] for i in idx),
    )
