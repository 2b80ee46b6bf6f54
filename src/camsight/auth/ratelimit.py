"""Failed sign-ins per user name at one address and per address, with growing delays.

Failures are rows in ``login_attempts``, so a restart does not reset the
count. They are counted for the name *at the address* it was tried from
(``user:<name>|<address>``) and for the address alone (``ip:<address>``);
failures older than the window (15 minutes) are forgotten. Up to the limit
(5 per name at one address, 20 per address) every try is allowed; from
then on each try waits a delay that starts at 30 seconds and doubles with
every further failure, up to 15 minutes.

There is deliberately no count per name alone: then anyone could lock the
admin out by typing wrong passwords for ``admin`` from anywhere. A stranger's
failures delay only the stranger's address; the admin signing in from their
own address is not held up. A successful sign-in clears that name's
failures at that address (not the address's: one address guessing many
names stays limited). The password change (``POST /auth/password``) counts
a wrong current password here too, so a session cannot guess without limit.
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
    """How many failures are free and how long a try then waits."""

    window: timedelta = timedelta(minutes=15)
    """Failures older than this are forgotten."""
    per_name: int = 5
    """Failures for one user name from one address before its tries must wait."""
    per_ip: int = 20
    """Failures from one address, whatever the names, before its tries must wait."""
    first_delay: timedelta = timedelta(seconds=30)
    """The wait once a limit is reached; it doubles with each further failure."""
    max_delay: timedelta = timedelta(minutes=15)
    """The longest wait."""


DEFAULT_POLICY = RateLimitPolicy()


def _name(name: str) -> str:
    return name.strip().lower()[:128]


def name_key(name: str, ip: str | None = None) -> str:
    """The key counting ``name``'s failures at address ``ip`` (fits the column's 160 characters).

    >>> name_key(" Admin ", "192.0.2.7"), name_key("admin")
    ('user:admin|192.0.2.7', 'name:admin')
    """
    if not ip:
        return "name:" + _name(name)
    # A stored name has at most 64 characters; a longer typed one needs no more to be told apart.
    return f"user:{_name(name)[:89]}|{ip.strip()[:64]}"


def ip_key(ip: str) -> str:
    """The key counting every failure from address ``ip``."""
    return "ip:" + ip.strip()[:64]


def _keys(name: str, ip: str | None, policy: RateLimitPolicy) -> list[tuple[str, int, str]]:
    what = "for this user name from this address" if ip else "for this user name"
    keys = [(name_key(name, ip), policy.per_name, what)]
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
    """Seconds until ``key`` may try again: 0 if it may now.

    Below ``limit`` failures in the window: 0. At ``limit`` and above, the
    last failure plus a delay that doubles with each failure past the limit,
    or sooner if enough failures leave the window to go below the limit.
    """
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
    over = min(len(times) - limit, 32)  # 2**32 delays are far past any max_delay
    delay = min(policy.first_delay * 2**over, policy.max_delay)
    # The count falls below the limit when this failure leaves the window.
    frees_at = min(times[-1] + delay, times[len(times) - limit] + policy.window)
    wait = (frees_at - now).total_seconds()
    return max(1, math.ceil(wait)) if wait > 0 else 0


def _in_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' * (seconds != 1)}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' * (minutes != 1)}"


def check(
    session: Session,
    name: str,
    ip: str | None,
    *,
    now: datetime | None = None,
    policy: RateLimitPolicy = DEFAULT_POLICY,
) -> None:
    """Raise :class:`RateLimited` (with ``retry_after`` seconds) if this name at this address, or the
    address, must wait."""
    now = now or utcnow()
    for key, limit, what in _keys(name, ip, policy):
        wait = retry_after(session, key, limit, now=now, policy=policy)
        if wait:
            raise RateLimited(f"too many failed sign-ins {what}: try again in {_in_words(wait)}", wait)


def record_failure(
    session: Session,
    name: str,
    ip: str | None,
    *,
    now: datetime | None = None,
    policy: RateLimitPolicy = DEFAULT_POLICY,
) -> None:
    """Count one failed sign-in against the name at the address and the address; forget failures
    older than the window."""
    now = now or utcnow()
    session.execute(delete(LoginAttemptRow).where(LoginAttemptRow.at <= now - policy.window))
    for key, _limit, _what in _keys(name, ip, policy):
        session.add(LoginAttemptRow(key=key, at=now))
    session.flush()


def reset(session: Session, name: str, ip: str | None = None) -> None:
    """Forget the name's failures at ``ip`` (after a successful sign-in from there)."""
    session.execute(delete(LoginAttemptRow).where(LoginAttemptRow.key == name_key(name, ip)))
