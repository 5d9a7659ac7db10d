"""Live transcription: audio fed as it arrives (a microphone, a call), text as soon as it is decided.

A :class:`TranscriptionStream` cuts the incoming audio into the same overlapping windows as
:meth:`Transcriber.transcribe <w2v2_onnx.Transcriber.transcribe>` (:class:`~w2v2_onnx.windows.Windower`) and
runs each window through the model as soon as it is complete. A window's kept frames never change once
computed. The text so far is decoded with the stream's own decoder (beam search with the model's language
model by default, as ``transcribe()``): once the undecided tail of frames passes ``PARTIAL_TAIL_SECONDS``,
everything before a gap between words in it is decoded once and fixed, so each update decodes a bounded tail
whatever the stream's length, and only that tail may still change. :meth:`TranscriptionStream.finish` decodes
every frame at once and gives what ``transcribe()`` gives for the whole recording: the frames are the same.

Latency is one window: the first text comes ``chunk_length`` seconds after the start, then every
``chunk_length - 2 * chunk_context`` seconds. Pass shorter windows for live captions (``chunk_length=4,
chunk_context=1``: text every 2 s); for `small-fb-v4` they cost no accuracy (docs/runtime.md).

Endpoints (``endpoint_silence``): a dictation tool wants each sentence when the speaker pauses, not only the
growing text. As in sherpa-onnx's endpoint rule, a pause is a run of frames whose best token is the CTC blank
or the word delimiter; once one lasts ``endpoint_silence`` seconds after speech, the frames since the last
endpoint are decoded on their own as an :class:`~w2v2_onnx.results.Utterance`
(:meth:`TranscriptionStream.take_utterances`), and the text so far starts again. ``finish()`` still decodes the
whole recording as ``transcribe()``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import soxr

from w2v2_onnx.audio import to_mono_float32
from w2v2_onnx.checks import is_finite_number
from w2v2_onnx.errors import InvalidOptionError
from w2v2_onnx.results import Transcription, Utterance
from w2v2_onnx.segments import pause_mask, pause_segments
from w2v2_onnx.windows import Window, Windower

if TYPE_CHECKING:
    from w2v2_onnx.transcriber import Transcriber

#: Raw PCM a live input may arrive as (mono, little-endian): the command line's and the server's choices.
PCM_TYPES = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}

#: Longest undecided tail (seconds of frames) the text so far is decoded over; past it, the part before a gap
#: between words in the tail's first half is decoded once and fixed.
PARTIAL_TAIL_SECONDS = 20.0


def split_pcm(data: bytes, sample_type: str) -> tuple[np.ndarray, bytes]:
    """The whole samples of raw PCM bytes (``sample_type`` from :data:`PCM_TYPES`), and the bytes of a sample
    cut at the end, to be put before the next bytes that arrive."""
    dtype = PCM_TYPES[sample_type]
    usable = len(data) - len(data) % dtype.itemsize
    return np.frombuffer(data[:usable], dtype=dtype), data[usable:]


class TranscriptionStream:
    """One live input. Build it with :meth:`Transcriber.stream <w2v2_onnx.Transcriber.stream>`.

    Example:
        >>> stream = model.stream(sample_rate=16000)
        >>> for block in microphone_blocks():          # numpy arrays, any length
        ...     print(stream.feed(block))               # the text so far
        >>> result = stream.finish()                    # a Transcription, as transcribe() of the whole
    """

    def __init__(self, transcriber: Transcriber, windower: Windower, options: dict[str, Any],
                 decoding: dict[str, Any], sample_rate: int, endpoint_silence: float | None = None) -> None:
        self._transcriber = transcriber
        self._windower = windower
        self._options = options  # transcribe()'s checked options, echoed in the Transcription
        self._decoding = decoding  # Transcriber.decode's options
        self._input_rate = sample_rate
        model_rate = transcriber.sample_rate
        self._resampler = (None if sample_rate == model_rate else
                           soxr.ResampleStream(sample_rate, model_rate, 1, dtype="float32", quality="HQ"))
        self._frames: list[np.ndarray] = []  # kept log-probabilities, window by window
        self._tail: list[np.ndarray] = []  # the frames after the fixed text, still decoded at every update
        self._fixed: list[str] = []  # the text of the frames before them, decoded once
        self._input_samples = 0
        self._text = ""
        self._result: Transcription | None = None
        frame_duration = transcriber.config.frame_duration
        self._endpoint_frames = (None if endpoint_silence is None else
                                 max(1, round(checked_endpoint_silence(endpoint_silence) / frame_duration)))
        self._frame_count = 0  # frames computed so far
        self._utterance: list[np.ndarray] = []  # the frames of the utterance going on (endpoints only)
        self._utterance_start = 0  # its first speech frame
        self._speech_end = 0  # the end of its last speech frame
        self._heard_speech = False  # whether it has begun (a speech frame since the last endpoint)
        self._silent_frames = 0  # the frames of no speech at its end
        self._ended: list[Utterance] = []  # utterances ended and not yet taken

    @property
    def text(self) -> str:
        """The text of every frame computed so far (what :meth:`feed` last returned)."""
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
            The text of every frame computed so far, decoded with the stream's decoder; only its last
            ``PARTIAL_TAIL_SECONDS`` at most may still change.

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

    def take_utterances(self) -> list[Utterance]:
        """The utterances that ended at a pause since the last call, oldest first; each is returned once.

        Only a stream started with ``endpoint_silence`` ends utterances (others return ``[]``); after
        :meth:`finish`, the last one (speech not yet followed by a pause) is here too.
        """
        ended, self._ended = self._ended, []
        return ended

    def finish(self) -> Transcription:
        """End the input: run the last windows and decode every frame with the stream's decoder.

        Returns:
            The :class:`Transcription` of everything fed, as ``transcribe()`` gives for the whole recording
            with the same options (with endpoints too: the whole is decoded at once). Calling it again returns
            the same result.

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
        if self._heard_speech:
            self._end_utterance()
        width = len(self._transcriber.config.vocabulary)
        log_probs = np.concatenate(self._frames) if self._frames else np.zeros((0, width), dtype=np.float32)
        decoded = self._transcriber.decode(log_probs, **self._decoding)
        words = decoded.words if self._options["word_timestamps"] else ()
        self._result = Transcription(decoded.text, words, round(self.duration, 6), self._options)
        self._frames, self._tail, self._utterance = [], [], []  # the result holds what is needed
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
            self._frame_count += kept.shape[0]
            if self._endpoint_frames is None:
                self._tail.append(kept)
            else:
                self._follow_utterance(kept)
        if not self._tail:  # an utterance just ended: nothing of the next one yet
            self._text = ""
            return
        config = self._transcriber.config
        tail = np.concatenate(self._tail)
        limit = max(2, int(PARTIAL_TAIL_SECONDS / config.frame_duration))
        if tail.shape[0] > limit:  # fix the text before a gap between words; decode only what follows
            vocab = config.vocabulary
            bounds = pause_segments(tail, vocab.blank_id, limit // 2, vocab.delimiter_id)
            self._fixed.extend(self._decode(tail[start:end]) for start, end in bounds[:-1])
            tail = tail[bounds[-1][0]:]
            self._tail = [tail]
        self._text = " ".join(part for part in (*self._fixed, self._decode(tail)) if part)

    def _follow_utterance(self, frames: np.ndarray) -> None:
        """Add a window's frames to the utterance going on, ending it wherever a pause reaches the endpoint
        length; silence before an utterance's first speech frame belongs to no utterance."""
        vocab = self._transcriber.config.vocabulary
        pause = pause_mask(frames, vocab.blank_id, vocab.delimiter_id)
        base = self._frame_count - frames.shape[0]  # the stream's index of frames[0]
        piece_from: int | None = 0 if self._heard_speech else None  # where this window's part of it begins
        for i, is_pause in enumerate(pause.tolist()):
            if not is_pause:
                if piece_from is None:
                    piece_from, self._heard_speech, self._utterance_start = i, True, base + i
                self._silent_frames, self._speech_end = 0, base + i + 1
            elif piece_from is not None:
                self._silent_frames += 1
                if self._silent_frames >= self._endpoint_frames:
                    self._add_to_utterance(frames[piece_from:i + 1])
                    self._end_utterance()
                    piece_from = None
        if piece_from is not None:
            self._add_to_utterance(frames[piece_from:])

    def _add_to_utterance(self, frames: np.ndarray) -> None:
        self._utterance.append(frames)
        self._tail.append(frames)

    def _end_utterance(self) -> None:
        """Decode the utterance going on as one input; the next one starts at the next speech frame."""
        duration = self._transcriber.config.frame_duration
        decoded = self._transcriber.decode(np.concatenate(self._utterance), **self._decoding)
        offset = self._utterance_start * duration
        words = (tuple(replace(w, start=round(w.start + offset, 3), end=round(w.end + offset, 3))
                       for w in decoded.words) if self._options["word_timestamps"] else ())
        self._ended.append(Utterance(round(offset, 3), round(self._speech_end * duration, 3), decoded.text, words))
        self._utterance, self._tail, self._fixed = [], [], []
        self._heard_speech, self._silent_frames = False, 0

    def _decode(self, log_probs: np.ndarray) -> str:
        return self._transcriber.decode(log_probs, **self._decoding).text


def checked_endpoint_silence(seconds: Any) -> float:
    """``seconds`` as a float if it is a usable pause length for an endpoint, else InvalidOptionError."""
    if not is_finite_number(seconds) or not 0.1 <= seconds <= 60:
        raise InvalidOptionError(f"endpoint_silence must be a number of seconds from 0.1 to 60 (the pause that "
                                 f"ends an utterance; None for no endpoints), got {seconds!r}")
    return float(seconds)
