"""CTC prefix beam search with optional n-gram LM fusion, hotwords and word timings.

The search follows pyctcdecode 0.5.0's algorithm and defaults step by step (same beams, same merges, same
LM and hotword scores), so its transcripts match pyctcdecode's at the same settings, but it runs on numpy 2
and spends less time per frame (see ``docs/decoding.md``). Word times come from the winning beam: a word
starts at the first frame of its first character and ends after the last frame of its last character, in
the most probable of the alignments merged into the beam (pyctcdecode keeps the last merged one instead).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import numbers
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from w2v2_onnx.beam_search import SearchSettings, prepare, search
from w2v2_onnx.errors import DecoderError
from w2v2_onnx.lm import HotwordScorer, LanguageModelScorer, load_ngram_model, unigrams_for
from w2v2_onnx.results import Decoded, Word
from w2v2_onnx.segments import pause_segments, split_at_pauses
from w2v2_onnx.vocabulary import Vocabulary

DEFAULT_ALPHA = 0.5
DEFAULT_BETA = 1.5
DEFAULT_BEAM_WIDTH = 100
DEFAULT_HOTWORD_WEIGHT = 10.0
DEFAULT_BEAM_PRUNE_LOGP = -10.0
DEFAULT_TOKEN_MIN_LOGP = -5.0
DEFAULT_UNK_SCORE_OFFSET = -10.0
_MIN_LOG_PROB = float(np.log(1e-15))  # pyctcdecode clips log-probabilities here
#: Longest stretch searched at once; longer inputs are cut at pauses (w2v2_onnx.segments) to bound memory.
MAX_SEGMENT_SECONDS = 60.0
PAUSE_SECONDS = 0.24  # a blank run this long counts as a gap between words (w2v2_onnx.segments)
#: The search and the LM's sentence context restart at every pause this long (w2v2_onnx.segments.split_at_pauses).
#: Chosen on dev data by a rule written first (benchmarks/results/pause_cuts/decision_rule.txt).
SENTENCE_PAUSE_SECONDS = 0.5

logger = logging.getLogger(__name__)


#: The widest beam accepted: cost grows with the width, and 4,096 already takes seconds per second of audio.
MAX_BEAM_WIDTH = 4096
#: Bounds of the score settings (natural-log units); values beyond them only ever produce garbage.
MAX_SCORE_MAGNITUDE = 1000.0


def _number(name: str, value: Any, *, low: float = -MAX_SCORE_MAGNITUDE, high: float = MAX_SCORE_MAGNITUDE) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DecoderError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    number = float(value)
    if not np.isfinite(number) or not low <= number <= high:
        raise DecoderError(f"{name} must be a finite number in [{low:g}, {high:g}], got {value!r}")
    return number


def _beam_width(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= MAX_BEAM_WIDTH:
        raise DecoderError(f"beam_width must be an integer from 1 to {MAX_BEAM_WIDTH}, got {value!r}")
    return int(value)


def _hotword_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
        raise DecoderError(f"hotwords must be a list of strings, got {value!r} ({type(value).__name__})")
    words = tuple(value)
    for word in words:
        if not isinstance(word, str):
            raise DecoderError(f"hotwords must be a list of strings; {word!r} is a {type(word).__name__}")
    return tuple(word for word in words if word.strip())


def checked_settings(**values: Any) -> dict[str, Any]:
    """Validate beam-search settings by name; returns them converted (int, float, bool, tuple of str).

    Raises:
        DecoderError: a value of the wrong type or out of range, naming the setting and what is allowed.
    """
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name == "beam_width":
            checked[name] = _beam_width(value)
        elif name == "alpha":
            checked[name] = _number(name, value, low=0.0)
        elif name in ("beta", "hotword_weight", "unk_score_offset"):
            checked[name] = _number(name, value)
        elif name in ("beam_prune_logp", "token_min_logp"):
            checked[name] = _number(name, value, high=0.0)
        elif name in ("prune_history", "score_boundary"):
            if not isinstance(value, bool | np.bool_):
                raise DecoderError(f"{name} must be True or False, got {value!r}")
            checked[name] = bool(value)
        elif name == "hotwords":
            checked[name] = _hotword_list(value)
        else:
            raise DecoderError(f"unknown beam-search setting {name!r}")
    return checked


def checked_lm_path(lm: Any) -> str | None:
    """The language model argument as a path string (None for no LM).

    Raises:
        DecoderError: ``lm`` is neither None nor a path (str or os.PathLike).
    """
    if lm is None:
        return None
    if not isinstance(lm, str | os.PathLike):
        raise DecoderError(f"lm must be a path (str or os.PathLike) to an ARPA or KenLM binary file, "
                           f"got {type(lm).__name__}")
    return os.fspath(lm)


def _warn_unspellable(hotwords: Sequence[str], chars: Sequence[str]) -> None:
    spellable = set(chars)
    for word in hotwords:
        missing = sorted({c for c in word if c != " " and c not in spellable})
        if missing:
            logger.warning("hotword %r can never match: the vocabulary has no %s "
                           "(hotwords are case-sensitive)", word, missing)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x_max = x.max(axis=1, keepdims=True)
    x_max[~np.isfinite(x_max)] = 0  # an all -inf row stays -inf instead of turning into NaN
    shifted = x - x_max
    with np.errstate(divide="ignore"):
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class BeamSearchDecoder:
    """Beam-search CTC decoder for one vocabulary, optionally fused with an n-gram language model.

    Instances are picklable (a KenLM model is reloaded from its path), so they can be sent to worker
    processes started by fork or spawn.
    """

    def __init__(self, vocab: Vocabulary, *, lm: str | Path | None = None, alpha: float = DEFAULT_ALPHA,
                 beta: float = DEFAULT_BETA, beam_width: int = DEFAULT_BEAM_WIDTH,
                 hotwords: Sequence[str] = (), hotword_weight: float = DEFAULT_HOTWORD_WEIGHT,
                 beam_prune_logp: float = DEFAULT_BEAM_PRUNE_LOGP,
                 token_min_logp: float = DEFAULT_TOKEN_MIN_LOGP, prune_history: bool = False,
                 unk_score_offset: float = DEFAULT_UNK_SCORE_OFFSET, score_boundary: bool = True,
                 lm_backend: str = "auto") -> None:
        """Set up the decoder and load the language model, if any.

        Args:
            vocab: the model's vocabulary (blank and other special tokens emit nothing, the word
                delimiter separates words).
            lm: an ARPA or KenLM binary n-gram model over upper-case words, or None for no LM.
            alpha: LM weight (natural-log LM score times alpha is added to the acoustic score).
            beta: bonus added per word scored by the LM (counters the LM's bias to short outputs).
            beam_width: most beams kept after each frame.
            hotwords: words or phrases to favour; they need not be in the LM.
            hotword_weight: natural-log bonus per matched hotword word.
            beam_prune_logp: beams scoring this much below the best are dropped.
            token_min_logp: tokens below this log-probability in a frame are not expanded (the frame's
                best token always is).
            prune_history: merge beams that share their last ``order - 1`` words (faster, less diverse).
            unk_score_offset: log10 penalty for words (and partial words) the LM does not know.
            score_boundary: score the sentence start and end with the LM.
            lm_backend: ``"auto"``, ``"kenlm"`` or ``"python"`` (see :func:`w2v2_onnx.lm.load_ngram_model`).

        Raises:
            DecoderError: if a setting is out of range or the vocabulary has no word delimiter.
            LanguageModelError: if the LM file is missing or unreadable.
            MissingDependencyError: if a KenLM binary is given and ``kenlm`` is not installed.
        """
        if vocab.word_delimiter is None:
            raise DecoderError("beam search needs a vocabulary with a word delimiter")
        lm_path = checked_lm_path(lm)
        given = checked_settings(alpha=alpha, beta=beta, beam_width=beam_width, hotwords=hotwords,
                                 hotword_weight=hotword_weight, beam_prune_logp=beam_prune_logp,
                                 token_min_logp=token_min_logp, prune_history=prune_history,
                                 unk_score_offset=unk_score_offset, score_boundary=score_boundary)
        self.vocab = vocab
        self.lm_path = lm_path
        self.settings = SearchSettings(given["beam_width"], given["beam_prune_logp"], given["token_min_logp"],
                                       given["prune_history"])
        self.hotwords = given["hotwords"]
        self.hotword_weight = given["hotword_weight"]
        self._hotword_scorer = HotwordScorer(self.hotwords, self.hotword_weight)
        self._chars = [vocab.piece(i) for i in range(len(vocab))]
        _warn_unspellable(self.hotwords, self._chars)
        self.scorer: LanguageModelScorer | None = None
        self._lm_options = {name: given[name] for name in ("alpha", "beta", "unk_score_offset", "score_boundary")}
        self.lm_backend = lm_backend
        if lm is not None:
            model = load_ngram_model(lm, backend=lm_backend)
            self.scorer = LanguageModelScorer(model, unigrams_for(lm, model), **self._lm_options)
        prepare(self._chars, self.settings, self.scorer, self._hotword_scorer)

    @property
    def options(self) -> dict[str, Any]:
        """The effective decoding options, for echoing in results."""
        return {"decoder": "beam", "lm": self.lm_path, **self._lm_options,
                "beam_width": self.settings.beam_width,
                "beam_prune_logp": self.settings.beam_prune_logp,
                "token_min_logp": self.settings.token_min_logp, "prune_history": self.settings.prune_history,
                "hotwords": list(self.hotwords), "hotword_weight": self.hotword_weight}

    def replace(self, **changes: Any) -> BeamSearchDecoder:
        """Return a copy with other settings (alpha, beta, beam_width, hotwords, ...), reusing the loaded LM.

        Raises:
            DecoderError: if a setting is unknown or out of range.
        """
        new = BeamSearchDecoder.__new__(BeamSearchDecoder)
        new.__dict__.update(self.__dict__)
        settings = {f.name: getattr(self.settings, f.name) for f in dataclasses.fields(SearchSettings)}
        lm_options = dict(self._lm_options)
        for key in changes:
            if key not in settings and key not in lm_options and key not in ("hotwords", "hotword_weight"):
                raise DecoderError(f"replace() cannot change {key!r}: load a new decoder for another LM")
        changes = checked_settings(**changes)
        for key, value in changes.items():
            if key in settings:
                settings[key] = value
            elif key in lm_options:
                lm_options[key] = value
        new.settings = SearchSettings(**settings)
        new._lm_options = lm_options
        new.hotwords = changes.get("hotwords", self.hotwords)
        new.hotword_weight = changes.get("hotword_weight", self.hotword_weight)
        new._hotword_scorer = HotwordScorer(new.hotwords, new.hotword_weight)
        _warn_unspellable(new.hotwords, new._chars)
        if self.scorer is not None:
            new.scorer = LanguageModelScorer.__new__(LanguageModelScorer)
            new.scorer.__dict__.update(self.scorer.__dict__)
            new.scorer.__dict__.update(lm_options)
        prepare(new._chars, new.settings, new.scorer, new._hotword_scorer)
        return new

    def decode(self, log_probs: np.ndarray, frame_duration: float, *,
               max_segment_seconds: float | None = MAX_SEGMENT_SECONDS,
               sentence_pause_seconds: float | None = SENTENCE_PAUSE_SECONDS) -> Decoded:
        """Decode one utterance.

        Args:
            log_probs: ``[frames, vocab]`` CTC log-probabilities (logits are normalised with log-softmax).
            frame_duration: seconds between consecutive frames.
            max_segment_seconds: longer inputs are searched in segments of at most this length, cut at
                gaps between words (:func:`w2v2_onnx.segments.pause_segments`), so memory stays flat for hours of audio;
                the language model context restarts at each cut. None searches the whole input at once.
            sentence_pause_seconds: the search also restarts in the middle of every pause (a run of blank or
                delimiter frames) at least this long inside the input, each part scored by the language model
                as a sentence of its own; it pays on speech with pauses between sentences (docs/decoding.md,
                "Restarting at pauses"). None, or a length under two frames: no such cuts.

        Returns:
            The best beam's transcript and words with start/end times in seconds and a probability: the mean
            over the word's characters of each character's highest probability within the word's frames.

        Raises:
            DecoderError: if ``log_probs`` is not ``[frames, len(vocab)]`` or holds NaN.
        """
        log_probs = np.asarray(log_probs)
        if log_probs.ndim != 2 or log_probs.shape[1] != len(self.vocab):
            raise DecoderError(f"log_probs must have shape [frames, {len(self.vocab)}], "
                               f"got {log_probs.shape}")
        if not np.issubdtype(log_probs.dtype, np.floating):
            raise DecoderError(f"log_probs must be floating point, got {log_probs.dtype}")
        if log_probs.shape[0] == 0:
            return Decoded("", ())
        if np.isnan(log_probs).any():
            raise DecoderError("log_probs contains NaN")
        lp = np.clip(_log_softmax(log_probs), _MIN_LOG_PROB, 0)
        if max_segment_seconds is not None and not (isinstance(max_segment_seconds, numbers.Real)
                                                    and max_segment_seconds >= 2 * frame_duration):
            raise DecoderError(f"max_segment_seconds must be None or a number of seconds of at least two frames, "
                               f"got {max_segment_seconds!r}")
        if sentence_pause_seconds is not None and not (isinstance(sentence_pause_seconds, numbers.Real)
                                                       and sentence_pause_seconds > 0):
            raise DecoderError(f"sentence_pause_seconds must be None or a positive number of seconds, "
                               f"got {sentence_pause_seconds!r}")
        pause_frames = 0 if sentence_pause_seconds is None else round(sentence_pause_seconds / frame_duration)
        parts = ([(0, lp.shape[0])] if pause_frames < 2 else
                 split_at_pauses(lp, self.vocab.blank_id, self.vocab.delimiter_id, pause_frames))
        bounds = []
        for first, last in parts:
            if max_segment_seconds is None:
                bounds.append((first, last))
            else:
                bounds += [(first + a, first + b) for a, b in pause_segments(
                    lp[first:last], self.vocab.blank_id, int(max_segment_seconds / frame_duration),
                    self.vocab.delimiter_id, max(2, round(PAUSE_SECONDS / frame_duration)))]
        words: list[Word] = []
        for start, end in bounds:
            text, spans = search(lp[start:end], self._chars, self.settings, self.scorer, self._hotword_scorer)
            words.extend(self._words(text, [(a + start, b + start) for a, b in spans], lp, frame_duration).words)
        return Decoded(" ".join(w.word for w in words), tuple(words))

    def _words(self, text: str, spans: Sequence[tuple[int, int]], lp: np.ndarray,
               frame_duration: float) -> Decoded:
        index = {t: i for i, t in enumerate(self._chars) if t and t != " "}
        words = []
        for word, (start, end) in zip(text.split(), spans, strict=False):
            window = lp[start:max(end, start + 1)]
            ids = [index[c] for c in word if c in index]
            prob = float(np.exp(window[:, ids].max(axis=0)).mean()) if ids else 0.0
            words.append(Word(round(start * frame_duration, 3), round(end * frame_duration, 3), word,
                              round(prob, 4)))
        return Decoded(" ".join(w.word for w in words), tuple(words))

    def decode_batch(self, batch: Sequence[np.ndarray], frame_duration: float, *,
                     num_workers: int = 0) -> list[Decoded]:
        """Decode several utterances, in worker processes when ``num_workers > 1``.

        Workers start with the interpreter's default start method (fork or spawn both work: the decoder is
        pickled into each worker once).

        Args:
            batch: ``[frames, vocab]`` log-probability matrices of any lengths.
            frame_duration: seconds between consecutive frames.
            num_workers: worker processes; 0 or 1 decodes in this process.

        Returns:
            One result per input, in order.

        Raises:
            DecoderError: if an input is malformed or ``num_workers`` is negative.
        """
        if num_workers < 0:
            raise DecoderError(f"num_workers must be >= 0, got {num_workers}")
        if num_workers <= 1 or len(batch) <= 1:
            return [self.decode(lp, frame_duration) for lp in batch]
        ctx = multiprocessing.get_context()
        with ProcessPoolExecutor(max_workers=min(num_workers, len(batch)), mp_context=ctx,
                                 initializer=_init_worker, initargs=(self,)) as pool:
            return list(pool.map(_decode_in_worker, batch, [frame_duration] * len(batch)))


_WORKER_DECODER: BeamSearchDecoder | None = None


def _init_worker(decoder: BeamSearchDecoder) -> None:
    global _WORKER_DECODER
    _WORKER_DECODER = decoder


def _decode_in_worker(log_probs: np.ndarray, frame_duration: float) -> Decoded:
    assert _WORKER_DECODER is not None, "worker was not initialised"
    return _WORKER_DECODER.decode(log_probs, frame_duration)
