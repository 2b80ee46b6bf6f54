"""Tracking quality on PETS09-S2L1: MOTA and IDF1 for each detector backend.

Indexes ../shared/data/pets09/vtest.avi at --fps native with the real CLI,
exports MOT15 with `camsight export-mot`, and scores frames 1-400 against
gt_dev.txt with motmetrics.

    python bench/mot_eval.py [--backends default yolox ssd]

``default`` runs `camsight index vtest.avi --fps native` with no detector
options, as a user would (the default detector, found in the models folder).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import motmetrics as mm
import numpy as np
from common import GT, VTEST, backend_args, camsight, require_shared

LAST_FRAME = 400


def iou_distance(gt: np.ndarray, hyp: np.ndarray, max_d: float = 0.5) -> np.ndarray:
    """1 - IoU for xywh boxes, NaN beyond ``max_d`` (motmetrics' convention).

    motmetrics.distances.iou_matrix calls np.asfarray, gone in NumPy 2.
    """
    if len(gt) == 0 or len(hyp) == 0:
        return np.empty((len(gt), len(hyp)))
    a = np.column_stack([gt[:, :2], gt[:, :2] + gt[:, 2:]])
    b = np.column_stack([hyp[:, :2], hyp[:, :2] + hyp[:, 2:]])
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = (gt[:, 2] * gt[:, 3])[:, None] + (hyp[:, 2] * hyp[:, 3])[None, :] - inter
    d = 1 - inter / union
    d[d > max_d] = np.nan
    return d


def load_mot(path: Path) -> np.ndarray:
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    return rows[rows[:, 0] <= LAST_FRAME] if len(rows) else np.zeros((0, 10))


def score(gt_path: Path, hyp_path: Path) -> dict[str, float]:
    gt, hyp = load_mot(gt_path), load_mot(hyp_path)
    acc = mm.MOTAccumulator(auto_id=False)
    for frame in range(1, LAST_FRAME + 1):
        g, h = gt[gt[:, 0] == frame], hyp[hyp[:, 0] == frame]
        acc.update(
            g[:, 1].astype(int).tolist(),
            h[:, 1].astype(int).tolist(),
            iou_distance(g[:, 2:6], h[:, 2:6]),
            frameid=frame,
        )
    mh = mm.metrics.create()
    names = [
        "mota",
        "idf1",
        "motp",
        "recall",
        "precision",
        "num_switches",
        "num_false_positives",
        "num_misses",
        "mostly_tracked",
        "num_unique_objects",
    ]
    summary = mh.compute(acc, metrics=names, name="x")
    return {n: float(summary[n].iloc[0]) for n in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["default", "ssd"])
    parser.add_argument("--config", type=Path, help="camsight config file for indexing")
    args = parser.parse_args()
    require_shared()
    print(f"{'backend':8} {'MOTA':>6} {'IDF1':>6} {'recall':>6} {'prec':>6} {'IDsw':>5} {'FP':>5} {'FN':>5}")
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            camsight(
                "index",
                str(VTEST),
                "--camera",
                "pets",
                "--fps",
                "native",
                "--data",
                str(data),
                *backend_args(backend),
                *(["--config", str(args.config)] if args.config else []),
            )
            out = Path(tmp) / "pets.txt"
            camsight("export-mot", "--camera", "pets", "--data", str(data), str(out))
            m = score(GT, out)
        print(
            f"{backend:8} {m['mota']:6.3f} {m['idf1']:6.3f} {m['recall']:6.3f} {m['precision']:6.3f} "
            f"{int(m['num_switches']):5d} {int(m['num_false_positives']):5d} {int(m['num_misses']):5d}"
        )
    print("targets: MOTA >= 0.75 and IDF1 >= 0.75 with the default detector")


if __name__ == "__main__":
    main()
