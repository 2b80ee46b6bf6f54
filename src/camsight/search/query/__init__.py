"""Free text -> :class:`~camsight.search.query_model.ParsedQuery`.

A small hand-written tokenizer and rule set (plus rapidfuzz for misspelt
words), so every reading can be explained and tested:

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
   carried items, posture, motion, heading, negation, conjunctions. A word
   found nowhere may be a misspelling: :mod:`.fuzzy` reads it as the nearest
   vocabulary word under tight limits, listed in ``corrections``.
5. **Rules** combine items: colour(s) + garment -> region colour terms,
   "in black" -> upper and lower black, "white van" -> vehicle body colour,
   "without a backpack" -> a negated term, "backpack or suitcase" -> one
   term with two alternatives.

The stages live in submodules: :mod:`.tokens` (1), :mod:`.time_grammar` (2),
:mod:`.words` (the vocabulary), :mod:`.lexer` and :mod:`.fuzzy` (3, 4),
:mod:`.builder` (5). A query with no class, term, camera or time is not
:meth:`~camsight.search.query_model.ParsedQuery.analysable`: the engine then
finds nothing and says why.

Sex, age, ethnicity, body and face words are accepted and listed as
*not analysed* (DESIGN.md); they never change which tracks match. A colour
directly before a person word ("a white man") is read as skin colour, so it
is not analysed either; "a man in white" is clothing.

Readings chosen where the words are ambiguous (all covered by tests):

* "van", "truck", "lorry" -> class ``truck`` only (no extra term); "vehicle"
  -> every vehicle class; "minivan" -> car or truck.
* "cyclist", "person with a bicycle", "man pushing a bike", "someone on a bike"
  -> ``person`` with ``carried: bicycle`` (the bicycle is the person's facet,
  not a second class); "bicycle" or "person or bicycle" alone stay classes.
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

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime  # noqa: F401  (UTC: the parse_query doctest uses it)

from camsight.errors import CamsightError
from camsight.search.query.builder import Builder
from camsight.search.query.lexer import Lexer
from camsight.search.query.time_grammar import PERIODS, TimeParser
from camsight.search.query.tokens import MAX_QUERY_CHARS, clean, tokenize
from camsight.search.query_model import ParsedQuery

__all__ = ["MAX_QUERY_CHARS", "PERIODS", "QueryError", "parse_query"]


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
    'person · upper: blue · upper: light · camera: lobby'
    """
    if not isinstance(text, str):
        raise QueryError(f"a search query must be text, not {type(text).__name__}")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"search query is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}: "
            "describe what to look for in a few words"
        )
    cleaned = clean(text)
    if not cleaned.strip():
        raise QueryError("empty search query: type what to look for, e.g. 'person in a red jacket'")
    key = (text, tuple(c for c in cameras if isinstance(c, str)))
    with _TIMELESS_LOCK:
        cached = _TIMELESS.get(key)
        if cached is not None:
            _TIMELESS.move_to_end(key)
            return cached
    query, timeless = _parse(text, cleaned, _aware_now(now), cameras)
    if timeless:
        with _TIMELESS_LOCK:
            _TIMELESS[key] = query
            while len(_TIMELESS) > _TIMELESS_SIZE:
                _TIMELESS.popitem(last=False)
    return query


# Parsing took a third of a search's CPU time under load, and a server answers the same few
# queries again and again. A query without time words parses the same at any time, so its
# parse is kept (ParsedQuery is immutable); one with time words ("yesterday") is parsed anew.
_TIMELESS: OrderedDict[tuple[str, tuple[str, ...]], ParsedQuery] = OrderedDict()
_TIMELESS_LOCK = threading.Lock()
_TIMELESS_SIZE = 2048


def _parse(text: str, cleaned: str, now: datetime, cameras: Sequence[str]) -> tuple[ParsedQuery, bool]:
    """The parse of ``cleaned``, and whether it has no time expression (so ``now`` did not matter)."""
    tokens = tokenize(cleaned)
    numbered = frozenset(c.strip() for c in cameras if isinstance(c, str) and c.strip().isdigit())
    timing = TimeParser(tokens, now, numbered).parse()
    lexer = Lexer(tokens, timing.consumed, cameras)
    items = lexer.lex()
    builder = Builder()
    builder.run(items)
    since, until, time_of_day = timing.compose()
    classes, terms = builder.finish()
    query = ParsedQuery(
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
        corrections=tuple(_dedupe(lexer.corrections)),
        ignored=tuple(_dedupe(builder.ignored)),
    )
    timeless = not timing.consumed and not timing.unknown and not timing.notes
    timeless = timeless and since is None and until is None and time_of_day is None
    return query, timeless


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
