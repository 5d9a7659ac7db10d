"""Audio input: decode files, bytes or arrays, mix down to mono and resample to the model's rate.

Everything comes out as float32 mono in [-1, 1] at the model's sample rate. Files are read in blocks and
resampled as a stream (soxr), so a long file never has to sit in memory whole.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from w2v2_onnx.errors import (
    AudioDecodeError,
    AudioError,
    AudioFileNotFoundError,
    AudioShapeError,
    AudioValueError,
    InvalidOptionError,
    SampleRateError,
)

AudioInput = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | np.ndarray
"""What the recognizer accepts: a path, encoded bytes, a binary file object, or a PCM array."""

MAX_CHANNELS = 64
#: The largest sample magnitude accepted. Larger values are not audio (float PCM lies within ±1, int16 values
#: given as floats within ±32768), and from about 1e19 the model's float32 normalisation overflows.
MAX_ABS_SAMPLE = 1e6
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000
BLOCK_SECONDS = 10.0


def check_sample_rate(rate: object, what: str = "sample_rate") -> int:
    """Return ``rate`` as an int, or raise SampleRateError naming what is allowed."""
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer | float):
        raise SampleRateError(f"{what} must be a positive integer number of Hz, got {rate!r}")
    if isinstance(rate, float) and not rate.is_integer():
        raise SampleRateError(f"{what} must be a whole number of Hz, got {rate!r}")
    rate = int(rate)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise SampleRateError(f"{what} must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz, got {rate}")
    return rate


def to_mono_float32(samples: np.ndarray) -> np.ndarray:
    """Convert a PCM array of shape (samples,) or (samples, channels) to float32 mono in [-1, 1].

    Integer PCM is scaled by its type's full range (int16 by 32768, uint8 centred on 128).

    Raises:
        AudioShapeError: for other shapes, or more than MAX_CHANNELS channels (a transposed array).
        AudioValueError: for non-numeric dtypes or NaN / infinite samples.
    """
    samples = np.asarray(samples)
    if samples.ndim == 0 or samples.ndim > 2:
        raise AudioShapeError(f"audio array must have shape (samples,) or (samples, channels), got {samples.shape}")
    if samples.ndim == 2 and samples.shape[1] == 0:
        raise AudioShapeError(f"audio array of shape {samples.shape} has no channels; allowed are (samples,) or "
                              f"(samples, channels) with 1 to {MAX_CHANNELS} channels")
    if samples.ndim == 2 and samples.shape[1] > MAX_CHANNELS:
        raise AudioShapeError(
            f"audio array of shape {samples.shape} has {samples.shape[1]} channels; allowed are (samples,) or "
            f"(samples, channels) with at most {MAX_CHANNELS} channels (for channels-first data pass audio.T)")
    kind = samples.dtype.kind
    if kind == "f":
        out = samples.astype(np.float32, copy=False)
    elif kind == "i":
        out = samples.astype(np.float32) / float(2 ** (8 * samples.dtype.itemsize - 1))
    elif kind == "u":
        half = float(2 ** (8 * samples.dtype.itemsize - 1))
        out = (samples.astype(np.float32) - half) / half
    else:
        raise AudioValueError(f"audio array dtype must be float or integer PCM, got {samples.dtype}")
    if out.ndim == 2:
        out = out.mean(axis=1, dtype=np.float32) if out.shape[1] > 1 else out[:, 0]
    if not np.isfinite(out).all():
        bad = int(np.count_nonzero(~np.isfinite(out)))
        raise AudioValueError(f"audio has {bad} NaN or infinite samples; all samples must be finite")
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > MAX_ABS_SAMPLE:
        raise AudioValueError(f"audio samples reach {peak:.3g}; allowed are values within ±{MAX_ABS_SAMPLE:g} "
                              f"(float audio is normally within ±1, integer PCM is scaled to it)")
    return np.ascontiguousarray(out)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float32 mono audio with soxr's high-quality band-limited resampler."""
    if from_rate == to_rate or samples.size == 0:
        return samples
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def check_wav_not_truncated(handle: BinaryIO, name: str) -> None:
    """Raise if a RIFF/WAVE file declares more sample data than it holds (libsndfile silently shortens it)."""
    start = handle.tell()
    try:
        handle.seek(0, io.SEEK_END)
        size = handle.tell()
        handle.seek(0)
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            handle.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
            if chunk_id == b"data":
                if chunk_size in (0, 0xFFFFFFFF):  # streaming writers leave a placeholder size
                    return
                if pos + 8 + chunk_size > size:
                    raise AudioDecodeError(
                        f"audio {name} is truncated: its WAV header declares {chunk_size} bytes of samples but "
                        f"only {size - pos - 8} are present")
                return
            pos += 8 + chunk_size + (chunk_size & 1)
    finally:
        handle.seek(start)


@dataclass
class AudioSource:
    """One input, decoded lazily: mono float32 at ``target_rate``.

    Build it with :func:`open_audio`; use :meth:`blocks` to stream or :meth:`read_all` for the whole signal.
    """

    name: str
    target_rate: int
    source_rate: int
    num_source_frames: int
    _array: np.ndarray | None = None
    _opener: object = None

    @property
    def num_samples(self) -> int:
        """Number of samples at the target rate (exact for arrays, within a sample after resampling)."""
        return round(self.num_source_frames * self.target_rate / self.source_rate)

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return self.num_source_frames / self.source_rate

    def read_all(self) -> np.ndarray:
        """Return the whole signal, resampled, as one float32 array."""
        if self._array is not None:
            return resample(self._array, self.source_rate, self.target_rate)
        parts = list(self.blocks())
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def blocks(self, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
        """Yield the signal in consecutive float32 blocks at the target rate."""
        block = max(1, int(block_seconds * self.source_rate))
        stream = None
        if self.source_rate != self.target_rate:
            stream = soxr.ResampleStream(self.source_rate, self.target_rate, 1, dtype="float32", quality="HQ")
        for raw in self._raw_blocks(block):
            out = stream.resample_chunk(raw, last=False) if stream is not None else raw
            if out.size:
                yield out
        if stream is not None:
            tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if tail.size:
                yield tail

    def _raw_blocks(self, block: int) -> Iterator[np.ndarray]:
        if self._array is not None:
            for start in range(0, self._array.size, block):
                yield self._array[start:start + block]
            return
        read = 0
        try:
            with self._opener() as f:  # type: ignore[operator]
                for raw in f.blocks(blocksize=block, dtype="float32", always_2d=True):
                    mono = to_mono_float32(raw)
                    read += mono.size
                    yield mono
        except sf.SoundFileError as exc:
            raise AudioDecodeError(f"cannot decode audio {self.name}: {exc}") from exc
        if read < self.num_source_frames:
            raise AudioDecodeError(f"audio {self.name} is truncated: header declares {self.num_source_frames} "
                                   f"frames, only {read} could be read")


def open_audio(audio: AudioInput, target_rate: int, sample_rate: int | None = None) -> AudioSource:
    """Open any supported input as an :class:`AudioSource` at ``target_rate``.

    Args:
        audio: a path (any format libsndfile reads: WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF, ...), encoded bytes,
            a binary file object, or a numpy array of shape (samples,) or (samples, channels).
        target_rate: the model's sample rate.
        sample_rate: the array's rate; for arrays only (default: ``target_rate``). Files carry their own.

    Raises:
        AudioFileNotFoundError, AudioDecodeError, AudioShapeError, AudioValueError, SampleRateError.
    """
    if isinstance(audio, np.ndarray):
        rate = target_rate if sample_rate is None else check_sample_rate(sample_rate)
        samples = to_mono_float32(audio)
        return AudioSource("<array>", target_rate, rate, samples.size, _array=samples)
    if sample_rate is not None:
        check_sample_rate(sample_rate)  # files carry their own rate; still reject nonsense
    if isinstance(audio, str | os.PathLike):
        path = Path(audio)
        try:
            if path.is_dir():
                raise AudioFileNotFoundError(path, "is a directory, not a file")
            if not path.is_file():
                raise AudioFileNotFoundError(path)
            if path.stat().st_size == 0:
                raise AudioDecodeError(f"audio file {path} is empty (0 bytes)")
            with open(path, "rb") as handle:
                check_wav_not_truncated(handle, str(path))
        except AudioError:
            raise
        except OSError as exc:  # a name too long, no permission, an I/O error: named, typed, never raw
            raise AudioFileNotFoundError(path, f"cannot be read ({exc.strerror or exc})") from exc
        return _open_soundfile(str(path), lambda: sf.SoundFile(str(path)), target_rate)
    if isinstance(audio, bytes | bytearray | memoryview):
        data = bytes(audio)
        if not data:
            raise AudioDecodeError("audio bytes are empty; give encoded audio (WAV, FLAC, OGG, MP3, ...)")
        check_wav_not_truncated(io.BytesIO(data), "<bytes>")
        return _open_soundfile("<bytes>", lambda: sf.SoundFile(io.BytesIO(data)), target_rate)
    if hasattr(audio, "read"):
        try:
            data = audio.read()
        except (OSError, ValueError) as exc:  # a closed or unreadable file object
            raise AudioDecodeError(f"cannot read the audio file object: {exc}") from exc
        if isinstance(data, str):
            raise AudioDecodeError("audio file object is open in text mode; open it with 'rb'")
        return open_audio(bytes(data), target_rate)
    raise AudioValueError(f"unsupported audio input of type {type(audio).__name__}: give a path, bytes, "
                          f"a binary file object or a numpy array")


def _open_soundfile(name: str, opener, target_rate: int) -> AudioSource:
    try:
        with opener() as f:
            frames, rate = int(f.frames), int(f.samplerate)
    except sf.SoundFileError as exc:
        raise AudioDecodeError(f"cannot decode audio {name}: {exc}; formats read are those of libsndfile "
                               f"(WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF, ...)") from exc
    return AudioSource(name, target_rate, check_sample_rate(rate, f"sample rate of {name}"), frames,
                       _opener=opener)


#: Silence trimming as the bundled model's training data was trimmed (finetune's ``trim_silence``): a 20 ms frame
#: is silent when its RMS is more than 40 dB below the loudest frame's; 0.2 s of silence stays on each side.
TRIM_THRESHOLD_DB = -40.0
TRIM_MARGIN_SECONDS = 0.2


#: The pause lengths ``split_at_pauses`` accepts, in seconds.
PAUSE_RANGE = (0.05, 10.0)


def checked_pause(value: object, what: str = "split_at_pauses") -> float:
    """``value`` as a pause length in seconds within :data:`PAUSE_RANGE`.

    Raises:
        InvalidOptionError: not a finite number in that range.
    """
    low, high = PAUSE_RANGE
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= float(value) <= high:
        raise InvalidOptionError(f"{what} must be a number of seconds from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _loud_frames(samples: np.ndarray, sample_rate: int, threshold_db: float) -> tuple[int, np.ndarray | None]:
    """The 20 ms frame length in samples, and the indices of the frames whose RMS is within ``-threshold_db`` dB
    of the loudest frame's (in float32, exactly as the fine-tuning stage trims its data); None when there are
    fewer than two frames. Digital silence has every frame as loud as the loudest, so nothing is cut."""
    samples = np.asarray(samples, dtype=np.float32)
    frame = max(1, round(0.02 * sample_rate))
    count = samples.size // frame
    if count < 2:
        return frame, None
    rms = np.sqrt(np.mean(samples[:count * frame].reshape(count, frame) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > threshold_db)
    return frame, (loud if loud.size else None)


def speech_segments(samples: np.ndarray, sample_rate: int, min_pause_seconds: float, *,
                    threshold_db: float = TRIM_THRESHOLD_DB,
                    margin_seconds: float = TRIM_MARGIN_SECONDS) -> list[tuple[int, int]]:
    """The stretches of speech between pauses of at least ``min_pause_seconds``, as ``[start, end)`` sample
    ranges, each widened by ``margin_seconds`` of its silence on both sides (never past the middle of a pause,
    nor the signal). Loud frames are found as :func:`speech_span` finds them; a signal with none is one stretch.
    """
    frame, loud = _loud_frames(samples, sample_rate, threshold_db)
    if loud is None:
        return [(0, samples.size)]
    min_gap = max(1, int(round(min_pause_seconds * sample_rate / frame)))
    breaks = np.flatnonzero(np.diff(loud) > min_gap)  # a pause: more than min_gap frames between loud frames
    firsts = (np.concatenate([[loud[0]], loud[breaks + 1]]) * frame).tolist()
    lasts = ((np.concatenate([loud[breaks], [loud[-1]]]) + 1) * frame).tolist()
    margin = int(margin_seconds * sample_rate)
    segments = []
    for index, (first, last) in enumerate(zip(firsts, lasts, strict=True)):
        low, high = first - margin, last + margin
        if index > 0:
            low = max(low, (lasts[index - 1] + first) // 2)
        if index < len(firsts) - 1:
            high = min(high, (last + firsts[index + 1]) // 2)
        segments.append((max(0, int(low)), min(samples.size, int(high))))
    return segments


def speech_span(samples: np.ndarray, sample_rate: int, *, threshold_db: float = TRIM_THRESHOLD_DB,
                margin_seconds: float = TRIM_MARGIN_SECONDS) -> tuple[int, int]:
    """The sample range ``[start, end)`` from the first to the last loud 20 ms frame, widened by
    ``margin_seconds`` on each side (within the signal): what is left when leading and trailing silence is cut.

    A frame is loud when its RMS is within ``-threshold_db`` dB of the loudest frame's. A signal with no loud
    frame, or shorter than two frames, keeps its whole range.
    """
    frame, loud = _loud_frames(samples, sample_rate, threshold_db)
    if loud is None:
        return 0, samples.size
    margin = int(margin_seconds * sample_rate)
    return max(0, int(loud[0]) * frame - margin), min(samples.size, (int(loud[-1]) + 1) * frame + margin)


def load_audio(audio: AudioInput, target_rate: int, sample_rate: int | None = None) -> np.ndarray:
    """Decode any supported input to float32 mono at ``target_rate`` in one array."""
    return open_audio(audio, target_rate, sample_rate).read_all()
