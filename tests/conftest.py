"""Shared fixtures: small models built offline, once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tone_model  # noqa: E402


@pytest.fixture(scope="session")
def tone_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deterministic model directory whose transcripts are known exactly (see tests/tone_model.py)."""
    return tone_model.build_tone_model(tmp_path_factory.mktemp("tone") / "model")


@pytest.fixture(scope="session")
def tone_transcriber(tone_model_dir: Path):
    from w2v2_onnx import Transcriber

    return Transcriber(tone_model_dir, device="cpu", threads=1)


def _export_tiny(root: Path, norm: str) -> Path:
    from w2v2_onnx_export import export_model
    from w2v2_onnx_export.testing import STANDARD_CONV, make_tiny_checkpoint

    # The standard 7-layer conv geometry (20 ms frames) with tiny widths: real frame math, fast export.
    conv = dict(STANDARD_CONV, conv_dim=(32,) * 7)
    checkpoint = make_tiny_checkpoint(root / f"checkpoint-{norm}", feat_extract_norm=norm, seed=1, **conv)
    out = root / f"model-{norm}"
    export_model(checkpoint, out, precisions=("fp32",))
    return out


@pytest.fixture(scope="session")
def group_norm_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random wav2vec2-base style (group-norm) model, exported by the export stage."""
    return _export_tiny(tmp_path_factory.mktemp("exported"), "group")


@pytest.fixture(scope="session")
def layer_norm_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random wav2vec2-large-lv60 style (layer-norm, stable layer norm) model."""
    return _export_tiny(tmp_path_factory.mktemp("exported"), "layer")
