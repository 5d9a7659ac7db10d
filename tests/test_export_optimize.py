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
from w2v2_onnx_export.optimize import optimize_fp32, rewrite_score_scaling


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
    assert optimized.parity["fp32"]["max_abs_diff"] < 1e-4
    assert optimized.parity["fp32"]["batch_max_abs_diff"] < 1e-4


def test_fp16_of_the_fused_graph_runs_on_cpu(optimized: ExportReport) -> None:
    assert optimized.node_counts["fp16"].get("Attention") == 2
    assert optimized.parity["fp16"]["argmax_agreement"] > 0.9


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
