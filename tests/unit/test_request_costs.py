"""What every API request costs the database, and that the cheaper path gives up nothing.

Each search checks a credential and writes an audit entry. The check only reads (one query,
no transaction) unless a use must be recorded, and it is never cached: a revoked token, a
disabled user or an ended session fails at the very next request. An audit entry is one short
transaction of four statements, still chained and verifiable, and still part of the caller's
transaction when it is given one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event

from camsight.auth import audit, sessions, tokens, users
from camsight.auth.audit import Action, Actor
from camsight.auth.login import authenticate, change_password, login
from camsight.store.db import Store, open_store
from camsight.store.models import utcnow

PW = "correct horse battery"
CLI = Actor("cli:test")


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    store = open_store(tmp_path / "data")
    with store.session() as db:
        users.create_user(db, "olga", PW, "operator", by=CLI, must_change_password=False)
    yield store
    store.close()


@contextmanager
def counted(store: Store) -> Iterator[tuple[list[str], list[str]]]:
    """The statements (first word) and the commits on ``store`` while the block runs."""
    statements: list[str] = []
    commits: list[str] = []

    def on_statement(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement.split()[0].upper())

    def on_commit(_conn) -> None:
        commits.append("commit")

    event.listen(store.engine, "before_cursor_execute", on_statement)
    event.listen(store.engine, "commit", on_commit)
    try:
        yield statements, commits
    finally:
        event.remove(store.engine, "before_cursor_execute", on_statement)
        event.remove(store.engine, "commit", on_commit)


def last_used(store: Store) -> object:
    with store.sessions() as db:
        return tokens.list_tokens(db, "olga")[0].last_used_at


def test_a_token_check_is_one_read_and_its_use_is_recorded_once_a_minute(store):
    with store.session() as db:
        secret = tokens.create(db, "olga", "ci", by=CLI).secret
    t0 = utcnow()
    first = authenticate(store, api_token=secret, now=t0)  # the first use is recorded
    assert first is not None and first.name == "olga" and first.via == "token"
    assert last_used(store) == t0
    with counted(store) as (statements, commits):
        again = authenticate(store, api_token=secret, now=t0 + timedelta(seconds=59))
    assert again == first
    assert statements == ["SELECT"] and commits == []
    later = t0 + timedelta(minutes=2)
    with counted(store) as (statements, commits):
        assert authenticate(store, api_token=secret, now=later) is not None
    assert commits == ["commit"] and last_used(store) == later


def test_a_token_check_caches_nothing(store):
    with store.session() as db:
        secret = tokens.create(db, "olga", "ci", by=CLI).secret
        expiring = tokens.create(db, "olga", "x", by=CLI, expires_at=utcnow() + timedelta(hours=1))
    t0 = utcnow()
    assert authenticate(store, api_token=secret, now=t0) is not None
    assert authenticate(store, api_token=expiring.secret, now=t0) is not None
    assert authenticate(store, api_token=expiring.secret, now=t0 + timedelta(hours=2)) is None
    with store.session() as db:
        users.update_user(db, "olga", by=CLI, disabled=True)
    assert authenticate(store, api_token=secret, now=t0 + timedelta(seconds=1)) is None
    with store.session() as db:
        users.update_user(db, "olga", by=CLI, disabled=False, role="viewer")
    back = authenticate(store, api_token=secret, now=t0 + timedelta(seconds=2))
    assert back is not None and back.user.role == "viewer"  # the role as it is now
    with store.session() as db:
        tokens.revoke(db, tokens.parse_prefix(secret) or "", by=CLI)
    assert authenticate(store, api_token=secret, now=t0 + timedelta(seconds=3)) is None
    assert authenticate(store, api_token=secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert authenticate(store, api_token="cs_nothing") is None


def test_a_session_check_reads_and_slides_its_expiry_once_a_minute(store):
    t0 = utcnow()
    signed = login(store, "olga", PW, now=t0)
    with counted(store) as (statements, commits):
        p = authenticate(store, session_token=signed.token, now=t0 + timedelta(seconds=30))
    assert p is not None and p.via == "session" and p.expires_at == signed.expires_at
    assert statements == ["SELECT"] and commits == []
    later = t0 + timedelta(hours=1)
    slid = authenticate(store, session_token=signed.token, now=later)
    assert slid is not None and slid.expires_at == later + sessions.IDLE_TIMEOUT
    # Idle past the (slid) expiry: ended, though nothing was written since.
    assert authenticate(store, session_token=signed.token, now=later + sessions.IDLE_TIMEOUT) is None
    assert authenticate(store, session_token="x" * (sessions.MAX_TOKEN_LENGTH + 1)) is None


def test_a_password_change_ends_sessions_at_the_next_request(store):
    signed = login(store, "olga", PW)
    assert authenticate(store, session_token=signed.token) is not None
    change_password(store, "olga", PW, "another long passphrase")
    assert authenticate(store, session_token=signed.token) is None


def test_an_audit_entry_is_one_short_transaction_and_keeps_the_chain(store):
    audit.record(store, "olga", Action.SEARCH, detail={"query": "first"})
    with counted(store) as (statements, commits):
        entry = audit.record(
            store, Actor("olga", "10.0.0.7"), Action.SEARCH, target="lobby", detail={"query": "red hat"}
        )
    assert statements == ["INSERT", "SELECT", "UPDATE", "UPDATE"] and commits == ["commit"]
    assert audit.list_entries(store, limit=1).entries == [entry]
    assert entry.ip == "10.0.0.7" and entry.detail == {"query": "red hat"}
    result = audit.verify(store)
    assert result.ok and result.head_id == entry.id and result.head_hash == entry.hash


def test_an_audit_entry_in_a_callers_session_commits_or_rolls_back_with_it(store):
    head = audit.record(store, "olga", Action.SEARCH, detail={"query": "first"})
    before = audit.list_entries(store).entries
    with pytest.raises(RuntimeError), store.session() as db:
        users.create_user(db, "vera", PW, "viewer", by=CLI)  # audited in the same transaction
        raise RuntimeError("the caller fails after its change")
    assert audit.list_entries(store).entries == before and before[0] == head
    with store.sessions() as db:
        assert [u.name for u in users.list_users(db)] == ["olga"]
    with store.session() as db:
        users.create_user(db, "vera", PW, "viewer", by=CLI)
    newest = audit.list_entries(store, limit=1).entries[0]
    assert newest.action == "user.create" and newest.prev_hash == head.hash
    assert audit.verify(store).ok
