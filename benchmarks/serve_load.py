"""Load, soak and bad-input runs against `w2v2-onnx serve` on loopback only; bounded in count and time.

Starts the server as a subprocess on a free 127.0.0.1 port, then:
1. load: throughput and p50/p95/p99 latency at concurrency 1, 8 and 32;
2. soak: N requests (default 10,000) counting 5xx and sampling the server's memory (RSS) as it goes;
3. bad input: malformed JSON, wrong types, NaN, huge arrays, empty body, unsupported content type, truncated
   audio, each sent several times; the server must answer 4xx every time and stay up.

    python benchmarks/serve_load.py --model MODEL_DIR --out benchmarks/results/serve.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from runtime_figures import write_json  # noqa: E402

HOST = "127.0.0.1"  # loopback only, never another address


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1]) / 1024


def clip(seconds: float, seed: int = 0, rate: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.1 * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2) * rng.standard_normal(t.size)).astype(np.float32)


def wav(samples: np.ndarray, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


async def run_requests(client, requests: list[tuple[bytes, str]], concurrency: int, deadline: float,
                       on_progress=None) -> tuple[list[float], dict[int, int]]:
    """Send requests with ``concurrency`` in flight; return latencies and status counts."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty() and time.monotonic() < deadline:
            body, content_type = queue.get_nowait()
            start = time.perf_counter()
            try:
                response = await client.post("/invocations", content=body, headers={"content-type": content_type})
                status = response.status_code
            except Exception:  # connection refused or reset: the server fell over
                status = -1
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
            if on_progress is not None:
                on_progress(len(latencies))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99),
            "mean_ms": statistics.mean(ordered) * 1000}


def bad_inputs() -> dict[str, tuple[bytes, str]]:
    good = wav(clip(1.0))
    return {
        "malformed JSON": (b'{"speech_array": [0.1, ', "application/json"),
        "JSON array, not object": (b"[1, 2, 3]", "application/json"),
        "missing sampling_rate": (json.dumps({"speech_array": [0.1, 0.2]}).encode(), "application/json"),
        "speech_array is a string": (json.dumps({"speech_array": "x", "sampling_rate": 16000}).encode(),
                                     "application/json"),
        "nested lists": (json.dumps({"speech_array": [[0.1]], "sampling_rate": 16000}).encode(), "application/json"),
        "NaN sample": (b'{"speech_array": [0.1, NaN], "sampling_rate": 16000}', "application/json"),
        "negative rate": (json.dumps({"speech_array": [0.1], "sampling_rate": -5}).encode(), "application/json"),
        "huge array (11 min)": (json.dumps({"speech_array": [0.0] * (16000 * 660), "sampling_rate": 16000}).encode(),
                                "application/json"),
        "empty body": (b"", "application/json"),
        "unsupported content type": (b"hello", "text/plain"),
        "truncated WAV": (good[: len(good) // 2], "audio/wav"),
        "garbage as WAV": (b"RIFF" + os.urandom(500), "audio/wav"),
        "body over 50 MB": (b"\0" * (51 * 2**20), "audio/wav"),
    }


async def main_async(args: argparse.Namespace) -> dict:
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "w2v2_onnx.cli", "serve", "--port", str(port), "--log-level", "warning",
               "--threads", str(args.threads), "--device", "cpu"]
    if args.model:
        command += ["--model", args.model]
    if args.decoder:
        command += ["--decoder", args.decoder]
    server = subprocess.Popen(command)
    report: dict = {"machine": {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0))},
                    "model": args.model or "bundled", "clip_seconds": args.clip_seconds,
                    "clip_file": args.clip_file}
    try:
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=120.0,
                                     limits=httpx.Limits(max_connections=64)) as client:
            for _ in range(600):
                try:
                    if (await client.get("/ping")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                raise RuntimeError("server did not come up")
            report["decoder"] = (await client.get("/ping")).json().get("decoder")
            report["rss_after_start_mb"] = rss_mb(server.pid)
            deadline = time.monotonic() + args.max_seconds
            if args.clip_file:
                speech, rate = sf.read(args.clip_file, dtype="float32", always_2d=True)
                body = json.dumps({"speech_array": speech.mean(axis=1).tolist(), "sampling_rate": rate}).encode()
                report["clip_seconds"] = speech.shape[0] / rate
            else:
                body = json.dumps({"speech_array": clip(args.clip_seconds).tolist(),
                                   "sampling_rate": 16000}).encode()

            report["load"] = {}
            for concurrency in (1, 8, 32):
                requests = [(body, "application/json")] * args.load_requests
                start = time.perf_counter()
                latencies, statuses = await run_requests(client, requests, concurrency, deadline)
                elapsed = time.perf_counter() - start
                report["load"][str(concurrency)] = {
                    "requests": len(latencies), "statuses": statuses, "requests_per_s": len(latencies) / elapsed,
                    "audio_rtfx": len(latencies) * report["clip_seconds"] / elapsed, **percentiles(latencies)}
                print(f"concurrency {concurrency:2d}: {report['load'][str(concurrency)]}", flush=True)

            memory_curve = [(0, rss_mb(server.pid))]

            def sample(done: int) -> None:
                if done % max(1, args.soak_requests // 20) == 0:
                    memory_curve.append((done, rss_mb(server.pid)))

            soak_body = wav(clip(args.soak_clip_seconds, seed=1))
            start = time.perf_counter()
            latencies, statuses = await run_requests(client, [(soak_body, "audio/wav")] * args.soak_requests,
                                                     args.soak_concurrency, deadline, sample)
            memory_curve.append((len(latencies), rss_mb(server.pid)))
            report["soak"] = {"requests": len(latencies), "statuses": statuses,
                              "server_5xx": sum(n for s, n in statuses.items() if s >= 500 or s < 0),
                              "seconds": time.perf_counter() - start, "memory_curve_mb": memory_curve,
                              **percentiles(latencies)}
            print(f"soak: {json.dumps({k: v for k, v in report['soak'].items() if k != 'memory_curve_mb'})}")
            print(f"soak memory (requests, MB): {memory_curve}", flush=True)

            report["bad_input"] = {}
            for name, (bad_body, content_type) in bad_inputs().items():
                _, statuses = await run_requests(client, [(bad_body, content_type)] * args.bad_repeats, 4,
                                                 time.monotonic() + 120)
                report["bad_input"][name] = statuses
                print(f"bad input {name!r}: {statuses}", flush=True)
            report["alive_after_bad_input"] = (await client.get("/ping")).status_code == 200
            report["rss_at_end_mb"] = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clip-seconds", type=float, default=3.0, help="length of the synthetic load clip")
    parser.add_argument("--clip-file", default=None, help="send this audio file in the load phase instead of a "
                        "synthetic clip (real speech makes beam search do real work)")
    parser.add_argument("--decoder", default=None, choices=["greedy", "beam"],
                        help="the server's --decoder (default: its own, i.e. the model's)")
    parser.add_argument("--load-requests", type=int, default=200)
    parser.add_argument("--soak-requests", type=int, default=10_000)
    parser.add_argument("--soak-concurrency", type=int, default=8)
    parser.add_argument("--soak-clip-seconds", type=float, default=1.0)
    parser.add_argument("--bad-repeats", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="stop sending after this long")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    if args.out:
        write_json(report, args.out)


if __name__ == "__main__":
    main()
