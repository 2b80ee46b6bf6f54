"""One small helper for the OpenVINO person models: compile once, run crops in batches.

The person models (attributes, re-identification) all read BGR person crops of
a fixed size, 0-255, NCHW. They are compiled with a dynamic batch on one
inference thread, so a model never competes with the detector threads for the
two cores of a small box, and one call scores all of a flush's crops.

>>> runner = BatchRunner(Path("reid.xml"), (256, 128), what="re-id")  # doctest: +SKIP
>>> len(runner.run([crop]))  # doctest: +SKIP
1
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from camsight.errors import ModelError

#: Crops per inference call: larger batches gain little on two cores and hold more memory.
MAX_BATCH = 16


def crops_blob(crops: Sequence[np.ndarray], input_hw: tuple[int, int]) -> np.ndarray:
    """BGR crops (any sizes) resized to ``input_hw`` and stacked as one NCHW float32 batch."""
    h, w = input_hw
    batch = np.stack(
        [
            cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA if c.shape[0] > h else cv2.INTER_LINEAR)
            for c in crops
        ]
    )
    return batch.transpose(0, 3, 1, 2).astype(np.float32)


class BatchRunner:
    """An OpenVINO IR model compiled for batches of ``input_hw`` crops on ``threads`` threads."""

    def __init__(self, path: Path, input_hw: tuple[int, int], *, what: str, threads: int = 1) -> None:
        self.path = path
        self.input_hw = input_hw
        try:
            import openvino as ov

            core = ov.Core()
            graph = core.read_model(str(path))
            # A dynamic batch: one call scores many crops.
            graph.reshape({graph.inputs[0].get_any_name(): ov.PartialShape([-1, 3, *input_hw])})
            self.compiled = core.compile_model(
                graph,
                "CPU",
                {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"},
            )
        except Exception as exc:  # openvino raises RuntimeError and friends for a bad file
            raise ModelError(f"cannot load the {what} model {path}: {exc}".splitlines()[0]) from None
        self._request = self.compiled.create_infer_request()

    @property
    def outputs(self) -> list[Any]:
        """The compiled model's outputs (to check widths, pick one)."""
        return list(self.compiled.outputs)

    def run(self, crops: Sequence[np.ndarray]) -> list[dict[Any, np.ndarray]]:
        """Each batch's raw outputs (output -> array), for crops taken :data:`MAX_BATCH` at a time."""
        results = []
        for start in range(0, len(crops), MAX_BATCH):
            part = crops[start : start + MAX_BATCH]
            if not part:
                continue
            out = self._request.infer({0: crops_blob(part, self.input_hw)})
            # Copies: the request's buffers are reused by the next call.
            results.append({k: np.array(v, copy=True) for k, v in out.items()})
        return results
