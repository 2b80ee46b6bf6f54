"""The dual encoder, on a tiny CLIP-like model that the tests build and export themselves.

The tiny model maps an image to its mean RGB colour (after normalisation)
and a text to the mean of its words' colours, then both through the same
linear layer to 8 dimensions. So "red" lands on a red image and "blue" on
a blue one *only* if preprocessing (BGR->RGB, resize, mean/std), tokenising,
padding, masking and normalisation are all right.

The tiny model itself lives in tests/tiny_vlm.py (shared with the integration tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_vlm import (
    BGR,
    CONTEXT,
    DIM,
    build_tiny_model,
    colour_image,
    tiny_image_encoder,
    tiny_manifest,
    tiny_text_encoder,
)

from camsight.errors import CamsightError, ModelError
from camsight.search.embeddings import (
    DEFAULT_MODEL,
    MODELS_ENV,
    DualEncoder,
    ImageSpec,
    default_models_dir,
    load_encoder,
    preprocess,
    read_manifest,
)
from camsight.search.model_registry import REGISTRY_ENV, load_registry, model_status, parse_registry


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def encoder(tiny_dir) -> DualEncoder:
    return load_encoder(tiny_dir)


@pytest.fixture
def model_copy(tiny_dir, tmp_path) -> Path:
    """A private copy of the tiny model, free to break."""
    import shutil

    return Path(shutil.copytree(tiny_dir, tmp_path / "tiny"))


def edit_manifest(folder: Path, **changes: object) -> None:
    data = json.loads((folder / "manifest.json").read_text())
    for key, value in changes.items():
        if "__" in key:
            section, field = key.split("__")
            data[section][field] = value
        else:
            data[key] = value
    (folder / "manifest.json").write_text(json.dumps(data))


# --------------------------------------------------------------------------- what it computes


class TestRanking:
    def test_each_colour_word_finds_its_colour_image(self, encoder):
        colours = list(BGR)
        images = encoder.embed_images([colour_image(c) for c in colours])
        texts = encoder.embed_texts(colours)
        sims = DualEncoder.similarity(images, texts)
        for i, colour in enumerate(colours):
            assert colours[int(np.argmax(sims[i]))] == colour, (colour, sims[i])
            assert colours[int(np.argmax(sims[:, i]))] == colour, (colour, sims[:, i])

    def test_red_beats_blue_for_a_red_image_and_vice_versa(self, encoder):
        images = encoder.embed_images([colour_image("red"), colour_image("blue")])
        texts = encoder.embed_texts(["red", "blue"])
        sims = images @ texts.T
        assert sims[0, 0] > sims[0, 1] + 0.3
        assert sims[1, 1] > sims[1, 0] + 0.3
        assert sims[0, 0] == pytest.approx(1.0, abs=1e-4)

    def test_phrases_with_unknown_and_neutral_words_keep_their_colour(self, encoder):
        texts = encoder.embed_texts(["a RED car", "person in blue", "red", "blue"])
        assert texts[0] @ texts[2] == pytest.approx(1.0, abs=1e-4)
        assert texts[1] @ texts[3] == pytest.approx(1.0, abs=1e-4)

    def test_padding_is_masked_so_length_does_not_matter(self, encoder):
        short, padded = encoder.embed_texts(["red", "red"]), encoder.embed_texts(["red", "red car person"])
        assert short[0] @ padded[1] == pytest.approx(1.0, abs=1e-4)

    def test_text_longer_than_the_context_is_truncated(self, encoder):
        long = " ".join(["red"] * (CONTEXT * 5))
        out = encoder.embed_texts([long, "red"])
        assert out.shape == (2, DIM)
        assert out[0] @ out[1] == pytest.approx(1.0, abs=1e-4)
        feeds = encoder._text_feeds([long])
        assert feeds["input_ids"].shape == (1, CONTEXT)
        assert feeds["attention_mask"].sum() == CONTEXT

    def test_model_without_a_mask_input(self, tmp_path):
        folder = build_tiny_model(tmp_path / "nomask", with_mask=False)
        enc = load_encoder(folder)
        images = enc.embed_images([colour_image("red"), colour_image("blue")])
        sims = images @ enc.embed_texts(["red", "blue"]).T
        assert np.argmax(sims[0]) == 0 and np.argmax(sims[1]) == 1
        assert "attention_mask" not in enc._text_feeds(["red"])


class TestOutputs:
    def test_shapes_dtype_and_unit_length(self, encoder):
        crops = [colour_image("red", 10, 50), colour_image("green", 80, 20), colour_image("white", 3, 3)]
        images = encoder.embed_images(crops)
        texts = encoder.embed_texts(["red", "unknown words", "green car"])
        for out in (images, texts):
            assert out.dtype == np.float32
            assert out.shape == (3, DIM)
        np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(texts[[0, 2]], axis=1), 1.0, atol=1e-5)

    def test_a_text_with_nothing_known_gives_a_finite_row(self, encoder):
        # The tiny tokenizer adds no start/end tokens, so "" has no tokens at all;
        # the row is all zeros (similar to nothing), never NaN.
        out = encoder.embed_texts(["", "unknown"])
        assert np.isfinite(out).all()
        assert np.abs(out[0]).max() == 0.0

    def test_empty_inputs(self, encoder):
        assert encoder.embed_images([]).shape == (0, DIM)
        assert encoder.embed_texts([]).shape == (0, DIM)

    def test_batches_give_the_same_rows_as_single_calls(self, encoder):
        crops = [colour_image(c, 12 + 5 * i, 30 - 3 * i) for i, c in enumerate(BGR)]
        batched = encoder.embed_images(crops, batch_size=2)
        single = np.concatenate([encoder.embed_images([c]) for c in crops])
        np.testing.assert_allclose(batched, single, atol=1e-5)
        texts = ["red", "blue car", "green person", "white", "black"]
        np.testing.assert_allclose(
            encoder.embed_texts(texts, batch_size=2),
            np.concatenate([encoder.embed_texts([t]) for t in texts]),
            atol=1e-5,
        )

    def test_grey_and_bgra_crops_are_accepted(self, encoder):
        grey = np.full((20, 20), 255, np.uint8)
        bgra = np.dstack([colour_image("red"), np.full((24, 32), 255, np.uint8)])
        out = encoder.embed_images([grey, bgra])
        texts = encoder.embed_texts(["white", "red"])
        assert (out @ texts.T)[0, 0] == pytest.approx(1.0, abs=1e-3)
        assert (out @ texts.T)[1, 1] == pytest.approx(1.0, abs=1e-3)

    def test_bad_crops_are_programming_errors(self, encoder):
        with pytest.raises(ValueError, match="empty"):
            encoder.embed_images([np.zeros((0, 5, 3), np.uint8)])
        with pytest.raises(ValueError, match="BGR"):
            encoder.embed_images([np.zeros((5, 5, 2), np.uint8)])
        with pytest.raises(TypeError):
            encoder.embed_texts("red")

    def test_properties(self, encoder, tiny_dir):
        assert encoder.name == "tiny"
        assert encoder.dim == DIM
        assert encoder.logit_scale == 10.0
        assert encoder.folder == tiny_dir


class TestPreprocess:
    def spec(self, resize: str, size: int = 4) -> ImageSpec:
        return ImageSpec(file="i.onnx", size=size, mean=(0, 0, 0), std=(1, 1, 1), resize=resize)

    def halves(self) -> np.ndarray:
        """Wide image: left third blue, middle green, right third red (BGR)."""
        image = np.zeros((10, 30, 3), np.uint8)
        image[:, :10] = BGR["blue"]
        image[:, 10:20] = BGR["green"]
        image[:, 20:] = BGR["red"]
        return image

    def test_bgr_becomes_rgb_scaled_to_unit(self):
        out = preprocess([colour_image("red")], self.spec("squash"))
        assert out.shape == (1, 3, 4, 4) and out.dtype == np.float32
        assert out[0, :, 2, 2].tolist() == [1.0, 0.0, 0.0]

    def test_mean_and_std(self):
        spec = ImageSpec(file="i.onnx", size=4, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0), resize="squash")
        out = preprocess([colour_image("white")], spec)
        np.testing.assert_allclose(out[0, :, 0, 0], [1.0, 3.0, 0.5])

    def test_crop_keeps_the_centre(self):
        out = preprocess([self.halves()], self.spec("crop"))
        np.testing.assert_allclose(out[0, :, :, :].mean(axis=(1, 2)), [0, 1, 0], atol=1e-6)

    def test_squash_keeps_everything(self):
        out = preprocess([self.halves()], self.spec("squash", size=6))
        assert out[0, 2, 3, 0] == 1.0  # blue at the left
        assert out[0, 0, 3, 5] == 1.0  # red at the right

    def test_pad_letterboxes_with_the_mean_colour(self):
        spec = ImageSpec(file="i.onnx", size=6, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resize="pad")
        out = preprocess([colour_image("red", 10, 30)], spec)
        np.testing.assert_allclose(out[0, :, 0, :], 0.0, atol=0.01)  # top rows: padding, 0 after normalising
        np.testing.assert_allclose(out[0, :, 3, 3], [1.0, -1.0, -1.0], atol=1e-6)


# --------------------------------------------------------------------------- finding the model


class TestResolution:
    def test_explicit_folder_as_path_or_string(self, tiny_dir):
        assert load_encoder(tiny_dir).folder == tiny_dir
        assert load_encoder(str(tiny_dir)).name == "tiny"

    def test_name_in_camsight_models(self, tiny_dir, monkeypatch):
        monkeypatch.setenv(MODELS_ENV, str(tiny_dir.parent))
        assert load_encoder("tiny").folder == tiny_dir

    def test_default_models_dir_is_under_the_data_dir(self, tmp_path, monkeypatch):
        monkeypatch.delenv(MODELS_ENV, raising=False)
        monkeypatch.setenv("CAMSIGHT_DATA", str(tmp_path / "data"))
        assert default_models_dir() == tmp_path / "data" / "models"
        build_tiny_model(tmp_path / "data" / "models" / "tiny")
        assert load_encoder("tiny").name == "tiny"

    def test_missing_name_says_how_to_get_it(self, tmp_path, monkeypatch):
        monkeypatch.setenv(MODELS_ENV, str(tmp_path))
        with pytest.raises(ModelError) as info:
            load_encoder("clip-vit-b32")
        message = str(info.value)
        assert isinstance(info.value, CamsightError)
        assert "camsight models pull clip-vit-b32" in message
        assert str(tmp_path) in message
        assert "\n" not in message

    def test_none_means_the_default_model(self, tmp_path, monkeypatch):
        monkeypatch.setenv(MODELS_ENV, str(tmp_path))
        with pytest.raises(ModelError, match=f"camsight models pull {DEFAULT_MODEL}"):
            load_encoder(None)

    def test_missing_explicit_folder(self, tmp_path):
        with pytest.raises(ModelError, match="model folder not found"):
            load_encoder(tmp_path / "nowhere")

    def test_a_name_is_never_a_path(self, monkeypatch, tmp_path):
        monkeypatch.setenv(MODELS_ENV, str(tmp_path))
        with pytest.raises(ModelError, match="not a model name"):
            load_encoder("Bad Name")


# --------------------------------------------------------------------------- broken models


class TestBrokenModels:
    def test_folder_without_manifest(self, model_copy):
        (model_copy / "manifest.json").unlink()
        with pytest.raises(ModelError, match=r"manifest\.json is missing"):
            load_encoder(model_copy)

    def test_manifest_not_json(self, model_copy):
        (model_copy / "manifest.json").write_text('{"name": "tiny",\n "dim": }')
        with pytest.raises(ModelError, match=r"manifest.json:2: not valid JSON"):
            load_encoder(model_copy)

    def test_unknown_key_is_named(self, model_copy):
        edit_manifest(model_copy, image__sise=16)
        with pytest.raises(ModelError, match=r"image\.sise: unknown key"):
            load_encoder(model_copy)

    def test_missing_and_wrong_values_are_named(self, model_copy):
        data = json.loads((model_copy / "manifest.json").read_text())
        del data["dim"]
        data["text"]["context_length"] = "long"
        (model_copy / "manifest.json").write_text(json.dumps(data))
        with pytest.raises(ModelError) as info:
            load_encoder(model_copy)
        assert "dim: Field required" in str(info.value)
        assert "text.context_length" in str(info.value)

    def test_file_names_cannot_leave_the_folder(self, model_copy):
        edit_manifest(model_copy, image__file="../image.onnx")
        with pytest.raises(ModelError, match=r"image\.file"):
            load_encoder(model_copy)

    def test_missing_file(self, model_copy):
        (model_copy / "text.onnx").unlink()
        with pytest.raises(ModelError, match=r"incomplete: .*text\.onnx is missing.*pull tiny --force"):
            load_encoder(model_copy)

    def test_corrupt_onnx(self, model_copy):
        data = (model_copy / "image.onnx").read_bytes()
        (model_copy / "image.onnx").write_bytes(data[: len(data) // 2])
        with pytest.raises(ModelError, match=r"image encoder .*image\.onnx is not a usable ONNX model"):
            load_encoder(model_copy)

    def test_corrupt_tokenizer(self, model_copy):
        (model_copy / "tokenizer.json").write_text('{"version": "1.0", "model": 3}')
        with pytest.raises(ModelError, match=r"tokenizer .*tokenizer\.json cannot be loaded"):
            load_encoder(model_copy)

    def test_dim_mismatch_between_the_encoders(self, model_copy):
        tiny_text_encoder(model_copy / "text.onnx", dim=6)
        with pytest.raises(ModelError) as info:
            load_encoder(model_copy)
        message = str(info.value)
        assert "do not match" in message
        assert "8-d" in message and "6-d" in message

    def test_manifest_dim_differs_from_both_encoders(self, model_copy):
        edit_manifest(model_copy, dim=16)
        with pytest.raises(ModelError, match="dim is 16 but the encoders give 8-d"):
            load_encoder(model_copy)

    def test_fixed_input_size_must_match_the_manifest(self, model_copy):
        tiny_image_encoder(model_copy / "image.onnx", size=32)
        with pytest.raises(ModelError, match=r"image\.size is 16 but image\.onnx takes 32x32"):
            load_encoder(model_copy)

    def test_wrong_input_and_output_names_list_the_real_ones(self, model_copy):
        edit_manifest(model_copy, image__input="pixels")
        with pytest.raises(
            ModelError, match=r"'pixels' is not an input of image\.onnx \(it has: pixel_values"
        ):
            load_encoder(model_copy)
        edit_manifest(model_copy, image__input="pixel_values", text__output="embeds")
        with pytest.raises(
            ModelError, match=r"'embeds' is not an output of text\.onnx \(it has: text_embeds"
        ):
            load_encoder(model_copy)

    def test_graph_inputs_camsight_does_not_feed(self, model_copy):
        edit_manifest(model_copy, text__attention_mask=None)
        with pytest.raises(ModelError, match="needs inputs camsight does not provide: attention_mask"):
            load_encoder(model_copy)

    def test_pad_id_outside_the_vocabulary(self, model_copy):
        edit_manifest(model_copy, text__pad_id=999)
        with pytest.raises(ModelError, match="pad_id 999 is outside"):
            load_encoder(model_copy)

    def test_read_manifest_round_trip(self, tiny_dir):
        manifest = read_manifest(tiny_dir)
        assert manifest.files() == ("image.onnx", "text.onnx", "tokenizer.json")


# --------------------------------------------------------------------------- the registry


class TestRegistry:
    def test_builtin_registry_pins_every_file(self, monkeypatch):
        monkeypatch.delenv(REGISTRY_ENV, raising=False)
        registry = load_registry()
        assert registry.models, "the built-in registry should list at least one model"
        for name, entry in registry.models.items():
            assert entry.name == name
            assert entry.license, f"{name}: the licence must be stated"
            if entry.kind == "embedding":
                assert entry.manifest is not None and entry.manifest.name == name
            for remote in entry.files:
                assert remote.url.startswith("https://")
                assert "/resolve/main/" not in remote.url, "URLs must be pinned to a revision"
                assert len(remote.sha256) == 64 and remote.size > 0

    def test_builtin_default_detector_entry(self, monkeypatch):
        monkeypatch.delenv(REGISTRY_ENV, raising=False)
        entry = load_registry().get("yolox-nano")
        assert entry.kind == "detector" and entry.manifest is None
        assert entry.license.startswith("Apache-2.0")
        (remote,) = entry.files
        assert remote.name == "yolox_nano.onnx"
        assert "/releases/download/" in remote.url  # an immutable release asset
        # The shared evaluation copy is accepted for local installs, by size and checksum.
        assert remote.accepts(3660092, "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14")
        assert not remote.accepts(3660092, "0" * 64)

    def test_builtin_clip_entry(self, monkeypatch):
        monkeypatch.delenv(REGISTRY_ENV, raising=False)
        entry = load_registry().get("clip-vit-b32")
        assert entry.manifest.dim == 512
        assert entry.manifest.text.pad_id == 49407
        assert {f.name for f in entry.files} == set(entry.manifest.files())

    def test_environment_replaces_the_builtin_registry(self, tmp_path, monkeypatch):
        path = tmp_path / "registry.json"
        entry = {
            "files": [
                {"name": n, "url": f"http://127.0.0.1:9/{n}", "size": 1, "sha256": "0" * 64}
                for n in ("image.onnx", "text.onnx", "tokenizer.json")
            ],
            "manifest": tiny_manifest(),
        }
        path.write_text(json.dumps({"schema": 1, "models": {"tiny": entry}}))
        monkeypatch.setenv(REGISTRY_ENV, str(path))
        registry = load_registry()
        assert list(registry.models) == ["tiny"]
        with pytest.raises(ModelError, match=r"unknown model 'clip-vit-b32'; known models .*: tiny"):
            registry.get("clip-vit-b32")

    @pytest.mark.parametrize(
        ("mutate", "needle"),
        [
            (lambda e: e["files"][0].update(sha256="abc"), "sha256"),
            (lambda e: e["files"][0].update(name="manifest.json"), "manifest.json is written"),
            (lambda e: e["files"].pop(), "which files does not list"),
            (lambda e: e["manifest"].update(name="other"), "manifest.name is 'other'"),
            (lambda e: e.update(checksum="x"), "checksum: unknown key"),
        ],
    )
    def test_bad_registries_are_clear_errors(self, mutate, needle):
        entry = {
            "files": [
                {"name": n, "url": f"http://127.0.0.1:9/{n}", "size": 1, "sha256": "0" * 64}
                for n in ("image.onnx", "text.onnx", "tokenizer.json")
            ],
            "manifest": tiny_manifest(),
        }
        mutate(entry)
        with pytest.raises(ModelError, match=needle):
            parse_registry({"schema": 1, "models": {"tiny": entry}}, "reg.json")

    def test_missing_registry_file(self, tmp_path, monkeypatch):
        monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "none.json"))
        with pytest.raises(ModelError, match=f"model registry not found .named by {REGISTRY_ENV}"):
            load_registry()

    def test_status_of_folders(self, tiny_dir, tmp_path):
        assert model_status("tiny", tiny_dir.parent).state == "installed"
        assert model_status("other", tiny_dir.parent).state == "missing"
        (tmp_path / "broken").mkdir()
        status = model_status("broken", tmp_path)
        assert status.state == "damaged" and "manifest.json is missing" in status.detail
