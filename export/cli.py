"""``w2v2-onnx export CHECKPOINT OUT_DIR``: the command line of the export stage.

Importing this module is cheap (no torch, no transformers): the top-level CLI builds its parser from
:func:`add_arguments` and calls :func:`run` only when the ``export`` subcommand is chosen.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from w2v2_onnx.errors import W2V2OnnxError


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated seconds, got {text!r}") from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the export options on ``parser``."""
    from w2v2_onnx_export.validate import DEFAULT_SECONDS, Thresholds

    limits = Thresholds()
    parser.add_argument("checkpoint", help="Hugging Face CTC checkpoint: local directory or hub id")
    parser.add_argument("out_dir", help="model directory to write")
    parser.add_argument(
        "--precision", default="fp32", help="comma-separated precisions: fp32, fp16, int8 (default: fp32)"
    )
    parser.add_argument(
        "--calibration",
        default=None,
        metavar="PATH",
        help="folder of audio files or TSV manifest with a 'path' column, for int8 calibration "
        "and fp16/int8 checks (default: synthetic speech-like audio)",
    )
    parser.add_argument(
        "--calibration-items",
        type=int,
        default=16,
        metavar="N",
        help="calibration clips used at most (default: 16)",
    )
    parser.add_argument(
        "--windows",
        type=_float_list,
        default=None,
        metavar="LENGTH,CONTEXT",
        help="the model's own window length and context in seconds for long inputs, written to w2v2_onnx.json "
        "(e.g. 10,1 for a model trained on clips of at most 10 s; default: none, the runtime uses 20,2)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument(
        "--int8-method",
        choices=("auto", "dynamic", "dynamic-conv", "static"),
        default="auto",
        help="auto (default): dynamic-conv where the conv front-end allows it, else dynamic; dynamic-conv: int8 "
        "MatMuls and the conv front-end as channels-last int8 matmuls (fastest on CPU); dynamic: int8 MatMuls, "
        "conv front-end in fp32; static: QDQ (see docs/export.md)",
    )
    parser.add_argument(
        "--fp16-front-end",
        choices=("auto", "conv"),
        default="auto",
        help="auto (default): the fp16 graph's conv front-end as channels-last matmuls where it can be rewritten "
        "(1.6x faster at 16 x 30 s on an H100); conv: convolutions, as in the fp32 graph",
    )
    parser.add_argument(
        "--no-optimize",
        dest="optimize",
        action="store_false",
        help="skip ONNX Runtime's transformer optimizer (Attention fusion: neutral on CPU, fp16 GPU gain)",
    )
    parser.add_argument(
        "--no-validate", dest="validate", action="store_false", help="skip the parity and accuracy checks"
    )
    parser.add_argument(
        "--validation-seconds",
        type=_float_list,
        default=DEFAULT_SECONDS,
        metavar="S,S,...",
        help="fp32 parity lengths besides the shortest input (default: 1,7.3,30)",
    )
    parser.add_argument(
        "--max-fp32-diff",
        type=float,
        default=limits.fp32_max_abs_diff,
        help=f"max |log-prob| difference fp32 vs PyTorch (default: {limits.fp32_max_abs_diff:g})",
    )
    parser.add_argument(
        "--max-fp16-cer",
        type=float,
        default=limits.fp16_max_cer,
        help=f"max CER of fp16 vs fp32 transcripts (default: {limits.fp16_max_cer:g})",
    )
    parser.add_argument(
        "--max-int8-cer",
        type=float,
        default=limits.int8_max_cer,
        help=f"max CER of int8 vs fp32 transcripts (default: {limits.int8_max_cer:g})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")


def run(args: argparse.Namespace) -> int:
    """Run an export from parsed arguments; returns the exit status (1 with one line on stderr on error)."""
    # The CLI owns the terminal: without --verbose, stderr carries only our one-line error.
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(message)s", force=True
    )
    try:
        import transformers

        from w2v2_onnx_export import Thresholds, export_model

        if not args.verbose:
            transformers.utils.logging.disable_progress_bar()
            transformers.utils.logging.set_verbosity_error()
            warnings.filterwarnings("ignore")

        thresholds = Thresholds(
            fp32_max_abs_diff=args.max_fp32_diff,
            fp16_max_cer=args.max_fp16_cer,
            int8_max_cer=args.max_int8_cer,
        )
        report = export_model(
            args.checkpoint,
            args.out_dir,
            precisions=[p for p in args.precision.split(",") if p.strip()],
            calibration=args.calibration,
            opset=args.opset,
            optimize=args.optimize,
            validate=args.validate,
            thresholds=thresholds,
            validation_seconds=args.validation_seconds,
            int8_method=args.int8_method,
            fp16_front_end=args.fp16_front_end,
            windows=args.windows,
            calibration_items=args.calibration_items,
        )
    except W2V2OnnxError as exc:
        print(f"w2v2-onnx export: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # writing the model files: a read-only or full disk
        print(f"w2v2-onnx export: error: {exc}", file=sys.stderr)
        return 1
    for precision, path in report.files.items():
        line = f"{precision}: {path} ({report.sizes_bytes[precision] / 1e6:.1f} MB)"
        figures = report.parity.get(precision)
        if figures and precision == "fp32":
            line += f", max |diff| vs PyTorch {figures['max_abs_diff']:.2g}"
        elif figures:
            line += f", CER vs fp32 {figures['cer']:.4f}"
        print(line)
    print(f"wrote {report.out_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m w2v2_onnx_export``: the same command without the top-level dispatcher."""
    parser = argparse.ArgumentParser(
        prog="python -m w2v2_onnx_export",
        description="export a Hugging Face CTC checkpoint to a model directory",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
