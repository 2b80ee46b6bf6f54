"""A detector model that loads but fails on every frame: a real unexpected exception, for failure tests."""

from __future__ import annotations

from pathlib import Path


def broken_yolox(path: Path) -> Path:
    """Write an ONNX file shaped like a YOLOX export (so it loads) whose graph fails on every frame.

    The reshape target is computed from the input, so onnxruntime cannot refuse it at load time;
    running it raises onnxruntime's own error: an unexpected exception, not a camsight one.
    """
    import onnx
    from onnx import TensorProto, helper

    def const(name: str, dtype: int, values: list) -> onnx.TensorProto:
        return helper.make_tensor(name, dtype, [len(values)], values)

    nodes = [
        helper.make_node("Reshape", ["images", "flat_shape"], ["flat"]),
        helper.make_node("Slice", ["flat", "zero_i", "one_i"], ["first"]),
        helper.make_node("Mul", ["first", "zero_f"], ["nil"]),
        helper.make_node("Add", ["nil", "cols_f"], ["cols"]),
        helper.make_node("Cast", ["cols"], ["cols_i"], to=TensorProto.INT64),
        helper.make_node("Concat", ["lead", "cols_i"], ["shape"], axis=0),
        helper.make_node("Reshape", ["images", "shape"], ["output"]),  # 3*64*64 is no multiple of 85
    ]
    graph = helper.make_graph(
        nodes,
        "broken-yolox",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, "n", 85])],
        initializer=[
            const("flat_shape", TensorProto.INT64, [-1]),
            const("zero_i", TensorProto.INT64, [0]),
            const("one_i", TensorProto.INT64, [1]),
            const("zero_f", TensorProto.FLOAT, [0.0]),
            const("cols_f", TensorProto.FLOAT, [85.0]),
            const("lead", TensorProto.INT64, [1, -1]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
