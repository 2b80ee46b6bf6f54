"""Prometheus scrapes of a real `camsight run` with 2 live cameras on a real RTSP server.

Each scrape is parsed with the official client's parser and checked against the
table in docs/metrics.md. Served by the API server (token auth) in one run, and
by a listener of its own (``metrics.listen``) in another.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import CAMSIGHT, assert_clean_failure, run_cli
from metrics_scrape import Scrape, assert_documented_families, parse
from rtsp import RtspServer, prepare_clip, require_rtsp
from servers import HttpReceiver, free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CAMERAS = ("people", "parking")
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def rtsp(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[RtspServer]:
    require_rtsp()
    clips = tmp_path_factory.mktemp("metrics-clips")
    # PETS09: people in view from the first second, so the zone event (and its failed delivery)
    # comes within the wait whenever the camera joins the stream.
    people = prepare_clip(shared_data / "pets09" / "vtest.avi", clips)
    cars = prepare_clip(shared_data / "intel" / "person-bicycle-car-detection.mp4", clips)
    server = RtspServer({"/people": people, "/parking": cars}).start()
    yield server
    server.stop()


@dataclass
class Running:
    proc: subprocess.Popen
    port: int
    data: Path
    #: API tokens by user: prometheus (viewer, every camera), otto (limited to people), olga (operator).
    tokens: dict[str, str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def make_tokens(data: Path) -> dict[str, str]:
    """Accounts made before the service starts, in the data folder it will open."""
    from camsight.auth import tokens, users
    from camsight.auth.audit import Actor
    from camsight.store.db import open_store
    from camsight.store.repository import get_or_create_camera

    store = open_store(data)
    try:
        by = Actor.system()
        with store.session() as session:
            get_or_create_camera(session, "people", kind="live")
        out: dict[str, str] = {}
        with store.session() as session:
            users.create_user(session, "prometheus", PASSWORD, "viewer", by=by)
            users.create_user(session, "otto", PASSWORD, "operator", by=by, cameras=["people"])
            users.create_user(session, "olga", PASSWORD, "operator", by=by)
            for name in ("prometheus", "otto", "olga"):
                out[name] = tokens.create(session, name, "metrics-test", by=by).secret
        return out
    finally:
        store.close()


@pytest.fixture
def start(tmp_path: Path, rtsp: RtspServer, yolox_model: Path) -> Iterator:
    """Starts `camsight run` with the two cameras and the given ``metrics:`` block; stopped after."""
    procs: list[subprocess.Popen] = []
    receiver = HttpReceiver().start()

    def run(metrics: str) -> Running:
        config = tmp_path / "site.yaml"
        config.write_text(
            f"""
detector: {{backend: yolox, model: {yolox_model}}}
attributes: {{pose: false}}
alerts:
  webhooks:
    - {{name: receiver, url: "{receiver.url}"}}
    - {{name: nowhere, url: "http://127.0.0.1:{free_port()}/hook"}}
  retry: {{initial_seconds: 0.2, max_seconds: 0.5, max_attempts: 2}}
cameras:
  people:
    url: {rtsp.url("/people")}
    record: {{mode: continuous, segment_seconds: 4}}
    zones: {{all: {{points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}}}
    rules: [{{type: zone_intrusion, zone: all, min_seconds: 0.5}}]
  parking:
    url: {rtsp.url("/parking")}
metrics: {metrics}
"""
        )
        data = tmp_path / "data"
        tokens = make_tokens(data)
        port = free_port()
        proc = subprocess.Popen(
            [str(CAMSIGHT), "run", "--config", str(config), "--data", str(data), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CAMSIGHT_LOG": "info"},
        )
        procs.append(proc)
        running = Running(proc, port, data, tokens)
        wait_for(lambda: _up(running), 60)
        return running

    yield run
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
    receiver.stop()


def _up(running: Running) -> bool:
    assert running.proc.poll() is None, running.proc.communicate()[1][-3000:]
    try:
        return httpx.get(f"{running.base}/api/v1/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def scrape(url: str, token: str) -> Scrape:
    answer = httpx.get(url, headers=bearer(token), timeout=30)
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def frames(s: Scrape) -> dict[tuple[str, str], float]:
    """Frames in and analysed per camera; missing until the camera has reported."""
    out = {}
    for cam in CAMERAS:
        for what in ("in", "analysed"):
            value = s.value(f"camsight_camera_frames_{what}_total", camera=cam)
            if value is not None:
                out[(cam, what)] = value
    return out


def assert_frames_grow(url: str, token: str) -> None:
    """Every camera's frames in and analysed counters grow between two scrapes."""
    first = wait_for(lambda: (f := frames(scrape(url, token))) and len(f) == 4 and all(f.values()) and f, 90)
    wait_for(lambda: all(v > first[k] for k, v in frames(scrape(url, token)).items()), 60)


def test_scrape_of_the_api_server_has_every_documented_metric(start) -> None:
    svc = start("{auth: token}")
    url = f"{svc.base}/metrics"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers=bearer("cs_nonsense"), timeout=10).status_code == 401
    assert httpx.get(url, headers=bearer(svc.tokens["otto"]), timeout=10).status_code == 403
    token = svc.tokens["prometheus"]
    assert_frames_grow(url, token)
    search = httpx.get(
        f"{svc.base}/api/v1/search", params={"q": "person"}, headers=bearer(svc.tokens["olga"])
    )
    assert search.status_code == 200, search.text

    def complete() -> Scrape | None:
        s = scrape(url, token)
        people = {"camera": "people"}
        ready = (
            all((s.value("camsight_detector_latency_seconds_count", camera=c) or 0) > 0 for c in CAMERAS)
            and (s.value("camsight_events_total", camera="people", type="zone_intrusion") or 0) > 0
            and (s.value("camsight_outbox_messages", sink="nowhere", status="failed") or 0) > 0
            and (s.value("camsight_recording_bytes", **people) or 0) > 0
        )
        return s if ready else None

    s = wait_for(complete, 120)
    assert_documented_families(s)
    for cam in CAMERAS:
        assert s.value("camsight_camera_state", camera=cam, state="connected") == 1
        assert (s.value("camsight_camera_lag_seconds", camera=cam) or 0) < 30
        assert s.value("camsight_camera_queue_frames", camera=cam) is not None
        assert s.value("camsight_camera_reconnects_total", camera=cam) == 0
    assert (s.value("camsight_search_latency_seconds_count") or 0) >= 1
    assert s.value("camsight_outbox_messages", sink="receiver", status="failed") == 0
    assert (s.value("camsight_recording_disk_free_bytes") or 0) > 0
    assert s.value("camsight_jobs", state="queued") == 0
    latency = s.value("camsight_detector_latency_seconds_sum", camera="people") or 0
    count = s.value("camsight_detector_latency_seconds_count", camera="people") or 1
    print(f"detector latency on people: {1000 * latency / count:.1f} ms a frame over {count:.0f} frames")


def test_a_listener_of_its_own_serves_the_metrics(start) -> None:
    port = free_port()
    svc = start(f'{{listen: "127.0.0.1:{port}", auth: token}}')
    token = svc.tokens["prometheus"]
    # Bound separately: the API server no longer answers /metrics, the listener does.
    moved = httpx.get(f"{svc.base}/metrics", headers=bearer(token), timeout=10)
    assert moved.status_code == 404 and "metrics.listen" in moved.text
    url = f"http://127.0.0.1:{port}/metrics"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers=bearer(svc.tokens["otto"]), timeout=10).status_code == 403
    assert_frames_grow(url, token)
    assert_documented_families(scrape(url, token), need_samples=False)
    svc.proc.send_signal(signal.SIGINT)
    _out, err = svc.proc.communicate(timeout=40)
    assert svc.proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    with pytest.raises(httpx.ConnectError):  # the listener closed with the service
        httpx.get(url, timeout=5)


def test_a_taken_or_malformed_metrics_address_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config.write_text(f'metrics: {{listen: "127.0.0.1:{port}"}}\n')
        proc = run_cli(
            "run", "--config", config, "--data", tmp_path / "data", "--port", free_port(), timeout=60
        )
    assert_clean_failure(proc, f"127.0.0.1:{port}", "metrics.listen")
    config.write_text("metrics: {listen: 9108}\n")
    proc = run_cli("run", "--config", config, "--data", tmp_path / "data", "--port", free_port(), timeout=60)
    assert_clean_failure(proc, "metrics.listen", "host:port")
