"""Beam search over long recordings: peak memory for an hour of speech, and accuracy of segmenting at gaps.

A script, not a test. Real read speech (the cathy recordings, looped to the length asked) is written to a
scratch file; ``transcribe()`` with the bundled model runs in a fresh process per decoder and reports its
peak resident memory. Then the held-out cathy prompts (test and dev parts) are joined into one recording and
beam-searched with the model's language model as one search, in segments of 60 s and 30 s (cut between
words, ``BeamSearchDecoder.decode(max_segment_seconds=...)``), with the default restarts at 0.5 s pauses too,
and one utterance at a time::

    python benchmarks/long_beam.py --minutes 60 --out benchmarks/results/long_beam_bundled.json
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import held_out  # noqa: E402
from decoder_speed import error_rates  # noqa: E402
from runtime_figures import machine_info, write_json  # noqa: E402

CATHY = "../shared/data/cathy"
SPLITS = "group=prompt_id,eval=0.1,dev=0.1"
MEMORY = """
import sys, time
def field(name): return int(next(l for l in open('/proc/self/status') if l.startswith(name)).split()[1]) / 1024
import w2v2_onnx
from w2v2_onnx.beam import BeamSearchDecoder
m = w2v2_onnx.Transcriber(None, device="cpu", threads={threads})
decoder = {decoder!r}
if decoder == "one search":  # as before segmenting: the whole hour in one beam search (LM loaded once)
    lm = m.language_model
    whole = BeamSearchDecoder(m.config.vocabulary, lm=lm.path, alpha=lm.alpha, beta=lm.beta)
else:
    m.check_options(decoder=decoder)  # loads the LM before the clock starts
loaded = field('VmRSS'); start = time.perf_counter()
if decoder == "one search":
    frames = m.log_probs({path!r})
    whole.decode(frames, m.config.frame_duration, max_segment_seconds=None, sentence_pause_seconds=None)
    used, duration = "beam, one search", frames.shape[0] * m.config.frame_duration
else:
    r = m.transcribe({path!r}, decoder=decoder)
    used, duration = r.options["decoder"], r.duration
print(loaded, field('VmHWM'), time.perf_counter() - start, duration, used)
"""


def read_mono(path: str | Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    if rate != 16000:
        raise SystemExit(f"{path}: {rate} Hz, expected 16000")
    return audio if audio.ndim == 1 else audio.mean(axis=1)


def write_looped(path: Path, minutes: float) -> None:
    """Cathy's recordings in manifest order, looped until ``minutes`` of audio are written."""
    with open(Path(CATHY) / "manifest.tsv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    target, written, index = int(minutes * 60 * 16000), 0, 0
    with sf.SoundFile(path, "w", samplerate=16000, channels=1, format="FLAC") as out:
        while written < target:
            audio = read_mono(Path(CATHY) / rows[index % len(rows)]["path"])
            out.write(audio)
            written += audio.size
            index += 1


def memory(path: Path, threads: int) -> dict:
    results = {}
    for decoder in ("greedy", None, "one search"):  # None: transcribe()'s default, beam + LM in segments
        code = MEMORY.format(threads=threads, decoder=decoder, path=str(path))
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        loaded, peak, seconds, duration, used = out.split(maxsplit=4)
        used = used.strip()
        results[used] = {"rss_after_load_mb": round(float(loaded)), "peak_rss_mb": round(float(peak)),
                         "transcribe_s": round(float(seconds), 1), "audio_s": round(float(duration), 1)}
        print(f"{used:16s}: peak {results[used]['peak_rss_mb']} MB (after load {results[used]['rss_after_load_mb']}"
              f" MB), {results[used]['transcribe_s']} s", flush=True)
    return results


def segment_accuracy(threads: int, seed: int) -> dict:
    from w2v2_onnx import Transcriber
    from w2v2_onnx.beam import BeamSearchDecoder

    rows = held_out(f"{CATHY}:{SPLITS}", seed)[1] + held_out(f"{CATHY}:{SPLITS},part=dev", seed)[1]
    audio = [read_mono(path) for path, _ in rows]
    reference = " ".join(text for _, text in rows)
    transcriber = Transcriber(device="cpu", threads=threads)
    lm = transcriber.language_model
    decoder = BeamSearchDecoder(transcriber.config.vocabulary, lm=lm.path, alpha=lm.alpha, beta=lm.beta)
    log_probs = transcriber.log_probs(np.concatenate(audio))
    results: dict = {"utterances": len(rows), "audio_s": round(sum(a.size for a in audio) / 16000, 1)}
    for name, limit, pause in (("one search", None, None), ("segments of 60 s", 60.0, None),
                               ("segments of 30 s", 30.0, None),
                               ("segments of 60 s, restarted at 0.5 s pauses (the default)", 60.0, 0.5)):
        start = time.perf_counter()
        decoded = decoder.decode(log_probs, transcriber.config.frame_duration, max_segment_seconds=limit,
                                 sentence_pause_seconds=pause)
        results[name] = {**error_rates([decoded.text], [reference]), "decode_s": round(time.perf_counter() - start, 2)}
        print(f"{name:18s} WER {results[name]['wer']:.4f} CER {results[name]['cer']:.4f}", flush=True)
    texts = [decoder.decode(transcriber.log_probs(a), transcriber.config.frame_duration).text for a in audio]
    results["one utterance at a time"] = error_rates([" ".join(texts)], [reference])
    print(f"{'per utterance':18s} WER {results['one utterance at a time']['wer']:.4f}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="the split seed used in training")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/w2v2_long_beam.flac"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not args.scratch.exists():
        write_looped(args.scratch, args.minutes)
    report = {"kind": "long_beam", "machine": machine_info(), "minutes": args.minutes,
              "memory": memory(args.scratch, args.threads), "segments": segment_accuracy(args.threads, args.seed)}
    if args.out:
        write_json(report, args.out)


if __name__ == "__main__":
    main()
