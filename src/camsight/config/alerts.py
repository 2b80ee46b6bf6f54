"""Where alerts go: HTTP webhooks, an MQTT broker and apprise notifiers (e-mail, chat, push), with retry
settings and the signed links to an event's snapshot and clip that every alert carries."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, HttpUrl, field_validator, model_validator

from camsight.config.base import StrictModel
from camsight.config.secrets import SecretEnv
from camsight.config.zones import Severity


class SinkFilter(StrictModel):
    cameras: list[str] | None = None
    """Only these cameras' events (default: all)."""
    min_severity: Severity = "info"
    """Only events at least this severe."""
    rules: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=128)]], Field(max_length=200)] | None
    ) = None
    """Only events of these rules: a rule's name (``fall:rgb``, or its ``name:``) or a rule type
    (``fall``, ``zone_intrusion``...); default: every rule."""


class WebhookConfig(SinkFilter):
    """POST each event as JSON to ``url``.

    With ``secret`` (or the ``CAMSIGHT_SECRET_...`` environment variable named by ``secret_env``)
    every request carries ``X-Camsight-Signature: sha256=<hex HMAC of
    "<timestamp>.<body>">`` and ``X-Camsight-Timestamp``.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    url: HttpUrl
    secret: str | None = None
    secret_env: SecretEnv | None = None
    """Environment variable holding the secret; it must start with ``CAMSIGHT_SECRET_``."""
    timeout: Annotated[float, Field(gt=0, le=120)] = 10.0
    headers: dict[str, str] = Field(default_factory=dict)


class MqttConfig(SinkFilter):
    """Publish events and per-camera state to an MQTT broker (Home Assistant friendly)."""

    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str | None = None
    password: str | None = None
    password_env: SecretEnv | None = None
    """Environment variable holding the password; it must start with ``CAMSIGHT_SECRET_``."""
    client_id: str = "camsight"
    topic_prefix: Annotated[str, Field(pattern=r"^[^#+]{1,128}$")] = "camsight"
    """Topics start with this: ``camsight/events``, ``camsight/<camera>/<type>``..."""
    discovery_prefix: Annotated[str, Field(pattern=r"^[^#+]{1,128}$")] | None = "homeassistant"
    """Publish Home Assistant MQTT discovery configs under this prefix (null: off)."""
    qos: Literal[0, 1, 2] = 1
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 60
    tls: bool = False

    @field_validator("host")
    @classmethod
    def _host(cls, host: str) -> str:
        if not host or any(c.isspace() for c in host) or "/" in host:
            raise ValueError("a host name or address, without scheme or path")
        return host


#: Where the secret goes in a notifier URL given with ``secret_env``.
SECRET_PLACEHOLDER = "{secret}"
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]{1,31}://", re.I)
# A password in clear: "user:pw@" before the host, or a password-like query parameter.
_CLEAR_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#@]*:([^/?#@]+)@", re.I)
_CLEAR_PARAM = re.compile(
    r"[?&](?:pass|password|passwd|pwd|secret|token|key|apikey|api_key|auth)=([^&#]+)", re.I
)


class NotifyConfig(SinkFilter):
    """Send each event to a person's channel through apprise: e-mail, Telegram, Slack, Matrix, ntfy...

    ``url`` is an apprise URL (https://github.com/caronc/apprise/wiki), e.g.
    ``mailtos://alerts:{secret}@smtp.example.org?to=ops@example.org`` with
    ``secret_env: CAMSIGHT_SECRET_SMTP``. Secrets never sit in the file: write
    ``{secret}`` where the password or token goes and name the environment
    variable holding it in ``secret_env``, or give the whole URL in the variable
    named by ``url_env``.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    """The notifier's name in ``camsight alerts status``, the audit log (``link:<name>``) and the links."""
    url: Annotated[str, Field(min_length=4, max_length=2000)] | None = None
    """The apprise URL; ``{secret}`` in it is replaced by the value of ``secret_env`` (URL-quoted)."""
    secret_env: SecretEnv | None = None
    """Environment variable holding the password or token that replaces ``{secret}`` in ``url``; it must
    start with ``CAMSIGHT_SECRET_``."""
    url_env: SecretEnv | None = None
    """Environment variable holding the whole apprise URL (instead of ``url``); it must start with
    ``CAMSIGHT_SECRET_``."""
    attach_snapshot: bool = True
    """Attach the event's snapshot (JPEG) where the service takes attachments (e-mail, ntfy, JSON...)."""
    timeout: Annotated[float, Field(gt=0, le=300)] = 30.0
    """Seconds one delivery may take (apprise gives up then, and the outbox retries it later)."""

    @model_validator(mode="after")
    def _where(self) -> NotifyConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give the notifier's url or url_env (one of them)")
        if self.url is None:
            if self.secret_env is not None:
                raise ValueError("secret_env fills {secret} in url; with url_env the variable holds it all")
            return self
        if not _SCHEME.match(self.url):
            # Not echoed: a URL without its scheme may still be mostly a token.
            raise ValueError("url must be an apprise URL such as mailtos://... or ntfys://... (scheme://...)")
        placeholder = SECRET_PLACEHOLDER in self.url
        if placeholder and self.secret_env is None:
            raise ValueError("url has {secret}: name the variable holding it in secret_env")
        if self.secret_env is not None and not placeholder:
            raise ValueError("secret_env is given: write {secret} in url where the password or token goes")
        clear = [m.group(1) for m in (_CLEAR_PASSWORD.match(self.url), *_CLEAR_PARAM.finditer(self.url)) if m]
        if any(value != SECRET_PLACEHOLDER for value in clear):
            raise ValueError(
                "url holds a password or token in clear: write {secret} in its place and put the value in "
                "an environment variable named by secret_env (CAMSIGHT_SECRET_...), or give the whole URL "
                "in url_env"
            )
        return self


class RetryConfig(StrictModel):
    """Backoff between delivery attempts: doubling from ``initial`` up to ``max``, with jitter."""

    initial_seconds: Annotated[float, Field(gt=0, le=3600)] = 2.0
    max_seconds: Annotated[float, Field(gt=0, le=86400)] = 300.0
    max_attempts: Annotated[int, Field(ge=1)] | None = None
    """Give up (mark failed, kept for `camsight alerts retry`) after this many attempts; null: never."""


class LinksConfig(StrictModel):
    """The signed links to an event's snapshot and clip that every alert carries."""

    enabled: bool = True
    """Add the links (``links`` in webhook and MQTT payloads, lines in notifications)."""
    expiry_days: Annotated[float, Field(gt=0, le=366)] = 7.0
    """Days a link opens the footage after the alert was sent."""


class AlertsConfig(StrictModel):
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    mqtt: MqttConfig | None = None
    notify: list[NotifyConfig] = Field(default_factory=list)
    """Notifiers through apprise (e-mail, chat, push), each with its own routing."""
    retry: RetryConfig = RetryConfig()
    links: LinksConfig = LinksConfig()

    @field_validator("webhooks")
    @classmethod
    def _unique(cls, hooks: list[WebhookConfig]) -> list[WebhookConfig]:
        names = [h.name for h in hooks]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"two webhooks are named '{sorted(dup)[0]}'")
        if "mqtt" in names:
            raise ValueError("'mqtt' is reserved for the MQTT sink; name the webhook otherwise")
        return hooks

    @model_validator(mode="after")
    def _unique_notifiers(self) -> AlertsConfig:
        names = [n.name for n in self.notify]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"two notifiers are named '{sorted(dup)[0]}'")
        clash = sorted(set(names) & {*(h.name for h in self.webhooks), "mqtt"})
        if clash:
            raise ValueError(f"notifier '{clash[0]}' has the name of another alert sink; name it otherwise")
        return self

    def sink_names(self) -> list[str]:
        return (
            [h.name for h in self.webhooks] + (["mqtt"] if self.mqtt else []) + [n.name for n in self.notify]
        )
