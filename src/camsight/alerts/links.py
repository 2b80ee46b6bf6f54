"""Signed, expiring links to an event's snapshot and clip, so that an alert's receiver can open them.

An alert goes to people and systems that have no camsight account (an
e-mail list, a chat room, a webhook receiver). Each alert therefore
carries links that open exactly one event's media, for a limited time::

    <base>/api/v1/links/events/<id>/snapshot?exp=<unix time>&via=<sink>&sig=<hex>
    <base>/api/v1/links/events/<id>/clip?exp=...&via=...&sig=...

``sig`` is the hex HMAC-SHA256, under a random key kept in the data folder
(:data:`KEY_NAME`, made once, readable by its owner only), of the path, the
expiry and the sink the link was sent to. The path names the event and
what of it, so a link for one event cannot open another's media, and
changing the expiry or the sink breaks the signature. ``via`` is what the
audit log records as who opened the footage (``link:<sink>``).

Deleting the key file (and restarting) makes every link sent so far stop
working; the next alerts carry links signed with the new key.

>>> links = EventLinks("https://cams.example.org/", b"k" * 32, expiry_s=3600, clock=lambda: 1_700_000_000)
>>> links.for_event(12, via="ops-mail", snapshot=True)["clip"]  # doctest: +ELLIPSIS
'https://cams.example.org/api/v1/links/events/12/clip?exp=1700003600&via=ops-mail&sig=...'
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from camsight.config import Config
from camsight.errors import ConfigError

#: The key file in the data folder: 64 hex digits (32 random bytes), mode 0600.
KEY_NAME = "link-signing.key"
#: Where the signed routes are served (the API's prefix included).
LINKS_PREFIX = "/api/v1/links"
#: What an event link opens.
Media = Literal["snapshot", "clip"]
MEDIA: tuple[str, ...] = ("snapshot", "clip")
#: The port ``camsight run`` listens on unless told otherwise.
DEFAULT_PORT = 8080
_VIA = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SIG = re.compile(r"^[0-9a-f]{64}$")


class LinkError(Exception):
    """A signed link that does not open anything; the message says why (shown to whoever followed it).

    ``code`` is ``bad_link`` (incomplete, altered, or signed with another key)
    or ``link_expired``.
    """

    def __init__(self, message: str, code: str = "bad_link") -> None:
        super().__init__(message)
        self.code = code


def load_key(data_dir: Path) -> bytes:
    """The link-signing key of the data folder ``data_dir``, made on first use (mode 0600).

    Made with ``O_EXCL``, so two processes starting together (the service and
    a ``camsight alerts deliver``) end up with the same key. A key file that
    is not 64 hex digits is a :class:`ConfigError` naming it (never silently
    replaced: that would break every link already sent).
    """
    path = Path(data_dir) / KEY_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
    text = _read_key(path)
    for _ in range(50):
        # Another process made the file a moment ago and is still writing it.
        if text:
            break
        time.sleep(0.02)
        text = _read_key(path)
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise ConfigError(
            f"{path}: not a camsight link key (64 hex digits); delete it to make a new one "
            "(links already sent stop working)"
        )
    return bytes.fromhex(text)


def _read_key(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the link key {path}: {exc.strerror or exc}") from None


def event_path(event_id: int, media: str) -> str:
    """The API path of an event's signed ``snapshot`` or ``clip`` route (what is signed)."""
    return f"{LINKS_PREFIX}/events/{int(event_id)}/{media}"


def signature(key: bytes, path: str, expires: int, via: str) -> str:
    """Hex HMAC-SHA256 of ``"<path>\\n<expires>\\n<via>"`` under ``key``.

    >>> signature(b"k" * 32, "/api/v1/links/events/1/clip", 1700000000, "mail")[:12]
    '0bb8b0529342'
    """
    message = f"{path}\n{int(expires)}\n{via}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(
    key: bytes, path: str, expires: str | None, via: str | None, sig: str | None, *, now: float | None = None
) -> tuple[int, str]:
    """Check a link's query against its ``path``; return (expiry, via) or raise :class:`LinkError`.

    The signature is checked before the expiry, so an altered link is
    called altered even when it has also expired.
    """
    if not expires or not sig or not via:
        raise LinkError("this link is incomplete (its exp, via or sig is missing); copy it whole")
    if not expires.isdigit() or len(expires) > 12 or not _VIA.match(via) or not _SIG.match(sig):
        raise LinkError("this link is malformed (exp, via or sig is not what camsight writes)")
    when = int(expires)
    if not hmac.compare_digest(signature(key, path, when, via), sig):
        raise LinkError(
            "this link's signature does not match: it was altered, made for another event, or signed "
            "by another camsight (or before its link key was replaced)"
        )
    at = time.time() if now is None else now
    if when < at:
        stamp = datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")
        raise LinkError(
            f"this link expired at {stamp}; sign in to camsight to see the event", code="link_expired"
        )
    return when, via


def default_base_url(host: str | None, port: int | None) -> str:
    """The base of links when ``api.public_url`` is not set: the address the API listens on.

    A wildcard address (``0.0.0.0``, ``::``) becomes this machine's name, which
    the API answers to.

    >>> default_base_url("127.0.0.1", 8080), default_base_url("::1", 9000)
    ('http://127.0.0.1:8080', 'http://[::1]:9000')
    """
    host = host or "localhost"
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn().lower() or "localhost"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"http://{host}:{port or DEFAULT_PORT}"


@dataclass(frozen=True)
class EventLinks:
    """Makes the signed links an alert carries: ``base_url`` + the signed path, valid ``expiry_s``."""

    base_url: str
    key: bytes = field(repr=False)
    expiry_s: float
    clock: Callable[[], float] = time.time

    @classmethod
    def from_config(
        cls, config: Config, data_dir: Path, *, host: str | None = None, port: int | None = None
    ) -> EventLinks | None:
        """The links of ``config`` (None when ``alerts.links.enabled`` is off).

        The base is ``api.public_url``, else the address given (where the API
        listens), else ``http://localhost:8080``. Makes the key if needed
        (ConfigError when the data folder holds a broken one).
        """
        settings = config.alerts.links
        if not settings.enabled:
            return None
        public = config.api.public_url
        base = str(public) if public is not None else default_base_url(host, port)
        return cls(base, load_key(data_dir), expiry_s=settings.expiry_days * 86400.0)

    def url(self, event_id: int, media: str, *, via: str, expires: int) -> str:
        """One signed link."""
        path = event_path(event_id, media)
        query = urlencode({"exp": expires, "via": via, "sig": signature(self.key, path, expires, via)})
        return f"{self.base_url.rstrip('/')}{path}?{query}"

    def for_event(self, event_id: int, *, via: str, snapshot: bool) -> dict[str, Any]:
        """``{"snapshot", "clip", "expires_at"}`` for event ``event_id`` sent through sink ``via``.

        ``snapshot`` is None when the event has none. The clip link is always
        there: its route says why when the footage is gone (or not recorded).
        """
        expires = int(self.clock() + self.expiry_s)
        return {
            "snapshot": self.url(event_id, "snapshot", via=via, expires=expires) if snapshot else None,
            "clip": self.url(event_id, "clip", via=via, expires=expires),
            "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
        }

    def add_to(self, payload: Mapping[str, Any], via: str) -> dict[str, Any]:
        """A copy of an event payload with its ``links`` (None for a payload without a stored event).

        Made at each delivery attempt, so a link is valid for the whole
        expiry after the alert actually went out (not after it was queued).
        """
        out = dict(payload)
        event_id = payload.get("id")
        ok = isinstance(event_id, int) and event_id > 0 and _VIA.match(via) is not None
        out["links"] = (
            self.for_event(event_id, via=via, snapshot=bool(payload.get("snapshot"))) if ok else None
        )
        return out
