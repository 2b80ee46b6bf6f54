"""Stages 3 and 4 of the query parser (cameras, phrases): tokens the time grammar left -> :class:`Item` list.

Longest phrase first, against the vocabulary (:mod:`.words`), colour names
and the known camera names; a word found nowhere may be a misspelling of a
vocabulary word (:mod:`.fuzzy`), and is read as that word when it is near enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from camsight.search.colour_words import basic_colours, is_common_colour
from camsight.search.query.fuzzy import correct
from camsight.search.query.tokens import MAX_QUERY_CHARS, Token, clean, tokenize
from camsight.search.query.words import (
    AND,
    BOUNDARY,
    CAMERA,
    CAMERA_PREPOSITIONS,
    CAMERA_WORD,
    COLOUR,
    COMMA,
    MAX_PHRASE,
    NOTE,
    OR,
    UNKNOWN,
    Entry,
    lookup,
)


@dataclass
class Item:
    kind: str
    text: str
    low: str
    entry: Entry = field(default_factory=lambda: Entry(UNKNOWN))
    colours: tuple[str, ...] = ()
    strong: bool = True


class Lexer:
    """Tokens not used by the time parser -> items (longest phrase first)."""

    def __init__(self, tokens: list[Token], consumed: set[int], cameras: Sequence[str]) -> None:
        self.tokens = tokens
        self.consumed = consumed
        self.cameras: dict[tuple[str, ...], str] = {}
        for name in cameras:
            if isinstance(name, str) and len(name) <= MAX_QUERY_CHARS:
                key = tuple(t.low for t in tokenize(clean(name)) if t.kind in ("word", "num"))
                if key:
                    self.cameras.setdefault(key, name)
        self.items: list[Item] = []
        #: Misspelt words read as vocabulary words, as "persn → person".
        self.corrections: list[str] = []

    def lex(self) -> list[Item]:
        """The items, with a boundary where each time expression was."""
        toks: list[Token | None] = []  # None marks where a time expression was
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
                self.items.append(Item(BOUNDARY, "", ""))
                i += 1
                continue
            i = self._lex_at(toks, i)
        return self.items

    def _lex_at(self, toks: list[Token | None], i: int) -> int:
        tok = toks[i]
        assert tok is not None
        if tok.kind == "punct":
            self._punct(tok)
            return i + 1
        if tok.kind == "symbol":
            kind = AND if tok.text == "+" else UNKNOWN
            self.items.append(Item(kind, tok.text, tok.low))
            return i + 1
        if tok.kind not in ("word", "num"):
            self.items.append(Item(UNKNOWN, tok.text, tok.low))
            return i + 1
        run = []  # the words from i up to the next punctuation or time expression
        for t in toks[i : i + MAX_PHRASE]:
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
        if item is None and not cam_len and tok.kind == "word":
            # Not a word camsight knows: perhaps a misspelt one ("persn"). Read it as the
            # vocabulary word, then look for phrases again ("backpak" -> "backpack").
            fixed = correct(tok.low)
            if fixed is not None:
                phrase_len, item = self._phrase_at([Token("word", fixed, fixed), *run[1:]])
                if item is not None:
                    self.corrections.append(f"{tok.text} → {fixed}")
        if item is not None:
            if item.kind == CAMERA_WORD and self._unknown_camera(run):
                return i + 2
            self.items.append(item)
            return i + phrase_len
        self.items.append(Item(UNKNOWN, tok.text, tok.low))
        return i + 1

    def _punct(self, tok: Token) -> None:
        c = tok.text
        if c == ",":
            self.items.append(Item(COMMA, c, c))
        elif c in ";.!?:":
            self.items.append(Item(BOUNDARY, c, c))
        elif c == "&":
            self.items.append(Item(AND, c, c))
        elif c == "/":
            self.items.append(Item(OR, c, c))
        # quotes, brackets and the like carry no meaning here

    def _phrase_at(self, run: list[Token]) -> tuple[int, Item | None]:
        lows = [t.low for t in run]
        for n in range(len(run), 0, -1):
            words = lows[:n]
            text = " ".join(t.text for t in run[:n])
            if any(t.kind != "word" for t in run[:n]):
                continue
            entry = lookup(words)
            if entry is not None:
                if entry.kind == COLOUR:
                    return n, Item(COLOUR, text, " ".join(words), entry, entry.colours, entry.strong)
                return n, Item(entry.kind, text, " ".join(words), entry)
            colours = basic_colours(" ".join(words))
            if colours:
                strong = is_common_colour(" ".join(words))
                return n, Item(COLOUR, text, " ".join(words), Entry(COLOUR), colours, strong)
        return 0, None

    def _camera_at(self, lows: list[str]) -> tuple[int, str]:
        for n in range(len(lows), 0, -1):
            name = self.cameras.get(tuple(lows[:n]))
            if name is not None:
                return n, name
        return 0, ""

    def _camera_allowed(self, key: list[str], phrase_len: int, toks: list[Token | None], i: int) -> bool:
        """A one-word camera name that is also a vocabulary word or a number needs "at"/"camera"."""
        if len(key) > 1 or (phrase_len == 0 and not key[0].isdigit()):
            return True
        before = toks[i - 1] if i > 0 else None
        after = toks[i + 1] if i + 1 < len(toks) else None
        return (before is not None and before.low in CAMERA_PREPOSITIONS) or (
            after is not None and after.low in ("camera", "cam", "cctv")
        )

    def _add_camera(self, name: str) -> None:
        while self.items and self.items[-1].low in CAMERA_PREPOSITIONS:
            self.items.pop()
        self.items.append(Item(CAMERA, name, name))

    def _unknown_camera(self, run: list[Token]) -> bool:
        """ "on camera 7" where there is no camera 7: say so, and keep the name as not understood."""
        if len(run) < 2 or run[0].low not in ("camera", "cam", "cctv"):
            return False
        if self._camera_at([t.low for t in run[1:]])[0]:
            return False
        name = run[1]
        if lookup([name.low]) is not None or basic_colours(name.low):
            return False
        known = ", ".join(sorted(self.cameras.values())) if self.cameras else "none given"
        self.items.append(Item(UNKNOWN, name.text, name.low))
        self.items.append(Item(BOUNDARY, "", ""))
        note = f"no camera called '{name.text}' (known cameras: {known})"
        self.items.append(Item(NOTE, note, note))
        return True
