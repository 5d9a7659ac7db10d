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
