"""``camsight run``, ``cameras``, ``doctor`` and ``config check``: the service and its health."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from camsight.cli.options import ConfigOpt, DataOpt, command_config, open_data
from camsight.cli.output import add_row, err_console, fail, local_time, out_console

if TYPE_CHECKING:
    pass


def run_service(
    camera: Annotated[
        list[str] | None,
        typer.Option(
            "--camera",
            help="Add a camera as NAME=URL (rtsp://, http(s)://, a file or a folder); repeatable. "
            "It records continuously unless the config has a block for it. Cameras in the config run too.",
        ),
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option(help="Run only this configured camera (repeatable).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the API.")] = 8080,
    web: Annotated[bool, typer.Option(help="Serve the HTTP API (behind accounts).")] = True,
    node: Annotated[
        str | None,
        typer.Option(
            "--node",
            help="Run as node NAME of several sharing one database (store.url): only cameras whose "
            "`node:` is NAME run here; needs CAMSIGHT_NODE_SECRET or nodes.secret_file. See docs/scaling.md.",
            show_default=False,
        ),
    ] = None,
    node_url: Annotated[
        str | None,
        typer.Option(
            "--node-url",
            help="URL the other nodes reach this node's API at (default: http://HOST:PORT; "
            "give it when listening on 0.0.0.0).",
            show_default=False,
        ),
    ] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run the service: analyse and record every camera, and serve the HTTP API, until Ctrl-C.

    The config comes from --config, else CAMSIGHT_CONFIG, else config.yaml in the
    data folder (when it exists). Camera changes made in the web app are saved to
    that same file (created on the first change) and applied at once. Cameras
    given with --camera run for this start only, until they are edited in the
    web app: the edit saves them, as they run, into the file.

    Example: camsight run --camera lobby=rtsp://10.0.0.5/stream1
    """
    from camsight.app import Service, with_quick_start_cameras
    from camsight.config import choose_config
    from camsight.urls import redact_url

    # The same rule as every other command; the file is where web app edits are saved (created on
    # the first edit when it does not exist yet).
    choice = choose_config(config, data)
    quick: dict[str, str] = {}
    for item in camera or ():
        name, sep, url = item.partition("=")
        if not sep or not name.strip() or not url.strip():
            fail(f"--camera must be NAME=URL, got {item!r}")
        quick[name.strip()] = url.strip()
    cfg = with_quick_start_cameras(choice.config, quick)
    if node is not None:
        node_url = _node_url(node, node_url, host, port, web)
    service = Service.open(
        cfg,
        choice.data_dir,
        config_path=choice.path,
        only=list(only) if only else None,
        web=web,
        quick_cameras=quick,
        node=node,
        node_url=node_url,
    )
    for name in service.live:
        err_console.print(f"camera {escape(name)}: {escape(redact_url(cfg.cameras[name].url or ''))}")
    err_console.print(f"data in {escape(str(service.store.root))}")
    if node is not None:
        err_console.print(f"node {escape(node)}, reached by the other nodes at {escape(node_url or '')}")
    err_console.print(f"config: {escape(str(choice.path))}")
    service.serve(host, port, say=lambda line: err_console.print(escape(line), soft_wrap=True))
    err_console.print("stopped")


def _node_url(node: str, node_url: str | None, host: str, port: int, web: bool) -> str:
    """Check ``--node`` and the URL the other nodes will use; a bad one is one ``error:`` line."""
    from urllib.parse import urlsplit

    from camsight.config.nodes import check_node_name

    try:
        check_node_name(node)
    except ValueError as exc:
        fail(f"--node: {exc}")
    if not web:
        fail("--node needs the API (--web): the other nodes fetch this node's footage through it")
    if node_url is None:
        if host in ("0.0.0.0", "::", ""):
            fail("--node-url is needed when listening on all addresses: give the URL the other nodes use")
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"
    parts = urlsplit(node_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"--node-url must be an http(s) URL such as http://10.0.0.2:8080, got {node_url!r}")
    return node_url.rstrip("/")


def cameras(
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each camera's health: connected, frames in and analysed per second, lag, last frame, errors."""
    from camsight.config.nodes import unassigned_warning
    from camsight.store.repository import camera_status

    cfg = command_config(config, data)
    store = open_data(data, cfg, create=False)
    try:
        rows = camera_status(store)
    finally:
        store.close()
    # With nodes in use, a camera no node runs says so (it may never have been in the store at all).
    unassigned = cfg.unassigned_cameras()
    known = {name for name, _ in rows}
    rows += [(name, None) for name in unassigned if name not in known]
    items = []
    for name, st in rows:
        nobody = st is None and name in unassigned
        items.append(
            {
                "camera": name,
                "state": st.state if st else "not assigned" if nobody else "never run",
                "fps_in": round(st.fps_in, 2) if st else None,
                "fps_analysed": round(st.fps_analysed, 2) if st else None,
                "lag_seconds": round(st.lag_seconds, 2) if st else None,
                "last_frame_at": st.last_frame_at.isoformat() if st and st.last_frame_at else None,
                "reconnects": st.reconnects if st else None,
                "error": st.error if st else unassigned_warning([name]) if nobody else None,
                "details": st.details if st else {},
                "updated_at": st.updated_at.isoformat() if st else None,
            }
        )
    if json_out:
        out_console.print_json(json.dumps(items))
        return
    if not items:
        err_console.print("no cameras yet")
        return
    table = Table()
    for col in ("camera", "state", "fps in", "analysed", "lag", "last frame", "reconnects", "error"):
        table.add_column(col, overflow="fold")
    for it in items:
        add_row(
            table,
            it["camera"],
            it["state"],
            str(it["fps_in"] or "-"),
            str(it["fps_analysed"] or "-"),
            f"{it['lag_seconds']}s" if it["lag_seconds"] is not None else "-",
            local_time(datetime.fromisoformat(it["last_frame_at"])) if it["last_frame_at"] else "-",
            str(it["reconnects"] if it["reconnects"] is not None else "-"),
            it["error"] or "",
        )
    out_console.print(table)


def nodes(
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The nodes sharing this database (camsight run --node): up, down or stopped, their cameras.

    Example: camsight nodes --config /etc/camsight/config.yaml
    """
    from camsight.store.nodes import node_states

    cfg = command_config(config, data)
    store = open_data(data, cfg, create=False)
    try:
        items = [n.as_dict() for n in node_states(store, cfg.nodes.down_after_seconds)]
    finally:
        store.close()
    if json_out:
        out_console.print_json(json.dumps(items))
        return
    if not items:
        err_console.print("no nodes: this database is used by one box (camsight run without --node)")
        return
    table = Table()
    for col in ("node", "state", "url", "host", "last seen", "cameras"):
        table.add_column(col, overflow="fold")
    for it in items:
        seen = f"{it['seconds_since_seen']} s ago"
        add_row(table, it["name"], it["state"], it["url"], it["host"], seen, ", ".join(it["cameras"]))
    out_console.print(table)


def doctor(
    data: DataOpt = None,
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Address `camsight run` will listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port `camsight run` will use.")] = 8080,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check this install: packages, config, models and checksums, video, data folder, database, port.

    Prints what to fix and exits non-zero when something is broken.

    Example: camsight doctor --port 8080
    """
    from camsight.config import choose_config
    from camsight.service.doctor import run_checks

    choice = choose_config(config, data)
    checks = run_checks(choice, host=host, port=port)
    failed = [c for c in checks if c.status == "fail"]
    if json_out:
        out_console.print_json(json.dumps([asdict(c) for c in checks]))
    else:
        marks = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}
        for c in checks:
            out_console.print(f"{marks[c.status]:>4} {escape(c.name)}: {escape(c.detail)}", soft_wrap=True)
            if c.fix:
                out_console.print(f"     fix: {escape(c.fix)}", soft_wrap=True)
        warned = sum(c.status == "warn" for c in checks)
        summary = f"{len(failed)} problem(s), {warned} warning(s)" if failed or warned else "all good"
        err_console.print(f"doctor: {summary}")
    if failed:
        raise SystemExit(1)


def config_check(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="Config file (default: CAMSIGHT_CONFIG, else config.yaml in the data folder).",
            show_default=False,
        ),
    ] = None,
    data: DataOpt = None,
) -> None:
    """Validate a config file; errors name the file, line and key.

    Without a file it checks the config every command would use, and prints it.
    """
    from camsight.config import choose_config, load_config
    from camsight.config.nodes import unassigned_warning

    if path is not None:
        checked = load_config(path)
        out_console.print(f"config OK ({escape(str(path))})")
    else:
        choice = choose_config(None, data)
        checked = choice.config
        where = str(choice.path) if choice.found else f"built-in defaults; none at {choice.path}"
        out_console.print(f"config OK ({escape(where)})")
        out_console.print_json(checked.model_dump_json())
    # Valid, but a camera would run nowhere: said, not refused (a node may be added later).
    if nobody := checked.unassigned_cameras():
        err_console.print(f"warning: {escape(unassigned_warning(nobody))}", soft_wrap=True)
