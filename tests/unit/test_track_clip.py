"""Making track clips on generated video: window, timing, masks, errors, recordings and the cache."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from camsight.config import CameraConfig, RecordConfig
from camsight.errors import ConfigError
from camsight.media.clip_cache import ClipCache, cached_clip
from camsight.media.recorder import SegmentRecorder
from camsight.media.track_clip import (
    ClipInfo,
    ClipWindow,
    Footage,
    FootageUnavailable,
    clip_window,
    encode_file_window,
    write_clip,
)
from camsight.sources.video_file import VideoFile, fingerprint
from camsight.store.db import open_store
from tests.conftest import make_clip

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
#: The left half of the picture, normalised.
LEFT_HALF = {"left": {"points": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}}


def square_x(image: np.ndarray) -> int:
    """Left edge of the white square that ``moving_square`` draws (x = 10 + 4 * frame)."""
    bright = np.flatnonzero(image[60, :, 1] > 200)
    return int(bright[0]) if len(bright) else -1


def decode(path: Path) -> tuple[list[np.ndarray], list[float], dict]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        info = {"codec": ctx.name, "pix_fmt": ctx.pix_fmt, "size": (ctx.width, ctx.height)}
        images, times = [], []
        for frame in container.decode(stream):
            images.append(frame.to_ndarray(format="bgr24"))
            times.append(float(frame.time))
    return images, times, info


def top_level_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    names, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        names.append(data[at + 4 : at + 8].decode())
        if size == 1:
            size = int.from_bytes(data[at + 8 : at + 16], "big")
        at += size
    return names


@pytest.fixture(scope="module")
def mp4(tmp_path_factory) -> Path:
    """5 s at 10 fps, MPEG-4 part 2 in MP4, a white square moving right 4 px a frame."""
    return make_clip(tmp_path_factory.mktemp("src") / "square.mp4", frames=50, fps=10, size=(200, 120))


@pytest.fixture(scope="module")
def mjpeg_avi(tmp_path_factory) -> Path:
    """The same picture as MJPEG in AVI (like many cameras' files), written by OpenCV, odd size."""
    path = tmp_path_factory.mktemp("src") / "square.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (201, 121))
    assert writer.isOpened()
    for i in range(50):
        image = np.full((121, 201, 3), 60, np.uint8)
        image[40:80, 10 + 4 * i : 50 + 4 * i] = 255
        writer.write(image)
    writer.release()
    return path


def test_clip_window_pads_caps_and_clamps():
    assert clip_window(10.0, 20.0, padding=2.0) == ClipWindow(8.0, 22.0, False)
    assert clip_window(1.0, 3.0, padding=2.0) == ClipWindow(0.0, 5.0, False)
    assert clip_window(5.0, None, padding=5.0) == ClipWindow(0.0, 10.0, False)
    assert clip_window(10.0, 1000.0, padding=2.0, max_seconds=120.0) == ClipWindow(8.0, 128.0, True)
    with pytest.raises(ValueError):
        clip_window(float("nan"), 1.0, padding=2.0)


def test_file_window_is_h264_faststart_and_starts_at_the_window(mp4, tmp_path):
    out = tmp_path / "clip.mp4"
    info = encode_file_window(mp4, 1.0, 3.0, out)
    assert info.path == out and info.origin == "file" and not info.masked
    assert info.start_t == pytest.approx(1.0) and info.duration == pytest.approx(2.0, abs=0.01)
    assert info.frames == 20 and (info.width, info.height) == (200, 120)
    images, times, probe = decode(out)
    assert probe == {"codec": "h264", "pix_fmt": "yuv420p", "size": (200, 120)}
    assert len(images) == 20
    assert times[0] == pytest.approx(0.0, abs=1e-3) and times[-1] == pytest.approx(1.9, abs=0.01)
    # Frame 10 (t = 1.0 s) is the clip's first picture; frame 29 its last.
    assert square_x(images[0]) == pytest.approx(10 + 4 * 10, abs=2)
    assert square_x(images[-1]) == pytest.approx(10 + 4 * 29, abs=2)
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart: playable while downloading


def test_clip_times_match_the_indexer_clock(mp4, tmp_path):
    """Clip time + start_t is the time VideoFile (hence every track and observation) gives a frame."""
    with VideoFile(mp4) as video:
        indexed = {round(f.t, 3): square_x(f.image) for f in video.frames()}
    info = encode_file_window(mp4, 2.35, 4.0, tmp_path / "c.mp4")
    images, times, _ = decode(info.path)
    for image, t in zip(images, times, strict=True):
        assert square_x(image) == pytest.approx(indexed[round(info.start_t + t, 1)], abs=2)


def test_mjpeg_avi_with_odd_size_becomes_even_h264(mjpeg_avi, tmp_path):
    info = encode_file_window(mjpeg_avi, 0.0, 2.0, tmp_path / "c.mp4")
    images, _, probe = decode(info.path)
    assert probe == {"codec": "h264", "pix_fmt": "yuv420p", "size": (200, 120)}
    assert (info.width, info.height) == (200, 120) and len(images) == 20


def test_privacy_mask_is_blank_in_every_decoded_frame(mp4, tmp_path):
    cam = CameraConfig(masks=LEFT_HALF)
    info = encode_file_window(mp4, 0.0, 5.0, tmp_path / "masked.mp4", camera_config=cam, camera="yard")
    assert info.masked and info.frames == 50
    images, _, _ = decode(info.path)
    for image in images:
        # The square crosses the masked half in the first 22 frames: never visible there.
        assert image[:, :96].max() <= 8, "masked pixels leaked"
    # Outside the mask the picture is as without a mask: the grey background and, later, the square.
    plain, _, _ = decode(encode_file_window(mp4, 0.0, 5.0, tmp_path / "plain.mp4").path)
    assert plain[0][:, :96].max() > 200  # the square is there when nothing is masked
    for masked, unmasked in zip(images, plain, strict=True):
        diff = np.abs(masked[:, 104:].astype(int) - unmasked[:, 104:].astype(int))
        assert diff.mean() < 2
    assert images[40][60, 170:190].min() > 200


def test_a_mask_outside_the_frame_stops_the_clip(mp4, tmp_path):
    cam = CameraConfig(masks={"far": {"points": [[500, 500], [900, 500], [900, 900]], "units": "pixels"}})
    out = tmp_path / "never.mp4"
    with pytest.raises(ConfigError, match="outside"):
        encode_file_window(mp4, 0.0, 2.0, out, camera_config=cam, camera="yard")
    assert list(tmp_path.iterdir()) == []  # nothing unmasked, nothing half-written


def test_missing_garbage_changed_and_empty_window(mp4, tmp_path):
    out = tmp_path / "x.mp4"
    with pytest.raises(FootageUnavailable, match="missing") as missing:
        encode_file_window(tmp_path / "nope.mp4", 0.0, 1.0, out)
    assert missing.value.reason == "the source file is missing"
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video at all" * 100)
    with pytest.raises(FootageUnavailable, match="cannot be read"):
        encode_file_window(garbage, 0.0, 1.0, out)
    with pytest.raises(FootageUnavailable, match="changed since it was indexed"):
        encode_file_window(mp4, 0.0, 1.0, out, expect_fingerprint="0" * 32)
    with pytest.raises(FootageUnavailable, match="no frames"):
        encode_file_window(mp4, 60.0, 70.0, out)
    assert encode_file_window(mp4, 0.0, 1.0, out, expect_fingerprint=fingerprint(mp4)).frames == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.mp4", "x.mp4"]


# --------------------------------------------------------------------------- live cameras: recordings


def h264_clip(path: Path, seconds: float = 6.0, fps: int = 10) -> Path:
    """H.264 with a keyframe every second, the moving square on grey (what a camera would send)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"g": str(fps), "keyint_min": str(fps)})
        stream.width, stream.height, stream.pix_fmt = 200, 120, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(int(seconds * fps)):
            image = np.full((120, 200, 3), 60, np.uint8)
            image[40:80, 10 + 2 * i : 50 + 2 * i] = 255
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = round(i * 1000 / fps), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture
def recorded(tmp_path):
    """A store whose camera ``gate`` recorded a generated H.264 clip from T0, in 2 s segments."""
    store = open_store(tmp_path / "data")
    root = tmp_path / "data" / "recordings"
    clip = h264_clip(tmp_path / "camera.mp4")
    rec = SegmentRecorder(store, "gate", root, RecordConfig(mode="continuous", segment_seconds=2))
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        rec.open(stream)
        for packet in container.demux(stream):
            if packet.dts is not None:
                rec.packet(packet, T0 + timedelta(seconds=float(packet.pts * stream.time_base)))
    rec.close()
    yield store, root
    store.close()


def test_live_footage_comes_from_recordings_masked(recorded, tmp_path):
    store, root = recorded
    # A live session that started 1 s after T0: source second 2.5 is T0 + 3.5 s.
    footage = Footage(camera="gate", wallclock_start=T0 + timedelta(seconds=1))
    cam = CameraConfig(masks=LEFT_HALF)
    info = write_clip(
        store, footage, 2.5, 4.0, tmp_path / "live.mp4", camera_config=cam, recordings_root=root
    )
    assert info.origin == "recordings" and info.masked
    # The export starts at the keyframe at or before the start (one a second).
    assert 1.5 - 1e-3 <= info.start_t <= 2.5 + 1e-3
    assert info.start_t + info.duration == pytest.approx(4.0, abs=0.11)
    images, _, probe = decode(info.path)
    assert probe["codec"] == "h264" and probe["pix_fmt"] == "yuv420p"
    assert len(images) == info.frames == round(info.duration * 10)
    assert all(image[:, :96].max() <= 8 for image in images)


def test_a_missing_file_falls_back_to_recordings_else_is_unavailable(recorded, tmp_path):
    store, root = recorded
    moved = Footage(camera="gate", file=tmp_path / "gone.mp4", wallclock_start=T0)
    info = write_clip(store, moved, 1.0, 3.0, tmp_path / "a.mp4", camera_config=None, recordings_root=root)
    assert info.origin == "recordings"
    later = Footage(camera="gate", wallclock_start=T0 + timedelta(hours=5))
    with pytest.raises(FootageUnavailable) as err:
        write_clip(store, later, 1.0, 3.0, tmp_path / "b.mp4", camera_config=None, recordings_root=root)
    assert err.value.reason == "no recording covers it"
    nowhere = Footage(camera="gate", file=tmp_path / "gone.mp4")
    with pytest.raises(FootageUnavailable, match="source file is missing"):
        cached_clip(
            store, nowhere, ClipWindow(0.0, 2.0), name="track-1", camera_config=None, recordings_root=root
        )
    assert not (tmp_path / "b.mp4").exists()


# --------------------------------------------------------------------------- the cache


class CountingMaker:
    """Makes a real clip of ``source`` and counts how often it was asked to."""

    def __init__(self, source: Path, start: float = 0.0, end: float = 2.0) -> None:
        self.source, self.start, self.end = source, start, end
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, tmp: Path) -> ClipInfo:
        with self._lock:
            self.calls += 1
        return encode_file_window(self.source, self.start, self.end, tmp)


def test_cache_makes_once_then_hits(mp4, tmp_path):
    cache = ClipCache(tmp_path / "clips")
    make = CountingMaker(mp4)
    first = cache.get("track-7", {"k": 1}, make)
    again = cache.get("track-7", {"k": 1}, make)
    assert make.calls == 1 and first == again
    assert first.path.parent == tmp_path / "clips" and first.path.name.startswith("track-7-")
    assert decode(first.path)[2]["codec"] == "h264"
    # Another key for the same name (e.g. the masks changed) replaces the old clip.
    other = cache.get("track-7", {"k": 2}, make)
    assert make.calls == 2 and other.path != first.path and not first.path.exists()
    assert sorted(p.suffix for p in (tmp_path / "clips").glob("track-7-*")) == [".json", ".mp4"]


def test_two_simultaneous_first_requests_encode_once(mp4, tmp_path):
    cache = ClipCache(tmp_path / "clips")
    make = CountingMaker(mp4, 0.0, 4.0)
    results: list[ClipInfo] = []
    barrier = threading.Barrier(4)

    def ask() -> None:
        barrier.wait()
        results.append(cache.get("event-3", {"k": "same"}, make))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert make.calls == 1 and len(results) == 4 and len({r.path for r in results}) == 1
    assert len(decode(results[0].path)[0]) == 40


def test_a_failed_make_leaves_nothing_behind(tmp_path):
    cache = ClipCache(tmp_path / "clips")

    def broken(tmp: Path) -> ClipInfo:
        tmp.write_bytes(b"half a clip")
        raise FootageUnavailable("the source file cannot be read")

    with pytest.raises(FootageUnavailable):
        cache.get("track-9", {"k": 1}, broken)
    assert [p for p in (tmp_path / "clips").iterdir() if p.name != ".locks"] == []


def test_cache_evicts_least_recently_used_beyond_its_bounds(mp4, tmp_path):
    cache = ClipCache(tmp_path / "clips", max_files=2, keep_recent_s=0.0)
    make = CountingMaker(mp4, 0.0, 1.0)
    a = cache.get("track-1", {"k": 1}, make)
    b = cache.get("track-2", {"k": 1}, make)
    # track-1 was used after track-2, so track-2 is the least recently used.
    os.utime(b.path, (1_000_000, 1_000_000))
    cache.get("track-1", {"k": 1}, make)
    c = cache.get("track-3", {"k": 1}, make)
    assert a.path.exists() and c.path.exists() and not b.path.exists()
    assert not b.path.with_suffix(".json").exists()
    small = ClipCache(tmp_path / "clips", max_bytes=1, keep_recent_s=0.0)
    d = small.get("track-4", {"k": 1}, make)
    assert d.path.exists() and [p.name for p in (tmp_path / "clips").glob("*.mp4")] == [d.path.name]


def test_cache_refuses_unsafe_names(mp4, tmp_path):
    cache = ClipCache(tmp_path / "clips")
    for name in ("../../etc/passwd", "track-1/../x", "", "track-", "TRACK-1"):
        with pytest.raises(ValueError):
            cache.get(name, {}, CountingMaker(mp4))


def test_cached_clip_of_a_deleted_file_is_dropped(tmp_path):
    source = make_clip(tmp_path / "src.mp4", frames=30, fps=10)
    store = open_store(tmp_path / "data")
    try:
        footage = Footage(camera="yard", file=source, fingerprint=fingerprint(source))
        kwargs = {"name": "track-5", "camera_config": None, "recordings_root": tmp_path / "rec"}
        info = cached_clip(store, footage, ClipWindow(0.5, 2.5), **kwargs)
        assert info.path.is_relative_to(store.media / "clips") and info.start_t == pytest.approx(0.5)
        source.unlink()
        with pytest.raises(FootageUnavailable, match="missing"):
            cached_clip(store, footage, ClipWindow(0.5, 2.5), **kwargs)
        assert not info.path.exists()
    finally:
        store.close()
