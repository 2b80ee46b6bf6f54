"""Requests between nodes, signed with the secret they share (HMAC-SHA256), never a user's credentials.

A node fetching footage from the node that holds it signs the method, the path
with its query, the time and its own name; the receiving node recomputes the
signature with its copy of the secret. The secret itself never travels. A
signature is good for :data:`MAX_SKEW_SECONDS` either side of the receiver's
clock, so a captured request cannot be replayed later; within that window a
replay only fetches the same read-only bytes again (and the node links are
meant to run on a private network or behind TLS).

>>> headers = sign("s" * 32, "a", "GET", "/api/v1/node/media?path=x.jpg", now=1000.0)
>>> verify("s" * 32, headers, "GET", "/api/v1/node/media?path=x.jpg", now=1010.0)
'a'
>>> try:
...     verify("t" * 32, headers, "GET", "/api/v1/node/media?path=x.jpg", now=1010.0)
... except NodeAuthError as exc:
...     print(exc)
the request's node signature does not match (is the node secret the same on every node?)
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from camsight.errors import CamsightError

NODE_HEADER = "X-Camsight-Node"
TIME_HEADER = "X-Camsight-Time"
SIGNATURE_HEADER = "X-Camsight-Signature"
#: How far a request's time may be from the receiver's clock (seconds).
MAX_SKEW_SECONDS = 60.0


class NodeAuthError(CamsightError):
    """A request claiming to come from a node is unsigned, badly signed or too old."""


def _digest(secret: str, node: str, method: str, path: str, stamp: str) -> str:
    message = "\n".join(("camsight-node/1", method.upper(), path, stamp, node)).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, node: str, method: str, path: str, *, now: float | None = None) -> dict[str, str]:
    """The headers that authenticate ``method path`` (path with its query) as sent by ``node``."""
    stamp = f"{(time.time() if now is None else now):.3f}"
    return {
        NODE_HEADER: node,
        TIME_HEADER: stamp,
        SIGNATURE_HEADER: _digest(secret, node, method, path, stamp),
    }


def verify(
    secret: str, headers: Mapping[str, str], method: str, path: str, *, now: float | None = None
) -> str:
    """The sending node's name when ``headers`` sign ``method path`` with ``secret``; else NodeAuthError."""
    lower = {k.lower(): v for k, v in headers.items()}
    node = lower.get(NODE_HEADER.lower())
    stamp = lower.get(TIME_HEADER.lower())
    signature = lower.get(SIGNATURE_HEADER.lower())
    if not node or not stamp or not signature:
        raise NodeAuthError("this address is for other camsight nodes only (the request is not signed)")
    try:
        sent = float(stamp)
    except ValueError:
        raise NodeAuthError("the request's node time is not a number") from None
    skew = abs((time.time() if now is None else now) - sent)
    if not skew <= MAX_SKEW_SECONDS:  # also false for NaN
        raise NodeAuthError(
            f"the request's node time is {skew:.0f} s off this node's clock (at most "
            f"{MAX_SKEW_SECONDS:.0f} s; keep the nodes' clocks in sync with NTP)"
        )
    expected = _digest(secret, node, method, path, stamp)
    if not hmac.compare_digest(expected, signature):
        raise NodeAuthError(
            "the request's node signature does not match (is the node secret the same on every node?)"
        )
    return node
