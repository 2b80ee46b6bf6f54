"""Colour words -> basic colour terms: the table, the colour science, and the decisions on ambiguous names."""

from __future__ import annotations

import doctest

import pytest

from camsight.records.facets import COLOURS
from camsight.search import colour_words
from camsight.search.colour_words import (
    basic_colours,
    colour_table,
    delta_e2000,
    hex_to_lab,
    is_common_colour,
    nearest_basic_colours,
    normalise_name,
)


def test_docstring_examples_hold():
    result = doctest.testmod(colour_words)
    assert result.failed == 0 and result.attempted > 5


@pytest.mark.parametrize("term", COLOURS)
def test_basic_terms_map_to_themselves(term):
    assert basic_colours(term) == (term,)


def test_table_is_a_real_colour_name_table():
    table = colour_table()
    assert len(table) > 900  # XKCD survey (~950) + CSS4 (~150), deduplicated
    for name, terms in table.items():
        assert 1 <= len(terms) <= 2, name
        assert set(terms) <= set(COLOURS), name
        assert len(set(terms)) == len(terms), name
    assert colour_table() is table  # built once


def test_every_basic_term_gets_names():
    counts = {term: 0 for term in COLOURS}
    for terms in colour_table().values():
        counts[terms[0]] += 1
    assert all(count >= 3 for count in counts.values()), counts  # black: "black", "almost black"…


# Decisions on ambiguous names, documented in the module docstring.
DECISIONS = {
    "crimson": ("red",),
    "scarlet": ("red",),
    "burgundy": ("red",),
    "maroon": ("red",),
    "navy": ("blue",),
    "indigo": ("blue",),
    "denim": ("blue",),
    "cobalt": ("blue",),
    "teal": ("blue", "green"),
    "turquoise": ("blue", "green"),
    "aqua": ("blue", "green"),
    "beige": ("brown", "white"),
    "cream": ("white", "yellow"),
    "ivory": ("white",),
    "khaki": ("green", "brown"),
    "tan": ("brown", "yellow"),
    "camel": ("brown",),
    "taupe": ("brown",),
    "charcoal": ("grey", "black"),
    "silver": ("grey",),
    "gold": ("yellow",),
    "mustard": ("yellow",),
    "lavender": ("purple",),
    "lilac": ("purple",),
    "violet": ("purple",),
    "plum": ("purple",),
    "magenta": ("pink", "purple"),
    "fuchsia": ("pink",),
    "mauve": ("pink", "purple"),
    "olive": ("green",),
    "emerald": ("green",),
    "mint": ("green",),
    "coral": ("red", "orange"),
    "peach": ("orange",),
    "rust": ("brown",),
    "wine": ("red", "purple"),
}


@pytest.mark.parametrize(("name", "expected"), DECISIONS.items())
def test_decisions_on_common_clothing_colours(name, expected):
    assert basic_colours(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("navy blue", ("blue",)),
        ("sky blue", ("blue",)),
        ("royal blue", ("blue",)),
        ("forest green", ("green",)),
        ("bottle green", ("green",)),
        ("hot pink", ("pink",)),
        ("off white", ("white",)),
        ("blood red", ("red",)),
        ("robin's egg blue", ("blue",)),
        ("blue with a hint of purple", ("purple", "blue")),
    ],
)
def test_multi_word_names(name, expected):
    assert basic_colours(name) == expected


@pytest.mark.parametrize("spelling", ["Navy-Blue", "NAVY BLUE", "navy  blue", " navy_blue "])
def test_case_hyphens_and_spaces_do_not_matter(spelling):
    assert basic_colours(spelling) == ("blue",)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("light blue", ("blue",)),
        ("pale blue", ("blue",)),
        ("bright red", ("red",)),
        ("pastel pink", ("pink",)),
        ("baby blue", ("blue",)),
        ("dark blue", ("blue", "black")),
        ("dark green", ("green", "black")),
        ("deep red", ("red", "black")),
        ("very dark blue", ("blue", "black")),
        ("dark grey", ("grey", "black")),
        ("light grey", ("grey", "white")),
        ("light gray", ("grey", "white")),
        ("pale grey", ("grey", "white")),
        ("dark navy", ("blue", "black")),
        ("dark black", ("black",)),
        ("dark teal", ("blue", "green")),  # already two terms: no third
        ("light crimson", ("red",)),
    ],
)
def test_modifiers_keep_the_basic_term(name, expected):
    assert basic_colours(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gray", ("grey",)),
        ("grey", ("grey",)),
        ("reddish", ("red",)),
        ("bluish", ("blue",)),
        ("blackish", ("black",)),
        ("whitish", ("white",)),
        ("greeny", ("green",)),
        ("orangey", ("orange",)),
    ],
)
def test_spellings_and_suffixes(name, expected):
    assert basic_colours(name) == expected


@pytest.mark.parametrize(
    "word",
    [
        "",
        "   ",
        "jacket",
        "man",
        "dark",
        "pale",
        "light",
        "very",
        "blonde",
        "ginger",
        "123",
        "🚗",
        "x" * 1000,
    ],
)
def test_non_colours_are_empty(word):
    assert basic_colours(word) == ()


def test_non_string_is_empty():
    assert basic_colours(None) == ()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("word", "common"),
    [
        ("red", True),
        ("navy", True),
        ("burgundy", True),
        ("sky blue", True),
        ("light navy", True),
        ("Dark-Grey", True),
        ("sky", False),
        ("grass", False),
        ("stone", False),
        ("blood", False),
        ("jacket", False),
        ("", False),
    ],
)
def test_is_common_colour(word, common):
    assert is_common_colour(word) is common


def test_normalise_name():
    assert normalise_name("Light-Gray") == "light grey"
    assert normalise_name("  Robin's   Egg  ") == "robin s egg"


def test_hex_to_lab_reference_values():
    assert [round(v, 1) for v in hex_to_lab("#ffffff")] == [100.0, 0.0, 0.0]
    assert [round(v, 1) for v in hex_to_lab("#000000")] == [0.0, 0.0, 0.0]
    lab = hex_to_lab("#ff0000")
    assert lab == pytest.approx((53.24, 80.09, 67.20), abs=0.05)


@pytest.mark.parametrize(
    ("lab1", "lab2", "expected"),
    [  # test data of Sharma, Wu & Dalal (2005)
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
        ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ],
)
def test_ciede2000_matches_published_data(lab1, lab2, expected):
    assert delta_e2000(lab1, lab2) == pytest.approx(expected, abs=1e-4)
    assert delta_e2000(lab2, lab1) == pytest.approx(expected, abs=1e-4)


def test_nearest_basic_colours_of_plain_rgb():
    assert nearest_basic_colours("#ff0000") == ("red",)
    assert nearest_basic_colours("#0000ff") == ("blue",)
    assert nearest_basic_colours("#ffffff") == ("white",)
    assert nearest_basic_colours("#808080") == ("grey",)
    assert nearest_basic_colours("#ffa500")[0] == "orange"


def test_works_without_matplotlib(monkeypatch):
    """Without matplotlib the built-in core table still answers the common names."""
    monkeypatch.setattr(colour_words, "_matplotlib_colour_data", lambda: None)
    colour_words.colour_table.cache_clear()
    colour_words._basic_colours.cache_clear()
    try:
        assert len(colour_table()) < 200
        assert basic_colours("navy") == ("blue",)
        assert basic_colours("burgundy") == ("red",)
        assert basic_colours("dark blue") == ("blue", "black")
        assert basic_colours("sky") == ()
    finally:
        monkeypatch.undo()
        colour_words.colour_table.cache_clear()
        colour_words._basic_colours.cache_clear()
    assert len(colour_table()) > 900
