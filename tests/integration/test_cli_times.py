"""Times the CLI prints are this machine's local time to the second, never raw UTC or microseconds.

The machine's zone here is Asia/Kolkata (UTC+05:30), so a UTC time shown as if
it were local, or a time cut to the minute, cannot pass by chance.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import CAMSIGHT, cli_env, run_cli

pytestmark = pytest.mark.slow

ZONE = "Asia/Kolkata"
LOCAL = cli_env(TZ=ZONE)
#: What every printed time looks like.
STAMP = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b")


def cells(stdout: str, needle: str) -> list[str]:
    """The cells of the one table row holding ``needle``."""
    (row,) = [line for line in stdout.splitlines() if needle in line]
    return [c.strip() for c in row.strip("│ ").split("│")]


def split_row(line: str) -> list[str]:
    return [c.strip() for c in line.strip("│ ").split("│")]


def near(text: str, before: datetime, after: datetime) -> bool:
    """``text`` is a local time in ZONE between ``before`` and ``after`` (to the second)."""
    shown = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo(ZONE))
    return before.replace(microsecond=0) <= shown <= after


def test_users_tokens_and_audit_print_local_seconds(tmp_path: Path) -> None:
    data = tmp_path / "data"
    before = datetime.now(UTC)
    added = subprocess.run(
        [str(CAMSIGHT), "users", "add", "ravi", "--role", "viewer", "--password-stdin", "--data", str(data)],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        env=LOCAL,
        timeout=120,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    made = run_cli("tokens", "create", "ravi", "--name", "ha", "--expires", "2d", "--data", data, env=LOCAL)
    assert made.returncode == 0, made.stderr
    after = datetime.now(UTC)

    # Users: created in local time to the second (piped: the whole table, no column cut).
    users = run_cli("users", "list", "--data", data, env=LOCAL)
    assert users.returncode == 0, users.stderr
    row = cells(users.stdout, "ravi")
    created = row[4]
    assert STAMP.fullmatch(created) and near(created, before, after), row

    # Tokens: the expiry said at creation and listed are the same local second, two days on.
    (said,) = STAMP.findall(made.stderr)
    tokens = run_cli("tokens", "list", "--data", data, env=LOCAL)
    assert tokens.returncode == 0, tokens.stderr
    expires = cells(tokens.stdout, "ravi")[5]
    assert expires == said, (expires, said)
    assert near(expires, before + timedelta(days=2), after + timedelta(days=2)), expires

    # The audit log: each entry's time the same way.
    audit = run_cli("audit", "list", "--data", data, env=LOCAL)
    assert audit.returncode == 0, audit.stderr
    when = cells(audit.stdout, "user.create")[1]
    assert STAMP.fullmatch(when) and near(when, before, after), when
    assert not re.search(r"\d\d:\d\d:\d\d\.\d|\+00:00|T\d\d:", users.stdout + tokens.stdout + audit.stdout)


@pytest.mark.integration
def test_search_of_a_live_camera_prints_local_seconds(tmp_path: Path, vtest: Path, yolox_model: Path) -> None:
    """A live camera's hits carry wall-clock times (ISO, UTC, microseconds): printed as local seconds."""
    from tests.integration.test_web_browser import start_run, stop_run
    from tests.servers import free_port, wait_until

    data = tmp_path / "data"
    config = tmp_path / "site.yaml"
    config.write_text(f"detector: {{backend: yolox, model: {yolox_model}}}\n")
    proc, _address, _password = start_run(
        [
            "--config",
            str(config),
            "--data",
            str(data),
            "--port",
            str(free_port()),
            "--camera",
            f"lobby={vtest}",
        ]
    )
    try:

        def hits() -> list[dict]:
            found = run_cli("search", "person", "--camera", "lobby", "--json", "--data", data, env=LOCAL)
            return json.loads(found.stdout) if found.returncode == 0 and found.stdout.strip() else []

        # People walk through the scene all the time; their tracks are stored as they end.
        wait_until(lambda: bool(hits()), timeout=180, interval=3, what="a stored track of the live camera")
    finally:
        stop_run(proc)
    # The camera stopped: the same hits for both searches.
    first = hits()[0]
    shown = run_cli("search", "person", "--camera", "lobby", "--data", data, env=LOCAL)
    assert shown.returncode == 0, shown.stderr
    start = datetime.fromisoformat(first["start"]).astimezone(ZoneInfo(ZONE))
    end = datetime.fromisoformat(first["end"]).astimezone(ZoneInfo(ZONE))
    (row,) = [r for r in map(split_row, shown.stdout.splitlines()) if r[1:2] == [str(first["track_id"])]]
    assert row[4] == f"{start:%Y-%m-%d %H:%M:%S} - {end:%Y-%m-%d %H:%M:%S}", row
