"""When a facet counts as seen (calibrated thresholds), and how each term of a hit is explained.

A hit is a *full* match only when every term of the query is supported:

* a term holds when one of its facets scores at least the facet's
  ``present`` threshold ("black trousers": ``lower:black`` >= 0.50);
* a negated term holds only when every one of its facets scores at most
  the ``absent`` threshold ("without jeans": ``lower:blue`` <= 0.30). Between
  the two the evidence is unsure, and an unsure "without" is not a match:
  a person in jeans whose trousers read 0.49 blue is not "without jeans";
* an *only* term ("dressed all in black") also needs every other colour of
  its region under that region's ``present`` threshold (:func:`spoilers`):
  a red-and-navy jacket whose navy reads partly black is not all black.

Thresholds are per facet family (the part of the key before ``:``, or a
whole key such as ``headwear:worn``); a family nobody has calibrated yet
(a facet added later, e.g. a new carried item) gets :data:`DEFAULT`, so new
facets are matched without code here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from camsight.records.facets import COLOURS, PERSON_REGIONS
from camsight.search.query_model import Term


@dataclass(frozen=True)
class Threshold:
    """``present``: lowest score that counts as seen; ``absent``: highest that counts as not seen."""

    present: float
    absent: float


#: Families without dev-split labels (carried items, posture, motion, heading, vehicle type
#: and colour, and any facet added later): a score is a probability-like share, so half.
DEFAULT = Threshold(0.50, 0.20)

#: Calibrated on the dev split (../shared/eval/search_dev.json, PETS09 frames 1-400, YOLOX-nano,
#: 18 person tracks of 10 labelled people) with
#:
#:     .venv/bin/python bench/search_eval.py --backends yolox --data DIR   # indexes, keeps DIR
#:     .venv/bin/python bench/search_calibrate.py --data DIR
#:
#: Attributes were being reworked while this was written (colours from many frames, lighting),
#: so it was run on two versions of them; the chosen values sit inside both best ranges:
#:
#:     region         pos  neg best range present bal.acc    TP    FP absent pos p10 neg p90 neg p95
#:     (colours from a few best crops, 2026-12-07 01:40)
#:     upper           21  161 0.18-0.48    0.33    1.00  1.00  0.00   0.00    0.65    0.00    0.00
#:     lower           19  162 0.31-0.64    0.48    1.00  1.00  0.01   0.30    0.73    0.10    0.26
#:     headwear         1  197 0.50-1.00    0.75    1.00  1.00  0.01   0.40    1.00    0.36    0.40
#:     headwear:worn    1   17 0.71-1.00    0.86    0.97  1.00  0.06   0.80    1.00    0.64    0.76
#:     (colours from many frames, 2026-12-07 02:25)
#:     upper           21  161 0.16-0.43    0.30    1.00  1.00  0.00   0.00    0.71    0.00    0.00
#:     lower           19  162 0.12-1.00    0.56    0.97  0.95  0.01   0.25    1.00    0.05    0.24
#:     headwear         1  197 0.36-1.00    0.68    1.00  1.00  0.01   0.30    1.00    0.14    0.25
#:     headwear:worn    1   17 0.71-1.00    0.86    0.97  1.00  0.06   0.80    1.00    0.63    0.76
#:
#: ``present`` is the middle of the thresholds within 0.01 balanced accuracy of the best,
#: rounded to 0.05 and kept inside both runs' ranges; ``absent`` is the true negatives' 95th
#: percentile, rounded up to 0.05 (the higher of the two runs), with a floor of 0.15 (colours
#: under 0.05 are not stored, so the upper body's p95 is 0, and a trace of a colour should not
#: undo a "without"); "headwear:worn" keeps 0.75, under the rule's 0.80, so that a band of
#: unsure scores stays below its 0.85. Headwear rests on one labelled hat: treat its values as
#: provisional, and run the script again whenever attributes are computed anew.
THRESHOLDS: dict[str, Threshold] = {
    "upper": Threshold(0.35, 0.15),
    "lower": Threshold(0.50, 0.30),
    "headwear": Threshold(0.75, 0.40),
    "headwear:worn": Threshold(0.85, 0.75),
    "body": DEFAULT,
}

#: How each facet family is named to the user: the body region a colour or item belongs to.
REGION_NAMES: dict[str, str] = {
    "upper": "upper body",
    "lower": "lower body",
    "headwear": "head",
    "carried": "carried",
    "posture": "posture",
    "motion": "motion",
    "heading": "heading",
    "body": "vehicle body",
    "vehicle": "vehicle type",
}


def threshold(facet: str) -> Threshold:
    """The thresholds of one facet key: its own entry, else its family's, else :data:`DEFAULT`."""
    if facet in THRESHOLDS:
        return THRESHOLDS[facet]
    return THRESHOLDS.get(facet.partition(":")[0], DEFAULT)


def thresholds(facets: tuple[str, ...] | list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(present, absent)`` arrays, one value per facet key."""
    ts = [threshold(f) for f in facets]
    return np.array([t.present for t in ts], np.float32), np.array([t.absent for t in ts], np.float32)


#: Colours that do not make a region "another colour" than the one asked for: black, grey and
#: white differ by lightness alone, which light changes (black trousers read grey where lit).
_KIN: dict[str, frozenset[str]] = {
    "black": frozenset({"grey"}),
    "white": frozenset({"grey"}),
    "grey": frozenset({"black", "white"}),
}
#: Hair and skin are read in the upper body too (long hair over the shoulders, bare arms):
#: their colours there are not a second garment. On the Intel clip a woman's long blonde hair
#: reads upper brown 0.88 over her black top.
_HAIR_AND_SKIN_IN = {"upper": frozenset({"brown", "yellow", "orange", "pink"})}


@functools.cache  # asked for every hit's explanation of a term, not only once per search
def spoilers(term: Term) -> tuple[str, ...]:
    """The facets that, at or above their ``present`` threshold, make an *only* term fail.

    Every other colour of the term's regions, less the asked colours' kin (black's grey) and,
    on the upper body, hair and skin colours. Only a person's regions count: a van's windows
    and tyres are not its paint. Empty for a term that is not *only*.

    >>> [f.partition(":")[2] for f in spoilers(Term(("lower:black",), only=True))]
    ['white', 'red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'brown']
    >>> "upper:brown" in spoilers(Term(("upper:black",), only=True))
    False
    """
    if not term.only or term.negated:
        return ()
    asked: dict[str, set[str]] = {}
    for facet in term.facets:
        region, _, colour = facet.partition(":")
        if region in PERSON_REGIONS and colour in COLOURS:
            asked.setdefault(region, set()).add(colour)
    out: list[str] = []
    for region, colours in asked.items():
        allowed = set(colours).union(*(_KIN.get(c, frozenset()) for c in colours))
        allowed |= _HAIR_AND_SKIN_IN.get(region, frozenset())
        out += [f"{region}:{c}" for c in COLOURS if c not in allowed]
    return tuple(out)


def region_name(facet: str) -> str:
    """``"lower:blue"`` -> ``"lower body"``; an unknown family is named as it is."""
    family = facet.partition(":")[0]
    return REGION_NAMES.get(family, family)


def _value(facet: str) -> str:
    value = facet.partition(":")[2]
    return "headwear worn" if facet == "headwear:worn" else value


def explain_term(term: Term, facet_scores: Mapping[str, float], matched: bool) -> dict[str, object]:
    """The parts of one term's explanation that follow from its facets' scores.

    ``facet``: the facet the verdict rests on (the best one; for a negation, the worst);
    ``region``: its body region (all the term's regions when none was good enough);
    ``detail``: one phrase saying what was read and, when the term failed, what was needed,
    e.g. ``lower body: blue 49%, below the 50% needed`` or, for "without jeans", ``lower
    body: blue 49%, above the 30% allowed``. The facet and score are said once, here: the
    evidence adds only where they came from.
    """
    known = list(term.facets)  # a facet with no score was not seen: 0
    scores = {f: float(facet_scores.get(f, 0.0)) for f in known}
    # A term holds through its best facet; a negated one fails through its worst.
    key = max(known, key=lambda f: scores[f])
    score = scores[key]
    t = threshold(key)
    others = {f: float(facet_scores.get(f, 0.0)) for f in spoilers(term)}
    other = max(others, key=lambda f: others[f], default=None)
    spoilt = other is not None and others[other] >= threshold(other).present - 1e-6
    if spoilt and not matched and score >= t.present - 1e-6:
        assert other is not None
        # The asked colour is there, and so is another one of its region: not *only* that colour.
        detail = (
            f"{region_name(key)}: {_value(key)} {score:.0%}, but also {_value(other)} "
            f"{others[other]:.0%} (only {_value(key)} asked: another colour must stay below "
            f"{threshold(other).present:.0%})"
        )
        return {"facet": other, "region": region_name(other), "detail": detail}
    if term.negated and matched:
        regions = _regions(known)
        values = " or ".join(sorted({_value(f) for f in known}))
        detail = f"{'/'.join(regions)}: no {values} ({score:.0%}, at most {t.absent:.0%} allowed)"
    elif term.negated:
        regions = [region_name(key)]
        detail = f"{regions[0]}: {_value(key)} {score:.0%}, above the {t.absent:.0%} allowed"
    elif matched:
        regions = [region_name(key)]
        detail = f"{regions[0]}: {_value(key)} {score:.0%}"
    else:
        regions = _regions(known)
        values = sorted({_value(f) for f in known})
        best = " at best" if len(known) > 1 else ""
        need = f"below the {t.present:.0%} needed"
        detail = f"{'/'.join(regions)}: {' or '.join(values)} {score:.0%}{best}, {need}"
    return {"facet": key, "region": "/".join(regions), "detail": detail}


def _regions(facets: list[str]) -> list[str]:
    return list(dict.fromkeys(region_name(f) for f in facets))


def short_evidence(facet: str, evidence: str) -> str:
    """The evidence text less what the explanation already says (region, value, score).

    ``"upper black 1.00 (3 crops, pose keypoints)"`` -> ``"3 crops, pose keypoints"``.

    >>> short_evidence("upper:black", "upper black 1.00 (3 crops, pose keypoints)")
    '3 crops, pose keypoints'
    >>> short_evidence("posture:lying", "lying 0.80 (4 crops, box proportions)")
    '4 crops, box proportions'
    >>> short_evidence("carried:handbag", "handbag seen beside them in 3 frames (20%)")
    'seen beside them in 3 frames (20%)'
    """
    family, _, value = facet.partition(":")
    text = evidence.strip()
    lead = rf"^(?:{re.escape(family)}\s+)?{re.escape(value)}\b\s*(?:\d+(?:\.\d+)?%?\b)?\s*:?\s*"
    rest = re.sub(lead, "", text, count=1, flags=re.IGNORECASE)
    if rest.startswith("(") and rest.endswith(")") and rest.count("(") == 1:
        rest = rest[1:-1]
    return rest.strip() or text
