"""``camsight holds add|list|release``: legal holds on recorded footage, kept until released.

Examples::

    camsight holds add --camera gate --start 2026-11-20T18:00 --end 2026-11-20T18:30 --reason "case 118"
    camsight holds add --event 42 --reason "insurance claim"
    camsight holds list [--camera gate] [--all] [--json]
    camsight holds release 3

Placing and releasing are audited with the terminal's user as the actor.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from camsight.cli.options import ConfigOpt, DataOpt, command_config, open_data, when_option
from camsight.cli.output import add_row, err_console, fail, local_time, out_console

if TYPE_CHECKING:
    from camsight.media.holds import LegalHold
    from camsight.store.db import Store

holds_app = typer.Typer(
    help="Legal holds: keep a camera's footage (a time range or an event's) until released.",
    no_args_is_help=True,
)


def _audit(store: Store, action: str, hold: LegalHold) -> None:
    from camsight.auth import audit

    detail = {key: hold.to_dict()[key] for key in ("start", "end", "reason")}
    if hold.event_id is not None:
        detail["event_id"] = hold.event_id
    audit.record(store, audit.Actor.cli(), action, target=hold.camera, detail={"hold_id": hold.id, **detail})


def _span(hold: LegalHold) -> str:
    return f"{local_time(hold.start_at)} - {local_time(hold.end_at) if hold.end_at else 'no end'}"


@holds_app.command("add")
def add(
    reason: Annotated[
        str, typer.Option(help="Why the footage is kept (a case or request number).", show_default=False)
    ],
    camera: Annotated[str | None, typer.Option(help="Camera whose footage to hold.")] = None,
    start: Annotated[str | None, typer.Option(help="Start: ISO, local time unless it has an offset.")] = None,
    end: Annotated[str | None, typer.Option(help="End (default: no end, until released).")] = None,
    event: Annotated[
        int | None, typer.Option("--event", help="Hold this event's footage (with its padding) instead.")
    ] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Hold a camera's footage from START to END, or an event's, so retention never deletes it.

    Example: camsight holds add --camera gate --start 2026-11-20T18:00 --end 2026-11-20T19:00 --reason 118
    """
    from camsight.auth.audit import Action, Actor
    from camsight.media import holds

    if event is not None and (camera or start or end):
        fail("give either --event, or --camera and --start (and --end), not both")
    if event is None and not (camera and start):
        fail("give --camera and --start (and --end) to hold a time range, or --event ID")
    cfg = command_config(config, data)
    by = Actor.cli().name
    store = open_data(data, cfg, create=False)
    try:
        if event is not None:
            hold = holds.place_event_hold(store, event, reason=reason, by=by, config=cfg)
        else:
            assert camera is not None
            when_start, when_end = when_option(start, "--start"), when_option(end, "--end")
            assert when_start is not None
            hold = holds.place_hold(store, camera, when_start, when_end, reason=reason, by=by)
        _audit(store, Action.HOLD_PLACE, hold)
    finally:
        store.close()
    said = f"hold {hold.id} placed on {escape(hold.camera)}: {_span(hold)} ({escape(hold.reason)})"
    err_console.print(said, soft_wrap=True)


@holds_app.command("list")
def list_(
    camera: Annotated[list[str] | None, typer.Option(help="Only this camera (repeatable).")] = None,
    released: Annotated[bool, typer.Option("--all", help="Released holds too.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many holds.")] = 100,
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List legal holds, newest first (active ones unless --all)."""
    from camsight.media import holds

    store = open_data(data, command_config(config, data), create=False)
    try:
        found, _total = holds.list_holds(
            store, cameras=camera or None, include_released=released, limit=limit
        )
    finally:
        store.close()
    if json_out:
        out_console.print_json(json.dumps([h.to_dict() for h in found]))
        return
    if not found:
        err_console.print("no holds" if released else "no active holds")
        return
    table = Table()
    for col in ("id", "camera", "footage", "event", "reason", "by", "released"):
        table.add_column(col, overflow="fold")
    for h in found:
        gone = f"{local_time(h.released_at)} by {h.released_by}" if h.released_at else ""
        add_row(table, str(h.id), h.camera, _span(h), str(h.event_id or ""), h.reason, h.created_by, gone)
    out_console.print(table)


@holds_app.command("release")
def release(
    hold_id: Annotated[int, typer.Argument(help="The hold's id (see `camsight holds list`).", min=1)],
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Release a hold: its footage goes back under the camera's normal retention."""
    from camsight.auth.audit import Action, Actor
    from camsight.media import holds

    store = open_data(data, command_config(config, data), create=False)
    try:
        hold = holds.release_hold(store, hold_id, by=Actor.cli().name)
        _audit(store, Action.HOLD_RELEASE, hold)
    finally:
        store.close()
    err_console.print(f"hold {hold.id} on {escape(hold.camera)} released ({_span(hold)})", soft_wrap=True)
