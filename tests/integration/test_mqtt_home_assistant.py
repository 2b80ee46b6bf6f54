"""Home Assistant over a real mosquitto: every configured rule is announced at start, and
retained states are reconciled with the events really open in the store.

The service (``Dispatcher.run``) is what connects here, as ``camsight run`` does.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from servers import Mosquitto, Subscriber, wait_until
from sqlalchemy import select

from camsight.alerts.dispatcher import Dispatcher
from camsight.config import AlertsConfig, CameraConfig, MqttConfig
from camsight.store.db import Store
from camsight.store.models import Camera, EventRow

pytestmark = pytest.mark.slow

CAMERAS = {
    "gate": CameraConfig.model_validate(
        {
            "url": "rtsp://127.0.0.1:1/gate",
            "rules": [
                {"type": "running"},
                {"type": "tampering"},
                {"type": "fall"},
                # Its events never reach a sink, so it gets no sensor.
                {"type": "unusual_activity", "notify": False},
            ],
        }
    ),
    "front door": CameraConfig.model_validate(
        {
            "url": "rtsp://127.0.0.1:1/door",
            "rules": [{"type": "tampering"}, {"type": "running", "enabled": False}],
        }
    ),
    "old": CameraConfig.model_validate(
        {"url": "rtsp://127.0.0.1:1/old", "enabled": False, "rules": [{"type": "fall"}]}
    ),
}
ANNOUNCED = {("gate", "running"), ("gate", "tampering"), ("gate", "fall"), ("front_door", "tampering")}


def publish_retained(port: int, topic: str, body: str) -> None:
    """What a crashed camsight left on the broker."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"crashed-{uuid.uuid4().hex[:6]}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, body, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def open_event(store: Store, camera: str, event_type: str, severity: str = "high") -> None:
    """An event that is still going on (no end), as a camera worker stores it."""
    with store.session() as session:
        cam = session.scalars(select(Camera).where(Camera.name == camera)).first()
        if cam is None:
            cam = Camera(name=camera, kind="live")
            session.add(cam)
            session.flush()
        session.add(
            EventRow(
                uid=uuid.uuid4().hex,
                camera_id=cam.id,
                type=event_type,
                rule=event_type,
                severity=severity,
                state="open",
                start_t=0.0,
                start_at=datetime.now(UTC),
                track_local_ids=[],
                summary=f"{event_type} on {camera}",
                details={},
            )
        )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path / "mosquitto").start()
    yield b
    b.stop()


class Service:
    """``Dispatcher.run`` on a thread, as the supervisor starts it."""

    def __init__(self, store: Store, broker: Mosquitto) -> None:
        alerts = AlertsConfig(mqtt=MqttConfig(host="127.0.0.1", port=broker.port))
        self.dispatcher = Dispatcher(store, alerts, cameras=CAMERAS)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.dispatcher.run, args=(self.stop,), kwargs={"poll_s": 0.2})

    def __enter__(self) -> Service:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def discovery_topic(camera: str, event_type: str) -> str:
    return f"homeassistant/binary_sensor/camsight_{camera}_{event_type}/config"


def test_every_configured_rule_is_announced_before_online(store: Store, broker: Mosquitto) -> None:
    watch = Subscriber(broker.port)
    try:
        with Service(store, broker):
            wait_until(lambda: watch.on("camsight/available") == ["online"], what="online")
            topics = watch.topics()
            online_at = topics.index("camsight/available")
            announced = {t for t in topics if t.startswith("homeassistant/")}
            assert announced == {discovery_topic(c, t) for c, t in ANNOUNCED}
            for camera, event_type in ANNOUNCED:
                # The sensor and its state come before "online": Home Assistant never shows a guess.
                assert topics.index(discovery_topic(camera, event_type)) < online_at
                assert topics.index(f"camsight/{camera}/{event_type}") < online_at
                assert watch.on(f"camsight/{camera}/{event_type}") == ["OFF"]
                config = json.loads(watch.on(discovery_topic(camera, event_type))[0])
                assert config["state_topic"] == f"camsight/{camera}/{event_type}"
                assert config["availability_topic"] == "camsight/available"
                assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
            gate = json.loads(watch.on(discovery_topic("gate", "fall"))[0])
            assert gate["device"]["identifiers"] == ["camsight_gate"]
            assert gate["device_class"] == "safety"
        wait_until(lambda: watch.on("camsight/available") == ["online", "offline"], what="offline on stop")
    finally:
        watch.close()

    # A Home Assistant that starts later finds all of it retained.
    late = Subscriber(broker.port)
    try:
        expected = {discovery_topic(c, t) for c, t in ANNOUNCED} | {f"camsight/{c}/{t}" for c, t in ANNOUNCED}
        wait_until(lambda: expected | {"camsight/available"} <= set(late.retained()), what="retained sensors")
        assert late.retained()["camsight/available"] == "offline"
    finally:
        late.close()


def test_retained_states_follow_the_open_events(store: Store, broker: Mosquitto) -> None:
    # Left behind by a crash: a fall that is over, a running that is still going on, and
    # the state of a camera since removed from the config.
    publish_retained(broker.port, "camsight/gate/fall", "ON")
    publish_retained(broker.port, "camsight/gate/running", "ON")
    publish_retained(broker.port, "camsight/removed/dwell", "ON")
    publish_retained(broker.port, "camsight/removed/dwell/last", '{"kind":"start"}')
    open_event(store, "gate", "running")
    # Open, but its ON never reached the broker.
    open_event(store, "front door", "tampering")
    watch = Subscriber(broker.port)
    try:
        wait_until(lambda: len(watch.retained()) == 4, what="the leftovers")
        with Service(store, broker):
            wait_until(lambda: watch.on("camsight/available") == ["online"], what="online")
            assert watch.on("camsight/gate/fall") == ["ON", "OFF"]
            assert watch.on("camsight/gate/running") == ["ON", "ON"]
            assert watch.on("camsight/front_door/tampering") == ["ON"]
            assert watch.on("camsight/gate/tampering") == ["OFF"]
            assert watch.on("camsight/removed/dwell") == ["ON", "OFF"]
    finally:
        watch.close()
    fresh = Subscriber(broker.port)
    try:
        states = {
            "camsight/gate/fall",
            "camsight/gate/running",
            "camsight/front_door/tampering",
            "camsight/removed/dwell",
        }
        wait_until(lambda: states <= set(fresh.retained()), what="retained states")
        retained = fresh.retained()
    finally:
        fresh.close()
    assert retained["camsight/gate/fall"] == "OFF"
    assert retained["camsight/gate/running"] == "ON"
    assert retained["camsight/front_door/tampering"] == "ON"
    assert retained["camsight/removed/dwell"] == "OFF"
