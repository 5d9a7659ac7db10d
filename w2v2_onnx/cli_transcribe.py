"""``w2v2-onnx transcribe PATH...``: transcribe files, directories and globs."""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

from w2v2_onnx.errors import W2V2OnnxError
from w2v2_onnx.formats import FORMATS, render, to_json_line

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".w64", ".caf", ".rf64"}
EXTENSIONS = {"txt": ".txt", "json": ".json", "srt": ".srt", "vtt": ".vtt"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the transcribe options."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files, directories (searched recursively "
                        "for audio) or glob patterns; - alone reads one encoded file (WAV, FLAC, MP3, ...) from "
                        "standard input")
    add_model_arguments(parser)
    parser.add_argument("--format", default="txt", choices=FORMATS, help="output format (default: txt)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="write one file per input here instead of printing to stdout")
    parser.add_argument("--decoder", default=None, choices=["greedy", "beam"],
                        help="default: beam when the model ships a language model (the bundled one does), "
                             "else greedy")
    lm = parser.add_mutually_exclusive_group()
    lm.add_argument("--lm", default=None, help="n-gram language model (ARPA, .arpa.gz or KenLM binary) for beam "
                    "search (default: the model's own, if it ships one)")
    lm.add_argument("--no-lm", action="store_true", help="beam search without a language model")
    parser.add_argument("--beam-width", type=int, default=None)
    parser.add_argument("--alpha", type=float, default=None, help="language model weight")
    parser.add_argument("--beta", type=float, default=None, help="word insertion bonus")
    parser.add_argument("--hotwords", nargs="*", default=None, help="words to favour in beam search")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--chunk-length", type=float, default=None, help="window length in seconds for long audio")
    parser.add_argument("--trim-silence", action=argparse.BooleanOptionalAction, default=None,
                        help="cut leading and trailing silence before the model hears it (default: the model "
                        "directory's setting)")
    parser.add_argument("--split-at-pauses", type=float, default=None, metavar="SECONDS",
                        help="transcribe each stretch of speech between pauses of at least SECONDS on its own "
                        "(for long recordings with clear pauses; it can hurt short noisy clips, docs/runtime.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def expand_paths(patterns: list[str]) -> tuple[list[Path], list[str]]:
    """Expand files, directories and globs into audio paths.

    Returns:
        ``(paths, problems)``: the audio files found, and one message per pattern that gave none.
    """
    found: list[Path] = []
    problems: list[str] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not matches:
                problems.append(f"{pattern}: directory holds no audio files "
                                f"({', '.join(sorted(AUDIO_SUFFIXES))})")
        elif path.exists():
            matches = [path]
        else:
            matches = (sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
                       if glob.has_magic(pattern) else [])
            if not matches:
                problems.append(f"{pattern}: no such audio file, directory or matching glob")
        found.extend(matches)
    unique = list(dict.fromkeys(found))
    return unique, problems


class Progress:
    """A one-line progress bar on stderr, drawn only for several files on a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.start = total, 0, time.monotonic()
        self.enabled = enabled and total > 1

    def step(self, name: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = time.monotonic() - self.start
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {elapsed:6.1f}s {name[-40:]:<40}"
        sys.stderr.write(line)
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _output_path(out_dir: Path, source: Path, fmt: str, used: set[Path]) -> Path:
    target = out_dir / (source.stem + EXTENSIONS[fmt])
    counter = 1
    while target in used:
        target = out_dir / f"{source.stem}_{counter}{EXTENSIONS[fmt]}"
        counter += 1
    used.add(target)
    return target


def add_model_arguments(parser: argparse.ArgumentParser, model_default: str | None = None,
                        model_help: str = "model directory or .onnx file (default: the bundled model)") -> None:
    """Register the options that choose and load the model (read back by :func:`load_transcriber`)."""
    parser.add_argument("--model", default=model_default, help=model_help)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--precision", default=None, choices=["fp32", "fp16", "int8"],
                        help="default: int8 on CPU, fp16 on CUDA, else what the model has")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: CPUs available)")


def load_transcriber(args: argparse.Namespace):
    """Build the Transcriber the model options name, or print the error and return None."""
    from w2v2_onnx.transcriber import Transcriber

    try:
        return Transcriber(args.model, device=args.device, precision=args.precision, threads=args.threads)
    except W2V2OnnxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def reported_paths(patterns: list[str]) -> tuple[list[Path], list[str]]:
    """:func:`expand_paths`, with each pattern that gave no audio reported on stderr."""
    paths, missing = expand_paths(patterns)
    for problem in missing:
        print(f"error: {problem}", file=sys.stderr)
    return paths, missing


STDIN = Path("-")


def run(args: argparse.Namespace) -> int:
    """Transcribe every input; a failing file is reported and skipped. Returns 0, or 1 if any file failed."""
    if "-" in args.paths and args.paths != ["-"]:
        print("error: - (standard input) must be the only input", file=sys.stderr)
        return 2
    paths, missing = ([STDIN], []) if args.paths == ["-"] else reported_paths(args.paths)
    if not paths:
        return 1
    if len(paths) > 1 and args.format in ("srt", "vtt") and args.output_dir is None:
        print(f"error: --format {args.format} with several inputs needs --output-dir", file=sys.stderr)
        return 2
    transcriber = load_transcriber(args)
    if transcriber is None:
        return 2
    options = {k: v for k, v in dict(decoder=args.decoder, lm=False if args.no_lm else args.lm,
                                     beam_width=args.beam_width, alpha=args.alpha,
                                     beta=args.beta, hotwords=args.hotwords, batch_size=args.batch_size,
                                     chunk_length=args.chunk_length,
                                     trim_silence=args.trim_silence,
                                     split_at_pauses=args.split_at_pauses).items() if v is not None}
    try:
        transcriber.check_options(**options)  # once, not once per file
    except W2V2OnnxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output_dir is not None:
        try:
            args.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"error: --output-dir {args.output_dir}: cannot create the folder ({exc.strerror or exc})",
                  file=sys.stderr)
            return 2
    progress = Progress(len(paths), enabled=not args.quiet and sys.stderr.isatty())
    failures = len(missing)
    used: set[Path] = set()
    for path in paths:
        name = "<stdin>" if path == STDIN else str(path)
        try:
            result = transcriber.transcribe(sys.stdin.buffer.read() if path == STDIN else path, **options)
        except W2V2OnnxError as exc:
            failures += 1
            print(f"\nerror: {name}: {exc}" if progress.enabled else f"error: {name}: {exc}", file=sys.stderr)
            progress.step(name)
            continue
        if args.output_dir is not None:
            _output_path(args.output_dir, Path("stdin") if path == STDIN else path, args.format, used).write_text(
                render(result, args.format, name), encoding="utf-8")
        elif args.format == "json":
            print(to_json_line(result, name))
        elif args.format == "txt" and len(paths) > 1:
            print(f"{path}\t{result.text}")
        else:
            sys.stdout.write(render(result, args.format, name))
        sys.stdout.flush()
        progress.step(name)
    if failures:
        print(f"{failures} of {len(paths) + len(missing)} inputs failed", file=sys.stderr)
    return 1 if failures else 0
