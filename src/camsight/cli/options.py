"""Options shared by the commands, and the one way every command finds its config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from camsight.config import Config

DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Data directory (default: CAMSIGHT_DATA or the per-user data folder).",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="YAML config file (default: CAMSIGHT_CONFIG, else config.yaml in the data folder, "
        "which `camsight run` and the web app edit).",
        show_default=False,
    ),
]


def command_config(config: Path | None, data: Path | None) -> Config:
    """The config ``camsight run`` uses (:func:`camsight.config.choose_config`), with its data folder.

    Says on stderr which file it read, so a user never wonders why a zone
    drawn in the web app does (or does not) apply. The returned config's
    ``data_dir`` is the data folder to open.
    """
    from rich.markup import escape

    from camsight.cli.output import err_console
    from camsight.config import choose_config

    choice = choose_config(config, data)
    if choice.found:
        err_console.print(f"[dim]config: {escape(str(choice.path))}[/]", soft_wrap=True)
    return choice.config.model_copy(update={"data_dir": choice.data_dir})
