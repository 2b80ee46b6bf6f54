"""Stage 5 of the query parser (rules): items -> classes, terms, cameras and notes.

The rules that combine items: colour(s) + garment -> region colour terms,
"in black" -> upper and lower black, "white van" -> vehicle body colour,
negation and its carry-over across "or"/"nor"/"and", "backpack or suitcase"
-> one term with two alternatives.
"""

from __future__ import annotations

from camsight.records.facets import COLOURS, PERSON_REGIONS, SHADED_REGIONS, VEHICLE_LABELS
from camsight.search.colour_words import LIGHTER, basic_colours
from camsight.search.colour_words import MODIFIERS as SHADE_WORDS
from camsight.search.query.lexer import Item
from camsight.search.query.words import (
    AND,
    BOUNDARY,
    CARRIED,
    CLASS,
    CLOTHING,
    COLOUR,
    COLOUR_WORD,
    COMMA,
    DIRECTION,
    FACET,
    GARMENT,
    MODIFIER,
    MOVE,
    NEG,
    NEG_WEAR,
    NOUN_KINDS,
    ONLY,
    OR,
    RIDDEN_CLASSES,
    RIDE_WORDS,
    SKIN_COLOURS,
    STOP,
    WITH,
    Entry,
)
from camsight.search.query_model import Term

#: Item kinds that only join or scope other words ("the", "with", "and", "not").
_GRAMMAR = frozenset({STOP, WITH, CLOTHING, ONLY, AND, OR, NEG, NEG_WEAR, BOUNDARY, COLOUR_WORD, MOVE})
_APPEARANCE = "appearance"
_ACTIVITY = "activity"
_CLOTHES = ("upper", "lower")  # "in black": what someone wears, head aside
_PERSON_FACET_PREFIXES = ("upper:", "lower:", "headwear:", "carried:", "posture:")


class Builder:
    """Items -> classes, terms, not-analysed and unknown words."""

    def __init__(self) -> None:
        self.classes: list[str] = []
        self.terms: list[Term] = []
        self.cameras: list[str] = []
        self.not_analysed: list[str] = []
        self.unknown: list[str] = []
        self.notes: list[str] = []
        self.ignored: list[str] = []  # stop words, shown when nothing else was understood
        self.neg = False
        self.neg_words = ""
        self.sticky: str | None = None  # negation carried over "or"/"and" to the same kind of item
        self.after_conj = False
        self.pending_or = False
        self.last_count = 0
        self.last_group = ""
        self.clothing = False  # after "in", "wearing", "dressed"
        self.only = False  # after "all in", "entirely": the next colours are all the region shows

    # -- main loop
    def run(self, items: list[Item]) -> None:
        """Apply the rules to ``items``, one ``_on_<kind>`` handler per item."""
        i = 0
        while i < len(items):
            item = items[i]
            if item.kind in _GRAMMAR and item.low:
                self.ignored.append(item.low)
            handler = getattr(self, f"_on_{item.kind}", None)
            j = handler(items, i) if handler else i + 1
            i = j if j > i else i + 1

    def _on_colour(self, items: list[Item], i: int) -> int:
        group, conj, j = _colour_group(items, i)
        k = j + 1
        mods: list[Item] = []
        while k < len(items) and items[k].kind in (MODIFIER, COLOUR_WORD):
            if items[k].kind == MODIFIER:
                mods.append(items[k])
            k += 1
        noun = items[k] if k < len(items) and items[k].kind in NOUN_KINDS else None
        colour_text = " ".join(it.text for it in items[i : j + 1])
        if noun is None:
            self._standalone_colours(group, colour_text)
            self.not_analysed += [_shade_note(g.low) for g in group if _shaded(g.low) and g.strong]
            return j + 1
        self.not_analysed += [m.low for m in mods]
        entry = noun.entry
        words = f"{colour_text} {noun.text}"
        shaded = _light_regions(group, conj, entry.regions) if noun.kind == GARMENT and not self.neg else ()
        light = [g for g in group if _lighter(g.low)] if shaded else []
        lit = [(tuple(f"{r}:light" for r in shaded), f"{g.text} {noun.text}") for g in light]
        # Colours are stored as basic terms: a shade not read otherwise is said not to be used.
        self.not_analysed += [_shade_note(g.low) for g in group if _shaded(g.low) and g not in light]
        if noun.kind == GARMENT:
            terms = _colour_terms(group, conj, entry.regions, noun.text)
            if entry.default and not any(g.strong for g in group):  # "dark jeans": dark denim, or black
                colours = tuple(dict.fromkeys((*entry.default, *(c for g in group for c in g.colours))))
                terms = [(tuple(f"{r}:{c}" for c in colours), words) for r in entry.regions]
            self._add_terms(terms + lit, _APPEARANCE)
        elif noun.kind == CLASS and entry.human and len(group) == 1 and group[0].low in SKIN_COLOURS:
            self._add_class(entry, noun, na_text=words.lower())
        elif noun.kind == CLASS and self._rides(entry, items, i):  # "a man with a red bike"
            self._add_terms([((f"carried:{label}",), words) for label in entry.labels], _APPEARANCE)
            self.not_analysed.append(f"{colour_text.lower()} ({noun.low} colour)")
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

    def _on_garment(self, items: list[Item], i: int) -> int:
        item = items[i]
        entry = item.entry
        # "a jacket in red", "jacket that is red", "jacket coloured red"
        k = i + 1
        while k < len(items) and items[k].low in ("in", "is", "that", "which", "coloured", "colored", "all"):
            k += 1
        if k > i + 1 and k < len(items) and items[k].kind == COLOUR:
            group, conj, j = _colour_group(items, k)
            after = items[j + 1] if j + 1 < len(items) else None
            if after is None or after.kind not in NOUN_KINDS:
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

    def _on_carried(self, items: list[Item], i: int) -> int:
        self._add_terms([(f, items[i].text) for f in items[i].entry.facets], _APPEARANCE)
        return i + 1

    def _on_facet(self, items: list[Item], i: int) -> int:
        self._add_terms([(f, items[i].text) for f in items[i].entry.facets], _ACTIVITY)
        return i + 1

    def _on_move(self, items: list[Item], i: int) -> int:
        nxt = items[i + 1] if i + 1 < len(items) else None
        if nxt is not None and nxt.kind in (DIRECTION, FACET):
            return i + 1  # "going left", "moving towards the camera": the direction says it
        if items[i].entry.facets:
            self._add_terms([(f, items[i].text) for f in items[i].entry.facets], _ACTIVITY)
        return i + 1

    def _on_direction(self, items: list[Item], i: int) -> int:
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

    def _on_class(self, items: list[Item], i: int) -> int:
        entry = items[i].entry
        if self._rides(entry, items, i):
            # "man with a bike", "someone pushing a bicycle", "person without a bicycle": the
            # person's facet (the builder links a bicycle to who rides or walks it).
            self._add_terms([((f"carried:{label}",), items[i].text) for label in entry.labels], _APPEARANCE)
            return i + 1
        self._add_class(entry, items[i])
        return i + 1

    def _on_not_analysed(self, items: list[Item], i: int) -> int:
        self.not_analysed.append(items[i].low)
        if self.neg:
            self.neg = False
        return i + 1

    def _on_shade(self, items: list[Item], i: int) -> int:
        """ "light jeans", "pale clothes": the garment's light term, beside its implied colour."""
        k = i + 1
        while k < len(items) and items[k].kind in (MODIFIER, COLOUR_WORD):
            k += 1
        noun = items[k] if k < len(items) else None
        regions = () if noun is None or noun.kind != GARMENT else noun.entry.regions
        shaded = [r for r in regions if r in SHADED_REGIONS]
        if not shaded or self.neg:
            self.not_analysed.append(_shade_note(items[i].low))
            return i + 1
        assert noun is not None
        words = f"{items[i].text} {noun.text}"
        implied = noun.entry.default  # "light jeans" are still blue
        terms = [(tuple(f"{r}:{c}" for c in implied), words) for r in regions if implied]
        self._add_terms(terms + [((f"{r}:light",), words) for r in shaded], _APPEARANCE)
        return k + 1

    def _on_modifier(self, items: list[Item], i: int) -> int:
        self.not_analysed.append(items[i].low)
        return i + 1

    def _on_accessory(self, items: list[Item], i: int) -> int:
        self.not_analysed.append(items[i].low)
        self._reset_scope()
        return i + 1

    _on_body = _on_accessory

    def _on_neg(self, items: list[Item], i: int) -> int:
        self.neg = True
        self.neg_words = items[i].text
        self.sticky = None
        return i + 1

    def _on_neg_wear(self, items: list[Item], i: int) -> int:
        self.clothing = True
        return self._on_neg(items, i)

    def _on_and(self, items: list[Item], i: int) -> int:
        self.after_conj = True
        self.pending_or = False
        return i + 1

    def _on_or(self, items: list[Item], i: int) -> int:
        self.after_conj = True
        self.pending_or = True
        if items[i].low == "nor" and self.last_count:
            self.sticky = self.last_group
        return i + 1

    def _on_comma(self, items: list[Item], i: int) -> int:
        return self._on_boundary(items, i)

    def _on_clothing(self, items: list[Item], i: int) -> int:
        self.clothing = True
        self.only = self.only or items[i].entry.only
        return i + 1

    def _on_only(self, items: list[Item], i: int) -> int:
        """ "in black from head to toe" marks the colours just read; "entirely in black" the next."""
        prev = items[i - 1] if i > 0 else None
        if prev is not None and prev.kind in (COLOUR, GARMENT) and self.last_group == _APPEARANCE:
            start = len(self.terms) - self.last_count
            marked: list[Term] = []
            for t in self.terms[start:]:
                if any(f.startswith("?:") for f in t.facets):  # "black from head to toe": clothing
                    colours = [f.partition(":")[2] for f in t.facets]
                    marked += [Term(tuple(f"{r}:{c}" for c in colours), t.negated, t.words) for r in _CLOTHES]
                else:
                    marked.append(t)
            self.terms[start:] = [_only(t) for t in marked]
            self.last_count = len(marked)
        else:
            self.only = True
        return i + 1

    def _on_with(self, items: list[Item], i: int) -> int:
        self.clothing = False
        self.only = False
        self.sticky = None
        return i + 1

    def _on_boundary(self, items: list[Item], i: int) -> int:
        self.neg = False
        self._reset_scope()
        self.clothing = False
        self.only = False
        return i + 1

    def _on_camera(self, items: list[Item], i: int) -> int:
        self.cameras.append(items[i].text)
        return i + 1

    def _on_unknown(self, items: list[Item], i: int) -> int:
        self.unknown.append(items[i].text)
        return i + 1

    def _on_note(self, items: list[Item], i: int) -> int:
        self.notes.append(items[i].text)
        return i + 1

    def _on_colour_word(self, items: list[Item], i: int) -> int:
        return i + 1

    # -- helpers
    def _rides(self, entry: Entry, items: list[Item], i: int) -> bool:
        """Whether a bicycle word at ``i`` is something a person named before rides or pushes."""
        if not (set(entry.labels) <= RIDDEN_CLASSES and "person" in self.classes):
            return False
        # "with a backpack or a bike": an alternative to the carried item before it.
        after_carried = self.pending_or and bool(self.terms) and self.last_group == _APPEARANCE
        after_carried = after_carried and all(f.startswith("carried:") for f in self.terms[-1].facets)
        return after_carried or _ridden(items, i)

    def _reset_scope(self) -> None:
        self.sticky = None
        self.after_conj = False
        self.pending_or = False

    def _add_class(self, entry: Entry, item: Item, na_text: str | None = None, *, reset: bool = True) -> None:
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
        self.only = False  # "all people in red": every person, not all in red
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
            added = [Term(facets, negated, words) for facets, words in terms]
            self.terms += [_only(t) for t in added] if self.only and group == _APPEARANCE else added
        if group == _APPEARANCE:
            self.only = False
        self.last_count = len(terms)
        self.last_group = group
        self.neg = False
        self.sticky = group if negated else None
        self.after_conj = False
        self.pending_or = False

    def _standalone_colours(self, group: list[Item], words: str) -> None:
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
        elif self.clothing or self.only:
            regions = _CLOTHES
            self._add_terms([(tuple(f"{r}:{c}" for c in alternatives), words) for r in regions], _APPEARANCE)
        else:  # where the colour is depends on the classes: decided in finish()
            self._add_terms([(tuple(f"?:{c}" for c in alternatives), words)], _APPEARANCE)

    # -- result
    def finish(self) -> tuple[tuple[str, ...], tuple[Term, ...]]:
        """``(classes, terms)``, with bare colours placed on the regions the classes have."""
        classes = list(self.classes)
        if any(f.startswith(_PERSON_FACET_PREFIXES) for t in self.terms for f in t.facets):
            if "person" not in classes:
                classes.append("person")
        if not classes:
            regions: tuple[str, ...] = ("upper", "lower", "body")
        elif set(classes) <= set(VEHICLE_LABELS):
            regions = ("body",)
        elif "person" in classes and len(classes) == 1:
            regions = PERSON_REGIONS
        else:
            regions = ("upper", "lower", "body")
        terms = []
        for term in self.terms:
            facets: list[str] = []
            for f in term.facets:
                region, _, colour = f.partition(":")
                facets += [f"{r}:{colour}" for r in regions] if region == "?" else [f]
            terms.append(Term(tuple(dict.fromkeys(facets)), term.negated, term.words, term.only))
        unique: list[Term] = []
        for term in terms:
            if term not in unique:
                unique.append(term)
        return tuple(classes), tuple(unique)


def _only(term: Term) -> Term:
    """``term`` as an *only* term when it is a clothing colour ("all in black"), else as it is.

    A negated colour ("not all in black") stays a plain negation.
    """
    colours = all(f.partition(":")[0] in PERSON_REGIONS for f in term.facets)
    colours = colours and all(f.partition(":")[2] in COLOURS for f in term.facets)
    if term.negated or not colours:
        return term
    return Term(term.facets, term.negated, term.words, only=True)


def _ridden(items: list[Item], i: int) -> bool:
    """Whether the class at ``i`` follows "with", "without", "pushing", "riding", "on" (a/the)."""
    k = i - 1
    while k >= 0 and items[k].kind == STOP and items[k].low != "on":
        k -= 1
    return k >= 0 and (items[k].kind in (WITH, NEG) or items[k].low in RIDE_WORDS)


def _light_regions(group: list[Item], conj: str, regions: tuple[str, ...]) -> tuple[str, ...]:
    """The garment regions whose ``light`` term a "light blue jacket" adds beside its blue.

    None for alternatives ("red or light blue jacket": the shade belongs to one of them).
    """
    return () if conj == "or" and len(group) > 1 else tuple(r for r in regions if r in SHADED_REGIONS)


def _lighter(colour: str) -> bool:
    """Whether a colour phrase is a lighter shade of a colour: "light blue", "pale pink"."""
    words = colour.split()
    return len(words) > 1 and words[0] in LIGHTER


def _shade_note(phrase: str) -> str:
    """ "light blue" -> "light (shade)", as listed among the words not analysed."""
    return f"{phrase.split()[0]} (shade)"


def _shaded(colour: str) -> bool:
    """Whether a colour phrase starts with a shade word that did not change its basic terms.

    "light blue" and "bright red" search blue and red; "dark blue" also searches black, so its
    shade was used.
    """
    words = colour.split()
    if len(words) < 2 or words[0] not in SHADE_WORDS:
        return False
    return basic_colours(colour) == basic_colours(" ".join(words[1:]))


def _colour_group(items: list[Item], i: int) -> tuple[list[Item], str, int]:
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
    group: list[Item], conj: str, regions: tuple[str, ...], noun: str
) -> list[tuple[tuple[str, ...], str]]:
    """ "red or blue jacket" -> one term with two alternatives; "red and navy jacket" -> two terms."""
    if conj == "or" or len(group) == 1:
        colours = tuple(dict.fromkeys(c for g in group for c in g.colours))
        words = f"{' or '.join(g.text for g in group)} {noun}"
        return [(tuple(f"{r}:{c}" for c in colours), words) for r in regions]
    return [(tuple(f"{r}:{c}" for c in g.colours), f"{g.text} {noun}") for g in group for r in regions]
