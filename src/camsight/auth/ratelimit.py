"""Failed sign-ins per user name and per client address, in a sliding window.

Failures are rows in ``login_attempts``, so a restart does not reset the
count. Defaults: 5 failures per name and 20 per address within 15 minutes;
the sixth try for that name is refused until the oldest failure in the
window has aged out. A successful sign-in clears the name's failures (not
the address's: one address guessing many names stays limited).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from camsight.auth.errors import RateLimited
from camsight.store.models import LoginAttemptRow, utcnow


@dataclass(frozen=True)
class RateLimitPolicy:
    window: timedelta = timedelta(minutes=15)
    per_name: int = 5
    per_ip: int = 20


DEFAULT_POLICY = RateLimitPolicy()


def name_key(name: str) -> str:
    return "name:" + name.strip().lower()[:128]


def ip_key(ip: str) -> str:
    return "ip:" + ip.strip()[:64]


def _keys(name: str, ip: str | None, policy: RateLimitPolicy) -> list[tuple[str, int, str]]:
    keys = [(name_key(name), policy.per_name, "for this user name")]
    if ip:
        keys.append((ip_key(ip), policy.per_ip, "from this address"))
    return keys


def retry_after(
    session: Session,
    key: str,
    limit: int,
    *,
    now: datetime | None = None,
    policy: RateLimitPolicy = DEFAULT_POLICY,
) -> int:
    """Seconds until ``key`` may try again: 0 if it may now."""
    now = now or utcnow()
    times = (
        session.execute(
            select(LoginAttemptRow.at)
            .where(LoginAttemptRow.key == key, LoginAttemptRow.at > now - policy.window)
            .order_by(LoginAttemptRow.at)
        )
        .scalars()
        .all()
    )
    if len(times) < limit:
        return 0
    # The count falls below the limit when this failure leaves the window.
    frees_at = times[len(times) - limit] + policy.window
    return max(1, math.ceil((frees_at - now).total_seconds()))


def check(
    session: Session,
    name: str,
    ip: str | None,
    *,
    now: datetime | None = None,
    policy: RateLimitPolicy = DEFAULT_POLICY,
) -> None:
    """Raise :class:`RateLimited` (with ``retry_after`` seconds) if this name or address must wait."""
    now = now or utcnow()
    for key, limit, what in _keys(name, ip, policy):
        wait = retry_after(session, key, limit, now=now, policy=policy)
        if wait:
            minutes = math.ceil(wait / 60)
            raise RateLimited(
                f"too many failed sign-ins {what}: try again in {minutes} minute{'s' * (minutes != 1)}",
                wait,
            )


def record_failure(
    session: Session,
    name: str,
    ip: str | None,
    *,
    now: datetime | None = None,
    policy: RateLimitPolicy = DEFAULT_POLICY,
) -> None:
    """Count one failed sign-in against the name and the address; forget failures older than the window."""
    now = now or utcnow()
    session.execute(delete(LoginAttemptRow).where(LoginAttemptRow.at <= now - policy.window))
    for key, _limit, _what in _keys(name, ip, policy):
        session.add(LoginAttemptRow(key=key, at=now))
    session.flush()


def reset(session: Session, name: str) -> None:
    """Forget the name's failures (after a successful sign-in)."""
    session.execute(delete(LoginAttemptRow).where(LoginAttemptRow.key == name_key(name)))
