"""Image-text embeddings from a CLIP/SigLIP-style dual encoder run by onnxruntime.

This is an optional plug-in: no vision-language weights ship with camsight
(DESIGN.md, "Models"). A model is a folder holding ``manifest.json``, an
image encoder, a text encoder and a Hugging Face ``tokenizers`` file::

    clip-vit-b32/
        manifest.json
        vision_model_quantized.onnx
        text_model_quantized.onnx
        tokenizer.json

``camsight models pull NAME`` downloads one (checksums pinned), and
:func:`load_encoder` finds it: an explicit folder, else
``<models dir>/<name>`` where the models dir is ``CAMSIGHT_MODELS`` or
``<data dir>/models``. Nothing is ever downloaded implicitly.

Example::

    >>> enc = load_encoder("clip-vit-b32")                      # doctest: +SKIP
    >>> images = enc.embed_images([crop_bgr])                   # doctest: +SKIP
    >>> texts = enc.embed_texts(["a person in a red jacket"])   # doctest: +SKIP
    >>> float((images @ texts.T)[0, 0])                         # doctest: +SKIP
    0.27
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from camsight.config.base import StrictModel
from camsight.errors import ModelError
from camsight.paths import MODELS_ENV, default_models_dir

if TYPE_CHECKING:
    import onnxruntime as ort
    from tokenizers import Tokenizer

MANIFEST = "manifest.json"
#: The model :func:`load_encoder` uses when none is named.
DEFAULT_MODEL = "clip-vit-b32"

#: Model names are folder names: lower-case letters, digits, ``.``, ``_`` and ``-``.
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
#: File names inside a model folder: one plain name, no directories.
FILE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

_EPS = 1e-12
_INTERPOLATION = {"bicubic": 2, "bilinear": 1, "area": 3}  # cv2.INTER_* values
_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}

FileName = Annotated[str, Field(pattern=FILE_PATTERN)]
Rgb = tuple[float, float, float]


class ImageSpec(StrictModel):
    """How the image encoder is fed.

    ``resize``: ``crop`` scales the shorter side to ``size`` and takes the
    centre square (CLIP's own preprocessing); ``pad`` letterboxes the whole
    crop onto a square of the mean colour; ``squash`` stretches it.
    Pixels are RGB, scaled to 0..1, then ``(x - mean) / std``, laid out NCHW.
    """

    file: FileName
    input: str = "pixel_values"
    output: str = "image_embeds"
    size: Annotated[int, Field(ge=1, le=2048)]
    mean: Rgb
    std: tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]]
    resize: Literal["crop", "pad", "squash"] = "crop"
    interpolation: Literal["bicubic", "bilinear", "area"] = "bicubic"


class TextSpec(StrictModel):
    """How the text encoder is fed.

    Texts are tokenised with ``tokenizer`` (its own post-processor adds any
    start/end tokens), truncated to ``context_length`` and padded with
    ``pad_id`` to exactly ``context_length``. ``attention_mask`` names the
    mask input; it is fed only when the graph declares it.
    """

    file: FileName
    tokenizer: FileName = "tokenizer.json"
    input_ids: str = "input_ids"
    attention_mask: str | None = "attention_mask"
    output: str = "text_embeds"
    context_length: Annotated[int, Field(ge=2, le=4096)] = 77
    pad_id: Annotated[int, Field(ge=0)]


class ModelManifest(StrictModel):
    """``manifest.json`` of a model folder; unknown keys are errors.

    Example (the tiny test model)::

        {"name": "tiny", "dim": 8,
         "image": {"file": "image.onnx", "size": 16, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
         "text": {"file": "text.onnx", "pad_id": 0, "context_length": 8}}
    """

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    dim: Annotated[int, Field(ge=1, le=65536)]
    image: ImageSpec
    text: TextSpec
    #: Multiplier that turns cosine similarities into softmax logits (CLIP: 100).
    logit_scale: Annotated[float, Field(gt=0)] | None = None
    description: str = ""
    license: str | None = None
    source: str | None = None

    @model_validator(mode="after")
    def _distinct_files(self) -> ModelManifest:
        if self.image.file == self.text.file:
            raise ValueError("image.file and text.file must be different files")
        return self

    def files(self) -> tuple[str, ...]:
        """The files the folder must hold besides ``manifest.json``."""
        return (self.image.file, self.text.file, self.text.tokenizer)


def validation_problems(exc: ValidationError, limit: int | None = None) -> str:
    """One line naming each bad key (the first ``limit`` of them)."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{where}: {msg}")
    if limit is not None and len(parts) > limit:
        return "; ".join(parts[:limit]) + f" (and {len(parts) - limit} more)"
    return "; ".join(parts)


def parse_manifest(data: Any, origin: str) -> ModelManifest:
    """Validate manifest data; a :class:`ModelError` names ``origin`` and each bad key."""
    if not isinstance(data, dict):
        raise ModelError(f"{origin}: a manifest must be a JSON object")
    try:
        return ModelManifest.model_validate(data)
    except ValidationError as exc:
        raise ModelError(f"{origin}: {validation_problems(exc)}") from None


def read_manifest(folder: Path) -> ModelManifest:
    """Read and validate ``folder/manifest.json``."""
    path = folder / MANIFEST
    data = read_json(path, missing=f"{folder} is not a model folder: {MANIFEST} is missing")
    return parse_manifest(data, str(path))


def read_json(path: Path, *, missing: str, what: str = "") -> Any:
    """Parse a JSON file; every failure is a one-line :class:`ModelError` naming the file (and line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(missing) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot read{' ' + what if what else ''} ({exc})") from None
    return parse_json(text, str(path))


def parse_json(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{origin}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 240 else text[:237] + "..."


def _session(path: Path, what: str, threads: int | None) -> ort.InferenceSession:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated types
        raise ModelError(f"{what} {path} is not a usable ONNX model ({_short(exc)})") from None


def _static_dim(value: object) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def preprocess(crops_bgr: Sequence[np.ndarray], spec: ImageSpec) -> np.ndarray:
    """BGR crops -> an ``(N, 3, size, size)`` float32 batch, per ``spec``.

    Accepts uint8 BGR (H, W, 3), BGRA (H, W, 4) or grey (H, W) arrays.

    >>> spec = ImageSpec(file="i.onnx", size=4, mean=(0, 0, 0), std=(1, 1, 1))
    >>> red = np.zeros((6, 10, 3), np.uint8); red[..., 2] = 255
    >>> preprocess([red], spec)[0, :, 0, 0].tolist()     # RGB order, 0..1
    [1.0, 0.0, 0.0]
    """
    import cv2

    size = spec.size
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    interp = _INTERPOLATION[spec.interpolation]
    out = np.empty((len(crops_bgr), 3, size, size), np.float32)
    for i, crop in enumerate(crops_bgr):
        image = np.asarray(crop)
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"crop {i}: expected an (H, W, 3) BGR image, got shape {image.shape}")
        h, w = image.shape[:2]
        if h == 0 or w == 0:
            raise ValueError(f"crop {i} is empty ({w}x{h})")
        if image.dtype != np.uint8:
            image = np.clip(image, 0, 255).astype(np.uint8)
        if spec.resize == "squash":
            square = cv2.resize(image, (size, size), interpolation=interp)
        elif spec.resize == "crop":
            scale = size / min(h, w)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            resized = cv2.resize(image, (nw, nh), interpolation=interp)
            top, left = (nh - size) // 2, (nw - size) // 2
            square = resized[top : top + size, left : left + size]
        else:  # pad: whole crop, letterboxed with the mean colour (0 after normalising)
            scale = size / max(h, w)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            resized = cv2.resize(image, (nw, nh), interpolation=interp)
            fill = np.round(mean[::-1] * 255).astype(np.uint8)
            square = np.empty((size, size, 3), np.uint8)
            square[:] = fill
            top, left = (size - nh) // 2, (size - nw) // 2
            square[top : top + nh, left : left + nw] = resized
        rgb = square[:, :, ::-1].astype(np.float32) / 255.0
        out[i] = ((rgb - mean) / std).transpose(2, 0, 1)
    return out


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, _EPS)


class DualEncoder:
    """An image encoder and a text encoder that embed into one space.

    Both ``embed_*`` methods return ``(N, dim)`` float32 rows of unit
    length, so ``images @ texts.T`` is the cosine similarity.

    >>> enc = load_encoder("/srv/models/clip-vit-b32")   # doctest: +SKIP
    >>> enc.dim                                          # doctest: +SKIP
    512
    """

    def __init__(self, folder: Path, manifest: ModelManifest, *, threads: int | None = None) -> None:
        self.folder = folder
        self.manifest = manifest
        for name in manifest.files():
            if not (folder / name).is_file():
                raise ModelError(
                    f"model {manifest.name!r} is incomplete: {folder / name} is missing "
                    f"(run: camsight models pull {manifest.name} --force)"
                )
        self._image = _session(folder / manifest.image.file, "image encoder", threads)
        self._text = _session(folder / manifest.text.file, "text encoder", threads)
        self._tokenizer = self._load_tokenizer(folder / manifest.text.tokenizer)
        self._check_graphs()
        self._check_dims()

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def logit_scale(self) -> float | None:
        return self.manifest.logit_scale

    # ------------------------------------------------------------------ embedding

    def embed_images(self, crops_bgr: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """Embed BGR crops (any size) into ``(N, dim)`` unit rows.

        >>> enc.embed_images([frame[y0:y1, x0:x1]]).shape   # doctest: +SKIP
        (1, 512)
        """
        spec = self.manifest.image
        if len(crops_bgr) == 0:
            return np.zeros((0, self.dim), np.float32)
        batch = max(1, self._image_batch or batch_size)
        rows = []
        for start in range(0, len(crops_bgr), batch):
            blob = preprocess(crops_bgr[start : start + batch], spec).astype(self._image_dtype, copy=False)
            out = self._image.run([spec.output], {spec.input: blob})[0]
            rows.append(self._rows(out, len(blob), "image"))
        return _normalise(np.concatenate(rows))

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed texts into ``(N, dim)`` unit rows.

        A row the encoder maps to zero (a tokenizer without start/end tokens
        given an empty text) stays zero rather than becoming NaN.

        >>> enc.embed_texts(["white van", "person with a backpack"]).shape   # doctest: +SKIP
        (2, 512)
        """
        if isinstance(texts, str):
            raise TypeError("embed_texts takes a list of strings, not one string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        rows = []
        for start in range(0, len(texts), batch_size):
            feeds = self._text_feeds(list(texts[start : start + batch_size]))
            out = self._text.run([self.manifest.text.output], feeds)[0]
            rows.append(self._rows(out, len(feeds[self.manifest.text.input_ids]), "text"))
        return _normalise(np.concatenate(rows))

    @staticmethod
    def similarity(images: np.ndarray, texts: np.ndarray) -> np.ndarray:
        """Cosine similarity ``(N images, M texts)`` of embeddings from this encoder.

        >>> DualEncoder.similarity(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32)).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
        """
        return np.asarray(images, np.float32) @ np.asarray(texts, np.float32).T

    # ------------------------------------------------------------------ internals

    def _load_tokenizer(self, path: Path) -> Tokenizer:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ModelError(
                "vision-language models need the 'tokenizers' package: pip install tokenizers"
            ) from None
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception subclasses
            raise ModelError(f"tokenizer {path} cannot be loaded ({_short(exc)})") from None
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.manifest.text.context_length)
        vocab = tokenizer.get_vocab_size(with_added_tokens=True)
        if self.manifest.text.pad_id >= vocab:
            raise ModelError(
                f"{self.folder / MANIFEST}: text.pad_id {self.manifest.text.pad_id} is outside "
                f"the tokenizer's vocabulary of {vocab}"
            )
        return tokenizer

    def _check_graphs(self) -> None:
        m = self.manifest
        where = self.folder / MANIFEST
        image_inputs = {i.name: i for i in self._image.get_inputs()}
        image_outputs = {o.name: o for o in self._image.get_outputs()}
        if m.image.input not in image_inputs:
            raise ModelError(
                f"{where}: image.input {m.image.input!r} is not an input of {m.image.file} "
                f"(it has: {', '.join(image_inputs)})"
            )
        extra = sorted(set(image_inputs) - {m.image.input})
        if extra:
            raise ModelError(f"{m.image.file} needs inputs camsight does not provide: {', '.join(extra)}")
        if m.image.output not in image_outputs:
            raise ModelError(
                f"{where}: image.output {m.image.output!r} is not an output of {m.image.file} "
                f"(it has: {', '.join(image_outputs)})"
            )
        pixels = image_inputs[m.image.input]
        self._image_dtype = _ORT_TYPES.get(pixels.type)
        if self._image_dtype not in (np.float32, np.float16, np.float64):
            raise ModelError(f"{m.image.file}: input {pixels.name!r} has type {pixels.type}, not float")
        shape = list(pixels.shape)
        if len(shape) != 4:
            raise ModelError(f"{m.image.file}: input {pixels.name!r} is not NCHW (shape {shape})")
        if _static_dim(shape[1]) not in (None, 3):
            raise ModelError(f"{m.image.file}: input {pixels.name!r} has {shape[1]} channels, not 3")
        for side in shape[2:]:
            if _static_dim(side) not in (None, m.image.size):
                raise ModelError(
                    f"{where}: image.size is {m.image.size} but {m.image.file} takes "
                    f"{shape[2]}x{shape[3]} images"
                )
        self._image_batch = _static_dim(shape[0])

        text_inputs = {i.name: i for i in self._text.get_inputs()}
        text_outputs = {o.name for o in self._text.get_outputs()}
        if m.text.input_ids not in text_inputs:
            raise ModelError(
                f"{where}: text.input_ids {m.text.input_ids!r} is not an input of {m.text.file} "
                f"(it has: {', '.join(text_inputs)})"
            )
        self._feed_mask = m.text.attention_mask is not None and m.text.attention_mask in text_inputs
        known = {m.text.input_ids, m.text.attention_mask}
        extra = sorted(set(text_inputs) - known)
        if extra:
            raise ModelError(f"{m.text.file} needs inputs camsight does not provide: {', '.join(extra)}")
        if m.text.output not in text_outputs:
            raise ModelError(
                f"{where}: text.output {m.text.output!r} is not an output of {m.text.file} "
                f"(it has: {', '.join(sorted(text_outputs))})"
            )
        self._ids_dtype = _ORT_TYPES.get(text_inputs[m.text.input_ids].type, np.int64)
        self._mask_dtype = (
            _ORT_TYPES.get(text_inputs[m.text.attention_mask].type, np.int64) if self._feed_mask else np.int64
        )

    def _check_dims(self) -> None:
        """Run each encoder once, so a dim mismatch is found at load time, not mid-search."""
        m = self.manifest
        probe = np.full((1, 3, m.image.size, m.image.size), 0.0, self._image_dtype)
        try:
            image_out = np.asarray(self._image.run([m.image.output], {m.image.input: probe})[0])
        except Exception as exc:
            raise ModelError(f"image encoder {m.image.file} fails on a test image ({_short(exc)})") from None
        try:
            text_out = np.asarray(self._text.run([m.text.output], self._text_feeds(["a photo"]))[0])
        except Exception as exc:
            raise ModelError(f"text encoder {m.text.file} fails on a test text ({_short(exc)})") from None
        dims = {"image": _width(image_out), "text": _width(text_out)}
        if dims["image"] != dims["text"]:
            raise ModelError(
                f"model {m.name!r}: the encoders do not match: {m.image.file} gives {dims['image']} "
                f"and {m.text.file} gives {dims['text']} (manifest dim {m.dim})"
            )
        if dims["image"] != f"{m.dim}-d embeddings":
            where = self.folder / MANIFEST
            raise ModelError(f"{where}: dim is {m.dim} but the encoders give {dims['image']}")

    def _rows(self, out: np.ndarray, n: int, which: str) -> np.ndarray:
        out = np.asarray(out)
        if out.ndim != 2 or out.shape[0] != n or out.shape[1] != self.dim:
            raise ModelError(
                f"model {self.name!r}: the {which} encoder gave {_width(out)} for {n} inputs, "
                f"expected {n} rows of dim {self.dim}"
            )
        return out.astype(np.float32, copy=False)

    def _text_feeds(self, texts: list[str]) -> dict[str, np.ndarray]:
        spec = self.manifest.text
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.full((len(texts), spec.context_length), spec.pad_id, self._ids_dtype)
        mask = np.zeros((len(texts), spec.context_length), self._mask_dtype)
        for row, enc in enumerate(encodings):
            tokens = enc.ids[: spec.context_length]
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        feeds = {spec.input_ids: ids}
        if self._feed_mask and spec.attention_mask is not None:
            feeds[spec.attention_mask] = mask
        return feeds


def _width(out: np.ndarray) -> str:
    """``"512-d embeddings"``, or the odd shape an encoder gave instead."""
    return f"{out.shape[1]}-d embeddings" if out.ndim == 2 else f"an output of shape {tuple(out.shape)}"


def _looks_like_path(value: str | Path) -> bool:
    if isinstance(value, Path):
        return True
    return os.sep in value or "/" in value or value.startswith(("~", "."))


def load_encoder(name_or_path: str | Path | None = None, *, threads: int | None = None) -> DualEncoder:
    """Load a dual encoder by folder path or by installed model name.

    * a :class:`~pathlib.Path` (or a string with a ``/``) is the model folder;
    * a name is looked up as ``<models dir>/<name>``, the models dir being
      ``CAMSIGHT_MODELS`` or ``<data dir>/models``;
    * ``None`` means :data:`DEFAULT_MODEL`.

    A missing model raises :class:`ModelError` naming ``camsight models pull NAME``.

    >>> enc = load_encoder("clip-vit-b32")            # doctest: +SKIP
    >>> enc = load_encoder(Path("models/tiny"))       # doctest: +SKIP
    """
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    if _looks_like_path(name_or_path):
        folder = Path(name_or_path).expanduser()
        if not folder.is_dir():
            raise ModelError(f"model folder not found: {folder}")
    else:
        name = str(name_or_path)
        if not re.match(NAME_PATTERN, name):
            raise ModelError(f"{name!r} is not a model name (lower-case letters, digits, '.', '_', '-')")
        directory = default_models_dir()
        folder = directory / name
        if not folder.is_dir():
            where = f"{MODELS_ENV}={directory}" if os.environ.get(MODELS_ENV) else str(directory)
            raise ModelError(
                f"vision-language model {name!r} is not installed (looked in {where}): "
                f"run: camsight models pull {name}"
            )
    manifest = read_manifest(folder)
    return DualEncoder(folder, manifest, threads=threads)
