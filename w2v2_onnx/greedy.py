"""Greedy (best path) CTC decoding, vectorised in numpy, with word timestamps and probabilities."""

from __future__ import annotations

import numpy as np

from w2v2_onnx.errors import DecoderError
from w2v2_onnx.results import Decoded, Word
from w2v2_onnx.vocabulary import Vocabulary


def best_path(log_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the most likely token and its probability for every frame of a ``[frames, vocab]`` matrix."""
    if log_probs.ndim != 2:
        raise DecoderError(f"log_probs must be 2-D [frames, vocab], got shape {log_probs.shape}")
    ids = np.argmax(log_probs, axis=1)
    probs = np.exp(np.take_along_axis(log_probs, ids[:, None], axis=1)[:, 0].astype(np.float64))
    return ids, probs


def collapse(ids: np.ndarray, probs: np.ndarray, vocab: Vocabulary) -> tuple[np.ndarray, ...]:
    """Collapse per-frame best tokens into CTC tokens.

    Returns ``(token_ids, first_frame, end_frame, probability)``, one entry per emitted token, where
    ``end_frame`` is exclusive and ``probability`` is the highest frame probability within the token's run.
    Blanks and other special tokens are dropped.
    """
    if ids.size == 0:
        empty_i = np.zeros(0, dtype=np.int64)
        return empty_i, empty_i, empty_i, np.zeros(0)
    change = np.empty(ids.size, dtype=bool)
    change[0] = True
    np.not_equal(ids[1:], ids[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], ids.size)
    run_ids = ids[starts]
    run_probs = np.maximum.reduceat(probs, starts)
    keep = ~np.isin(run_ids, np.fromiter(vocab.special_ids, dtype=np.int64))
    return run_ids[keep], starts[keep], ends[keep], run_probs[keep]


def tokens_to_words(
    token_ids: np.ndarray,
    first_frame: np.ndarray,
    end_frame: np.ndarray,
    token_probs: np.ndarray,
    vocab: Vocabulary,
    frame_duration: float,
) -> Decoded:
    """Group collapsed tokens into words at word delimiters.

    A word starts at its first token's first frame and ends where its last token's last frame ends; its
    probability is the mean of its tokens' probabilities.
    """
    words: list[Word] = []
    chars: list[str] = []
    start = end = 0
    probs: list[float] = []

    def flush() -> None:
        text = "".join(chars).strip()
        if text:
            # a plain sum: np.mean's dispatch cost more than the rest of the word (16 x 30 s: 1,168 words)
            words.append(Word(round(start * frame_duration, 3), round(end * frame_duration, 3), text,
                              round(sum(probs) / len(probs), 4)))
        chars.clear()
        probs.clear()

    for token_id, first, last, prob in zip(token_ids.tolist(), first_frame.tolist(), end_frame.tolist(),
                                           token_probs.tolist(), strict=True):
        piece = vocab.piece(token_id)
        if piece == " ":
            flush()
            continue
        if not chars:
            start = first
        chars.append(piece)
        probs.append(prob)
        end = last
    flush()
    return Decoded(" ".join(w.word for w in words), tuple(words))


def checked_log_probs(log_probs: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """``log_probs`` as an array, checked to be float ``[frames, len(vocab)]`` without NaN.

    Raises:
        DecoderError: naming the shape and type found, or the NaN.
    """
    log_probs = np.asarray(log_probs)
    if log_probs.ndim != 2 or log_probs.shape[1] != len(vocab) or not np.issubdtype(log_probs.dtype, np.floating):
        raise DecoderError(f"log_probs must be a float array of shape [frames, {len(vocab)}], got "
                           f"{log_probs.dtype} {log_probs.shape}")
    if np.isnan(log_probs).any():
        raise DecoderError("log_probs contains NaN")
    return log_probs


def greedy_decode(log_probs: np.ndarray, vocab: Vocabulary, frame_duration: float) -> Decoded:
    """Decode one utterance's ``[frames, vocab]`` CTC log-probabilities by best path.

    Args:
        log_probs: log-probabilities (or logits: only their order per frame matters for the path, but the
            word probabilities assume log-probabilities) for the valid frames of one input.
        vocab: the model's vocabulary.
        frame_duration: seconds between consecutive frames (``frame_step / sample_rate``).

    Returns:
        The transcript and its words with times in seconds from frame 0.

    Raises:
        DecoderError: if ``log_probs`` is not 2-D or its width is not the vocabulary size.
    """
    log_probs = np.asarray(log_probs)
    if log_probs.ndim != 2 or log_probs.shape[1] != len(vocab):
        raise DecoderError(f"log_probs must have shape [frames, {len(vocab)}], got {log_probs.shape}")
    ids, probs = best_path(log_probs)
    return tokens_to_words(*collapse(ids, probs, vocab), vocab, frame_duration)
