"""Time: aware UTC datetimes, the one way user-given times are read, and the one retry backoff.

Part of the bottom layer: it imports nothing of camsight's.

Two readers of a naive time exist on purpose, and :func:`parse_when` takes
which one as an argument: at the terminal a person types their own clock
(``naive="local"``); over the API the browser converts to UTC before sending,
so a naive value there is UTC (``naive="utc"``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """A naive datetime read back from the database is UTC (SQLite keeps no offset); aware ones pass.

    >>> aware(datetime(2026, 11, 20, 18, 0)).isoformat()
    '2026-11-20T18:00:00+00:00'
    """
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC; naive means UTC already.

    >>> to_utc(datetime.fromisoformat("2026-11-20T18:00+01:00")).isoformat()
    '2026-11-20T17:00:00+00:00'
    """
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def local_text(value: datetime) -> str:
    """``value`` as people read it: this machine's local time, to the second (naive means UTC).

    The one format of every time shown at the terminal and in messages: no
    microseconds, no raw UTC.
    """
    return to_utc(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def parse_duration(text: str) -> timedelta | None:
    """``30s``, ``15m``, ``2h``, ``7d``, ``1w`` as a positive timedelta; None when ``text`` is not one.

    >>> parse_duration("90m"), parse_duration("0h"), parse_duration("soon")
    (datetime.timedelta(seconds=5400), None, None)
    """
    m = _DURATION.match(text.strip().lower())
    if not m or float(m.group(1)) <= 0:
        return None
    return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])


def parse_when(
    text: str,
    *,
    naive: Literal["local", "utc"] = "local",
    durations: Literal["ago", "ahead", "no"] = "ago",
    now: datetime | None = None,
) -> datetime:
    """A user's time: ISO 8601 (``2026-11-20``, ``2026-11-20T18:00``, with or without an offset),
    or, unless ``durations="no"``, a duration before (``"ago"``) or after (``"ahead"``) ``now``.

    A naive ISO time is read in this machine's zone (``naive="local"``) or as
    UTC (``naive="utc"``). The result is always aware. Raises ValueError with a
    sentence a user can act on.

    >>> parse_when("2026-11-20T18:00+01:00").isoformat()
    '2026-11-20T18:00:00+01:00'
    >>> parse_when("2026-11-20 18:00", naive="utc").isoformat()
    '2026-11-20T18:00:00+00:00'
    >>> start = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    >>> parse_when("2h", now=start).isoformat(), parse_when("1d", durations="ahead", now=start).day
    ('2026-11-20T10:00:00+00:00', 21)
    """
    value = text.strip()
    span = parse_duration(value) if durations != "no" else None
    if span is not None:
        base = now or datetime.now().astimezone()
        return base + span if durations == "ahead" else base - span
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        example = {"ago": ", or a time ago such as 2h", "ahead": ", or a duration such as 90d", "no": ""}
        raise ValueError(
            f"an ISO date or time such as 2026-11-20 or 2026-11-20T18:00{example[durations]} "
            f"is required, got {value[:64]!r}"
        ) from None
    if when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC) if naive == "utc" else when.astimezone()


def backoff(
    attempt: int,
    initial: float,
    maximum: float,
    *,
    jitter: float = 0.0,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry ``attempt`` (0 = the first retry): doubling from ``initial``, capped.

    ``jitter`` takes up to that share off at random, so the delay lies in
    ``[(1 - jitter) * base, base]``: peers that failed together (cameras on one
    switch, deliveries to one receiver) spread out, and none waits longer than
    ``maximum``.

    >>> [backoff(n, 0.5, 3.0) for n in range(5)]
    [0.5, 1.0, 2.0, 3.0, 3.0]
    >>> backoff(3, 1.0, 60.0, jitter=0.5, rng=lambda: 1.0)
    4.0
    """
    base = min(maximum, initial * 2.0 ** min(max(attempt, 0), 64))
    return base * (1.0 - jitter * rng())
