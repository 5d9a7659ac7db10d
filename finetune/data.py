"""Turning data sources into in-memory training and evaluation examples."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from w2v2_onnx.checks import path_exists
from w2v2_onnx.errors import AudioDecodeError, DataError, shorten_path
from w2v2_onnx_finetune.audio import load_audio, to_mono_16k, trim_silence
from w2v2_onnx_finetune.manifest import MANIFEST_NAMES, MANIFEST_SUFFIXES, BadRow, Manifest, Utterance, read_manifest
from w2v2_onnx_finetune.sources import SourceSpec
from w2v2_onnx_finetune.splits import split_by_group
from w2v2_onnx_finetune.text import normalize_transcript

logger = logging.getLogger(__name__)

#: Rows shorter than this are bad rows: the model would give fewer frames than a word has characters
#: (wav2vec2 makes one frame per 20 ms after a 25 ms receptive field), and CTC's loss fails below one frame.
MIN_SECONDS = 0.1


@dataclass(frozen=True)
class Example:
    """One decoded utterance: 16 kHz mono float32 audio and its normalised transcript."""

    audio: np.ndarray
    text: str
    ident: str


@dataclass
class SourceData:
    """The examples one source contributes, and what was skipped."""

    spec: SourceSpec
    train: list[Example] = field(default_factory=list)
    eval: list[Example] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """Counts and durations for logs and the run's ``data.json``."""
        def seconds(items: list[Example]) -> float:
            return round(sum(len(e.audio) for e in items) / 16000, 1)

        return {"name": self.spec.name, "location": self.spec.location, "train": len(self.train),
                "train_s": seconds(self.train), "eval": len(self.eval), "eval_s": seconds(self.eval),
                "bad_rows": [str(b) for b in self.bad_rows]}


def _decode(utterances: list[Utterance], bad_rows: list[BadRow], max_seconds: float,
            trim: bool = False) -> list[Example]:
    examples = []
    for u in utterances:
        try:
            audio = load_audio(u.audio_path)
        except AudioDecodeError as exc:
            bad_rows.append(BadRow(u.source, u.row, f"corrupt audio: {exc}"))
            logger.warning("skipped row %s", bad_rows[-1])
            continue
        if len(audio) > max_seconds * 16000:
            bad_rows.append(BadRow(u.source, u.row, f"longer than --max-seconds {max_seconds}"))
            logger.warning("skipped row %s", bad_rows[-1])
            continue
        if len(audio) < MIN_SECONDS * 16000:
            bad_rows.append(BadRow(u.source, u.row, f"shorter than {MIN_SECONDS} s ({len(audio)} samples): "
                                                    f"too short for one output frame per character"))
            logger.warning("skipped row %s", bad_rows[-1])
            continue
        if trim:
            audio = trim_silence(audio)
        examples.append(Example(audio, u.text, f"{u.source.name}:{u.row}"))
    return examples


def manifest_parts(spec: SourceSpec, seed: int = 0) -> tuple[Manifest, list[Utterance], list[Utterance]]:
    """A manifest source's rows as training splits them, without decoding audio.

    Returns:
        ``(manifest, train, held_out)``: the training rows (after ``limit``; ``repeat`` is not applied) and
        the held-out part that ``spec.part`` names (test or dev), each in manifest order.

    Raises:
        DataError: a malformed manifest or a bad split.
    """
    manifest = read_manifest(spec.location, path_column=spec.path_column, text_column=spec.text_column,
                             group_column=spec.group)
    if spec.role == "train":
        train, held = list(manifest.utterances), []
    elif spec.role == "eval":
        train, held = [], list(manifest.utterances)
    else:
        train, held = split_by_group(manifest.utterances, eval_fraction=spec.eval_fraction,
                                     dev_fraction=spec.dev_fraction, hold_out=spec.hold_out, seed=seed,
                                     part=spec.part)
    if spec.limit is not None and len(train) > spec.limit:
        train = sorted(random.Random(seed).sample(train, spec.limit), key=lambda u: u.row)
    return manifest, train, held


def _load_manifest_source(spec: SourceSpec, seed: int, max_seconds: float, trim: bool) -> SourceData:
    manifest, train, evaluation = manifest_parts(spec, seed)
    data = SourceData(spec, bad_rows=list(manifest.bad_rows))
    data.train = _decode(train, data.bad_rows, max_seconds, trim)
    data.eval = _decode(evaluation, data.bad_rows, max_seconds)
    return data


def _load_hf_source(spec: SourceSpec, seed: int, max_seconds: float, trim: bool) -> SourceData:
    """A Hugging Face dataset saved with ``save_to_disk`` or a hub name (needs network)."""
    import datasets

    location = Path(spec.location)
    if path_exists(location):  # only a save_to_disk folder gets here existing (load_source sorts the rest out)
        loaded = datasets.load_from_disk(str(location))
        dataset = loaded[spec.hf_split] if isinstance(loaded, datasets.DatasetDict) else loaded
    else:
        try:
            dataset = datasets.load_dataset(spec.location, split=spec.hf_split)
        except Exception as exc:  # no network, no such dataset, no such split: all mean "cannot load" here
            reason = " ".join(str(exc).split())
            raise DataError(f"{shorten_path(spec.location)}: not a local path, and not loadable as a Hugging Face "
                            f"dataset (split {spec.hf_split!r}): {reason}") from exc
    audio_column = spec.path_column if spec.path_column != "path" else "audio"
    text_column = spec.text_column if spec.text_column != "transcript" else "text"
    for column in (audio_column, text_column):
        if column not in dataset.column_names:
            raise DataError(f"{spec.location}: column {column!r} not found (columns: {dataset.column_names})")
    if spec.group and spec.group not in dataset.column_names:
        raise DataError(f"{spec.location}: group column {spec.group!r} not found")
    utterances = []
    data = SourceData(spec)
    source = Path(spec.location)
    for index, record in enumerate(dataset):
        text = normalize_transcript(str(record[text_column] or ""))
        if not text:
            data.bad_rows.append(BadRow(source, index, "empty transcript"))
            continue
        group = str(record[spec.group]) if spec.group else str(index)
        utterances.append(Utterance(source, text, group, source, index))
    if spec.role == "split":
        train, evaluation = split_by_group(utterances, eval_fraction=spec.eval_fraction,
                                           dev_fraction=spec.dev_fraction, hold_out=spec.hold_out,
                                           seed=seed, part=spec.part)
    else:
        train, evaluation = (utterances, []) if spec.role == "train" else ([], utterances)
    if spec.limit is not None and len(train) > spec.limit:
        train = sorted(random.Random(seed).sample(train, spec.limit), key=lambda u: u.row)
    for part, target in ((train, data.train), (evaluation, data.eval)):
        for u in part:
            audio = dataset[u.row][audio_column]
            samples = to_mono_16k(np.asarray(audio["array"]), int(audio["sampling_rate"]))
            if len(samples) > max_seconds * 16000:
                data.bad_rows.append(BadRow(source, u.row, f"longer than --max-seconds {max_seconds}"))
                continue
            if trim and target is data.train:
                samples = trim_silence(samples)
            target.append(Example(samples, u.text, f"{spec.name}:{u.row}"))
    for bad in data.bad_rows:
        logger.warning("skipped row %s", bad)
    return data


def _names_a_local_path(text: str) -> bool:
    """Whether a source location can only mean a local path (a hub name is ``name`` or ``user/name``)."""
    return (text.startswith(("/", ".", "~")) or text.count("/") > 1 or "\\" in text
            or Path(text).suffix.lower() in MANIFEST_SUFFIXES)


def load_source(spec: SourceSpec, *, seed: int = 0, max_seconds: float = 16.0,
                trim_train_silence: bool = False) -> SourceData:
    """Load one source: a manifest (file or folder) or a Hugging Face dataset.

    With ``trim_train_silence``, training audio (never eval audio) loses leading and trailing
    silence beyond 0.2 s, which saves compute on recordings padded with silence.

    Raises:
        DataError: the source cannot be read (see :func:`read_manifest`).
    """
    location = Path(spec.location)
    exists = path_exists(location)  # a name the system cannot even look up is absent, never a raw OSError
    if not exists and _names_a_local_path(spec.location):
        raise DataError(f"{shorten_path(location)}: no such file or folder (a source is a manifest file or folder, a "
                        f"datasets.save_to_disk folder, or a Hugging Face hub name such as 'user/dataset')")
    is_manifest = location.suffix.lower() in MANIFEST_SUFFIXES or (
        exists and location.is_dir() and any((location / name).is_file() for name in MANIFEST_NAMES))
    if exists and location.is_file() and not is_manifest:
        raise DataError(f"{location}: unknown manifest type {location.suffix!r} (allowed: .tsv, .csv, .jsonl; a "
                        f"Hugging Face dataset is a save_to_disk folder or a hub name)")
    if is_manifest:
        data = _load_manifest_source(spec, seed, max_seconds, trim_train_silence)
    elif exists and location.is_dir() and not (location / "dataset_info.json").is_file() and not (
            location / "dataset_dict.json").is_file():
        raise DataError(f"{location}: neither a manifest folder nor a datasets.save_to_disk folder")
    else:
        data = _load_hf_source(spec, seed, max_seconds, trim_train_silence)
    logger.info("source %s", json.dumps(data.summary() | {"bad_rows": len(data.bad_rows)}))
    return data
