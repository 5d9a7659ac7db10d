"""``w2v2-onnx add-lm``: give a model directory its own language model, which beam search then uses by default."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``add-lm`` options."""
    parser.add_argument("model", type=Path, help="model directory written by 'w2v2-onnx export'")
    parser.add_argument("lm", type=Path, nargs="?", default=None,
                        help="ARPA, .arpa.gz or KenLM binary file; copied into the model directory")
    parser.add_argument("--alpha", type=float, default=None, help="LM weight tuned for this model")
    parser.add_argument("--beta", type=float, default=None, help="word insertion bonus tuned for this model")
    parser.add_argument("--remove", action="store_true", help="remove the model's language model entry")


def run(args: argparse.Namespace) -> int:
    """Write the entry; print what the model now ships. Returns 0, or 2 on a bad input."""
    from w2v2_onnx.errors import W2V2OnnxError
    from w2v2_onnx.model_dir import set_language_model

    if args.remove == (args.lm is not None):
        print("w2v2-onnx add-lm: error: give either an LM file or --remove", file=sys.stderr)
        return 2
    try:
        config = set_language_model(args.model, None if args.remove else args.lm, alpha=args.alpha, beta=args.beta)
    except (W2V2OnnxError, OSError) as exc:
        print(f"w2v2-onnx add-lm: error: {exc}", file=sys.stderr)
        return 2
    shipped = config.language_model
    if shipped is None:
        print(f"{args.model}: no language model (greedy decoding by default)")
    else:
        print(f"{args.model}: language model {shipped.path.name} (alpha {shipped.alpha}, beta {shipped.beta}); "
              f"beam search with it is the default decoding")
    return 0
