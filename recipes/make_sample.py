"""Write the README demo sample: our own flite TTS (voice slt) of digits and a short sentence.

Usage: python recipes/make_sample.py OUT_DIR  -> OUT_DIR/sample.wav (16 kHz mono PCM16), sample.txt
and sample.tsv (a one-row manifest, so ``python -m w2v2_onnx_finetune.evaluate`` can score it).
The sentence is not in ../shared/data/text/sentences.txt, so no synthetic training utterance has it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from w2v2_onnx_finetune.tts import Voice, speak

TEXT = "FOUR SEVEN TWO NINE PLEASE CALL ME BACK TOMORROW"


def main(out_dir: str) -> int:
    """Synthesise the sample, pad 0.3 s of silence each side, and write wav, transcript and manifest."""
    audio = speak(TEXT, Voice("flite", "slt", speed=0.95, pitch=1.0))
    pad = np.zeros(int(0.3 * 16000), dtype=np.float32)
    audio = np.concatenate([pad, audio, pad])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sf.write(str(out / "sample.wav"), audio, 16000, subtype="PCM_16")
    (out / "sample.txt").write_text(TEXT + "\n", encoding="utf-8")
    (out / "sample.tsv").write_text(f"path\ttranscript\nsample.wav\t{TEXT}\n", encoding="utf-8")
    print(f"{out / 'sample.wav'}: {len(audio) / 16000:.2f} s, text {TEXT!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
