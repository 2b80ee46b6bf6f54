"""Calibrate the search engine's facet thresholds on the dev split (../shared/eval/search_dev.json).

A search hit is a *full* match only when every facet of the query is
supported: a facet's score (0-1, from the track's attributes) must be at
least the region's "present" threshold, and a negated facet's score must be
at most its "absent" threshold (:data:`camsight.search.engine.THRESHOLDS`).
This script measures the scores those thresholds are chosen from.

It indexes frames 1-400 of pets09/vtest.avi with the real CLI (or reads a
data folder that ``bench/search_eval.py --data DIR`` left), gives each track
the labelled person its boxes overlap most (IoU >= 0.3 in at least half of
its frames inside 1-400), and for each clothing region (upper, lower,
headwear) collects every colour facet's score as *positive* (the label lists
that colour) or *negative* (it does not). People whose label is ambiguous
for a colour (navy vs black, the ``ignore`` of the queries) are left out of
that colour. It prints, per region:

- the positive scores' 10th percentile and the negatives' 90th/95th,
- ``present``: the middle of the thresholds whose balanced accuracy is within
  0.01 of the best, and the share of positives (TP) and negatives (FP) it passes,
- ``absent``: the negatives' 95th percentile, rounded up to 0.05: a negated
  facet ("without jeans") passes only at or below it, where 95 % of the tracks
  that truly lack it lie, far under the positives.

The values are copied into ``THRESHOLDS`` by hand (rounded to 0.05), with
this command and its output in the comment there.

    python bench/search_calibrate.py [--data DIR] [--backends yolox]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from common import SHARED, VTEST, backend_args, camsight, require_shared
from search_eval import iou, load_gt

from camsight.records.facets import COLOURS

EVAL = SHARED / "eval" / "search_dev.json"
REGIONS = ("upper", "lower", "headwear")


def track_people(db: Path, gt: np.ndarray, frames: tuple[int, int], min_iou: float) -> dict[int, int]:
    """Track id -> ground-truth person id, by the boxes of its observations."""
    con = sqlite3.connect(db)
    rows = con.execute(
        "select track_id, frame, x1, y1, x2, y2 from observations o join tracks t on t.id = o.track_id "
        "where t.label = 'person' and frame between ? and ?",
        frames,
    ).fetchall()
    con.close()
    votes: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    seen: dict[int, int] = defaultdict(int)
    by_frame = {int(f): gt[gt[:, 0] == f] for f in np.unique(gt[:, 0])}
    for track_id, frame, x1, y1, x2, y2 in rows:
        seen[track_id] += 1
        g = by_frame.get(int(frame))
        if g is None or not len(g):
            continue
        boxes = np.column_stack([g[:, 2:4], g[:, 2:4] + g[:, 4:6]])
        overlaps = iou(np.array([x1, y1, x2, y2], float), boxes)
        best = int(overlaps.argmax())
        if overlaps[best] >= min_iou:
            votes[track_id][int(g[best, 1])] += 1
    out = {}
    for track_id, counts in votes.items():
        pid, n = max(counts.items(), key=lambda kv: kv[1])
        if n >= 0.5 * seen[track_id]:
            out[track_id] = pid
    return out


def attributes_of(db: Path) -> dict[int, dict]:
    """Track id -> its stored attributes (colours per region, headwear_worn, ...)."""
    con = sqlite3.connect(db)
    rows = con.execute("select id, attributes from tracks where label = 'person'").fetchall()
    con.close()
    return {tid: json.loads(a) if a else {} for tid, a in rows}


def calibrate(pos: list[float], neg: list[float]) -> dict[str, float]:
    """Best balanced-accuracy "present" threshold and the 5 %-of-positives "absent" threshold."""
    p, n = np.array(pos), np.array(neg)
    grid = np.round(np.arange(0.01, 1.0001, 0.01), 2)
    acc = np.array([0.5 * ((p >= t).mean() + (n < t).mean()) for t in grid])
    # Every threshold within 0.01 balanced accuracy of the best, and the middle of that range:
    # the dev split has few people, and a threshold at the edge of what separates them (or one
    # that gives up a wide margin for one faded pair of jeans) follows them, not the footage.
    best = grid[acc >= acc.max() - 0.01]
    best_t = float(np.round((best.min() + best.max()) / 2, 2))
    best_acc = float(acc.max())
    # A negated facet ("without jeans") passes only where 95 % of true negatives lie.
    absent = float(np.ceil(np.percentile(n, 95) / 0.05) * 0.05)
    return {
        "present": best_t,
        "best_from": float(best.min()),
        "best_to": float(best.max()),
        "balanced_acc": best_acc,
        "tp": float((p >= best_t).mean()),
        "fp": float((n >= best_t).mean()),
        "absent": absent,
        "pos_p10": float(np.percentile(p, 10)),
        "neg_p90": float(np.percentile(n, 90)),
        "neg_p95": float(np.percentile(n, 95)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, help="an indexed data folder (else frames 1-400 are indexed now)"
    )
    parser.add_argument("--backend", default="yolox")
    parser.add_argument(
        "--labels",
        type=Path,
        default=EVAL,
        help="a label file like search_dev.json, e.g. bench/labels/pets09-401-795.json, to check "
        "the thresholds on people they were not chosen on (with --data: its index)",
    )
    args = parser.parse_args()
    require_shared()
    spec = json.loads(args.labels.read_text())
    gt = load_gt(args.labels, spec["gt"])  # the dev split's names pets09/gt_dev.txt under ../shared/data
    frames = (int(spec["frames"][0]), int(spec["frames"][1]))
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        if args.data is None:
            camsight(
                "index", str(VTEST), "--camera", "pets", "--start", str((frames[0] - 1) / 10.0),
                "--end", str(frames[1] / 10.0),
                "--data", str(data), *backend_args(args.backend),
            )  # fmt: skip
        db = data / "camsight.db"
        people = track_people(db, gt, frames, spec["iou"])
        attributes = attributes_of(db)
    # Colours a person is ambiguous for: navy reads as black on this footage (see the eval README).
    ambiguous = {("black", "blue"), ("blue", "black")}
    samples: dict[str, tuple[list[float], list[float]]] = {r: ([], []) for r in (*REGIONS, "headwear:worn")}
    for track_id, pid in sorted(people.items()):
        label = spec["people"].get(str(pid))
        if label is None:
            continue
        for region in REGIONS:
            # A head with no headwear label is bare: every headwear colour there is a negative.
            truth = set(label.get(region, []))
            got = (attributes.get(track_id) or {}).get("colours", {}).get(region, {})
            for colour in COLOURS:
                s = float(got.get(colour, 0.0))
                if colour in truth:
                    samples[region][0].append(s)
                elif not any((colour, t) in ambiguous for t in truth):
                    samples[region][1].append(s)
        worn = float((attributes.get(track_id) or {}).get("headwear_worn") or 0.0)
        samples["headwear:worn"][0 if "headwear" in label else 1].append(worn)
    print(f"{len(people)} person tracks matched to labelled people ({len(set(people.values()))} people)")
    print(f"{'region':13} {'pos':>4} {'neg':>4} {'best range':>10} {'present':>7} {'bal.acc':>7} {'TP':>5} {'FP':>5} "
          f"{'absent':>6} {'pos p10':>7} {'neg p90':>7} {'neg p95':>7}")  # fmt: skip
    for region, (pos, neg) in samples.items():
        if not pos or not neg:
            print(f"{region:13} not enough labelled samples")
            continue
        c = calibrate(pos, neg)
        print(
            f"{region:13} {len(pos):4d} {len(neg):4d} {c['best_from']:4.2f}-{c['best_to']:4.2f} {c['present']:7.2f} {c['balanced_acc']:7.2f} "
            f"{c['tp']:5.2f} {c['fp']:5.2f} {c['absent']:6.2f} {c['pos_p10']:7.2f} {c['neg_p90']:7.2f} "
            f"{c['neg_p95']:7.2f}"
        )


if __name__ == "__main__":
    main()
