"""``camsight``: the command line. Each command group lives in its own module; this one registers them."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from camsight.cli.accounts_cmd import audit_app, tokens_app, users_app
from camsight.cli.alerts_cmd import alerts_app
from camsight.cli.backup_cmd import backup, restore
from camsight.cli.clip_cmd import clip
from camsight.cli.events_cmd import ack, counts, events
from camsight.cli.holds_cmd import holds_app
from camsight.cli.index_cmd import export_mot, index, tracks
from camsight.cli.models_cmd import models_app
from camsight.cli.output import err_console, fail
from camsight.cli.search_cmd import search
from camsight.cli.service_cmd import cameras, config_check, doctor, nodes, run_service
from camsight.errors import CamsightError
from camsight.logs import setup_logging

app = typer.Typer(
    help="camsight: find, follow and search people and vehicles in your camera footage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect and check configuration.", no_args_is_help=True)
config_app.command("check")(config_check)
app.add_typer(config_app, name="config")
app.add_typer(models_app, name="models")
app.add_typer(alerts_app, name="alerts")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
app.add_typer(holds_app, name="holds")
for command in (index, tracks, search, events, ack, counts, cameras, nodes, doctor):
    app.command()(command)
app.command("export-mot")(export_mot)
app.command("run")(run_service)
app.command("clip")(clip)
app.command("backup")(backup)
app.command("restore")(restore)


@app.callback()
@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details to stderr.")] = False,
) -> None:
    setup_logging(verbose)


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
