"""Experiment: how much faster is int8 with the conv front-end as matmuls, and at what accuracy cost?

Exports the same random-weight model through the export pipeline with ``--int8-method dynamic`` (int8 MatMuls,
conv front-end in fp32) and ``dynamic-conv`` (the front-end as channels-last int8 matmuls, the default), and
times them and fp32 side by side, interleaved.

    python benchmarks/conv_matmul_experiment.py --arch base --seconds 30 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from runtime_figures import ARCHS, CACHE, add_run_arguments, announce_machine, interleaved_times, speech_like  # noqa: E402


def export_variant(checkpoint: Path, out: Path, method: str, precisions: tuple[str, ...]) -> None:
    from w2v2_onnx_export import export_model

    if not all((out / f"model.{p}.onnx").exists() for p in precisions):
        export_model(checkpoint, out, precisions=precisions, int8_method=method, validate=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="base", choices=sorted(ARCHS))
    parser.add_argument("--seconds", type=float, default=30.0)
    add_run_arguments(parser)
    args = parser.parse_args()
    import onnxruntime as ort

    info = announce_machine()
    checkpoint = CACHE / f"{args.arch}-checkpoint"
    if not checkpoint.exists():
        from w2v2_onnx_export.testing import STANDARD_CONV, make_tiny_checkpoint

        overrides = dict(ARCHS[args.arch])
        hidden, layers = overrides.pop("hidden_size"), overrides.pop("num_layers")
        make_tiny_checkpoint(checkpoint, hidden_size=hidden, num_layers=layers, **STANDARD_CONV, **overrides)
    work = CACHE / f"{args.arch}-int8-methods"
    export_variant(checkpoint, work / "dynamic", "dynamic", ("fp32", "int8"))
    export_variant(checkpoint, work / "dynamic-conv", "dynamic-conv", ("int8",))
    files = {"fp32": work / "dynamic" / "model.fp32.onnx",
             "int8 dynamic": work / "dynamic" / "model.int8.onnx",
             "int8 dynamic-conv": work / "dynamic-conv" / "model.int8.onnx"}

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    sessions = {k: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for k, p in files.items()}
    audio = speech_like(args.seconds)
    feeds = {"input_values": audio[None], "input_lengths": np.array([audio.size], np.int64)}
    outputs = {k: s.run(["log_probs"], feeds)[0][0] for k, s in sessions.items()}  # also the warm-up
    reference = outputs["fp32"]
    best = reference.argmax(-1)
    parity = {k: {"max_abs_log_prob_diff": float(np.abs(v - reference).max()),
                  "frame_argmax_agreement": float((v.argmax(-1) == best).mean())} for k, v in outputs.items()}
    times = interleaved_times({k: (lambda s=s: s.run(["log_probs"], feeds)) for k, s in sessions.items()},
                              args.repeats, warm_up=False)
    report = {"machine": info, "arch": args.arch, "seconds": args.seconds, "threads": args.threads,
              "file_mb": {k: round(p.stat().st_size / 2**20, 1) for k, p in files.items()}, "parity_vs_fp32": parity,
              "rtfx": {k: args.seconds / statistics.median(v) for k, v in times.items()}}
    for key in sessions:
        print(f"{key:<30} {report['rtfx'][key]:6.1f}x real time  {report['file_mb'][key]:6.1f} MB  "
              f"argmax agreement {parity[key]['frame_argmax_agreement']:.3f}  "
              f"max|dlogp| {parity[key]['max_abs_log_prob_diff']:.2e}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
