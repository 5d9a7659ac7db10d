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
