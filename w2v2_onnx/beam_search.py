"""The inner loop of the CTC beam search (pyctcdecode 0.5.0's algorithm, rewritten for speed).

A beam is ``(text, word_part, last_char, word_spans, part_span, acoustic_score)``: ``text`` holds the
finished words, ``word_part`` the word being spelt, ``last_char`` the last emitted symbol ('' for blank, so a
repeated character after a blank starts a new character), ``word_spans`` the ``(first, end)`` frames of each
finished word and ``part_span`` those of ``word_part``. Beams with the same text, partial word and last
symbol are merged by adding their probabilities (see ``_merge_into`` for which spans are kept).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from w2v2_onnx.lm import HotwordScorer, LanguageModelScorer

NULL_SPAN = (-1, -1)


@dataclass(frozen=True)
class SearchSettings:
    """Pruning settings of the search (see :class:`w2v2_onnx.beam.BeamSearchDecoder`)."""

    beam_width: int
    beam_prune_logp: float
    token_min_logp: float
    prune_history: bool


def _logaddexp(a: float, b: float) -> float:
    if a >= b:
        return a + math.log(1 + math.exp(b - a))
    return b + math.log(1 + math.exp(a - b))


class _Scorer:
    """Adds LM and hotword scores to merged beams, caching per text and per partial word."""

    def __init__(self, lm: LanguageModelScorer | None, hotwords: HotwordScorer) -> None:
        self.lm = lm
        self.hotwords = hotwords
        self.text_cache: dict[tuple[str, bool], tuple[float, float, Any]] = {}
        if lm is not None:
            self.text_cache[("", False)] = (0.0, 0.0, lm.start_state())
        self.part_cache: dict[str, float] = {}
        self.hot_text_cache: dict[str, float] = {}

    def text_score(self, prev_text: str, text: str, word: str, is_eos: bool) -> float:
        """LM + hotword score of ``text`` (``prev_text`` followed by ``word``)."""
        key = (text, is_eos)
        cached = self.text_cache.get(key)
        if cached is None:
            lm = self.lm
            if lm is None:
                return self.hotword_text_score(text)
            _, prev_raw, state = self.text_cache[(prev_text, False)]
            score, end_state = lm.score(state, word, is_last_word=is_eos)
            raw = prev_raw + score
            cached = (raw + self.hotwords.score(text), raw, end_state)
            self.text_cache[key] = cached
        return cached[0]

    def hotword_text_score(self, text: str) -> float:
        score = self.hot_text_cache.get(text)
        if score is None:
            score = self.hot_text_cache[text] = self.hotwords.score(text)
        return score

    def part_score(self, part: str) -> float:
        score = self.part_cache.get(part)
        if score is None:
            if self.lm is None or part in self.hotwords:
                score = self.hotwords.score_partial_word(part)
            else:
                score = self.lm.score_partial_word(part)
            self.part_cache[part] = score
        return score


def _score_and_prune(merged: dict, scorer: _Scorer, settings: SearchSettings, is_eos: bool,
                     lm_order: int) -> list[tuple]:
    """Score merged beams, drop outliers, keep the best ``beam_width`` (in pyctcdecode's order)."""
    items = list(merged.items())
    if scorer.lm is None and not scorer.hotwords:
        totals = [value[4] for _, value in items]
    else:
        totals = []
        no_lm = scorer.lm is None
        text_cache, part_cache = scorer.text_cache, scorer.part_cache
        for (text, word_part, _), (prev_text, word, _, _, score) in items:
            # the caches are read inline (this loop is the hot spot); sums follow pyctcdecode's order, so
            # rounding and ties come out the same
            cached = None if no_lm else text_cache.get((text, is_eos))
            text_score = cached[0] if cached is not None else scorer.text_score(prev_text, text, word, is_eos)
            part = 0.0
            if word_part:
                part = part_cache.get(word_part)
                if part is None:
                    part = scorer.part_score(word_part)
            if no_lm:
                total = score + text_score
                total += part
            else:
                total = score + (text_score + part)
            totals.append(total)
    floor = max(totals) + settings.beam_prune_logp
    kept = [i for i, total in enumerate(totals) if total >= floor]
    # nlargest keeps input order among equal scores, so selecting indices picks the same beams
    best = [items[i] for i in heapq.nlargest(settings.beam_width, kept, key=totals.__getitem__)]
    beams = [(text, word_part, last_char, spans, part_span, score)
             for (text, word_part, last_char), (_, _, spans, part_span, score) in best]
    if not settings.prune_history:
        return beams
    history = max(1, lm_order - 1)
    seen = set()
    pruned = []
    for beam in beams:
        key = (tuple(beam[0].split()[-history:]), beam[1], beam[2])
        if key not in seen:
            seen.add(key)
            pruned.append(beam)
    return pruned


def _merge_into(old: list, new: list) -> None:
    """Add ``new``'s probability to ``old``, keeping the word spans of the more probable of the two.

    pyctcdecode keeps everything of the prefix merged last; we keep its previous text and pending word too
    (they decide how the end of the utterance is scored, so transcripts stay identical), but take the word
    spans of the more probable alignment: pyctcdecode's rule can end a word a frame or more early when a less
    likely alignment happens to be merged last.
    """
    old[0], old[1] = new[0], new[1]
    if new[4] >= old[4]:
        old[2], old[3] = new[2], new[3]
    old[4] = _logaddexp(old[4], new[4])


def _join(text: str, word: str) -> str:
    if not word:
        return text
    return word if not text else text + " " + word


def search(log_probs: np.ndarray, chars: list[str], settings: SearchSettings,
           lm: LanguageModelScorer | None, hotwords: HotwordScorer) -> tuple[str, list[tuple[int, int]]]:
    """Run the beam search over normalised, clipped ``[frames, vocab]`` log-probabilities.

    Args:
        log_probs: log-softmax output, clipped to ``[log(1e-15), 0]``.
        chars: the text of each token: '' for blank and special tokens, ' ' for the word delimiter.
        settings: pruning settings.
        lm: LM scorer or None; hotwords: hotword scorer (may be empty).

    Returns:
        The best transcript (single spaces) and the ``(first, end)`` frame span of each of its words.
    """
    scorer = _Scorer(lm, hotwords)
    lm_order = 1 if lm is None else lm.order
    beams: list[tuple] = [("", "", None, (), NULL_SPAN, 0.0)]
    above = log_probs >= settings.token_min_logp
    best_ids = log_probs.argmax(axis=1)
    for frame, (row, mask, best) in enumerate(zip(log_probs, above, best_ids.tolist(), strict=True)):
        candidates = set(np.flatnonzero(mask).tolist()) | {best}
        merged: dict[tuple, list] = {}
        end = frame + 1
        get = merged.get
        for idx in candidates:
            char = chars[idx]
            p = float(row[idx])
            if char == "":  # blank (or another silent token): nothing is emitted
                for text, word_part, _, spans, part_span, score in beams:
                    key = (text, word_part, "")
                    old = get(key)
                    if old is None:
                        merged[key] = [text, "", spans, part_span, score + p]
                    elif old[4] > score + p:  # keep the likelier spans (see _merge_into)
                        old[0] = text
                        old[4] = _logaddexp(old[4], score + p)
                    else:
                        merged[key] = [text, "", spans, part_span, _logaddexp(old[4], score + p)]
                continue
            for text, word_part, last_char, spans, part_span, score in beams:
                if char == last_char:  # a repeat without a blank in between extends the same symbol
                    key = (text, word_part, char)
                    new = [text, "", spans, (part_span[0], end), score + p]
                elif char == " ":
                    key = (_join(text, word_part), "", char)
                    new = [text, word_part, spans + (part_span,) if word_part else spans, NULL_SPAN,
                           score + p]
                else:
                    key = (text, word_part + char, char)
                    new = [text, "", spans, (frame, end) if part_span[0] < 0 else (part_span[0], end),
                           score + p]
                old = get(key)
                if old is None:
                    merged[key] = new
                else:
                    _merge_into(old, new)
        beams = _score_and_prune(merged, scorer, settings, False, lm_order)

    final: dict[tuple, list] = {}
    for text, word_part, _, spans, part_span, score in beams:
        key = (_join(text, word_part), "", None)
        new = [text, word_part, spans + (part_span,) if word_part else spans, NULL_SPAN, score]
        old = final.get(key)
        if old is None:
            final[key] = new
        else:
            _merge_into(old, new)
    best_beam = _score_and_prune(final, scorer, settings, True, lm_order)[0]
    return " ".join(best_beam[0].split()), list(best_beam[3])
