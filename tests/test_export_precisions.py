"""fp16 and int8 models: they load on the CPU provider, keep the contract, and stay near fp32."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest_export import small_standard_checkpoint

from w2v2_onnx.errors import ExportError, ValidationError
from w2v2_onnx_export import ExportReport, Thresholds, export_model
from w2v2_onnx_export.calibration import synthetic_audio

LOOSE = Thresholds(fp16_max_cer=1.0, int8_max_cer=1.0)
SECONDS = (1.0, 4.1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_standard_checkpoint(tmp_path_factory.mktemp("ckpt_std"))


@pytest.fixture(scope="module")
def all_precisions(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportReport:
    out = tmp_path_factory.mktemp("model_all")
    return export_model(
        checkpoint,
        out,
        optimize=False,
        precisions=("fp32", "fp16", "int8"),
        thresholds=LOOSE,
        validation_seconds=SECONDS,
        calibration_items=6,
        int8_method="dynamic",  # the plain MatMul-only int8, compared with the default below
    )


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, clip: np.ndarray) -> np.ndarray:
    log_probs, lengths = session.run(
        None, {"input_values": clip[None], "input_lengths": np.array([len(clip)])}
    )
    return log_probs[0, : int(lengths[0])]


def test_directory_lists_every_precision(all_precisions: ExportReport) -> None:
    out = all_precisions.out_dir
    config = json.loads((out / "w2v2_onnx.json").read_text())
    assert config["files"] == {
        "fp32": "model.fp32.onnx",
        "fp16": "model.fp16.onnx",
        "int8": "model.int8.onnx",
    }
    for precision, name in config["files"].items():
        model = onnx.load(str(out / name))
        meta = json.loads({p.key: p.value for p in model.metadata_props}["w2v2_onnx"])
        assert meta["precision"] == precision
        types = [i.type.tensor_type.elem_type for i in model.graph.input]
        assert types == [onnx.TensorProto.FLOAT, onnx.TensorProto.INT64]
        assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    report = json.loads((out / "export_report.json").read_text())
    assert set(report["parity"]) == {"fp32", "fp16", "int8"}
    # (tiny weights: quantization overhead outweighs the saving; sizes of real models are in docs/export.md)


def test_fp16_weights_are_half_and_norms_stay_fp32(all_precisions: ExportReport) -> None:
    model = onnx.load(str(all_precisions.files["fp16"]))
    big = [i for i in model.graph.initializer if np.prod(i.dims) >= 1024]
    assert big and all(i.data_type == onnx.TensorProto.FLOAT16 for i in big)
    model = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    kept = [
        n
        for n in model.graph.node
        if n.op_type in ("LayerNormalization", "Softmax", "ReduceSum", "LogSoftmax")
    ]
    assert kept
    for node in kept:
        assert types.get(node.output[0]) != onnx.TensorProto.FLOAT16, node.name


def test_fp16_matches_fp32_on_long_input(all_precisions: ExportReport) -> None:
    # 40 s: sums over 640,000 samples and the group norm over 128,000 frames overflow if done in fp16.
    clip = np.tile(synthetic_audio(1, seconds=8.0, seed=5)[0], 5)
    ref = _run(_session(all_precisions.files["fp32"]), clip)
    got = _run(_session(all_precisions.files["fp16"]), clip)
    assert ref.shape == got.shape
    assert np.abs(ref - got).max() < 0.05
    assert (ref.argmax(-1) == got.argmax(-1)).mean() > 0.9
    assert all_precisions.parity["fp16"]["argmax_agreement"] > 0.9


def test_default_int8_is_dynamic_matmulinteger_only(all_precisions: ExportReport) -> None:
    counts = all_precisions.node_counts["int8"]
    assert counts.get("MatMulInteger", 0) >= 13  # 2 layers x (q, k, v, out, ff1, ff2) + the CTC head
    assert counts.get("DynamicQuantizeLinear", 0) > 0
    assert "ConvInteger" not in counts
    model = onnx.load(str(all_precisions.files["int8"]))
    assert any(i.data_type == onnx.TensorProto.INT8 for i in model.graph.initializer)
    assert all_precisions.parity["int8"]["argmax_agreement"] > 0.8


def test_static_int8_quantizes_conv_and_matmul(checkpoint: Path, tmp_path: Path) -> None:
    report = export_model(
        checkpoint,
        tmp_path,
        precisions=("int8",),
        int8_method="static",
        optimize=False,
        thresholds=LOOSE,
        validation_seconds=(1.0,),
        calibration_items=3,
    )
    model = onnx.load(str(report.files["int8"]))
    producers = {o: n for n in model.graph.node for o in n.output}
    counts = report.node_counts["int8"]
    assert counts.get("QuantizeLinear", 0) > 0 and counts.get("DequantizeLinear", 0) > 0
    for op in ("Conv", "MatMul"):
        nodes = [n for n in model.graph.node if n.op_type == op]
        quantized = [
            n
            for n in nodes
            if all(
                producers.get(i) is not None and producers[i].op_type == "DequantizeLinear"
                for i in n.input[:2]
            )
        ]
        assert len(quantized) >= len(nodes) // 2, f"{len(quantized)} of {len(nodes)} {op} nodes quantized"
    assert not (tmp_path / "model.fp32.onnx").exists()  # only what was asked for is kept
    assert json.loads((tmp_path / "w2v2_onnx.json").read_text())["files"] == {"int8": "model.int8.onnx"}
    # Random weights: static QDQ is far from fp32 (docs/export.md), but well above chance (1/30).
    assert report.parity["int8"]["argmax_agreement"] > 0.2


def test_threshold_exceeded_raises_typed_error_and_keeps_report(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="fp32 graph differs from PyTorch"):
        export_model(
            checkpoint,
            tmp_path,
            optimize=False,
            thresholds=Thresholds(fp32_max_abs_diff=0.0),
            validation_seconds=(1.0,),
        )
    report = json.loads((tmp_path / "export_report.json").read_text())
    assert report["files"] == {"fp32": str(tmp_path / "model.fp32.onnx")}
    assert 0 < report["parity"]["fp32"]["max_abs_diff"] < 1e-4  # the figures that failed are kept


def test_default_int8_runs_the_conv_front_end_as_int8_matmuls(
    checkpoint: Path, all_precisions: ExportReport, tmp_path: Path
) -> None:
    report = export_model(  # int8_method="auto": dynamic-conv where the front-end allows it
        checkpoint,
        tmp_path,
        precisions=("int8",),
        optimize=False,
        thresholds=LOOSE,
        validation_seconds=(1.0,),
        calibration_items=3,
    )
    counts, plain = report.node_counts["int8"], all_precisions.node_counts["int8"]
    assert counts.get("Conv", 0) == 1  # only the positional conv stays a Conv
    assert plain.get("Conv", 0) == 8  # the 7 front-end layers and the positional conv
    # conv layers 1-6: one matmul each over the layer's kernel frames (16 channels: too few for spans)
    assert counts.get("MatMulInteger", 0) == plain.get("MatMulInteger", 0) + 6
    # layers 1-4 (kernel 3) quantize their input once and gather the columns from the uint8 copy
    assert any("4 column gather(s) read a quantized (uint8) input" in note for note in report.notes)
    model = onnx.load(str(report.files["int8"]))
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    fp32_weights = [weights.get(n.input[1]) for n in model.graph.node if n.op_type == "MatMul"]
    assert [10, 16] in fp32_weights  # conv layer 0 (kernel 10, 16 channels) stays fp32
    assert any("rewritten as channels-last matmuls" in note for note in report.notes)
    layers = json.loads((checkpoint / "config.json").read_text())["num_hidden_layers"]
    assert counts.get("MultiHeadAttention", 0) == 2 * layers and "Softmax" not in counts  # fused attention,
    assert counts.get("If", 0) == layers  # without its key-padding mask when that keeps every key
    assert any("skip the key-padding mask" in note for note in report.notes)
    assert plain.get("Softmax", 0) == layers and "MultiHeadAttention" not in plain
    # Tiny random weights: activation quantization of the conv front-end costs agreement here (0.5 vs 0.8+);
    # the trained model's WER decides the default (docs/export.md). Still far above chance (1/30).
    assert report.parity["int8"]["argmax_agreement"] > 0.3
    with pytest.raises(Exception, match="int8_method"):
        export_model(checkpoint, tmp_path / "bad", precisions=("int8",), int8_method="fast")


def test_front_end_that_cannot_be_rewritten_stays_fp32_by_default_and_fails_when_asked(tmp_path: Path) -> None:
    odd = small_standard_checkpoint(tmp_path / "ckpt", conv_kernel=(10, 5, 3, 3, 3, 2, 2))  # kernel 5 > 2 x 2
    kwargs = {"precisions": ("int8",), "optimize": False, "thresholds": LOOSE, "validation_seconds": (1.0,),
              "calibration_items": 2}
    report = export_model(odd, tmp_path / "auto", **kwargs)
    assert report.node_counts["int8"].get("Conv", 0) == 8
    assert any("conv front-end left in fp32" in note and "kernel 5" in note for note in report.notes)
    with pytest.raises(ExportError, match="cannot rewrite this front-end.*use int8_method='dynamic'"):
        export_model(odd, tmp_path / "conv", int8_method="dynamic-conv", **kwargs)


def test_duplicate_converter_nodes_are_removed_and_names_made_unique():
    """onnxruntime<=1.31's fp16 converter emits one Cast per consumer, all of one name and one output."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from w2v2_onnx_export.fp16 import remove_duplicate_nodes

    nodes = [helper.make_node("Cast", ["x"], ["x32"], name="x_cast", to=TensorProto.FLOAT),
             helper.make_node("Neg", ["x32"], ["a"], name="n"),
             helper.make_node("Cast", ["x"], ["x32"], name="x_cast", to=TensorProto.FLOAT),
             helper.make_node("Abs", ["x32"], ["b"], name="n"),
             helper.make_node("Add", ["a", "b"], ["y"], name="n_1")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert remove_duplicate_nodes(model) == 2
    names = [n.name for n in model.graph.node]
    assert names == ["x_cast", "n", "n_2", "n_1"]
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.array([1.0, -2.0], np.float16)
    assert np.allclose(session.run(None, {"x": x})[0], [0.0, 4.0])


def test_different_nodes_writing_one_tensor_are_refused():
    from onnx import TensorProto, helper

    from w2v2_onnx.errors import ExportError
    from w2v2_onnx_export.fp16 import remove_duplicate_nodes

    nodes = [helper.make_node("Neg", ["x"], ["a"], name="p"), helper.make_node("Abs", ["x"], ["a"], name="q")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])])
    with pytest.raises(ExportError, match="twice"):
        remove_duplicate_nodes(helper.make_model(graph))


def test_optional_outputs_left_out_are_not_taken_for_one_tensor_written_twice():
    """Two LayerNormalization nodes that leave their optional mean output out both list "" as an output (the
    fp16 export of the filterbank front-end, as channels-last matmuls, failed on this)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from w2v2_onnx_export.fp16 import remove_duplicate_nodes

    scale = numpy_helper.from_array(np.ones(2, np.float32), "s")
    bias = numpy_helper.from_array(np.zeros(2, np.float32), "b")
    nodes = [helper.make_node("LayerNormalization", ["x", "s", "b"], ["a", ""], name="p"),
             helper.make_node("LayerNormalization", ["a", "s", "b"], ["y", ""], name="q")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [scale, bias])
    assert remove_duplicate_nodes(helper.make_model(graph)) == 0


@pytest.mark.parametrize("options, match", [
    ({"opset": 30}, "opset must be an integer from 14 to 20"),
    ({"opset": "17"}, "opset must be an integer"),
    ({"validation_seconds": (-1.0,)}, "validation_seconds must be a list of lengths above 0"),
    ({"validation_seconds": (float("nan"),)}, "validation_seconds"),
    ({"validation_seconds": (100000.0,)}, "at most 120"),
    ({"validation_seconds": 5}, "validation_seconds"),
    ({"calibration_items": 0}, "calibration_items must be a positive integer"),
    ({"thresholds": Thresholds(fp32_max_abs_diff=float("nan"))}, "threshold fp32_max_abs_diff must be a finite"),
    ({"int8_method": "static"}, "applies to int8 only"),
    ({"fp16_front_end": "conv"}, "applies to fp16 only"),
    ({"fp16_front_end": "matmul", "precisions": ("fp16",)}, "fp16_front_end 'matmul': choose one of"),
    ({"precisions": "fp32"}, "precisions must be a list of names"),
    ({"precisions": None}, "precisions must be a list of names"),
])
def test_bad_options_are_refused_before_anything_is_written(checkpoint: Path, tmp_path: Path, options: dict,
                                                            match: str) -> None:
    from w2v2_onnx.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match=match):
        export_model(checkpoint, tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_calibration_csv_manifest_and_missing_clip(tmp_path: Path) -> None:
    import soundfile as sf

    from w2v2_onnx.errors import ExportError
    from w2v2_onnx_export.calibration import load_calibration_audio

    sf.write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000)
    (tmp_path / "m.csv").write_text("path,transcript\na.wav,x\n", encoding="utf-8")
    assert len(load_calibration_audio(tmp_path / "m.csv")) == 1
    (tmp_path / "n.csv").write_text("path,transcript\ngone.wav,x\n", encoding="utf-8")
    with pytest.raises(ExportError, match="gone.wav not found"):
        load_calibration_audio(tmp_path / "n.csv")
