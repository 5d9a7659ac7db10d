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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from accuracy import held_out  # noqa: E402
from decoder_speed import error_rates  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402

DATA = os.environ.get("DATA", "../shared/data")
KEYWORDS_UNUSED = os.environ.get("KEYWORDS_UNUSED", "/tmp/kw/manifest.tsv")


def main() -> None:
    transcriber = Transcriber(precision="int8", threads=2)
    _, cathy = held_out(f"{DATA}/cathy:group=prompt_id,eval=0.1,dev=0.1,part=dev", 0)
    _, keywords = held_out(f"{KEYWORDS_UNUSED}:name=keywords_unused,role=eval", 0)
    order = np.random.default_rng(0).permutation(len(keywords))
    keywords_dev = [keywords[i] for i in order[: len(keywords) // 2]]
    out = {}
    for name, rows in (("cathy_dev", cathy), ("keywords_dev_half", keywords_dev)):
        for trim in (False, True):
            hypotheses = [transcriber.transcribe(path, decoder="greedy", trim_silence=trim).text for path, _ in rows]
            key = f"{name}{' trimmed' if trim else ''}"
            out[key] = {"n": len(rows), **error_rates(hypotheses, [text for _, text in rows])}
            print(key, out[key], flush=True)
    Path(sys.argv[1]).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
