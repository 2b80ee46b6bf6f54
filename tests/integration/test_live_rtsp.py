"""LiveSource against a real RTSP server (gst-rtsp-server) looping real footage.

The server runs in the system Python (see tests/rtsp.py); tests skip with a
message saying what to install when it is absent (and fail on CI).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import CARS, PEOPLE
from rtsp import RtspServer, prepare_clip, require_rtsp
from servers import free_port, wait_until

from camsight.sources.frame import Frame
from camsight.sources.live import Health, LiveSettings, LiveSource

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "p@ss:w/rd#1"


class Camera:
    """A LiveSource running in a thread, with everything it reported (thread-safe lists)."""

    def __init__(self, name: str, settings: LiveSettings) -> None:
        self.source = LiveSource(name, settings)
        self.t0 = time.monotonic()
        self.connects: list[tuple[float, bool]] = []
        self.frames: list[tuple[float, Frame]] = []
        self.health: list[Health] = []
        self.packets = 0
        self.exception: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"test-{name}")

    # LiveHandler
    def on_connect(self, stream, gap: bool) -> None:
        assert stream.codec_context.name == "h264"
        self.connects.append((time.monotonic(), gap))

    def on_packet(self, packet, at: datetime) -> None:
        self.packets += 1

    def on_frame(self, frame: Frame, at: datetime) -> None:
        self.frames.append((time.monotonic(), frame))

    def on_health(self, health: Health) -> None:
        self.health.append(health)

    def idle(self, at: datetime) -> None:
        pass

    def _run(self) -> None:
        try:
            self.source.run(self, self._stop)
        except BaseException as exc:
            self.exception = exc

    def start(self) -> Camera:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "run() did not return after stop"
        assert self.exception is None, f"run() raised {self.exception!r}"

    def states(self) -> list[str]:
        return [h.state for h in self.health]

    def frames_since(self, since: float) -> list[Frame]:
        return [f for at, f in self.frames if at >= since]

    def wait_frames(self, count: int, timeout: float = 10.0) -> None:
        wait_until(lambda: len(self.frames) >= count, timeout, what=f"{count} frames from {self.source.name}")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_rtsp()
    sources = {"people": PEOPLE, "cars": CARS}
    for clip in sources.values():
        if not clip.exists():
            pytest.skip(f"shared test data not found: {clip} (set CAMSIGHT_SHARED to the shared/ folder)")
    folder = tmp_path_factory.mktemp("rtsp-clips")
    return {name: prepare_clip(clip, folder, seconds=10) for name, clip in sources.items()}


@pytest.fixture(scope="module")
def rtsp(clips: dict[str, Path]) -> Iterator[RtspServer]:
    """One server for the module: /cam1 people, /cam2 cars, /stall cars (for the stall test)."""
    with RtspServer({"/cam1": clips["people"], "/cam2": clips["cars"], "/stall": clips["cars"]}) as server:
        yield server


@pytest.fixture
def cameras() -> Iterator[Callable[..., Camera]]:
    started: list[Camera] = []

    def start(name: str, url: str, **settings: object) -> Camera:
        options: dict = {"fps": 5.0, "stall_seconds": 3.0, "backoff_max": 2.0, "open_timeout": 5.0}
        options.update(settings)
        camera = Camera(name, LiveSettings(url, **options)).start()
        started.append(camera)
        return camera

    yield start
    for camera in started:
        camera.stop()


def increasing(values: list) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


def rate(frames: list[Frame]) -> float:
    return (len(frames) - 1) / (frames[-1].t - frames[0].t)


def test_two_cameras_deliver_frames_at_the_analysis_rate(rtsp: RtspServer, cameras) -> None:
    cam1 = cameras("cam1", rtsp.url("/cam1"))
    cam2 = cameras("cam2", rtsp.url("/cam2"))
    cam1.wait_frames(3)
    cam2.wait_frames(3)
    # Counted by stream time, not by wall time, so a busy machine cannot change the count:
    # 5 fps of a 10 / 12.5 fps stream, picked by stream timestamps, is 15 frames in 3 s of it.
    for cam in (cam1, cam2):
        first = len(cam.frames)
        cam.wait_frames(first + 16, timeout=30)
        frames = [f for _, f in cam.frames[first:]]
        span = [f for f in frames if f.t - frames[0].t < 3.0 - 1e-6]
        assert 14 <= len(span) <= 16, (cam.source.name, [f.t for f in frames])
        assert rate(frames) == pytest.approx(5.0, abs=0.6)
        assert frames[0].size == (768, 432)
        assert cam.packets > len(cam.frames)
        # Health is measured over wall time: wait for it rather than sample it once.
        wait_until(
            lambda cam=cam: cam.health[-1].state == "connected" and cam.health[-1].fps_in > 8,
            30,
            what=f"{cam.source.name} connected with more than 8 frames/s in",
        )


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_transport(rtsp: RtspServer, cameras, transport: str) -> None:
    cam = cameras(f"cam-{transport}", rtsp.url("/cam2"), transport=transport)
    cam.wait_frames(10)
    frames = [f for _, f in cam.frames]
    assert rate(frames) == pytest.approx(5.0, abs=1.0)
    assert [gap for _, gap in cam.connects] == [False]


def test_server_restart_is_a_gap_and_reconnects_quickly(clips: dict[str, Path], cameras) -> None:
    with RtspServer({"/cam1": clips["people"]}) as server:
        for transport in ("tcp", "udp"):
            cam = cameras(f"restart-{transport}", server.url("/cam1"), transport=transport)
            cam.wait_frames(5)
            server.stop()
            wait_until(lambda cam=cam: cam.health[-1].state in ("ended", "error"), 5, what="the loss noticed")
            time.sleep(1.5)  # down for a while: connection refused, backoff grows
            server.start()
            back = time.monotonic()
            # How fast is measured by bench/live_streams.py; here only that it happens.
            wait_until(lambda cam=cam: len(cam.connects) >= 2, 60, what="a reconnection")
            reconnect = cam.connects[1][0] - back
            print(f"\n{transport}: reconnected {reconnect:.2f}s after the RTSP server came back")
            assert cam.connects[1][1] is True, "a reconnection after lost data is a gap"
            count = len(cam.frames)
            cam.wait_frames(count + 5)
            stamps = [f.t for _, f in cam.frames]
            assert increasing(stamps), "t increases across reconnects"
            health = cam.health[-1]
            assert health.state == "connected" and health.gaps == 1 and health.reconnects == 1
            assert any(h.error and "connection refused" in h.error for h in cam.health)
            cam.stop()


def test_stalled_mount_is_detected_and_reconnected(rtsp: RtspServer, cameras) -> None:
    cam = cameras("stall", rtsp.url("/stall"), stall_seconds=2.0)
    cam.wait_frames(5)
    rtsp.stall("/stall")
    stalled_at = time.monotonic()
    try:
        wait_until(lambda: "stalled" in cam.states(), 60, what="state 'stalled'")
        detected = time.monotonic() - stalled_at
        print(f"\nstall detected after {detected:.2f}s (stall_seconds=2)")
        assert detected >= 2.0 - 0.2, "a stall is declared only after stall_seconds without video"
        stalled = next(h for h in cam.health if h.state == "stalled")
        assert "no video" in stalled.error
    finally:
        rtsp.unstall("/stall")
    wait_until(lambda: len(cam.connects) >= 2, 10, what="a reconnection after the stall")
    assert cam.connects[-1][1] is True
    count = len(cam.frames)
    cam.wait_frames(count + 5)
    assert cam.health[-1].state == "connected"


def test_wrong_mount_and_port_are_clear_errors_while_another_camera_runs(rtsp: RtspServer, cameras) -> None:
    good = cameras("good", rtsp.url("/cam1"))
    mount = cameras("no-mount", rtsp.url("/nope"), backoff_initial=0.2, backoff_max=0.5)
    port = cameras("no-port", f"rtsp://127.0.0.1:{free_port()}/cam1", backoff_initial=0.2, backoff_max=0.5)
    wait_until(lambda: "error" in mount.states() and "error" in port.states(), 10, what="errors")
    good.wait_frames(3)
    # A failing camera must not hold up the others: while the failing ones retry, the good one
    # misses no frame of its stream. Judged by stream time, not by frames counted after a
    # sleep, which depends on how busy the machine is.
    first, attempts = len(good.frames), mount.states().count("connecting")
    wait_until(
        lambda: len(good.frames) >= first + 10 and mount.states().count("connecting") >= attempts + 2,
        30,
        what="frames from the good camera while the others retry",
    )
    stamps = [f.t for _, f in good.frames[first:]]
    assert max(b - a for a, b in itertools.pairwise(stamps)) < 0.3, stamps  # 5 fps: every 0.2 s
    assert len(good.connects) == 1
    mount_error = next(h.error for h in mount.health if h.state == "error")
    port_error = next(h.error for h in port.health if h.state == "error")
    assert "no such stream" in mount_error and "/nope" in mount_error
    assert "connection refused" in port_error
    # They keep retrying.
    assert mount.states().count("connecting") >= 2 and not mount.frames
    assert good.health[-1].state == "connected"


def test_password_never_shows_in_health_or_logs(
    clips: dict[str, Path], cameras, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with RtspServer({"/secure": clips["cars"]}, auth=f"admin:{PASSWORD}") as server:
        right = cameras("right", server.url("/secure", user="admin", password=PASSWORD))
        wrong = cameras("wrong", server.url("/secure", user="admin", password=PASSWORD + "x"))
        anonymous = cameras("anonymous", server.url("/secure"))
        right.wait_frames(3)
        wait_until(lambda: "error" in wrong.states() and "error" in anonymous.states(), 10, what="401s")
        server.stop()  # a lost connection: more messages that could leak
        wait_until(lambda: right.health[-1].state in ("ended", "error"), 5, what="the loss noticed")
        time.sleep(0.5)
    assert "401 Unauthorized" in next(h.error for h in wrong.health if h.state == "error")
    assert "401 Unauthorized" in next(h.error for h in anonymous.health if h.state == "error")
    assert not wrong.frames
    reported = "\n".join(
        [caplog.text, *(repr(h) for cam in (right, wrong) for h in cam.health)]
        + [repr(cam.source) + repr(cam.source.settings) for cam in (right, wrong)]
    )
    assert "admin:***@" in reported
    for secret in (PASSWORD, quote(PASSWORD, safe=""), "p@ss", "p%40ss"):
        assert secret not in reported, f"{secret!r} leaked"
