"""What silence trimming saves in time: the bundled model's ``transcribe()`` on the keyword recordings training
never drew (which keep their own silences), with ``trim_silence`` off and on, alternating recording by recording
so machine noise hits both alike. A script, not a test; prints and writes JSON::

    python recipes/keywords_unused.py /tmp/kw
    python benchmarks/trim_speed.py --manifest /tmp/kw/manifest.tsv \
        --out benchmarks/results/trim_silence/trim_speed_keywords.json
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_figures import machine_info, write_json  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402
from w2v2_onnx.audio import load_audio, speech_span  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=Path("/tmp/kw/manifest.tsv"))
    parser.add_argument("--limit", type=int, default=None, help="first N recordings")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with args.manifest.open(newline="") as handle:
        paths = [row["path"] for row in csv.DictReader(handle, delimiter="\t")][:args.limit]
    transcriber = Transcriber(threads=args.threads)
    rate = transcriber.sample_rate
    audios = [load_audio(path, rate) for path in paths]  # decoded once: only the model and decoding are timed
    kept = sum(end - start for start, end in (speech_span(a, rate) for a in audios))
    transcriber.transcribe(audios[0])
    seconds = {False: 0.0, True: 0.0}
    for index, audio in enumerate(audios):
        for trim in ((False, True) if index % 2 == 0 else (True, False)):
            start = time.perf_counter()
            transcriber.transcribe(audio, trim_silence=trim)
            seconds[trim] += time.perf_counter() - start
    total = sum(a.size for a in audios) / rate
    report = {"kind": "trim_speed", "machine": machine_info(), "recordings": len(audios), "audio_s": round(total, 1),
              "kept_after_trimming_s": round(kept / rate, 1), "threads": args.threads,
              "transcribe_s": {"untrimmed": round(seconds[False], 2), "trimmed": round(seconds[True], 2)},
              "speedup": round(seconds[False] / seconds[True], 3),
              "decoding": "the bundled model's default (beam + its LM)"}
    print(report)
    if args.out:
        write_json(report, args.out)


if __name__ == "__main__":
    main()
