"""Speaking a sentence with a Debian text-to-speech voice (flite, festival, espeak-ng) at 16 kHz."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from w2v2_onnx.errors import MissingDependencyError

#: (engine, voice) pairs and their weights: flite and festival sound most like real speech.
VOICES: tuple[tuple[str, str, float], ...] = (
    ("flite", "kal16", 2.0),
    ("flite", "slt", 2.0),
    ("flite", "rms", 2.0),
    ("flite", "awb", 2.0),
    ("festival", "kal_diphone", 1.5),
    ("festival", "ked_diphone", 1.0),
    ("festival", "cmu_us_slt_arctic_hts", 1.5),
    ("espeak-ng", "en-us", 0.5),
    ("espeak-ng", "en-gb", 0.4),
    ("espeak-ng", "en-gb-scotland", 0.3),
    ("espeak-ng", "en-gb-x-rp", 0.3),
    ("espeak-ng", "en-029", 0.3),
    ("espeak-ng", "en-us+f3", 0.4),
    ("espeak-ng", "en-us+m3", 0.3),
)

_PROGRAMS = {"flite": "flite", "festival": "text2wave", "espeak-ng": "espeak-ng"}


@dataclass(frozen=True)
class Voice:
    """A voice with its speaking rate and pitch.

    Attributes:
        engine: ``flite``, ``festival`` or ``espeak-ng``.
        name: the engine's voice name.
        speed: speaking-rate factor (1.0 = the voice's default; 1.2 = 20% faster).
        pitch: pitch factor (1.0 = default).
    """

    engine: str
    name: str
    speed: float = 1.0
    pitch: float = 1.0

    def label(self) -> str:
        """Short description for manifests."""
        return f"{self.engine}/{self.name}/s{self.speed:.2f}/p{self.pitch:.2f}"


def available_voices() -> list[tuple[str, str, float]]:
    """The entries of :data:`VOICES` whose program is installed."""
    return [v for v in VOICES if shutil.which(_PROGRAMS[v[0]])]


def random_voice(rng: np.random.Generator, voices: list[tuple[str, str, float]]) -> Voice:
    """Draw a voice by weight, with speed in [0.85, 1.2] and pitch in [0.8, 1.25]."""
    weights = np.array([w for _, _, w in voices], dtype=np.float64)
    engine, name, _ = voices[int(rng.choice(len(voices), p=weights / weights.sum()))]
    return Voice(engine, name, float(rng.uniform(0.85, 1.2)), float(rng.uniform(0.8, 1.25)))


def _command(voice: Voice, text: str, wav: Path) -> tuple[list[str], str | None]:
    if voice.engine == "flite":
        return ["flite", "-voice", voice.name, "--setf", f"duration_stretch={1 / voice.speed:.3f}",
                "--setf", f"int_f0_target_mean={110 * voice.pitch:.1f}", "-t", text, "-o", str(wav)], None
    if voice.engine == "festival":
        script = (f"(voice_{voice.name}) (Parameter.set 'Duration_Stretch {1 / voice.speed:.3f})")
        return ["text2wave", "-eval", script, "-o", str(wav)], text
    if voice.engine == "espeak-ng":
        return ["espeak-ng", "-v", voice.name, "-s", str(int(165 * voice.speed)),
                "-p", str(int(np.clip(50 * voice.pitch, 0, 99))), "-w", str(wav), text], None
    raise ValueError(f"unknown TTS engine {voice.engine!r} (flite, festival, espeak-ng)")


def speak(text: str, voice: Voice, timeout: float = 60.0) -> np.ndarray:
    """Synthesise ``text`` (normalised upper-case words) and return 16 kHz mono float32 audio.

    Raises:
        MissingDependencyError: the engine's program is not installed (apt-get install it).
        RuntimeError: the engine failed or produced no audio.
    """
    from w2v2_onnx_finetune.audio import load_audio

    program = _PROGRAMS.get(voice.engine, voice.engine)
    if not shutil.which(program):
        raise MissingDependencyError(program, "train", f"synthetic speech with {voice.engine}")
    spoken = text.lower()  # some voices spell out all-capital words letter by letter
    with tempfile.TemporaryDirectory(prefix="w2v2tts") as tmp:
        wav = Path(tmp) / "out.wav"
        command, stdin = _command(voice, spoken, wav)
        try:
            done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{voice.label()} did not finish {text!r} within {timeout:g} s") from exc
        if done.returncode != 0 or not wav.is_file() or wav.stat().st_size < 100:
            raise RuntimeError(f"{voice.label()} failed on {text!r}: {done.stderr.strip()[:300]}")
        return load_audio(wav)
