"""Session fixtures for the export tests (tiny random models); the runtime's conftest may import these.

Usage from ``tests/conftest.py``: ``from conftest_export import *  # noqa: F403`` (tests/ is on sys.path
under pytest's default rootdir-based import mode).
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: Short parity lengths for tiny models (frame step 20: 30 s would be 24,000 frames of attention).
TINY_SECONDS = (0.37, 1.0)


@pytest.fixture(scope="session")
def tiny_group_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny wav2vec2 group-norm (base-style) checkpoint directory."""
    from w2v2_onnx_export.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt_group"), feat_extract_norm="group")


@pytest.fixture(scope="session")
def tiny_layer_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny wav2vec2 layer-norm, stable-layer-norm (large-lv60-style) checkpoint directory."""
    from w2v2_onnx_export.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt_layer"), feat_extract_norm="layer")


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_group_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory exported (fp32, validated) from the tiny group-norm checkpoint."""
    from w2v2_onnx_export import export_model

    out = tmp_path_factory.mktemp("model_group")
    export_model(tiny_group_checkpoint, out, validation_seconds=TINY_SECONDS)
    return out


def small_standard_checkpoint(out_dir: Path, **kwargs: object) -> Path:
    """A tiny model with the standard 7-layer conv front-end (frame step 320) at width 16: few frames per
    second, so precision and family tests run on realistic frame counts quickly."""
    from w2v2_onnx_export.testing import STANDARD_CONV, make_tiny_checkpoint

    conv = {**STANDARD_CONV, "conv_dim": (16,) * 7}
    return make_tiny_checkpoint(out_dir, **{**conv, **kwargs})  # type: ignore[arg-type]
