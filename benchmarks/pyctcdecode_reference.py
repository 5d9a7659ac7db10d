"""Decode saved log-probabilities with pyctcdecode 0.5.0 to produce reference transcripts and timings.

pyctcdecode needs numpy<2, so this runs in a separate throwaway environment, e.g.::

    python -m venv /work/venv-pyctc && /work/venv-pyctc/bin/pip install "numpy<2" pyctcdecode kenlm
    /work/venv-pyctc/bin/python benchmarks/pyctcdecode_reference.py INPUT.npz OUTPUT.json [--lm LM] ...

INPUT.npz holds arrays ``lp0, lp1, ...`` ([frames, 32] log-probabilities) as written by ``decoder_speed.py``.
The output JSON has, per input, the best transcript, its word frame spans and the decode time in seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
from pyctcdecode import build_ctcdecoder

# the vocabulary of ctc_synth.VOCAB_TOKENS as pyctcdecode labels: blank '', delimiter ' '
LABELS = ["", "<s>", "</s>", "<unk>", " ", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L",
          "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]


def main() -> None:
    """Decode every input at the given settings and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs")
    parser.add_argument("output")
    parser.add_argument("--lm", default=None)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--beta", type=float, default=1.5)
    parser.add_argument("--beam-width", type=int, default=100)
    parser.add_argument("--hotwords", nargs="*", default=None)
    parser.add_argument("--hotword-weight", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--unigrams", help="text file of the LM's words, one per line (what pyctcdecode reads from "
                        "an ARPA itself; a KenLM binary carries none)")
    parser.add_argument("--labels", help="JSON list of pyctcdecode labels (default: ctc_synth's vocabulary)")
    args = parser.parse_args()
    data = np.load(args.inputs)
    labels = LABELS
    if args.labels:
        with open(args.labels) as handle:
            labels = json.load(handle)
    unigrams = None
    if args.unigrams:
        with open(args.unigrams) as handle:
            unigrams = [line.strip() for line in handle if line.strip()]
    decoder = build_ctcdecoder(labels, kenlm_model_path=args.lm, unigrams=unigrams, alpha=args.alpha, beta=args.beta)
    results = []
    for key in sorted(data.files, key=lambda k: int(k[2:])):
        lp = data[key]
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            beams = decoder.decode_beams(lp, beam_width=args.beam_width, hotwords=args.hotwords,
                                         hotword_weight=args.hotword_weight)
            times.append(time.perf_counter() - start)
        text, _, word_frames, _, _ = beams[0]
        results.append({"key": key, "text": text, "word_frames": [list(f) for _, f in word_frames],
                        "seconds": min(times), "frames": int(lp.shape[0])})
    import pyctcdecode
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "pyctcdecode": getattr(pyctcdecode, "__version__", "0.5.0"), "lm": args.lm}
    with open(args.output, "w") as handle:
        json.dump({"info": info, "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
