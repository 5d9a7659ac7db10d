"""Is a model under-fitted or over-fitted? Greedy WER/CER of an exported model on cathy rows it trained on
against the held-out test rows (same speaker, same number of utterances).

Usage (repository root): python recipes/fit_diagnostics.py [MODEL_DIR] --out OUT.json
(no MODEL_DIR: the bundled model). The training rows are a seeded sample of the train part of the split
every reference model uses (``cathy:group=prompt_id,eval=0.1,dev=0.1``, seed 0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from decoder_speed import error_rates  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402

DATA = os.environ.get("DATA", "../shared/data")


def main() -> None:
    from w2v2_onnx_finetune.data import manifest_parts
    from w2v2_onnx_finetune.sources import parse_source

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=None)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    transcriber = Transcriber(args.model, precision="int8", threads=2)
    _, train, test = manifest_parts(parse_source(f"{DATA}/cathy:group=prompt_id,eval=0.1,dev=0.1"), seed=0)
    sample = random.Random(0).sample(train, len(test))
    out = {"model": str(transcriber.model_path)}
    for name, rows in (("cathy_train_sample", sample), ("cathy_test", test)):
        hypotheses = [transcriber.transcribe(str(u.audio_path), decoder="greedy").text for u in rows]
        out[name] = {"utterances": len(rows), **error_rates(hypotheses, [u.text for u in rows])}
        print(name, out[name], flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
