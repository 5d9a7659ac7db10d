"""Audio input: every accepted form, mixdown, resampling, and a typed error for every bad input."""

import io

import numpy as np
import pytest
import soundfile as sf

from w2v2_onnx.audio import load_audio, open_audio, to_mono_float32
from w2v2_onnx.errors import (
    AudioDecodeError,
    AudioError,
    AudioFileNotFoundError,
    AudioShapeError,
    AudioValueError,
    SampleRateError,
)

RATE = 16000


def tone(freq=1000.0, seconds=1.0, rate=RATE, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x, rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.argmax(spectrum) * rate / x.size


def test_integer_pcm_is_scaled_to_unit_range():
    assert to_mono_float32(np.array([-32768, 0, 16384], np.int16)).tolist() == [-1.0, 0.0, 0.5]
    assert to_mono_float32(np.array([0, 128, 192], np.uint8)).tolist() == [-1.0, 0.0, 0.5]
    assert to_mono_float32(np.array([-(2**31)], np.int32)).tolist() == [-1.0]


def test_channels_are_averaged():
    stereo = np.stack([np.full(10, 0.2), np.full(10, 0.6)], axis=1)
    assert np.allclose(to_mono_float32(stereo), 0.4)


@pytest.mark.parametrize("shape", [(2, 16000), (10, 10, 2), ()])
def test_bad_shapes(shape):
    with pytest.raises(AudioShapeError, match=r"\(samples,\)"):
        to_mono_float32(np.zeros(shape, np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(bad):
    x = tone()
    x[100] = bad
    with pytest.raises(AudioValueError, match="NaN or infinite"):
        load_audio(x, RATE, RATE)


def test_non_numeric_dtype():
    with pytest.raises(AudioValueError, match="dtype"):
        to_mono_float32(np.array(["a", "b"]))


@pytest.mark.parametrize("rate", [0, -16000, 1.5, "16000", True, 10_000_000])
def test_bad_sample_rates(rate):
    with pytest.raises(SampleRateError):
        load_audio(tone(), RATE, rate)


@pytest.mark.parametrize("source_rate", [8000, 22050, 44100, 48000])
def test_resampling_keeps_frequency_and_duration(source_rate):
    out = load_audio(tone(1000.0, 2.0, source_rate), RATE, source_rate)
    assert abs(out.size - 2 * RATE) <= 1
    assert abs(peak_hz(out, RATE) - 1000.0) < 2.0
    # a real band-limited resampler keeps the level (linear interpolation would also, but alias above 8 kHz)
    assert np.sqrt(np.mean(out[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_resampling_removes_content_above_the_new_nyquist():
    out = load_audio(tone(11000.0, 1.0, 44100), RATE, 44100)  # 11 kHz cannot exist at 16 kHz
    assert np.sqrt(np.mean(out[1000:-1000] ** 2)) < 0.01


def test_path_bytes_and_file_object_agree(tmp_path):
    x = tone(440.0, 1.5, 22050)
    path = tmp_path / "a.flac"
    sf.write(path, x, 22050)
    from_path = load_audio(path, RATE)
    from_str = load_audio(str(path), RATE)
    from_bytes = load_audio(path.read_bytes(), RATE)
    with open(path, "rb") as f:
        from_file = load_audio(f, RATE)
    from_array = load_audio(sf.read(path, dtype="float32")[0], RATE, 22050)
    for other in (from_str, from_bytes, from_file, from_array):
        assert np.allclose(from_path, other, atol=1e-6)


def test_streamed_blocks_equal_whole_read(tmp_path):
    x = np.random.default_rng(0).standard_normal(44100 * 3).astype(np.float32) * 0.1
    path = tmp_path / "noise.wav"
    sf.write(path, x, 44100, subtype="FLOAT")
    source = open_audio(path, RATE)
    streamed = np.concatenate(list(source.blocks(block_seconds=0.37)))
    whole = load_audio(x, RATE, 44100)
    assert streamed.size == whole.size == source.num_samples
    assert np.allclose(streamed, whole, atol=1e-4)


def test_stereo_file_is_mixed_down(tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([tone(), -tone()], axis=1), RATE)
    assert np.abs(load_audio(path, RATE)).max() < 1e-4


def test_missing_file(tmp_path):
    with pytest.raises(AudioFileNotFoundError) as info:
        load_audio(tmp_path / "nope.wav", RATE)
    assert isinstance(info.value, FileNotFoundError) and "nope.wav" in str(info.value)


def test_directory_and_unreadable_names_are_typed(tmp_path):
    with pytest.raises(AudioFileNotFoundError, match="is a directory"):
        load_audio(tmp_path, RATE)
    with pytest.raises(AudioFileNotFoundError) as info:  # ENAMETOOLONG: a raw OSError before
        load_audio(tmp_path / ("x" * 5000 + ".wav"), RATE)
    message = str(info.value)
    assert "characters)" in message and len(message) < 600  # named, shortened


def test_empty_file_and_bytes(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty"):
        load_audio(tmp_path / "empty.wav", RATE)
    with pytest.raises(AudioDecodeError, match="empty"):
        load_audio(b"", RATE)


def test_corrupt_audio(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"RIFF" + bytes(200))
    with pytest.raises(AudioDecodeError, match="cannot decode") as info:
        load_audio(path, RATE)
    assert isinstance(info.value, ValueError)
    with pytest.raises(AudioDecodeError):
        load_audio(b"not audio at all" * 10, RATE)


def test_truncated_wav_is_reported(tmp_path):
    buffer = io.BytesIO()
    sf.write(buffer, tone(), RATE, format="WAV", subtype="PCM_16")
    data = buffer.getvalue()
    with pytest.raises(AudioDecodeError, match="truncated"):
        load_audio(data[: len(data) // 2], RATE)
    path = tmp_path / "t.wav"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioDecodeError, match="truncated"):
        load_audio(path, RATE)


def test_truncated_flac_is_reported(tmp_path):
    path = tmp_path / "t.flac"
    sf.write(path, np.random.default_rng(1).standard_normal(RATE * 2).astype(np.float32) * 0.1, RATE)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(AudioDecodeError):
        load_audio(path, RATE)


def test_text_mode_file_and_unsupported_type(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("hello")
    with open(path) as f, pytest.raises(AudioDecodeError, match="text mode"):
        load_audio(f, RATE)
    with pytest.raises(AudioValueError, match="unsupported"):
        load_audio(12345, RATE)


def test_all_audio_errors_share_the_base_class():
    for cls in (AudioDecodeError, AudioFileNotFoundError, AudioShapeError, AudioValueError, SampleRateError):
        assert issubclass(cls, AudioError)


def test_empty_array_gives_empty_audio():
    assert load_audio(np.zeros(0, np.float32), RATE).size == 0


def test_arrays_without_channels_are_refused():
    for shape in [(16000, 0), (0, 0)]:
        with pytest.raises(AudioShapeError, match="no channels"):
            to_mono_float32(np.zeros(shape, np.float32))


def test_samples_far_beyond_any_pcm_range_are_refused():
    with pytest.raises(AudioValueError, match=r"samples reach 2e\+19"):
        load_audio(tone() * 4e19, RATE, RATE)
    # int16 values given as floats stay accepted (normalising models are scale-invariant)
    assert load_audio(tone() * 32767, RATE, RATE).max() > 16000


def test_closed_file_object(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(), RATE)
    with open(path, "rb") as f:
        pass
    with pytest.raises(AudioDecodeError, match="cannot read the audio file object"):
        load_audio(f, RATE)
