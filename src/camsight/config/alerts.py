"""Where alerts go: HTTP webhooks and an MQTT broker, with retry settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, HttpUrl, field_validator

from camsight.config.base import StrictModel
from camsight.config.secrets import SecretEnv
from camsight.config.zones import Severity


class SinkFilter(StrictModel):
    cameras: list[str] | None = None
    """Only these cameras' events (default: all)."""
    min_severity: Severity = "info"
    """Only events at least this severe."""


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


class RetryConfig(StrictModel):
    """Backoff between delivery attempts: doubling from ``initial`` up to ``max``, with jitter."""

    initial_seconds: Annotated[float, Field(gt=0, le=3600)] = 2.0
    max_seconds: Annotated[float, Field(gt=0, le=86400)] = 300.0
    max_attempts: Annotated[int, Field(ge=1)] | None = None
    """Give up (mark failed, kept for `camsight alerts retry`) after this many attempts; null: never."""


class AlertsConfig(StrictModel):
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    mqtt: MqttConfig | None = None
    retry: RetryConfig = RetryConfig()

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

    def sink_names(self) -> list[str]:
        return [h.name for h in self.webhooks] + (["mqtt"] if self.mqtt else [])
