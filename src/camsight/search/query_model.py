"""The parsed form of a search query: what the user asked for, as facets.

The parser (``camsight.search.query``) produces it, the engine consumes it,
and the UI shows it (``describe()``), so users see how their words were
understood and can correct it with explicit filters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time


@dataclass(frozen=True)
class Term:
    """One condition: a track satisfies it when any of ``facets`` holds.

    ``facets`` are keys from :data:`camsight.records.facets.FACETS`;
    usually one ("upper:red"), several for "red or blue jacket".
    ``negated`` terms must *not* hold ("without a backpack").
    ``words`` are the query words it came from, for the explanation.
    ``only``: the region must show no other colour either ("dressed *all* in
    black": a red-and-navy jacket that reads partly black is not that).
    """

    facets: tuple[str, ...]
    negated: bool = False
    words: str = ""
    only: bool = False

    def label(self) -> str:
        """Human form, e.g. ``headwear: red``, ``not carried: backpack``, ``upper: black only``."""
        parts = []
        for f in self.facets:
            region, _, value = f.partition(":")
            parts.append(f"{region}: {value}")
        text = " or ".join(parts)
        if self.only:
            text = f"{text} only"
        return f"not {text}" if self.negated else text


@dataclass(frozen=True)
class TimeOfDay:
    """A daily window in local time; ``end`` may be before ``start`` (overnight)."""

    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


@dataclass(frozen=True)
class ParsedQuery:
    """A query as camsight understood it.

    ``classes``: detector labels a hit may have (empty: any class).
    ``terms``: all must hold for a full match (partial matches rank lower).
    ``since``/``until``: absolute bounds (timezone-aware) on a track's time.
    ``time_of_day``: a daily window, e.g. "after 18:00" with no date.
    ``not_analysed``: words understood but deliberately not analysed
    ("woman", "tall"); they do not change results.
    ``unknown``: words not understood at all.
    ``corrections``: misspelt or variant words read as a vocabulary word,
    each as ``"persn → person"``.
    ``ignored``: common words that carry no meaning here ("the", "with").
    """

    text: str
    classes: tuple[str, ...] = ()
    terms: tuple[Term, ...] = ()
    cameras: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    time_of_day: TimeOfDay | None = None
    not_analysed: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    corrections: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()

    def analysable(self) -> bool:
        """Whether anything in the query restricts the search (a class, a facet, a camera, a time).

        A query of gibberish, of common words only, or of words camsight does
        not analyse ("tall") has nothing to match on: it must find nothing,
        not everything.
        """
        return bool(
            self.classes or self.terms or self.cameras or self.since or self.until or self.time_of_day
        )

    def describe(self) -> str:
        """One line for the user, e.g. ``person · headwear: red · not analysed: woman``."""
        parts: list[str] = []
        if not self.analysable():
            parts.append("nothing camsight can search for")
            if self.ignored and not (self.unknown or self.not_analysed):
                parts.append("only common words: " + ", ".join(self.ignored))
        if self.classes:
            parts.append(" or ".join(_class_name(c) for c in _dedupe_classes(self.classes)))
        parts += [t.label() for t in self.terms]
        if self.cameras:
            parts.append("camera: " + ", ".join(self.cameras))
        if self.since:
            parts.append(f"since {self.since:%Y-%m-%d %H:%M}")
        if self.until:
            parts.append(f"until {self.until:%Y-%m-%d %H:%M}")
        if self.time_of_day:
            parts.append(f"between {self.time_of_day.start:%H:%M} and {self.time_of_day.end:%H:%M}")
        if self.not_analysed:
            parts.append("not analysed: " + ", ".join(self.not_analysed))
        if self.unknown:
            parts.append("not understood: " + ", ".join(self.unknown))
        if self.corrections:
            parts.append("read as: " + ", ".join(self.corrections))
        return " · ".join(parts) if parts else "anything"


def _class_name(label: str) -> str:
    return "van/truck" if label == "truck" else label


def _dedupe_classes(classes: tuple[str, ...]) -> tuple[str, ...]:
    from camsight.records.facets import VEHICLE_LABELS

    if set(VEHICLE_LABELS) <= set(classes):
        rest = tuple(c for c in classes if c not in VEHICLE_LABELS)
        return (*rest, "vehicle")
    return classes
