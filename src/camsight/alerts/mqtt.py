"""MQTT sink: events as JSON, and per-camera state that Home Assistant picks up by itself.

For an event of type ``zone_intrusion`` on camera ``gate`` (prefix ``camsight``)::

    camsight/events                        the payload JSON (every event, not retained)
    camsight/gate/events                   the payload JSON (this camera's events, not retained)
    camsight/gate/zone_intrusion/last      the payload JSON, retained (the sensor's attributes)
    camsight/gate/zone_intrusion           ON when it starts, OFF when it ends, retained
    camsight/available                     online / offline (last will), retained
    homeassistant/binary_sensor/camsight_gate_zone_intrusion/config
                                           discovery config, retained, once per connection

``ON``/``OFF`` follow the latest event of that type on that camera: when two
overlap, the first to end turns the sensor off. ``test`` events (``camsight
alerts test``) go to the event topics only, so no sensor is created for them.

When the service connects (``availability``), before it says ``online``, it
announces the sensors of every configured rule (``sensors``), fired or not,
and reconciles the retained states with the events open in the store
(``open_events``): a sensor is ``ON`` exactly when one of its events is open,
so an ``ON`` left behind by a crash, or by a rule since removed, is turned
``OFF``. Retained states are found by subscribing to ``<prefix>/+/+`` for a
moment (see :meth:`MqttSink._retained_on`).

A message counts as delivered when the broker acknowledged every publish
for it (at the configured QoS; QoS 0 means "written to the socket").
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from camsight.alerts.outbox import DeliveryError, OutboxMessage, accepts, redact
from camsight.config import CameraConfig, MqttConfig, SinkFilter, rule_severity
from camsight.errors import ConfigError

log = logging.getLogger(__name__)

ON, OFF = "ON", "OFF"
ONLINE, OFFLINE = "online", "offline"
#: Event types that only go to the event topics (no retained state, no discovery).
STATELESS_TYPES = frozenset({"test"})

#: Home Assistant binary_sensor device classes per event type: what "on" means.
DEVICE_CLASSES: dict[str, str] = {
    "tampering": "tamper",
    "fall": "safety",
    "erratic_driving": "safety",
    "crowd": "occupancy",
    "zone_intrusion": "occupancy",
    "dwell": "occupancy",
    "line_crossing": "motion",
    "running": "motion",
    "wrong_way": "problem",
    "stopped_vehicle": "problem",
    "unusual_activity": "problem",
}
DEFAULT_DEVICE_CLASS = "problem"
#: Longest wait for the broker's retained states at connect; past it, reconciling goes on without them.
RETAINED_SCAN_S = 5.0

#: A sensor: (camera, event type).
SensorKey = tuple[str, str]

_TOPIC_UNSAFE = re.compile(r"[+#/\x00]|\s")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def topic_part(name: str) -> str:
    """``name`` made safe as one topic level: no wildcards, no ``/``, spaces as ``_``.

    >>> topic_part("front door/2"), topic_part("a+b#c"), topic_part("")
    ('front_door_2', 'a_b_c', '_')
    """
    return _TOPIC_UNSAFE.sub("_", name.strip()) or "_"


def object_id(name: str) -> str:
    """``name`` as Home Assistant accepts in a discovery topic and unique_id (``[A-Za-z0-9_-]``).

    >>> object_id("Front Door")
    'Front_Door'
    """
    return _ID_UNSAFE.sub("_", name.strip()) or "_"


def resolve_password(config: MqttConfig) -> str | None:
    """The broker password: ``password``, else the variable named by ``password_env``; None without."""
    if config.password is not None and config.password_env is not None:
        raise ConfigError("alerts.mqtt: give password or password_env, not both")
    if config.password_env is not None:
        value = os.environ.get(config.password_env)
        if not value:
            raise ConfigError(
                f"alerts.mqtt: environment variable {config.password_env} (password_env) is not set"
            )
        return value
    return config.password


class Topics:
    """The topic names for one prefix (trailing ``/`` dropped)."""

    def __init__(self, prefix: str, discovery_prefix: str | None) -> None:
        self.prefix = prefix.rstrip("/") or "camsight"
        self.discovery_prefix = discovery_prefix.rstrip("/") if discovery_prefix else None

    @property
    def available(self) -> str:
        return f"{self.prefix}/available"

    @property
    def events(self) -> str:
        return f"{self.prefix}/events"

    def camera_events(self, camera: str) -> str:
        return f"{self.prefix}/{topic_part(camera)}/events"

    def state(self, camera: str, event_type: str) -> str:
        return f"{self.prefix}/{topic_part(camera)}/{topic_part(event_type)}"

    def last(self, camera: str, event_type: str) -> str:
        return f"{self.state(camera, event_type)}/last"

    def discovery(self, camera: str, event_type: str) -> str | None:
        if self.discovery_prefix is None:
            return None
        return f"{self.discovery_prefix}/binary_sensor/{unique_id(camera, event_type)}/config"


def unique_id(camera: str, event_type: str) -> str:
    """The Home Assistant unique_id (and discovery object id) of a camera's sensor for one event type."""
    return f"camsight_{object_id(camera)}_{object_id(event_type)}"


def discovery_config(topics: Topics, camera: str, event_type: str) -> dict[str, Any]:
    """Home Assistant MQTT discovery config for the binary sensor of ``event_type`` on ``camera``."""
    return {
        "name": event_type.replace("_", " ").capitalize(),
        "unique_id": unique_id(camera, event_type),
        "state_topic": topics.state(camera, event_type),
        "payload_on": ON,
        "payload_off": OFF,
        "availability_topic": topics.available,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "json_attributes_topic": topics.last(camera, event_type),
        "device_class": DEVICE_CLASSES.get(event_type, DEFAULT_DEVICE_CLASS),
        "device": {
            "identifiers": [f"camsight_{object_id(camera)}"],
            "name": f"camsight {camera}",
            "manufacturer": "camsight",
        },
    }


def configured_sensors(cameras: Mapping[str, CameraConfig], sink: SinkFilter) -> list[SensorKey]:
    """The (camera, event type) sensors the configured rules can turn on, in config order.

    Only what can reach this sink: enabled cameras, enabled rules with
    ``notify``, and the sink's camera and severity filter. Two rules of one
    type on a camera share the sensor, as their events share its topics.
    """
    out: dict[SensorKey, None] = {}
    for name, camera in cameras.items():
        if not camera.enabled:
            continue
        for rule in camera.rules:
            if not rule.enabled or not rule.notify:
                continue
            if accepts(sink, {"camera": name, "severity": rule_severity(rule)}):
                out[(name, rule.type)] = None
    return list(out)


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class MqttSink:
    """Publishes outbox messages to the configured broker over one kept-open connection.

    The connection opens at the first delivery and is rebuilt after any
    failure, so the retry of a failed message starts from a clean session.
    With ``availability`` (the long-running service) the client sets the
    last will ``<prefix>/available`` = ``offline`` and publishes ``online``
    when connected and ``offline`` when closed; one-off deliveries (the CLI)
    pass ``availability=False`` so they do not mark a running service away
    (and, without an explicit ``client_id``, connect as ``<client_id>-<pid>``).

    With ``availability``, every connection first announces ``sensors``
    (:func:`configured_sensors`) and sets the retained states from
    ``open_events``, which returns the events open right now as
    ``{"camera", "type", "severity"}`` mappings (see the module docstring).
    """

    kind = "mqtt"
    name = "mqtt"

    def __init__(
        self,
        config: MqttConfig,
        *,
        availability: bool = True,
        client_id: str | None = None,
        connect_timeout: float = 10.0,
        publish_timeout: float = 10.0,
        sensors: Iterable[SensorKey] = (),
        open_events: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
    ) -> None:
        self.config = config
        self.topics = Topics(config.topic_prefix, config.discovery_prefix)
        self.availability = availability
        # Two clients with one id take turns kicking each other off the
        # broker: a one-off run (no availability) never borrows the service's.
        self.client_id = client_id or (
            config.client_id if availability else f"{config.client_id}-{os.getpid()}"
        )
        self.connect_timeout = connect_timeout
        self.publish_timeout = publish_timeout
        self._password = resolve_password(config)
        self._hidden = [self._password]
        self.address = f"{config.host}:{config.port}"
        #: Seconds another dispatcher waits before taking over a row this sink is sending.
        self.lease_s = connect_timeout + publish_timeout + 5.0
        self._client: mqtt.Client | None = None
        self._connack = threading.Event()
        self._connack_reason: Any = None
        self._lost = threading.Event()
        #: (camera, type) pairs whose discovery config went out on this connection.
        self._discovered: set[SensorKey] = set()
        self.sensors: list[SensorKey] = list(dict.fromkeys(sensors))
        self._open_events = open_events

    # ----------------------------------------------------------------- connection

    def _on_connect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._connack_reason = reason
        self._connack.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._lost.set()
        self._connack.set()  # wake a connect that is still waiting
        log.debug("mqtt disconnected", extra={"sink": self.name, "reason": str(reason)})

    def _error(self, text: str) -> DeliveryError:
        return DeliveryError(redact(text, self._hidden))

    def _connect(self) -> mqtt.Client:
        cfg = self.config
        # The loop thread must not reconnect on its own: a reconnect would
        # re-send half-published messages outside the outbox's bookkeeping.
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
            reconnect_on_failure=False,
        )
        if cfg.username is not None or self._password is not None:
            client.username_pw_set(cfg.username or "", self._password)
        if cfg.tls:
            client.tls_set()
        if self.availability:
            client.will_set(self.topics.available, OFFLINE, qos=1, retain=True)
        client.connect_timeout = self.connect_timeout
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._connack.clear()
        self._lost.clear()
        self._connack_reason = None
        try:
            client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive)
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise self._error(f"cannot connect to MQTT broker {self.address}: {reason}") from None
        client.loop_start()
        if not self._connack.wait(self.connect_timeout) or self._connack_reason is None:
            self._teardown(client)
            if self._lost.is_set():
                raise self._error(f"MQTT broker {self.address} closed the connection before accepting it")
            raise self._error(f"MQTT broker {self.address} did not accept the connection in time")
        if self._connack_reason.is_failure:
            self._teardown(client)
            raise self._error(f"MQTT broker {self.address} refused the connection: {self._connack_reason}")
        self._discovered.clear()
        log.info("mqtt connected", extra={"sink": self.name, "broker": self.address})
        if self.availability:
            # Sensors and true states first: Home Assistant must not show a
            # crash's leftover ON as current once we say "online".
            self._announce(client)
            self._publish_all(client, [(self.topics.available, ONLINE, True)])
        return client

    # ----------------------------------------------------------------- start-up state

    def _announce(self, client: mqtt.Client) -> None:
        """Publish discovery for the configured sensors and reconcile the retained states with the store."""
        messages: list[tuple[str, str, bool]] = []
        for camera, event_type in self.sensors:
            topic = self.topics.discovery(camera, event_type)
            if topic is not None:
                messages.append((topic, _json(discovery_config(self.topics, camera, event_type)), True))
        states = {self.topics.state(camera, event_type): OFF for camera, event_type in self.sensors}
        if self._open_events is not None:
            try:
                opened = list(self._open_events())
            except Exception as exc:
                # Without the store's view the retained states cannot be judged: leave
                # them as they are (the next connection tries again) rather than guess.
                log.warning("mqtt states not reconciled", extra={"sink": self.name, "error": str(exc)})
            else:
                for event in opened:
                    if str(event["type"]) in STATELESS_TYPES or not accepts(self.config, event):
                        continue
                    states[self.topics.state(str(event["camera"]), str(event["type"]))] = ON
                for topic in self._retained_on(client):
                    states.setdefault(topic, OFF)
        messages += [(topic, state, True) for topic, state in states.items()]
        if messages:
            self._publish_all(client, messages)
        self._discovered.update(self.sensors)
        turned_off = sum(1 for state in states.values() if state == OFF)
        log.info(
            "mqtt sensors announced",
            extra={"sink": self.name, "sensors": len(self.sensors), "on": len(states) - turned_off},
        )

    def _retained_on(self, client: mqtt.Client) -> set[str]:
        """State topics (``<prefix>/+/+``) the broker holds a retained ``ON`` for.

        The retained messages come right after the subscription; a marker
        published after it (same connection, QoS 0, so in order) tells when
        all have arrived. A broker that refuses the subscription (an ACL) or
        is slow gives an empty or partial set: configured sensors are still
        reconciled, only leftovers of removed rules may stay.
        """
        pattern = f"{self.topics.prefix}/+/+"
        marker = f"{self.topics.prefix}/_sync/{uuid.uuid4().hex}"
        found: set[str] = set()
        lock = threading.Lock()  # the callbacks run on paho's loop thread
        granted = threading.Event()
        done = threading.Event()
        refused: list[Any] = []

        def on_message(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
            if message.topic == marker:
                done.set()
            elif message.retain and message.payload == ON.encode():
                with lock:
                    found.add(message.topic)

        def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, codes: list[Any], _props: Any) -> None:
            refused.extend(code for code in codes if code.is_failure)
            granted.set()

        client.message_callback_add(pattern, on_message)
        client.on_subscribe = on_subscribe
        try:
            rc, _ = client.subscribe(pattern, qos=0)
            wait = min(self.publish_timeout, RETAINED_SCAN_S)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or not granted.wait(wait) or refused:
                log.info("mqtt retained states not readable", extra={"sink": self.name})
                return set()
            client.publish(marker, "", qos=0, retain=False)
            if not done.wait(wait):
                log.info("mqtt retained states partly read", extra={"sink": self.name})
            with lock:
                return set(found)
        finally:
            client.unsubscribe(pattern)
            client.on_subscribe = None
            client.message_callback_remove(pattern)

    def _teardown(self, client: mqtt.Client) -> None:
        try:
            client.disconnect()
        finally:
            client.loop_stop()

    def _ensure_connected(self) -> mqtt.Client:
        if self._client is not None and (self._lost.is_set() or not self._client.is_connected()):
            self._drop()
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            self._teardown(client)

    # ----------------------------------------------------------------- publishing

    def messages(
        self, payload: dict[str, Any], *, discovered: set[SensorKey] | None = None
    ) -> list[tuple[str, str, bool]]:
        """The (topic, body, retain) triples for one event payload, in publish order."""
        camera, event_type = str(payload["camera"]), str(payload["type"])
        body = _json(payload)
        out: list[tuple[str, str, bool]] = []
        stateful = event_type not in STATELESS_TYPES
        key = (camera, event_type)
        discovery = self.topics.discovery(camera, event_type)
        if stateful and discovery is not None and key not in (discovered or set()):
            out.append((discovery, _json(discovery_config(self.topics, camera, event_type)), True))
        out.append((self.topics.events, body, False))
        out.append((self.topics.camera_events(camera), body, False))
        if stateful:
            out.append((self.topics.last(camera, event_type), body, True))
            state = ON if payload.get("kind") == "start" else OFF
            out.append((self.topics.state(camera, event_type), state, True))
        return out

    def _publish_all(self, client: mqtt.Client, messages: list[tuple[str, str, bool]]) -> None:
        infos = []
        for topic, body, retain in messages:
            info = client.publish(topic, body, qos=self.config.qos, retain=retain)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._drop_client(client)
                raise self._error(
                    f"cannot publish to MQTT broker {self.address}: {mqtt.error_string(info.rc)}"
                )
            infos.append((topic, info))
        deadline = time.monotonic() + self.publish_timeout
        for topic, info in infos:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                published = info.is_published()
            except (RuntimeError, ValueError) as exc:
                self._drop_client(client)
                raise self._error(f"publishing {topic} to {self.address} failed: {exc}") from None
            if not published:
                self._drop_client(client)
                raise self._error(
                    f"MQTT broker {self.address} did not acknowledge {topic} within {self.publish_timeout:g}s"
                )

    def _drop_client(self, client: mqtt.Client) -> None:
        if self._client is client:
            self._drop()
        else:
            self._teardown(client)

    def open(self) -> None:
        """Connect now if not connected (the service does, to say ``online`` before any event)."""
        self._ensure_connected()

    def deliver(self, message: OutboxMessage) -> None:
        """Publish ``message``'s topics; return once the broker acknowledged all, else raise."""
        client = self._ensure_connected()
        payload = message.payload
        batch = self.messages(payload, discovered=self._discovered)
        self._publish_all(client, batch)
        if payload["type"] not in STATELESS_TYPES:
            self._discovered.add((str(payload["camera"]), str(payload["type"])))
        log.debug("mqtt delivered", extra={"sink": self.name, "outbox_id": message.id, "topics": len(batch)})

    def close(self) -> None:
        """Say ``offline`` (with ``availability``) and disconnect cleanly."""
        client = self._client
        if client is None:
            return
        if self.availability and not self._lost.is_set():
            try:
                self._publish_all(client, [(self.topics.available, OFFLINE, True)])
            except DeliveryError as exc:
                log.debug("mqtt offline not published", extra={"sink": self.name, "error": str(exc)})
        self._drop()
