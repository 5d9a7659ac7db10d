"""Robustness to silence around speech: greedy WER / CER when held-out recordings get margins of silence.

A script, not a test. The bundled model was trained on recordings trimmed to 0.2 s of silence on each side
(``--trim-silence``), and the held-out cathy recordings are trimmed the same way, but users' recordings often
start and end with a second or more of silence or room noise. Each held-out recording of the part asked gets
``M`` seconds on both sides of: digital zeros, or Gaussian noise at -60 / -40 dB below the recording's peak
(seeded), and is transcribed alone with greedy decoding; ``--trim-silence`` lets the runtime cut them first::

    python benchmarks/silence_margins.py --part dev --out benchmarks/results/silence_margins_bundled_dev.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import held_out  # noqa: E402
from decoder_speed import error_rates  # noqa: E402
from runtime_figures import add_held_out_arguments, machine_info, write_json  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402
from w2v2_onnx.audio import load_audio  # noqa: E402

CATHY = "../shared/data/cathy:group=prompt_id,eval=0.1,dev=0.1"
FILLS = {"zeros": None, "noise -60 dB": 1e-3, "noise -40 dB": 1e-2}


def with_margins(audio: np.ndarray, seconds: float, level: float | None, rng: np.random.Generator,
                 rate: int) -> np.ndarray:
    size = int(seconds * rate)

    def margin() -> np.ndarray:
        if level is None:
            return np.zeros(size, dtype=np.float32)
        return (rng.standard_normal(size) * level * float(np.abs(audio).max())).astype(np.float32)

    return np.concatenate([margin(), audio, margin()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="dev", choices=["dev", "test"])
    parser.add_argument("--margins", nargs="+", type=float, default=[0.5, 1.5])
    parser.add_argument("--trim-silence", action="store_true",
                        help="transcribe with trim_silence=True (the runtime cuts the margins as training did)")
    add_held_out_arguments(parser)
    args = parser.parse_args()
    transcriber = Transcriber(args.model, threads=args.threads)
    rate = transcriber.sample_rate
    _, rows = held_out(CATHY if args.part == "test" else f"{CATHY},part={args.part}", args.seed)
    recordings = [load_audio(path, rate) for path, _ in rows]
    references = [text for _, text in rows]

    def greedy(audios: list[np.ndarray]) -> dict:
        return error_rates([transcriber.transcribe(a, decoder="greedy", trim_silence=args.trim_silence).text
                            for a in audios], references)

    rows_out = [{"margin_s": 0.0, "fill": "none", **greedy(recordings)}]
    print(rows_out[0], flush=True)
    rng = np.random.default_rng(args.seed)
    for seconds in args.margins:
        for fill, level in FILLS.items():
            row = {"margin_s": seconds, "fill": fill,
                   **greedy([with_margins(a, seconds, level, rng, rate) for a in recordings])}
            print(row, flush=True)
            rows_out.append(row)
    report = {"kind": "silence_margins", "machine": machine_info(), "model": args.model or "bundled",
              "part": args.part, "recordings": len(rows), "trim_silence": args.trim_silence, "rows": rows_out}
    if args.out:
        write_json(report, args.out)


if __name__ == "__main__":
    main()
