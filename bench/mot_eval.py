"""Tracking quality on PETS09-S2L1: MOTA and IDF1 for each detector backend.

Indexes ../shared/data/pets09/vtest.avi at --fps native with the real CLI,
exports MOT15 with `camsight export-mot`, and scores frames 1-400 against
gt_dev.txt with motmetrics.

    python bench/mot_eval.py [--backends default yolox ssd] [--fps native|5]

At ``--fps 5`` (the CLI's default rate) camsight analyses every second frame;
only the analysed frames are scored, and the stock trackers get those frames
only, at that rate.

``default`` runs `camsight index vtest.avi --fps native` with no detector
options, as a user would (the default detector, found in the models folder).

Beside camsight's rows, the same run scores the stock trackers of the
``trackers`` package (BoT-SORT and ByteTrack, their defaults but for the
video's frame rate) fed the default detector's person boxes (confidence
> 0.1, NMS 0.45) on every frame, so the comparison uses one detector, one
decoder and one scorer (``--no-stock`` skips them).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterable
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


def analysed_frames(fps: float | None) -> list[int]:
    """The frames (1-based) of vtest.avi up to LAST_FRAME that analysis at ``fps`` looks at.

    The CLI's own sampler picks them, from the container's frame rate.
    """
    import cv2

    from camsight.sources.video_file import AnalysisRate

    video = cv2.VideoCapture(str(VTEST))
    native = video.get(cv2.CAP_PROP_FPS)
    video.release()
    rate = AnalysisRate(fps)
    return [f for f in range(1, LAST_FRAME + 1) if rate.take((f - 1) / native)]


def score(gt_path: Path, hyp_path: Path, frames: list[int] | None = None) -> dict[str, float]:
    gt, hyp = load_mot(gt_path), load_mot(hyp_path)
    acc = mm.MOTAccumulator(auto_id=False)
    for frame in frames or range(1, LAST_FRAME + 1):
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


def stock_tracks(out_dir: Path, frames: list[int] | None = None) -> dict[str, Path]:
    """Run the ``trackers`` package's stock BoT-SORT and ByteTrack on vtest.avi; MOT files by name.

    Both get the same person boxes of camsight's default detector on every
    decoded frame (frame 1 is the first, as in the ground truth), or only on
    ``frames`` (then at their rate).
    """
    import cv2
    import supervision as sv
    from trackers import BoTSORTTracker, ByteTrackTracker

    from camsight.vision.detector import create_detector

    detector = create_detector("yolox", None, confidence=0.1)  # the default model, as the CLI finds it
    video = cv2.VideoCapture(str(VTEST))
    fps = video.get(cv2.CAP_PROP_FPS)
    if frames is not None and len(frames) > 1:
        fps *= (len(frames) - 1) / (frames[-1] - frames[0])  # the analysed frames' rate
    take = set(frames) if frames is not None else None
    # frame_rate is the video's, not a tuning: the trackers scale their patience by it.
    trackers = {"BoT-SORT": BoTSORTTracker(frame_rate=fps), "ByteTrack": ByteTrackTracker(frame_rate=fps)}
    rows: dict[str, list[str]] = {name: [] for name in trackers}
    frame = 0
    while True:
        ok, image = video.read()
        if not ok:
            break
        frame += 1
        if take is not None and frame not in take:
            if frame > max(take):
                break
            continue
        people = detector.detect(image).of("person")
        dets = sv.Detections(
            xyxy=people.xyxy.astype(np.float32).reshape(-1, 4),
            confidence=people.confidence.astype(np.float32),
            class_id=np.zeros(len(people), int),
        )
        for name, tracker in trackers.items():
            # BoT-SORT's default camera-motion compensation needs the image.
            result = tracker.update(dets, image) if name == "BoT-SORT" else tracker.update(dets)
            rows[name].extend(_mot_lines(frame, result.tracker_id, result.xyxy, result.confidence))
    video.release()
    paths = {}
    for name, lines in rows.items():
        paths[name] = out_dir / f"stock-{name}.txt"
        paths[name].write_text("".join(lines))
    return paths


def _mot_lines(frame: int, ids: np.ndarray, xyxy: np.ndarray, conf: np.ndarray | None) -> Iterable[str]:
    for i, tid in enumerate(ids):
        if tid < 0:
            continue  # not confirmed yet: the tracker reports no identity
        x1, y1, x2, y2 = (float(v) for v in xyxy[i])
        c = float(conf[i]) if conf is not None else 1.0
        yield f"{frame},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{c:.3f},-1,-1,-1\n"


def _print_row(name: str, m: dict[str, float]) -> None:
    print(
        f"{name:18} {m['mota']:6.3f} {m['idf1']:6.3f} {m['recall']:6.3f} {m['precision']:6.3f} "
        f"{int(m['num_switches']):5d} {int(m['num_false_positives']):5d} {int(m['num_misses']):5d}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["default", "ssd"])
    parser.add_argument("--config", type=Path, help="camsight config file for indexing")
    parser.add_argument("--no-stock", action="store_true", help="skip the stock trackers' rows")
    parser.add_argument(
        "--fps", default="native", help="analysis rate: 'native' or frames/s (default: native)"
    )
    args = parser.parse_args()
    require_shared()
    from camsight.errors import CamsightError
    from camsight.sources.video_file import parse_fps

    try:
        fps = parse_fps(args.fps)
    except CamsightError as exc:
        parser.error(str(exc))
    frames = analysed_frames(fps) if fps is not None else None
    print(f"--fps {args.fps}: {len(frames or range(LAST_FRAME))} of frames 1-{LAST_FRAME} scored")
    print(f"{'tracker':18} {'MOTA':>6} {'IDF1':>6} {'recall':>6} {'prec':>6} {'IDsw':>5} {'FP':>5} {'FN':>5}")
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            camsight(
                "index",
                str(VTEST),
                "--camera",
                "pets",
                "--fps",
                args.fps,
                "--data",
                str(data),
                *backend_args(backend),
                *(["--config", str(args.config)] if args.config else []),
            )
            out = Path(tmp) / "pets.txt"
            camsight("export-mot", "--camera", "pets", "--data", str(data), str(out))
            m = score(GT, out, frames)
        _print_row(f"camsight {backend}", m)
    if not args.no_stock:
        with tempfile.TemporaryDirectory() as tmp:
            for name, path in stock_tracks(Path(tmp), frames).items():
                _print_row(f"stock {name}", score(GT, path, frames))
    print(
        "targets: MOTA >= 0.83 and IDF1 >= 0.80 with the default detector, MOTA at least the stock BoT-SORT's"
    )


if __name__ == "__main__":
    main()
