"""The live view's shared channel and the worker's publisher, on real decoded frames.

The channel is shared with a real spawned process (as a camera worker is); the publisher encodes
frames decoded by PyAV, with the privacy masks blanked, only while someone watches.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from camsight.config import CameraConfig
from camsight.pipeline import live_view
from camsight.pipeline.live_view import LiveChannel, LivePublisher
from camsight.sources.frame import Frame
from tests.conftest import make_clip
from tests.servers import wait_for


def decoded_frames(path: Path) -> list[Frame]:
    with av.open(str(path)) as container:
        return [Frame(i + 1, 0.0, av_frame=f) for i, f in enumerate(container.decode(video=0))]


def test_a_picture_published_in_another_process_is_read_here() -> None:
    ctx = mp.get_context("spawn")
    channel = LiveChannel(ctx, capacity=1024)
    _ok, jpeg = cv2.imencode(".jpg", np.full((8, 8, 3), 90, np.uint8))
    worker = ctx.Process(target=channel.publish, args=(jpeg.tobytes(),))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0
    seq, data = channel.latest(0)
    assert data == jpeg.tobytes() and seq == 2
    assert channel.latest(seq) is None  # nothing newer
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (8, 8, 3)


def test_the_publisher_makes_masked_jpegs_only_while_someone_watches(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=12, size=(320, 240), draw=lambda i, im: im.fill(200))
    frames = decoded_frames(clip)
    channel = LiveChannel(mp.get_context("spawn"))
    cam = CameraConfig(masks={"corner": {"points": [[0, 0], [0.5, 0], [0.5, 0.5], [0, 0.5]]}})
    publisher = LivePublisher(channel, "gate", cam)
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        publisher.offer(frames[0])  # nobody watches: not even kept
        assert publisher._frame is None
        channel.want()
        publisher.offer(frames[1])
        _seq, jpeg = wait_for(lambda: channel.latest(0), 10, step=0.02)
    finally:
        stop.set()
        thread.join(5)
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (240, 320, 3)
    assert image[10:110, 10:150].max() < 20  # the mask is black
    assert image[130:230, 170:310].min() > 170  # the rest is the picture
    # Analysis has not converted the frame: the publisher used its own scaler, not the frame's.
    assert frames[1]._image is None


def test_wide_frames_are_scaled_down_and_an_unusable_mask_shows_nothing(tmp_path: Path) -> None:
    wide = Frame(1, 0.0, np.full((720, 1920, 3), 120, np.uint8))
    channel = LiveChannel(mp.get_context("spawn"))
    jpeg = LivePublisher(channel, "wide", CameraConfig()).encode(wide)
    assert jpeg is not None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[1] == live_view.LIVE_WIDTH and image.shape[0] == 480
    # A pixel mask that does not fit this picture: never an unmasked picture instead.
    cam = CameraConfig(masks={"far": {"points": [[2000, 0], [2100, 0], [2100, 100]], "units": "pixels"}})
    assert LivePublisher(channel, "odd", cam).encode(wide) is None


def test_a_wide_decoded_frame_is_scaled_while_converted_and_its_mask_scaled_to_cover(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "w.mp4", frames=2, size=(1920, 1080), draw=lambda i, im: im.fill(220))
    # A mask in pixels of the camera's frame, ending between two live pixels (1000 / 1.5 = 666.7).
    points = [[0, 0], [1000, 0], [1000, 600], [0, 600]]
    cam = CameraConfig(masks={"shop": {"points": points, "units": "pixels"}})
    publisher = LivePublisher(LiveChannel(mp.get_context("spawn")), "wide", cam)
    jpeg = publisher.encode(decoded_frames(clip)[0])
    assert jpeg is not None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (720, 1280)
    assert image[:398, :664].max() < 40  # every live pixel touching the mask is black
    assert image[420:, 700:].min() > 180  # and the picture is there beside it


def test_pictures_larger_than_the_channel_are_refused_not_cut() -> None:
    channel = LiveChannel(mp.get_context("spawn"), capacity=16)
    assert channel.publish(b"0123456789") is True
    assert channel.publish(b"x" * 17) is False
    assert channel.latest(0) == (2, b"0123456789")


@pytest.mark.parametrize("seconds", [0.0, 5.0])
def test_wanted_follows_the_last_want(seconds: float) -> None:
    channel = LiveChannel(mp.get_context("spawn"), capacity=16)
    channel.want(seconds)
    assert channel.wanted() is (seconds > 0)


def test_a_picture_left_from_an_earlier_viewer_is_not_shown_as_live() -> None:
    channel = LiveChannel(mp.get_context("spawn"), capacity=16)
    channel.publish(b"old picture")
    assert channel.latest(0, max_age=60.0) == (2, b"old picture")
    wait_for(lambda: channel.latest(0, max_age=1.0) is None, 10, step=0.1)
    channel.publish(b"new picture")
    assert channel.latest(0, max_age=1.0) == (4, b"new picture")
