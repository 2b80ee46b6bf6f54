"""`storage.recordings: ~/footage` records into the home folder, where clips and retention look too."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CAMSIGHT, YOLOX_ARGS, remux
from tests.servers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_tilde_recordings_folder_is_the_home_folder(tmp_path: Path, people_clip: Path, yolox_model: Path):
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    clip = remux(people_clip, tmp_path / "people.mp4", seconds=12.0)
    config = tmp_path / "site.yaml"
    config.write_text(
        f"detector: {{backend: yolox, model: {YOLOX_ARGS[-1]}}}\n"
        "attributes: {pose: false}\n"
        "storage: {recordings: ~/footage, min_free_gb: 0}\n"
        "cameras:\n"
        f"  desk: {{url: {clip}, record: {{mode: continuous, segment_seconds: 2}}}}\n"
    )
    proc = subprocess.Popen(
        [str(CAMSIGHT), "run", "--no-web", "--config", str(config), "--data", str(tmp_path / "data")],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOME": str(home)},
    )
    try:
        footage = home / "footage"
        wait_until(
            lambda: footage.is_dir() and any(p.is_file() for p in footage.rglob("*.mp4")),
            timeout=120,
            what="a recorded segment under $HOME/footage",
        )
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not (work / "~").exists(), "recorded into a folder literally named '~'"
