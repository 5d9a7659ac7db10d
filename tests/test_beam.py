"""Beam-search decoding on hand-built logits with exact expected beams, hotwords and a tiny ARPA LM."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from w2v2_onnx.beam import BeamSearchDecoder
from w2v2_onnx.errors import DecoderError, LanguageModelError, MissingDependencyError
from w2v2_onnx.greedy import greedy_decode
from w2v2_onnx.results import Word
from w2v2_onnx.vocabulary import Vocabulary

TOKENS = ["<pad>", "<unk>", "|", "A", "B", "C", "E", "H", "I", "M", "O", "P", "R", "S", "T"]
VOCAB = Vocabulary.from_tokens(TOKENS, special_tokens=["<unk>"])
ID = {t: i for i, t in enumerate(TOKENS)}

# A tiny hand-written LM: "THE CAT SAT ON THE MAT" style word statistics (log10), with back-offs.
TINY_ARPA = """\\data\\
ngram 1=8
ngram 2=6

\\1-grams:
-1.0\t<unk>\t0
0\t<s>\t-0.3
-0.7\t</s>\t0
-0.6\tTHE\t-0.2
-1.0\tCAT\t-0.2
-1.0\tSAT\t-0.2
-1.0\tMAT\t-0.2
-3.0\tMAP\t-0.2

\\2-grams:
-0.2\t<s> THE
-0.3\tTHE CAT
-0.1\tCAT SAT
-0.5\tSAT THE
-0.2\tTHE MAT
-0.1\tMAT </s>

\\end\\
"""


def frames_for(spec: list[str | dict[str, float]]) -> np.ndarray:
    """Log-probabilities: each item is a token (probability ~1) or a {token: probability} frame."""
    probs = np.full((len(spec), len(TOKENS)), 1e-6)
    for row, item in enumerate(spec):
        for token, p in ({item: 1.0} if isinstance(item, str) else item).items():
            probs[row, ID[token]] = p
    probs /= probs.sum(axis=1, keepdims=True)
    return np.log(probs).astype(np.float32)


def spell(text: str) -> list[str]:
    """One-hot frames spelling ``text``: a blank between characters, '|' between words."""
    out = ["<pad>"]
    for ch in text:
        out += ["|" if ch == " " else ch, "<pad>"]
    return out


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("lm") / "tiny.arpa"
    path.write_text(TINY_ARPA)
    return str(path)


def test_one_hot_text_and_word_times() -> None:
    lp = frames_for(["<pad>", "H", "H", "I", "<pad>", "|", "|", "T", "<pad>", "H", "E", "E", "<pad>"])
    result = BeamSearchDecoder(VOCAB).decode(lp, 0.02)
    assert result.text == "HI THE"
    assert result.words == (Word(0.02, 0.08, "HI", 1.0), Word(0.14, 0.24, "THE", 1.0))


def test_repeated_character_needs_a_blank() -> None:
    lp = frames_for(["A", "A", "<pad>", "A", "|", "B", "B"])
    assert BeamSearchDecoder(VOCAB).decode(lp, 1.0).text == "AA B"


def test_prefix_merging_beats_the_best_path() -> None:
    # every frame: blank 0.6, A 0.4 -> best path "" (0.36) but P("A") = 0.16 + 0.24 + 0.24 = 0.64
    lp = frames_for([{"<pad>": 0.6, "A": 0.4}] * 2)
    assert greedy_decode(lp, VOCAB, 1.0).text == ""
    result = BeamSearchDecoder(VOCAB).decode(lp, 1.0)
    assert result.text == "A"
    assert result.words[0].word == "A"  # (its span is a tie between "A then blank" and "blank then A")


def test_word_end_comes_from_the_most_likely_alignment() -> None:
    # "A A _" (0.7) and "A _ _" (0.3) both spell "A"; pyctcdecode keeps the span of the one merged last
    # (end 1), we keep the likelier one's (end 2), which is also greedy's
    lp = frames_for(["A", {"A": 0.7, "<pad>": 0.3}, "<pad>"])
    assert BeamSearchDecoder(VOCAB).decode(lp, 1.0).words == greedy_decode(lp, VOCAB, 1.0).words
    assert BeamSearchDecoder(VOCAB).decode(lp, 1.0).words[0].end == 2.0


def test_beam_width_one_keeps_the_first_frames_best_prefix() -> None:
    # P("A") = 0.48 beats P("BA") = 0.52 * 0.55 = 0.286, but only a beam that keeps "A" after frame 1 finds it
    lp = frames_for([{"A": 0.48, "B": 0.52}, {"A": 0.55, "<pad>": 0.45}])
    assert greedy_decode(lp, VOCAB, 1.0).text == "BA"
    assert BeamSearchDecoder(VOCAB, beam_width=1).decode(lp, 1.0).text == "BA"
    assert BeamSearchDecoder(VOCAB, beam_width=8).decode(lp, 1.0).text == "A"


def test_hotword_changes_the_result() -> None:
    # "MAP" is acoustically a little more likely than "MAT"
    lp = frames_for(spell("THE MA")[:-1] + [{"P": 0.55, "T": 0.45}, "<pad>"])
    assert BeamSearchDecoder(VOCAB).decode(lp, 1.0).text == "THE MAP"
    assert BeamSearchDecoder(VOCAB, hotwords=["MAT"]).decode(lp, 1.0).text == "THE MAT"
    assert BeamSearchDecoder(VOCAB, hotwords=["MAT"], hotword_weight=0.0).decode(lp, 1.0).text == "THE MAP"


def test_unspellable_hotword_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="w2v2_onnx.beam"):
        BeamSearchDecoder(VOCAB, hotwords=["mat"])
    assert "can never match" in caplog.text


def test_language_model_fixes_an_ambiguous_word(tiny_lm: str) -> None:
    lp = frames_for(spell("THE CAT SAT THE MA")[:-1] + [{"P": 0.6, "T": 0.4}, "<pad>"])
    assert BeamSearchDecoder(VOCAB).decode(lp, 1.0).text == "THE CAT SAT THE MAP"
    assert BeamSearchDecoder(VOCAB, lm=tiny_lm, lm_backend="python").decode(lp, 1.0).text == \
        "THE CAT SAT THE MAT"
    # with alpha 0 the LM only adds beta per word, so the acoustics win again
    assert BeamSearchDecoder(VOCAB, lm=tiny_lm, alpha=0.0, lm_backend="python").decode(lp, 1.0).text == \
        "THE CAT SAT THE MAP"


def test_replace_reuses_the_lm(tiny_lm: str) -> None:
    lp = frames_for(spell("THE CAT SAT THE MA")[:-1] + [{"P": 0.6, "T": 0.4}, "<pad>"])
    decoder = BeamSearchDecoder(VOCAB, lm=tiny_lm, lm_backend="python")
    no_lm_weight = decoder.replace(alpha=0.0)
    assert no_lm_weight.scorer is not None and no_lm_weight.scorer.model is decoder.scorer.model
    assert no_lm_weight.decode(lp, 1.0).text == "THE CAT SAT THE MAP"
    assert decoder.decode(lp, 1.0).text == "THE CAT SAT THE MAT"
    assert decoder.replace(beam_width=3).options["beam_width"] == 3
    with pytest.raises(DecoderError):
        decoder.replace(lm="other.arpa")


def test_kenlm_and_python_backends_agree(tiny_lm: str) -> None:
    pytest.importorskip("kenlm", reason="the lm extra (kenlm) is not installed")
    rng = np.random.default_rng(3)
    lp = frames_for(spell("THE CAT SAT THE MAT"))
    noisy = np.log(np.exp(lp) + rng.uniform(0, 0.3, lp.shape)).astype(np.float32)
    with_kenlm = BeamSearchDecoder(VOCAB, lm=tiny_lm, lm_backend="kenlm")
    a = with_kenlm.decode(noisy, 0.02)
    b = BeamSearchDecoder(VOCAB, lm=tiny_lm, lm_backend="python").decode(noisy, 0.02)
    assert a == b
    # a KenLM model does not pickle itself: the decoder reloads it from its path in the new process
    assert pickle.loads(pickle.dumps(with_kenlm)).decode(noisy, 0.02) == a


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_decode_batch_in_workers_matches_serial(tiny_lm: str, method: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context(method)
    monkeypatch.setattr(multiprocessing, "get_context", lambda *a: ctx)
    rng = np.random.default_rng(0)
    base = frames_for(spell("THE CAT SAT THE MAT"))
    batch = [np.log(np.exp(base) + rng.uniform(0, 0.4, base.shape)).astype(np.float32) for _ in range(3)]
    decoder = BeamSearchDecoder(VOCAB, lm=tiny_lm, lm_backend="python", hotwords=["MAP"])
    serial = decoder.decode_batch(batch, 0.02)
    assert decoder.decode_batch(batch, 0.02, num_workers=2) == serial
    assert pickle.loads(pickle.dumps(decoder)).decode(batch[0], 0.02) == serial[0]


def test_empty_input_and_bad_shapes() -> None:
    decoder = BeamSearchDecoder(VOCAB)
    assert decoder.decode(np.zeros((0, len(TOKENS)), np.float32), 0.02).text == ""
    with pytest.raises(DecoderError):
        decoder.decode(np.zeros((5, 3), np.float32), 0.02)
    with pytest.raises(DecoderError):
        decoder.decode(np.full((2, len(TOKENS)), np.nan, np.float32), 0.02)
    with pytest.raises(DecoderError):
        BeamSearchDecoder(VOCAB, beam_width=0)
    with pytest.raises(DecoderError):
        decoder.decode_batch([], 0.02, num_workers=-1)


def test_lm_errors(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LanguageModelError):
        BeamSearchDecoder(VOCAB, lm=tmp_path / "missing.arpa")
    junk = tmp_path / "junk.arpa"
    junk.write_text("not an arpa file\n")
    with pytest.raises(LanguageModelError):
        BeamSearchDecoder(VOCAB, lm=junk, lm_backend="python")
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"mmap lm http://kheafield.com/code format version 5\0\0")
    monkeypatch.setitem(__import__("sys").modules, "kenlm", None)  # simulate kenlm not installed
    with pytest.raises(MissingDependencyError, match=r"w2v2-onnx\[lm\]"):
        BeamSearchDecoder(VOCAB, lm=binary)


@pytest.mark.parametrize("settings, message", [
    (dict(alpha=float("nan")), "alpha must be a finite number"),
    (dict(alpha=float("inf")), "alpha must be a finite number"),
    (dict(alpha=1e308), r"alpha must be a finite number in \[0, 1000\]"),
    (dict(alpha="big"), "alpha must be a number"),
    (dict(beta=float("nan")), "beta must be a finite number"),
    (dict(hotword_weight=float("nan")), "hotword_weight must be a finite number"),
    (dict(hotword_weight="x"), "hotword_weight must be a number"),
    (dict(beam_width="ten"), "beam_width must be an integer from 1 to 4096"),
    (dict(beam_width=2.7), "beam_width must be an integer"),
    (dict(beam_width=True), "beam_width must be an integer"),
    (dict(beam_width=0), "beam_width must be an integer"),
    (dict(beam_width=10**6), "beam_width must be an integer from 1 to 4096"),
    (dict(hotwords="CAT"), "hotwords must be a list of strings, got 'CAT'"),
    (dict(hotwords=5), "hotwords must be a list of strings"),
    (dict(hotwords=["CAT", None]), "None is a NoneType"),
    (dict(token_min_logp=1.0), "token_min_logp must be a finite number"),
])
def test_bad_settings_are_refused_by_init_and_by_replace(settings: dict, message: str) -> None:
    """Both ways of setting an option check it alike (Transcriber changes its cached decoder with replace)."""
    with pytest.raises(DecoderError, match=message):
        BeamSearchDecoder(VOCAB, **settings)
    with pytest.raises(DecoderError, match=message):
        BeamSearchDecoder(VOCAB).replace(**settings)


def test_good_settings_of_other_numeric_types_are_taken() -> None:
    decoder = BeamSearchDecoder(VOCAB).replace(beam_width=np.int64(8), alpha=np.float32(0.25), hotwords=("CAT",))
    assert decoder.options["beam_width"] == 8 and decoder.options["alpha"] == 0.25
    assert decoder.options["hotwords"] == ["CAT"]
    with pytest.raises(DecoderError, match="lm must be a path"):
        BeamSearchDecoder(VOCAB, lm=5)


def test_garbage_lm_file_is_a_language_model_error(tmp_path) -> None:
    pytest.importorskip("kenlm")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(LanguageModelError, match="could not load"):
        BeamSearchDecoder(VOCAB, lm=garbage)
