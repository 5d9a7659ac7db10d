"""The ONNX Runtime transformer optimizer: Attention fuses, parity holds, a bad optimization is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest_export import TINY_SECONDS, tiny_group_checkpoint  # noqa: F401
from onnx import TensorProto, helper

from w2v2_onnx_export import ExportReport, Thresholds, export_model
from w2v2_onnx_export.optimize import drop_mask_tile, optimize_fp32, rewrite_score_scaling, sum_instead_of_cumsum


@pytest.fixture(scope="module")
def optimized(tiny_group_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportReport:  # noqa: F811
    out = tmp_path_factory.mktemp("optimized")
    return export_model(
        tiny_group_checkpoint,
        out,
        precisions=("fp32", "fp16"),
        optimize=True,
        thresholds=Thresholds(fp16_max_cer=0.2),
        validation_seconds=TINY_SECONDS,
        calibration_items=3,
    )


def test_attention_fuses_and_parity_holds(optimized: ExportReport) -> None:
    before, after = optimized.node_counts["fp32_exported"], optimized.node_counts["fp32"]
    assert after.get("Attention") == 2  # one per transformer layer
    assert after.get("SkipLayerNormalization", 0) > 0
    assert sum(after.values()) < sum(before.values())
    assert any("2 score scalings rewritten" in note for note in optimized.notes)
    # the padding mask's Tile (no CUDA kernel for bool) and the sample CumSum are gone; the batch parity
    # below is on a padded batch, so the masking still works
    assert before.get("Tile") == 1 and "Tile" not in after
    assert after.get("CumSum", 0) == before["CumSum"] - 1
    assert any("1 mask Tile(s) dropped, 1 CumSum(s) replaced" in note for note in optimized.notes)
    assert optimized.parity["fp32"]["max_abs_diff"] < 1e-4
    assert optimized.parity["fp32"]["batch_max_abs_diff"] < 1e-4


def test_fp16_of_the_fused_graph_runs_on_cpu(optimized: ExportReport) -> None:
    assert optimized.node_counts["fp16"].get("Attention") == 2
    assert optimized.parity["fp16"]["argmax_agreement"] > 0.9


def test_fp16_front_end_is_matmuls_by_default(optimized: ExportReport, tiny_group_checkpoint: Path,  # noqa: F811
                                              tmp_path: Path) -> None:
    # the front-end convs become matmuls; the positional conv stays a Conv; no mask Tile either way
    convs = optimized.node_counts["fp32"]["Conv"]
    assert convs > 2 and optimized.node_counts["fp16"]["Conv"] == 1
    assert "Tile" not in optimized.node_counts["fp16"]
    assert f"fp16: {convs - 1} conv layers rewritten as channels-last matmuls" in optimized.notes
    plain = export_model(tiny_group_checkpoint, tmp_path / "plain", precisions=("fp16",), validate=False,
                         fp16_front_end="conv")
    assert plain.node_counts["fp16"]["Conv"] == convs
    assert not any(note.startswith("fp16:") for note in plain.notes)


def test_score_scaling_rewrite_is_exact() -> None:
    q = helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 2, 5, 4])
    k = helper.make_tensor_value_info("k", TensorProto.FLOAT, [1, 2, 4, 5])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, 5, 5])
    out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 2, 5, 5])
    nodes = [
        helper.make_node("MatMul", ["q", "k"], ["scores"], name="qk"),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"], name="scale_mul"),
        helper.make_node("Add", ["scaled", "mask"], ["masked"], name="mask_add"),
        helper.make_node("Softmax", ["masked"], ["probs"], axis=-1, name="softmax"),
    ]
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [0.5])
    graph = helper.make_graph(nodes, "attn", [q, k, mask], [out], initializer=[scale])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rng = np.random.default_rng(0)
    feeds = {
        "q": rng.standard_normal((1, 2, 5, 4), dtype=np.float32),
        "k": rng.standard_normal((1, 2, 4, 5), dtype=np.float32),
        "mask": np.zeros((1, 1, 5, 5), np.float32),
    }
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, feeds
    )[0]
    assert rewrite_score_scaling(model) == 1
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Div", "Add", "Softmax"]
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, feeds
    )[0]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_optimization_that_changes_results_is_refused(
    optimized: ExportReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.onnx_model import OnnxModel

    path = tmp_path / "model.onnx"
    path.write_bytes(Path(optimized.files["fp32"]).read_bytes())
    original = path.read_bytes()

    def broken(model: onnx.ModelProto, **_: object) -> OnnxModel:
        # A "fusion" that scales the log-probabilities: runs fine, gives different numbers.
        for node in model.graph.node:
            if node.op_type == "LogSoftmax":
                node.output[0] = "pre_scale"
        model.graph.node.append(helper.make_node("Mul", ["pre_scale", "two"], ["log_probs"]))
        model.graph.initializer.append(helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]))
        return OnnxModel(model)

    monkeypatch.setattr(optimizer, "optimize_model", broken)
    config = type("Config", (), {"num_attention_heads": 2, "hidden_size": 32})()
    notes = optimize_fp32(path, config, probe_lengths=(140, 1001))
    assert notes and notes[0].startswith("optimizer skipped: the optimized graph differs")
    assert path.read_bytes() == original


def _mask_graph(tile_feeds_where_value: bool) -> onnx.ModelProto:
    """mask [B, T, 1] -> Tile [1, 1, H] -> Not -> Cast(bool) -> Where(cond, 0, hidden); optionally the tiled mask
    is also a Where value (then the Tile must stay)."""
    mask = helper.make_tensor_value_info("mask", TensorProto.BOOL, [2, 3, 1])
    hidden = helper.make_tensor_value_info("hidden", TensorProto.FLOAT, [2, 3, 4])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 3, 4])
    nodes = [
        helper.make_node("Concat", ["one", "one", "width"], ["repeats"], axis=0),
        helper.make_node("Tile", ["mask", "repeats"], ["tiled"]),
        helper.make_node("Not", ["tiled"], ["padded"]),
        helper.make_node("Cast", ["padded"], ["padded_bool"], to=TensorProto.BOOL),
        helper.make_node("Where", ["padded_bool", "zero", "hidden"], ["zeroed"]),
    ]
    if tile_feeds_where_value:
        nodes.append(helper.make_node("Cast", ["tiled"], ["tiled_float"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("Add", ["zeroed", "tiled_float"], ["out"]))
    else:
        nodes.append(helper.make_node("Identity", ["zeroed"], ["out"]))
    inits = [helper.make_tensor("one", TensorProto.INT64, [1], [1]),
             helper.make_tensor("width", TensorProto.INT64, [1], [4]),
             helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])]
    graph = helper.make_graph(nodes, "mask", [mask, hidden], [out], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, feeds: dict) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def test_mask_tile_dropped_where_broadcasting_gives_the_same_values() -> None:
    rng = np.random.default_rng(0)
    feeds = {"mask": rng.random((2, 3, 1)) > 0.5, "hidden": rng.standard_normal((2, 3, 4)).astype(np.float32)}
    model = _mask_graph(tile_feeds_where_value=False)
    want = _run(model, feeds)
    assert drop_mask_tile(model) == 1
    assert "Tile" not in {n.op_type for n in model.graph.node}
    np.testing.assert_array_equal(_run(model, feeds), want)
    assert (want[~feeds["mask"][..., 0]] == 0).all() and (want[feeds["mask"][..., 0]] != 0).all()


def test_mask_tile_kept_when_its_values_are_used() -> None:
    model = _mask_graph(tile_feeds_where_value=True)
    assert drop_mask_tile(model) == 0
    assert "Tile" in {n.op_type for n in model.graph.node}


@pytest.mark.parametrize("gather_index", [-1, 2])
def test_last_running_total_becomes_a_sum(gather_index: int) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.INT64, [2, 5])
    out = helper.make_tensor_value_info("out", TensorProto.INT64, [2])
    nodes = [helper.make_node("CumSum", ["x", "axis"], ["running"]),
             helper.make_node("Gather", ["running", "index"], ["out"], axis=1)]
    inits = [helper.make_tensor("axis", TensorProto.INT64, [], [-1]),
             helper.make_tensor("index", TensorProto.INT64, [], [gather_index])]
    model = helper.make_model(helper.make_graph(nodes, "cumsum", [x], [out], initializer=inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    feeds = {"x": np.arange(10, dtype=np.int64).reshape(2, 5) % 3}
    want = _run(model, feeds)
    replaced = sum_instead_of_cumsum(model)
    assert replaced == (1 if gather_index == -1 else 0)  # only the last running total is a sum
    np.testing.assert_array_equal(_run(model, feeds), want)
