"""Seeded audio augmentation for synthetic training speech: speed, gain, band-limiting, noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentSettings:
    """Probabilities and ranges of each augmentation (applied in this order).

    Attributes:
        speed_prob, speed_range: speed perturbation by resampling (changes tempo and pitch).
        band_limit_prob: band-limit to 8 kHz sampling (telephone-like, like FSDD) and back to 16 kHz.
        noise_prob, snr_db: add white or pink noise at a signal-to-noise ratio drawn from the range.
        gain_db: gain range applied last; peaks are kept below 1.0.
    """

    speed_prob: float = 0.5
    speed_range: tuple[float, float] = (0.9, 1.1)
    band_limit_prob: float = 0.25
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (10.0, 40.0)
    gain_db: tuple[float, float] = (-12.0, 3.0)


def change_speed(audio: np.ndarray, factor: float, sample_rate: int = 16000) -> np.ndarray:
    """Play ``audio`` ``factor`` times faster (tempo and pitch together, as Kaldi's speed perturbation)."""
    import soxr

    # Playing samples recorded at rate*factor back at rate speeds speech up by factor.
    return soxr.resample(audio, sample_rate * factor, sample_rate)


@dataclass(frozen=True)
class SpeedPerturbation:
    """On-the-fly speed perturbation of training audio: with probability ``prob`` an example is played
    at a speed drawn uniformly from ``[low, high]`` each time it is drawn (other voices, in effect:
    pitch and tempo change together)."""

    prob: float
    low: float = 0.9
    high: float = 1.1

    def apply(self, audio: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
        """``audio`` itself, or a copy at another speed (float32)."""
        if self.prob <= 0 or rng.random() >= self.prob:
            return audio
        factor = float(rng.uniform(self.low, self.high))
        return change_speed(np.asarray(audio, dtype=np.float32), factor, sample_rate).astype(np.float32)


@dataclass(frozen=True)
class SilencePadding:
    """On-the-fly margins around training audio: with probability ``prob`` an example gets, before and after
    it, up to ``max_seconds`` (each side drawn uniformly) of digital silence or of white noise from -70 to -35
    dB below its peak, each time it is drawn. Training audio trimmed to 0.2 s of silence teaches the model
    nothing about the second or more of silence and room noise that users' recordings start and end with
    (benchmarks/silence_margins.py measures what that costs)."""

    prob: float
    max_seconds: float = 1.5

    def apply(self, audio: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
        """``audio`` itself, or a copy with margins (float32)."""
        if self.prob <= 0 or rng.random() >= self.prob:
            return audio
        audio = np.asarray(audio, dtype=np.float32)
        sizes = (rng.uniform(0, self.max_seconds, size=2) * sample_rate).astype(int)
        silent = rng.random() < 0.5
        level = float(np.abs(audio).max(initial=0.0)) * 10 ** (rng.uniform(-70, -35) / 20)

        def margin(size: int) -> np.ndarray:
            return (np.zeros(size, dtype=np.float32) if silent
                    else (rng.standard_normal(size) * level).astype(np.float32))

        return np.concatenate([margin(sizes[0]), audio, margin(sizes[1])])


def _pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n)
    return noise / (np.std(noise) + 1e-12)


def augment(audio: np.ndarray, rng: np.random.Generator, settings: AugmentSettings | None = None,
            sample_rate: int = 16000) -> tuple[np.ndarray, list[str]]:
    """Return an augmented copy of ``audio`` and the names of the steps applied.

    Args:
        audio: mono float32 samples at ``sample_rate``.
        rng: the seeded generator that decides every random choice.
        settings: probabilities and ranges; defaults to :class:`AugmentSettings`.
        sample_rate: rate of ``audio``.
    """
    import soxr

    settings = settings or AugmentSettings()
    out = np.asarray(audio, dtype=np.float64)
    applied: list[str] = []
    if rng.random() < settings.speed_prob:
        factor = float(rng.uniform(*settings.speed_range))
        out = change_speed(out, factor, sample_rate)
        applied.append(f"speed{factor:.2f}")
    if rng.random() < settings.band_limit_prob:
        out = soxr.resample(soxr.resample(out, sample_rate, 8000), 8000, sample_rate)
        applied.append("8khz")
    if rng.random() < settings.noise_prob and out.size:
        snr = float(rng.uniform(*settings.snr_db))
        noise = _pink_noise(rng, out.size) if rng.random() < 0.5 else rng.standard_normal(out.size)
        signal_rms = np.sqrt(np.mean(out**2)) + 1e-12
        out = out + noise * signal_rms / (10 ** (snr / 20))
        applied.append(f"noise{snr:.0f}db")
    gain = 10 ** (float(rng.uniform(*settings.gain_db)) / 20)
    out = out * gain
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 0.99:
        out = out * (0.99 / peak)
    applied.append(f"gain{20 * np.log10(gain):+.0f}db")
    return out.astype(np.float32), applied
