"""Person attributes from Intel's ``person-attributes-recognition-crossroad-0230`` (OpenVINO IR).

The model reads one person crop (80x160, BGR, 0-255) and gives eight
probabilities: is_male, has_bag, has_backpack, has_hat, has_longsleeves,
has_longpants, has_longhair, has_coat_jacket, plus two points in the crop
where the top and bottom clothing colours can be sampled.

camsight does not analyse sex (DESIGN.md): the ``is_male`` output is dropped
inside :meth:`PersonAttributeModel.predict`, right after inference, and never
reaches a caller, a log or the store. Only :data:`ATTRIBUTES` leave this
module.

Crops are batched (one inference per batch) on one inference thread, so the
model never competes with the detector threads for the two cores of a small
box.

>>> model = PersonAttributeModel()  # doctest: +SKIP
>>> model.predict([crop])[0].scores["has_bag"]  # doctest: +SKIP
0.71
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from camsight.errors import ModelError
from camsight.vision.models import resolve_model

log = logging.getLogger(__name__)

#: The registry name (``camsight models pull person-attributes-recognition-crossroad-0230``).
REGISTRY_NAME = "person-attributes-recognition-crossroad-0230"
MODEL_FILES = (f"{REGISTRY_NAME}.xml",)
HOW_TO_GET = f"run: camsight models pull {REGISTRY_NAME} (add --from FOLDER to copy a local copy)"
#: The model's eight outputs, in order. Index 0 (is_male) is discarded unread.
_OUTPUTS = (
    "is_male",
    "has_bag",
    "has_backpack",
    "has_hat",
    "has_longsleeves",
    "has_longpants",
    "has_longhair",
    "has_coat_jacket",
)
#: What camsight keeps: everything but the model's sex output.
ATTRIBUTES: tuple[str, ...] = _OUTPUTS[1:]
INPUT_HW = (160, 80)
#: Crops per inference call: larger batches gain little on two cores and hold more memory.
MAX_BATCH = 16


@dataclass(frozen=True)
class PersonAttributes:
    """One crop's attributes: ``scores`` (name in :data:`ATTRIBUTES` -> probability) and the
    normalised (x, y) points in the crop where the top and bottom colours are seen."""

    scores: dict[str, float]
    top_point: tuple[float, float]
    bottom_point: tuple[float, float]


class PersonAttributeModel:
    """The OpenVINO attributes model, compiled once for a batch of crops on one thread."""

    name = REGISTRY_NAME

    def __init__(self, model: Path | None = None, *, threads: int = 1) -> None:
        self.model_path = resolve_model(
            model,
            MODEL_FILES,
            package=None,
            what="person attributes",
            how_to_get=HOW_TO_GET,
            folder=REGISTRY_NAME,
        )
        try:
            import openvino as ov

            core = ov.Core()
            graph = core.read_model(str(self.model_path))
            # A dynamic batch: one call scores all of a track's samples.
            graph.reshape({graph.inputs[0].get_any_name(): ov.PartialShape([-1, 3, *INPUT_HW])})
            self._compiled = core.compile_model(
                graph,
                "CPU",
                {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"},
            )
        except ModelError:
            raise
        except Exception as exc:  # openvino raises RuntimeError and friends for a bad file
            raise ModelError(f"cannot load the person attributes model {self.model_path}: {exc}") from None
        self._request = self._compiled.create_infer_request()
        outputs = list(self._compiled.outputs)
        widths = [o.get_partial_shape()[1].get_length() for o in outputs]
        if sorted(widths) != [2, 2, len(_OUTPUTS)]:
            raise ModelError(f"{self.model_path} is not {REGISTRY_NAME} (outputs of widths {widths})")
        # The probabilities, then the top and the bottom colour points, in the graph's order.
        self._outputs = sorted(outputs, key=lambda o: o.get_partial_shape()[1].get_length() != len(_OUTPUTS))

    def predict(self, crops: Sequence[np.ndarray]) -> list[PersonAttributes]:
        """Attributes of each BGR person crop (any size), in order."""
        out: list[PersonAttributes] = []
        for start in range(0, len(crops), MAX_BATCH):
            out += self._predict_batch(crops[start : start + MAX_BATCH])
        return out

    def _predict_batch(self, crops: Sequence[np.ndarray]) -> list[PersonAttributes]:
        if not crops:
            return []
        h, w = INPUT_HW
        batch = np.stack(
            [
                cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA if c.shape[0] > h else cv2.INTER_LINEAR)
                for c in crops
            ]
        )
        blob = batch.transpose(0, 3, 1, 2).astype(np.float32)
        result = self._request.infer({0: blob})
        probs = np.asarray(result[self._outputs[0]], np.float32).reshape(len(crops), len(_OUTPUTS))
        # Sex is not analysed (DESIGN.md): column 0 is cut off here, before anything reads it.
        kept = probs[:, 1:].copy()
        del probs
        top = np.asarray(result[self._outputs[1]], np.float32).reshape(len(crops), 2)
        bottom = np.asarray(result[self._outputs[2]], np.float32).reshape(len(crops), 2)
        return [
            PersonAttributes(
                scores={name: round(float(v), 4) for name, v in zip(ATTRIBUTES, row, strict=True)},
                top_point=(float(tp[0]), float(tp[1])),
                bottom_point=(float(bp[0]), float(bp[1])),
            )
            for row, tp, bp in zip(kept, top, bottom, strict=True)
        ]


def load_person_attributes(model: Path | None = None) -> PersonAttributeModel | None:
    """The attributes model, or None (with a one-line warning) when it is not installed or cannot load.

    Indexing then goes on with colour-only attributes.
    """
    try:
        return PersonAttributeModel(model)
    except ModelError as exc:
        log.warning("person attributes model not used: %s", exc)
        return None
