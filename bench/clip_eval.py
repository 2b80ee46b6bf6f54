"""Search quality on a clip labelled in ``bench/labels/`` (footage the attributes were not tuned on).

A label file names a video under ``../shared/data``, the people in it (each
with the frames during which they are the one in view, and what they wear),
and queries a user would type with the people that answer them (``ignore``:
arguably right, neither helps nor hurts). See ``bench/labels/README.md``.

The clip is indexed with the real CLI at the default analysis rate (default
detector), every query is run through ``camsight search --json``, and a hit
belongs to the person whose frame range holds the hit's best ``frame``.
Printed per query and as means over the queries that have relevant people:

- R@5, R@10 and average precision, scored as ``bench/search_eval.py`` does
  (a second hit on a person already found is a wrong hit);
- ``full ok``: of the hits marked ``full``, how many are on a person in
  ``relevant`` or ``ignore`` (that really has every facet of the query);
  queries nobody answers ("someone wearing a hat") count here: every full
  hit on them is wrong. The overall figure pools the full hits of all queries.

    python bench/clip_eval.py [bench/labels/one-by-one-person-detection.json] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
from common import DATA, ROOT, camsight, cli_search

DEFAULT_LABELS = ROOT / "bench" / "labels" / "one-by-one-person-detection.json"


def person_of(hit: dict, people: dict[str, dict]) -> str | None:
    """The labelled person in view at the hit's best frame, if any."""
    frame = hit.get("frame")
    if frame is None:
        return None
    for pid, info in people.items():
        first, last = info["frames"]
        if first <= frame <= last:
            return pid
    return None


def score(hits: list[dict], relevant: set[str], ignore: set[str], people: dict[str, dict]) -> dict:
    """R@5, R@10, AP (None without relevant people) and the full hits' correctness for one query."""
    found: set[str] = set()
    ranked: list[bool] = []
    full_ok = full = 0
    for hit in hits:
        pid = person_of(hit, people)
        if hit.get("match") == "full":
            full += 1
            full_ok += int(pid is not None and (pid in relevant or pid in ignore))
        if pid in ignore:
            continue
        good = pid in relevant and pid not in found
        if good:
            found.add(pid)  # type: ignore[arg-type]
        ranked.append(good)
    n = len(relevant)
    out: dict = {"found": sorted(found), "full": full, "full_ok": full_ok}
    if not n:
        return {**out, "r5": None, "r10": None, "ap": None}
    at = np.cumsum(ranked) if ranked else np.zeros(0)
    recall = {k: float(at[min(k, len(at)) - 1]) / n if len(at) else 0.0 for k in (5, 10)}
    precisions = [at[i] / (i + 1) for i, good in enumerate(ranked) if good]
    return {**out, "r5": recall[5], "r10": recall[10], "ap": float(np.sum(precisions) / n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels", nargs="?", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--data", type=Path, help="use this data dir (kept; indexing is skipped when done)")
    parser.add_argument("--config", type=Path, help="camsight config file for indexing")
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    spec = json.loads(args.labels.read_text())
    video = DATA / spec["video"]
    if not video.exists():
        raise SystemExit(f"{video} not found (set CAMSIGHT_SHARED to the shared/ folder)")
    people = spec["people"]
    camera = "labelled"
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        config = ["--config", str(args.config)] if args.config else []
        camsight("index", str(video), "--camera", camera, "--data", str(data), *config)
        print(f"\n== {spec['video']} (default detector and analysis rate), {len(people)} people")
        print(f"{'query':34} {'R@5':>5} {'R@10':>5} {'AP':>5} {'full ok':>8}  found  interpretation")
        rows = []
        for q in spec["queries"]:
            hits, interp = cli_search(q["q"], camera, data, args.limit)
            m = score(hits, set(q["relevant"]), set(q.get("ignore", [])), people)
            rows.append(m)
            fmt = lambda v: "    -" if v is None else f"{v:5.2f}"  # noqa: E731
            print(
                f"{q['q'][:34]:34} {fmt(m['r5'])} {fmt(m['r10'])} {fmt(m['ap'])} {m['full_ok']:>3}/{m['full']:<4}"
                f"  {''.join(m['found']) or '-':6} {interp}"
            )
        merged = merged_cards(data, camera, people, spec.get("fps", 10.0))
        if merged:
            print(f"cards holding several labelled people (grouping): {'; '.join(merged)}")
        scored = [r for r in rows if r["r10"] is not None]
        mean = {k: float(np.mean([r[k] for r in scored])) for k in ("r5", "r10", "ap")}
        full = sum(r["full"] for r in rows)
        full_ok = sum(r["full_ok"] for r in rows)
        share = full_ok / full if full else 1.0
        print(
            f"{'MEAN (' + str(len(scored)) + ' queries)':34} {mean['r5']:5.2f} {mean['r10']:5.2f} {mean['ap']:5.2f}"
            f" {full_ok:>3}/{full:<4} = {share:.2f} of full hits satisfy every facet"
        )
        print()
        attribute_check(data, people, spec.get("fps", 10.0))
    print("\ntargets: mean R@10 >= 0.90; full hits that satisfy every facet >= 0.90")


def merged_cards(data: Path, camera: str, people: dict[str, dict], fps: float) -> list[str]:
    """Results whose grouped segments belong to more than one labelled person (a wrong link)."""
    proc = camsight("search", "person", "--camera", camera, "--limit", "200", "--json", "--data", str(data))
    out = []
    for hit in json.loads(proc.stdout):
        segments = hit.get("segments") or []
        who = set()
        for seg in segments:
            middle = round((seg["start"] + seg["end"]) / 2 * fps) + 1
            who |= {p for p, info in people.items() if info["frames"][0] <= middle <= info["frames"][1]}
        if len(who) > 1:
            out.append(f"track {hit['track_id']}: {', '.join(sorted(who))}")
    return out


def attribute_check(data: Path, people: dict[str, dict], fps: float) -> None:
    """Each person track's stored attributes against the labels, whatever search makes of them.

    A labelled colour must score >= 0.5 in its region; headwear, a hat or a bag that the person
    does not have must score < 0.5 (``headwear:worn``, ``carried:*``). Tracks belong to the person
    in view at their middle.
    """
    with sqlite3.connect(data / "camsight.db") as db:
        rows = db.execute(
            "select id, start_t, end_t, attributes from tracks where label = 'person'"
        ).fetchall()
    right = total = 0
    print(f"{'person':6} {'track':>5}  labelled facets (>= 0.5) and absent ones (< 0.5) that are wrong")
    for track_id, start, end, blob in rows:
        middle = round((start + end) / 2 * fps) + 1
        pid = next(
            (p for p, info in people.items() if info["frames"][0] <= middle <= info["frames"][1]), None
        )
        if pid is None or not blob:
            continue
        attrs = json.loads(blob)
        info = people[pid]
        checks = [
            (f"{r}:{c}", attrs["colours"].get(r, {}).get(c, 0.0), True)
            for r in ("upper", "lower")
            for c in info[r]
        ]
        if not info.get("headwear"):
            checks.append(("headwear:worn", attrs.get("headwear_worn") or 0.0, False))
        if not info.get("carried"):
            checks += [(f"carried:{k}", v, False) for k, v in attrs.get("carried", {}).items()]
        wrong = [f"{name} {v:.2f}" for name, v, present in checks if (v >= 0.5) != present]
        right += len(checks) - len(wrong)
        total += len(checks)
        print(f"{pid:6} {track_id:5}  {', '.join(wrong) or 'all right'}")
    print(f"attributes right: {right}/{total} = {right / max(total, 1):.2f}")


if __name__ == "__main__":
    main()
