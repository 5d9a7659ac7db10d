"""The C frame loop (``w2v2_onnx._beam_native``) gives exactly what the Python loop gives.

Both loops run on the stored pyctcdecode parity inputs under many settings; results (texts, word times,
word probabilities) must be equal, not close. The C loop is optional (built only with a C compiler); its
tests skip without it unless ``W2V2_ONNX_REQUIRE_NATIVE`` is set, as CI does where a compiler exists.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from w2v2_onnx import beam_search
from w2v2_onnx.beam import BeamSearchDecoder
from w2v2_onnx.lm import LanguageModelScorer, load_ngram_model
from w2v2_onnx.vocabulary import Vocabulary

DATA = Path(__file__).parent / "data"
TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L",
          "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]
VOCAB = Vocabulary.from_tokens(TOKENS, special_tokens=["<s>", "</s>", "<unk>"])
LM = DATA / "lmplz_tiny_corpus_o3.arpa"
NATIVE = beam_search._native

if os.environ.get("W2V2_ONNX_REQUIRE_NATIVE"):
    def test_the_native_loop_was_built() -> None:
        assert NATIVE is not None, "w2v2_onnx._beam_native did not build or import"

needs_native = pytest.mark.skipif(NATIVE is None and not os.environ.get("W2V2_ONNX_REQUIRE_NATIVE"),
                                  reason="the optional C loop was not built (no C compiler at install)")


@pytest.fixture(scope="module")
def inputs() -> list[np.ndarray]:
    data = np.load(DATA / "pyctcdecode_parity_inputs.npz")
    noisy = [data[f"lp{i}"] for i in range(len(data.files) // 2)]
    return noisy + [lp * 4.0 for lp in noisy[:4]]  # and sharper ones (decode() renormalises)


def both_loops(decoder: BeamSearchDecoder, inputs: list[np.ndarray],
               monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    calls = []

    def counting(*args: object) -> object:
        calls.append(1)
        return NATIVE.frames(*args)

    class Spy:
        frames = staticmethod(counting)
        prefix_trie = staticmethod(NATIVE.prefix_trie)

    monkeypatch.setattr(beam_search, "_native", Spy())
    native = [decoder.decode(lp, 0.02) for lp in inputs]
    assert len(calls) == len(inputs), "the C loop was not used"
    monkeypatch.setattr(beam_search, "_native", None)
    python = [decoder.decode(lp, 0.02) for lp in inputs]
    return native, python


SETTINGS = [
    {},
    {"beam_width": 1},
    {"beam_width": 3, "token_min_logp": -2.0},
    {"beam_prune_logp": -3.0},
    {"hotwords": ["KITE", "RED BALL"]},
    {"hotwords": ["KITE"], "hotword_weight": 2.5, "beam_width": 16},
    {"lm": True},
    {"lm": True, "alpha": 1.2, "beta": 0.5, "beam_width": 8},
    {"lm": True, "hotwords": ["KITE", "RED BALL"]},
    {"lm": True, "unk_score_offset": -3.0, "score_boundary": False, "token_min_logp": -8.0},
]


@needs_native
@pytest.mark.parametrize("settings", SETTINGS, ids=[str(s) for s in SETTINGS])
def test_native_loop_equals_python_loop(settings: dict, inputs: list[np.ndarray],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = dict(settings)
    lm = LM if settings.pop("lm", False) else None
    decoder = BeamSearchDecoder(VOCAB, lm=lm, lm_backend="python", **settings)
    native, python = both_loops(decoder, inputs, monkeypatch)
    assert native == python
    assert any(r.text for r in native)


@needs_native
def test_native_loop_equals_python_loop_when_every_prefix_is_unknown(inputs: list[np.ndarray],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a word list (a binary LM with no unigram file) every partial word is unknown from its first
    letter, so the C loop scores all of them itself, by length, including words longer than six letters."""
    decoder = BeamSearchDecoder(VOCAB, hotwords=["KITE"])
    decoder.scorer = LanguageModelScorer(load_ngram_model(LM, backend="python"), None, alpha=0.5, beta=1.5)
    native, python = both_loops(decoder, inputs, monkeypatch)
    assert native == python
    assert any(len(word.word) > 6 for r in native for word in r.words)


@needs_native
@pytest.mark.parametrize("case", ["prune_history", "multi-character token"])
def test_python_loop_runs_where_the_native_one_does_not_apply(case: str, inputs: list[np.ndarray],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if case == "prune_history":
        decoder = BeamSearchDecoder(VOCAB, lm=LM, lm_backend="python", prune_history=True)
    else:
        tokens = [*TOKENS[:-1], "QU"]
        decoder = BeamSearchDecoder(Vocabulary.from_tokens(tokens, special_tokens=["<s>", "</s>", "<unk>"]))

    def refuse(*args: object) -> None:
        raise AssertionError("the C loop must not run here")

    class Spy:
        frames = prefix_trie = staticmethod(refuse)

    monkeypatch.setattr(beam_search, "_native", Spy())
    assert decoder.decode(inputs[0], 0.02).text


@needs_native
def test_native_loop_refuses_malformed_arguments() -> None:
    lp = np.log(np.full((3, 4), 0.25))
    good = dict(candidates=np.zeros(3, np.int32), offsets=np.arange(4, dtype=np.int32),
                kinds=np.array([0, 1, 2, 2], np.int32), symbols=np.array([-1, 0, 1, 2], np.int32),
                codepoints=np.array([32, 65, 66], np.int32))

    def call(log_probs: np.ndarray = lp, **changes: np.ndarray) -> list:
        args = {**good, **changes}
        return NATIVE.frames(log_probs, args["candidates"], args["offsets"], args["kinds"], args["symbols"],
                             args["codepoints"], 4, -10.0, 0, 0.0, 0.0, 6, trie, trie, lambda *a: 0.0)

    trie = NATIVE.prefix_trie(np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1))

    assert call()[0][:3] == (0, "", -1)  # three blanks: nothing emitted
    with pytest.raises(TypeError, match="log_probs"):
        call(lp.astype(np.float32))
    with pytest.raises(ValueError, match="offsets"):
        call(offsets=np.array([0, 2, 1, 3], np.int32))
    with pytest.raises(ValueError, match="candidates"):
        call(candidates=np.array([0, 9, 0], np.int32))
    with pytest.raises(ValueError, match="kinds"):
        call(symbols=np.array([-1, 0, 1, 7], np.int32))
    with pytest.raises(ValueError, match="parent must come before"):
        NATIVE.prefix_trie(np.array([0, 2, 0], np.int32), np.array([0, 1, 2], np.int32), np.zeros(3))
    with pytest.raises(ValueError, match="same parent and symbol"):
        NATIVE.prefix_trie(np.array([0, 0, 0], np.int32), np.array([0, 1, 1], np.int32), np.zeros(3))
    with pytest.raises(ValueError, match="one equal"):
        NATIVE.prefix_trie(np.array([0, 0], np.int32), np.array([0, 1], np.int32), np.zeros(3))


@needs_native
def test_a_failing_callback_propagates(inputs: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    decoder = BeamSearchDecoder(VOCAB, lm=LM, lm_backend="python")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("scorer failed")

    monkeypatch.setattr(decoder.scorer, "score", broken)
    with pytest.raises(RuntimeError, match="scorer failed"):
        decoder.decode(inputs[0], 0.02)


@needs_native
def test_equal_alignments_merge_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two frames of A-or-blank at exactly one half: "A" is reached by A A (a repeat) and by blank A with
    equal probability, and both loops keep the same (the later-merged) alignment's word start."""
    probs = np.full((2, len(TOKENS)), 0.0)
    probs[:, 0] = probs[:, TOKENS.index("A")] = 0.5
    decoder = BeamSearchDecoder(VOCAB)
    native, python = both_loops(decoder, [np.log(np.maximum(probs, 1e-30))], monkeypatch)
    assert native == python
    assert native[0].text == "A"


@needs_native
def test_the_lm_prefix_trie_is_built_once_per_lm_and_not_pickled() -> None:
    import pickle

    decoder = BeamSearchDecoder(VOCAB, lm=LM, lm_backend="python")
    assert len(decoder.scorer.search_cache) == 1  # built with the decoder, not at its first decode
    tuned = decoder.replace(alpha=1.5, beta=0.0, hotwords=["KITE"])
    assert tuned.scorer.search_cache is decoder.scorer.search_cache  # alpha and beta do not change it
    assert len(decoder.scorer.search_cache) == 1
    copy = pickle.loads(pickle.dumps(tuned))  # as worker processes receive it: rebuilt there
    assert copy.scorer.search_cache == {} and copy._hotword_scorer.search_cache == {}


def final_beams(decoder: BeamSearchDecoder, log_probs: np.ndarray, native: bool) -> list[tuple]:
    """Every beam left after the last frame, with its scores, from one of the two loops."""
    from w2v2_onnx.beam import _MIN_LOG_PROB, _log_softmax

    lp = np.clip(_log_softmax(np.asarray(log_probs)), _MIN_LOG_PROB, 0)
    scorer = beam_search._Scorer(decoder.scorer, decoder._hotword_scorer)
    if native:
        return beam_search._native_frames(lp, decoder._chars, decoder.settings, scorer)
    return [beam[:8] for beam in beam_search._python_frames(lp, decoder._chars, decoder.settings, scorer, 1)]


@needs_native
def test_native_loop_equals_python_loop_with_a_large_vocabulary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over 64 symbols the C loop finds children through a hash map instead of per-node rows; every final
    beam (text, partial word, last symbol, spans, scores) must be equal, not only the best one."""
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)] + [chr(c) for c in range(0x3B1, 0x3C9)]
    letters += [chr(c) for c in range(0x410, 0x430)]  # Latin, Greek and Cyrillic capitals: 81 symbols
    tokens = ["<pad>", "|", *letters]
    vocab = Vocabulary.from_tokens(tokens, special_tokens=[])
    rng = np.random.default_rng(0)
    spoken = []  # CTC-like: each symbol held for 1-3 frames, then 0-2 blank frames
    for token in rng.integers(1, len(tokens), size=120):
        spoken += [int(token)] * int(rng.integers(1, 4)) + [0] * int(rng.integers(0, 3))
    logits = rng.normal(0.0, 1.0, size=(len(spoken), len(tokens)))
    logits[np.arange(len(spoken)), spoken] += 4.0
    inputs = [logits[: len(spoken) // 2], logits[len(spoken) // 2:]]
    for decoder in (BeamSearchDecoder(vocab, beam_width=16), BeamSearchDecoder(vocab, hotwords=["ΑΒΓ", "KITE"])):
        native, python = both_loops(decoder, inputs, monkeypatch)
        assert native == python
        assert any(len(r.words) > 3 for r in native)
        monkeypatch.setattr(beam_search, "_native", NATIVE)
        for lp in inputs:
            assert final_beams(decoder, lp, native=True) == final_beams(decoder, lp, native=False)


@needs_native
@pytest.mark.parametrize("settings", SETTINGS[:8], ids=[str(s) for s in SETTINGS[:8]])
def test_both_loops_leave_the_same_beams(settings: dict, inputs: list[np.ndarray]) -> None:
    settings = dict(settings)
    lm = LM if settings.pop("lm", False) else None
    decoder = BeamSearchDecoder(VOCAB, lm=lm, lm_backend="python", **settings)
    for lp in inputs:
        assert final_beams(decoder, lp, native=True) == final_beams(decoder, lp, native=False)


@needs_native
def test_threads_share_a_decoder_safely(inputs: list[np.ndarray]) -> None:
    """The C loop runs without the GIL (it takes it back to score new texts): decoding from several threads
    at once with one decoder gives what decoding one after another gives."""
    from concurrent.futures import ThreadPoolExecutor

    decoder = BeamSearchDecoder(VOCAB, lm=LM, lm_backend="python", hotwords=["KITE"])
    work = inputs * 4
    expected = [decoder.decode(lp, 0.02) for lp in work]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda lp: decoder.decode(lp, 0.02), work)) == expected


@needs_native
def test_both_loops_agree_on_random_vocabularies_inputs_and_settings() -> None:
    """Seeded random cases (vocabularies of 2-90 letters, Latin and Cyrillic; 1-120 frames of peaky or flat
    log-probabilities; random beam widths, pruning, hotwords, LM weights and offsets): the final beams with
    their scores, and the results, are equal. (800 such cases were run when the C loop was written.)"""
    rng = np.random.default_rng(20261126)
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)] + ["'", "Ä", "Ω"] + [chr(c) for c in range(0x410, 0x450)]
    for _ in range(150):
        chosen = [str(c) for c in rng.choice(letters, size=int(rng.integers(2, 90)), replace=False)]
        tokens = ["<pad>", "|", *chosen] + (["<unk>"] if rng.random() < 0.5 else [])
        vocab = Vocabulary.from_tokens(tokens, special_tokens=[t for t in ("<unk>",) if t in tokens])
        frames = int(rng.integers(1, 120))
        logits = rng.normal(0, rng.uniform(0.3, 3), size=(frames, len(tokens)))
        logits[np.arange(frames), rng.integers(0, len(tokens), size=frames)] += rng.uniform(0, 8)
        settings = {"beam_width": int(rng.choice([1, 2, 5, 16, 100])),
                    "beam_prune_logp": float(rng.choice([-10.0, -3.0, -20.0])),
                    "token_min_logp": float(rng.choice([-5.0, -2.0, -12.0]))}
        if rng.random() < 0.5:
            settings["hotwords"] = ["".join(rng.choice(chosen, size=int(rng.integers(1, 5))))
                                    for _ in range(int(rng.integers(1, 3)))]
            settings["hotword_weight"] = float(rng.uniform(0.5, 12))
        if rng.random() < 0.5:
            settings.update(lm=LM, lm_backend="python", alpha=float(rng.uniform(0, 2)),
                            beta=float(rng.uniform(-1, 3)), unk_score_offset=float(rng.choice([-10.0, -3.0])),
                            score_boundary=bool(rng.random() < 0.7))
        decoder = BeamSearchDecoder(vocab, **settings)
        assert final_beams(decoder, logits, native=True) == final_beams(decoder, logits, native=False), settings
