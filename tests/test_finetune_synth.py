"""Synthetic speech: text plan, seeded augmentation, cached corpus building, silence trimming."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from w2v2_onnx.errors import DataError, InvalidOptionError
from w2v2_onnx_finetune import tts
from w2v2_onnx_finetune.audio import trim_silence
from w2v2_onnx_finetune.augment import AugmentSettings, augment
from w2v2_onnx_finetune.manifest import read_manifest
from w2v2_onnx_finetune.synth import DIGITS, build_corpus, plan_texts

SENTENCES = [f"sentence number {w} has words" for w in
             ("one two three four five six seven eight nine ten eleven twelve".split())] * 2 + [
    "this one is far too long to be chosen because it has more than twelve words in it today"]


def test_plan_is_seeded_disjoint_and_bounded() -> None:
    plan = plan_texts(SENTENCES, train=10, eval_count=2, seed=1, max_words=12, digit_fraction=0.3)
    again = plan_texts(SENTENCES, train=10, eval_count=2, seed=1, max_words=12, digit_fraction=0.3)
    assert plan == again
    assert len(plan.train) == 10 and len(plan.eval) == 2
    assert not set(plan.eval) & set(plan.train)
    digit_texts = [t for t in plan.train if set(t.split()) <= set(DIGITS)]
    assert len(digit_texts) == 3
    assert all(len(t.split()) <= 12 for t in plan.train + plan.eval)
    assert all(t == t.upper() for t in plan.train)
    with pytest.raises(DataError, match="sentences"):
        plan_texts(SENTENCES, train=50, eval_count=5, seed=1)


def test_text_offset_gives_new_training_texts_and_the_same_eval_set() -> None:
    sentences = [f"sentence {a} {b} of the pool" for a in "abcdefghij" for b in "klmnop"]
    first = plan_texts(sentences, train=20, eval_count=5, seed=3, max_words=12, digit_fraction=0.25)
    second = plan_texts(sentences, train=20, eval_count=5, seed=3, max_words=12, digit_fraction=0.25,
                        text_offset=15)
    assert second.eval == first.eval
    first_sentences = {t for t in first.train if not set(t.split()) <= set(DIGITS)}
    second_sentences = {t for t in second.train if not set(t.split()) <= set(DIGITS)}
    assert len(first_sentences) == len(second_sentences) == 15
    assert not first_sentences & second_sentences and not second_sentences & set(first.eval)
    first_digits = sorted(t for t in first.train if set(t.split()) <= set(DIGITS))
    second_digits = sorted(t for t in second.train if set(t.split()) <= set(DIGITS))
    assert len(second_digits) == 5 and second_digits != first_digits
    with pytest.raises(DataError, match="61 needed"):
        plan_texts(sentences, train=20, eval_count=5, seed=3, max_words=12, digit_fraction=0.25, text_offset=41)
    with pytest.raises(InvalidOptionError, match="--text-offset must be an integer >= 0"):
        plan_texts(sentences, train=20, eval_count=5, seed=3, max_words=12, text_offset=-2)


def test_augment_is_seeded_and_does_what_it_says() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    audio = (0.5 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)  # 6 kHz: above the 8 kHz band limit
    a1, steps1 = augment(audio, np.random.default_rng(5))
    a2, steps2 = augment(audio, np.random.default_rng(5))
    assert steps1 == steps2 and np.array_equal(a1, a2)
    only_band = AugmentSettings(speed_prob=0, band_limit_prob=1, noise_prob=0, gain_db=(0, 0))
    limited, steps = augment(audio, rng, only_band)
    assert steps[0] == "8khz" and np.sqrt(np.mean(limited**2)) < 0.01
    only_speed = AugmentSettings(speed_prob=1, speed_range=(1.25, 1.25), band_limit_prob=0, noise_prob=0,
                                 gain_db=(0, 0))
    fast, _ = augment(audio, rng, only_speed)
    assert abs(len(fast) - 16000 / 1.25) < 5
    loud, _ = augment(audio * 1.9, rng, AugmentSettings(gain_db=(6, 6)))
    assert np.max(np.abs(loud)) <= 0.99 + 1e-6


def test_build_corpus_writes_manifests_and_is_cached(tmp_path, monkeypatch) -> None:
    calls: list[str] = []

    def fake_speak(text: str, voice: tts.Voice, timeout: float = 60.0) -> np.ndarray:
        calls.append(text)
        return (0.1 * np.sin(np.arange(4000 + 100 * len(text)) / 7)).astype(np.float32)

    monkeypatch.setattr(tts, "speak", fake_speak)
    monkeypatch.setattr(tts, "available_voices", lambda: [("flite", "kal16", 1.0)])
    text_file = tmp_path / "sentences.txt"
    text_file.write_text("\n".join(SENTENCES) + "\n")
    manifests = build_corpus(tmp_path / "c", text_file, train=6, eval_count=2, seed=0, jobs=2)
    train = read_manifest(manifests["train"])
    evaluation = read_manifest(manifests["eval"])
    assert len(train.utterances) == 6 and len(evaluation.utterances) == 2 and not train.bad_rows
    assert not {u.text for u in train.utterances} & {u.text for u in evaluation.utterances}
    assert len(calls) == 8
    first = sf.read(str(train.utterances[0].audio_path))[0]
    build_corpus(tmp_path / "c", text_file, train=6, eval_count=2, seed=0, jobs=2)
    assert len(calls) == 8  # every file reused from the cache
    assert np.array_equal(sf.read(str(train.utterances[0].audio_path))[0], first)
    # a truncated file, and one whose sidecar is gone (a build killed between the two), are made again
    broken = train.utterances[1].audio_path
    broken.write_bytes(broken.read_bytes()[:300])
    Path(str(train.utterances[2].audio_path) + ".json").unlink()
    build_corpus(tmp_path / "c", text_file, train=6, eval_count=2, seed=0, jobs=2)
    assert len(calls) == 10
    assert len(sf.read(str(broken))[0]) > 1000


def test_build_corpus_refuses_bad_settings_and_reports_total_failure(tmp_path, monkeypatch) -> None:
    from w2v2_onnx.errors import DataError, InvalidOptionError

    text_file = tmp_path / "sentences.txt"
    text_file.write_text("\n".join(SENTENCES) + "\n")
    monkeypatch.setattr(tts, "available_voices", lambda: [("flite", "kal16", 1.0)])
    for settings, match in [({"train": -3}, "--train must be an integer >= 0"),
                            ({"eval_count": -2}, "--eval must be an integer >= 0"),
                            ({"digit_fraction": 3.0}, "--digit-fraction must be from 0 to 1"),
                            ({"digit_fraction": float("nan")}, "--digit-fraction"),
                            ({"jobs": 0}, "--jobs must be a positive integer"),
                            ({"text_offset": -1}, "--text-offset must be an integer >= 0")]:
        with pytest.raises(InvalidOptionError, match=match):
            build_corpus(tmp_path / "c", text_file, **{"train": 2, "eval_count": 1, **settings})
    with pytest.raises(DataError, match="cannot read the sentences file"):
        build_corpus(tmp_path / "c", tmp_path / "missing.txt", train=2, eval_count=1)

    def failing_speak(text: str, voice: tts.Voice, timeout: float = 60.0) -> np.ndarray:
        raise RuntimeError("engine broke")

    monkeypatch.setattr(tts, "speak", failing_speak)
    with pytest.raises(DataError, match="every synthesis of the train part failed"):
        build_corpus(tmp_path / "c", text_file, train=2, eval_count=1)
    monkeypatch.setattr(tts, "available_voices", lambda: [])
    with pytest.raises(DataError, match="no TTS engine on PATH"):
        build_corpus(tmp_path / "c", text_file, train=2, eval_count=1)


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed (apt-get install flite)")
def test_flite_voice_speaks_16k() -> None:
    audio = tts.speak("ONE TWO", tts.Voice("flite", "kal16"))
    assert audio.dtype == np.float32 and 0.3 < len(audio) / 16000 < 3 and np.abs(audio).max() > 0.05


def test_trim_silence_keeps_margin() -> None:
    speech = 0.5 * np.sin(np.arange(16000) / 3).astype(np.float32)
    audio = np.concatenate([np.zeros(32000, np.float32), speech, np.zeros(16000, np.float32)])
    trimmed = trim_silence(audio, margin_s=0.2)
    assert abs(len(trimmed) - (16000 + 2 * 3200)) <= 640
    assert np.array_equal(trim_silence(np.zeros(8000, np.float32)), np.zeros(8000, np.float32))
