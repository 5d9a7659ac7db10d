"""The int8 export's attention (ONNX Runtime's MultiHeadAttention) computes what Hugging Face's eager one does."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

from w2v2_onnx_export.attention import FUSED_ATTENTION, add_unmasked_attention, fused_attention
from w2v2_onnx_export.onnx_export import export_onnx
from w2v2_onnx_export.report import op_histogram
from w2v2_onnx_export.testing import STANDARD_CONV
from w2v2_onnx_export.wrapper import CTCExportWrapper

LENGTHS = [16000, 9001, 1200]  # a padded batch: keys past each length must be masked


def tiny_model(norm: str, attention: str = "eager") -> Wav2Vec2ForCTC:
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=12,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, feat_extract_norm=norm,
        do_stable_layer_norm=norm == "layer", conv_bias=norm == "layer", attn_implementation=attention,
        **{**STANDARD_CONV, "conv_dim": (24,) * 7})
    return Wav2Vec2ForCTC(config).eval()


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    audio = torch.randn(len(LENGTHS), max(LENGTHS), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor(LENGTHS)
    audio[torch.arange(audio.shape[1])[None, :] >= lengths[:, None]] = 0.0
    return audio, lengths


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_fused_attention_equals_eager_on_every_frame_of_a_padded_batch(norm: str) -> None:
    model = tiny_model(norm)
    wrapper = CTCExportWrapper(model, do_normalize=True).eval()
    audio, lengths = padded_batch()
    with torch.no_grad():
        expected, expected_lengths = wrapper(audio, lengths)
        with fused_attention(model) as active:
            assert active and model.config._attn_implementation == FUSED_ATTENTION
            got, got_lengths = wrapper(audio, lengths)
    assert model.config._attn_implementation == "eager"  # restored
    assert torch.equal(got_lengths, expected_lengths)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)  # padded frames included


def _export_eager_and_fused(tmp_path: Path) -> tuple[Path, Path]:
    """The tiny group-norm model exported twice: Hugging Face's eager attention, and the fused node."""
    model = tiny_model("group")
    reference = CTCExportWrapper(copy.deepcopy(model), do_normalize=True).eval()
    fused = CTCExportWrapper(model, do_normalize=True).eval()
    plain_path, fused_path = tmp_path / "eager.onnx", tmp_path / "fused.onnx"
    export_onnx(reference, plain_path, opset=17, receptive_field=400, frame_step=320)
    with fused_attention(model):
        export_onnx(fused, fused_path, opset=17, receptive_field=400, frame_step=320)
    return plain_path, fused_path


def test_exported_node_runs_in_onnx_runtime_like_the_eager_graph(tmp_path: Path) -> None:
    plain_path, fused_path = _export_eager_and_fused(tmp_path)
    ops = [node.op_type for node in onnx.load(str(fused_path)).graph.node]
    assert ops.count("MultiHeadAttention") == 2 and "Softmax" not in ops
    assert "MultiHeadAttention" not in [node.op_type for node in onnx.load(str(plain_path)).graph.node]
    audio, lengths = padded_batch()
    feeds = {"input_values": audio.numpy(), "input_lengths": lengths.numpy()}
    expected, expected_lengths = ort.InferenceSession(str(plain_path), providers=["CPUExecutionProvider"]).run(
        None, feeds)
    got, got_lengths = ort.InferenceSession(str(fused_path), providers=["CPUExecutionProvider"]).run(None, feeds)
    assert got_lengths.tolist() == expected_lengths.tolist()
    for row, frames in enumerate(expected_lengths.tolist()):
        np.testing.assert_allclose(got[row, :frames], expected[row, :frames], atol=1e-5)
    # Each row alone gives what it gives in the batch: padding never leaks into attention.
    alone, _ = ort.InferenceSession(str(fused_path), providers=["CPUExecutionProvider"]).run(
        None, {"input_values": audio[2:, :LENGTHS[2]].numpy(), "input_lengths": lengths[2:].numpy()})
    np.testing.assert_allclose(got[2, :expected_lengths[2]], alone[0], atol=1e-5)


def test_models_it_does_not_apply_to_are_left_alone() -> None:
    sdpa = tiny_model("group", attention="sdpa")
    with fused_attention(sdpa) as active:
        assert not active and sdpa.config._attn_implementation == "sdpa"
    training = tiny_model("group").train()
    with fused_attention(training) as active:
        assert not active


def _kernels_run(session_path: Path, feeds: dict, tmp_path: Path) -> tuple[list[np.ndarray], set[str]]:
    """Outputs of one run and the names of the nodes ONNX Runtime's profiler saw run (subgraphs included)."""
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "profile")
    session = ort.InferenceSession(str(session_path), options, providers=["CPUExecutionProvider"])
    outputs = session.run(None, feeds)
    events = json.loads(Path(session.end_profiling()).read_text())
    names = {event["name"].removesuffix("_kernel_time") for event in events
             if event.get("cat") == "Node" and event["name"].endswith("_kernel_time")}
    return outputs, names


def test_unmasked_branch_runs_when_every_key_is_kept_and_gives_the_same_result(tmp_path: Path) -> None:
    plain_path, fused_path = _export_eager_and_fused(tmp_path)
    assert add_unmasked_attention(fused_path) == 2
    assert add_unmasked_attention(fused_path) == 0  # nothing left to rewrite
    counts = op_histogram(fused_path)
    assert counts["If"] == 2 and counts["MultiHeadAttention"] == 4  # both branches counted
    audio, lengths = padded_batch()
    plain = ort.InferenceSession(str(plain_path), providers=["CPUExecutionProvider"])
    cases = {
        "padded batch": {"input_values": audio.numpy(), "input_lengths": lengths.numpy()},
        "one input": {"input_values": audio[:1].numpy(), "input_lengths": lengths[:1].numpy()},
        "equal lengths": {"input_values": audio[:, :1200].numpy(), "input_lengths": np.array([1200] * 3)},
    }
    for case, feeds in cases.items():
        expected, expected_lengths = plain.run(None, feeds)
        (got, got_lengths), ran = _kernels_run(fused_path, feeds, tmp_path)
        assert got_lengths.tolist() == expected_lengths.tolist()
        for row, frames in enumerate(expected_lengths.tolist()):
            np.testing.assert_allclose(got[row, :frames], expected[row, :frames], atol=1e-5, err_msg=case)
        unmasked = {name for name in ran if name.endswith("/unmasked")}
        masked = {name for name in ran if name.endswith("/masked")}
        if case == "padded batch":
            assert len(masked) == 2 and not unmasked, ran
        else:
            assert len(unmasked) == 2 and not masked, ran
