"""Greedy CTC decoding on hand-built logits with exact expected text, word times and probabilities."""

import numpy as np
import pytest

from w2v2_onnx.errors import DecoderError
from w2v2_onnx.greedy import greedy_decode
from w2v2_onnx.vocabulary import Vocabulary

TOKENS = ["[PAD]", "[UNK]", "|", "A", "B", "C", "H", "I", "L", "O", "<s>"]
VOCAB = Vocabulary.from_tokens(TOKENS, blank_id=0, word_delimiter="|", special_tokens=["[PAD]", "[UNK]", "<s>"])
FRAME = 0.02


def one_hot(path: list[str], prob: float = 1.0) -> np.ndarray:
    """Log-probabilities where each frame's best token is path[i] with probability ``prob``."""
    rest = (1.0 - prob) / (len(TOKENS) - 1) if prob < 1 else 1e-9
    probs = np.full((len(path), len(TOKENS)), rest)
    for i, token in enumerate(path):
        probs[i, TOKENS.index(token)] = prob
    return np.log(probs).astype(np.float32)


def test_text_and_exact_word_times():
    #       0        1    2    3        4    5    6    7    8    9        10   11   12   13
    path = ["[PAD]", "H", "H", "[PAD]", "I", "|", "|", "C", "A", "[PAD]", "B", "B", "[PAD]", "[PAD]"]
    decoded = greedy_decode(one_hot(path), VOCAB, FRAME)
    assert decoded.text == "HI CAB"
    assert [(w.word, w.start, w.end) for w in decoded.words] == [("HI", 0.02, 0.10), ("CAB", 0.14, 0.24)]


def test_repeats_collapse_only_without_blank_between():
    assert greedy_decode(one_hot(["L", "L", "L", "O"]), VOCAB, FRAME).text == "LO"
    assert greedy_decode(one_hot(["L", "[PAD]", "L", "O"]), VOCAB, FRAME).text == "LLO"


def test_special_tokens_and_stray_delimiters_are_dropped():
    path = ["|", "<s>", "A", "[UNK]", "B", "|", "|", "[PAD]", "|"]
    decoded = greedy_decode(one_hot(path), VOCAB, FRAME)
    assert decoded.text == "AB"
    assert [(w.start, w.end) for w in decoded.words] == [(0.04, 0.10)]


def test_word_probability_is_mean_of_token_maxima():
    log_probs = one_hot(["A", "A", "B", "|", "C"], prob=0.9)
    log_probs[1] = one_hot(["A"], prob=0.5)[0]  # a weaker second frame does not lower A's maximum
    log_probs[2] = one_hot(["B"], prob=0.6)[0]
    words = greedy_decode(log_probs, VOCAB, FRAME).words
    assert words[0].probability == pytest.approx((0.9 + 0.6) / 2, abs=1e-4)
    assert words[1].probability == pytest.approx(0.9, abs=1e-4)


def test_empty_and_all_blank_inputs():
    assert greedy_decode(np.zeros((0, len(TOKENS)), np.float32), VOCAB, FRAME).text == ""
    decoded = greedy_decode(one_hot(["[PAD]"] * 5), VOCAB, FRAME)
    assert decoded.text == "" and decoded.words == ()


@pytest.mark.parametrize("shape", [(5,), (5, 3), (2, 5, len(TOKENS))])
def test_bad_shape_raises_decoder_error(shape):
    with pytest.raises(DecoderError, match="shape"):
        greedy_decode(np.zeros(shape, np.float32), VOCAB, FRAME)


def test_vocabulary_validation():
    from w2v2_onnx.errors import ModelDirectoryError

    with pytest.raises(ModelDirectoryError, match="duplicate"):
        Vocabulary.from_tokens(["a", "a"])
    with pytest.raises(ModelDirectoryError, match="blank_id"):
        Vocabulary.from_tokens(["a", "b"], blank_id=5, word_delimiter=None)
    with pytest.raises(ModelDirectoryError, match="delimiter"):
        Vocabulary.from_tokens(["a", "b"], word_delimiter="|")
