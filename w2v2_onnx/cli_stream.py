"""``w2v2-onnx stream``: live transcription of raw PCM on standard input (a microphone, a call).

    arecord -q -f S16_LE -r 16000 -c 1 | w2v2-onnx stream --chunk-length 4 --chunk-context 1
    ffmpeg -loglevel error -i talk.mp3 -f s16le -ac 1 -ar 16000 - | w2v2-onnx stream

Each time the text so far changes, it is printed as a line; at the end of the input the final
transcript (the model's own decoding, beam search with its language model for the bundled model) follows,
or one JSON line with ``--format json``. With ``--endpoint-silence SECONDS``, each utterance is printed once,
when a pause of that length ends it (or the input ends): its text as a line, or one JSON line with its start,
end and words; dictation tools read these.
"""

from __future__ import annotations

import argparse
import sys

from w2v2_onnx.cli_transcribe import add_model_arguments, load_transcriber
from w2v2_onnx.errors import W2V2OnnxError
from w2v2_onnx.formats import to_json_line
from w2v2_onnx.results import Utterance
from w2v2_onnx.streaming import PCM_TYPES, split_pcm

READ_SECONDS = 0.1  # how much audio each read asks for


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the stream options."""
    parser.add_argument("--rate", type=int, default=16000, help="sample rate of the input in Hz (default: 16000)")
    parser.add_argument("--sample-type", default="s16le", choices=sorted(PCM_TYPES),
                        help="raw mono samples: s16le (16-bit PCM, default) or f32le (32-bit float)")
    parser.add_argument("--chunk-length", type=float, default=None,
                        help="window length in seconds: the latency (default: the model's, 10 s for the bundled "
                             "one; 4 with --chunk-context 1 gives text every 2 s)")
    parser.add_argument("--chunk-context", type=float, default=None, help="window overlap in seconds")
    parser.add_argument("--endpoint-silence", type=float, default=None, metavar="SECONDS",
                        help="end an utterance at each pause of this many seconds (e.g. 1.0) and print each "
                             "utterance once, when it ends, instead of the growing text")
    parser.add_argument("--decoder", default=None, choices=["greedy", "beam"],
                        help="decoding of the final transcript (default: as 'transcribe')")
    add_model_arguments(parser)
    parser.add_argument("--format", default="txt", choices=["txt", "json"],
                        help="txt: the text so far, one line per change, then the final transcript; json: the "
                             "final transcription as one JSON line (words with times)")


def run(args: argparse.Namespace) -> int:
    """Transcribe standard input until it ends. Returns 0, 1 on an audio or runtime error, 2 on bad options."""
    transcriber = load_transcriber(args)
    if transcriber is None:
        return 2
    try:
        stream = transcriber.stream(sample_rate=args.rate, chunk_length=args.chunk_length,
                                    chunk_context=args.chunk_context, decoder=args.decoder,
                                    endpoint_silence=args.endpoint_silence)
    except W2V2OnnxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    read_bytes = max(1, int(READ_SECONDS * args.rate)) * PCM_TYPES[args.sample_type].itemsize
    pending = b""
    shown = ""
    endpoints = args.endpoint_silence is not None
    try:
        while True:
            data = sys.stdin.buffer.read(read_bytes)
            if not data:
                break
            samples, pending = split_pcm(pending + data, args.sample_type)
            text = stream.feed(samples)
            if endpoints:
                print_utterances(stream.take_utterances(), args.format)
            elif args.format == "txt" and text != shown:
                print(text, flush=True)
                shown = text
        if pending:
            print(f"warning: the input ended inside a sample ({len(pending)} stray bytes ignored)", file=sys.stderr)
        result = stream.finish()
    except W2V2OnnxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C on a live input: finish what was heard
        result = stream.finish()
    if endpoints:
        print_utterances(stream.take_utterances(), args.format)
    else:
        print(to_json_line(result, "<stdin>") if args.format == "json" else result.text, flush=True)
    return 0


def print_utterances(utterances: list[Utterance], output_format: str) -> None:
    """Print ended utterances: each one's text as a line, or one JSON line each (start, end, text, words)."""
    for utterance in utterances:
        print(to_json_line(utterance) if output_format == "json" else utterance.text, flush=True)
