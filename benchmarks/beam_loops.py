"""The beam search's two frame loops, C and pure Python, side by side on a model's real log-probabilities.

A script, not a test. Runs the model (int8, as a user would) over a held-out source once, then decodes the
same log-probabilities with each loop under four settings (beam + LM, beam alone, each with two hotwords),
best of ``--repeats`` runs, decoders built beforehand. Checks that both loops give identical results (texts,
word times and probabilities) and prints each loop's seconds and its share of the acoustic model's time::

    python benchmarks/beam_loops.py --model-dir w2v2_onnx/models/default --lm LM.bin --alpha 0.75 --beta 2.0 \\
        --test "../shared/data/cathy:group=prompt_id,eval=0.1,dev=0.1" --out loops.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import acoustic, held_out  # noqa: E402
from runtime_figures import machine_info, write_json  # noqa: E402

from w2v2_onnx import Transcriber, beam_search  # noqa: E402
from w2v2_onnx.beam import BeamSearchDecoder  # noqa: E402

FRAME_S = 0.02


def best_time(decoder: BeamSearchDecoder, log_probs: list, repeats: int) -> tuple[list, float]:
    results, best = [], float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        results = [decoder.decode(lp, FRAME_S) for lp in log_probs]
        best = min(best, time.perf_counter() - start)
    return results, best


def main() -> None:
    """Time both loops and check their results are equal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--test", required=True, help="held-out source, as for benchmarks/accuracy.py")
    parser.add_argument("--lm", required=True)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--beta", type=float, default=1.5)
    parser.add_argument("--hotwords", nargs="*", default=["THE", "HOUSE"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="beam_loops.json")
    args = parser.parse_args()
    if beam_search._native is None:
        raise SystemExit("the C loop is not built here (no C compiler at install?): nothing to compare")

    name, rows = held_out(args.test, args.seed)
    transcriber = Transcriber(args.model_dir, precision="int8", threads=args.threads)
    log_probs, model_s, audio_s = acoustic(transcriber, rows)
    with_lm = BeamSearchDecoder(transcriber.config.vocabulary, lm=args.lm, alpha=args.alpha, beta=args.beta)
    plain = BeamSearchDecoder(transcriber.config.vocabulary)
    decoders = {"beam + LM": with_lm, "beam": plain,
                "beam + LM + hotwords": with_lm.replace(hotwords=args.hotwords),
                "beam + hotwords": plain.replace(hotwords=args.hotwords)}
    report = {"kind": "beam_loops", "machine": machine_info(), "model_dir": str(args.model_dir), "source": name,
              "utterances": len(rows), "audio_s": audio_s, "acoustic_int8_s": model_s, "settings": {}}
    print(f"{name}: {len(rows)} utterances, {audio_s:.0f} s of audio, int8 acoustic model {model_s:.2f} s")
    native = beam_search._native
    for label, decoder in decoders.items():
        c_results, c_s = best_time(decoder, log_probs, args.repeats)
        beam_search._native = None
        try:
            py_results, py_s = best_time(decoder, log_probs, args.repeats)
        finally:
            beam_search._native = native
        same = sum(a == b for a, b in zip(c_results, py_results, strict=True))
        report["settings"][label] = {"python_loop_s": py_s, "c_loop_s": c_s, "speedup": py_s / c_s,
                                     "c_over_acoustic": c_s / model_s, "identical": f"{same}/{len(rows)}"}
        print(f"{label:22s} Python loop {py_s:6.2f} s   C loop {c_s:6.2f} s ({c_s / model_s:.2f}x the acoustic "
              f"time)   {py_s / c_s:4.1f}x faster   identical results {same}/{len(rows)}")
    write_json(report, Path(args.out))


if __name__ == "__main__":
    main()
