"""Choosing the database: ``store.url`` / ``store.password_env`` in the config, or ``CAMSIGHT_DATABASE_URL``.

The commands run for real (the installed ``camsight``) against the real PostgreSQL of
tests/postgres.py; bad URLs and unreachable servers are one sentence, never a password.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from conftest import cli_env, run_cli
from sqlalchemy.engine import make_url

from camsight.config import parse_config
from camsight.config.store import StoreConfig, database_url, normalise_url, redact_url
from camsight.errors import ConfigError, StoreError
from camsight.store.db import open_store

UNREACHABLE = "postgresql://cam:hunter2@127.0.0.1:1/camsight"


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _tables(url: str) -> set[str]:
    with psycopg.connect(_dsn(url)) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


# --------------------------------------------------------------------------- config and URLs


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://cam@db:5432/camsight", "postgresql+psycopg://cam@db:5432/camsight"),
        ("postgres://cam@db/camsight", "postgresql+psycopg://cam@db/camsight"),
        ("postgresql+psycopg://cam@db/camsight", "postgresql+psycopg://cam@db/camsight"),
        ("sqlite:////var/lib/camsight/other.db", "sqlite:////var/lib/camsight/other.db"),
    ],
)
def test_urls_are_normalised_to_the_psycopg_driver(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://cam:pw@db/camsight", "not a database URL camsight can use"),
        ("db.example:5432", "not a database URL camsight can use"),
        ("postgresql://cam@db:5432", "names no database"),
    ],
)
def test_unusable_urls_are_refused_without_their_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        normalise_url(url)
    assert "pw" not in str(caught.value).replace("postgresql", "")


def test_a_password_in_the_config_file_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"store.url.*do not write the database password"):
        parse_config("store:\n  url: postgresql://cam:hunter2@db/camsight\n", "camsight.yaml")
    config = parse_config("store:\n  url: postgresql://cam@db/camsight\n  password_env: CAMSIGHT_SECRET_DB\n")
    assert config.store.url == "postgresql://cam@db/camsight"
    with pytest.raises(ConfigError, match="only environment variables starting with CAMSIGHT_SECRET_"):
        parse_config("store:\n  url: postgresql://cam@db/camsight\n  password_env: PGPASSWORD\n")


def test_password_env_adds_the_password_and_the_environment_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    store = StoreConfig(url="postgresql://cam@db/camsight", password_env="CAMSIGHT_SECRET_DB")
    monkeypatch.delenv("CAMSIGHT_DATABASE_URL", raising=False)
    monkeypatch.delenv("CAMSIGHT_SECRET_DB", raising=False)
    with pytest.raises(ValueError, match="CAMSIGHT_SECRET_DB, which is not set"):
        database_url(store)
    monkeypatch.setenv("CAMSIGHT_SECRET_DB", "s3cret")
    assert make_url(database_url(store)).password == "s3cret"
    assert database_url(StoreConfig()) is None  # the SQLite file in the data folder
    monkeypatch.setenv("CAMSIGHT_DATABASE_URL", "postgres://other@db2/cams")
    assert database_url(store) == "postgresql+psycopg://other@db2/cams"
    assert redact_url("postgresql://u:p@h/d") == "postgresql://u:***@h/d"


def test_an_unreachable_server_is_one_sentence_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(tmp_path / "data", url=UNREACHABLE)
    message = str(caught.value)
    assert message.startswith("cannot open database at postgresql+psycopg://cam:***@127.0.0.1:1/camsight: ")
    assert "hunter2" not in message and "\n" not in message


# --------------------------------------------------------------------------- the commands


@pytest.mark.slow
def test_commands_use_the_database_the_environment_names(tmp_path: Path, postgres_url: str) -> None:
    data = tmp_path / "data"
    added = run_cli(
        "users", "add", "alice", "--generate", "--data", data,
        env=cli_env(CAMSIGHT_DATABASE_URL=postgres_url.replace("+psycopg", "")),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = run_cli("users", "list", "--data", data, env=cli_env(CAMSIGHT_DATABASE_URL=postgres_url))
    assert listed.returncode == 0 and "alice" in listed.stdout
    # The users live in PostgreSQL, not in a SQLite file in the data folder.
    assert {"users", "audit_log", "tracks", "alembic_version"} <= _tables(postgres_url)
    assert not (data / "camsight.db").exists()


@pytest.mark.slow
def test_index_then_search_on_postgresql(tmp_path: Path, postgres_url: str, clip_factory) -> None:
    clip = clip_factory(tmp_path / "gate.mp4", frames=20, fps=10, size=(320, 240))
    data, env = tmp_path / "data", cli_env(CAMSIGHT_DATABASE_URL=postgres_url)
    indexed = run_cli("index", clip, "--camera", "gate", "--data", data, env=env)
    assert indexed.returncode == 0, indexed.stderr
    with psycopg.connect(_dsn(postgres_url)) as conn:
        assert conn.execute("SELECT status FROM sources").fetchall() == [("complete",)]
    found = run_cli("search", "person", "--camera", "gate", "--json", "--data", data, env=env)
    assert found.returncode == 0, found.stderr
    assert not (data / "camsight.db").exists()


@pytest.mark.slow
def test_the_service_runs_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    import httpx
    from servers import camsight_web

    env = {"CAMSIGHT_DATABASE_URL": postgres_url, "CAMSIGHT_ADMIN_PASSWORD": "correct horse battery"}
    with camsight_web("--data", str(tmp_path / "data"), env=env) as base, httpx.Client(base_url=base) as http:
        login = http.post(
            "/api/v1/auth/login", json={"name": "admin", "password": env["CAMSIGHT_ADMIN_PASSWORD"]}
        )
        assert login.status_code == 200, login.text
        changed = http.post(
            "/api/v1/auth/password",
            json={"current": env["CAMSIGHT_ADMIN_PASSWORD"], "new": "another long pass"},
            headers={"Origin": base},
        )
        assert changed.status_code == 200, changed.text
        found = http.get("/api/v1/search", params={"q": "person in red"})
        assert found.status_code == 200, found.text
    with psycopg.connect(_dsn(postgres_url)) as conn:
        assert conn.execute("SELECT name FROM users").fetchall() == [("admin",)]
        actions = {r[0] for r in conn.execute("SELECT action FROM audit_log")}
    assert "search" in actions
    assert not (tmp_path / "data" / "camsight.db").exists()


@pytest.mark.slow
def test_commands_use_the_database_the_config_names(tmp_path: Path, postgres_url: str) -> None:
    url = make_url(postgres_url)
    config = tmp_path / "camsight.yaml"
    config.write_text(
        f"store:\n  url: postgresql://{url.username}@{url.host}:{url.port}/{url.database}\n"
        "  password_env: CAMSIGHT_SECRET_DB\n"
    )
    data = tmp_path / "data"
    env = cli_env(CAMSIGHT_SECRET_DB="unused-with-trust-auth")
    added = run_cli("users", "add", "bob", "--generate", "--data", data, "--config", config, env=env)
    assert added.returncode == 0, added.stderr
    assert not (data / "camsight.db").exists()
    doctor = run_cli("doctor", "--data", data, "--config", config, "--json", env=env)
    assert f"PostgreSQL at postgresql+psycopg://{url.username}:***@{url.host}" in doctor.stdout
    assert "newest revision" in doctor.stdout
    missing = run_cli("users", "list", "--data", data, "--config", config)  # the password variable unset
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines()[-1] == (
        "error: store.password_env names CAMSIGHT_SECRET_DB, which is not set in the environment"
    )


def test_a_command_on_an_unreachable_server_fails_in_one_line(tmp_path: Path) -> None:
    result = run_cli(
        "users", "list", "--data", tmp_path / "data", env=cli_env(CAMSIGHT_DATABASE_URL=UNREACHABLE)
    )
    assert result.returncode != 0
    assert result.stderr.startswith(
        "error: cannot open database at postgresql+psycopg://cam:***@127.0.0.1:1/"
    )
    assert "hunter2" not in result.stderr + result.stdout and "Traceback" not in result.stderr
