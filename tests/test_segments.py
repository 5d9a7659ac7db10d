"""Long inputs are searched in segments cut at pauses: the cuts, and beam results equal to one search."""

from __future__ import annotations

import numpy as np
import pytest
import tone_model as tm

from w2v2_onnx import DecoderError
from w2v2_onnx.beam import BeamSearchDecoder
from w2v2_onnx.segments import pause_segments


def frames_with_blank_runs(best: list[int], width: int = 5) -> np.ndarray:
    """Log-probabilities whose best token per frame is ``best`` (0 is the blank)."""
    lp = np.full((len(best), width), np.log(0.01))
    lp[np.arange(len(best)), best] = np.log(0.96)
    return lp


def test_short_inputs_are_one_segment_and_cuts_fall_in_the_longest_pause():
    assert pause_segments(np.zeros((10, 5)), 0, 10) == [(0, 10)]
    # speech (token 2) with a 2-frame pause at 6-8 and a 5-frame pause at 12-17; segments of at most 20
    best = [2] * 6 + [0] * 2 + [2] * 4 + [0] * 5 + [2] * 13
    bounds = pause_segments(frames_with_blank_runs(best), 0, 20, pause_frames=5)
    assert bounds == [(0, 14), (14, 30)]  # the middle of 12..17, not of the shorter pause


def test_a_gap_with_a_word_delimiter_beats_a_longer_blank_run_inside_a_word():
    # a 4-frame blank run inside a word (11-15), a 3-frame gap holding the delimiter (token 1) at 17-20
    best = [2] * 11 + [0] * 4 + [2] * 2 + [0, 1, 0] + [2] * 10
    assert pause_segments(frames_with_blank_runs(best), 0, 20, delimiter_id=1)[0] == (0, 18)
    assert pause_segments(frames_with_blank_runs(best), 0, 20)[0] == (0, 13)  # no delimiter known: longest run


def test_every_frame_is_covered_once_and_no_segment_is_too_long():
    rng = np.random.default_rng(0)
    best = rng.choice([0, 0, 0, 1, 2, 3], size=5000).tolist()
    bounds = pause_segments(frames_with_blank_runs(best), 0, 300)
    assert bounds[0][0] == 0 and bounds[-1][1] == 5000
    assert all(a == b for (_, a), (b, _) in zip(bounds, bounds[1:], strict=False))
    assert all(0 < end - start <= 300 for start, end in bounds)
    assert all(end - start > 150 for start, end in bounds[:-1])  # cuts are in the second half of a span


def test_continuous_speech_without_any_blank_is_cut_at_the_limit():
    assert pause_segments(frames_with_blank_runs([2] * 25), 0, 10) == [(0, 10), (10, 20), (20, 25)]
    with pytest.raises(ValueError):
        pause_segments(np.zeros((5, 5)), 0, 1)


@pytest.mark.parametrize("pause", [0.0, 0.5])
def test_segmented_beam_search_gives_the_whole_search_transcript_and_times(tone_transcriber, pause):
    """Phrases with or without pauses between them: the cuts fall between words, never inside one."""
    parts = ["HELLO WORLD", "IT'S A TEST", "OF LONG AUDIO", "CUT AT PAUSES"] * 3
    silence = np.zeros(int(pause * tm.RATE), np.float32)
    audio = np.concatenate([np.concatenate([tm.synthesize(part + " ", lead=0.0), silence]) for part in parts])
    log_probs = tone_transcriber.log_probs(audio)
    vocab, frame = tone_transcriber.config.vocabulary, tone_transcriber.config.frame_duration
    decoder = BeamSearchDecoder(vocab, beam_width=16)
    whole = decoder.decode(log_probs, frame, max_segment_seconds=None)
    assert whole.text == " ".join(parts)
    for limit in (2.0, 5.0, 11.0):  # the second half of each span (1 s and more) holds a gap between words
        assert len(pause_segments(log_probs, vocab.blank_id, int(limit / frame), vocab.delimiter_id)) > 1
        cut = decoder.decode(log_probs, frame, max_segment_seconds=limit)
        assert cut.text == whole.text and cut.words == whole.words, limit
    with pytest.raises(DecoderError, match="max_segment_seconds"):
        decoder.decode(log_probs, frame, max_segment_seconds=0.01)
