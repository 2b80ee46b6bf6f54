"""``camsight users``, ``camsight tokens`` and ``camsight audit``: accounts, API tokens, the audit log.

Every change made here is written to the audit log as ``cli:<os user>``.
Passwords are asked for without echo, or read from standard input with
``--password-stdin``; they are never printed (except a ``--generate``d one,
once) and never logged.

Examples::

    camsight users add alice --role operator --cameras lobby,gate
    echo 'a long passphrase' | camsight users passwd alice --password-stdin
    camsight users set alice --role viewer --disable
    camsight tokens create alice --name home-assistant --expires 90d
    camsight tokens revoke --user alice --all
    camsight audit verify
    camsight audit export --csv audit.csv --since 7d
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from camsight.cli.options import ConfigOpt, DataOpt, command_config, when_option
from camsight.cli.output import err_console, fail, local_time, out_console

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from camsight.config import Config
    from camsight.store.db import Store

users_app = typer.Typer(help="Manage who may sign in: users, roles and camera access.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens for integrations.", no_args_is_help=True)
audit_app = typer.Typer(help="Check, read and export the tamper-evident audit log.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
PasswordStdinOpt = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of standard input."),
]
GenerateOpt = Annotated[
    bool,
    typer.Option(
        "--generate", help="Generate a one-time password, print it once; it must be changed at sign-in."
    ),
]
CamerasOpt = Annotated[
    str | None,
    typer.Option(
        "--cameras",
        help="Comma-separated camera names the user may see, or 'all' (the default).",
        show_default=False,
    ),
]


# --------------------------------------------------------------------------- helpers


@contextmanager
def _store(data: Path | None, cfg: Config | None = None, *, create: bool = False) -> Iterator[Store]:
    from camsight.store.db import open_store, url_for

    url = url_for(cfg.store if cfg else None)
    store = open_store(data or (cfg.data_dir if cfg else None), url=url, create=create)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _db(store: Store) -> Iterator[Session]:
    with store.session() as session:
        yield session


def _actor():  # noqa: ANN202 - camsight.auth is imported lazily to keep `camsight --help` fast
    from camsight.auth.audit import Actor

    return Actor.cli()


def _parse_cameras(value: str | None) -> list[str] | None:
    if value is None or value.strip().lower() == "all":
        return None
    names = [c.strip() for c in value.split(",") if c.strip()]
    if not names:
        fail("--cameras must list camera names (comma-separated) or be 'all'")
    return names


def _read_password(from_stdin: bool, prompt: str = "Password") -> str:
    if from_stdin:
        line = sys.stdin.readline()
        # Only the line break is stripped: spaces may be part of a passphrase.
        value = line.rstrip("\r\n")
        if not value:
            fail("--password-stdin: no password on standard input")
        return value
    if not sys.stdin.isatty():
        fail("no terminal to ask for the password: pipe it in with --password-stdin")
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=True)


#: A time stored in an audit entry's detail (ISO 8601), shown like every other time.
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?")


def _detail_value(value: object) -> str:
    """One value of an audit entry's detail as JSON, except that stored times read as local ones."""
    if isinstance(value, str) and _ISO_TIME.fullmatch(value):
        value = local_time(value)
    return json.dumps(value, ensure_ascii=False)


def _table(*columns: str, keep: tuple[str, ...] = ()) -> Table:
    """A table; the columns in ``keep`` (ids, times) are never wrapped, the others fold."""
    table = Table()
    for col in columns:
        table.add_column(col, overflow="fold", no_wrap=col in keep)
    return table


def _row(table: Table, *cells: str) -> None:
    # User names, camera names, search texts: plain text, never markup.
    table.add_row(*(Text(c) for c in cells))


# --------------------------------------------------------------------------- users


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ - @).", show_default=False)],
    role: Annotated[str, typer.Option(help="admin, operator or viewer.")] = "viewer",
    cameras: CamerasOpt = None,
    password_stdin: PasswordStdinOpt = False,
    generate: GenerateOpt = False,
    temporary: Annotated[
        bool, typer.Option("--temporary", help="The user must choose a new password at the first sign-in.")
    ] = False,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Add a user; the password is asked for (hidden) unless piped in or generated.

    Example: camsight users add alice --role operator --cameras lobby,gate
    """
    from camsight.auth.users import (
        create_user,
        find_user,
        generate_password,
        normalise_name,
        require_role,
        validate_cameras,
    )

    if generate and password_stdin:
        fail("give either --generate or --password-stdin, not both")
    cfg = command_config(config, data)
    cams = _parse_cameras(cameras)
    with _store(data, cfg, create=True) as store:
        # Check everything but the password first, so a typo is not found after typing it twice.
        with _db(store) as session:
            user = normalise_name(name)
            if find_user(session, user) is not None:
                fail(f"user {user!r} already exists")
            require_role(role)
            validate_cameras(session, cams, cfg.cameras)
        password = generate_password() if generate else _read_password(password_stdin)
        with _db(store) as session:
            info = create_user(
                session,
                user,
                password,
                role,
                by=_actor(),
                cameras=cams,
                must_change_password=generate or temporary,
                known_cameras=cfg.cameras,
            )
    scope = "all cameras" if info.cameras is None else "cameras: " + ", ".join(info.cameras)
    err_console.print(f"added user {escape(info.name)} ({info.role}, {escape(scope)})", soft_wrap=True)
    if generate:
        err_console.print(
            "one-time password (shown once; to be changed at the first sign-in):", soft_wrap=True
        )
        print(password)


@users_app.command("list")
def users_list(data: DataOpt = None, config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """List users with role, cameras, state and last sign-in."""
    from camsight.auth.users import list_users

    with _store(data, command_config(config, data)) as store, _db(store) as session:
        users = list_users(session)
    if json_out:
        out_console.print_json(json.dumps([u.to_dict() for u in users]))
        return
    if not users:
        err_console.print("no users yet (the first start of the web service creates 'admin')", soft_wrap=True)
        return
    table = _table(
        "name", "role", "cameras", "state", "created", "last sign-in", keep=("created", "last sign-in")
    )
    for u in users:
        state = "disabled" if u.disabled else ("must change password" if u.must_change_password else "active")
        cams = "all" if u.cameras is None else (", ".join(u.cameras) or "none")
        _row(table, u.name, u.role, cams, state, local_time(u.created_at), local_time(u.last_login_at))
    out_console.print(table)


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="User name.", show_default=False)],
    password_stdin: PasswordStdinOpt = False,
    generate: GenerateOpt = False,
    temporary: Annotated[
        bool, typer.Option("--temporary", help="The user must choose a new password at the next sign-in.")
    ] = False,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set a user's password; their browser sessions end.

    Example: echo 'a long passphrase' | camsight users passwd alice --password-stdin
    """
    from camsight.auth.users import generate_password, get_user, set_password

    if generate and password_stdin:
        fail("give either --generate or --password-stdin, not both")
    with _store(data, command_config(config, data)) as store:
        with _db(store) as session:
            user = get_user(session, name).name
        password = generate_password() if generate else _read_password(password_stdin, "New password")
        with _db(store) as session:
            set_password(session, user, password, by=_actor(), must_change=generate or temporary)
    err_console.print(f"password of {escape(user)} changed; their sessions were ended", soft_wrap=True)
    if generate:
        err_console.print(
            "one-time password (shown once; to be changed at the next sign-in):", soft_wrap=True
        )
        print(password)


@users_app.command("set")
def users_set(
    name: Annotated[str, typer.Argument(help="User name.", show_default=False)],
    role: Annotated[str | None, typer.Option(help="New role: admin, operator or viewer.")] = None,
    cameras: Annotated[
        str | None,
        typer.Option("--cameras", help="Comma-separated camera names, or 'all'.", show_default=False),
    ] = None,
    enable: Annotated[
        bool | None,
        typer.Option(
            "--enable/--disable",
            help="Allow or refuse sign-in (disabling ends sessions).",
            show_default=False,
        ),
    ] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Change a user's role, cameras or whether they may sign in.

    Example: camsight users set alice --role viewer --cameras gate
    """
    from camsight.auth.users import KEEP, update_user

    if role is None and cameras is None and enable is None:
        fail("nothing to change: give --role, --cameras, --enable or --disable")
    cfg = command_config(config, data)
    cams = KEEP if cameras is None else _parse_cameras(cameras)
    with _store(data, cfg) as store, _db(store) as session:
        info = update_user(
            session,
            name,
            by=_actor(),
            role=role,
            cameras=cams,
            disabled=None if enable is None else not enable,
            known_cameras=cfg.cameras,
        )
    scope = "all cameras" if info.cameras is None else "cameras: " + (", ".join(info.cameras) or "none")
    state = "disabled" if info.disabled else "enabled"
    err_console.print(f"user {escape(info.name)}: {info.role}, {escape(scope)}, {state}", soft_wrap=True)


@users_app.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(help="User name.", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Remove a user with their API tokens and sessions (their audit entries stay)."""
    from camsight.auth.users import delete_user, get_user

    with _store(data, command_config(config, data)) as store:
        with _db(store) as session:
            user = get_user(session, name).name
        if not yes:
            if not sys.stdin.isatty():
                fail(f"removing {user!r} needs confirmation: add --yes")
            if not typer.confirm(f"Remove user {user!r} with their tokens and sessions?"):
                raise typer.Exit(1)
        with _db(store) as session:
            delete_user(session, user, by=_actor())
    err_console.print(f"removed user {escape(user)}", soft_wrap=True)


# --------------------------------------------------------------------------- tokens


@tokens_app.command("create")
def tokens_create(
    user: Annotated[str, typer.Argument(help="The user the token acts as.", show_default=False)],
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. home-assistant.")] = "api",
    expires: Annotated[
        str | None, typer.Option(help="Expiry: a duration such as 90d, or an ISO date (default: never).")
    ] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create an API token; the token is printed once on stdout.

    Example: camsight tokens create alice --name home-assistant --expires 90d
    """
    from camsight.auth import tokens

    expires_at = when_option(expires, "--expires", durations="ahead")
    with _store(data, command_config(config, data)) as store, _db(store) as session:
        new = tokens.create(session, user, name, by=_actor(), expires_at=expires_at)
    until = f", expires {local_time(new.info.expires_at)}" if new.info.expires_at else ""
    err_console.print(
        f"API token {new.info.id} ({escape(new.info.name)}) for {escape(new.info.user)}{escape(until)}; "
        "it is shown only now:",
        soft_wrap=True,
    )
    print(new.secret)


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List API tokens (never their secrets)."""
    from camsight.auth import tokens

    with _store(data, command_config(config, data)) as store, _db(store) as session:
        rows = tokens.list_tokens(session, user, include_revoked=all_)
    if json_out:
        out_console.print_json(json.dumps([t.to_dict() for t in rows]))
        return
    if not rows:
        err_console.print("no API tokens", soft_wrap=True)
        return
    table = _table("id", "token", "name", "user", "state", "expires", "last used", keep=("id", "token"))
    for t in rows:
        _row(
            table,
            str(t.id),
            t.display,
            t.name,
            t.user,
            t.state(),
            local_time(t.expires_at) if t.expires_at else "never",
            local_time(t.last_used_at),
        )
    out_console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token: Annotated[
        str | None,
        typer.Argument(help="Token id or prefix (see `camsight tokens list`).", show_default=False),
    ] = None,
    user: Annotated[str | None, typer.Option(help="Only among this user's tokens.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Revoke every token of --user.")] = False,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Revoke an API token, or with --user NAME --all every token of a user: they stop working at once.

    Tokens outlive a password change: revoke them all when a password may have leaked.
    Example: camsight tokens revoke --user alice --all
    """
    from camsight.auth import tokens

    if all_ and (token is not None or user is None):
        fail("--all revokes every token of one user: give --user NAME and no token")
    if not all_ and token is None:
        fail("give a token id or prefix (see `camsight tokens list`), or --user NAME --all")
    with _store(data, command_config(config, data)) as store, _db(store) as session:
        if all_:
            assert user is not None
            revoked = tokens.revoke_all(session, user, by=_actor())
        else:
            assert token is not None
            revoked = [tokens.revoke(session, token, by=_actor(), user=user)]
    if all_:
        owner = escape(user.strip().lower())
        count = len(revoked)
        err_console.print(f"revoked {count} API token{'s' * (count != 1)} of {owner}", soft_wrap=True)
        return
    info = revoked[0]
    err_console.print(
        f"revoked API token {info.id} ({escape(info.name)}) of {escape(info.user)}", soft_wrap=True
    )


# --------------------------------------------------------------------------- audit


@audit_app.command("verify")
def audit_verify(
    expect: Annotated[
        str | None,
        typer.Option(help="A head hash noted earlier (12+ hex characters): it must still be in the chain."),
    ] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check the hash chain of the audit log; exit 1 naming the first broken entry.

    Example: camsight audit verify
    """
    from camsight.auth import audit

    with _store(data, command_config(config, data)) as store:
        result = audit.verify(store, expect=expect)
    if json_out:
        out_console.print_json(json.dumps(result.to_dict()))
    if not result.ok:
        fail(result.message, 1)
    if not json_out:
        out_console.print(result.message)
        if result.head_hash:
            err_console.print(f"head: entry {result.head_id}, hash {result.head_hash}", soft_wrap=True)


@audit_app.command("export")
def audit_export(
    csv_out: Annotated[
        Path, typer.Option("--csv", help="Write CSV to this file ('-' for stdout).", show_default=False)
    ],
    since: Annotated[
        str | None, typer.Option(help="Only from this time (ISO, local time) or this long ago (7d).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only before this time (ISO, local time).")] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Export audit entries as CSV (the export itself is recorded).

    Example: camsight audit export --csv audit.csv --since 30d
    """
    from camsight.auth import audit

    start, end = when_option(since, "--since"), when_option(until, "--until")
    with _store(data, command_config(config, data)) as store:
        to_stdout = str(csv_out) == "-"
        count = audit.export_csv(store, sys.stdout if to_stdout else csv_out, start, end)
        if to_stdout:
            sys.stdout.flush()
        audit.record(
            store,
            _actor(),
            audit.Action.AUDIT_EXPORT,
            target="stdout" if to_stdout else str(csv_out.resolve()),
            detail={
                "format": "csv",
                "entries": count,
                "since": start.isoformat() if start else None,
                "until": end.isoformat() if end else None,
            },
        )
    err_console.print(
        f"exported {count} audit entries" + ("" if to_stdout else f" to {escape(str(csv_out))}"),
        soft_wrap=True,
    )


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many entries.")] = 50,
    before: Annotated[int | None, typer.Option(help="Only entries older than this id (next page).")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. login.failure.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only from this time (ISO, local time) or this long ago (2h).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only before this time (ISO, local time).")] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show audit entries, newest first.

    Example: camsight audit list --action login.failure --since 1d
    """
    from camsight.auth import audit

    start, end = when_option(since, "--since"), when_option(until, "--until")
    with _store(data, command_config(config, data)) as store:
        page = audit.list_entries(
            store, limit=limit, before_id=before, since=start, until=end, actor=actor, action=action
        )
    if json_out:
        out_console.print_json(
            json.dumps({"entries": [e.to_dict() for e in page.entries], "next_before": page.next_before})
        )
        return
    if not page.entries:
        err_console.print("no audit entries", soft_wrap=True)
        return
    table = _table("id", "when", "actor", "action", "target", "from", "detail", keep=("id", "when", "action"))
    for e in page.entries:
        detail = " ".join(f"{k}={_detail_value(v)}" for k, v in sorted(e.detail.items()))
        _row(table, str(e.id), local_time(e.at), e.actor, e.action, e.target or "", e.ip or "", detail)
    out_console.print(table)
    if page.next_before is not None:
        err_console.print(f"more: camsight audit list --before {page.next_before}", soft_wrap=True)
