"""Live transcription cost: audio fed in small blocks as fast as it comes, per window setting.

A script, not a test. For each (chunk_length, chunk_context) it feeds a recording in 0.1 s blocks to
``Transcriber.stream`` and reports the seconds of audio between updates (the latency floor set by the
windows), the compute time of the feed calls that ran the model (the wait added to that floor), the
real-time factor, and whether ``finish()`` equals ``transcribe()`` of the whole recording::

    python benchmarks/stream_latency.py --audio a.flac b.flac ... --settings 10,1 4,1 2,0.5 --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_figures import machine_info, write_json  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402
from w2v2_onnx.audio import load_audio  # noqa: E402

BLOCK_SECONDS = 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", nargs="+", required=True, help="files joined into one recording")
    parser.add_argument("--settings", nargs="+", default=["10,1", "4,1", "2,0.5"], metavar="LENGTH,CONTEXT")
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    transcriber = Transcriber(args.model, threads=args.threads)
    rate = transcriber.sample_rate
    audio = np.concatenate([load_audio(path, rate) for path in args.audio])
    transcriber.transcribe(audio[:rate], decoder="greedy")  # warm-up
    block = int(BLOCK_SECONDS * rate)
    rows = []
    for setting in args.settings:
        length, context = (float(v) for v in setting.split(","))
        stream = transcriber.stream(chunk_length=length, chunk_context=context)
        model_calls, previous = [], ""
        update_at = []
        start_all = time.perf_counter()
        for offset in range(0, audio.size, block):
            start = time.perf_counter()
            text = stream.feed(audio[offset:offset + block])
            spent = time.perf_counter() - start
            if spent > 0.005:
                model_calls.append(spent)
            if text != previous:
                update_at.append((offset + block) / rate)
                previous = text
        start = time.perf_counter()
        result = stream.finish()
        finish_s = time.perf_counter() - start
        total_s = time.perf_counter() - start_all
        expected = transcriber.transcribe(audio, chunk_length=length, chunk_context=context)
        gaps = np.diff([0.0, *update_at])
        rows.append({"chunk_length": length, "chunk_context": context, "audio_s": round(audio.size / rate, 2),
                     "updates": len(update_at), "first_text_at_s": round(update_at[0], 2) if update_at else None,
                     "median_s_between_updates": round(float(np.median(gaps)), 2) if update_at else None,
                     "model_call_ms_p50": round(1000 * float(np.median(model_calls)), 1) if model_calls else None,
                     "model_call_ms_max": round(1000 * max(model_calls), 1) if model_calls else None,
                     "finish_ms": round(1000 * finish_s, 1), "real_time_factor": round(audio.size / rate / total_s, 1),
                     "equals_transcribe": result == expected, "text": result.text[:120]})
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        write_json({"kind": "stream_latency", "machine": machine_info(), "model": str(transcriber.model_path),
                    "threads": args.threads, "audio": [str(p) for p in args.audio], "block_s": BLOCK_SECONDS,
                    "rows": rows}, args.out)


if __name__ == "__main__":
    main()
