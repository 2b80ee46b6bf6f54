"""Alert delivery end to end, against a real HTTP receiver and a real mosquitto broker.

Events are written the way the events code writes them: the event row and
its outbox rows in one transaction. Receivers go down and come back, the
delivering process is killed with SIGKILL, and every event still arrives.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import CAMSIGHT, assert_clean_failure, cli_env, db_query, run_cli
from servers import HttpReceiver, Mosquitto, Subscriber, free_port, wait_until
from sqlalchemy import select

from camsight.alerts.dispatcher import Dispatcher
from camsight.alerts.mqtt import MqttSink
from camsight.alerts.outbox import DELIVERED, PENDING, enqueue
from camsight.config import AlertsConfig, MqttConfig, RetryConfig, WebhookConfig
from camsight.store.db import Store, open_store
from camsight.store.models import Camera, EventRow, OutboxRow

pytestmark = pytest.mark.slow

SECRET = "test-signing-secret-1234"
FAST = RetryConfig(initial_seconds=0.05, max_seconds=0.2)
T0 = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- events, as the events code write


def event_payload(event: EventRow, camera: str, kind: str) -> dict[str, Any]:
    """The ``camsight.event/1`` payload of ``event``."""
    return {
        "schema": "camsight.event/1",
        "kind": kind,
        "uid": event.uid,
        "id": event.id,
        "type": event.type,
        "rule": event.rule,
        "severity": event.severity,
        "camera": camera,
        "state": event.state,
        "start": event.start_at.isoformat() if event.start_at else None,
        "end": event.end_at.isoformat() if event.end_at else None,
        "start_t": event.start_t,
        "end_t": event.end_t,
        "zone": event.zone,
        "line": event.line,
        "tracks": list(event.track_local_ids),
        "summary": event.summary,
        "details": dict(event.details),
        "snapshot": event.snapshot,
        "source": None,
    }


def raise_event(
    store: Store,
    alerts: AlertsConfig,
    camera: str = "gate",
    event_type: str = "zone_intrusion",
    severity: str = "high",
) -> dict[str, Any]:
    """Store a new open event and queue its ``start`` alerts, in one transaction."""
    with store.session() as session:
        cam = session.scalars(select(Camera).where(Camera.name == camera)).first()
        if cam is None:
            cam = Camera(name=camera)
            session.add(cam)
            session.flush()
        n = session.query(EventRow).count()
        event = EventRow(
            uid=uuid.uuid4().hex,
            camera_id=cam.id,
            type=event_type,
            rule=f"{event_type}-rule",
            severity=severity,
            state="open",
            start_t=float(n),
            start_at=T0 + timedelta(seconds=n),
            zone="bays" if event_type == "zone_intrusion" else None,
            track_local_ids=[n + 1],
            summary=f"{event_type} on {camera} #{n}",
            details={"n": n},
        )
        session.add(event)
        session.flush()
        payload = event_payload(event, camera, "start")
        enqueue(session, alerts, payload)
    return payload


def end_event(store: Store, alerts: AlertsConfig, uid: str) -> dict[str, Any]:
    """Close an open event and queue its ``end`` alerts, in one transaction."""
    with store.session() as session:
        event = session.scalars(select(EventRow).where(EventRow.uid == uid)).one()
        camera = session.get_one(Camera, event.camera_id).name
        event.state, event.end_t = "closed", event.start_t + 4.0
        event.end_at = (event.start_at or T0) + timedelta(seconds=4)
        session.flush()
        payload = event_payload(event, camera, "end")
        enqueue(session, alerts, payload)
    return payload


def outbox(store: Store, sink: str | None = None) -> list[OutboxRow]:
    with store.session() as session:
        stmt = select(OutboxRow).order_by(OutboxRow.id)
        if sink is not None:
            stmt = stmt.where(OutboxRow.sink == sink)
        return list(session.scalars(stmt))


def deliver_until(dispatcher: Dispatcher, done: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"not delivered within {timeout:g}s")
        dispatcher.deliver_due()
        time.sleep(0.05)


@pytest.fixture
def receiver() -> HttpReceiver:
    r = HttpReceiver().start()
    yield r
    r.stop()


def verify_signature(request: Any, secret: str = SECRET) -> None:
    timestamp = request.headers["x-camsight-timestamp"]
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-camsight-signature"], f"sha256={mac}")
    assert abs(int(timestamp) - time.time()) < 60


# --------------------------------------------------------------------------- webhooks


def test_webhook_delivers_signed_json(
    store: Store, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMSIGHT_SECRET_TEST_HOOK", SECRET)
    alerts = AlertsConfig(
        webhooks=[
            WebhookConfig(
                name="hooks",
                url=receiver.url,
                secret_env="CAMSIGHT_SECRET_TEST_HOOK",
                headers={"X-Site": "north"},
            )
        ]
    )
    payload = raise_event(store, alerts)
    with Dispatcher(store, alerts) as dispatcher:
        report = dispatcher.deliver_due()
    assert report.delivered == 1 and not report.errors
    (request,) = receiver.accepted
    verify_signature(request)
    assert request.json() == payload
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "camsight"
    assert request.headers["x-camsight-event"] == payload["uid"]
    assert request.headers["x-site"] == "north"
    (row,) = outbox(store)
    assert request.headers["x-camsight-delivery"] == str(row.id)
    assert (row.status, row.attempts, row.last_error) == (DELIVERED, 1, None)


def test_unsigned_webhook_has_no_signature(store: Store, receiver: HttpReceiver) -> None:
    alerts = AlertsConfig(webhooks=[WebhookConfig(name="plain", url=receiver.url)])
    raise_event(store, alerts)
    with Dispatcher(store, alerts) as dispatcher:
        dispatcher.deliver_due()
    (request,) = receiver.accepted
    assert "x-camsight-signature" not in request.headers


def test_server_errors_are_retried_until_accepted(store: Store, receiver: HttpReceiver) -> None:
    alerts = AlertsConfig(webhooks=[WebhookConfig(name="hooks", url=receiver.url, secret=SECRET)], retry=FAST)
    payload = raise_event(store, alerts)
    receiver.fail_next(2, status=500, body="database is on fire")
    with Dispatcher(store, alerts) as dispatcher:
        report = dispatcher.deliver_due()
        assert report.delivered == 0 and report.retried == 1
        assert "HTTP 500" in report.errors["hooks"]
        (row,) = outbox(store)
        assert (row.status, row.attempts) == (PENDING, 1)
        assert "HTTP 500" in row.last_error and "database is on fire" in row.last_error
        deliver_until(dispatcher, lambda: outbox(store)[0].status == DELIVERED)
    (row,) = outbox(store)
    assert row.attempts == 3
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    # Every attempt is the same delivery of the same event, signed afresh.
    assert {r.headers["x-camsight-delivery"] for r in receiver.requests} == {str(row.id)}
    assert all(r.json() == payload for r in receiver.requests)
    verify_signature(receiver.accepted[0])


def test_rejections_are_kept_as_errors_without_secrets(
    store: Store, receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    url = receiver.url.replace("http://", "http://alice:url-password-99@") + "?token=query-token-77"
    alerts = AlertsConfig(webhooks=[WebhookConfig(name="hooks", url=url, secret=SECRET)], retry=FAST)
    raise_event(store, alerts)
    receiver.fail_next(1, status=422, body="field 'camera' is not allowed")
    caplog.set_level("DEBUG", logger="camsight")
    with Dispatcher(store, alerts) as dispatcher:
        dispatcher.deliver_due()
        (row,) = outbox(store)
        assert row.status == PENDING  # a 4xx is not dropped
        assert "HTTP 422" in row.last_error and "field 'camera' is not allowed" in row.last_error
        deliver_until(dispatcher, lambda: outbox(store)[0].status == DELIVERED)
    # Credentials from the URL were used (basic auth) but never shown.
    assert receiver.accepted[0].headers["authorization"].startswith("Basic ")
    receiver.stop()
    raise_event(store, alerts)
    with Dispatcher(store, alerts) as dispatcher:
        dispatcher.deliver_due()
    errors = " ".join(r.last_error or "" for r in outbox(store))
    assert "cannot connect" in errors
    text = errors + caplog.text
    for secret in (SECRET, "url-password-99", "query-token-77", "alice"):
        assert secret not in text


def test_receiver_down_then_back_delivers_everything_in_order(store: Store) -> None:
    receiver = HttpReceiver()  # not started: connection refused
    alerts = AlertsConfig(webhooks=[WebhookConfig(name="hooks", url=receiver.url, timeout=2)], retry=FAST)
    first = raise_event(store, alerts)
    second = raise_event(store, alerts, camera="lobby")
    end = end_event(store, alerts, first["uid"])
    with Dispatcher(store, alerts) as dispatcher:
        report = dispatcher.deliver_due()
        assert report.delivered == 0 and "cannot connect" in report.errors["hooks"]
        rows = outbox(store)
        assert [r.status for r in rows] == [PENDING] * 3
        assert [r.attempts for r in rows] == [1, 0, 0]  # only the head was tried
        with receiver:
            deliver_until(dispatcher, lambda: all(r.status == DELIVERED for r in outbox(store)))
            got = [(r.json()["uid"], r.json()["kind"]) for r in receiver.accepted]
    assert got == [(first["uid"], "start"), (second["uid"], "start"), (end["uid"], "end")]


def test_one_sink_down_does_not_hold_up_another(store: Store, receiver: HttpReceiver) -> None:
    down = HttpReceiver()
    alerts = AlertsConfig(
        webhooks=[
            WebhookConfig(name="down", url=down.url, timeout=1),
            WebhookConfig(name="up", url=receiver.url),
        ],
        retry=FAST,
    )
    payloads = [raise_event(store, alerts) for _ in range(4)]
    with Dispatcher(store, alerts) as dispatcher:
        report = dispatcher.deliver_due()
    assert report.sinks["up"].delivered == 4
    assert report.sinks["down"].delivered == 0 and report.sinks["down"].retried == 1
    assert [r.json()["uid"] for r in receiver.accepted] == [p["uid"] for p in payloads]


def test_filters_route_events_to_sinks(store: Store, receiver: HttpReceiver) -> None:
    other = HttpReceiver().start()
    try:
        alerts = AlertsConfig(
            webhooks=[
                WebhookConfig(name="gate", url=receiver.url, cameras=["gate"]),
                WebhookConfig(name="urgent", url=other.url, min_severity="critical"),
            ]
        )
        raise_event(store, alerts, camera="gate", severity="low")
        raise_event(store, alerts, camera="lobby", severity="critical")
        raise_event(store, alerts, camera="lobby", severity="high")  # nobody's
        with Dispatcher(store, alerts) as dispatcher:
            dispatcher.deliver_due()
        assert [(r.json()["camera"], r.json()["severity"]) for r in receiver.accepted] == [("gate", "low")]
        assert [(r.json()["camera"], r.json()["severity"]) for r in other.accepted] == [("lobby", "critical")]
    finally:
        other.stop()


def test_service_delivers_as_events_arrive(store: Store, receiver: HttpReceiver) -> None:
    alerts = AlertsConfig(webhooks=[WebhookConfig(name="hooks", url=receiver.url)], retry=FAST)
    stop = threading.Event()
    with Dispatcher(store, alerts) as dispatcher:
        service = threading.Thread(target=dispatcher.run, args=(stop,), kwargs={"poll_s": 5.0})
        service.start()
        try:
            uids = []
            for _ in range(3):
                uids.append(raise_event(store, alerts)["uid"])
                dispatcher.wake()  # no need to wait for the 5 s poll
            wait_until(lambda: len(receiver.accepted) == 3, timeout=4, what="3 webhook deliveries")
            receiver.fail_next(1)
            uids.append(raise_event(store, alerts)["uid"])
            dispatcher.wake()
            wait_until(lambda: len(receiver.accepted) == 4, timeout=4, what="the retried delivery")
        finally:
            stop.set()
            service.join(timeout=15)
        assert not service.is_alive()
    assert [r.json()["uid"] for r in receiver.accepted] == uids


# --------------------------------------------------------------------------- MQTT


@pytest.fixture
def broker(tmp_path: Path) -> Mosquitto:
    b = Mosquitto(tmp_path / "mosquitto").start()
    yield b
    b.stop()


def mqtt_dispatcher(store: Store, alerts: AlertsConfig, **sink_args: Any) -> Dispatcher:
    assert alerts.mqtt is not None
    sink = MqttSink(alerts.mqtt, connect_timeout=3, publish_timeout=3, **sink_args)
    return Dispatcher(store, alerts, sinks={"mqtt": sink})


def test_mqtt_events_state_and_discovery(store: Store, broker: Mosquitto) -> None:
    alerts = AlertsConfig(mqtt=MqttConfig(host="127.0.0.1", port=broker.port), retry=FAST)
    live = Subscriber(broker.port)
    try:
        start = raise_event(store, alerts, camera="front door", event_type="zone_intrusion")
        with mqtt_dispatcher(store, alerts) as dispatcher:
            assert dispatcher.deliver_due().delivered == 1
            wait_until(lambda: live.on("camsight/front_door/zone_intrusion"), what="the ON state")
            assert [json.loads(b) for b in live.on("camsight/events")] == [start]
            assert [json.loads(b) for b in live.on("camsight/front_door/events")] == [start]
            assert live.on("camsight/front_door/zone_intrusion") == ["ON"]
            # A subscriber that connects now learns the current state from retained messages.
            late = Subscriber(broker.port, client_id="late")
            wait_until(lambda: "camsight/front_door/zone_intrusion" in late.retained(), what="retained state")
            assert late.retained()["camsight/front_door/zone_intrusion"] == "ON"
            late.close()

            end = end_event(store, alerts, start["uid"])
            crowd = raise_event(store, alerts, camera="front door", event_type="tampering")
            assert dispatcher.deliver_due().delivered == 2
            wait_until(lambda: len(live.on("camsight/events")) == 3, what="3 events")
            assert [json.loads(b)["kind"] for b in live.on("camsight/front_door/events")] == [
                "start",
                "end",
                "start",
            ]
            # One discovery config per (camera, type) per connection.
            topic = "homeassistant/binary_sensor/camsight_front_door_zone_intrusion/config"
            assert len(live.on(topic)) == 1
    finally:
        live.close()

    fresh = Subscriber(broker.port, client_id="fresh")
    try:
        expected = {
            f"camsight/front_door/{t}{suffix}"
            for t in ("zone_intrusion", "tampering")
            for suffix in ("", "/last")
        } | {
            f"homeassistant/binary_sensor/camsight_front_door_{t}/config"
            for t in ("zone_intrusion", "tampering")
        }
        wait_until(lambda: expected <= set(fresh.retained()), what="retained messages")
        retained = fresh.retained()
    finally:
        fresh.close()
    assert retained["camsight/front_door/zone_intrusion"] == "OFF"
    assert json.loads(retained["camsight/front_door/zone_intrusion/last"]) == end
    assert retained["camsight/front_door/tampering"] == "ON"
    assert json.loads(retained["camsight/front_door/tampering/last"]) == crowd
    assert "camsight/events" not in retained and "camsight/front_door/events" not in retained
    config = json.loads(retained["homeassistant/binary_sensor/camsight_front_door_zone_intrusion/config"])
    assert config["state_topic"] == "camsight/front_door/zone_intrusion"
    assert config["json_attributes_topic"] == "camsight/front_door/zone_intrusion/last"
    assert config["availability_topic"] == "camsight/available"
    assert (config["payload_on"], config["payload_off"]) == ("ON", "OFF")
    assert config["unique_id"] == "camsight_front_door_zone_intrusion"
    assert config["device"] == {
        "identifiers": ["camsight_front_door"],
        "name": "camsight front door",
        "manufacturer": "camsight",
    }
    tamper = json.loads(retained["homeassistant/binary_sensor/camsight_front_door_tampering/config"])
    assert tamper["device_class"] == "tamper"
    assert all(r.status == DELIVERED for r in outbox(store))


SERVICE = """
import sys, threading
from pathlib import Path
from camsight.config import AlertsConfig, MqttConfig
from camsight.alerts.dispatcher import Dispatcher
from camsight.store.db import open_store

alerts = AlertsConfig(mqtt=MqttConfig(host="127.0.0.1", port=int(sys.argv[2])))
Dispatcher(open_store(Path(sys.argv[1])), alerts).run(threading.Event(), poll_s=0.2)
"""


def test_mqtt_service_availability_and_last_will(tmp_path: Path, store: Store, broker: Mosquitto) -> None:
    alerts = AlertsConfig(mqtt=MqttConfig(host="127.0.0.1", port=broker.port, discovery_prefix=None))
    watcher = Subscriber(broker.port, topic="camsight/available")
    try:
        # A service says online when it starts, before any event, and offline when it stops.
        stop = threading.Event()
        with mqtt_dispatcher(store, alerts) as dispatcher:
            service = threading.Thread(target=dispatcher.run, args=(stop,), kwargs={"poll_s": 0.2})
            service.start()
            wait_until(lambda: watcher.on("camsight/available") == ["online"], what="online")
            stop.set()
            service.join(timeout=15)
        wait_until(lambda: watcher.on("camsight/available") == ["online", "offline"], what="offline on stop")
        # A service killed without a goodbye: the broker publishes its last will.
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVICE, str(store.root), str(broker.port)], stderr=subprocess.PIPE
        )
        try:
            wait_until(lambda: watcher.on("camsight/available")[-1:] == ["online"], what="online again")
        finally:
            proc.kill()
            proc.wait(timeout=10)
        wait_until(lambda: watcher.on("camsight/available")[-1:] == ["offline"], timeout=20, what="last will")
    finally:
        watcher.close()


def test_one_off_runs_do_not_take_the_service_client_id() -> None:
    config = MqttConfig(host="127.0.0.1", client_id="camsight-site")
    assert MqttSink(config).client_id == "camsight-site"
    one_off = MqttSink(config, availability=False).client_id
    assert one_off.startswith("camsight-site-") and one_off != "camsight-site"


def test_mqtt_broker_down_then_back(store: Store, broker: Mosquitto) -> None:
    alerts = AlertsConfig(mqtt=MqttConfig(host="127.0.0.1", port=broker.port), retry=FAST)
    first = raise_event(store, alerts)
    with mqtt_dispatcher(store, alerts) as dispatcher:
        assert dispatcher.deliver_due().delivered == 1
        broker.stop()
        second = raise_event(store, alerts)
        report = dispatcher.deliver_due()
        assert report.delivered == 0
        assert "mqtt" in report.errors
        rows = outbox(store)
        assert [r.status for r in rows] == [DELIVERED, PENDING]
        assert rows[1].last_error and str(broker.port) in rows[1].last_error
        third = raise_event(store, alerts)
        broker.start()
        sub = Subscriber(broker.port)
        try:
            deliver_until(dispatcher, lambda: all(r.status == DELIVERED for r in outbox(store)))
            wait_until(lambda: len(sub.on("camsight/events")) == 2, what="the queued events")
            assert [json.loads(b)["uid"] for b in sub.on("camsight/events")] == [second["uid"], third["uid"]]
            # A new connection announces the sensor again (the broker lost its retained messages).
            assert sub.on("homeassistant/binary_sensor/camsight_gate_zone_intrusion/config")
        finally:
            sub.close()
    assert first["uid"] != second["uid"]


def test_mqtt_password_auth(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Mosquitto(tmp_path / "auth", users={"camsight": "broker-pass-42"}) as broker:
        monkeypatch.setenv("CAMSIGHT_SECRET_TEST_MQTT", "wrong-pass-13")
        alerts = AlertsConfig(
            mqtt=MqttConfig(
                host="127.0.0.1",
                port=broker.port,
                username="camsight",
                password_env="CAMSIGHT_SECRET_TEST_MQTT",
            ),
            retry=FAST,
        )
        raise_event(store, alerts)
        with mqtt_dispatcher(store, alerts) as dispatcher:
            report = dispatcher.deliver_due()
        assert report.delivered == 0
        error = report.errors["mqtt"]
        assert "refused" in error and "wrong-pass-13" not in error
        monkeypatch.setenv("CAMSIGHT_SECRET_TEST_MQTT", "broker-pass-42")
        with mqtt_dispatcher(store, alerts) as dispatcher:
            deliver_until(dispatcher, lambda: outbox(store)[0].status == DELIVERED)


# --------------------------------------------------------------------------- the CLI


def write_config(
    path: Path, *, webhooks: list[dict] | None = None, mqtt: dict | None = None, **retry: Any
) -> Path:
    alerts: dict[str, Any] = {"webhooks": webhooks or []}
    if mqtt:
        alerts["mqtt"] = mqtt
    alerts["retry"] = {"initial_seconds": 0.2, "max_seconds": 1.0} | retry
    path.write_text(json.dumps({"cameras": {"gate": {}, "lobby": {}}, "alerts": alerts}, indent=2))
    return path


def config_alerts(path: Path) -> AlertsConfig:
    from camsight.config import load_config

    return load_config(path).alerts


def test_cli_deliver_status_retry(tmp_path: Path) -> None:
    receiver = HttpReceiver()
    data = tmp_path / "data"
    config = write_config(
        tmp_path / "camsight.yaml",
        webhooks=[{"name": "hooks", "url": receiver.url, "timeout": 2}],
        max_attempts=1,
    )
    store = open_store(data)
    payloads = [raise_event(store, config_alerts(config)) for _ in range(2)]
    store.close()

    proc = run_cli("alerts", "deliver", "--data", data, "--config", config)
    error = assert_clean_failure(proc, "hooks", "cannot connect")
    assert proc.returncode == 1 and "failed" in error and "camsight alerts retry" in error
    status = json.loads(run_cli("alerts", "status", "--data", data, "--config", config, "--json").stdout)
    (hooks,) = status["sinks"]
    assert (hooks["sink"], hooks["failed"], hooks["delivered"]) == ("hooks", 2, 0)
    assert "cannot connect" in hooks["last_error"]

    proc = run_cli("alerts", "retry", "--data", data, "--config", config)
    assert proc.returncode == 0 and "re-queued 2" in proc.stderr
    with receiver:
        proc = run_cli("alerts", "deliver", "--data", data, "--config", config, "--wait", 20)
        assert proc.returncode == 0, proc.stderr
        assert "nothing pending" in proc.stderr
        assert [r.json()["uid"] for r in receiver.accepted] == [p["uid"] for p in payloads]
    table = run_cli("alerts", "status", "--data", data, "--config", config)
    assert table.returncode == 0 and "hooks" in table.stdout


def test_cli_deliver_wait_gives_up_at_the_deadline(tmp_path: Path) -> None:
    receiver = HttpReceiver()
    data = tmp_path / "data"
    config = write_config(tmp_path / "camsight.yaml", webhooks=[{"name": "hooks", "url": receiver.url}])
    store = open_store(data)
    raise_event(store, config_alerts(config))
    store.close()
    began = time.monotonic()
    proc = run_cli("alerts", "deliver", "--data", data, "--config", config, "--wait", 2)
    assert time.monotonic() - began < 30
    error = assert_clean_failure(proc, "hooks: 1 pending", "cannot connect")
    assert proc.returncode == 1, error
    attempts = db_query(data, "SELECT attempts FROM outbox")[0][0]
    assert attempts >= 3  # it kept retrying while it waited


def test_cli_test_alert_reaches_every_sink(tmp_path: Path, receiver: HttpReceiver, broker: Mosquitto) -> None:
    data = tmp_path / "data"
    config = write_config(
        tmp_path / "camsight.yaml",
        webhooks=[{"name": "hooks", "url": receiver.url, "min_severity": "critical"}],
        mqtt={"host": "127.0.0.1", "port": broker.port},
    )
    sub = Subscriber(broker.port)
    try:
        proc = run_cli("alerts", "test", "--camera", "gate", "--data", data, "--config", config)
        assert proc.returncode == 0, proc.stderr
        assert "hooks (webhook): delivered" in proc.stderr and "mqtt (mqtt): delivered" in proc.stderr
        (request,) = receiver.accepted  # sent although the hook only takes critical events
        assert (request.json()["type"], request.json()["camera"]) == ("test", "gate")
        wait_until(lambda: sub.on("camsight/gate/events"), what="the test event on MQTT")
        assert json.loads(sub.on("camsight/events")[0])["uid"] == request.json()["uid"]
        # A test creates no sensor, and a one-off CLI run leaves availability to the service.
        assert not [t for t, _, _ in sub.messages if t.startswith("homeassistant/") or t.endswith("/test")]
        assert not sub.on("camsight/available")
    finally:
        sub.close()


def test_cli_kill_9_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL a `deliver --wait` that is retrying against a dead receiver; a re-run delivers all."""
    receiver = HttpReceiver()
    data = tmp_path / "data"
    config = write_config(
        tmp_path / "camsight.yaml", webhooks=[{"name": "hooks", "url": receiver.url, "timeout": 2}]
    )
    store = open_store(data)
    alerts = config_alerts(config)
    payloads = [raise_event(store, alerts, camera=("gate", "lobby")[i % 2]) for i in range(6)]
    payloads.append(end_event(store, alerts, payloads[0]["uid"]))
    store.close()

    proc = subprocess.Popen(
        [str(CAMSIGHT), "alerts", "deliver", "--data", str(data), "--config", str(config), "--wait", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    try:
        wait_until(
            lambda: db_query(data, "SELECT max(attempts) FROM outbox")[0][0] >= 2,
            timeout=30,
            what="the deliverer to retry",
        )
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert db_query(data, "SELECT count(*) FROM outbox WHERE status = 'pending'") == [(7,)]

    with receiver:
        again = run_cli("alerts", "deliver", "--data", data, "--config", config, "--wait", 30)
        assert again.returncode == 0, again.stderr
        got = [(r.json()["uid"], r.json()["kind"]) for r in receiver.accepted]
    assert got == [(p["uid"], p["kind"]) for p in payloads]
    assert db_query(data, "SELECT count(*) FROM outbox WHERE status = 'delivered'") == [(7,)]


@pytest.mark.slow
def test_cli_kill_9_mid_request_sends_again(tmp_path: Path) -> None:
    """Killed after the receiver got a request but before it answered: the event is sent again."""
    receiver = HttpReceiver().start()
    receiver.delay_s = 30.0
    data = tmp_path / "data"
    config = write_config(
        tmp_path / "camsight.yaml", webhooks=[{"name": "hooks", "url": receiver.url, "timeout": 1}]
    )
    store = open_store(data)
    payloads = [raise_event(store, config_alerts(config)) for _ in range(3)]
    store.close()
    try:
        proc = subprocess.Popen(
            [
                str(CAMSIGHT),
                "alerts",
                "deliver",
                "--data",
                str(data),
                "--config",
                str(config),
                "--wait",
                "60",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=cli_env(),
        )
        wait_until(lambda: receiver.requests, timeout=30, what="a request in flight")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        receiver.delay_s = 0.0
        # The killed attempt's lease (timeout + 5 s) must run out before the row is sent again.
        again = run_cli("alerts", "deliver", "--data", data, "--config", config, "--wait", 30)
        assert again.returncode == 0, again.stderr
    finally:
        receiver.stop()
    first = payloads[0]["uid"]
    assert [r.json()["uid"] for r in receiver.requests].count(first) >= 2  # at least once
    assert [r.json()["uid"] for r in receiver.accepted][-3:] == [p["uid"] for p in payloads]


# --------------------------------------------------------------------------- bad configuration


def test_cli_unknown_camera_in_sink_filter(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "camsight.yaml",
        webhooks=[{"name": "hooks", "url": "http://127.0.0.1:9/", "cameras": ["nope"]}],
    )
    proc = run_cli("alerts", "deliver", "--data", tmp_path / "data", "--config", config)
    assert_clean_failure(proc, "alerts.webhooks.0.cameras", "unknown camera 'nope'")


@pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1/hook"])
def test_cli_bad_webhook_url(tmp_path: Path, url: str) -> None:
    config = write_config(tmp_path / "camsight.yaml", webhooks=[{"name": "hooks", "url": url}])
    proc = run_cli("alerts", "status", "--data", tmp_path / "data", "--config", config)
    assert_clean_failure(proc, "alerts.webhooks.0.url")


def test_cli_missing_secret_env(tmp_path: Path) -> None:
    data = tmp_path / "data"
    open_store(data).close()
    config = write_config(
        tmp_path / "camsight.yaml",
        webhooks=[
            {"name": "hooks", "url": "http://127.0.0.1:9/", "secret_env": "CAMSIGHT_SECRET_TEST_NO_SUCH_HOOK"}
        ],
    )
    for command in ("deliver", "test"):
        proc = run_cli("alerts", command, "--data", data, "--config", config)
        assert_clean_failure(proc, "CAMSIGHT_SECRET_TEST_NO_SUCH_HOOK", "hooks")


def test_cli_missing_mqtt_password_env(tmp_path: Path) -> None:
    data = tmp_path / "data"
    open_store(data).close()
    config = write_config(
        tmp_path / "camsight.yaml",
        mqtt={"host": "127.0.0.1", "port": free_port(), "password_env": "CAMSIGHT_SECRET_TEST_NO_SUCH_MQTT"},
    )
    proc = run_cli("alerts", "deliver", "--data", data, "--config", config)
    assert_clean_failure(proc, "CAMSIGHT_SECRET_TEST_NO_SUCH_MQTT")


def test_cli_status_without_data(tmp_path: Path) -> None:
    proc = run_cli("alerts", "status", "--data", tmp_path / "nothing-here")
    assert_clean_failure(proc, "no camsight data")


def test_cli_no_sinks_configured(tmp_path: Path) -> None:
    data = tmp_path / "data"
    open_store(data).close()
    proc = run_cli("alerts", "deliver", "--data", data)
    assert proc.returncode == 0 and "no alert sinks configured" in proc.stderr
    assert_clean_failure(run_cli("alerts", "test", "--data", data), "no alert sinks configured")
