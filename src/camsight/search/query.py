"""Free text -> :class:`~camsight.search.query_model.ParsedQuery`.

A small hand-written tokenizer and rule set, no NLP dependency, so every
reading can be explained and tested:

1. **Tokens**: words, numbers, clock times ("18:00", "6pm"), dates
   ("2026-11-20", "20/11/2026"), punctuation. Hyphens inside words split
   them ("t-shirt" -> "t shirt"); apostrophe-s is dropped.
2. **Time** is read first (local time of ``now``): "yesterday after 6pm",
   "last 2 hours", "on monday", "this morning", "between 14:00 and 15:30".
   A day makes the bounds absolute (``since``/``until``); times of day with
   no day become a daily window (``time_of_day``).
3. **Cameras**: a known camera name, bare or after "at"/"on"/"in"/"camera".
4. **Phrases** (longest match first) become items: object classes
   ("woman", "van"), colours (any of ~1,100 names, see
   :mod:`camsight.search.colour_words`), garments with their body region,
   carried items, posture, motion, heading, negation, conjunctions.
5. **Rules** combine items: colour(s) + garment -> region colour terms,
   "in black" -> upper and lower black, "white van" -> vehicle body colour,
   "without a backpack" -> a negated term, "backpack or suitcase" -> one
   term with two alternatives.

Sex, age, ethnicity, body and face words are accepted and listed as
*not analysed* (DESIGN.md); they never change which tracks match. A colour
directly before a person word ("a white man") is read as skin colour, so it
is not analysed either; "a man in white" is clothing.

Readings chosen where the words are ambiguous (all covered by tests):

* "van", "truck", "lorry" -> class ``truck`` only (no extra term); "vehicle"
  -> every vehicle class; "minivan" -> car or truck; "cyclist" -> bicycle.
* Clothing, carried items and posture imply ``person`` when no class is named.
* "bag" -> handbag or backpack or suitcase (one term); "shoulder bag",
  "tote", "purse" -> handbag. The colour of a carried item is not analysed
  ("white (bag colour)"), nor of shoes, scarves, glasses, hair.
* "jeans" alone -> lower: blue; "hi-vis" alone -> upper: yellow or orange;
  "hat" alone -> headwear: worn; another garment with no colour is listed as
  not analysed (its type is not stored).
* "in black", "wearing black", "dressed all in black" -> upper: black AND
  lower: black; a colour with no garment and no "in" ("red") -> a single term
  "upper or lower (or headwear / body) is red", regions chosen by the classes.
* "red and navy jacket" -> two terms; "red or blue jacket" -> one term with
  two alternatives; "backpack or suitcase" likewise.
* Negation ("without", "no", "not", "with no", "not wearing") applies to the
  next item and carries over "or"/"nor"/"and" to items of the same kind
  ("without a hat or a backpack": neither); excluding a class ("no cars")
  cannot be expressed and is explained in ``notes``.
* "left"/"right" are headings after a movement word ("going left") or as
  "to the left"; towards the camera is heading ``down``, away is ``up``.
* Time: "monday" is the most recent Monday, today included; "last monday"
  is before today. "last week"/"last month" are calendar spans; "the last
  week", "past week", "last 7 days" are rolling. "at 3pm"/"18:00" is a
  window of +-30 minutes. "after 6" (no am/pm) is read as 06:00 and said so in
  ``notes``, except in the evening ("tonight after 8" is 20:00). An upper
  bound still in the future is dropped ("today", "this afternoon").
  "20/11/2026" is day/month/year unless only month/day is possible.

Example::

    >>> parse_query("woman wearing a red hat").describe()
    'person · headwear: red · not analysed: woman'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from camsight.analytics.vocabulary import VEHICLE_LABELS
from camsight.errors import CamsightError
from camsight.search.colour_words import basic_colours, is_common_colour
from camsight.search.query_model import ParsedQuery, Term, TimeOfDay

#: Longest query accepted, in characters.
MAX_QUERY_CHARS = 500


class QueryError(CamsightError):
    """A search query that cannot be parsed at all (empty, or too long)."""


def parse_query(
    text: str,
    *,
    now: datetime | None = None,
    cameras: Sequence[str] = (),
) -> ParsedQuery:
    """Parse a free-text search query into facets, classes, cameras and a time range.

    ``now`` (default: the current local time) anchors "yesterday" and "last 2
    hours"; a naive ``now`` is taken as local time. ``cameras`` are the known
    camera names, recognised bare or after "at", "on", "in", "camera".
    Words not understood are returned in ``unknown``; the parse never fails
    except for an empty or over-long query (:class:`QueryError`).

    >>> q = parse_query("white van yesterday after 18:00", now=datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    >>> q.classes, [t.facets for t in q.terms]
    (('truck',), [('body:white',)])
    >>> q.since.isoformat(), q.until.isoformat()
    ('2026-11-19T18:00:00+00:00', '2026-11-20T00:00:00+00:00')
    >>> parse_query("person in a light blue jacket at lobby", cameras=["lobby"]).describe()
    'person · upper: blue · camera: lobby'
    """
    if not isinstance(text, str):
        raise QueryError(f"a search query must be text, not {type(text).__name__}")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"search query is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}: "
            "describe what to look for in a few words"
        )
    cleaned = _clean(text)
    if not cleaned.strip():
        raise QueryError("empty search query: type what to look for, e.g. 'person in a red jacket'")
    now = _aware_now(now)
    tokens = _tokenize(cleaned)
    numbered = frozenset(c.strip() for c in cameras if isinstance(c, str) and c.strip().isdigit())
    timing = _TimeParser(tokens, now, numbered).parse()
    items = _Lexer(tokens, timing.consumed, cameras).lex()
    builder = _Builder()
    builder.run(items)
    since, until, time_of_day = timing.compose()
    classes, terms = builder.finish()
    return ParsedQuery(
        text=text.strip(),
        classes=classes,
        terms=terms,
        cameras=tuple(_dedupe(builder.cameras)),
        since=since,
        until=until,
        time_of_day=time_of_day,
        not_analysed=tuple(_dedupe(builder.not_analysed)),
        unknown=tuple(_dedupe(builder.unknown + timing.unknown)),
        notes=tuple(_dedupe(timing.notes + builder.notes)),
    )


# --- tokens -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # word num date clock ampm dash punct symbol
    text: str  # as typed (after Unicode normalisation)
    low: str  # normalised lower-case form used for matching


_TOKEN_RE = re.compile(
    r"(?P<date>\d{4}-\d{1,2}-\d{1,2}(?!\d)|\d{1,2}/\d{1,2}/\d{2,4}(?!\d))"
    r"|(?P<ampm>\d{1,2}(?:[:.]\d{2})?\s?[ap]\.?\s?m\b\.?)"
    r"|(?P<clock>\d{1,2}[:.]\d{2}(?!\d)|\d{1,2}h\d{2}\b)"
    r"|(?P<num>\d+)"
    r"|(?P<word>[^\W\d_]+(?:'[^\W\d_]+)*)"
    r"|(?P<dash>[-‐‑‒–—])"
    r"|(?P<other>[^\s\w]|_)",
    re.IGNORECASE,
)


def _clean(text: str) -> str:
    """Unicode-normalise, turn control/format characters into spaces, expand w/ and w/o."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    text = text.replace("’", "'").replace("‘", "'")
    text = re.sub(r"(?i)\bw/o\b", " without ", text)
    return re.sub(r"(?i)\bw/(?=\s|$)", " with ", text)


def _normal_word(word: str) -> str:
    low = word.lower()
    if low.endswith("'s"):
        low = low[:-2]
    low = low.rstrip("'")
    return {"gray": "grey", "grayish": "greyish", "greys": "grey"}.get(low, low)


def _tokenize(text: str) -> list[_Token]:
    raw: list[_Token] = []
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup or "other"
        value = m.group()
        if kind == "word":
            raw.append(_Token("word", value, _normal_word(value)))
        elif kind == "other":
            cat = unicodedata.category(value)
            raw.append(_Token("punct" if cat[0] == "P" else "symbol", value, value))
        else:
            raw.append(_Token(kind, value, value.lower().replace(" ", "")))
    # A dash between two words joins nothing: "t-shirt" is "t shirt", "light-blue" is "light blue".
    tokens: list[_Token] = []
    for i, tok in enumerate(raw):
        if (
            tok.kind == "dash"
            and 0 < i < len(raw) - 1
            and raw[i - 1].kind == "word"
            and raw[i + 1].kind == "word"
        ):
            continue
        tokens.append(tok)
    return tokens


def _dedupe(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for v in values:
        key = v.casefold()
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _aware_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now().astimezone()
    if now.tzinfo is None or now.utcoffset() is None:
        return now.astimezone()
    return now


# --- time ---------------------------------------------------------------------------------------

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
class _TimeOfDayValue:
    value: time
    bare: bool  # a plain number ("after 6"): am or pm is a guess


class _TimeParser:
    """Finds time expressions in the tokens, marks them consumed, and builds the bounds."""

    def __init__(
        self, tokens: list[_Token], now: datetime, camera_numbers: frozenset[str] = frozenset()
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
        self.after: _TimeOfDayValue | None = None
        self.before: _TimeOfDayValue | None = None
        self.at: _TimeOfDayValue | None = None  # "at 3pm": a window around it
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

    def parse(self) -> _TimeParser:
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
    def _time_value(self, i: int, *, allow_bare: bool) -> tuple[_TimeOfDayValue, int] | None:
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
            return _TimeOfDayValue(value, bare=False), j
        if tok.low in ("noon", "midday"):
            return _TimeOfDayValue(time(12), bare=False), i + 1
        if tok.low == "midnight":
            return _TimeOfDayValue(time(0), bare=False), i + 1
        if tok.kind == "num":
            digits = tok.low
            nxt = self.low(i + 1)
            if len(digits) in (3, 4) and nxt in ("h", "hr", "hrs", "hours"):  # "1800 hrs"
                hour, minute = int(digits[:-2]), int(digits[-2:])
                if hour < 24 and minute < 60:
                    return _TimeOfDayValue(time(hour, minute), bare=False), i + 2
                return None
            if len(digits) > 2:
                return None
            hour = int(digits)
            if nxt in ("o'clock", "oclock") and 1 <= hour <= 12:
                return _TimeOfDayValue(time(hour % 24), bare=True), i + 2
            if nxt in ("h", "hr", "hrs") and hour < 24:
                return _TimeOfDayValue(time(hour), bare=False), i + 2
            if allow_bare and hour < 24:
                return _TimeOfDayValue(time(hour), bare=True), i + 1
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
                    self.before = _TimeOfDayValue(time(6), bare=False)
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
            value: _TimeOfDayValue | None = getattr(self, attr)
            if value is None or not value.bare:
                continue
            hour = value.value.hour
            evening = self.period_name in ("afternoon", "evening") or (
                self.period_name == "night" and 6 <= hour <= 11
            )
            if evening and 1 <= hour <= 11:
                setattr(self, attr, _TimeOfDayValue(time(hour + 12, value.value.minute), bare=False))
            else:
                self.notes.append(_bare_note(str(hour), value.value))

    # -- result
    def compose(self) -> tuple[datetime | None, datetime | None, TimeOfDay | None]:
        tz = self.now.tzinfo
        if self.at is not None:
            moment = datetime.combine(self.today, self.at.value)
            self.after = _TimeOfDayValue((moment - _AROUND).time(), bare=False)
            self.before = _TimeOfDayValue((moment + _AROUND).time(), bare=False)
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


def _complete_range(a: _TimeOfDayValue, b: _TimeOfDayValue) -> tuple[_TimeOfDayValue, _TimeOfDayValue]:
    """Share am/pm across a range: "2-3pm" is 14:00-15:00, "from 2pm to 4" is 14:00-16:00."""
    if a.bare and not b.bare:
        hour, minute = a.value.hour, a.value.minute
        if b.value.hour >= 12 > hour and time(hour + 12, minute) < b.value:
            hour += 12
        a = _TimeOfDayValue(time(hour, minute), bare=False)
    elif b.bare and not a.bare:
        hour, minute = b.value.hour, b.value.minute
        if a.value.hour >= 12 > hour and time(hour + 12, minute) > a.value:
            hour += 12
        b = _TimeOfDayValue(time(hour, minute), bare=False)
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


# --- vocabulary ---------------------------------------------------------------------------------

# Item kinds.
CLASS = "class"
COLOUR = "colour"
GARMENT = "garment"
CARRIED = "carried"
ACCESSORY = "accessory"
BODY = "body"  # hair, skin, beard: a colour before it is not analysed
FACET = "facet"
DIRECTION = "direction"
MOVE = "move"
NEG = "neg"
NEG_WEAR = "neg_wear"
AND = "and"
OR = "or"
COMMA = "comma"
CLOTHING = "clothing"
WITH = "with"
BOUNDARY = "boundary"
STOP = "stop"
NOT_ANALYSED = "not_analysed"
MODIFIER = "modifier"
COLOUR_WORD = "colour_word"
CAMERA = "camera"
CAMERA_WORD = "camera_word"
UNKNOWN = "unknown"
NOTE = "note"


@dataclass(frozen=True)
class _Entry:
    kind: str
    labels: tuple[str, ...] = ()  # CLASS: detector labels
    facets: tuple[tuple[str, ...], ...] = ()  # one Term per inner tuple (alternatives)
    regions: tuple[str, ...] = ()  # GARMENT: body regions
    default: tuple[str, ...] = ()  # GARMENT: colours implied when none is given (jeans: blue)
    na: bool = False  # CLASS: the word is also listed as not analysed ("woman")
    human: bool = False  # CLASS: a person word, so "white man" is skin colour
    generic: bool = False  # GARMENT: "clothes", "outfit" (no type to report)
    colours: tuple[str, ...] = ()  # COLOUR entries of the vocabulary ("dark")
    strong: bool = True
    value: str = ""  # DIRECTION: heading value


_LEXICON: dict[str, _Entry] = {}


def _add(entry: _Entry, *phrases: str) -> None:
    """Add phrases to the vocabulary; each argument is a comma-separated list of phrases."""
    for group in phrases:
        for phrase in group.split(","):
            key = " ".join(phrase.split())
            if key:
                _LEXICON[key] = entry


def _person(*phrases: str, na: bool = False, terms: tuple[tuple[str, ...], ...] = ()) -> None:
    _add(_Entry(CLASS, labels=("person",), na=na, human=True, facets=terms), *phrases)


# People. Words that carry sex or age are also listed as not analysed.
_person(
    "person, persons, people, someone, somebody, anyone, anybody, individual, individuals, human, humans",
    "pedestrian, pedestrians, passerby, passer by, passers by, visitor, visitors, worker, workers, staff",
    "employee, employees, customer, customers, shopper, shoppers, courier, couriers, guard, guards",
    "security guard, officer, police officer, cleaner, student, students, crowd, group of people",
)
_person(
    "man, men, woman, women, guy, guys, lady, ladies, gentleman, gentlemen, gent, gents, dude, bloke",
    "blokes, chap, lad, lads, lass, gal, girl, girls, boy, boys, kid, kids, child, children, teen, teens",
    "teenager, teenagers, youth, youths, youngster, youngsters, toddler, toddlers, baby, babies, infant",
    "adult, adults, pensioner, pensioners, male, males, female, females, mother, father, mum, mom, dad",
    "grandmother, grandfather, grandma, grandpa, granny, son, daughter, wife, husband, boyfriend",
    "girlfriend, schoolboy, schoolgirl, schoolchildren",
    na=True,
)
_person("jogger, joggers, runner, runners", terms=(("motion:running",),))
_person("walker, walkers", terms=(("motion:walking",),))

# Vehicles (COCO has no van: vans and lorries are "truck").
_add(_Entry(CLASS, labels=VEHICLE_LABELS), "vehicle, vehicles, motor vehicle, traffic")
_add(
    _Entry(CLASS, labels=("car",)),
    "car, cars, sedan, sedans, saloon, hatchback, suv, suvs, jeep, taxi, taxis, cab, cabs, automobile",
    "coupe, estate car, police car, convertible, minicab",
)
_add(
    _Entry(CLASS, labels=("truck",)),
    "van, vans, truck, trucks, lorry, lorries, pickup, pickups, hgv, tanker, pick up, pick up truck",
    "pickup truck, box truck, camper van, campervan, delivery van, transit van",
)
_add(_Entry(CLASS, labels=("car", "truck")), "minivan, minivans, mpv, people carrier")
_add(_Entry(CLASS, labels=("bus",)), "bus, buses, coach, coaches, minibus, minibuses")
_add(
    _Entry(CLASS, labels=("motorcycle",)),
    "motorcycle, motorcycles, motorbike, motorbikes, motorcyclist, motorcyclists, moped, mopeds",
    "scooter, scooters, biker, bikers, motor bike, motor cycle",
)
_add(
    _Entry(CLASS, labels=("bicycle",)),
    "bicycle, bicycles, bike, bikes, cyclist, cyclists, bicyclist, pushbike, push bike, e bike, ebike",
)

# Garments -> body regions ("dress" covers both). Plurals are found by _lookup.
_add(
    _Entry(GARMENT, regions=("upper",)),
    "jacket, coat, shirt, tshirt, t shirt, tee, tee shirt, top, jumper, sweater, hoodie, hoody, blouse",
    "vest, jersey, sweatshirt, cardigan, parka, blazer, anorak, fleece, gilet, waistcoat, polo",
    "polo shirt, raincoat, rain coat, overcoat, trench coat, windbreaker, poncho, tunic, pullover",
    "cagoule, bomber, tank top, body warmer, upper body, torso",
)
_add(
    _Entry(GARMENT, regions=("upper",), default=("yellow", "orange")),
    "hi vis, high vis, hi viz, high viz, hivis, hiviz, high visibility, hi vis jacket, hi vis vest",
    "high vis jacket, high vis vest, high visibility jacket, high visibility vest, safety vest",
    "reflective vest, reflective jacket",
)
_add(
    _Entry(GARMENT, regions=("lower",)),
    "trousers, pants, shorts, skirt, leggings, chinos, slacks, bottoms, tights, sweatpants, cargos",
    "tracksuit bottoms, track pants, sweat pants, lower body, legs",
)
_add(_Entry(GARMENT, regions=("lower",), default=("blue",)), "jeans, denims")
_add(_Entry(GARMENT, regions=("lower",), default=("green", "brown")), "khakis")
_add(
    _Entry(GARMENT, regions=("upper", "lower")),
    "dress, dresses, gown, robe, abaya, suit, tracksuit, uniform, overalls, dungarees, jumpsuit",
    "onesie, coveralls, boiler suit",
)
_add(_Entry(GARMENT, regions=("upper", "lower"), generic=True), "clothes, clothing, outfit, attire, gear")
_add(
    _Entry(GARMENT, regions=("headwear",)),
    "hat, cap, beanie, hood, helmet, headscarf, headscarves, head scarf, turban, hijab, bandana, beret",
    "balaclava, headwear, headgear, kippah, yarmulke, bonnet, fedora, baseball cap, bobble hat",
    "bucket hat, hard hat, cowboy hat, woolly hat, top hat, sun hat, flat cap, hood up",
)

# Carried items. A plain "bag" could be any of three.
_add(
    _Entry(CARRIED, facets=(("carried:backpack",),)),
    "backpack, rucksack, knapsack, daypack, schoolbag, back pack, school bag",
)
_add(
    _Entry(CARRIED, facets=(("carried:handbag",),)),
    "handbag, hand bag, purse, tote, tote bag, satchel, clutch, briefcase, shoulder bag, messenger bag",
    "shopping bag, carrier bag, laptop bag, bum bag",
)
_add(
    _Entry(CARRIED, facets=(("carried:handbag", "carried:backpack", "carried:suitcase"),)),
    "bag, holdall, duffel bag, duffle bag, sports bag, gym bag",
)
_add(
    _Entry(CARRIED, facets=(("carried:suitcase",),)),
    "suitcase, luggage, trolley case, roller bag, rolling bag, rolling suitcase, wheeled suitcase",
    "wheelie bag, wheelie case, trolley bag, carry on, cabin bag",
)
_add(_Entry(CARRIED, facets=(("carried:umbrella",),)), "umbrella, brolly, parasol")

# Accessories and body parts: understood, not analysed (nor is a colour before them).
_add(
    _Entry(ACCESSORY),
    "shoes, shoe, boots, boot, trainers, sneakers, sandals, heels, socks, gloves, scarf, scarves, tie",
    "glasses, sunglasses, spectacles, mask, belt, jewellery, jewelry, necklace, earrings, lanyard",
    "headphones, face mask, face covering, walking stick, stick, cane, crutches, walker frame",
)
_add(_Entry(BODY), "hair, haired, skin, skinned, complexion, eyes, eyed, beard, bearded, moustache, mustache")

# Posture and motion.
_add(
    _Entry(FACET, facets=(("posture:lying",),)),
    "lying, laying, lies, fallen, fell, collapsed, prone, lying down, laying down, lying flat",
    "lying on the ground, lying on the floor, laying on the ground, laying on the floor",
    "on the ground, on the floor, fallen down, fallen over, fell down, fell over, has fallen, a fall",
)
_add(
    _Entry(FACET, facets=(("posture:sitting",),)),
    "sitting, seated, sat, sits, sitting down, sat down, crouching, kneeling, squatting",
)
_add(_Entry(FACET, facets=(("posture:standing",),)), "standing, stood, stands, standing up, upright")
_add(
    _Entry(FACET, facets=(("motion:running",),)),
    "running, run, runs, ran, jogging, jog, jogs, sprinting, sprint, sprints, rushing, fleeing",
)
_add(
    _Entry(FACET, facets=(("motion:walking",),)),
    "walking, walk, walks, walked, strolling, stroll, wandering, pacing, on foot",
)
_add(
    _Entry(FACET, facets=(("motion:stationary",),)),
    "still, loitering, loiter, loiters, loiterer, lingering, stationary, motionless, idle, idling",
    "waiting, stopped, parked, static, immobile, standing still, stood still, staying still",
    "not moving, hanging around, hanging about",
)
_add(_Entry(MOVE), "going, goes, heading, heads, headed, travelling, traveling, driving, drives, riding")
_add(_Entry(MOVE), "rides, cycling, turning, coming, comes")
_add(_Entry(MOVE, facets=(("motion:walking", "motion:running"),)), "moving, moves, in motion")

# Heading: "up" is away from the camera, "down" towards it. A bare "left" is a heading only
# after a movement word ("going left"); "towards the left" is one anywhere.
for _side in ("left", "right"):
    _add(
        _Entry(FACET, facets=((f"heading:{_side}",),)),
        f"to the {_side}, towards the {_side}, toward the {_side}, {_side}ward, {_side}wards",
    )
_add(_Entry(FACET, facets=(("heading:right",),)), "left to right, from left to right")
_add(_Entry(FACET, facets=(("heading:left",),)), "right to left, from right to left")
_add(
    _Entry(FACET, facets=(("heading:down",),)),
    "towards the camera, toward the camera, towards camera, toward camera, to the camera, towards us",
    "towards me, approaching, approaching the camera, coming towards, coming toward",
    "coming towards the camera, coming toward the camera, downwards, down the screen",
)
_add(
    _Entry(FACET, facets=(("heading:up",),)),
    "away from the camera, away from camera, away from us, away from me, upwards, up the screen",
)
for _word in ("left", "right", "up", "down", "away"):
    _add(_Entry(DIRECTION, value="up" if _word == "away" else _word), _word)

# Grammar.
_add(
    _Entry(NEG),
    "without, no, not, never, neither, non, isn't, aren't, wasn't, doesn't, don't, hasn't, is not",
    "are not, was not, does not, do not, has no, have no, with no, without any, with out",
    "doesn't have, does not have, don't have, not carrying, not holding, not with",
)
_add(_Entry(NEG_WEAR), "not wearing, isn't wearing, is not wearing, not dressed in, not in")
_add(_Entry(AND), "and, plus, as well as, also")
_add(_Entry(OR), "or, either, and or, nor")
_add(
    _Entry(CLOTHING),
    "in, wearing, wears, wore, dressed, clad, all, dressed in, dressed all in, all in, clad in, in all",
    "wearing all, who is wearing",
)
_add(
    _Entry(WITH),
    "with, carrying, carries, carried, holding, holds, held, has, having, had, pulling, pushing",
    "dragging, wheeling, toting, has got, have got",
)
_add(_Entry(BOUNDARY), "who, that, which, but, while, whilst, when, where, then")
_add(
    _Entry(STOP),
    "a, an, the, is, are, was, were, be, been, being, of, some, any, it, its, their, his, her, he",
    "she, they, them, this, these, those, there, here, i, me, my, we, us, our, you, your, please",
    "show, find, search, look, looking, for, get, give, list, footage, video, videos, clip, clips",
    "recording, recordings, image, images, photo, photos, picture, pictures, frame, frames, seen",
    "spotted, just, only, very, really, quite, too, something, anything, thing, things, object",
    "objects, detected, appear, appears, appearing, visible, captured, recorded, near, by, around",
    "about, from, to, at, on, into, onto, out, over, through, across, along, past, can, could",
    "would, should, will, do, does, did, want, need, like, see, saw, go, cameras, shade, kind, type",
    "sort, wear, worn, head, toe, front, behind, inside, outside, after, before, since, until, till",
    "between, same, every, each, other, another, whose, whom, what, head to toe, from head to toe",
    "in front of, next to, there is, there are, has been",
)
_add(_Entry(COLOUR_WORD), "coloured, colored, colour, color, toned, tone, shade of, shades of")
_add(_Entry(CAMERA_WORD), "camera, cam, cctv")
_add(_Entry(COLOUR, colours=("black",), strong=False), "dark")

# Words understood but deliberately not analysed (DESIGN.md): sex, age, body, ethnicity,
# religion, face, and judgements about a person.
_add(
    _Entry(NOT_ANALYSED),
    "masculine, feminine, transgender, trans, old, older, elderly, aged, young, younger, senior",
    "teenage, underage, middle aged, years old, year old, tall, short, fat, thin, skinny, slim",
    "overweight, obese, heavyset, stocky, muscular, athletic, bald, balding, tattoo, tattoos",
    "tattooed, pregnant, disabled, wheelchair, limping, blind, blonde, blond, brunette, redhead",
    "ginger, curly, fair, light skinned, fair skinned, pale skinned, fair haired, light haired",
    "asian, african, african american, caucasian, hispanic, latino, latina, latinx, arab, arabic",
    "indian, chinese, japanese, korean, european, middle eastern, mixed race, jewish, muslim",
    "christian, sikh, hindu, foreign, foreigner, immigrant, ethnic",
    "face, faces, facial, face recognition, facial recognition, identity, identify",
    "suspicious, suspect, dodgy, shady, thief, thieves, criminal, burglar, drunk, homeless, beggar",
    "gang, thug, aggressive, angry, nervous, happy, sad, attractive, beautiful, pretty, ugly",
    "handsome, cute, sexy, number plate, license plate, licence plate, plate, registration",
)
# Pattern, material, size and style of a garment: accepted, not analysed ("striped shirt").
_add(
    _Entry(MODIFIER),
    "big, large, small, little, tiny, huge, long, striped, stripy, checked, checkered, chequered",
    "plaid, tartan, dotted, polka, floral, patterned, camo, camouflage, leather, woolly, woollen",
    "wool, knitted, puffer, puffy, padded, quilted, baggy, tight, loose, sleeveless, hooded, zip",
    "zipped, waterproof, winter, summer, sports, sporty, thick, formal, casual, smart, business",
    "designer, branded, logo, print, printed, heavy",
)
#: Colour words read as skin colour, not clothing, directly before a person word ("a white man").
_SKIN_COLOURS = frozenset({"white", "black", "brown", "yellow", "dark", "tan"})
_CAMERA_PREPOSITIONS = frozenset({"at", "on", "in", "from", "via", "camera", "cam", "cctv", "the"})
_NOUN_KINDS = frozenset({GARMENT, CLASS, CARRIED, ACCESSORY, BODY})
_MAX_PHRASE = 6


def _singulars(word: str) -> list[str]:
    out = []
    if word.endswith("ies") and len(word) > 4:
        out.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        out.append(word[:-2])
    if word.endswith("s") and len(word) > 2:
        out.append(word[:-1])
    return out


def _lookup(words: Sequence[str]) -> _Entry | None:
    key = " ".join(words)
    entry = _LEXICON.get(key)
    if entry is not None:
        return entry
    for singular in _singulars(words[-1]):
        entry = _LEXICON.get(" ".join([*words[:-1], singular]))
        if entry is not None and entry.kind in _NOUN_KINDS:
            return entry
    return None


# --- lexer ------------------------------------------------------------------------------------


@dataclass
class _Item:
    kind: str
    text: str
    low: str
    entry: _Entry = field(default_factory=lambda: _Entry(UNKNOWN))
    colours: tuple[str, ...] = ()
    strong: bool = True


class _Lexer:
    """Tokens not used by the time parser -> items (longest phrase first)."""

    def __init__(self, tokens: list[_Token], consumed: set[int], cameras: Sequence[str]) -> None:
        self.tokens = tokens
        self.consumed = consumed
        self.cameras: dict[tuple[str, ...], str] = {}
        for name in cameras:
            if isinstance(name, str) and len(name) <= MAX_QUERY_CHARS:
                key = tuple(t.low for t in _tokenize(_clean(name)) if t.kind in ("word", "num"))
                if key:
                    self.cameras.setdefault(key, name)
        self.items: list[_Item] = []

    def lex(self) -> list[_Item]:
        toks: list[_Token | None] = []  # None marks where a time expression was
        for i, tok in enumerate(self.tokens):
            if i in self.consumed:
                if toks and toks[-1] is not None:
                    toks.append(None)
            elif tok.kind != "dash":
                toks.append(tok)
        i = 0
        while i < len(toks):
            tok = toks[i]
            if tok is None:
                self.items.append(_Item(BOUNDARY, "", ""))
                i += 1
                continue
            i = self._lex_at(toks, i)
        return self.items

    def _lex_at(self, toks: list[_Token | None], i: int) -> int:
        tok = toks[i]
        assert tok is not None
        if tok.kind == "punct":
            self._punct(tok)
            return i + 1
        if tok.kind == "symbol":
            kind = AND if tok.text == "+" else UNKNOWN
            self.items.append(_Item(kind, tok.text, tok.low))
            return i + 1
        if tok.kind not in ("word", "num"):
            self.items.append(_Item(UNKNOWN, tok.text, tok.low))
            return i + 1
        run = []  # the words from i up to the next punctuation or time expression
        for t in toks[i : i + _MAX_PHRASE]:
            if t is None or t.kind not in ("word", "num"):
                break
            run.append(t)
        lows = [t.low for t in run]
        cam_len, cam_name = self._camera_at(lows)
        phrase_len, item = self._phrase_at(run)
        if cam_len and cam_len >= phrase_len and self._camera_allowed(lows[:cam_len], phrase_len, toks, i):
            self._add_camera(cam_name)
            j = i + cam_len
            nxt = toks[j] if j < len(toks) else None
            if nxt is not None and nxt.low in ("camera", "cam", "cameras", "cctv"):
                j += 1
            return j
        if item is not None:
            if item.kind == CAMERA_WORD and self._unknown_camera(run):
                return i + 2
            self.items.append(item)
            return i + phrase_len
        self.items.append(_Item(UNKNOWN, tok.text, tok.low))
        return i + 1

    def _punct(self, tok: _Token) -> None:
        c = tok.text
        if c == ",":
            self.items.append(_Item(COMMA, c, c))
        elif c in ";.!?:":
            self.items.append(_Item(BOUNDARY, c, c))
        elif c == "&":
            self.items.append(_Item(AND, c, c))
        elif c == "/":
            self.items.append(_Item(OR, c, c))
        # quotes, brackets and the like carry no meaning here

    def _phrase_at(self, run: list[_Token]) -> tuple[int, _Item | None]:
        lows = [t.low for t in run]
        for n in range(len(run), 0, -1):
            words = lows[:n]
            text = " ".join(t.text for t in run[:n])
            if any(t.kind != "word" for t in run[:n]):
                continue
            entry = _lookup(words)
            if entry is not None:
                if entry.kind == COLOUR:
                    return n, _Item(COLOUR, text, " ".join(words), entry, entry.colours, entry.strong)
                return n, _Item(entry.kind, text, " ".join(words), entry)
            colours = basic_colours(" ".join(words))
            if colours:
                strong = is_common_colour(" ".join(words))
                return n, _Item(COLOUR, text, " ".join(words), _Entry(COLOUR), colours, strong)
        return 0, None

    def _camera_at(self, lows: list[str]) -> tuple[int, str]:
        for n in range(len(lows), 0, -1):
            name = self.cameras.get(tuple(lows[:n]))
            if name is not None:
                return n, name
        return 0, ""

    def _camera_allowed(self, key: list[str], phrase_len: int, toks: list[_Token | None], i: int) -> bool:
        """A one-word camera name that is also a vocabulary word or a number needs "at"/"camera"."""
        if len(key) > 1 or (phrase_len == 0 and not key[0].isdigit()):
            return True
        before = toks[i - 1] if i > 0 else None
        after = toks[i + 1] if i + 1 < len(toks) else None
        return (before is not None and before.low in _CAMERA_PREPOSITIONS) or (
            after is not None and after.low in ("camera", "cam", "cctv")
        )

    def _add_camera(self, name: str) -> None:
        while self.items and self.items[-1].low in _CAMERA_PREPOSITIONS:
            self.items.pop()
        self.items.append(_Item(CAMERA, name, name))

    def _unknown_camera(self, run: list[_Token]) -> bool:
        """ "on camera 7" where there is no camera 7: say so, and keep the name as not understood."""
        if len(run) < 2 or run[0].low not in ("camera", "cam", "cctv"):
            return False
        if self._camera_at([t.low for t in run[1:]])[0]:
            return False
        name = run[1]
        if _lookup([name.low]) is not None or basic_colours(name.low):
            return False
        known = ", ".join(sorted(self.cameras.values())) if self.cameras else "none given"
        self.items.append(_Item(UNKNOWN, name.text, name.low))
        self.items.append(_Item(BOUNDARY, "", ""))
        note = f"no camera called '{name.text}' (known cameras: {known})"
        self.items.append(_Item(NOTE, note, note))
        return True


# --- rules ------------------------------------------------------------------------------------

_APPEARANCE = "appearance"
_ACTIVITY = "activity"
_PERSON_REGIONS = ("upper", "lower", "headwear")
_PERSON_FACET_PREFIXES = ("upper:", "lower:", "headwear:", "carried:", "posture:")


class _Builder:
    """Items -> classes, terms, not-analysed and unknown words."""

    def __init__(self) -> None:
        self.classes: list[str] = []
        self.terms: list[Term] = []
        self.cameras: list[str] = []
        self.not_analysed: list[str] = []
        self.unknown: list[str] = []
        self.notes: list[str] = []
        self.neg = False
        self.neg_words = ""
        self.sticky: str | None = None  # negation carried over "or"/"and" to the same kind of item
        self.after_conj = False
        self.pending_or = False
        self.last_count = 0
        self.last_group = ""
        self.clothing = False  # after "in", "wearing", "dressed"

    # -- main loop
    def run(self, items: list[_Item]) -> None:
        i = 0
        while i < len(items):
            item = items[i]
            handler = getattr(self, f"_on_{item.kind}", None)
            j = handler(items, i) if handler else i + 1
            i = j if j > i else i + 1

    def _on_colour(self, items: list[_Item], i: int) -> int:
        group, conj, j = _colour_group(items, i)
        k = j + 1
        mods: list[_Item] = []
        while k < len(items) and items[k].kind in (MODIFIER, COLOUR_WORD):
            if items[k].kind == MODIFIER:
                mods.append(items[k])
            k += 1
        noun = items[k] if k < len(items) and items[k].kind in _NOUN_KINDS else None
        colour_text = " ".join(it.text for it in items[i : j + 1])
        if noun is None:
            self._standalone_colours(group, colour_text)
            return j + 1
        self.not_analysed += [m.low for m in mods]
        entry = noun.entry
        words = f"{colour_text} {noun.text}"
        if noun.kind == GARMENT:
            self._add_terms(_colour_terms(group, conj, entry.regions, noun.text), _APPEARANCE)
        elif noun.kind == CLASS and entry.human and len(group) == 1 and group[0].low in _SKIN_COLOURS:
            self._add_class(entry, noun, na_text=words.lower())
        elif noun.kind == CLASS and set(entry.labels) <= set(VEHICLE_LABELS):
            self._add_class(entry, noun, reset=False)  # "red car or blue van": keep the "or"
            self._add_terms(_colour_terms(group, conj, ("body",), noun.text), _APPEARANCE)
        elif noun.kind == CLASS:
            self._standalone_colours(group, colour_text)
            return j + 1
        elif noun.kind == CARRIED:
            self._add_terms([(f, words) for f in entry.facets], _APPEARANCE)
            self.not_analysed.append(f"{colour_text.lower()} ({noun.low} colour)")
        else:  # accessory, hair, skin
            self.not_analysed.append(words.lower())
            self._reset_scope()
        return k + 1

    def _on_garment(self, items: list[_Item], i: int) -> int:
        item = items[i]
        entry = item.entry
        # "a jacket in red", "jacket that is red", "jacket coloured red"
        k = i + 1
        while k < len(items) and items[k].low in ("in", "is", "that", "which", "coloured", "colored", "all"):
            k += 1
        if k > i + 1 and k < len(items) and items[k].kind == COLOUR:
            group, conj, j = _colour_group(items, k)
            after = items[j + 1] if j + 1 < len(items) else None
            if after is None or after.kind not in _NOUN_KINDS:
                self._add_terms(_colour_terms(group, conj, entry.regions, item.text), _APPEARANCE)
                return j + 1
        if entry.default:
            self._add_terms(
                [(tuple(f"{r}:{c}" for c in entry.default), item.text) for r in entry.regions], _APPEARANCE
            )
        elif entry.regions == ("headwear",):
            self._add_terms([(("headwear:worn",), item.text)], _APPEARANCE)
        elif not entry.generic:
            self.not_analysed.append(item.low)
            self.neg = False
        return i + 1

    def _on_carried(self, items: list[_Item], i: int) -> int:
        self._add_terms([(f, items[i].text) for f in items[i].entry.facets], _APPEARANCE)
        return i + 1

    def _on_facet(self, items: list[_Item], i: int) -> int:
        self._add_terms([(f, items[i].text) for f in items[i].entry.facets], _ACTIVITY)
        return i + 1

    def _on_move(self, items: list[_Item], i: int) -> int:
        nxt = items[i + 1] if i + 1 < len(items) else None
        if nxt is not None and nxt.kind in (DIRECTION, FACET):
            return i + 1  # "going left", "moving towards the camera": the direction says it
        if items[i].entry.facets:
            self._add_terms([(f, items[i].text) for f in items[i].entry.facets], _ACTIVITY)
        return i + 1

    def _on_direction(self, items: list[_Item], i: int) -> int:
        prev = items[i - 1] if i > 0 else None
        moving = prev is not None and (
            prev.kind == MOVE or (prev.kind == FACET and prev.entry.facets[0][0].startswith("motion:"))
        )
        if moving:
            value = items[i].entry.value
            self._add_terms([((f"heading:{value}",), items[i].text)], _ACTIVITY)
        elif items[i].low not in ("up", "down"):
            self.unknown.append(items[i].text)
        return i + 1

    def _on_class(self, items: list[_Item], i: int) -> int:
        self._add_class(items[i].entry, items[i])
        return i + 1

    def _on_not_analysed(self, items: list[_Item], i: int) -> int:
        self.not_analysed.append(items[i].low)
        if self.neg:
            self.neg = False
        return i + 1

    def _on_modifier(self, items: list[_Item], i: int) -> int:
        self.not_analysed.append(items[i].low)
        return i + 1

    def _on_accessory(self, items: list[_Item], i: int) -> int:
        self.not_analysed.append(items[i].low)
        self._reset_scope()
        return i + 1

    _on_body = _on_accessory

    def _on_neg(self, items: list[_Item], i: int) -> int:
        self.neg = True
        self.neg_words = items[i].text
        self.sticky = None
        return i + 1

    def _on_neg_wear(self, items: list[_Item], i: int) -> int:
        self.clothing = True
        return self._on_neg(items, i)

    def _on_and(self, items: list[_Item], i: int) -> int:
        self.after_conj = True
        self.pending_or = False
        return i + 1

    def _on_or(self, items: list[_Item], i: int) -> int:
        self.after_conj = True
        self.pending_or = True
        if items[i].low == "nor" and self.last_count:
            self.sticky = self.last_group
        return i + 1

    def _on_comma(self, items: list[_Item], i: int) -> int:
        return self._on_boundary(items, i)

    def _on_clothing(self, items: list[_Item], i: int) -> int:
        self.clothing = True
        return i + 1

    def _on_with(self, items: list[_Item], i: int) -> int:
        self.clothing = False
        self.sticky = None
        return i + 1

    def _on_boundary(self, items: list[_Item], i: int) -> int:
        self.neg = False
        self._reset_scope()
        self.clothing = False
        return i + 1

    def _on_camera(self, items: list[_Item], i: int) -> int:
        self.cameras.append(items[i].text)
        return i + 1

    def _on_unknown(self, items: list[_Item], i: int) -> int:
        self.unknown.append(items[i].text)
        return i + 1

    def _on_note(self, items: list[_Item], i: int) -> int:
        self.notes.append(items[i].text)
        return i + 1

    def _on_colour_word(self, items: list[_Item], i: int) -> int:
        return i + 1

    # -- helpers
    def _reset_scope(self) -> None:
        self.sticky = None
        self.after_conj = False
        self.pending_or = False

    def _add_class(
        self, entry: _Entry, item: _Item, na_text: str | None = None, *, reset: bool = True
    ) -> None:
        if reset:
            if self.neg and not entry.na and na_text is None:
                note = f"'{self.neg_words} {item.text}': excluding a kind of object is not supported"
                self.notes.append(note)
            self.neg = False
            self._reset_scope()
        for label in entry.labels:
            if label not in self.classes:
                self.classes.append(label)
        if set(entry.labels) <= set(VEHICLE_LABELS):
            self.clothing = False
        if na_text is not None:
            self.not_analysed.append(na_text)
        elif entry.na:
            self.not_analysed.append(item.low)
        if entry.facets:
            self._add_terms([(f, item.text) for f in entry.facets], _ACTIVITY)

    def _add_terms(self, terms: list[tuple[tuple[str, ...], str]], group: str) -> None:
        if not terms:
            return
        negated = self.neg or (self.sticky == group and self.after_conj)
        if (
            self.pending_or
            and not negated
            and len(terms) == 1
            and self.last_count == 1
            and self.last_group == group
            and self.terms
            and not self.terms[-1].negated
        ):
            prev = self.terms[-1]
            facets = tuple(dict.fromkeys((*prev.facets, *terms[0][0])))
            self.terms[-1] = Term(facets, False, f"{prev.words} or {terms[0][1]}")
        else:
            self.terms += [Term(facets, negated, words) for facets, words in terms]
        self.last_count = len(terms)
        self.last_group = group
        self.neg = False
        self.sticky = group if negated else None
        self.after_conj = False
        self.pending_or = False

    def _standalone_colours(self, group: list[_Item], words: str) -> None:
        """A colour with no garment: "in black" is upper and lower; a bare "red" is anywhere."""
        strong = [g for g in group if g.strong]
        for weak in (g for g in group if not g.strong):
            self.unknown.append(weak.text)
        if not strong:
            return
        alternatives = tuple(dict.fromkeys(c for g in strong for c in g.colours))
        vehicles_only = bool(self.classes) and set(self.classes) <= set(VEHICLE_LABELS)
        if self.clothing and vehicles_only:
            self._add_terms([(tuple(f"body:{c}" for c in alternatives), words)], _APPEARANCE)
        elif self.clothing:
            regions = ("upper", "lower")
            self._add_terms([(tuple(f"{r}:{c}" for c in alternatives), words) for r in regions], _APPEARANCE)
        else:  # where the colour is depends on the classes: decided in finish()
            self._add_terms([(tuple(f"?:{c}" for c in alternatives), words)], _APPEARANCE)

    # -- result
    def finish(self) -> tuple[tuple[str, ...], tuple[Term, ...]]:
        classes = list(self.classes)
        if any(f.startswith(_PERSON_FACET_PREFIXES) for t in self.terms for f in t.facets):
            if "person" not in classes:
                classes.append("person")
        if not classes:
            regions: tuple[str, ...] = ("upper", "lower", "body")
        elif set(classes) <= set(VEHICLE_LABELS):
            regions = ("body",)
        elif "person" in classes and len(classes) == 1:
            regions = _PERSON_REGIONS
        else:
            regions = ("upper", "lower", "body")
        terms = []
        for term in self.terms:
            facets: list[str] = []
            for f in term.facets:
                region, _, colour = f.partition(":")
                facets += [f"{r}:{colour}" for r in regions] if region == "?" else [f]
            terms.append(Term(tuple(dict.fromkeys(facets)), term.negated, term.words))
        unique: list[Term] = []
        for term in terms:
            if term not in unique:
                unique.append(term)
        return tuple(classes), tuple(unique)


def _colour_group(items: list[_Item], i: int) -> tuple[list[_Item], str, int]:
    """Colours joined by "and", "or", "/" or "," from ``i`` -> (colours, "and"|"or", last index)."""
    group = [items[i]]
    conj = "and"
    j = i
    while (
        j + 2 < len(items)
        and items[j + 1].kind in (AND, OR, COMMA)
        and items[j + 2].kind == COLOUR
        and items[j + 1].low != "nor"
    ):
        if items[j + 1].kind == OR:
            conj = "or"
        group.append(items[j + 2])
        j += 2
    return group, conj, j


def _colour_terms(
    group: list[_Item], conj: str, regions: tuple[str, ...], noun: str
) -> list[tuple[tuple[str, ...], str]]:
    """ "red or blue jacket" -> one term with two alternatives; "red and navy jacket" -> two terms."""
    if conj == "or" or len(group) == 1:
        colours = tuple(dict.fromkeys(c for g in group for c in g.colours))
        words = f"{' or '.join(g.text for g in group)} {noun}"
        return [(tuple(f"{r}:{c}" for c in colours), words) for r in regions]
    return [(tuple(f"{r}:{c}" for c in g.colours), f"{g.text} {noun}") for g in group for r in regions]
