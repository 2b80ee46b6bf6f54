"""Stage 1 of the query parser: raw text -> :class:`Token` list.

Unicode normalisation, "w/" and "w/o", then a single regular expression that
tells words, numbers, clock times, dates and punctuation apart. Everything
later in the pipeline (time grammar, lexer) works on these tokens.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Longest query accepted, in characters.
MAX_QUERY_CHARS = 500


@dataclass(frozen=True)
class Token:
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


def clean(text: str) -> str:
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


def tokenize(text: str) -> list[Token]:
    """Split cleaned text into tokens; a dash between two words is dropped."""
    raw: list[Token] = []
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup or "other"
        value = m.group()
        if kind == "word":
            raw.append(Token("word", value, _normal_word(value)))
        elif kind == "other":
            cat = unicodedata.category(value)
            raw.append(Token("punct" if cat[0] == "P" else "symbol", value, value))
        else:
            raw.append(Token(kind, value, value.lower().replace(" ", "")))
    # A dash between two words joins nothing: "t-shirt" is "t shirt", "light-blue" is "light blue".
    tokens: list[Token] = []
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
