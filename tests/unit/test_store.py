"""The store: migrations, WAL, and the rules that make indexing re-runnable."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from camsight.errors import NotFoundError, StoreError
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.store import repository as repo
from camsight.store.db import MIGRATIONS, open_store
from camsight.tracking.kinematics import kinematics

# The store fixture runs each test on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.both_databases


def plan(
    store, *, fingerprint="f" * 32, settings_key="k1", camera="lobby", force=False, start=None, default=None
):
    return repo.plan_source(
        store,
        camera=camera,
        uri=f"/videos/{fingerprint[:4]}.mp4",
        fingerprint=fingerprint,
        settings_key=settings_key,
        settings={"fps": 5},
        width=640,
        height=360,
        native_fps=10.0,
        duration=60.0,
        wallclock_start=start,
        default_start=default,
        force=force,
    )


def record(local_id: int, label: str = "person", frames: range = range(1, 11)) -> TrackRecord:
    obs = [
        Observation(f, (f - 1) / 10, (10.0 + f, 20.0, 50.0 + f, 120.0), 0.8, detected=f % 3 != 0)
        for f in frames
    ]
    crop = Crop(frames[0], obs[0].t, obs[0].box, 1.0, np.full((30, 20, 3), 200, np.uint8))
    return TrackRecord(
        local_id=local_id,
        label=label,
        observations=obs,
        crops=[crop] if label != "handbag" else [],
        kinematics=kinematics(obs, label),
        confidence=0.8,
    )


def sql(store, query: str) -> list[tuple]:
    if store.dialect == "postgresql":
        with store.engine.connect() as con:
            return [tuple(r) for r in con.exec_driver_sql(query).all()]
    con = sqlite3.connect(store.root / "camsight.db")
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


class TestOpenStore:
    def test_creates_and_migrates(self, tmp_path):
        root = tmp_path / "new" / "data"
        store = open_store(root)
        store.close()
        assert (root / "camsight.db").is_file()
        assert (root / "media").is_dir()
        tables = {r[0] for r in sql(store, "SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"alembic_version", "cameras", "sources", "tracks", "observations", "thumbnails"} <= tables
        # Migrated to the newest revision the package ships.
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        assert sql(store, "SELECT version_num FROM alembic_version") == [(head,)]

    def test_reopening_keeps_data_and_version(self, store):
        plan(store)
        before = sql(store, "SELECT version_num FROM alembic_version")
        store.close()
        again = open_store(store.root, url=store.engine.url.render_as_string(hide_password=False))
        again.close()
        assert sql(again, "SELECT version_num FROM alembic_version") == before
        assert len(sql(again, "SELECT id FROM sources")) == 1

    def test_wal_mode(self, store):
        if store.dialect != "sqlite":
            pytest.skip("WAL is SQLite's")
        with store.engine.connect() as con:
            assert con.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert con.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        # WAL is a property of the file: a plain sqlite3 connection sees it too.
        assert sql(store, "PRAGMA journal_mode") == [("wal",)]

    def test_a_file_where_the_directory_should_be(self, tmp_path):
        blocker = tmp_path / "data"
        blocker.write_text("I am a file")
        with pytest.raises(StoreError, match=str(blocker)):
            open_store(blocker)

    def test_a_database_that_is_not_one(self, tmp_path):
        root = tmp_path / "data"
        root.mkdir()
        (root / "camsight.db").write_bytes(b"definitely not sqlite" * 100)
        with pytest.raises(StoreError, match=str(root)):
            open_store(root)


class TestPlanSource:
    def test_a_new_file_is_registered_as_indexing(self, store):
        p = plan(store)
        assert p.source_id is not None and p.reason is None and not p.replaced
        assert sql(store, "SELECT status FROM sources") == [("indexing",)]
        assert sql(store, "SELECT name FROM cameras") == [("lobby",)]

    def test_a_complete_file_with_the_same_settings_is_skipped(self, store):
        p = plan(store)
        repo.save_tracks(store, p.source_id, p.camera_id, [record(1), record(2)], {})
        repo.finish_source(store, p.source_id, "complete", {"frames_decoded": 10}, None)
        again = plan(store)
        assert again.source_id is None
        assert "already indexed" in again.reason
        assert sql(store, "SELECT count(*) FROM tracks") == [(2,)]
        assert sql(store, "SELECT count(*) FROM sources") == [(1,)]

    def test_a_damaged_file_is_final_too(self, store):
        p = plan(store)
        repo.finish_source(store, p.source_id, "damaged", {}, "ends early")
        assert plan(store).source_id is None

    @pytest.mark.parametrize(
        "how",
        ["interrupted", "other settings", "force"],
    )
    def test_reindexing_replaces_old_rows_without_duplicates(self, store, how):
        p = plan(store)
        repo.save_tracks(store, p.source_id, p.camera_id, [record(1), record(2, "car")], {})
        if how != "interrupted":
            repo.finish_source(store, p.source_id, "complete", {}, None)
        again = plan(store, settings_key="k2" if how == "other settings" else "k1", force=how == "force")
        assert again.source_id is not None and again.replaced
        # The old source and everything under it are gone in the same step.
        assert sql(store, "SELECT count(*) FROM sources") == [(1,)]
        assert sql(store, "SELECT status FROM sources") == [("indexing",)]
        assert sql(store, "SELECT count(*) FROM tracks") == [(0,)]
        assert sql(store, "SELECT count(*) FROM observations") == [(0,)]
        assert sql(store, "SELECT count(*) FROM thumbnails") == [(0,)]
        assert not (store.media / "sources" / str(p.source_id)).exists() or not any(
            (store.media / "sources" / str(p.source_id)).iterdir()
        )
        repo.save_tracks(store, again.source_id, again.camera_id, [record(1), record(2, "car")], {})
        repo.finish_source(store, again.source_id, "complete", {}, None)
        rows = sql(store, "SELECT source_id, local_id FROM tracks")
        assert len(rows) == 2 and len(set(rows)) == 2

    def test_a_start_time_given_once_survives_indexing_again(self, store):
        given = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
        mtime = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
        first = plan(store, start=given, default=mtime)
        assert first.wallclock_start == given
        repo.finish_source(store, first.source_id, "complete", {}, None)
        # A zone changed: indexed again without a time, it keeps the one the user gave, not the file's.
        again = plan(store, settings_key="k2", default=mtime)
        assert again.replaced and again.wallclock_start == given
        stored = sql(store, "SELECT wallclock_start FROM sources")[0][0]
        # SQLite keeps text; PostgreSQL a timestamptz (shown in the session's zone).
        stored = stored.astimezone(UTC).isoformat(" ") if isinstance(stored, datetime) else stored
        assert stored.startswith("2026-11-20 18:00")
        # A new time given explicitly wins; a new file without one gets its default.
        later = given + timedelta(hours=1)
        assert plan(store, settings_key="k3", start=later, default=mtime).wallclock_start == later
        assert plan(store, fingerprint="e" * 32, default=mtime).wallclock_start == mtime

    def test_same_file_on_another_camera_is_another_source(self, store):
        a = plan(store, camera="a")
        b = plan(store, camera="b")
        assert a.source_id != b.source_id
        assert sql(store, "SELECT count(*) FROM sources") == [(2,)]


class TestTracks:
    def test_save_and_list(self, store):
        p = plan(store)
        n = repo.save_tracks(
            store, p.source_id, p.camera_id, [record(1), record(2, "car", range(5, 9))], {"frames_decoded": 9}
        )
        assert n == 2
        assert sql(store, "SELECT frames_decoded FROM sources") == [(9,)]
        tracks = repo.list_tracks(store)
        assert [(t.local_id, t.label, t.camera) for t in tracks] == [
            (1, "person", "lobby"),
            (2, "car", "lobby"),
        ]
        person = tracks[0]
        assert (person.first_frame, person.last_frame, person.observations) == (1, 10, 10)
        assert person.start == 0.0 and person.end == pytest.approx(0.9)
        assert person.source_status == "indexing"
        assert person.thumbnail is not None
        thumb = Path(person.thumbnail)
        assert thumb.is_file() and thumb.read_bytes()[:3] == b"\xff\xd8\xff"
        assert thumb.is_relative_to(store.media)
        assert [t.label for t in repo.list_tracks(store, label="car")] == ["car"]
        assert len(repo.list_tracks(store, limit=1)) == 1
        obs = sql(store, "SELECT count(*), sum(CASE WHEN detected THEN 1 ELSE 0 END) FROM observations")
        assert obs == [(14, 7 + 3)]

    def test_unknown_camera(self, store):
        plan(store, camera="lobby")
        with pytest.raises(NotFoundError, match="lobby"):
            repo.list_tracks(store, camera="garage")

    def test_local_ids_are_unique_per_source(self, store):
        p = plan(store)
        repo.save_tracks(store, p.source_id, p.camera_id, [record(1)], {})
        with pytest.raises(Exception, match=r"(?i)unique"):
            repo.save_tracks(store, p.source_id, p.camera_id, [record(1)], {})
        # The failed batch left nothing behind.
        assert sql(store, "SELECT count(*) FROM tracks") == [(1,)]
        assert sql(store, "SELECT count(*) FROM observations") == [(10,)]

    def test_discard_source_removes_rows_and_files(self, store):
        p = plan(store)
        repo.save_tracks(store, p.source_id, p.camera_id, [record(1)], {})
        folder = store.media / "sources" / str(p.source_id)
        assert any(folder.iterdir())
        repo.discard_source(store, p.source_id)
        assert not folder.exists()
        for table in ("sources", "tracks", "observations", "thumbnails"):
            assert sql(store, f"SELECT count(*) FROM {table}") == [(0,)]

    def test_carried_and_carrier_refer_to_track_ids(self, store):
        p = plan(store)
        person, bag = record(1), record(2, "handbag")
        person.carried = {"handbag": {"frames": 10, "share": 1.0, "track": 2}}
        bag.carrier_local_id = 1
        repo.save_tracks(store, p.source_id, p.camera_id, [person, bag], {})
        tracks = {t.local_id: t for t in repo.list_tracks(store)}
        assert tracks[1].carried["handbag"]["track"] == tracks[2].id
        assert tracks[2].carrier_track == tracks[1].id


class TestMotRows:
    def test_person_rows_only_in_frame_order(self, store):
        p = plan(store)
        repo.save_tracks(
            store, p.source_id, p.camera_id, [record(1), record(2, "car"), record(3, frames=range(4, 8))], {}
        )
        rows = list(repo.mot_rows(store, "lobby"))
        assert len(rows) == 10 + 4
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)
        assert {r[1] for r in rows} == {1, 3}
        frame, tid, left, top, w, h, conf = rows[0]
        assert (frame, tid, left, top, w, h) == (1, 1, 11.0, 20.0, 40.0, 100.0)
        assert conf == pytest.approx(0.8)

    def test_unknown_camera_and_several_sources(self, store):
        with pytest.raises(NotFoundError, match="nothing has been indexed"):
            list(repo.mot_rows(store, "lobby"))
        plan(store, fingerprint="a" * 32)
        plan(store, fingerprint="b" * 32)
        with pytest.raises(NotFoundError, match="--source"):
            list(repo.mot_rows(store, "lobby"))
        assert list(repo.mot_rows(store, "lobby", source="aaaa.mp4")) == []
        with pytest.raises(NotFoundError, match="no indexed video"):
            list(repo.mot_rows(store, "lobby", source="cccc.mp4"))


def test_list_tracks_pages_and_scopes_in_sql(tmp_path):
    """The API lists tracks a page at a time, limited to the caller's cameras."""
    from camsight.store.db import open_store
    from camsight.store.models import Camera, Source, Track
    from camsight.store.repository import count_tracks_matching, list_tracks

    store = open_store(tmp_path / "d")
    with store.session() as s:
        for name in ("gate", "lobby"):
            cam = Camera(name=name)
            s.add(cam)
            s.flush()
            src = Source(
                camera_id=cam.id,
                uri=f"{name}.mp4",
                fingerprint=name,
                settings_key="k",
                width=64,
                height=48,
                native_fps=10.0,
                status="complete",
            )
            s.add(src)
            s.flush()
            for i in range(7):
                s.add(
                    Track(
                        source_id=src.id,
                        camera_id=cam.id,
                        local_id=i + 1,
                        label="person",
                        start_t=float(i),
                        end_t=i + 1.0,
                        first_frame=i,
                        last_frame=i + 5,
                        num_observations=5,
                        confidence=0.9,
                        speed_px_s=1.0,
                        speed_bh_s=0.1,
                        max_speed_px_s=1.0,
                        heading="right",
                        displacement_px=1.0,
                        path_px=1.0,
                    )
                )
    assert count_tracks_matching(store) == 14
    assert count_tracks_matching(store, scope={"gate"}) == 7
    page = list_tracks(store, limit=5, offset=5, scope={"gate"})
    assert [(t.camera, t.local_id) for t in page] == [("gate", 6), ("gate", 7)]
    assert list_tracks(store, scope=set()) == []
    store.close()
