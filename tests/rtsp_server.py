#!/usr/bin/python3
"""A real RTSP server for tests: each mount loops an H.264 clip forever, like a camera.

Run it with the *system* Python (``/usr/bin/python3``), which has PyGObject and
GstRtspServer from Debian (``python3-gi``, ``gir1.2-gst-rtsp-server-1.0``,
``gstreamer1.0-plugins-bad`` for ``h264parse``); the project's virtual
environment cannot import ``gi``. Tests drive it through :class:`tests.rtsp.RtspServer`.

Input: clips prepared by ``tests/rtsp.py:prepare_clip`` — a raw Annex B H.264
stream (``clip.h264``, constant frame rate, no B-frames, SPS/PPS before every
keyframe) and its index (``clip.json``: fps, size and the byte size and keyframe
flag of every access unit).

Why not ``multifilesrc loop=true ! tsdemux``: timestamps jump back at each loop
and clients stall or drop frames. Here a feeder thread pushes the access units
into an ``appsrc`` at the clip's frame rate and ``do-timestamp`` stamps each with
the pipeline's running time, so timestamps keep increasing across loops, and a
stalled mount simply stops pushing while its RTSP sessions stay open.

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --mount /cam1=a.h264 --mount /cam2=b.h264 \\
        --auth user:secret

It prints ``READY <port>`` once it listens on 127.0.0.1. Commands on stdin, one
a line, each answered ``OK <command>`` on stdout:

    stall /cam1      stop sending video on /cam1 (connections stay open)
    unstall /cam1    send again
    quit             exit
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

# Bound by load_gi(): the module must import without PyGObject, because pytest
# (--doctest-modules) imports every file under tests/ in the project's venv.
GLib: Any = None
Gst: Any = None
GstRtspServer: Any = None


def load_gi() -> None:
    """Import GStreamer through PyGObject (system Python only)."""
    global GLib, Gst, GstRtspServer
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)


#: The GStreamer elements a mount needs; ``--check`` verifies them.
ELEMENTS = ("appsrc", "h264parse", "rtph264pay")

PIPELINE = (
    "( appsrc name=src is-live=true do-timestamp=true format=time "
    "caps=video/x-h264,stream-format=byte-stream,alignment=au "
    "! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
)


class Clip:
    """An H.264 clip held in memory as a list of access units."""

    def __init__(self, path: Path) -> None:
        index = json.loads(path.with_suffix(".json").read_text())
        data = path.read_bytes()
        self.fps = float(index["fps"])
        self.units: list[bytes] = []
        offset = 0
        for size, _key in index["units"]:
            self.units.append(data[offset : offset + size])
            offset += size
        if offset != len(data) or not self.units or not index["units"][0][1]:
            raise SystemExit(f"{path}: does not match its index (prepare it again)")


class Mount:
    """One mount point: a shared media whose appsrc is fed by a pacing thread."""

    def __init__(self, name: str, clip: Clip) -> None:
        self.name = name
        self.clip = clip
        self.stalled = threading.Event()
        self.factory = GstRtspServer.RTSPMediaFactory()
        self.factory.set_launch(PIPELINE)
        # One pipeline per mount, shared by all clients: a camera has one encoder.
        self.factory.set_shared(True)
        self.factory.connect("media-configure", self._configure)

    def _configure(self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_by_name("src")
        done = threading.Event()
        media.connect("unprepared", lambda _media: done.set())
        threading.Thread(target=self._feed, args=(appsrc, done), daemon=True).start()

    def _feed(self, appsrc: Gst.Element, done: threading.Event) -> None:
        period = 1.0 / self.clip.fps
        duration = int(period * Gst.SECOND)
        # The running time (do-timestamp) exists only in PLAYING; rtsp-media sets
        # a live pipeline PLAYING while preparing, to learn the payloader's caps.
        while not done.is_set() and appsrc.get_state(0)[1] != Gst.State.PLAYING:
            time.sleep(0.01)
        i = 0
        due = time.monotonic()
        while not done.is_set():
            if self.stalled.is_set():
                time.sleep(0.02)
                # Resume at the wall clock, not with a burst of the frames "missed".
                due = time.monotonic()
                continue
            wait = due - time.monotonic()
            if wait > 0:
                done.wait(wait)
                continue
            buffer = Gst.Buffer.new_wrapped(self.clip.units[i])
            buffer.duration = duration
            result = appsrc.emit("push-buffer", buffer)
            if result == Gst.FlowReturn.FLUSHING:
                return
            i = (i + 1) % len(self.clip.units)
            due += period
            if due < time.monotonic() - 1.0:
                due = time.monotonic()  # fell far behind (machine busy): skip ahead, don't burst


def check() -> list[str]:
    """The GStreamer elements that are missing (empty when the server can run)."""
    return [name for name in ELEMENTS if Gst.ElementFactory.find(name) is None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--mount", action="append", default=[], metavar="/NAME=CLIP.h264")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="require these credentials on every mount")
    parser.add_argument("--stall", action="append", default=[], metavar="/NAME", help="start stalled")
    parser.add_argument("--check", action="store_true", help="exit 0 when all GStreamer parts are present")
    args = parser.parse_args(argv)

    try:
        load_gi()
    except (ImportError, ValueError) as exc:  # ValueError: typelib missing (no gir1.2-gst-rtsp-server)
        print(f"PyGObject / GstRtspServer unavailable: {exc}", flush=True)
        return 1
    missing = check()
    if args.check or missing:
        if missing:
            print("missing GStreamer elements: " + ", ".join(missing), flush=True)
        return 1 if missing else 0

    mounts: dict[str, Mount] = {}
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    table = server.get_mount_points()
    for spec in args.mount:
        name, _, path = spec.partition("=")
        mounts[name] = Mount(name, Clip(Path(path)))
        table.add_factory(name, mounts[name].factory)
    for name in args.stall:
        mounts[name].stalled.set()

    if args.auth:
        # Basic authentication on every mount: an anonymous request is answered
        # 401 with a challenge, as a camera does.
        user, _, password = args.auth.partition(":")
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
        for mount in mounts.values():
            permissions = GstRtspServer.RTSPPermissions()
            permissions.add_role_from_structure(
                Gst.Structure.new_from_string(
                    "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
                )
            )
            mount.factory.set_permissions(permissions)

    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", flush=True)
        return 1

    def commands() -> None:
        for line in sys.stdin:
            command, _, name = line.strip().partition(" ")
            if command == "quit":
                break
            if command in ("stall", "unstall") and name in mounts:
                if command == "stall":
                    mounts[name].stalled.set()
                else:
                    mounts[name].stalled.clear()
                print(f"OK {line.strip()}", flush=True)
            elif line.strip():
                print(f"ERROR unknown command {line.strip()!r}", flush=True)
        GLib.idle_add(loop.quit)

    threading.Thread(target=commands, daemon=True).start()
    print(f"READY {args.port}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
