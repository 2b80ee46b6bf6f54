"""A real RTSP server for tests (GStreamer's gst-rtsp-server), on 127.0.0.1 only.

The server runs in the *system* Python (``tests/rtsp_server.py``; PyGObject is
not installable in the project's venv) and loops prepared H.264 clips forever,
one per mount, like cameras. It can be killed and started again on the same
port, and a mount can be stalled (no more video while the connection stays open).

    clip = prepare_clip(PEOPLE, tmp_path_factory.mktemp("rtsp"))
    with RtspServer({"/cam1": clip}) as server:
        url = server.url("/cam1")          # rtsp://127.0.0.1:<port>/cam1
        server.stall("/cam1")              # no more packets on /cam1
        server.unstall("/cam1")
        server.restart()                   # kill -9, then start on the same port

A module-scoped fixture::

    @pytest.fixture(scope="module")
    def rtsp(tmp_path_factory):
        require_rtsp()
        clips = tmp_path_factory.mktemp("rtsp-clips")
        server = RtspServer({"/cam1": prepare_clip(PEOPLE, clips)}).start()
        yield server
        server.stop()
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path
from urllib.parse import quote

import av
import pytest
from servers import free_port

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
INSTALL_HINT = (
    "apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-bad (or bash scripts/setup.sh --dev)"
)

_checked: str | None = None
_clips: dict[tuple[Path, Path, float], Path] = {}


def rtsp_missing() -> str | None:
    """Why the RTSP test server cannot run here, or None when it can."""
    global _checked
    if _checked is None:
        if not os.access(SYSTEM_PYTHON, os.X_OK):
            _checked = f"{SYSTEM_PYTHON} not found"
        else:
            proc = subprocess.run(
                [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--check"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            lines = (proc.stdout + proc.stderr).strip().splitlines()
            _checked = "" if proc.returncode == 0 else (lines[-1] if lines else f"exit {proc.returncode}")
    return _checked or None


def require_rtsp() -> None:
    """Skip the test when the system GStreamer RTSP server is absent (fail on CI, where it must be)."""
    missing = rtsp_missing()
    if missing:
        message = f"RTSP test server unavailable: {missing}; install it with: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def prepare_clip(src: Path, dst_dir: Path, *, seconds: float = 20.0, gop_seconds: float = 1.0) -> Path:
    """Transcode the first ``seconds`` of ``src`` into a clip the test server loops.

    Output: ``<dst_dir>/<stem>.h264`` (raw Annex B H.264, constrained baseline,
    constant frame rate, no B-frames, a keyframe every ``gop_seconds`` with
    SPS/PPS in front, native picture size) and ``<stem>.json`` beside it (the
    frame rate and each access unit's byte size and keyframe flag). Done once per
    test session and destination.
    """
    src = Path(src)
    key = (src.resolve(), Path(dst_dir).resolve(), seconds)
    if key in _clips and _clips[key].exists():
        return _clips[key]
    out = Path(dst_dir) / f"{src.stem}.h264"
    out.parent.mkdir(parents=True, exist_ok=True)
    units: list[list[int | bool]] = []
    with av.open(str(src)) as inp, out.open("wb") as fh:
        stream = inp.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 10)
        ctx = stream.codec_context
        enc = av.CodecContext.create("libx264", "w")
        # x264 wants even sizes for 4:2:0.
        enc.width, enc.height = ctx.width // 2 * 2, ctx.height // 2 * 2
        enc.pix_fmt = "yuv420p"
        enc.time_base = Fraction(1, 1000)
        enc.framerate = Fraction(fps).limit_denominator(1000)
        gop = max(1, round(fps * gop_seconds))
        enc.gop_size = gop
        enc.max_b_frames = 0
        enc.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "profile": "baseline",
            # SPS/PPS before every keyframe and a fixed GOP: a client can join at any keyframe.
            "x264-params": f"repeat-headers=1:scenecut=0:keyint={gop}:min-keyint={gop}",
        }

        def write(packets: list[av.Packet]) -> None:
            for packet in packets:
                data = bytes(packet)
                fh.write(data)
                units.append([len(data), bool(packet.is_keyframe)])

        limit = round(seconds * fps)
        for i, frame in enumerate(inp.decode(stream)):
            if i >= limit:
                break
            image = frame.reformat(width=enc.width, height=enc.height, format="yuv420p")
            image.pts = round(i * 1000 / fps)
            image.time_base = enc.time_base
            write(enc.encode(image))
        write(enc.encode(None))
    out.with_suffix(".json").write_text(
        json.dumps({"fps": fps, "width": enc.width, "height": enc.height, "units": units})
    )
    _clips[key] = out
    return out


class RtspServer:
    """The test RTSP server on 127.0.0.1:``port``, serving ``mounts`` (``{"/cam1": clip.h264}``).

    ``auth="user:password"`` requires those credentials (basic auth) on every mount.
    """

    def __init__(self, mounts: dict[str, Path], *, port: int | None = None, auth: str | None = None) -> None:
        require_rtsp()
        for name in mounts:
            if not name.startswith("/"):
                raise ValueError(f"a mount starts with '/': {name!r}")
        self.mounts = dict(mounts)
        self.port = port or free_port()
        self.auth = auth
        self.proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._stalled: set[str] = set()
        self.output: list[str] = []

    def url(self, mount: str, *, user: str | None = None, password: str | None = None) -> str:
        """The RTSP URL of ``mount``, with credentials (URL-quoted) when given."""
        credentials = ""
        if user is not None:
            credentials = quote(user, safe="")
            if password is not None:
                credentials += ":" + quote(password, safe="")
            credentials += "@"
        return f"rtsp://{credentials}127.0.0.1:{self.port}{mount}"

    def start(self, timeout: float = 20.0) -> RtspServer:
        """Start the server and wait for it to listen; stalled mounts stay stalled."""
        assert not self.running, "already running"
        command = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        for name, clip in self.mounts.items():
            command += ["--mount", f"{name}={clip}"]
        for name in sorted(self._stalled):
            command += ["--stall", name]
        if self.auth:
            command += ["--auth", self.auth]
        self._lines = queue.Queue()
        # stdin stays open: it carries commands, and the server exits when it closes
        # (so a crashed test run leaves no server behind).
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, args=(self.proc, self._lines), daemon=True).start()
        self._expect("READY", timeout)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Kill the server (SIGKILL, like a crash): clients see their connections drop."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc = None

    def restart(self, down_seconds: float = 0.0) -> None:
        """Kill the server, wait ``down_seconds``, and start it again on the same port."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def stall(self, mount: str) -> None:
        """Stop sending video on ``mount``; RTSP sessions stay open."""
        self._command("stall", mount)
        self._stalled.add(mount)

    def unstall(self, mount: str) -> None:
        """Send video on ``mount`` again."""
        self._command("unstall", mount)
        self._stalled.discard(mount)

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _command(self, verb: str, mount: str) -> None:
        if mount not in self.mounts:
            raise ValueError(f"no mount {mount!r} (mounts: {', '.join(self.mounts)})")
        assert self.proc is not None and self.proc.stdin is not None, "server not running"
        self.proc.stdin.write(f"{verb} {mount}\n")
        self.proc.stdin.flush()
        self._expect(f"OK {verb} {mount}", 10.0)

    @staticmethod
    def _read(proc: subprocess.Popen, lines: queue.Queue[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    def _expect(self, prefix: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    pytest.fail(f"RTSP test server exited ({code}):\n" + "\n".join(self.output[-30:]))
                if time.monotonic() > deadline:
                    pytest.fail(f"RTSP test server: no '{prefix}' within {timeout:g}s")
                continue
            self.output.append(line)
            if line.startswith(prefix):
                return
