"""Search quality on the labelled queries of ../shared/eval/search_dev.json (or another label file).

Indexes the labelled frames of pets09/vtest.avi (dev split: frames 1-400)
at the default analysis rate with the real CLI, runs every labelled query
through `camsight search --json`, and scores the ranked hits: a hit counts
for labelled person P when its `frame` is in the labelled range and its
`box` overlaps P's ground-truth box in that frame with IoU >= `iou` (0.3).
Hits on `ignore` people are dropped; a second hit on a person already found
is a wrong hit. Prints recall@5, recall@10 and average precision per query
and their means (over the queries that have relevant people), and `full ok`:
of the hits marked `full`, how many are on a person in `relevant` or `ignore`
(queries nobody answers count there: every full hit on them is wrong), per
query and pooled over all queries.

`--labels` takes another file in the same format, e.g.
bench/labels/pets09-401-795.json (frames 401-795, labelled for this bench) or
bench/labels/pets09-whole.json (the whole video indexed in one run, both label
sets together); its `gt` path (or list of paths) is resolved against the label
file's folder, then ../shared/data. See bench/labels/README.md.

    python bench/search_eval.py [--backends yolox ssd] [--limit 50] [--labels PATH] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from common import DATA, SHARED, VTEST, backend_args, camsight, cli_search, require_shared

EVAL = SHARED / "eval" / "search_dev.json"


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box against (N, 4) xyxy boxes."""
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(area, 1e-9)


def person_of(hit: dict, gt: np.ndarray, frames: tuple[int, int], min_iou: float) -> int | None:
    """The labelled person whose ground-truth box the hit's box overlaps in the hit's frame, if any."""
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
    """R@5, R@10, AP (None for a query nobody answers) and how many full hits are right, for one query."""
    found: set[int] = set()
    ranked: list[bool] = []  # after dropping ignored hits: True = new relevant person
    full = full_ok = 0
    for hit in hits:
        pid = person_of(hit, gt, frames, min_iou)
        if hit.get("match") == "full":
            full += 1
            full_ok += int(pid is not None and (pid in relevant or pid in ignore))
        if pid in ignore:
            continue
        good = pid in relevant and pid not in found
        if good:
            found.add(pid)
        ranked.append(good)
    n = len(relevant)
    out = {"found": sorted(found), "returned": len(ranked), "full": full, "full_ok": full_ok}
    if not n:
        return {**out, "r5": None, "r10": None, "ap": None}
    hits_at = np.cumsum(ranked) if ranked else np.zeros(0)
    recall = {k: (float(hits_at[min(k, len(hits_at)) - 1]) / n if len(hits_at) else 0.0) for k in (5, 10)}
    precisions = [hits_at[i] / (i + 1) for i, good in enumerate(ranked) if good]
    ap = float(np.sum(precisions) / n)
    return {**out, "r5": recall[5], "r10": recall[10], "ap": ap}


def gt_path(labels: Path, name: str) -> Path:
    """The ground-truth file a label file names: next to the label file, else under ../shared/data."""
    for base in (labels.resolve().parent, DATA):
        if (base / name).exists():
            return base / name
    raise SystemExit(f"ground truth {name} named by {labels} not found next to it or under {DATA}")


def load_gt(labels: Path, names: str | list[str]) -> np.ndarray:
    """The MOT rows of a label file's ``gt``: one file, or a list of files (e.g. one per half) read as one."""
    files = [names] if isinstance(names, str) else names
    return np.vstack([np.loadtxt(gt_path(labels, name), delimiter=",", ndmin=2) for name in files])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["yolox", "ssd"])
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--labels", type=Path, default=EVAL, help="label file (default: %(default)s)")
    parser.add_argument("--data", type=Path, help="use this data dir (kept afterwards)")
    parser.add_argument("--config", type=Path, help="camsight config file for indexing")
    args = parser.parse_args()
    require_shared()
    if not args.labels.exists():
        raise SystemExit(f"label file {args.labels} not found")
    try:
        spec = json.loads(args.labels.read_text())
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{args.labels} is not JSON: {exc}") from None
    missing = [k for k in ("gt", "frames", "iou", "queries") if k not in spec]
    if missing:
        raise SystemExit(f"{args.labels} lacks {', '.join(missing)}: not a label file like search_dev.json")
    if spec.get("video", "pets09/vtest.avi") != "pets09/vtest.avi":
        raise SystemExit(f"{args.labels} labels {spec['video']}; this bench indexes pets09/vtest.avi only")
    gt = load_gt(args.labels, spec["gt"])
    frames = tuple(spec["frames"])
    fps = float(spec.get("fps", 10.0))  # vtest.avi is 10 fps: frames 1-400 are the first 40 s
    # Frame n (1-based) is shown at (n - 1) / fps; index only the labelled frames, so no
    # track (and no hit's best frame) lies outside them.
    window = ["--end", str(frames[1] / fps)]
    if frames[0] > 1:
        window = ["--start", str((frames[0] - 1) / fps), *window]
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            data = args.data or Path(tmp) / "data"
            camsight(
                "index",
                str(VTEST),
                "--camera",
                "pets",
                *window,
                "--data",
                str(data),
                *backend_args(backend),
                *(["--config", str(args.config)] if args.config else []),
            )
            print(f"\n== {backend} (default analysis rate, frames {frames[0]}-{frames[1]})")
            print(
                f"{'query':36} {'R@5':>5} {'R@10':>5} {'AP':>5} {'full ok':>8}  found/relevant  interpretation"
            )
            rows = []
            for q in spec["queries"]:
                hits, interp = cli_search(q["q"], "pets", data, args.limit)
                m = score_query(hits, set(q["relevant"]), set(q.get("ignore", [])), gt, frames, spec["iou"])
                rows.append(m)
                fmt = lambda v: "    -" if v is None else f"{v:5.2f}"  # noqa: E731
                print(
                    f"{q['q'][:36]:36} {fmt(m['r5'])} {fmt(m['r10'])} {fmt(m['ap'])} {m['full_ok']:>3}/{m['full']:<4}  "
                    f"{len(m['found'])}/{len(q['relevant'])} {m['found']!s:14} {interp}"
                )
            scored = [r for r in rows if r["r10"] is not None]
            mean = {k: float(np.mean([r[k] for r in scored])) for k in ("r5", "r10", "ap")}
            full = sum(r["full"] for r in rows)
            full_ok = sum(r["full_ok"] for r in rows)
            share = f"{full_ok / full:.2f}" if full else "-"
            label = "MEAN" if len(scored) == len(rows) else f"MEAN ({len(scored)} queries)"
            print(
                f"{label:36} {mean['r5']:5.2f} {mean['r10']:5.2f} {mean['ap']:5.2f} {full_ok:>3}/{full:<4}"
                f"  = {share} of full hits satisfy every facet"
            )
    print("\ntargets: mean recall@10 >= 0.90 and mAP >= 0.80; full hits that satisfy every facet >= 0.90")


if __name__ == "__main__":
    main()
