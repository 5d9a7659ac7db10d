"""Closed-set recognition: CTC phrase log-likelihoods against brute force, phrase checks, and end to end."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import tone_model as tm

from w2v2_onnx import InvalidOptionError, PhraseMatch, match_phrases
from w2v2_onnx.cli import main
from w2v2_onnx.phrases import MAX_PHRASES, best_path_log_prob, phrase_log_likelihoods, posterior, spell_phrases
from w2v2_onnx.vocabulary import Vocabulary

VOCAB = Vocabulary.from_tokens(["<pad>", "|", "A", "B"], blank_id=0, special_tokens=["<pad>"])
NO_DELIMITER = Vocabulary.from_tokens(["<pad>", "A", "B"], blank_id=0, word_delimiter=None,
                                      special_tokens=["<pad>"])


def random_log_probs(frames: int, width: int, seed: int) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(scale=2.0, size=(frames, width))
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def brute_force(log_probs: np.ndarray, blank: int) -> dict[tuple[int, ...], float]:
    """log P(labels) for every label sequence, by summing over every frame path (tiny sizes only)."""
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(log_probs.shape[1]), repeat=log_probs.shape[0]):
        labels = tuple(k for i, k in enumerate(path) if k != blank and (i == 0 or path[i - 1] != k))
        score = float(sum(log_probs[t, k] for t, k in enumerate(path)))
        totals[labels] = float(np.logaddexp(totals.get(labels, -np.inf), score))
    return totals


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_likelihoods_equal_the_sum_over_all_paths(seed):
    log_probs = random_log_probs(6, len(VOCAB), seed)
    phrases = spell_phrases(["A", "B", "AB", "BA", "AA", "A B", "B A A", "AAB"], VOCAB)
    totals = brute_force(log_probs, VOCAB.blank_id)
    ours = phrase_log_likelihoods(log_probs, phrases, VOCAB)
    edge = (VOCAB.delimiter_id,)
    for phrase, score in zip(phrases, ours, strict=True):
        ids = phrase.token_ids  # the delimiter at either edge is optional: four label sequences in all
        variants = [ids, edge + ids, ids + edge, edge + ids + edge]
        expected = np.logaddexp.reduce([totals.get(v, -np.inf) for v in variants])
        assert score == pytest.approx(expected, abs=1e-9), phrase.text


def test_without_a_word_delimiter_only_the_phrase_itself_counts():
    log_probs = random_log_probs(5, len(NO_DELIMITER), 3)
    totals = brute_force(log_probs, NO_DELIMITER.blank_id)
    phrases = spell_phrases(["A", "AB", "BB", "BAB"], NO_DELIMITER)
    for phrase, score in zip(phrases, phrase_log_likelihoods(log_probs, phrases, NO_DELIMITER), strict=True):
        assert score == pytest.approx(totals.get(phrase.token_ids, -np.inf), abs=1e-9)


def test_a_phrase_longer_than_the_frames_allow_is_impossible():
    log_probs = random_log_probs(2, len(VOCAB), 4)
    scores = phrase_log_likelihoods(log_probs, spell_phrases(["AA", "ABA", "AB"], VOCAB), VOCAB)
    assert scores[0] == -np.inf  # A, blank, A needs three frames
    assert scores[1] == -np.inf
    assert np.isfinite(scores[2])
    assert (phrase_log_likelihoods(np.zeros((0, 4)), spell_phrases(["A"], VOCAB), VOCAB) == -np.inf).all()


def test_bad_log_probs_raise_decoder_errors():
    from w2v2_onnx import DecoderError

    phrases = spell_phrases(["A"], VOCAB)
    for bad, message in [(np.zeros((3, 5)), "shape"), (np.zeros(4), "shape"), (np.zeros((3, 4), np.int32), "float"),
                         (np.array([[0.0, np.nan, 0.0, 0.0]]), "NaN")]:
        with pytest.raises(DecoderError, match=message):
            phrase_log_likelihoods(bad, phrases, VOCAB)


def test_posterior_is_a_distribution_and_zero_when_nothing_fits():
    shares = posterior(np.array([-1.0, -3.0, -np.inf]))
    assert shares.sum() == pytest.approx(1.0) and shares[2] == 0.0 and shares[0] > shares[1]
    assert (posterior(np.array([-np.inf, -np.inf])) == 0).all()


def test_phrases_are_spelled_in_the_vocabulary_case_with_words_joined_by_the_delimiter():
    (spelled,) = spell_phrases(["  a   b "], VOCAB)
    assert spelled.text == "  a   b " and spelled.token_ids == (2, 1, 3)


@pytest.mark.parametrize(("phrases", "message"), [
    ("A", "must be a list of strings"),
    ([], "phrases is empty"),
    (["A", 3], "must be strings"),
    (["A", "  "], "is empty"),
    (["a", "A"], "spell the same tokens"),
    (["AC"], "characters the model cannot write: ['C']"),
    (["A"] * (MAX_PHRASES + 1), f"at most {MAX_PHRASES}"),
])
def test_bad_phrase_lists_are_refused_with_the_reason(phrases, message):
    with pytest.raises(InvalidOptionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        spell_phrases(phrases, VOCAB)


def test_a_space_needs_a_delimiter():
    with pytest.raises(InvalidOptionError, match="no word delimiter"):
        spell_phrases(["A B"], NO_DELIMITER)


DIGITS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]


def test_the_spoken_phrase_wins_end_to_end(tone_transcriber):
    audios = [tm.synthesize(word) for word in DIGITS]
    matches = tone_transcriber.match_phrases(audios, [w.lower() for w in DIGITS])
    assert [m.phrase for m in matches] == [w.lower() for w in DIGITS]
    for match in matches:
        assert isinstance(match, PhraseMatch)
        assert match.probability > 0.99
        assert match.log_likelihood == max(match.scores.values())
        assert match.margin > -1.0  # the phrase is what the model hears
        assert list(match.scores) == [w.lower() for w in DIGITS]
    single = tone_transcriber.match_phrases(tm.synthesize("SEVEN"), ["SEVEN", "SEVENTY"], sample_rate=16000)
    assert single.phrase == "SEVEN" and single.duration == pytest.approx(len(tm.synthesize("SEVEN")) / 16000)


def test_multi_word_phrases_and_a_near_miss(tone_transcriber):
    match = tone_transcriber.match_phrases(tm.synthesize("TURN ON"), ["TURN ON", "TURN OFF", "TURNON"])
    assert match.phrase == "TURN ON" and match.margin > -1.0
    assert match.scores["TURN OFF"] < match.log_likelihood and match.scores["TURNON"] < match.log_likelihood


def test_audio_too_short_for_every_phrase_has_no_answer(tone_transcriber):
    match = tone_transcriber.match_phrases(np.zeros(800, np.float32), ["SEVENTEEN", "NINETEEN"])
    assert match.phrase is None and match.probability == 0.0 and match.log_likelihood == -math.inf
    assert match.margin == -math.inf


def test_margin_rejects_an_input_that_says_none_of_the_phrases(tone_transcriber):
    said = tone_transcriber.match_phrases(tm.synthesize("SEVEN"), ["SEVEN", "ELEVEN"])
    other = tone_transcriber.match_phrases(tm.synthesize("TWELVE"), ["SEVEN", "ELEVEN"])
    assert other.phrase in ("SEVEN", "ELEVEN") and other.probability > 0.5  # relative: still a best phrase
    assert other.margin < -20 < -1 < said.margin  # absolute: far below what the model hears
    assert not said.rejected and not other.rejected  # no min_margin: nothing is rejected


def test_min_margin_rejects_below_it_and_keeps_the_scores(tone_transcriber):
    phrases = ["SEVEN", "ELEVEN"]
    audios = [tm.synthesize("SEVEN"), tm.synthesize("TWELVE")]
    plain = tone_transcriber.match_phrases(audios, phrases)
    said, other = tone_transcriber.match_phrases(audios, phrases, min_margin=-5.0)
    assert said.phrase == "SEVEN" and not said.rejected
    assert other.phrase is None and other.rejected
    # the rejected match still says what the best phrase scored, exactly as without a threshold
    assert other.scores == plain[1].scores and other.margin == plain[1].margin
    assert other.log_likelihood == max(other.scores.values()) and other.probability == plain[1].probability
    # a threshold at the spoken phrase's own margin keeps it (rejection is strictly below)
    assert tone_transcriber.match_phrases(audios[0], phrases, min_margin=said.margin).phrase == "SEVEN"
    assert tone_transcriber.match_phrases(audios[0], phrases, min_margin=said.margin + 1e-6).rejected


@pytest.mark.parametrize("bad", ["-1", True, math.nan, math.inf, [1.0]])
def test_min_margin_must_be_a_finite_number(tone_transcriber, bad):
    with pytest.raises(InvalidOptionError, match="min_margin must be None or a finite number"):
        tone_transcriber.match_phrases(tm.synthesize("A"), ["A"], min_margin=bad)


def test_best_path_log_prob_is_the_sum_of_frame_maxima():
    log_probs = random_log_probs(7, len(VOCAB), 5)
    assert best_path_log_prob(log_probs) == pytest.approx(log_probs.max(axis=1).sum())
    assert best_path_log_prob(np.zeros((0, 4))) == 0.0


def test_bad_phrases_and_bad_audio_raise_typed_errors(tone_transcriber):
    from w2v2_onnx import AudioFileNotFoundError

    with pytest.raises(InvalidOptionError, match="cannot write"):
        tone_transcriber.match_phrases(tm.synthesize("A"), ["ÉTÉ"])
    with pytest.raises(AudioFileNotFoundError):
        tone_transcriber.match_phrases("/no/such/file.wav", ["A"])
    with pytest.raises(InvalidOptionError, match="batch_size"):
        tone_transcriber.match_phrases(tm.synthesize("A"), ["A"], batch_size=0)


def test_one_call_function(tone_model_dir):
    assert match_phrases(tm.synthesize("TWO"), DIGITS, model=tone_model_dir).phrase == "TWO"


def test_cli_prints_the_best_phrase_and_json(tone_model_dir, tmp_path, capsys):
    import soundfile as sf

    path = tmp_path / "four.wav"
    sf.write(path, tm.synthesize("FOUR"), tm.RATE)
    phrase_file = tmp_path / "phrases.txt"
    phrase_file.write_text("\n".join(DIGITS) + "\n\n", encoding="utf-8")
    assert main(["match", str(path), "--model", str(tone_model_dir), "--phrases", "FIVE", "FOUR"]) == 0
    fields = capsys.readouterr().out.strip().split("\t")
    assert fields[:2] == [str(path), "FOUR"] and float(fields[2]) > 0.99 and float(fields[3]) > -1
    assert main(["match", str(path), "--model", str(tone_model_dir), "--phrases-file", str(phrase_file),
                 "--format", "json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["source"] == str(path) and line["phrase"] == "FOUR" and set(line["scores"]) == set(DIGITS)
    assert line["margin"] > -1
    assert main(["match", str(path), "--model", str(tone_model_dir), "--phrases", "FIVE", "FOUR",
                 "--min-margin", "1e9"]) == 0  # every match rejected: the phrase column is empty
    assert capsys.readouterr().out.strip("\n").split("\t")[:2] == [str(path), ""]
    assert main(["match", str(path), "--model", str(tone_model_dir), "--phrases", "FOUR", "--min-margin",
                 "1e9", "--format", "json"]) == 0
    rejected = json.loads(capsys.readouterr().out)
    assert rejected["phrase"] is None and rejected["rejected"] is True and rejected["scores"]["FOUR"] < 0
    assert main(["match", str(path), "--model", str(tone_model_dir), "--phrases", "FOUR", "--min-margin",
                 "nan"]) == 2
    assert "min_margin must be None or a finite number" in capsys.readouterr().err
    assert main(["match", str(path), "--model", str(tone_model_dir), "--phrases", "F!VE"]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert main(["match", str(tmp_path / "gone.wav"), str(path), "--model", str(tone_model_dir),
                 "--phrases", "FOUR"]) == 1
    captured = capsys.readouterr()
    assert "gone.wav" in captured.err and "FOUR" in captured.out
    assert main(["match", str(path), "--model", str(tone_model_dir), "--phrases-file",
                 str(tmp_path / "none.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err
