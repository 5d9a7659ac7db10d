"""Speed of the runtime's long-audio windows: chunk length and context, side by side in one run.

    python benchmarks/window_settings.py --arch base --seconds 30 --settings 20:2,20:1.5,20:1,16:1,single \\
        --out benchmarks/results/window_settings_base.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from runtime_figures import (  # noqa: E402
    ARCHS,
    add_run_arguments,
    announce_machine,
    build_model,
    interleaved_times,
    speech_like,
    write_json,
)

SINGLE_PASS_S = 1e6  # a chunk longer than any input: one pass


def parse_settings(text: str) -> list[tuple[float, float]]:
    """``"20:2,16:1,single"`` -> ``[(20.0, 2.0), (16.0, 1.0), (1e6, 2.0)]`` (chunk length, context) in seconds."""
    settings = []
    for item in text.split(","):
        if item.strip() == "single":
            settings.append((SINGLE_PASS_S, 2.0))
        else:
            length, context = item.split(":")
            settings.append((float(length), float(context)))
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(ARCHS), default="base")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settings", default="20:2,20:1.5,20:1,16:1,single",
                        help="chunk_length:chunk_context pairs in seconds, or 'single'")
    add_run_arguments(parser)
    args = parser.parse_args()
    import w2v2_onnx

    info = announce_machine()
    model = w2v2_onnx.Transcriber(build_model(args.arch, ("int8",)), device="cpu", precision="int8",
                                  threads=args.threads)
    audio = speech_like(args.seconds)
    model.transcribe(audio[: 16000 * 5])  # warm-up
    settings = parse_settings(args.settings)
    times = interleaved_times({setting: (lambda s=setting: model.transcribe(audio, chunk_length=s[0],
                                                                         chunk_context=s[1]))
                               for setting in settings}, args.repeats, warm_up=False)
    rtfx = {}
    for (length, context), values in times.items():
        name = "single pass" if length == SINGLE_PASS_S else f"{length:g} s windows, {context:g} s context"
        rtfx[name] = args.seconds / statistics.median(values)
        print(f"{name:<32} {rtfx[name]:6.1f}x real time", flush=True)
    report = {"kind": "window_settings", "machine": info, "arch": args.arch, "seconds": args.seconds,
              "threads": args.threads, "precision": "int8", "rtfx": rtfx}
    if args.out:
        write_json(report, args.out)


if __name__ == "__main__":
    main()
