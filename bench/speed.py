"""Indexing speed on PETS09-S2L1, per stage, against the decode-only ceiling.

Measures, on ../shared/data/pets09/vtest.avi (79.5 s, 10 fps, 768x576):

1. decode-only: every frame decoded, only the frames at the analysis rate
   converted to BGR arrays (what the pipeline does before any analysis);
   its rate is the ceiling the pipeline can approach;
2. the full pipeline at --fps 5 with default settings (motion gate on), per
   backend, in-process with ``Indexer`` in a fresh data dir: rate as a
   multiple of real time, ratio to the ceiling and the share of wall time
   per stage (IndexResult.stage_seconds); plus one real ``camsight index
   --json`` run for the user-facing YOLOX figure;
3. the motion gate on a static scene: a real vtest.avi frame repeated for
   30 s at 10 fps with a little sensor noise, encoded to H.264, indexed with
   YOLOX at 5 fps with the gate on and off.

The machine is small and noisy: every figure is a ratio against a baseline
measured in the same run, nothing is asserted. Targets are printed beside
the results.

    python bench/speed.py [--repeat N] [--backends yolox ssd] [--noise SIGMA]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from common import VTEST, YOLOX, backend_args, camsight, require_shared

from camsight.pipeline.analysis import STAGES
from camsight.pipeline.indexer import Indexer, IndexResult, IndexSettings
from camsight.sources.video_file import VideoFile
from camsight.store.db import open_store
from camsight.vision.detector import Detector, create_detector

FPS = 5.0
TARGET_SPEED = 10.0  # pipeline at 5 fps with YOLOX-nano, multiple of real time
TARGET_STATIC = 3.0  # static scene: gate off / gate on wall time
STATIC_SECONDS = 30
STATIC_FPS = 10


@dataclasses.dataclass
class Decode:
    wall: float
    video_seconds: float
    decoded: int
    converted: int

    @property
    def speed(self) -> float:
        return self.video_seconds / self.wall


def decode_only(path: Path, fps: float | None) -> Decode:
    """Decode the whole file as the pipeline does, doing nothing with the frames."""
    started = time.perf_counter()
    converted, last_t = 0, 0.0
    with VideoFile(path) as video:
        for frame in video.frames(fps):
            converted += 1
            last_t = frame.t
        native = video.info.fps
        decoded = video.decoded
    wall = time.perf_counter() - started
    # The same definition as IndexResult.video_seconds.
    return Decode(wall, last_t + 1.0 / native, decoded, converted)


def settings_for(backend: str, *, motion: bool = True) -> IndexSettings:
    """Default settings (as the CLI builds them) with ``backend`` at 5 fps."""
    base = IndexSettings(fps=FPS, detector=backend, model=str(YOLOX) if backend == "yolox" else None)
    return base if motion else dataclasses.replace(base, motion=None)


def load_detector(settings: IndexSettings, sample: np.ndarray) -> Detector:
    """Load once and warm up, so runs time indexing rather than model loading."""
    detector = create_detector(settings.detector, Path(settings.model) if settings.model else None)  # type: ignore[arg-type]
    detector.detect(sample)
    return detector


@dataclasses.dataclass
class Indexed:
    result: IndexResult
    cpu: float  # process CPU seconds (all threads) spent in Indexer.index

    @property
    def wall(self) -> float:
        return self.result.wall_seconds


def index_once(path: Path, settings: IndexSettings, detector: Detector) -> Indexed:
    """Index ``path`` into a fresh temporary data dir."""
    with tempfile.TemporaryDirectory(prefix="camsight-bench-") as tmp:
        store = open_store(Path(tmp) / "data")
        try:
            cpu = time.process_time()
            result = Indexer(store, settings, detector).index(path, camera="bench")
            cpu = time.process_time() - cpu
        finally:
            store.close()
    if result.status != "complete":
        raise SystemExit(f"indexing {path} ended {result.status}: {result.message}")
    return Indexed(result, cpu)


def best_of(repeat: int, fn):
    """The fastest of ``repeat`` runs: the least disturbed by other load."""
    runs = [fn() for _ in range(repeat)]
    return min(runs, key=lambda r: r.wall)


def first_frame(path: Path) -> np.ndarray:
    with VideoFile(path) as video:
        return next(iter(video.frames(None))).image


def make_static_clip(out: Path, image: np.ndarray, noise: float, seed: int = 0) -> None:
    """``image`` held for STATIC_SECONDS at STATIC_FPS, with Gaussian sensor noise, as H.264."""
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    base = image.astype(np.int16)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=STATIC_FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for i in range(STATIC_SECONDS * STATIC_FPS):
            pixels = base
            if noise > 0:
                pixels = base + rng.normal(0.0, noise, base.shape).round().astype(np.int16)
            frame = av.VideoFrame.from_ndarray(np.clip(pixels, 0, 255).astype(np.uint8), format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, STATIC_FPS)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@dataclasses.dataclass
class Cli:
    wall: float
    result: dict


def cli_once() -> Cli:
    """One real ``camsight index --json`` with YOLOX into a fresh data dir, timed from outside."""
    with tempfile.TemporaryDirectory(prefix="camsight-bench-") as tmp:
        argv = ["index", str(VTEST), "--camera", "pets", "--fps", f"{FPS:g}"]
        argv += ["--data", str(Path(tmp) / "data"), *backend_args("yolox"), "--json"]
        started = time.perf_counter()
        proc = camsight(*argv)
        wall = time.perf_counter() - started
    return Cli(wall, json.loads(proc.stdout)[0])


class WithoutFaint:
    """A detector as it was before faint person boxes (the tracker's second look at people who fell)."""

    def __init__(self, detector: Detector) -> None:
        self._detector = detector

    def __getattr__(self, name: str):
        return getattr(self._detector, name)

    def detect(self, image: np.ndarray):
        return dataclasses.replace(self._detector.detect(image), faint=None)


def many_views_cost(repeat: int) -> float:
    """Indexing time with everything issue 13 added to indexing (attributes read from many views, the
    person models, re-id vectors, faint person boxes for the second look at people who fell; light
    garments are read from the same views), against before (three best crops, no person models,
    no faint boxes), YOLOX at 5 fps, runs alternated."""
    from camsight.vision.person_attributes import load_person_attributes

    sample = first_frame(VTEST)
    new = settings_for("yolox")
    # Before issue 13: the three best crops, no attributes model (and no re-id vectors, when that
    # setting exists): everything added is measured together.
    off = {"samples_per_track": 0, "person_model": False, "reid": False}
    fields = {f.name for f in dataclasses.fields(IndexSettings)}
    old = dataclasses.replace(new, **{k: v for k, v in off.items() if k in fields})
    detector = load_detector(new, sample)
    model = load_person_attributes()
    print(
        "attributes from many views + person attributes model "
        f"({'installed: ' + str(model.model_path) if model else 'NOT installed: views only'}), "
        f"YOLOX at {FPS:g} fps, vtest.avi"
    )
    configs = {"before": old, "now": new}
    if "reid" in fields:  # the re-id vectors (grouping) apart from the attributes
        configs = {"before": old, "no reid": dataclasses.replace(new, reid=False), "now": new}
    runs: dict[str, list[Indexed]] = {name: [] for name in configs}
    before = WithoutFaint(detector)
    for _ in range(repeat):  # alternated, so a burst of load from elsewhere hits all alike
        for name, settings in configs.items():
            runs[name].append(index_once(VTEST, settings, before if name == "before" else detector))
    best = {k: min(v, key=lambda r: r.wall) for k, v in runs.items()}
    for name, timed in best.items():
        r = timed.result
        print(
            f"  {name:7} wall {r.wall_seconds:6.2f} s  cpu {timed.cpu:6.2f} s  attributes stage "
            f"{r.stage_seconds['attributes']:5.2f} s  track stage {r.stage_seconds['track']:5.2f} s"
        )
    for name in configs:
        if name != "before":
            wall = best[name].wall / best["before"].wall
            cpu = best[name].cpu / best["before"].cpu
            print(
                f"  {name} / before: wall {100 * (wall - 1):+.0f}%, CPU {100 * (cpu - 1):+.0f}% (target <= +30%)"
            )
    return best["now"].wall / best["before"].wall


def reid_cost(repeat: int) -> float:
    """Indexing time with and without re-id vectors (person-reidentification-retail-0288), all else
    default, YOLOX at 5 fps on vtest.avi, runs alternated."""
    from camsight.vision.reid import load_reid

    sample = first_frame(VTEST)
    on = settings_for("yolox")
    off = dataclasses.replace(on, reid=False)
    detector = load_detector(on, sample)
    model = load_reid()
    print(f"re-id vectors ({'installed: ' + str(model.model_path) if model else 'NOT installed'}), vtest.avi")
    runs: dict[str, list[Indexed]] = {"off": [], "on": []}
    for _ in range(repeat):  # alternated, so a burst of load from elsewhere hits both
        runs["off"].append(index_once(VTEST, off, detector))
        runs["on"].append(index_once(VTEST, on, detector))
    best = {k: min(v, key=lambda r: r.wall) for k, v in runs.items()}
    for name, timed in best.items():
        r = timed.result
        print(
            f"  {name:3} wall {r.wall_seconds:6.2f} s  cpu {timed.cpu:6.2f} s  "
            f"attributes stage (re-id included) {r.stage_seconds['attributes']:5.2f} s"
        )
    wall = best["on"].wall / best["off"].wall
    cpu = best["on"].cpu / best["off"].cpu
    print(f"  on / off: wall {100 * (wall - 1):+.0f}%, CPU {100 * (cpu - 1):+.0f}%")
    return wall


def pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole > 0 else "    -"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest is shown")
    parser.add_argument("--backends", nargs="+", choices=["yolox", "ssd"], default=["yolox", "ssd"])
    parser.add_argument("--noise", type=float, default=2.0, help="static clip noise (grey levels)")
    parser.add_argument("--no-cli", action="store_true", help="skip the real `camsight index` run")
    parser.add_argument(
        "--attributes-only",
        action="store_true",
        help="measure only what issue 13's attributes add (views over the track, person attributes model)",
    )
    parser.add_argument("--reid-only", action="store_true", help="measure only what re-id vectors cost")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    require_shared()
    if not YOLOX.exists():  # the static-scene test always uses YOLOX
        raise SystemExit(f"YOLOX model not found at {YOLOX}")

    if args.attributes_only:
        many_views_cost(args.repeat)
        return
    if args.reid_only:
        reid_cost(args.repeat)
        return
    with VideoFile(VTEST) as video:
        info = video.info
    load = os.getloadavg()[0]
    print(
        f"camsight speed: {VTEST.name} ({info.duration:.1f} s, {info.frames} frames, "
        f"{info.width}x{info.height} @ {info.fps:g} fps), analysis at {FPS:g} fps, "
        f"best of {args.repeat}"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start (noisy: compare ratios)")
    print()

    # 1. The ceiling.
    ceiling = best_of(args.repeat, lambda: decode_only(VTEST, FPS))
    print("decode-only ceiling (every frame decoded, BGR only at the analysis rate)")
    print(
        f"  {ceiling.decoded} decoded, {ceiling.converted} converted, {ceiling.wall:.2f} s wall "
        f"-> {ceiling.speed:.1f}x real time ({1000 * ceiling.wall / ceiling.decoded:.1f} ms/frame decoded)"
    )
    print()

    # 2. The pipeline, in-process, per backend.
    sample = first_frame(VTEST)
    detectors: dict[str, Detector] = {}
    print(f"pipeline at {FPS:g} fps, default settings, motion gate on (Indexer in-process, model preloaded)")
    head = " ".join(f"{s:>7}" for s in (*STAGES, "other"))
    print(
        f"  {'backend':7} {'wall s':>7} {'cpu s':>6} {'speed':>7} {'/ceil':>6} {'analysed':>8} "
        f"{'detected':>8} "
        f"{'ms/det':>6} | {head}"
    )
    speeds: dict[str, float] = {}
    for backend in args.backends:
        settings = settings_for(backend)
        detectors[backend] = load_detector(settings, sample)
        timed = best_of(args.repeat, lambda s=settings, b=backend: index_once(VTEST, s, detectors[b]))
        r = timed.result
        speeds[backend] = r.speed
        other = r.wall_seconds - sum(r.stage_seconds.values())
        shares = " ".join(f"{pct(r.stage_seconds[s], r.wall_seconds):>7}" for s in STAGES)
        ms_det = 1000 * r.stage_seconds["detect"] / max(r.frames_detected, 1)
        print(
            f"  {backend:7} {r.wall_seconds:7.2f} {timed.cpu:6.2f} {r.speed:6.1f}x "
            f"{r.speed / ceiling.speed:6.2f} "
            f"{r.frames_analysed:8d} {r.frames_detected:8d} {ms_det:6.1f} | {shares} "
            f"{pct(other, r.wall_seconds):>7}"
        )
    print("  (cpu s: process CPU time, all threads; /ceil: pipeline rate / decode-only rate;")
    print("   ms/det: detect stage per detected frame; other: wall time outside the five stages)")
    print()

    if not args.no_cli and "yolox" in args.backends:
        print(f"real CLI: camsight index vtest.avi --fps {FPS:g} --detector yolox --json (fresh data dir)")

        cli = best_of(args.repeat, cli_once)
        video_s = cli.result["video_seconds"]
        print(
            f"  process wall {cli.wall:.2f} s (start-up, imports, model load, migrations included) "
            f"-> {video_s / cli.wall:.1f}x real time, {video_s / cli.wall / ceiling.speed:.2f} of ceiling"
        )
        print(
            f"  reported by the CLI: {cli.result['wall_seconds']:.2f} s -> {cli.result['speed']:.1f}x "
            f"real time; {cli.result['frames_detected']} of {cli.result['frames_analysed']} "
            "frames detected"
        )
        print()

    # 3. What appearance attributes (pose + colours, for search) cost.
    if "yolox" in detectors:
        plain = dataclasses.replace(settings_for("yolox"), attributes=False)
        without = best_of(args.repeat, lambda: index_once(VTEST, plain, detectors["yolox"]))
        with_attrs = best_of(
            args.repeat, lambda: index_once(VTEST, settings_for("yolox"), detectors["yolox"])
        )
        attr_cost = with_attrs.wall / without.wall
        print("appearance attributes (pose model + clothing colours per track), YOLOX at 5 fps")
        print(
            f"  without: {without.wall:.2f} s ({without.result.speed:.1f}x)   with: {with_attrs.wall:.2f} s "
            f"({with_attrs.result.speed:.1f}x, attributes stage {with_attrs.result.stage_seconds['attributes']:.2f} s)"
            f"   -> {100 * (attr_cost - 1):+.0f}% time"
        )
        print()

    # 4. The motion gate on a static scene.
    if "yolox" not in detectors:
        detectors["yolox"] = load_detector(settings_for("yolox"), sample)
    with tempfile.TemporaryDirectory(prefix="camsight-static-") as tmp:
        clip = Path(tmp) / "static.mp4"
        make_static_clip(clip, sample, args.noise)
        on = best_of(args.repeat, lambda: index_once(clip, settings_for("yolox"), detectors["yolox"]))
        off = best_of(
            args.repeat, lambda: index_once(clip, settings_for("yolox", motion=False), detectors["yolox"])
        )
    print(
        f"motion gate on a static scene: first vtest.avi frame held {STATIC_SECONDS} s at "
        f"{STATIC_FPS} fps, noise sigma {args.noise:g}, H.264; YOLOX at {FPS:g} fps"
    )
    print(
        f"  {'gate':5} {'wall s':>7} {'cpu s':>6} {'speed':>7} {'analysed':>8} {'detected':>8} | "
        + " ".join(f"{st:>6}" for st in STAGES)
    )
    for name, timed in (("on", on), ("off", off)):
        r = timed.result
        print(
            f"  {name:5} {r.wall_seconds:7.2f} {timed.cpu:6.2f} {r.speed:6.1f}x {r.frames_analysed:8d} "
            f"{r.frames_detected:8d} | " + " ".join(f"{r.stage_seconds[st]:6.2f}" for st in STAGES)
        )
    static_ratio = off.wall / on.wall
    print(
        f"  gate off / gate on: wall time {static_ratio:.1f}x, CPU time {off.cpu / on.cpu:.1f}x "
        "(stage columns: seconds)"
    )
    print()

    print("targets (informative, not asserted):")
    if "yolox" in speeds:
        print(
            f"  pipeline at {FPS:g} fps with YOLOX-nano >= {TARGET_SPEED:g}x real time: "
            f"{speeds['yolox']:.1f}x -> {verdict(speeds['yolox'] >= TARGET_SPEED)}"
            f" (decode-only ceiling here: {ceiling.speed:.1f}x)"
        )
    if "yolox" in detectors:
        print(
            f"  attribute extraction slows indexing by <= 30%: {100 * (attr_cost - 1):+.0f}% "
            f"-> {verdict(attr_cost <= 1.30)}"
        )
    print(
        f"  static scene >= {TARGET_STATIC:g}x cheaper with the gate: {static_ratio:.1f}x "
        f"-> {verdict(static_ratio >= TARGET_STATIC)}"
    )


if __name__ == "__main__":
    main()
