"""Decoding training audio to 16 kHz mono float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from w2v2_onnx.audio import speech_span
from w2v2_onnx.errors import AudioDecodeError


def to_mono_16k(samples: np.ndarray, sample_rate: int, target_rate: int = 16000) -> np.ndarray:
    """Mix to mono and resample (soxr, high quality) to ``target_rate``; returns float32."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if sample_rate != target_rate:
        import soxr

        samples = soxr.resample(samples, sample_rate, target_rate, quality="HQ")
    return np.ascontiguousarray(samples, dtype=np.float32)


def load_audio(path: str | Path, target_rate: int = 16000) -> np.ndarray:
    """Read an audio file as mono float32 at ``target_rate``.

    Raises:
        AudioDecodeError: the file cannot be decoded, is truncated, is empty or holds non-finite samples.
    """
    import soundfile as sf

    from w2v2_onnx.audio import check_wav_not_truncated

    try:
        with open(path, "rb") as handle:
            check_wav_not_truncated(handle, str(path))
        with sf.SoundFile(str(path)) as f:
            declared = f.frames
            samples, rate = f.read(dtype="float32", always_2d=False), f.samplerate
    except AudioDecodeError:
        raise
    except Exception as exc:  # soundfile raises several types for corrupt files
        raise AudioDecodeError(f"cannot decode audio {path}: {exc}") from exc
    if len(samples) < declared:
        raise AudioDecodeError(f"audio {path} is truncated: header declares {declared} frames, "
                               f"only {len(samples)} could be read")
    if samples.size == 0:
        raise AudioDecodeError(f"audio {path} holds no samples")
    if not np.all(np.isfinite(samples)):
        raise AudioDecodeError(f"audio {path} holds NaN or infinite samples")
    return to_mono_16k(samples, int(rate), target_rate)


def trim_silence(audio: np.ndarray, *, threshold_db: float = -40.0, margin_s: float = 0.2,
                 sample_rate: int = 16000) -> np.ndarray:
    """Cut leading and trailing silence, keeping ``margin_s`` seconds of it on each side.

    A 20 ms frame is silent when its RMS is more than ``-threshold_db`` dB below the loudest frame's. Audio with
    no loud frame (all silence) is returned unchanged. The runtime's ``transcribe(trim_silence=True)`` cuts with
    the same function (:func:`w2v2_onnx.audio.speech_span`), so a model hears its inputs as it heard its data.
    """
    audio = np.asarray(audio, dtype=np.float32)
    start, end = speech_span(audio, sample_rate, threshold_db=threshold_db, margin_seconds=margin_s)
    return audio[start:end]
