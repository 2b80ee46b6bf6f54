"""Every command reads the config `camsight run` and the web app write.

The order: --config, CAMSIGHT_CONFIG, then <data>/config.yaml.
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import REPO_ROOT, YOLOX_ARGS, cli_env, db_query, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCENARIO = REPO_ROOT / "bench" / "scenarios" / "urfall.yaml"


def test_index_applies_the_zones_of_the_data_folders_config(tmp_path, shared_data, yolox_model):
    """A zone rule saved by the web app (into <data>/config.yaml) applies to footage indexed from the CLI."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(SCENARIO, data / "config.yaml")
    clip = shared_data / "urfall" / "fall-01-cam0.mp4"
    proc = run_cli("index", clip, "--data", data, *YOLOX_ARGS, "--json")
    assert proc.returncode == 0, proc.stderr
    assert f"config: {data / 'config.yaml'}" in proc.stderr.replace("\n", "")
    (result,) = json.loads(proc.stdout)
    assert result["events"] == {"fall": 1}

    # The read commands say which file they used too, and find the store through it.
    events = run_cli("events", "--data", data, "--json")
    assert events.returncode == 0 and f"config: {data / 'config.yaml'}" in events.stderr.replace("\n", "")
    assert [e["type"] for e in json.loads(events.stdout)] == ["fall"]


def test_the_environment_names_a_config_whose_data_dir_every_command_uses(tmp_path, shared_data, yolox_model):
    data = tmp_path / "elsewhere"
    config = tmp_path / "site.yaml"
    config.write_text(SCENARIO.read_text() + f"data_dir: {data}\n")
    env = cli_env(CAMSIGHT_CONFIG=str(config))
    clip = shared_data / "urfall" / "fall-01-cam0.mp4"
    proc = run_cli("index", clip, *YOLOX_ARGS, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"config: {config}" in proc.stderr.replace("\n", "")
    assert db_query(data, "SELECT type FROM events") == [("fall",)]
    for command in (("tracks", "--json"), ("events", "--json"), ("cameras", "--json"), ("counts", "--json")):
        listed = run_cli(*command, env=env)
        assert listed.returncode == 0, (command, listed.stderr)
    tracks = json.loads(run_cli("tracks", "--json", env=env).stdout)
    assert tracks and {t["camera"] for t in tracks} == {"fall-01-cam0"}


def test_an_explicit_config_wins_over_the_data_folders(tmp_path, shared_data, yolox_model):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(SCENARIO, data / "config.yaml")
    plain = tmp_path / "plain.yaml"
    plain.write_text("index: {fps: 5}\n")
    clip = shared_data / "urfall" / "fall-01-cam0.mp4"
    proc = run_cli("index", clip, "--data", data, "--config", plain, *YOLOX_ARGS, "--json")
    assert proc.returncode == 0, proc.stderr
    assert f"config: {plain}" in proc.stderr.replace("\n", "")
    assert json.loads(proc.stdout)[0]["events"] == {}
