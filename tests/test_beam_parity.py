"""Transcripts and word frames equal pyctcdecode 0.5.0's on noisy inputs, with and without LM and hotwords.

The expected outputs were produced by ``benchmarks/pyctcdecode_reference.py`` (run in a numpy<2 venv with
pyctcdecode and kenlm) on the stored inputs, which ``benchmarks/ctc_synth.py`` synthesised from sentences of
``tiny_corpus.txt`` with many character confusions; the LM is lmplz's model of that corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from w2v2_onnx.beam import BeamSearchDecoder
from w2v2_onnx.vocabulary import Vocabulary

DATA = Path(__file__).parent / "data"
TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L",
          "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]
VOCAB = Vocabulary.from_tokens(TOKENS, special_tokens=["<s>", "</s>", "<unk>"])
EXPECTED = json.loads((DATA / "pyctcdecode_parity_expected.json").read_text())["runs"]
CASES = [(run, backend) for run in EXPECTED for backend in ("python", "kenlm")
         if backend == "python" or run["settings"].get("lm")]


@pytest.fixture(scope="module")
def inputs() -> list[np.ndarray]:
    data = np.load(DATA / "pyctcdecode_parity_inputs.npz")
    return [data[f"lp{i}"] for i in range(len(data.files))]


@pytest.mark.parametrize(("run", "backend"), CASES, ids=[f"{r['name']}-{b}" for r, b in CASES])
def test_matches_pyctcdecode(run: dict, backend: str, inputs: list[np.ndarray]) -> None:
    settings = dict(run["settings"])
    lm = DATA / "lmplz_tiny_corpus_o3.arpa" if settings.pop("lm", False) else None
    if backend == "kenlm":
        pytest.importorskip("kenlm", reason="the lm extra (kenlm) is not installed")
    decoder = BeamSearchDecoder(VOCAB, lm=lm, lm_backend=backend, **settings)
    for lp, expected in zip(inputs, run["expected"], strict=True):
        result = decoder.decode(lp, 1.0)  # frame_duration 1: word times are frame indices
        assert result.text == expected["text"]
        assert [[int(w.start), int(w.end)] for w in result.words] == expected["word_frames"]
