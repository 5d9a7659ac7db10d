"""Building a cached synthetic speech corpus from ``sentences.txt`` (training data only).

``python -m w2v2_onnx_finetune.synth --out /work/cache/synth/v1 --train 2000 --eval 100`` writes
``train/manifest.tsv`` and ``eval/manifest.tsv`` (FLAC + transcript + voice + augmentation). Eval
sentences are never used for training. Everything is seeded; existing files are reused, so a rerun
with the same settings is a cache hit.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from w2v2_onnx.errors import DataError
from w2v2_onnx_finetune.text import normalize_transcript

logger = logging.getLogger(__name__)

DIGITS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
DEFAULT_SENTENCES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "text" / "sentences.txt"


@dataclass(frozen=True)
class SynthPlan:
    """Which texts are spoken, split into disjoint train and eval lists."""

    train: list[str]
    eval: list[str]


def plan_texts(sentences: Sequence[str], *, train: int, eval_count: int, seed: int, max_words: int = 14,
               digit_fraction: float = 0.1) -> SynthPlan:
    """Choose eval and train texts: seeded, disjoint, at most ``max_words`` words.

    A ``digit_fraction`` of the train texts are random digit strings (one to seven digits), for
    digit recognition; eval holds sentences only.

    Raises:
        DataError: not enough sentences of the allowed length.
    """
    rng = random.Random(seed)
    pool = sorted({normalize_transcript(s) for s in sentences})
    pool = [s for s in pool if s and len(s.split()) <= max_words]
    rng.shuffle(pool)
    sentence_count = train - int(round(train * digit_fraction))
    if len(pool) < eval_count + sentence_count:
        raise DataError(f"only {len(pool)} sentences of at most {max_words} words; "
                        f"{eval_count + sentence_count} needed")
    eval_texts = pool[:eval_count]
    train_texts = pool[eval_count:eval_count + sentence_count]
    for _ in range(train - sentence_count):
        train_texts.append(" ".join(rng.choice(DIGITS) for _ in range(rng.randint(1, 7))))
    rng.shuffle(train_texts)
    return SynthPlan(train_texts, eval_texts)


def _render(item: tuple[int, str, str, Path, int, bool]) -> dict[str, str] | None:
    import soundfile as sf

    from w2v2_onnx_finetune.augment import augment
    from w2v2_onnx_finetune.tts import available_voices, random_voice, speak

    index, text, part, folder, seed, do_augment = item
    digest = hashlib.sha1(f"{seed}|{part}|{index}|{text}".encode()).hexdigest()[:10]
    rng = np.random.default_rng(int(digest, 16))
    voice = random_voice(rng, available_voices())
    name = f"{part}_{index:06d}_{digest}.flac"
    target = folder / name
    steps: list[str] = []
    if not target.is_file():
        try:
            audio = speak(text, voice)
        except RuntimeError as exc:
            logger.warning("synthesis failed, item %d skipped: %s", index, exc)
            return None
        if do_augment:
            audio, steps = augment(audio, rng)
        sf.write(str(target), audio, 16000, subtype="PCM_16")
        (folder / (name + ".json")).write_text(json.dumps({"voice": voice.label(), "augment": steps}))
    else:
        meta = json.loads((folder / (name + ".json")).read_text())
        steps = meta["augment"]
    return {"path": name, "transcript": text, "voice": voice.label(), "augment": "+".join(steps)}


def build_corpus(out: str | Path, sentences_path: str | Path, *, train: int, eval_count: int, seed: int = 0,
                 jobs: int = 2, augment_eval: bool = False, max_words: int = 14,
                 digit_fraction: float = 0.1) -> dict[str, Path]:
    """Synthesise (or reuse) the corpus; returns ``{"train": manifest, "eval": manifest}``.

    Args:
        out: corpus folder (outside the repository, e.g. ``/work/cache/synth/v1``).
        sentences_path: one normalised sentence per line.
        train, eval_count: numbers of train and eval utterances.
        seed: decides texts, voices, speeds, pitches and augmentation.
        jobs: TTS processes run in parallel.
        augment_eval: augment eval audio too (default: clean eval speech).
        max_words, digit_fraction: see :func:`plan_texts`.
    """
    sentences = Path(sentences_path).read_text(encoding="utf-8").splitlines()
    plan = plan_texts(sentences, train=train, eval_count=eval_count, seed=seed, max_words=max_words,
                      digit_fraction=digit_fraction)
    manifests = {}
    for part, texts, do_augment in (("train", plan.train, True), ("eval", plan.eval, augment_eval)):
        folder = Path(out) / part
        folder.mkdir(parents=True, exist_ok=True)
        items = [(i, t, part, folder, seed, do_augment) for i, t in enumerate(texts)]
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            rows = [r for r in pool.map(_render, items) if r is not None]
        manifest = folder / "manifest.tsv"
        with manifest.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, ["path", "transcript", "voice", "augment"], delimiter="\t")
            writer.writeheader()
            writer.writerows(rows)
        logger.info("%s: %d utterances (%d failed)", manifest, len(rows), len(texts) - len(rows))
        manifests[part] = manifest
    return manifests


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the synthetic corpus builder."""
    parser = argparse.ArgumentParser(prog="python -m w2v2_onnx_finetune.synth",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="corpus folder (outside the repository)")
    parser.add_argument("--sentences", type=Path, default=DEFAULT_SENTENCES)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--eval", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-words", type=int, default=14)
    parser.add_argument("--digit-fraction", type=float, default=0.1)
    parser.add_argument("--augment-eval", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    manifests = build_corpus(args.out, args.sentences, train=args.train, eval_count=args.eval, seed=args.seed,
                             jobs=args.jobs, augment_eval=args.augment_eval, max_words=args.max_words,
                             digit_fraction=args.digit_fraction)
    print(json.dumps({k: str(v) for k, v in manifests.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
