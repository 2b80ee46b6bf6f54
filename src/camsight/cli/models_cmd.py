"""``camsight models``: install and list models: the default detector and the vision-language plug-ins.

No weights ship inside camsight; these commands fetch them on request,
checksums pinned (see :mod:`camsight.search.model_registry`), or copy them
from a local folder that holds a pinned copy.

Examples::

    camsight models list
    camsight models pull yolox-nano
    camsight models pull yolox-nano --from ../shared/models
    camsight models pull clip-vit-b32 --dir /srv/camsight/models --force
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    DownloadColumn,
    TaskID,
    TransferSpeedColumn,
)
from rich.table import Table

from camsight.cli.output import err_console, fail, out_console, progress_bar

models_app = typer.Typer(
    help="Install and list models: the default detector (yolox-nano) and vision-language search plug-ins.",
    no_args_is_help=True,
)

DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Models folder (default: CAMSIGHT_MODELS, else <data dir>/models).",
        show_default=False,
    ),
]


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


@models_app.command("pull")
def pull_cmd(
    name: Annotated[str, typer.Argument(help="Model name, as shown by 'camsight models list'.")],
    directory: DirOpt = None,
    force: Annotated[bool, typer.Option(help="Download again even if the model is present.")] = False,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Copy the files from this local folder instead of downloading (checksums still verified).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Download a model, verify every file's sha256, install it all-or-nothing.

    Example: camsight models pull yolox-nano
    """
    from camsight.search.model_registry import default_models_dir, load_registry, pull

    entry = load_registry().get(name)
    target_dir = (directory or default_models_dir()).expanduser()
    where = escape(str(target_dir / name))
    if source is not None:
        source = source.expanduser()
        if not source.is_dir():
            fail(f"--from: {source} is not a folder")
    origin = f" from {escape(str(source))}" if source is not None else ""
    files = f"{len(entry.files)} file{'s' if len(entry.files) != 1 else ''}"
    err_console.print(f"{name}: {files}, {_mb(entry.size)}{origin} -> {where}")
    bar = progress_bar(DownloadColumn(), TransferSpeedColumn())
    task: list[TaskID] = []  # the bar starts with the first byte: a present model shows none

    def progress(file_name: str, n: int) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task(name, total=entry.size))
        bar.update(task[0], advance=n, description=f"{name}/{file_name}")

    try:
        result = pull(entry, target_dir, force=force, progress=progress, source=source)
    finally:
        if task:
            bar.update(task[0], description=name)
            bar.stop()
    if result.status == "present":
        err_console.print(f"{name} is already installed and verified in {escape(str(result.folder))}")
    else:
        err_console.print(f"{name} {result.status} in {escape(str(result.folder))} (sha256 verified)")


@models_app.command("list")
def list_cmd(
    directory: DirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the known models and which are installed.

    Example: camsight models list --dir /srv/camsight/models
    """
    from camsight.search.embeddings import MANIFEST
    from camsight.search.model_registry import default_models_dir, load_registry, model_status

    registry = load_registry()
    target_dir = (directory or default_models_dir()).expanduser()
    rows = []
    for name, entry in sorted(registry.models.items()):
        status = model_status(name, target_dir, entry)
        rows.append(
            {
                "name": name,
                "kind": entry.kind,
                "dim": entry.manifest.dim if entry.manifest else None,
                "size": entry.size,
                "state": status.state,
                "detail": status.detail,
                "folder": str(status.folder),
                "description": entry.description,
                "in_registry": True,
            }
        )
    if target_dir.is_dir():  # folders copied by hand, not in the registry
        for folder in sorted(target_dir.iterdir()):
            if folder.name in registry.models or folder.name.startswith(".") or not folder.is_dir():
                continue
            if not (folder / MANIFEST).is_file():
                continue
            status = model_status(folder.name, target_dir)
            rows.append(
                {
                    "name": folder.name,
                    "kind": "embedding",
                    "dim": None,
                    "size": None,
                    "state": status.state,
                    "detail": status.detail,
                    "folder": str(folder),
                    "description": "(local folder, not in the registry)",
                    "in_registry": False,
                }
            )
    if json_out:
        out_console.print_json(json.dumps({"dir": str(target_dir), "models": rows}))
        return
    if not rows:
        err_console.print(escape(f"no models known ({registry.origin}) and none in {target_dir}"))
        return
    table = Table(title=escape(f"Models ({registry.origin}; folder {target_dir})"), title_justify="left")
    for col in ("name", "kind", "dim", "download", "status", "description"):
        table.add_column(col, justify="right" if col in ("dim", "download") else "left")
    for row in rows:
        state = {"installed": "[green]installed[/]", "missing": "not installed"}.get(
            row["state"], f"[red]damaged[/] ({escape(row['detail'])})"
        )
        table.add_row(
            row["name"],
            row["kind"],
            str(row["dim"] or "-"),
            _mb(row["size"]) if row["size"] else "-",
            state,
            escape(row["description"]),
        )
    out_console.print(table)
    if any(r["state"] == "missing" for r in rows):
        err_console.print("install one with: camsight models pull NAME")
