"""Long inputs are searched in segments cut at pauses: the cuts, and beam results equal to one search; and the
search restarts at long pauses (sentence cuts)."""

from __future__ import annotations

import numpy as np
import pytest
import tone_model as tm

from w2v2_onnx import DecoderError
from w2v2_onnx.beam import SENTENCE_PAUSE_SECONDS, BeamSearchDecoder
from w2v2_onnx.segments import pause_segments, split_at_pauses


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
    whole = decoder.decode(log_probs, frame, max_segment_seconds=None, sentence_pause_seconds=None)
    assert whole.text == " ".join(parts)
    for limit in (2.0, 5.0, 11.0):  # the second half of each span (1 s and more) holds a gap between words
        assert len(pause_segments(log_probs, vocab.blank_id, int(limit / frame), vocab.delimiter_id)) > 1
        cut = decoder.decode(log_probs, frame, max_segment_seconds=limit, sentence_pause_seconds=None)
        assert cut.text == whole.text and cut.words == whole.words, limit
    # with the default sentence cuts too (no LM here, so each part's text is what the whole search gives)
    with_cuts = decoder.decode(log_probs, frame)
    assert with_cuts.text == whole.text and with_cuts.words == whole.words
    with pytest.raises(DecoderError, match="max_segment_seconds"):
        decoder.decode(log_probs, frame, max_segment_seconds=0.01)
    for bad in ("long", 0, -1.0):
        with pytest.raises(DecoderError, match="sentence_pause_seconds must be None or a positive number"):
            decoder.decode(log_probs, frame, sentence_pause_seconds=bad)


def test_sentence_cuts_fall_in_the_middle_of_each_long_inner_pause():
    # pauses: 3 frames at the start (not cut), 2 inside (too short), 4 and 6 inside (cut), 3 at the end (not cut)
    best = [0] * 3 + [2] * 4 + [0] * 2 + [2] * 3 + [0, 1, 0, 0] + [2] * 2 + [0] * 6 + [2] + [0] * 3
    assert split_at_pauses(frames_with_blank_runs(best), 0, 1, 4) == [(0, 14), (14, 21), (21, 28)]
    assert split_at_pauses(frames_with_blank_runs(best), 0, None, 4) == [(0, 21), (21, 28)]  # 0 1 0 0: no long run
    assert split_at_pauses(frames_with_blank_runs([2] * 5), 0, 1, 1) == [(0, 5)]
    assert split_at_pauses(np.zeros((0, 5)), 0, 1, 3) == [(0, 0)]
    with pytest.raises(ValueError):
        split_at_pauses(np.zeros((5, 5)), 0, 1, 0)


def test_each_sentence_between_long_pauses_is_searched_as_its_own_input(tone_model_dir, tmp_path):
    """With a language model: the search over [A, pause, B] is the searches over A and over B, joined."""
    import shutil

    from w2v2_onnx import Transcriber

    model = tm.copy_with_language_model(shutil.copytree(tone_model_dir, tmp_path / "model"), tmp_path)
    transcriber = Transcriber(model, device="cpu", threads=1)
    first, second = tm.synthesize("HELLO WORLD"), tm.synthesize("A TEST OF THE WORLD")
    pause = np.zeros(int(0.8 * tm.RATE), np.float32)
    frame = transcriber.config.frame_duration
    lp = transcriber.log_probs(np.concatenate([first, pause, second]))
    lm = transcriber.language_model
    decoder = BeamSearchDecoder(transcriber.config.vocabulary, lm=lm.path, alpha=lm.alpha, beta=lm.beta)
    ((_, cut), _) = split_at_pauses(lp, 0, 1, round(SENTENCE_PAUSE_SECONDS / frame))
    joined = decoder.decode(lp, frame)  # cut at the pause by default
    parts = [decoder.decode(lp[:cut], frame), decoder.decode(lp[cut:], frame)]
    assert joined.text == " ".join(p.text for p in parts) == "HELLO WORLD A TEST OF THE WORLD"
    assert [w.start for w in joined.words] == [w.start for w in parts[0].words] + \
           [round(w.start + cut * frame, 3) for w in parts[1].words]
    # one search: a pause the model marks with no word delimiter (as at a sentence end) joins two words
    assert decoder.decode(lp, frame, sentence_pause_seconds=None).text == "HELLO WORLDA TEST OF THE WORLD"
    assert transcriber.transcribe(np.concatenate([first, pause, second])).text == joined.text
