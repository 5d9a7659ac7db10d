"""Live transcription: audio fed as it arrives (a microphone, a call), text as soon as it is decided.

A :class:`TranscriptionStream` cuts the incoming audio into the same overlapping windows as
:meth:`Transcriber.transcribe <w2v2_onnx.Transcriber.transcribe>` (:class:`~w2v2_onnx.windows.Windower`) and
runs each window through the model as soon as it is complete. A window's kept frames never change once
computed, so the greedy text of the frames so far only grows at its end (the last word may still be cut at a
window edge). :meth:`TranscriptionStream.finish` decodes every frame with the stream's decoder (beam search
with the model's language model by default, as ``transcribe()``), and gives what ``transcribe()`` gives for
the whole recording: the frames are the same ones.

Latency is one window: the first text comes ``chunk_length`` seconds after the start, then every
``chunk_length - 2 * chunk_context`` seconds. Pass shorter windows for live captions (``chunk_length=4,
chunk_context=1``: text every 2 s), at some cost in accuracy for models trained on longer clips.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import soxr

from w2v2_onnx.audio import to_mono_float32
from w2v2_onnx.errors import InvalidOptionError
from w2v2_onnx.greedy import best_path, collapse, tokens_to_words
from w2v2_onnx.results import Transcription
from w2v2_onnx.windows import Window, Windower

if TYPE_CHECKING:
    from w2v2_onnx.transcriber import Transcriber


class TranscriptionStream:
    """One live input. Build it with :meth:`Transcriber.stream <w2v2_onnx.Transcriber.stream>`.

    Example:
        >>> stream = model.stream(sample_rate=16000)
        >>> for block in microphone_blocks():          # numpy arrays, any length
        ...     print(stream.feed(block))               # the text decided so far
        >>> result = stream.finish()                    # a Transcription, as transcribe() of the whole
    """

    def __init__(self, transcriber: Transcriber, windower: Windower, options: dict[str, Any],
                 decoding: dict[str, Any], sample_rate: int, word_timestamps: bool) -> None:
        self._transcriber = transcriber
        self._windower = windower
        self._options = options  # echoed in the Transcription, as transcribe() does
        self._decoding = decoding  # Transcriber.decode's options
        self._word_timestamps = word_timestamps
        self._input_rate = sample_rate
        model_rate = transcriber.sample_rate
        self._resampler = (None if sample_rate == model_rate else
                           soxr.ResampleStream(sample_rate, model_rate, 1, dtype="float32", quality="HQ"))
        self._frames: list[np.ndarray] = []  # kept log-probabilities, window by window
        self._ids: list[np.ndarray] = []  # their best paths, for the text so far
        self._probs: list[np.ndarray] = []
        self._input_samples = 0
        self._text = ""
        self._result: Transcription | None = None

    @property
    def text(self) -> str:
        """The greedy text of every frame decided so far (what :meth:`feed` last returned)."""
        return self._text

    @property
    def duration(self) -> float:
        """Seconds of audio fed so far."""
        return self._input_samples / self._input_rate

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` was called."""
        return self._result is not None

    def feed(self, audio: np.ndarray) -> str:
        """Add audio and run the model on every window it completes.

        Args:
            audio: the next samples, a numpy array of shape ``(samples,)`` or ``(samples, channels)``, float
                or integer PCM, at the stream's ``sample_rate``; any length, empty included.

        Returns:
            The greedy text of every frame decided so far.

        Raises:
            AudioShapeError, AudioValueError: a bad block (the stream is unchanged and can go on).
            InvalidOptionError: the stream is finished, or ``audio`` is not a numpy array.
            InferenceError: a runtime fault.
        """
        self._check_open()
        if not isinstance(audio, np.ndarray):
            raise InvalidOptionError(f"feed() takes a numpy array of samples, got {type(audio).__name__}; "
                                     f"decode files with transcribe()")
        samples = to_mono_float32(audio) if audio.size else np.zeros(0, dtype=np.float32)
        self._input_samples += samples.size
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=False)
        self._run(self._windower.push(samples))
        return self._text

    def finish(self) -> Transcription:
        """End the input: run the last windows and decode every frame with the stream's decoder.

        Returns:
            The :class:`Transcription` of everything fed, as ``transcribe()`` gives for the whole recording
            with the same options. Calling it again returns the same result.

        Raises:
            DecoderError, InferenceError: as ``transcribe()``.
        """
        if self._result is not None:
            return self._result
        tail = np.zeros(0, dtype=np.float32)
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(tail, last=True)
        windows = self._windower.push(tail) if tail.size else []
        self._run(windows + self._windower.close())
        width = len(self._transcriber.config.vocabulary)
        log_probs = np.concatenate(self._frames) if self._frames else np.zeros((0, width), dtype=np.float32)
        decoded = self._transcriber.decode(log_probs, **self._decoding)
        words = decoded.words if self._word_timestamps else ()
        self._result = Transcription(decoded.text, words, round(self.duration, 6), self._options)
        self._frames = []
        return self._result

    def _check_open(self) -> None:
        if self._result is not None:
            raise InvalidOptionError("this stream is finished; start another with Transcriber.stream()")

    def _run(self, windows: list[Window]) -> None:
        if not windows:
            return
        for window in windows:  # one at a time, as transcribe() on a CPU (batch size 1)
            kept = self._transcriber._kept_log_probs([window])[0].copy()  # noqa: SLF001 - the runtime's model call
            self._frames.append(kept)
            ids, probs = best_path(kept)
            self._ids.append(ids)
            self._probs.append(probs)
        config = self._transcriber.config
        words = tokens_to_words(*collapse(np.concatenate(self._ids), np.concatenate(self._probs), config.vocabulary),
                                config.vocabulary, config.frame_duration)
        self._text = words.text
