"""Console output shared by the commands: errors, progress, logging."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


def fail(message: str, code: int = 2) -> None:
    """Print one clear line to stderr and exit."""
    print_error(message)
    raise SystemExit(code)


def print_error(message: str) -> None:
    """One ``error:`` line; user text (file and camera names) is never read as markup."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


class FrameRateColumn(ProgressColumn):
    """Decoded frames per second, from the ``frames`` field of the task."""

    def render(self, task: Task) -> Text:
        frames = task.fields.get("frames", 0)
        elapsed = task.elapsed or 0
        rate = frames / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:6.1f} frames/s", style="progress.data.speed")


def progress_bar(*rate: ProgressColumn) -> Progress:
    """A bar on stderr with percentage, rate (frames/s unless ``rate`` columns are given) and ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        *(rate or (FrameRateColumn(),)),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


class KeyValueFormatter(logging.Formatter):
    """``level=... logger=... msg=... key=value`` lines: greppable and parseable."""

    _skip = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update({k: v for k, v in record.__dict__.items() if k not in self._skip})
        return " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items())


def setup_logging(verbose: bool = False) -> None:
    """Quiet by default (warnings only); ``--verbose`` or CAMSIGHT_LOG=debug for more."""
    level = os.environ.get("CAMSIGHT_LOG", "debug" if verbose else "warning").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger("camsight")
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level, logging.WARNING))
    root.propagate = False
