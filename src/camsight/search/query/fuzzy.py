"""Misspelt query words -> the vocabulary word meant ("persn" -> "person"), with rapidfuzz.

Only a word the lexer found nowhere (no phrase, colour or camera) is tried,
and only against single vocabulary words that carry meaning: object classes,
garments, carried items, colours, posture and motion words, negation, and the
words accepted but not analysed. Stop words, conjunctions and camera names
are never targets, so a typo can neither invent a camera nor turn into "the".

What counts as close enough is deliberately tight, because a wrong reading
changes the results while an unknown word is merely listed as not understood:

* words under :data:`MIN_LETTERS` letters are not corrected ("bat", "dog");
* the first letter must be right ("glass" is not "lass");
* words of 4-5 letters take one missing, extra or swapped letter, or one
  vowel for another, but no other changed letter: "blak" -> black, "bule" ->
  blue, "jeens" -> jeans, while "wall" stays "wall" (not "walk") and "cart"
  stays "cart" (not "cars");
* words of 6-7 letters take any one edit ("hoddie" -> hoodie), longer words
  two ("trowsars" -> trousers);
* targets shorter than 4 letters are left out ("hate" is not "hat");
* when two different readings are equally close the word is not corrected;
* an English word in its own right is not a typo (:func:`english_word`): "drinking"
  is not "driving", "couple" not "coupe", "building" not "balding".

The distance is the optimal string alignment distance (Levenshtein plus
adjacent transpositions) from ``rapidfuzz.distance.OSA``.
"""

from __future__ import annotations

import functools

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from spellchecker import SpellChecker

from camsight.search.colour_words import COMMON_COLOUR_WORDS
from camsight.search.query.words import AND, BOUNDARY, CAMERA_WORD, COLOUR_WORD, LEXICON, OR, STOP

#: Shortest word that is corrected, and shortest vocabulary word a correction may give.
MIN_LETTERS = 4
#: Item kinds that are never the reading of a misspelt word: they carry no facet,
#: and reading a typo as "the" or "camera" would only hide it.
_NOT_TARGETS = frozenset({STOP, AND, OR, BOUNDARY, CAMERA_WORD, COLOUR_WORD})
#: How often a word must occur in pyspellchecker's English word counts (from film subtitles) to
#: be a word of its own: "stroller" 793, "carts" 1,870, "drinking" 86,378; typos of vocabulary
#: words are absent or at its floor of 50 ("truk", "redd"), and "blu" has 173.
ENGLISH_COUNT = 500


@functools.cache
def vocabulary() -> tuple[str, ...]:
    """The single words a misspelling may be read as, sorted."""
    words = {k for k, e in LEXICON.items() if " " not in k and e.kind not in _NOT_TARGETS}
    words |= {w for w in COMMON_COLOUR_WORDS if " " not in w}
    return tuple(sorted(w for w in words if len(w) >= MIN_LETTERS and w.isalpha()))


@functools.cache
def _english_words() -> frozenset[str]:
    # Read once, when a first word needs it (0.2 s): most queries have no unknown word. Only the
    # common words are kept (about 3 MB, against 36 MB for the whole list).
    counts = SpellChecker(language="en", distance=1).word_frequency.dictionary
    return frozenset(w for w, n in counts.items() if n >= ENGLISH_COUNT)


def english_word(word: str) -> bool:
    """Whether ``word`` is a common English word (not a misspelling of another).

    >>> english_word("drinking"), english_word("persn")
    (True, False)
    """
    return word.lower() in _english_words()


def max_edits(word: str) -> int:
    """Edits allowed for a word of this length (0: not corrected)."""
    n = len(word)
    if n < MIN_LETTERS:
        return 0
    return 1 if n <= 7 else 2


_VOWELS = frozenset("aeiouy")


def _allowed(word: str, target: str) -> bool:
    """Same first letter; in short words no changed letter, except one vowel for another."""
    if word[0] != target[0]:
        return False  # "glass" is not "lass": typos seldom touch the first letter
    if len(word) > 5 or len(word) != len(target):
        return True  # a longer word, or one letter missing or extra (the distance is 1)
    diff = [i for i, (a, b) in enumerate(zip(word, target, strict=True)) if a != b]
    if len(diff) == 1:  # "jeens" -> jeans, "navi" -> navy; not "wall" -> walk
        return word[diff[0]] in _VOWELS and target[diff[0]] in _VOWELS
    return len(diff) == 2 and diff[1] == diff[0] + 1 and word[diff[0]] == target[diff[1]]


def correct(word: str) -> str | None:
    """The vocabulary word ``word`` most likely misspells, or ``None``.

    >>> correct("persn"), correct("jakcet"), correct("wall"), correct("xqzv"), correct("drinking")
    ('person', 'jacket', None, None, None)
    """
    word = word.lower()
    limit = max_edits(word)
    if not limit or not word.isalpha() or word in LEXICON or english_word(word):
        return None
    found = process.extract(word, vocabulary(), scorer=OSA.distance, score_cutoff=limit, limit=None)
    candidates = [(target, dist) for target, dist, _ in found if _allowed(word, target)]
    if not candidates:
        return None
    best = min(d for _, d in candidates)
    nearest = [t for t, d in candidates if d == best]
    if len(nearest) > 1:
        # Equally near: the one sharing more letters in order wins; a tie stays unread.
        ranked = sorted(nearest, key=lambda t: -fuzz.ratio(word, t))
        if fuzz.ratio(word, ranked[0]) == fuzz.ratio(word, ranked[1]) and not _same_meaning(ranked[:2]):
            return None
        nearest = ranked
    return nearest[0]


def _same_meaning(words: list[str]) -> bool:
    entries = [LEXICON.get(w) for w in words]
    return all(e is not None for e in entries) and len({id(e) for e in entries}) == 1
