"""How well tracks are grouped into one result per person, on PETS09's labelled frames.

Indexes ../shared/data/pets09/vtest.avi with the real CLI (or reads an
indexed ``--data`` folder), gives each person track the ground-truth id its
boxes overlap most (IoU >= 0.5 on at least half of its observations in the
labelled frames, 1-400 by default), and scores the grouping of :mod:`camsight.search.grouping` over pairs
of such tracks: precision = pairs grouped together that are one person /
pairs grouped together; recall = pairs of one person grouped together /
pairs of one person. ``--labels`` scores another labelled range (e.g.
bench/labels/pets09-401-795.json) in the same way. Prints the figures for the default thresholds, for
"no grouping", and (``--sweep``) for a grid of thresholds, to calibrate them.

    python bench/grouping_eval.py [--data DIR] [--sweep] [--labels PATH]

The re-id model must be installed (``camsight models pull person-reidentification-retail-0288``)
for the re-id rows; without it the colour-descriptor rule alone is scored.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import GT, VTEST, camsight, require_shared
from search_eval import load_gt

from camsight.search.grouping import GroupingSettings, group_tracks, load_tracks
from camsight.store.db import open_store

LAST_FRAME = 400


def gt_ids(
    db: Path, gt_file: Path | np.ndarray = GT, frames: tuple[int, int] = (1, LAST_FRAME)
) -> dict[int, int]:
    """Person track id -> ground-truth id, for tracks that follow one labelled person in ``frames``."""
    gt = gt_file if isinstance(gt_file, np.ndarray) else np.loadtxt(gt_file, delimiter=",", ndmin=2)
    gt = gt[(gt[:, 0] >= frames[0]) & (gt[:, 0] <= frames[1])]
    con = sqlite3.connect(db)
    rows = con.execute(
        "select o.track_id, o.frame, o.x1, o.y1, o.x2, o.y2 from observations o join tracks t "
        "on t.id = o.track_id where t.label = 'person' and o.frame between ? and ?",
        frames,
    ).fetchall()
    con.close()
    votes: dict[int, dict[int, int]] = {}
    seen: dict[int, int] = {}
    for tid, frame, x1, y1, x2, y2 in rows:
        seen[tid] = seen.get(tid, 0) + 1
        g = gt[gt[:, 0] == frame]
        if not len(g):
            continue
        gx1, gy1 = g[:, 2], g[:, 3]
        gx2, gy2 = gx1 + g[:, 4], gy1 + g[:, 5]
        iw = np.clip(np.minimum(x2, gx2) - np.maximum(x1, gx1), 0, None)
        ih = np.clip(np.minimum(y2, gy2) - np.maximum(y1, gy1), 0, None)
        inter = iw * ih
        union = (x2 - x1) * (y2 - y1) + g[:, 4] * g[:, 5] - inter
        iou = inter / np.maximum(union, 1e-9)
        best = int(np.argmax(iou))
        if iou[best] >= 0.5:
            pid = int(g[best, 1])
            votes.setdefault(tid, {})[pid] = votes.setdefault(tid, {}).get(pid, 0) + 1
    out = {}
    for tid, v in votes.items():
        pid, n = max(v.items(), key=lambda kv: kv[1])
        if n >= 0.5 * seen[tid]:
            out[tid] = pid
    return out


def pairwise(groups: dict[int, int], truth: dict[int, int]) -> tuple[float, float, int, int]:
    """(precision, recall, pairs grouped, pairs of one person) over the labelled tracks."""
    tp = fp = fn = 0
    for a, b in itertools.combinations(sorted(truth), 2):
        same_group, same_person = groups[a] == groups[b], truth[a] == truth[b]
        tp += same_group and same_person
        fp += same_group and not same_person
        fn += same_person and not same_group
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, tp + fp, tp + fn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="an already indexed data folder (vtest.avi in it)")
    parser.add_argument("--sweep", action="store_true", help="also score a grid of thresholds")
    parser.add_argument(
        "--labels",
        type=Path,
        help="a label file like bench/labels/pets09-401-795.json (default: the dev split)",
    )
    args = parser.parse_args()
    require_shared()
    gt_file, frames = GT, (1, LAST_FRAME)
    if args.labels:
        spec = json.loads(args.labels.read_text())
        gt_file, frames = load_gt(args.labels, spec["gt"]), (int(spec["frames"][0]), int(spec["frames"][1]))
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "data"
            camsight("index", str(VTEST), "--data", str(data))
        truth = gt_ids(data / "camsight.db", gt_file, frames)
        store = open_store(data)
        tracks = [t for t in load_tracks(store) if t.track_id in truth]
        store.close()
        with_reid = sum(t.reid is not None for t in tracks)
        people = len(set(truth.values()))
        print(f"{len(tracks)} labelled person tracks ({with_reid} with re-id vectors) of {people} people")
        alone = {t.track_id: t.track_id for t in tracks}
        p, r, g, s = pairwise(alone, truth)
        print(
            f"no grouping         precision {p:.3f} recall {r:.3f} (grouped pairs {g}, same-person pairs {s})"
        )
        default = GroupingSettings()
        p, r, g, s = pairwise(group_tracks(tracks, default), truth)
        print(
            f"default thresholds  precision {p:.3f} recall {r:.3f} (grouped pairs {g}, same-person pairs {s})"
        )
        loose = replace(default, small_height=0.0)  # the thresholds for people >= 160 px, on everyone
        p, r, g, s = pairwise(group_tracks(tracks, loose), truth)
        print(
            f"large-people rule  precision {p:.3f} recall {r:.3f} (grouped pairs {g}, same-person pairs {s})"
        )
        colour_only = [replace(t, reid=None) for t in tracks]
        p, r, g, s = pairwise(group_tracks(colour_only, default), truth)
        print(
            f"colour only         precision {p:.3f} recall {r:.3f} (grouped pairs {g}, same-person pairs {s})"
        )
        if args.sweep:
            for near, far, colour, reach in itertools.product(
                (0.5, 0.6, 0.7, 0.8, 0.9), (0.75, 0.85, 0.95), (0.85, 0.9, 0.95), (2.0, 3.0, 5.0)
            ):
                s_ = replace(
                    default,
                    reid_near=near,
                    reid_far=far,
                    reid_near_small=near,
                    reid_far_small=far,
                    colour_near=colour,
                    max_reach=reach,
                )
                p, r, _, _ = pairwise(group_tracks(tracks, s_), truth)
                pc, rc, _, _ = pairwise(group_tracks(colour_only, s_), truth)
                print(
                    f"near {near:.2f} far {far:.2f} colour {colour:.2f} reach {reach:.0f}: re-id P {p:.3f} R {r:.3f}"
                    f" | colour-only P {pc:.3f} R {rc:.3f}"
                )


if __name__ == "__main__":
    main()
