"""Endpoints in live transcription: does a pause end each sentence, how soon, and what does it cost in WER?

A script, not a test. Held-out cathy recordings (one sentence each) are joined into one recording, with
``--gap`` seconds of silence added between them on top of their own leading and trailing silence, and fed in
0.1 s blocks to ``Transcriber.stream(endpoint_silence=S)`` for each ``S`` asked. Reported per setting:

- utterances ended, against the sentences joined;
- boundaries: a sentence boundary counts as found when an utterance boundary (the span from one utterance's
  last speech frame to the next one's first) lies within ``TOLERANCE`` of it; ``recall`` is the share of sentence
  boundaries found, ``precision`` the share of utterance boundaries that are sentence boundaries;
- delay: seconds of audio fed between an utterance's end (its last speech frame) and the feed that returned it;
- WER / CER of the utterances' texts joined, beside ``finish()`` (the whole recording decoded at once, as
  ``transcribe()``) and one recording at a time: each WER over the joined texts (an alignment may cross a
  sentence end), so not the per-utterance WER of ``benchmarks/accuracy.py``.

    python benchmarks/endpoints.py --part dev --endpoints 0.5 0.8 1.2 --out OUT.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import held_out  # noqa: E402
from decoder_speed import error_rates  # noqa: E402
from runtime_figures import add_held_out_arguments, machine_info, write_json  # noqa: E402

from w2v2_onnx import Transcriber  # noqa: E402
from w2v2_onnx.audio import load_audio  # noqa: E402

CATHY = "../shared/data/cathy:group=prompt_id,eval=0.1,dev=0.1"
BLOCK_SECONDS = 0.1
TOLERANCE = 0.5  # seconds between a sentence boundary and the nearest utterance boundary


def joined(transcriber: Transcriber, part: str, gap: float, seed: int) -> tuple[np.ndarray, list[str], list[float],
                                                                                list[np.ndarray]]:
    """The recordings of a held-out part joined with ``gap`` s of silence; their texts; the boundaries (s)."""
    spec = CATHY if part == "test" else f"{CATHY},part={part}"
    rows = held_out(spec, seed)[1]
    rate = transcriber.sample_rate
    recordings = [load_audio(path, rate) for path, _ in rows]
    silence = np.zeros(int(gap * rate), dtype=np.float32)
    pieces, boundaries, at = [], [], 0
    for audio in recordings:
        if pieces:
            boundaries.append((at + silence.size / 2) / rate)  # the middle of the added gap
            pieces.append(silence)
            at += silence.size
        pieces.append(audio)
        at += audio.size
    return np.concatenate(pieces), [text for _, text in rows], boundaries, recordings


def boundary_scores(utterances: list, boundaries: list[float]) -> dict:
    spans = [(a.end, b.start) for a, b in zip(utterances, utterances[1:], strict=False)]
    near = [[lo - TOLERANCE <= b <= hi + TOLERANCE for lo, hi in spans] for b in boundaries]
    found = sum(any(row) for row in near)
    true_spans = sum(any(near[i][j] for i in range(len(boundaries))) for j in range(len(spans)))
    return {"recall": round(found / max(1, len(boundaries)), 4), "precision": round(true_spans / max(1, len(spans)), 4)}


def run_setting(transcriber: Transcriber, audio: np.ndarray, texts: list[str], boundaries: list[float],
                endpoint: float, windows: tuple[float, float]) -> dict:
    rate = transcriber.sample_rate
    block = int(BLOCK_SECONDS * rate)
    stream = transcriber.stream(chunk_length=windows[0], chunk_context=windows[1], endpoint_silence=endpoint)
    utterances, delays = [], []
    start = time.perf_counter()
    for offset in range(0, audio.size, block):
        stream.feed(audio[offset:offset + block])
        for utterance in stream.take_utterances():
            utterances.append(utterance)
            delays.append(min(offset + block, audio.size) / rate - utterance.end)
    whole = stream.finish()
    utterances += stream.take_utterances()
    seconds = time.perf_counter() - start
    reference = " ".join(texts)
    row = {"endpoint_silence": endpoint, "sentences": len(texts), "utterances": len(utterances),
           **boundary_scores(utterances, boundaries),
           "delay_s_median": round(float(np.median(delays)), 2) if delays else None,
           "delay_s_p90": round(float(np.percentile(delays, 90)), 2) if delays else None,
           "utterances_wer_cer": error_rates([" ".join(u.text for u in utterances)], [reference]),
           "finish_wer_cer": error_rates([whole.text], [reference]),
           "real_time": round(audio.size / rate / seconds, 1)}
    print(f"endpoint {endpoint:4.2f} s: {row['utterances']:4d} utterances for {len(texts)} sentences, "
          f"recall {row['recall']:.3f} precision {row['precision']:.3f}, delay median {row['delay_s_median']} s, "
          f"WER utterances {row['utterances_wer_cer']['wer']:.4f} / whole {row['finish_wer_cer']['wer']:.4f}",
          flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="dev", choices=["dev", "test"], help="held-out cathy part")
    parser.add_argument("--gap", type=float, default=0.0, help="seconds of silence added between recordings")
    parser.add_argument("--endpoints", nargs="+", type=float, default=[0.5, 0.8, 1.2])
    parser.add_argument("--windows", default="4,1", metavar="LENGTH,CONTEXT")
    parser.add_argument("--limit", type=int, default=None, help="first N recordings only (a quick look)")
    add_held_out_arguments(parser)
    args = parser.parse_args()
    transcriber = Transcriber(args.model, threads=args.threads)
    audio, texts, boundaries, recordings = joined(transcriber, args.part, args.gap, args.seed)
    if args.limit:
        cut = sum(r.size for r in recordings[:args.limit]) + int(args.gap * transcriber.sample_rate) * (args.limit - 1)
        audio, texts, boundaries, recordings = (audio[:cut], texts[:args.limit], boundaries[:args.limit - 1],
                                                recordings[:args.limit])
    windows = tuple(float(v) for v in args.windows.split(","))
    per_recording = [transcriber.transcribe(r, chunk_length=windows[0], chunk_context=windows[1]).text
                     for r in recordings]
    one_at_a_time = error_rates([" ".join(per_recording)], [" ".join(texts)])
    print(f"one recording at a time: WER {one_at_a_time['wer']:.4f}", flush=True)
    rows = [run_setting(transcriber, audio, texts, boundaries, e, windows) for e in args.endpoints]
    report = {"kind": "endpoints", "machine": machine_info(), "model": args.model or "bundled", "part": args.part,
              "gap_s": args.gap, "windows": list(windows), "audio_s": round(audio.size / transcriber.sample_rate, 1),
              "tolerance_s": TOLERANCE, "one_recording_at_a_time": one_at_a_time, "settings": rows}
    if args.out:
        write_json(report, args.out)


if __name__ == "__main__":
    main()
