"""A camera whose codec MP4 refuses (PETS09's MS-MPEG4 vtest.avi) is still recorded as fragmented MP4.

The README's first command plays vtest.avi as a live camera. Its segments were
Matroska files while the README promised fragmented MP4; MS-MPEG4 cannot be
rewrapped as MP4, so the recorder re-encodes it to H.264. Here the file is read
by LiveSource, as a camera worker reads it (in real time), and recorded by
SegmentRecorder; the segment being written is checked while the camera runs,
as retention, clip export or a viewer would find it.

(The RTSP test server serves only H.264: RTP has no payload format for
MS-MPEG4, so no RTSP camera sends it.)
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import pytest
from servers import wait_until
from sqlalchemy import select

from camsight.config import RecordConfig
from camsight.media.recorder import SegmentRecorder
from camsight.sources.live import LiveSettings, LiveSource
from camsight.store.db import Store
from camsight.store.models import RecordingRow

pytestmark = [pytest.mark.slow, pytest.mark.integration]


class Recording:
    """The LiveHandler of a camera that is only recorded (what the worker does with packets)."""

    def __init__(self, recorder: SegmentRecorder) -> None:
        self.recorder = recorder
        self.packets = 0

    def on_connect(self, stream: Any, gap: bool) -> None:
        self.recorder.open(stream, gap)

    def on_packet(self, packet: av.Packet, at: datetime) -> None:
        self.recorder.packet(packet, at)
        self.packets += 1

    def on_frame(self, frame: Any, at: datetime) -> None:
        return

    def on_health(self, health: Any) -> None:
        return

    def idle(self, at: datetime) -> None:
        return


def boxes(path: Path) -> list[str]:
    """The top-level ISO BMFF boxes of an MP4 file, in order."""
    data, found, at = path.read_bytes(), [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        found.append(data[at + 4 : at + 8].decode("latin-1"))
        if size < 8:
            break
        at += size
    return found


def pictures(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_ms_mpeg4_camera_is_recorded_as_fragmented_h264_mp4(
    store: Store, tmp_path: Path, vtest: Path
) -> None:
    clip = vtest  # PETS09's vtest.avi: MS-MPEG4v3 ("DIV3"), which FFmpeg's MP4 muxer refuses
    root = tmp_path / "data" / "recordings"
    recorder = SegmentRecorder(store, "lobby", root, RecordConfig(mode="continuous", segment_seconds=60))
    handler = Recording(recorder)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            LiveSource("lobby", LiveSettings(str(clip), fps=2)).run(handler, stop)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    reader = threading.Thread(target=run)
    reader.start()
    try:
        wait_until(lambda: recorder.stats.current is not None or errors, timeout=60, what="a segment")
        assert not errors, errors
        segment = root / recorder.stats.current
        wait_until(lambda: handler.packets >= 30 or errors, timeout=60, what="3 s of footage")
        # While the camera runs: a fragmented MP4 of H.264, readable up to what was written.
        assert segment.suffix == ".mp4"
        assert boxes(segment)[:2] == ["ftyp", "moov"], boxes(segment)
        with av.open(str(segment)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
        # Its first 2 s are on disk already (the camera's next keyframe is 25 s away).
        assert pictures(segment) >= 10
    finally:
        stop.set()
        reader.join(timeout=30)
        recorder.close()
    assert not errors, errors
    assert recorder.stats.errors == 0, recorder.stats.last_error
    with store.session() as session:
        (row,) = session.scalars(select(RecordingRow)).all()
    assert (row.codec, row.width, row.height) == ("h264", 768, 576)
    assert row.path.endswith(".mp4") and row.end_at is not None
    layout = boxes(root / row.path)
    assert "moof" in layout and "mdat" in layout, layout
    # Every picture the camera sent is in the file, once.
    assert pictures(root / row.path) == recorder.stats.packets == handler.packets
