"""Configuration: strict YAML, errors naming file, line and key."""

from __future__ import annotations

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
