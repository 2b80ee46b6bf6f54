"""The facet index catches up with new tracks by appending, and rebuilds when tracks were removed.

Real temporary stores written through the same repository calls the indexers
use (plan_source / save_tracks). Which way the index caught up is read from
IndexCache.stats, never from timings; after every step the index must equal
one built from scratch.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import delete, select

from camsight.records.attributes import TrackAttributes
from camsight.records.facets import FACET_INDEX, FACETS
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.search import index as index_module
from camsight.search.engine import SearchEngine
from camsight.search.index import FacetIndex, IndexCache, build, build_embeddings, extend
from camsight.search.query_model import ParsedQuery, Term
from camsight.store import repository as repo
from camsight.store.db import Store
from camsight.store.models import Meta, Track
from camsight.tracking.kinematics import kinematics

# The store fixture runs each test on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.both_databases

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
RED = ParsedQuery(text="red top", terms=(Term(("upper:red",)),))


def _record(local_id: int, colour: str, start: float, embedding: list[float] | None = None) -> TrackRecord:
    obs = [Observation(i + 1, start + i * 0.2, (10.0 + i, 20.0, 50.0 + i, 120.0), 0.9) for i in range(5)]
    crop = Crop(2, start + 0.2, (11.0, 20.0, 51.0, 120.0), 1.0, np.full((110, 45, 3), 128, np.uint8), (6, 10))
    rec = TrackRecord(
        local_id, "person", obs, [crop], kinematics(obs, "person"), 0.9, labels_seen={"person": 5}
    )
    rec.attributes = TrackAttributes(colours={"upper": {colour: 0.9}})
    if embedding is not None:
        rec.embedding, rec.embedding_model = np.asarray(embedding, np.float32), "tiny"
    return rec


class Feed:
    """One source of one camera that tracks are saved to, as an indexing or live worker does."""

    def __init__(self, store: Store, camera: str, wallclock: datetime = T0) -> None:
        self.store, self.camera, self.wallclock = store, camera, wallclock
        self.local = 0
        self.source_id, self.camera_id = self._plan()

    def _plan(self) -> tuple[int, int]:
        plan = repo.plan_source(
            self.store,
            camera=self.camera,
            uri=f"/video/{self.camera}.mp4",
            fingerprint=self.camera,
            settings_key="k",
            settings={},
            width=640,
            height=480,
            native_fps=10.0,
            duration=None,
            wallclock_start=self.wallclock,
            force=True,  # the same source again replaces the old one: its tracks are deleted
        )
        assert plan.source_id is not None
        return plan.source_id, plan.camera_id

    def add(self, *colours: str, embeddings: list[list[float]] | None = None) -> list[int]:
        """Save one track per colour; return their track ids."""
        records = []
        for i, colour in enumerate(colours):
            self.local += 1
            emb = embeddings[i] if embeddings else None
            records.append(_record(self.local, colour, start=self.local * 2.0, embedding=emb))
        repo.save_tracks(self.store, self.source_id, self.camera_id, records, {})
        with self.store.session() as session:
            return list(
                session.scalars(
                    select(Track.id)
                    .where(Track.source_id == self.source_id, Track.local_id > self.local - len(colours))
                    .order_by(Track.id)
                )
            )

    def replace(self, wallclock: datetime | None = None) -> None:
        """Index the same source again (e.g. with other settings): its tracks are removed."""
        self.wallclock = wallclock or self.wallclock
        self.local = 0
        self.source_id, self.camera_id = self._plan()


def assert_same_as_rebuilt(store: Store, index: FacetIndex) -> None:
    fresh = build(store)
    assert index.revision == fresh.revision
    for name, arr in fresh.arrays().items():
        np.testing.assert_array_equal(getattr(index, name), arr, err_msg=name)
    assert index.camera_names == fresh.camera_names


def red_hits(engine: SearchEngine) -> set[int]:
    return {h.track_id for h in engine.run(RED, limit=1000).hits}


def test_new_tracks_are_appended_not_rebuilt_and_found(store):
    feed = Feed(store, "lobby")
    first = feed.add("red", "blue", "red")
    engine = SearchEngine(store)
    assert red_hits(engine) == {first[0], first[2]}
    assert engine.index_cache.stats["full_builds"] == 1
    before = engine.index_cache.get()

    new = feed.add("red", "green")
    assert red_hits(engine) == {first[0], first[2], new[0]}
    stats = engine.index_cache.stats
    assert stats["full_builds"] == 1 and stats["appends"] == 1 and stats["tracks_appended"] == 2
    after = engine.index_cache.get()
    assert after.lineage == before.lineage and len(after) == len(before) + 2
    assert_same_as_rebuilt(store, after)

    # Another camera appears with its first tracks: its name is searchable at once.
    yard = Feed(store, "yard").add("red")
    hits = engine.run(ParsedQuery(text="red in yard", terms=(Term(("upper:red",)),), cameras=("yard",))).hits
    assert [h.track_id for h in hits] == yard
    assert stats["full_builds"] == 1 and stats["appends"] == 2
    assert_same_as_rebuilt(store, engine.index_cache.get())


def test_an_index_handed_out_never_changes_when_later_tracks_are_appended(store):
    feed = Feed(store, "lobby")
    feed.add("red", "blue")
    cache = IndexCache(store)
    old = cache.get()
    old_copy = {name: arr.copy() for name, arr in old.arrays().items()}
    for _ in range(5):
        feed.add("green", "red", "black")
        cache.get()
    assert cache.stats["appends"] == 5 and cache.stats["full_builds"] == 1
    for name, arr in old_copy.items():
        np.testing.assert_array_equal(getattr(old, name), arr, err_msg=name)
    # Appending to an older index again (the room after it is taken) must copy, never overwrite a newer one.
    newest = cache.get()
    newest_copy = {name: arr.copy() for name, arr in newest.arrays().items()}

    def one(value: int) -> FacetIndex:
        return FacetIndex(
            0,
            np.array([newest.max_track_id + 1], np.int64),
            np.array([1], np.int32),
            np.array([0], np.int8),
            np.array([0.0]),
            np.array([1.0]),
            np.full((len(FACETS), 1), value, np.uint8),
            {},
        )

    a = newest.appended(newest.revision, one(7), {})
    b = newest.appended(newest.revision, one(9), {})  # a took the room after newest: b must copy
    c = old.appended(old.revision, one(11), {})
    assert (a.facets[0, -1], b.facets[0, -1], c.facets[0, -1]) == (7, 9, 11)
    assert len(a) == len(b) == len(newest) + 1 and len(c) == len(old) + 1
    for name, arr in newest_copy.items():
        np.testing.assert_array_equal(getattr(newest, name), arr, err_msg=name)
    with pytest.raises(ValueError, match="higher ids"):
        newest.appended(newest.revision, old, {})
    assert_same_as_rebuilt(store, cache.get())


def test_replaced_source_forces_a_full_rebuild_and_its_tracks_disappear(store):
    lobby, gate = Feed(store, "lobby"), Feed(store, "gate")
    old_lobby = lobby.add("red", "red")
    kept = gate.add("red")
    engine = SearchEngine(store)
    assert red_hits(engine) == {*old_lobby, *kept}

    lobby.replace()  # deletes the lobby's tracks
    assert red_hits(engine) == set(kept)
    assert engine.index_cache.stats["full_builds"] == 2 and engine.index_cache.stats["appends"] == 0
    assert_same_as_rebuilt(store, engine.index_cache.get())

    # Re-indexed: the new tracks may even reuse the deleted ids (SQLite does), yet never show the old facets.
    new_lobby = lobby.add("blue", "red")
    hits = red_hits(engine)
    assert hits == {*kept, new_lobby[1]}
    assert_same_as_rebuilt(store, engine.index_cache.get())


def test_discarded_source_forces_a_full_rebuild(store):
    lobby = Feed(store, "lobby")
    lobby.add("red")
    engine = SearchEngine(store)
    engine.index_cache.get()
    gone = Feed(store, "gate")
    gone_ids = gone.add("red")
    assert set(gone_ids) <= red_hits(engine)
    assert engine.index_cache.stats["appends"] == 1
    repo.discard_source(store, gone.source_id)
    assert not set(gone_ids) & red_hits(engine)
    assert engine.index_cache.stats["full_builds"] == 2
    assert_same_as_rebuilt(store, engine.index_cache.get())
    # SQLite gives the next track the id the removed one had: the index must hold the new facets, not red.
    reused = lobby.add("blue")
    assert reused == gone_ids or store.dialect != "sqlite"  # a PostgreSQL sequence never reuses ids
    assert not set(reused) & red_hits(engine)
    assert_same_as_rebuilt(store, engine.index_cache.get())


def test_removal_and_reuse_of_its_id_between_two_searches_rebuilds(store):
    """Count and highest id are unchanged here; only the recorded reset tells that facets changed."""
    lobby = Feed(store, "lobby")
    lobby.add("blue")
    gate = Feed(store, "gate")
    gone = gate.add("red")
    engine = SearchEngine(store)
    assert set(gone) <= red_hits(engine)
    repo.discard_source(store, gate.source_id)
    reused = lobby.add("green")
    # SQLite handed out the removed track's id again (a PostgreSQL sequence does not: still a reset).
    assert reused == gone or store.dialect != "sqlite"
    assert not red_hits(engine)
    assert engine.index_cache.stats["full_builds"] == 2
    assert_same_as_rebuilt(store, engine.index_cache.get())


def test_mixed_appends_and_deletions(store):
    lobby, gate = Feed(store, "lobby"), Feed(store, "gate")
    lobby.add("blue")  # a store's first save records its first reset
    engine = SearchEngine(store)
    cache = engine.index_cache
    expected: dict[str, int] = {"full_builds": 0, "appends": 0}
    steps = [
        ("append", lambda: lobby.add("red", "blue")),
        ("append", lambda: gate.add("red")),
        ("append", lambda: lobby.add("red")),
        ("delete", lambda: gate.replace()),
        ("append", lambda: gate.add("green", "red")),
        ("append", lambda: lobby.add("red")),
        ("delete", lambda: lobby.replace(T0 + timedelta(days=1))),
        ("append", lambda: lobby.add("red", "red", "red")),
    ]
    cache.get()
    expected["full_builds"] = 1
    for kind, step in steps:
        step()
        index = cache.get()
        expected["full_builds" if kind == "delete" else "appends"] += 1
        assert {k: cache.stats[k] for k in expected} == expected, kind
        assert_same_as_rebuilt(store, index)
        with store.session() as session:
            rows = session.execute(select(Track.id, Track.facets)).all()
        red_in_db = {tid for tid, facets in rows if facets[FACET_INDEX["upper:red"]] >= 128}
        assert red_hits(engine) == red_in_db


def test_a_deletion_recorded_as_an_append_is_still_caught_by_the_count(store):
    feed = Feed(store, "lobby")
    ids = feed.add("red", "red", "red")
    cache = IndexCache(store)
    cache.get()
    # A writer that removes a track but (wrongly) says it only appended: the count disagrees.
    with store.session() as session:
        session.execute(delete(Track).where(Track.id == ids[0]))
        repo.bump_revision(session, appended_only=True)
    feed.add("blue")
    index = cache.get()
    assert cache.stats["full_builds"] == 2 and cache.stats["appends"] == 0
    assert ids[0] not in index.track_ids
    assert_same_as_rebuilt(store, index)


def test_a_store_that_never_recorded_a_reset_is_rebuilt(store):
    feed = Feed(store, "lobby")
    feed.add("red")
    index = build(store)
    # As in a store written before resets were recorded: only the revision moves.
    with store.session() as session:
        session.execute(delete(Meta).where(Meta.key == repo.RESET_KEY))
        session.get(Meta, repo.REVISION_KEY).value = str(index.revision + 1)  # type: ignore[union-attr]
    assert extend(store, index) is None
    feed.add("red")  # the next save records a reset: appending works again from the index built after it
    with store.session() as session:
        revision, reset = repo.tracks_state(session)
    assert reset == revision
    rebuilt = build(store)
    feed.add("blue")
    assert extend(store, rebuilt) is not None


def test_new_process_starts_from_the_disk_cache_and_appends(store, monkeypatch):
    monkeypatch.setattr(IndexCache, "DISK_CACHE_MIN", 1)
    feed = Feed(store, "lobby")
    feed.add("red", "blue", "green")
    IndexCache(store).get()  # builds and saves
    assert list((store.root / "index").glob("facets-*.npz"))
    added = feed.add("red")

    cache = IndexCache(store)  # a new process: older cache on disk, one track appended since
    index = cache.get()
    assert (cache.stats["disk_loads"], cache.stats["full_builds"], cache.stats["appends"]) == (1, 0, 1)
    assert added[0] in index.track_ids
    assert_same_as_rebuilt(store, index)

    feed.replace()  # a deletion since the cache was written: it must not be trusted
    cache = IndexCache(store)
    index = cache.get()
    assert cache.stats["full_builds"] == 1 and len(index) == 0
    assert_same_as_rebuilt(store, index)


def test_embeddings_are_appended_and_rebuilt_with_the_facets(store):
    feed = Feed(store, "lobby")
    first = feed.add("red", "red", embeddings=[[1, 0, 0], [0, 1, 0]])
    cache = IndexCache(store)
    emb = cache.embeddings("tiny")
    assert list(emb.track_ids) == first and cache.stats["embedding_full_builds"] == 1

    new = feed.add("red", "blue", embeddings=[[0, 0, 1], [1, 0, 0]])
    emb = cache.embeddings("tiny")
    assert list(emb.track_ids) == first + new
    assert (cache.stats["embedding_full_builds"], cache.stats["embedding_appends"]) == (1, 1)
    scores = emb.scores(np.array(first + new), np.array([0, 0, 1], np.float32))
    np.testing.assert_allclose(scores, [0, 0, 1, 0])
    fresh = build_embeddings(store, "tiny", cache.get())
    np.testing.assert_array_equal(emb.vectors, fresh.vectors)

    feed.replace()
    emb = cache.embeddings("tiny")
    assert len(emb.track_ids) == 0 and cache.stats["embedding_full_builds"] == 2
    again = feed.add("red", embeddings=[[0, 1, 0]])
    emb = cache.embeddings("tiny")
    assert list(emb.track_ids) == again
    np.testing.assert_allclose(emb.scores(np.array(again), np.array([0, 1, 0], np.float32)), [1])


def test_concurrent_searches_while_tracks_are_added_and_removed(store):
    """Searches from several threads (as the API serves them) while a worker adds and replaces sources."""
    live, batch = Feed(store, "live"), Feed(store, "batch", wallclock=T0)
    live.add("red")
    batch.add("red", "red")
    engine = SearchEngine(store)
    engine.index_cache.get()
    # Each generation of the "batch" camera starts on another day, so its tracks are recognisable by time.
    removed_at: dict[int, float] = {}  # generation -> when its removal was committed
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[tuple[float, FacetIndex, list[tuple[str, str | None]]]] = []

    def writer() -> None:
        try:
            for gen in range(1, 7):
                for _ in range(4):
                    live.add("red", "blue")
                batch.replace(T0 + timedelta(days=gen))
                with lock:
                    removed_at[gen - 1] = _now()
                batch.add("red", "red")
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    def searcher() -> None:
        try:
            while not stop.is_set():
                started = _now()
                index = engine.index_cache.get()
                result = engine.search("person in a red top", limit=200)
                seen.append((started, index, [(h.camera, h.recorded_start) for h in result.hits]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(seen) > 3
    batch_id = batch.camera_id
    for started, index, hits in seen:
        gone = {gen for gen, at in removed_at.items() if at < started}
        days = {int((s - T0.timestamp()) // 86400) for s in index.start_at[index.camera_ids == batch_id]}
        assert not days & gone, "an index served after a removal still held removed tracks"
        hit_days = {(datetime.fromisoformat(r) - T0).days for cam, r in hits if cam == "batch" and r}
        assert not hit_days & gone, "a search returned a removed track"
    stats = engine.index_cache.stats
    assert stats["appends"] >= 1 and stats["full_builds"] >= 2
    assert_same_as_rebuilt(store, engine.index_cache.get())
    assert red_hits(engine) == red_hits(SearchEngine(store))


def _now() -> float:
    return datetime.now(UTC).timestamp()


def test_growable_append_keeps_views_stable():
    base = {"a": np.arange(3), "m": np.arange(6).reshape(2, 3)}
    axes = {"a": 0, "m": 1}
    arrays, spare = index_module._append(base, axes, 3, {"a": np.array([9]), "m": np.array([[7], [8]])}, None)
    assert arrays["a"].tolist() == [0, 1, 2, 9] and arrays["m"].tolist() == [[0, 1, 2, 7], [3, 4, 5, 8]]
    first = {k: v.copy() for k, v in arrays.items()}
    # Appending again after the same 4 entries uses the spare room; after 3 (an older view) must copy.
    more, same = index_module._append(
        arrays, axes, 4, {"a": np.array([10]), "m": np.array([[1], [1]])}, spare
    )
    assert same is spare and more["a"].tolist() == [0, 1, 2, 9, 10]
    other, fresh = index_module._append(base, axes, 3, {"a": np.array([5]), "m": np.array([[5], [5]])}, spare)
    assert fresh is not spare and other["a"].tolist() == [0, 1, 2, 5]
    for k, v in first.items():
        np.testing.assert_array_equal(arrays[k], v)
    assert more["a"].tolist() == [0, 1, 2, 9, 10]
