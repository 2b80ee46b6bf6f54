"""What camsight analyses, and the facet keys search works with.

A *facet* is one observable property of a track with a score in [0, 1]:
``upper:red`` (upper-body clothing is red), ``headwear:worn``,
``carried:backpack``, ``posture:lying``, ``motion:running``,
``vehicle:van``, ``body:white`` (vehicle body colour), ``heading:left``.

No facet describes sex, age, ethnicity or a face (DESIGN.md): words such
as "woman" or "old" are accepted in queries and shown as not analysed.
"""

from __future__ import annotations

#: The basic colour terms (Berlin & Kay), the only colour names stored.
COLOURS: tuple[str, ...] = (
    "black",
    "white",
    "grey",
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
)
#: Clothing regions of a person; ``body`` is a vehicle's paintwork.
PERSON_REGIONS: tuple[str, ...] = ("upper", "lower", "headwear")
VEHICLE_REGIONS: tuple[str, ...] = ("body",)
#: How light a garment's colour is ("light blue jacket", "light grey trousers"), per clothing region.
#: Not "dark": a camera darkens every colour, and "dark blue" already also accepts black.
SHADES: tuple[str, ...] = ("light",)
SHADED_REGIONS: tuple[str, ...] = ("upper", "lower")
POSTURES: tuple[str, ...] = ("standing", "sitting", "lying")
MOTIONS: tuple[str, ...] = ("stationary", "walking", "running")
HEADINGS: tuple[str, ...] = ("left", "right", "up", "down")
CARRIED_ITEMS: tuple[str, ...] = ("backpack", "handbag", "suitcase", "umbrella")
#: What a person rides or pushes along (``carried:bicycle``: a cyclist, a bicycle wheeled by hand).
RIDDEN_ITEMS: tuple[str, ...] = ("bicycle",)
#: Vehicle type facet values, and the detector labels behind each.
VEHICLE_TYPES: dict[str, tuple[str, ...]] = {
    "car": ("car",),
    "van": ("truck",),  # COCO has no van: vans and lorries are "truck"
    "bus": ("bus",),
    "motorcycle": ("motorcycle",),
    "bicycle": ("bicycle",),
}
#: Detector labels that are vehicles.
VEHICLE_LABELS: tuple[str, ...] = ("car", "truck", "bus", "motorcycle", "bicycle")


def colour_facet(region: str, colour: str) -> str:
    """``colour_facet("upper", "red") == "upper:red"``."""
    return f"{region}:{colour}"


def all_facets() -> tuple[str, ...]:
    """Every facet key camsight can store, in a fixed order (the search index's columns)."""
    keys = [colour_facet(r, c) for r in (*PERSON_REGIONS, *VEHICLE_REGIONS) for c in COLOURS]
    keys.append("headwear:worn")
    keys += [f"carried:{i}" for i in CARRIED_ITEMS]
    keys += [f"posture:{p}" for p in POSTURES]
    keys += [f"motion:{m}" for m in MOTIONS]
    keys += [f"heading:{h}" for h in HEADINGS]
    keys += [f"vehicle:{v}" for v in VEHICLE_TYPES]
    # Facets added later go last: a vector stored before them is then a prefix of this order,
    # read with the new facets at 0 (see search.index).
    keys += [f"carried:{i}" for i in RIDDEN_ITEMS]
    keys += [f"{r}:{s}" for r in SHADED_REGIONS for s in SHADES]
    return tuple(keys)


FACETS: tuple[str, ...] = all_facets()
FACET_INDEX: dict[str, int] = {k: i for i, k in enumerate(FACETS)}
