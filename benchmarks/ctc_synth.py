"""Realistic synthetic CTC log-probabilities: peaky posteriors spelling real sentences, with confusions.

Every character of the text gets 1-3 frames of high probability followed by 0-3 blank frames, as a
wav2vec2 CTC head produces at 20 ms per frame; a share of the character frames are "confused": a random
other character (or blank) gets most of the probability, so greedy decoding makes spelling errors that a
language model can fix. Used by ``decoder_speed.py``, ``pyctcdecode_reference.py`` and the tests.
"""

from __future__ import annotations

import numpy as np

# wav2vec2-base-960h's 32-token vocabulary
VOCAB_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L",
                "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]


def synth_log_probs(text: str, rng: np.random.Generator, *, confusion: float = 0.1,
                    peak: float = 9.0, noise: float = 1.5, frames: int | None = None) -> np.ndarray:
    """Return float32 ``[frames, 32]`` log-probabilities for ``text`` (see :func:`synth_with_alignment`)."""
    return synth_with_alignment(text, rng, confusion=confusion, peak=peak, noise=noise, frames=frames)[0]


def synth_with_alignment(text: str, rng: np.random.Generator, *, confusion: float = 0.1, peak: float = 9.0,
                         noise: float = 1.5, frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return float32 ``[frames, 32]`` log-probabilities for ``text`` and the true token of every frame.

    Args:
        text: the spoken text.
        rng: random generator (seeded by the caller).
        confusion: probability that a character's frames favour another token.
        peak: logit margin of the intended token; noise: std of the Gaussian logit noise.
        frames: pad with blank frames (or cut) to exactly this many frames.
    """
    index = {t: i for i, t in enumerate(VOCAB_TOKENS)}
    choices = [0] + list(range(4, len(VOCAB_TOKENS)))
    targets: list[int] = [0] * int(rng.integers(2, 6))
    rivals: list[int] = list(targets)  # the token a confused character's frames favour instead (0: none)
    for ch in " ".join(text.split()):
        tid = index["|"] if ch == " " else index[ch]
        run = int(rng.integers(1, 4))
        rival = int(rng.choice(choices)) if rng.random() < confusion else 0
        if rival == tid:
            rival = 0
        targets += [tid] * run
        rivals += [rival] * run
        gap = int(rng.integers(0, 4))
        targets += [0] * gap
        rivals += [0] * gap
    tail = int(rng.integers(2, 6))
    targets += [0] * tail
    rivals += [0] * tail
    if frames is not None:
        targets = (targets + [0] * frames)[:frames]
        rivals = (rivals + [0] * frames)[:frames]
    n = len(targets)
    logits = rng.normal(0.0, noise, size=(n, len(VOCAB_TOKENS))).astype(np.float32)
    logits[:, 1:4] -= 12.0  # <s>, </s>, <unk> never fire
    tgt = np.asarray(targets)
    riv = np.asarray(rivals)
    boost = peak + rng.normal(0.0, 1.0, size=n)
    logits[np.arange(n), tgt] += boost.astype(np.float32)
    confused = np.flatnonzero(riv != 0)
    # the rival wins by a small random margin, so the true token stays second best
    margin = rng.normal(0.7, 1.0, size=confused.size)
    logits[confused, riv[confused]] += (boost[confused] + margin).astype(np.float32)
    logits -= logits.max(axis=1, keepdims=True)
    return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32), tgt


def true_word_spans(targets: np.ndarray) -> list[tuple[int, int]]:
    """``(first, end)`` frames of each word in a true alignment (delimiter '|' is token 4, blank 0)."""
    spans: list[tuple[int, int]] = []
    start = end = -1
    for frame, token in enumerate(np.asarray(targets).tolist()):
        if token == 4 and start >= 0:
            spans.append((start, end))
            start = -1
        elif token not in (0, 4):
            start = frame if start < 0 else start
            end = frame + 1
    if start >= 0:
        spans.append((start, end))
    return spans


def sentences_for_frames(sentences: list[str], rng: np.random.Generator, frames: int) -> str:
    """Join random sentences until the text needs about ``frames`` frames (about 3.5 frames a character)."""
    words: list[str] = []
    while len(" ".join(words)) * 3.5 < frames * 0.95:
        words += sentences[int(rng.integers(len(sentences)))].split()
    text = " ".join(words)
    return text[: int(frames / 3.5)].rsplit(" ", 1)[0]
