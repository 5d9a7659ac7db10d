"""The channels-last conv front-end (``int8_method='dynamic-conv'``) computes what the Hugging Face one does."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

from w2v2_onnx_export.conv_matmul import ChannelsLastFeatureEncoder, rewrite_conv_front_end
from w2v2_onnx_export.onnx_export import export_onnx
from w2v2_onnx_export.testing import STANDARD_CONV
from w2v2_onnx_export.wrapper import CTCExportWrapper

# Around the receptive field (400), odd and even conv lengths, and lengths that need the most padding.
LENGTHS = (400, 401, 719, 720, 1000, 16000, 16157, 16474)


def tiny_model(norm: str, **overrides: object) -> Wav2Vec2ForCTC:
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=12,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, feat_extract_norm=norm,
        conv_bias=norm == "layer", **{**STANDARD_CONV, "conv_dim": (24,) * 7, **overrides})
    return Wav2Vec2ForCTC(config).eval()


def wrappers(model: Wav2Vec2ForCTC, **options: int) -> tuple[CTCExportWrapper, CTCExportWrapper]:
    reference = CTCExportWrapper(copy.deepcopy(model), do_normalize=True).eval()
    rewritten_model = copy.deepcopy(model)
    rewritten = CTCExportWrapper(rewritten_model, do_normalize=True).eval()
    rewrite_conv_front_end(rewritten_model, **options)
    return reference, rewritten


SPANS = {"blocks": 4, "min_values_per_sample": 0}  # force the leading layers into spans on tiny models


def test_only_front_ends_with_a_large_first_output_run_in_spans() -> None:
    assert ChannelsLastFeatureEncoder(tiny_model("group").wav2vec2.feature_extractor)._blockable_layers() == 0
    wide = tiny_model("group", conv_dim=(64,) * 7)  # 64 channels at stride 5: 12.8 values per input sample
    assert ChannelsLastFeatureEncoder(wide.wav2vec2.feature_extractor)._blockable_layers() == 3
    assert ChannelsLastFeatureEncoder(wide.wav2vec2.feature_extractor, blocks=1)._blockable_layers() == 0


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_spans_give_the_same_features_at_every_length(norm: str) -> None:
    """Including lengths so short that most spans are empty."""
    original = tiny_model(norm).wav2vec2.feature_extractor
    encoder = ChannelsLastFeatureEncoder(original, **SPANS)
    assert encoder._blockable_layers() == 3
    generator = torch.Generator().manual_seed(5)
    for samples in LENGTHS:
        audio = torch.randn(2, samples, generator=generator)
        with torch.no_grad():
            torch.testing.assert_close(encoder(audio), original(audio), atol=2e-5, rtol=1e-4)


def test_exported_spans_graph_is_exact_on_padded_batches_it_was_not_traced_at(tmp_path: Path) -> None:
    reference, rewritten = wrappers(tiny_model("group"), **SPANS)
    path = tmp_path / "spans.onnx"
    export_onnx(rewritten, path, opset=17, receptive_field=400, frame_step=320)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    lengths = np.array([16474, 1000, 401], dtype=np.int64)
    audio = np.random.default_rng(6).standard_normal((3, 16474)).astype(np.float32)
    log_probs, out_lengths = session.run(None, {"input_values": audio, "input_lengths": lengths})
    with torch.no_grad():
        expected, expected_lengths = reference(torch.from_numpy(audio), torch.from_numpy(lengths))
    assert out_lengths.tolist() == expected_lengths.tolist()
    for row, frames in enumerate(out_lengths.tolist()):
        np.testing.assert_allclose(log_probs[row, :frames], expected[row, :frames].numpy(), atol=5e-5)


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_encoder_alone_matches_hugging_face_at_every_length(norm: str) -> None:
    model = tiny_model(norm)
    original = model.wav2vec2.feature_extractor
    encoder = ChannelsLastFeatureEncoder(original)
    # Every reshape is exact at 320 m + 155 samples for the standard 7-layer front-end.
    assert (encoder.scale, encoder.offset, encoder.first_weight_shape) == (320, 155, (10, 24))
    generator = torch.Generator().manual_seed(1)
    for samples in LENGTHS:
        audio = torch.randn(2, samples, generator=generator)
        with torch.no_grad():
            expected, got = original(audio), encoder(audio)
        assert got.shape == expected.shape, samples
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)


def test_wrapped_padded_batch_matches_the_original_graph() -> None:
    reference, rewritten = wrappers(tiny_model("group"))
    lengths = torch.tensor([20000, 12345, 3001])
    audio = torch.randn(3, 20000, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, expected_lengths = reference(audio, lengths)
        got, got_lengths = rewritten(audio, lengths)
    assert torch.equal(got_lengths, expected_lengths)
    for row, frames in enumerate(expected_lengths.tolist()):
        torch.testing.assert_close(got[row, :frames], expected[row, :frames], atol=2e-5, rtol=1e-4)


def test_exported_graph_is_exact_at_lengths_it_was_not_traced_at(tmp_path: Path) -> None:
    reference, rewritten = wrappers(tiny_model("group"))
    path = tmp_path / "rewritten.onnx"
    export_onnx(rewritten, path, opset=17, receptive_field=400, frame_step=320)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    for samples in LENGTHS:
        audio = rng.standard_normal((1, samples)).astype(np.float32)
        lengths = np.array([samples], dtype=np.int64)
        log_probs, out_lengths = session.run(None, {"input_values": audio, "input_lengths": lengths})
        with torch.no_grad():
            expected, expected_lengths = reference(torch.from_numpy(audio), torch.from_numpy(lengths))
        assert log_probs.shape == tuple(expected.shape), samples
        assert out_lengths.tolist() == expected_lengths.tolist()
        np.testing.assert_allclose(log_probs, expected.numpy(), atol=5e-5)


def test_front_ends_it_cannot_rewrite_are_refused() -> None:
    long_kernel = tiny_model("group", conv_kernel=(10, 5, 3, 3, 3, 2, 2))  # kernel 5 > 2 x stride 2
    with pytest.raises(ValueError, match="conv layer 1: kernel 5 > 2 x stride 2"):
        ChannelsLastFeatureEncoder(long_kernel.wav2vec2.feature_extractor)


@pytest.mark.parametrize("family", ["hubert", "wavlm", "data2vec-audio", "wav2vec2-conformer"])
def test_every_supported_family_gets_the_same_features(family: str, tmp_path: Path) -> None:
    from conftest_export import small_standard_checkpoint
    from transformers import AutoModelForCTC

    norm = "layer" if family == "data2vec-audio" else "group"
    checkpoint = small_standard_checkpoint(tmp_path / "ckpt", family=family, feat_extract_norm=norm)
    model = AutoModelForCTC.from_pretrained(checkpoint).eval()
    original = model.base_model.feature_extractor
    encoder = ChannelsLastFeatureEncoder(original)
    audio = torch.randn(2, 16157, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(encoder(audio), original(audio), atol=2e-5, rtol=1e-4)


def test_fp16_copy_matches_on_long_inputs_without_graph_fusions(tmp_path: Path) -> None:
    """The rewritten front-end converted to fp16 (as a GPU export would) stays close to PyTorch on 40 s, that
    is 128,000 first-layer frames, with ONNX Runtime's fusions off so that none of them rescues the numbers."""
    from w2v2_onnx_export.fp16 import convert_fp16

    reference, rewritten = wrappers(tiny_model("group"))
    fp32_path, fp16_path = tmp_path / "rewritten.onnx", tmp_path / "rewritten.fp16.onnx"
    export_onnx(rewritten, fp32_path, opset=17, receptive_field=400, frame_step=320)
    convert_fp16(fp32_path, fp16_path)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(fp16_path), options, providers=["CPUExecutionProvider"])
    samples = 40 * 16000
    audio = np.random.default_rng(4).standard_normal((1, samples)).astype(np.float32)
    lengths = np.array([samples], dtype=np.int64)
    log_probs, _ = session.run(None, {"input_values": audio, "input_lengths": lengths})
    with torch.no_grad():
        expected, _ = reference(torch.from_numpy(audio), torch.from_numpy(lengths))
    assert np.isfinite(log_probs).all()
    assert np.abs(log_probs - expected.numpy()).max() < 5e-3


def test_gpu_lever_graph_has_no_cpu_levers_and_converts_to_fp16(tmp_path: Path) -> None:
    """cuda_figures' conv-as-matmuls fp16 lever: the plain rewrite (no spans, Hugging Face attention), which the
    fp16 converter handles; the CPU levers' dynamic span slicing defeats its shape inference."""
    from conftest_export import small_standard_checkpoint

    from w2v2_onnx_export import contract
    from w2v2_onnx_export.checkpoint import load_checkpoint
    from w2v2_onnx_export.fp16 import convert_fp16
    from w2v2_onnx_export.pipeline import _export_conv_as_matmuls
    from w2v2_onnx_export.report import ExportReport

    checkpoint = small_standard_checkpoint(tmp_path / "ckpt", conv_dim=(64,) * 7)  # wide enough for spans
    loaded = load_checkpoint(checkpoint)
    config = contract.build_config(loaded, {})
    report = ExportReport(out_dir=tmp_path, config=config)
    graphs = {}
    for for_cpu in (True, False):
        (tmp_path / str(for_cpu)).mkdir()
        path, _ = _export_conv_as_matmuls(copy.deepcopy(loaded.model), loaded, "dynamic-conv", tmp_path / str(for_cpu),
                                          17, config, report, for_cpu=for_cpu)
        nodes = onnx.load(str(path)).graph.node
        graphs[for_cpu] = path, [n.op_type for n in nodes if "feature_extractor" in n.name or "attention" in n.name]
    assert graphs[True][1].count("MultiHeadAttention") == 2 and "MultiHeadAttention" not in graphs[False][1]
    assert graphs[True][1].count("MatMul") > graphs[False][1].count("MatMul") + 16  # the spans' matmuls
    path = graphs[False][0]
    convert_fp16(path, tmp_path / "lever.fp16.onnx")
    session = ort.InferenceSession(str(tmp_path / "lever.fp16.onnx"), providers=["CPUExecutionProvider"])
    audio = np.random.default_rng(7).standard_normal((1, 16000)).astype(np.float32)
    log_probs, _ = session.run(None, {"input_values": audio, "input_lengths": np.array([16000], dtype=np.int64)})
    assert np.isfinite(log_probs).all()
