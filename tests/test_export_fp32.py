"""fp32 export: the graph contract, parity with PyTorch at awkward lengths, padded batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import transformers
from conftest_export import TINY_SECONDS, tiny_group_checkpoint, tiny_layer_checkpoint  # noqa: F401

from w2v2_onnx.vocabulary import Vocabulary
from w2v2_onnx_export import export_model
from w2v2_onnx_export.contract import receptive_field
from w2v2_onnx_export.testing import STANDARD_CONV, make_tiny_checkpoint


def _reference(checkpoint: Path, clip: np.ndarray) -> np.ndarray:
    """PyTorch log-probs of one clip alone, normalized like Wav2Vec2FeatureExtractor."""
    model = transformers.AutoModelForCTC.from_pretrained(checkpoint, attn_implementation="eager").eval()
    extractor = transformers.AutoFeatureExtractor.from_pretrained(checkpoint)
    values = extractor(clip, sampling_rate=16000, return_tensors="pt").input_values
    with torch.no_grad():
        return torch.log_softmax(model(values).logits, dim=-1)[0].numpy()


def _run(session: ort.InferenceSession, clips: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(c) for c in clips)
    batch = np.zeros((len(clips), width), dtype=np.float32)
    for i, clip in enumerate(clips):
        batch[i, : len(clip)] = clip
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    return session.run(None, {"input_values": batch, "input_lengths": lengths})


@pytest.fixture(scope="module", params=["group", "layer"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    checkpoint = request.getfixturevalue(f"tiny_{request.param}_checkpoint")
    out = tmp_path_factory.mktemp(f"export_{request.param}")
    export_model(checkpoint, out, validation_seconds=TINY_SECONDS)
    return checkpoint, out


def test_graph_signature(exported: tuple[Path, Path]) -> None:
    _, out = exported
    model = onnx.load(str(out / "model.fp32.onnx"))
    inputs = {i.name: i.type.tensor_type for i in model.graph.input}
    outputs = {o.name: o.type.tensor_type for o in model.graph.output}
    assert list(inputs) == ["input_values", "input_lengths"]
    assert list(outputs) == ["log_probs", "output_lengths"]
    assert inputs["input_values"].elem_type == onnx.TensorProto.FLOAT
    assert inputs["input_lengths"].elem_type == onnx.TensorProto.INT64
    assert outputs["log_probs"].elem_type == onnx.TensorProto.FLOAT
    assert outputs["output_lengths"].elem_type == onnx.TensorProto.INT64
    assert [d.dim_param for d in inputs["input_values"].shape.dim] == ["batch", "samples"]
    assert model.opset_import[0].version == 17


@pytest.mark.parametrize("extra", [0, 1, 7, 20 * 13 + 11])
def test_parity_with_pytorch_at_awkward_lengths(exported: tuple[Path, Path], extra: int) -> None:
    checkpoint, out = exported
    config = json.loads((out / "w2v2_onnx.json").read_text())
    n = config["receptive_field"] + extra
    clip = (np.random.default_rng(extra).standard_normal(n) * 0.2).astype(np.float32)
    session = ort.InferenceSession(str(out / "model.fp32.onnx"), providers=["CPUExecutionProvider"])
    log_probs, lengths = _run(session, [clip])
    ref = _reference(checkpoint, clip)
    assert lengths.tolist() == [ref.shape[0]]
    assert log_probs.shape == (1, ref.shape[0], len(config["vocabulary"]))
    np.testing.assert_allclose(log_probs[0], ref, atol=1e-4)
    # log-softmax is in the graph: probabilities sum to one.
    np.testing.assert_allclose(np.exp(log_probs[0]).sum(-1), 1.0, atol=1e-5)


def test_padded_batch_equals_each_item_alone(exported: tuple[Path, Path]) -> None:
    _, out = exported
    rng = np.random.default_rng(3)
    # Different loudness and offsets: normalization and the group norm must ignore the zero padding.
    clips = [
        (rng.standard_normal(n) * s + o).astype(np.float32)
        for n, s, o in [(40, 0.5, 0.1), (1237, 0.05, -0.02), (4001, 0.3, 0.0)]
    ]
    session = ort.InferenceSession(str(out / "model.fp32.onnx"), providers=["CPUExecutionProvider"])
    batch_lp, batch_len = _run(session, clips)
    for i, clip in enumerate(clips):
        alone_lp, alone_len = _run(session, [clip])
        assert batch_len[i] == alone_len[0] == alone_lp.shape[1]
        np.testing.assert_allclose(batch_lp[i, : batch_len[i]], alone_lp[0], atol=1e-4)


def test_directory_config_and_metadata(exported: tuple[Path, Path]) -> None:
    _, out = exported
    config = json.loads((out / "w2v2_onnx.json").read_text())
    assert config["format"] == "w2v2-onnx" and config["format_version"] == 1
    assert config["files"] == {"fp32": "model.fp32.onnx"}
    assert config["vocabulary"][:3] == ["[PAD]", "[UNK]", "|"] and config["blank_id"] == 0
    assert config["word_delimiter"] == "|" and config["unk_token"] == "[UNK]"
    assert config["special_tokens"] == ["[PAD]", "[UNK]"]
    assert (config["frame_step"], config["receptive_field"]) == (20, 40)
    vocab = json.loads((out / "vocab.json").read_text())
    assert vocab == {t: i for i, t in enumerate(config["vocabulary"])}
    props = {p.key: p.value for p in onnx.load(str(out / "model.fp32.onnx")).metadata_props}
    meta = json.loads(props["w2v2_onnx"])
    assert meta["precision"] == "fp32" and "files" not in meta
    assert {k: v for k, v in meta.items() if k != "precision"} == {
        k: v for k, v in config.items() if k != "files"
    }
    report = json.loads((out / "export_report.json").read_text())
    assert report["parity"]["fp32"]["max_abs_diff"] < 1e-4
    # The runtime's vocabulary accepts the config as written.
    vocab = Vocabulary.from_tokens(
        config["vocabulary"],
        blank_id=config["blank_id"],
        word_delimiter=config["word_delimiter"],
        special_tokens=config["special_tokens"],
    )
    assert (
        vocab.piece(config["vocabulary"].index("A")) == "A"
        and vocab.piece(0) == ""
        and vocab.delimiter_id == 2
    )


def test_standard_front_end_frame_math(tmp_path: Path) -> None:
    checkpoint = make_tiny_checkpoint(
        tmp_path / "ckpt", num_layers=1, **{**STANDARD_CONV, "conv_dim": (8,) * 7}
    )
    out = tmp_path / "model"
    report = export_model(checkpoint, out, optimize=False, validation_seconds=(0.41, 1.0))
    config = report.config
    assert (config["frame_step"], config["receptive_field"]) == (320, 400)
    assert receptive_field(config["conv_kernel"], config["conv_stride"]) == 400
    session = ort.InferenceSession(str(out / "model.fp32.onnx"), providers=["CPUExecutionProvider"])
    clips = [
        np.full(n, 0.1, np.float32) + np.sin(np.arange(n, dtype=np.float32)) for n in (400, 719, 720, 16000)
    ]
    _, lengths = _run(session, clips)
    assert lengths.tolist() == [1, 1, 2, 49]
