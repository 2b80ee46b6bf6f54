"""``camsight doctor`` on real installs: all good, then each thing a user can break, with its fix."""

from __future__ import annotations

import json
import socket

import pytest
from conftest import cli_env, run_cli

pytestmark = pytest.mark.integration


def _doctor(tmp_path, *args: object, **env: str):
    proc = run_cli("doctor", "--json", "--data", tmp_path / "data", *args, env=cli_env(**env))
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, {c["name"]: c for c in json.loads(proc.stdout)}


@pytest.fixture
def models(tmp_path, yolox_model):
    """A models folder holding the default detector, as `camsight models pull yolox-nano` leaves it."""
    folder = tmp_path / "models"
    (folder / "yolox-nano").mkdir(parents=True)
    (folder / "yolox-nano" / "yolox_nano.onnx").symlink_to(yolox_model)
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_good_install_is_all_good(tmp_path, models):
    proc, checks = _doctor(tmp_path, "--port", _free_port(), CAMSIGHT_MODELS=str(models))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {c["status"] for c in checks.values()} == {"ok"}, checks
    assert "sha256 matches the registry" in checks["detector (yolox)"]["detail"]
    assert {"packages", "config", "video", "data folder", "database", "port"} <= set(checks)


def test_a_missing_model_and_a_taken_port_fail_with_their_fixes(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc, checks = _doctor(tmp_path, "--port", port, CAMSIGHT_MODELS=str(empty))
    assert proc.returncode == 1
    assert checks["detector (yolox)"]["status"] == "fail"
    assert "camsight models pull yolox-nano" in checks["detector (yolox)"]["fix"]
    assert checks["port"]["status"] == "fail" and "--port" in checks["port"]["fix"]


def test_a_data_folder_under_a_file_and_an_old_database(tmp_path, models):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli(
        "doctor", "--json", "--data", blocker / "data", "--port", _free_port(),
        env=cli_env(CAMSIGHT_MODELS=str(models)),
    )  # fmt: skip
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert proc.returncode == 1 and checks["data folder"]["status"] == "fail"

    # A store made by an older camsight: doctor says so and does not upgrade it.
    import sqlite3

    data = tmp_path / "data"
    data.mkdir()
    con = sqlite3.connect(data / "camsight.db")
    con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    con.execute("INSERT INTO alembic_version VALUES ('0006')")
    con.commit()
    con.close()
    proc, checks = _doctor(tmp_path, "--port", _free_port(), CAMSIGHT_MODELS=str(models))
    assert proc.returncode == 0
    assert checks["database"]["status"] == "warn" and "0006" in checks["database"]["detail"]
    con = sqlite3.connect(data / "camsight.db")
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [("0006",)]
    con.close()


def test_a_broken_config_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("detector:\n  backnd: yolox\n")
    proc = run_cli("doctor", "--config", bad, "--data", tmp_path / "data")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "detector.backnd" in proc.stderr
