"""Loading checkpoints: vocabulary roles and sizes, supported architectures, the tiny-checkpoint helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from w2v2_onnx.errors import ExportError, UnsupportedModelError
from w2v2_onnx_export.checkpoint import load_checkpoint
from w2v2_onnx_export.contract import frame_step, receptive_field
from w2v2_onnx_export.testing import BASE_960H_VOCAB, make_tiny_checkpoint


def test_base_960h_vocabulary_roles(tmp_path: Path) -> None:
    loaded = load_checkpoint(make_tiny_checkpoint(tmp_path, vocab=BASE_960H_VOCAB, num_layers=1))
    assert loaded.tokens == list(BASE_960H_VOCAB)
    assert loaded.blank_id == 0 and loaded.word_delimiter == "|" and loaded.unk_token == "<unk>"
    assert loaded.special_tokens == ["<pad>", "<unk>", "<s>", "</s>"]
    assert loaded.do_normalize and loaded.sample_rate == 16000


def test_logits_without_tokens_become_unused_special_tokens(tmp_path: Path) -> None:
    loaded = load_checkpoint(make_tiny_checkpoint(tmp_path, num_layers=1, vocab_size=32))
    assert len(loaded.tokens) == 32
    assert loaded.tokens[30:] == ["<unused_30>", "<unused_31>"]
    assert {"<unused_30>", "<unused_31>"} <= set(loaded.special_tokens)


def test_tokenizer_larger_than_logits_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="outputs 28 logits"):
        load_checkpoint(make_tiny_checkpoint(tmp_path, num_layers=1, vocab_size=28))


def test_unknown_family_in_helper() -> None:
    with pytest.raises(UnsupportedModelError, match="sew"):
        make_tiny_checkpoint("/nonexistent", family="sew")


@pytest.mark.parametrize(
    ("kernels", "strides", "step", "field"),
    [
        ([10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2], 320, 400),
        ([10, 3, 3], [5, 2, 2], 20, 40),
        ([4], [2], 2, 4),
    ],
)
def test_frame_math(kernels: list[int], strides: list[int], step: int, field: int) -> None:
    assert frame_step(strides) == step
    assert receptive_field(kernels, strides) == field


def test_corrupt_weights_and_an_output_that_is_a_file(tmp_path: Path) -> None:
    from w2v2_onnx_export.pipeline import export_model

    checkpoint = make_tiny_checkpoint(tmp_path / "ck", num_layers=1)
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated: the header is cut
    with pytest.raises(ExportError, match="cannot load the model weights"):
        load_checkpoint(checkpoint)
    with pytest.raises(ExportError, match="cannot load the model weights"):
        export_model(checkpoint, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # a failed load leaves no empty directory behind
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ExportError, match="exists and is not a directory"):
        export_model(checkpoint, tmp_path / "a_file")


def test_a_bare_name_that_is_no_folder_is_tried_as_a_hub_id(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Slash-less hub ids exist (legacy names), so a bare name is tried on the hub; offline (as here) or
    unknown there, the error says both what was tried and why it failed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ExportError, match="no local directory has this name, so it was tried as a hub id"):
        load_checkpoint("no-such-model-w2v2-onnx-test")
