"""The `camsight` command without footage: config check, empty stores, unusable data directories."""

from __future__ import annotations

import json

import pytest
from conftest import assert_clean_failure, cli_env, run_cli


def test_help():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("index", "tracks", "export-mot", "config"):
        assert command in proc.stdout


def test_index_without_files_is_a_usage_error():
    proc = run_cli("index")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr


class TestConfigCheck:
    def test_defaults(self, tmp_path):
        proc = run_cli("config", "check", "--data", tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "config OK" in proc.stdout and "built-in defaults" in proc.stdout
        defaults = json.loads(proc.stdout[proc.stdout.index("{") :])
        assert defaults["detector"]["backend"] == "yolox"
        assert defaults["index"]["fps"] == 5.0

    def test_a_good_file(self, tmp_path):
        path = tmp_path / "site.yaml"
        path.write_text("detector:\n  backend: yolox\nindex:\n  fps: native\n")
        proc = run_cli("config", "check", path)
        assert proc.returncode == 0, proc.stderr
        assert "config OK" in proc.stdout

    def test_the_environment_variable(self, tmp_path):
        path = tmp_path / "env.yaml"
        path.write_text("motion:\n  enabled: flase\n")
        proc = run_cli("config", "check", env=cli_env(CAMSIGHT_CONFIG=str(path)))
        assert_clean_failure(proc, f"{path}:2", "motion.enabled")

    @pytest.mark.parametrize(
        ("text", "needles"),
        [
            ("detector:\n  backend: yolox\n  modle: x.onnx\n", (":3", "detector.modle", "unknown key")),
            ("index:\n  fps: 0\n", (":2", "index.fps")),
            ("motion:\n  pixel_threshold: high\n", (":2", "motion.pixel_threshold")),
            ("detector:\n  backend: [yolox\nindex: {}\n", ("not valid YAML",)),
            ("- detector\n", (":1", "mapping")),
        ],
    )
    def test_malformed(self, tmp_path, text, needles):
        path = tmp_path / "site.yaml"
        path.write_text(text)
        assert_clean_failure(run_cli("config", "check", path), str(path), *needles)

    def test_missing_file(self, tmp_path):
        path = tmp_path / "nope.yaml"
        assert_clean_failure(run_cli("config", "check", path), str(path), "not found")


@pytest.mark.slow
class TestStores:
    def test_reading_a_data_dir_that_does_not_exist_is_an_error(self, tmp_path):
        # A typo in --data must not silently create (and report) an empty store.
        data = tmp_path / "data"
        for command in (
            ["tracks"],
            ["search", "person"],
            ["export-mot", "--camera", "x", tmp_path / "o.txt"],
        ):
            assert_clean_failure(run_cli(*command, "--data", data), str(data), "no camsight data")
        assert not data.exists()

    def test_tracks_on_an_empty_store(self, clip_factory, tmp_path):
        data = tmp_path / "data"
        blank = clip_factory(tmp_path / "blank.mp4", draw=None)
        assert run_cli("index", blank, "--data", data).returncode == 0
        proc = run_cli("tracks", "--data", data)
        assert proc.returncode == 0, proc.stderr
        assert "no tracks stored" in proc.stderr
        assert json.loads(run_cli("tracks", "--json", "--data", data).stdout) == []

    def test_the_data_environment_variable(self, clip_factory, tmp_path):
        data = tmp_path / "from-env"
        blank = clip_factory(tmp_path / "blank.mp4", draw=None)
        proc = run_cli("index", blank, "--json", env=cli_env(CAMSIGHT_DATA=str(data)))
        assert proc.returncode == 0, proc.stderr
        assert (data / "camsight.db").is_file()
        assert run_cli("tracks", "--json", env=cli_env(CAMSIGHT_DATA=str(data))).returncode == 0

    def test_export_mot_before_anything_was_indexed(self, clip_factory, tmp_path):
        data = tmp_path / "data"
        blank = clip_factory(tmp_path / "blank.mp4", draw=None)
        assert run_cli("index", blank, "--camera", "hall", "--data", data).returncode == 0
        out = tmp_path / "out.txt"
        proc = run_cli("export-mot", "--camera", "lobby", out, "--data", data)
        assert_clean_failure(proc, "lobby", "known cameras: hall")
        assert not out.exists()

    def test_data_directory_is_a_file(self, tmp_path):
        blocker = tmp_path / "data"
        blocker.write_text("oops")
        assert_clean_failure(run_cli("tracks", "--data", blocker), str(blocker))

    def test_data_directory_with_a_damaged_database(self, tmp_path):
        data = tmp_path / "data"
        data.mkdir()
        (data / "camsight.db").write_bytes(b"\x00garbage" * 1000)
        assert_clean_failure(run_cli("tracks", "--data", data), str(data))
