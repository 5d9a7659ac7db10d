"""Reading manifests (TSV, CSV or JSONL of audio path + transcript), reporting every bad row."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from w2v2_onnx.errors import DataError
from w2v2_onnx_finetune.text import normalize_transcript

logger = logging.getLogger(__name__)

#: The manifest file types, and the names a manifest folder's own manifest may have.
MANIFEST_SUFFIXES = (".tsv", ".csv", ".jsonl")
MANIFEST_NAMES = tuple(f"manifest{suffix}" for suffix in MANIFEST_SUFFIXES)


@dataclass(frozen=True)
class Utterance:
    """One usable manifest row.

    Attributes:
        audio_path: absolute path of the audio file.
        text: normalised transcript.
        group: value of the grouping column (prompt id, speaker) or the file name when none.
        source: the manifest file it came from.
        row: 1-based row number in that file (the header is row 1 for TSV/CSV).
    """

    audio_path: Path
    text: str
    group: str
    source: Path
    row: int


@dataclass(frozen=True)
class BadRow:
    """A row that was skipped, with the reason (always logged, never dropped silently)."""

    source: Path
    row: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.row}: {self.reason}"


@dataclass
class Manifest:
    """The usable rows of one manifest and the rows that were not usable."""

    path: Path
    utterances: list[Utterance] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)


def find_manifest(path: str | Path) -> Path:
    """Resolve a manifest file, or the manifest inside a folder.

    Raises:
        DataError: the path does not exist, or a folder holds none of :data:`MANIFEST_NAMES`.
    """
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return path / name
        raise DataError(f"{path}: folder has no manifest (expected one of {', '.join(MANIFEST_NAMES)})")
    raise DataError(f"{path}: manifest not found (give a .tsv, .csv or .jsonl file or a folder holding one)")


def _read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    try:
        return _parse_rows(path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason}); manifests must be UTF-8") from exc


def _parse_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    suffix = path.suffix.lower()
    rows: list[tuple[int, dict[str, str]]] = []
    if suffix in (".tsv", ".csv"):
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            if reader.fieldnames is None:
                raise DataError(f"{path}:1: empty manifest (a header row with 'path' and 'transcript' "
                                "is needed)")
            for row_number, record in enumerate(reader, start=2):
                rows.append((row_number, {k: (v or "") for k, v in record.items() if k is not None}))
    elif suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for row_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{row_number}: not valid JSON ({exc.msg})") from exc
                if not isinstance(record, dict):
                    raise DataError(f"{path}:{row_number}: a JSON object per line is expected")
                rows.append((row_number, {k: "" if v is None else str(v) for k, v in record.items()}))
    else:
        raise DataError(f"{path}: unknown manifest type {suffix!r} (allowed: .tsv, .csv, .jsonl)")
    return rows


def read_manifest(
    path: str | Path,
    *,
    path_column: str = "path",
    text_column: str = "transcript",
    group_column: str | None = None,
    check_audio: bool = True,
) -> Manifest:
    """Read a manifest; audio paths are relative to the manifest's folder.

    Rows with a missing audio file or an empty transcript (after normalisation) are collected in
    ``bad_rows`` and logged with file and row number. Corrupt audio is found when the audio is
    decoded (:func:`w2v2_onnx_finetune.data.load_utterances`).

    Args:
        path: manifest file or a folder holding one.
        path_column: column of the audio path.
        text_column: column of the transcript.
        group_column: column whose value keeps rows together in splits (e.g. ``prompt_id``).
        check_audio: check that every audio file exists.

    Returns:
        The usable rows and the bad ones.

    Raises:
        DataError: the file is missing, of an unknown type, malformed, or lacks a needed column.
    """
    manifest_path = find_manifest(path).resolve()
    rows = _read_rows(manifest_path)
    manifest = Manifest(path=manifest_path)
    needed = [path_column, text_column] + ([group_column] if group_column else [])
    for row_number, record in rows:
        missing = [c for c in needed if c not in record]
        if missing:
            raise DataError(f"{manifest_path}:{row_number}: missing column(s) {missing} "
                            f"(columns present: {sorted(record)})")
        raw_path = record[path_column].strip()
        if not raw_path:
            manifest.bad_rows.append(BadRow(manifest_path, row_number, "empty audio path"))
            continue
        audio_path = Path(raw_path)
        if not audio_path.is_absolute():
            audio_path = manifest_path.parent / audio_path
        if check_audio and not audio_path.is_file():
            manifest.bad_rows.append(BadRow(manifest_path, row_number, f"audio file not found: {audio_path}"))
            continue
        text = normalize_transcript(record[text_column])
        if not text:
            manifest.bad_rows.append(BadRow(manifest_path, row_number,
                                            f"empty transcript (raw: {record[text_column]!r})"))
            continue
        group = record[group_column].strip() if group_column else audio_path.name
        manifest.utterances.append(Utterance(audio_path, text, group, manifest_path, row_number))
    for bad in manifest.bad_rows:
        logger.warning("skipped row %s", bad)
    logger.info("%s: %d usable rows, %d bad rows", manifest_path, len(manifest.utterances),
                len(manifest.bad_rows))
    return manifest
