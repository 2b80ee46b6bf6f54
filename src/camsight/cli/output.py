"""Console output shared by the commands: errors, progress bars, tables and times."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console, ConsoleDimensions
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
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from datetime import datetime

#: The line width used when the output is not a terminal: wide enough that no
#: line or table row is ever wrapped or cut to fit.
PIPED_WIDTH = 10_000


class CliConsole(Console):
    """A rich console laid out for the terminal it writes to, and for no width at all when piped.

    Rich otherwise wraps and cuts to $COLUMNS, or to 80 columns when there is
    no terminal, so what a script or a log got depended on the terminal of
    whoever ran it: a message split over two lines, a table cut off. Both are
    decided at each print, since sys.stdout may be replaced after import.
    """

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(PIPED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)

    @property
    def soft_wrap(self) -> bool:
        # Soft wrap: long lines are left for the reader (a terminal, a pager) to wrap.
        return self._soft_wrap or not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, value: bool) -> None:
        self._soft_wrap = value


err_console = CliConsole(stderr=True, highlight=False)
out_console = CliConsole(highlight=False)


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


def add_row(table: Table, *cells: str) -> None:
    """Add cells as plain text: names come from users and files, not markup."""
    table.add_row(*(Text(c) for c in cells))


def local_time(when: datetime | str | None) -> str:
    """A stored time as this machine's local time to the second; ``-`` for none.

    Every time the commands print goes through here, so none shows microseconds or
    raw UTC. ``when`` may be an ISO 8601 string (as search hits carry); naive means UTC.

    >>> from datetime import UTC, datetime
    >>> local_time(datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)) == local_time("2026-03-01T12:00:00")
    True
    """
    from datetime import datetime

    from camsight.timeutil import local_text

    if when is None:
        return "-"
    return local_text(datetime.fromisoformat(when) if isinstance(when, str) else when)
