"""When rules are active: named weekly schedules (days and hour ranges, local time)."""

from __future__ import annotations

import re
from datetime import time as dtime
from typing import Literal

from pydantic import Field, field_validator

from camsight.config.base import StrictModel

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class ScheduleConfig(StrictModel):
    """When a rule is active: days of the week and hour ranges (local time).

    ``hours: ["18:00-06:00"]`` runs past midnight; an empty list means all day.
    """

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: list(DAYS)
    )
    hours: list[str] = Field(default_factory=list)

    @field_validator("hours")
    @classmethod
    def _ranges(cls, hours: list[str]) -> list[str]:
        for text in hours:
            m = _HOURS.match(text)
            if not m:
                raise ValueError(f"'{text}' is not an hour range like 18:00-06:00")
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
                raise ValueError(f"'{text}' is not an hour range like 18:00-06:00")
            if (h1, m1) == (h2, m2):
                raise ValueError(f"'{text}' is an empty range")
        return hours

    def ranges(self) -> list[tuple[dtime, dtime | None]]:
        """Hour ranges as (start, end) times; an end of 24:00 is None."""
        out = []
        for text in self.hours:
            m = _HOURS.match(text)
            assert m is not None
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            start = dtime(h1 % 24, m1)
            end = None if h2 == 24 else dtime(h2, m2)
            out.append((start, end))
        return out
