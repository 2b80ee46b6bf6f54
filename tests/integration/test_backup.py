"""``camsight backup`` and ``camsight restore`` end to end, through the installed command.

The main test backs up a data folder while ``camsight index`` writes to it and
restores it into a new folder: every row of the backup is in the restored
database, the audit chain verifies and the counts are the manifest's. The
others check what is copied (keys, config, media) and that every bad backup
or destination is one error line, exit 1, and nothing half-written.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    CAMSIGHT,
    YOLOX_ARGS,
    add_api_users,
    assert_clean_failure,
    cli_env,
    db_query,
    give_to_unprivileged,
    make_unreadable,
    run_cli,
    traversable_folder,
    unprivileged_cli,
)
from tests.servers import wait_until

pytestmark = pytest.mark.slow

KEY = bytes(range(32))
JPEG = b"\xff\xd8\xff\xe0 a thumbnail \xff\xd9"
SEGMENT = b"\x00\x00\x00\x18ftypiso5 a recording segment"


def manifest_of(backup: Path) -> dict:
    return json.loads((backup / "manifest.json").read_text())


def write_manifest(backup: Path, manifest: dict) -> None:
    (backup / "manifest.json").write_text(json.dumps(manifest))


def audit_actions(data: Path) -> list[str]:
    return [r[0] for r in db_query(data, "SELECT action FROM audit_log ORDER BY id")]


def counts(data: Path) -> dict[str, int]:
    tables = db_query(
        data, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    return {t: db_query(data, f'SELECT count(*) FROM "{t}"')[0][0] for (t,) in tables}


def hidden_leftovers(folder: Path) -> list[str]:
    """Partial backups or restores left next to a destination (they are hidden folders)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A data folder as a site has one: users and audit entries, a key, a config, media and recordings."""
    from camsight.auth import audit
    from camsight.store.db import open_store

    data = tmp_path / "site"
    store = open_store(data)
    add_api_users(store)
    audit.record(store, "olga", audit.Action.SEARCH, detail={"query": "red hat"})
    store.close()
    key = data / "link-signing.key"
    key.write_bytes(KEY)
    key.chmod(0o600)
    (data / "config.yaml").write_text("storage:\n  min_free_gb: 0.5\n")
    (data / "media" / "sources" / "1").mkdir(parents=True)
    (data / "media" / "sources" / "1" / "t1.jpg").write_bytes(JPEG)
    (data / "media" / "clips").mkdir()
    (data / "media" / "clips" / "cached.mp4").write_bytes(b"cache")
    (data / "recordings" / "lobby").mkdir(parents=True)
    (data / "recordings" / "lobby" / "seg-0001.mp4").write_bytes(SEGMENT)
    (data / "index").mkdir()
    (data / "index" / "facets-1-r1.npz").write_bytes(b"rebuilt on demand")
    return data


def backup_ok(*args: object) -> subprocess.CompletedProcess:
    proc = run_cli("backup", *args)
    assert proc.returncode == 0, proc.stderr
    return proc


# --------------------------------------------------------------------------- under load


@pytest.mark.integration
def test_backup_during_indexing_restores_every_row(
    vtest: Path, people_clip: Path, yolox_model: Path, tmp_path: Path
) -> None:
    data, backup, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    # Audit entries before and during indexing, so the chain that must survive has links.
    proc = subprocess.run(
        [str(CAMSIGHT), "users", "add", "ana", "--role", "admin", "--password-stdin", "--data", str(data)],
        input="correct horse battery\n",
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # Two files, analysed one after the other: the second one's tracks come long after the first's.
    indexer = subprocess.Popen(
        [str(CAMSIGHT), "index", str(vtest), str(people_clip), "--data", str(data), *YOLOX_ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:

        def tracks_committed() -> bool:
            assert indexer.poll() is None, "indexing finished before any tracks were seen"
            try:
                return db_query(data, "SELECT count(*) FROM tracks")[0][0] > 0
            except sqlite3.OperationalError:  # no database or table yet
                return False

        wait_until(tracks_committed, timeout=600, interval=0.2, what="the indexer's first tracks")
        assert run_cli("search", "person", "--data", data).returncode == 0  # audited
        backup_ok(backup, "--media", "--data", data)
        _out, err = indexer.communicate(timeout=900)
    finally:
        if indexer.poll() is None:
            indexer.kill()
            indexer.wait()
    assert indexer.returncode == 0, err
    manifest = manifest_of(backup)
    backed_up = manifest["counts"]
    # Taken mid-way: some tracks, not all of them.
    final = counts(data)["tracks"]
    print(f"backup taken during indexing: {backed_up['tracks']} of {final} tracks")
    assert 0 < backed_up["tracks"] < final
    assert "backup.create" in audit_actions(data)

    proc = run_cli("restore", backup, "--data", restored)
    assert proc.returncode == 0, proc.stderr
    assert "audit chain intact" in proc.stdout
    assert run_cli("audit", "verify", "--data", restored).returncode == 0
    # The counts are the manifest's; the restore added one audit entry, its own.
    after = counts(restored)
    assert after["audit_log"] == backed_up["audit_log"] + 1
    assert {t: n for t, n in after.items() if t != "audit_log"} == {
        t: n for t, n in backed_up.items() if t != "audit_log"
    }
    assert audit_actions(restored)[-1] == "backup.restore"
    assert "search" in audit_actions(restored) and "user.create" in audit_actions(restored)
    # 0 lost rows: every row of the backup's database is in the restored one, unchanged (the audit
    # head in meta moves on by design, with the restore's own entry).
    con = sqlite3.connect(restored / "camsight.db")
    try:
        con.execute("ATTACH DATABASE ? AS b", (f"file:{backup / 'data' / 'camsight.db'}?mode=ro",))
        for table in backed_up:
            where = " WHERE key != 'audit.head'" if table == "meta" else ""
            lost = con.execute(
                f'SELECT count(*) FROM (SELECT * FROM b."{table}"{where} EXCEPT SELECT * FROM main."{table}")'
            ).fetchone()[0]
            assert lost == 0, f"{lost} rows of {table} lost"
    finally:
        con.close()
    # The restored folder is usable: a search finds people, with their thumbnails.
    proc = run_cli("search", "person", "--data", restored, "--json")
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert hits
    thumbs = [h["thumbnail"] for h in hits if h.get("thumbnail")]
    assert thumbs and all(Path(t).is_file() and Path(t).is_relative_to(restored) for t in thumbs)


# --------------------------------------------------------------------------- what is copied


def test_keys_config_media_and_recordings_come_back(site: Path, tmp_path: Path) -> None:
    backup, restored = tmp_path / "backup", tmp_path / "restored"
    before = counts(site)
    proc = backup_ok(backup, "--media", "--data", site)
    assert "backup in" in proc.stdout and "not included: data/index" in proc.stderr
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700  # it holds password hashes and keys
    manifest = manifest_of(backup)
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == {
        "data/camsight.db",
        "data/link-signing.key",
        "data/config.yaml",
        "data/media/sources/1/t1.jpg",
        "data/recordings/lobby/seg-0001.mp4",
    }
    assert listed["data/link-signing.key"]["mode"] == 0o600
    assert manifest["config_file"] == "data/config.yaml" and manifest["counts"] == before
    assert manifest["schema_revision"] and manifest["camsight_version"]
    # The backup is recorded in the audit log of the folder it was taken from.
    last = db_query(site, "SELECT action, target FROM audit_log ORDER BY id DESC LIMIT 1")[0]
    assert last == ("backup.create", str(backup))

    proc = run_cli("restore", backup, "--data", restored)
    assert proc.returncode == 0, proc.stderr
    assert (restored / "link-signing.key").read_bytes() == KEY
    assert stat.S_IMODE((restored / "link-signing.key").stat().st_mode) == 0o600
    assert (restored / "config.yaml").read_text() == (site / "config.yaml").read_text()
    assert (restored / "media" / "sources" / "1" / "t1.jpg").read_bytes() == JPEG
    assert (restored / "recordings" / "lobby" / "seg-0001.mp4").read_bytes() == SEGMENT
    assert not (restored / "index").exists() and not (restored / "media" / "clips").exists()
    assert "config: " + str(restored / "config.yaml") in proc.stdout
    # Users can sign in with the passwords they had (same hashes), and the chain verifies.
    assert db_query(restored, "SELECT name FROM users ORDER BY name") == db_query(
        site, "SELECT name FROM users ORDER BY name"
    )
    assert run_cli("audit", "verify", "--data", restored).returncode == 0


def test_without_media_the_footage_stays_out(site: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    proc = backup_ok(backup, "--data", site)
    paths = {f["path"] for f in manifest_of(backup)["files"]}
    assert paths == {"data/camsight.db", "data/link-signing.key", "data/config.yaml"}
    assert "add --media" in proc.stderr


def test_config_and_recordings_kept_elsewhere_are_backed_up_and_said(site: Path, tmp_path: Path) -> None:
    footage = tmp_path / "footage"
    (footage / "gate").mkdir(parents=True)
    (footage / "gate" / "seg.mp4").write_bytes(SEGMENT)
    config = tmp_path / "etc" / "camsight.yaml"
    config.parent.mkdir()
    config.write_text(f"storage:\n  recordings: {footage}\n")
    (site / "config.yaml").unlink()
    backup, restored = tmp_path / "backup", tmp_path / "restored"
    backup_ok(backup, "--media", "--data", site, "--config", config)
    manifest = manifest_of(backup)
    assert manifest["config_file"] == "config/camsight.yaml"
    assert manifest["config_origin"] == str(config)
    assert "data/recordings/gate/seg.mp4" in {f["path"] for f in manifest["files"]}
    proc = run_cli("restore", backup, "--data", restored)
    assert proc.returncode == 0, proc.stderr
    # The config becomes the restored folder's own, which every command then finds.
    assert (restored / "config.yaml").read_text() == config.read_text()
    assert (restored / "recordings" / "gate" / "seg.mp4").read_bytes() == SEGMENT
    assert f"recordings were in {footage}" in proc.stderr


def test_restore_into_a_folder_in_use_needs_force_and_keeps_what_was_there(
    site: Path, tmp_path: Path
) -> None:
    backup, target = tmp_path / "backup", tmp_path / "target"
    backup_ok(backup, "--data", site)
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    proc = run_cli("restore", backup, "--data", target)
    assert_clean_failure(proc, "not empty", "--force")
    assert proc.returncode == 1
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    assert hidden_leftovers(tmp_path) == []

    proc = run_cli("restore", backup, "--data", target, "--force")
    assert proc.returncode == 0, proc.stderr
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("target.before-restore-")]
    assert len(aside) == 1 and (aside[0] / "notes.txt").read_text() == "keep me"
    assert str(aside[0]) in proc.stdout
    assert (target / "camsight.db").is_file() and not (target / "notes.txt").exists()


# --------------------------------------------------------------------------- bad destinations


@pytest.mark.parametrize("case", ["exists", "is a file", "no parent", "inside the data folder"])
def test_a_bad_destination_is_refused_and_nothing_written(site: Path, tmp_path: Path, case: str) -> None:
    dest = {
        "exists": tmp_path / "old",
        "is a file": tmp_path / "file",
        "no parent": tmp_path / "missing" / "backup",
        "inside the data folder": site / "backups" / "b1",
    }[case]
    if case == "exists":
        dest.mkdir()
        (dest / "older-backup.txt").write_text("untouched")
    elif case == "is a file":
        dest.write_text("untouched")
    elif case == "inside the data folder":
        dest.parent.mkdir()
    listing = sorted(p.name for p in dest.parent.parent.rglob("*"))
    proc = run_cli("backup", dest, "--data", site)
    needle = {
        "exists": "already exists",
        "is a file": "already exists",
        "no parent": "does not exist",
        "inside the data folder": "inside",
    }[case]
    assert_clean_failure(proc, needle)
    assert proc.returncode == 1
    # Nothing new anywhere near it (the audit log aside: a refused backup is not a backup).
    after = sorted(p.name for p in dest.parent.parent.rglob("*"))
    assert [n for n in after if not n.startswith("camsight.db")] == [
        n for n in listing if not n.startswith("camsight.db")
    ]
    assert "backup.create" not in audit_actions(site)


def test_a_folder_without_data_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = run_cli("backup", tmp_path / "backup", "--data", tmp_path / "empty")
    assert_clean_failure(proc, "no camsight data")
    assert not (tmp_path / "backup").exists()


def test_a_file_that_cannot_be_read_leaves_no_partial_backup(site: Path) -> None:
    with traversable_folder() as outside:
        data = outside / "site"
        shutil.move(site, data)
        give_to_unprivileged(data)
        make_unreadable(data / "recordings" / "lobby" / "seg-0001.mp4")
        backups = outside / "backups"
        backups.mkdir()
        give_to_unprivileged(backups)
        proc = unprivileged_cli("backup", backups / "b1", "--media", "--data", data, home=outside)
        assert_clean_failure(proc, "cannot read", "seg-0001.mp4")
        assert proc.returncode == 1
        assert list(backups.iterdir()) == []  # neither the backup nor a hidden partial one


# --------------------------------------------------------------------------- bad backups


def _flip_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _damage(backup: Path, how: str) -> None:
    manifest = manifest_of(backup)
    if how == "no manifest":
        (backup / "manifest.json").unlink()
    elif how == "manifest not JSON":
        (backup / "manifest.json").write_text('{"format": "camsight-backup", "files": [')
    elif how == "manifest field missing":
        del manifest["counts"]
        write_manifest(backup, manifest)
    elif how == "path outside the backup":
        manifest["files"][1]["path"] = "data/../../escape.key"
        write_manifest(backup, manifest)
    elif how == "newer format":
        manifest["format_version"] = 99
        write_manifest(backup, manifest)
    elif how == "unknown schema":
        manifest["schema_revision"] = "9999"
        write_manifest(backup, manifest)
    elif how == "tampered database":
        _flip_byte(backup / "data" / "camsight.db")
    elif how == "tampered key":
        (backup / "data" / "link-signing.key").write_bytes(b"another key, same length......!!")
    elif how == "file added":
        (backup / "data" / "media" / "sources" / "1" / "extra.jpg").write_bytes(JPEG)
    elif how == "file missing":
        (backup / "data" / "recordings" / "lobby" / "seg-0001.mp4").unlink()
    elif how == "counts differ":
        manifest["counts"]["users"] += 1
        write_manifest(backup, manifest)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ("no manifest", "not a camsight backup"),
        ("manifest not JSON", "damaged: not JSON"),
        ("manifest field missing", "counts"),
        ("path outside the backup", "not a plain relative path"),
        ("newer format", "format version 99"),
        ("unknown schema", "schema revision '9999'"),
        ("tampered database", "camsight.db does not match its checksum"),
        ("tampered key", "link-signing.key does not match its checksum"),
        ("file added", "extra.jpg is not listed in the manifest"),
        ("file missing", "seg-0001.mp4 is missing"),
        ("counts differ", "table users has 4 rows where the manifest says 5"),
    ],
)
def test_a_damaged_backup_is_refused_and_nothing_restored(
    site: Path, tmp_path: Path, how: str, needle: str
) -> None:
    backup, restored = tmp_path / "backup", tmp_path / "restored"
    backup_ok(backup, "--media", "--data", site)
    _damage(backup, how)
    proc = run_cli("restore", backup, "--data", restored)
    assert_clean_failure(proc, needle)
    assert proc.returncode == 1
    assert not restored.exists() and hidden_leftovers(tmp_path) == []


def test_a_missing_backup_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a backup")
    for src, needle in (
        (tmp_path / "nothing", "no such backup"),
        (tmp_path / "a-file", "not a backup folder"),
    ):
        proc = run_cli("restore", src, "--data", tmp_path / "restored")
        assert_clean_failure(proc, needle)
        assert proc.returncode == 1
    assert not (tmp_path / "restored").exists()


def test_a_backup_whose_audit_chain_is_broken_is_not_restored(site: Path, tmp_path: Path) -> None:
    # Someone rewrote an audit entry in the database before it was backed up: the files all match
    # the manifest, and still the restore must not pass the history off as intact.
    con = sqlite3.connect(site / "camsight.db")
    with con:
        con.execute("UPDATE audit_log SET detail = '{\"query\": \"nothing to see\"}' WHERE action = 'search'")
    con.close()
    broken = db_query(site, "SELECT id FROM audit_log WHERE action = 'search'")[0][0]
    backup, restored = tmp_path / "backup", tmp_path / "restored"
    backup_ok(backup, "--data", site)
    proc = run_cli("restore", backup, "--data", restored)
    assert_clean_failure(proc, f"audit chain broken at entry {broken}", "nothing was restored")
    assert proc.returncode == 1
    assert not restored.exists() and hidden_leftovers(tmp_path) == []
