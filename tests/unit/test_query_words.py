"""Every word counts: misspellings read as vocabulary words, and queries with nothing to search for."""

from __future__ import annotations

import pytest

from camsight.search.query import parse_query
from camsight.search.query.fuzzy import correct, vocabulary
from camsight.search.query.words import LEXICON, STOP

CAMERAS = ("lobby", "garage", "Front Door")


def parse(text: str):
    return parse_query(text, cameras=CAMERAS)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("persn", "person"),
        ("jakcet", "jacket"),
        ("trowsers", "trousers"),
        ("trowsars", "trousers"),  # two edits in a long word
        ("backpak", "backpack"),
        ("umbrela", "umbrella"),
        ("blak", "black"),  # a letter missing
        ("bule", "blue"),  # two letters swapped
        ("jeens", "jeans"),  # one vowel for another
        ("navi", "navy"),
        ("oragne", "orange"),
        ("hoddie", "hoodie"),
        ("withot", "without"),
        ("denm", "denim"),
    ],
)
def test_misspellings_are_read_as_the_vocabulary_word(typed, meant):
    assert correct(typed) == meant


@pytest.mark.parametrize(
    "word",
    [
        "xqzv", "blorf", "gnarp",  # gibberish
        "bat", "red", "gry",  # under four letters: not corrected
        "wall", "walls", "cart",  # real words one changed consonant from walk, walks, cars
        "glass",  # not "lass": the first letter must be right
        "hate",  # "hat" is too short to be a target
        "bench", "door", "shopping",
    ],
)  # fmt: skip
def test_words_that_are_no_misspelling_stay_unread(word):
    assert correct(word) is None


@pytest.mark.parametrize(
    ("word", "not_this"),
    [
        ("drinking", "driving"), ("couple", "coupe"), ("building", "balding"), ("stroller", "stroll"),
        ("carts", "cars"), ("boat", "boot"), ("park", "parka"), ("office", "officer"),
        ("tracks", "trucks"), ("buggy", "baggy"),
    ],
)  # fmt: skip
def test_an_english_word_is_not_read_as_a_vocabulary_word_it_resembles(word, not_this):
    assert correct(word) is None
    q = parse(f"man {word} near the door")
    assert q.corrections == () and word in q.unknown


def test_a_couple_walking_is_people_not_a_car():
    q = parse("a couple walking together")
    assert "car" not in q.classes and q.corrections == ()


def test_stop_words_and_camera_words_are_never_targets():
    stop = {k for k, e in LEXICON.items() if e.kind == STOP}
    assert not stop & set(vocabulary())
    assert "camera" not in vocabulary()
    assert all(len(w) >= 4 for w in vocabulary())


def test_a_misspelt_query_means_the_same_and_says_how_it_was_read():
    typo, right = parse("persn in gray shirt"), parse("person in grey shirt")
    assert typo.classes == right.classes == ("person",)
    assert [t.facets for t in typo.terms] == [t.facets for t in right.terms] == [("upper:grey",)]
    assert typo.corrections == ("persn → person",)
    assert typo.unknown == ()
    assert "read as: persn → person" in typo.describe()


def test_variants_reach_the_vocabulary():
    assert [t.facets for t in parse("navy t-shirt").terms] == [("upper:blue",)]
    assert [t.facets for t in parse("denim jacket").terms] == [("upper:blue",)]
    assert [t.facets for t in parse("gray trousers").terms] == [("lower:grey",)]
    assert [t.facets for t in parse("people with backpacks").terms] == [("carried:backpack",)]
    assert [t.facets for t in parse("someone with a backpak").terms] == [("carried:backpack",)]
    assert parse("someone with a backpak").corrections == ("backpak → backpack",)


def test_a_correction_continues_a_phrase():
    # "blak" is read as "black", which then joins "jeans" as a colour of the lower body.
    q = parse("blak jeans")
    assert [t.facets for t in q.terms] == [("lower:black",)]


def test_camera_names_are_matched_only_against_the_callers_cameras():
    assert parse_query("person at lobby", cameras=["lobby"]).cameras == ("lobby",)
    hidden = parse_query("person at lobby", cameras=["garage"])
    assert hidden.cameras == () and hidden.unknown == ("lobby",)
    # Nor is a near miss of a camera name corrected into one.
    assert parse_query("person at lobbby", cameras=["lobby"]).cameras == ()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("xqzv blorf gnarp", "nothing camsight can search for · not understood: xqzv, blorf, gnarp"),
        ("the a of with", "nothing camsight can search for · only common words: the, a, of, with"),
        ("tall", "nothing camsight can search for · not analysed: tall"),
    ],
)
def test_a_query_with_nothing_to_search_for_says_so(text, said):
    q = parse(text)
    assert not q.analysable()
    assert q.describe() == said


def test_unknown_words_in_a_good_query_are_listed():
    q = parse("person in a red jacket xqzv")
    assert q.analysable()
    assert q.unknown == ("xqzv",)
    assert q.describe().endswith("not understood: xqzv")


@pytest.mark.parametrize("text", ["woman", "person at lobby", "yesterday", "at lobby", "red"])
def test_classes_cameras_times_and_colours_are_analysable(text):
    assert parse(text).analysable()
