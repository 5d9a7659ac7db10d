"""Two ONNX files of one model side by side on one window: the way each export lever of docs/export.md was timed.

Runs both with the runtime's session settings (2 threads by default, denormals flushed), interleaved round by
round, and prints the median of each and their ratio; first it checks that they compute the same thing on a
padded batch of two (max |d log p| and argmax agreement), since a lever must not change the function.

    python benchmarks/ab_window.py BEFORE.onnx AFTER.onnx --seconds 20 --rounds 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from runtime_figures import machine_info, speech_like  # noqa: E402


def session(path: str, threads: int):
    import onnxruntime as ort

    from w2v2_onnx.session import DENORMAL_AS_ZERO

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry(DENORMAL_AS_ZERO, "1")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    print(json.dumps(machine_info(), indent=2))
    sessions = [session(args.before, args.threads), session(args.after, args.threads)]
    samples = int(args.seconds * 16000)
    audio = speech_like(args.seconds)[None, :samples].astype(np.float32)
    feeds = {"input_values": audio, "input_lengths": np.array([samples], dtype=np.int64)}

    shorter = max(samples // 2, 8000)
    batch = np.zeros((2, samples), dtype=np.float32)
    batch[0], batch[1, :shorter] = audio[0], audio[0, :shorter]
    padded = {"input_values": batch, "input_lengths": np.array([samples, shorter], dtype=np.int64)}
    outputs = [s.run(None, padded)[0] for s in sessions]
    difference = float(np.abs(outputs[0] - outputs[1]).max())
    agreement = float((outputs[0].argmax(-1) == outputs[1].argmax(-1)).mean())
    print(f"padded batch: max |d log p| {difference:.3g}, argmax agreement {agreement:.3f}")

    for s in sessions:
        for _ in range(2):
            s.run(None, feeds)
    times: list[list[float]] = [[], []]
    for _ in range(args.rounds):
        for index, s in enumerate(sessions):
            start = time.perf_counter()
            s.run(None, feeds)
            times[index].append(time.perf_counter() - start)
    before, after = (statistics.median(t) for t in times)
    print(f"{args.seconds:g} s window: before {before * 1000:.0f} ms, after {after * 1000:.0f} ms, "
          f"after/before {after / before:.3f}")
    if args.out:
        result = {"machine": machine_info(), "kind": "ab_window", "before": args.before, "after": args.after,
                  "seconds": args.seconds, "threads": args.threads, "rounds": args.rounds,
                  "median_ms": {"before": before * 1000, "after": after * 1000}, "ratio": after / before,
                  "max_abs_diff": difference, "argmax_agreement": agreement}
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
