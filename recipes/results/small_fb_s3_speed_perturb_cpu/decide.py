"""Deciding figures for a candidate model: int8 greedy CER on the cathy dev part and the keywords dev half.

Usage (repository root): python recipes/results/small_fb_s3_speed_perturb_cpu/decide.py MODEL_DIR|bundled OUT.json
The keyword recordings training never drew are listed by recipes/keywords_unused.py (KEYWORDS_UNUSED, default
/tmp/kw/manifest.tsv); the dev half is the seeded half benchmarks/phrase_rejection.py tunes on.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from accuracy import decision_sets  # noqa: E402
from decoder_speed import error_rates  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402

DATA = os.environ.get("DATA", "../shared/data")
KEYWORDS_UNUSED = os.environ.get("KEYWORDS_UNUSED", "/tmp/kw/manifest.tsv")


def main() -> None:
    model = None if sys.argv[1] == "bundled" else sys.argv[1]
    transcriber = Transcriber(model, precision="int8", threads=2)
    out = {}
    for name, rows in decision_sets(DATA, KEYWORDS_UNUSED).items():
        hypotheses = [transcriber.transcribe(path, decoder="greedy").text for path, _ in rows]
        out[name] = {"n": len(rows), **error_rates(hypotheses, [text for _, text in rows])}
        print(name, out[name], flush=True)
    Path(sys.argv[2]).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
