"""``w2v2-onnx match PATH... --phrases ...``: which of a few phrases each file says (digits, commands)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from w2v2_onnx.cli_transcribe import add_model_arguments, load_transcriber, reported_paths
from w2v2_onnx.errors import InvalidOptionError, W2V2OnnxError
from w2v2_onnx.formats import to_json_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the match options."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files, directories or glob patterns")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--phrases", nargs="+", metavar="PHRASE",
                       help="the candidates (quote phrases of several words: \"turn on\" \"turn off\")")
    given.add_argument("--phrases-file", type=Path, metavar="FILE", help="a text file, one phrase per line")
    parser.add_argument("--min-margin", type=float, default=None, metavar="X",
                        help="reject a best phrase whose margin is below X: no phrase is printed (json: "
                             "\"phrase\": null, \"rejected\": true); choose X on your own recordings")
    add_model_arguments(parser)
    parser.add_argument("--format", default="txt", choices=["txt", "json"],
                        help="txt: path, phrase, its probability among the phrases and its margin (reject low "
                             "margins, docs/decoding.md); json: one line per file with every phrase's score")


def read_phrases(path: Path) -> list[str]:
    """The non-blank lines of a phrase file.

    Raises:
        InvalidOptionError: the file cannot be read as UTF-8 text.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidOptionError(f"--phrases-file {path}: cannot read it as UTF-8 text ({exc})") from exc
    return [line.strip() for line in lines if line.strip()]


def run(args: argparse.Namespace) -> int:
    """Match every input; a failing file is reported and skipped. Returns 0, or 1 if any file failed."""
    from w2v2_onnx.phrases import checked_min_margin, spell_phrases

    paths, missing = reported_paths(args.paths)
    if not paths:
        return 1
    transcriber = load_transcriber(args)
    if transcriber is None:
        return 2
    try:
        phrases = args.phrases if args.phrases is not None else read_phrases(args.phrases_file)
        spell_phrases(phrases, transcriber.config.vocabulary)  # check once, not once per file
        checked_min_margin(args.min_margin)
    except W2V2OnnxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failures = len(missing)
    for path in paths:
        try:
            match = transcriber.match_phrases(path, phrases, min_margin=args.min_margin)
        except W2V2OnnxError as exc:
            failures += 1
            print(f"error: {path}: {exc}", file=sys.stderr)
            continue
        if args.format == "json":
            print(to_json_line(match, str(path)))
        else:
            phrase = "" if match.phrase is None else match.phrase
            print(f"{path}\t{phrase}\t{match.probability:.3f}\t{match.margin:.2f}")
        sys.stdout.flush()
    if failures:
        print(f"{failures} of {len(paths) + len(missing)} inputs failed", file=sys.stderr)
    return 1 if failures else 0
