"""Splitting inputs at pauses: WER of ``transcribe()`` (the bundled model's default decoding) with
``split_at_pauses`` off and at each length asked, on long and short inputs.

A script, not a test. The held-out cathy recordings of one part (one sentence each) are joined into one recording
with ``G`` seconds of silence added between sentences (0 leaves only the recordings' own 0.2 s margins), and
transcribed whole; the same recordings one at a time, and the keywords dev or test half (the seeded halves of
``benchmarks/phrase_rejection.py``), show what splitting costs on short inputs::

    python benchmarks/pause_split.py --part dev --out benchmarks/results/pause_split/pause_split_dev.json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="dev", choices=["dev", "test"])
    parser.add_argument("--gaps", nargs="+", type=float, default=[0.0, 1.0])
    parser.add_argument("--pauses", nargs="+", type=float, default=[0.3, 0.5])
    parser.add_argument("--keywords", default="/tmp/kw/manifest.tsv",
                        help="manifest of the keyword recordings training never drew (recipes/keywords_unused.py)")
    add_held_out_arguments(parser)
    args = parser.parse_args()
    transcriber = Transcriber(args.model, threads=args.threads)
    settings = [None, *args.pauses]

    def rates(audios: list[np.ndarray | str], references: list[str]) -> dict:
        return {str(p): error_rates([transcriber.transcribe(a, split_at_pauses=p).text for a in audios], references)
                for p in settings}

    report = {"kind": "pause_split", "machine": machine_info(), "model": args.model or "bundled", "part": args.part,
              "defaults": {k: v for k, v in transcriber.transcribe(np.zeros(16000, np.float32)).options.items()
                           if k in ("decoder", "trim_silence", "chunk_length", "chunk_context", "alpha", "beta")},
              "joined": {}}
    for gap in args.gaps:
        audio, texts, _, recordings = joined(transcriber, args.part, gap, args.seed)
        report["joined"][str(gap)] = rates([audio], [" ".join(texts)])
        report["joined"][str(gap)]["audio_s"] = round(audio.size / transcriber.sample_rate, 1)
        print(f"joined, gap {gap} s:", {p: round(r["wer"], 4) for p, r in report["joined"][str(gap)].items()
                                         if isinstance(r, dict)}, flush=True)
    report["one_recording_at_a_time"] = rates(recordings, texts)
    print("one at a time:", {p: round(r["wer"], 4) for p, r in report["one_recording_at_a_time"].items()}, flush=True)
    if args.keywords and Path(args.keywords).exists():
        _, keywords = held_out(f"{args.keywords}:name=keywords_unused,role=eval", args.seed)
        rows = seeded_halves(keywords, 0)[0 if args.part == "dev" else 1]  # the halves of decision_sets()
        report["keywords_half"] = rates([path for path, _ in rows], [text for _, text in rows])
        print("keywords half:", {p: round(r["wer"], 4) for p, r in report["keywords_half"].items()}, flush=True)
    if args.out:
        write_json(report, args.out)


if __name__ == "__main__":
    main()
