"""``camsight events``, ``ack`` and ``counts``: behaviour events and line-crossing counts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from camsight.cli.options import ConfigOpt, DataOpt, command_config, duration_option, open_data, when_option
from camsight.cli.output import add_row, err_console, fail, local_time, out_console

if TYPE_CHECKING:
    pass


def events(
    camera: Annotated[list[str] | None, typer.Option(help="Only this camera (repeatable).")] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only this event type, e.g. fall, crowd, zone_intrusion (repeatable)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only events after this time (ISO, local time) or this long ago (2h).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only events before this time.")] = None,
    unacknowledged: Annotated[bool, typer.Option(help="Only events nobody acknowledged yet.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many events.")] = 100,
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List events raised by behaviour rules, newest first.

    Example: camsight events --camera lobby --type fall --since 24h
    """
    from camsight.config import DEFAULT_SEVERITY
    from camsight.store.events import event_payload, list_events

    unknown = sorted(set(kind or ()) - set(DEFAULT_SEVERITY))
    if unknown:
        fail(f"unknown event type {unknown[0]!r}; types: {', '.join(sorted(DEFAULT_SEVERITY))}")
    when_from, when_to = when_option(since, "--since"), when_option(until, "--until")
    store = open_data(data, command_config(config, data), create=False)
    try:
        found = list_events(
            store,
            cameras=camera or (),
            types=kind or (),
            since=when_from,
            until=when_to,
            unacknowledged=unacknowledged,
            limit=limit,
        )
    finally:
        store.close()
    if json_out:
        rows = []
        for v in found:
            item = event_payload(v.row, v.camera, "start" if v.row.state == "open" else "end", v.source)
            item.pop("kind")
            item["track_ids"] = v.track_ids
            item["acknowledged_at"] = v.row.acknowledged_at.isoformat() if v.row.acknowledged_at else None
            item["acknowledged_by"] = v.row.acknowledged_by
            item["snapshot_path"] = str(store.media / v.row.snapshot) if v.row.snapshot else None
            rows.append(item)
        out_console.print_json(json.dumps(rows))
        return
    if not found:
        err_console.print("no events" + (" matching the filters" if camera or kind or since or until else ""))
        return
    table = Table()
    for col in ("id", "camera", "type", "severity", "start", "length", "summary", "tracks", "ack"):
        table.add_column(col, overflow="fold")
    for v in found:
        r = v.row
        length = f"{r.end_t - r.start_t:.1f}s" if r.end_t is not None else "open"
        start = local_time(r.start_at) if r.start_at else f"{r.start_t:.1f}s"
        add_row(
            table,
            str(r.id),
            v.camera,
            r.type,
            r.severity,
            start,
            length,
            r.summary,
            ", ".join(str(i) for i in v.track_ids) or "-",
            r.acknowledged_by or "",
        )
    out_console.print(table)


def ack(
    event_ids: Annotated[
        list[int], typer.Argument(help="Event ids (see `camsight events`).", show_default=False)
    ],
    by: Annotated[str | None, typer.Option(help="Who acknowledges (default: your user name).")] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Acknowledge events: someone has looked at them.

    Example: camsight ack 12 13 --by alice
    """
    import getpass

    from camsight.store.events import acknowledge

    who = (by or getpass.getuser()).strip()
    if not who or len(who) > 128:
        fail("--by must be a name of 1 to 128 characters")
    store = open_data(data, command_config(config, data), create=False)
    try:
        fresh = acknowledge(store, event_ids, who)
    finally:
        store.close()
    already = len(event_ids) - len(fresh)
    err_console.print(
        f"acknowledged {len(fresh)} event(s)" + (f"; {already} already acknowledged" if already else "")
    )


def counts(
    camera: Annotated[list[str] | None, typer.Option(help="Only this camera (repeatable).")] = None,
    line: Annotated[list[str] | None, typer.Option(help="Only this line (repeatable).")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only after this time (ISO) or this long ago (2h).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only before this time.")] = None,
    every: Annotated[str | None, typer.Option(help="Count per period, e.g. 15m or 1h.")] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """In/out counts of line crossings (rules of type line_crossing).

    Example: camsight counts --camera gate --every 1h --since 24h
    """
    from camsight.store.events import line_counts

    period = duration_option(every, "--every") if every else None
    store = open_data(data, command_config(config, data), create=False)
    try:
        buckets = line_counts(
            store,
            cameras=camera or (),
            lines=line or (),
            since=when_option(since, "--since"),
            until=when_option(until, "--until"),
            every=period,
        )
    finally:
        store.close()
    if json_out:
        out_console.print_json(
            json.dumps(
                [
                    {
                        "camera": b.camera,
                        "line": b.line,
                        "start": b.start.isoformat() if b.start else None,
                        "in": b.ins,
                        "out": b.outs,
                    }
                    for b in buckets
                ]
            )
        )
        return
    if not buckets:
        err_console.print("no line crossings stored")
        return
    table = Table()
    for col in ("camera", "line", "from", "in", "out"):
        table.add_column(col, justify="right" if col in ("in", "out") else "left")
    for b in buckets:
        add_row(table, b.camera, b.line, local_time(b.start) if b.start else "all", str(b.ins), str(b.outs))
    out_console.print(table)
