"""Transcript normalisation and the exact CTC vocabulary."""

from __future__ import annotations

import json

import pytest

from w2v2_onnx_finetune.text import normalize_transcript
from w2v2_onnx_finetune.vocab import (
    VOCAB_TOKENS,
    build_processor,
    decode_ids,
    encode_transcript,
    vocab_dict,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello, world!", "HELLO WORLD"),
        ("  it's   a  test ", "IT'S A TEST"),
        ("Café déjà-vu", "CAFE DEJA VU"),
        ("'quoted' words", "QUOTED WORDS"),
        ("rock\u2019n\u2019roll", "ROCK'N'ROLL"),
        ("route 66", "ROUTE"),
        ("...", ""),
        ("", ""),
    ],
)
def test_normalize_transcript(raw: str, expected: str) -> None:
    assert normalize_transcript(raw) == expected


def test_vocabulary_is_exact() -> None:
    expected = ["[PAD]", "[UNK]", "|", "'"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    assert list(VOCAB_TOKENS) == expected
    assert vocab_dict()["[PAD]"] == 0
    assert len(vocab_dict()) == 30


def test_encode_and_greedy_decode() -> None:
    ids = encode_transcript("IT'S OK")
    assert ids == [vocab_dict()[c] for c in "IT'S"] + [2] + [vocab_dict()["O"], vocab_dict()["K"]]
    a, b = vocab_dict()["A"], vocab_dict()["B"]
    # repeats merge, a blank separates a real double letter, the delimiter becomes one space
    assert decode_ids([0, a, a, 0, a, 2, 2, b, 0, 1]) == "AA B"
    assert decode_ids([0, 0, 2]) == ""


def test_processor_saved_with_exact_vocabulary(tmp_path) -> None:
    build_processor(tmp_path)
    from transformers import Wav2Vec2Processor

    processor = Wav2Vec2Processor.from_pretrained(str(tmp_path))
    tokenizer = processor.tokenizer
    assert json.loads((tmp_path / "vocab.json").read_text()) == vocab_dict()
    assert tokenizer.get_vocab() == vocab_dict()
    assert len(tokenizer) == 30  # no <s>/</s> added past the CTC head
    assert tokenizer.pad_token_id == 0 and tokenizer.unk_token_id == 1
    assert tokenizer("HI YOU").input_ids == encode_transcript("HI YOU")
    assert processor.feature_extractor.sampling_rate == 16000
    assert processor.feature_extractor.do_normalize is True
