"""Configuration: strict YAML, errors naming file, line and key."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from camsight.config import CONFIG_ENV, Config, load_config, parse_config
from camsight.errors import CamsightError, ConfigError
from camsight.pipeline.indexer import IndexSettings

GOOD = """\
data_dir: /srv/camsight
detector:
  backend: yolox
  model: /models/yolox_nano.onnx
  confidence: 0.25
motion:
  enabled: false
index:
  fps: native
"""


def error_of(text: str, origin: str = "site/cam.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, origin)
    assert isinstance(info.value, CamsightError)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults():
    cfg = parse_config("", "x.yaml")
    assert cfg == Config()
    assert cfg.detector.backend == "yolox"
    assert cfg.index.fps == 5.0
    assert cfg.motion.enabled is True


def test_a_good_file(tmp_path):
    path = tmp_path / "camsight.yaml"
    path.write_text(GOOD)
    cfg = load_config(path)
    assert cfg.data_dir == Path("/srv/camsight")
    assert cfg.detector.backend == "yolox"
    assert cfg.detector.model == Path("/models/yolox_nano.onnx")
    assert cfg.detector.confidence == 0.25
    assert cfg.index.fps == "native"
    settings = IndexSettings.from_config(cfg)
    assert settings.fps is None
    assert settings.motion is None
    assert settings.detector == "yolox"
    assert settings.model == "/models/yolox_nano.onnx"


def test_settings_key_changes_with_what_changes_results():
    base = IndexSettings.from_config(Config())
    assert base.key() == IndexSettings.from_config(parse_config("")).key()
    other = IndexSettings.from_config(parse_config("index:\n  fps: 2\n"))
    assert other.key() != base.key()
    assert re.fullmatch(r"[0-9a-f]{16}", base.key())


@pytest.mark.parametrize(
    ("text", "line", "key", "problem"),
    [
        ("detector:\n  backend: yolox\n  backnd: ssd\n", 3, "detector.backnd", "unknown key"),
        ("\n\ndetectr:\n  backend: ssd\n", 3, "detectr", "unknown key"),
        ("motion:\n  enabled: true\n  pixel_threshold: lots\n", 3, "motion.pixel_threshold", "integer"),
        ("index:\n  fps: 0\n", 2, "index.fps", "greater than 0"),
        ("index:\n  fps: fast\n", 2, "index.fps", "native"),
        ("detector:\n  backend: tensorflow\n", 2, "detector.backend", "'ssd' or 'yolox'"),
        ("# my camera\ndetector: yolox\n", 2, "detector", "dictionary"),
        (
            "tracking:\n  lost_seconds: 2\n  min_hits: 0\n",
            3,
            "tracking.min_hits",
            "greater than or equal to 1",
        ),
    ],
)
def test_invalid_values_name_file_line_and_key(text, line, key, problem):
    message = error_of(text)
    assert message.startswith(f"site/cam.yaml:{line}: {key}: "), message
    assert problem in message


def test_every_problem_is_reported():
    message = error_of("motion:\n  max_skip: -1\ntracking:\n  min_hits: 0\n")
    assert "site/cam.yaml:2: motion.max_skip" in message
    assert "site/cam.yaml:4: tracking.min_hits" in message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("detector:\n\tbackend: ssd\n", 2),
        ("detector:\n  backend: ssd\n model: x\n", 3),
        ("a: 1\n---\nb: 2\n", 2),
        ('detector:\n  backend: "yolox\n', 3),
    ],
)
def test_bad_yaml_names_file_and_line(text, line):
    message = error_of(text)
    assert message.startswith(f"site/cam.yaml:{line}: not valid YAML"), message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just words\n", "42\n"])
def test_the_document_must_be_a_mapping(text):
    assert "must be a mapping" in error_of(text)


def test_load_config_names_a_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=re.escape(f"{missing}: config file not found")):
        load_config(missing)


def test_load_config_of_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path)


def test_load_config_of_a_binary_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path)


def test_load_config_reports_the_path_it_read(tmp_path):
    path = tmp_path / "camsight.yaml"
    path.write_text("index:\n  fps: 2\nmotion:\n  enabeld: false\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:4: motion.enabeld: unknown key"


def test_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "env.yaml"
    path.write_text("index:\n  fps: 3\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    assert load_config().index.fps == 3.0
    monkeypatch.delenv(CONFIG_ENV)
    assert load_config() == Config()


# --------------------------------------------------------------------------- issue 15: camera sources, zones


@pytest.mark.parametrize(
    ("url", "protocol"),
    [
        ("concat:/etc/passwd|/etc/hosts", "concat"),
        ("subfile,,0,0,:/etc/passwd", "subfile"),
        ("./concat:/etc/passwd", "concat"),
        ("pipe:0", "pipe"),
        ("file:/etc/passwd", "file"),
    ],
)
def test_a_camera_url_cannot_be_an_ffmpeg_pseudo_protocol(url, protocol):
    message = error_of(f"cameras:\n  gate:\n    url: '{url}'\n")
    assert message.startswith("site/cam.yaml:3: cameras.gate.url: "), message
    assert f"'{protocol}:' is not a camera source" in message


def test_the_owner_may_still_name_any_local_file_in_the_config(tmp_path):
    # The README's first command plays a local file as a camera; the config file is as trusted.
    config = parse_config(
        "cameras:\n  lobby: {url: ../shared/data/pets09/vtest.avi}\n  cam: {url: /srv/a:b.mp4}\n"
    )
    assert config.cameras["lobby"].url == "../shared/data/pets09/vtest.avi"
    assert config.cameras["cam"].url == "/srv/a:b.mp4"


def test_api_sources_are_streams_or_files_inside_the_camera_folders(tmp_path):
    from camsight.config.camera import api_source_problem

    videos = tmp_path / "videos"
    (videos / "day1").mkdir(parents=True)
    (videos / "day1" / "gate.mp4").write_bytes(b"\0" * 10)
    (videos / "escape.mp4").symlink_to("/etc/passwd")
    os.mkfifo(videos / "pipe.mp4")
    outside = "/etc/shadow", "/proc/self/environ", "/dev/zero", str(videos / ".." / "x.mp4")
    for url in outside:
        assert "none is configured" in api_source_problem(url, []), url
        assert "inside storage.camera_folders" in api_source_problem(url, [videos]), url
    assert "inside storage.camera_folders" in api_source_problem(str(videos / "escape.mp4"), [videos])
    assert "not a regular file or folder" in api_source_problem(str(videos / "pipe.mp4"), [videos])
    assert "not a regular file or folder" in api_source_problem("/dev/zero", [Path("/dev")])
    assert api_source_problem(str(videos / "day1" / "gate.mp4"), [videos]) is None
    assert api_source_problem(str(videos / "day1"), [videos]) is None
    for url in (
        "rtsp://169.254.169.254/live",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/video.mjpg",
        "rtsp://[fe80::1%25eth0]:554/x",
        "http://2852039166/",  # 169.254.169.254 as one number: the resolver reads it so
        "http://[::ffff:169.254.169.254]/",
        "rtsp://admin:pw@169.254.10.20/stream1",
    ):
        assert "link-local" in api_source_problem(url, [videos]), url
    for url in ("rtsp://10.0.0.5:554/stream1", "https://cams.example/live.m3u8", "rtsp://u:p@127.0.0.1:9/x"):
        assert api_source_problem(url, []) is None, url


@pytest.mark.parametrize("coordinate", ["1e308", "16385", "1.0e6"])
def test_pixel_coordinates_are_bounded_without_a_frame_size(coordinate):
    text = f"cameras:\n  gate:\n    zones:\n      z: {{points: [[0, 0], [{coordinate}, 0], [0, 10]]}}\n"
    message = error_of(text)
    assert "cameras.gate.zones.z" in message and "at most 16384" in message, message
    line = f"cameras:\n  gate:\n    lines:\n      l: {{points: [[0, 0], [{coordinate}, 10]], in: down}}\n"
    assert "at most 16384" in error_of(line)
    mask = f"cameras:\n  gate:\n    masks:\n      m: {{points: [[0, 0], [{coordinate}, 0], [0, 10]]}}\n"
    assert "at most 16384" in error_of(mask)
    # The largest frame's corner is fine.
    parse_config("cameras:\n  gate:\n    zones:\n      z: {points: [[0, 0], [16384, 0], [0, 16384]]}\n")
