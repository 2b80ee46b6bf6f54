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

_INDEX = {name: i for i, name in enumerate(COLOURS)}

#: Regions larger than this (longest side, pixels) are downsampled with area
#: averaging first: faster, and it averages compression noise away.
MAX_SIDE = 64
#: CIELAB chroma below ``CHROMA_LO`` is achromatic, above ``CHROMA_HI`` fully chromatic.
CHROMA_LO = 6.0
CHROMA_HI = 11.0
#: Pixels darker than this (CIELAB L) are black whatever their chroma: their hue is noise.
DARK_FLOOR = 3.0
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


#: White patch: the brightest share of a frame, its lightness percentile, and the most
#: tint (CIELAB chroma) and per-channel gain it may correct.
WHITE_PATCH_SHARE = 0.03
WHITE_PERCENTILE = 99.0
MAX_CAST_CHROMA = 16.0
MAX_GAIN = 1.3


@dataclass(frozen=True)
class Illuminant:
    """The light a region is seen in: what white looks like there.

    ``white_level`` is the CIELAB lightness (0-100) of the brightest
    surfaces; lightness is lifted halfway toward it (by the square root of
    ``100 / white_level``), so a dim scene's whites are named white, or at
    least white and grey. ``gains`` (B, G, R) multiply pixel values to undo
    a colour cast. The default changes nothing.

    >>> Illuminant()
    Illuminant(white_level=100.0, gains=(1.0, 1.0, 1.0))
    """

    white_level: float = 100.0
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)


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

    chromatic = _smoothstep(chroma, CHROMA_LO, CHROMA_HI) * _smoothstep(lab[:, 0], DARK_FLOOR, DARK_FLOOR + 4)
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
    return m


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
) -> dict[str, float]:
    """The share of the region each basic colour term covers; the shares sum to 1.

    ``mask`` (same height and width as the image) weights pixels: boolean, or
    float in [0, 1] for soft masks. An empty region or mask gives all zeros.
    ``illuminant`` corrects for the scene's light (see :func:`estimate_illuminant`).

    >>> import numpy as np
    >>> patch = np.zeros((10, 20, 3), np.uint8); patch[:, 10:] = 255  # left black, right white
    >>> {k: round(v, 2) for k, v in colour_shares(patch).items() if v > 0}
    {'black': 0.5, 'white': 0.5}
    """
    pixels, weights = _prepare(pixels_bgr, mask)
    total = float(weights.sum())
    if pixels.size == 0 or total <= 0:
        return dict.fromkeys(COLOURS, 0.0)
    shares = weights @ _memberships(pixels, illuminant) / total
    return {name: round(float(shares[i]), 4) for i, name in enumerate(COLOURS)}


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


def estimate_illuminant(image_bgr: np.ndarray) -> Illuminant:
    """Estimate the light a frame was taken in, from its brightest near-neutral pixels (white patch).

    ``white_level`` is a high percentile of CIELAB lightness, clamped to
    [40, 100] so a dark frame does not turn every grey white. ``gains`` make
    the mean of the brightest pixels neutral, when those pixels are only
    slightly tinted (a white wall under a blue cast); when they are clearly
    coloured (a yellow sign is the brightest thing in view) the colour is
    left alone. Estimate it on the whole frame, not a person's crop: a crop's
    brightest pixels may be a cream shirt.

    >>> import numpy as np
    >>> dim = np.full((10, 10, 3), 128, np.uint8)   # a dim, flat scene
    >>> round(estimate_illuminant(dim).white_level)
    54
    >>> bluish = np.full((10, 10, 3), (235, 220, 210), np.uint8)   # BGR: white under a blue cast
    >>> [round(g, 2) for g in estimate_illuminant(bluish).gains]
    [0.94, 1.01, 1.06]
    """
    img = np.asarray(image_bgr)
    if img.size == 0:
        return Illuminant()
    h, w = img.shape[:2]
    if max(h, w) > 160:
        scale = 160 / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    flat = img.reshape(-1, 3).astype(np.float32) / 255.0
    lab = cv2.cvtColor(flat.reshape(-1, 1, 3), cv2.COLOR_BGR2LAB).reshape(-1, 3)
    lightness = lab[:, 0]
    white_level = float(np.clip(np.percentile(lightness, WHITE_PERCENTILE), 40.0, 100.0))
    bright = lightness >= np.percentile(lightness, 100.0 - WHITE_PATCH_SHARE * 100.0)
    bright &= flat.max(axis=1) < 0.98  # clipped pixels say nothing about the light's colour
    gains = (1.0, 1.0, 1.0)
    if bright.sum() >= 5:
        patch = flat[bright].mean(axis=0)
        patch_lab = cv2.cvtColor(patch.reshape(1, 1, 3), cv2.COLOR_BGR2LAB).reshape(3)
        if float(np.hypot(patch_lab[1], patch_lab[2])) <= MAX_CAST_CHROMA and patch.min() > 0.05:
            b, g, r = (round(float(np.clip(patch.mean() / v, 1 / MAX_GAIN, MAX_GAIN)), 4) for v in patch)
            gains = (b, g, r)
    return Illuminant(white_level=round(white_level, 2), gains=gains)
