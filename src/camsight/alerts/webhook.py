"""Webhook sink: POST each event as JSON, optionally signed with HMAC-SHA256.

A receiver verifies a signed request like this (Python)::

    expected = hmac.new(secret, f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(f"sha256={expected}", request.headers["X-Camsight-Signature"])

and should reject timestamps far from its own clock (replays), and drop
duplicates by the body's ``uid`` + ``kind`` (delivery is at least once).

Any 2xx answer counts as delivered. Everything else is retried with backoff:
connection errors, timeouts, 408, 429 and 5xx because they pass, other 4xx
because dropping an alert silently is worse than retrying it; their status
and the start of the answer are kept as the row's ``last_error`` so that
``camsight alerts status`` shows what the receiver objected to. Redirects are
not followed: they would send the body (and signature) to another address.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from camsight.alerts.outbox import DeliveryError, OutboxMessage, redact
from camsight.config import WebhookConfig
from camsight.errors import ConfigError

log = logging.getLogger(__name__)
# httpx logs every request's full URL at INFO, query string included (where
# webhook tokens often live); keep it quiet unless someone chose a level.
if logging.getLogger("httpx").level == logging.NOTSET:
    logging.getLogger("httpx").setLevel(logging.WARNING)

#: Statuses that say "try again later" rather than "this request is wrong".
TRANSIENT = frozenset({408, 425, 429})
SNIPPET_CHARS = 200
USER_AGENT = "camsight"


def resolve_secret(config: WebhookConfig) -> str | None:
    """The signing secret: ``secret``, else the variable named by ``secret_env``; None when unsigned.

    A named variable that is not set (or empty) is a :class:`ConfigError`:
    sending unsigned requests to a receiver that expects signed ones would
    only fail later, one alert at a time.
    """
    if config.secret is not None and config.secret_env is not None:
        raise ConfigError(f"alerts webhook '{config.name}': give secret or secret_env, not both")
    if config.secret is not None:
        if not config.secret:
            raise ConfigError(f"alerts webhook '{config.name}': secret is empty")
        return config.secret
    if config.secret_env is not None:
        value = os.environ.get(config.secret_env)
        if not value:
            raise ConfigError(
                f"alerts webhook '{config.name}': environment variable {config.secret_env} "
                "(secret_env) is not set"
            )
        return value
    return None


def safe_url(url: str | Any) -> str:
    """``url`` without user info, query or fragment: fit for logs and error messages.

    >>> safe_url("https://bob:pw@hooks.example.com:8443/in/abc?token=x")
    'https://hooks.example.com:8443/in/abc'
    """
    parsed = httpx.URL(str(url))
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Camsight-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>.<body>"``.

    >>> sign("s3cret", "1700000000", b'{"a":1}')[:15]
    'sha256=1698a50b'
    """
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def encode_body(payload: dict[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON (the bytes that are signed)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after")
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat[:SNIPPET_CHARS] + ("..." if len(flat) > SNIPPET_CHARS else "")


class WebhookSink:
    """Delivers outbox messages to one configured webhook.

    Construction resolves the secret (a missing ``secret_env`` variable is a
    ConfigError) so a bad setup fails at start, not at the first alert.
    """

    kind = "webhook"

    def __init__(
        self,
        config: WebhookConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.name = config.name
        self._secret = resolve_secret(config)
        parsed = httpx.URL(str(config.url))
        # Credentials in the URL become basic auth, so the URL itself (which
        # httpx and exceptions may print) carries none.
        auth = (
            httpx.BasicAuth(parsed.username, parsed.password) if parsed.username or parsed.password else None
        )
        self._url = str(parsed.copy_with(username=None, password=None))
        self.safe_url = safe_url(self._url)
        # Everything that must never reach a log line or last_error.
        self._hidden = [
            self._secret,
            parsed.password,
            parsed.username,
            parsed.query.decode() if parsed.query else None,
            *config.headers.values(),
        ]
        self._clock = clock
        self._client_args = {"timeout": config.timeout, "transport": transport, "auth": auth}
        self._client: httpx.Client | None = None
        #: Seconds another dispatcher waits before taking over a row this sink is sending.
        self.lease_s = config.timeout + 5.0

    def headers(self, message: OutboxMessage, body: bytes) -> dict[str, str]:
        """The request headers for ``message`` (configured extras first; camsight's own win)."""
        own = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Camsight-Event": message.event_uid,
            "X-Camsight-Delivery": str(message.id),
        }
        reserved = {k.lower() for k in own} | {"x-camsight-timestamp", "x-camsight-signature"}
        headers = {k: v for k, v in self.config.headers.items() if k.lower() not in reserved} | own
        if self._secret is not None:
            timestamp = str(int(self._clock()))
            headers["X-Camsight-Timestamp"] = timestamp
            headers["X-Camsight-Signature"] = sign(self._secret, timestamp, body)
        return headers

    def _error(self, text: str, *, retry_after_s: float = 0.0) -> DeliveryError:
        return DeliveryError(redact(text, self._hidden), retry_after_s=retry_after_s)

    def open(self) -> None:
        """Nothing to do: connections open per request (and are pooled)."""

    def deliver(self, message: OutboxMessage) -> None:
        """POST ``message``; return when the receiver answered 2xx, else raise :class:`DeliveryError`."""
        body = encode_body(message.payload)
        if self._client is None:  # first use, or used again after close()
            self._client = httpx.Client(follow_redirects=False, **self._client_args)
        try:
            response = self._client.post(self._url, content=body, headers=self.headers(message, body))
        except httpx.TimeoutException:
            raise self._error(
                f"timed out after {self.config.timeout:g}s posting to {self.safe_url}"
            ) from None
        except httpx.ConnectError as exc:
            raise self._error(f"cannot connect to {self.safe_url}: {exc}") from None
        except httpx.HTTPError as exc:
            raise self._error(f"{type(exc).__name__} posting to {self.safe_url}: {exc}") from None
        status = response.status_code
        if 200 <= status < 300:
            log.debug(
                "webhook delivered",
                extra={"sink": self.name, "outbox_id": message.id, "http_status": status},
            )
            return
        snippet = _snippet(response.text) if response.content else ""
        detail = f"HTTP {status} from {self.safe_url}" + (f": {snippet}" if snippet else "")
        if 300 <= status < 400:
            detail += " (redirects are not followed: set the webhook url to the final address)"
        elif 400 <= status < 500 and status not in TRANSIENT:
            detail += " (the receiver rejected the request; it is retried until it is accepted)"
        raise self._error(detail, retry_after_s=_retry_after(response))

    def close(self) -> None:
        """Close the HTTP connection pool (a later delivery opens a new one)."""
        if self._client is not None:
            self._client.close()
            self._client = None
