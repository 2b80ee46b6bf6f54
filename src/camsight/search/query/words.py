"""The query vocabulary: phrase -> :class:`Entry` (:data:`LEXICON`) and item kinds.

Every word or phrase the lexer understands is listed here, grouped by what
it becomes: object classes, garments and their body regions, carried items,
posture, motion and heading, grammar words, and words deliberately not
analysed. Colour names are not listed: they come from
:mod:`camsight.search.colour_words`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from camsight.records.facets import VEHICLE_LABELS

# Item kinds.
CLASS = "class"
COLOUR = "colour"
GARMENT = "garment"
CARRIED = "carried"
ACCESSORY = "accessory"
BODY = "body"  # hair, skin, beard: a colour before it is not analysed
FACET = "facet"
DIRECTION = "direction"
MOVE = "move"
NEG = "neg"
NEG_WEAR = "neg_wear"
AND = "and"
OR = "or"
COMMA = "comma"
CLOTHING = "clothing"
ONLY = "only"  # "from head to toe", "entirely": the colour is all the region shows
WITH = "with"
BOUNDARY = "boundary"
STOP = "stop"
NOT_ANALYSED = "not_analysed"
MODIFIER = "modifier"
SHADE = "shade"
COLOUR_WORD = "colour_word"
CAMERA = "camera"
CAMERA_WORD = "camera_word"
UNKNOWN = "unknown"
NOTE = "note"


@dataclass(frozen=True)
class Entry:
    kind: str
    labels: tuple[str, ...] = ()  # CLASS: detector labels
    facets: tuple[tuple[str, ...], ...] = ()  # one Term per inner tuple (alternatives)
    regions: tuple[str, ...] = ()  # GARMENT: body regions
    default: tuple[str, ...] = ()  # GARMENT: colours implied when none is given (jeans: blue)
    na: bool = False  # CLASS: the word is also listed as not analysed ("woman")
    human: bool = False  # CLASS: a person word, so "white man" is skin colour
    generic: bool = False  # GARMENT: "clothes", "outfit" (no type to report)
    colours: tuple[str, ...] = ()  # COLOUR entries of the vocabulary ("dark")
    strong: bool = True
    value: str = ""  # DIRECTION: heading value
    only: bool = False  # CLOTHING: "all in", "wearing all": the colours that follow are all worn


LEXICON: dict[str, Entry] = {}


def _add(entry: Entry, *phrases: str) -> None:
    """Add phrases to the vocabulary; each argument is a comma-separated list of phrases."""
    for group in phrases:
        for phrase in group.split(","):
            key = " ".join(phrase.split())
            if key:
                LEXICON[key] = entry


def _person(*phrases: str, na: bool = False, terms: tuple[tuple[str, ...], ...] = ()) -> None:
    _add(Entry(CLASS, labels=("person",), na=na, human=True, facets=terms), *phrases)


# People. Words that carry sex or age are also listed as not analysed.
_person(
    "person, persons, people, someone, somebody, anyone, anybody, everyone, everybody, individual",
    "individuals, human, humans",
    "pedestrian, pedestrians, passerby, passer by, passers by, visitor, visitors, worker, workers, staff",
    "employee, employees, customer, customers, shopper, shoppers, courier, couriers, guard, guards",
    "security guard, officer, police officer, cleaner, student, students, crowd, group of people",
    "driver, drivers, delivery driver, delivery drivers, delivery man, postman, postwoman, traveller",
)
_person(
    "man, men, woman, women, guy, guys, lady, ladies, gentleman, gentlemen, gent, gents, dude, bloke",
    "blokes, chap, lad, lads, lass, gal, girl, girls, boy, boys, kid, kids, child, children, teen, teens",
    "teenager, teenagers, youth, youths, youngster, youngsters, toddler, toddlers, baby, babies, infant",
    "adult, adults, pensioner, pensioners, male, males, female, females, mother, father, mum, mom, dad",
    "grandmother, grandfather, grandma, grandpa, granny, son, daughter, wife, husband, boyfriend",
    "girlfriend, schoolboy, schoolgirl, schoolchildren",
    na=True,
)
_person("jogger, joggers, runner, runners", terms=(("motion:running",),))
_person("walker, walkers", terms=(("motion:walking",),))

# Vehicles (COCO has no van: vans and lorries are "truck").
_add(Entry(CLASS, labels=VEHICLE_LABELS), "vehicle, vehicles, motor vehicle, traffic")
_add(
    Entry(CLASS, labels=("car",)),
    "car, cars, sedan, sedans, saloon, hatchback, suv, suvs, jeep, taxi, taxis, cab, cabs, automobile",
    "coupe, estate car, police car, convertible, minicab",
)
_add(
    Entry(CLASS, labels=("truck",)),
    "van, vans, truck, trucks, lorry, lorries, pickup, pickups, hgv, tanker, pick up, pick up truck",
    "pickup truck, box truck, camper van, campervan, delivery van, transit van",
)
_add(Entry(CLASS, labels=("car", "truck")), "minivan, minivans, mpv, people carrier")
_add(Entry(CLASS, labels=("bus",)), "bus, buses, coach, coaches, minibus, minibuses")
_add(
    Entry(CLASS, labels=("motorcycle",)),
    "motorcycle, motorcycles, motorbike, motorbikes, motorcyclist, motorcyclists, moped, mopeds",
    "scooter, scooters, biker, bikers, motor bike, motor cycle",
)
_add(
    Entry(CLASS, labels=("bicycle",)),
    "bicycle, bicycles, bike, bikes, pushbike, push bike, e bike, ebike",
)
#: Items a person rides or pushes: after "with", "riding", "pushing", "on" they are a facet of the
#: person (builder), not a second class: "person with a bicycle" is a cyclist, not "or a bicycle".
RIDDEN_CLASSES = frozenset({"bicycle"})
RIDE_WORDS = frozenset({"riding", "rides", "cycling", "on"})
_person("cyclist, cyclists, bicyclist, bicyclists", terms=(("carried:bicycle",),))

# Garments -> body regions ("dress" covers both). Plurals are found by lookup.
_add(
    Entry(GARMENT, regions=("upper",)),
    "jacket, coat, shirt, tshirt, t shirt, tee, tee shirt, top, jumper, sweater, hoodie, hoody, blouse",
    "vest, jersey, sweatshirt, cardigan, parka, blazer, anorak, fleece, gilet, waistcoat, polo",
    "polo shirt, raincoat, rain coat, overcoat, trench coat, windbreaker, poncho, tunic, pullover",
    "cagoule, bomber, tank top, body warmer, upper body, torso",
)
_add(
    Entry(GARMENT, regions=("upper",), default=("yellow", "orange")),
    "hi vis, high vis, hi viz, high viz, hivis, hiviz, high visibility, hi vis jacket, hi vis vest",
    "high vis jacket, high vis vest, high visibility jacket, high visibility vest, safety vest",
    "reflective vest, reflective jacket",
)
_add(
    Entry(GARMENT, regions=("lower",)),
    "trousers, pants, shorts, skirt, leggings, chinos, slacks, bottoms, tights, sweatpants, cargos",
    "tracksuit bottoms, track pants, sweat pants, lower body, legs",
)
_add(Entry(GARMENT, regions=("lower",), default=("blue",)), "jeans, denims")
_add(Entry(GARMENT, regions=("lower",), default=("green", "brown")), "khakis")
_add(
    Entry(GARMENT, regions=("upper", "lower")),
    "dress, dresses, gown, robe, abaya, suit, tracksuit, uniform, overalls, dungarees, jumpsuit",
    "onesie, coveralls, boiler suit",
)
_add(Entry(GARMENT, regions=("upper", "lower"), generic=True), "clothes, clothing, outfit, attire, gear")
_add(
    Entry(GARMENT, regions=("headwear",)),
    "hat, cap, beanie, hood, helmet, headscarf, headscarves, head scarf, turban, hijab, bandana, beret",
    "balaclava, headwear, headgear, kippah, yarmulke, bonnet, fedora, baseball cap, bobble hat",
    "bucket hat, hard hat, cowboy hat, woolly hat, top hat, sun hat, flat cap, hood up",
)

# Carried items. A plain "bag" could be any of three.
_add(
    Entry(CARRIED, facets=(("carried:backpack",),)),
    "backpack, rucksack, knapsack, daypack, schoolbag, back pack, school bag",
)
_add(
    Entry(CARRIED, facets=(("carried:handbag",),)),
    "handbag, hand bag, purse, tote, tote bag, satchel, clutch, briefcase, shoulder bag, messenger bag",
    "shopping bag, carrier bag, laptop bag, bum bag",
)
_add(
    Entry(CARRIED, facets=(("carried:handbag", "carried:backpack", "carried:suitcase"),)),
    "bag, holdall, duffel bag, duffle bag, sports bag, gym bag",
)
_add(
    Entry(CARRIED, facets=(("carried:suitcase",),)),
    "suitcase, luggage, trolley case, roller bag, rolling bag, rolling suitcase, wheeled suitcase",
    "wheelie bag, wheelie case, trolley bag, carry on, cabin bag",
)
_add(Entry(CARRIED, facets=(("carried:umbrella",),)), "umbrella, brolly, parasol")

# Accessories and body parts: understood, not analysed (nor is a colour before them).
_add(
    Entry(ACCESSORY),
    "shoes, shoe, boots, boot, trainers, sneakers, sandals, heels, socks, gloves, scarf, scarves, tie",
    "glasses, sunglasses, spectacles, mask, belt, jewellery, jewelry, necklace, earrings, lanyard",
    "headphones, face mask, face covering, walking stick, stick, cane, crutches, walker frame",
)
_add(Entry(BODY), "hair, haired, skin, skinned, complexion, eyes, eyed, beard, bearded, moustache, mustache")

# Posture and motion.
_add(
    Entry(FACET, facets=(("posture:lying",),)),
    "lying, laying, lies, fallen, fell, collapsed, prone, lying down, laying down, lying flat",
    "lying on the ground, lying on the floor, laying on the ground, laying on the floor",
    "on the ground, on the floor, fallen down, fallen over, fell down, fell over, has fallen, a fall",
)
_add(
    Entry(FACET, facets=(("posture:sitting",),)),
    "sitting, seated, sat, sits, sitting down, sat down, crouching, kneeling, squatting",
)
_add(Entry(FACET, facets=(("posture:standing",),)), "standing, stood, stands, standing up, upright")
_add(
    Entry(FACET, facets=(("motion:running",),)),
    "running, run, runs, ran, jogging, jog, jogs, sprinting, sprint, sprints, rushing, fleeing",
)
_add(
    Entry(FACET, facets=(("motion:walking",),)),
    "walking, walk, walks, walked, strolling, stroll, wandering, pacing, on foot",
)
_add(
    Entry(FACET, facets=(("motion:stationary",),)),
    "still, loitering, loiter, loiters, loiterer, lingering, stationary, motionless, idle, idling",
    "waiting, stopped, parked, static, immobile, standing still, stood still, staying still",
    "not moving, hanging around, hanging about",
)
_add(Entry(MOVE), "going, goes, heading, heads, headed, travelling, traveling, driving, drives, riding")
_add(Entry(MOVE), "rides, cycling, turning, coming, comes")
_add(Entry(MOVE, facets=(("motion:walking", "motion:running"),)), "moving, moves, in motion")

# Heading: "up" is away from the camera, "down" towards it. A bare "left" is a heading only
# after a movement word ("going left"); "towards the left" is one anywhere.
for _side in ("left", "right"):
    _add(
        Entry(FACET, facets=((f"heading:{_side}",),)),
        f"to the {_side}, towards the {_side}, toward the {_side}, {_side}ward, {_side}wards",
    )
_add(Entry(FACET, facets=(("heading:right",),)), "left to right, from left to right")
_add(Entry(FACET, facets=(("heading:left",),)), "right to left, from right to left")
_add(
    Entry(FACET, facets=(("heading:down",),)),
    "towards the camera, toward the camera, towards camera, toward camera, to the camera, towards us",
    "towards me, approaching, approaching the camera, coming towards, coming toward",
    "coming towards the camera, coming toward the camera, downwards, down the screen",
)
_add(
    Entry(FACET, facets=(("heading:up",),)),
    "away from the camera, away from camera, away from us, away from me, upwards, up the screen",
)
for _word in ("left", "right", "up", "down", "away"):
    _add(Entry(DIRECTION, value="up" if _word == "away" else _word), _word)

# Grammar.
_add(
    Entry(NEG),
    "without, no, not, never, neither, non, isn't, aren't, wasn't, doesn't, don't, hasn't, is not",
    "are not, was not, does not, do not, has no, have no, with no, without any, with out",
    "doesn't have, does not have, don't have, not carrying, not holding, not with",
)
_add(Entry(NEG_WEAR), "not wearing, isn't wearing, is not wearing, not dressed in, not in")
_add(Entry(AND), "and, plus, as well as, also")
_add(Entry(OR), "or, either, and or, nor")
_add(Entry(CLOTHING), "in, wearing, wears, wore, dressed, clad, dressed in, clad in, who is wearing")
_add(Entry(CLOTHING, only=True), "all, dressed all in, all in, in all, wearing all, dressed all in all")
_add(
    Entry(ONLY),
    "head to toe, from head to toe, top to bottom, from top to bottom, entirely",
    "completely, totally, wholly, all over",
)
_add(
    Entry(WITH),
    "with, carrying, carries, carried, holding, holds, held, has, having, had, pulling, pushing",
    "dragging, wheeling, toting, has got, have got",
)
_add(Entry(BOUNDARY), "who, that, which, but, while, whilst, when, where, then")
_add(
    Entry(STOP),
    "a, an, the, is, are, was, were, be, been, being, of, some, any, it, its, their, his, her, he",
    "she, they, them, this, these, those, there, here, i, me, my, we, us, our, you, your, please",
    "show, find, search, look, looking, for, get, give, list, footage, video, videos, clip, clips",
    "recording, recordings, image, images, photo, photos, picture, pictures, frame, frames, seen",
    "spotted, just, only, very, really, quite, too, something, anything, thing, things, object",
    "objects, detected, appear, appears, appearing, visible, captured, recorded, near, by, around",
    "about, from, to, at, on, into, onto, out, over, through, across, along, past, can, could",
    "would, should, will, do, does, did, want, need, like, see, saw, go, cameras, shade, kind, type",
    "sort, wear, worn, head, toe, front, behind, inside, outside, after, before, since, until, till",
    "between, same, every, each, other, another, whose, whom, what",
    "in front of, next to, there is, there are, has been",
)
_add(Entry(COLOUR_WORD), "coloured, colored, colour, color, toned, tone, shade of, shades of")
_add(Entry(CAMERA_WORD), "camera, cam, cctv")
_add(Entry(COLOUR, colours=("black",), strong=False), "dark")
# A shade with no colour name: "light jeans", "pale clothes" (with a name, "light blue" is a colour).
_add(Entry(SHADE), "light, pale, pastel, lightish")

# Words understood but deliberately not analysed (DESIGN.md): sex, age, body, ethnicity,
# religion, face, and judgements about a person.
_add(
    Entry(NOT_ANALYSED),
    "masculine, feminine, transgender, trans, old, older, elderly, aged, young, younger, senior",
    "teenage, underage, middle aged, years old, year old, tall, short, fat, thin, skinny, slim",
    "overweight, obese, heavyset, stocky, muscular, athletic, bald, balding, tattoo, tattoos",
    "tattooed, pregnant, disabled, wheelchair, limping, blind, blonde, blond, brunette, redhead",
    "ginger, curly, fair, light skinned, fair skinned, pale skinned, fair haired, light haired",
    "asian, african, african american, caucasian, hispanic, latino, latina, latinx, arab, arabic",
    "indian, chinese, japanese, korean, european, middle eastern, mixed race, jewish, muslim",
    "christian, sikh, hindu, foreign, foreigner, immigrant, ethnic",
    "face, faces, facial, face recognition, facial recognition, identity, identify",
    "suspicious, suspect, dodgy, shady, thief, thieves, criminal, burglar, drunk, homeless, beggar",
    "gang, thug, aggressive, angry, nervous, happy, sad, attractive, beautiful, pretty, ugly",
    "handsome, cute, sexy, number plate, license plate, licence plate, plate, registration",
)
# Pattern, material, size and style of a garment: accepted, not analysed ("striped shirt").
_add(
    Entry(MODIFIER),
    "big, large, small, little, tiny, huge, long, striped, stripy, checked, checkered, chequered",
    "plaid, tartan, dotted, polka, floral, patterned, camo, camouflage, leather, woolly, woollen",
    "wool, knitted, puffer, puffy, padded, quilted, baggy, tight, loose, sleeveless, hooded, zip",
    "zipped, waterproof, winter, summer, sports, sporty, thick, formal, casual, smart, business",
    "designer, branded, logo, print, printed, heavy",
)
#: Colour words read as skin colour, not clothing, directly before a person word ("a white man").
SKIN_COLOURS = frozenset({"white", "black", "brown", "yellow", "dark", "tan"})
CAMERA_PREPOSITIONS = frozenset({"at", "on", "in", "from", "via", "camera", "cam", "cctv", "the"})
NOUN_KINDS = frozenset({GARMENT, CLASS, CARRIED, ACCESSORY, BODY})
MAX_PHRASE = 6


def _singulars(word: str) -> list[str]:
    out = []
    if word.endswith("ies") and len(word) > 4:
        out.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        out.append(word[:-2])
    if word.endswith("s") and len(word) > 2:
        out.append(word[:-1])
    return out


def lookup(words: Sequence[str]) -> Entry | None:
    """The entry for a phrase, trying singular forms of its last word for nouns."""
    key = " ".join(words)
    entry = LEXICON.get(key)
    if entry is not None:
        return entry
    for singular in _singulars(words[-1]):
        entry = LEXICON.get(" ".join([*words[:-1], singular]))
        if entry is not None and entry.kind in NOUN_KINDS:
            return entry
    return None
