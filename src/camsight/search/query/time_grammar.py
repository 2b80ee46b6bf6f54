"""Stage 2 of the query parser: the time grammar.

:class:`TimeParser` reads time expressions out of the token list before any
other word is looked at ("yesterday after 6pm", "last 2 hours", "on monday",
"between 14:00 and 15:30"), in the local time of ``now``. Use it as::

    timing = TimeParser(tokens, now, camera_numbers).parse()
    timing.consumed          # token indexes that belong to a time expression
    timing.notes, timing.unknown
    since, until, time_of_day = timing.compose()

A day makes the bounds absolute (``since``/``until``); times of day with no
day become a daily window (``time_of_day``). The lexer skips the consumed
tokens, so "at 3pm" never reaches the vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from camsight.search.query.tokens import Token
from camsight.search.query_model import TimeOfDay

_NUMBER_WORDS = {w: i for i, w in enumerate("one two three four five six seven eight nine ten".split(), 1)}
_NUMBER_WORDS |= {"a": 1, "an": 1, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}
_NUMBER_WORDS |= {"eleven": 11, "twelve": 12, "sixty": 60, "ninety": 90, "few": 3, "several": 3, "couple": 2}
_UNITS: dict[str, timedelta] = {}
for _names, _delta in (
    (("s", "sec", "secs", "second", "seconds"), timedelta(seconds=1)),
    (("m", "min", "mins", "minute", "minutes"), timedelta(minutes=1)),
    (("h", "hr", "hrs", "hour", "hours"), timedelta(hours=1)),
    (("d", "day", "days"), timedelta(days=1)),
    (("w", "wk", "wks", "week", "weeks"), timedelta(weeks=1)),
    (("fortnight", "fortnights"), timedelta(weeks=2)),
    (("month", "months"), timedelta(days=30)),
    (("year", "years", "yr", "yrs"), timedelta(days=365)),
):
    for _n in _names:
        _UNITS[_n] = _delta

_WEEKDAYS = {d: i for i, d in enumerate("monday tuesday wednesday thursday friday saturday sunday".split())}
_WEEKDAYS |= {"tues": 1, "weds": 2, "thurs": 3}
_MONTHS = {
    m: i
    for i, m in enumerate(
        "january february march april may june july august september october november december".split(), 1
    )
}
_MONTHS |= {m[:3]: i for m, i in list(_MONTHS.items())} | {"sept": 9}
#: Named parts of the day (local time); ``end`` before ``start`` crosses midnight.
PERIODS: dict[str, tuple[time, time]] = {
    "morning": (time(6), time(12)),
    "afternoon": (time(12), time(18)),
    "evening": (time(18), time(0)),
    "night": (time(18), time(6)),
    "daytime": (time(6), time(18)),
    "lunchtime": (time(12), time(14)),
    "early morning": (time(4), time(8)),
    "late night": (time(22), time(4)),
}
_PERIOD_WORDS = {
    "morning": "morning",
    "mornings": "morning",
    "afternoon": "afternoon",
    "evening": "evening",
    "night": "night",
    "nighttime": "night",
    "night time": "night",
    "overnight": "night",
    "daytime": "daytime",
    "day time": "daytime",
    "lunchtime": "lunchtime",
    "lunch time": "lunchtime",
    "early morning": "early morning",
    "late night": "late night",
}
_AROUND = timedelta(minutes=30)


@dataclass
class TimeOfDayValue:
    value: time
    bare: bool  # a plain number ("after 6"): am or pm is a guess


class TimeParser:
    """Finds time expressions in the tokens, marks them consumed, and builds the bounds."""

    def __init__(
        self, tokens: list[Token], now: datetime, camera_numbers: frozenset[str] = frozenset()
    ) -> None:
        self.t = tokens
        self.camera_numbers = camera_numbers  # "at 2" is camera 2 when there is one
        self.now = now
        self.today = now.date()
        self.consumed: set[int] = set()
        self.days: list[tuple[date, date]] = []
        self.since_day = False  # "since monday": no upper bound from the day
        self.period: tuple[time, time] | None = None
        self.period_name = ""
        self.after: TimeOfDayValue | None = None
        self.before: TimeOfDayValue | None = None
        self.at: TimeOfDayValue | None = None  # "at 3pm": a window around it
        self.since_abs: list[datetime] = []
        self.notes: list[str] = []
        self.unknown: list[str] = []

    # token helpers
    def low(self, i: int) -> str:
        return self.t[i].low if 0 <= i < len(self.t) else ""

    def kind(self, i: int) -> str:
        return self.t[i].kind if 0 <= i < len(self.t) else ""

    def take(self, start: int, end: int) -> int:
        self.consumed.update(range(start, end))
        return end

    def words(self, start: int, end: int) -> str:
        return " ".join(tok.text for tok in self.t[start:end])

    def parse(self) -> TimeParser:
        """Read every time expression, left to right; returns ``self`` for chaining."""
        i = 0
        while i < len(self.t):
            j = self._match(i) if i not in self.consumed else i
            i = j if j > i else i + 1
        self._resolve_bare()
        return self

    def _match(self, i: int) -> int:
        for rule in (
            self._relative,
            self._ago,
            self._since_or_after_day,
            self._day_with_prefix,
            self._range,
            self._after_before,
            self._around,
            self._period,
        ):
            j = rule(i)
            if j > i:
                return j
        return i

    # -- values
    def _time_value(self, i: int, *, allow_bare: bool) -> tuple[TimeOfDayValue, int] | None:
        """A time of day starting at token ``i`` -> (value, index after it)."""
        tok = self.t[i] if 0 <= i < len(self.t) else None
        if tok is None:
            return None
        if tok.kind in ("clock", "ampm"):
            value = _parse_clock(tok.low)
            if value is None:
                self.notes.append(f"'{tok.text}' is not a time of day")
                self.unknown.append(tok.text)
                self.take(i, i + 1)
                return None
            j = i + 1
            if tok.kind == "clock" and self.low(j) in ("h", "hr", "hrs", "hours"):
                j += 1
            return TimeOfDayValue(value, bare=False), j
        if tok.low in ("noon", "midday"):
            return TimeOfDayValue(time(12), bare=False), i + 1
        if tok.low == "midnight":
            return TimeOfDayValue(time(0), bare=False), i + 1
        if tok.kind == "num":
            digits = tok.low
            nxt = self.low(i + 1)
            if len(digits) in (3, 4) and nxt in ("h", "hr", "hrs", "hours"):  # "1800 hrs"
                hour, minute = int(digits[:-2]), int(digits[-2:])
                if hour < 24 and minute < 60:
                    return TimeOfDayValue(time(hour, minute), bare=False), i + 2
                return None
            if len(digits) > 2:
                return None
            hour = int(digits)
            if nxt in ("o'clock", "oclock") and 1 <= hour <= 12:
                return TimeOfDayValue(time(hour % 24), bare=True), i + 2
            if nxt in ("h", "hr", "hrs") and hour < 24:
                return TimeOfDayValue(time(hour), bare=False), i + 2
            if allow_bare and hour < 24:
                return TimeOfDayValue(time(hour), bare=True), i + 1
        return None

    def _number(self, i: int) -> tuple[int, int] | None:
        """A count at ``i`` ("2", "two", "a", "a couple of") -> (value, index after it)."""
        low = self.low(i)
        if self.kind(i) == "num" and len(low) <= 6:
            return int(low), i + 1
        if low in ("a", "an") and self.low(i + 1) in ("few", "couple"):
            i += 1
            low = self.low(i)
        if low in _NUMBER_WORDS:
            j = i + 1
            if low == "couple" and self.low(j) == "of":
                j += 1
            if low in ("twenty", "thirty", "forty", "fifty") and self.low(j) in _NUMBER_WORDS:
                extra = _NUMBER_WORDS[self.low(j)]
                if extra < 10:
                    return _NUMBER_WORDS[low] + extra, j + 1
            return _NUMBER_WORDS[low], j
        return None

    def _duration(self, i: int) -> tuple[timedelta, int] | None:
        if self.low(i) == "half" and self.low(i + 1) in ("an", "a") and self.low(i + 2) == "hour":
            return timedelta(minutes=30), i + 3
        if self.low(i) == "half" and self.low(i + 1) == "hour":
            return timedelta(minutes=30), i + 2
        number = self._number(i)
        count, j = number if number else (1, i)
        unit = self.low(j)
        if unit not in _UNITS:
            return None
        if number is None and len(unit) <= 2:  # "last h" is no duration
            return None
        try:
            return _UNITS[unit] * count, j + 1
        except OverflowError:
            return None

    def _day(self, i: int) -> tuple[date, date, int, str] | None:
        """A day or calendar span at ``i`` -> (first day, day after the last, index after, period)."""
        low, nxt = self.low(i), self.low(i + 1)
        today = self.today
        one = timedelta(days=1)
        if low == "today":
            return today, today + one, i + 1, ""
        if low == "tonight":
            return today, today + one, i + 1, "night"
        if low == "yesterday":
            return today - one, today, i + 1, ""
        if low == "tomorrow":
            self.notes.append("'tomorrow' is in the future: no footage yet")
            return today + one, today + 2 * one, i + 1, ""
        if low == "day" and nxt == "before" and self.low(i + 2) == "yesterday":
            return today - 2 * one, today - one, i + 3, ""
        if low == "the" and nxt == "day" and self.low(i + 2) == "before" and self.low(i + 3) == "yesterday":
            return today - 2 * one, today - one, i + 4, ""
        if low == "last" and nxt in ("night", "nite"):
            return today - one, today, i + 2, "night"
        if low == "this" and _PERIOD_WORDS.get(nxt) in ("morning", "afternoon", "evening"):
            return today, today + one, i + 2, _PERIOD_WORDS[nxt]
        if low in ("this", "last") and nxt in ("week", "month", "weekend"):
            return (*self._calendar(low, nxt), i + 2, "")
        if low == "the" and nxt == "weekend":
            return (*self._calendar("this", "weekend"), i + 2, "")
        if low == "weekend":
            return (*self._calendar("this", "weekend"), i + 1, "")
        if low in ("last", "this", "past") and nxt in _WEEKDAYS:
            d = self._weekday(_WEEKDAYS[nxt], strictly_before=low in ("last", "past"))
            return d, d + one, i + 2, ""
        if low in _WEEKDAYS:
            d = self._weekday(_WEEKDAYS[low], strictly_before=False)
            return d, d + one, i + 1, ""
        tok = self.t[i] if 0 <= i < len(self.t) else None
        if tok is not None and tok.kind == "date":
            d = _parse_date(tok.low)
            if d is None:
                self.notes.append(f"'{tok.text}' is not a valid date")
                self.unknown.append(tok.text)
                self.take(i, i + 1)
                return None
            return d, d + one, i + 1, ""
        return self._named_date(i)

    def _named_date(self, i: int) -> tuple[date, date, int, str] | None:
        """ "20 november", "20th of nov 2026", "november 20", "nov 20th, 2026"."""
        day_no: int | None = None
        month: int | None = None
        j = i
        if self.kind(j) == "num" and len(self.low(j)) <= 2:
            day_no = int(self.low(j))
            j += 1
            if self.low(j) in ("st", "nd", "rd", "th"):
                j += 1
            if self.low(j) == "of":
                j += 1
            month = _MONTHS.get(self.low(j))
            if month is None:
                return None
            j += 1
        elif self.low(j) in _MONTHS and self.kind(j + 1) == "num" and len(self.low(j + 1)) <= 2:
            month = _MONTHS[self.low(j)]
            day_no = int(self.low(j + 1))
            j += 2
            if self.low(j) in ("st", "nd", "rd", "th"):
                j += 1
        else:
            return None
        if self.low(j) == "," and self.kind(j + 1) == "num" and len(self.low(j + 1)) == 4:
            j += 1
        year: int | None = None
        if self.kind(j) == "num" and len(self.low(j)) == 4:
            year = int(self.low(j))
            j += 1
        try:
            if year is None:
                d = date(self.today.year, month, day_no)
                if d > self.today:
                    d = date(self.today.year - 1, month, day_no)
            else:
                d = date(year, month, day_no)
        except ValueError:
            self.notes.append(f"'{self.words(i, j)}' is not a valid date")
            self.unknown.append(self.words(i, j))
            self.take(i, j)
            return None
        return d, d + timedelta(days=1), j, ""

    def _weekday(self, target: int, *, strictly_before: bool) -> date:
        delta = (self.today.weekday() - target) % 7
        if delta == 0 and strictly_before:
            delta = 7
        return self.today - timedelta(days=delta)

    def _calendar(self, which: str, span: str) -> tuple[date, date]:
        today = self.today
        one = timedelta(days=1)
        if span == "week":
            monday = today - timedelta(days=today.weekday())
            return (monday, today + one) if which == "this" else (monday - 7 * one, monday)
        if span == "month":
            first = today.replace(day=1)
            if which == "this":
                return first, today + one
            return (first - one).replace(day=1), first
        # weekend: Saturday and Sunday; "this" is the current or most recent one
        saturday = today - timedelta(days=(today.weekday() - 5) % 7)
        if which == "last" and today.weekday() >= 5:
            saturday -= 7 * one
        return saturday, min(saturday + 2 * one, today + one)

    # -- rules (each returns the index after its match, or ``i`` for no match)
    def _relative(self, i: int) -> int:
        """ "(in|within|over|during|for) (the) last|past|previous [N] unit"."""
        start = i
        if self.low(i) in ("in", "within", "over", "during", "for"):
            i += 1
        rolling = False
        if self.low(i) == "the":
            rolling = True
            i += 1
        if self.low(i) not in ("last", "past", "previous"):
            return start
        word = self.low(i)
        duration = self._duration(i + 1)
        if duration is None:
            return start
        delta, j = duration
        unit = self.low(j - 1)
        # "last week" / "last month" (no number, no "the") are calendar spans: see _day
        if word == "last" and not rolling and unit in ("week", "month") and j == i + 2:
            return start
        self._add_since(self.now, delta, self.words(start, j))
        return self.take(start, j)

    def _ago(self, i: int) -> int:
        """ "[since|from] N units ago"."""
        start = i
        if self.low(i) in ("since", "from"):
            i += 1
        duration = self._duration(i)
        if duration is None or self.low(duration[1]) != "ago":
            return start
        delta, j = duration
        self._add_since(self.now, delta, self.words(start, j + 1))
        return self.take(start, j + 1)

    def _add_since(self, now: datetime, delta: timedelta, words: str) -> None:
        """``now - delta``: whole days on the wall clock ("past 3 days": same time of day), hours elapsed."""
        try:
            if delta % timedelta(days=1):
                since = (now.astimezone(UTC) - delta).astimezone(now.tzinfo)
            else:
                since = now - delta
        except (OverflowError, ValueError):
            self.notes.append(f"'{words}' is too far back")
            return
        self.since_abs.append(since)

    def _since_or_after_day(self, i: int) -> int:
        """ "since yesterday", "since monday 9am", "since 6pm" (the most recent 18:00)."""
        if self.low(i) != "since":
            return i
        day = self._day(i + 1)
        if day is not None:
            first, _, j, period = day
            self.days.append((first, first + timedelta(days=1)))
            self.since_day = True
            if period:
                self._set_period(period)
            value = self._time_value(j + (self.low(j) == "at"), allow_bare=False)
            if value is not None:
                self.after = value[0]
                j = value[1]
            return self.take(i, j)
        value = self._time_value(i + 1, allow_bare=True)
        if value is None:
            return i
        tod, j = value
        if tod.bare:
            self.notes.append(_bare_note(self.words(i + 1, j), tod.value))
        moment = datetime.combine(self.today, tod.value, tzinfo=self.now.tzinfo)
        if moment > self.now:
            moment -= timedelta(days=1)
        self.since_abs.append(moment)
        return self.take(i, j)

    def _day_with_prefix(self, i: int) -> int:
        """ "yesterday", "on monday", "last night", "at the weekend", "on 2026-11-20"."""
        start = i
        if self.low(i) in ("on", "from", "during", "over", "at"):
            i += 1
        day = self._day(i)
        if day is None:
            return start
        first, end, j, period = day
        self.days.append((first, end))
        if period:
            self._set_period(period)
        return self.take(start, j)

    def _range(self, i: int) -> int:
        """ "between X and Y", "from X to Y", "X-Y", "X to Y", "X till Y"."""
        start = i
        prefix = self.low(i) if self.low(i) in ("between", "from") else ""
        if prefix:
            i += 1
        first = self._time_value(i, allow_bare=bool(prefix) or self._next_is_range(i))
        if first is None:
            return start
        a, j = first
        sep = self.low(j)
        ok_seps = {"-", "–", "—"} | ({"and"} if prefix == "between" else {"to", "till", "until", "til"})
        if prefix == "from":
            ok_seps.add("and")
        if sep not in ok_seps:
            return start
        second = self._time_value(j + 1, allow_bare=True)
        if second is None:
            return start
        b, k = second
        a, b = _complete_range(a, b)
        self.after, self.before = a, b
        return self.take(start, k)

    def _next_is_range(self, i: int) -> bool:
        """Whether a bare number at ``i`` starts a range like "2-3pm"."""
        if self.kind(i) != "num" or self.low(i + 1) not in ("-", "–", "—", "to", "till", "until"):
            return False
        return self.kind(i + 2) in ("ampm", "clock")

    def _after_before(self, i: int) -> int:
        low = self.low(i)
        if low in ("after", "past"):
            is_after = True
        elif low in ("before", "until", "till", "til", "by"):
            is_after = False
        elif low == "up" and self.low(i + 1) == "to":
            is_after = False
            i += 1
        else:
            return i
        start = i - 1 if low == "up" else i
        allow_bare = low not in ("past", "by")
        value = self._time_value(i + 1, allow_bare=allow_bare)
        if value is None:
            return start
        tod, j = value
        if tod.value == time(0) and not tod.bare:
            if is_after:  # "after midnight": the small hours
                self.after = tod
                if self.before is None:
                    self.before = TimeOfDayValue(time(6), bare=False)
                self.notes.append("'after midnight' read as 00:00-06:00")
            else:
                self.notes.append("'before midnight' is the whole day")
            return self.take(start, j)
        if is_after:
            self.after = tod
        else:
            self.before = tod
        return self.take(start, j)

    def _around(self, i: int) -> int:
        """ "at 3pm", "around 15:00", or a clock time on its own: a one-hour window."""
        start = i
        prep = self.low(i) in ("at", "around", "about", "approximately", "approx", "circa", "~")
        if prep:
            i += 1
            if self.low(i) in ("around", "about"):
                i += 1
        value = self._time_value(i, allow_bare=prep and self.low(start) != "about")
        if value is None:
            return start
        tod, j = value
        if tod.bare and (not prep or self.low(i) in self.camera_numbers):
            return start  # "at 2" is camera 2 when there is one
        self.at = tod
        return self.take(start, j)

    def _period(self, i: int) -> int:
        """ "in the morning", "at night", "during the day", "overnight", "evening"."""
        start = i
        if self.low(i) in ("in", "at", "during", "by", "overnight"):
            if self.low(i) == "overnight":
                self._set_period("night")
                return self.take(i, i + 1)
            i += 1
        if self.low(i) == "the":
            i += 1
        if self.low(start) == "during" and self.low(i) == "day":
            self._set_period("daytime")
            return self.take(start, i + 1)
        two = f"{self.low(i)} {self.low(i + 1)}"
        if two in _PERIOD_WORDS:
            self._set_period(_PERIOD_WORDS[two])
            return self.take(start, i + 2)
        if self.low(i) in _PERIOD_WORDS:
            self._set_period(_PERIOD_WORDS[self.low(i)])
            return self.take(start, i + 1)
        return start

    def _set_period(self, name: str) -> None:
        self.period = PERIODS[name]
        self.period_name = name

    def _resolve_bare(self) -> None:
        """Read "after 8" as 20:00 in the evening or at night; otherwise keep it and say so."""
        for attr in ("after", "before", "at"):
            value: TimeOfDayValue | None = getattr(self, attr)
            if value is None or not value.bare:
                continue
            hour = value.value.hour
            evening = self.period_name in ("afternoon", "evening") or (
                self.period_name == "night" and 6 <= hour <= 11
            )
            if evening and 1 <= hour <= 11:
                setattr(self, attr, TimeOfDayValue(time(hour + 12, value.value.minute), bare=False))
            else:
                self.notes.append(_bare_note(str(hour), value.value))

    # -- result
    def compose(self) -> tuple[datetime | None, datetime | None, TimeOfDay | None]:
        """The parsed expressions as ``(since, until, time_of_day)``; call after :meth:`parse`."""
        tz = self.now.tzinfo
        if self.at is not None:
            moment = datetime.combine(self.today, self.at.value)
            self.after = TimeOfDayValue((moment - _AROUND).time(), bare=False)
            self.before = TimeOfDayValue((moment + _AROUND).time(), bare=False)
        start = self.after.value if self.after else self.period[0] if self.period else None
        end = self.before.value if self.before else self.period[1] if self.period else None
        window: TimeOfDay | None = None
        if start is not None or end is not None:
            s, e = start or time(0), end or time(0)
            window = TimeOfDay(s, e) if s != e else None
        since_list = list(self.since_abs)
        until_list: list[datetime] = []
        time_of_day: TimeOfDay | None = None
        if self.days:
            first = min(d for d, _ in self.days)
            last = max(e for _, e in self.days)
            if (last - first).days == 1 and window is not None:
                since = datetime.combine(first, window.start, tzinfo=tz)
                end_day = first if window.start < window.end else first + timedelta(days=1)
                until_list.append(datetime.combine(end_day, window.end, tzinfo=tz))
            else:
                since = datetime.combine(first, time(0), tzinfo=tz)
                until_list.append(datetime.combine(last, time(0), tzinfo=tz))
                time_of_day = window
            since_list.append(since)
            if self.since_day:
                until_list = []
        else:
            time_of_day = window
        since_out = max(since_list) if since_list else None
        until_out = min(until_list) if until_list else None
        if until_out is not None and until_out > self.now:
            until_out = None  # "today", "this morning": up to now
        return since_out, until_out, time_of_day


def _complete_range(a: TimeOfDayValue, b: TimeOfDayValue) -> tuple[TimeOfDayValue, TimeOfDayValue]:
    """Share am/pm across a range: "2-3pm" is 14:00-15:00, "from 2pm to 4" is 14:00-16:00."""
    if a.bare and not b.bare:
        hour, minute = a.value.hour, a.value.minute
        if b.value.hour >= 12 > hour and time(hour + 12, minute) < b.value:
            hour += 12
        a = TimeOfDayValue(time(hour, minute), bare=False)
    elif b.bare and not a.bare:
        hour, minute = b.value.hour, b.value.minute
        if a.value.hour >= 12 > hour and time(hour + 12, minute) > a.value:
            hour += 12
        b = TimeOfDayValue(time(hour, minute), bare=False)
    return a, b


def _bare_note(words: str, value: time) -> str:
    return f"'{words}' read as {value:%H:%M}; write 6pm or 18:00 to be exact"


def _parse_clock(text: str) -> time | None:
    m = re.fullmatch(r"(\d{1,2})(?:[:.h](\d{2}))?\s*(?:([ap])\.?\s*m\.?)?", text)
    if not m:
        return None
    hour = int(m.group(1))
    minute = int(m.group(2) or 0)
    half = m.group(3)
    if minute > 59:
        return None
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "p" else 0)
    elif hour == 24 and minute == 0:
        hour = 0
    if hour > 23:
        return None
    return time(hour, minute)


def _parse_date(text: str) -> date | None:
    try:
        if "-" in text:
            y, m, d = (int(p) for p in text.split("-"))
            return date(y, m, d)
        a, b, c = (int(p) for p in text.split("/"))
        year = c + 2000 if c < 100 else c
        if a > 12 >= b:  # day/month/year (the European order is the default)
            return date(year, b, a)
        if b > 12 >= a:  # month/day/year when the day cannot be a month
            return date(year, a, b)
        return date(year, b, a)
    except ValueError:
        return None
