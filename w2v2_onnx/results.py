"""Result types returned by the recognizer: frozen dataclasses, times in seconds from the input's start."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Word:
    """One recognized word.

    Attributes:
        start: time of the word's first frame, in seconds from the start of the input.
        end: time at which the word's last frame ends, in seconds.
        word: the word's text (no surrounding spaces).
        probability: the model's confidence in the word, in [0, 1] (see ``docs/decoding.md``).
    """

    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Decoded:
    """What a CTC decoder returns for one utterance: the text and its words."""

    text: str
    words: tuple[Word, ...]


@dataclass(frozen=True)
class Transcription:
    """The transcription of one input.

    Attributes:
        text: the transcript, words separated by single spaces.
        words: the words with their times and probabilities (empty when ``word_timestamps=False``).
        duration: the input's duration in seconds.
        options: the effective decoding options, echoed for reproducibility.
    """

    text: str
    words: tuple[Word, ...]
    duration: float
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the transcription."""
        return asdict(self)


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech that a live stream ended at a pause (``Transcriber.stream(endpoint_silence=...)``).

    Attributes:
        start: where its first speech frame begins, in seconds from the start of the stream.
        end: where its last speech frame ends (the pause that ended it follows).
        text: the utterance's transcript, decoded on its own with the stream's decoder.
        words: its words, times in seconds from the start of the stream (empty when ``word_timestamps=False``).
    """

    start: float
    end: float
    text: str
    words: tuple[Word, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the utterance."""
        return asdict(self)


@dataclass(frozen=True)
class PhraseMatch:
    """Which of the given phrases an input says (:meth:`Transcriber.match_phrases`).

    Attributes:
        phrase: the most likely phrase, as given; None when no phrase fits in the input's frames (too short)
            or when its margin is below the ``min_margin`` asked for (``rejected``).
        probability: the best phrase's share of the probability among the given phrases, in [0, 1] (equal
            priors). Relative only: an input that says none of them still has a best phrase; use ``margin``
            (or ``min_margin``) to reject.
        log_likelihood: natural log of P(phrase | audio) under the model, summed over all CTC alignments.
        margin: ``log_likelihood`` minus the log-probability of the model's single best frame path with no
            phrase imposed (what greedy decoding reads). About 0 or above when the model hears the phrase;
            far below 0 when the input says something else: reject matches below a threshold
            (docs/decoding.md gives measured ones). ``-inf`` when no phrase fits.
        scores: every phrase's log-likelihood, in the order given (``-inf`` for one that cannot fit).
        duration: the input's duration in seconds.
        rejected: True when a best phrase existed but its margin fell below ``min_margin``; ``probability``,
            ``log_likelihood`` and ``margin`` then describe that rejected phrase (the best of ``scores``).
    """

    phrase: str | None
    probability: float
    log_likelihood: float
    margin: float
    scores: dict[str, float]
    duration: float
    rejected: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the match."""
        return asdict(self)


def shifted_words(words: Sequence[Word], offset: float) -> tuple[Word, ...]:
    """``words`` with their times moved ``offset`` seconds later: back to the input as given when the model heard
    it from ``offset`` on (``trim_silence``)."""
    if not offset:
        return tuple(words)
    return tuple(replace(w, start=round(w.start + offset, 3), end=round(w.end + offset, 3)) for w in words)
