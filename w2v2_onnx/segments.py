"""Cutting an input's CTC frames between words: at pauses, and so that a search over them needs bounded memory.

Beam search keeps every text it ever made (for merging and word timings), so its memory grows with the
input: about 14 MB per audio minute with the bundled model and its LM, 1 GB for an hour. Long inputs are
therefore decoded in segments of at most ``max_frames`` frames. Each cut is the middle of the longest gap
between words in the second half of the span still allowed: a run of frames whose best token is the CTC
blank or the word delimiter, counted only if it holds a delimiter frame or lasts ``pause_frames`` (a pause),
because short blank runs also fall inside words. Inputs no longer than ``max_frames`` are one segment,
decoded exactly as before.

:func:`split_at_pauses` cuts at every long pause instead (the middle of each run of blank/delimiter frames of at
least a given length, inside the input): beam search restarts there, and so does its language model's sentence
context, since a speaker's long pause mostly ends a sentence.
"""

from __future__ import annotations

import numpy as np

PAUSE_FRAMES = 12  # 0.24 s of 20 ms frames: a blank run this long is taken for a pause even without a delimiter


def pause_segments(log_probs: np.ndarray, blank_id: int, max_frames: int, delimiter_id: int | None = None,
                   pause_frames: int = PAUSE_FRAMES) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` frame ranges covering the input in order, each at most ``max_frames`` long.

    With no gap between words in the second half of a span (continuous speech, rare), the longest blank run
    there is cut, and with no blank frame at all the span is cut at its end.

    Raises:
        ValueError: ``max_frames`` below 2.
    """
    frames = log_probs.shape[0]
    if max_frames < 2:
        raise ValueError(f"max_frames must be at least 2, got {max_frames}")
    if frames <= max_frames:
        return [(0, frames)]
    best = np.asarray(log_probs).argmax(axis=1)
    delimiter = best == delimiter_id if delimiter_id is not None else np.zeros(frames, dtype=bool)
    gap = (best == blank_id) | delimiter
    edges = np.flatnonzero(np.diff(np.concatenate(([0], gap.astype(np.int8), [0]))))
    starts, ends = edges[0::2], edges[1::2]  # runs of gap frames, [start, end)
    middles, lengths = (starts + ends) // 2, ends - starts
    has_delimiter = np.add.reduceat(delimiter.astype(np.int64), starts) > 0 if starts.size else starts.astype(bool)
    between_words = has_delimiter | (lengths >= pause_frames)
    bounds: list[tuple[int, int]] = []
    start = 0
    while frames - start > max_frames:
        low, high = start + max_frames // 2, start + max_frames
        inside = (middles > low) & (middles <= high)
        candidates = np.flatnonzero(inside & between_words)
        if not candidates.size:
            candidates = np.flatnonzero(inside)
        cut = int(middles[candidates[np.argmax(lengths[candidates])]]) if candidates.size else high
        bounds.append((start, cut))
        start = cut
    bounds.append((start, frames))
    return bounds


def pause_mask(log_probs: np.ndarray, blank_id: int, delimiter_id: int | None) -> np.ndarray:
    """Per frame, whether its best token is the blank or the word delimiter: no speech is being spelled."""
    best = np.asarray(log_probs).argmax(axis=1)
    return (best == blank_id) | (best == delimiter_id) if delimiter_id is not None else best == blank_id


def split_at_pauses(log_probs: np.ndarray, blank_id: int, delimiter_id: int | None,
                    min_pause_frames: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` frame ranges covering the input in order, cut in the middle of every run of at
    least ``min_pause_frames`` frames whose best token is the blank or the word delimiter; runs that touch the
    input's start or end are not cut.

    Raises:
        ValueError: ``min_pause_frames`` below 1.
    """
    if min_pause_frames < 1:
        raise ValueError(f"min_pause_frames must be at least 1, got {min_pause_frames}")
    frames = log_probs.shape[0]
    gap = pause_mask(log_probs, blank_id, delimiter_id)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], gap.astype(np.int8), [0]))))
    starts, ends = edges[0::2], edges[1::2]
    keep = (ends - starts >= min_pause_frames) & (starts > 0) & (ends < frames)
    cuts = ((starts[keep] + ends[keep]) // 2).tolist()
    return list(zip([0, *cuts], [*cuts, frames], strict=True))
