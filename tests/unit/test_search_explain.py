"""Facet thresholds and the wording of a term's explanation."""

from __future__ import annotations

from camsight.search.explain import DEFAULT, THRESHOLDS, explain_term, short_evidence, threshold
from camsight.search.query_model import Term


def test_thresholds_by_key_then_family_then_default():
    assert threshold("headwear:worn") == THRESHOLDS["headwear:worn"]
    assert threshold("headwear:red") == THRESHOLDS["headwear"]
    assert threshold("lower:blue") == THRESHOLDS["lower"]
    # A facet added later (another carried item, hair length) is matched with the default.
    assert threshold("carried:bicycle") == DEFAULT
    assert threshold("hair:long") == DEFAULT
    for t in THRESHOLDS.values():
        assert 0 < t.absent < t.present < 1  # an unsure band between "not seen" and "seen"


def test_explanations_name_the_region_and_what_was_needed():
    hit = explain_term(Term(("upper:red",)), {"upper:red": 0.8}, True)
    assert hit == {"facet": "upper:red", "region": "upper body", "detail": "upper body: red 80%"}
    miss = explain_term(Term(("upper:red", "lower:red", "headwear:red")), {"lower:red": 0.2}, False)
    assert miss["region"] == "upper body/lower body/head"
    # The threshold named is the best facet's: the lower body's.
    assert miss["detail"] == "upper body/lower body/head: red 20% at best, below the 50% needed"
    worn = explain_term(Term(("headwear:worn",)), {"headwear:worn": 0.5}, False)
    assert worn["detail"] == "head: headwear worn 50%, below the 85% needed"
    bag = explain_term(Term(("carried:backpack",), negated=True), {"carried:backpack": 0.1}, True)
    assert bag["detail"] == "carried: no backpack (10%, at most 20% allowed)"


def test_short_evidence_keeps_only_where_a_score_came_from():
    text = "lower blue 0.49 (4 crops, pose keypoints)"
    assert short_evidence("lower:blue", text) == "4 crops, pose keypoints"
    assert short_evidence("motion:walking", "walking 0.53: 0.26 body heights/s, moved 35 px") == (
        "0.26 body heights/s, moved 35 px"
    )
    # Text that does not start with the facet is kept whole.
    text = "head colours red 0.49 (1 crops); hair and skin colours count little"
    assert short_evidence("headwear:worn", text) == text
