"""A tiny learnable training corpus for fine-tuning tests: each letter "word" is a short tone of its own pitch.

Used by tests/test_finetune_train.py and by recipes/loader_exit_check.py (which puts this folder on sys.path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PITCH = {"A": 300.0, "B": 700.0, "C": 1500.0}
TEXTS = ["A B", "B C", "C A", "A C", "B A", "C B", "A B C", "C B A"]


def utterance(text: str, rng: np.random.Generator) -> np.ndarray:
    """16 kHz float32 audio of ``text`` (letters A-C and spaces): 0.12 s of each letter's tone, then 0.04 s of
    silence, with a little noise."""
    pieces = []
    for letter in text.replace(" ", ""):
        t = np.arange(int(0.12 * 16000)) / 16000
        pieces.append(0.5 * np.sin(2 * np.pi * PITCH[letter] * t))
        pieces.append(np.zeros(int(0.04 * 16000)))
    audio = np.concatenate(pieces)
    return (audio + 0.01 * rng.standard_normal(audio.size)).astype(np.float32)


def write_tone_corpus(folder: Path, count: int = 32, speakers: int = 4) -> Path:
    """Write ``count`` WAV files cycling through :data:`TEXTS` and a ``manifest.tsv`` (path, lower-case
    transcript, speaker ``spk<i mod speakers>``) into ``folder``; seeded, so the same every time."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    rows = ["path\ttranscript\tspeaker"]
    for i in range(count):
        text = TEXTS[i % len(TEXTS)]
        sf.write(str(folder / f"u{i}.wav"), utterance(text, rng), 16000)
        rows.append(f"u{i}.wav\t{text.lower()}\tspk{i % speakers}")
    (folder / "manifest.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder
