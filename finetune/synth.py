"""Building a cached synthetic speech corpus from ``sentences.txt`` (training data only).

``python -m w2v2_onnx_finetune.synth --out /work/cache/synth/v1 --train 2000 --eval 100`` writes
``train/manifest.tsv`` and ``eval/manifest.tsv`` (FLAC + transcript + voice + augmentation). Eval
sentences are never used for training. Everything is seeded; existing files are reused, so a rerun
with the same settings is a cache hit. ``--text-offset N`` makes a second pack with new training texts
and the same eval sentences (the seeded order, N training sentences further on), so a model trained on
one pack and then another is still judged on TTS sentences it never heard.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import random
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from w2v2_onnx.errors import DataError, InvalidOptionError, W2V2OnnxError
from w2v2_onnx_finetune.text import normalize_transcript

logger = logging.getLogger(__name__)

DIGITS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
DEFAULT_SENTENCES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "text" / "sentences.txt"


@dataclass(frozen=True)
class SynthPlan:
    """Which texts are spoken, split into disjoint train and eval lists."""

    train: list[str]
    eval: list[str]


def _require_whole_number(option: str, value: object, least: int) -> None:
    """Refuse ``value`` for ``--option`` unless it is an integer (not a bool) of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidOptionError(f"--{option} must be an integer >= {least}, got {value!r}")


def plan_texts(sentences: Sequence[str], *, train: int, eval_count: int, seed: int, max_words: int = 14,
               digit_fraction: float = 0.1, text_offset: int = 0) -> SynthPlan:
    """Choose eval and train texts: seeded, disjoint, at most ``max_words`` words.

    A ``digit_fraction`` of the train texts are random digit strings (one to seven digits), for
    digit recognition; eval holds sentences only. ``text_offset`` skips that many training sentences
    of the seeded order (and draws other digit strings): a pack with ``text_offset`` equal to an
    earlier pack's sentence count has the same eval sentences and training texts it did not have.

    Raises:
        DataError: not enough sentences of the allowed length.
        InvalidOptionError: a negative ``text_offset`` (it would put eval sentences in training).
    """
    _require_whole_number("text-offset", text_offset, 0)
    rng = random.Random(seed)
    pool = sorted({normalize_transcript(s) for s in sentences})
    pool = [s for s in pool if s and len(s.split()) <= max_words]
    rng.shuffle(pool)
    sentence_count = train - int(round(train * digit_fraction))
    if len(pool) < eval_count + text_offset + sentence_count:
        raise DataError(f"only {len(pool)} sentences of at most {max_words} words; "
                        f"{eval_count + text_offset + sentence_count} needed")
    eval_texts = pool[:eval_count]
    train_texts = pool[eval_count + text_offset:eval_count + text_offset + sentence_count]
    if text_offset:
        rng = random.Random(f"{seed}|{text_offset}")
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
    sidecar = folder / (name + ".json")
    cached = _cached_steps(target, sidecar)
    if cached is not None:
        steps = cached
    else:
        try:
            audio = speak(text, voice)
        except RuntimeError as exc:
            logger.warning("synthesis failed, item %d skipped: %s", index, exc)
            return None
        steps = []
        if do_augment:
            audio, steps = augment(audio, rng)
        # the sidecar first, then the audio, each renamed into place: a FLAC present means both are whole
        partial = folder / f".{name}.partial"
        partial.with_suffix(".json").write_text(json.dumps({"voice": voice.label(), "augment": steps}))
        partial.with_suffix(".json").replace(sidecar)
        sf.write(str(partial), audio, 16000, subtype="PCM_16", format="FLAC")
        partial.replace(target)
    return {"path": name, "transcript": text, "voice": voice.label(), "augment": "+".join(steps)}


def _cached_steps(audio: Path, sidecar: Path) -> list[str] | None:
    """The augmentation steps of a cached item whose audio decodes whole and has its sidecar, else None."""
    import soundfile as sf

    if not (audio.is_file() and sidecar.is_file()):
        return None
    try:
        with sf.SoundFile(str(audio)) as f:
            whole = f.frames > 0 and len(f.read(dtype="int16")) == f.frames
        steps = json.loads(sidecar.read_text())["augment"]
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, KeyError) as exc:
        logger.warning("cached item %s is broken (%s): synthesising it again", audio.name, exc)
        return None
    if not whole:
        logger.warning("cached item %s is truncated: synthesising it again", audio.name)
        return None
    return list(steps)


def build_corpus(out: str | Path, sentences_path: str | Path, *, train: int, eval_count: int, seed: int = 0,
                 jobs: int = 2, augment_eval: bool = False, max_words: int = 14,
                 digit_fraction: float = 0.1, text_offset: int = 0) -> dict[str, Path]:
    """Synthesise (or reuse) the corpus; returns ``{"train": manifest, "eval": manifest}``.

    Args:
        out: corpus folder (outside the repository, e.g. ``/work/cache/synth/v1``).
        sentences_path: one normalised sentence per line.
        train, eval_count: numbers of train and eval utterances.
        seed: decides texts, voices, speeds, pitches and augmentation.
        jobs: TTS processes run in parallel.
        augment_eval: augment eval audio too (default: clean eval speech).
        max_words, digit_fraction, text_offset: see :func:`plan_texts`.
    """
    for name, value, least in (("train", train, 0), ("eval", eval_count, 0), ("max-words", max_words, 1)):
        _require_whole_number(name, value, least)
    if not isinstance(digit_fraction, int | float) or not 0 <= digit_fraction <= 1:
        raise InvalidOptionError(f"--digit-fraction must be from 0 to 1, got {digit_fraction!r}")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InvalidOptionError(f"--jobs must be a positive integer, got {jobs!r}")
    try:
        sentences = Path(sentences_path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{sentences_path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise DataError(f"cannot read the sentences file {sentences_path}: {exc.strerror or exc}") from exc
    from w2v2_onnx_finetune.tts import available_voices

    if (train or eval_count) and not available_voices():
        raise DataError("no TTS engine on PATH: synthetic speech needs espeak-ng, flite or festival "
                        "(Debian: apt install espeak-ng flite festival)")
    plan = plan_texts(sentences, train=train, eval_count=eval_count, seed=seed, max_words=max_words,
                      digit_fraction=digit_fraction, text_offset=text_offset)
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
        if texts and not rows:
            raise DataError(f"every synthesis of the {part} part failed ({len(texts)} items; see the warnings): "
                            f"check the TTS engines")
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
    parser.add_argument("--text-offset", type=int, default=0,
                        help="skip this many training sentences of the seeded order (new texts, same eval set)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        manifests = build_corpus(args.out, args.sentences, train=args.train, eval_count=args.eval, seed=args.seed,
                                 jobs=args.jobs, augment_eval=args.augment_eval, max_words=args.max_words,
                                 digit_fraction=args.digit_fraction, text_offset=args.text_offset)
    except (W2V2OnnxError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: str(v) for k, v in manifests.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
