"""A person with a bicycle is a cyclist (a facet of the person), not "person or bicycle" (issue 13)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import select, update

from camsight.records.attributes import TrackAttributes
from camsight.records.facets import FACET_INDEX, FACETS
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.search.engine import SearchEngine
from camsight.search.index import build
from camsight.search.query import parse_query
from camsight.store import repository as repo
from camsight.store.models import Track
from camsight.tracking.builder import ridden_by
from camsight.tracking.kinematics import kinematics

CYCLIST = (("carried:bicycle",),)


@pytest.mark.parametrize(
    "text",
    [
        "person with a bicycle",
        "man with a bike",
        "someone pushing a bicycle",
        "cyclist",
        "cyclists",
        "person riding a bike",
        "man on a bike",
        "people with bicycles",
    ],
)
def test_a_person_with_a_bicycle_is_a_cyclist_not_person_or_bicycle(text: str) -> None:
    q = parse_query(text)
    assert q.classes == ("person",), q.describe()
    assert [t.facets for t in q.terms] == list(CYCLIST) and not q.terms[0].negated


@pytest.mark.parametrize(
    ("text", "item"),
    [
        ("person with a bag", ("carried:handbag", "carried:backpack", "carried:suitcase")),
        ("woman with a backpack", ("carried:backpack",)),
        ("man carrying a suitcase", ("carried:suitcase",)),
        ("someone with an umbrella", ("carried:umbrella",)),
    ],
)
def test_a_carried_item_is_a_facet_of_the_person(text: str, item: tuple[str, ...]) -> None:
    q = parse_query(text)
    assert q.classes == ("person",) and [t.facets for t in q.terms] == [item]


def test_bicycle_readings_around_the_person() -> None:
    without = parse_query("person without a bicycle")
    assert without.classes == ("person",) and without.terms[0].negated
    red = parse_query("person with a red bike")
    assert [t.facets for t in red.terms] == list(CYCLIST)
    assert "red (bike colour)" in red.not_analysed  # the bicycle's colour is not analysed
    either = parse_query("person with a backpack or a bike")
    assert [t.facets for t in either.terms] == [("carried:backpack", "carried:bicycle")]
    # Without a person word (or a "with"), a bicycle is still its own class.
    assert parse_query("bicycle").classes == ("bicycle",)
    assert parse_query("red bike").classes == ("bicycle",)
    assert parse_query("person or bicycle").classes == ("person", "bicycle")
    assert parse_query("person and a bicycle").classes == ("person", "bicycle")


def test_a_bicycle_belongs_to_the_person_on_it_or_walking_it() -> None:
    people = np.array([[100, 0, 120, 50], [10, 0, 30, 50]], float)
    bikes = np.array(
        [
            [0, 30, 40, 60],  # under the second person: ridden
            [113, 30, 138, 50],  # beside the first (little overlap): pushed along
            [300, 0, 340, 30],  # nobody's
        ],
        float,
    )
    assert ridden_by(bikes, people).tolist() == [1, 0, -1]
    assert ridden_by(bikes[:0], people).tolist() == []


def _record(local_id: int, carried: dict[str, float]) -> TrackRecord:
    obs = [
        Observation(i + 1, local_id * 2.0 + i * 0.2, (10.0 + i, 20.0, 50.0 + i, 120.0), 0.9) for i in range(5)
    ]
    crop = Crop(2, 0.2, (11.0, 20.0, 51.0, 120.0), 1.0, np.full((110, 45, 3), 128, np.uint8), (6, 10))
    rec = TrackRecord(
        local_id, "person", obs, [crop], kinematics(obs, "person"), 0.9, labels_seen={"person": 5}
    )
    rec.attributes = TrackAttributes(colours={"upper": {"red": 0.9}}, carried=carried)
    return rec


def test_person_with_a_bicycle_finds_the_cyclist_only_and_old_vectors_still_read(store) -> None:
    plan = repo.plan_source(
        store, camera="yard", uri="/video/yard.mp4", fingerprint="yard", settings_key="k", settings={},
        width=640, height=480, native_fps=10.0, duration=None,
        wallclock_start=datetime(2026, 11, 20, 8, 0, tzinfo=UTC), force=True,
    )  # fmt: skip
    assert plan.source_id is not None
    records = [_record(1, {"bicycle": 1.0}), _record(2, {}), _record(3, {"backpack": 0.9})]
    repo.save_tracks(store, plan.source_id, plan.camera_id, records, {})
    with store.session() as session:
        ids = list(session.scalars(select(Track.id).order_by(Track.local_id)))
    cyclist, pedestrian, hiker = ids
    engine = SearchEngine(store)
    for text in ("person with a bicycle", "cyclist", "man pushing a bike"):
        result = engine.search(text)
        assert [h.track_id for h in result.hits] == [cyclist], text
        assert result.hits[0].match == "full" and result.full_matches == 1
    assert {h.track_id for h in engine.search("person without a bicycle").hits} == {pedestrian, hiker}
    # A vector stored before carried:bicycle was appended to FACETS reads with it at 0.
    with store.session() as session:
        old = bytes(session.scalar(select(Track.facets).where(Track.id == hiker)))[: len(FACETS) - 1]
        session.execute(update(Track).where(Track.id == hiker).values(facets=old))
    index = build(store)
    col = int(np.flatnonzero(index.track_ids == hiker)[0])
    assert index.facets[FACET_INDEX["upper:red"], col] > 200
    assert index.facets[FACET_INDEX["carried:backpack"], col] > 200
    assert index.facets[FACET_INDEX["carried:bicycle"], col] == 0
