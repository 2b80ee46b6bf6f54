"""Editing the config file: comments kept, whole-config validation, atomic writes, locking, redaction."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
import yaml

from camsight.config import load_config, parse_config, validate_config
from camsight.config.edit import (
    CameraExists,
    CameraMissing,
    ConfigFile,
    ConfigFileError,
    check_text,
    redact,
    redact_text,
)
from camsight.errors import ConfigError

SITE = """\
# Site config for the depot (kept by hand and by the web app)
detector:
  backend: yolox   # the fast one
schedules:
  night: {hours: ["18:00-06:00"]}

cameras:
  # The front gate, looking at the road
  gate:
    url: rtsp://admin:hunter2@10.0.0.5/stream1   # main stream
    record: {mode: events}
    rules:
      - {type: tampering}   # someone covering the lens
  yard:
    enabled: false
alerts:
  webhooks:
    - name: ops
      url: https://hooks.example/ops?token=abc123
      secret: s3cret-hmac
      headers: {Authorization: Bearer xyz-789}
  mqtt: {host: 127.0.0.1, username: cam, password: mqtt-pw}
"""
DOOR = [[0.1, 0.2], [0.5, 0.2], [0.5, 0.8], [0.1, 0.8]]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(SITE, encoding="utf-8")
    return path


def test_edit_keeps_comments_order_and_style_and_validates(site: Path):
    cfg = ConfigFile(site)
    edit = cfg.update_camera(
        "gate",
        {
            "zones": {"door": {"points": DOOR}},
            "rules": [{"type": "zone_intrusion", "zone": "door", "schedule": "night", "min_seconds": 1}],
        },
    )
    text = site.read_text()
    for comment in (
        "# Site config for the depot",
        "# the fast one",
        "# The front gate, looking at the road",
        "# main stream",
    ):
        assert comment in text, comment
    # Untouched parts stay as written, keys in their order; the new zone's points on one line.
    assert 'night: {hours: ["18:00-06:00"]}' in text
    assert "record: {mode: events}" in text
    assert "points: [[0.1, 0.2], [0.5, 0.2], [0.5, 0.8], [0.1, 0.8]]" in text
    assert text.index("detector:") < text.index("schedules:") < text.index("cameras:") < text.index("alerts:")
    assert "      - type: zone_intrusion" in text  # the file's own list indentation
    loaded = load_config(site)
    gate = loaded.cameras["gate"]
    assert list(gate.zones) == ["door"] and gate.rules[0].type == "zone_intrusion"
    assert gate.rules[0].schedule == "night" and gate.url == "rtsp://admin:hunter2@10.0.0.5/stream1"
    assert edit.changed == ["rules", "zones"] and edit.config == loaded
    assert (site.parent / "site.yaml.bak").read_text() == SITE


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"zones": {"door": {"points": [[0, 0], [1, 1], [1, 0], [0, 1]]}}}, "intersects itself"),
        ({"zones": {"door": {"points": [[0.1, 0.1], [1.5, 0.1], [0.5, 0.9]], "units": "normalised"}}}, "0-1"),
        ({"rules": [{"type": "zone_intrusion", "zone": "nowhere"}]}, "unknown zone 'nowhere'"),
        ({"rules": [{"type": "tampering", "schedule": "weekends"}]}, "unknown schedule 'weekends'"),
        ({"zonez": {}}, "cameras.gate.zonez: unknown key"),
        ({"url": "ftp://cam/1"}, "unsupported URL scheme"),
        ({"enabled": None}, "cameras.gate.enabled"),
        ({"masks": {"m": {"points": [[0, 0], [0.5, 0]]}}}, "at least 3"),
    ],
)
def test_invalid_change_leaves_the_file_byte_identical(site: Path, change: dict, reason: str):
    before = site.read_bytes()
    with pytest.raises(ConfigError) as err:
        ConfigFile(site).update_camera("gate", change)
    message = str(err.value)
    assert reason in message, message
    assert message.startswith("site.yaml:"), message  # file:line: key: message, as the CLI says it
    assert site.read_bytes() == before
    assert not (site.parent / "site.yaml.bak").exists()
    assert sorted(p.name for p in site.parent.iterdir()) == ["site.yaml"]  # no temp file left


def test_add_and_remove_cameras(site: Path):
    cfg = ConfigFile(site)
    edit = cfg.add_camera("lobby", {"url": "/srv/lobby.mp4", "masks": {"desk": {"points": DOOR}}})
    assert edit.before is None and edit.after is not None and edit.changed == ["masks", "url"]
    assert load_config(site).cameras["lobby"].url == "/srv/lobby.mp4"
    with pytest.raises(CameraExists):
        cfg.add_camera("lobby", {})
    with pytest.raises(CameraExists):
        cfg.add_camera("gate", {"url": "rtsp://x/1"})
    edit = cfg.remove_camera("lobby")
    assert edit.after is None and "lobby" not in edit.config.cameras
    assert "lobby" not in load_config(site).cameras
    with pytest.raises(CameraMissing):
        cfg.remove_camera("lobby")
    assert "# The front gate" in site.read_text()


def test_null_resets_keys_whose_default_is_null(site: Path):
    cfg = ConfigFile(site)
    cfg.update_camera("gate", {"size": [1280, 720], "detect_url": "rtsp://10.0.0.5/sub"})
    assert load_config(site).cameras["gate"].size == (1280, 720)
    cfg.update_camera("gate", {"size": None, "detect_url": None})
    gate = load_config(site).cameras["gate"]
    assert gate.size is None and gate.detect_url is None
    assert "size" not in site.read_text() and "detect_url" not in site.read_text()


def test_new_file_is_created_private_and_an_existing_mode_is_kept(tmp_path: Path, site: Path):
    fresh = tmp_path / "data" / "config.yaml"
    ConfigFile(fresh).add_camera("gate", {"url": "rtsp://u:pw@cam/1"})
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600  # it may hold camera passwords
    assert load_config(fresh).cameras["gate"].url == "rtsp://u:pw@cam/1"
    site.chmod(0o640)
    ConfigFile(site).update_camera("yard", {"enabled": True})
    assert stat.S_IMODE(site.stat().st_mode) == 0o640


def test_edit_through_a_symlink_keeps_the_link(tmp_path: Path, site: Path):
    link = tmp_path / "camsight.yaml"
    link.symlink_to(site)
    ConfigFile(link).update_camera("yard", {"enabled": True})
    assert link.is_symlink() and load_config(site).cameras["yard"].enabled is True


def test_odd_names_and_values_read_back_as_written(tmp_path: Path):
    # ruamel writes YAML 1.2, camsight reads YAML 1.1: "on", "yes", "10:30" must be quoted.
    path = tmp_path / "c.yaml"
    cfg = ConfigFile(path)
    names = ["on", "yes", "10:30", "Eingang Süd", "0x1F"]
    cfg.add_camera("no", {"zones": {n: {"points": DOOR} for n in names}})
    cfg.update_camera("no", {"rules": [{"type": "dwell", "zone": "on", "name": "null"}]})
    loaded = load_config(path)
    assert list(loaded.cameras) == ["no"]
    assert list(loaded.cameras["no"].zones) == names
    assert loaded.cameras["no"].rules[0].name == "null"


def test_concurrent_edits_are_serialised(site: Path):
    # Each edit reads, changes and writes the whole file: without the lock, edits would be lost.
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def add(i: int) -> None:
        try:
            start.wait()
            ConfigFile(site).add_camera(f"cam{i}", {"url": f"rtsp://10.0.0.{i}/1"})
            ConfigFile(site).update_camera(f"cam{i}", {"zones": {"z": {"points": DOOR}}})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    cams = load_config(site).cameras
    assert all(f"cam{i}" in cams and "z" in cams[f"cam{i}"].zones for i in range(8))
    assert "# The front gate" in site.read_text()


def test_redacted_text_hides_every_secret(site: Path):
    cfg = ConfigFile(site)
    cfg.update_camera("gate", {"password": "cam-pw", "username": "admin"})
    text = cfg.text()
    for secret in ("hunter2", "cam-pw", "s3cret-hmac", "xyz-789", "mqtt-pw", "abc123"):
        assert secret not in text, secret
    assert "rtsp://admin:***@10.0.0.5/stream1" in text and "token=***" in text
    assert "# main stream" in text  # still the file, comments and all
    assert parse_config(text.replace("'***'", "x"), "x").cameras["gate"].username == "admin"
    assert "hunter2" in cfg.text(redacted=False)
    # Secrets in comments too.
    assert redact_text("# old: rtsp://root:pa@ss@cam/1 password: letmein") == (
        "# old: rtsp://root:***@cam/1 password: ***"
    )
    assert redact({"a": ["http://u:p@h/x"], "headers": {"X-Key": "k"}}) == {
        "a": ["http://u:***@h/x"],
        "headers": {"X-Key": "***"},
    }


def test_runtime_cameras_are_saved_as_they_run_when_edited(site: Path):
    # As `camsight run --camera gate=... --camera lobby=...` builds its config.
    on_file = load_config(site)
    data = on_file.model_dump(mode="json", by_alias=True)
    data["cameras"]["gate"] = {**data["cameras"]["gate"], "url": "rtsp://10.0.0.9/override"}
    data["cameras"]["lobby"] = {"url": "rtsp://10.0.0.7/1"}
    running = validate_config(data, "--camera")
    cfg = ConfigFile.from_running(site, running)
    assert cfg.runtime_cameras() == ["gate", "lobby"]
    assert cfg.running() == running
    assert "lobby:" in cfg.text() and "rtsp://10.0.0.9/override" in cfg.text()
    assert "lobby" not in site.read_text()  # showing is not saving
    edit = cfg.update_camera("lobby", {"zones": {"door": {"points": DOOR}}})
    saved = load_config(site)
    assert saved.cameras["lobby"].url == "rtsp://10.0.0.7/1" and "door" in saved.cameras["lobby"].zones
    # The gate still runs with its command-line URL, and the file keeps its own until the gate is edited.
    assert edit.config.cameras["gate"].url == "rtsp://10.0.0.9/override"
    assert saved.cameras["gate"].url == "rtsp://admin:hunter2@10.0.0.5/stream1"
    assert cfg.runtime_cameras() == ["gate"]
    cfg.update_camera("gate", {"enabled": False})
    saved = load_config(site)
    assert saved.cameras["gate"].url == "rtsp://10.0.0.9/override" and saved.cameras["gate"].enabled is False
    assert "# The front gate" in site.read_text() and "# main stream" in site.read_text()
    assert cfg.runtime_cameras() == []


def test_removing_a_runtime_only_camera_leaves_the_file_alone(site: Path):
    data = load_config(site).model_dump(mode="json", by_alias=True)
    data["cameras"]["lobby"] = {"url": "rtsp://10.0.0.7/1"}
    cfg = ConfigFile.from_running(site, validate_config(data))
    edit = cfg.remove_camera("lobby")
    assert "lobby" not in edit.config.cameras and site.read_text() == SITE


def test_a_broken_file_is_reported_not_overwritten(site: Path):
    site.write_text("cameras:\n  gate: {zonez: 1}\n")
    with pytest.raises(ConfigFileError, match=r"site\.yaml:2: cameras\.gate\.zonez: unknown key"):
        ConfigFile(site).update_camera("gate", {"enabled": True})
    assert site.read_text() == "cameras:\n  gate: {zonez: 1}\n"


def test_hostile_values_are_refused_cleanly(tmp_path: Path):
    path = tmp_path / "c.yaml"
    cfg = ConfigFile(path)
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ConfigError, match="nested"):
        cfg.add_camera("gate", {"zones": deep})
    with pytest.raises(ConfigError):
        cfg.add_camera("gate", {"url": "rtsp://x/1\n  evil: true"})
    with pytest.raises(ConfigError, match="unknown key"):
        cfg.add_camera("gate", {"../../etc/passwd": 1})
    assert not path.exists()
    cfg.add_camera("../x\x07", {"url": "/srv/a.mp4"})  # a key, never a path: stored as written
    assert list(yaml.safe_load(path.read_text())["cameras"]) == ["../x\x07"]


def test_check_text_reports_each_problem_with_file_and_line():
    assert check_text("cameras:\n  gate: {url: rtsp://cam/1}\n") == []
    errors = check_text(
        "detector:\n  backnd: ssd\ncameras:\n  gate:\n    zones:\n"
        "      z: {points: [[0, 0], [1, 1], [1, 0], [0, 1]]}\n",
        "site.yaml",
    )
    assert len(errors) == 2, errors
    assert errors[0] == "site.yaml:2: detector.backnd: unknown key"
    assert errors[1].startswith("site.yaml:6: cameras.gate.zones.z: the polygon intersects itself")
    assert check_text("a: [1,\n", "s.yaml")[0].startswith("s.yaml:")
    assert check_text("- 1\n- 2\n", "s.yaml") == ["s.yaml:1: the config must be a mapping of keys to values"]


def test_check_text_survives_yaml_bombs_and_deep_nesting():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for prev, name in zip("abcdefg", "bcdefgh", strict=True):
        bomb += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]\n"
    assert "aliases are expanded" in check_text(bomb)[0]
    assert "nested too deeply" in check_text("[" * 20000)[0]
    assert "larger than" in check_text("#" * 1_000_001)[0]
