"""Clothing colour naming on real footage: the labelled people of vtest.avi (PETS09).

For each person labelled in ``../shared/eval/search_dev.json`` this takes
``--frames`` frames spread over their presence in ``gt_dev.txt`` (skipping
frames where another person's box covers much of theirs), crops the upper
body (box rows 20%-55%) and lower body (55%-95%), trimmed 20% at the sides,
and the head (0%-15%) where headwear is labelled, scores each crop with
:func:`camsight.analytics.colour.colour_scores` and averages the scores per
person. It prints the top terms against the labels and, per region:

- ``top2``: share of people whose labelled colours are all among the top 2 terms;
- ``top2~``: the same, counting dark ``black``/``blue`` as one (the eval README
  calls dark navy vs black ambiguous in this footage);
- ``ok``/``other``: mean score of the labelled terms vs the other terms.

``--pose`` takes the regions from MoveNet keypoints
(:func:`camsight.vision.pose.body_regions`) instead of fixed box proportions;
``--mask`` then scores only the torso and leg pixels
(:func:`camsight.vision.pose.region_mask`); ``--illuminant`` corrects for the
light estimated on each whole frame
(:func:`camsight.analytics.colour.estimate_illuminant`).

    python bench/colour_eval.py [--frames 10] [--pose [--mask]] [--illuminant]
"""

from __future__ import annotations

import argparse
import json

import av
import numpy as np
from common import GT, SHARED, VTEST, require_shared

from camsight.analytics.colour import colour_scores, estimate_illuminant, mean_scores
from camsight.tracking.crops import occlusion

REGIONS = {"headwear": (0.0, 0.15), "upper": (0.20, 0.55), "lower": (0.55, 0.95)}
SIDE_TRIM = 0.20
DARK = {"black", "blue"}


def fixed_region(box: np.ndarray, region: str) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    top, bottom = REGIONS[region]
    return x1 + SIDE_TRIM * w, y1 + top * h, x2 - SIDE_TRIM * w, y1 + bottom * h


def cut(image: np.ndarray, rect: tuple[float, float, float, float]) -> np.ndarray:
    x1, y1, x2, y2 = rect
    h, w = image.shape[:2]
    xa, ya = max(0, round(float(x1))), max(0, round(float(y1)))
    xb, yb = min(w, round(float(x2))), min(h, round(float(y2)))
    return image[ya:yb, xa:xb]


def pick_frames(gt: np.ndarray, pid: int, n: int) -> dict[int, np.ndarray]:
    """``n`` frames spread over the person's presence, avoiding heavy overlap with other people."""
    rows = gt[gt[:, 1] == pid]
    usable = []
    for row in rows:
        same = gt[gt[:, 0] == row[0]]
        boxes = np.column_stack([same[:, 2:4], same[:, 2:4] + same[:, 4:6]])
        mine = int(np.flatnonzero(same[:, 1] == pid)[0])
        if occlusion(boxes)[mine] < 0.3:
            usable.append(row)
    chosen = np.array(usable if len(usable) >= n else list(rows))
    idx = np.unique(np.linspace(0, len(chosen) - 1, n).round().astype(int))
    return {int(r[0]): np.array([r[2], r[3], r[2] + r[4], r[3] + r[5]]) for r in chosen[idx]}


def all_in_top2(scores: dict[str, float], labels: list[str], lenient: bool) -> bool:
    top = sorted(scores, key=lambda k: -scores[k])[:2]
    if lenient:
        top_set = {("dark" if t in DARK else t) for t in top}
        return all(("dark" if lab in DARK else lab) in top_set for lab in labels)
    return all(lab in top for lab in labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10, help="frames per person")
    parser.add_argument("--pose", action="store_true", help="regions from MoveNet keypoints")
    parser.add_argument("--mask", action="store_true", help="with --pose: score only the limbs' pixels")
    parser.add_argument(
        "--illuminant", action="store_true", help="correct for the light estimated on each frame"
    )
    args = parser.parse_args()
    require_shared()
    spec = json.loads((SHARED / "eval" / "search_dev.json").read_text())
    people: dict[str, dict] = spec["people"]
    gt = np.loadtxt(GT, delimiter=",", ndmin=2)
    wanted: dict[int, list[tuple[int, np.ndarray]]] = {}
    for pid in people:
        for frame, box in pick_frames(gt, int(pid), args.frames).items():
            wanted.setdefault(frame, []).append((int(pid), box))

    estimator = None
    if args.pose:
        from camsight.vision.pose import PoseEstimator, body_regions, region_mask

        estimator = PoseEstimator()
    per: dict[tuple[int, str], list[dict[str, float]]] = {}
    last = max(wanted)
    with av.open(str(VTEST)) as container:
        for n, frame in enumerate(container.decode(video=0), start=1):
            if n > last:
                break
            if n not in wanted:
                continue
            image = frame.to_ndarray(format="bgr24")
            light = estimate_illuminant(image) if args.illuminant else None
            for pid, box in wanted[n]:
                pose = None
                if estimator is not None:
                    pose = estimator.estimate(image, tuple(box))
                    rects = body_regions(tuple(box), pose)
                else:
                    rects = {r: fixed_region(box, r) for r in REGIONS}
                for region, rect in rects.items():
                    crop = cut(image, rect)
                    mask = region_mask(region, rect, pose, image.shape) if args.mask and pose else None
                    if crop.size:
                        scores = colour_scores(crop, mask, illuminant=light)
                        per.setdefault((pid, region), []).append(scores)

    print(f"{'id':>3} {'region':8} {'labels':14} top terms (mean score over {args.frames} frames)")
    summary: dict[str, dict[str, list[float]]] = {}
    for pid, info in people.items():
        for region in REGIONS:
            labels = info.get(region)
            if not labels:
                continue
            scores = mean_scores(per.get((int(pid), region), []))
            ranked = sorted(scores, key=lambda k: -scores[k])
            top = " ".join(f"{k}:{scores[k]:.2f}" for k in ranked[:4] if scores[k] > 0)
            strict = all_in_top2(scores, labels, lenient=False)
            lenient = all_in_top2(scores, labels, lenient=True)
            mark = "ok" if strict else ("~" if lenient else "MISS")
            print(f"{pid:>3} {region:8} {'+'.join(labels):14} {top:44} {mark}")
            s = summary.setdefault(region, {"strict": [], "lenient": [], "ok": [], "other": []})
            s["strict"].append(float(strict))
            s["lenient"].append(float(lenient))
            s["ok"] += [scores[k] for k in labels]
            s["other"] += [v for k, v in scores.items() if k not in labels]
    print()
    print(f"{'region':8} {'people':>6} {'top2':>6} {'top2~':>6} {'ok':>6} {'other':>6}")
    for region, s in summary.items():
        print(
            f"{region:8} {len(s['strict']):6d} {np.mean(s['strict']):6.0%} {np.mean(s['lenient']):6.0%} "
            f"{np.mean(s['ok']):6.2f} {np.mean(s['other']):6.2f}"
        )


if __name__ == "__main__":
    main()
