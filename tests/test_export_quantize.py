"""The int8 pass that quantizes a conv layer's input before its columns are gathered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from w2v2_onnx_export.quantize import quantize_int8

ROWS, WIDTH, SPILL, OUT = 50, 8, 4, 6


def quantize_graph(tmp_path: Path, nodes: list, shape: list[int], initializers: list) -> tuple[list[str], Path]:
    """Save a one-input (``x``) one-output (``y``) fp32 graph, quantize it; return the notes and the int8 file."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "fp32.onnx"))
    return quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", []), tmp_path / "int8.onnx"


def run_int8(path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def gather_then_matmul(path: Path, *, foreign_input: bool = False) -> np.ndarray:
    """``[x[:-1], x[1:, :SPILL]] @ W`` (the channels-last conv of conv_matmul.py) as an fp32 ONNX file."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((WIDTH + SPILL, OUT)).astype(np.float32)

    def ints(name: str, values: list[int]) -> onnx.TensorProto:
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    initializers = [numpy_helper.from_array(weight, "W"), ints("zero", [0]), ints("one", [1]), ints("last", [-1]),
                    ints("big", [1 << 30]), ints("spill", [SPILL]), ints("axis1", [1])]
    nodes = [
        helper.make_node("Slice", ["x", "zero", "last", "zero"], ["head"]),  # x[:-1]
        helper.make_node("Slice", ["x", "one", "big", "zero"], ["tail_rows"]),  # x[1:]
        helper.make_node("Slice", ["tail_rows", "zero", "spill", "axis1"], ["tail"]),  # x[1:, :SPILL]
        helper.make_node("Concat", ["head", "other" if foreign_input else "tail"], ["columns"], axis=1),
        helper.make_node("MatMul", ["columns", "W"], ["y"]),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [ROWS, WIDTH])]
    if foreign_input:
        inputs.append(helper.make_tensor_value_info("other", TensorProto.FLOAT, [ROWS - 1, SPILL]))
    graph = helper.make_graph(nodes, "gather", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return weight


def test_input_is_quantized_once_and_columns_gathered_in_uint8(tmp_path: Path) -> None:
    weight = gather_then_matmul(tmp_path / "fp32.onnx")
    notes = quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", [])
    assert any("1 column gather(s) read a quantized (uint8) input" in note for note in notes)
    model = onnx.load(str(tmp_path / "int8.onnx"))
    quantizers = [node for node in model.graph.node if node.op_type == "DynamicQuantizeLinear"]
    assert [node.input[0] for node in quantizers] == ["x"]  # the input itself, not the columns
    x = np.random.default_rng(1).standard_normal((ROWS, WIDTH)).astype(np.float32)
    (got,) = ort.InferenceSession(str(tmp_path / "int8.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})
    expected = np.concatenate([x[:-1], x[1:, :SPILL]], axis=1) @ weight
    assert got.shape == expected.shape
    # int8 error: a few percent of the output's scale, far below the gap to a wrong gather
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()
    wrong = np.concatenate([x[1:], x[:-1, :SPILL]], axis=1) @ weight
    assert np.abs(wrong - expected).max() > 0.3 * np.abs(expected).max()


def test_frames_gathered_by_index_are_gathered_from_the_uint8_copy(tmp_path: Path) -> None:
    """The front-end's form: ``Gather`` of frames ``2t, 2t+1, 2t+2`` then a reshape to ``[frames, 3 * C]``."""
    rng = np.random.default_rng(2)
    channels, frames = 4, 21
    count = (frames - 1) // 2
    taps = (np.arange(count)[:, None] * 2 + np.arange(3)[None, :]).reshape(-1).astype(np.int64)
    weight = rng.standard_normal((3 * channels, OUT)).astype(np.float32)
    nodes = [helper.make_node("Gather", ["x", "taps"], ["frames"], axis=0),
             helper.make_node("Reshape", ["frames", "shape"], ["columns"]),
             helper.make_node("MatMul", ["columns", "W"], ["y"])]
    initializers = [numpy_helper.from_array(taps, "taps"), numpy_helper.from_array(weight, "W"),
                    numpy_helper.from_array(np.array([count, 3 * channels], dtype=np.int64), "shape")]
    notes, int8 = quantize_graph(tmp_path, nodes, [frames, channels], initializers)
    assert any("1 column gather(s) read a quantized (uint8) input" in note for note in notes)
    quantizers = [n for n in onnx.load(str(int8)).graph.node if n.op_type == "DynamicQuantizeLinear"]
    assert [node.input[0] for node in quantizers] == ["x"]
    x = rng.standard_normal((frames, channels)).astype(np.float32)
    got = run_int8(int8, x)
    expected = x[taps].reshape(count, 3 * channels) @ weight
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()


def test_columns_not_all_cut_from_one_tensor_are_left_alone(tmp_path: Path) -> None:
    gather_then_matmul(tmp_path / "fp32.onnx", foreign_input=True)
    notes = quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", [])
    assert not any("column gather(s) read a quantized" in note for note in notes)
    model = onnx.load(str(tmp_path / "int8.onnx"))
    quantizers = [node for node in model.graph.node if node.op_type == "DynamicQuantizeLinear"]
    assert [node.input[0] for node in quantizers] == ["columns"]


def test_a_tensor_gathered_twice_is_quantized_before_one_gather_only(tmp_path: Path) -> None:
    """Two gathers of one tensor, each feeding its own MatMul: only the first moves (one new quantizer per
    tensor), and the graph stays valid and close to fp32."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((ROWS, WIDTH)).astype(np.float32)
    weights = [rng.standard_normal((WIDTH, OUT)).astype(np.float32) for _ in range(2)]
    nodes = [helper.make_node("Slice", ["x", "zero", "last", "zero"], ["a"]),
             helper.make_node("Slice", ["x", "one", "big", "zero"], ["b"]),
             helper.make_node("MatMul", ["a", "W0"], ["ya"]), helper.make_node("MatMul", ["b", "W1"], ["yb"]),
             helper.make_node("Add", ["ya", "yb"], ["y"])]
    initializers = [numpy_helper.from_array(w, f"W{i}") for i, w in enumerate(weights)] + [
        numpy_helper.from_array(np.array([v], dtype=np.int64), n)
        for n, v in (("zero", 0), ("one", 1), ("last", -1), ("big", 1 << 30))]
    notes, int8 = quantize_graph(tmp_path, nodes, [ROWS, WIDTH], initializers)
    assert any("1 column gather(s) read a quantized (uint8) input" in note for note in notes)
    got = run_int8(int8, x)
    expected = x[:-1] @ weights[0] + x[1:] @ weights[1]
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()
