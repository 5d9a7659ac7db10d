"""Experiment: does rewriting the conv front-end as matmuls make dynamic int8 faster, and at what accuracy cost?

Exports the same random-weight model twice (plain, and with the conv front-end as im2col matmuls), quantizes
both with ONNX Runtime dynamic int8 (MatMul, per-channel), and times all four side by side, interleaved.

    python benchmarks/conv_matmul_experiment.py --arch base --seconds 30 --threads 2
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
from runtime_figures import ARCHS, CACHE, machine_info, speech_like  # noqa: E402


def export_variant(checkpoint: Path, path: Path, rewrite: bool) -> None:
    from transformers import AutoModelForCTC

    from w2v2_onnx_export.conv_matmul import rewrite_conv_front_end
    from w2v2_onnx_export.onnx_export import export_onnx
    from w2v2_onnx_export.wrapper import CTCExportWrapper

    if path.exists():
        return
    model = AutoModelForCTC.from_pretrained(checkpoint, attn_implementation="eager").eval()
    if rewrite:
        print(f"rewrote {rewrite_conv_front_end(model)} conv layers as matmuls", flush=True)
    export_onnx(CTCExportWrapper(model, do_normalize=True), path, opset=17, receptive_field=400, frame_step=320)


def quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if not dst.exists():
        quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul"], per_channel=True,
                         weight_type=QuantType.QInt8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="base", choices=sorted(ARCHS))
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import onnxruntime as ort

    info = machine_info()
    print(json.dumps(info), flush=True)
    checkpoint = CACHE / f"{args.arch}-checkpoint"
    if not checkpoint.exists():
        from w2v2_onnx_export.testing import STANDARD_CONV, make_tiny_checkpoint

        overrides = dict(ARCHS[args.arch])
        hidden, layers = overrides.pop("hidden_size"), overrides.pop("num_layers")
        make_tiny_checkpoint(checkpoint, hidden_size=hidden, num_layers=layers, **STANDARD_CONV, **overrides)
    work = CACHE / f"{args.arch}-convmm"
    work.mkdir(parents=True, exist_ok=True)
    files = {"fp32": work / "plain.onnx", "fp32 conv-as-matmul": work / "convmm.onnx"}
    export_variant(checkpoint, files["fp32"], rewrite=False)
    export_variant(checkpoint, files["fp32 conv-as-matmul"], rewrite=True)
    files["int8 dynamic"] = work / "plain.int8.onnx"
    files["int8 dynamic conv-as-matmul"] = work / "convmm.int8.onnx"
    quantize(files["fp32"], files["int8 dynamic"])
    quantize(files["fp32 conv-as-matmul"], files["int8 dynamic conv-as-matmul"])

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
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(args.repeats):
        for key, session in sessions.items():
            start = time.perf_counter()
            session.run(["log_probs"], feeds)
            times[key].append(time.perf_counter() - start)
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
