"""``camsight index``, ``tracks`` and ``export-mot``: analyse recorded files and list what was found."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from camsight.cli.options import ConfigOpt, DataOpt, command_config, open_data, when_option
from camsight.cli.output import add_row, err_console, fail, out_console, print_error, progress_bar
from camsight.errors import CamsightError, SourceError

if TYPE_CHECKING:
    pass


class DetectorChoice(StrEnum):
    ssd = "ssd"
    yolox = "yolox"


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
    cluster: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Run on the Ray cluster whose head is at ADDRESS (host:port); needs "
            "`bash scripts/setup.sh --cluster`. See docs/cluster.md.",
        ),
    ] = None,
    chunk_seconds: Annotated[
        float | None,
        typer.Option(
            min=10,
            help="With --cluster: cut files into chunks of about this many seconds [default: 300].",
        ),
    ] = None,
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
    if chunk_seconds is not None and cluster is None:
        fail("--chunk-seconds needs --cluster")
    if cluster is not None:
        from camsight.cli.cluster_index import index_on_cluster
        from camsight.pipeline.chunks import CHUNK_SECONDS

        index_on_cluster(
            cluster,
            paths,
            camera=camera,
            settings=settings,
            config=cfg,
            data=data,
            chunk_seconds=chunk_seconds or CHUNK_SECONDS,
            force=force,
            recorded_at=when,
            json_out=json_out,
        )
        return
    store = open_data(data, cfg)
    indexer = Indexer(store, settings, config=cfg)
    dispatcher = None
    try:
        # Load the model before touching any file, so a missing or broken
        # model is one clear error rather than one failure per file.
        indexer.load_models()
        if cfg.alerts.sink_names():
            from camsight.alerts.dispatcher import Dispatcher
            from camsight.alerts.links import EventLinks

            # Built now so a missing secret is an error before any work.
            links = EventLinks.from_config(cfg, store.root)
            dispatcher = Dispatcher(store, cfg.alerts, mqtt_availability=False, links=links)
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
    report_results(
        results,
        json_out,
        failures,
        "interrupted: what was finished is stored; run the same command again to finish"
        if interrupted
        else None,
    )


def report_results(results, json_out: bool, failures: list[str], interrupted: str | None) -> None:  # noqa: ANN001
    """Print what indexing did (a summary, or ``--json``), each file's warnings and the failures;
    exit 130 when ``interrupted`` (the sentence saying so), 1 when a file failed or was damaged."""
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
        err_console.print(interrupted)
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
        add_row(
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

    store = open_data(data, command_config(config, data), create=False)
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
        add_row(
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

    store = open_data(data, command_config(config, data), create=False)
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
