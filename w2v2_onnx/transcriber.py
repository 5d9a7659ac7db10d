"""The user-facing recognizer: ``Transcriber`` and the one-line ``transcribe()``."""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from w2v2_onnx.audio import AudioInput, AudioSource, checked_pause, open_audio, speech_segments, speech_span
from w2v2_onnx.checks import MAX_THREADS
from w2v2_onnx.errors import DeviceNotAvailableError, InvalidOptionError, ModelDirectoryError
from w2v2_onnx.greedy import best_path, checked_log_probs, collapse, greedy_decode, tokens_to_words
from w2v2_onnx.model_dir import ModelLanguageModel, load_model_config, resolve_model
from w2v2_onnx.results import Decoded, PhraseMatch, Transcription, Word, shifted_words
from w2v2_onnx.session import OnnxModel, provider_names, resolve_device
from w2v2_onnx.windows import Window, WindowPlan, iter_windows, make_plan

if TYPE_CHECKING:
    from w2v2_onnx.streaming import TranscriptionStream

logger = logging.getLogger(__name__)

DECODERS = ("greedy", "beam")
DEFAULT_CHUNK_LENGTH = 20.0
DEFAULT_CHUNK_CONTEXT = 2.0
# Measured on this project's 2-core CPU (benchmarks/results/runtime_base_quiet.json): padded batches of 5 s
# clips ran slower than one clip at a time (int8 23.0x vs 27.5x real time at 4 x 5 s), so the CPU default
# is 1; batches pay on GPUs.
DEFAULT_BATCH_SIZE = {"cpu": 1, "cuda": 16}
# Cap on padded audio per model call. On CPU a 20 s window of a base model peaks at about +270 MB
# (conv front-end activations); 4 such windows at once took a 2-minute file to 2.3 GB. Batching gains
# little on a CPU, so one window (or several short clips) per call keeps memory flat.
MAX_BATCH_SECONDS = {"cpu": 20.0, "cuda": 480.0}
POOL_BATCHES = 4  # windows gathered (in batches) before sorting them by length


@dataclass
class _Collected:
    """Frames gathered for one source, window by window, until all its windows are run."""

    source: AudioSource
    keep_log_probs: bool
    parts: dict[int, tuple[np.ndarray, ...]] = field(default_factory=dict)
    last_index: int | None = None

    @property
    def complete(self) -> bool:
        return self.last_index is not None and len(self.parts) == self.last_index + 1


class Transcriber:
    """A speech recognizer over one exported model, built once and reused.

    Example:
        >>> from w2v2_onnx import Transcriber
        >>> model = Transcriber("my-model", device="cpu", threads=2)
        >>> result = model.transcribe("speech.flac")
        >>> result.text, result.words[0].start
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        device: str = "auto",
        precision: str | None = None,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
    ) -> None:
        """Load a model.

        Args:
            model: a model directory written by ``w2v2-onnx export``, a single ``.onnx`` file from one, a hub id
                of such a directory, or None for the bundled default model.
            device: ``auto`` (CUDA when ONNX Runtime really has it, else CPU), ``cpu`` or ``cuda``.
            precision: ``fp32``, ``fp16`` or ``int8``; default int8 on CPU and fp16 on CUDA, falling back to
                what the model directory has.
            threads: CPU threads for ONNX Runtime (default: the CPUs this process may use).
            providers: explicit ONNX Runtime execution providers (advanced); overrides ``device``'s choice.

        Raises:
            ModelNotFoundError, ModelDirectoryError, PrecisionNotAvailableError, DeviceNotAvailableError,
            InvalidOptionError.
        """
        path = resolve_model(model)
        self.config = load_model_config(path)
        if providers is not None:
            names = provider_names(providers)
            self.device = "cuda" if names[0] == "CUDAExecutionProvider" else "cpu"
        else:
            self.device = resolve_device(device)
        self.precision, model_file = self.config.pick_precision(precision, self.device)
        try:
            self.model = OnnxModel(model_file, device=self.device, threads=threads, providers=providers)
        except DeviceNotAvailableError as exc:
            if device != "auto" or providers is not None:
                raise
            # "auto" promises CUDA only when it really works: a CUDA provider that fails to start
            # (missing cuDNN, driver mismatch) means the CPU, said out loud in the log.
            logger.warning("CUDA provider listed but unusable (%s); using the CPU", exc)
            self.device = "cpu"
            self.precision, model_file = self.config.pick_precision(precision, self.device)
            self.model = OnnxModel(model_file, device=self.device, threads=threads)
        vocab_size = len(self.config.vocabulary)
        if self.model.vocab_size is not None and self.model.vocab_size != vocab_size:
            raise ModelDirectoryError(
                f"{model_file} gives {self.model.vocab_size} logits per frame but the vocabulary has {vocab_size} "
                f"tokens; the model directory mixes files of different models")
        self.model_path = path
        self._beam_decoders: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    @property
    def sample_rate(self) -> int:
        """The model's sample rate; inputs at other rates are resampled to it."""
        return self.config.sample_rate

    def transcribe(
        self,
        audio: AudioInput | Sequence[AudioInput],
        *,
        sample_rate: int | None = None,
        decoder: str | None = None,
        word_timestamps: bool = True,
        batch_size: int | None = None,
        chunk_length: float | None = None,
        chunk_context: float | None = None,
        lm: str | os.PathLike | bool | None = None,
        beam_width: int | None = None,
        alpha: float | None = None,
        beta: float | None = None,
        hotwords: Sequence[str] | None = None,
        hotword_weight: float | None = None,
        trim_silence: bool | None = None,
        split_at_pauses: float | None = None,
    ) -> Transcription | list[Transcription]:
        """Transcribe one input, or a list of inputs (then a list of results in the same order).

        Args:
            audio: a path, encoded bytes, a binary file object, a numpy array (float or integer PCM,
                shape (samples,) or (samples, channels)), or a list of these.
            sample_rate: the rate of array inputs (default: the model's rate); files carry their own.
            decoder: ``greedy`` or ``beam``; None (default) is ``beam`` when the model directory ships a
                language model (:attr:`language_model`, e.g. the bundled model's) and ``greedy`` otherwise.
            word_timestamps: whether to return the words with times and probabilities.
            batch_size: windows per model call (default 1 on CPU, 16 on CUDA). fp32 and fp16 results do not
                depend on it (padding is exact); int8 ones do slightly, since dynamic int8 quantizes each call's
                activations on one range for the whole batch (docs/runtime.md, "Batching and int8").
            chunk_length: longest window in seconds; longer audio is cut in overlapping windows. None: the
                model directory's own setting if it has one (the bundled model's: 10 s), else 20 s.
            chunk_context: seconds of overlap each window gives its neighbours. None: the model directory's
                own setting if it has one (the bundled model's: 1 s), else 2 s.
            lm: for ``decoder="beam"``: an n-gram model file (ARPA, ``.arpa.gz`` or KenLM binary); None (default)
                is the model directory's language model, if it ships one, with its tuned ``alpha`` and
                ``beta``; False is none.
            beam_width, alpha, beta, hotwords, hotword_weight: beam-search options (``decoder="beam"``).
            trim_silence: cut leading and trailing silence (20 ms frames more than 40 dB below the loudest),
                keeping 0.2 s on each side, before the model hears the input, as the bundled model's training
                data was trimmed. Reads each input whole, so inputs longer than ``TRIM_MAX_SECONDS`` (10 minutes)
                are left as they are; word times stay those of the input as given. None (default): the model
                directory's own setting (``trim_silence`` in ``w2v2_onnx.json``), else off.
            split_at_pauses: cut the input at pauses of at least this many seconds (found as ``trim_silence``
                finds silence) and transcribe each stretch of speech on its own, with 0.2 s of its silence on
                each side; the texts are joined and the word times stay those of the input. For models trained
                on single utterances, such as the bundled one. Implies trimming; the same length limit. None
                (default): the model directory's own setting (``split_at_pauses``), else no splitting.

        Returns:
            A :class:`Transcription`, or a list of them for a list input.

        Raises:
            AudioError subclasses for bad audio, InvalidOptionError for bad options, InferenceError for a
            runtime fault.
        """
        plan, beam, options = self._prepare(
            decoder=decoder, word_timestamps=word_timestamps, batch_size=batch_size, chunk_length=chunk_length,
            chunk_context=chunk_context, lm=lm, beam_width=beam_width, alpha=alpha, beta=beta, hotwords=hotwords,
            hotword_weight=hotword_weight, trim_silence=trim_silence, split_at_pauses=split_at_pauses)
        batch_size = options["batch_size"]

        single = not isinstance(audio, list | tuple)
        items = [audio] if single else list(audio)
        sources = [open_audio(item, self.sample_rate, sample_rate) for item in items]
        durations = [source.duration for source in sources]
        # each input becomes one or more pieces (its stretches of speech), each with its offset in the input
        pieces, owners, offsets = self._pieces(sources, options.get("trim_silence", False),
                                               options.get("split_at_pauses"))
        texts: list[list[str]] = [[] for _ in sources]
        words: list[list[Word]] = [[] for _ in sources]
        for piece, collected in enumerate(self._run(pieces, plan, batch_size, keep_log_probs=beam is not None)):
            decoded = self._decode(collected, beam)
            if decoded.text:
                texts[owners[piece]].append(decoded.text)
            if word_timestamps:
                words[owners[piece]].extend(shifted_words(decoded.words, offsets[piece]))
        results = [Transcription(" ".join(texts[i]), tuple(words[i]), round(durations[i], 6), options)
                   for i in range(len(sources))]
        return results[0] if single else results

    def _pieces(self, sources: list[AudioSource], trim: bool,
                split: float | None) -> tuple[list[AudioSource], list[int], list[float]]:
        """What the model hears of each input: the whole input, its speech without the leading and trailing
        silence (``trim``), or its stretches of speech between pauses of at least ``split`` seconds; with the
        input each piece belongs to and its offset there in seconds. Inputs over ``TRIM_MAX_SECONDS`` stay whole.
        """
        if not trim and split is None:
            return sources, list(range(len(sources))), [0.0] * len(sources)
        rate = self.sample_rate
        pieces, owners, offsets = [], [], []
        for index, source in enumerate(sources):
            if source.duration > TRIM_MAX_SECONDS:  # read whole, an hour would cost ~230 MB; edges matter little
                pieces.append(source)
                owners.append(index)
                offsets.append(0.0)
                continue
            samples = source.read_all()
            for start, end in speech_pieces(samples, rate, trim, split):
                pieces.append(open_audio(samples[start:end], rate))
                owners.append(index)
                offsets.append(start / rate)
        return pieces, owners, offsets

    def check_options(self, **options: Any) -> None:
        """Check :meth:`transcribe` options without audio, e.g. once before a long list of files.

        Takes the keyword options of :meth:`transcribe` (not ``audio`` or ``sample_rate``); a beam decoder's
        language model is loaded (and kept for the calls that follow).

        Raises:
            InvalidOptionError, DecoderError, LanguageModelError: as :meth:`transcribe` would.
        """
        _refuse_unknown(options, Transcriber.transcribe, "transcribe options", "the options", skip=("sample_rate",))
        self._prepare(**options)

    def stream(
        self,
        *,
        sample_rate: int | None = None,
        word_timestamps: bool = True,
        chunk_length: float | None = None,
        chunk_context: float | None = None,
        endpoint_silence: float | None = None,
        **decoding: Any,
    ) -> TranscriptionStream:
        """Start a live transcription: feed audio as it arrives, read the text decided so far, then finish.

        Example:
            >>> stream = model.stream(sample_rate=16000, chunk_length=4, chunk_context=1)
            >>> for block in microphone_blocks():
            ...     print(stream.feed(block))       # the text so far (its last seconds may still change)
            >>> stream.finish().text                # decoded as transcribe() would (beam + LM by default)

        Args:
            sample_rate: the rate of the arrays that will be fed (default: the model's rate).
            word_timestamps, chunk_length, chunk_context: as for :meth:`transcribe`. The window length is the
                latency: the first text comes ``chunk_length`` seconds in, then every ``chunk_length - 2 *
                chunk_context`` seconds.
            endpoint_silence: end an utterance whenever the model hears this many seconds of no speech after
                speech (0.1 to 60; None, the default: no endpoints). Each ended utterance is decoded on its own
                and comes from ``take_utterances()``; the text so far then starts again. The pause is seen
                when the window holding it is computed, up to one window after it is fed.
            **decoding: the decoding options of :meth:`transcribe` (``decoder``, ``lm``, ``beam_width``,
                ``alpha``, ``beta``, ``hotwords``, ``hotword_weight``): the text so far, the utterances and
                ``finish()`` are decoded with them.

        Returns:
            A :class:`~w2v2_onnx.streaming.TranscriptionStream`. Its ``finish()`` gives what
            :meth:`transcribe` gives for the whole recording with the same options (the same windows and
            frames; tested).

        Raises:
            InvalidOptionError, SampleRateError, DecoderError, LanguageModelError: bad options, checked now.
        """
        from w2v2_onnx.audio import check_sample_rate
        from w2v2_onnx.streaming import TranscriptionStream
        from w2v2_onnx.windows import Windower

        _refuse_unknown(decoding, Transcriber.decode, "stream options", "the decoding options")
        rate = self.sample_rate if sample_rate is None else check_sample_rate(sample_rate)
        plan, _, options = self._prepare(word_timestamps=word_timestamps, batch_size=1,
                                         chunk_length=chunk_length, chunk_context=chunk_context, **decoding)
        options.pop("trim_silence", None)  # a live stream cannot know where its speech will end
        options.pop("split_at_pauses", None)
        return TranscriptionStream(self, Windower(plan), options, decoding, rate, endpoint_silence)

    @property
    def language_model(self) -> ModelLanguageModel | None:
        """The language model the model directory ships (used by ``decoder="beam"`` unless ``lm`` says
        otherwise), or None."""
        return self.config.language_model

    def _prepare(self, *, decoder: str | None = None, word_timestamps: bool = True, batch_size: int | None = None,
                 chunk_length: float | None = None, chunk_context: float | None = None,
                 trim_silence: bool | None = None, split_at_pauses: float | None = None,
                 **beam: Any) -> tuple[Any, Any, dict[str, Any]]:
        """The window plan, the beam decoder (or None) and the echoed options of a transcribe call, checked."""
        decoder, decoder_object, beam_options = self._decoder(decoder, beam)
        batch_size = self._checked_batch_size(batch_size)
        plan, chunk_length, chunk_context = self._plan(chunk_length, chunk_context)
        if trim_silence is not None and not isinstance(trim_silence, bool):
            raise InvalidOptionError(f"trim_silence must be True, False or None, got {trim_silence!r}")
        trim_silence = self.config.trim_silence if trim_silence is None else trim_silence
        split_at_pauses = checked_pause(split_at_pauses) if split_at_pauses is not None else self.config.split_at_pauses
        options = dict(decoder=decoder, word_timestamps=word_timestamps, batch_size=batch_size,
                       chunk_length=chunk_length, chunk_context=chunk_context, precision=self.precision,
                       device=self.device, **{k: (str(v) if k == "lm" else v) for k, v in beam_options.items()})
        if trim_silence:
            options["trim_silence"] = True
        if split_at_pauses is not None:
            options["split_at_pauses"] = split_at_pauses
        return plan, decoder_object, options

    def _decoder(self, decoder: str | None, beam: dict[str, Any]) -> tuple[str, Any, dict[str, Any]]:
        """The decoder's name, the beam decoder (or None for greedy) and the beam options in effect."""
        if decoder is None:
            decoder = "beam" if self.language_model is not None else "greedy"
        if decoder not in DECODERS:
            raise InvalidOptionError(f"decoder must be one of {', '.join(DECODERS)} (or None: beam when the "
                                     f"model ships a language model, else greedy), got {decoder!r}")
        lm = beam.get("lm")
        if lm is True:
            raise InvalidOptionError("lm=True is not an option: give a path, None (the model's own language "
                                     "model, if any) or False (none)")
        beam_options = {k: v for k, v in beam.items() if v is not None and not (k == "lm" and v is False)}
        if beam_options and decoder != "beam":
            raise InvalidOptionError(f"options {sorted(beam_options)} apply to decoder='beam' only")
        if decoder == "beam" and lm is None and self.language_model is not None:
            beam_options["lm"] = self.language_model.path
            for key in ("alpha", "beta"):
                tuned = getattr(self.language_model, key)
                if beam_options.get(key) is None and tuned is not None:
                    beam_options[key] = tuned
        return decoder, (self._beam_decoder(beam_options) if decoder == "beam" else None), beam_options

    def log_probs(
        self,
        audio: AudioInput | Sequence[AudioInput],
        *,
        sample_rate: int | None = None,
        batch_size: int | None = None,
        chunk_length: float | None = None,
        chunk_context: float | None = None,
    ) -> np.ndarray | list[np.ndarray]:
        """The model's CTC log-probabilities, ``[frames, vocabulary]`` float32, for your own decoding.

        Windows are cut and joined exactly as in :meth:`transcribe` (which decodes these same frames), so
        ``greedy_decode(t.log_probs(x), vocab, ...)`` equals ``t.transcribe(x)``. Use it to tune beam-search
        weights (``python -m w2v2_onnx.lm_tune``) or to run another CTC decoder.

        Returns:
            One array, or a list of arrays for a list input.

        Raises:
            The same errors as :meth:`transcribe`.
        """
        single = not isinstance(audio, list | tuple)
        results = [frames for _, frames in self._log_probs_of(audio, sample_rate, batch_size, chunk_length,
                                                              chunk_context)]
        return results[0] if single else results

    def decode(
        self,
        log_probs: np.ndarray,
        *,
        decoder: str | None = None,
        lm: str | os.PathLike | bool | None = None,
        beam_width: int | None = None,
        alpha: float | None = None,
        beta: float | None = None,
        hotwords: Sequence[str] | None = None,
        hotword_weight: float | None = None,
    ) -> Decoded:
        """Decode one input's log-probabilities from :meth:`log_probs` as :meth:`transcribe` would.

        ``t.decode(t.log_probs(x), **options)`` gives the text and words of ``t.transcribe(x, **options)``;
        the split lets a server batch the model calls and decode each request in its own thread.

        Args:
            log_probs: ``[frames, vocabulary]`` float log-probabilities.
            decoder, lm, beam_width, alpha, beta, hotwords, hotword_weight: as for :meth:`transcribe`.

        Raises:
            InvalidOptionError, DecoderError, LanguageModelError: bad options; DecoderError: log-probabilities
            of the wrong shape or type, or with NaN.
        """
        _, beam, _ = self._decoder(decoder, dict(lm=lm, beam_width=beam_width, alpha=alpha, beta=beta,
                                                 hotwords=hotwords, hotword_weight=hotword_weight))
        if beam is not None:
            return beam.decode(log_probs, self.config.frame_duration)
        vocab = self.config.vocabulary
        return greedy_decode(checked_log_probs(log_probs, vocab), vocab, self.config.frame_duration)

    def match_phrases(
        self,
        audio: AudioInput | Sequence[AudioInput],
        phrases: Sequence[str],
        *,
        sample_rate: int | None = None,
        batch_size: int | None = None,
        chunk_length: float | None = None,
        chunk_context: float | None = None,
        min_margin: float | None = None,
    ) -> PhraseMatch | list[PhraseMatch]:
        """Which of the given phrases each input says: closed-set recognition of digits, commands or keywords.

        Each phrase is scored by the exact CTC probability of its spelling given the audio (all alignments),
        so nothing outside the list can be the answer: far more accurate than transcribing and comparing
        when the answer is known to be one of the list (docs/decoding.md, "Choosing among a few phrases").

        Args:
            audio: as for :meth:`transcribe`; a list gives a list of matches in the same order.
            phrases: the candidates, e.g. ``["zero", "one", ..., "nine"]``; case is matched to the model's
                vocabulary, words are separated by spaces.
            sample_rate, batch_size, chunk_length, chunk_context: as for :meth:`transcribe`.
            min_margin: reject a best phrase whose margin is below this (``phrase`` None, ``rejected``
                True): the input says none of the phrases. None (default) rejects nothing. The right value
                depends on the model and the phrases; choose it on your own recordings (docs/decoding.md).

        Returns:
            A :class:`PhraseMatch` (best phrase, its probability among the phrases, its margin over the
            unconstrained best path for rejecting inputs that say none of them, every phrase's score).

        Raises:
            InvalidOptionError for a bad phrase list (empty, not strings, duplicates, characters the model
            cannot write) or a ``min_margin`` that is not a finite number, and the errors of
            :meth:`transcribe` for the audio.
        """
        from w2v2_onnx.phrases import checked_min_margin, match_frames, spell_phrases

        vocab = self.config.vocabulary
        spelled = spell_phrases(phrases, vocab)
        min_margin = checked_min_margin(min_margin)
        single = not isinstance(audio, list | tuple)
        matches = [match_frames(frames, spelled, vocab, source.duration, min_margin)
                   for source, frames in self._log_probs_of(audio, sample_rate, batch_size, chunk_length,
                                                            chunk_context)]
        return matches[0] if single else matches

    # --- internals --------------------------------------------------------------------------------------

    def _plan(self, chunk_length: float | None, chunk_context: float | None) -> tuple[WindowPlan, float, float]:
        """The window plan of a call, and its effective lengths: the caller's, else the model's, else 20 s / 2 s."""
        length, context = self.config.windows or (DEFAULT_CHUNK_LENGTH, DEFAULT_CHUNK_CONTEXT)
        length = length if chunk_length is None else chunk_length
        context = context if chunk_context is None else chunk_context
        return make_plan(self.config, length, context), length, context

    def _checked_batch_size(self, batch_size: int | None) -> int:
        """The batch size to use: the device's default for None; anything but a positive integer is refused."""
        batch_size = DEFAULT_BATCH_SIZE[self.device] if batch_size is None else batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidOptionError(f"batch_size must be a positive integer, got {batch_size!r}")
        return batch_size

    def _log_probs_of(self, audio: AudioInput | Sequence[AudioInput], sample_rate: int | None,
                      batch_size: int | None, chunk_length: float | None,
                      chunk_context: float | None) -> Iterator[tuple[AudioSource, np.ndarray]]:
        """Each input's source and joined log-probabilities, in input order (options checked first)."""
        batch_size = self._checked_batch_size(batch_size)
        plan, _, _ = self._plan(chunk_length, chunk_context)
        items = list(audio) if isinstance(audio, list | tuple) else [audio]
        sources = [open_audio(item, self.sample_rate, sample_rate) for item in items]
        width = len(self.config.vocabulary)
        for collected in self._run(sources, plan, batch_size, keep_log_probs=True):
            parts = [collected.parts[i][0] for i in range(len(collected.parts))]
            yield collected.source, (np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.float32))

    def _beam_decoder(self, options: dict[str, Any]) -> Any:
        """A beam decoder for these options; the language model is loaded once per path and reused."""
        from w2v2_onnx.beam import BeamSearchDecoder, checked_lm_path

        lm = options.get("lm")
        key = checked_lm_path(lm)
        base = self._beam_decoders.get(key)
        if base is None:
            if len(self._beam_decoders) >= 4:
                self._beam_decoders.clear()  # a few language models at most stay in memory
            base = self._beam_decoders[key] = BeamSearchDecoder(self.config.vocabulary, lm=lm)
        changes = {k: v for k, v in options.items() if k != "lm"}
        return base.replace(**changes) if changes else base

    def _decode(self, collected: _Collected, beam: Any) -> Decoded:
        vocab = self.config.vocabulary
        frame_duration = self.config.frame_duration
        parts = [collected.parts[i] for i in range(len(collected.parts))]
        if beam is not None:
            log_probs = (np.concatenate([p[0] for p in parts]) if parts
                         else np.zeros((0, len(vocab)), dtype=np.float32))
            return beam.decode(log_probs, frame_duration)
        ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
        probs = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
        return tokens_to_words(*collapse(ids, probs, vocab), vocab, frame_duration)

    def _run(self, sources: list[AudioSource], plan: WindowPlan, batch_size: int,
             keep_log_probs: bool) -> Iterator[_Collected]:
        """Run every window of every source through the model; yield each source's frames in order."""
        collected: list[_Collected | None] = [_Collected(s, keep_log_probs) for s in sources]
        pool: list[tuple[int, Window]] = []
        next_out = 0
        for index, source in enumerate(sources):
            last_index = -1
            for window in iter_windows(source.blocks(), plan):
                last_index = window.index
                pool.append((index, window))
                if len(pool) >= batch_size * POOL_BATCHES:
                    self._run_pool(pool, collected, batch_size)
                    pool = []
            collected[index].last_index = last_index  # type: ignore[union-attr]
            while next_out < len(collected) and collected[next_out].complete:  # type: ignore[union-attr]
                yield collected[next_out]  # type: ignore[misc]
                collected[next_out] = None  # free its frames before the next sources are read
                next_out += 1
        self._run_pool(pool, collected, batch_size)
        yield from collected[next_out:]  # type: ignore[misc]

    def _run_pool(self, pool: list[tuple[int, Window]], collected: list[_Collected | None],
                  batch_size: int) -> None:
        """Run windows in length-sorted batches and store each window's kept frames."""
        if not pool:
            return
        max_samples = MAX_BATCH_SECONDS[self.device] * self.sample_rate
        min_len = self.config.receptive_field
        order = sorted(pool, key=lambda item: item[1].samples.size, reverse=True)
        start = 0
        while start < len(order):
            longest = max(order[start][1].samples.size, min_len)
            count = max(1, min(batch_size, int(max_samples // longest)))
            group = order[start:start + count]
            start += count
            for (index, window), kept in zip(group, self._kept_log_probs([w for _, w in group]), strict=True):
                target = collected[index]
                assert target is not None
                if target.keep_log_probs:
                    target.parts[window.index] = (kept.copy(),)
                else:
                    target.parts[window.index] = best_path(kept)

    def _kept_log_probs(self, windows: Sequence[Window]) -> list[np.ndarray]:
        """Run windows as one zero-padded batch; return each window's kept frames (views of the output)."""
        min_len = self.config.receptive_field
        longest = max(max(window.samples.size for window in windows), min_len)
        batch = np.zeros((len(windows), longest), dtype=np.float32)
        lengths = np.empty(len(windows), dtype=np.int64)
        for row, window in enumerate(windows):
            batch[row, :window.samples.size] = window.samples
            # Audio shorter than one receptive field is zero-padded: silence, not an error.
            lengths[row] = max(window.samples.size, min_len)
        with self._lock:
            log_probs, frames = self.model.run(batch, lengths)
        return [log_probs[row, window.keep_from:int(frames[row]) if window.keep_to is None else window.keep_to]
                for row, window in enumerate(windows)]


#: Inputs longer than this are not trimmed (trimming reads an input whole; long files stream in windows).
TRIM_MAX_SECONDS = 600.0


def speech_pieces(samples: np.ndarray, sample_rate: int, trim: bool, split: float | None) -> list[tuple[int, int]]:
    """The ``[start, end)`` sample ranges of ``samples`` that the model hears, one transcription each: its stretches
    of speech between pauses of at least ``split`` seconds, else (``trim``) its speech without the leading and
    trailing silence, else all of it. Inputs over :data:`TRIM_MAX_SECONDS` are heard whole."""
    if samples.size > TRIM_MAX_SECONDS * sample_rate or (not trim and split is None):
        return [(0, samples.size)]
    if split is not None:
        return speech_segments(samples, sample_rate, split)
    return [speech_span(samples, sample_rate)]


def _refuse_unknown(options: dict[str, Any], method: Any, what: str, allowed_name: str,
                    skip: tuple[str, ...] = ()) -> None:
    """Refuse keys of ``options`` that are not keyword-only parameters of ``method`` (less ``skip``), naming them
    and the allowed ones.

    Raises:
        InvalidOptionError: an unknown key.
    """
    allowed = [name for name, parameter in inspect.signature(method).parameters.items()
               if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in skip]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidOptionError(f"unknown {what} {unknown}; {allowed_name} are {', '.join(allowed)}")


_CACHE: dict[tuple, Transcriber] = {}
_CACHE_LOCK = threading.Lock()


def transcribe(audio: AudioInput | Sequence[AudioInput], model: str | os.PathLike | None = None,
               *, device: str = "auto", precision: str | None = None, threads: int | None = None,
               **options: Any) -> Transcription | list[Transcription]:
    """Transcribe audio in one call; the Transcriber for ``model`` is built once and cached.

    Args:
        audio: as for :meth:`Transcriber.transcribe`.
        model: a model directory, ``.onnx`` file or hub id; None for the bundled default model.
        device, precision, threads: as for :class:`Transcriber`.
        **options: passed to :meth:`Transcriber.transcribe` (sample_rate, decoder, word_timestamps, ...).
    """
    return _cached_transcriber(model, device, precision, threads).transcribe(audio, **options)


def match_phrases(audio: AudioInput | Sequence[AudioInput], phrases: Sequence[str],
                  model: str | os.PathLike | None = None, *, device: str = "auto", precision: str | None = None,
                  threads: int | None = None, **options: Any) -> PhraseMatch | list[PhraseMatch]:
    """Which of ``phrases`` the audio says, in one call (the model is cached as in :func:`transcribe`).

    Example:
        >>> w2v2_onnx.match_phrases("digit.wav", ["zero", "one", "two"]).phrase

    Args:
        audio, phrases: as for :meth:`Transcriber.match_phrases`.
        model, device, precision, threads: as for :func:`transcribe`.
        **options: passed to :meth:`Transcriber.match_phrases` (sample_rate, batch_size, ...).
    """
    return _cached_transcriber(model, device, precision, threads).match_phrases(audio, phrases, **options)


def _cached_transcriber(model: str | os.PathLike | None, device: str, precision: str | None,
                        threads: int | None) -> Transcriber:
    """The one cached Transcriber of the one-call functions, built (or rebuilt for another model) as needed."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise InvalidOptionError(f"threads must be an integer from 1 to {MAX_THREADS} or None, got {threads!r}")
    if model is not None and not isinstance(model, str | os.PathLike):
        raise InvalidOptionError(f"model must be a path, a hub id or None, got {type(model).__name__}")
    # A local path is keyed by its absolute form: the same relative name elsewhere is another model.
    name = None if model is None else os.fspath(model)
    if name is not None and os.path.exists(name):
        name = os.path.abspath(name)
    key = (name, device, precision, threads)
    with _CACHE_LOCK:
        transcriber = _CACHE.get(key)
        if transcriber is None:
            transcriber = Transcriber(model, device=device, precision=precision, threads=threads)
            _CACHE.clear()  # keep one model in memory (only once the new one loaded): switching models is rare
            _CACHE[key] = transcriber
    return transcriber
