"""The ``metrics:`` section: the Prometheus endpoint, who may scrape it, and where it listens.

>>> MetricsConfig(listen="127.0.0.1:9108").address()
('127.0.0.1', 9108)
>>> MetricsConfig(listen="[::1]:9108").address()
('::1', 9108)
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import field_validator

from camsight.config.base import StrictModel

#: ``host:port`` or ``[v6-address]:port``.
_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>[0-9]{1,5})$")


class MetricsConfig(StrictModel):
    """Prometheus metrics (``/metrics``): per-camera frames, lag and drops, detector and search
    latency, alert delivery, jobs and recording disk use; see docs/metrics.md."""

    enabled: bool = True
    """Serve the metrics at all (``false``: ``/metrics`` answers 404 and no listener is opened)."""
    auth: Literal["token", "none"] = "token"
    """``token``: a scrape must send ``Authorization: Bearer <API token>`` of a user who may see
    every camera (any role; a dedicated viewer account is enough), else 401 (403 for a user limited
    to some cameras, as the metrics name them all). ``none``: anyone who can reach the address may
    scrape; use it with ``listen`` on a loopback or management-network address."""
    listen: str | None = None
    """``host:port`` of a separate listener that serves only the metrics (e.g. ``127.0.0.1:9108``);
    the API server's ``/metrics`` then answers 404. Unset: served at ``/metrics`` on the API server.
    Read when ``camsight run`` starts (a change needs a restart)."""

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            # `listen: 9108` (YAML reads a number): the address cannot be guessed (loopback or all?).
            raise ValueError(f"{value!r}: give host:port, e.g. 127.0.0.1:{value} or 0.0.0.0:{value}")
        value = value.strip()
        match = _LISTEN.match(value)
        if match is None:
            raise ValueError(f"{value!r}: give host:port, e.g. 127.0.0.1:9108 or [::1]:9108")
        if match["v6"] is not None:
            try:
                ipaddress.IPv6Address(match["v6"])
            except ValueError:
                raise ValueError(f"{value!r}: {match['v6']!r} is not an IPv6 address") from None
        port = int(match["port"])
        if not 1 <= port <= 65535:
            raise ValueError(f"{value!r}: the port must be 1 to 65535")
        return value

    def address(self) -> tuple[str, int] | None:
        """The separate listener's (host, port), or None when metrics are served by the API server."""
        if self.listen is None:
            return None
        match = _LISTEN.match(self.listen)
        assert match is not None  # validated above
        return (match["v6"] or match["host"], int(match["port"]))
