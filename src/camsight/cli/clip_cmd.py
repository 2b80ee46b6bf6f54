"""``camsight clip``: export recorded footage of a camera as one MP4.

Examples::

    camsight clip --camera gate --start 2026-11-20T18:00 --end 2026-11-20T18:05 gate.mp4
    camsight clip --camera gate --start 2026-11-20T18:00+01:00 --end 2026-11-20T18:01+01:00 out.mp4 --redact
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from camsight.cli.options import ConfigOpt, DataOpt, command_config, when_option
from camsight.cli.output import err_console, fail, local_time, progress_bar

if TYPE_CHECKING:
    from camsight.media.clip import ClipResult
    from camsight.store.db import Store


def clip(
    camera: Annotated[str, typer.Option(help="Camera whose recordings to export.", show_default=False)],
    start: Annotated[
        str, typer.Option(help="Start time: ISO, local time unless it has an offset.", show_default=False)
    ],
    end: Annotated[
        str, typer.Option(help="End time: ISO, local time unless it has an offset.", show_default=False)
    ],
    out: Annotated[
        Path, typer.Argument(help="The MP4 file to write.", metavar="OUT.mp4", show_default=False)
    ],
    redact: Annotated[
        bool, typer.Option("--redact", help="Blur every person (runs the configured detector).")
    ] = False,
    data: DataOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Export a camera's recorded footage from START to END as an MP4 that plays in a browser.

    The camera's privacy masks (from the config) are blacked out. Without
    masks or --redact the video is copied as recorded, starting at the
    keyframe just before START.

    Example: camsight clip --camera gate --start 2026-11-20T18:00 --end 2026-11-20T18:05 gate.mp4
    """
    # Imported here: main.py imports this module to register the command.
    from camsight.media.clip import export_clip, recording_mask
    from camsight.paths import recordings_dir
    from camsight.store.db import open_store, url_for

    when_start, when_end = when_option(start, "--start"), when_option(end, "--end")
    assert when_start is not None and when_end is not None
    if when_end <= when_start:
        fail(f"--end ({end}) must be after --start ({start})")
    cfg = command_config(config, data)
    store = open_store(data or cfg.data_dir, url=url_for(cfg.store), create=False)
    try:
        root = recordings_dir(store.root, cfg.storage.recordings)
        cam_cfg = cfg.camera(camera)
        detector = None
        if redact:
            from camsight.pipeline.indexer import IndexSettings
            from camsight.vision.detector import create_detector

            settings = IndexSettings.from_config(cfg)
            detector = create_detector(
                settings.detector,  # type: ignore[arg-type]
                Path(settings.model) if settings.model else None,
                settings.confidence,
            )
        mask = recording_mask(store, camera, cam_cfg, when_start, when_end)
        reencode = mask is not None or redact
        if reencode:
            with progress_bar() as bar:
                task = bar.add_task(escape(f"{camera} -> {out.name}"), total=None, frames=0)

                def report(done: float, total: float) -> None:
                    frames = bar.tasks[task].fields.get("frames", 0) + 1
                    bar.update(task, completed=done, total=total, frames=frames)

                result = export_clip(
                    store,
                    camera,
                    when_start,
                    when_end,
                    out,
                    recordings_root=root,
                    mask=mask,
                    redact=redact,
                    detector=detector,
                    progress=report,
                )
        else:
            result = export_clip(store, camera, when_start, when_end, out, recordings_root=root)
        _audit(store, result, redact)
    finally:
        store.close()
    how = "re-encoded" + (", masked" if result.masked else "") + (", people blurred" if redact else "")
    err_console.print(
        f"wrote {escape(str(result.path))}: {result.duration:.1f}s from "
        f"{local_time(result.start_at)}, {result.segments} segment(s), "
        f"{result.size_bytes / 1e6:.1f} MB ({how if result.reencoded else 'copied as recorded'})"
    )


def _audit(store: Store, result: ClipResult, redact: bool) -> None:
    """Record the export as the API records its downloads: footage leaving camsight, by whom, which."""
    from camsight.auth import audit

    detail = {
        "file": str(result.path.resolve()),
        "start": result.start_at.isoformat(),
        "end": result.end_at.isoformat(),
        "duration": round(result.duration, 3),
        "masked": result.masked,
        "redacted": redact,
    }
    audit.record(store, audit.Actor.cli(), audit.Action.EXPORT, target=result.camera, detail=detail)
