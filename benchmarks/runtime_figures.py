"""Runtime figures: cold start, real-time factor on a 30 s input, peak memory against audio duration.

A script, not a test. It builds a random-weight model of a named architecture (speed does not depend on the
weight values), exports it with the export stage, then measures the runtime as a user would call it.
Prints the machine, providers and versions, and writes JSON.

    python benchmarks/runtime_figures.py --arch base --threads 2 --out benchmarks/results/runtime_base.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ARCHS = {
    # facebook/wav2vec2-base-960h: group-norm conv front-end, post-layer-norm transformer
    "base": dict(hidden_size=768, num_layers=12, num_attention_heads=12, intermediate_size=3072,
                 num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, feat_extract_norm="group",
                 conv_bias=False),
    # facebook/wav2vec2-large-960h-lv60-self: layer-norm conv front-end, stable layer norm
    "large": dict(hidden_size=1024, num_layers=24, num_attention_heads=16, intermediate_size=4096,
                  num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, feat_extract_norm="layer",
                  do_stable_layer_norm=True, conv_bias=True),
}
CACHE = Path(os.environ.get("W2V2_BENCH_CACHE", "/tmp/w2v2-bench"))


def machine_info() -> dict:
    import onnxruntime as ort

    import w2v2_onnx

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cpus_available": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "onnxruntime": ort.__version__, "providers": ort.get_available_providers(), "numpy": np.__version__,
            "w2v2_onnx": w2v2_onnx.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def add_run_arguments(parser, *, repeats: int = 5) -> None:
    """``--threads``, ``--repeats`` and ``--out``, as the side-by-side benchmark scripts take them."""
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=repeats, help="interleaved rounds; medians are reported")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")


def add_held_out_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the scripts that run a model directory on held-out data: model, threads, split seed, output."""
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="the split seed used in training")
    parser.add_argument("--out", type=Path)


def announce_machine() -> dict:
    """Print the machine, providers and versions (every benchmark starts so), and return them."""
    info = machine_info()
    print(json.dumps(info), flush=True)
    return info


def interleaved_times(runs: dict[str, Callable[[], object]], repeats: int, *, warm_up: bool = True
                      ) -> dict[str, list[float]]:
    """Wall seconds of every run, ``repeats`` rounds interleaved so machine noise hits all alike.

    With ``warm_up`` each run goes once untimed first (arena allocation, kernel selection).
    """
    if warm_up:
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    return times


def write_json(report: dict, out: Path) -> None:
    """Write a benchmark's results as JSON (creating the folder) and say where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


def build_model(arch: str, precisions: tuple[str, ...]) -> Path:
    """Export a random-weight model of ``arch`` once and cache it."""
    out = CACHE / f"{arch}-model"
    if all((out / f"model.{p}.onnx").exists() for p in precisions):
        return out
    from w2v2_onnx_export import export_model
    from w2v2_onnx_export.testing import STANDARD_CONV, make_tiny_checkpoint

    overrides = dict(ARCHS[arch])
    hidden, layers = overrides.pop("hidden_size"), overrides.pop("num_layers")
    checkpoint = make_tiny_checkpoint(CACHE / f"{arch}-checkpoint", hidden_size=hidden, num_layers=layers,
                                      **STANDARD_CONV, **overrides)
    start = time.perf_counter()
    export_model(checkpoint, out, precisions=precisions, validate=False)
    print(f"exported {arch} ({', '.join(precisions)}) in {time.perf_counter() - start:.0f} s", flush=True)
    return out


def speech_like(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Noise with a syllable-rate envelope; content does not change speed, but keep it audio-like."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.1 * envelope * rng.standard_normal(t.size)).astype(np.float32)


COLD_START = """
import time; t0 = time.perf_counter()
import numpy as np, w2v2_onnx; t1 = time.perf_counter()
m = w2v2_onnx.Transcriber({model!r}, device="cpu", precision={precision!r}, threads={threads}); t2 = time.perf_counter()
m.transcribe(np.zeros(16000, np.float32)); t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def cold_start(model: Path, precision: str, threads: int, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        code = COLD_START.format(model=str(model), precision=precision, threads=threads)
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        runs.append([float(v) for v in out.split()])
    import_s, load_s, first_s = (statistics.median(r[i] for r in runs) for i in range(3))
    return {"import_s": import_s, "load_s": load_s, "first_call_1s_audio_s": first_s,
            "total_s": import_s + load_s + first_s}


def speed(model: Path, precisions: tuple[str, ...], threads: int, seconds: float, repeats: int) -> dict:
    """Real-time factor of each precision, interleaved run by run so machine noise hits all alike."""
    from w2v2_onnx import Transcriber

    audio = speech_like(seconds)
    setups = {}
    for precision in precisions:
        transcriber = Transcriber(model, device="cpu", precision=precision, threads=threads)
        for label, chunk in (("windowed_20s", 20.0), ("single_pass", seconds + 1)):
            setups[f"{precision}/{label}"] = (transcriber, chunk)
    times = interleaved_times({key: (lambda t=transcriber, c=chunk: t.transcribe(audio, chunk_length=c))
                               for key, (transcriber, chunk) in setups.items()}, repeats)
    return {key: {"median_s": statistics.median(v), "min_s": min(v), "rtfx_median": seconds / statistics.median(v),
                  "runs": len(v)} for key, v in times.items()}


def sweep_lengths(model: Path, precision: str, threads: int, lengths: list[float], repeats: int) -> dict:
    """Latency (p50, p95) and real-time factor per input length, batch 1."""
    from w2v2_onnx import Transcriber

    transcriber = Transcriber(model, device="cpu", precision=precision, threads=threads)
    results = {}
    for seconds in lengths:
        audio = speech_like(seconds, seed=int(seconds * 10))
        transcriber.transcribe(audio)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            transcriber.transcribe(audio)
            times.append(time.perf_counter() - start)
        times.sort()
        results[f"{seconds:g}"] = {"p50_s": statistics.median(times), "p95_s": times[min(len(times) - 1,
                                   int(0.95 * len(times)))], "rtfx": seconds / statistics.median(times)}
        print(f"  {precision} {seconds:5g} s: p50 {results[f'{seconds:g}']['p50_s'] * 1000:7.1f} ms, "
              f"{results[f'{seconds:g}']['rtfx']:5.1f}x real time", flush=True)
    return results


def sweep_batches(model: Path, precision: str, threads: int, batch_sizes: list[int], clip_seconds: float,
                  repeats: int) -> dict:
    """Throughput (real-time factor) per batch size on clips of slightly varied length."""
    from w2v2_onnx import Transcriber

    transcriber = Transcriber(model, device="cpu", precision=precision, threads=threads)
    results = {}
    for batch in batch_sizes:
        clips = [speech_like(clip_seconds * (0.9 + 0.2 * i / max(1, batch - 1)), seed=i) for i in range(batch)]
        total = sum(c.size for c in clips) / 16000
        transcriber.transcribe(clips, batch_size=batch)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            transcriber.transcribe(clips, batch_size=batch)
            times.append(time.perf_counter() - start)
        results[str(batch)] = {"median_s": statistics.median(times), "rtfx": total / statistics.median(times)}
        print(f"  {precision} batch {batch:3d} x {clip_seconds:g} s: {results[str(batch)]['rtfx']:5.1f}x real time",
              flush=True)
    return results


MEMORY = """
import sys, time, resource
def rss(): return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) / 1024
def hwm(): return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024
import w2v2_onnx
m = w2v2_onnx.Transcriber({model!r}, device="cpu", precision={precision!r}, threads={threads})
loaded = rss(); t0 = time.perf_counter()
r = m.transcribe({path!r})
print(loaded, hwm(), time.perf_counter() - t0, r.duration)
"""


def write_long_file(path: Path, minutes: float, rate: int = 16000) -> None:
    """Write a long FLAC block by block (so making it needs no memory either)."""
    import soundfile as sf

    if path.exists():
        return
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, format="FLAC") as f:
        for i in range(int(minutes * 6)):
            f.write(speech_like(10.0, rate, seed=i))


def memory(model: Path, precision: str, threads: int, minutes: list[float]) -> dict:
    results = {}
    for m in minutes:
        path = CACHE / f"speech_{m:g}min.flac"
        write_long_file(path, m)
        code = MEMORY.format(model=str(model), precision=precision, threads=threads, path=str(path))
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        loaded, peak, elapsed, duration = (float(v) for v in out.split())
        results[f"{m:g}min"] = {"rss_after_load_mb": loaded, "peak_rss_mb": peak, "transcribe_s": elapsed,
                                "audio_s": duration, "rtfx": duration / elapsed}
        print(f"  {m:g} min: peak {peak:.0f} MB (after load {loaded:.0f} MB), {duration / elapsed:.1f}x real time",
              flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(ARCHS), default="base")
    parser.add_argument("--precisions", default="fp32,int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory-minutes", default="2,60", help="durations for the memory test ('' to skip)")
    parser.add_argument("--lengths", default="", help="input lengths in seconds for a latency sweep, e.g. 1,5,10,30")
    parser.add_argument("--batch-sizes", default="", help="batch sizes for a throughput sweep, e.g. 1,4,16")
    parser.add_argument("--batch-clip-seconds", type=float, default=5.0)
    parser.add_argument("--memory-precision", default="int8")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    precisions = tuple(p for p in args.precisions.split(",") if p)
    info = machine_info()
    print(json.dumps(info, indent=2), flush=True)
    model = build_model(args.arch, precisions)
    sizes = {p: round((model / f"model.{p}.onnx").stat().st_size / 2**20, 1) for p in precisions}
    print(f"model files (MB): {sizes}", flush=True)
    report = {"machine": info, "arch": args.arch, "threads": args.threads, "seconds": args.seconds,
              "file_mb": sizes}
    report["cold_start"] = {p: cold_start(model, p, args.threads, 3) for p in precisions}
    print("cold start:", json.dumps(report["cold_start"], indent=2), flush=True)
    report["speed"] = speed(model, precisions, args.threads, args.seconds, args.repeats)
    for key, value in report["speed"].items():
        print(f"  {key:>22}: {value['rtfx_median']:6.1f}x real time ({value['median_s']:.2f} s per "
              f"{args.seconds:g} s)", flush=True)
    lengths = [float(v) for v in args.lengths.split(",") if v]
    if lengths:
        report["lengths"] = {p: sweep_lengths(model, p, args.threads, lengths, args.repeats) for p in precisions}
    batch_sizes = [int(v) for v in args.batch_sizes.split(",") if v]
    if batch_sizes:
        report["batches"] = {p: sweep_batches(model, p, args.threads, batch_sizes, args.batch_clip_seconds,
                                              max(2, args.repeats // 2)) for p in precisions}
    minutes = [float(m) for m in args.memory_minutes.split(",") if m]
    if minutes:
        report["memory"] = memory(model, args.memory_precision, args.threads, minutes)
    if args.out:
        write_json(report, args.out)


if __name__ == "__main__":
    main()
