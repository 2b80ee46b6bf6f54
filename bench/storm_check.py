"""Storm check: every shared clip with every rule at once; at most one event per real situation.

    python bench/storm_check.py [--detector yolox|ssd] [--only vtest,car-detection,...] [--fps 5]

Each clip is its own camera with the same default geometry, covering the
frame (bench/scenarios/storm.yaml): a zone over the whole view and one over
its middle, a line across the middle (down is "in", and the only allowed
way), and every rule type on them. The road seen from above
(car-detection) also gets ``moving_objects: {label: car}``, as that camera
needs. Unusual activity learns the camera's normal from its history, so a
copy of the clip (remuxed, a different file) is indexed first with no rules;
the clip is then judged against that history.

One situation split into several events shows as:

* per-object rules (dwell, fall, running, wrong-way, erratic driving,
  stopped vehicle, unusual activity, line crossing): two events of the rule
  for the same track within 10 s, or for two tracks of which the second
  begins within 3 s after the first ended, within 1.5 box heights of where
  it was (a track cut in two: one object, one situation); crossings count
  only in the same direction (crossing back is a new situation);
* episode rules (zone intrusion, crowd): an episode starting within the
  rule's ``clear_seconds`` + 1 s of the previous one's end, unless the
  previous one was closed at ``max_seconds`` (the situation went on);
* tampering: any event at all (nobody tampers with these cameras).

The table gives events per rule per clip as ``events/splits``; a rule with
splits is a storm to fix.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import yaml
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, YOLOX, require_shared

from camsight.config import parse_config
from camsight.pipeline.indexer import Indexer, IndexSettings
from camsight.store.db import Store, open_store
from camsight.store.events import list_events
from camsight.store.models import EventRow, ObservationRow, Track

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "storm.yaml"
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CLIPS = {
    "vtest": DATA / "pets09" / "vtest.avi",
    "one-by-one": DATA / "intel" / "one-by-one-person-detection.mp4",
    "car-detection": DATA / "intel" / "car-detection.mp4",
    "person-bicycle-car": DATA / "intel" / "person-bicycle-car-detection.mp4",
    "urfall": DATA / "urfall" / "fall-01-cam0.mp4",
}
#: Cameras that need moving objects to see anything (cars from straight above).
MOVING = {"car-detection": {"label": "car", "max_area": 0.3}}
EPISODES = {"zone_intrusion", "crowd"}
#: Two events of one rule for the same track within this many seconds are one situation split in two.
SAME_TRACK_GAP = 10.0
#: A track that begins this soon after another ended, where it was, is that object going on.
HANDOFF_GAP = 3.0


def remux(src: Path, out: Path) -> Path:
    """``src``'s video stream copied into ``out`` (no re-encoding): the same footage, another file."""
    with av.open(str(src)) as inp, av.open(str(out), "w") as dst:
        stream = inp.streams.video[0]
        ostream = dst.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = ostream
            dst.mux(packet)
    return out


def camera_config(name: str, with_rules: bool) -> str:
    """The storm scenario for camera ``name`` (its rules left out for the history pass)."""
    scenario = yaml.safe_load(SCENARIO.read_text())
    cam = scenario["cameras"]["storm"]
    if not with_rules:
        cam = {k: v for k, v in cam.items() if k != "rules"}
    if name in MOVING:
        cam["moving_objects"] = MOVING[name]
    return yaml.safe_dump({"cameras": {name: cam}})


def ends(store: Store, rows: list[EventRow]) -> dict[int, tuple[tuple, tuple] | None]:
    """Each event's first track's first and last box: ((t, x, y, height), (t, x, y, height)), in pixels."""
    out: dict[int, tuple[tuple, tuple] | None] = {}
    with store.session() as session:
        for row in rows:
            ids = [i for i in row.track_local_ids if isinstance(i, int) and i >= 0][:1]
            obs = []
            if ids:
                obs = session.execute(
                    select(
                        ObservationRow.t,
                        ObservationRow.x1,
                        ObservationRow.y1,
                        ObservationRow.x2,
                        ObservationRow.y2,
                    )
                    .join(Track, Track.id == ObservationRow.track_id)
                    .where(Track.source_id == row.source_id, Track.local_id == ids[0])
                    .order_by(ObservationRow.t)
                ).all()
            if not obs:
                out[row.id] = None
                continue
            first, last = ((t, (x1 + x2) / 2, y2, y2 - y1) for t, x1, y1, x2, y2 in (obs[0], obs[-1]))
            out[row.id] = (first, last)
    return out


def splits(store: Store, rows: list[EventRow], rules: dict[str, dict]) -> dict[str, list[tuple]]:
    """Per rule, the pairs of its events that look like one situation split in two."""
    spans = ends(store, rows)
    by_rule: dict[str, list[EventRow]] = collections.defaultdict(list)
    for r in rows:
        by_rule[r.rule].append(r)
    found: dict[str, list[tuple]] = {}
    for rule, events in by_rule.items():
        events.sort(key=lambda r: r.start_t)
        kind = events[0].type
        cfg = rules.get(rule, {})
        pairs = []
        if kind == "tampering":
            pairs = [(round(e.start_t, 1), e.summary) for e in events]
        elif kind in EPISODES:
            limit = float(cfg.get("max_seconds", 600.0))
            clear = float(cfg.get("clear_seconds", 3.0 if kind == "zone_intrusion" else 5.0))
            for a, b in itertools.pairwise(events):
                end = a.end_t if a.end_t is not None else a.start_t
                capped = end - a.start_t >= limit - 0.5
                if not capped and b.start_t - end <= clear + 1.0:
                    pairs.append((round(end, 1), round(b.start_t, 1)))
        else:
            for i, a in enumerate(events):
                end = a.end_t if a.end_t is not None else a.start_t
                for b in events[i + 1 :]:
                    if b.start_t - end > SAME_TRACK_GAP:
                        break
                    if a.details.get("direction") != b.details.get("direction"):
                        continue  # crossing back over a line is another situation
                    if set(a.track_local_ids) & set(b.track_local_ids):
                        pairs.append((a.track_local_ids, b.track_local_ids, round(b.start_t - end, 1)))
                    elif _cut(spans[a.id], spans[b.id]) or _cut(spans[b.id], spans[a.id]):
                        pairs.append((a.track_local_ids, b.track_local_ids, "one object, two tracks"))
        found[rule] = pairs
    return found


def _cut(a: tuple[tuple, tuple] | None, b: tuple[tuple, tuple] | None) -> bool:
    """Whether track ``b`` looks like ``a`` going on: it begins within 3 s after ``a`` ends, where ``a`` was."""
    if a is None or b is None:
        return False
    (_, (t_end, xa, ya, ha)), ((t_begin, xb, yb, _hb), _) = a, b
    return 0.0 <= t_begin - t_end <= HANDOFF_GAP and float(np.hypot(xa - xb, ya - yb)) <= 1.5 * ha


def check(name: str, clip: Path, detector: str, fps: float, work: Path) -> dict:
    data = work / name
    store = open_store(data)
    settings = IndexSettings(
        detector=detector, model=str(YOLOX) if detector == "yolox" else None, attributes=False, fps=fps
    )
    t0 = time.perf_counter()
    history = remux(clip, work / f"history-{clip.name}")
    Indexer(store, settings, config=parse_config(camera_config(name, False))).index(
        history, name, recorded_at=START
    )
    config = parse_config(camera_config(name, True))
    result = Indexer(store, settings, config=config).index(clip, name, recorded_at=START, force=True)
    rows = sorted((v.row for v in list_events(store, cameras=[name], limit=100000)), key=lambda r: r.start_t)
    rows = [r for r in rows if r.source_id == result.source_id]
    rules = {r.display_name(): r.model_dump() for r in config.cameras[name].rules}
    split = splits(store, rows, rules)
    store.close()
    shutil.rmtree(data, ignore_errors=True)
    counts = collections.Counter(r.rule for r in rows)
    return {
        "seconds": result.video_seconds,
        "tracks": sum(result.tracks.values()),
        "counts": counts,
        "splits": split,
        "warnings": result.warnings,
        "wall": time.perf_counter() - t0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", choices=["yolox", "ssd"], default="yolox")
    parser.add_argument("--only", default=",".join(CLIPS))
    parser.add_argument("--fps", type=float, default=5.0, help="analysis rate (the indexing default: 5)")
    args = parser.parse_args()
    require_shared()
    names = args.only.split(",")
    unknown = [n for n in names if n not in CLIPS]
    if unknown:
        sys.exit(f"unknown clip(s) {unknown}; choose from {list(CLIPS)}")
    rules = [r.display_name() for r in parse_config(camera_config("x", True)).cameras["x"].rules]
    results = {}
    with tempfile.TemporaryDirectory(prefix="camsight-storm-") as tmp:
        for name in names:
            results[name] = check(name, CLIPS[name], args.detector, args.fps, Path(tmp))
    width = max(len(r) for r in rules)
    print(f"events/splits per rule and clip ({args.detector}, {args.fps:g} fps):")
    print(f"{'rule':<{width}} " + " ".join(f"{n:>18}" for n in names))
    for rule in rules:
        cells = [
            f"{results[n]['counts'].get(rule, 0)}/{len(results[n]['splits'].get(rule, []))}" for n in names
        ]
        print(f"{rule:<{width}} " + " ".join(f"{c:>18}" for c in cells))
    sizes = [f"{results[n]['seconds']:.0f} s, {results[n]['tracks']} tracks" for n in names]
    print(f"{'(footage, tracks)':<{width}} " + " ".join(f"{c:>18}" for c in sizes))
    storms = [(n, rule, p) for n in names for rule, p in results[n]["splits"].items() if p]
    for n in names:
        for w in results[n]["warnings"]:
            print(f"warning {n}: {w}")
    if not storms:
        print("no storm: at most one event per situation on every clip")
    for n, rule, p in storms:
        print(f"STORM {n} {rule}: {len(p)} split(s): {p[:6]}")


if __name__ == "__main__":
    main()
