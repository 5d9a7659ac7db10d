"""Every supported family exports, matches PyTorch, and keeps padded batches exact; others are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest_export import small_standard_checkpoint

from w2v2_onnx.errors import ExportError, UnsupportedModelError
from w2v2_onnx_export import export_model
from w2v2_onnx_export.checkpoint import SUPPORTED_ARCHITECTURES

CASES = [
    ("wav2vec2", "group", {}),
    ("wav2vec2", "layer", {}),
    ("hubert", "group", {}),
    ("hubert", "layer", {}),
    ("wavlm", "group", {}),
    ("wavlm", "layer", {}),
    ("data2vec-audio", "layer", {}),
    ("wav2vec2-conformer", "layer", {"position_embeddings_type": "rotary"}),
    ("wav2vec2-conformer", "group", {"position_embeddings_type": "relative"}),
]


@pytest.mark.parametrize(("family", "norm", "extra"), CASES, ids=[f"{f}-{n}" for f, n, _ in CASES])
def test_family_exports_with_parity(family: str, norm: str, extra: dict, tmp_path: Path) -> None:
    checkpoint = small_standard_checkpoint(tmp_path / "ckpt", family=family, feat_extract_norm=norm, **extra)
    # optimize=False: the optimizer's symbolic shape inference takes ~15 s on the 7-layer front-end.
    report = export_model(checkpoint, tmp_path / "model", optimize=False, validation_seconds=(1.0, 2.3))
    parity = report.parity["fp32"]
    assert parity["max_abs_diff"] < 1e-4
    assert parity["batch_max_abs_diff"] < 1e-4  # rows of a padded batch equal the inputs alone
    config = json.loads((tmp_path / "model" / "w2v2_onnx.json").read_text())
    assert config["model_type"] == family
    assert config["architecture"] in SUPPORTED_ARCHITECTURES
    assert (config["frame_step"], config["receptive_field"]) == (320, 400)


def test_unsupported_architecture_names_supported_ones(tmp_path: Path) -> None:
    checkpoint = small_standard_checkpoint(tmp_path / "ckpt")
    config_file = checkpoint / "config.json"
    config = json.loads(config_file.read_text())
    config["architectures"] = ["Wav2Vec2ForSequenceClassification"]
    config_file.write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="Wav2Vec2ForSequenceClassification.*HubertForCTC"):
        export_model(checkpoint, tmp_path / "model")


def test_missing_checkpoint_is_an_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        export_model(tmp_path / "nope", tmp_path / "model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="no config.json"):
        export_model(tmp_path / "empty", tmp_path / "model")


# Convs left after the rewrite: the positional ones (Data2VecAudio has a stack of 5).
@pytest.mark.parametrize(
    ("family", "norm", "positional_convs"), [("hubert", "group", 1), ("data2vec-audio", "layer", 5)]
)
def test_family_int8_default_rewrites_the_conv_front_end(
    family: str, norm: str, positional_convs: int, tmp_path: Path
) -> None:
    from w2v2_onnx_export.validate import Thresholds

    checkpoint = small_standard_checkpoint(tmp_path / "ckpt", family=family, feat_extract_norm=norm)
    report = export_model(checkpoint, tmp_path / "model", precisions=("int8",), optimize=False,
                          validation_seconds=(1.0,), calibration_items=2,
                          thresholds=Thresholds(int8_max_cer=1.0))  # random weights: near-tied logits
    assert report.node_counts["int8"].get("Conv", 0) == positional_convs
    assert any("rewritten as channels-last matmuls" in note for note in report.notes)
    assert report.node_counts["int8"].get("MultiHeadAttention", 0) > 0
    assert report.parity["int8"]["argmax_agreement"] > 0.3  # far above chance (1/30)
