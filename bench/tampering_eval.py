"""Camera tampering detection on real footage: every clip in ../shared/data, tampered with here.

Each clip runs through :class:`camsight.analytics.rules.tampering.TamperingDetector`
at 5 fps (the indexer's analysis rate) as it is (``original``) and with a
tampering applied from second 8 on:

- ``blocked``: a black patch over 60% of the picture (centred, 77% x 78%);
- ``blurred``: Gaussian blur with sigma 1% of the frame width (heavy defocus);
- ``shifted``: the picture moved 10% of the width sideways (the camera turned;
  edges replicated);
- ``gap``: no frames from second 8 for ``lost_seconds`` + 2 s (video lost).

An event counts as found (true positive) when its kind is the one the
tampering should give and it starts within 0.5 s before / 1 s after the change
and is reported within ``min_seconds`` + 1 s of it (video loss: when frames
return); any other event is a false positive. The table lists each run's events; precision and recall are
over all runs and per kind. The detector's thresholds were tuned on these same
clips: the numbers show they hold, not how it does on unseen cameras. Clips too short to learn the reference and see a
tampering last (under 14 s) run only as ``original``.

Cost: the detector's time per analysed frame (``update``, on the untouched
clips, where the luma plane comes free from the decoder) against the time to
decode one frame (demux + decode, timed in the same runs), so the ratio holds
on a busy machine too.

    python bench/tampering_eval.py [--sensitivity 0.5] [--min-seconds 2] [--clips vtest car]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from common import DATA, require_shared

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tampered import blocked, blurred, shifted

from camsight.analytics.geometry import Geometry
from camsight.analytics.rules.base import Event, FrameContext
from camsight.analytics.rules.tampering import TamperingDetector
from camsight.config import CameraConfig, TamperingRule
from camsight.sources.frame import Frame
from camsight.sources.video_file import VideoFile

FPS = 5.0
CHANGE = 8.0
#: Shorter clips cannot show a tampering that outlasts learning (4 s) and min_seconds.
MIN_CLIP_SECONDS = 14.0
LOST_SECONDS = 10.0


#: Tampering -> (how frames change from CHANGE on, the event kind it should raise).
TAMPERING: dict[str, tuple[Callable[[np.ndarray], np.ndarray] | None, str | None]] = {
    "original": (None, None),
    "blocked": (blocked, "blocked"),
    "blurred": (blurred, "defocus"),
    "shifted": (shifted, "moved"),
    "gap": (None, "video_lost"),
}


@dataclass
class Run:
    clip: str
    tampering: str
    events: list[Event]
    seconds: float
    #: Detector time per analysed frame (ms) and decode time per decoded frame (ms), untouched runs only.
    update_ms: list[float] = field(default_factory=list)
    decode_ms: float | None = None


def run(path: Path, tampering: str, sensitivity: float, min_seconds: float) -> Run:
    change, _ = TAMPERING[tampering]
    config = TamperingRule(
        type="tampering", sensitivity=sensitivity, min_seconds=min_seconds, lost_seconds=LOST_SECONDS
    )
    gap = (CHANGE, CHANGE + LOST_SECONDS + 2.0) if tampering == "gap" else None
    events: dict[str, Event] = {}
    update_ms: list[float] = []
    decode_s = 0.0
    last = 0.0
    with VideoFile(path) as video:
        size = (video.info.width, video.info.height)
        rule = TamperingDetector(
            config, "bench", Geometry.build("bench", CameraConfig(), size), None, path.name
        )
        frames = video.frames(FPS)
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            decode_s += time.perf_counter() - t0
            if frame is None:
                break
            if gap is not None and gap[0] <= frame.t < gap[1]:
                continue
            if change is not None and frame.t >= CHANGE:
                frame = Frame(frame.index, frame.t, cv2.cvtColor(change(frame.gray), cv2.COLOR_GRAY2BGR))
            ctx = FrameContext(t=frame.t, at=None, frame=frame, objects=[])
            learning = rule.last is None
            t0 = time.perf_counter()
            changes = rule.update(ctx, {})
            if not learning:  # the steady state: learning frames are cheaper, the last one dearer
                update_ms.append((time.perf_counter() - t0) * 1000)
            for c in changes:
                events[c.event.uid] = c.event
            last = frame.t
        for c in rule.finish(last, None):
            events[c.event.uid] = c.event
        decoded = video.decoded
    result = Run(path.relative_to(DATA).as_posix(), tampering, list(events.values()), last)
    if tampering == "original":
        result.update_ms = update_ms
        result.decode_ms = decode_s * 1000 / max(decoded, 1)
    return result


def judge(run: Run, min_seconds: float) -> tuple[Event | None, list[Event]]:
    """The run's true positive (the first on-time event of the expected kind) and its false positives."""
    expected = TAMPERING[run.tampering][1]
    hit: Event | None = None
    false: list[Event] = []
    # Video loss starts at the last frame before the gap and is known when frames return.
    latest = CHANGE + LOST_SECONDS + 2.5 if expected == "video_lost" else CHANGE + min_seconds + 1.0
    for e in sorted(run.events, key=lambda e: e.start_t):
        on_time = (
            CHANGE - 0.5 <= e.start_t <= CHANGE + 1.0 and float(e.details.get("fired_t", e.start_t)) <= latest
        )
        if hit is None and e.details["kind"] == expected and on_time:
            hit = e
        else:
            false.append(e)
    return hit, false


def clips(names: list[str] | None) -> list[Path]:
    paths = sorted(p for p in DATA.rglob("*") if p.suffix.lower() in {".avi", ".mp4", ".mkv", ".mov"})
    if names:
        paths = [p for p in paths if any(n in p.as_posix() for n in names)]
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensitivity", type=float, default=0.5)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--clips", nargs="*", help="only clips whose path contains one of these")
    args = parser.parse_args()
    require_shared()
    load = os.getloadavg()[0]
    print(
        f"tampering at {FPS:g} fps, sensitivity {args.sensitivity:g}, min_seconds {args.min_seconds:g}, "
        f"lost_seconds {LOST_SECONDS:g}; tampering from {CHANGE:g} s"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start (noisy: compare ratios)")
    print()

    runs: list[Run] = []
    print(f"{'clip':42s} {'tampering':9s} {'expect':10s} {'events (kind@start-end s)':44s} verdict")
    for path in clips(args.clips):
        with VideoFile(path) as video:
            duration = video.info.duration or 0.0
        for tampering, (_, expected) in TAMPERING.items():
            if tampering != "original" and duration < MIN_CLIP_SECONDS:
                continue
            r = run(path, tampering, args.sensitivity, args.min_seconds)
            runs.append(r)
            hit, false = judge(r, args.min_seconds)
            shown = ", ".join(
                f"{e.details['kind']}@{e.start_t:.1f}-{e.end_t if e.end_t is None else round(e.end_t, 1)}"
                for e in r.events
            )
            missed = expected is not None and hit is None
            verdict = (
                "ok" if not false and not missed else ("MISSED " if missed else "") + f"{len(false)} false"
            )
            print(f"{r.clip:42s} {tampering:9s} {expected or '-':10s} {shown or '-':44s} {verdict}")
        if duration < MIN_CLIP_SECONDS:
            print(
                f"{path.relative_to(DATA).as_posix():42s} (only {duration:.1f} s: too short to tamper with)"
            )
    print()

    kinds = sorted({k for _, k in TAMPERING.values() if k})
    print(f"{'kind':11s} {'runs':>5s} {'found':>6s} {'false':>6s} {'precision':>10s} {'recall':>7s}")
    total = (0, 0, 0)
    for kind in [*kinds, "all"]:
        n = tp = fp = 0
        for r in runs:
            expected = TAMPERING[r.tampering][1]
            hit, false = judge(r, args.min_seconds)
            if expected is not None and kind in ("all", expected):
                n += 1
                tp += hit is not None
            # A false positive counts against the kind it claimed.
            fp += sum(kind in ("all", e.details["kind"]) for e in false)
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / n if n else float("nan")
        print(f"{kind:11s} {n:5d} {tp:6d} {fp:6d} {precision:10.3f} {recall:7.3f}")
        total = (n, tp, fp)
    clean = [r for r in runs if r.tampering == "original"]
    false_on_clean = sum(len(r.events) for r in clean)
    minutes = sum(r.seconds for r in clean) / 60
    print(f"untouched footage: {false_on_clean} events in {minutes:.1f} min of video ({len(clean)} clips)")
    print()

    print(
        f"{'cost per frame (untouched clips)':42s} {'size':>9s} {'update ms':>10s} {'p90':>6s} {'decode ms':>10s} {'ratio':>6s}"
    )
    for r in clean:
        with VideoFile(DATA / r.clip) as video:
            size = f"{video.info.width}x{video.info.height}"
        ms = np.array(r.update_ms)
        ratio = float(np.median(ms)) / r.decode_ms if r.decode_ms else float("nan")
        print(
            f"{r.clip:42s} {size:>9s} {np.median(ms):10.3f} {np.percentile(ms, 90):6.3f} "
            f"{r.decode_ms or 0:10.3f} {ratio:6.2f}"
        )
    print("  (update: TamperingDetector.update per analysed frame, median; decode: demux + decode per")
    print("   decoded frame, the decoder's own threads included; ratio: update / decode)")
    print()
    n, tp, fp = total
    print(
        f"summary: precision {tp / max(tp + fp, 1):.3f}, recall {tp / max(n, 1):.3f} over {n} tampered runs"
    )


if __name__ == "__main__":
    main()
