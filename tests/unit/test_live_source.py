"""LiveSource without an RTSP server: credentials, settings, backoff, and generated clips as cameras.

Clips are generated with PyAV; a file or folder plays as a camera at
real-time pace, so these tests take a few seconds each.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import av
import cv2
import numpy as np
import pytest
from conftest import make_clip

from camsight.config import CameraConfig
from camsight.errors import ConfigError
from camsight.sources import live
from camsight.sources.frame import Frame
from camsight.sources.live import Health, LiveSettings, LiveSource
from camsight.urls import redact_url, with_credentials

# --------------------------------------------------------------------------- a recording handler


class Collector:
    """A LiveHandler that keeps everything it is given (called on the run thread only)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.connects: list[tuple[float, bool, tuple[int, int]]] = []
        self.packets: list[tuple[int | None, int | None]] = []
        self.frames: list[tuple[float, Frame]] = []
        self.health: list[Health] = []
        self.idles: list[datetime] = []

    def on_connect(self, stream, gap: bool) -> None:
        ctx = stream.codec_context
        self.connects.append((time.monotonic() - self.t0, gap, (ctx.width, ctx.height)))

    def on_packet(self, packet, at: datetime) -> None:
        assert at.tzinfo is not None
        self.packets.append((packet.pts, packet.dts))

    def on_frame(self, frame: Frame, at: datetime) -> None:
        assert at.tzinfo is not None
        self.frames.append((time.monotonic() - self.t0, frame))

    def on_health(self, health: Health) -> None:
        self.health.append(health)

    def idle(self, at: datetime) -> None:
        self.idles.append(at)

    def states(self) -> list[str]:
        return [h.state for h in self.health]


def run_for(
    settings: LiveSettings,
    seconds: float,
    until: Callable[[Collector], bool] | None = None,
    handler: Collector | None = None,
) -> Collector:
    """Run a LiveSource for ``seconds`` (or until ``until`` holds) and stop it."""
    handler = handler or Collector()
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            LiveSource("test", settings).run(handler, stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and thread.is_alive():
        if until is not None and until(handler):
            break
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive(), "run() did not return after stop"
    if errors:
        raise errors[0]
    return handler


def run_until(
    settings: LiveSettings, until: Callable[[Collector], bool], what: str, timeout: float = 30.0
) -> Collector:
    """Run a LiveSource until ``until`` holds, and fail after ``timeout`` seconds.

    A condition rather than a duration: how many frames arrive in N seconds
    depends on how busy the machine is; a busy machine only makes this slower.
    """
    handler = run_for(settings, timeout, until=until)
    assert until(handler), f"timed out after {timeout:g}s waiting for {what}"
    return handler


def stream_span(handler: Collector) -> float:
    """Seconds of stream time between the first and the last frame delivered."""
    return handler.frames[-1][1].t - handler.frames[0][1].t if handler.frames else 0.0


def increasing(values: list) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


def static(i: int, image: np.ndarray) -> None:
    image[:] = 90
    image[30:60, 40:100] = 200


# --------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://admin:secret@10.0.0.5:554/Streaming/101", "rtsp://admin:***@10.0.0.5:554/Streaming/101"),
        ("rtsp://admin:p%40ss%3Aw%2Frd@cam/live", "rtsp://admin:***@cam/live"),
        # Unquoted special characters, as people type them into configs.
        ("rtsp://admin:p@ss:w/rd#1@cam/live", "rtsp://admin:***@cam/live"),
        ("rtsps://user:pw@cam:322/x?a=1", "rtsps://user:***@cam:322/x?a=1"),
        (
            "http://cam/mjpg/video.cgi?user=admin&pwd=1234&res=hd",
            "http://cam/mjpg/video.cgi?user=admin&pwd=***&res=hd",
        ),
        ("rtsp://admin@cam/live", "rtsp://admin@cam/live"),
        ("rtsp://cam/live", "rtsp://cam/live"),
        ("/srv/cams/gate.mp4", "/srv/cams/gate.mp4"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize("password", ["secret", "p@ss:w/rd", "a b%c#d?e&f", "päss€", "::@@//"])
def test_with_credentials_quotes_and_round_trips(password: str) -> None:
    url = with_credentials("rtsp://10.0.0.5:554/live?channel=1", "ad min", password)
    assert url == f"rtsp://ad%20min:{quote(password, safe='')}@10.0.0.5:554/live?channel=1"
    assert redact_url(url) == "rtsp://ad%20min:***@10.0.0.5:554/live?channel=1"
    assert quote(password, safe="") not in redact_url(url)


def test_with_credentials_replaces_and_keeps() -> None:
    assert with_credentials("rtsp://old:pw@cam/live", "new", "pw2") == "rtsp://new:pw2@cam/live"
    assert with_credentials("rtsp://old:pw@cam/live", None, "pw2") == "rtsp://old:pw2@cam/live"
    assert with_credentials("rtsp://cam/live", "user", None) == "rtsp://user@cam/live"
    assert with_credentials("rtsp://cam/live", None, None) == "rtsp://cam/live"
    assert with_credentials("/videos/gate.mp4", "user", "pw") == "/videos/gate.mp4"


def test_scrub_hides_raw_and_quoted_passwords() -> None:
    source = LiveSource("gate", LiveSettings(with_credentials("rtsp://cam/live", "admin", "p@ss:w/rd")))
    text = source.scrub(f"failed: {source.settings.url} p@ss:w/rd p%40ss%3Aw%2Frd")
    assert "p@ss" not in text and "p%40ss" not in text
    assert "rtsp://admin:***@cam/live" in text
    assert "p@ss" not in repr(source) and "p%40ss" not in repr(source.settings)


# --------------------------------------------------------------------------- settings


def test_settings_from_camera_with_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMSIGHT_SECRET_GATE", "p@ss:w/rd")
    cfg = CameraConfig(
        url="rtsp://10.0.0.5/live",
        detect_url="rtsp://10.0.0.5/sub",
        transport="udp",
        username="admin",
        password_env="CAMSIGHT_SECRET_GATE",
        fps=2,
        decode="keyframes",
        stall_seconds=4,
        frozen_seconds=20,
    )
    settings = LiveSettings.from_camera(cfg)
    assert settings.url == "rtsp://admin:p%40ss%3Aw%2Frd@10.0.0.5/live"
    assert (settings.transport, settings.fps, settings.decode) == ("udp", 2, "keyframes")
    assert (settings.stall_seconds, settings.frozen_seconds) == (4, 20)
    assert "p%40ss" not in repr(settings)
    assert LiveSettings.from_camera(cfg, detect=True).url.endswith("@10.0.0.5/sub")
    assert LiveSettings.from_camera(cfg, open_timeout=3).open_timeout == 3


def test_settings_from_camera_missing_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAMSIGHT_SECRET_NO_SUCH_VAR", raising=False)
    cfg = CameraConfig(url="rtsp://cam/live", username="admin", password_env="CAMSIGHT_SECRET_NO_SUCH_VAR")
    with pytest.raises(ConfigError, match="CAMSIGHT_SECRET_NO_SUCH_VAR"):
        LiveSettings.from_camera(cfg)


def test_settings_from_camera_without_url() -> None:
    with pytest.raises(ConfigError, match="no url"):
        LiveSettings.from_camera(CameraConfig())


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="fps"):
        LiveSettings("rtsp://cam/live", fps=0)
    with pytest.raises(ValueError, match="transport"):
        LiveSettings("rtsp://cam/live", transport="http")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- backoff


def test_backoff_grows_exponentially_within_jitter_bounds() -> None:
    settings = LiveSettings("rtsp://cam/live", backoff_initial=0.5, backoff_max=30.0, jitter=0.3)
    rng = np.random.default_rng(1)
    previous_base = 0.0
    for attempt in range(12):
        base = min(30.0, 0.5 * 2**attempt)
        assert base >= previous_base
        previous_base = base
        # One jitter rule for every retry (camsight.timeutil.backoff): up to 30% off, never above base.
        low, high = base * 0.7, base
        assert settings.backoff(attempt, rand=lambda: 1.0) == pytest.approx(low)
        assert settings.backoff(attempt, rand=lambda: 0.0) == pytest.approx(high)
        samples = [settings.backoff(attempt, rand=rng.random) for _ in range(200)]
        assert all(low - 1e-9 <= s <= high + 1e-9 for s in samples)
        # Jitter really spreads reconnects (cameras that failed together do not retry together).
        assert max(samples) - min(samples) > 0.3 * (high - low)
    assert settings.backoff(1000) <= 30.0


# --------------------------------------------------------------------------- files as cameras


@pytest.mark.slow
def test_file_camera_loops_and_plays_in_real_time(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "one-second.mp4", frames=10, fps=10)
    handler = run_until(
        LiveSettings(str(clip), fps=10),
        lambda h: len(h.frames) >= 20 and any(x.state == "connected" and x.fps_in > 5 for x in h.health),
        "20 frames, more than 5 frames/s in",
    )
    assert len(handler.connects) == 1, "a loop is not a reconnection"
    times = [t for t, _ in handler.frames]
    stamps = [f.t for _, f in handler.frames]
    # Real-time pace: never faster than the frame times (a busy machine may only make it slower;
    # without pacing, 2 s of looped video would take a few milliseconds).
    assert stamps[-1] - stamps[0] >= 1.9
    assert times[-1] - times[0] >= stamps[-1] - stamps[0] - 0.35
    assert increasing(stamps), "t must increase across loops"
    assert [f.index for _, f in handler.frames] == list(range(1, len(handler.frames) + 1))
    # Packet timestamps keep increasing across loops, so a recorder sees one stream.
    dts = [d for _, d in handler.packets if d is not None]
    assert len(dts) > 12 and increasing(dts)
    assert handler.states()[-1] == "stopped"


@pytest.mark.slow
def test_frames_are_picked_by_timestamp_not_by_count(tmp_path: Path) -> None:
    # Variable frame rate: 1.2 s at 20 fps, then 2 s at 4 fps (like a camera that
    # lowers its rate when nothing moves). 3 fps must mean 3 per second of time
    # in both parts; picking every n-th frame would starve the sparse part.
    stamps = [i * 50 for i in range(24)] + [1200 + i * 250 for i in range(8)]
    clip = make_clip(tmp_path / "vfr.mp4", pts=stamps, time_base=Fraction(1, 1000), fps=20)
    # Until a frame of the next loop: both parts have been played whole.
    handler = run_until(LiveSettings(str(clip), fps=3), lambda h: stream_span(h) >= 3.2, "one whole loop")
    times = np.array([f.t for _, f in handler.frames])
    times = times - times[0]
    dense, sparse = times[times < 1.2], times[(times >= 1.2) & (times < 3.2)]
    assert 3 <= len(dense) <= 5, times
    assert 5 <= len(sparse) <= 7, times
    # One pick per slot of 1/3 s at most (the rate keeps a grid, so a late pick
    # may be followed by an early one, but never two in one slot).
    slots = np.floor(times * 3 + 0.02)
    assert len(set(slots)) == len(slots), times


@pytest.mark.slow
def test_frozen_picture_is_reported(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "static.mp4", frames=20, fps=10, draw=static)
    handler = run_for(
        LiveSettings(str(clip), fps=5, frozen_seconds=1.0),
        4.0,
        until=lambda h: "frozen" in h.states(),
    )
    assert "frozen" in handler.states(), handler.states()
    frozen_at = next(h for h in handler.health if h.state == "frozen")
    assert frozen_at.connected_since is not None and frozen_at.error is None


@pytest.mark.slow
def test_moving_picture_is_not_frozen(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "moving.mp4", frames=25, fps=10)
    handler = run_until(
        LiveSettings(str(clip), fps=5, frozen_seconds=1.0),
        lambda h: stream_span(h) >= 2.0,
        "twice frozen_seconds of video",
    )
    assert "frozen" not in handler.states()


@pytest.mark.slow
def test_keyframes_only_decoding(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "gop.mp4", frames=20, fps=10)
    handler = run_for(LiveSettings(str(clip), fps=10, decode="keyframes"), 2.2)
    assert handler.frames
    assert all(frame._av.key_frame for _, frame in handler.frames)
    assert len(handler.frames) < len(handler.packets) / 2


@pytest.mark.slow
def test_folder_camera_plays_files_in_order_and_picks_up_new_ones(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    make_clip(folder / "b.mp4", frames=5, fps=10, size=(96, 64))
    make_clip(folder / "a.mp4", frames=5, fps=10, size=(160, 120))
    (folder / "notes.txt").write_text("not a video")
    old = time.time() - 10
    for name in ("a.mp4", "b.mp4"):
        os.utime(folder / name, (old, old))

    def add_later(h: Collector) -> bool:
        # Only once the camera has waited for a new file (idle): added sooner, on a loaded machine
        # (tests in parallel) it can arrive before b.mp4 ends, and the camera never waits.
        if len(h.connects) == 2 and h.idles and not (folder / "c.mp4").exists():
            make_clip(tmp_path / "c.mp4", frames=5, fps=10, size=(128, 72))
            (tmp_path / "c.mp4").rename(folder / "c.mp4")
        return len(h.connects) >= 3 and len({f.size for _, f in h.frames}) == 3

    handler = run_for(LiveSettings(str(folder), fps=10), 8.0, until=add_later)
    assert [size for _, _, size in handler.connects] == [(160, 120), (96, 64), (128, 72)]
    assert [gap for _, gap, _ in handler.connects] == [False, False, False]
    sizes = [f.size for _, f in handler.frames]
    assert sizes.index((96, 64)) > sizes.index((160, 120)) and sizes[-1] == (128, 72)
    stamps = [f.t for _, f in handler.frames]
    assert increasing(stamps)
    # Waiting for a new file is not an error.
    assert "error" not in handler.states() and handler.idles


def test_stream_template_stays_usable_until_the_next_connect(tmp_path: Path) -> None:
    # A recorder keeps the stream from on_connect as the template of its next
    # segment; a stream whose container was closed crashes PyAV, so the source
    # must keep it open until the next on_connect (and after run returns).
    folder = tmp_path / "drop"
    folder.mkdir()
    old = time.time() - 10
    for name in ("a.mp4", "b.mp4"):
        make_clip(folder / name, frames=4, fps=10)
        os.utime(folder / name, (old, old))

    class Recorder(Collector):
        template = None

        def on_connect(self, stream, gap: bool) -> None:
            if self.template is not None:
                self.segment(self.template)  # the previous connection's stream, still usable
            self.template = stream
            super().on_connect(stream, gap)

        @staticmethod
        def segment(template) -> None:
            with av.open(io.BytesIO(), "w", format="mp4") as out:
                assert out.add_stream_from_template(template).codec_context.width == 160

    handler = run_for(
        LiveSettings(str(folder), fps=5), 4.0, until=lambda h: len(h.connects) == 2, handler=Recorder()
    )
    assert len(handler.connects) == 2
    Recorder.segment(handler.template)  # after run returned


@pytest.mark.slow
def test_missing_file_is_an_error_and_retried(tmp_path: Path) -> None:
    handler = run_for(
        LiveSettings(str(tmp_path / "nope.mp4"), backoff_initial=0.1, backoff_max=0.2),
        1.0,
    )
    errors = [h.error for h in handler.health if h.state == "error"]
    assert errors and "no such file" in errors[0]
    assert handler.idles, "idle() is called while no frame arrives"


# --------------------------------------------------------------------------- network errors, stop


@pytest.mark.slow
def test_connection_refused_is_reported_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = with_credentials(f"rtsp://127.0.0.1:{port}/live", "admin", "s3cret!pw")
    caplog.set_level("DEBUG", logger="camsight.sources.live")
    handler = run_for(LiveSettings(url, backoff_initial=0.1, backoff_max=0.3), 1.0)
    errors = [h.error for h in handler.health if h.state == "error"]
    assert errors and "connection refused" in errors[0]
    assert f"rtsp://admin:***@127.0.0.1:{port}/live" in errors[0]
    text = caplog.text + "".join(str(h) for h in handler.health)
    assert "s3cret" not in text
    assert len(errors) >= 2 or len([h for h in handler.health if h.state == "connecting"]) >= 2


@pytest.mark.slow
def test_stop_returns_promptly_while_blocked_opening() -> None:
    # A server that accepts and then says nothing: av.open waits for open_timeout.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"rtsp://127.0.0.1:{server.getsockname()[1]}/live"
        handler = Collector()
        stop = threading.Event()
        thread = threading.Thread(
            target=LiveSource("mute", LiveSettings(url, open_timeout=20)).run, args=(handler, stop)
        )
        thread.start()
        time.sleep(1.0)
        started = time.monotonic()
        stop.set()
        thread.join(timeout=30)
        elapsed = time.monotonic() - started
    # It returns at all, though blocked in a read (how fast is printed, not asserted: machines vary).
    assert not thread.is_alive(), f"run() did not return within 30 s of stop ({elapsed:.1f}s)"
    print(f"\nrun() returned {elapsed:.2f}s after stop")
    assert handler.health[-1].state == "stopped"


@pytest.mark.slow
def test_a_reader_stuck_in_a_read_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PyAV's read timeout normally ends a stalled read; if a read still never
    # returns, the watchdog abandons that reader and connects again.
    clip = make_clip(tmp_path / "clip.mp4", frames=30, fps=10)
    release = threading.Event()
    readers: list[object] = []
    original = live._Reader._packets

    def packets(self, container, stream):
        readers.append(self)
        for i, packet in enumerate(original(self, container, stream)):
            if len(readers) == 1 and i == 5:
                release.wait(30)  # stuck, and deaf to stop and cancel
                return
            yield packet

    monkeypatch.setattr(live._Reader, "_packets", packets)
    monkeypatch.setattr(live, "STALL_GRACE", 0.5)
    try:
        handler = run_for(
            LiveSettings(str(clip), fps=5, stall_seconds=1.0),
            8.0,
            until=lambda h: len(h.connects) >= 2 and h.frames[-1][0] > h.connects[1][0] + 0.5,
        )
    finally:
        release.set()
    assert [gap for _, gap, _ in handler.connects] == [False, True]
    # At least the stall grace plus the backoff passed before the new reader connected (a lower
    # bound only: a busy machine may take longer, never shorter).
    assert handler.connects[1][0] - handler.connects[0][0] >= 0.5 + 1.5 - 0.1
    assert "stalled" in handler.states()
    stamps = [f.t for _, f in handler.frames]
    assert increasing(stamps)


def test_handler_errors_propagate(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=10, fps=10)

    class Broken(Collector):
        def on_frame(self, frame: Frame, at: datetime) -> None:
            raise RuntimeError("bug in analysis")

    with pytest.raises(RuntimeError, match="bug in analysis"):
        run_for(LiveSettings(str(clip)), 3.0, handler=Broken())


# --------------------------------------------------------------------------- HTTP MJPEG


class _Mjpeg(BaseHTTPRequestHandler):
    """A camera's MJPEG endpoint: multipart/x-mixed-replace JPEGs at 10 fps."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for i in range(100):
                image = np.full((72, 128, 3), 60, np.uint8)
                image[20:50, (i * 6) % 90 : (i * 6) % 90 + 30] = 255
                jpeg = cv2.imencode(".jpg", image)[1].tobytes()
                head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + b"\r\n")
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.mark.slow
def test_http_mjpeg_camera_is_timed_by_arrival() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Mjpeg)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/video.mjpg"
        handler = run_until(LiveSettings(url, fps=5), lambda h: len(h.frames) >= 8, "8 frames")
    finally:
        server.shutdown()
        server.server_close()
    assert handler.connects and handler.connects[0][2] == (128, 72)
    stamps = [f.t for _, f in handler.frames]
    arrived = [at for at, _ in handler.frames]
    # The mpjpeg demuxer counts frames at an assumed 25 fps; real time is used instead: the
    # frame times span the time the frames took to arrive (with 25 fps times, 0.4 of it)
    # and picking at 5 fps yields no more than 5 a second of it.
    assert stamps[-1] - stamps[0] == pytest.approx(arrived[-1] - arrived[0], abs=0.3)
    assert (len(stamps) - 1) / (stamps[-1] - stamps[0]) <= 5.0 + 0.5


# --------------------------------------------------------------------------- HLS


@pytest.mark.slow
def test_hls_playlist_plays_at_real_time_pace(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "src.mp4", frames=40, fps=10, codec="libx264")
    hls = tmp_path / "hls"
    hls.mkdir()
    options = {"hls_time": "1", "hls_playlist_type": "vod"}
    playlist = hls / "live.m3u8"
    with av.open(str(clip)) as inp, av.open(str(playlist), "w", format="hls", options=options) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(hls)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        handler = run_until(
            LiveSettings(f"http://127.0.0.1:{server.server_port}/live.m3u8", fps=5),
            lambda h: len(h.frames) >= 10,
            "10 frames",
        )
    finally:
        server.shutdown()
        server.server_close()
    # A recorded playlist arrives faster than real time; it is held back to the clock
    # (at most a second ahead): no frame comes much before its time, where unpaced all
    # 4 s would come at once. (A busy machine only makes frames later.)
    assert max(f.t - at for at, f in handler.frames) < 1.3, [(at, f.t) for at, f in handler.frames]
    assert handler.connects[0][2] == (160, 120)
