"""The search engine on a small hand-built store: ranking, filters, explanations."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import numpy as np
import pytest

from camsight.errors import NotFoundError
from camsight.records.attributes import TrackAttributes
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.search.engine import SearchEngine, SearchError
from camsight.search.query_model import ParsedQuery, Term, TimeOfDay
from camsight.store import repository as repo
from camsight.store.db import open_store
from camsight.tracking.kinematics import kinematics

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _record(local_id, label, attrs, start=0.0, appearance=None, embedding=None):
    obs = [Observation(i + 1, start + i * 0.2, (10.0 + i, 20.0, 50.0 + i, 120.0), 0.9) for i in range(5)]
    crop = Crop(2, start + 0.2, (11.0, 20.0, 51.0, 120.0), 1.0, np.full((110, 45, 3), 128, np.uint8), (6, 10))
    rec = TrackRecord(local_id, label, obs, [crop], kinematics(obs, label), 0.9, labels_seen={label: 5})
    rec.attributes = attrs
    rec.appearance = appearance
    if embedding is not None:
        rec.embedding, rec.embedding_model = np.asarray(embedding, np.float32), "tiny"
    return rec


def _add_source(store, camera, records, wallclock=T0):
    plan = repo.plan_source(
        store,
        camera=camera,
        uri=f"/video/{camera}.mp4",
        fingerprint=camera,
        settings_key="k",
        settings={},
        width=640,
        height=480,
        native_fps=10.0,
        duration=60.0,
        wallclock_start=wallclock,
    )
    repo.save_tracks(store, plan.source_id, plan.camera_id, list(records), {})
    repo.finish_source(store, plan.source_id, "complete", {}, None)


def _store(tmp_path, camera="lobby", records=(), wallclock=T0, url=None):
    store = open_store(tmp_path / "data", url=url)
    _add_source(store, camera, records, wallclock)
    return store


# The tests on the five-track store run on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.both_databases


def _colours(upper=None, lower=None):
    return TrackAttributes(colours={"upper": upper or {}, "lower": lower or {}})


@pytest.fixture
def store(tmp_path, database_url):
    """Five tracks on one camera; on SQLite and on PostgreSQL for tests marked both_databases."""
    records = [
        _record(1, "person", _colours({"red": 0.9}, {"blue": 0.8}), start=0),
        _record(2, "person", _colours({"red": 0.6}, {"black": 0.9}), start=10),
        _record(3, "person", _colours({"black": 0.95}, {"blue": 0.9}), start=20),
        _record(
            4,
            "person",
            TrackAttributes(colours={"upper": {"green": 0.9}}, carried={"backpack": 1.0}),
            start=30,
        ),
        _record(5, "car", TrackAttributes(colours={"body": {"red": 0.9}}, vehicle={"car": 1.0}), start=40),
    ]
    s = _store(tmp_path, records=records, url=database_url)
    yield s
    s.close()


def q(*terms, **kw):
    return ParsedQuery(text="test", terms=tuple(terms), **kw)


def test_full_matches_rank_before_partial_and_are_marked(store):
    result = SearchEngine(store).run(q(Term(("upper:red",)), Term(("lower:blue",)), classes=("person",)))
    order = [(h.track_id, h.match) for h in result.hits]
    # Track 1 has both; 2 (red only) and 3 (blue only) are partial; 4 has neither and is left out.
    assert order[0] == (1, "full")
    assert {tid for tid, m in order[1:]} == {2, 3}
    assert all(m == "partial" for _, m in order[1:])
    assert result.full_matches == 1
    first = result.hits[0].explanation
    assert [e["term"] for e in first] == ["upper: red", "lower: blue"]
    assert all(e["matched"] for e in first)
    assert first[0]["score"] == pytest.approx(0.9, abs=0.01)


def test_confidence_orders_full_matches(store):
    hits = SearchEngine(store).run(q(Term(("upper:red",)))).hits
    persons = [h.track_id for h in hits if h.label == "person"]
    assert persons == [1, 2]  # 0.9 before 0.6


def test_negation(store):
    hits = SearchEngine(store).run(q(Term(("carried:backpack",), negated=True), classes=("person",))).hits
    ids = {h.track_id for h in hits if h.match == "full"}
    assert 4 not in ids and {1, 2, 3} <= ids


def test_class_filter_and_vehicle_colour(store):
    hits = SearchEngine(store).run(q(Term(("body:red",)), classes=("car",))).hits
    assert [h.track_id for h in hits] == [5]
    assert hits[0].label == "car"


def test_camera_filter_unknown_camera_is_a_clear_error(store):
    with pytest.raises(NotFoundError, match=r"no camera named 'garage'.*lobby"):
        SearchEngine(store).run(q(Term(("upper:red",)), cameras=("garage",)))


def test_time_filters(store):
    engine = SearchEngine(store)
    since = T0 + timedelta(seconds=15)
    hits = engine.run(q(classes=("person",), since=since)).hits
    assert {h.track_id for h in hits} == {3, 4}
    until = T0 + timedelta(seconds=5)
    assert {h.track_id for h in engine.run(q(classes=("person",), until=until)).hits} == {1}
    with pytest.raises(SearchError, match="time range is empty"):
        engine.run(q(since=T0 + timedelta(hours=1), until=T0))


def test_time_of_day_window(store):
    local = T0.astimezone()
    inside = TimeOfDay((local - timedelta(minutes=1)).time(), (local + timedelta(minutes=5)).time())
    outside = TimeOfDay(time((local.hour + 3) % 24, 0), time((local.hour + 4) % 24, 0))
    engine = SearchEngine(store)
    assert len(engine.run(q(time_of_day=inside)).hits) == 5
    assert engine.run(q(time_of_day=outside)).hits == []


def test_hit_schema_for_files(store):
    hit = SearchEngine(store).run(q(Term(("upper:red",)))).hits[0]
    d = hit.to_dict()
    for key in ("track_id", "camera", "start", "end", "frame", "box", "score", "explanation", "thumbnail"):
        assert key in d
    assert isinstance(d["start"], float) and d["start"] < d["end"]
    assert d["frame"] == 2  # the best crop's frame, 1-based
    assert d["box"] == [11.0, 20.0, 51.0, 120.0]
    assert d["thumbnail"].endswith(".jpg")
    assert d["camera"] == "lobby"


def test_limit_bounds(store):
    with pytest.raises(SearchError, match="limit"):
        SearchEngine(store).run(q(), limit=0)


def test_index_follows_new_tracks(tmp_path):
    store = _store(tmp_path, records=[_record(1, "person", _colours({"red": 0.9}))])
    engine = SearchEngine(store)
    assert len(engine.run(q(Term(("upper:red",)))).hits) == 1
    _add_source(store, "yard", [_record(1, "person", _colours({"red": 0.8}))])
    hits = engine.run(q(Term(("upper:red",)))).hits
    assert [h.camera for h in hits] == ["lobby", "yard"]
    store.close()


def test_more_like_this(tmp_path):
    base = np.zeros(144, np.float32)
    a = base.copy()
    a[0] = 1
    near = base.copy()
    near[0], near[1] = 0.95, 0.31
    far = base.copy()
    far[5] = 1
    records = [
        _record(1, "person", _colours(), appearance=a),
        _record(2, "person", _colours(), appearance=far),
        _record(3, "person", _colours(), appearance=near / np.linalg.norm(near)),
    ]
    store = _store(tmp_path, records=records)
    tid = {h.track_id for h in SearchEngine(store).run(q()).hits}
    assert tid == {1, 2, 3}
    result = SearchEngine(store).more_like(1)
    # Only look-alikes above the colour cut-off (track 2 shares nothing), with the reference shown.
    assert [h.track_id for h in result.hits] == [3]
    assert result.hits[0].explanation[0]["term"].startswith("appearance")
    assert result.reference is not None and result.reference.track_id == 1
    with pytest.raises(NotFoundError):
        SearchEngine(store).more_like(999)
    store.close()


def test_visual_similarity_is_fused(tmp_path):
    records = [
        _record(1, "person", _colours({"red": 0.7}), embedding=[1, 0, 0]),
        _record(2, "person", _colours({"red": 0.75}), embedding=[0, 1, 0]),
    ]
    store = _store(tmp_path, records=records)
    engine = SearchEngine(store, embedding_weight=0.5)
    emb = engine.index_cache.embeddings("tiny")
    plain = engine.run(q(Term(("upper:red",))))
    assert [h.track_id for h in plain.hits] == [2, 1]
    fused = engine.run(q(Term(("upper:red",))), visual=(emb, np.array([1, 0, 0], np.float32)))
    assert [h.track_id for h in fused.hits] == [1, 2]
    assert fused.hits[0].explanation[-1]["term"] == "visual similarity"
    store.close()


def test_a_hit_without_a_thumbnail_shows_its_middle_observation(tmp_path):
    # Tracks of 5 and 4 observations, no crops (so no thumbnails): the middle box is element n // 2.
    five = _record(1, "person", TrackAttributes())
    four = _record(2, "car", TrackAttributes(), start=3.0)
    five.crops, four.crops = [], []
    four.observations = four.observations[:4]
    store = _store(tmp_path, records=[five, four])
    hits = {h.label: h for h in SearchEngine(store).search("person or car").hits}
    assert hits["person"].thumbnail is None and hits["person"].frame == 3
    assert hits["person"].box == [12.0, 20.0, 52.0, 120.0]
    assert hits["car"].frame == 3 and hits["car"].box == [12.0, 20.0, 52.0, 120.0]


# --- every word counts: nothing to search for, calibrated thresholds, explanations ---------------


@pytest.mark.parametrize("text", ["xqzv blorf gnarp", "the a of with", "tall"])
def test_a_query_with_nothing_to_search_for_finds_nothing_and_says_why(store, text):
    result = SearchEngine(store).search(text)
    assert result.hits == [] and result.full_matches == 0
    assert result.interpretation.startswith("nothing camsight can search for")
    assert result.notes and result.notes[0].startswith("nothing matches:")


def test_a_misspelt_query_finds_what_the_right_one_finds(store):
    engine = SearchEngine(store)
    right, typo = engine.search("person in a red jacket"), engine.search("persn in a red jakcet")
    assert [h.track_id for h in typo.hits] == [h.track_id for h in right.hits] == [1, 2]
    assert "read as: persn → person, jakcet → jacket" in typo.interpretation


def _lower(tmp_path, blues):
    records = [_record(i + 1, "person", _colours({"grey": 0.9}, {"blue": b})) for i, b in enumerate(blues)]
    return _store(tmp_path, records=records)


def test_unsure_evidence_does_not_satisfy_a_without(tmp_path):
    # Trousers that read 0.49 blue may well be jeans: "without jeans" must not call them a match.
    store = _lower(tmp_path, [0.49, 0.1, 0.0])
    result = SearchEngine(store).search("grey top without jeans")
    match = {h.track_id: h.match for h in result.hits}
    assert match == {1: "partial", 2: "full", 3: "full"}
    failed = next(e for e in result.hits[-1].explanation if not e["matched"])
    assert failed["region"] == "lower body"
    assert failed["detail"] == "lower body: blue 49%, above the 30% allowed"
    store.close()


def test_a_facet_below_its_calibrated_threshold_is_not_a_full_match(tmp_path):
    records = [
        _record(1, "person", _colours({"red": 0.3})),  # under the upper body's 0.35
        _record(2, "person", _colours({"red": 0.4})),
        _record(3, "person", _colours({}, {"black": 0.45})),  # under the lower body's 0.50
        _record(4, "person", _colours({}, {"black": 0.6})),
        _record(5, "person", _colours({}, {"black": 0.25})),  # at most the 0.30 "absent": not seen
    ]
    store = _store(tmp_path, records=records)
    engine = SearchEngine(store)
    assert [h.track_id for h in engine.search("red top").hits if h.match == "full"] == [2]
    trousers = engine.search("black trousers")
    # 3 is unsure (between absent and present): listed after the match, as partial, with a
    # note; 5 is clearly not in black trousers and not listed at all.
    assert [(h.track_id, h.match) for h in trousers.hits] == [(4, "full"), (3, "partial")]
    assert any("unsure" in n for n in trousers.notes)
    assert not any("unsure" in n for n in engine.search("black trousers", limit=1).notes)
    store.close()


def test_unsure_evidence_alone_still_ranks_people(tmp_path):
    """A weak model's scores (a bag on a small person) rank people even when none reaches the
    calibrated threshold: the search lists them as partial, closest first, instead of nothing."""
    records = [
        _record(1, "person", TrackAttributes(carried={"handbag": 0.39})),
        _record(2, "person", TrackAttributes(carried={"handbag": 0.45})),
        _record(3, "person", TrackAttributes(carried={"handbag": 0.1})),
        _record(4, "person", TrackAttributes()),
    ]
    store = _store(tmp_path, records=records)
    result = SearchEngine(store).search("person with a bag")
    assert [(h.track_id, h.match) for h in result.hits] == [(2, "partial"), (1, "partial")]
    assert result.full_matches == 0
    assert not result.hits[0].explanation[0]["matched"]
    store.close()


def test_all_in_black_needs_no_other_colour(tmp_path):
    """ "Dressed all in black": a red-and-navy jacket whose navy reads partly black (PETS09) is
    not a full match, but is still listed, as unsure; grey (black in the light) and, on the upper
    body, hair colours (long blonde hair over a black top) do not spoil it."""
    records = [
        _record(1, "person", _colours({"black": 0.9}, {"black": 1.0, "grey": 0.49})),
        _record(2, "person", _colours({"black": 0.6, "red": 0.85}, {"black": 0.7})),
        _record(3, "person", _colours({"black": 1.0, "brown": 0.9}, {"black": 1.0})),
        _record(4, "person", _colours({"black": 1.0}, {"black": 1.0, "blue": 0.73})),
        _record(5, "person", _colours({"red": 1.0}, {"blue": 1.0})),
    ]
    store = _store(tmp_path, records=records)
    engine = SearchEngine(store)
    result = engine.search("dressed all in black")
    assert result.interpretation.startswith("person · upper: black only · lower: black only")
    match = {h.track_id: h.match for h in result.hits}
    assert match == {1: "full", 3: "full", 2: "partial", 4: "partial"}
    spoilt = {h.track_id: [e for e in h.explanation if not e["matched"]] for h in result.hits}
    assert [(e["facet"], e["detail"]) for e in spoilt[2]] == [
        (
            "upper:red",
            "upper body: black 60%, but also red 85% (only black asked: another colour must stay below 35%)",
        )
    ]
    assert spoilt[4][0]["region"] == "lower body"
    # Without "all", a black top over a second colour is still in black.
    assert {h.track_id for h in engine.search("in black").hits if h.match == "full"} == {1, 2, 3, 4}
    store.close()


def test_every_facet_must_hold_and_the_failed_ones_name_their_region(store):
    result = SearchEngine(store).search("red top and blue jeans")
    by_id = {h.track_id: h for h in result.hits}
    assert by_id[1].match == "full"
    assert by_id[2].match == "partial"
    failed = [e for e in by_id[2].explanation if not e["matched"]]
    assert [(e["region"], e["detail"]) for e in failed] == [
        ("lower body", "lower body: blue 0%, below the 50% needed")
    ]


def test_the_explanation_says_each_thing_once(tmp_path):
    attrs = _colours({"black": 1.0})
    attrs.evidence["upper:black"] = "upper black 1.00 (3 crops, pose keypoints)"
    store = _store(tmp_path, records=[_record(1, "person", attrs)])
    item = SearchEngine(store).search("black jacket").hits[0].explanation[0]
    assert item["detail"] == "upper body: black 100%"
    assert item["evidence"] == "3 crops, pose keypoints"  # not "upper black 1.00" again
    assert item["words"] == "black jacket" and item["matched"] is True
    store.close()


def test_a_single_colour_ranks_above_the_same_score_shared_with_another(tmp_path):
    records = [
        _record(1, "person", _colours({}, {"black": 0.9, "blue": 0.9})),
        _record(2, "person", _colours({}, {"black": 0.9})),
    ]
    store = _store(tmp_path, records=records)
    hits = SearchEngine(store).search("black trousers").hits
    assert [(h.track_id, h.match) for h in hits] == [(2, "full"), (1, "full")]
    store.close()
