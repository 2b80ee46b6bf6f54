"""Naming the colours of an image region with the 11 basic colour terms.

Every pixel gets a soft membership in each of the terms of
:data:`~camsight.records.facets.COLOURS`:

- *chromatic or not* comes from CIELAB chroma (colourfulness), not from
  lightness, so it holds in shadow: in PETS09 dark navy and denim keep a
  chroma of 12-20 down to lightness 5-15, while black and grey clothing
  stay below about 8;
- *which hue family* comes from the HSV hue angle, with soft borders of a few
  degrees (HSV separates blue from purple better than the Lab hue angle,
  which puts saturated blue and violet only a few degrees apart);
- *lightness* splits the families the way people name colours: a dark
  orange or dark yellow is ``brown``, a light red or light magenta is
  ``pink``; achromatic pixels are ``black``, ``grey`` or ``white``.

A term's *share* is the mean membership over the region (weighted by an
optional mask); its *score* maps the share smoothly so that a term covering
a third of the region or more scores about 1 and specks score 0. Several
terms can score high at once: a red-and-navy jacket gets ``red`` and
``blue``.

Lighting. Without further information lightness is taken as it is, with
generous borders, so a white shirt in shade reads as ``grey``/``white`` and
never ``black``, and a dark navy stays ``blue`` because its chroma, not its
lightness, makes it chromatic; pink is told from red by chroma *relative*
to lightness, which shade leaves alone. An :class:`Illuminant` estimated
on the whole frame (:func:`estimate_illuminant`) makes lightness relative
to the scene's white and removes a colour cast.

>>> import numpy as np
>>> patch = np.zeros((20, 20, 3), np.uint8); patch[:] = (40, 20, 200)  # BGR: a red
>>> dominant(colour_scores(patch), k=1)
['red']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from camsight.records.facets import COLOURS
from camsight.vision.light import Illuminant, estimate_illuminant

__all__ = [
    "ColourMap",
    "Illuminant",
    "colour_lightness",
    "colour_map",
    "colour_scores",
    "colour_shares",
    "dominant",
    "estimate_illuminant",
    "mean_scores",
    "pixel_lightness",
    "region_shares",
    "score_share",
    "scores_from_shares",
    "without_background",
]

_INDEX = {name: i for i, name in enumerate(COLOURS)}

#: Regions larger than this (longest side, pixels) are downsampled with area
#: averaging first: faster, and it averages compression noise away.
MAX_SIDE = 64
#: CIELAB chroma below ``CHROMA_LO`` is achromatic, above ``CHROMA_HI`` fully chromatic.
CHROMA_LO = 6.0
CHROMA_HI = 11.0
#: Near black (CIELAB L below ``DARK_L[1]``, fully at ``DARK_L[0]``) a pixel needs more chroma to
#: count as coloured: a camera's black level often carries a cast (crushed blacks read
#: (16, 0, 0) BGR, chroma 6-10, in the Intel indoor clip), while dark denim in shade
#: keeps a chroma of 15-20 there and reads blue.
DARK_L = (2.0, 10.0)
DARK_CHROMA = (12.0, 17.0)
#: Achromatic lightness borders (CIELAB L, soft): black below, white above.
BLACK_L = (22.0, 36.0)
WHITE_L = (64.0, 86.0)
#: Share of the region at which a term starts to count, and at which it scores 1.
SHARE_FLOOR = 0.04
SHARE_FULL = 0.35
#: HSV hue families (degrees), each from its start to the next one's start;
#: borders are soft over +/- ``HUE_SOFT`` degrees.
HUE_SOFT = 6.0
_FAMILIES: tuple[tuple[str, float], ...] = (
    ("red", 335.0),
    ("orange", 16.0),
    ("yellow", 45.0),
    ("green", 70.0),
    ("blue", 170.0),
    ("purple", 258.0),
    ("magenta", 295.0),
)


def _smoothstep(x: np.ndarray | float, lo: float, hi: float) -> np.ndarray:
    t = np.clip((np.asarray(x, np.float32) - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _hue_families(hue: np.ndarray) -> dict[str, np.ndarray]:
    """Soft membership of each hue (degrees) in the families of :data:`_FAMILIES`; they sum to 1."""
    out: dict[str, np.ndarray] = {}
    n = len(_FAMILIES)
    for i, (name, start) in enumerate(_FAMILIES):
        end = _FAMILIES[(i + 1) % n][1]
        span = (end - start) % 360.0
        rel = (hue - start + HUE_SOFT) % 360.0  # 0 at start - soft
        rise = np.clip(rel / (2 * HUE_SOFT), 0.0, 1.0)
        fall = np.clip((span + 2 * HUE_SOFT - rel) / (2 * HUE_SOFT), 0.0, 1.0)
        out[name] = np.where(rel <= span + 2 * HUE_SOFT, np.minimum(rise, fall), 0.0).astype(np.float32)
    return out


def _memberships(bgr: np.ndarray, illuminant: Illuminant | None) -> np.ndarray:
    """(N, 11) soft memberships of N BGR uint8 pixels (shape (N, 3)) in :data:`COLOURS`."""
    return _terms(bgr, illuminant)[0]


def _terms(
    bgr: np.ndarray, illuminant: Illuminant | None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Memberships (N, 11), how far each pixel may be a shadow (N,), its hue families, and its
    lightness (CIELAB L, relative to the scene's white when ``illuminant`` knows it)."""
    img = bgr.reshape(-1, 1, 3).astype(np.float32) / 255.0
    if illuminant is not None and illuminant.gains != (1.0, 1.0, 1.0):
        img = np.clip(img * np.asarray(illuminant.gains, np.float32), 0.0, 1.0)
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB).reshape(-1, 3)
    hue = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).reshape(-1, 3)[:, 0]  # degrees for float input
    lightness = lab[:, 0]
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    if illuminant is not None and illuminant.white_level < 100.0:
        # Lift lightness only halfway (geometrically) toward the scene's white: a frame's
        # brightest pixels need not be white (an overcast car park has none).
        lift = np.sqrt(100.0 / max(illuminant.white_level, 1.0))
        lightness = np.clip(lightness * lift, 0.0, 100.0)

    lit = _smoothstep(lab[:, 0], *DARK_L)
    lo = DARK_CHROMA[0] + (CHROMA_LO - DARK_CHROMA[0]) * lit
    hi = DARK_CHROMA[1] + (CHROMA_HI - DARK_CHROMA[1]) * lit
    t = np.clip((chroma - lo) / (hi - lo), 0.0, 1.0)
    chromatic = t * t * (3.0 - 2.0 * t)
    achromatic = 1.0 - chromatic
    m = np.zeros((len(lightness), len(COLOURS)), np.float32)

    black = 1.0 - _smoothstep(lightness, *BLACK_L)
    white = _smoothstep(lightness, *WHITE_L)
    m[:, _INDEX["black"]] = achromatic * black
    m[:, _INDEX["white"]] = achromatic * white
    m[:, _INDEX["grey"]] = achromatic * (1.0 - black - white)

    fam = _hue_families(hue)
    # Pink is a pale red: little chroma for its lightness (a red car in the sun stays red),
    # and not dark. Shade lowers chroma and lightness together, so the ratio holds in shadow.
    saturation = chroma / np.maximum(lightness, 1.0)
    pale_red = (1.0 - _smoothstep(saturation, 0.42, 0.56)) * _smoothstep(lightness, 32.0, 48.0)
    light_magenta = _smoothstep(lightness, 48.0, 64.0)  # magenta turns pink as it gets light
    dark = 1.0 - _smoothstep(lightness, 42.0, 62.0)  # dark oranges/yellows are brown
    muted = 1.0 - _smoothstep(chroma, 22.0, 40.0)  # tan, beige, khaki: brown
    m[:, _INDEX["red"]] += fam["red"] * (1.0 - pale_red)
    m[:, _INDEX["pink"]] += fam["red"] * pale_red
    brownish = np.maximum(dark, muted)
    m[:, _INDEX["brown"]] += fam["orange"] * brownish
    m[:, _INDEX["orange"]] += fam["orange"] * (1.0 - brownish)
    # A dark yellow is olive: brown on its orange side, green on its green side.
    olive = dark * fam["yellow"]
    toward_green = _smoothstep(hue, 50.0, 62.0)
    m[:, _INDEX["yellow"]] += fam["yellow"] - olive
    m[:, _INDEX["brown"]] += olive * (1.0 - toward_green)
    m[:, _INDEX["green"]] += olive * toward_green + fam["green"]
    m[:, _INDEX["blue"]] += fam["blue"]
    m[:, _INDEX["purple"]] += fam["purple"] + fam["magenta"] * (1.0 - light_magenta)
    m[:, _INDEX["pink"]] += fam["magenta"] * light_magenta
    for name in COLOURS:
        if name not in ("black", "white", "grey"):
            m[:, _INDEX[name]] *= chromatic
    # Shade folding (see _fold_shade): dark, yet with a little colour.
    shade = (1.0 - _smoothstep(lab[:, 0], *FOLD_L)) * _smoothstep(chroma, *FOLD_CHROMA)
    return m, shade, fam, lightness


def _prepare(pixels_bgr: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    pixels = np.asarray(pixels_bgr)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected a BGR image of shape (H, W, 3), got {pixels.shape}")
    if pixels.dtype != np.uint8:
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    if mask is None:
        weights = np.ones(pixels.shape[:2], np.float32)
    else:
        weights = np.asarray(mask, np.float32)
        if weights.shape != pixels.shape[:2]:
            raise ValueError(f"mask shape {weights.shape} does not match the image {pixels.shape[:2]}")
    h, w = pixels.shape[:2]
    if max(h, w) > MAX_SIDE:
        scale = MAX_SIDE / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        weights = cv2.resize(weights, size, interpolation=cv2.INTER_AREA)
    return pixels.reshape(-1, 3), np.clip(weights.reshape(-1), 0.0, None)


def colour_shares(
    pixels_bgr: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    illuminant: Illuminant | None = None,
    fold_shade: bool = False,
) -> dict[str, float]:
    """The share of the region each basic colour term covers; the shares sum to 1.

    ``mask`` (same height and width as the image) weights pixels: boolean, or
    float in [0, 1] for soft masks. An empty region or mask gives all zeros.
    ``illuminant`` corrects for the scene's light (see :func:`estimate_illuminant`).
    ``fold_shade``: the region is one garment, so when one hue dominates its
    coloured pixels, its near-black pixels of that hue are that colour in
    shadow (the folds of blue jeans), not a black garment (see :func:`fold_shade`).

    >>> import numpy as np
    >>> patch = np.zeros((10, 20, 3), np.uint8); patch[:, 10:] = 255  # left black, right white
    >>> {k: round(v, 2) for k, v in colour_shares(patch).items() if v > 0}
    {'black': 0.5, 'white': 0.5}
    """
    pixels, weights = _prepare(pixels_bgr, mask)
    total = float(weights.sum())
    if pixels.size == 0 or total <= 0:
        return dict.fromkeys(COLOURS, 0.0)
    m, shade, fam, _ = _terms(pixels, illuminant)
    if fold_shade:
        m = _fold_shade(m, shade, fam, weights)
    shares = weights @ m / total
    return {name: round(float(shares[i]), 4) for i, name in enumerate(COLOURS)}


#: A colour map's longest side (pixels): a person's view is named at about this size.
MAP_SIDE = 96


@dataclass(frozen=True)
class ColourMap:
    """Per-pixel colour terms of one image, to read the shares of several regions of it cheaply.

    >>> import numpy as np
    >>> image = np.zeros((40, 20, 3), np.uint8); image[20:] = (40, 20, 200)  # black top, red bottom
    >>> cmap = colour_map(image)
    >>> region_shares(cmap, [(0, 20, 20, 40)])["red"]
    1.0
    """

    memberships: np.ndarray  # (H, W, 11)
    shade: np.ndarray  # (H, W)
    families: dict[str, np.ndarray]  # hue family -> (H, W)
    #: Map pixels per image pixel.
    scale: float
    #: CIELAB lightness (H, W), relative to the scene's white as the memberships are.
    lightness: np.ndarray | None = None


def colour_map(image_bgr: np.ndarray, illuminant: Illuminant | None = None) -> ColourMap:
    """The colour terms of every pixel of ``image_bgr``, area-averaged to :data:`MAP_SIDE` first."""
    image = np.asarray(image_bgr)
    h, w = image.shape[:2]
    scale = min(1.0, MAP_SIDE / max(h, w, 1))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    mh, mw = image.shape[:2]
    m, shade, fam, lightness = _terms(image.reshape(-1, 3), illuminant)
    return ColourMap(
        m.reshape(mh, mw, -1),
        shade.reshape(mh, mw),
        {k: v.reshape(mh, mw) for k, v in fam.items()},
        scale,
        lightness.reshape(mh, mw),
    )


def region_shares(
    cmap: ColourMap, rects: Iterable[tuple[float, float, float, float]], *, fold_shade: bool = False
) -> dict[str, float]:
    """:func:`colour_shares` of the union of ``rects`` (x1, y1, x2, y2 in the image's pixels) of a map.

    Empty rectangles count for nothing; all empty gives all zeros.
    """
    parts = _map_slices(cmap, rects)
    if not parts:
        return dict.fromkeys(COLOURS, 0.0)
    m = np.concatenate([cmap.memberships[p].reshape(-1, len(COLOURS)) for p in parts])
    if fold_shade:
        shade = np.concatenate([cmap.shade[p].reshape(-1) for p in parts])
        fam = {k: np.concatenate([v[p].reshape(-1) for p in parts]) for k, v in cmap.families.items()}
        m = _fold_shade(m, shade, fam, np.ones(len(m), np.float32))
    shares = m.mean(axis=0)
    return {name: round(float(shares[i]), 4) for i, name in enumerate(COLOURS)}


def _map_slices(
    cmap: ColourMap, rects: Iterable[tuple[float, float, float, float]]
) -> list[tuple[slice, slice]]:
    """The non-empty parts of a map that ``rects`` (image pixels) cover."""
    mh, mw = cmap.shade.shape
    parts = []
    for x1, y1, x2, y2 in rects:
        c1, c2 = int(max(0, round(x1 * cmap.scale))), int(min(mw, round(x2 * cmap.scale)))
        r1, r2 = int(max(0, round(y1 * cmap.scale))), int(min(mh, round(y2 * cmap.scale)))
        if c2 > c1 and r2 > r1:
            parts.append((slice(r1, r2), slice(c1, c2)))
    return parts


def colour_lightness(
    cmap: ColourMap, rects: Iterable[tuple[float, float, float, float]], colour: str
) -> float | None:
    """The mean lightness (CIELAB L, 0-100) of the pixels of ``colour`` in ``rects`` of a map.

    What "light blue" or "dark grey" means: how light the garment's own colour is, not the
    region's, which also holds the pavement beside a leg. None when the colour is not there.

    >>> import numpy as np
    >>> image = np.zeros((40, 20, 3), np.uint8); image[:, :10] = (230, 200, 150)  # light blue
    >>> image[:, 10:] = (110, 40, 20)  # navy
    >>> cmap = colour_map(image)
    >>> light, navy = (colour_lightness(cmap, [(x, 0, x + 10, 40)], "blue") for x in (0, 10))
    >>> light > 70 > 20 > navy
    True
    """
    parts = _map_slices(cmap, rects)
    if not parts or cmap.lightness is None:
        return None
    i = _INDEX[colour]
    weights = np.concatenate([cmap.memberships[p][..., i].reshape(-1) for p in parts])
    return _weighted_lightness(weights, np.concatenate([cmap.lightness[p].reshape(-1) for p in parts]))


def pixel_lightness(pixels_bgr: np.ndarray, mask: np.ndarray | None, colour: str) -> float | None:
    """:func:`colour_lightness` of an image region given as pixels (and an optional mask).

    >>> import numpy as np
    >>> round(pixel_lightness(np.full((8, 4, 3), 255, np.uint8), None, "white"))
    100
    """
    pixels, weights = _prepare(pixels_bgr, mask)
    if pixels.size == 0:
        return None
    m, _, _, lightness = _terms(pixels, None)
    return _weighted_lightness(weights * m[:, _INDEX[colour]], lightness)


def _weighted_lightness(weights: np.ndarray, lightness: np.ndarray) -> float | None:
    """The mean of ``lightness`` weighted by a colour's memberships; None when the colour is absent."""
    total = float(weights.sum())
    return float(weights @ lightness / total) if total >= 1e-3 else None


#: Shade folding: a chromatic term must hold this share of the region to claim its shadows;
#: pixels darker than ``FOLD_L`` (CIELAB L, soft) with at least ``FOLD_CHROMA`` of chroma and
#: a hue in that term's family are its shadow.
FOLD_SHARE = 0.2
FOLD_L = (8.0, 16.0)
FOLD_CHROMA = (2.5, 5.0)
_CHROMATIC = tuple(c for c in COLOURS if c not in ("black", "white", "grey"))


def _fold_shade(
    m: np.ndarray, shade: np.ndarray, fam: dict[str, np.ndarray], weights: np.ndarray
) -> np.ndarray:
    """Give the dominant hue its own shadows: dark pixels of that hue move from black to it."""
    shares = weights @ m / max(float(weights.sum()), 1e-9)
    idx = [_INDEX[c] for c in _CHROMATIC]
    best = idx[int(np.argmax(shares[idx]))]
    if shares[best] < FOLD_SHARE:
        return m
    # Brown and pink are shades of orange and red: their shadows share those hues.
    family = {"brown": "orange", "pink": "red"}.get(COLOURS[best], COLOURS[best])
    if family not in fam:
        return m
    moved = m[:, _INDEX["black"]] * shade * fam[family]
    out = m.copy()
    out[:, _INDEX["black"]] -= moved
    out[:, best] += moved
    return out


def without_background(
    region: Mapping[str, float], background: Mapping[str, float], share: float
) -> dict[str, float]:
    """A region's colour shares with what its background explains taken out.

    A box-shaped region of a person also holds some of what is behind them
    (the floor between the legs, the wall beside the head). ``background``
    holds the shares of pixels beside the person at the same height; about
    ``share`` of the region is assumed to be background, and that much of
    each background colour is removed before the shares are normalised again.
    A colour the person wears in strength survives; the floor's does not.

    >>> legs = {"black": 0.7, "brown": 0.3}
    >>> floor = {"brown": 1.0}
    >>> without_background(legs, floor, 0.3)
    {'black': 1.0, 'brown': 0.0}
    """
    kept = {c: max(0.0, float(region.get(c, 0.0)) - share * float(background.get(c, 0.0))) for c in region}
    total = sum(kept.values())
    if total <= 0:
        return dict(region)
    return {c: round(v / total, 4) for c, v in kept.items()}


def score_share(share: float) -> float:
    """Map a term's share of a region to a confidence in [0, 1] (smooth, 0 below 4%, ~1 from 35%).

    >>> score_share(0.02), score_share(0.5), round(score_share(0.2), 2)
    (0.0, 1.0, 0.52)
    """
    return round(float(_smoothstep(share, SHARE_FLOOR, SHARE_FULL)), 4)


def scores_from_shares(shares: Mapping[str, float]) -> dict[str, float]:
    """:func:`score_share` applied to every term of ``shares``."""
    return {name: score_share(float(shares.get(name, 0.0))) for name in COLOURS}


def colour_scores(
    pixels_bgr: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    illuminant: Illuminant | None = None,
) -> dict[str, float]:
    """Confidence in [0, 1] that each basic colour term names (part of) the region.

    Returns every term of :data:`COLOURS`, in that order; terms that do not
    apply score 0. A term covering about a third of the region or more scores
    about 1, so a two-colour garment gets two high scores. See
    :func:`colour_shares` for ``mask`` and :class:`Illuminant` for ``illuminant``.

    >>> import numpy as np
    >>> jacket = np.zeros((40, 20, 3), np.uint8)
    >>> jacket[:15] = (40, 30, 190)   # red shoulders (BGR)
    >>> jacket[15:] = (70, 25, 20)    # navy body
    >>> dominant(colour_scores(jacket))
    ['red', 'blue']
    """
    return scores_from_shares(colour_shares(pixels_bgr, mask, illuminant=illuminant))


def mean_scores(scores: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The mean of several regions' scores, e.g. a track's upper body over its best crops.

    >>> mean_scores([{"red": 1.0}, {"red": 0.5, "blue": 1.0}])["red"]
    0.75
    """
    items = list(scores)
    if not items:
        return dict.fromkeys(COLOURS, 0.0)
    return {name: round(float(np.mean([s.get(name, 0.0) for s in items])), 4) for name in COLOURS}


def dominant(scores: Mapping[str, float], k: int = 2, min_score: float = 0.25) -> list[str]:
    """The ``k`` best-scoring terms that score at least ``min_score``, best first.

    Ties are broken in the order of :data:`COLOURS`.

    >>> dominant({"black": 0.9, "grey": 0.3, "blue": 0.95, "red": 0.1})
    ['blue', 'black']
    """
    order = {name: i for i, name in enumerate(COLOURS)}
    ranked = sorted(
        (name for name, value in scores.items() if value >= min_score),
        key=lambda name: (-scores[name], order.get(name, len(order))),
    )
    return ranked[:k]
