"""What the live view costs a camera worker: one live picture against one detection, same frames.

Decodes frames of a real clip (``../shared/data/intel/car-detection.mp4`` by default), optionally
scaled to ``--size`` first (e.g. 1920x1080, as a camera's main stream), and times, on the same
frames, the live publisher's whole work per picture (its own conversion, scaling, privacy mask,
JPEG) and a YOLOX-nano detection on one thread. Printed: milliseconds per frame of each and their
ratio (the machine is shared and noisy: compare the ratio, not the milliseconds).

    python bench/live_view.py [--clip PATH] [--size 1920x1080] [--frames 40]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

import av

from camsight.config import CameraConfig
from camsight.pipeline.live_view import LiveChannel, LivePublisher
from camsight.sources.frame import Frame
from camsight.vision.yolox import YoloxDetector

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    """Run the comparison and print one line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=SHARED / "data" / "intel" / "car-detection.mp4")
    parser.add_argument("--model", type=Path, default=SHARED / "models" / "yolox_nano.onnx")
    parser.add_argument("--size", default=None, help="WIDTHxHEIGHT to scale the frames to first")
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x")) if args.size else None
    frames = []
    with av.open(str(args.clip)) as container:
        for decoded in container.decode(video=0):
            frames.append(decoded.reformat(width=size[0], height=size[1]) if size else decoded)
            if len(frames) > args.frames:
                break
    cam = CameraConfig(masks={"corner": {"points": [[0, 0], [0.5, 0], [0.5, 0.5]]}})
    publisher = LivePublisher(LiveChannel(mp.get_context("spawn")), "bench", cam)
    detector = YoloxDetector(args.model, threads=1)
    # Warm up both (model session, scaler, mask) on the first frame.
    detector.detect(Frame(0, 0.0, av_frame=frames[0]).image)
    publisher.encode(Frame(0, 0.0, av_frame=frames[0]))
    rest = frames[1:]
    start = time.perf_counter()
    for decoded in rest:
        publisher.encode(Frame(0, 0.0, av_frame=decoded))
    live = (time.perf_counter() - start) / len(rest)
    images = [Frame(0, 0.0, av_frame=decoded).image for decoded in rest]
    start = time.perf_counter()
    for image in images:
        detector.detect(image)
    detect = (time.perf_counter() - start) / len(images)
    print(
        f"{frames[0].width}x{frames[0].height}: live picture {live * 1000:.1f} ms/frame, "
        f"detection {detect * 1000:.1f} ms/frame, ratio {live / detect:.2f}"
    )


if __name__ == "__main__":
    main()
