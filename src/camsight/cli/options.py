"""Options shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
        help="YAML config file (default: CAMSIGHT_CONFIG, else built-in defaults).",
        show_default=False,
    ),
]
