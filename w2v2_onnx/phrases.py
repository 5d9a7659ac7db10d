"""Closed-set recognition: which of a few given phrases was said (digits, commands, keywords).

Open transcription must spell every word from the audio alone; when the application knows the answer is
one of a short list ("zero" .. "nine", "turn on the light", ...), the right question is how likely each
listed phrase is. :func:`phrase_log_likelihoods` answers it exactly with the CTC forward algorithm: the
natural log of P(phrase | audio) under the model, summed over every alignment of the phrase's characters
to the frames (blanks and repeats as in training). A word delimiter before the first and after the last
word is optional, as the model may emit one at the edges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from w2v2_onnx.checks import is_finite_number
from w2v2_onnx.errors import InvalidOptionError
from w2v2_onnx.greedy import checked_log_probs
from w2v2_onnx.results import PhraseMatch
from w2v2_onnx.vocabulary import Vocabulary

MAX_PHRASES = 10_000


@dataclass(frozen=True)
class SpelledPhrase:
    """A phrase as given, and the token ids it is spelled with (words joined by the delimiter)."""

    text: str
    token_ids: tuple[int, ...]


def _spellable_tokens(vocab: Vocabulary) -> dict[str, int]:
    """Single-character tokens a phrase may use (not blank or other special tokens), space as the delimiter."""
    chars = {token: index for index, token in enumerate(vocab.tokens)
             if len(token) == 1 and index not in vocab.special_ids and token != vocab.word_delimiter}
    delimiter = vocab.delimiter_id
    if delimiter is not None:
        chars[" "] = delimiter
    elif " " in vocab.tokens:
        chars[" "] = vocab.tokens.index(" ")
    return chars


def spell_phrases(phrases: Sequence[str], vocab: Vocabulary) -> list[SpelledPhrase]:
    """Check a phrase list and spell each phrase in the model's tokens.

    Words are split on whitespace and joined by the word delimiter. A phrase the vocabulary cannot spell as
    written is tried in upper and then lower case (models are usually trained on one case only).

    Raises:
        InvalidOptionError: not a list of strings, an empty list or phrase, more than MAX_PHRASES phrases,
            two phrases that spell the same tokens, or characters the vocabulary does not have.
    """
    if isinstance(phrases, str | bytes) or not isinstance(phrases, Sequence):
        raise InvalidOptionError(f"phrases must be a list of strings, got {type(phrases).__name__}")
    if not phrases:
        raise InvalidOptionError("phrases is empty: give at least one phrase to choose from")
    if len(phrases) > MAX_PHRASES:
        raise InvalidOptionError(f"{len(phrases)} phrases given; at most {MAX_PHRASES} are allowed "
                                 f"(for open vocabularies use transcribe())")
    chars = _spellable_tokens(vocab)
    spelled: list[SpelledPhrase] = []
    seen: dict[tuple[int, ...], str] = {}
    for phrase in phrases:
        if not isinstance(phrase, str):
            raise InvalidOptionError(f"phrases must be strings; {phrase!r} is a {type(phrase).__name__}")
        words = phrase.split()
        if not words:
            raise InvalidOptionError(f"phrase {phrase!r} is empty: every phrase needs at least one word")
        text = " ".join(words)
        candidates = [text, text.upper(), text.lower()]
        missing_by_case = [sorted({c for c in candidate if c not in chars}) for candidate in candidates]
        best = min(range(len(candidates)), key=lambda i: len(missing_by_case[i]))
        if missing_by_case[best]:
            allowed = "".join(sorted(c for c in chars if c != " "))
            raise InvalidOptionError(
                f"phrase {phrase!r} has characters the model cannot write: {missing_by_case[best]}; "
                f"its vocabulary has {allowed!r}" + (" and spaces between words" if " " in chars else
                                                     " and no word delimiter (one word per phrase)"))
        ids = tuple(chars[c] for c in candidates[best])
        if ids in seen:
            raise InvalidOptionError(f"phrases {seen[ids]!r} and {phrase!r} spell the same tokens; "
                                     f"give each phrase once")
        seen[ids] = phrase
        spelled.append(SpelledPhrase(phrase, ids))
    return spelled


def phrase_log_likelihoods(log_probs: np.ndarray, phrases: Sequence[SpelledPhrase],
                           vocab: Vocabulary) -> np.ndarray:
    """Natural log of P(phrase | audio) for each phrase, by the CTC forward algorithm.

    Args:
        log_probs: ``[frames, vocabulary]`` log-probabilities (e.g. ``Transcriber.log_probs``).
        phrases: phrases spelled by :func:`spell_phrases` for the same vocabulary.
        vocab: the model's vocabulary.

    Returns:
        float64 ``[len(phrases)]``; ``-inf`` for a phrase that cannot fit in the frames (CTC needs one frame
        per character, plus one between repeated characters).

    Raises:
        DecoderError: ``log_probs`` is not a float ``[frames, len(vocab)]`` array, or holds NaN.
    """
    log_probs = checked_log_probs(log_probs, vocab).astype(np.float64)
    blank = vocab.blank_id
    edge = vocab.delimiter_id
    count = len(phrases)
    if count == 0:
        return np.zeros(0)
    # Labels with the optional edge delimiters: "| w o r d s |" (or the bare phrase without a delimiter).
    labels = [((edge,) + p.token_ids + (edge,)) if edge is not None else p.token_ids for p in phrases]
    longest = max(len(label) for label in labels)
    states = 2 * longest + 1
    # Extended sequence: blank, l1, blank, l2, ..., blank; padding states are blanks no real state reads.
    extended = np.full((count, states), blank, dtype=np.int64)
    for row, label in enumerate(labels):
        extended[row, 1:2 * len(label):2] = label
    # A state may be entered from two back (skipping a blank) when it is a label unlike the one two back.
    skip = np.zeros((count, states), dtype=bool)
    skip[:, 2:] = (extended[:, 2:] != blank) & (extended[:, 2:] != extended[:, :-2])
    frames = log_probs.shape[0]
    if frames == 0:
        return np.full(count, -np.inf)
    alpha = np.full((count, states), -np.inf)
    starts = [0, 1] if edge is None else [0, 1, 2, 3]  # with an edge delimiter the path may skip it
    alpha[:, starts] = log_probs[0][extended[:, starts]]
    for t in range(1, frames):
        step = alpha.copy()
        np.logaddexp(step[:, 1:], alpha[:, :-1], out=step[:, 1:])
        from_two = np.where(skip[:, 2:], alpha[:, :-2], -np.inf)
        np.logaddexp(step[:, 2:], from_two, out=step[:, 2:])
        alpha = step + log_probs[t][extended]
    # Final states: the last label or the blank after it; with edge delimiters also the last word's end.
    last = np.array([2 * len(label) for label in labels])[:, None]
    finals = last - np.arange(4 if edge is not None else 2)[None, :]
    return np.logaddexp.reduce(alpha[np.arange(count)[:, None], finals], axis=1)


def checked_min_margin(min_margin: object) -> float | None:
    """``min_margin`` if it is None or a finite number (as a float).

    Raises:
        InvalidOptionError: anything else (a string, a bool, NaN, infinity).
    """
    if min_margin is None:
        return None
    if not is_finite_number(min_margin):
        raise InvalidOptionError(f"min_margin must be None or a finite number (a log-probability margin, "
                                 f"e.g. -1.0), got {min_margin!r}")
    return float(min_margin)


def match_frames(log_probs: np.ndarray, phrases: Sequence[SpelledPhrase], vocab: Vocabulary,
                 duration: float, min_margin: float | None = None) -> PhraseMatch:
    """The :class:`PhraseMatch` of one input's log-probabilities against spelled phrases.

    With ``min_margin``, a best phrase whose margin is below it is rejected: ``phrase`` is None (the input
    says none of the phrases) and ``rejected`` is True; the scores stay as computed.

    Raises:
        DecoderError: as :func:`phrase_log_likelihoods`.
    """
    scores = phrase_log_likelihoods(log_probs, phrases, vocab)
    every = {p.text: float(s) for p, s in zip(phrases, scores, strict=True)}
    if not np.isfinite(scores).any():  # the input is too short for every phrase
        return PhraseMatch(None, 0.0, -math.inf, -math.inf, every, round(duration, 6))
    best = int(np.argmax(scores))
    margin = float(scores[best]) - best_path_log_prob(log_probs)
    rejected = min_margin is not None and margin < min_margin
    return PhraseMatch(phrase=None if rejected else phrases[best].text,
                       probability=float(posterior(scores)[best]), log_likelihood=float(scores[best]),
                       margin=margin, scores=every, duration=round(duration, 6), rejected=rejected)


def best_path_log_prob(log_probs: np.ndarray) -> float:
    """Natural log-probability of the model's single most likely frame path, with no phrase imposed (the path
    greedy decoding reads): the yardstick of :attr:`PhraseMatch.margin`."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    return float(log_probs.max(axis=1).sum()) if log_probs.shape[0] else 0.0


def posterior(scores: np.ndarray) -> np.ndarray:
    """Each phrase's share of the probability among the phrases (softmax of the log-likelihoods).

    All zeros when no phrase fits in the frames.
    """
    if scores.size == 0 or not np.isfinite(scores).any():
        return np.zeros_like(scores)
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()
