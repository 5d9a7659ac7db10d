"""Two ONNX files of one model side by side on one window: the way each export lever of docs/export.md was timed.

Runs both with the runtime's session settings (2 threads by default, denormals flushed), interleaved round by
round, and prints the median of each and their ratio; first it checks that they compute the same thing on a
padded batch of two (max |d log p| and argmax agreement), since a lever must not change the function.

    python benchmarks/ab_window.py BEFORE.onnx AFTER.onnx --seconds 20 --rounds 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from denormals import session  # noqa: E402
from runtime_figures import announce_machine, interleaved_times, speech_like, write_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    machine = announce_machine()
    sessions = [session(path, args.threads, flush=True) for path in (args.before, args.after)]
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

    times = interleaved_times({index: (lambda s=s: s.run(None, feeds)) for index, s in enumerate(sessions)},
                              args.rounds)
    before, after = (statistics.median(times[index]) for index in range(2))
    print(f"{args.seconds:g} s window: before {before * 1000:.0f} ms, after {after * 1000:.0f} ms, "
          f"after/before {after / before:.3f}")
    if args.out:
        result = {"machine": machine, "kind": "ab_window", "before": str(args.before), "after": str(args.after),
                  "seconds": args.seconds, "threads": args.threads, "rounds": args.rounds,
                  "median_ms": {"before": before * 1000, "after": after * 1000}, "ratio": after / before,
                  "max_abs_diff": difference, "argmax_agreement": agreement}
        write_json(result, args.out)


if __name__ == "__main__":
    main()
