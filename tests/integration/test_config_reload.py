"""A running `camsight run` applies a hand-edited config file, and keeps running on a bad one."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from tests.conftest import CAMSIGHT, YOLOX_MODEL, db_query, remux, run_cli
from tests.servers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _cameras(data: Path) -> dict[str, dict]:
    # Read from the store: with a bad config.yaml in the data folder, `camsight cameras` says so and stops.
    try:
        rows = db_query(
            data, "SELECT c.name, s.state FROM cameras c JOIN camera_status s ON s.camera_id = c.id"
        )
    except sqlite3.OperationalError:  # the service has not created the store yet
        return {}
    return {name: {"state": state} for name, state in rows}


def _config(clip: Path, cameras: list[str]) -> str:
    lines = [f"detector: {{backend: yolox, model: {YOLOX_MODEL}}}", "attributes: {pose: false}", "cameras:"]
    lines += [f"  {name}: {{url: {clip}, fps: 2}}" for name in cameras]
    return "\n".join(lines) + "\n"


def test_hand_edits_apply_and_a_bad_file_leaves_the_running_config(tmp_path, people_clip, yolox_model):
    clip = remux(people_clip, tmp_path / "people.mp4", seconds=20.0)
    data = tmp_path / "data"
    data.mkdir()
    config = data / "config.yaml"
    config.write_text(_config(clip, ["desk"]))
    proc = subprocess.Popen(
        [str(CAMSIGHT), "run", "--no-web", "--data", str(data), "--camera", f"quick={clip}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CAMSIGHT_LOG": "warning"},
    )
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        connected = lambda *names: all(  # noqa: E731
            _cameras(data).get(n, {}).get("state") == "connected" for n in names
        )
        wait_until(lambda: connected("desk", "quick"), timeout=90, what="desk and quick connected")

        config.write_text(_config(clip, ["desk", "hall"]))  # a camera added by hand
        wait_until(lambda: connected("desk", "hall", "quick"), timeout=90, what="the new camera running")
        assert any("config file changed: applied" in line for line in err)

        config.write_text("cameras:\n  desk: {url: " + str(clip) + ", fsp: 2}\n")  # a typo
        wait_until(
            lambda: any("config file not applied" in line and "fsp" in line for line in err),
            timeout=30,
            what="the bad file reported",
        )
        assert proc.poll() is None, "a bad config file must not stop the service"
        # The running config stays in force: all three cameras go on (none is stopped).
        wait_until(
            lambda: connected("desk", "hall", "quick"),
            timeout=30,
            what=f"the cameras still running: {_cameras(data)}; {err[-5:]}",
        )
        assert not any("stopped" == c.get("state") for c in _cameras(data).values())
        bad = run_cli("cameras", "--data", data)  # the same config for every command: the typo is named
        assert bad.returncode != 0 and "cameras.desk.fsp: unknown key" in bad.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0
