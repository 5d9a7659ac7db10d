"""What the bundled model's language model costs to load: seconds and peak memory over greedy decoding.

A script, not a test. Uses the pure-Python ARPA backend (what ``pip install w2v2-onnx`` without the ``lm``
extra runs, and what ``.arpa.gz`` files always use)::

    python benchmarks/lm_memory.py [--out OUT.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.modules["kenlm"] = None  # type: ignore[assignment]  # as on a machine without the lm extra

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_figures import machine_info, write_json  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "w2v2_onnx" / "assets" / "sample.wav"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    transcriber = Transcriber(threads=2)
    transcriber.transcribe(SAMPLE, decoder="greedy")
    greedy_peak = peak_mb()
    start = time.perf_counter()
    transcriber.check_options(decoder="beam")  # loads the model's language model
    load_s = time.perf_counter() - start
    text = transcriber.transcribe(SAMPLE).text
    result = {"kind": "lm_memory", "machine": machine_info(), "lm": str(transcriber.language_model.path),
              "load_s": round(load_s, 3),
              "greedy_peak_mb": round(greedy_peak), "beam_lm_peak_mb": round(peak_mb()),
              "lm_extra_mb": round(peak_mb() - greedy_peak), "text": text}
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}))
    if args.out:
        write_json(result, args.out)


if __name__ == "__main__":
    main()
