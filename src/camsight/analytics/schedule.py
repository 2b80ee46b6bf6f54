"""Whether a rule's schedule covers a moment."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from camsight.config import DAYS, ScheduleConfig


class Schedule:
    """Days and hour ranges in a time zone (None: this machine's local zone).

    A range past midnight (``22:00-06:00``) belongs to the day it starts on:
    Monday 22:00-06:00 covers Tuesday 03:00.

    >>> from datetime import UTC
    >>> s = Schedule(ScheduleConfig(days=["mon"], hours=["22:00-06:00"]), "UTC")
    >>> tuesday = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    >>> s.covers(tuesday), s.covers(tuesday.replace(hour=12))
    (True, False)
    """

    def __init__(self, config: ScheduleConfig, timezone: str | None = None) -> None:
        self.days = {DAYS.index(d) for d in config.days}
        self.ranges = config.ranges()
        self.zone = ZoneInfo(timezone) if timezone else None

    def covers(self, at: datetime) -> bool:
        local = at.astimezone(self.zone) if self.zone else at.astimezone()
        day, now = local.weekday(), local.time()
        if not self.ranges:
            return day in self.days
        for start, end in self.ranges:
            stop = end or time.max
            if start < stop:
                if day in self.days and start <= now < stop:
                    return True
            else:  # past midnight: the evening part is today's, the morning part yesterday's
                if day in self.days and now >= start:
                    return True
                if (day - 1) % 7 in self.days and now < stop:
                    return True
        return False
