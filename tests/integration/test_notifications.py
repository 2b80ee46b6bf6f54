"""Notifications through apprise, end to end, against real servers on 127.0.0.1.

An aiosmtpd SMTP server that demands a password (given to camsight only
through a ``CAMSIGHT_SECRET_*`` variable) receives the e-mail; a plain HTTP
server receives apprise's ``json://`` messages. Events are stored the way the
events code stores them (the event row, its snapshot and its outbox rows
together), and the dispatcher delivers them with their signed links.
"""

from __future__ import annotations

import base64
import email
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import assert_clean_failure, run_cli
from servers import HttpReceiver, Mosquitto, Subscriber, free_port, wait_until
from sqlalchemy import select

from camsight.alerts.dispatcher import Dispatcher
from camsight.alerts.links import EventLinks
from camsight.alerts.outbox import DELIVERED, PENDING, enqueue
from camsight.config import AlertsConfig, MqttConfig, NotifyConfig, RetryConfig, WebhookConfig
from camsight.store.db import Store
from camsight.store.events import event_payload
from camsight.store.media import write_jpeg
from camsight.store.models import Camera, EventRow, OutboxRow

pytestmark = [
    pytest.mark.slow,
    # aiosmtpd warns that AUTH without TLS is unsafe: this server is on 127.0.0.1 for the test only.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

SMTP_USER = "camsight"
SMTP_PASSWORD = "smtp-pass:w/rd-4711"
FAST = RetryConfig(initial_seconds=0.05, max_seconds=0.2)
T0 = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- a real SMTP server


class SmtpServer:
    """aiosmtpd on 127.0.0.1 that requires AUTH (user :data:`SMTP_USER`, :data:`SMTP_PASSWORD`).

    ``stop()`` closes the port (connection refused) and ``start()`` opens it again.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.logins: list[tuple[bytes, bool]] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def _authenticate(self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        with self._lock:
            self.logins.append((getattr(data, "login", b""), ok))
        return AuthResult(success=ok)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        # aiosmtpd's handler hook (its name is aiosmtpd's).
        with self._lock:
            self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def url(self, **params: str) -> str:
        query = "&".join(
            f"{k}={v}" for k, v in {"from": "camsight@example.com", "to": "ops@example.com"}.items()
        )
        extra = "".join(f"&{k}={v}" for k, v in params.items())
        return f"mailto://{SMTP_USER}:{{secret}}@127.0.0.1:{self.port}?{query}{extra}"

    def start(self) -> SmtpServer:
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_required=True,
            auth_require_tls=False,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def smtp_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CAMSIGHT_SECRET_TEST_SMTP", SMTP_PASSWORD)
    return "CAMSIGHT_SECRET_TEST_SMTP"


# ------------------------------------------------------------- events, as the events code writes them


def raise_event(
    store: Store,
    alerts: AlertsConfig,
    *,
    camera: str = "yard",
    event_type: str = "zone_intrusion",
    severity: str = "high",
) -> dict[str, Any]:
    """Store an open event with a snapshot and queue its alerts, in one transaction; return its payload."""
    uid = uuid.uuid4().hex
    image = np.full((120, 160, 3), 40, np.uint8)
    cv2.rectangle(image, (50, 30), (90, 110), (0, 0, 220), -1)
    relative = f"events/{uid}.jpg"
    write_jpeg(store.media / relative, image)
    with store.session() as session:
        cam = session.scalars(select(Camera).where(Camera.name == camera)).first()
        if cam is None:
            cam = Camera(name=camera)
            session.add(cam)
            session.flush()
        n = session.query(EventRow).count()
        row = EventRow(
            uid=uid,
            camera_id=cam.id,
            type=event_type,
            rule=f"{event_type}:gate",
            severity=severity,
            state="open",
            start_t=float(n),
            start_at=T0 + timedelta(seconds=n),
            zone="gate",
            track_local_ids=[n + 1],
            summary=f"person in gate #{n}",
            details={},
            snapshot=relative,
        )
        session.add(row)
        session.flush()
        payload = event_payload(row, camera, "start", None)
        enqueue(session, alerts, payload)
    return payload


def outbox(store: Store) -> list[OutboxRow]:
    with store.session() as session:
        return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def dispatcher(store: Store, alerts: AlertsConfig) -> Dispatcher:
    links = EventLinks("http://127.0.0.1:8080", bytes(32), expiry_s=3600)
    return Dispatcher(store, alerts, links=links)


def deliver_until(d: Dispatcher, done: Any, timeout: float = 30.0) -> None:
    def attempt() -> bool:
        d.deliver_due()
        return bool(done())

    wait_until(attempt, timeout=timeout, what="delivery")


# --------------------------------------------------------------------------- e-mail


def test_email_names_event_and_camera_with_links_and_snapshot(
    store: Store, smtp: SmtpServer, smtp_secret: str
) -> None:
    alerts = AlertsConfig(notify=[NotifyConfig(name="ops-mail", url=smtp.url(), secret_env=smtp_secret)])
    payload = raise_event(store, alerts, camera="yard", severity="critical")
    with dispatcher(store, alerts) as d:
        report = d.deliver_due()
    assert report.delivered == 1 and not report.errors
    (mail,) = smtp.received()
    assert smtp.logins == [(SMTP_USER.encode(), True)]  # the password came from the environment
    assert mail["Subject"] == f"[CRITICAL] zone intrusion on yard: {payload['summary']}"
    assert mail["To"] == "ops@example.com"
    body = mail.get_body(("plain",)).get_content()
    assert "Camera: yard" in body
    assert f"Event: {payload['id']} (zone_intrusion" in body
    assert f"/api/v1/links/events/{payload['id']}/snapshot?exp=" in body
    assert f"/api/v1/links/events/{payload['id']}/clip?exp=" in body
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "image/jpeg"
    data = attachment.get_payload(decode=True)
    assert data == (store.media / payload["snapshot"]).read_bytes()
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (120, 160, 3)
    (row,) = outbox(store)
    assert (row.sink, row.status, row.attempts) == ("ops-mail", DELIVERED, 1)


def test_snapshot_left_off_when_not_wanted(store: Store, smtp: SmtpServer, smtp_secret: str) -> None:
    alerts = AlertsConfig(
        notify=[NotifyConfig(name="m", url=smtp.url(), secret_env=smtp_secret, attach_snapshot=False)]
    )
    raise_event(store, alerts)
    with dispatcher(store, alerts) as d:
        d.deliver_due()
    (mail,) = smtp.received()
    assert list(mail.iter_attachments()) == []


def test_wrong_password_is_retried_and_never_shown(
    store: Store, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-the-password-9931"
    monkeypatch.setenv("CAMSIGHT_SECRET_TEST_SMTP", wrong)
    alerts = AlertsConfig(
        # cto: the refused login ends in a socket timeout (apprise's default is 15 s).
        notify=[NotifyConfig(name="m", url=smtp.url(cto="3"), secret_env="CAMSIGHT_SECRET_TEST_SMTP")],
        retry=FAST,
    )
    raise_event(store, alerts)
    caplog.set_level("DEBUG")
    with dispatcher(store, alerts) as d:
        report = d.deliver_due()
    assert report.delivered == 0 and report.retried == 1
    (row,) = outbox(store)
    assert row.status == PENDING and "E-Mail notification via mailto://camsight:{secret}@" in row.last_error
    assert smtp.logins and not smtp.logins[0][1] and smtp.received() == []
    assert wrong not in row.last_error + caplog.text


# --------------------------------------------------------------------------- a JSON (webhook-style) service


def test_json_service_gets_message_and_snapshot(store: Store, receiver: HttpReceiver) -> None:
    url = f"json://127.0.0.1:{receiver.port}/notify"
    alerts = AlertsConfig(notify=[NotifyConfig(name="chat", url=url)])
    payload = raise_event(store, alerts, camera="dock", severity="medium")
    with dispatcher(store, alerts) as d:
        assert d.deliver_due().delivered == 1
    (request,) = receiver.accepted
    assert request.path == "/notify"
    sent = request.json()
    assert sent["title"] == f"[MEDIUM] zone intrusion on dock: {payload['summary']}"
    assert sent["type"] == "warning"
    assert "Camera: dock" in sent["message"] and f"Event: {payload['id']} " in sent["message"]
    assert "/api/v1/links/events/" in sent["message"]
    (attachment,) = sent["attachments"]
    assert attachment["mimetype"] == "image/jpeg"
    assert base64.b64decode(attachment["base64"]) == (store.media / payload["snapshot"]).read_bytes()


# --------------------------------------------------------------------------- at least once, and once


def test_servers_down_then_up_deliver_once(
    store: Store, smtp: SmtpServer, smtp_secret: str, receiver: HttpReceiver
) -> None:
    smtp.stop()
    receiver.stop()
    alerts = AlertsConfig(
        notify=[
            NotifyConfig(name="mail", url=smtp.url(), secret_env=smtp_secret),
            NotifyConfig(name="chat", url=f"json://127.0.0.1:{receiver.port}/n", timeout=5),
        ],
        retry=FAST,
    )
    payload = raise_event(store, alerts)
    with dispatcher(store, alerts) as d:
        report = d.deliver_due()
        assert report.delivered == 0 and set(report.errors) == {"mail", "chat"}
        assert {r.status for r in outbox(store)} == {PENDING}
        smtp.start()
        receiver.start()
        deliver_until(d, lambda: all(r.status == DELIVERED for r in outbox(store)))
        assert d.deliver_due().delivered == 0  # nothing left: no second copy
    assert len(smtp.received()) == 1 and len(receiver.accepted) == 1
    assert f"Event: {payload['id']} " in smtp.received()[0].get_body(("plain",)).get_content()
    assert all(r.attempts >= 2 for r in outbox(store))


def test_nothing_failing_delivers_exactly_once(store: Store, receiver: HttpReceiver) -> None:
    alerts = AlertsConfig(notify=[NotifyConfig(name="chat", url=f"json://127.0.0.1:{receiver.port}/n")])
    uids = [raise_event(store, alerts)["id"] for _ in range(3)]
    with dispatcher(store, alerts) as d:
        d.deliver_due()
        d.deliver_due()
    assert len(receiver.requests) == 3
    assert [f"Event: {i} " in r.json()["message"] for r, i in zip(receiver.requests, uids, strict=True)] == [
        True
    ] * 3


# --------------------------------------------------------------------------- routing


def test_rules_and_severity_route_to_their_channel_only(store: Store, receiver: HttpReceiver) -> None:
    other = HttpReceiver().start()
    try:
        alerts = AlertsConfig(
            notify=[
                NotifyConfig(name="falls", url=f"json://127.0.0.1:{receiver.port}/falls", rules=["fall"]),
                NotifyConfig(
                    name="intrusions",
                    url=f"json://127.0.0.1:{other.port}/intrusions",
                    rules=["zone_intrusion:gate"],
                    min_severity="high",
                ),
            ]
        )
        fall = raise_event(store, alerts, event_type="fall", severity="medium")
        intrusion = raise_event(store, alerts, event_type="zone_intrusion", severity="high")
        raise_event(store, alerts, event_type="zone_intrusion", severity="low")  # below "intrusions"
        raise_event(store, alerts, event_type="crowd", severity="critical")  # no channel's rule
        assert [r.sink for r in outbox(store)] == ["falls", "intrusions"]
        with dispatcher(store, alerts) as d:
            d.deliver_due()
        assert [r.path for r in receiver.accepted] == ["/falls"]
        assert f"Event: {fall['id']} " in receiver.accepted[0].json()["message"]
        assert [r.path for r in other.accepted] == ["/intrusions"]
        assert f"Event: {intrusion['id']} " in other.accepted[0].json()["message"]
    finally:
        other.stop()


# --------------------------------------------------------------------------- links in every kind of alert


def test_webhook_and_mqtt_payloads_carry_links_per_sink(
    store: Store, receiver: HttpReceiver, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "mosquitto").start()
    live = Subscriber(broker.port)
    try:
        alerts = AlertsConfig(
            webhooks=[WebhookConfig(name="hooks", url=receiver.url)],
            mqtt=MqttConfig(host="127.0.0.1", port=broker.port, discovery_prefix=None),
        )
        payload = raise_event(store, alerts, camera="yard")
        with dispatcher(store, alerts) as d:
            assert d.deliver_due().delivered == 2
            wait_until(lambda: live.on("camsight/events"), what="the MQTT event")
        (published,) = [json.loads(b) for b in live.on("camsight/events")]
        (posted,) = [r.json() for r in receiver.accepted]
        for sent, via in ((published, "mqtt"), (posted, "hooks")):
            assert (sent["id"], sent["camera"], sent["uid"]) == (payload["id"], "yard", payload["uid"])
            base = f"http://127.0.0.1:8080/api/v1/links/events/{payload['id']}"
            assert sent["links"]["snapshot"].startswith(f"{base}/snapshot?exp=")
            assert sent["links"]["clip"].startswith(f"{base}/clip?exp=")
            assert f"via={via}&" in sent["links"]["clip"]
            assert sent["links"]["expires_at"] > datetime.now(UTC).isoformat()
        # The queued payload is unchanged: links are made afresh at each attempt.
        assert "links" not in outbox(store)[0].payload
    finally:
        live.close()
        broker.stop()


# --------------------------------------------------------------------------- bad settings stop the start


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (
            '{name: mail, url: "mailtos://u:{secret}@smtp.example.org?to=a@example.org", '
            "secret_env: CAMSIGHT_SECRET_TEST_UNSET}",
            "CAMSIGHT_SECRET_TEST_UNSET (secret_env) is not set",
        ),
        ('{name: chat, url: "nonsense://somewhere/else"}', "apprise cannot use the URL nonsense://"),
    ],
)
def test_run_refuses_a_notifier_it_could_not_use(tmp_path: Path, entry: str, words: str) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(f"alerts:\n  notify:\n    - {entry}\n")
    proc = run_cli("run", "--config", config, "--data", tmp_path / "data", "--port", free_port(), timeout=120)
    assert_clean_failure(proc, "alerts notifier", words)
