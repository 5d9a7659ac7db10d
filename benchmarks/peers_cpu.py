"""Speed against peers on this CPU, measured side by side in one run (runs interleaved round by round).

Systems: transformers PyTorch (eager and sdpa attention, fp32), w2v2-onnx (each precision the model directory
has), optimum's ORTModelForCTC fp32 and dynamic int8 (in its own virtual environment, since optimum-onnx pins
transformers 4.57), and CTranslate2 where its converter supports the architecture (recorded when it does not).
Random weights (speed does not depend on them); base-960h architecture by default.

    python benchmarks/peers_cpu.py --arch base --seconds 30 --threads 2 \
        --optimum-python /path/to/optimum-venv/bin/python --out benchmarks/results/peers_cpu_base.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from runtime_figures import CACHE, build_model, machine_info, speech_like  # noqa: E402

OPTIMUM_SCRIPT = r"""
import json, sys, time, numpy as np, onnxruntime as ort
from pathlib import Path
checkpoint, work = sys.argv[1], Path(sys.argv[2])
seconds, threads, repeats = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
from optimum.onnxruntime import ORTModelForCTC, ORTQuantizer
from optimum.onnxruntime.configuration import AutoQuantizationConfig
import transformers
options = ort.SessionOptions(); options.intra_op_num_threads = threads; options.inter_op_num_threads = 1
fp32_dir = work / "optimum-fp32"
if not (fp32_dir / "model.onnx").exists():
    ORTModelForCTC.from_pretrained(checkpoint, export=True).save_pretrained(fp32_dir)
int8_dir = work / "optimum-int8"
notes = {}
if not any(int8_dir.glob("*.onnx")):
    quantizer = ORTQuantizer.from_pretrained(fp32_dir)
    try:  # optimum's stock dynamic config (it quantizes Conv too)
        quantizer.quantize(save_dir=work / "optimum-int8-default",
                           quantization_config=AutoQuantizationConfig.avx2(is_static=False, per_channel=True))
    except Exception as exc:
        notes["stock avx2 dynamic config"] = f"failed: {type(exc).__name__}: {exc}"[:300]
    config = AutoQuantizationConfig.avx2(is_static=False, per_channel=True, operators_to_quantize=["MatMul"])
    quantizer.quantize(save_dir=int8_dir, quantization_config=config)
rng = np.random.default_rng(0)
t = np.arange(int(seconds * 16000)) / 16000
x = (0.1 * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2) * rng.standard_normal(t.size)).astype(np.float32)
x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
models = {"optimum fp32": ORTModelForCTC.from_pretrained(fp32_dir, session_options=options),
          "optimum int8 (dynamic MatMul, avx2 config)": ORTModelForCTC.from_pretrained(
              int8_dir, session_options=options,
                                                    file_name=next(int8_dir.glob("*.onnx")).name)}
import torch
inputs = torch.from_numpy(x)[None]
times = {k: [] for k in models}
for m in models.values():
    m(input_values=inputs)
for _ in range(repeats):
    for k, m in models.items():
        s = time.perf_counter(); m(input_values=inputs); times[k].append(time.perf_counter() - s)
from importlib.metadata import version
versions = {"optimum-onnx": version("optimum-onnx"), "transformers": transformers.__version__,
            "onnxruntime": ort.__version__}
print(json.dumps({"times": times, "versions": versions, "notes": notes}))
"""


def torch_systems(checkpoint: Path, threads: int):
    import torch
    from transformers import AutoModelForCTC

    torch.set_num_threads(threads)
    systems = {}
    for attention in ("eager", "sdpa"):
        model = AutoModelForCTC.from_pretrained(checkpoint, attn_implementation=attention).eval()

        def run(x, model=model):
            with torch.inference_mode():
                model(torch.from_numpy(x)[None])

        systems[f"PyTorch {torch.__version__} fp32 {attention}"] = run
    return systems


def ours(model_dir: Path, threads: int, precisions: list[str]):
    from w2v2_onnx import Transcriber

    systems = {}
    for precision in precisions:
        transcriber = Transcriber(model_dir, device="cpu", precision=precision, threads=threads)
        systems[f"w2v2-onnx {precision}"] = lambda x, t=transcriber: t.transcribe(x, chunk_length=1e6)
        systems[f"w2v2-onnx {precision}, 20 s windows"] = lambda x, t=transcriber: t.transcribe(x)
        if precision == "int8":  # shorter windows and context: an option, not the default (docs/runtime.md)
            systems[f"w2v2-onnx {precision}, 16 s windows, 1 s context (option)"] = (
                lambda x, t=transcriber: t.transcribe(x, chunk_length=16, chunk_context=1))
    return systems


def ctranslate2_convert(checkpoint: Path) -> tuple[str, Path | None]:
    """Convert the checkpoint with CTranslate2's own converter; returns (status, model folder or None)."""
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return "not installed (pip install ctranslate2 to record its support)", None
    out = CACHE / f"ct2-{checkpoint.name}"
    converter = Path(sys.executable).parent / "ct2-transformers-converter"
    try:
        result = subprocess.run([str(converter), "--model", str(checkpoint), "--output_dir", str(out), "--force"],
                                capture_output=True, text=True)
    except OSError as exc:
        return f"converter could not run: {exc}", None
    if result.returncode != 0:
        return "converter failed: " + (result.stderr.strip().splitlines() or ["?"])[-1][:300], None
    return "converted; timed below", out


def ctranslate2_systems(model_dir: Path, threads: int):
    """CTranslate2's Wav2Vec2 (whole model: front-end, encoder, CTC head) in fp32 and int8, one input per call."""
    import ctranslate2

    systems = {}
    for compute_type in ("float32", "int8"):
        model = ctranslate2.models.Wav2Vec2(str(model_dir), device="cpu", compute_type=compute_type,
                                            intra_threads=threads, inter_threads=1)

        def run(x, model=model):
            features = ctranslate2.StorageView.from_array(np.ascontiguousarray(x[None, None], dtype=np.float32))
            return np.array(model.encode(features, to_cpu=True))

        systems[f"CTranslate2 {ctranslate2.__version__} {compute_type}"] = run
    return systems


def agreement_with_torch(checkpoint: Path, systems: dict, x: np.ndarray) -> dict[str, dict[str, float]]:
    """Max |logit difference| and greedy frame agreement of each CTranslate2 system against PyTorch fp32."""
    import torch
    from transformers import AutoModelForCTC

    model = AutoModelForCTC.from_pretrained(checkpoint).eval()
    with torch.inference_mode():
        reference = model(torch.from_numpy(x)[None]).logits[0].numpy()
    checks = {}
    for name, run in systems.items():
        logits = run(x)[0]
        frames = min(len(logits), len(reference))
        checks[name] = {"frames": int(len(logits)), "reference_frames": int(len(reference)),
                        "max_abs_logit_diff": float(np.max(np.abs(logits[:frames] - reference[:frames]))),
                        "argmax_agreement": float(np.mean(logits[:frames].argmax(-1)
                                                          == reference[:frames].argmax(-1)))}
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="base")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precisions", default="fp32,int8")
    parser.add_argument("--optimum-python", default=None, help="python of a venv with optimum-onnx installed")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    info = machine_info()
    print(json.dumps(info, indent=2), flush=True)
    precisions = args.precisions.split(",")
    model_dir = build_model(args.arch, tuple(precisions))
    checkpoint = CACHE / f"{args.arch}-checkpoint"
    x = speech_like(args.seconds)
    normalized = ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32)
    systems = {**torch_systems(checkpoint, args.threads), **ours(model_dir, args.threads, precisions)}
    ct2_status, ct2_dir = ctranslate2_convert(checkpoint)
    ct2_checks = {}
    if ct2_dir is not None:  # converts only layer-norm front-ends (large-lv60), not base's group norm
        ct2 = ctranslate2_systems(ct2_dir, args.threads)
        ct2_checks = agreement_with_torch(checkpoint, ct2, normalized)
        systems.update(ct2)
    times: dict[str, list[float]] = {k: [] for k in systems}
    for name, run in systems.items():
        run(normalized if name.startswith(("PyTorch", "CTranslate2")) else x)  # warm-up
    for _ in range(args.repeats):
        for name, run in systems.items():
            start = time.perf_counter()
            run(normalized if name.startswith(("PyTorch", "CTranslate2")) else x)
            times[name].append(time.perf_counter() - start)
    report = {"machine": info, "arch": args.arch, "seconds": args.seconds, "threads": args.threads}
    if args.optimum_python:
        result = subprocess.run([args.optimum_python, "-c", OPTIMUM_SCRIPT, str(checkpoint), str(CACHE),
                                 str(args.seconds), str(args.threads), str(args.repeats)],
                                capture_output=True, text=True)
        if result.returncode == 0:
            optimum = json.loads(result.stdout.strip().splitlines()[-1])
            times.update(optimum["times"])
            report["optimum_versions"] = optimum["versions"]
            report["optimum_notes"] = optimum["notes"]
            report["optimum_note"] = "measured in its own process right after the others, same machine"
        else:
            report["optimum_error"] = result.stderr[-2000:]
    report["ctranslate2"] = ct2_status
    if ct2_checks:
        report["ctranslate2_vs_pytorch_fp32"] = ct2_checks
    report["rtfx"] = {name: args.seconds / statistics.median(v) for name, v in times.items()}
    report["median_s"] = {name: statistics.median(v) for name, v in times.items()}
    width = max(map(len, times))
    for name in times:
        print(f"{name:<{width}}  {report['rtfx'][name]:6.1f}x real time  ({report['median_s'][name]:.2f} s)")
    print(f"CTranslate2: {report['ctranslate2']}")
    for name, check in ct2_checks.items():
        print(f"  {name} against PyTorch fp32: max |d logit| {check['max_abs_logit_diff']:.4f}, "
              f"argmax agreement {check['argmax_agreement']:.4f} over {check['frames']} frames")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
