"""The ``w2v2-onnx`` command line: a thin layer over the library.

Each subcommand lives in a module that exposes ``add_arguments(parser)`` and ``run(args) -> int``.
Modules of the export and fine-tuning stages are imported only when their subcommand runs, so
``w2v2-onnx transcribe`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help). Modules must import no heavy dependency at import time.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "transcribe": ("w2v2_onnx.cli_transcribe", "transcribe audio files with an exported model"),
    "stream": ("w2v2_onnx.cli_stream", "transcribe live raw PCM from standard input (a microphone, a call)"),
    "match": ("w2v2_onnx.cli_match", "say which of a few given phrases each audio file says (digits, commands)"),
    "export": ("w2v2_onnx_export.cli", "export a Hugging Face CTC checkpoint to a model directory"),
    "finetune": ("w2v2_onnx_finetune.cli", "fine-tune or train a CTC model into a checkpoint directory"),
    "serve": ("w2v2_onnx.cli_serve", "serve a model over HTTP (SageMaker contract: /ping, /invocations)"),
    "build-lm": ("w2v2_onnx.cli_build_lm", "build an n-gram language model from text"),
    "add-lm": ("w2v2_onnx.cli_add_lm", "give a model directory its own language model (default for beam search)"),
}


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available subcommand registered."""
    from w2v2_onnx import __version__

    parser = argparse.ArgumentParser(prog="w2v2-onnx", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"w2v2-onnx {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # a stage that is not installed simply has no subcommand
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


# optional dependency -> the extra that installs it, for a clear message instead of a traceback
EXTRA_OF_MODULE = {"torch": "export", "transformers": "export", "onnx": "export", "onnxscript": "export",
                   "datasets": "train", "accelerate": "train", "jiwer": "train", "matplotlib": "bench",
                   "starlette": "serve", "uvicorn": "serve", "kenlm": "lm"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in EXTRA_OF_MODULE:
            raise
        extra = "train" if args.command == "finetune" else EXTRA_OF_MODULE[root]
        print(f"error: 'w2v2-onnx {args.command}' needs the package {root!r}, which is not installed: "
              f"pip install 'w2v2-onnx[{extra}]'", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
