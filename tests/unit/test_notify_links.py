"""Notifier settings (secrets only from the environment, routing by rule), their redaction, the message
text, and the signed links every alert carries (signing, tampering, expiry, the key file)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from camsight.alerts.links import EventLinks, LinkError, event_path, load_key, signature, verify
from camsight.alerts.notify import NotifySink, render, resolve_url
from camsight.alerts.outbox import accepts, sinks_for
from camsight.config import AlertsConfig, NotifyConfig, parse_config
from camsight.config.edit import redact
from camsight.errors import ConfigError

KEY = bytes(range(32))
NOW = 1_800_000_000


# --------------------------------------------------------------------------- config


def notify_config(entry: str, cameras: str = "") -> str:
    return f"{cameras}alerts:\n  notify:\n    - {entry}\n"


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("{name: m, url: 'mailtos://ops:hunter22@smtp.example.org'}", "password or token in clear"),
        ("{name: j, url: 'json://hooks.example.org/in?token=abc123'}", "password or token in clear"),
        ("{name: j, url: 'json://h.example.org/{secret}'}", "name the variable holding it in secret_env"),
        ("{name: j, url: 'json://h.example.org/x', secret_env: CAMSIGHT_SECRET_X}", "write {secret} in url"),
        ("{name: j, url: 'json://h/{secret}', secret_env: HOME}", "may not be named here"),
        ("{name: j}", "give the notifier's url or url_env"),
        ("{name: j, url: 'json://h/x', url_env: CAMSIGHT_SECRET_URL}", "give the notifier's url or url_env"),
        ("{name: j, url: 'not a url'}", "must be an apprise URL"),
        ("{name: j, url: 'json://h/x', rules: [fal]}", "no rule named 'fal'"),
        ("{name: j, url: 'json://h/x', cameras: [nowhere]}", "unknown camera 'nowhere'"),
        ("{name: mqtt, url: 'json://h/x'}", "has the name of another alert sink"),
    ],
)
def test_bad_notifier_settings_are_refused_with_the_reason(entry: str, words: str) -> None:
    with pytest.raises(ConfigError, match=r"alerts(\.notify\.0)?[.:]") as err:
        parse_config(notify_config(entry))
    assert words in str(err.value)


def test_notifier_settings_accepted_and_routed_by_rule_camera_and_severity() -> None:
    config = parse_config(
        notify_config(
            "{name: mail, url: 'mailtos://ops:{secret}@smtp.example.org?to=a@example.org', "
            "secret_env: CAMSIGHT_SECRET_SMTP, rules: ['fall:rgb'], min_severity: high}\n"
            "    - {name: chat, url_env: CAMSIGHT_SECRET_CHAT, rules: [zone_intrusion], cameras: [gate]}",
            cameras="cameras:\n  gate:\n    zones: {rgb: {points: [[0, 0], [1, 0], [1, 1]]}}\n"
            "    rules: [{type: fall, zone: rgb}]\n",
        )
    )
    alerts = config.alerts
    assert alerts.sink_names() == ["mail", "chat"]
    fall = {"camera": "gate", "type": "fall", "rule": "fall:rgb", "severity": "high"}
    intrusion = {
        "camera": "gate",
        "type": "zone_intrusion",
        "rule": "zone_intrusion:door",
        "severity": "high",
    }
    assert sinks_for(alerts, fall) == ["mail"]
    assert sinks_for(alerts, intrusion) == ["chat"]
    assert sinks_for(alerts, {**fall, "severity": "medium"}) == []
    assert not accepts(alerts.notify[1], {**intrusion, "camera": "lobby"})


def test_secret_from_the_environment_fills_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    config = NotifyConfig(
        name="m", url="mailtos://ops:{secret}@smtp.example.org", secret_env="CAMSIGHT_SECRET_SMTP"
    )
    monkeypatch.delenv("CAMSIGHT_SECRET_SMTP", raising=False)
    with pytest.raises(ConfigError, match="CAMSIGHT_SECRET_SMTP \\(secret_env\\) is not set"):
        resolve_url(config)
    monkeypatch.setenv("CAMSIGHT_SECRET_SMTP", "p@ss/w:rd")
    url, hidden = resolve_url(config)
    assert url == "mailtos://ops:p%40ss%2Fw%3Ard@smtp.example.org"
    assert "p@ss/w:rd" in hidden and "p%40ss%2Fw%3Ard" in hidden
    monkeypatch.setenv("CAMSIGHT_SECRET_CHAT", "tgram://123456789:AAEhBP0av28tkfpzK5ZmkQx/4711")
    url, hidden = resolve_url(NotifyConfig(name="t", url_env="CAMSIGHT_SECRET_CHAT"))
    assert url.startswith("tgram://") and url in hidden


def test_unknown_service_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="apprise cannot use the URL nonsense://"):
        NotifySink(NotifyConfig(name="x", url="nonsense://somewhere/else"))


def test_config_shown_over_the_api_hides_notifier_tokens() -> None:
    data = {
        "alerts": {
            "notify": [
                {"name": "tg", "url": "tgram://123456789:AAEhBP0av28tkfpzK5ZmkQx1b2c3/4711"},
                {"name": "mail", "url": "mailtos://ops:{secret}@smtp.example.org?to=a@example.org"},
            ]
        }
    }
    shown = redact(data)["alerts"]["notify"]
    assert shown[0]["url"] == "tgram://123456789:***/4711"
    assert shown[1]["url"] == "mailtos://ops:{secret}@smtp.example.org?to=a@example.org"


# --------------------------------------------------------------------------- message text


def test_message_names_event_camera_and_links() -> None:
    links = EventLinks("https://cams.example.org/base/", KEY, expiry_s=3600, clock=lambda: NOW)
    payload = links.add_to(
        {
            "kind": "start",
            "id": 41,
            "type": "zone_intrusion",
            "rule": "zone_intrusion:yard",
            "severity": "critical",
            "camera": "yard",
            "zone": "yard",
            "summary": "person in yard",
            "start": "2026-11-20T10:00:00+00:00",
            "snapshot": "sources/1/events/x.jpg",
        },
        "ops",
    )
    title, body = render(payload)
    assert title == "[CRITICAL] zone intrusion on yard: person in yard"
    assert "Camera: yard" in body and "Event: 41 (zone_intrusion" in body and "Zone: yard" in body
    assert f"Snapshot: {payload['links']['snapshot']}" in body
    assert f"Clip: {payload['links']['clip']}" in body
    assert payload["links"]["clip"].startswith("https://cams.example.org/base/api/v1/links/events/41/clip?")
    ended, _ = render({**payload, "kind": "end"})
    assert ended.startswith("[ENDED] zone intrusion on yard")


# --------------------------------------------------------------------------- signed links


def _query(url: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(url).query))


def test_link_verifies_and_names_the_sink() -> None:
    links = EventLinks("http://127.0.0.1:8080", KEY, expiry_s=7 * 86400, clock=lambda: NOW)
    made = links.for_event(5, via="ops-mail", snapshot=True)
    q = _query(made["snapshot"])
    assert verify(KEY, event_path(5, "snapshot"), q["exp"], q["via"], q["sig"], now=NOW) == (
        NOW + 7 * 86400,
        "ops-mail",
    )
    assert made["expires_at"].startswith("2027-01-")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"path": event_path(6, "snapshot")}, "signature does not match"),  # another event
        ({"path": event_path(5, "clip")}, "signature does not match"),  # another medium
        ({"sig": "0" * 64}, "signature does not match"),
        ({"via": "someone-else"}, "signature does not match"),
        ({"exp": str(NOW + 30 * 86400)}, "signature does not match"),  # a longer life
        ({"sig": None}, "incomplete"),
        ({"exp": "soon"}, "malformed"),
        ({"key": bytes(32)}, "signature does not match"),  # another server's key
    ],
)
def test_altered_links_are_refused(change: dict, words: str) -> None:
    links = EventLinks("http://h", KEY, expiry_s=3600, clock=lambda: NOW)
    q = _query(links.for_event(5, via="ops", snapshot=True)["snapshot"])
    args = {"key": KEY, "path": event_path(5, "snapshot"), "exp": q["exp"], "via": q["via"], "sig": q["sig"]}
    args.update(change)
    with pytest.raises(LinkError, match=words) as err:
        verify(args["key"], args["path"], args["exp"], args["via"], args["sig"], now=NOW)
    assert err.value.code == "bad_link"


def test_expired_link_says_so() -> None:
    path = event_path(5, "clip")
    sig = signature(KEY, path, NOW - 1, "ops")
    with pytest.raises(LinkError, match="expired at 2027-01-15T07:59:59") as err:
        verify(KEY, path, str(NOW - 1), "ops", sig, now=NOW)
    assert err.value.code == "link_expired"


def test_payload_without_a_stored_event_gets_no_links() -> None:
    links = EventLinks("http://h", KEY, expiry_s=60)
    assert links.add_to({"id": 0, "camera": "test"}, "ops")["links"] is None


def test_key_is_made_once_owner_only(tmp_path: Path) -> None:
    key = load_key(tmp_path)
    path = tmp_path / "link-signing.key"
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(tmp_path) == key  # kept, never replaced
    path.write_text("garbage\n")
    with pytest.raises(ConfigError, match="not a camsight link key"):
        load_key(tmp_path)


def test_links_follow_the_config(tmp_path: Path) -> None:
    config = parse_config(
        "api: {public_url: 'https://cams.example.org/cs/'}\nalerts: {links: {expiry_days: 1}}\n"
    )
    links = EventLinks.from_config(config, tmp_path, host="0.0.0.0", port=9000)
    assert links is not None and links.base_url == "https://cams.example.org/cs/" and links.expiry_s == 86400
    assert config.api.host_allowed("cams.example.org")
    plain = EventLinks.from_config(parse_config(""), tmp_path, host="127.0.0.1", port=9000)
    assert plain is not None and plain.base_url == "http://127.0.0.1:9000"
    assert EventLinks.from_config(parse_config("alerts: {links: {enabled: false}}\n"), tmp_path) is None
    assert os.path.exists(tmp_path / "link-signing.key")


def test_alerts_config_builds_without_notifiers() -> None:
    assert AlertsConfig().sink_names() == []
