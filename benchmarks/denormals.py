"""Denormals: a trained model's speed with and without flushing denormal floats to zero, side by side.

Trained attention gives many probabilities below float32's normal range (1.2e-38); x86 cores handle such
denormals in microcode, far slower than normal floats, so the attention matmuls crawl. The runtime sets ONNX
Runtime's ``session.set_denormal_as_zero``. Random-weight models (the speed benchmarks' usual subject) hardly
produce denormals, which is why this needs a trained model and real speech.

    python benchmarks/denormals.py --model-dir w2v2_onnx/models/default --audio ../shared/data/cathy/*.flac \\
        --seconds 20 --out benchmarks/results/denormals_bundled.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from runtime_figures import add_run_arguments, announce_machine, interleaved_times, write_json  # noqa: E402


def session(path: Path, threads: int, flush: bool):
    import onnxruntime as ort

    from w2v2_onnx.session import DENORMAL_AS_ZERO

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if flush:
        options.add_session_config_entry(DENORMAL_AS_ZERO, "1")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("w2v2_onnx/models/default"))
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--audio", nargs="+", required=True, help="speech files, joined up to --seconds")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the model input")
    add_run_arguments(parser)
    args = parser.parse_args()

    from w2v2_onnx.audio import load_audio
    from w2v2_onnx.model_dir import load_model_config

    info = announce_machine()
    _, path = load_model_config(args.model_dir).pick_precision(args.precision, "cpu")
    samples = int(args.seconds * 16000)
    pieces, total = [], 0
    for name in args.audio:
        if total >= samples:
            break
        clip = load_audio(name, 16000)
        pieces.append(clip)
        total += clip.size
    audio = np.concatenate(pieces)[:samples]
    feeds = {"input_values": audio[None], "input_lengths": np.array([audio.size], np.int64)}
    sessions = {"flush denormals (runtime default)": session(path, args.threads, True),
                "keep denormals (ONNX Runtime default)": session(path, args.threads, False)}
    outputs = {k: s.run(["log_probs"], feeds)[0] for k, s in sessions.items()}  # also the warm-up
    times = interleaved_times({k: (lambda s=s: s.run(["log_probs"], feeds)) for k, s in sessions.items()},
                              args.repeats, warm_up=False)
    first, second = outputs.values()
    report = {
        "kind": "denormals", "machine": info, "model": str(path), "input_seconds": audio.size / 16000,
        "threads": args.threads,
        "rtfx": {k: audio.size / 16000 / statistics.median(v) for k, v in times.items()},
        "max_abs_log_prob_diff": float(np.abs(first - second).max()),
        "same_best_path": bool((first.argmax(-1) == second.argmax(-1)).all()),
    }
    for key, rtfx in report["rtfx"].items():
        print(f"{key:<40} {rtfx:7.1f}x real time")
    print(f"max |d log p| {report['max_abs_log_prob_diff']:.2e}, same best path: {report['same_best_path']}")
    if args.out:
        write_json(report, args.out)


if __name__ == "__main__":
    main()
