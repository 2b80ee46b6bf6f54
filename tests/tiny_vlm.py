"""A tiny CLIP-like dual encoder that tests build and export themselves (no downloads).

The tiny model maps an image to its mean RGB colour (after normalisation)
and a text to the mean of its words' colours, then both through the same
linear layer to 8 dimensions. So "red" lands on a red image and "blue" on
a blue one *only* if preprocessing (BGR->RGB, resize, mean/std), tokenising,
padding, masking and normalisation are all right.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DIM = 8
SIZE = 16
CONTEXT = 8
#: Word -> colour in normalised RGB (mean 0.5, std 0.5 maps 0..255 to -1..1).
WORDS = {
    "red": (1, -1, -1),
    "green": (-1, 1, -1),
    "blue": (-1, -1, 1),
    "white": (1, 1, 1),
    "black": (-1, -1, -1),
    "person": (0, 0, 0),
    "car": (0, 0, 0),
}
VOCAB = ["[PAD]", "[UNK]", *WORDS]
#: BGR pixels of the colour images.
BGR = {
    "red": (0, 0, 255),
    "green": (0, 255, 0),
    "blue": (255, 0, 0),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
#: A fixed, well-conditioned 3 -> 8 projection shared by both towers.
PROJECTION = np.random.default_rng(7).normal(size=(3, DIM)).astype(np.float32)


def _projection(dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(3, dim)).astype(np.float32)


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def tiny_image_encoder(path: Path, dim: int = DIM, size: int | str = "S") -> Path:
    """pixel_values (N,3,S,S) -> global average pool -> (N,3) @ W -> L2-normalised image_embeds."""
    projection = PROJECTION if dim == DIM else _projection(dim, seed=1)
    nodes = [
        helper.make_node("GlobalAveragePool", ["pixel_values"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["projected"]),
        helper.make_node("LpNormalization", ["projected"], ["image_embeds"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_image",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["N", dim])],
        initializer=[numpy_helper.from_array(projection, "W")],
    )
    return _save(graph, path)


def tiny_text_encoder(path: Path, dim: int = DIM, with_mask: bool = True) -> Path:
    """input_ids (N,T) -> embedding gather -> (masked) mean over tokens -> @ W -> text_embeds."""
    table = np.zeros((len(VOCAB), 3), np.float32)
    for i, word in enumerate(VOCAB):
        table[i] = WORDS.get(word, (0, 0, 0))
    table[0] = (5, 5, 5)  # [PAD] is far from every colour: it must be masked out, never averaged in
    projection = PROJECTION if dim == DIM else _projection(dim, seed=2)
    inits = [
        numpy_helper.from_array(table, "E"),
        numpy_helper.from_array(projection, "W"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([-1], np.int64), "last"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
    ]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", "T"])]
    if with_mask:
        inputs.append(helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["N", "T"]))
        nodes = [
            helper.make_node("Gather", ["E", "input_ids"], ["emb"], axis=0),
            helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["maskf", "last"], ["mask3"]),
            helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
            helper.make_node("ReduceSum", ["maskf", "axis1"], ["count"], keepdims=1),
            helper.make_node("Max", ["count", "one"], ["count1"]),
            helper.make_node("Div", ["summed", "count1"], ["mean"]),
        ]
    else:  # like CLIP exports without a mask input: pads must then be neutral
        table[0] = 0
        inits[0] = numpy_helper.from_array(table, "E")
        nodes = [
            helper.make_node("Gather", ["E", "input_ids"], ["emb"], axis=0),
            helper.make_node("ReduceMean", ["emb"], ["mean"], axes=[1], keepdims=0),
        ]
    nodes += [
        helper.make_node("MatMul", ["mean", "W"], ["projected"]),
        helper.make_node("LpNormalization", ["projected"], ["text_embeds"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_text",
        inputs,
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["N", dim])],
        initializer=inits,
    )
    return _save(graph, path)


def tiny_tokenizer(path: Path) -> Path:
    """A lower-casing, whitespace-splitting WordLevel tokenizer over :data:`VOCAB`."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path))
    return path


def tiny_manifest(name: str = "tiny", **overrides: object) -> dict:
    manifest: dict = {
        "name": name,
        "dim": DIM,
        "logit_scale": 10.0,
        "description": "tiny colour model for tests",
        "image": {
            "file": "image.onnx",
            "input": "pixel_values",
            "output": "image_embeds",
            "size": SIZE,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "resize": "crop",
            "interpolation": "bilinear",
        },
        "text": {
            "file": "text.onnx",
            "tokenizer": "tokenizer.json",
            "input_ids": "input_ids",
            "attention_mask": "attention_mask",
            "output": "text_embeds",
            "context_length": CONTEXT,
            "pad_id": 0,
        },
    }
    manifest.update(overrides)
    return manifest


def build_tiny_model(
    folder: Path, name: str = "tiny", *, manifest: bool = True, with_mask: bool = True
) -> Path:
    """Write the tiny model's files (and, by default, its manifest.json) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tiny_image_encoder(folder / "image.onnx")
    tiny_text_encoder(folder / "text.onnx", with_mask=with_mask)
    tiny_tokenizer(folder / "tokenizer.json")
    if manifest:
        (folder / "manifest.json").write_text(json.dumps(tiny_manifest(name), indent=2))
    return folder


def colour_image(colour: str, h: int = 24, w: int = 32) -> np.ndarray:
    image = np.zeros((h, w, 3), np.uint8)
    image[:] = BGR[colour]
    return image
