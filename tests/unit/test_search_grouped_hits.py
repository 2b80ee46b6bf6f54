"""Picking one track per group before building hits gives exactly the results of building every
ranked hit and collapsing them afterwards (the straightforward path), on a real store and index:
same hits, order, scores, groups (segments), explanations and counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import save_records
from servers import wait_until
from sqlalchemy import event, text

from camsight.records.attributes import TrackAttributes
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.search import grouping
from camsight.search.engine import SearchEngine
from camsight.search.hit_rows import HitRowReader
from camsight.search.query import parse_query
from camsight.store import repository as repo
from camsight.store.db import Store, open_store
from camsight.tracking.kinematics import kinematics

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
COLOURS = ("red", "blue", "black", "green", "white", "grey")
QUERIES = (
    "person",
    "red top",
    "person in a blue jacket and black trousers",
    "person without a red top",
    "black trousers",
    "green top or white top",
    "person in grey",
    "car",
)


def _fragment(
    local_id: int, start: float, x: float, look: np.ndarray, rng: np.random.Generator
) -> TrackRecord:
    """One track of a person: 1 s at ``start``, standing at ``x``, with some colours."""
    obs = [
        Observation(int(start * 5) + i + 1, start + i * 0.2, (x, 20.0, x + 40.0, 120.0), 0.9)
        for i in range(5)
    ]
    crop = Crop(obs[1].frame, obs[1].t, obs[1].box, 1.0, np.full((100, 40, 3), 128, np.uint8), (6, 10))
    label = "car" if local_id % 11 == 0 else "person"
    rec = TrackRecord(local_id, label, obs, [crop], kinematics(obs, label), 0.9, labels_seen={label: 5})
    upper = {str(c): round(float(v), 2) for c, v in zip(rng.choice(COLOURS, 2), rng.random(2), strict=True)}
    lower = {str(rng.choice(COLOURS)): round(float(rng.random()), 2)}
    rec.attributes = TrackAttributes(colours={"upper": upper, "lower": lower})
    rec.appearance = look
    return rec


def _people(rng: np.random.Generator, people: int) -> list[TrackRecord]:
    """``people`` people of 1-4 tracks each; one person's tracks look alike and follow each other."""
    records: list[TrackRecord] = []
    for p in range(people):
        look = rng.normal(size=24).astype(np.float32)
        look /= np.linalg.norm(look)
        start, x = p * 3.0, float(rng.integers(0, 500))
        for _ in range(int(rng.integers(1, 5))):
            records.append(_fragment(len(records) + 1, start, x, look, rng))
            start += 2.0 + float(rng.random()) * 3
    return records


def _add(store: Store, camera: str, records: list[TrackRecord]) -> None:
    save_records(store, camera, records, T0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Two cameras (one live, whose segments show ISO times) of people seen in several tracks."""
    rng = np.random.default_rng(7)
    store = open_store(tmp_path / "data")
    _add(store, "lobby", _people(rng, 60))
    _add(store, "gate", _people(rng, 30))
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE cameras SET kind = 'live' WHERE name = 'gate'"))
    yield store
    store.close()


def _engines(store: Store) -> tuple[SearchEngine, SearchEngine]:
    fast, plain = SearchEngine(store), SearchEngine(store)
    plain.group_before_hits = False
    return fast, plain


def _same(fast: SearchEngine, plain: SearchEngine, text_: str, limit: int, **kw: Any) -> dict[str, Any]:
    a = fast.run(parse_query(text_, cameras=["lobby", "gate"]), limit=limit, **kw).to_dict()
    b = plain.run(parse_query(text_, cameras=["lobby", "gate"]), limit=limit, **kw).to_dict()
    assert a == b, (text_, limit)
    return a


def test_grouping_before_hits_changes_no_result(store: Store) -> None:
    fast, plain = _engines(store)
    grouped = 0
    for query in QUERIES:
        for limit in (1, 2, 5, 13, 40, 200):
            found = _same(fast, plain, query, limit)
            assert len(found["hits"]) <= limit
            grouped += sum(len(h["segments"]) > 1 for h in found["hits"])
    # The store really groups tracks, and the results show it: the comparison is not vacuous.
    assert grouped > 0
    assert any(isinstance(h["segments"][0]["start"], str) for h in _same(fast, plain, "person", 200)["hits"])


def test_only_the_hits_returned_are_built(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, plain = _engines(store)
    built: dict[str, list[int]] = {"fast": [], "plain": []}
    for name, engine in (("fast", fast), ("plain", plain)):
        original = engine._hits

        def spy(track_ids: Any, *args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            built[_name].append(len(track_ids))
            return _original(track_ids, *args, **kw)

        monkeypatch.setattr(engine, "_hits", spy)
    result = fast.search("person", limit=5)
    plain.search("person", limit=5)
    assert built["fast"] == [len(result.hits)] == [5]
    assert built["plain"][0] > 5


def test_a_track_deleted_after_indexing_gives_the_same_results(store: Store) -> None:
    fast, plain = _engines(store)
    index = fast.index_cache.get()
    first = fast.search("person", limit=10).hits
    plain.search("person", limit=10)  # both engines hold the groups of before the deletion
    gone = next(h for h in first if len(h.segments) > 1).track_id
    with store.engine.begin() as connection:
        for table in ("observations", "thumbnails", "track_embeddings"):
            connection.execute(text(f"DELETE FROM {table} WHERE track_id = :t"), {"t": gone})
        connection.execute(text("DELETE FROM tracks WHERE id = :t"), {"t": gone})
    for engine in (fast, plain):  # a search racing the deletion, that had not read these rows yet
        engine.hit_rows = HitRowReader(store)
    # The index of before the deletion, as a search racing it sees: the group's next track stands in.
    found = _same(fast, plain, "person", 10, index=index)
    assert gone not in {h["track_id"] for h in found["hits"]}
    assert gone not in {s["track_id"] for h in found["hits"] for s in h["segments"]}


def test_new_tracks_are_read_alone_even_beside_tracks_without_observations(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tracks without observations are never grouped; they used to be read again on every change."""
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM observations WHERE track_id <= 20"))
    engine = SearchEngine(store)
    before = engine.search("person", limit=5)
    newest = int(engine.index_cache.get().track_ids.max())
    reads: list[int] = []
    real = grouping.load_tracks

    def spy(store_: Store, *, above: int = 0) -> list[grouping.TrackInfo]:
        reads.append(above)
        return real(store_, above=above)

    monkeypatch.setattr(grouping, "load_tracks", spy)
    _add(store, "yard", _people(np.random.default_rng(3), 5))
    after = engine.search("person", limit=500)
    assert reads == [newest]  # only the new tracks were read
    assert after.candidates > before.candidates
    # ... and they are grouped like the rest: the same results as a fresh engine's.
    fresh = SearchEngine(store).search("person", limit=500)
    assert after.to_dict() == fresh.to_dict()
    assert any(len(h.segments) > 1 for h in after.hits if h.camera == "yard")


def test_row_groups_map_each_track_to_its_group() -> None:
    ids = np.array([5, 1, 9, 3, 7], np.int64)
    of = {1: 1, 3: 1, 5: 5, 7: 5, 9: 9, 11: 5}
    assert grouping._row_groups(ids, of).tolist() == [of.get(int(t), int(t)) for t in ids] == [5, 1, 9, 1, 5]
    assert grouping._row_groups(np.array([4, 2], np.int64), of).tolist() == [4, 2]
    assert grouping._row_groups(ids, {}).tolist() == ids.tolist()


def test_regrouping_scores_only_the_new_pairs(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    infos = grouping.load_tracks(store)
    old, new = infos[:-6], infos[-6:]
    scores: dict[tuple[int, int], float | None] = {}
    assert grouping.group_tracks(old, scores=scores) == grouping.group_tracks(old)
    scored: list[tuple[int, int]] = []
    real = grouping.link_score

    def spy(a: grouping.TrackInfo, b: grouping.TrackInfo, s: grouping.GroupingSettings) -> float | None:
        scored.append((a.track_id, b.track_id))
        return real(a, b, s)

    monkeypatch.setattr(grouping, "link_score", spy)
    again = grouping.group_tracks(old + new, scores=scores)
    fresh_ids = {t.track_id for t in new}
    assert scored and all(a in fresh_ids or b in fresh_ids for a, b in scored)
    monkeypatch.setattr(grouping, "link_score", real)
    assert again == grouping.group_tracks(old + new)


def _count_statements(store: Store) -> list[str]:
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    return statements


def test_hit_rows_are_read_once_per_index_lineage(store: Store) -> None:
    """A repeated search reads no track rows again; a change that rebuilds the index does."""
    engine = SearchEngine(store)
    first = engine.search("person in grey", limit=20).to_dict()
    statements = _count_statements(store)
    again = engine.search("person in grey", limit=20).to_dict()
    assert again["hits"] == first["hits"]
    assert not [s for s in statements if "FROM tracks JOIN cameras" in s]
    # Deleting a source (re-indexing it, or retention) rebuilds the index: its rows go, and
    # rows are read again rather than served from before.
    gone = {h["track_id"] for h in first["hits"] if h["camera"] == "gate"}
    assert gone
    with store.session() as session:
        source = session.execute(text("SELECT id FROM sources WHERE uri LIKE '%gate%'")).scalar_one()
    repo.discard_source(store, source)
    statements.clear()
    after = engine.search("person in grey", limit=20).to_dict()
    assert [s for s in statements if "FROM tracks JOIN cameras" in s]
    assert not gone & {h["track_id"] for h in after["hits"]}
    assert not gone & {s["track_id"] for h in after["hits"] for s in h["segments"]}
    assert after["hits"] == SearchEngine(store).search("person in grey", limit=20).to_dict()["hits"]


def test_hit_row_cache_is_bounded(store: Store) -> None:
    reader = HitRowReader(store, size=5)
    ids = [int(t) for t in SearchEngine(store).index_cache.get().track_ids[:12]]
    rows = reader.read(ids, lineage=1)
    assert sorted(rows) == sorted(ids)
    assert len(reader.cache) == 5
    assert reader.read(ids[-3:], lineage=2).keys() == set(ids[-3:])  # another lineage: read again


def test_a_repeated_search_is_answered_from_the_kept_result_until_tracks_change(store: Store) -> None:
    engine = SearchEngine(store)
    first = engine.search("person in grey", limit=20)
    statements = _count_statements(store)
    again = engine.search("person in grey", limit=20)
    assert again.hits is first.hits  # kept, not searched again
    assert again.to_dict() | {"seconds": 0} == first.to_dict() | {"seconds": 0}
    assert not [s for s in statements if "FROM tracks" in s]  # only the revision was read
    # New tracks: the next search runs again and sees them.
    _add(store, "yard", _people(np.random.default_rng(5), 20))
    after = engine.search("person in grey", limit=500)
    assert any(h.camera == "yard" for h in after.hits)
    fresh = SearchEngine(store).search("person in grey", limit=500)
    assert after.to_dict() | {"seconds": 0} == fresh.to_dict() | {"seconds": 0}


def test_searches_with_time_words_or_no_cache_are_never_kept(store: Store) -> None:
    engine = SearchEngine(store)
    engine.search("person in grey yesterday", limit=5)
    engine.search("person in grey after 18:00", limit=5)
    assert not engine.results._results
    engine.search("person in grey", limit=5)
    engine.search("person in grey", limit=6)  # another limit is another result
    assert len(engine.results._results) == 2
    off = SearchEngine(store, result_cache=0)
    a, b = off.search("person in grey", limit=5), off.search("person in grey", limit=5)
    assert a.hits is not b.hits and not off.results._results


def test_the_same_search_asked_at_once_is_made_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many clients asking the same thing as new tracks come in: one searches, the others wait for it."""
    import threading

    engine = SearchEngine(store)
    engine.index_cache.get()
    made: list[int] = []
    release = threading.Event()
    real = engine.run

    def slow_run(*args: Any, **kw: Any) -> Any:
        made.append(1)
        release.wait(30)  # the others arrive while this search is being made
        return real(*args, **kw)

    monkeypatch.setattr(engine, "run", slow_run)
    answers: list[Any] = []
    threads = [
        threading.Thread(target=lambda: answers.append(engine.search("person in grey", limit=10)))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    wait_until(lambda: len(made) == 1 and len(engine.results._running) == 1, timeout=30)
    release.set()
    for t in threads:
        t.join(30)
    assert len(made) == 1 and len(answers) == 6
    assert all(a.hits is answers[0].hits for a in answers)
