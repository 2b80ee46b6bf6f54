"""The facet vocabulary stays consistent with what the extractor discounts."""

from camsight.analytics.attributes import HAIR_AND_SKIN
from camsight.records.facets import COLOURS, FACET_INDEX, FACETS


def test_facets_are_unique_and_indexed():
    assert len(FACETS) == len(set(FACETS)) == len(FACET_INDEX)
    assert all(FACETS[i] == key for key, i in FACET_INDEX.items())


def test_hair_and_skin_colours_are_basic_terms():
    assert set(HAIR_AND_SKIN) <= set(COLOURS)
