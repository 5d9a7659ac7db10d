"""Restarting beam search at pauses: WER of the default beam + LM decoding with and without sentence cuts.

A script, not a test. The held-out cathy recordings of one part (one sentence each) are joined into one
recording with ``G`` seconds of silence added between sentences (0 leaves only the recordings' own short
silences), the model's frames computed once, and the model's beam + LM search run over them with
``sentence_pause_seconds`` = None (one search per 60 s segment) and each length asked. The same runs on each
recording alone, and on the keyword recordings training never drew (``--keywords``, the seeded half of
``benchmarks/phrase_rejection.py``: ``dev`` or ``test``), show what the cuts cost inside short utterances::

    python benchmarks/pause_cuts.py --part test --out benchmarks/results/pause_cuts_bundled_test.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import held_out, seeded_halves  # noqa: E402
from decoder_speed import error_rates  # noqa: E402
from endpoints import joined  # noqa: E402
from runtime_figures import add_held_out_arguments, machine_info, write_json  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402
from w2v2_onnx.beam import BeamSearchDecoder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="dev", choices=["dev", "test"])
    parser.add_argument("--gaps", nargs="+", type=float, default=[0.0, 0.5, 1.0])
    parser.add_argument("--pauses", nargs="+", type=float, default=[0.5])
    parser.add_argument("--keywords", default="/tmp/kw/manifest.tsv",
                        help="manifest of the keyword recordings training never drew (recipes/keywords_unused.py)")
    add_held_out_arguments(parser)
    args = parser.parse_args()
    transcriber = Transcriber(args.model, threads=args.threads)
    lm = transcriber.language_model
    decoder = BeamSearchDecoder(transcriber.config.vocabulary, lm=lm.path if lm else None,
                                **({"alpha": lm.alpha, "beta": lm.beta} if lm else {}))
    frame = transcriber.config.frame_duration
    settings = [None, *args.pauses]

    def rates(log_probs: list[np.ndarray], references: list[str]) -> dict:
        return {str(p): error_rates([decoder.decode(lp, frame, sentence_pause_seconds=p).text for lp in log_probs],
                                    references) for p in settings}

    report = {"kind": "pause_cuts", "machine": machine_info(), "model": args.model or "bundled", "part": args.part,
              "lm": {"alpha": lm.alpha, "beta": lm.beta} if lm else None, "joined": {}}
    for gap in args.gaps:
        audio, texts, _, recordings = joined(transcriber, args.part, gap, args.seed)
        report["joined"][str(gap)] = rates([transcriber.log_probs(audio)], [" ".join(texts)])
        print(f"joined, gap {gap} s:", {p: round(r["wer"], 4) for p, r in report["joined"][str(gap)].items()},
              flush=True)
    report["one_recording_at_a_time"] = rates([transcriber.log_probs(r) for r in recordings], texts)
    print("one at a time:", {p: round(r["wer"], 4) for p, r in report["one_recording_at_a_time"].items()})
    if args.keywords and Path(args.keywords).exists():
        _, rows = held_out(f"{args.keywords}:name=keywords_unused,role=eval", args.seed)
        chosen = seeded_halves(rows, args.seed)[0 if args.part == "dev" else 1]
        report["keywords_half"] = rates([transcriber.log_probs(path) for path, _ in chosen],
                                        [text for _, text in chosen])
        print("keywords half:", {p: round(r["wer"], 4) for p, r in report["keywords_half"].items()})
    if args.out:
        write_json(report, args.out)


if __name__ == "__main__":
    main()
