"""Accounts: password hashing and policy, the first admin, tokens, sessions, rate limit, sign-in, roles."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from camsight.auth import audit, ratelimit, sessions, tokens
from camsight.auth.audit import Actor
from camsight.auth.errors import AccountError, InvalidCredentials, PasswordPolicyError, RateLimited
from camsight.auth.login import authenticate, login, logout
from camsight.auth.passwords import check_policy, hash_password, needs_rehash, verify_password
from camsight.auth.ratelimit import RateLimitPolicy
from camsight.auth.roles import Permission, Role, allowed, camera_scope, permissions, visible_cameras
from camsight.auth.users import (
    KEEP,
    bootstrap_admin,
    create_user,
    delete_user,
    get_user,
    list_users,
    set_password,
    update_user,
)
from camsight.errors import NotFoundError
from camsight.store.db import open_store
from camsight.store.models import Camera, UserRow, WebSessionRow, utcnow

CLI = Actor("cli:tester")
PW = "correct horse battery"


def add(store, name, role="operator", cameras=None, password=PW):
    with store.session() as db:
        return create_user(db, name, password, role, by=CLI, cameras=cameras)


def raw(store, sql, params=()):
    con = sqlite3.connect(store.root / "camsight.db")
    try:
        rows = con.execute(sql, params).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


# --------------------------------------------------------------------------- passwords


def test_hash_is_argon2id_salted_and_verifies():
    a, b = hash_password(PW), hash_password(PW)
    assert a.startswith("$argon2id$") and a != b  # a fresh salt each time
    assert verify_password(a, PW) and verify_password(b, PW)
    assert not verify_password(a, PW + "x")
    assert not verify_password("not a hash", PW)
    assert not needs_rehash(a)
    weaker = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PW)
    assert verify_password(weaker, PW) and needs_rehash(weaker)


@pytest.mark.parametrize(
    ("password", "name", "needle"),
    [
        ("short", None, "at least 10 characters"),
        ("x" * 1025, None, "at most 1024"),
        (" " * 12, None, "only spaces"),
        ("Alice12345", "alice12345", "user name"),
        ("abababababab", None, "too simple"),
    ],
)
def test_password_policy_rejects_with_a_clear_reason(password, name, needle):
    with pytest.raises(PasswordPolicyError, match=needle):
        check_policy(password, name)


def test_password_policy_accepts_a_passphrase():
    check_policy("correct horse battery", "alice")
    check_policy("0123456789")


# --------------------------------------------------------------------------- first admin


def test_bootstrap_with_env_password(store):
    assert bootstrap_admin(store, "env-admin-password") is None
    with store.session() as db:
        admin = get_user(db, "admin")
    assert admin.role == "admin" and admin.cameras is None
    result = login(store, "admin", "env-admin-password")
    # The variable stays readable in the environment: it is only good for the first sign-in.
    assert result.user.name == "admin" and result.must_change_password
    # Users exist now: nothing more is created, the variable is ignored.
    assert bootstrap_admin(store, "another-password-1") is None
    with store.session() as db:
        assert [u.name for u in list_users(db)] == ["admin"]
    entries = audit.list_entries(store, action="user.create").entries
    assert entries[0].actor == "system" and entries[0].detail["password"] == "environment"


def test_bootstrap_generates_a_one_time_password(store):
    password = bootstrap_admin(store, None)
    assert password and len(password) >= 20
    with store.session() as db:
        admin = get_user(db, "admin")
    assert admin.must_change_password
    result = login(store, "admin", password)
    assert result.must_change_password
    assert bootstrap_admin(store, None) is None
    (hashed,) = raw(store, "SELECT password_hash FROM users")[0]
    assert password not in hashed


def test_bootstrap_refuses_a_weak_env_password(store):
    with pytest.raises(PasswordPolicyError):
        bootstrap_admin(store, "short")
    with store.session() as db:
        assert list_users(db) == []


# --------------------------------------------------------------------------- users


def test_create_list_update_delete(store):
    add(store, "Alice", "operator", ["lobby"])
    add(store, "bob", "viewer")
    with store.session() as db:
        users = {u.name: u for u in list_users(db)}
        assert set(users) == {"alice", "bob"}
        assert users["alice"].role == "operator" and users["alice"].cameras == ("lobby",)
        assert users["bob"].cameras is None
        u = update_user(db, "ALICE", by=CLI, role="viewer", cameras=None)
        assert u.role == "viewer" and u.cameras is None
        u = update_user(db, "alice", by=CLI, cameras=["gate", "lobby"], disabled=True)
        assert u.cameras == ("gate", "lobby") and u.disabled and u.role == "viewer"
        u = update_user(db, "alice", by=CLI, disabled=False, cameras=KEEP)
        assert not u.disabled and u.cameras == ("gate", "lobby")
        delete_user(db, "bob", by=CLI)
        with pytest.raises(NotFoundError, match="no user named 'bob'"):
            get_user(db, "bob")
    actions = [e.action for e in reversed(audit.list_entries(store).entries)]
    assert actions == [
        "user.create",
        "user.create",
        "user.update",
        "user.update",
        "user.update",
        "user.delete",
    ]
    assert audit.verify(store).ok


@pytest.mark.parametrize(
    ("name", "role", "needle"),
    [
        ("bad name", "viewer", "invalid user name"),
        ("-dash", "viewer", "invalid user name"),
        ("system", "viewer", "reserved"),
        ("carol", "boss", "unknown role 'boss'"),
    ],
)
def test_create_rejects_bad_input(store, name, role, needle):
    with store.session() as db, pytest.raises(AccountError, match=needle):
        create_user(db, name, PW, role, by=CLI)


def test_duplicate_names_are_case_insensitive(store):
    add(store, "alice")
    with pytest.raises(AccountError, match="already exists"):
        add(store, "ALICE")


def test_cameras_are_checked_once_cameras_exist(store):
    add(store, "early", cameras=["anything"])  # no camera known yet: accepted
    with store.session() as db:
        db.add(Camera(name="lobby"))
    with pytest.raises(AccountError, match="no camera named 'garage'"):
        add(store, "late", cameras=["garage"])
    with store.session() as db:
        user = create_user(db, "late", PW, "viewer", by=CLI, cameras=["garage"], known_cameras=["garage"])
    assert user.cameras == ("garage",)


def test_admins_see_every_camera(store):
    with pytest.raises(AccountError, match="admin sees every camera"):
        add(store, "root2", "admin", ["lobby"])
    add(store, "op", "operator", ["lobby"])
    with store.session() as db:
        assert update_user(db, "op", by=CLI, role="admin").cameras is None


def test_the_last_admin_cannot_be_removed_disabled_or_demoted(store):
    add(store, "root1", "admin")
    with store.session() as db:
        with pytest.raises(AccountError, match="last enabled admin"):
            delete_user(db, "root1", by=CLI)
        with pytest.raises(AccountError, match="last enabled admin"):
            update_user(db, "root1", by=CLI, disabled=True)
        with pytest.raises(AccountError, match="last enabled admin"):
            update_user(db, "root1", by=CLI, role="viewer")
    add(store, "root2", "admin")
    with store.session() as db:
        update_user(db, "root1", by=CLI, role="viewer")
        assert get_user(db, "root1").role == "viewer"


@pytest.mark.slow
def test_password_change_checks_current_and_ends_sessions(store):
    user = add(store, "alice")
    with store.session() as db:
        s = sessions.create(db, user.id)
    with store.session() as db:
        with pytest.raises(InvalidCredentials, match="current password"):
            set_password(db, "alice", "another long one", by=CLI, current_password="nope")
    with store.session() as db:
        with pytest.raises(AccountError, match="differ"):
            set_password(db, "alice", PW, by=CLI)
        with pytest.raises(PasswordPolicyError):
            set_password(db, "alice", "short", by=CLI)
    with store.session() as db:
        info = set_password(db, "alice", "another long one", by=CLI, current_password=PW, must_change=True)
        assert info.must_change_password
        assert sessions.verify(db, s.token) is None
    with pytest.raises(InvalidCredentials):
        login(store, "alice", PW)
    assert login(store, "alice", "another long one").must_change_password
    entry = audit.list_entries(store, action="user.password").entries[0]
    assert entry.detail == {"must_change_password": True, "sessions_ended": 1}
    assert PW not in str(raw(store, "SELECT * FROM audit_log"))


def test_disabling_ends_sessions_and_blocks_tokens(store):
    user = add(store, "alice")
    with store.session() as db:
        s = sessions.create(db, user.id)
        t = tokens.create(db, "alice", "ha", by=CLI)
    with store.session() as db:
        update_user(db, "alice", by=CLI, disabled=True)
    with store.session() as db:
        assert sessions.verify(db, s.token) is None
        assert tokens.verify(db, t.secret) is None
        update_user(db, "alice", by=CLI, disabled=False)
    with store.session() as db:
        assert tokens.verify(db, t.secret) is not None  # a token only pauses while disabled
        assert sessions.verify(db, s.token) is None  # a session stays ended


# --------------------------------------------------------------------------- API tokens


def test_token_create_verify_revoke(store):
    add(store, "alice", "viewer", ["lobby"])
    with store.session() as db:
        new = tokens.create(db, "alice", "home-assistant", by=CLI)
    assert new.secret.startswith(f"cs_{new.info.prefix}_") and len(new.info.prefix) == 8
    assert tokens.parse_prefix(new.secret) == new.info.prefix
    dump = "\n".join(str(r) for r in raw(store, "SELECT * FROM api_tokens"))
    assert new.secret not in dump and new.secret.split("_", 2)[2] not in dump  # hashed at rest
    with store.session() as db:
        principal = tokens.verify(db, new.secret)
        assert principal is not None and principal.via == "token" and principal.name == "alice"
        assert principal.can(Permission.VIEW_LIVE, "lobby") and not principal.can(
            Permission.VIEW_LIVE, "gate"
        )
        assert tokens.verify(db, new.secret[:-1] + ("A" if new.secret[-1] != "A" else "B")) is None
        assert tokens.verify(db, "cs_zzzz") is None and tokens.verify(db, "") is None
    with store.session() as db:
        listed = tokens.list_tokens(db, "alice")
        assert [t.name for t in listed] == ["home-assistant"] and listed[0].last_used_at is not None
        assert listed[0].display == f"cs_{new.info.prefix}_…"
        tokens.revoke(db, f"cs_{new.info.prefix}_…", by=CLI)
    with store.session() as db:
        assert tokens.verify(db, new.secret) is None
        assert tokens.list_tokens(db, "alice") == []
        assert tokens.list_tokens(db, include_revoked=True)[0].state() == "revoked"
        with pytest.raises(AccountError, match="already revoked"):
            tokens.revoke(db, new.info.id, by=CLI)
        with pytest.raises(NotFoundError):
            tokens.revoke(db, 999, by=CLI)
        with pytest.raises(NotFoundError):
            tokens.create(db, "nobody", "x", by=CLI)
    actions = [e.action for e in audit.list_entries(store).entries]
    assert actions[:2] == ["token.revoke", "token.create"]


def test_an_all_digit_token_prefix_is_found_by_prefix_and_by_id(store, monkeypatch):
    """A hex prefix is all digits about 1 time in 40; the bare prefix must still name its token."""
    add(store, "alice", "viewer", ["lobby"])
    monkeypatch.setattr(tokens.secrets, "token_hex", lambda n: "96386630")
    with store.session() as db:
        first = tokens.create(db, "alice", "ha", by=CLI)
    with store.session() as db:
        assert tokens.revoke(db, "96386630", by=CLI).id == first.info.id
        with pytest.raises(NotFoundError):
            tokens.revoke(db, "12345678", by=CLI)
    with store.session() as db:
        second = tokens.create(db, "alice", "ci", by=CLI)  # same prefix: now it is ambiguous
    with store.session() as db:
        with pytest.raises(AccountError, match="matches 2 tokens"):
            tokens.revoke(db, "96386630", by=CLI)
        assert tokens.revoke(db, str(second.info.id), by=CLI).name == "ci"


def test_token_expiry_and_user_removal(store):
    add(store, "alice")
    add(store, "root", "admin")
    now = utcnow()
    with store.session() as db:
        new = tokens.create(db, "alice", "ci", by=CLI, expires_at=now + timedelta(days=1), now=now)
        with pytest.raises(AccountError, match="future"):
            tokens.create(db, "alice", "ci", by=CLI, expires_at=now - timedelta(seconds=1))
    with store.session() as db:
        assert tokens.verify(db, new.secret, now=now + timedelta(hours=23)) is not None
        assert tokens.verify(db, new.secret, now=now + timedelta(days=1)) is None
        delete_user(db, "alice", by=CLI)
    assert raw(store, "SELECT count(*) FROM api_tokens") == [(0,)]


# --------------------------------------------------------------------------- sessions


def test_session_sliding_expiry_and_lifetime(store):
    user = add(store, "alice")
    t0 = utcnow()
    idle, life = timedelta(hours=12), timedelta(days=7)
    with store.session() as db:
        s = sessions.create(db, user.id, ip="10.0.0.7", user_agent="pytest", now=t0)
    assert s.expires_at == t0 + idle
    assert raw(store, "SELECT count(*) FROM web_sessions WHERE token_hash = ?", (s.token,)) == [(0,)]
    with store.session() as db:
        # Used every 11 hours it stays alive...
        for k in range(1, 8):
            assert sessions.verify(db, s.token, now=t0 + k * timedelta(hours=11)) is not None
    with store.session() as db:
        p = sessions.verify(db, s.token, now=t0 + timedelta(hours=88))
        assert p is not None and p.via == "session" and p.user.name == "alice"
        # ...but never beyond its absolute lifetime.
        assert p.expires_at <= t0 + life
        assert sessions.verify(db, s.token, now=t0 + life) is None
    with store.session() as db:
        s2 = sessions.create(db, user.id, now=t0)
    with store.session() as db:
        assert sessions.verify(db, s2.token, now=t0 + timedelta(hours=11, minutes=59)) is not None
        # Idle for 12 hours after that use: gone.
        assert sessions.verify(db, s2.token, now=t0 + timedelta(hours=24)) is None


def test_session_revoke_and_revoke_all(store):
    user = add(store, "alice")
    with store.session() as db:
        a, b, c = (sessions.create(db, user.id) for _ in range(3))
    with store.session() as db:
        assert sessions.revoke(db, a.token)
        assert not sessions.revoke(db, a.token)
        assert sessions.verify(db, a.token) is None and sessions.verify(db, b.token) is not None
        assert len(sessions.list_sessions(db, user.id)) == 2
        assert sessions.revoke_all_for_user(db, user.id, except_id=c.id) == 1
        assert sessions.verify(db, b.token) is None and sessions.verify(db, c.token) is not None
        assert sessions.verify(db, "garbage") is None and sessions.verify(db, None) is None


def test_old_sessions_are_pruned(store):
    user = add(store, "alice")
    t0 = utcnow() - timedelta(days=30)
    with store.session() as db:
        sessions.create(db, user.id, now=t0)
        sessions.create(db, user.id)
    assert raw(store, "SELECT count(*) FROM web_sessions") == [(1,)]


# --------------------------------------------------------------------------- rate limit


@pytest.mark.both_databases
def test_rate_limit_per_name_at_an_address_with_growing_delays(store):
    policy = RateLimitPolicy(
        window=timedelta(minutes=15),
        per_name=5,
        per_ip=20,
        first_delay=timedelta(seconds=30),
        max_delay=timedelta(minutes=15),
    )
    t0 = utcnow()

    def at(minutes: float, seconds: float = 0):
        return t0 + timedelta(minutes=minutes, seconds=seconds)

    with store.session() as db:
        for i in range(5):
            ratelimit.check(db, "alice", "10.0.0.1", now=at(i), policy=policy)
            ratelimit.record_failure(db, "alice", "10.0.0.1", now=at(i), policy=policy)
        # The limit reached: 30 s after the last failure, not a lock of the name.
        with pytest.raises(RateLimited, match="for this user name from this address") as exc:
            ratelimit.check(db, "Alice", "10.0.0.1", now=at(4, 10), policy=policy)
        assert exc.value.retry_after == 20
        # Someone else's failures do not hold alice up at her own address (or the CLI).
        ratelimit.check(db, "alice", "10.0.0.2", now=at(4, 10), policy=policy)
        ratelimit.check(db, "alice", None, now=at(4, 10), policy=policy)
        ratelimit.check(db, "bob", "10.0.0.1", now=at(4, 10), policy=policy)
        # Each further failure doubles the wait: 30 s, 60 s, 120 s...
        ratelimit.check(db, "alice", "10.0.0.1", now=at(4, 30), policy=policy)
        ratelimit.record_failure(db, "alice", "10.0.0.1", now=at(4, 30), policy=policy)
        with pytest.raises(RateLimited) as exc:
            ratelimit.check(db, "alice", "10.0.0.1", now=at(4, 31), policy=policy)
        assert exc.value.retry_after == 59
        ratelimit.record_failure(db, "alice", "10.0.0.1", now=at(5, 30), policy=policy)
        with pytest.raises(RateLimited) as exc:
            ratelimit.check(db, "alice", "10.0.0.1", now=at(5, 31), policy=policy)
        assert exc.value.retry_after == 119
    # Stored in the database: a restart does not forget.
    store.engine.dispose()
    url = None if store.dialect == "sqlite" else store.engine.url.render_as_string(hide_password=False)
    reopened = open_store(store.root, url=url)
    with reopened.session() as db:
        with pytest.raises(RateLimited):
            ratelimit.check(db, "alice", "10.0.0.1", now=at(7, 29), policy=policy)
        ratelimit.check(db, "alice", "10.0.0.1", now=at(7, 31), policy=policy)
        # The wait is over when the count falls below the limit: after 12 failures at 8:00-8:11 the
        # one at 8:07 leaves the window at 23:07, 895 s after 8:12 (sooner than 30 s * 2**7)...
        for i in range(12):
            ratelimit.record_failure(db, "carol", "10.0.0.3", now=at(8, i), policy=policy)
        with pytest.raises(RateLimited) as exc:
            ratelimit.check(db, "carol", "10.0.0.3", now=at(8, 12), policy=policy)
        assert exc.value.retry_after == 895
        # ... and never longer than max_delay after the last failure.
        short = RateLimitPolicy(per_name=5, per_ip=20, max_delay=timedelta(minutes=2))
        with pytest.raises(RateLimited) as exc:
            ratelimit.check(db, "carol", "10.0.0.3", now=at(8, 12), policy=short)
        assert exc.value.retry_after == 119
        ratelimit.reset(db, "carol", "10.0.0.3")
        ratelimit.check(db, "carol", "10.0.0.3", now=at(8, 12), policy=policy)
    reopened.close()


@pytest.mark.both_databases
def test_rate_limit_per_address(store):
    policy = RateLimitPolicy(per_name=5, per_ip=20)
    t0 = utcnow()
    with store.session() as db:
        for i in range(20):
            ratelimit.record_failure(db, f"user{i}", "192.0.2.9", now=t0, policy=policy)
        with pytest.raises(RateLimited, match="from this address"):
            ratelimit.check(db, "someone", "192.0.2.9", now=t0, policy=policy)
        ratelimit.check(db, "someone", "192.0.2.10", now=t0, policy=policy)


# --------------------------------------------------------------------------- sign-in


@pytest.mark.slow
def test_login_success_failure_and_audit(store):
    add(store, "alice", "operator", ["lobby"])
    result = login(store, " Alice ", PW, ip="10.0.0.5", user_agent="Firefox")
    assert result.user.name == "alice" and result.token
    principal = authenticate(store, session_token=result.token)
    assert principal is not None and principal.camera_scope() == frozenset({"lobby"})
    with store.session() as db:
        assert get_user(db, "alice").last_login_at is not None
    with pytest.raises(InvalidCredentials, match="wrong user name or password"):
        login(store, "alice", "wrong password", ip="10.0.0.5")
    with pytest.raises(InvalidCredentials, match="wrong user name or password"):
        login(store, "mallory", "whatever123", ip="10.0.0.6")
    with store.session() as db:
        update_user(db, "alice", by=CLI, disabled=True)
    with pytest.raises(InvalidCredentials, match="wrong user name or password"):
        login(store, "alice", PW)
    entries = audit.list_entries(store, action="login.failure").entries
    reasons = [(e.target, e.detail["reason"], e.ip) for e in reversed(entries)]
    assert reasons == [
        ("alice", "wrong password", "10.0.0.5"),
        ("mallory", "unknown user", "10.0.0.6"),
        ("alice", "disabled", None),
    ]
    ok = audit.list_entries(store, action="login.success").entries
    assert ok[0].actor == "alice" and ok[0].ip == "10.0.0.5"
    assert authenticate(store, session_token=result.token) is None  # disabled: session ended


@pytest.mark.slow
@pytest.mark.both_databases
def test_login_is_rate_limited_and_recorded(store):
    add(store, "alice")
    policy = RateLimitPolicy(per_name=3, per_ip=100)
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            login(store, "alice", "bad password!", ip="10.0.0.5", policy=policy)
    with pytest.raises(RateLimited) as exc:
        login(store, "alice", PW, ip="10.0.0.5", policy=policy)  # even the right password waits
    assert 0 < exc.value.retry_after <= 900
    last = audit.list_entries(store, limit=1).entries[0]
    assert last.action == "login.failure" and last.detail["reason"] == "rate_limited"


@pytest.mark.slow
def test_success_clears_the_name_count(store):
    add(store, "alice")
    policy = RateLimitPolicy(per_name=3, per_ip=100)
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            login(store, "alice", "bad password!", policy=policy)
    login(store, "alice", PW, policy=policy)
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            login(store, "alice", "bad password!", policy=policy)
    login(store, "alice", PW, policy=policy)


@pytest.mark.slow
def test_login_upgrades_an_old_hash_and_logout(store):
    add(store, "alice")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PW)
    with store.session() as db:
        db.execute(update(UserRow).where(UserRow.name == "alice").values(password_hash=weak))
    result = login(store, "alice", PW)
    with store.session() as db:
        stored = db.execute(select(UserRow.password_hash).where(UserRow.name == "alice")).scalar_one()
    assert stored != weak and not needs_rehash(stored) and verify_password(stored, PW)
    assert logout(store, result.token, ip="10.1.1.1")
    assert not logout(store, result.token)
    assert authenticate(store, session_token=result.token) is None
    assert audit.list_entries(store, limit=1).entries[0].action == "logout"
    with store.session() as db:
        assert db.execute(select(WebSessionRow.revoked_at)).scalar_one() is not None


def test_authenticate_prefers_the_api_token(store):
    add(store, "alice")
    add(store, "bob", "viewer")
    with store.session() as db:
        t = tokens.create(db, "bob", "ci", by=CLI)
    s = login(store, "alice", PW)
    p = authenticate(store, session_token=s.token, api_token=t.secret)
    assert p is not None and p.name == "bob" and p.via == "token"
    assert authenticate(store) is None


# --------------------------------------------------------------------------- roles


def who(role, cameras=None, disabled=False):
    return SimpleNamespace(role=role, cameras=cameras, disabled=disabled)


MATRIX = {
    Role.ADMIN: set(Permission),
    Role.OPERATOR: {
        Permission.SEARCH,
        Permission.VIEW_CLIPS,
        Permission.EXPORT,
        Permission.ACKNOWLEDGE,
        Permission.VIEW_LIVE,
        Permission.VIEW_EVENTS,
    },
    Role.VIEWER: {Permission.VIEW_LIVE, Permission.VIEW_EVENTS},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_role_matrix(role, permission):
    assert allowed(who(role.value), permission) == (permission in MATRIX[role])
    assert allowed(who(role.value), permission, "lobby") == (permission in MATRIX[role])
    assert not allowed(who(role.value, disabled=True), permission)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_camera_restriction_hides_other_cameras(role):
    user = who(role.value, cameras=["lobby"])
    for permission in MATRIX[role]:
        assert allowed(user, permission, "lobby")
        assert not allowed(user, permission, "gate")
    assert visible_cameras(user, ["gate", "lobby", "yard"]) == ["lobby"]
    assert camera_scope(user) == frozenset({"lobby"})
    assert visible_cameras(who(role.value, cameras=[]), ["lobby"]) == []


def test_admin_sees_every_camera_and_unknown_roles_nothing():
    admin = who("admin", cameras=["lobby"])  # a stray limit on an admin is ignored
    assert allowed(admin, Permission.VIEW_CLIPS, "gate") and camera_scope(admin) is None
    assert allowed(admin, "manage_users", "gate")
    assert permissions(who("superuser")) == frozenset()
    assert visible_cameras(who("viewer", disabled=True), ["lobby"]) == []
