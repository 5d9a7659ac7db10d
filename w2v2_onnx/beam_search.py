"""The inner loop of the CTC beam search (pyctcdecode 0.5.0's algorithm, rewritten for speed).

A beam is ``(text, word_part, last_char, word_spans, part_span, acoustic_score)``: ``text`` holds the
finished words, ``word_part`` the word being spelt, ``last_char`` the last emitted symbol ('' for blank, so a
repeated character after a blank starts a new character), ``word_spans`` the ``(first, end)`` frames of each
finished word and ``part_span`` those of ``word_part``. Beams with the same text, partial word and last
symbol are merged by adding their probabilities (see ``_merge_into`` for which spans are kept).

The frame loop exists twice with the same output: in C (``_beam_native.c``, built at install time where a C
compiler is; 5-8x faster on our models' posteriors) and in Python (``_python_frames``, used without the C build, with
``prune_history``, for vocabularies with multi-character tokens, or when ``W2V2_ONNX_PURE_PYTHON`` is set).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from w2v2_onnx.lm import AVG_WORD_LEN, HotwordScorer, LanguageModelScorer

try:
    from w2v2_onnx import _beam_native as _native
except ImportError:  # pragma: no cover - depends on the install
    _native = None
if os.environ.get("W2V2_ONNX_PURE_PYTHON"):
    _native = None

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
    """Score the final merged beams (end of utterance), drop outliers, keep the best (pyctcdecode's order)."""
    items = list(merged.items())
    totals = _totals([(score, scorer.text_score(prev_text, text, word, is_eos),
                       scorer.part_score(word_part) if word_part else 0.0)
                      for (text, word_part, _), (prev_text, word, _, _, score) in items], scorer)
    best = _best(items, totals, settings)
    beams = [(text, word_part, last_char, spans, part_span, score)
             for (text, word_part, last_char), (_, _, spans, part_span, score) in best]
    return _prune_history(beams, settings, lm_order)


def _totals(entries: Iterable[Sequence[float]], scorer: _Scorer) -> list[float]:
    """Each entry's total: its last three items are the acoustic, text and partial-word scores, summed as
    pyctcdecode sums them (the order of the additions decides rounding, and so ties); without LM or hotwords
    the other two are zero and left out."""
    if scorer.lm is not None:
        return [entry[-3] + (entry[-2] + entry[-1]) for entry in entries]
    if scorer.hotwords:
        return [entry[-3] + entry[-2] + entry[-1] for entry in entries]
    return [entry[-3] for entry in entries]


def _best(items: list, totals: list[float], settings: SearchSettings) -> list:
    """The items within ``beam_prune_logp`` of the best, best first, at most ``beam_width``.

    A stable sort keeps input order among equal totals, as pyctcdecode's ``heapq.nlargest`` does.
    """
    floor = max(totals) + settings.beam_prune_logp
    kept = [i for i, total in enumerate(totals) if total >= floor]
    kept.sort(key=totals.__getitem__, reverse=True)
    return [items[i] for i in kept[:settings.beam_width]]


def _last_words_of_string(text: str, count: int) -> tuple[str, ...]:
    return tuple(text.split()[-count:])


def _prune_history(beams: list[tuple], settings: SearchSettings, lm_order: int,
                   last_words: Any = _last_words_of_string) -> list[tuple]:
    """With ``prune_history``, keep only the best beam per (last ``order - 1`` words, partial word, symbol).

    ``last_words(text, count)`` reads a beam's text (a string, or an id of the frame loop's text table).
    """
    if not settings.prune_history:
        return beams
    history = max(1, lm_order - 1)
    seen = set()
    pruned = []
    for beam in beams:
        key = (last_words(beam[0], history), beam[1], beam[2])
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
    if _native_ok(chars, settings):
        beams = _native_frames(log_probs, chars, settings, scorer)
    else:
        beams = _python_frames(log_probs, chars, settings, scorer, lm_order)
    final: dict[tuple, list] = {}
    for text, word_part, _, spans, part_span, score, _, _ in beams:
        key = (_join(text, word_part), "", None)
        new = [text, word_part, spans + (part_span,) if word_part else spans, NULL_SPAN, score]
        old = final.get(key)
        if old is None:
            final[key] = new
        else:
            _merge_into(old, new)
    best_beam = _score_and_prune(final, scorer, settings, True, lm_order)[0]
    return " ".join(best_beam[0].split()), list(best_beam[3])


def _candidate_order(log_probs: np.ndarray, settings: SearchSettings) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's candidate tokens (those at or above ``token_min_logp``, and the best one) in the order
    both loops visit them (pyctcdecode's: a set's), flattened, with the ``[frames + 1]`` offsets into it."""
    above = log_probs >= settings.token_min_logp
    best_ids = log_probs.argmax(axis=1).tolist()
    counts = above.sum(axis=1).tolist()
    _, cols = np.nonzero(above)
    cols = cols.tolist()
    order: list[int] = []
    offsets = [0]
    start = 0
    for best, count in zip(best_ids, counts, strict=True):
        if count <= 1:
            order.append(best)
        else:
            order.extend(set(cols[start:start + count]) | {best})
        start += count
        offsets.append(len(order))
    return np.asarray(order, dtype=np.int32), np.asarray(offsets, dtype=np.int32)


def _native_ok(chars: list[str], settings: SearchSettings) -> bool:
    """Whether the C loop applies: it is built, ``prune_history`` is off (the Python loop does it) and every
    token that emits text is one character (so each string has one id in its tries)."""
    return _native is not None and not settings.prune_history and all(len(char) <= 1 for char in chars)


def _build_trie(prefixes: Iterable[str], score: Any, symbol_ids: dict[str, int]) -> Any:
    """A C prefix trie of the ``prefixes`` spellable with the symbols, each scored ``score(prefix)``."""
    nodes = {"": 0}
    parents, symbols, scores = [0], [0], [0.0]
    for prefix in sorted(prefixes, key=len):  # a prefix's own prefixes come first
        parent = nodes.get(prefix[:-1])
        symbol = symbol_ids.get(prefix[-1])
        if parent is None or symbol is None:
            continue  # not spellable with this vocabulary (nor are its extensions)
        nodes[prefix] = len(parents)
        parents.append(parent)
        symbols.append(symbol)
        scores.append(score(prefix))
    return _native.prefix_trie(np.asarray(parents, dtype=np.int32), np.asarray(symbols, dtype=np.int32),
                               np.asarray(scores, dtype=np.float64))


def _tries(scorer: _Scorer, chars: list[str], symbol_ids: dict[str, int]) -> tuple[Any, Any]:
    """The C loop's prefix tries: every prefix of the LM's known words (empty without LM), built once per
    LM and vocabulary (kept in the LM scorer's ``search_cache``, which ``replace()`` copies share), and of
    the hotwords (kept in the hotword scorer's)."""
    lm, hotwords = scorer.lm, scorer.hotwords
    key = tuple(chars)
    if lm is None:
        lm_trie = _build_trie((), float, symbol_ids)
    else:
        lm_key = (key, lm.unk_score_offset)
        lm_trie = lm.search_cache.get(lm_key)
        if lm_trie is None:
            lm_trie = lm.search_cache[lm_key] = _build_trie(lm.known_prefixes(), lm.score_partial_word, symbol_ids)
    hot_trie = hotwords.search_cache.get(key)
    if hot_trie is None:
        hot_trie = hotwords.search_cache[key] = _build_trie(hotwords.prefixes(), hotwords.score_partial_word,
                                                            symbol_ids)
    return lm_trie, hot_trie


def prepare(chars: list[str], settings: SearchSettings, lm: LanguageModelScorer | None,
            hotwords: HotwordScorer) -> None:
    """Build now, rather than at the first :func:`search`, what the C loop needs for these scorers and
    vocabulary (the prefix trie of an LM's word list: about 0.25 s for 57,000 words). Does nothing where
    the C loop does not apply."""
    if _native_ok(chars, settings):
        _tries(_Scorer(lm, hotwords), chars, _symbol_ids(chars))


def _symbol_ids(chars: list[str]) -> dict[str, int]:
    """Each distinct text of the tokens that emit text, numbered in vocabulary order."""
    return {char: i for i, char in enumerate(dict.fromkeys(char for char in chars if char))}


class _TextTable:
    """The texts of one search (either loop), by id, each as (previous text's id, last word) with its LM
    state and scores: memory grows with the number of texts, not with their length (a full string per text
    would grow with the square of the audio's length). Scores equal ``_Scorer.text_score``'s:
    the hotword bonus is counted word by word (hotwords are single words, so a text's count of whole-word
    matches is its previous text's plus one if the new word is a hotword)."""

    def __init__(self, scorer: _Scorer) -> None:
        self.lm, self.hotwords = scorer.lm, scorer.hotwords
        start = scorer.text_cache[("", False)] if self.lm is not None else (0.0, 0.0, None)
        self.start_score = scorer.text_score("", "", "", False)
        self.previous, self.words, self.counts = [0], [""], [0]
        self.raws, self.states, self.scores = [start[1]], [start[2]], [self.start_score]
        self._ids: dict[tuple[int, str], int] = {}

    def add(self, text_id: int, word: str) -> float:
        """Make the next id: text ``text_id`` followed by ``word``; returns its LM + hotword score."""
        count = self.counts[text_id] + self.hotwords.is_word(word)
        self.previous.append(text_id)
        self.words.append(word)
        self.counts.append(count)
        hot = self.hotwords.score_count(count)
        if self.lm is None:
            self.raws.append(0.0)
            self.states.append(None)
            self.scores.append(hot)
            return hot
        score, state = self.lm.score(self.states[text_id], word, is_last_word=False)
        raw = self.raws[text_id] + score
        self.raws.append(raw)
        self.states.append(state)
        self.scores.append(raw + hot)
        return raw + hot

    def join(self, text_id: int, word: str) -> tuple[int, float]:
        """The id and score of text ``text_id`` followed by ``word``, made once (the Python loop's lookup;
        the C loop remembers the ids it asked :meth:`add` for)."""
        found = self._ids.get((text_id, word))
        if found is None:
            self.add(text_id, word)
            found = self._ids[(text_id, word)] = len(self.words) - 1
        return found, self.scores[found]

    def text(self, text_id: int) -> str:
        """The text itself: its words joined by single spaces."""
        words = []
        while text_id:
            words.append(self.words[text_id])
            text_id = self.previous[text_id]
        return " ".join(reversed(words))

    def last_words(self, text_id: int, count: int) -> tuple[str, ...]:
        """The text's last ``count`` words (fewer if it has fewer)."""
        words = []
        while text_id and len(words) < count:
            words.append(self.words[text_id])
            text_id = self.previous[text_id]
        return tuple(reversed(words))

    def finish(self, beams: list[tuple], scorer: _Scorer) -> list[tuple]:
        """The beams with their text ids replaced by the texts, whose scores and states the end-of-utterance
        step (``_score_and_prune``) then reads from ``scorer``."""
        finished = []
        for text_id, *rest in beams:
            text = self.text(text_id)
            self.remember(scorer, text_id, text)
            finished.append((text, *rest))
        return finished

    def remember(self, scorer: _Scorer, text_id: int, text: str) -> None:
        """Put the text's scores and state where the end-of-utterance step (``_score_and_prune``) reads them."""
        if self.lm is not None:
            raw = self.raws[text_id]
            scorer.text_cache[(text, False)] = (raw + self.hotwords.score_count(self.counts[text_id]), raw,
                                                self.states[text_id])


def _native_frames(log_probs: np.ndarray, chars: list[str], settings: SearchSettings,
                   scorer: _Scorer) -> list[tuple]:
    """The frame loop in C (``_beam_native.frames``): the same beams as :func:`_python_frames`.

    C numbers texts and partial words (see the C file's head): it scores partial words itself, from the
    prefix tries, and asks here (:class:`_TextTable`) for each new text's score.
    """
    symbol_ids = _symbol_ids(chars)
    kinds = [0 if char == "" else 1 if char == " " else 2 for char in chars]
    symbols = [symbol_ids[char] if char else -1 for char in chars]
    symbol_chars = list(symbol_ids)
    table = _TextTable(scorer)
    order, offsets = _candidate_order(log_probs, settings)
    lm = scorer.lm
    total_mode = 2 if lm is not None else 1 if scorer.hotwords else 0
    found = _native.frames(np.ascontiguousarray(log_probs, dtype=np.float64), order, offsets,
                           np.asarray(kinds, dtype=np.int32), np.asarray(symbols, dtype=np.int32),
                           np.asarray([ord(char) for char in symbol_chars] or [0], dtype=np.int32),
                           settings.beam_width, settings.beam_prune_logp, total_mode, table.start_score,
                           lm.unk_score_offset * 1.0 if lm is not None else 0.0, AVG_WORD_LEN,
                           *_tries(scorer, chars, symbol_ids), table.add)
    return table.finish([(text_id, word_part, None if last == -2 else "" if last == -1 else symbol_chars[last],
                          spans, part_span, score, ts, part_value)
                         for text_id, word_part, last, spans, part_span, score, ts, part_value in found], scorer)


def _python_frames(log_probs: np.ndarray, chars: list[str], settings: SearchSettings, scorer: _Scorer,
                   lm_order: int) -> list[tuple]:
    """The frame loop in Python: the beams left after the last frame."""
    # While frames are read, a beam is ``(text_id, word_part, last_char, spans, part_span, score, text_score,
    # part_score)``: its text is an id of a _TextTable (memory then grows with the number of texts, not
    # their length), and it carries its text's LM + hotword score and its partial word's score, which
    # depend only on the key, so they are looked up once per new text or partial word, not per entry.
    table = _TextTable(scorer)
    beams: list[tuple] = [(0, "", None, (), NULL_SPAN, 0.0, table.start_score, 0.0)]
    order, offsets = (array.tolist() for array in _candidate_order(log_probs, settings))
    silent = [char == "" for char in chars]
    for frame, row in enumerate(log_probs):
        candidates = order[offsets[frame]:offsets[frame + 1]]
        if len(candidates) == 1 and silent[candidates[0]]:
            kept = _silent_frame(beams, float(row[candidates[0]]), scorer, settings)
            if kept is not None:
                beams = kept
                continue
        beams = _extend(beams, row, candidates, chars, frame, scorer, table, settings, lm_order)
    return table.finish(beams, scorer)


def _extend(beams: list[tuple], row: np.ndarray, candidates: Sequence[int], chars: list[str], frame: int,
            scorer: _Scorer, table: _TextTable, settings: SearchSettings, lm_order: int) -> list[tuple]:
    """One frame: extend every beam by every candidate token, merge equal prefixes, score and prune.

    A merged entry is ``[spans, part_span, score, text_score, part_score]``, keyed by ``(text_id, word_part,
    last_char)``; merging adds probabilities and keeps the spans of the likelier side (see ``_merge_into``).
    Entries of different candidates never share a key (their last symbols differ).
    """
    merged: dict[tuple, list] = {}
    end = frame + 1
    get = merged.get
    part_score, part_cached = scorer.part_score, scorer.part_cache.get
    join, text_scores = table.join, table.scores
    for idx in candidates:
        char = chars[idx]
        p = float(row[idx])
        if char == "":  # blank (or another silent token): nothing is emitted
            for text, word_part, _, spans, part_span, score, ts, part in beams:
                key = (text, word_part, "")
                total = score + p
                old = get(key)
                if old is None:
                    merged[key] = [spans, part_span, total, ts, part]
                elif old[2] > total:
                    old[2] = _logaddexp(old[2], total)
                else:
                    old[0], old[1], old[2] = spans, part_span, _logaddexp(old[2], total)
            continue
        for text, word_part, last_char, spans, part_span, score, ts, part in beams:
            total = score + p
            new_spans = spans
            if char == last_char:  # a repeat without a blank in between extends the same symbol
                key = (text, word_part, char)
                new_part_span = (part_span[0], end)
            elif char == " ":
                if word_part:
                    joined, ts = join(text, word_part)
                    new_spans = spans + (part_span,)
                else:
                    joined, ts = text, text_scores[text]
                key = (joined, "", char)
                new_part_span, part = NULL_SPAN, 0.0
            else:
                longer = word_part + char
                key = (text, longer, char)
                new_part_span = (frame, end) if part_span[0] < 0 else (part_span[0], end)
                part = part_cached(longer)
                if part is None:
                    part = part_score(longer)
            old = get(key)
            if old is None:
                merged[key] = [new_spans, new_part_span, total, ts, part]
            else:  # _merge_into's rule on this entry layout, written out: this is the hot loop
                if total >= old[2]:
                    old[0], old[1] = new_spans, new_part_span
                old[2] = _logaddexp(old[2], total)
    items = list(merged.items())
    totals = _totals(merged.values(), scorer)
    beams = [(text, word_part, last_char, spans, part_span, score, ts, part)
             for (text, word_part, last_char), (spans, part_span, score, ts, part)
             in _best(items, totals, settings)]
    return _prune_history(beams, settings, lm_order, table.last_words)


def _silent_frame(beams: list[tuple], p: float, scorer: _Scorer, settings: SearchSettings) -> list[tuple] | None:
    """A frame whose only candidate is the blank, without the general merge-score-sort, or None.

    Every beam then becomes ``(text, word_part, '')`` with ``p`` added. When no two beams share text and
    partial word, nothing merges; when their new totals are still in order and none falls below the
    pruning floor, the general step would keep them all, in the same order. Otherwise (None) it must run.
    """
    if settings.prune_history or len({(beam[0], beam[1]) for beam in beams}) != len(beams):
        return None
    kept = [(text, word_part, "", spans, part_span, score + p, ts, part)
            for text, word_part, _, spans, part_span, score, ts, part in beams]
    totals = _totals(kept, scorer)
    if totals[-1] < totals[0] + settings.beam_prune_logp:
        return None
    if any(later > earlier for earlier, later in zip(totals, totals[1:], strict=False)):
        return None
    return kept
