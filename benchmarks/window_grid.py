"""Window settings for long recordings, by accuracy: the held-out cathy prompts of one part joined into one
recording, transcribed with each (chunk_length, chunk_context), greedy and with the default beam + LM.

A script, not a test. Choose on the dev part only::

    python benchmarks/window_grid.py dev OUT.json 20,2 16,2 12,2 10,2 8,2 6,2 16,1 12,1 10,1 8,1 6,1
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import held_out  # noqa: E402
from decoder_speed import error_rates  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402

SPLITS = "../shared/data/cathy:group=prompt_id,eval=0.1,dev=0.1"


def main() -> None:
    part, out_path = sys.argv[1], Path(sys.argv[2])
    rows = held_out(SPLITS + (",part=dev" if part == "dev" else ""), 0)[1]
    joined = np.concatenate([sf.read(path, dtype="float32")[0] for path, _ in rows])
    reference = " ".join(text for _, text in rows)
    transcriber = Transcriber(threads=2)
    grid: dict = {}
    for setting in sys.argv[3:]:
        length, context = (float(v) for v in setting.split(","))
        start = time.perf_counter()
        log_probs = transcriber.log_probs(joined, chunk_length=length, chunk_context=context)
        acoustic = time.perf_counter() - start
        greedy = error_rates([transcriber.decode(log_probs, decoder="greedy").text], [reference])
        beam_lm = error_rates([transcriber.decode(log_probs).text], [reference])  # the model's default decoding
        grid[f"{length:g},{context:g}"] = {"greedy": greedy, "beam_lm": beam_lm, "acoustic_s": round(acoustic, 2)}
        print(f"{part} {length:g},{context:g}: greedy CER {greedy['cer']:.4f} WER {greedy['wer']:.4f} | beam + LM "
              f"WER {beam_lm['wer']:.4f} CER {beam_lm['cer']:.4f} | acoustic {acoustic:.2f} s", flush=True)
    out_path.write_text(json.dumps({"part": part, "utterances": len(rows), "audio_s": joined.size / 16000,
                                    "grid": grid}, indent=1))


if __name__ == "__main__":
    main()
