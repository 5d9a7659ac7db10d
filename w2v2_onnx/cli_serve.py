"""``w2v2-onnx serve``: an HTTP endpoint with the SageMaker contract (GET /ping, POST /invocations)."""

from __future__ import annotations

import argparse
import math
import os
import sys

from w2v2_onnx.cli_transcribe import add_model_arguments, load_transcriber

API_KEY_ENV = "W2V2_ONNX_API_KEY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the serve options."""
    add_model_arguments(parser, os.environ.get("W2V2_ONNX_MODEL"),
                        "model directory (default: $W2V2_ONNX_MODEL, else the bundled model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--decoder", default=None, choices=["greedy", "beam"],
                        help="default: as 'transcribe', beam search with the model's own language model when it "
                             "ships one (the bundled model does), else greedy; each request decodes in its own "
                             "thread and may choose its own decoding (docs/serving.md)")
    parser.add_argument("--max-beam-width", type=int, default=256,
                        help="the widest beam a request may ask for (default: 256)")
    parser.add_argument("--max-batch", type=int, default=8, help="most requests per model call")
    parser.add_argument("--max-wait-ms", type=float, default=10.0, help="longest wait to fill a batch")
    parser.add_argument("--queue-size", type=int, default=64, help="waiting requests before 503")
    parser.add_argument("--max-body-mb", type=float, default=50.0)
    parser.add_argument("--max-audio-seconds", type=float, default=600.0)
    parser.add_argument("--timeout", type=float, default=60.0, help="per-request timeout in seconds (504)")
    parser.add_argument("--api-key", default=os.environ.get(API_KEY_ENV),
                        help=f"require this X-API-Key header (default: ${API_KEY_ENV}, unset = no key)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def run(args: argparse.Namespace) -> int:
    """Load the model and serve until interrupted."""

    try:
        import uvicorn

        from w2v2_onnx.server import ServerSettings, create_app
    except ImportError as exc:
        print(f"error: {exc}; install the serve extra: pip install 'w2v2-onnx[serve]'", file=sys.stderr)
        return 2
    from w2v2_onnx.errors import InvalidOptionError, W2V2OnnxError

    if not 0 <= args.port <= 65535:
        print(f"error: --port must be from 0 to 65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        body_bytes = args.max_body_mb * 2**20
        settings = ServerSettings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, queue_size=args.queue_size,
                                  max_body_bytes=int(body_bytes) if math.isfinite(body_bytes) else body_bytes,
                                  max_audio_seconds=args.max_audio_seconds, timeout_s=args.timeout,
                                  api_key=args.api_key or None, decoder=args.decoder,
                                  max_beam_width=args.max_beam_width)
    except InvalidOptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    transcriber = load_transcriber(args)
    if transcriber is None:
        return 2
    try:
        app = create_app(transcriber, settings)
    except W2V2OnnxError as exc:  # e.g. the model's language model cannot be loaded
        print(f"error: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                timeout_keep_alive=5)
    return 0
