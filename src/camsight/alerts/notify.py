"""Notifier sink: each event as a message people read (e-mail, Telegram, Slack, Matrix, ntfy...) via apprise.

One configured notifier is one apprise URL. A message has a title naming the
event and the camera, a plain-text body with the summary, the event's id,
times and the signed links to its snapshot and clip, and the snapshot
attached where the service takes attachments (``attach_snapshot``).

Delivery is at least once, like the webhooks': apprise makes one attempt
(its own retries are off by default) and a failure leaves the outbox row
pending for the dispatcher's backoff. What apprise said about the failure
becomes the row's ``last_error``, with the notifier's secrets taken out.
Apprise's own log lines are kept out of camsight's log: some of them quote
parts of the URL, tokens included.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from camsight.alerts.outbox import DeliveryError, OutboxMessage, redact
from camsight.config import SECRET_PLACEHOLDER, NotifyConfig
from camsight.errors import ConfigError
from camsight.urls import redact_notifier_url, url_secrets

log = logging.getLogger(__name__)
# Apprise logs failures with pieces of the URL (first and last characters of tokens); what it
# says about a delivery is taken from its result instead, redacted, into last_error and our log.
logging.getLogger("apprise").propagate = False

#: Severity -> the apprise message type (its icon or colour where the service shows one).
_TYPES = {"info": "info", "low": "info", "medium": "warning", "high": "warning", "critical": "failure"}
#: Longest part of apprise's log kept in an error.
MAX_DETAIL = 400


def resolve_url(config: NotifyConfig) -> tuple[str, list[str]]:
    """The notifier's full URL, and the secrets in it to keep out of messages.

    ``url_env`` gives the whole URL; ``secret_env`` fills ``{secret}`` in
    ``url`` (URL-quoted). A named variable that is not set is a ConfigError.
    """
    where = f"alerts notifier '{config.name}'"
    if config.url_env is not None:
        value = os.environ.get(config.url_env, "").strip()
        if not value:
            raise ConfigError(f"{where}: environment variable {config.url_env} (url_env) is not set")
        return value, [value, *url_secrets(value), *_url_parts(value)]
    assert config.url is not None  # the config model requires url or url_env
    if config.secret_env is None:
        return config.url, url_secrets(config.url)
    secret = os.environ.get(config.secret_env, "")
    if not secret:
        raise ConfigError(f"{where}: environment variable {config.secret_env} (secret_env) is not set")
    url = config.url.replace(SECRET_PLACEHOLDER, quote(secret, safe=""))
    return url, [secret, quote(secret, safe=""), *url_secrets(url)]


def _url_parts(url: str) -> list[str]:
    # A URL kept whole in the environment may hide a token anywhere: in the host, the path, the query.
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    pieces = [parts.netloc, *parts.path.split("/"), *(p.partition("=")[2] for p in parts.query.split("&"))]
    return [unquote(p) for p in pieces if len(p) >= 6]


def _title_case(event_type: str) -> str:
    return event_type.replace("_", " ")


def render(payload: dict[str, Any]) -> tuple[str, str]:
    """The title and plain-text body of a notification for one event payload (links included).

    >>> title, body = render({"kind": "start", "id": 7, "type": "fall", "rule": "fall:rgb",
    ...     "severity": "high", "camera": "hall", "summary": "person fell",
    ...     "start": "2026-11-20T10:00:03+00:00"})
    >>> title
    '[HIGH] fall on hall: person fell'
    >>> print(body)
    person fell
    Camera: hall
    Event: 7 (fall, rule fall:rgb, severity high)
    Started: 2026-11-20T10:00:03+00:00
    """
    camera, event_type = str(payload.get("camera")), _title_case(str(payload.get("type")))
    summary = str(payload.get("summary") or "").strip()
    ended = payload.get("kind") == "end"
    tag = "ENDED" if ended else str(payload.get("severity", "info")).upper()
    title = f"[{tag}] {event_type} on {camera}" + (f": {summary}" if summary else "")
    lines = [summary] if summary else []
    lines.append(f"Camera: {camera}")
    lines.append(
        f"Event: {payload.get('id')} ({payload.get('type')}, rule {payload.get('rule')}, "
        f"severity {payload.get('severity')})"
    )
    if payload.get("zone"):
        lines.append(f"Zone: {payload['zone']}")
    if payload.get("line"):
        lines.append(f"Line: {payload['line']}")
    if payload.get("start"):
        lines.append(f"Started: {payload['start']}")
    if payload.get("end"):
        lines.append(f"Ended: {payload['end']}")
    links = payload.get("links") or {}
    if links.get("snapshot"):
        lines.append(f"Snapshot: {links['snapshot']}")
    if links.get("clip"):
        lines.append(f"Clip: {links['clip']}")
    if links.get("expires_at"):
        lines.append(f"(links open the footage until {links['expires_at']})")
    return title, "\n".join(lines)


class NotifySink:
    """Delivers outbox messages through one apprise URL.

    Construction resolves the URL's secret (a variable that is not set is a
    ConfigError) and checks that apprise knows the service, so a bad setup
    fails at start rather than at the first alert. ``media`` is the folder
    event snapshots are stored under (None: nothing is attached).
    """

    kind = "notify"

    def __init__(self, config: NotifyConfig, *, media: Path | None = None) -> None:
        import apprise

        self.config = config
        self.name = config.name
        url, self._hidden = resolve_url(config)
        plugin = apprise.Apprise.instantiate(url)
        #: For messages and logs: the URL as written in the config (secrets hidden), or just its scheme.
        self.safe_url = (
            redact_notifier_url(config.url)
            if config.url
            else f"{url.split('://', 1)[0]}:// (from {config.url_env})"
        )
        if plugin is None:
            raise ConfigError(
                f"alerts notifier '{config.name}': apprise cannot use the URL {self.safe_url} (unknown "
                "service or a missing part; see https://github.com/caronc/apprise/wiki)"
            )
        self.service = str(plugin.service_name or plugin.protocol or "apprise")
        self._attachments = bool(getattr(plugin, "attachment_support", False))
        self._apprise = apprise.Apprise()
        self._apprise.add(plugin)
        self._media = Path(media).resolve() if media is not None else None
        self.lease_s = config.timeout + 5.0

    def open(self) -> None:
        """Nothing to do: apprise connects per message."""

    def snapshot_path(self, payload: dict[str, Any]) -> Path | None:
        """The event's snapshot file to attach, if there is one, it is wanted and the service takes it."""
        relative = payload.get("snapshot")
        if not (self.config.attach_snapshot and self._attachments and self._media and relative):
            return None
        path = (self._media / str(relative)).resolve()
        # The payload comes from the store, but a path is only ever read inside the media folder.
        if not path.is_relative_to(self._media) or not path.is_file():
            return None
        return path

    def deliver(self, message: OutboxMessage) -> None:
        """Send ``message``; return when the service accepted it, else raise :class:`DeliveryError`."""
        import apprise

        title, body = render(message.payload)
        snapshot = self.snapshot_path(message.payload)
        attach = apprise.AppriseAttachment(str(snapshot)) if snapshot is not None else None
        notify_type = (
            "success"
            if message.payload.get("kind") == "end"
            else _TYPES.get(str(message.payload.get("severity")), "info")
        )
        try:
            result = self._apprise.notify(
                body=body,
                title=title,
                notify_type=notify_type,
                body_format="text",
                attach=attach,
                timeout=self.config.timeout,
            )
        except Exception as exc:  # apprise raises for bad arguments; never let a secret out with it
            raise self._error(f"{self.service} notifier failed: {type(exc).__name__}: {exc}") from None
        if result:
            log.debug(
                "notification delivered",
                extra={"sink": self.name, "outbox_id": message.id, "attached": snapshot is not None},
            )
            return
        said = [e.asdict() for e in result.logs()]
        worst = [e["message"] for e in said if e.get("level") in ("WARNING", "ERROR", "CRITICAL")]
        detail = " ".join(worst or [e["message"] for e in said])[:MAX_DETAIL] or "no reason given"
        raise self._error(f"{self.service} notification via {self.safe_url} failed: {detail}")

    def _error(self, text: str) -> DeliveryError:
        return DeliveryError(redact(text, self._hidden))

    def close(self) -> None:
        """Nothing held between messages."""
