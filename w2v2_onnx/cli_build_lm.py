"""``w2v2-onnx build-lm``: build an n-gram language model for beam-search decoding from text files."""

from __future__ import annotations

import argparse
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the subcommand's arguments on ``parser``."""
    parser.add_argument("texts", nargs="+", metavar="TEXT", help="text files, one sentence per line")
    parser.add_argument("-o", "--output", required=True, metavar="LM_PATH",
                        help="output path; writes LM_PATH.arpa (and LM_PATH.bin when KenLM's build_binary "
                             "is on PATH); a .arpa or .bin suffix is replaced")
    parser.add_argument("--order", type=int, default=4, choices=range(2, 7), metavar="{2..6}",
                        help="n-gram order, 2-6 (default 4; KenLM, the decoder's fast backend, loads no unigram-only "
                             "model)")
    parser.add_argument("--estimator", choices=("auto", "python", "lmplz"), default="auto",
                        help="modified Kneser-Ney by KenLM's lmplz (when on PATH) or by w2v2-onnx's own "
                             "implementation (default auto: lmplz if found)")
    parser.add_argument("--no-binary", action="store_true", help="write ARPA only")
    parser.add_argument("--min-count", type=int, default=1, metavar="N",
                        help="prune n-grams of order 2 and up seen fewer than N times, renormalising the back-off "
                             "(default 1: keep all; 3 makes a small LM, see docs/decoding.md)")
    parser.add_argument("--exclude", action="append", default=[], metavar="FILE",
                        help="leave out every sentence of TEXT that is also a line of FILE (e.g. the test set's "
                             "transcripts, one per line), so the LM never saw them; repeatable")
    parser.add_argument("--keep-case", action="store_true",
                        help="do not upper-case the text (the CTC vocabularies here are upper case)")


def run(args: argparse.Namespace) -> int:
    """Build the model; print the files written. Returns the exit status (0 ok, 2 on a bad input)."""
    from w2v2_onnx.errors import W2V2OnnxError
    from w2v2_onnx.lm_build import build_lm

    start = time.perf_counter()
    try:
        written = build_lm(args.texts, args.output, order=args.order, estimator=args.estimator,
                           binary=not args.no_binary, uppercase=not args.keep_case, exclude=args.exclude,
                           min_count=args.min_count)
    except (W2V2OnnxError, OSError) as exc:
        print(f"w2v2-onnx build-lm: error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    print(f"built in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0
