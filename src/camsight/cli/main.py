"""``camsight``: index recorded footage and inspect what was found."""

from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import asdict, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from camsight.cli.accounts_cmd import audit_app, tokens_app, users_app
from camsight.cli.alerts_cmd import alerts_app
from camsight.cli.clip_cmd import clip
from camsight.cli.models_cmd import models_app
from camsight.cli.options import ConfigOpt, DataOpt, command_config, duration_option, when_option
from camsight.cli.output import err_console, fail, out_console, print_error, progress_bar
from camsight.errors import CamsightError, SourceError
from camsight.logs import setup_logging

if TYPE_CHECKING:
    from camsight.config import Config

app = typer.Typer(
    help="camsight: find, follow and search people and vehicles in your camera footage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect and check configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(models_app, name="models")
app.add_typer(alerts_app, name="alerts")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
app.command("clip")(clip)


class DetectorChoice(StrEnum):
    ssd = "ssd"
    yolox = "yolox"


def _open(data: Path | None, config: Config, *, create: bool = True):  # noqa: ANN202
    """The store in ``--data``, else the data folder the config chose (see :func:`command_config`)."""
    from camsight.store.db import open_store

    return open_store(data or config.data_dir, create=create)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details to stderr.")] = False,
) -> None:
    setup_logging(verbose)


@app.command()
def index(
    # readable=False: click's own check made an unreadable file a usage error (a box, no `error:`
    # line, the other files not indexed); VideoFile reports it like any other unusable file.
    paths: Annotated[
        list[Path], typer.Argument(help="Video files to index.", show_default=False, readable=False)
    ],
    camera: Annotated[str | None, typer.Option(help="Camera name (default: each file's name).")] = None,
    fps: Annotated[
        str | None,
        typer.Option(help="Analysis rate: frames per second, or 'native' for every frame [default: 5]."),
    ] = None,
    detector: Annotated[
        DetectorChoice | None, typer.Option(help="Detector backend [default: yolox].")
    ] = None,
    model: Annotated[Path | None, typer.Option(help="Model file for the detector.")] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
    start: Annotated[float, typer.Option(min=0, help="Start this many seconds into each file.")] = 0.0,
    end: Annotated[float | None, typer.Option(min=0, help="Stop this many seconds into each file.")] = None,
    recorded_at: Annotated[
        str | None,
        typer.Option(
            "--recorded-at",
            help="When the recording started (ISO, local time); default: the file's "
            "creation_time tag, else its modification time minus its length.",
        ),
    ] = None,
    embeddings: Annotated[
        str | None,
        typer.Option(
            help="Also embed crops with this installed vision-language model (see `camsight models`)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Index again even if already indexed.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Index video files: detect, track and store every person and vehicle.

    Example: camsight index lobby.mp4 --camera lobby --fps 5
    """
    from camsight.pipeline.indexer import Indexer, IndexResult, IndexSettings
    from camsight.sources.video_file import parse_fps

    cfg = command_config(config, data)
    overrides: dict = {}
    if fps is not None:
        parsed = parse_fps(fps)
        overrides["index"] = cfg.index.model_copy(update={"fps": parsed or "native"})
    det_update: dict = {}
    if detector is not None:
        det_update["backend"] = detector.value
    if model is not None:
        det_update["model"] = model
    if det_update:
        overrides["detector"] = cfg.detector.model_copy(update=det_update)
    if embeddings is not None:
        overrides["embeddings"] = cfg.embeddings.model_copy(update={"model": embeddings})
    # model_copy skips validation: re-validate so option values meet the
    # same bounds as config values (e.g. --fps at most 240).
    from camsight.config import validate_config

    cfg = validate_config(
        {**cfg.model_dump(), **{k: v.model_dump() for k, v in overrides.items()}}, "options"
    )
    if end is not None and end <= start:
        fail(f"--end ({end}) must be after --start ({start})")
    settings = replace(IndexSettings.from_config(cfg), start=start, end=end)
    when = when_option(recorded_at, "--recorded-at")
    # A mistyped path is the first thing to hear about, before a model is looked for or loaded
    # (with a broken model as well, the user would otherwise fix that first and only then learn
    # that the file was never there), and before any file is indexed.
    missing = [p for p in paths if not p.exists()]
    if missing:
        others = ", ".join(p.name for p in missing[1:4])
        more = f" (and {len(missing) - 1} more: {others})" if missing[1:] else ""
        raise SourceError(f"{missing[0]}: no such file{more}")
    store = _open(data, cfg)
    indexer = Indexer(store, settings, config=cfg)
    dispatcher = None
    try:
        # Load the model before touching any file, so a missing or broken
        # model is one clear error rather than one failure per file.
        indexer.load_models()
        if cfg.alerts.sink_names():
            from camsight.alerts.dispatcher import Dispatcher

            # Built now so a missing secret is an error before any work.
            dispatcher = Dispatcher(store, cfg.alerts, mqtt_availability=False)
    except CamsightError:
        store.close()
        raise
    results: list[IndexResult] = []
    failures: list[str] = []
    interrupted = False
    with progress_bar() as bar:
        for path in paths:
            task = bar.add_task(escape(path.name), total=None, frames=0)

            def report(t: float, total: float | None, frames: int, task=task) -> None:  # noqa: ANN001
                bar.update(task, completed=t, total=total, frames=frames)

            try:
                result = indexer.index(path, camera, force=force, recorded_at=when, progress=report)
            except CamsightError as exc:
                failures.append(str(exc))
                bar.update(task, description=f"[red]{escape(path.name)} (failed)")
                bar.stop_task(task)
                continue
            except KeyboardInterrupt:
                interrupted = True
                bar.stop_task(task)
                break
            if result.status != "skipped":
                bar.update(task, completed=result.video_seconds, total=result.video_seconds)
            else:
                bar.update(task, total=1, completed=1, description=f"{escape(path.name)} (skipped)")
            results.append(result)
    if dispatcher is not None and not interrupted and any(r.events for r in results):
        _deliver_after_index(dispatcher)
    if dispatcher is not None:
        dispatcher.close()
    store.close()
    if json_out:
        out_console.print_json(json.dumps([asdict(r) | {"speed": r.speed} for r in results]))
    else:
        _print_summary(results)
    for r in results:
        if r.message and r.status == "damaged":
            print_error(r.message)
        # A rule that failed was suspended and the file indexed without it: said, but not a failure.
        for warning in r.warnings:
            err_console.print(
                f"[yellow]warning:[/] {escape(Path(r.path).name)}: {escape(warning)}", soft_wrap=True
            )
    for message in failures:
        print_error(message)
    if interrupted:
        err_console.print("interrupted: what was finished is stored; run the same command again to finish")
        raise SystemExit(130)
    if failures or any(r.status == "damaged" for r in results):
        raise SystemExit(1)


#: Seconds `camsight index` spends delivering the alerts it raised before it leaves them to the outbox.
DELIVER_AFTER_INDEX = 15.0


def _deliver_after_index(dispatcher) -> None:  # noqa: ANN001
    """Send the new alerts now; whatever cannot go stays in the outbox for `camsight alerts deliver`."""
    report = dispatcher.deliver_due(deadline_s=DELIVER_AFTER_INDEX)
    if report.delivered:
        err_console.print(f"alerts: delivered {report.delivered}")
    for sink, error in report.errors.items():
        err_console.print(
            f"[yellow]warning:[/] alerts for {escape(sink)} are waiting in the outbox ({escape(error)}); "
            "they are sent by `camsight alerts deliver` or the next run"
        )


def _add_row(table: Table, *cells: str) -> None:
    """Add cells as plain text: names come from users and files, not markup."""
    table.add_row(*(Text(c) for c in cells))


def _print_summary(results) -> None:  # noqa: ANN001
    if not results:
        return
    table = Table(title="Indexed", title_justify="left")
    for col in ("file", "camera", "status", "video", "analysed", "detected", "tracks", "events", "speed"):
        numeric = col in ("video", "analysed", "detected", "speed")
        table.add_column(col, justify="right" if numeric else "left")
    for r in results:
        tracks = ", ".join(f"{n} {label}" for label, n in sorted(r.tracks.items())) or "-"
        events = ", ".join(f"{n} {kind}" for kind, n in sorted(r.events.items())) or "-"
        _add_row(
            table,
            Path(r.path).name,
            r.camera,
            r.status if not r.message or r.status != "skipped" else r.message,
            f"{r.video_seconds:.1f}s" if r.status != "skipped" else "-",
            str(r.frames_analysed) if r.status != "skipped" else "-",
            str(r.frames_detected) if r.status != "skipped" else "-",
            tracks if r.status != "skipped" else "-",
            events if r.status != "skipped" else "-",
            f"{r.speed:.1f}x" if r.status != "skipped" else "-",
        )
    out_console.print(table)


@app.command()
def tracks(
    camera: Annotated[str | None, typer.Option(help="Only this camera.")] = None,
    label: Annotated[str | None, typer.Option("--class", help="Only this class, e.g. person.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many tracks.")] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List stored tracks.

    Example: camsight tracks --camera lobby --json
    """
    from camsight.store.repository import list_tracks

    store = _open(data, command_config(config, data), create=False)
    rows = list_tracks(store, camera=camera, label=label, limit=limit)
    store.close()
    if json_out:
        out_console.print_json(json.dumps([asdict(r) for r in rows]))
        return
    if not rows:
        err_console.print("no tracks stored" + (f" for camera {camera!r}" if camera else ""))
        return
    table = Table()
    for col in ("id", "camera", "class", "start", "end", "frames", "heading", "speed px/s", "carried"):
        table.add_column(col)
    for r in rows:
        carried = ", ".join(sorted(r.carried)) or ("by #" + str(r.carrier_track) if r.carrier_track else "")
        _add_row(
            table,
            str(r.id),
            r.camera,
            r.label,
            f"{r.start:.1f}s",
            f"{r.end:.1f}s",
            f"{r.first_frame}-{r.last_frame}",
            r.heading,
            f"{r.speed_px_s:.0f}",
            carried,
        )
    out_console.print(table)


@app.command("export-mot")
def export_mot(
    out: Annotated[Path, typer.Argument(help="Output text file (MOT15 format).", show_default=False)],
    camera: Annotated[str, typer.Option(help="Camera whose video to export.", show_default=False)],
    source: Annotated[
        str | None, typer.Option(help="The video's file name or path, when the camera has several.")
    ] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write the person tracks of an indexed video in MOT15 format.

    Rows are frame,id,left,top,width,height,conf,-1,-1,-1; frame 1 is the
    first decoded frame. Example: camsight export-mot --camera pets pets.txt
    """
    from camsight.store.repository import mot_rows

    store = _open(data, command_config(config, data), create=False)
    rows = list(mot_rows(store, camera, source))
    store.close()
    tmp = out.with_name(out.name + ".partial")
    try:
        with tmp.open("w", newline="") as fh:
            writer = csv.writer(fh)
            for frame, tid, left, top, w, h, conf in rows:
                writer.writerow(
                    [
                        frame,
                        tid,
                        f"{left:.2f}",
                        f"{top:.2f}",
                        f"{w:.2f}",
                        f"{h:.2f}",
                        f"{conf:.4f}",
                        -1,
                        -1,
                        -1,
                    ]
                )
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(f"cannot write {out}: {exc.strerror}")
    err_console.print(f"wrote {len(rows)} rows to {out}")


@app.command()
def search(
    query: Annotated[
        str | None, typer.Argument(help="What to look for, in plain words.", show_default=False)
    ] = None,
    like: Annotated[
        int | None, typer.Option("--like", help="Find tracks that look like this track id.")
    ] = None,
    camera: Annotated[list[str] | None, typer.Option(help="Only this camera (repeatable).")] = None,
    since: Annotated[str | None, typer.Option(help="Only after this time (ISO, local time).")] = None,
    until: Annotated[str | None, typer.Option(help="Only before this time (ISO, local time).")] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--class",
            help="Only this class: person, car, van, bus, motorcycle, bicycle, vehicle (repeatable).",
        ),
    ] = None,
    same_camera: Annotated[bool, typer.Option(help="With --like: only the same camera.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many results.")] = 20,
    embeddings: Annotated[
        str | None, typer.Option(help="Fuse visual similarity from this installed vision-language model.")
    ] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the hits as a JSON list.")] = False,
) -> None:
    """Search indexed footage by description, best match first, each with why it matched.

    Examples: camsight search "woman wearing a red hat";
    camsight search "white van" --since 2026-11-20T18:00; camsight search --like 42
    """
    from camsight.search.engine import SearchEngine

    if (query is None) == (like is None):
        fail("give either a QUERY or --like TRACK_ID (not both)")
    when_from, when_to = when_option(since, "--since"), when_option(until, "--until")
    cfg = command_config(config, data)
    encoder = None
    model = embeddings or cfg.embeddings.model
    if model:
        from camsight.search.embeddings import load_encoder

        encoder = load_encoder(model)
    store = _open(data, cfg, create=False)
    engine = SearchEngine(store, encoder=encoder, embedding_weight=cfg.embeddings.weight)
    try:
        if like is not None:
            result = engine.more_like(like, same_camera=same_camera, limit=limit)
        else:
            assert query is not None
            result = engine.search(
                query, cameras=camera or (), since=when_from, until=when_to, classes=label or (), limit=limit
            )
    finally:
        store.close()
    err_console.print(f"[bold]looking for:[/] {escape(result.interpretation)}", soft_wrap=True)
    for note in result.notes:
        err_console.print(f"[dim]{escape(note)}[/]", soft_wrap=True)
    if json_out:
        out_console.print_json(json.dumps([h.to_dict() for h in result.hits]))
        return
    if not result.hits:
        err_console.print("no matching tracks")
        return
    table = Table(show_lines=False)
    for col in ("#", "track", "camera", "class", "time", "match", "score", "why"):
        table.add_column(col)
    for rank, h in enumerate(result.hits, 1):
        span = f"{h.start:.1f}-{h.end:.1f}s" if isinstance(h.start, float) else f"{h.start} - {h.end}"
        why = (
            ", ".join(f"{e['term']} {e['score']:.2f} {'✓' if e['matched'] else '✗'}" for e in h.explanation)
            or "-"
        )
        _add_row(table, str(rank), str(h.track_id), h.camera, h.label, span, h.match, f"{h.score:.2f}", why)
    out_console.print(table)
    err_console.print(
        f"{len(result.hits)} shown of {result.candidates} candidates, {result.full_matches} full matches; "
        "thumbnails: camsight search ... --json"
    )


@config_app.command("check")
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

    if path is not None:
        load_config(path)
        out_console.print(f"config OK ({escape(str(path))})")
        return
    choice = choose_config(None, data)
    where = str(choice.path) if choice.found else f"built-in defaults; none at {choice.path}"
    out_console.print(f"config OK ({escape(where)})")
    out_console.print_json(choice.config.model_dump_json())


def run() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit."""
    try:
        app()
    except CamsightError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug, or a failure nobody foresaw: the details to a file, a sentence here
        import tempfile
        import traceback

        fd, path = tempfile.mkstemp(prefix="camsight-error-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            traceback.print_exc(file=fh)
        fail(f"internal error ({type(exc).__name__}: {exc}); the details are in {path}", 1)


if __name__ == "__main__":
    run()


def _local(when: datetime | None) -> str:
    from camsight.timeutil import aware

    when = aware(when)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if when is not None else "-"


@app.command()
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
    store = _open(data, command_config(config, data), create=False)
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
        start = _local(r.start_at) if r.start_at else f"{r.start_t:.1f}s"
        _add_row(
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


@app.command()
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
    store = _open(data, command_config(config, data), create=False)
    try:
        fresh = acknowledge(store, event_ids, who)
    finally:
        store.close()
    already = len(event_ids) - len(fresh)
    err_console.print(
        f"acknowledged {len(fresh)} event(s)" + (f"; {already} already acknowledged" if already else "")
    )


@app.command()
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
    store = _open(data, command_config(config, data), create=False)
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
        _add_row(table, b.camera, b.line, _local(b.start) if b.start else "all", str(b.ins), str(b.outs))
    out_console.print(table)


@app.command("run")
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
    service = Service.open(
        cfg, choice.data_dir, config_path=choice.path, only=list(only) if only else None, web=web
    )
    for name in service.live:
        err_console.print(f"camera {escape(name)}: {escape(redact_url(cfg.cameras[name].url or ''))}")
    err_console.print(f"data in {escape(str(service.store.root))}")
    err_console.print(f"config: {escape(str(choice.path))}")
    service.serve(host, port, say=lambda line: err_console.print(escape(line), soft_wrap=True))
    err_console.print("stopped")


@app.command()
def cameras(
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each camera's health: connected, frames in and analysed per second, lag, last frame, errors."""
    from camsight.service.supervisor import camera_status

    store = _open(data, command_config(config, data), create=False)
    try:
        rows = camera_status(store)
    finally:
        store.close()
    items = []
    for name, st in rows:
        items.append(
            {
                "camera": name,
                "state": st.state if st else "never run",
                "fps_in": round(st.fps_in, 2) if st else None,
                "fps_analysed": round(st.fps_analysed, 2) if st else None,
                "lag_seconds": round(st.lag_seconds, 2) if st else None,
                "last_frame_at": st.last_frame_at.isoformat() if st and st.last_frame_at else None,
                "reconnects": st.reconnects if st else None,
                "error": st.error if st else None,
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
        _add_row(
            table,
            it["camera"],
            it["state"],
            str(it["fps_in"] or "-"),
            str(it["fps_analysed"] or "-"),
            f"{it['lag_seconds']}s" if it["lag_seconds"] is not None else "-",
            _local(datetime.fromisoformat(it["last_frame_at"])) if it["last_frame_at"] else "-",
            str(it["reconnects"] if it["reconnects"] is not None else "-"),
            it["error"] or "",
        )
    out_console.print(table)


@app.command()
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
