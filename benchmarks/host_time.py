"""The runtime's host work, which a GPU does not hide: ``Transcriber.transcribe`` on 16 x 30 s of cathy speech with
the model's answers cached (each batch runs once, then comes from memory), so only the audio checks, windows,
batching and greedy decoding are timed. Compares the word grouping with each word's probability by ``np.mean``
(before the thirteenth session) against the plain sum the runtime uses now, interleaved in one process.
A script, not a test:

    python benchmarks/host_time.py [--data ../shared/data] [--rounds 15]
"""

from __future__ import annotations

import argparse
import glob
import statistics
import time

import numpy as np
import soundfile as sf

import w2v2_onnx.greedy as greedy
import w2v2_onnx.session as session
import w2v2_onnx.transcriber as transcriber_module
from w2v2_onnx import Transcriber
from w2v2_onnx.results import Decoded, Word


def tokens_to_words_by_mean(token_ids, first_frame, end_frame, token_probs, vocab, frame_duration) -> Decoded:
    """``greedy.tokens_to_words`` as it was: each word's probability by ``np.mean``."""
    words: list[Word] = []
    chars: list[str] = []
    probs: list[float] = []
    start = end = 0
    for token_id, first, last, prob in zip(token_ids.tolist(), first_frame.tolist(), end_frame.tolist(),
                                           token_probs.tolist(), strict=True):
        piece = vocab.piece(token_id)
        if piece == " ":
            if "".join(chars).strip():
                words.append(Word(round(start * frame_duration, 3), round(end * frame_duration, 3),
                                  "".join(chars).strip(), round(float(np.mean(probs)), 4)))
            chars.clear()
            probs.clear()
            continue
        if not chars:
            start = first
        chars.append(piece)
        probs.append(prob)
        end = last
    if "".join(chars).strip():
        words.append(Word(round(start * frame_duration, 3), round(end * frame_duration, 3), "".join(chars).strip(),
                          round(float(np.mean(probs)), 4)))
    return Decoded(" ".join(w.word for w in words), tuple(words))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    files = sorted(glob.glob(f"{args.data}/cathy/*.flac"))[:200]
    audio = np.concatenate([sf.read(f, dtype="float32")[0] for f in files])
    clips = [audio[i * 480000:(i + 1) * 480000] for i in range(16)]
    transcriber = Transcriber(device="cpu")
    real, cache = session.OnnxModel.run, {}

    def cached(self, batch, lengths):
        key = (batch.shape, tuple(lengths))
        if key not in cache:
            cache[key] = real(self, batch, lengths)
        return cache[key]

    session.OnnxModel.run = cached
    variants = {"np.mean (before)": tokens_to_words_by_mean, "plain sum (now)": greedy.tokens_to_words}

    def run(variant: str) -> list:
        transcriber_module.tokens_to_words = variants[variant]
        return transcriber.transcribe(clips, decoder="greedy", chunk_length=31.0)

    results = {name: run(name) for name in variants}
    before, now = results.values()
    assert [r.text for r in before] == [r.text for r in now]
    diff = max(abs(a.probability - b.probability) for ra, rb in zip(before, now, strict=True)
               for a, b in zip(ra.words, rb.words, strict=True))
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name in variants:
            start = time.perf_counter()
            run(name)
            times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values) * 1000:.1f} ms of host time for 16 x 30 s")
    print(f"same text; largest word probability difference {diff}; {sum(len(r.words) for r in now)} words")


if __name__ == "__main__":
    main()
