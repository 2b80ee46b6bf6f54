"""Prometheus metrics on a real store: the collector, the /metrics route and its auth, the listener."""

from __future__ import annotations

import socket
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from metrics_scrape import assert_documented_families, documented, parse

from camsight.api.app import create_app
from camsight.auth import tokens, users
from camsight.auth.audit import Actor
from camsight.config import Config, MetricsConfig, validate_config
from camsight.errors import ConfigError
from camsight.pipeline.latency import LatencyHistogram, cumulative_buckets
from camsight.pipeline.live import CameraWorker
from camsight.service.metrics import METRICS, ServiceMetrics
from camsight.service.metrics_listener import MetricsListener, MetricsListenError
from camsight.sources.live import Health
from camsight.store.db import Store
from camsight.store.models import EventRow, JobRow, OutboxRow, RecordingRow, utcnow
from camsight.store.repository import get_or_create_camera

PASSWORD = "correct horse battery"


def site_config(**metrics: object) -> Config:
    return validate_config(
        {
            "cameras": {
                "gate": {"url": "rtsp://127.0.0.1:1/gate"},
                "lobby": {"url": "rtsp://127.0.0.1:1/lobby"},
            },
            "alerts": {"webhooks": [{"name": "ops", "url": "http://127.0.0.1:9/hook"}]},
            "metrics": metrics,
        }
    )


def fill(store: Store, config: Config) -> None:
    """What a running site leaves in the store: gate's health as its worker writes it, events,
    outbox rows, jobs and recordings (one segment still being written)."""
    worker = CameraWorker(config, "gate", store.root)
    worker._store = store  # the worker's own store, as in run()
    worker._health = Health(state="connected", frames_in=120, reconnects=2, frames_dropped=3)
    worker.stats.frames_done, worker.stats.frames_dropped, worker.stats.lag_seconds = 100, 4, 0.25
    for seconds in (0.012, 0.012, 0.012, 0.3):
        worker.detect_latency.observe(seconds)
    worker._queue.put_nowait(None)  # type: ignore[arg-type]  # two frames waiting
    worker._queue.put_nowait(None)  # type: ignore[arg-type]
    worker._write_health(force=True)
    rec = store.root / "recordings" / "gate"
    rec.mkdir(parents=True)
    (rec / "open.mp4").write_bytes(b"x" * 123)
    now = utcnow()
    with store.session() as session:
        gate = get_or_create_camera(session, "gate", kind="live")
        archive = get_or_create_camera(session, "archive")
        for i, (cam, kind) in enumerate(
            [(gate, "zone_intrusion"), (gate, "zone_intrusion"), (gate, "crowd"), (archive, "fall")]
        ):
            session.add(
                EventRow(
                    uid=f"e{i}",
                    camera_id=cam.id,
                    type=kind,
                    rule=kind,
                    severity="high",
                    start_t=float(i),
                    summary=kind,
                )
            )
        for sink, status in [
            ("ops", "pending"),
            ("ops", "pending"),
            ("ops", "failed"),
            ("ops", "delivered"),
            ("gone", "failed"),
        ]:
            session.add(OutboxRow(event_uid="e0", sink=sink, kind="start", payload={}, status=status))
        for state in ("queued", "queued", "running", "done"):
            session.add(JobRow(kind="index", camera="archive", state=state, created_by="test"))
        start = now - timedelta(minutes=3)
        session.add_all(
            [
                RecordingRow(
                    camera_id=gate.id, path="gate/a.mp4", start_at=start, end_at=start, size_bytes=1000
                ),
                RecordingRow(
                    camera_id=gate.id, path="gate/b.mp4", start_at=start, end_at=start, size_bytes=500
                ),
                RecordingRow(camera_id=gate.id, path="gate/open.mp4", start_at=now, size_bytes=0),
            ]
        )


def scrape_of(metrics: ServiceMetrics):
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return parse(body.decode())


def test_collector_reads_what_workers_and_the_store_keep(store: Store) -> None:
    config = site_config()
    fill(store, config)
    scrape = scrape_of(ServiceMetrics(store, lambda: config))
    gate = {"camera": "gate"}
    assert scrape.value("camsight_camera_frames_in_total", **gate) == 120
    assert scrape.value("camsight_camera_frames_analysed_total", **gate) == 100
    assert scrape.value("camsight_camera_frames_dropped_total", camera="gate", stage="source") == 3
    assert scrape.value("camsight_camera_frames_dropped_total", camera="gate", stage="queue") == 4
    assert scrape.value("camsight_camera_reconnects_total", **gate) == 2
    assert scrape.value("camsight_camera_lag_seconds", **gate) == 0.25
    assert scrape.value("camsight_camera_queue_frames", **gate) == 2
    assert scrape.value("camsight_camera_state", camera="gate", state="connected") == 1
    assert scrape.value("camsight_camera_state", camera="gate", state="error") == 0
    assert 0 <= (scrape.value("camsight_camera_health_age_seconds", **gate) or -1) < 60
    # lobby has a URL but never reported: no made-up zeros for it.
    assert all(("camera", "lobby") not in lab for lab in scrape.series("camsight_camera_frames_in_total"))
    # The worker's detector latencies, as a cumulative histogram.
    assert scrape.value("camsight_detector_latency_seconds_bucket", camera="gate", le="0.01") == 0
    assert scrape.value("camsight_detector_latency_seconds_bucket", camera="gate", le="0.02") == 3
    assert scrape.value("camsight_detector_latency_seconds_bucket", camera="gate", le="+Inf") == 4
    assert scrape.value("camsight_detector_latency_seconds_count", **gate) == 4
    assert scrape.value("camsight_detector_latency_seconds_sum", **gate) == pytest.approx(0.336)
    assert scrape.value("camsight_events_total", camera="gate", type="zone_intrusion") == 2
    assert scrape.value("camsight_events_total", camera="gate", type="crowd") == 1
    assert scrape.value("camsight_events_total", camera="archive", type="fall") == 1
    assert scrape.value("camsight_outbox_messages", sink="ops", status="pending") == 2
    assert scrape.value("camsight_outbox_messages", sink="ops", status="failed") == 1
    # A sink removed from the config still shows what it left undelivered.
    assert scrape.value("camsight_outbox_messages", sink="gone", status="failed") == 1
    assert scrape.value("camsight_outbox_messages", sink="gone", status="pending") == 0
    assert scrape.value("camsight_jobs", state="queued") == 2
    assert scrape.value("camsight_jobs", state="running") == 1
    assert scrape.value("camsight_recording_bytes", **gate) == 1000 + 500 + 123
    free = scrape.value("camsight_recording_disk_free_bytes")
    size = scrape.value("camsight_recording_disk_size_bytes")
    assert free is not None and size is not None and 0 < free <= size
    assert scrape.value("camsight_search_latency_seconds_count") == 0
    assert_documented_families(scrape)


def test_an_empty_site_still_exports_every_family(store: Store) -> None:
    scrape = scrape_of(ServiceMetrics(store, Config))
    assert_documented_families(scrape, need_samples=False)
    assert scrape.value("camsight_jobs", state="queued") == 0


def test_the_code_and_the_documentation_list_the_same_metrics() -> None:
    docs = documented()
    code = {spec.family: spec for spec in METRICS}
    assert set(code) == set(docs)
    for name, spec in code.items():
        assert (spec.name, spec.kind, frozenset(spec.labels)) == (
            docs[name].name,
            docs[name].kind,
            docs[name].labels,
        )


def test_two_services_in_one_process_keep_their_own_registries(store: Store, tmp_path) -> None:
    from camsight.store.db import open_store

    other = open_store(tmp_path / "other")
    try:
        a, b = ServiceMetrics(store, Config), ServiceMetrics(other, Config)
        a.search_latency.observe(0.2)
        assert scrape_of(a).value("camsight_search_latency_seconds_count") == 1
        assert scrape_of(b).value("camsight_search_latency_seconds_count") == 0
    finally:
        other.close()


def test_latency_histogram_buckets_are_inclusive_and_cumulative() -> None:
    h = LatencyHistogram((0.01, 0.1))
    for seconds in (0.01, 0.1, 0.10001, 5.0):
        h.observe(seconds)
    assert h.snapshot()["counts"] == [1, 1, 2]
    buckets, total, count = cumulative_buckets(h.snapshot()) or ([], 0.0, 0)
    assert buckets == [("0.01", 1.0), ("0.1", 2.0), ("+Inf", 4.0)] and count == 4
    assert total == pytest.approx(5.21001)
    assert cumulative_buckets({"le": [0.1], "counts": [1]}) is None  # an older worker's row
    with pytest.raises(ValueError):
        LatencyHistogram((0.1, 0.01))


def test_metrics_config_is_checked() -> None:
    assert MetricsConfig().address() is None
    assert MetricsConfig(listen="[::1]:9108").address() == ("::1", 9108)
    for bad, words in [
        (9108, "host:port"),
        ("9108", "host:port"),
        ("127.0.0.1:70000", "1 to 65535"),
        ("[nope]:1", "host:port"),
    ]:
        with pytest.raises(ConfigError, match=r"metrics\.listen") as err:
            validate_config({"metrics": {"listen": bad}}, "site.yaml")
        assert words in str(err.value)
    with pytest.raises(ConfigError, match=r"metrics\.auth"):
        validate_config({"metrics": {"auth": "basic"}}, "site.yaml")
    with pytest.raises(ConfigError, match=r"metrics\.port"):
        validate_config({"metrics": {"port": 9108}}, "site.yaml")


# --------------------------------------------------------------------------- who may scrape


@pytest.fixture
def accounts(store: Store) -> dict[str, str]:
    """API tokens by user: vera (viewer, every camera), otto (operator limited to gate), root (admin)."""
    by = Actor.system()
    with store.session() as session:
        get_or_create_camera(session, "gate")
    secrets: dict[str, str] = {}
    with store.session() as session:
        users.create_user(session, "vera", PASSWORD, "viewer", by=by)
        users.create_user(session, "otto", PASSWORD, "operator", by=by, cameras=["gate"])
        users.create_user(session, "root", PASSWORD, "admin", by=by)
        for name in ("vera", "otto", "root"):
            secrets[name] = tokens.create(session, name, "prometheus", by=by).secret
    return secrets


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_api_metrics_need_a_token_of_a_user_who_sees_every_camera(store: Store, accounts) -> None:
    client = TestClient(create_app(site_config(), store))
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "sign in" in refused.json()["error"]["message"]
    assert client.get("/metrics", headers=bearer("cs_nonsense")).status_code == 401
    limited = client.get("/metrics", headers=bearer(accounts["otto"]))
    assert limited.status_code == 403 and "every camera" in limited.json()["error"]["message"]
    for user in ("vera", "root"):
        ok = client.get("/metrics", headers=bearer(accounts[user]))
        assert ok.status_code == 200, ok.text
        assert ok.headers["content-type"].startswith("text/plain")
        assert_documented_families(parse(ok.text), need_samples=False)
    # A signed-in browser session is as good as a token.
    assert client.post("/api/v1/auth/login", json={"name": "vera", "password": PASSWORD}).status_code == 200
    assert client.get("/metrics").status_code == 200
    # Prometheus asking for OpenMetrics gets it.
    om = client.get(
        "/metrics",
        headers={**bearer(accounts["vera"]), "Accept": "application/openmetrics-text; version=1.0.0"},
    )
    assert om.headers["content-type"].startswith("application/openmetrics-text") and om.text.endswith(
        "# EOF\n"
    )


def test_searches_are_timed(store: Store, accounts) -> None:
    client = TestClient(create_app(site_config(), store))
    headers = bearer(accounts["root"])
    assert client.get("/api/v1/search", params={"q": "person in red"}, headers=headers).status_code == 200
    assert client.get("/api/v1/search", params={"q": "white van"}, headers=headers).status_code == 200
    scrape = parse(client.get("/metrics", headers=headers).text)
    assert scrape.value("camsight_search_latency_seconds_count") == 2
    assert (scrape.value("camsight_search_latency_seconds_sum") or 0) > 0


def test_auth_none_off_and_elsewhere(store: Store, accounts) -> None:
    open_client = TestClient(create_app(site_config(auth="none"), store))
    assert open_client.get("/metrics").status_code == 200
    off = TestClient(create_app(site_config(enabled=False), store)).get(
        "/metrics", headers=bearer(accounts["vera"])
    )
    assert off.status_code == 404 and "metrics.enabled" in off.json()["error"]["message"]
    elsewhere = TestClient(create_app(site_config(listen="127.0.0.1:9108"), store))
    moved = elsewhere.get("/metrics", headers=bearer(accounts["vera"]))
    assert moved.status_code == 404 and "metrics.listen" in moved.json()["error"]["message"]


def test_a_separate_listener_serves_the_metrics_with_the_same_auth(store: Store, accounts) -> None:
    config = site_config(listen="127.0.0.1:9108")
    holder = {"config": config}
    fill(store, config)
    listener = MetricsListener(
        ServiceMetrics(store, lambda: holder["config"]), store, lambda: holder["config"], "127.0.0.1", 0
    )
    listener.start()
    try:
        url = f"http://127.0.0.1:{listener.port}/metrics"
        refused = httpx.get(url, timeout=10)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["error"]["code"] == "unauthorized"
        assert httpx.get(url, headers=bearer("cs_nonsense"), timeout=10).status_code == 401
        assert httpx.get(url, headers=bearer(accounts["otto"]), timeout=10).status_code == 403
        ok = httpx.get(url, headers=bearer(accounts["vera"]), timeout=10)
        assert ok.status_code == 200
        scrape = parse(ok.text)
        assert scrape.value("camsight_camera_frames_in_total", camera="gate") == 120
        assert_documented_families(scrape)
        assert httpx.get(f"http://127.0.0.1:{listener.port}/", timeout=10).status_code == 404
        assert httpx.post(url, headers=bearer(accounts["vera"]), timeout=10).status_code == 405
        # auth and enabled are read on each scrape (a config reload applies at once).
        holder["config"] = site_config(listen="127.0.0.1:9108", auth="none")
        assert httpx.get(url, timeout=10).status_code == 200
        holder["config"] = site_config(listen="127.0.0.1:9108", enabled=False)
        assert httpx.get(url, timeout=10).status_code == 404
        # The address is taken now: a second listener says so in one sentence.
        taken = MetricsListener(listener.metrics, store, lambda: config, "127.0.0.1", listener.port)
        with pytest.raises(MetricsListenError, match=f"127.0.0.1:{listener.port}.*metrics.listen"):
            taken.start()
    finally:
        listener.stop()
    with socket.socket() as sock:  # stopped: the port is free again (past the scrapes' TIME_WAIT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", listener.port))
        sock.listen()
