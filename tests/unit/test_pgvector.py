"""Vectors in pgvector on PostgreSQL: "more like this" and embedding search give SQLite's answers,
the nearest-neighbour query uses the HNSW index, and an existing store's bytes are converted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from conftest import save_records
from sqlalchemy import create_engine, select, text

from camsight.records.attributes import TrackAttributes
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.search.engine import SearchEngine
from camsight.search.grouping import REID_MODEL
from camsight.search.query_model import ParsedQuery, Term
from camsight.store import repository as repo
from camsight.store.db import MIGRATIONS, Store, open_store
from camsight.store.models import Base, TrackEmbedding
from camsight.store.vectors import (
    embedding_column,
    include_object,
    nearest,
    nearest_sql,
    search_settings,
)
from camsight.tracking.kinematics import kinematics

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
RNG = np.random.default_rng(14)


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _record(
    local_id: int,
    label: str,
    start: float,
    *,
    x: float = 10.0,
    appearance: np.ndarray | None = None,
    reid: np.ndarray | None = None,
    embedding: np.ndarray | None = None,
    crops: bool = True,
) -> TrackRecord:
    obs = [Observation(i + 1, start + i * 0.2, (x + i, 20.0, x + 40 + i, 120.0), 0.9) for i in range(5)]
    pic = Crop(2, start + 0.2, (x, 20.0, x + 40, 120.0), 1.0, np.full((110, 45, 3), 128, np.uint8), (6, 10))
    rec = TrackRecord(
        local_id, label, obs, [pic] if crops else [], kinematics(obs, label), 0.9, labels_seen={label: 5}
    )
    rec.attributes = TrackAttributes(colours={"upper": {"red": 0.5 + local_id / 100}})
    rec.appearance = appearance
    if reid is not None:
        rec.reid, rec.reid_model = reid, REID_MODEL
    if embedding is not None:
        rec.embedding, rec.embedding_model = embedding, "tiny"
    return rec


def _add(store: Store, camera: str, records: list[TrackRecord]) -> None:
    save_records(store, camera, records, T0)


def _people() -> dict[str, list[TrackRecord]]:
    """Two cameras of people with re-id vectors at known similarities to person 1, a car, and
    people with only a colour descriptor."""
    ref = _unit(RNG.normal(size=256))

    def like(sim: float) -> np.ndarray:
        """A vector at ``sim`` to the reference, in a direction of its own (look-alikes of one person
        are not alike among themselves)."""
        other = RNG.normal(size=256)
        ortho = _unit(other - (other @ ref) * ref)
        return _unit(sim * ref + np.sqrt(1 - sim**2) * ortho)

    colour = _unit(RNG.random(144))
    lobby = [
        _record(1, "person", 0.0, reid=ref, appearance=colour),
        # The same person a moment later, where they were walking: a fragment of the reference.
        _record(2, "person", 1.2, x=15.0, reid=like(0.97), appearance=colour),
        _record(3, "person", 60.0, x=300.0, reid=like(0.68)),
        _record(4, "person", 120.0, x=300.0, reid=like(0.64), crops=False),
        _record(5, "person", 180.0, x=300.0, reid=like(0.5)),  # under the 0.6 cut-off
        _record(6, "car", 200.0, x=300.0, reid=like(0.9)),  # another kind of thing
        _record(7, "person", 240.0, x=400.0, appearance=colour),
        _record(8, "person", 300.0, x=400.0, appearance=_unit(colour + 0.2 * RNG.random(144))),
        _record(9, "person", 360.0, x=400.0, appearance=_unit(RNG.random(144))),
    ]
    yard = [
        _record(1, "person", 30.0, reid=like(0.75)),
        _record(2, "person", 90.0, reid=like(0.7)),
    ]
    return {"lobby": lobby, "yard": yard}


def _store(root: Path, url: str | None) -> Store:
    store = open_store(root, url=url)
    for camera, records in _people().items():
        _add(store, camera, records)
    return store


def _answer(store: Store, track_id: int, **kw: Any) -> dict[str, Any]:
    result = SearchEngine(store).more_like(track_id, **kw)
    ref = result.reference
    return {
        "hits": [
            (h.track_id, h.camera, round(h.score, 3), [s["track_id"] for s in h.segments])
            for h in result.hits
        ],
        "reference": None if ref is None else (ref.track_id, [s["track_id"] for s in ref.segments]),
        "interpretation": result.interpretation,
        "notes": result.notes,
    }


@pytest.mark.parametrize("same_camera", [False, True])
def test_more_like_this_gives_the_same_answer_on_postgresql(tmp_path, postgres_url, same_camera):
    global RNG
    RNG = np.random.default_rng(14)
    sqlite = _store(tmp_path / "sqlite", None)
    RNG = np.random.default_rng(14)
    pg = _store(tmp_path / "pg", postgres_url)
    try:
        assert pg.engine.dialect.name == "postgresql"
        for track_id in (1, 3, 7, 8):  # by re-id, and by colour for people without a re-id vector
            want = _answer(sqlite, track_id, same_camera=same_camera)
            assert _answer(pg, track_id, same_camera=same_camera) == want
        by_reid = _answer(pg, 1, same_camera=same_camera)
        # The cut-off, the reference's own fragment shown with it, and no car among people.
        assert by_reid["reference"] == (1, [1, 2])
        shown = [h[0] for h in by_reid["hits"]]
        want_ids = [3, 4] if same_camera else [10, 11, 3, 4]
        assert shown == want_ids
        assert all(h[2] >= 0.6 for h in by_reid["hits"])
        by_colour = [h[0] for h in _answer(pg, 7)["hits"]]
        assert by_colour[:2] == [1, 8], by_colour  # colour descriptors above their 0.8 cut-off
    finally:
        sqlite.close()
        pg.close()


def test_visual_similarity_is_fused_on_postgresql(tmp_path, postgres_url):
    records = [
        _record(1, "person", 0.0, embedding=np.array([1, 0, 0], np.float32)),
        _record(2, "person", 10.0, x=300.0, embedding=np.array([0, 1, 0], np.float32)),
    ]
    for url in (None, postgres_url):
        store = open_store(tmp_path / str(url is None), url=url)
        _add(store, "lobby", records)
        engine = SearchEngine(store, embedding_weight=0.9)
        emb = engine.index_cache.embeddings("tiny")
        assert emb.vectors.shape == (2, 3)
        query = ParsedQuery(text="red", terms=(Term(("upper:red",)),))
        plain = engine.run(query)
        assert [h.track_id for h in plain.hits] == [2, 1]
        fused = engine.run(query, visual=(emb, np.array([1, 0, 0], np.float32)))
        assert [h.track_id for h in fused.hits] == [1, 2]
        store.close()


def test_the_nearest_neighbour_query_uses_the_hnsw_index(tmp_path, postgres_url):
    store = open_store(tmp_path / "data", url=postgres_url)
    vectors = np.stack([_unit(v) for v in RNG.normal(size=(3000, 256))])
    records = [_record(i + 1, "person", float(i), reid=vectors[i], crops=False) for i in range(3000)]
    _add(store, "lobby", records)
    target = vectors[7]
    column = embedding_column(REID_MODEL)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE track_embeddings")
        connection.exec_driver_sql("ANALYZE tracks")
        search_settings(connection, 60)
        sql = "EXPLAIN " + nearest_sql(column, 256, "t.label = 'person'")
        literal = "[" + ",".join(repr(float(v)) for v in target) + "]"
        plan = "\n".join(r[0] for r in connection.execute(text(sql), {"q": literal, "k": 60}))
        assert f"Index Scan using {column.index_name(256)}" in plan, plan
        found = nearest(connection, column, target, 10, where="t.label = 'person'")
    exact = np.argsort(-(vectors @ target))[:10] + 1  # track ids are 1..3000 in order
    assert found[0][0] == 8  # the vector itself (track 8 holds vectors[7])
    assert len(set(i for i, _ in found) & set(exact.tolist())) >= 9  # approximate, but barely
    assert found[0][1] == pytest.approx(1.0, abs=1e-5)
    store.close()


def test_an_existing_postgresql_store_gets_its_vectors_converted(tmp_path, postgres_url):
    engine = create_engine(postgres_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0009")
    engine.dispose()
    # Written as bytes by the version before: the writers of 0009 stored bytea.
    store = open_store(tmp_path / "data", url=postgres_url, migrate_schema=False)
    plan = repo.plan_source(
        store, camera="c", uri="/video/c.mp4", fingerprint="c", settings_key="k", settings={},
        width=640, height=480, native_fps=10.0, duration=60.0, wallclock_start=T0,
    )  # fmt: skip
    with store.engine.begin() as connection:
        vec = _unit(RNG.normal(size=256))
        connection.execute(
            text(
                "INSERT INTO tracks (id, source_id, camera_id, local_id, label, start_t, end_t, first_frame, "
                "last_frame, num_observations, confidence, speed_px_s, speed_bh_s, max_speed_px_s, heading, "
                "displacement_px, path_px, carried, labels_seen, appearance) VALUES (1, :s, :c, 1, 'person', "
                "0, 1, 1, 2, 2, 0.9, 0, 0, 0, 'still', 0, 0, '{}', '{}', :a)"
            ),
            {"a": vec[:144].tobytes(), "s": plan.source_id, "c": plan.camera_id},
        )
        connection.execute(
            text("INSERT INTO track_embeddings (track_id, model, vector) VALUES (1, :m, :v)"),
            {"m": REID_MODEL, "v": vec.tobytes()},
        )
    store.close()
    store = open_store(tmp_path / "data", url=postgres_url)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0010"
        kinds = connection.exec_driver_sql(
            "SELECT udt_name FROM information_schema.columns WHERE column_name IN ('appearance', 'vector') "
            "AND table_name IN ('tracks', 'track_embeddings')"
        ).all()
        assert [k for (k,) in kinds] == ["vector", "vector"]
        names = {n for (n,) in connection.exec_driver_sql("SELECT indexname FROM pg_indexes")}
        assert embedding_column(REID_MODEL).index_name(256) in names
        assert "ix_tracks_appearance_hnsw_144" in names
        stored = connection.execute(select(TrackEmbedding.vector)).scalar()
        # The schema is the models' (the per-model HNSW indexes are made at run time, not by them).
        context = MigrationContext.configure(connection, opts={"include_object": include_object})
        assert compare_metadata(context, Base.metadata) == []
    assert np.frombuffer(stored, "<f4").tolist() == vec.tolist()  # bit for bit
    store.close()


def _vlm_store(root: Path, url: str | None) -> Store:
    rng = np.random.default_rng(5)
    store = open_store(root, url=url)
    for camera in ("lobby", "yard"):
        records = [
            _record(
                i, "person" if i % 3 else "car", 60.0 * i, x=10.0 + 7 * i, embedding=_unit(rng.normal(size=8))
            )
            for i in range(1, 41)
        ]
        _add(store, camera, records)
    return store


@pytest.mark.parametrize(
    ("text_query", "cameras"), [("person", ()), ("car", ("yard",)), ("person in red", ())]
)
def test_embedding_search_gives_the_same_answer_on_postgresql(tmp_path, postgres_url, text_query, cameras):
    vec = _unit(np.random.default_rng(9).normal(size=8))
    answers = []
    for url in (None, postgres_url):
        store = _vlm_store(tmp_path / str(url is None), url)
        engine = SearchEngine(store)
        result = engine.search(text_query, cameras=cameras, limit=5, query_vector=vec, embedding_model="tiny")
        answers.append([(h.track_id, h.camera, round(h.score, 3)) for h in result.hits])
        if url is not None and text_query != "person in red":
            # Ranked by similarity alone: nearest-neighbour queries, no copy of the vectors in memory.
            assert engine.index_cache.stats["embedding_full_builds"] == 0
        store.close()
    assert answers[0] == answers[1]
    assert len(answers[0]) == 5


def test_a_model_whose_vectors_change_size_keeps_working(tmp_path, postgres_url):
    # A model replaced by one of another size under the same name: each size gets its own index,
    # and only vectors of the query's size are compared (as the full scan does).
    store = open_store(tmp_path / "data", url=postgres_url)
    _add(store, "lobby", [_record(1, "person", 0.0, embedding=np.array([1, 0, 0], np.float32))])
    _add(store, "yard", [_record(1, "person", 0.0, embedding=np.array([0, 1, 0, 0], np.float32))])
    engine = SearchEngine(store)
    hits = engine.search(
        "person", limit=5, query_vector=np.array([0, 1, 0, 0], np.float32), embedding_model="tiny"
    )
    assert [h.camera for h in hits.hits] == ["yard"]
    with store.engine.connect() as connection:
        names = {n for (n,) in connection.exec_driver_sql("SELECT indexname FROM pg_indexes")}
    assert {embedding_column("tiny").index_name(3), embedding_column("tiny").index_name(4)} <= names
    store.close()
