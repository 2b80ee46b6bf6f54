"""``camsight users``, ``tokens`` and ``audit`` end to end, as an administrator at a terminal uses them."""

from __future__ import annotations

import csv
import getpass
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CAMSIGHT, assert_clean_failure, cli_env, db_query, run_cli

pytestmark = pytest.mark.slow

PW = "correct horse battery"


def run_with_input(*args: object, stdin: str) -> subprocess.CompletedProcess:
    """Like ``run_cli``, with ``stdin`` piped in (so there is no terminal to prompt on)."""
    return subprocess.run(
        [str(CAMSIGHT), *(str(a) for a in args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(),
        check=False,
    )


def add_user(data: Path, name: str, *extra: object, password: str = PW) -> subprocess.CompletedProcess:
    proc = run_with_input(
        "users", "add", name, "--password-stdin", "--data", data, *extra, stdin=password + "\n"
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def audit_actions(data: Path) -> list[tuple[str, str, str]]:
    return db_query(data, "SELECT actor, action, coalesce(target, '') FROM audit_log ORDER BY id")


def tamper(data: Path, statement: str, params: tuple = ()) -> None:
    con = sqlite3.connect(data / "camsight.db")
    try:
        con.execute(statement, params)
        con.commit()
    finally:
        con.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_user_lifecycle_is_audited(data: Path):
    me = f"cli:{getpass.getuser()}"
    add_user(data, "root", "--role", "admin")
    proc = add_user(data, "Alice", "--role", "operator", "--cameras", "lobby,gate")
    assert "added user alice (operator, cameras: lobby, gate)" in proc.stderr
    listed = run_cli("users", "list", "--data", data, "--json")
    assert listed.returncode == 0, listed.stderr
    users = {u["name"]: u for u in json.loads(listed.stdout)}
    assert users["alice"]["role"] == "operator" and users["alice"]["cameras"] == ["lobby", "gate"]
    assert users["root"]["cameras"] is None and "password_hash" not in users["root"]

    proc = run_cli(
        "users", "set", "alice", "--role", "viewer", "--cameras", "all", "--disable", "--data", data
    )
    assert proc.returncode == 0, proc.stderr
    assert "alice: viewer, all cameras, disabled" in proc.stderr
    proc = run_with_input(
        "users", "passwd", "alice", "--password-stdin", "--data", data, stdin="a brand new secret\n"
    )
    assert proc.returncode == 0, proc.stderr
    table = run_cli("users", "list", "--data", data)
    assert table.returncode == 0 and "alice" in table.stdout and "disabled" in table.stdout
    proc = run_cli("users", "remove", "alice", "--yes", "--data", data)
    assert proc.returncode == 0, proc.stderr
    assert db_query(data, "SELECT name FROM users") == [("root",)]

    assert audit_actions(data) == [
        (me, "user.create", "root"),
        (me, "user.create", "alice"),
        (me, "user.update", "alice"),
        (me, "user.password", "alice"),
        (me, "user.delete", "alice"),
    ]
    everything = "\n".join(str(r) for r in db_query(data, "SELECT * FROM audit_log"))
    everything += "\n".join(str(r) for r in db_query(data, "SELECT * FROM users"))
    assert PW not in everything and "a brand new secret" not in everything
    (detail,) = db_query(data, "SELECT detail FROM audit_log WHERE action = 'user.update'")[0]
    assert json.loads(detail)["changes"]["role"] == ["operator", "viewer"]


def test_generated_one_time_password(data: Path):
    proc = run_cli("users", "add", "bob", "--generate", "--data", data)
    assert proc.returncode == 0, proc.stderr
    password = proc.stdout.strip()
    assert len(password) >= 20 and password not in proc.stderr
    (must_change,) = db_query(data, "SELECT must_change_password FROM users WHERE name = 'bob'")[0]
    assert must_change == 1
    from camsight.auth.passwords import verify_password

    (stored,) = db_query(data, "SELECT password_hash FROM users WHERE name = 'bob'")[0]
    assert verify_password(stored, password)


def test_tokens_create_list_revoke(data: Path):
    add_user(data, "alice")
    proc = run_cli(
        "tokens", "create", "alice", "--name", "home-assistant", "--expires", "90d", "--data", data
    )
    assert proc.returncode == 0, proc.stderr
    secret = proc.stdout.strip()
    assert secret.startswith("cs_") and "shown only now" in proc.stderr
    listed = run_cli("tokens", "list", "--data", data, "--json")
    tokens = json.loads(listed.stdout)
    assert len(tokens) == 1 and tokens[0]["name"] == "home-assistant" and tokens[0]["state"] == "active"
    assert secret not in listed.stdout and tokens[0]["expires_at"]
    prefix = tokens[0]["prefix"]
    assert secret.startswith(f"cs_{prefix}_")
    proc = run_cli("tokens", "revoke", prefix, "--data", data)
    assert proc.returncode == 0, proc.stderr
    assert f"revoked API token {tokens[0]['id']} (home-assistant) of alice" in proc.stderr
    assert json.loads(run_cli("tokens", "list", "--data", data, "--json").stdout) == []
    revoked = json.loads(run_cli("tokens", "list", "--all", "--data", data, "--json").stdout)
    assert revoked[0]["state"] == "revoked"
    assert_clean_failure(run_cli("tokens", "revoke", prefix, "--data", data), "already revoked")
    assert [a for _, a, _ in audit_actions(data)] == ["user.create", "token.create", "token.revoke"]
    assert secret.split("_", 2)[2] not in str(db_query(data, "SELECT * FROM api_tokens"))


def test_audit_verify_export_and_tampering(data: Path, tmp_path: Path):
    add_user(data, "alice")
    add_user(data, "bob", "--role", "operator")
    run_cli("users", "set", "bob", "--role", "viewer", "--data", data)
    ok = run_cli("audit", "verify", "--data", data)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "audit chain intact: 3 entries"

    out = tmp_path / "audit.csv"
    proc = run_cli("audit", "export", "--csv", out, "--data", data)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert [(r["id"], r["action"], r["target"]) for r in rows] == [
        ("1", "user.create", "alice"),
        ("2", "user.create", "bob"),
        ("3", "user.update", "bob"),
    ]
    assert rows[0]["actor"].startswith("cli:") and rows[1]["prev_hash"] == rows[0]["hash"]
    # The export is recorded too.
    assert audit_actions(data)[-1][1] == "audit.export"
    listed = json.loads(run_cli("audit", "list", "--data", data, "--json", "--limit", "2").stdout)
    assert [e["id"] for e in listed["entries"]] == [4, 3] and listed["next_before"] == 3

    tamper(data, "UPDATE audit_log SET detail = ? WHERE id = 2", (json.dumps({"role": "admin"}),))
    broken = run_cli("audit", "verify", "--data", data)
    assert broken.returncode == 1
    line = assert_clean_failure(broken, "entry 2")
    assert "changed" in line


def test_audit_verify_names_a_deleted_entry(data: Path):
    # Entries written by the library (as the web service will), checked by the CLI.
    from camsight.auth import audit
    from camsight.store.db import open_store

    store = open_store(data)
    for i in range(3):
        audit.record(store, "alice", audit.Action.SEARCH, target="lobby", detail={"query": f"red hat {i}"})
    store.close()
    assert run_cli("audit", "verify", "--data", data).stdout.strip() == "audit chain intact: 3 entries"
    tamper(data, "DELETE FROM audit_log WHERE id = 2")
    broken = run_cli("audit", "verify", "--data", data)
    assert broken.returncode == 1
    assert "missing" in assert_clean_failure(broken, "entry 3")


def test_bad_inputs_fail_cleanly(data: Path):
    weak = run_with_input("users", "add", "carol", "--password-stdin", "--data", data, stdin="short\n")
    assert_clean_failure(weak, "password too short")
    assert_clean_failure(
        run_with_input(
            "users", "add", "carol", "--role", "boss", "--password-stdin", "--data", data, stdin=PW
        ),
        "unknown role 'boss'",
    )
    assert_clean_failure(
        run_with_input("users", "add", "carol", "--data", data, stdin=""), "--password-stdin"
    )
    assert_clean_failure(
        run_cli("users", "add", "bad name!", "--generate", "--data", data), "invalid user name"
    )
    add_user(data, "root", "--role", "admin")
    assert_clean_failure(
        run_with_input("users", "passwd", "nobody", "--password-stdin", "--data", data, stdin=PW),
        "no user named 'nobody'",
    )
    assert_clean_failure(run_cli("users", "set", "nobody", "--role", "viewer", "--data", data), "nobody")
    assert_clean_failure(
        run_cli("users", "set", "root", "--role", "viewer", "--data", data), "last enabled admin"
    )
    assert_clean_failure(run_cli("users", "set", "root", "--data", data), "nothing to change")
    assert_clean_failure(run_cli("users", "remove", "root", "--yes", "--data", data), "last enabled admin")
    assert_clean_failure(run_cli("tokens", "create", "nobody", "--data", data), "no user named 'nobody'")
    assert_clean_failure(
        run_cli("tokens", "create", "root", "--expires", "soon", "--data", data), "--expires"
    )
    # Once cameras exist, camera names are checked.
    tamper(
        data, "INSERT INTO cameras (name, kind, created_at) VALUES ('lobby', 'file', '2026-01-01 00:00:00')"
    )
    unknown = run_with_input(
        "users", "add", "dave", "--cameras", "lobby,garage", "--password-stdin", "--data", data, stdin=PW
    )
    assert_clean_failure(unknown, "no camera named 'garage'", "lobby")
    assert_clean_failure(run_cli("audit", "verify", "--expect", "xyz", "--data", data), "hex")
    assert_clean_failure(run_cli("users", "list", "--data", data.parent / "nowhere"), "no camsight data")
    # None of the failures changed anything.
    assert db_query(data, "SELECT name FROM users") == [("root",)]
    assert [a for _, a, _ in audit_actions(data)] == ["user.create"]
