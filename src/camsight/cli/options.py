"""Options shared by the commands, and the one way every command finds its config."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from camsight.config import Config
    from camsight.store.db import Store

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


def when_option(
    value: str | None, option: str, *, durations: Literal["ago", "ahead"] = "ago"
) -> datetime | None:
    """A time option (``--since``, ``--recorded-at``...): ISO in local time unless it has an offset, or
    a duration ago (ahead for ``durations="ahead"``); a bad value is one ``error:`` line and exit 2."""
    from camsight.cli.output import fail
    from camsight.timeutil import parse_when

    if value is None:
        return None
    try:
        return parse_when(value, naive="local", durations=durations)
    except ValueError as exc:
        fail(f"{option}: {exc}")
        raise  # unreachable: fail() exits


def duration_option(value: str, option: str) -> timedelta:
    """A duration option (``--every 15m``); a bad value is one ``error:`` line and exit 2."""
    from camsight.cli.output import fail
    from camsight.timeutil import parse_duration

    span = parse_duration(value)
    if span is None:
        fail(f"{option} must be a duration such as 30s, 15m, 1h or 7d, got {value!r}")
        raise AssertionError  # unreachable: fail() exits
    return span


def open_data(data: Path | None, config: Config, *, create: bool = True) -> Store:
    """The store in ``--data``, else the data folder the config chose (see :func:`command_config`)."""
    from camsight.store.db import open_store, url_for

    return open_store(data or config.data_dir, url=url_for(config.store), create=create)
