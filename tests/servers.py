"""Real servers for the alert tests: a mosquitto broker and an HTTP receiver, on 127.0.0.1 only.

Both can be stopped and started again on the same port, to play a receiver
that goes down and comes back. Ports are chosen free (see :func:`free_port`).
"""

from __future__ import annotations

import getpass
import json
import os
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


# Under pytest-xdist each worker picks its ports from a slice of its own, between Ray's worker ports
# (10002-19999, used by the cluster tests) and the kernel's ephemeral range: a port one worker
# chose and let go (a receiver stopped to be started again) is never handed to the other, as the
# kernel's free port could be.
_WORKER_PORTS_START = 20000
_handed_out: set[int] = set()
_pick = random.Random()  # its own: tests that seed the global generator must not change our ports


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _worker_ports() -> range | None:
    """This xdist worker's own slice of ports; None in a serial run (or with too few ports to split)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    if not worker.startswith("gw"):
        return None
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    size = (_ephemeral_start() - _WORKER_PORTS_START) // count
    if size < 500:
        return None
    start = _WORKER_PORTS_START + int(worker[2:]) * size
    return range(start, start + size)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (this xdist worker's own, in parallel)."""
    ports = _worker_ports()
    if ports is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    if len(_handed_out) > len(ports) // 2:
        _handed_out.clear()  # a long session: the oldest tests' servers are long gone
    while True:
        port = _pick.choice(ports)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port


def port_open(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    predicate: Any, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- MQTT broker


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if os.access(p, os.X_OK)), None)


def require_mosquitto() -> str:
    """The mosquitto executable; skips the test without it (fails on CI, where it must be installed)."""
    binary = mosquitto_binary()
    if binary is None:
        message = "mosquitto is not installed (apt-get install mosquitto, or bash scripts/setup.sh --dev)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


class Mosquitto:
    """A mosquitto broker on 127.0.0.1:``port``, no persistence; optional users (a password file)."""

    def __init__(
        self, workdir: Path, *, port: int | None = None, users: dict[str, str] | None = None
    ) -> None:
        self.binary = require_mosquitto()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.users = users
        self.proc: subprocess.Popen | None = None
        self.log = self.workdir / "mosquitto.log"
        self.config = self.workdir / "mosquitto.conf"
        self._write_config()

    def _write_config(self) -> None:
        lines = [
            # Run as whoever runs the tests: started as root, mosquitto would
            # switch to the "mosquitto" user, who cannot read pytest's tmp dirs.
            f"user {getpass.getuser()}",
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if self.users:
            passwd = self.workdir / "passwd"
            passwd.write_text("")
            tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            for user, password in self.users.items():
                subprocess.run([tool, "-b", str(passwd), user, password], check=True, capture_output=True)
            passwd.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start the broker and wait until it accepts connections."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None:
                pytest.fail(f"mosquitto exited ({self.proc.returncode}):\n{self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"mosquitto did not listen on port {self.port} within {timeout:g}s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the broker (its clients see the connection drop); the port is free afterwards."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- HTTP receiver


@dataclass
class Received:
    """One request the receiver saw, and the status it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """An HTTP server that records every request; can fail the next N requests or be down.

    ``stop()`` closes the listening socket, so a client gets "connection
    refused" until ``start()`` opens it again on the same port.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._failures: list[tuple[int, str]] = []
        #: Seconds to wait before answering (after recording the request).
        self.delay_s = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def accepted(self) -> list[Received]:
        """Requests answered 2xx."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def fail_next(self, count: int, status: int = 500, body: str = "receiver error") -> None:
        """Answer the next ``count`` requests with ``status`` and ``body``."""
        with self._lock:
            self._failures.extend([(status, body)] * count)

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        with self._lock:
            status, text = self._failures.pop(0) if self._failures else (200, "ok")
            self.requests.append(Received(method, path, headers, body, status))
        return status, text

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, text = receiver._answer("POST", self.path, headers, body)
                time.sleep(receiver.delay_s)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._server = None

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def health(base: str) -> dict[str, Any] | None:
    """The ``/api/v1/health`` answer of a camsight service at ``base`` (``http://host:port``), or None."""
    try:
        r = httpx.get(f"{base}/api/v1/health", timeout=5)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def wait_for(check, timeout: float, step: float = 0.5):
    """Call ``check`` until it returns something truthy (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s; last: {last}")


# --------------------------------------------------------------------------- MQTT subscriber


class Subscriber:
    """A paho client recording (topic, payload, retained) in arrival order."""

    def __init__(self, port: int, topic: str = "#", client_id: str = "test-subscriber") -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{client_id}-{uuid.uuid4().hex[:6]}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscriber not subscribed"

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload.decode(), bool(message.retain)))

    def topics(self) -> list[str]:
        with self._lock:
            return [t for t, _, _ in self.messages]

    def on(self, topic: str) -> list[str]:
        with self._lock:
            return [body for t, body, _ in self.messages if t == topic]

    def retained(self) -> dict[str, str]:
        with self._lock:
            return {t: body for t, body, retain in self.messages if retain}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --------------------------------------------------------------------------- camsight run


@contextmanager
def camsight_web(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Iterator[str]:
    """``camsight run ARGS --port P`` as a user starts it; yields its base URL, stops it with Ctrl-C.

    ``env`` is added to this process's environment (e.g. ``CAMSIGHT_ADMIN_PASSWORD``).
    """
    import signal
    import sys

    port = free_port()
    exe = Path(sys.executable).with_name("camsight")
    proc = subprocess.Popen(
        [str(exe), "run", *args, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        wait_for(lambda: proc.poll() is not None or port_open(port), timeout)
        assert proc.poll() is None, "camsight run exited"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
