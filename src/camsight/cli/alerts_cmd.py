"""``camsight alerts``: see and drive the delivery of alerts to webhooks, MQTT and notifiers.

Examples::

    camsight alerts status
    camsight alerts deliver --wait 60
    camsight alerts retry
    camsight alerts test --camera gate
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import TextColumn
from rich.table import Table
from rich.text import Text

from camsight.cli.options import ConfigOpt, DataOpt, command_config, open_data
from camsight.cli.output import err_console, fail, out_console, progress_bar

if TYPE_CHECKING:
    from camsight.alerts.dispatcher import Dispatcher
    from camsight.alerts.outbox import SinkStats
    from camsight.config import Config
    from camsight.store.db import Store

alerts_app = typer.Typer(
    help="Deliver alerts to webhooks, MQTT and notifiers (e-mail, chat, push), and see what is queued.",
    no_args_is_help=True,
)

#: Longest sleep between passes while waiting, so the progress line stays current.
POLL_S = 1.0


def _dispatcher(store: Store, cfg: Config) -> Dispatcher:
    from camsight.alerts.dispatcher import Dispatcher
    from camsight.alerts.links import EventLinks

    # A one-off run leaves <prefix>/available to the service, and connects
    # under its own client id (<client_id>-<pid>) so it never kicks it off.
    links = EventLinks.from_config(cfg, store.root)
    return Dispatcher(store, cfg.alerts, mqtt_availability=False, links=links)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600:02d}h"


def _stats(store: Store, names: list[str]) -> dict[str, SinkStats]:
    from camsight.alerts.outbox import sink_stats

    with store.session() as session:
        return sink_stats(session, names)


def _kind(cfg: Config, name: str) -> str:
    if name == "mqtt" and cfg.alerts.mqtt is not None:
        return "mqtt"
    if any(h.name == name for h in cfg.alerts.webhooks):
        return "webhook"
    if any(n.name == name for n in cfg.alerts.notify):
        return "notify"
    return "not configured"


def _warn_orphans(stats: dict[str, SinkStats], configured: list[str]) -> None:
    for name, st in stats.items():
        if name not in configured and st.pending:
            err_console.print(
                f"warning: {st.pending} alerts are queued for sink {escape(repr(name))}, which is not in "
                "the config any more; they are not delivered",
                soft_wrap=True,
            )


@alerts_app.command("status")
def status_cmd(
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show, per sink, what is pending, delivered and failed, and the last error.

    Example: camsight alerts status --json
    """
    from camsight.store.models import utcnow

    cfg = command_config(config, data)
    names = cfg.alerts.sink_names()
    store = open_data(data, cfg, create=False)
    try:
        stats = _stats(store, names)
    finally:
        store.close()
    now = utcnow()
    if json_out:
        rows = [st.to_dict(now) | {"type": _kind(cfg, name)} for name, st in stats.items()]
        out_console.print_json(json.dumps({"sinks": rows}))
        return
    if not stats:
        err_console.print("no alert sinks configured (add alerts.webhooks, .mqtt or .notify)")
        return
    table = Table(title="Alert delivery", title_justify="left")
    for col in ("sink", "type", "pending", "delivered", "failed", "oldest pending", "next try"):
        table.add_column(col, justify="right" if col in ("pending", "delivered", "failed") else "left")
    for name, st in stats.items():
        next_try = "-"
        if st.next_attempt_at is not None:
            wait = (st.next_attempt_at - now).total_seconds()
            next_try = "now" if wait <= 0 else f"in {_age(wait)}"
        table.add_row(
            Text(name),
            _kind(cfg, name),
            str(st.pending),
            str(st.delivered),
            str(st.failed),
            _age(st.oldest_pending_age(now)),
            next_try,
        )
    out_console.print(table)
    for name, st in stats.items():
        if st.last_error and (st.pending or st.failed):
            out_console.print(Text(f"{name}: last error: {st.last_error}"), soft_wrap=True)
    if any(st.failed for st in stats.values()):
        err_console.print("failed alerts are kept; re-queue them with: camsight alerts retry")


def _deliver_loop(
    dispatcher: Dispatcher,
    store: Store,
    names: list[str],
    wait: float | None,
    remaining: Callable[[], int],
    label: str,
) -> int:
    """Deliver passes until ``remaining()`` is 0 or ``wait`` seconds passed (one pass without it)."""
    from camsight.alerts.outbox import next_due_at
    from camsight.store.models import utcnow

    end = time.monotonic() + wait if wait is not None else None
    delivered = 0
    left = remaining()
    bar = progress_bar(TextColumn("{task.fields[note]}"))
    with bar:
        task = bar.add_task(label, total=max(left, 1) if left else 1, completed=0 if left else 1, note="")
        while left:
            budget = max(0.0, end - time.monotonic()) if end is not None else None
            report = dispatcher.deliver_due(deadline_s=budget)
            delivered += report.delivered
            left = remaining()
            note = "; ".join(f"{name}: {err}" for name, err in report.errors.items())
            bar.update(task, completed=delivered, total=delivered + left, note=escape(note[:120]))
            if not left or end is None or time.monotonic() >= end:
                break
            with store.session() as session:
                dues = [d for d in (next_due_at(session, n) for n in names) if d is not None]
            pause = min([(d - utcnow()).total_seconds() for d in dues] + [POLL_S])
            time.sleep(max(0.05, min(pause, end - time.monotonic())))
    return delivered


def _undelivered_message(stats: dict[str, SinkStats], names: list[str]) -> str | None:
    """One line naming each sink with pending or failed alerts and its last error; None if all delivered."""
    parts = []
    for name in names:
        st = stats.get(name)
        if st is None or not (st.pending or st.failed):
            continue
        counts = [f"{n} {what}" for n, what in ((st.pending, "pending"), (st.failed, "failed")) if n]
        part = f"{name}: {', '.join(counts)}"
        part += f", last error: {st.last_error}" if st.last_error else " (not due yet)"
        parts.append(part)
    return "; ".join(parts) or None


@alerts_app.command("deliver")
def deliver_cmd(
    data: DataOpt = None,
    config: ConfigOpt = None,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            min=0,
            help="Keep retrying (with backoff) until everything is delivered or this many seconds passed.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Deliver the queued alerts that are due; exit 1 if some are still pending.

    Example: camsight alerts deliver --wait 60
    """
    from camsight.alerts.outbox import pending_count

    cfg = command_config(config, data)
    names = cfg.alerts.sink_names()
    store = open_data(data, cfg, create=False)
    try:
        stats = _stats(store, names)
        _warn_orphans(stats, names)
        if not names:
            err_console.print("no alert sinks configured (add alerts.webhooks, .mqtt or .notify)")
            return

        def remaining() -> int:
            with store.session() as session:
                return pending_count(session, names)

        with _dispatcher(store, cfg) as dispatcher:
            delivered = _deliver_loop(dispatcher, store, names, wait, remaining, "delivering alerts")
        stats = _stats(store, names)
    finally:
        store.close()
    problem = _undelivered_message(stats, names)
    if problem:
        hint = "pending alerts stay queued"
        if any(stats[n].failed for n in names):
            hint += "; re-queue failed ones with: camsight alerts retry"
        fail(f"not all alerts delivered (delivered {delivered} now) — {problem}; {hint}", 1)
    err_console.print(f"delivered {delivered} alerts; nothing pending")


@alerts_app.command("retry")
def retry_cmd(
    sink: Annotated[str | None, typer.Option(help="Only this sink (default: all).")] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Put alerts that were given up on (failed) back in the queue.

    Example: camsight alerts retry && camsight alerts deliver --wait 60
    """
    from camsight.alerts.outbox import retry_failed

    cfg = command_config(config, data)
    store = open_data(data, cfg, create=False)
    try:
        if sink is not None:
            known = set(cfg.alerts.sink_names()) | set(_stats(store, []))
            if sink not in known:
                fail(f"no alert sink named {sink!r} (sinks: {', '.join(sorted(known)) or 'none'})")
        with store.session() as session:
            count = retry_failed(session, sink)
    finally:
        store.close()
    err_console.print(
        f"re-queued {count} failed alerts" + ("; deliver them with: camsight alerts deliver" if count else "")
    )


@alerts_app.command("test")
def send_test_cmd(
    camera: Annotated[str, typer.Option(help="Camera name the test alert carries.")] = "test",
    data: DataOpt = None,
    config: ConfigOpt = None,
    wait: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to keep retrying before giving up.")
    ] = 15.0,
) -> None:
    """Send a test alert (type "test") to every configured sink and report each one.

    The alert is queued like any other: a sink with older alerts pending
    delivers those first. Example: camsight alerts test --camera gate
    """
    from sqlalchemy import select

    from camsight.alerts.outbox import DELIVERED, enqueue, make_test_payload, pending_count
    from camsight.store.models import OutboxRow

    cfg = command_config(config, data)
    names = cfg.alerts.sink_names()
    if not names:
        fail("no alert sinks configured: add alerts.webhooks, alerts.mqtt or alerts.notify to the config")
    store = open_data(data, cfg, create=True)
    try:
        with _dispatcher(store, cfg) as dispatcher:
            payload = make_test_payload(camera)
            uid = payload["uid"]
            with store.session() as session:
                enqueue(session, cfg.alerts, payload, sinks=names)

            def remaining() -> int:
                with store.session() as session:
                    return pending_count(session, names, event_uid=uid)

            _deliver_loop(dispatcher, store, names, wait, remaining, "sending a test alert")
        with store.session() as session:
            rows = session.execute(select(OutboxRow.sink, OutboxRow.status).where(OutboxRow.event_uid == uid))
            status = {sink: state for sink, state in rows}
        stats = _stats(store, names)
    finally:
        store.close()
    for name in names:
        mark = "[green]delivered[/]" if status.get(name) == DELIVERED else f"[red]{status.get(name)}[/]"
        err_console.print(f"{escape(name)} ({_kind(cfg, name)}): {mark}")
    missing = [n for n in names if status.get(n) != DELIVERED]
    if missing:
        parts = []
        for name in missing:
            st = stats[name]
            parts.append(f"{name}: {st.last_error or 'queued behind older alerts'}")
        fail(f"test alert not delivered — {'; '.join(parts)} (it stays queued)", 1)
