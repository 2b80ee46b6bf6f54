"""Recording an HTTP MJPEG camera, whose stream has no timestamps of its own.

The mpjpeg demuxer numbers frames as if they came at 25 fps; a 6 fps camera
recorded with those numbers gave "4 s" segments holding 16.7 s of footage,
played 4x fast, with 12.7 s holes between their rows. The recorder stamps such
packets by arrival, so each segment lasts as long as it took to film.

A real HTTP server in the test sends JPEGs at 6 fps; the camera is read by
LiveSource and recorded by SegmentRecorder, as a camera worker does.
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from servers import wait_until
from sqlalchemy import select

from camsight.config import RecordConfig
from camsight.media.recorder import SegmentRecorder
from camsight.sources.live import LiveSettings, LiveSource
from camsight.store.db import Store
from camsight.store.models import RecordingRow

pytestmark = pytest.mark.slow

FPS = 6
SEGMENT_SECONDS = 4


class MjpegCamera(ThreadingHTTPServer):
    """An MJPEG endpoint sending a moving bar at FPS; remembers when each frame went out."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Frames)
        self.sent: list[datetime] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/video.mjpg"

    def sent_times(self) -> list[datetime]:
        with self.lock:
            return list(self.sent)


class _Frames(BaseHTTPRequestHandler):
    server: MjpegCamera

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        start = time.monotonic()
        try:
            for i in itertools.count():
                if self.server.closing.is_set():
                    return
                # Paced from the start, so the rate holds however long a write takes.
                delay = start + i / FPS - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                image = np.full((96, 128, 3), 50, np.uint8)
                image[30:66, (i * 7) % 98 : (i * 7) % 98 + 30] = 230
                jpeg = cv2.imencode(".jpg", image)[1].tobytes()
                head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + b"\r\n")
                self.wfile.flush()
                with self.server.lock:
                    self.server.sent.append(datetime.now(UTC))
        except (BrokenPipeError, ConnectionResetError):
            pass


class Recording:
    """The LiveHandler of a camera that is only recorded (what the worker does with packets)."""

    def __init__(self, recorder: SegmentRecorder) -> None:
        self.recorder = recorder

    def on_connect(self, stream: Any, gap: bool) -> None:
        self.recorder.open(stream, gap)

    def on_packet(self, packet: av.Packet, at: datetime) -> None:
        self.recorder.packet(packet, at)

    def on_frame(self, frame: Any, at: datetime) -> None:
        return

    def on_health(self, health: Any) -> None:
        return

    def idle(self, at: datetime) -> None:
        return


def finished(store: Store) -> list[RecordingRow]:
    with store.session() as session:
        return list(
            session.scalars(
                select(RecordingRow).where(RecordingRow.end_at.is_not(None)).order_by(RecordingRow.start_at)
            )
        )


def footage(path: Path) -> tuple[float, int]:
    """Seconds of video in a segment (first timestamp to the end of the last frame) and its frames."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.pts is not None]
        end = max(p.pts + (p.duration or 0) for p in packets)
        return float((end - packets[0].pts) * stream.time_base), len(packets)


@pytest.fixture
def camera() -> Any:
    server = MjpegCamera()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.closing.set()
    server.shutdown()
    server.server_close()


def test_mjpeg_segments_last_as_long_as_they_took_to_film(store: Store, tmp_path: Path, camera: Any) -> None:
    root = tmp_path / "data" / "recordings"
    recorder = SegmentRecorder(
        store, "mjpeg", root, RecordConfig(mode="continuous", segment_seconds=SEGMENT_SECONDS)
    )
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            LiveSource("mjpeg", LiveSettings(camera.url, fps=2)).run(Recording(recorder), stop)
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=run)
    reader.start()
    try:
        wait_until(lambda: len(finished(store)) >= 2 or errors, timeout=90, what="two finished segments")
    finally:
        stop.set()
        reader.join(timeout=10)
        recorder.close()
    assert not errors, errors
    assert recorder.stats.gaps == 0 and recorder.stats.errors == 0, recorder.stats
    rows = finished(store)[:2]
    sent = camera.sent_times()
    first_frame = 0
    for row in rows:
        seconds, frames = footage(root / row.path)
        # What the segment holds took this long to film: from its first frame going out
        # to the frame after its last (the segments split the frames in order, no gaps).
        filmed = (sent[first_frame + frames] - sent[first_frame]).total_seconds()
        assert seconds == pytest.approx(filmed, rel=0.2), (row.path, seconds, frames, filmed)
        assert seconds == pytest.approx(SEGMENT_SECONDS, rel=0.2)
        assert frames / seconds == pytest.approx(FPS, rel=0.2)
        # The row's times are the frames' times: clip export by time range finds them.
        span = (row.end_at - row.start_at).total_seconds()
        assert span == pytest.approx(seconds, rel=0.2)
        assert abs((row.start_at - sent[first_frame]).total_seconds()) < 1.0
        first_frame += frames
    # One continuous stream: each segment starts where the one before ended.
    assert abs(rows[1].start_at - rows[0].end_at) < timedelta(seconds=0.5)


def test_frames_arriving_together_keep_their_order_and_a_clock_set_back_breaks(
    store: Store, tmp_path: Path
) -> None:
    # A bare MJPEG file (JPEGs back to back): the "mjpeg" demuxer, untimed like a camera's.
    clip = tmp_path / "camera.mjpeg"
    with clip.open("wb") as out:
        for i in range(40):
            image = np.full((96, 128, 3), 50, np.uint8)
            image[30:66, (i * 3) % 98 : (i * 3) % 98 + 30] = 230
            out.write(cv2.imencode(".jpg", image)[1].tobytes())
    root = tmp_path / "recordings"
    recorder = SegmentRecorder(store, "file", root, RecordConfig(mode="continuous", segment_seconds=60))
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    # The first three come in one read; then one every 1/6 s; at packet 30 the system
    # clock is set back a minute.
    arrivals = [t0] * 3 + [t0 + timedelta(seconds=i / FPS) for i in range(3, 30)]
    arrivals += [arrivals[-1] - timedelta(seconds=60) + timedelta(seconds=i / FPS) for i in range(1, 11)]
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        recorder.open(stream)
        for packet, at in zip(container.demux(stream), arrivals, strict=False):
            if packet.size:
                recorder.packet(packet, at)
        recorder.close()
    with store.session() as session:
        rows = list(session.scalars(select(RecordingRow).order_by(RecordingRow.id)))
    assert len(rows) == 2 and rows[1].gap_before and not rows[0].gap_before
    with av.open(str(root / rows[0].path)) as container:
        stream = container.streams.video[0]
        stamps = [float(p.pts * stream.time_base) for p in container.demux(stream) if p.pts is not None]
    assert len(stamps) == 30
    assert all(b > a for a, b in itertools.pairwise(stamps))
    # The burst a millisecond apart, then each frame at its arrival; the row ends a frame
    # after the last one came.
    assert [s - stamps[0] for s in stamps[:3]] == pytest.approx([0.0, 0.001, 0.002], abs=1e-6)
    assert stamps[-1] - stamps[0] == pytest.approx(29 / FPS, abs=0.002)
    assert rows[0].start_at == t0
    assert (rows[0].end_at - rows[0].start_at).total_seconds() == pytest.approx(30 / FPS, abs=0.002)
    assert rows[1].start_at == arrivals[30]
