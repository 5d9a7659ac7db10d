"""Do a file's results depend on the files it is batched with? Compare batch_size=1 with a larger batch.

fp32 and fp16 must not differ (padding is exact); dynamic int8 quantizes each model call's activations on one
range for the whole batch, so its results move a little with the batch. Prints and writes, per precision: how
many transcripts are equal, frame argmax agreement and max |d log p|.

    python benchmarks/batch_invariance.py --model w2v2_onnx/models/default --audio ../shared/data/cathy/*.flac \
        --files 24 --batch-size 8 --out benchmarks/results/batch_invariance_bundled.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from runtime_figures import announce_machine, write_json  # noqa: E402


def main() -> None:
    from w2v2_onnx import Transcriber

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--audio", nargs="+", required=True)
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    files = sorted(args.audio)[:args.files]
    probe = Transcriber(args.model, threads=args.threads)
    results = {"machine": announce_machine(), "kind": "batch_invariance", "model": str(probe.model.path.parent),
               "files": len(files), "batch_size": args.batch_size, "precisions": {}}
    for precision in probe.config.files:
        transcriber = Transcriber(args.model, precision=precision, threads=args.threads)
        alone = transcriber.log_probs(files, batch_size=1)
        batched = transcriber.log_probs(files, batch_size=args.batch_size)
        texts_alone = transcriber.transcribe(files, decoder="greedy", batch_size=1)
        texts_batched = transcriber.transcribe(files, decoder="greedy", batch_size=args.batch_size)
        row = {
            "transcripts_equal": sum(a.text == b.text for a, b in zip(texts_alone, texts_batched, strict=True)),
            "argmax_agreement": float(np.mean([(a.argmax(-1) == b.argmax(-1)).mean()
                                               for a, b in zip(alone, batched, strict=True)])),
            "max_abs_diff": float(max(np.abs(a - b).max() for a, b in zip(alone, batched, strict=True))),
        }
        results["precisions"][precision] = row
        print(f"{precision}: batch {args.batch_size} vs 1: {row['transcripts_equal']}/{len(files)} transcripts "
              f"equal, argmax agreement {row['argmax_agreement']:.4f}, max |d log p| {row['max_abs_diff']:.3g}")
    if args.out:
        write_json(results, args.out)


if __name__ == "__main__":
    main()
