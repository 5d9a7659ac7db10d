"""Figures A and C of decision_rule.txt: bundled int8 greedy CER on the cathy dev part and the keywords dev half,
without and with ``trim_silence`` (figure B: benchmarks/silence_margins.py --part dev [--trim-silence]).

Usage (repository root): python benchmarks/results/trim_silence/decide.py OUT.json
The keyword recordings training never drew are listed by recipes/keywords_unused.py (KEYWORDS_UNUSED, default
/tmp/kw/manifest.tsv); the dev half is the seeded half benchmarks/phrase_rejection.py tunes on.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from accuracy import decision_sets  # noqa: E402
from decoder_speed import error_rates  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402

DATA = os.environ.get("DATA", "../shared/data")
KEYWORDS_UNUSED = os.environ.get("KEYWORDS_UNUSED", "/tmp/kw/manifest.tsv")


def main() -> None:
    transcriber = Transcriber(precision="int8", threads=2)
    out = {}
    for name, rows in decision_sets(DATA, KEYWORDS_UNUSED).items():
        for trim in (False, True):
            hypotheses = [transcriber.transcribe(path, decoder="greedy", trim_silence=trim).text for path, _ in rows]
            key = f"{name}{' trimmed' if trim else ''}"
            out[key] = {"n": len(rows), **error_rates(hypotheses, [text for _, text in rows])}
            print(key, out[key], flush=True)
    Path(sys.argv[1]).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
