"""Export-stage figures for wav2vec2-base-960h and -large-960h-lv60-self architectures (random weights).

Measures, per architecture: export time, file size per precision, parity (fp32 vs PyTorch; fp16/int8 vs
fp32 on calibration audio) and the real-time factor (RTFx, audio seconds per wall second) of each
precision and variant on this CPU with a fixed thread count. Speed does not depend on weight values;
accuracy figures of a random-weight model only compare precisions with each other.

    python benchmarks/export_figures.py --archs base,large --out benchmarks/export_figures.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ARCHS: dict[str, dict[str, Any]] = {
    # facebook/wav2vec2-base-960h
    "base": dict(
        hidden_size=768, num_layers=12, num_attention_heads=12, intermediate_size=3072,
        feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False,
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
    ),
    # facebook/wav2vec2-large-960h-lv60-self
    "large": dict(
        hidden_size=1024, num_layers=24, num_attention_heads=16, intermediate_size=4096,
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
    ),
}  # fmt: skip

DEFAULT_CALIBRATION = Path("/work/shared/data/cathy/manifest.tsv")


def machine() -> dict[str, Any]:
    """Machine and library versions, printed and stored with the figures."""
    import onnx
    import onnxruntime
    import torch
    import transformers

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus_visible": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "provider": "CPUExecutionProvider",
        "numpy": np.__version__,
        "load_average_at_start": os.getloadavg(),
    }


def time_once(session: Any, audio: np.ndarray) -> float:
    """Wall seconds of one run on a ``[1, samples]`` input."""
    feeds = {"input_values": audio[None], "input_lengths": np.array([len(audio)], dtype=np.int64)}
    start = time.perf_counter()
    session.run(None, feeds)
    return time.perf_counter() - start


def rtfx(session: Any, audio: np.ndarray, reps: int) -> dict[str, float]:
    """Real-time factor of one ``[1, samples]`` input: warm-up run, then ``reps`` timed runs."""
    feeds = {"input_values": audio[None], "input_lengths": np.array([len(audio)], dtype=np.int64)}
    session.run(None, feeds)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    seconds = len(audio) / 16000
    return {
        "rtfx_best": seconds / min(times),
        "rtfx_median": seconds / statistics.median(times),
        "runs": reps,
        "wall_s": times,
    }


def torch_rtfx(checkpoint: Path, audio: np.ndarray, reps: int, threads: int) -> dict[str, float]:
    """PyTorch eager fp32 reference speed on the same input."""
    import torch
    import transformers

    torch.set_num_threads(threads)
    model = transformers.AutoModelForCTC.from_pretrained(checkpoint, attn_implementation="eager").eval()
    values = torch.from_numpy(((audio - audio.mean()) / np.sqrt(audio.var() + 1e-7))[None].astype(np.float32))
    times = []
    with torch.inference_mode():
        model(values)
        for _ in range(reps):
            start = time.perf_counter()
            model(values)
            times.append(time.perf_counter() - start)
    seconds = len(audio) / 16000
    return {
        "rtfx_best": seconds / min(times),
        "rtfx_median": seconds / statistics.median(times),
        "runs": reps,
    }


def run_arch(name: str, work: Path, args: argparse.Namespace, audio: np.ndarray) -> dict[str, Any]:
    """All figures of one architecture."""
    from w2v2_onnx_export import Thresholds, export_model
    from w2v2_onnx_export.calibration import load_calibration_audio
    from w2v2_onnx_export.optimize import optimize_fp32
    from w2v2_onnx_export.quantize import quantize_int8
    from w2v2_onnx_export.report import op_histogram
    from w2v2_onnx_export.testing import BASE_960H_VOCAB, STANDARD_CONV, make_tiny_checkpoint
    from w2v2_onnx_export.validate import make_session, validate_against_fp32

    spec = dict(ARCHS[name])
    hidden, layers = spec.pop("hidden_size"), spec.pop("num_layers")
    checkpoint = make_tiny_checkpoint(
        work / f"{name}_ckpt",
        vocab=BASE_960H_VOCAB,
        hidden_size=hidden,
        num_layers=layers,
        **STANDARD_CONV,
        **spec,
    )
    out = work / f"{name}_model"
    calibration = args.calibration if args.calibration and Path(args.calibration).exists() else None
    start = time.perf_counter()
    report = export_model(
        checkpoint,
        out,
        precisions=("fp32", "fp16", "int8"),
        optimize=False,  # the optimized variants are measured separately below
        calibration=calibration,
        thresholds=Thresholds(fp16_max_cer=1.0, int8_max_cer=1.0),
        validate=not args.no_validate,
        calibration_items=args.calibration_items,
    )
    result: dict[str, Any] = {
        "export_total_s": time.perf_counter() - start,
        "timings_s": report.timings_s,
        "sizes_mb": {k: v / 1e6 for k, v in report.sizes_bytes.items()},
        "parity": report.parity,
        "notes": report.notes,
        "node_counts": report.node_counts,
        "rtfx": {},
        "skipped": [],
    }
    config = report.config
    clips = load_calibration_audio(calibration, max_items=args.calibration_items)
    variants = {p: out / f"model.{p}.onnx" for p in ("fp32", "int8", "fp16")}
    # Extra variants measured against the defaults.
    extra = {
        "fp32_optimized_fused": lambda p: optimize_fp32(p, _hf_config(checkpoint), fuse_attention=True),
        "fp32_optimized_nofuse": lambda p: optimize_fp32(p, _hf_config(checkpoint), fuse_attention=False),
        "int8_static_qdq": None,
    }
    for variant, fn in extra.items() if not args.skip_variants else []:
        path = work / f"{name}_{variant}.onnx"
        t0 = time.perf_counter()
        if fn is None:
            result["notes"].extend(quantize_int8(out / "model.fp32.onnx", path, clips, method="static"))
        else:
            shutil.copyfile(out / "model.fp32.onnx", path)
            result["notes"].extend(f"{variant}: {n}" for n in fn(path))
        result["timings_s"][variant] = time.perf_counter() - t0
        result["sizes_mb"][variant] = path.stat().st_size / 1e6
        result["node_counts"][variant] = op_histogram(path)
        figures = validate_against_fp32(path, variants["fp32"], config, clips)
        result["parity"][variant] = figures
        variants[variant] = path
    order = ["fp32", "int8", "int8_static_qdq", "fp32_optimized_fused", "fp32_optimized_nofuse", "fp16"]
    order = [v for v in order if v in variants]
    deadline = time.perf_counter() + args.budget_s  # the budget bounds the speed runs only
    if args.interleave:
        # Round-robin over all variants so a change in machine load hits every variant alike.
        sessions = {v: make_session(variants[v], threads=args.threads) for v in order}
        for v in order:
            time_once(sessions[v], audio)  # warm-up
        times: dict[str, list[float]] = {v: [] for v in order}
        for _ in range(args.reps):
            for v in order:
                times[v].append(time_once(sessions[v], audio))
        seconds = len(audio) / 16000
        for v in order:
            result["rtfx"][v] = {
                "rtfx_best": seconds / min(times[v]),
                "rtfx_median": seconds / statistics.median(times[v]),
                "runs": args.reps,
                "wall_s": times[v],
                "interleaved": True,
            }
            print(f"  {name} {v}: RTFx {result['rtfx'][v]['rtfx_best']:.1f}", flush=True)
        del sessions
    for variant in order if not args.interleave else []:
        if time.perf_counter() > deadline:
            result["skipped"].append(f"rtfx {variant}: time budget ({args.budget_s} s) spent")
            continue
        reps = 1 if variant == "fp16" else args.reps
        session = make_session(variants[variant], threads=args.threads)
        result["rtfx"][variant] = rtfx(session, audio, reps)
        del session
        print(f"  {name} {variant}: RTFx {result['rtfx'][variant]['rtfx_best']:.1f}", flush=True)
    if time.perf_counter() < deadline:
        result["rtfx"]["pytorch_eager_fp32"] = torch_rtfx(
            checkpoint, audio, max(1, args.reps - 1), args.threads
        )
    else:
        result["skipped"].append("rtfx pytorch: time budget spent")
    return result


def _hf_config(checkpoint: Path) -> Any:
    import transformers

    return transformers.AutoConfig.from_pretrained(checkpoint)


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="base,large")
    parser.add_argument("--seconds", type=float, default=30.0, help="input length of the speed runs")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calibration", default=str(DEFAULT_CALIBRATION))
    parser.add_argument("--calibration-items", type=int, default=16)
    parser.add_argument("--budget-s", type=float, default=600.0, help="per architecture, for the speed runs")
    parser.add_argument(
        "--interleave", action="store_true", help="time variants round-robin (noisy machines)"
    )
    parser.add_argument("--no-validate", action="store_true", help="skip parity checks (speed-only rerun)")
    parser.add_argument("--skip-variants", action="store_true", help="only the default fp32/fp16/int8 files")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/export_figures.json"))
    args = parser.parse_args(argv)

    from w2v2_onnx_export.calibration import load_calibration_audio

    info = machine()
    print(json.dumps(info, indent=1), flush=True)
    calibration = args.calibration if Path(args.calibration).exists() else None
    pool = np.concatenate(load_calibration_audio(calibration, max_items=64))
    need = int(args.seconds * 16000)
    audio = np.ascontiguousarray(np.tile(pool, need // len(pool) + 1)[:need], dtype=np.float32)
    results: dict[str, Any] = {
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "archs": {},
    }
    with tempfile.TemporaryDirectory(prefix="w2v2_export_fig_") as tmp:
        for name in args.archs.split(","):
            print(f"== {name}", flush=True)
            start = time.perf_counter()
            results["archs"][name] = run_arch(name, Path(tmp), args, audio)
            results["archs"][name]["arch_total_s"] = time.perf_counter() - start
            results["archs"][name]["load_average_after"] = os.getloadavg()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
            for p in Path(tmp).iterdir():  # free disk between architectures
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
