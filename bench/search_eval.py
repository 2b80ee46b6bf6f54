"""Search quality on the labelled queries of ../shared/eval/search_dev.json.

Indexes frames 1-400 of pets09/vtest.avi at the default analysis rate with
the real CLI, runs every labelled query through `camsight search --json`,
and scores the ranked hits: a hit counts for labelled person P when its
`frame` is in 1-400 and its `box` overlaps P's ground-truth box in that
frame with IoU >= 0.3. Hits on `ignore` people are dropped; a second hit on
a person already found is a wrong hit. Prints recall@5, recall@10 and
average precision per query and their means.

    python bench/search_eval.py [--backends yolox ssd] [--limit 50]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from common import GT, SHARED, VTEST, backend_args, camsight, cli_search, require_shared

EVAL = SHARED / "eval" / "search_dev.json"


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box against (N, 4) xyxy boxes."""
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(area, 1e-9)


def person_of(hit: dict, gt: np.ndarray, frames: tuple[int, int], min_iou: float) -> int | None:
    frame = hit.get("frame")
    if frame is None or not frames[0] <= frame <= frames[1] or not hit.get("box"):
        return None
    rows = gt[gt[:, 0] == frame]
    if not len(rows):
        return None
    boxes = np.column_stack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]])
    overlaps = iou(np.array(hit["box"], float), boxes)
    best = int(overlaps.argmax())
    return int(rows[best, 1]) if overlaps[best] >= min_iou else None


def score_query(hits: list[dict], relevant: set[int], ignore: set[int], gt, frames, min_iou) -> dict:
    found: set[int] = set()
    ranked: list[bool] = []  # after dropping ignored hits: True = new relevant person
    for hit in hits:
        pid = person_of(hit, gt, frames, min_iou)
        if pid in ignore:
            continue
        good = pid in relevant and pid not in found
        if good:
            found.add(pid)
        ranked.append(good)
    n = len(relevant)
    hits_at = np.cumsum(ranked) if ranked else np.zeros(0)
    recall = {k: (float(hits_at[min(k, len(hits_at)) - 1]) / n if len(hits_at) else 0.0) for k in (5, 10)}
    precisions = [hits_at[i] / (i + 1) for i, good in enumerate(ranked) if good]
    ap = float(np.sum(precisions) / n) if n else 0.0
    return {"r5": recall[5], "r10": recall[10], "ap": ap, "found": sorted(found), "returned": len(ranked)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["yolox", "ssd"])
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--data", type=Path, help="use this data dir (kept afterwards)")
    parser.add_argument("--config", type=Path, help="camsight config file for indexing")
    args = parser.parse_args()
    require_shared()
    spec = json.loads(EVAL.read_text())
    gt = np.loadtxt(GT, delimiter=",")
    frames = tuple(spec["frames"])
    end_seconds = frames[1] / 10.0  # vtest.avi is 10 fps: frames 1-400 are the first 40 s
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            data = args.data or Path(tmp) / "data"
            camsight(
                "index",
                str(VTEST),
                "--camera",
                "pets",
                "--end",
                str(end_seconds),
                "--data",
                str(data),
                *backend_args(backend),
                *(["--config", str(args.config)] if args.config else []),
            )
            print(f"\n== {backend} (default analysis rate, frames {frames[0]}-{frames[1]})")
            print(f"{'query':36} {'R@5':>5} {'R@10':>5} {'AP':>5}  found/relevant  interpretation")
            rows = []
            for q in spec["queries"]:
                hits, interp = cli_search(q["q"], "pets", data, args.limit)
                m = score_query(hits, set(q["relevant"]), set(q.get("ignore", [])), gt, frames, spec["iou"])
                rows.append(m)
                print(
                    f"{q['q'][:36]:36} {m['r5']:5.2f} {m['r10']:5.2f} {m['ap']:5.2f}  "
                    f"{len(m['found'])}/{len(q['relevant'])} {m['found']!s:14} {interp}"
                )
            mean = {k: float(np.mean([r[k] for r in rows])) for k in ("r5", "r10", "ap")}
            print(f"{'MEAN':36} {mean['r5']:5.2f} {mean['r10']:5.2f} {mean['ap']:5.2f}")
    print("\ntargets: mean recall@10 >= 0.8 and mAP >= 0.6")


if __name__ == "__main__":
    main()
