"""Colour words -> the basic colour terms camsight stores.

camsight stores only the eleven basic colour terms of
:data:`camsight.records.facets.COLOURS`; people type many more
("navy", "burgundy", "khaki", "sky blue"). This module maps any of about
1,100 colour names to one or two basic terms:

* The names and their RGB values come from a real colour-name table: the
  XKCD colour survey (about 950 names chosen by people naming colours,
  preferred because that is what query words mean) and the CSS4 names,
  both as shipped by matplotlib (already installed, as a dependency of
  supervision). Without matplotlib a small built-in table of common names
  is used.
* Each RGB value is converted to CIELAB and compared (CIEDE2000) with a few
  reference colours per basic term (:data:`REFERENCES`: a light, a middle
  and a dark variant where the term covers a wide range). The nearest term
  wins; the second nearest is kept as an alternative when it is almost as
  near (within ``max(2, 15 %)`` of the best distance), so "khaki" is
  brown-or-green and "charcoal" is grey-or-black. Teal sits between green
  and blue, so its reference belongs to both terms.
* A few names are decided by hand (:data:`OVERRIDES`) where the table value
  and everyday clothing usage disagree.
* Modifiers keep the basic term: "light blue" -> blue; "dark blue" -> blue
  or black (a dark colour often reads as black on camera); "light grey" ->
  grey or white.

Decisions on names people use for clothing and vehicles (checked in
``tests/unit/test_colour_words.py``):

=========  ===============  =========================================================
name       basic terms      why
=========  ===============  =========================================================
crimson    red
burgundy   red              a dark red
maroon     red              maroon clothing is called a dark red, not a brown
navy       blue
teal       blue, green      between the two; people split
turquoise  blue, green
beige      brown, white     by hand: the table puts it nearest white/yellow, but
                            beige is a light brown, and it reads as white in sun
cream      white, yellow
khaki      green, brown
tan        brown, yellow
charcoal   grey, black
silver     grey
gold       yellow
lavender   purple
magenta    pink, purple
olive      green
wine       red, purple      by hand: "wine" clothing is a dark red
=========  ===============  =========================================================

Example::

    >>> basic_colours("navy")
    ('blue',)
    >>> basic_colours("dark blue")
    ('blue', 'black')
    >>> basic_colours("jacket")
    ()
"""

from __future__ import annotations

import functools
import importlib.util
import math
import re
from collections.abc import Mapping
from types import ModuleType

from camsight.records.facets import COLOURS

#: Reference sRGB colours of each basic term. A term covering a wide range of
#: lightness or hue has several; ``#008080`` (teal) belongs to both green and blue.
REFERENCES: dict[str, tuple[str, ...]] = {
    "black": ("#000000", "#1a1a1a"),
    "white": ("#ffffff", "#f0f0e8"),
    "grey": ("#808080", "#b0b0b0", "#505050"),
    "red": ("#e00000", "#b00020", "#800000"),
    "orange": ("#ff8000", "#e06010"),
    "yellow": ("#ffff00", "#f0d000"),
    "green": ("#00a000", "#008000", "#80c040", "#004d00", "#008080"),
    "blue": ("#0000ff", "#1e50c8", "#87ceeb", "#000080", "#4080c0", "#008080"),
    "purple": ("#800080", "#8040c0", "#b090d0"),
    "pink": ("#ff80c0", "#ffc0cb", "#ff1493"),
    "brown": ("#8b4513", "#a0522d", "#5c3a1e", "#b08860"),
}

#: Names decided by hand, where everyday usage differs from the table's RGB value.
OVERRIDES: dict[str, tuple[str, ...]] = {
    "beige": ("brown", "white"),
    "wine": ("red", "purple"),
}

#: Words that change lightness or saturation but keep the basic term.
LIGHTER = frozenset({"light", "pale", "pastel", "soft", "lighter", "lightish", "baby"})
DARKER = frozenset({"dark", "darker", "darkish", "deep"})
INTENSE = frozenset(
    {
        "bright",
        "vivid",
        "neon",
        "fluorescent",
        "fluoro",
        "electric",
        "rich",
        "strong",
        "medium",
        "mid",
        "dull",
        "muted",
        "faded",
        "dusty",
        "dusky",
        "washed",
        "true",
        "pure",
        "hot",
        "warm",
        "cool",
    }
)
MODIFIERS = LIGHTER | DARKER | INTENSE | {"very", "really"}

#: Colour names common enough for clothing and vehicles to be read as a colour
#: on their own ("dressed in navy"); other table names ("sky", "grass",
#: "stone") count as a colour only next to a garment or vehicle word.
COMMON_COLOUR_WORDS: frozenset[str] = frozenset(
    {
        *COLOURS,
        "gray",
        "navy",
        "maroon",
        "burgundy",
        "crimson",
        "scarlet",
        "beige",
        "cream",
        "ivory",
        "tan",
        "khaki",
        "camel",
        "taupe",
        "teal",
        "turquoise",
        "aqua",
        "cyan",
        "olive",
        "lime",
        "mint",
        "lavender",
        "lilac",
        "violet",
        "indigo",
        "magenta",
        "fuchsia",
        "mauve",
        "plum",
        "coral",
        "salmon",
        "peach",
        "mustard",
        "gold",
        "golden",
        "silver",
        "charcoal",
        "bronze",
        "copper",
        "amber",
        "rust",
        "denim",
        "wine",
        "cerise",
        "ochre",
        "sage",
        "emerald",
        "jade",
        "ruby",
        "cobalt",
        "azure",
        "sapphire",
        "chocolate",
        "mahogany",
        "orchid",
        "periwinkle",
        "aquamarine",
        "vermillion",
        "greyish",
        "grayish",
        "reddish",
        "bluish",
        "blueish",
        "greenish",
        "pinkish",
        "purplish",
        "yellowish",
        "brownish",
        "orangish",
        "orangey",
        "blackish",
        "whitish",
    }
)

# Small table used when matplotlib is not installed (values from the XKCD survey).
_CORE_HEX: dict[str, str] = {
    "black": "#000000",
    "white": "#ffffff",
    "grey": "#929591",
    "red": "#e50000",
    "orange": "#f97306",
    "yellow": "#ffff14",
    "green": "#15b01a",
    "blue": "#0343df",
    "purple": "#7e1e9c",
    "pink": "#ff81c0",
    "brown": "#653700",
    "navy": "#01153e",
    "maroon": "#650021",
    "burgundy": "#610023",
    "crimson": "#8c000f",
    "scarlet": "#be0119",
    "beige": "#e6daa6",
    "cream": "#ffffc2",
    "ivory": "#ffffcb",
    "tan": "#d1b26f",
    "khaki": "#aaa662",
    "camel": "#c69f59",
    "taupe": "#b9a281",
    "teal": "#029386",
    "turquoise": "#06c2ac",
    "aqua": "#13eac9",
    "cyan": "#00ffff",
    "olive": "#6e750e",
    "lime": "#aaff32",
    "mint": "#9ffeb0",
    "lavender": "#c79fef",
    "lilac": "#cea2fd",
    "violet": "#9a0eea",
    "indigo": "#380282",
    "magenta": "#c20078",
    "fuchsia": "#ed0dd9",
    "mauve": "#ae7181",
    "plum": "#580f41",
    "coral": "#fc5a50",
    "salmon": "#ff796c",
    "peach": "#ffb07c",
    "mustard": "#ceb301",
    "gold": "#dbb40c",
    "golden": "#f5bf03",
    "silver": "#c5c9c7",
    "charcoal": "#343837",
    "bronze": "#a87900",
    "copper": "#b66325",
    "amber": "#feb308",
    "rust": "#a83c09",
    "denim": "#3b638c",
    "wine": "#80013f",
    "cerise": "#de0c62",
    "ochre": "#bf9005",
    "sage": "#87ae73",
    "emerald": "#01a049",
    "jade": "#1fa774",
    "ruby": "#ca0147",
    "cobalt": "#1e488f",
    "azure": "#069af3",
    "sapphire": "#2138ab",
    "chocolate": "#3d1c02",
    "mahogany": "#4a0100",
    "orchid": "#c875c4",
    "periwinkle": "#8e82fe",
    "aquamarine": "#04d8b2",
    "vermillion": "#f4320c",
    "navy blue": "#001146",
    "sky blue": "#75bbfd",
    "royal blue": "#0504aa",
    "forest green": "#06470c",
    "hot pink": "#ff028d",
    "baby blue": "#a2cffe",
    "off white": "#ffffe4",
    "olive green": "#677a04",
    "bottle green": "#044a05",
    "lime green": "#89fe05",
}

_WORD_RE = re.compile(r"[^\W\d_]+")


def normalise_name(text: str) -> str:
    """Lower-case words joined by one space, "gray" spelled "grey".

    >>> normalise_name("Navy-Blue")
    'navy blue'
    """
    words = _WORD_RE.findall(text.lower())
    return " ".join("grey" if w == "gray" else "greyish" if w == "grayish" else w for w in words)


def basic_colours(word: str) -> tuple[str, ...]:
    """The basic colour terms a colour word means, nearest first; ``()`` if it is no colour.

    Accepts one- or multi-word names, any case, hyphens or spaces
    ("navy blue", "Sky-Blue", "hot pink"), and modifiers ("light", "dark",
    "pale", "bright"...). At most two terms are returned: "dark" adds black
    as an alternative only to a name that has one term.

    >>> basic_colours("crimson")
    ('red',)
    >>> basic_colours("khaki")
    ('green', 'brown')
    >>> basic_colours("light blue")
    ('blue',)
    """
    if not isinstance(word, str) or len(word) > 100:
        return ()
    return _basic_colours(normalise_name(word))


@functools.lru_cache(maxsize=4096)
def _basic_colours(name: str) -> tuple[str, ...]:
    if not name:
        return ()
    words = name.split(" ")
    if words[0] in MODIFIERS and len(words) > 1:
        base = _basic_colours(" ".join(words[1:]))
        if base:
            return _modify(words[0], base)
    table = colour_table()
    if name in table:
        return table[name]
    if len(words) == 1:
        return _suffixed(name, table)
    return ()


def _modify(modifier: str, base: tuple[str, ...]) -> tuple[str, ...]:
    if modifier in DARKER and len(base) == 1 and base[0] not in ("black", "white"):
        return (*base, "black")
    if modifier in LIGHTER and base == ("grey",):
        return ("grey", "white")
    return base


def _suffixed(word: str, table: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """ "blackish" -> black, "bluey" -> blue: a suffix on a basic term."""
    for suffix in ("ish", "ey", "y"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)]
            for candidate in (stem, stem + "e", stem[:-1]):
                if candidate in COLOURS:
                    return table.get(candidate, (candidate,))
    return ()


def is_common_colour(word: str) -> bool:
    """Whether a colour word is common enough to stand alone ("dressed in navy").

    True for the basic terms and common clothing colours, for any name whose
    last word is one of those ("forest green", "sky blue") and for those with
    a modifier ("light navy"); False for names that are mostly other words
    ("sky", "grass", "stone") and for non-colours.

    >>> is_common_colour("navy"), is_common_colour("sky"), is_common_colour("sky blue")
    (True, False, True)
    """
    name = normalise_name(word) if isinstance(word, str) else ""
    if not name or not basic_colours(name):
        return False
    words = name.split(" ")
    return words[-1] in COMMON_COLOUR_WORDS


@functools.cache
def colour_table() -> Mapping[str, tuple[str, ...]]:
    """Every known colour name (normalised) -> its basic terms. Built once.

    >>> colour_table()["burgundy"]
    ('red',)
    """
    table: dict[str, tuple[str, ...]] = {}
    for name, hex_value in _named_colours().items():
        if name in MODIFIERS:  # the XKCD table has "dark" and "pale" as colours
            continue
        table[name] = OVERRIDES.get(name) or nearest_basic_colours(hex_value)
    for name, terms in OVERRIDES.items():
        table[name] = terms
    for term in COLOURS:
        table[term] = (term,)
    return table


def _named_colours() -> dict[str, str]:
    """Normalised name -> hex: XKCD first, then CSS4, then the built-in core names."""
    names: dict[str, str] = {}
    data = _matplotlib_colour_data()
    if data is not None:
        for key, value in getattr(data, "XKCD_COLORS", {}).items():
            names.setdefault(normalise_name(key.removeprefix("xkcd:")), value)
        for key, value in getattr(data, "CSS4_COLORS", {}).items():
            names.setdefault(normalise_name(key), value)
    for key, value in _CORE_HEX.items():
        names.setdefault(key, value)
    return {k: v for k, v in names.items() if k}


def _matplotlib_colour_data() -> ModuleType | None:
    """matplotlib's colour-name tables, loaded without importing matplotlib itself.

    ``matplotlib/_color_data.py`` is plain data; importing the package would
    cost ~0.2 s and may create a config directory, for no benefit here.
    """
    try:
        spec = importlib.util.find_spec("matplotlib")
        if spec is None or not spec.submodule_search_locations:
            return None
        for folder in spec.submodule_search_locations:
            file_spec = importlib.util.spec_from_file_location(
                "_camsight_mpl_color_data", f"{folder}/_color_data.py"
            )
            if file_spec is None or file_spec.loader is None:
                continue
            module = importlib.util.module_from_spec(file_spec)
            file_spec.loader.exec_module(module)
            return module
    except (ImportError, OSError, SyntaxError, ValueError):
        return None
    return None


# --- colour science ---------------------------------------------------------------


def hex_to_lab(hex_value: str) -> tuple[float, float, float]:
    """sRGB ``#rrggbb`` -> CIELAB (D65).

    >>> [round(v) for v in hex_to_lab("#ffffff")]
    [100, 0, 0]
    """
    h = hex_value.lstrip("#")
    rgb = [int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb)
    x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047
    y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
    z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    fx, fy, fz = f(x), f(y), f(z)
    return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))


def delta_e2000(lab1: tuple[float, float, float], lab2: tuple[float, float, float]) -> float:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005).

    >>> round(delta_e2000((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485)), 4)
    2.0425
    """
    l1, a1, b1 = lab1
    l2, a2, b2 = lab2
    c_bar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_bar**7 / (c_bar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360 if c1p else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360 if c2p else 0.0
    d_lp, d_cp = l2 - l1, c2p - c1p
    dhp = 0.0
    if c1p * c2p:
        dhp = h2p - h1p
        if dhp > 180:
            dhp -= 360
        elif dhp < -180:
            dhp += 360
    d_hp = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dhp / 2))
    l_bar, c_barp = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        h_bar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        h_bar = (h1p + h2p) / 2
    elif h1p + h2p < 360:
        h_bar = (h1p + h2p + 360) / 2
    else:
        h_bar = (h1p + h2p - 360) / 2
    t = (
        1
        - 0.17 * math.cos(math.radians(h_bar - 30))
        + 0.24 * math.cos(math.radians(2 * h_bar))
        + 0.32 * math.cos(math.radians(3 * h_bar + 6))
        - 0.20 * math.cos(math.radians(4 * h_bar - 63))
    )
    d_theta = 30 * math.exp(-(((h_bar - 275) / 25) ** 2))
    r_c = 2 * math.sqrt(c_barp**7 / (c_barp**7 + 25.0**7))
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / math.sqrt(20 + (l_bar - 50) ** 2)
    s_c = 1 + 0.045 * c_barp
    s_h = 1 + 0.015 * c_barp * t
    r_t = -math.sin(math.radians(2 * d_theta)) * r_c
    return math.sqrt(
        (d_lp / s_l) ** 2 + (d_cp / s_c) ** 2 + (d_hp / s_h) ** 2 + r_t * (d_cp / s_c) * (d_hp / s_h)
    )


@functools.cache
def _reference_labs() -> dict[str, tuple[tuple[float, float, float], ...]]:
    return {term: tuple(hex_to_lab(h) for h in refs) for term, refs in REFERENCES.items()}


def colour_distances(hex_value: str) -> list[tuple[float, str]]:
    """``(CIEDE2000 distance, basic term)`` for every basic term, nearest first.

    >>> colour_distances("#ff0000")[0][1]
    'red'
    """
    lab = hex_to_lab(hex_value)
    distances = [
        (min(delta_e2000(lab, ref) for ref in refs), term) for term, refs in _reference_labs().items()
    ]
    return sorted(distances)


def nearest_basic_colours(hex_value: str) -> tuple[str, ...]:
    """The nearest basic term of an sRGB colour, plus the second when almost as near.

    >>> nearest_basic_colours("#343837")  # XKCD "charcoal"
    ('grey', 'black')
    """
    (d1, t1), (d2, t2) = colour_distances(hex_value)[:2]
    return (t1, t2) if d2 <= d1 + max(2.0, 0.15 * d1) else (t1,)
