"""Audio for validation and int8 calibration: a folder, a TSV manifest, or synthetic speech-like noise."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from w2v2_onnx.errors import ExportError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus")


def synthetic_audio(
    count: int, *, sample_rate: int = 16000, seconds: float = 4.0, seed: int = 0
) -> list[np.ndarray]:
    """Seeded speech-like signals: harmonic bursts with syllable-rate envelopes plus coloured noise.

    Random-weight models cannot tell speech from noise; the point is realistic amplitude statistics
    (silence, bursts, spectral tilt) for calibration ranges and parity checks.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        n = int(sample_rate * seconds * (0.6 + 0.8 * rng.random())) if i else int(sample_rate * seconds)
        t = np.arange(n) / sample_rate
        f0 = 100 + 120 * rng.random()
        pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t))
        phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
        voiced = sum(np.sin(h * phase) / h for h in range(1, 8))
        noise = np.cumsum(rng.standard_normal(n)) * 0.002
        noise -= np.convolve(noise, np.ones(200) / 200, mode="same")
        envelope = np.clip(np.sin(2 * np.pi * (3 + 2 * rng.random()) * t + rng.random() * 6), 0, None) ** 2
        signal = 0.3 * envelope * voiced + 0.5 * noise + 0.003 * rng.standard_normal(n)
        out.append((signal / max(1e-6, np.abs(signal).max()) * 0.5).astype(np.float32))
    return out


def _read(path: Path, sample_rate: int) -> np.ndarray:
    import soundfile as sf

    if not path.is_file():
        raise ExportError(f"calibration audio {path} not found")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise ExportError(f"cannot decode calibration audio {path}: {exc}") from exc
    mono = data.mean(axis=1)
    if rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate).astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _manifest_paths(tsv: Path) -> list[Path]:
    with tsv.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="," if tsv.suffix.lower() == ".csv" else "\t")
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise ExportError(
                f"calibration manifest {tsv} has no 'path' column (columns: {reader.fieldnames})"
            )
        paths = [Path(row["path"]) for row in reader if row.get("path")]
    return [p if p.is_absolute() else tsv.parent / p for p in paths]


def load_calibration_audio(
    source: str | Path | None,
    *,
    sample_rate: int = 16000,
    max_items: int = 16,
    max_seconds: float = 30.0,
    seed: int = 0,
) -> list[np.ndarray]:
    """Return up to ``max_items`` mono float32 clips at ``sample_rate``, each cut to ``max_seconds``.

    Args:
        source: a folder of audio files, a TSV manifest with a ``path`` column, or None for
            :func:`synthetic_audio`.
        sample_rate: the model's rate; files are resampled to it.
        max_items: how many clips at most (sorted by path, first ones kept).
        max_seconds: longer clips are cut.
        seed: seed of the synthetic audio.

    Raises:
        ExportError: the source does not exist, holds no audio, or a file cannot be decoded.
    """
    if source is None:
        return synthetic_audio(max_items, sample_rate=sample_rate, seed=seed)
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    elif path.is_file() and path.suffix.lower() in (".tsv", ".txt", ".csv"):
        files = _manifest_paths(path)
    elif path.is_file():
        files = [path]
    else:
        raise ExportError(
            f"calibration source {path} does not exist (give a folder of audio or a TSV manifest)"
        )
    if not files:
        raise ExportError(f"calibration source {path} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    limit = int(max_seconds * sample_rate)
    return [_read(f, sample_rate)[:limit] for f in files[:max_items]]
