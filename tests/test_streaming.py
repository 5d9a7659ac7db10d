"""Live transcription (Transcriber.stream): the same windows, frames and result as transcribe() of the whole."""

import shutil

import numpy as np
import pytest
import tone_model as tm

from w2v2_onnx import AudioValueError, InvalidOptionError, SampleRateError, Transcriber
from w2v2_onnx.windows import Windower, WindowPlan, iter_windows

TEXT = "HELLO WORLD IT IS A TEST OF LIVE CAPTIONS AND IT GOES ON FOR A WHILE"


def random_blocks(audio, seed, largest=9000):
    """``audio`` cut at random places (empty blocks included), as a microphone would deliver it."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, audio.size + 1, size=max(1, audio.size // largest * 3)))
    return np.split(audio, cuts)


@pytest.mark.parametrize("samples", [0, 1, 399, 3200, 3201, 4480, 4481, 10_000, 33_333])
@pytest.mark.parametrize("plan", [WindowPlan(3200, 640, 320), WindowPlan(4480, 320, 320)])
def test_windower_cuts_the_windows_of_iter_windows_however_audio_arrives(samples, plan):
    audio = np.arange(samples, dtype=np.float32)
    expected = list(iter_windows([audio], plan))
    for seed in range(3):
        windower = Windower(plan)
        got = [w for block in random_blocks(audio, seed, largest=700) for w in windower.push(block)]
        got += windower.close()
        assert [(w.index, w.start, w.keep_from, w.keep_to) for w in got] == \
               [(w.index, w.start, w.keep_from, w.keep_to) for w in expected]
        assert all(np.array_equal(a.samples, b.samples) for a, b in zip(got, expected, strict=True))
    assert len(expected) == (0 if samples == 0 else 1 if samples <= plan.chunk else len(expected))
    if samples > 2 * plan.chunk:
        assert len(expected) > 2
    with pytest.raises(ValueError, match="closed"):
        windower.push(audio)


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_finish_gives_what_transcribe_gives_for_the_whole_recording(tone_transcriber, decoder):
    audio = tm.synthesize(TEXT)
    options = dict(chunk_length=2.0, chunk_context=0.5, decoder=decoder)
    expected = tone_transcriber.transcribe(audio, **options)
    assert expected.text == TEXT and audio.size / tm.RATE > 3 * 2.0  # several windows
    stream = tone_transcriber.stream(**options)
    partials = [stream.feed(block) for block in random_blocks(audio, 0)]
    result = stream.finish()
    assert result == expected  # text, words with times and probabilities, duration, options
    assert stream.finished and stream.finish() is result and stream.duration == pytest.approx(audio.size / tm.RATE)
    # the text decided so far only grows at its end, and was there before the input ended
    assert partials[0] == "" and partials[-1] != ""
    for earlier, later in zip(partials, partials[1:], strict=False):
        assert later.startswith(earlier.rsplit(" ", 1)[0])
    assert TEXT.startswith(partials[-1].rsplit(" ", 1)[0])


def test_resampled_integer_pcm_stream(tone_transcriber):
    audio = tm.synthesize(TEXT, sample_rate=8000)
    pcm = np.round(audio * 32767).astype(np.int16)
    expected = tone_transcriber.transcribe(pcm, sample_rate=8000, chunk_length=3.0, chunk_context=0.5)
    stream = tone_transcriber.stream(sample_rate=8000, chunk_length=3.0, chunk_context=0.5)
    for block in random_blocks(pcm, 1):
        stream.feed(block)
    result = stream.finish()
    assert result.text == expected.text == TEXT
    assert stream.duration == pytest.approx(pcm.size / 8000)
    assert [w.start for w in result.words] == pytest.approx([w.start for w in expected.words], abs=0.021)


def test_the_models_language_model_is_the_default_decoding(tone_model_dir, tmp_path):
    model = tm.copy_with_language_model(shutil.copytree(tone_model_dir, tmp_path / "model"), tmp_path)
    transcriber = Transcriber(model, device="cpu", threads=1)
    audio = tm.synthesize("HELLO WORLD IT'S A TEST")
    stream = transcriber.stream(chunk_length=1.5, chunk_context=0.3, hotwords=["TEST"])
    for block in random_blocks(audio, 2):
        stream.feed(block)
    result = stream.finish()
    expected = transcriber.transcribe(audio, chunk_length=1.5, chunk_context=0.3, hotwords=["TEST"])
    assert result == expected and result.options["decoder"] == "beam"


def test_an_empty_stream_and_word_timestamps_off(tone_transcriber):
    assert tone_transcriber.stream().finish().text == ""
    stream = tone_transcriber.stream(word_timestamps=False)
    stream.feed(tm.synthesize("HI"))
    result = stream.finish()
    assert result.text == "HI" and result.words == ()


def test_bad_blocks_are_refused_and_the_stream_goes_on(tone_transcriber):
    audio = tm.synthesize("HELLO")
    stream = tone_transcriber.stream()
    stream.feed(audio[:4000])
    with pytest.raises(AudioValueError, match="NaN"):
        stream.feed(np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(InvalidOptionError, match="numpy array"):
        stream.feed([0.0] * 10)
    stream.feed(audio[4000:])
    assert stream.finish().text == "HELLO"
    with pytest.raises(InvalidOptionError, match="finished"):
        stream.feed(audio)


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"beam_size": 4}, InvalidOptionError, "unknown stream options \\['beam_size'\\]"),
    ({"decoder": "fast"}, InvalidOptionError, "decoder must be one of"),
    ({"chunk_length": 1.0, "chunk_context": 0.6}, InvalidOptionError, "must exceed twice chunk_context"),
    ({"sample_rate": 0}, SampleRateError, "sample_rate must be between"),
    ({"decoder": "greedy", "alpha": 1.0}, InvalidOptionError, "apply to decoder='beam' only"),
])
def test_bad_options_are_refused_when_the_stream_starts(tone_transcriber, options, error, message):
    with pytest.raises(error, match=message):
        tone_transcriber.stream(**options)


def run_cli(model_dir, pcm_bytes, *args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "w2v2_onnx", "stream", "--model", str(model_dir), *args],
                          input=pcm_bytes, capture_output=True, timeout=120)


def test_cli_prints_the_growing_text_then_the_transcript(tone_model_dir):
    import json

    audio = tm.synthesize(TEXT)
    pcm = np.round(audio * 32767).astype("<i2").tobytes()
    done = run_cli(tone_model_dir, pcm, "--chunk-length", "2", "--chunk-context", "0.5")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert len(lines) > 3 and lines[-1] == TEXT  # several partial lines, then the final transcript
    assert all(TEXT.startswith(line.rsplit(" ", 1)[0]) for line in lines)
    floats = run_cli(tone_model_dir, audio.astype("<f4").tobytes() + b"\x01", "--sample-type", "f32le",
                     "--format", "json")
    assert floats.returncode == 0 and "1 stray bytes ignored" in floats.stderr.decode()
    result = json.loads(floats.stdout)
    assert result["source"] == "<stdin>" and result["text"] == TEXT and result["words"][0]["word"] == "HELLO"


def test_cli_refuses_bad_options(tone_model_dir):
    done = run_cli(tone_model_dir, b"", "--chunk-length", "1", "--chunk-context", "0.6")
    assert done.returncode == 2 and "must exceed twice chunk_context" in done.stderr.decode()
    done = run_cli(tone_model_dir, b"", "--rate", "5")
    assert done.returncode == 2 and "sample_rate must be between" in done.stderr.decode()


def test_the_text_so_far_decodes_a_bounded_tail_of_a_long_stream(tone_transcriber, monkeypatch):
    from w2v2_onnx import streaming

    monkeypatch.setattr(streaming, "PARTIAL_TAIL_SECONDS", 6.0)  # 50 characters: each half holds word gaps
    text = " ".join([TEXT] * 5)
    audio = tm.synthesize(text)
    frames = []
    decode = tone_transcriber.decode
    monkeypatch.setattr(tone_transcriber, "decode",
                        lambda lp, **options: frames.append(lp.shape[0]) or decode(lp, **options))
    stream = tone_transcriber.stream(chunk_length=1.0, chunk_context=0.25, decoder="beam")
    partials = [stream.feed(block) for block in random_blocks(audio, 3)]
    result = stream.finish()
    *partial_decodes, whole = frames
    assert result.text == text and text.startswith(partials[-1])  # fixed parts and tail join into the text
    assert len(partials[-1]) > len(text) - len("A WHILE")  # all but the last window's words, before finish()
    assert whole == max(frames) > 4 * max(partial_decodes)  # no update decoded more than a short tail
    assert result == tone_transcriber.transcribe(audio, chunk_length=1.0, chunk_context=0.25, decoder="beam")


SENTENCES = ["HELLO WORLD", "IT IS A TEST", "OF LIVE CAPTIONS"]


def spoken_with_pauses(sentences, pause_seconds, sample_rate=tm.RATE):
    """The sentences one after another, each but the last followed by a word delimiter and ``pause_seconds`` of
    silence; and where each starts."""
    pause = np.zeros(int(pause_seconds * sample_rate), dtype=np.float32)
    pieces, starts, at = [], [], 0
    for sentence in sentences:
        audio = tm.synthesize(sentence + " ", sample_rate=sample_rate)
        starts.append(at / sample_rate)
        pieces += [audio, pause]
        at += audio.size + pause.size
    return np.concatenate(pieces[:-1]), starts


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_endpoints_end_each_sentence_at_its_pause(tone_transcriber, decoder):
    audio, starts = spoken_with_pauses(SENTENCES, 1.5)
    options = dict(chunk_length=2.0, chunk_context=0.5, decoder=decoder)
    stream = tone_transcriber.stream(endpoint_silence=1.0, **options)
    taken, partials = [], []
    for block in random_blocks(audio, 4):
        partials.append(stream.feed(block))
        taken += [(stream.duration, u) for u in stream.take_utterances()]
    # the first two end while audio still comes in, after their pause; the last one at finish()
    assert [u.text for _, u in taken] == SENTENCES[:2]
    result = stream.finish()
    last = stream.take_utterances()
    assert [u.text for u in last] == SENTENCES[2:] and stream.take_utterances() == []
    utterances = [u for _, u in taken] + last
    for (fed, utterance), following in zip(taken, starts[1:], strict=True):
        assert utterance.end + 1.0 <= fed <= following + 2.0 + 1.0  # seen once its pause was computed
    for utterance, start, sentence in zip(utterances, starts, SENTENCES, strict=True):
        # words are timed from the stream's start, where the sentence really is
        assert [w.word for w in utterance.words] == sentence.split()
        assert utterance.words[0].start == pytest.approx(start + tm.char_start_seconds(sentence, 0), abs=0.05)
        assert utterance.start <= utterance.words[0].start and utterance.words[-1].end == utterance.end
    assert all(a.end <= b.start for a, b in zip(utterances, utterances[1:], strict=False))
    # the text so far restarts with each utterance; finish() is still transcribe() of the whole
    assert not any(" ".join(SENTENCES[:2]) in p for p in partials)
    assert result == tone_transcriber.transcribe(audio, **options)
    assert result.text == " ".join(SENTENCES)


def test_short_pauses_and_leading_silence_end_no_utterance(tone_transcriber):
    silence = np.zeros(int(5 * tm.RATE), dtype=np.float32)
    audio, _ = spoken_with_pauses(SENTENCES, 0.3)
    stream = tone_transcriber.stream(chunk_length=2.0, chunk_context=0.5, endpoint_silence=1.0)
    for block in random_blocks(np.concatenate([silence, audio]), 5):
        stream.feed(block)
        assert stream.take_utterances() == []
    stream.finish()
    (utterance,) = stream.take_utterances()
    assert utterance.text == " ".join(SENTENCES) and utterance.start >= 5.0  # leading silence left out
    # a stream of silence alone, or without endpoints, gives no utterance
    quiet = tone_transcriber.stream(endpoint_silence=0.5)
    quiet.feed(silence)
    assert quiet.finish().text == "" and quiet.take_utterances() == []
    plain = tone_transcriber.stream(chunk_length=2.0, chunk_context=0.5)
    plain.feed(spoken_with_pauses(SENTENCES, 1.5)[0])
    plain.finish()
    assert plain.take_utterances() == []


def test_utterance_words_follow_word_timestamps(tone_transcriber):
    audio, _ = spoken_with_pauses(SENTENCES[:2], 1.5, sample_rate=8000)
    stream = tone_transcriber.stream(sample_rate=8000, chunk_length=2.0, chunk_context=0.5,
                                     endpoint_silence=1.0, word_timestamps=False)
    stream.feed(audio)
    stream.finish()
    utterances = stream.take_utterances()
    assert [u.text for u in utterances] == SENTENCES[:2] and all(u.words == () for u in utterances)
    assert utterances[0].to_dict() == {"start": utterances[0].start, "end": utterances[0].end,
                                       "text": SENTENCES[0], "words": ()}


@pytest.mark.parametrize("value", [0, 0.05, -1.0, float("nan"), 61, "1", True])
def test_bad_endpoint_silence_is_refused(tone_transcriber, value):
    with pytest.raises(InvalidOptionError, match="endpoint_silence must be a number of seconds from 0.1 to 60"):
        tone_transcriber.stream(endpoint_silence=value)


def test_cli_prints_each_utterance_once_when_it_ends(tone_model_dir):
    import json

    audio, _ = spoken_with_pauses(SENTENCES, 1.5)
    pcm = np.round(audio * 32767).astype("<i2").tobytes()
    args = ("--chunk-length", "2", "--chunk-context", "0.5", "--endpoint-silence", "1")
    done = run_cli(tone_model_dir, pcm, *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == SENTENCES
    lines = run_cli(tone_model_dir, pcm, *args, "--format", "json").stdout.decode().splitlines()
    utterances = [json.loads(line) for line in lines]
    assert [u["text"] for u in utterances] == SENTENCES
    assert utterances[1]["start"] > utterances[0]["end"] + 1.0 and utterances[1]["words"][0]["word"] == "IT"
    refused = run_cli(tone_model_dir, pcm, "--endpoint-silence", "0")
    assert refused.returncode == 2 and "endpoint_silence must be a number of seconds" in refused.stderr.decode()
