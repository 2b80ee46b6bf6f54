"""Free-text query parser: classes, colour terms, carried items, activity, negation, time, cameras."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from camsight.errors import CamsightError
from camsight.records.facets import FACETS, VEHICLE_LABELS
from camsight.search.query import MAX_QUERY_CHARS, QueryError, parse_query
from camsight.search.query.words import LEXICON
from camsight.search.query_model import ParsedQuery, Term, TimeOfDay

PARIS = ZoneInfo("Europe/Paris")
#: Friday 20 November 2026, 15:30 in Paris.
NOW = datetime(2026, 11, 20, 15, 30, tzinfo=PARIS)
CAMERAS = ("lobby", "garage", "Front Door", "car park", "2")
BAG = ("carried:handbag", "carried:backpack", "carried:suitcase")


def parse(text: str) -> ParsedQuery:
    return parse_query(text, now=NOW, cameras=CAMERAS)


def facets(q: ParsedQuery) -> list[tuple[str, ...]]:
    return [t.facets for t in q.terms]


def negated(q: ParsedQuery) -> list[tuple[str, ...]]:
    return [t.facets for t in q.terms if t.negated]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS)


TODAY = NOW.date()
YESTERDAY = TODAY - timedelta(days=1)


# --- the evaluation queries (../shared/eval/search_dev.json) ---------------------------------------

EVAL = {
    "red and navy jacket": [("upper:red",), ("upper:blue",)],
    "person in a light blue jacket": [("upper:blue",), ("upper:light",)],
    "someone wearing a white hat": [("headwear:white",)],
    "dressed all in black": [("upper:black",), ("lower:black",)],
    "black jacket and blue jeans": [("upper:black",), ("lower:blue",)],
    "blue jeans": [("lower:blue",)],
    "person with a shoulder bag": [("carried:handbag",)],
    "person in black trousers": [("lower:black",)],
}


@pytest.mark.parametrize(("text", "expected"), EVAL.items())
def test_evaluation_queries(text, expected):
    q = parse(text)
    assert facets(q) == expected
    assert q.classes == ("person",)
    assert not any(t.negated for t in q.terms)
    assert q.unknown == ()
    assert q.not_analysed == ()
    assert q.since is None and q.until is None and q.time_of_day is None


@pytest.mark.parametrize(
    ("text", "note"),
    [("light blue jacket", ()), ("bright red top", ("bright (shade)",)),
     ("light blue car", ("light (shade)",)), ("red or light blue coat", ("light (shade)",)),
     ("in light blue", ("light (shade)",)),
     ("dark blue jeans", ()), ("navy jacket", ()), ("light grey car", ())],
)  # fmt: skip
def test_a_shade_that_changed_nothing_is_said_to_be_not_analysed(text, note):
    # "dark blue" also searches black and "light grey" white, and a light garment is a facet: those
    # shades were used. A light car, or one of two alternatives, is not read.
    assert parse(text).not_analysed == note


@pytest.mark.parametrize(
    ("text", "expected"),
    [("light blue jacket", [("upper:blue",), ("upper:light",)]),
     ("pale pink shirt and black trousers", [("upper:pink",), ("upper:light",), ("lower:black",)]),
     ("light grey trousers", [("lower:grey", "lower:white"), ("lower:light",)]),
     ("red or light blue jacket", [("upper:red", "upper:blue")]),
     ("without a light blue jacket", [("upper:blue",)]),
     ("light jeans", [("lower:blue",), ("lower:light",)]),
     ("person in pale clothes", [("upper:light",), ("lower:light",)]),
     ("light coloured top and black trousers", [("upper:light",), ("lower:black",)])],
)  # fmt: skip
def test_a_light_garment_must_also_be_light(text, expected):
    q = parse(text)
    assert facets(q) == expected
    assert q.unknown == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("dark jeans", [("lower:blue", "lower:black")]), ("dark jacket", [("upper:black",)]),
     ("black jeans", [("lower:black",)])],
)  # fmt: skip
def test_dark_jeans_are_dark_denim_or_black(text, expected):
    assert facets(parse(text)) == expected


@pytest.mark.parametrize("text", ["light", "a light car", "without light clothes"])
def test_a_shade_without_a_garment_is_named_not_analysed(text):
    assert "light (shade)" in parse(text).not_analysed


def test_every_facet_produced_is_in_the_vocabulary():
    texts = [
        *EVAL,
        "white van",
        "red car or blue bus",
        "man without a hat running left",
        "woman lying on the floor with a suitcase",
        "person sitting with an umbrella walking towards the camera",
        "standing still",
        "red",
        "teal",
    ]
    for text in texts:
        for term in parse(text).terms:
            assert set(term.facets) <= set(FACETS), (text, term)


# --- describe() --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "described"),
    [
        ("woman wearing a red hat", "person · headwear: red · not analysed: woman"),
        ("white van", "van/truck · body: white"),
        ("vehicle", "vehicle"),
        ("red or blue jacket", "person · upper: red or upper: blue"),
        ("without a backpack", "person · not carried: backpack"),
        ("person at lobby", "person · camera: lobby"),
        ("after 18:00", "between 18:00 and 00:00"),
        ("yesterday", "since 2026-11-19 00:00 · until 2026-11-20 00:00"),
        ("purple unicorn", "upper: purple or lower: purple or body: purple · not understood: unicorn"),
    ],
)
def test_describe_reads_naturally(text, described):
    assert parse(text).describe() == described


def test_describe_default_now_example():
    assert parse_query("woman wearing a red hat").describe() == "person · headwear: red · not analysed: woman"


# --- object classes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word",
    [
        "person", "people", "persons", "someone", "somebody", "anyone", "everyone", "everybody",
        "pedestrian", "pedestrians", "passer-by", "individual", "human", "visitor", "worker",
        "customer", "crowd",
    ],
)  # fmt: skip
def test_person_words(word):
    q = parse(word)
    assert q.classes == ("person",)
    assert q.terms == () and q.not_analysed == () and q.unknown == ()


@pytest.mark.parametrize(
    "word",
    [
        "man", "men", "woman", "women", "guy", "lady", "ladies", "gentleman", "kid", "kids", "child",
        "children", "girl", "boy", "teenager", "toddler", "male", "female", "bloke",
    ],
)  # fmt: skip
def test_sex_and_age_person_words_are_person_and_not_analysed(word):
    q = parse(word)
    assert q.classes == ("person",)
    assert q.terms == ()
    assert q.not_analysed == (word,)


@pytest.mark.parametrize(
    ("text", "classes"),
    [
        ("vehicle", VEHICLE_LABELS),
        ("vehicles", VEHICLE_LABELS),
        ("car", ("car",)),
        ("cars", ("car",)),
        ("sedan", ("car",)),
        ("taxi", ("car",)),
        ("SUV", ("car",)),
        ("van", ("truck",)),
        ("truck", ("truck",)),
        ("lorry", ("truck",)),
        ("lorries", ("truck",)),
        ("pickup", ("truck",)),
        ("pick-up truck", ("truck",)),
        ("minivan", ("car", "truck")),
        ("bus", ("bus",)),
        ("buses", ("bus",)),
        ("coach", ("bus",)),
        ("motorcycle", ("motorcycle",)),
        ("motorbike", ("motorcycle",)),
        ("scooter", ("motorcycle",)),
        ("moped", ("motorcycle",)),
        ("bicycle", ("bicycle",)),
        ("bike", ("bicycle",)),
        ("person or car", ("person", "car")),
        ("cars and buses", ("car", "bus")),
    ],
)
def test_vehicle_and_mixed_classes(text, classes):
    q = parse(text)
    assert q.classes == classes
    assert q.terms == ()


def test_van_is_a_class_filter_only():
    q = parse("a van")
    assert q.classes == ("truck",) and q.terms == ()


def test_jogger_is_a_running_person():
    q = parse("jogger")
    assert q.classes == ("person",) and facets(q) == [("motion:running",)]


def test_clothing_implies_a_person():
    assert parse("red jacket").classes == ("person",)
    assert parse("with a backpack").classes == ("person",)
    assert parse("lying down").classes == ("person",)
    assert parse("running").classes == ()  # vehicles move too
    assert parse("cyclist in a red jacket").classes == ("person",)  # a person with a bicycle


# --- not analysed: sex, age, ethnicity, body, face -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "not_analysed"),
    [
        ("woman", ("woman",)),
        ("old man", ("old", "man")),
        ("young woman", ("young", "woman")),
        ("tall guy", ("tall", "guy")),
        ("short fat man", ("short", "fat", "man")),
        ("bald man with a beard", ("bald", "man", "beard")),
        ("asian woman", ("asian", "woman")),
        ("a white man", ("white man",)),
        ("black guy", ("black guy",)),
        ("brown person", ("brown person",)),
        ("white male", ("white male",)),
        ("middle-aged woman", ("middle aged", "woman")),
        ("blonde girl", ("blonde", "girl")),
        ("red-haired man", ("red haired", "man")),
        ("man with grey hair", ("man", "grey hair")),
        ("dark-skinned man", ("dark skinned", "man")),
        ("suspicious person", ("suspicious",)),
        ("face recognition", ("face recognition",)),
        ("man with glasses", ("man", "glasses")),
    ],
)
def test_not_analysed_words(text, not_analysed):
    q = parse(text)
    assert q.not_analysed == not_analysed
    assert q.unknown == ()


@pytest.mark.parametrize(
    ("with_words", "without"),
    [
        ("woman wearing a red hat", "person wearing a red hat"),
        ("old man in a blue coat", "person in a blue coat"),
        ("tall asian woman with a backpack", "person with a backpack"),
        ("a white man in a black jacket", "person in a black jacket"),
        ("young girl running", "person running"),
        ("elderly lady sitting", "person sitting"),
        ("bald bearded guy with an umbrella", "person with an umbrella"),
    ],
)
def test_not_analysed_words_do_not_change_results(with_words, without):
    a, b = parse(with_words), parse(without)
    assert (a.classes, a.terms, a.since, a.until, a.time_of_day) == (
        b.classes,
        b.terms,
        b.since,
        b.until,
        b.time_of_day,
    )
    assert a.not_analysed and not b.not_analysed


def test_white_is_ethnicity_before_a_person_word_and_colour_after_in():
    assert facets(parse("a white man")) == []
    assert facets(parse("a man in white")) == [("upper:white",), ("lower:white",)]
    assert parse("a man in white").not_analysed == ("man",)
    q = parse("a black man in a white shirt")
    assert facets(q) == [("upper:white",)]
    assert q.not_analysed == ("black man",)


# --- colours on garments -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garment",
    [
        "jacket", "coat", "shirt", "t-shirt", "tshirt", "T-Shirt", "top", "jumper", "sweater", "hoodie",
        "blouse", "vest", "jersey", "sweatshirt", "cardigan", "parka", "blazer", "fleece", "raincoat",
        "jackets", "coats",
    ],
)  # fmt: skip
def test_upper_garments(garment):
    assert facets(parse(f"red {garment}")) == [("upper:red",)]


@pytest.mark.parametrize(
    "garment", ["trousers", "pants", "jeans", "shorts", "skirt", "leggings", "chinos", "tracksuit bottoms"]
)
def test_lower_garments(garment):
    assert facets(parse(f"black {garment}")) == [("lower:black",)]


@pytest.mark.parametrize(
    "garment",
    ["hat", "cap", "beanie", "hood", "helmet", "headscarf", "turban", "hijab", "baseball cap", "bobble hat"],
)
def test_headwear(garment):
    assert facets(parse(f"white {garment}")) == [("headwear:white",)]
    assert facets(parse(f"a {garment}")) == [("headwear:worn",)]


def test_dress_covers_upper_and_lower():
    assert facets(parse("red dress")) == [("upper:red",), ("lower:red",)]
    assert facets(parse("navy uniform")) == [("upper:blue",), ("lower:blue",)]


def test_jeans_imply_blue_unless_a_colour_is_given():
    assert facets(parse("jeans")) == [("lower:blue",)]
    assert facets(parse("person in jeans")) == [("lower:blue",)]
    assert facets(parse("blue jeans")) == [("lower:blue",)]
    assert facets(parse("black jeans")) == [("lower:black",)]
    assert facets(parse("grey or black jeans")) == [("lower:grey", "lower:black")]


def test_hi_vis_implies_yellow_or_orange():
    assert facets(parse("hi-vis jacket")) == [("upper:yellow", "upper:orange")]
    assert facets(parse("worker in high visibility vest")) == [("upper:yellow", "upper:orange")]
    assert facets(parse("orange hi-vis vest")) == [("upper:orange",)]


def test_garment_without_colour_is_reported_not_analysed():
    q = parse("man in a jacket")
    assert q.terms == () and q.not_analysed == ("man", "jacket")


@pytest.mark.parametrize(
    "text",
    ["in black", "dressed in black", "dressed all in black", "wearing black", "all in black", "all black",
     "man in black", "someone dressed in black"],
)  # fmt: skip
def test_in_black_is_upper_and_lower(text):
    assert facets(parse(text)) == [("upper:black",), ("lower:black",)]


@pytest.mark.parametrize(
    ("text", "only"),
    [("in black", False), ("dressed in black", False), ("dressed all in black", True),
     ("all in black", True), ("all black", True), ("man wearing all black", True),
     ("black from head to toe", True), ("in black from head to toe", True),
     ("entirely in black", True), ("completely black", True)],
)  # fmt: skip
def test_all_in_a_colour_means_no_other_colour(text, only):
    q = parse(text)
    assert facets(q) == [("upper:black",), ("lower:black",)]
    assert [t.only for t in q.terms] == [only, only]
    assert q.describe().startswith("person · upper: black only" if only else "person · upper: black ·")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # "all" before people counts them, not their colours.
        ("all people in red", "person · upper: red · lower: red"),
        # A negation stays a plain one; a vehicle's paint is not clothing.
        ("not all in black", "person · not upper: black · not lower: black"),
        ("all white van", "van/truck · body: white"),
        # It reaches the colours that follow it, not a later hat.
        ("all in black with a red hat", "person · upper: black only · lower: black only · headwear: red"),
        ("all black jacket", "person · upper: black only"),
    ],
)
def test_only_applies_to_clothing_colours_it_names(text, expected):
    assert parse(text).describe() == expected


def test_in_black_and_white_allows_either_per_region():
    assert facets(parse("dressed in black and white")) == [
        ("upper:black", "upper:white"),
        ("lower:black", "lower:white"),
    ]


def test_man_in_black_with_a_white_bag():
    q = parse("man in black with a white bag")
    assert q.classes == ("person",)
    assert facets(q) == [("upper:black",), ("lower:black",), BAG]
    assert q.not_analysed == ("man", "white (bag colour)")


def test_multi_colour_garments():
    assert facets(parse("red and navy jacket")) == [("upper:red",), ("upper:blue",)]
    assert facets(parse("red or blue jacket")) == [("upper:red", "upper:blue")]
    assert facets(parse("red/blue jacket")) == [("upper:red", "upper:blue")]
    assert facets(parse("red, white and blue shirt")) == [("upper:red",), ("upper:white",), ("upper:blue",)]
    assert facets(parse("navy and black striped jumper")) == [("upper:blue",), ("upper:black",)]
    assert parse("navy and black striped jumper").not_analysed == ("striped",)


def test_separate_garments_keep_their_colours():
    assert facets(parse("red jacket, blue jeans and a white cap")) == [
        ("upper:red",),
        ("lower:blue",),
        ("headwear:white",),
    ]
    assert facets(parse("white T-Shirt and jeans")) == [("upper:white",), ("lower:blue",)]
    assert facets(parse("red jacket or blue jacket")) == [("upper:red", "upper:blue")]


def test_colour_after_the_garment():
    assert facets(parse("jacket in red")) == [("upper:red",)]
    assert facets(parse("a coat that is green")) == [("upper:green",)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("crimson jacket", [("upper:red",)]),
        ("burgundy coat", [("upper:red",)]),
        ("maroon jumper", [("upper:red",)]),
        ("navy hoodie", [("upper:blue",)]),
        ("navy blue coat", [("upper:blue",)]),
        ("sky-blue shirt", [("upper:blue",)]),
        ("teal top", [("upper:blue", "upper:green")]),
        ("beige trousers", [("lower:brown", "lower:white")]),
        ("khaki shorts", [("lower:green", "lower:brown")]),
        ("cream coat", [("upper:white", "upper:yellow")]),
        ("charcoal suit", [("upper:grey", "upper:black"), ("lower:grey", "lower:black")]),
        ("lavender cardigan", [("upper:purple",)]),
        ("olive trousers", [("lower:green",)]),
        ("hot pink top", [("upper:pink",)]),
        ("forest green jacket", [("upper:green",)]),
        ("light blue jacket", [("upper:blue",), ("upper:light",)]),
        ("dark blue jacket", [("upper:blue", "upper:black")]),
        ("light grey hoodie", [("upper:grey", "upper:white"), ("upper:light",)]),
        ("gray hoodie", [("upper:grey",)]),
        ("off-white coat", [("upper:white",)]),
        ("denim jacket", [("upper:blue",)]),
        ("dark clothing", [("upper:black",), ("lower:black",)]),
    ],
)
def test_colour_names_beyond_the_basic_terms(text, expected):
    assert facets(parse(text)) == expected


def test_uncommon_colour_nouns_count_only_next_to_a_garment():
    assert facets(parse("stone coat")) == [("upper:grey", "upper:brown")]
    q = parse("lying on the grass")
    assert facets(q) == [("posture:lying",)]
    assert q.unknown == ("grass",)


def test_a_bare_colour_is_anywhere_on_the_object():
    assert facets(parse("red")) == [("upper:red", "lower:red", "body:red")]
    assert facets(parse("person red")) == [("upper:red", "lower:red", "headwear:red")]
    assert facets(parse("red with a backpack")) == [
        ("upper:red", "lower:red", "headwear:red"),
        ("carried:backpack",),
    ]


def test_colours_of_accessories_are_not_analysed():
    q = parse("man with red shoes")
    assert q.terms == () and q.not_analysed == ("man", "red shoes")
    q = parse("a red hat and a blue scarf")
    assert facets(q) == [("headwear:red",)] and q.not_analysed == ("blue scarf",)


# --- vehicles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "classes", "expected"),
    [
        ("white van", ("truck",), [("body:white",)]),
        ("red car", ("car",), [("body:red",)]),
        ("silver car", ("car",), [("body:grey",)]),
        ("white or silver car", ("car",), [("body:white", "body:grey")]),
        ("red and white bus", ("bus",), [("body:red",), ("body:white",)]),
        ("black motorbike", ("motorcycle",), [("body:black",)]),
        ("red car or blue van", ("car", "truck"), [("body:red", "body:blue")]),
        ("car in red", ("car",), [("body:red",)]),
    ],
)
def test_vehicle_colours(text, classes, expected):
    q = parse(text)
    assert q.classes == classes
    assert facets(q) == expected


# --- carried items -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("with a backpack", ("carried:backpack",)),
        ("carrying a rucksack", ("carried:backpack",)),
        ("knapsack", ("carried:backpack",)),
        ("person with a handbag", ("carried:handbag",)),
        ("holding a purse", ("carried:handbag",)),
        ("shoulder bag", ("carried:handbag",)),
        ("tote bag", ("carried:handbag",)),
        ("satchel", ("carried:handbag",)),
        ("with a bag", BAG),
        ("bags", BAG),
        ("suitcase", ("carried:suitcase",)),
        ("pulling a suitcase", ("carried:suitcase",)),
        ("luggage", ("carried:suitcase",)),
        ("trolley case", ("carried:suitcase",)),
        ("roller bag", ("carried:suitcase",)),
        ("umbrella", ("carried:umbrella",)),
        ("holding an umbrella", ("carried:umbrella",)),
    ],
)
def test_carried_items(text, expected):
    q = parse(text)
    assert facets(q) == [expected]
    assert q.classes == ("person",)


def test_backpack_or_suitcase_is_one_term():
    assert facets(parse("backpack or suitcase")) == [("carried:backpack", "carried:suitcase")]


def test_carried_item_colour_is_not_analysed():
    q = parse("black backpack")
    assert facets(q) == [("carried:backpack",)]
    assert q.not_analysed == ("black (backpack colour)",)


# --- posture, motion, heading --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lying on the ground", ("posture:lying",)),
        ("lying down", ("posture:lying",)),
        ("person lying", ("posture:lying",)),
        ("fallen", ("posture:lying",)),
        ("a man who fell over", ("posture:lying",)),
        ("on the floor", ("posture:lying",)),
        ("sitting", ("posture:sitting",)),
        ("seated", ("posture:sitting",)),
        ("sitting down", ("posture:sitting",)),
        ("standing", ("posture:standing",)),
        ("running", ("motion:running",)),
        ("jogging", ("motion:running",)),
        ("sprinting", ("motion:running",)),
        ("walking", ("motion:walking",)),
        ("standing still", ("motion:stationary",)),
        ("loitering", ("motion:stationary",)),
        ("stationary", ("motion:stationary",)),
        ("not moving", ("motion:stationary",)),
        ("moving", ("motion:walking", "motion:running")),
    ],
)
def test_posture_and_motion(text, expected):
    q = parse(text)
    assert facets(q) == [expected]
    assert not q.terms[0].negated


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("going left", [("heading:left",)]),
        ("heading right", [("heading:right",)]),
        ("moving to the left", [("heading:left",)]),
        ("car driving right", [("heading:right",)]),
        ("left to right", [("heading:right",)]),
        ("from right to left", [("heading:left",)]),
        ("towards the camera", [("heading:down",)]),
        ("coming towards the camera", [("heading:down",)]),
        ("approaching", [("heading:down",)]),
        ("away from the camera", [("heading:up",)]),
        ("walking left", [("motion:walking",), ("heading:left",)]),
        ("running away", [("motion:running",), ("heading:up",)]),
        ("walking towards the camera", [("motion:walking",), ("heading:down",)]),
    ],
)
def test_headings(text, expected):
    assert facets(parse(text)) == expected


def test_a_bare_left_is_not_a_heading():
    q = parse("person left")
    assert q.terms == () and q.unknown == ("left",)


# --- negation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("without a backpack", [("carried:backpack",)]),
        ("person without backpack", [("carried:backpack",)]),
        ("no hat", [("headwear:worn",)]),
        ("not wearing a helmet", [("headwear:worn",)]),
        ("not running", [("motion:running",)]),
        ("with no bag", [BAG]),
        ("w/o a bag", [BAG]),
        ("not sitting", [("posture:sitting",)]),
        ("without a red hat", [("headwear:red",)]),
        ("not in black", [("upper:black",), ("lower:black",)]),
    ],
)
def test_negation(text, expected):
    q = parse(text)
    assert facets(q) == expected
    assert all(t.negated for t in q.terms)


def test_negation_carries_over_or_and_nor():
    assert negated(parse("without a hat or a backpack")) == [("headwear:worn",), ("carried:backpack",)]
    assert negated(parse("neither hat nor backpack")) == [("headwear:worn",), ("carried:backpack",)]
    assert negated(parse("with no bag or umbrella")) == [BAG, ("carried:umbrella",)]
    assert negated(parse("not running or walking")) == [("motion:running",), ("motion:walking",)]


def test_negation_stops_at_but_and_with():
    q = parse("no backpack but an umbrella")
    assert [(t.facets, t.negated) for t in q.terms] == [
        (("carried:backpack",), True),
        (("carried:umbrella",), False),
    ]
    q = parse("without a hat, with a backpack")
    assert [(t.facets, t.negated) for t in q.terms] == [
        (("headwear:worn",), True),
        (("carried:backpack",), False),
    ]


def test_negating_a_class_is_explained_not_applied():
    q = parse("no cars")
    assert q.classes == ("car",) and q.terms == ()
    assert any("excluding a kind of object" in n for n in q.notes)


def test_term_words_explain_the_match():
    q = parse("woman wearing a red hat")
    assert q.terms == (Term(("headwear:red",), False, "red hat"),)
    assert parse("without a backpack").terms[0].label() == "not carried: backpack"


# --- time ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "since", "until"),
    [
        ("yesterday", at(YESTERDAY, 0), at(TODAY, 0)),
        ("today", at(TODAY, 0), None),
        ("yesterday after 6pm", at(YESTERDAY, 18), at(TODAY, 0)),
        ("yesterday after 18:00", at(YESTERDAY, 18), at(TODAY, 0)),
        ("yesterday before 9am", at(YESTERDAY, 0), at(YESTERDAY, 9)),
        ("yesterday between 2pm and 3pm", at(YESTERDAY, 14), at(YESTERDAY, 15)),
        ("yesterday from 14:00 to 15:30", at(YESTERDAY, 14), at(YESTERDAY, 15, 30)),
        ("yesterday morning", at(YESTERDAY, 6), at(YESTERDAY, 12)),
        ("yesterday evening", at(YESTERDAY, 18), at(TODAY, 0)),
        ("yesterday at noon", at(YESTERDAY, 11, 30), at(YESTERDAY, 12, 30)),
        ("this morning", at(TODAY, 6), at(TODAY, 12)),
        ("this afternoon", at(TODAY, 12), None),  # until 18:00 is still to come
        ("tonight", at(TODAY, 18), None),
        ("last night", at(YESTERDAY, 18), at(TODAY, 6)),
        ("last night after 10pm", at(YESTERDAY, 22), at(TODAY, 6)),
        ("the day before yesterday", at(TODAY - timedelta(days=2), 0), at(YESTERDAY, 0)),
        ("on monday", at(date(2026, 11, 16), 0), at(date(2026, 11, 17), 0)),
        ("Monday", at(date(2026, 11, 16), 0), at(date(2026, 11, 17), 0)),
        ("monday morning", at(date(2026, 11, 16), 6), at(date(2026, 11, 16), 12)),
        ("on friday", at(TODAY, 0), None),  # today is a Friday
        ("last friday", at(date(2026, 11, 13), 0), at(date(2026, 11, 14), 0)),
        ("on saturday", at(date(2026, 11, 14), 0), at(date(2026, 11, 15), 0)),
        ("2026-11-03", at(date(2026, 11, 3), 0), at(date(2026, 11, 4), 0)),
        ("on 2026-11-03 after 8pm", at(date(2026, 11, 3), 20), at(date(2026, 11, 4), 0)),
        ("03/11/2026", at(date(2026, 11, 3), 0), at(date(2026, 11, 4), 0)),
        ("3rd november", at(date(2026, 11, 3), 0), at(date(2026, 11, 4), 0)),
        ("november 3", at(date(2026, 11, 3), 0), at(date(2026, 11, 4), 0)),
        ("25 december", at(date(2025, 12, 25), 0), at(date(2025, 12, 26), 0)),  # the most recent one
        ("nov 3rd 2025", at(date(2025, 11, 3), 0), at(date(2025, 11, 4), 0)),
        ("last week", at(date(2026, 11, 9), 0), at(date(2026, 11, 16), 0)),
        ("this week", at(date(2026, 11, 16), 0), None),
        ("last month", at(date(2026, 10, 1), 0), at(date(2026, 11, 1), 0)),
        ("last weekend", at(date(2026, 11, 14), 0), at(date(2026, 11, 16), 0)),
        ("since yesterday", at(YESTERDAY, 0), None),
        ("since monday", at(date(2026, 11, 16), 0), None),
        ("since 9am", at(TODAY, 9), None),
        ("since 6pm", at(YESTERDAY, 18), None),  # 18:00 today is still to come
    ],
)
def test_days_and_absolute_bounds(text, since, until):
    q = parse(text)
    assert (q.since, q.until) == (since, until)
    assert q.time_of_day is None
    assert q.unknown == ()


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("last 2 hours", timedelta(hours=2)),
        ("in the last 30 minutes", timedelta(minutes=30)),
        ("past 3 days", timedelta(days=3)),
        ("last hour", timedelta(hours=1)),
        ("the past hour", timedelta(hours=1)),
        ("last two hours", timedelta(hours=2)),
        ("last 24h", timedelta(hours=24)),
        ("within the last 45 mins", timedelta(minutes=45)),
        ("last couple of hours", timedelta(hours=2)),
        ("last few minutes", timedelta(minutes=3)),
        ("last half hour", timedelta(minutes=30)),
        ("the last week", timedelta(days=7)),
        ("past 2 weeks", timedelta(days=14)),
        ("2 hours ago", timedelta(hours=2)),
        ("since an hour ago", timedelta(hours=1)),
    ],
)
def test_relative_since(text, delta):
    q = parse(text)
    assert q.since == NOW - delta
    assert q.until is None and q.time_of_day is None
    assert q.since.tzinfo is not None


def test_relative_days_keep_the_wall_clock_across_daylight_saving():
    q = parse("past month")  # back across the end of summer time (25 October)
    assert q.since == datetime(2026, 10, 21, 15, 30, tzinfo=PARIS)
    assert q.since.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("after 18:00", time(18), time(0)),
        ("after 6 pm", time(18), time(0)),
        ("after 6pm", time(18), time(0)),
        ("after 6.30pm", time(18, 30), time(0)),
        ("after 6 p.m.", time(18), time(0)),
        ("before 9am", time(0), time(9)),
        ("before 09:00", time(0), time(9)),
        ("until 9am", time(0), time(9)),
        ("between 14:00 and 15:30", time(14), time(15, 30)),
        ("between 2 and 3pm", time(14), time(15)),
        ("from 2pm to 3pm", time(14), time(15)),
        ("2-3pm", time(14), time(15)),
        ("14:00-15:30", time(14), time(15, 30)),
        ("between 9 and 5pm", time(9), time(17)),
        ("from 10pm to 2", time(22), time(2)),
        ("at 3pm", time(14, 30), time(15, 30)),
        ("around 15:00", time(14, 30), time(15, 30)),
        ("18:00", time(17, 30), time(18, 30)),
        ("in the morning", time(6), time(12)),
        ("at night", time(18), time(6)),
        ("overnight", time(18), time(6)),
        ("in the evening", time(18), time(0)),
        ("during the day", time(6), time(18)),
        ("after midnight", time(0), time(6)),
        ("1800 hrs", time(17, 30), time(18, 30)),
        ("after 9 o'clock", time(9), time(0)),
    ],
)
def test_time_of_day_without_a_day(text, start, end):
    q = parse(text)
    assert q.time_of_day == TimeOfDay(start, end)
    assert q.since is None and q.until is None
    assert q.unknown == ()


def test_time_of_day_window_contains():
    night = parse("at night").time_of_day
    assert (
        night is not None
        and night.contains(time(23))
        and night.contains(time(2))
        and not night.contains(time(12))
    )


def test_a_multi_day_span_keeps_the_daily_window():
    q = parse("last week after 6pm")
    assert (q.since, q.until) == (at(date(2026, 11, 9), 0), at(date(2026, 11, 16), 0))
    assert q.time_of_day == TimeOfDay(time(18), time(0))


def test_bare_hours_are_read_and_explained():
    q = parse("after 6")
    assert q.time_of_day == TimeOfDay(time(6), time(0))
    assert any("06:00" in n for n in q.notes)
    q = parse("tonight after 8")
    assert q.since == at(TODAY, 20) and q.notes == ()


@pytest.mark.parametrize("text", ["13pm", "25:00", "2026-02-30", "31 february"])
def test_impossible_times_and_dates_are_reported(text):
    q = parse(text)
    assert q.since is None and q.until is None and q.time_of_day is None
    assert q.unknown and q.notes


def test_tomorrow_is_in_the_future():
    q = parse("tomorrow")
    assert q.since == at(TODAY + timedelta(days=1), 0)
    assert any("future" in n for n in q.notes)


def test_time_is_taken_out_of_the_rest_of_the_query():
    q = parse("white van yesterday after 18:00")
    assert q.classes == ("truck",)
    assert facets(q) == [("body:white",)]
    assert (q.since, q.until) == (at(YESTERDAY, 18), at(TODAY, 0))
    assert q.unknown == ()


def test_bounds_use_the_timezone_of_now():
    tokyo = timezone(timedelta(hours=9))
    q = parse_query("yesterday", now=datetime(2026, 1, 2, 1, 0, tzinfo=tokyo))
    assert q.since == datetime(2026, 1, 1, 0, 0, tzinfo=tokyo)
    assert q.until == datetime(2026, 1, 2, 0, 0, tzinfo=tokyo)


def test_now_defaults_to_local_aware_time():
    q = parse_query("last 2 hours")
    assert q.since is not None and q.since.tzinfo is not None
    expected = datetime.now().astimezone() - timedelta(hours=2)
    assert abs((q.since - expected).total_seconds()) < 60


def test_naive_now_is_taken_as_local_time():
    q = parse_query("yesterday", now=datetime(2026, 11, 20, 12, 0))
    assert q.since is not None and q.since.tzinfo is not None
    assert q.since.replace(tzinfo=None) == datetime(2026, 11, 19, 0, 0)


def test_too_far_back_is_explained():
    q = parse("last 999999 years")
    assert q.since is None and any("too far back" in n for n in q.notes)


# --- cameras -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cameras"),
    [
        ("at lobby", ("lobby",)),
        ("at the lobby", ("lobby",)),
        ("person in the lobby", ("lobby",)),
        ("on camera garage", ("garage",)),
        ("garage camera", ("garage",)),
        ("Garage", ("garage",)),
        ("lobby", ("lobby",)),
        ("at front door", ("Front Door",)),
        ("front-door cam", ("Front Door",)),
        ("in the car park", ("car park",)),
        ("camera 2", ("2",)),
        ("at 2", ("2",)),
        ("lobby or garage", ("lobby", "garage")),
    ],
)
def test_cameras(text, cameras):
    q = parse(text)
    assert q.cameras == cameras
    assert q.unknown == () and q.time_of_day is None


def test_a_camera_name_that_is_a_number_needs_camera_or_at():
    q = parse("2 people")
    assert q.cameras == () and q.unknown == ("2",)


def test_camera_names_do_not_swallow_vocabulary():
    q = parse_query("car", now=NOW, cameras=["car park"])
    assert q.classes == ("car",) and q.cameras == ()
    q = parse_query("red car at car", now=NOW, cameras=["car"])
    assert q.classes == ("car",) and q.cameras == ("car",)


def test_unknown_camera_is_explained():
    q = parse("on camera 7")
    assert q.cameras == () and q.unknown == ("7",)
    assert any("no camera called '7'" in n for n in q.notes)


def test_without_known_cameras_place_words_are_unknown():
    q = parse_query("person at lobby", now=NOW)
    assert q.cameras == () and q.unknown == ("lobby",)


# --- unknown words, stopwords, hostile input ------------------------------------------------------


def test_stopwords_are_consumed_silently():
    q = parse("please show me someone who is wearing a red jacket")
    assert q.unknown == () and q.not_analysed == ()
    assert facets(q) == [("upper:red",)]


def test_unknown_words_keep_their_spelling():
    q = parse("Person with a Pram near the Kiosk")
    assert q.classes == ("person",)
    assert q.unknown == ("Pram", "Kiosk")


def test_everything_together():
    q = parse(
        "man in a red jacket and black trousers with a backpack, walking left yesterday after 5pm at lobby"
    )
    assert q.classes == ("person",)
    assert facets(q) == [
        ("upper:red",),
        ("lower:black",),
        ("carried:backpack",),
        ("motion:walking",),
        ("heading:left",),
    ]
    assert q.cameras == ("lobby",)
    assert (q.since, q.until) == (at(YESTERDAY, 17), at(TODAY, 0))
    assert q.not_analysed == ("man",) and q.unknown == ()


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM tracks; DROP TABLE tracks; --",
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        "${jndi:ldap://x}",
        "../../etc/passwd",
        "😀🚗💥",
        "red\x00jacket\x07",
        "ｒｅｄ　ｊａｃｋｅｔ",  # full-width
        "İSTANBUL straße",
        "\u202eevil",
        "a" * MAX_QUERY_CHARS,
        "red " * (MAX_QUERY_CHARS // 4),
        "9" * MAX_QUERY_CHARS,
        "- / , . ; : ! ? ( ) [ ] { }",
        "not not not no without",
        "and or and or",
        "between and",
        "after",
        "last",
        "camera",
        "on camera",
        "12:",
        "99:99",
        "2026-99-99",
        "w/",
    ],
)
def test_never_raises_on_odd_text(text):
    q = parse(text)
    assert isinstance(q, ParsedQuery)
    assert isinstance(q.describe(), str)
    assert set(q.classes) <= {"person", *VEHICLE_LABELS}
    for term in q.terms:
        assert set(term.facets) <= set(FACETS)


def test_full_width_and_control_characters_are_normalised():
    assert facets(parse("ｒｅｄ　ｊａｃｋｅｔ")) == [("upper:red",)]
    assert facets(parse("red\x00jacket")) == [("upper:red",)]


def test_random_word_salad_never_raises():
    rng = random.Random(20261120)
    vocabulary = [
        *LEXICON,
        *EVAL,
        "18:00", "6pm", "2-3pm", "2026-11-20", "20/11/2026", "13pm", "99", "💥", "\x00", "-", "/", ",",
        "w/o", "'", "lobby", "2", "navy", "sky", "dark", "light",
    ]  # fmt: skip
    for _ in range(400):
        text = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 30)))[:MAX_QUERY_CHARS]
        if rng.random() < 0.3:
            text = "".join(rng.choice(text + "-/,.") for _ in text)
        try:
            q = parse(text)
        except QueryError:
            assert not text.strip(" -/,.") or not text.strip()
            continue
        for term in q.terms:
            assert set(term.facets) <= set(FACETS), (text, term)


@pytest.mark.parametrize("text", ["", " ", "\t\n", "\x00\x01", "\u200b\u200b"])
def test_empty_query_is_an_error(text):
    with pytest.raises(QueryError, match="empty search query"):
        parse(text)


def test_over_long_query_is_an_error():
    parse("a" * MAX_QUERY_CHARS)
    with pytest.raises(QueryError, match="501 characters long; the limit is 500"):
        parse("a" * (MAX_QUERY_CHARS + 1))
    with pytest.raises(QueryError):
        parse("red jacket " * 10_000)


def test_query_error_is_a_camsight_error():
    assert issubclass(QueryError, CamsightError)
    with pytest.raises(CamsightError):
        parse_query(None)  # type: ignore[arg-type]


def test_text_is_kept():
    assert parse("  Red jacket  ").text == "Red jacket"


def test_parse_is_deterministic_and_cameras_accepts_any_sequence():
    a = parse_query("red car at garage", now=NOW, cameras=["garage"])
    b = parse_query("red car at garage", now=NOW, cameras=("garage",))
    assert a == b
    assert parse_query("red car", now=NOW.astimezone(UTC), cameras=[]).classes == ("car",)
