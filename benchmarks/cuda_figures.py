"""CUDA figures: ONNX Runtime fp32/fp16 with IO binding against PyTorch eager, side by side in one process.

A script, not a test. Two steps, so that the (CPU) exports can run while other work goes on:

    python benchmarks/cuda_figures.py prepare --arch base --dir /tmp/cuda-bench
    python benchmarks/cuda_figures.py run --arch base --dir /tmp/cuda-bench --out results/cuda_base.json

``prepare`` builds a random-weight checkpoint (speed does not depend on the weights) and exports the graph
variants measured here: the export stage's fp32 (optimized, fused attention) and fp16 graphs, and levers
(fp16 with the layer norms in fp16 too; fp16 with the conv front-end as channels-last matmuls).
``run`` times, on the GPU and interleaved round by round so clock changes hit all alike:

- the model alone with IO binding (input on the GPU, output left there): 1 x 10 s latency, 16 x 30 s and
  64 x 30 s throughput, per variant, against PyTorch fp32 eager, fp16 eager and fp16 sdpa (+ cudnn.benchmark);
- provider settings: cuDNN conv algorithm search EXHAUSTIVE for fixed shapes, CUDA graphs;
- the runtime as users call it (``Transcriber.transcribe`` on CUDA: host copies, windows, greedy decoding);
- latency p50/p95 for 1 to 30 s at batch 1 and throughput for batch 1 to 64;
- cold start (import, session, first call) in a fresh process;
- each variant's largest log-probability difference from PyTorch fp32 and its greedy-path agreement.

Prints the machine, GPU, providers and versions, a table at the end, and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from runtime_figures import ARCHS, interleaved_times, machine_info, speech_like, write_json  # noqa: E402

CUDA = "CUDAExecutionProvider"
#: Where everything runs; a smoke test on a machine without a GPU sets "cpu" (and CUDA to the CPU provider).
DEVICE = "cuda"
#: (batch, seconds) of the side-by-side groups, of the provider-settings groups; the sweeps' lengths and batches.
SIDE_BY_SIDE_SHAPES = [(1, 10.0), (16, 30.0), (64, 30.0)]
SETTINGS_SHAPES = [(1, 10.0), (16, 30.0)]
SWEEP_LENGTHS = (1.0, 5.0, 10.0, 20.0, 30.0)
SWEEP_BATCHES = (1, 4, 16, 64)
END_TO_END_FILES = (16, 30.0)
#: The graph variants ``prepare`` writes, as file names in the model directory.
VARIANTS = {
    "fp32": "model.fp32.onnx",
    "fp16": "model.fp16.onnx",
    "fp16-ln16": "lever.fp16-ln16.onnx",
    "fp16-convmm": "lever.fp16-convmm.onnx",
}
#: Attention-mask levers on the conv-as-matmuls fp16 graph (``cuda_graph_variants.py``), for the ``attention`` step.
MASK_VARIANTS = {
    "fp16-convmm-seqstart": "lever.fp16-convmm-seqstart.onnx",
    "fp16-convmm-nomask": "lever.fp16-convmm-nomask.onnx",
}
#: Variants also run with the shapes fixed at session creation (free dimension overrides) and CUDA graphs.
#: (Fixed-shape *files*, dims pinned and shapes folded offline, were measured in the attention round at commit
#: bb429dd: slower, 1 x 10 s 5.2 ms against 3.4 ms, so that lever is no longer written.)
OVERRIDE_VARIANTS = ("fp16-convmm", "fp16")


# ----------------------------------------------------------------------------------------------- prepare
def prepare(arch: str, work: Path, only: str | None = None) -> None:
    """Write the checkpoint and every graph variant under ``work`` (skipping what exists).

    ``only`` (``main`` or ``convmm``) splits the work in two, for two processes at once.
    """
    from w2v2_onnx_export import export_model
    from w2v2_onnx_export.fp16 import FP32_OPS, LAYER_NORM_OPS, convert_fp16
    from w2v2_onnx_export.testing import STANDARD_CONV, make_tiny_checkpoint

    overrides = dict(ARCHS[arch])
    hidden, layers = overrides.pop("hidden_size"), overrides.pop("num_layers")
    checkpoint, ready = work / "checkpoint", work / "checkpoint-ready"
    if only == "convmm":  # the other process writes the checkpoint
        for _ in range(600):
            if ready.exists():
                break
            time.sleep(0.5)
    if not ready.exists():
        make_tiny_checkpoint(checkpoint, hidden_size=hidden, num_layers=layers, **STANDARD_CONV, **overrides)
        ready.write_text("done\n")
    model_dir = work / "model"
    lean_ops = tuple(op for op in FP32_OPS if op not in LAYER_NORM_OPS)
    steps: list[tuple[str, Callable[[], None]]] = [
        # "fp16" stays the convolution graph (the baseline of the earlier rounds); "fp16-convmm" is what the
        # export writes by default since the thirteenth session (fp16_front_end="auto")
        ("fp32+fp16", lambda: export_model(checkpoint, model_dir, precisions=("fp32", "fp16"), validate=False,
                                           fp16_front_end="conv")),
        ("fp16-ln16", lambda: convert_fp16(model_dir / VARIANTS["fp32"], model_dir / VARIANTS["fp16-ln16"],
                                           fp32_ops=lean_ops)),
        ("fp16-convmm", lambda: _conv_matmul_fp16(checkpoint, model_dir / VARIANTS["fp16-convmm"], lean_ops)),
        ("attention levers", lambda: _attention_levers(model_dir)),
    ]
    if only is not None:
        steps = [(n, f) for n, f in steps if (n in ("fp16-convmm", "attention levers")) == (only == "convmm")]
    for name, step in steps:
        target = model_dir / (MASK_VARIANTS["fp16-convmm-nomask"] if name == "attention levers"
                              else VARIANTS["fp16" if name == "fp32+fp16" else name])
        if target.exists():
            continue
        start = time.perf_counter()
        try:
            step()
            print(f"prepared {name} in {time.perf_counter() - start:.0f} s", flush=True)
        except Exception:  # a failed lever must not cost the others
            print(f"prepare {name} FAILED:\n{traceback.format_exc()}", flush=True)
    (work / f"prepared-{only or 'all'}").write_text("done\n")


def _conv_matmul_fp16(checkpoint: Path, out: Path, fp32_ops: tuple[str, ...]) -> None:
    """fp16 graph with the conv front-end as channels-last matmuls (the int8 export's rewrite), optimized."""
    import tempfile

    from w2v2_onnx_export import contract
    from w2v2_onnx_export.checkpoint import load_checkpoint
    from w2v2_onnx_export.fp16 import convert_fp16
    from w2v2_onnx_export.optimize import optimize_fp32
    from w2v2_onnx_export.pipeline import _export_conv_as_matmuls
    from w2v2_onnx_export.report import ExportReport

    loaded = load_checkpoint(checkpoint)
    config = contract.build_config(loaded, {})
    report = ExportReport(out_dir=out.parent, config=config)
    with tempfile.TemporaryDirectory() as tmp:
        path, _ = _export_conv_as_matmuls(loaded.model, loaded, "dynamic-conv", Path(tmp), 17, config, report,
                                          for_cpu=False)  # the lever as measured: no CPU spans, fused by the optimizer
        print("  ", report.notes + optimize_fp32(path, loaded.model.config), flush=True)
        convert_fp16(path, out, fp32_ops=fp32_ops)


def _attention_levers(model_dir: Path) -> None:
    """The mask-format variants of the conv-as-matmuls fp16 graph."""
    from cuda_graph_variants import attention_mask_variant

    source = model_dir / VARIANTS["fp16-convmm"]
    for name, file in MASK_VARIANTS.items():
        changed = attention_mask_variant(source, model_dir / file, name.rsplit("-", 1)[1])
        print(f"  {name}: {changed} Attention nodes rewritten", flush=True)


# ----------------------------------------------------------------------------------------------- run
def gpu_info() -> dict:
    info: dict = {}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout
        info["nvidia_smi"] = out.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        info["nvidia_smi"] = f"unavailable: {exc}"
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    except Exception as exc:  # torch is optional for the ORT half
        info["torch"] = f"unavailable: {exc}"
    return info


class OrtRunner:
    """One CUDA session, its input batch already on the GPU, outputs left on the GPU (or copied out)."""

    def __init__(self, path: Path, options: dict | None = None, dims: dict[str, int] | None = None) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        for name, size in (dims or {}).items():  # fixed shapes without a fixed-shape file
            so.add_free_dimension_override_by_name(name, size)
        provider_options = {"cudnn_conv_algo_search": "DEFAULT", "arena_extend_strategy": "kSameAsRequested"}
        provider_options.update(options or {})
        start = time.perf_counter()
        # Only the CUDA provider: with a CPU fallback listed, a failing CUDA node silently runs on the CPU.
        self.session = ort.InferenceSession(str(path), so, providers=[(CUDA, provider_options)])
        self.load_s = time.perf_counter() - start
        if self.session.get_providers()[0] != CUDA:
            raise RuntimeError(f"no CUDA provider: {self.session.get_providers()}")
        self.cuda_graph = options is not None and options.get("enable_cuda_graph") == "1"
        self.ort = ort
        self.bound: tuple | None = None

    def bind(self, batch: np.ndarray) -> None:
        """Put ``batch`` (all rows full length) on the GPU and bind it. A CUDA-graph session keeps its buffers:
        the captured graph reads and writes those addresses, so a new batch is copied into them."""
        ort = self.ort
        lengths = full_lengths(batch)
        if self.cuda_graph and self.bound is not None and self.bound[1].shape() == list(batch.shape):
            self.bound[1].update_inplace(np.ascontiguousarray(batch))
            self.bound[2].update_inplace(lengths)
            return
        x = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(batch), DEVICE, 0)
        n = ort.OrtValue.ortvalue_from_numpy(lengths, DEVICE, 0)
        binding = self.session.io_binding()
        binding.bind_ortvalue_input("input_values", x)
        binding.bind_ortvalue_input("input_lengths", n)
        if self.cuda_graph:  # CUDA graphs need every buffer fixed: outputs preallocated with their shape
            outs = [ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, DEVICE, 0)
                    for shape, dtype in self._output_shapes(batch, lengths)]
            binding.bind_ortvalue_output("log_probs", outs[0])
            binding.bind_ortvalue_output("output_lengths", outs[1])
            self.bound = (binding, x, n, outs)
        else:
            binding.bind_output("log_probs", DEVICE)
            binding.bind_output("output_lengths", DEVICE)
            self.bound = (binding, x, n)

    def _output_shapes(self, batch: np.ndarray, lengths: np.ndarray) -> list[tuple[list[int], type]]:
        """Output shapes and dtypes: declared ones where the graph is fixed-shape (a run here, before the IO-bound
        runs, could be captured into the CUDA graph with its own buffers), else from one probe run."""
        dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}
        declared = [(o.shape, dtypes[o.type]) for o in self.session.get_outputs()]
        if all(isinstance(d, int) for shape, _ in declared for d in shape):
            return declared
        probe = self.session.run(None, {"input_values": batch, "input_lengths": lengths})
        return [(list(p.shape), p.dtype.type) for p in probe]

    def __call__(self) -> None:
        self.session.run_with_iobinding(self.bound[0])

    def bound_log_probs(self) -> np.ndarray:
        """The log-probabilities of the last run on the bound batch, copied to the host."""
        if self.cuda_graph:
            return self.bound[3][0].numpy()
        return self.bound[0].get_outputs()[0].numpy()

    def unbind(self) -> None:
        """Free the bound batch's GPU buffers before the next shape (a CUDA-graph session keeps them)."""
        if not self.cuda_graph:
            self.bound = None

    def log_probs(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(["log_probs"], {"input_values": batch, "input_lengths": full_lengths(batch)})[0]


class TorchRunner:
    """A transformers model on the GPU, input already there; synchronizes so wall time is GPU time."""

    def __init__(self, checkpoint: Path, dtype: str, attention: str) -> None:
        import torch
        from transformers import AutoModelForCTC

        self.torch = torch
        self.dtype = torch.float16 if dtype == "fp16" else torch.float32
        self.model = AutoModelForCTC.from_pretrained(checkpoint, attn_implementation=attention)
        self.model = self.model.to(DEVICE, self.dtype).eval()
        self.x = None

    def bind(self, batch: np.ndarray) -> None:
        torch = self.torch
        x = torch.from_numpy(batch).to(DEVICE)
        # the ONNX graph normalizes per utterance inside; the processor does it for PyTorch
        x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-7)
        self.x = x.to(self.dtype)

    def unbind(self) -> None:
        self.x = None

    def __call__(self) -> None:
        with self.torch.inference_mode():
            self.model(self.x)
        if DEVICE == "cuda":
            self.torch.cuda.synchronize()

    def log_probs(self, batch: np.ndarray) -> np.ndarray:
        self.bind(batch)
        with self.torch.inference_mode():
            logits = self.model(self.x).logits.float()
        return self.torch.log_softmax(logits, -1).cpu().numpy()


def full_lengths(batch: np.ndarray) -> np.ndarray:
    """``input_lengths`` of a batch whose rows are all full length."""
    return np.full(batch.shape[0], batch.shape[1], dtype=np.int64)


def batch_of(count: int, seconds: float, seed: int = 0) -> np.ndarray:
    return np.stack([speech_like(seconds, seed=seed + i) for i in range(count)])


def summarize(times: list[float], audio_seconds: float) -> dict:
    ordered = sorted(times)
    p50 = statistics.median(ordered)
    return {"p50_ms": p50 * 1000, "p95_ms": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000,
            "min_ms": ordered[0] * 1000, "rtfx": audio_seconds / p50, "runs": len(ordered)}


def side_by_side(runners: dict[str, object], batch: np.ndarray, repeats: int) -> dict:
    """Bind ``batch`` to every runner, then time them interleaved; failures are recorded, not raised."""
    live = {}
    results: dict[str, dict] = {}
    first_ms = {}
    for name, runner in runners.items():
        try:
            runner.bind(batch)
            start = time.perf_counter()
            runner()  # warm-up: arena growth, cuDNN algorithm choice, CUDA graph capture
            first_ms[name] = (time.perf_counter() - start) * 1000
            runner()
            live[name] = runner
        except Exception as exc:
            results[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            print(f"  {name}: FAILED {results[name]['error']}", flush=True)
    times = interleaved_times(live, repeats, warm_up=False)
    audio_seconds = batch.shape[0] * batch.shape[1] / 16000
    for name, values in times.items():
        results[name] = summarize(values, audio_seconds)
        results[name]["first_call_ms"] = first_ms[name]
        print(f"  {name:44s} p50 {results[name]['p50_ms']:8.2f} ms  {results[name]['rtfx']:9.0f}x real time",
              flush=True)
    for runner in live.values():  # free the batch's buffers before the next shape
        runner.unbind()
    return results


def time_group(group: dict[str, object], torch_runners: dict[str, object], count: int, seconds: float,
               repeats: int) -> dict:
    """``group`` side by side, then PyTorch fp16 sdpa with ``cudnn.benchmark`` (its strongest setting)."""
    import torch

    torch.backends.cudnn.benchmark = False
    results = side_by_side(group, batch_of(count, seconds), repeats)
    torch.backends.cudnn.benchmark = True
    results.update(side_by_side({"PyTorch fp16 sdpa + cudnn.benchmark": torch_runners["PyTorch fp16 sdpa"]},
                                batch_of(count, seconds), repeats))
    torch.backends.cudnn.benchmark = False
    torch.cuda.empty_cache()
    return results


def accuracy(runners: dict[str, object], reference: object, seconds: float = 10.0) -> dict:
    """Largest |log p| difference and greedy agreement of each runner against ``reference``, on 2 clips."""
    batch = batch_of(2, seconds, seed=100)
    want = reference.log_probs(batch)
    results = {}
    for name, runner in runners.items():
        try:
            got = runner.log_probs(batch)
            frames = min(got.shape[1], want.shape[1])
            diff = np.abs(got[:, :frames].astype(np.float64) - want[:, :frames])
            results[name] = {"max_abs_log_prob_diff": float(np.nanmax(diff)),
                             "finite": bool(np.isfinite(got).all()),
                             "greedy_agreement": float((got[:, :frames].argmax(-1)
                                                        == want[:, :frames].argmax(-1)).mean())}
        except Exception as exc:
            results[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return results


COLD_START = """
import time; t0 = time.perf_counter()
import numpy as np, w2v2_onnx; t1 = time.perf_counter()
m = w2v2_onnx.Transcriber({model!r}, device={device!r}, precision={precision!r}); t2 = time.perf_counter()
m.transcribe(np.zeros(16000, np.float32)); t3 = time.perf_counter()
m.transcribe(np.zeros(160000, np.float32)); t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""


def cold_start(model_dir: Path, precision: str, repeats: int = 2) -> dict:
    runs = []
    for _ in range(repeats):
        code = COLD_START.format(model=str(model_dir), device=DEVICE, precision=precision)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        if proc.returncode:
            return {"error": proc.stderr[-600:]}
        runs.append([float(v) for v in proc.stdout.split()[-4:]])
    keys = ("import_s", "load_s", "first_call_1s_audio_s", "second_call_10s_audio_s")
    result = {k: statistics.median(r[i] for r in runs) for i, k in enumerate(keys)}
    result["total_s"] = sum(result[k] for k in keys[:3])
    return result


def runtime_end_to_end(model_dir: Path, precision: str, repeats: int) -> dict:
    """``Transcriber.transcribe`` on CUDA as a user calls it: 16 x 30 s, and 1 x 10 s."""
    from w2v2_onnx import Transcriber

    transcriber = Transcriber(model_dir, device=DEVICE, precision=precision)
    count, length = END_TO_END_FILES
    clips = [speech_like(length, seed=i) for i in range(count)]
    one = speech_like(10.0, seed=99)
    many = f"{count} x {length:g} s"
    runs = {f"{many} (default windows, batch 16)": lambda: transcriber.transcribe(clips),
            f"{many} (single pass per file)": lambda: transcriber.transcribe(clips, chunk_length=max(length + 1, 10.0)),
            "1 x 10 s": lambda: transcriber.transcribe(one)}
    times = interleaved_times(runs, repeats)
    # the same 10 s call repeated alone: what the interleaving (shape changes between calls) costs
    times["1 x 10 s (alone, not interleaved)"] = interleaved_times({"one": runs["1 x 10 s"]}, repeats)["one"]
    seconds = {f"{many} (default windows, batch 16)": count * length,
               f"{many} (single pass per file)": count * length, "1 x 10 s": 10.0,
               "1 x 10 s (alone, not interleaved)": 10.0}
    results = {k: summarize(v, seconds[k]) for k, v in times.items()}
    for k, v in results.items():
        print(f"  Transcriber {precision} {k:40s} p50 {v['p50_ms']:8.2f} ms  {v['rtfx']:9.0f}x", flush=True)
    results["providers"] = transcriber.model.providers
    return results


def start_report(arch: str, repeats: int, round_name: str | None = None) -> dict:
    """A round's report: machine, GPU and versions first (printed too). Import torch before this: its cuDNN
    is then the one loaded, and ONNX Runtime uses it. ``ort.preload_dlls()`` first would load the nvidia-cudnn
    package's (9.14 on the lent H100 against torch's 9.19), and torch refuses that."""
    report: dict = {"kind": "cuda", "machine": machine_info(), "gpu": gpu_info(), "arch": arch,
                    "repeats": repeats}
    if round_name:
        report["round"] = round_name
    print(json.dumps(report), flush=True)
    return report


def save_report(report: dict, out: Path | None) -> None:
    """Write what a round has so far, so a round cut short still leaves its figures."""
    if out:
        write_json(report, out)


def run(arch: str, work: Path, out: Path | None, repeats: int, quick: bool) -> dict:
    import torch  # noqa: F401  (first: see start_report)

    report = start_report(arch, repeats)
    model_dir, checkpoint = work / "model", work / "checkpoint"
    variants = {k: model_dir / v for k, v in VARIANTS.items() if (model_dir / v).exists()}
    report["variants"] = {k: str(v.name) for k, v in variants.items()}

    def save() -> None:
        save_report(report, out)

    runners: dict[str, object] = {}
    for name, path in variants.items():
        try:
            runner = OrtRunner(path)
            runners[f"ORT {name}"] = runner
            report.setdefault("session_load_s", {})[name] = runner.load_s
        except Exception as exc:
            report.setdefault("errors", {})[f"ORT {name}"] = str(exc)[:500]
    torch_runners: dict[str, object] = {}
    for dtype, attention in (("fp32", "eager"), ("fp16", "eager"), ("fp16", "sdpa")):
        torch_runners[f"PyTorch {dtype} {attention}"] = TorchRunner(checkpoint, dtype, attention)

    print("accuracy against PyTorch fp32 eager (2 x 10 s):", flush=True)
    report["accuracy_vs_pytorch_fp32"] = accuracy(
        {**runners, **{k: v for k, v in torch_runners.items() if "fp16" in k}},
        torch_runners["PyTorch fp32 eager"])
    print(json.dumps(report["accuracy_vs_pytorch_fp32"], indent=1), flush=True)
    save()

    # The largest batch runs last, alone with the default fp16 graph: each ORT session's arena keeps its peak.
    shapes = [s for s in SIDE_BY_SIDE_SHAPES if s[0] < 64]
    report["side_by_side"] = {}
    for count, seconds in shapes:
        key = f"{count} x {seconds:g} s"
        print(f"{key} (model alone, IO binding):", flush=True)
        group = dict(runners)
        group.update({k: v for k, v in torch_runners.items() if "sdpa" not in k})
        report["side_by_side"][key] = time_group(group, torch_runners, count, seconds, repeats)
        save()

    print("provider settings (fp16 graphs, fixed shapes):", flush=True)
    report["provider_settings"] = {}
    best16 = [k for k in ("fp16", "fp16-ln16") if k in variants]
    for count, seconds in SETTINGS_SHAPES:
        key = f"{count} x {seconds:g} s"
        group = {}
        for name in best16:
            group[f"ORT {name} DEFAULT"] = runners[f"ORT {name}"]
            for label, options in (("EXHAUSTIVE", {"cudnn_conv_algo_search": "EXHAUSTIVE"}),
                                   ("CUDA graph", {"enable_cuda_graph": "1"})):
                try:
                    group[f"ORT {name} {label}"] = OrtRunner(variants[name], options)
                except Exception as exc:
                    report["provider_settings"][f"ORT {name} {label}"] = {"error": str(exc)[:300]}
        print(f"{key}:", flush=True)
        report["provider_settings"][key] = side_by_side(group, batch_of(count, seconds), repeats)
        del group
        save()

    for name in ("fp16", "fp32"):
        if f"ORT {name}" not in runners:
            continue
        print(f"lengths and batches, ORT {name}:", flush=True)
        runner = runners[f"ORT {name}"]
        lengths = {}
        for seconds in SWEEP_LENGTHS:
            lengths[f"{seconds:g}"] = side_by_side({f"1 x {seconds:g} s": runner}, batch_of(1, seconds),
                                                   repeats * 2)[f"1 x {seconds:g} s"]
        batches = {}
        for count in SWEEP_BATCHES:
            batches[str(count)] = side_by_side({f"{count} x 10 s": runner}, batch_of(count, 10.0),
                                               repeats)[f"{count} x 10 s"]
        report.setdefault("sweeps", {})[name] = {"lengths_batch1": lengths, "batches_10s": batches}
        save()

    for precision in ("fp16", "fp32"):
        print(f"runtime end to end ({precision}):", flush=True)
        try:
            report.setdefault("transcriber", {})[precision] = runtime_end_to_end(model_dir, precision, repeats)
        except Exception as exc:
            report.setdefault("transcriber", {})[precision] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        save()
    if not quick:
        for count, seconds in [s for s in SIDE_BY_SIDE_SHAPES if s[0] >= 64]:
            key = f"{count} x {seconds:g} s"
            print(f"{key} (model alone, IO binding; ORT fp16 and PyTorch fp16 only):", flush=True)
            for name in list(runners):
                if name != "ORT fp16":
                    del runners[name]
            group = {k: v for k, v in {**runners, **torch_runners}.items() if "fp16" in k and "sdpa" not in k}
            report["side_by_side"][key] = time_group(group, torch_runners, count, seconds, repeats)
            save()
    print("cold start:", flush=True)
    report["cold_start"] = {p: cold_start(model_dir, p) for p in ("fp16", "fp32")}
    print(json.dumps(report["cold_start"]), flush=True)
    save()
    print_table(report)
    return report


def convmm_model_dir(work: Path) -> Path:
    """A model directory whose fp16 file is the conv-as-matmuls lever, so ``Transcriber`` can load it."""
    return variant_model_dir(work, "fp16-convmm")


def levers(arch: str, work: Path, out: Path | None, repeats: int) -> dict:
    """The second CUDA round: cuDNN's EXHAUSTIVE conv search (DEFAULT fell back to slow kernels on every conv
    in the first round) on the default fp16 graph and on the conv-as-matmuls fp16 graph, against PyTorch fp16,
    one shape at a time so each session's arena holds one shape; then the runtime end to end with it."""
    import torch  # first: see start_report

    import w2v2_onnx.session as session_module

    report = start_report(arch, repeats, "levers")
    model_dir, checkpoint = work / "model", work / "checkpoint"
    variants = {"fp16 DEFAULT": ("fp16", {}),
                "fp16 EXHAUSTIVE": ("fp16", {"cudnn_conv_algo_search": "EXHAUSTIVE"}),
                "fp16-convmm EXHAUSTIVE": ("fp16-convmm", {"cudnn_conv_algo_search": "EXHAUSTIVE"}),
                "fp16-convmm DEFAULT": ("fp16-convmm", {})}
    torch_runners = {f"PyTorch fp16 {a}": TorchRunner(checkpoint, "fp16", a) for a in ("eager", "sdpa")}

    def save() -> None:
        save_report(report, out)

    report["side_by_side"] = {}
    for count, seconds in SIDE_BY_SIDE_SHAPES:
        key = f"{count} x {seconds:g} s"
        print(f"{key} (model alone, IO binding):", flush=True)
        chosen = variants if count < 64 else {k: v for k, v in variants.items() if "convmm EX" in k}
        group: dict[str, object] = {}
        for name, (variant, options) in chosen.items():
            try:
                group[f"ORT {name}"] = OrtRunner(model_dir / VARIANTS[variant], options)
            except Exception as exc:
                report["side_by_side"].setdefault(key, {})[f"ORT {name}"] = {"error": str(exc)[:300]}
        group["PyTorch fp16 eager"] = torch_runners["PyTorch fp16 eager"]
        report["side_by_side"].setdefault(key, {}).update(time_group(group, torch_runners, count, seconds, repeats))
        del group
        save()
    # The runtime as users call it, with the conv-as-matmuls graph and EXHAUSTIVE search.
    convmm_dir = convmm_model_dir(work)
    session_module.CUDA_OPTIONS = {"cudnn_conv_algo_search": "EXHAUSTIVE"}
    print("runtime end to end (fp16-convmm, EXHAUSTIVE):", flush=True)
    try:
        report["transcriber"] = {"fp16-convmm EXHAUSTIVE": runtime_end_to_end(convmm_dir, "fp16", repeats)}
    except Exception as exc:
        report["transcriber"] = {"fp16-convmm EXHAUSTIVE": {"error": f"{type(exc).__name__}: {exc}"[:500]}}
    save()
    torch.cuda.empty_cache()
    print_table(report)
    return report


class FreshInputRunner(OrtRunner):
    """Like :class:`OrtRunner`, but copies the input to the GPU on every call, as the runtime does; outputs
    stay on the GPU or, with ``outputs_to_cpu``, come back to the host."""

    def __init__(self, path: Path, options: dict | None = None, outputs_to_cpu: bool = False) -> None:
        super().__init__(path, options)
        self.outputs_to_cpu = outputs_to_cpu
        self.batch: np.ndarray | None = None

    def bind(self, batch: np.ndarray) -> None:
        self.batch = np.ascontiguousarray(batch)

    def unbind(self) -> None:
        self.batch = None

    def __call__(self) -> None:
        ort = self.ort
        binding = self.session.io_binding()
        binding.bind_ortvalue_input("input_values", ort.OrtValue.ortvalue_from_numpy(self.batch, DEVICE, 0))
        binding.bind_ortvalue_input("input_lengths",
                                    ort.OrtValue.ortvalue_from_numpy(full_lengths(self.batch), DEVICE, 0))
        for name in ("log_probs", "output_lengths"):
            binding.bind_output(name, "cpu" if self.outputs_to_cpu else DEVICE)
        self.session.run_with_iobinding(binding)
        if self.outputs_to_cpu:
            binding.copy_outputs_to_cpu()


class RuntimeModelRunner:
    """The runtime's own :class:`w2v2_onnx.session.OnnxModel` (its session options, its IO binding)."""

    def __init__(self, path: Path) -> None:
        from w2v2_onnx.session import OnnxModel

        self.model = OnnxModel(path, device=DEVICE)
        self.batch: np.ndarray | None = None

    def bind(self, batch: np.ndarray) -> None:
        self.batch = batch

    def unbind(self) -> None:
        self.batch = None

    def __call__(self) -> None:
        self.model.run(self.batch, full_lengths(self.batch))


class TranscriberRunner:
    """``Transcriber.transcribe`` on the rows of the bound batch, each file in one window."""

    def __init__(self, transcriber: object, chunk_length: float) -> None:
        self.transcriber, self.chunk_length = transcriber, chunk_length
        self.clips: list[np.ndarray] = []

    def bind(self, batch: np.ndarray) -> None:
        self.clips = list(batch)

    def unbind(self) -> None:
        self.clips = []

    def __call__(self) -> None:
        clips = self.clips if len(self.clips) > 1 else self.clips[0]
        self.transcriber.transcribe(clips, chunk_length=self.chunk_length)


def runtime_path(arch: str, work: Path, out: Path | None, repeats: int) -> dict:
    """Where the runtime's time goes on CUDA, step by step from the model alone to ``Transcriber``, one graph
    (fp16 conv-as-matmuls) and one conv search (EXHAUSTIVE), interleaved: the levers round measured 4.6 ms
    for the model alone against 24.5 ms through ``Transcriber`` on 1 x 10 s."""
    import torch  # noqa: F401  (first: see start_report)

    import w2v2_onnx.session as session_module
    from w2v2_onnx import Transcriber

    report = start_report(arch, repeats, "runtime-path")
    path = work / "model" / VARIANTS["fp16-convmm"]
    exhaustive = {"cudnn_conv_algo_search": "EXHAUSTIVE"}
    session_module.CUDA_OPTIONS = dict(exhaustive)
    steps: dict[str, object] = {
        "1 model alone (input bound once, outputs on GPU)": OrtRunner(path, exhaustive),
        "2 + input copied to the GPU per call": FreshInputRunner(path, exhaustive),
        "3 + outputs copied to the host": FreshInputRunner(path, exhaustive, outputs_to_cpu=True),
        "4 OnnxModel.run (the runtime's session options)": RuntimeModelRunner(path),
    }
    transcriber = Transcriber(convmm_model_dir(work), device=DEVICE, precision="fp16")
    report["side_by_side"] = {}
    for count, seconds in SETTINGS_SHAPES:
        key = f"{count} x {seconds:g} s"
        print(f"{key}:", flush=True)
        steps["5 Transcriber.transcribe (single pass)"] = TranscriberRunner(transcriber, max(seconds + 1, 10.0))
        report["side_by_side"][key] = side_by_side(steps, batch_of(count, seconds), repeats)
        save_report(report, out)
    print_table(report)
    return report


def kernel_category(name: str) -> str:
    """A coarse class of a CUDA kernel by its name (cuDNN, cuBLAS/CUTLASS, ONNX Runtime's and PyTorch's own)."""
    lower = name.lower()
    if any(k in lower for k in ("fmha", "flash", "attention", "softmax", "attn")):
        return "attention"
    if any(k in lower for k in ("fprop", "conv2d", "conv1d", "convolution", "implicit_gemm", "cudnn")) \
            and "convert" not in lower:
        return "convolution"
    if any(k in lower for k in ("gemm", "cutlass", "xmma", "cublas", "matmul", "sm90_", "sm80_", "ampere_")):
        return "matrix products"
    if "norm" in lower:
        return "normalization"
    if "memcpy" in lower or "memset" in lower:
        return "copies"
    return "elementwise and other"


def kernel_profile(runner: object, batch: np.ndarray, runs: int = 3) -> dict:
    """GPU time per run by kernel, from the CUDA profiler (CUPTI through torch.profiler sees every kernel of the
    process, ONNX Runtime's included): total, by :func:`kernel_category`, and the 15 largest kernels."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    runner.bind(batch)
    runner()
    runner()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(runs):
            runner()
        torch.cuda.synchronize()
    runner.unbind()
    kernels: dict[str, float] = {}
    for event in prof.key_averages():
        us = getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0)
        if us:
            kernels[event.key] = kernels.get(event.key, 0.0) + us / runs / 1000
    categories: dict[str, float] = {}
    for name, ms in kernels.items():
        categories[kernel_category(name)] = categories.get(kernel_category(name), 0.0) + ms
    top = sorted(kernels.items(), key=lambda kv: -kv[1])[:15]
    return {"gpu_ms_per_run": sum(kernels.values()), "kernel_count": len(kernels),
            "by_category_ms": dict(sorted(categories.items(), key=lambda kv: -kv[1])),
            "top_kernels_ms": {name[:160]: ms for name, ms in top}}


def cpu_placed_nodes(path: Path, options: dict) -> list[str]:
    """The nodes ONNX Runtime puts on the CPU provider (why CUDA graph capture is refused), from its verbose log."""
    import os
    import tempfile

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 0
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    plain = {k: v for k, v in options.items() if k != "enable_cuda_graph"}
    with tempfile.TemporaryFile() as log:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            ort.InferenceSession(str(path), so, providers=[(CUDA, plain)])
        except Exception:
            pass
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        text = log.read().decode(errors="replace")
    found, taking = [], False
    for line in text.splitlines():
        if "placed on [CPUExecutionProvider]" in line:
            taking = True
            found.append(line.strip()[-160:])
        elif taking and "placed on [" in line:
            taking = False
        elif taking and line.strip():
            found.append(line.strip()[-160:])
    return found[:80] or [f"no CPU placement lines in {len(text)} characters of verbose log"]


def padded_rows(runners: dict[str, object]) -> dict:
    """A 6 s clip zero-padded to 10 s beside a 10 s clip, against the same clip alone through the same graph:
    the mask formats must keep padding out of the valid frames (largest |log p| difference, greedy agreement)."""
    long, short = speech_like(10.0, seed=200), speech_like(6.0, seed=201)
    batch = np.zeros((2, long.size), np.float32)
    batch[0], batch[1, :short.size] = long, short
    lengths = np.array([long.size, short.size], np.int64)
    results = {}
    for name, runner in runners.items():
        try:
            padded, frames = runner.session.run(None, {"input_values": batch, "input_lengths": lengths})
            alone, _ = runner.session.run(None, {"input_values": short[None], "input_lengths": lengths[1:]})
            valid = int(frames[1])
            got, want = padded[1, :valid].astype(np.float64), alone[0, :valid].astype(np.float64)
            results[name] = {"max_abs_log_prob_diff": float(np.abs(got - want).max()),
                             "greedy_agreement": float((got.argmax(-1) == want.argmax(-1)).mean()),
                             "frames": valid}
        except Exception as exc:
            results[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return results


def variant_model_dir(work: Path, variant: str) -> Path:
    """A model directory whose fp16 file is ``variant``'s graph, so ``Transcriber`` can load it."""
    import shutil

    model_dir, target_dir = work / "model", work / f"model-{variant}"
    target_dir.mkdir(exist_ok=True)
    shutil.copyfile(model_dir / "vocab.json", target_dir / "vocab.json")
    config = json.loads((model_dir / "w2v2_onnx.json").read_text())
    config["files"] = {"fp16": "model.fp16.onnx"}
    (target_dir / "w2v2_onnx.json").write_text(json.dumps(config, indent=2))
    target = target_dir / "model.fp16.onnx"
    if not target.exists():
        target.symlink_to(model_dir / (VARIANTS.get(variant) or MASK_VARIANTS[variant]))
    return target_dir


def attention_round(arch: str, work: Path, out: Path | None, repeats: int) -> dict:
    """The third CUDA round: the attention mask format (key lengths as exported, key lengths with start offsets
    for the memory-efficient kernel, no mask), dimensions fixed when the session loads with CUDA graphs, where
    the GPU time goes (kernel profiles beside PyTorch sdpa), and ``Transcriber`` with the runtime's DEFAULT and
    with EXHAUSTIVE conv search."""
    import torch  # first: see start_report

    import w2v2_onnx.session as session_module

    report = start_report(arch, repeats, "attention")
    model_dir, checkpoint = work / "model", work / "checkpoint"
    exhaustive = {"cudnn_conv_algo_search": "EXHAUSTIVE"}

    def save() -> None:
        save_report(report, out)

    paths = {"fp16": model_dir / VARIANTS["fp16"], "fp16-convmm": model_dir / VARIANTS["fp16-convmm"],
             **{k: model_dir / v for k, v in MASK_VARIANTS.items()}}
    runners: dict[str, object] = {}
    for name, path in paths.items():
        try:
            runners[f"ORT {name} EXHAUSTIVE"] = OrtRunner(path, exhaustive)
        except Exception as exc:
            report.setdefault("errors", {})[name] = f"{type(exc).__name__}: {str(exc)[:500]}"
    torch_runners = {f"PyTorch fp16 {a}": TorchRunner(checkpoint, "fp16", a) for a in ("eager", "sdpa")}
    reference = TorchRunner(checkpoint, "fp32", "eager")
    print("accuracy against PyTorch fp32 eager (2 x 10 s), and padded rows against the same clip alone:", flush=True)
    report["accuracy_vs_pytorch_fp32"] = accuracy({**runners, **torch_runners}, reference)
    report["padded_row_vs_alone"] = padded_rows({k: v for k, v in runners.items() if "nomask" not in k})
    print(json.dumps({k: report[k] for k in ("accuracy_vs_pytorch_fp32", "padded_row_vs_alone")}, indent=1),
          flush=True)
    del reference
    torch.cuda.empty_cache()
    save()

    report["side_by_side"] = {}
    for count, seconds in SETTINGS_SHAPES:
        key = f"{count} x {seconds:g} s"
        print(f"{key} (model alone, IO binding):", flush=True)
        group: dict[str, object] = dict(runners)
        for variant in OVERRIDE_VARIANTS:
            label = f"ORT {variant} dims fixed at load, EXHAUSTIVE CUDA graph"
            options = {**exhaustive, "enable_cuda_graph": "1"}
            try:
                group[label] = OrtRunner(paths[variant], options, dims={"batch": count,
                                                                        "samples": int(seconds * 16000)})
            except Exception as exc:
                failure = {"error": f"{type(exc).__name__}: {str(exc)[:300]}",
                           "cpu_nodes": cpu_placed_nodes(paths[variant], options)}
                report["side_by_side"].setdefault(key, {})[label] = failure
                print(f"  {label}: FAILED {json.dumps(failure)[:1500]}", flush=True)
        group["PyTorch fp16 eager"] = torch_runners["PyTorch fp16 eager"]
        report["side_by_side"].setdefault(key, {}).update(time_group(group, torch_runners, count, seconds, repeats))
        del group
        torch.cuda.empty_cache()
        save()

    print("kernel profiles:", flush=True)
    report["kernels"] = {}
    for count, seconds in SETTINGS_SHAPES:
        key = f"{count} x {seconds:g} s"
        batch = batch_of(count, seconds)
        profiles = {}
        for name, runner in {k: v for k, v in runners.items() if "mask" not in k and "seqstart" not in k}.items():
            try:
                profiles[name] = kernel_profile(runner, batch)
            except Exception as exc:
                profiles[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        torch.backends.cudnn.benchmark = True
        try:
            profiles["PyTorch fp16 sdpa + cudnn.benchmark"] = kernel_profile(torch_runners["PyTorch fp16 sdpa"], batch)
        except Exception as exc:
            profiles["PyTorch fp16 sdpa + cudnn.benchmark"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        torch.backends.cudnn.benchmark = False
        for name, result in profiles.items():
            if "by_category_ms" in result:
                cats = ", ".join(f"{c} {ms:.2f}" for c, ms in result["by_category_ms"].items())
                print(f"  {key} {name}: {result['gpu_ms_per_run']:.2f} ms GPU ({cats})", flush=True)
        report["kernels"][key] = profiles
        save()

    # The runtime as users call it (the conv-as-matmuls graph), with the runtime's DEFAULT conv search and with
    # EXHAUSTIVE; runtime_end_to_end interleaves three shapes, as a server's varied requests would.
    report["transcriber"] = {}
    for search in ("DEFAULT", "EXHAUSTIVE"):
        session_module.CUDA_OPTIONS = {"cudnn_conv_algo_search": search}
        print(f"runtime end to end (fp16-convmm, {search}):", flush=True)
        try:
            report["transcriber"][f"fp16-convmm {search}"] = runtime_end_to_end(
                variant_model_dir(work, "fp16-convmm"), "fp16", repeats)
        except Exception as exc:
            report["transcriber"][f"fp16-convmm {search}"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        save()
    print_table(report)
    return report


def capture_round(arch: str, work: Path, out: Path | None, repeats: int) -> dict:
    """The fourth CUDA round: dimensions fixed when the session loads, with and without CUDA graphs, for the
    graph as exported (key-length mask) and without a mask (exact for batches of full-length rows, a single
    input among them), against the dynamic-shape sessions and PyTorch; each captured run's log-probabilities
    are compared with the dynamic session's on the same batch."""
    import torch  # noqa: F401  (first: see start_report)

    report = start_report(arch, repeats, "capture")
    model_dir, checkpoint = work / "model", work / "checkpoint"
    exhaustive = {"cudnn_conv_algo_search": "EXHAUSTIVE"}
    graph = {**exhaustive, "enable_cuda_graph": "1"}
    paths = {"fp16-convmm": model_dir / VARIANTS["fp16-convmm"],
             "fp16-convmm-nomask": model_dir / MASK_VARIANTS["fp16-convmm-nomask"]}
    torch_runners = {f"PyTorch fp16 {a}": TorchRunner(checkpoint, "fp16", a) for a in ("eager", "sdpa")}
    report["side_by_side"], report["captured_vs_dynamic"] = {}, {}
    for count, seconds in SETTINGS_SHAPES:
        key = f"{count} x {seconds:g} s"
        dims = {"batch": count, "samples": int(seconds * 16000)}
        print(f"{key} (model alone, IO binding):", flush=True)
        group: dict[str, object] = {}
        for variant, path in paths.items():
            for label, options, fixed in (("EXHAUSTIVE", exhaustive, None),
                                          ("dims fixed at load, EXHAUSTIVE", exhaustive, dims),
                                          ("dims fixed at load, EXHAUSTIVE CUDA graph", graph, dims)):
                name = f"ORT {variant} {label}"
                try:
                    group[name] = OrtRunner(path, options, dims=fixed)
                except Exception as exc:
                    failure = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                    if "graph" in label:
                        failure["cpu_nodes"] = cpu_placed_nodes(path, options)
                    report["side_by_side"].setdefault(key, {})[name] = failure
                    print(f"  {name}: FAILED {json.dumps(failure)[:1500]}", flush=True)
        group["PyTorch fp16 eager"] = torch_runners["PyTorch fp16 eager"]
        batch = batch_of(count, seconds, seed=7)  # not the timed batch: the captured buffers must take new data
        results = time_group(group, torch_runners, count, seconds, repeats)
        report["side_by_side"].setdefault(key, {}).update(results)
        # replay check: every ORT runner once more on the same batch, against the dynamic session of its variant
        checks = {}
        for variant in paths:
            reference = group.get(f"ORT {variant} EXHAUSTIVE")
            if reference is None:
                continue
            reference.bind(batch)
            reference()
            want = reference.bound_log_probs().astype(np.float64)
            for name, runner in group.items():
                if not name.startswith(f"ORT {variant} dims"):
                    continue
                try:
                    runner.bind(batch)
                    runner()
                    runner()
                    got = runner.bound_log_probs().astype(np.float64)
                    checks[name] = {"max_abs_log_prob_diff": float(np.abs(got - want).max()),
                                    "greedy_agreement": float((got.argmax(-1) == want.argmax(-1)).mean())}
                except Exception as exc:
                    checks[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        report["captured_vs_dynamic"][key] = checks
        print(json.dumps(checks), flush=True)
        del group
        torch.cuda.empty_cache()
        save_report(report, out)
    print_table(report)
    return report


class CapturedModel:
    """A prototype of a CUDA-graph mode for the runtime: stands in for ``Transcriber.model`` (its ``run``), pads
    every batch of windows to one shape (``rows`` x ``samples``; spare rows are full-length silence) and replays a
    captured CUDA graph over persistent buffers, copying the log-probabilities to the host."""

    def __init__(self, path: Path, rows: int, samples: int, options: dict) -> None:
        self.rows, self.samples = rows, samples
        self.runner = OrtRunner(path, options, dims={"batch": rows, "samples": samples})
        self.runner.bind(np.zeros((rows, samples), np.float32))

    def run(self, batch: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        count = batch.shape[0]
        if count > self.rows or batch.shape[1] > self.samples:
            raise ValueError(f"batch {batch.shape} does not fit the captured {self.rows} x {self.samples}")
        padded = np.zeros((self.rows, self.samples), np.float32)
        padded[:count, :batch.shape[1]] = batch
        full = np.full(self.rows, self.samples, np.int64)
        full[:count] = lengths
        binding, x, n = self.runner.bound[:3]
        x.update_inplace(padded)
        n.update_inplace(full)
        self.runner()
        outs = self.runner.bound[3] if self.runner.cuda_graph else binding.get_outputs()
        return outs[0].numpy()[:count], outs[1].numpy()[:count]


def capture_runtime_round(arch: str, work: Path, out: Path | None, repeats: int) -> dict:
    """The fifth CUDA round (prepared in the thirteenth session, not yet run on a GPU): ``Transcriber`` with its
    model calls replaced by :class:`CapturedModel` (one shape, CUDA graph) against the same Transcriber with
    dynamic shapes, both with EXHAUSTIVE conv search and 10 s windows (1 s context): 1 x 10 s with a 1-row graph,
    16 x 30 s with a 16-row graph; the transcripts of both must agree."""
    import torch  # noqa: F401  (first: see start_report)

    import w2v2_onnx.session as session_module
    from w2v2_onnx import Transcriber

    report = start_report(arch, repeats, "capture-runtime")
    exhaustive = {"cudnn_conv_algo_search": "EXHAUSTIVE"}
    session_module.CUDA_OPTIONS = dict(exhaustive)
    model_dir = convmm_model_dir(work)
    path = work / "model" / VARIANTS["fp16-convmm"]
    window, context = 10.0, 1.0
    report["side_by_side"], report["same_text"] = {}, {}
    for count, seconds in SETTINGS_SHAPES:
        key = f"{count} x {seconds:g} s"
        clips = [speech_like(seconds, seed=i) for i in range(count)]
        dynamic = Transcriber(model_dir, device=DEVICE, precision="fp16")
        captured = Transcriber(model_dir, device=DEVICE, precision="fp16")
        try:
            captured.model = CapturedModel(path, count, int(window * 16000),
                                           {**exhaustive, "enable_cuda_graph": "1"} if DEVICE == "cuda" else {})
        except Exception as exc:
            report["side_by_side"][key] = {"captured": {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}}
            continue
        audio = clips if count > 1 else clips[0]
        options = dict(decoder="greedy", chunk_length=window, chunk_context=context, batch_size=count)
        runs = {name: (lambda t=t, audio=audio, options=options: t.transcribe(audio, **options))
                for name, t in (("Transcriber, dynamic shapes", dynamic),
                                ("Transcriber, one shape + CUDA graph", captured))}
        texts = {name: run() for name, run in runs.items()}
        as_list = {name: [r.text for r in (t if isinstance(t, list) else [t])] for name, t in texts.items()}
        report["same_text"][key] = len(set(map(tuple, as_list.values()))) == 1
        times = interleaved_times(runs, repeats)
        report["side_by_side"][key] = {name: summarize(values, count * seconds) for name, values in times.items()}
        for name, row in report["side_by_side"][key].items():
            print(f"  {key} {name:40s} p50 {row['p50_ms']:8.2f} ms  {row['rtfx']:9.0f}x", flush=True)
        print(f"  same transcripts: {report['same_text'][key]}", flush=True)
        save_report(report, out)
    print_table(report)
    return report


def print_table(report: dict) -> None:
    print("\n| system | " + " | ".join(report["side_by_side"]) + " |")
    print("|---|" + "---|" * len(report["side_by_side"]))
    systems = sorted({s for group in report["side_by_side"].values() for s in group})
    for system in systems:
        cells = []
        for group in report["side_by_side"].values():
            r = group.get(system)
            cells.append("" if r is None else r.get("error", "failed")[:30] if "rtfx" not in r
                         else f"{r['rtfx']:,.0f}x ({r['p50_ms']:.2f} ms)")
        print(f"| {system} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("prepare", "run", "all", "levers", "runtime-path", "attention", "capture",
                                         "capture-runtime"))
    parser.add_argument("--arch", choices=sorted(ARCHS), default="base")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/w2v2-cuda-bench"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="skip 64 x 30 s")
    parser.add_argument("--only", choices=("main", "convmm"), default=None,
                        help="prepare: the export stage's graphs (and the fp16-ln16 lever) or the convmm lever")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    work = args.dir / args.arch
    if args.step in ("prepare", "all"):
        prepare(args.arch, work, args.only)
    if args.step in ("run", "all"):
        run(args.arch, work, args.out, args.repeats, args.quick)
    if args.step == "levers":
        levers(args.arch, work, args.out, args.repeats)
    if args.step == "runtime-path":
        runtime_path(args.arch, work, args.out, args.repeats)
    if args.step == "attention":
        attention_round(args.arch, work, args.out, args.repeats)
    if args.step == "capture":
        capture_round(args.arch, work, args.out, args.repeats)
    if args.step == "capture-runtime":
        capture_runtime_round(args.arch, work, args.out, args.repeats)


if __name__ == "__main__":
    main()
